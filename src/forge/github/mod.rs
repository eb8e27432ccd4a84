//! The GitHub forge: GitHub's REST API (or GitHub Enterprise Server's, or a
//! test fake's: any `api_url`) through octocrab.
//!
//! `client.rs` carries requests (auth, time limits, rate limits, ETags);
//! `wire.rs` reads GitHub's JSON; this file maps each forge operation to
//! its endpoint and each answer to a result or a clear [`ForgeError`].

mod client;
mod issues;
mod teams;
pub mod webhook;
mod wire;

pub use issues::PullRequest;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;
use jiff::Timestamp;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::SecretString;
use serde_json::{Value, json};

use self::client::{Call, Client, expect_success};
use self::wire::{CheckRuns, CombinedStatus, Repository, WireDeployment, WireStatus, bad_answer};
use super::{
    Check, CheckState, ConfigFile, DEPLOY_CONFIG_PATH, Deployment, DeploymentFilter, Forge,
    ForgeError, NewDeployment, NewStatus,
};
use crate::domain::{DeploymentId, DeploymentState, RepoName, Sha};

/// The largest deploy.yml hoist reads (the contents API's own limit).
const MAX_CONFIG_BYTES: usize = 1024 * 1024;
/// GitHub refuses status descriptions longer than this.
const MAX_STATUS_DESCRIPTION: usize = 140;
/// Deployments remembered per process for idempotency before starting over
/// (the forge's own listing is the check that survives restarts).
const MAX_REMEMBERED: usize = 10_000;
/// GitHub's largest page.
const MAX_PAGE: usize = 100;

/// Characters kept as they are in a ref inside a URL path.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// Characters kept as they are in a query value.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where GitHub is and who hoist is there.
#[derive(Debug, Clone)]
pub struct GitHubSettings {
    /// `https://api.github.com`, `https://HOST/api/v3`, or a fake.
    pub api_url: String,
    pub auth: GitHubAuth,
    /// The longest one request may take, answer included.
    pub request_timeout: Duration,
    /// The longest hoist waits for a rate limit to reset before saying so.
    pub max_rate_limit_wait: Duration,
    /// How long a deploy.yml or a repository's default branch, once read,
    /// is used without asking GitHub again (then revalidated with its
    /// ETag): a change applies within this time, and a burst of commands
    /// costs no round trip for them.
    pub rules_fresh_for: Duration,
}

/// The git host of an API: `https://api.github.com` is served from
/// `https://github.com`, GitHub Enterprise Server's `https://HOST/api/v3`
/// from `https://HOST`, and any other base (a fake) from itself.
fn git_url(api_url: &str) -> String {
    let api_url = api_url.trim_end_matches('/');
    if let Some(rest) = api_url.strip_prefix("https://api.github.com") {
        return format!("https://github.com{rest}");
    }
    api_url
        .strip_suffix("/api/v3")
        .unwrap_or(api_url)
        .to_owned()
}

#[async_trait]
impl super::GitAccess for GitHubForge {
    async fn git_remote(&self, repo: &RepoName) -> Result<super::GitRemote, ForgeError> {
        Ok(super::GitRemote {
            url: format!("{}/{repo}.git", self.git_url),
            token: self.client.git_token(repo).await?,
        })
    }
}

/// A token, or a GitHub App (JWT -> installation token per repository).
/// `Debug` shows neither the token nor the key.
#[derive(Clone)]
pub enum GitHubAuth {
    Token(SecretString),
    App {
        app_id: u64,
        private_key_pem: SecretString,
    },
}

impl fmt::Debug for GitHubAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token([REDACTED])"),
            Self::App { app_id, .. } => {
                write!(f, "App {{ app_id: {app_id}, private_key_pem: [REDACTED] }}")
            }
        }
    }
}

pub struct GitHubForge {
    client: Client,
    /// Where git reaches the repositories (`https://github.com`, the
    /// Enterprise host, or the fake).
    git_url: String,
    rules_fresh_for: Duration,
    /// request_key -> the deployment made for it by this process.
    made: std::sync::Mutex<HashMap<String, Deployment>>,
}

impl GitHubForge {
    pub fn new(settings: GitHubSettings) -> anyhow::Result<Self> {
        Ok(Self {
            client: Client::new(&settings)?,
            git_url: git_url(&settings.api_url),
            rules_fresh_for: settings.rules_fresh_for,
            made: std::sync::Mutex::default(),
        })
    }

    fn remembered(&self, request_key: &str) -> Option<Deployment> {
        self.made
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(request_key)
            .cloned()
    }

    fn remember(&self, request_key: &str, deployment: &Deployment) {
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if made.len() >= MAX_REMEMBERED {
            made.clear();
        }
        made.insert(request_key.to_owned(), deployment.clone());
    }

    /// A deployment made earlier for `request_key` (by any hoist process):
    /// GitHub keeps `payload.hoist.request_key`, so the newest deployments
    /// of the same ref and environment are searched for it.
    ///
    /// Asked only for a retried request: the workflow claims each request
    /// in the store before creating, so a retry while the first attempt
    /// runs is answered without creating, and only a claim left by an
    /// attempt that died mid-way leads here.
    async fn made_earlier(
        &self,
        repo: &RepoName,
        request: &NewDeployment,
    ) -> Result<Option<Deployment>, ForgeError> {
        let path = format!(
            "/repos/{repo}/deployments?ref={}&environment={}&per_page=30",
            utf8_percent_encode(&request.git_ref, QUERY),
            utf8_percent_encode(&request.environment, QUERY),
        );
        let answer = self.client.send(repo, &Call::get(path)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(not_found_repo(repo));
        }
        expect_success(&answer)?;
        let deployments: Vec<WireDeployment> = answer.json("a list of deployments")?;
        let Some(earlier) = deployments.into_iter().find(|deployment| {
            deployment
                .payload
                .pointer("/hoist/request_key")
                .and_then(Value::as_str)
                == Some(request.request_key.as_str())
        }) else {
            return Ok(None);
        };
        let id = earlier.id;
        let state = self.latest_state(repo, id).await?;
        earlier.into_deployment(state).map(Some)
    }

    /// The state of a deployment's latest status, and when it was posted.
    async fn latest_state(
        &self,
        repo: &RepoName,
        id: i64,
    ) -> Result<Option<(DeploymentState, Option<Timestamp>)>, ForgeError> {
        let path = format!("/repos/{repo}/deployments/{id}/statuses?per_page=1");
        let answer = self.client.send(repo, &Call::get(path)).await?;
        expect_success(&answer)?;
        let statuses: Vec<WireStatus> = answer.json("deployment statuses")?;
        Ok(statuses.first().and_then(WireStatus::latest))
    }
}

#[async_trait]
impl Forge for GitHubForge {
    fn kind(&self) -> &'static str {
        "github"
    }

    async fn deploy_config(&self, repo: &RepoName) -> Result<Option<ConfigFile>, ForgeError> {
        let branch = self.default_branch(repo).await?;
        let call = Call {
            accept: "application/vnd.github.raw+json",
            ..Call::get(format!(
                "/repos/{repo}/contents/{DEPLOY_CONFIG_PATH}?ref={}",
                utf8_percent_encode(&branch, QUERY)
            ))
        };
        let answer = self
            .client
            .get_fresh(repo, &call, self.rules_fresh_for)
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect_success(&answer)?;
        let label = format!("{repo}:{DEPLOY_CONFIG_PATH}@{branch}");
        if answer.body.len() > MAX_CONFIG_BYTES {
            return Err(ForgeError::Rejected {
                message: format!("{label} is larger than {MAX_CONFIG_BYTES} bytes"),
            });
        }
        let text = String::from_utf8(answer.body).map_err(|_| ForgeError::Rejected {
            message: format!("{label} is not UTF-8 text"),
        })?;
        Ok(Some(ConfigFile { label, text }))
    }

    async fn default_branch(&self, repo: &RepoName) -> Result<String, ForgeError> {
        let answer = self
            .client
            .get_fresh(
                repo,
                &Call::get(format!("/repos/{repo}")),
                self.rules_fresh_for,
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(not_found_repo(repo));
        }
        expect_success(&answer)?;
        Ok(answer.json::<Repository>("a repository")?.default_branch)
    }

    async fn resolve_ref(&self, repo: &RepoName, git_ref: &str) -> Result<Sha, ForgeError> {
        let call = Call {
            accept: "application/vnd.github.sha",
            ..Call::get(format!(
                "/repos/{repo}/commits/{}",
                utf8_percent_encode(git_ref, PATH)
            ))
        };
        let answer = self.client.send(repo, &call).await?;
        match answer.status {
            // 422: no commit by that name; 409: the repository is empty.
            StatusCode::NOT_FOUND | StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT => {
                Err(ForgeError::NotFound {
                    what: format!("`{git_ref}` in {repo}"),
                })
            }
            _ => {
                expect_success(&answer)?;
                let text = String::from_utf8_lossy(&answer.body);
                Sha::new(text.trim()).ok_or_else(|| bad_answer("a commit sha hoist could not read"))
            }
        }
    }

    async fn behind_by(&self, repo: &RepoName, base: &str, head: &Sha) -> Result<u64, ForgeError> {
        #[derive(serde::Deserialize)]
        struct Comparison {
            behind_by: u64,
        }
        let base = utf8_percent_encode(base, PATH);
        let answer = self
            .client
            .send(
                repo,
                &Call::get(format!("/repos/{repo}/compare/{base}...{head}")),
            )
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(ForgeError::NotFound {
                what: format!("a comparison of {} with {base} in {repo}", head.short()),
            });
        }
        expect_success(&answer)?;
        let comparison: Comparison = answer.json("a comparison of two commits")?;
        Ok(comparison.behind_by)
    }

    async fn commit_checks(&self, repo: &RepoName, sha: &Sha) -> Result<Vec<Check>, ForgeError> {
        let answer = self
            .client
            .send(
                repo,
                &Call::get(format!("/repos/{repo}/commits/{sha}/status")),
            )
            .await?;
        expect_success(&answer)?;
        let combined: CombinedStatus = answer.json("a combined status")?;
        let mut checks: Vec<Check> = combined
            .statuses
            .into_iter()
            .map(|status| Check {
                state: wire::status_state(&status.state),
                name: status.context,
                url: status.target_url.filter(|url| !url.is_empty()),
            })
            .collect();
        let path = format!("/repos/{repo}/commits/{sha}/check-runs?per_page={MAX_PAGE}");
        let answer = self.client.send(repo, &Call::get(path)).await?;
        // A token without the Checks permission sees none: statuses only.
        if answer.status != StatusCode::NOT_FOUND && answer.status != StatusCode::FORBIDDEN {
            expect_success(&answer)?;
            let runs: CheckRuns = answer.json("check runs")?;
            for run in runs.check_runs {
                let state = run.state();
                match checks.iter_mut().find(|check| check.name == run.name) {
                    // The same name twice (a re-run): the worse state counts.
                    Some(check) if check.state == CheckState::Success => check.state = state,
                    Some(_) => {}
                    None => checks.push(Check {
                        name: run.name,
                        state,
                        url: run
                            .details_url
                            .or(run.html_url)
                            .filter(|url| !url.is_empty()),
                    }),
                }
            }
        }
        Ok(checks)
    }

    async fn create_deployment(
        &self,
        repo: &RepoName,
        request: &NewDeployment,
    ) -> Result<Deployment, ForgeError> {
        if let Some(made) = self.remembered(&request.request_key) {
            return Ok(made);
        }
        // Only a retried request can have a deployment already; a fresh
        // one skips the lookup (one round trip fewer on every deploy).
        if request.retried
            && let Some(earlier) = self.made_earlier(repo, request).await?
        {
            self.remember(&request.request_key, &earlier);
            return Ok(earlier);
        }
        let mut body = json!({
            "ref": request.git_ref,
            "task": request.task,
            "environment": request.environment,
            "description": request.description,
            "auto_merge": request.auto_merge,
            "payload": request.payload,
            "transient_environment": request.transient_environment,
            "production_environment": request.production_environment,
        });
        // Absent: GitHub checks every context. Present (even empty): those.
        if let Some(contexts) = &request.required_contexts {
            body["required_contexts"] = json!(contexts);
        }
        let answer = self
            .client
            .send(
                repo,
                &Call::post(format!("/repos/{repo}/deployments"), &body),
            )
            .await?;
        let deployment = match answer.status {
            StatusCode::CREATED => answer
                .json::<WireDeployment>("a deployment")?
                .into_deployment(None)?,
            StatusCode::ACCEPTED => {
                return Err(ForgeError::AutoMerged {
                    git_ref: request.git_ref.clone(),
                });
            }
            StatusCode::CONFLICT => {
                let error = answer.error();
                let contexts = error.contexts();
                if contexts.is_empty() {
                    return Err(ForgeError::MergeConflict {
                        git_ref: request.git_ref.clone(),
                        message: error.summary(),
                    });
                }
                let failing: Vec<Check> = contexts
                    .iter()
                    .filter(|check| check.state != CheckState::Success)
                    .cloned()
                    .collect();
                return Err(ForgeError::ChecksFailed {
                    checks: if failing.is_empty() {
                        contexts
                    } else {
                        failing
                    },
                });
            }
            StatusCode::NOT_FOUND => return Err(not_found_repo(repo)),
            StatusCode::UNPROCESSABLE_ENTITY => {
                return Err(ForgeError::Rejected {
                    message: answer.error().summary(),
                });
            }
            _ => {
                expect_success(&answer)?;
                return Err(bad_answer("an unexpected success code to a new deployment"));
            }
        };
        self.remember(&request.request_key, &deployment);
        Ok(deployment)
    }

    async fn list_deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, ForgeError> {
        let limit = filter.effective_limit().min(MAX_PAGE);
        let mut path = format!("/repos/{repo}/deployments?per_page={limit}");
        if let Some(environment) = &filter.environment {
            path.push_str(&format!(
                "&environment={}",
                utf8_percent_encode(environment, QUERY)
            ));
        }
        if let Some(sha) = &filter.sha {
            path.push_str(&format!("&sha={sha}"));
        }
        if let Some(task) = &filter.task {
            path.push_str(&format!("&task={}", utf8_percent_encode(task, QUERY)));
        }
        let answer = self.client.send(repo, &Call::get(path)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(not_found_repo(repo));
        }
        expect_success(&answer)?;
        let wire: Vec<WireDeployment> = answer.json("a list of deployments")?;
        // One request per deployment for its state: the REST API has no
        // way to ask for the latest status in the listing.
        let mut deployments = Vec::with_capacity(wire.len());
        for deployment in wire.into_iter().take(limit) {
            let state = self.latest_state(repo, deployment.id).await?;
            deployments.push(deployment.into_deployment(state)?);
        }
        Ok(deployments)
    }

    async fn deployment_statuses(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> Result<Vec<(NewStatus, Timestamp)>, ForgeError> {
        // With an ETag: polling an unchanged list costs no rate limit.
        let path = format!("/repos/{repo}/deployments/{id}/statuses?per_page={MAX_PAGE}");
        let answer = self.client.get_cached(repo, &Call::get(path)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(ForgeError::NotFound {
                what: format!("deployment {id} of {repo}"),
            });
        }
        expect_success(&answer)?;
        let newest_first: Vec<WireStatus> = answer.json("deployment statuses")?;
        newest_first
            .into_iter()
            .rev()
            .map(WireStatus::into_status)
            .collect()
    }

    async fn create_status(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        status: &NewStatus,
    ) -> Result<(), ForgeError> {
        let body = json!({
            "state": status.state.as_str(),
            "description": status
                .description
                .as_ref()
                .map(|d| d.chars().take(MAX_STATUS_DESCRIPTION).collect::<String>()),
            "log_url": status.log_url,
            "environment_url": status.environment_url,
        });
        let path = format!("/repos/{repo}/deployments/{id}/statuses");
        let answer = self.client.send(repo, &Call::post(path, &body)).await?;
        match answer.status {
            StatusCode::NOT_FOUND => Err(ForgeError::NotFound {
                what: format!("deployment {id} of {repo}"),
            }),
            StatusCode::UNPROCESSABLE_ENTITY => Err(ForgeError::Rejected {
                message: answer.error().summary(),
            }),
            _ => expect_success(&answer),
        }
    }
}

fn not_found_repo(repo: &RepoName) -> ForgeError {
    ForgeError::NotFound {
        what: format!("repository {repo}"),
    }
}

#[cfg(test)]
mod tests {
    use super::git_url;

    #[test]
    fn git_is_reached_on_the_host_that_serves_the_api() {
        assert_eq!(git_url("https://api.github.com"), "https://github.com");
        assert_eq!(git_url("https://api.github.com/"), "https://github.com");
        assert_eq!(
            git_url("https://ghe.example.com/api/v3"),
            "https://ghe.example.com"
        );
        assert_eq!(git_url("http://127.0.0.1:4000"), "http://127.0.0.1:4000");
    }
}
