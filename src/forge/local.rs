//! The local forge: hoist's embedded stand-in for GitHub.
//!
//! Repositories are git repositories on disk; deployments, their statuses and
//! commit checks live in hoist's store ([`LocalForgeStore`]); events go to an
//! in-process channel instead of a webhook. With it hoist runs the whole loop
//! with nothing but itself (`hoist demo`).
//!
//! Git is read through the `git` binary rather than a git crate (git2, gix):
//! it keeps the build lean, and anyone with a local repository has git.
//!
//! It behaves like GitHub where callers can tell: deploy rules come from the
//! default branch only, `required_contexts` is checked the same way, and
//! creating a deployment is idempotent per request key. It never merges
//! (`auto_merge` is ignored) and has no queue, so no `queued` status.

mod git;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::sync::Mutex;

use crate::domain::{DeploymentId, RepoName, Sha};
use crate::forge::{
    Check, ConfigFile, DEPLOY_CONFIG_PATH, Deployment, DeploymentFilter, EventSink, Forge,
    ForgeError, ForgeEvent, NewDeployment, NewStatus,
};
use crate::store::LocalForgeStore;

/// The local forge. Cheap to share behind an `Arc`.
pub struct LocalForge {
    store: Arc<dyn LocalForgeStore>,
    repos: HashMap<RepoName, PathBuf>,
    events: EventSink,
    /// Serialises deployment creation so that two identical requests racing
    /// each other make one deployment and one event.
    creating: Mutex<()>,
}

impl LocalForge {
    /// `repos` maps each repository name to its git repository on disk.
    pub fn new(
        store: Arc<dyn LocalForgeStore>,
        repos: HashMap<RepoName, PathBuf>,
        events: EventSink,
    ) -> Self {
        Self {
            store,
            repos,
            events,
            creating: Mutex::new(()),
        }
    }

    /// Sets a status context on a commit: the local stand-in for CI, used
    /// by `hoist demo` and tests.
    pub async fn set_commit_check(
        &self,
        repo: &RepoName,
        sha: &Sha,
        check: &Check,
    ) -> Result<(), ForgeError> {
        self.path(repo)?;
        self.store
            .set_commit_check(repo, sha, check)
            .await
            .map_err(store_error)
    }

    fn path(&self, repo: &RepoName) -> Result<&Path, ForgeError> {
        self.repos
            .get(repo)
            .map(PathBuf::as_path)
            .ok_or_else(|| ForgeError::NotFound {
                what: format!("repository {repo}"),
            })
    }

    fn send(&self, event: ForgeEvent) {
        // Nobody listening (a CLI command that only reads) is not an error:
        // the deployment is stored either way.
        if self.events.send(event).is_err() {
            tracing::debug!("no listener for local forge events");
        }
    }
}

/// Now, at the store's precision (milliseconds), so the time an event
/// carries equals the one stored and read back later.
fn now_millis() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
}

/// The store failed: log the whole chain, tell the user the short version.
fn store_error(error: anyhow::Error) -> ForgeError {
    tracing::error!(error = format!("{error:#}"), "local forge store error");
    ForgeError::Unavailable {
        detail: error.to_string(),
    }
}

#[async_trait]
impl Forge for LocalForge {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn deploy_config(&self, repo: &RepoName) -> Result<Option<ConfigFile>, ForgeError> {
        let path = self.path(repo)?;
        let branch = git::head_branch(path).await?;
        let text = git::read_file(path, &branch, DEPLOY_CONFIG_PATH).await?;
        let short = branch.strip_prefix("refs/heads/").unwrap_or(&branch);
        Ok(text.map(|text| ConfigFile {
            label: format!("{repo}:{DEPLOY_CONFIG_PATH}@{short}"),
            text,
        }))
    }

    async fn default_branch(&self, repo: &RepoName) -> Result<String, ForgeError> {
        let branch = git::head_branch(self.path(repo)?).await?;
        Ok(branch
            .strip_prefix("refs/heads/")
            .unwrap_or(&branch)
            .to_owned())
    }

    async fn resolve_ref(&self, repo: &RepoName, git_ref: &str) -> Result<Sha, ForgeError> {
        git::resolve_commit(self.path(repo)?, git_ref)
            .await?
            .ok_or_else(|| ForgeError::NotFound {
                what: format!("ref `{git_ref}` in {repo}"),
            })
    }

    async fn behind_by(&self, repo: &RepoName, base: &str, head: &Sha) -> Result<u64, ForgeError> {
        git::behind_by(self.path(repo)?, base, head).await
    }

    async fn commit_checks(&self, repo: &RepoName, sha: &Sha) -> Result<Vec<Check>, ForgeError> {
        self.path(repo)?;
        self.store
            .commit_checks(repo, sha)
            .await
            .map_err(store_error)
    }

    async fn create_deployment(
        &self,
        repo: &RepoName,
        request: &NewDeployment,
    ) -> Result<Deployment, ForgeError> {
        self.path(repo)?;
        let _one_at_a_time = self.creating.lock().await;
        // A repeated request gets the first answer, even if checks or the
        // ref moved since.
        if let Some(existing) = self
            .store
            .local_deployment_by_request(repo, &request.request_key)
            .await
            .map_err(store_error)?
        {
            return Ok(existing);
        }
        let sha = self.resolve_ref(repo, &request.git_ref).await?;
        let checks = self.commit_checks(repo, &sha).await?;
        let failing = crate::policy::blocking_checks(&checks, request.required_contexts.as_deref());
        if !failing.is_empty() {
            return Err(ForgeError::ChecksFailed { checks: failing });
        }
        let deployment = self
            .store
            .insert_local_deployment(repo, request, &sha, now_millis())
            .await
            .map_err(store_error)?;
        self.send(ForgeEvent::Deployment {
            repo: repo.clone(),
            deployment: deployment.clone(),
        });
        Ok(deployment)
    }

    async fn list_deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, ForgeError> {
        self.path(repo)?;
        self.store
            .list_local_deployments(repo, filter)
            .await
            .map_err(store_error)
    }

    async fn deployment_statuses(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> Result<Vec<(NewStatus, Timestamp)>, ForgeError> {
        self.path(repo)?;
        self.store
            .local_statuses(repo, id)
            .await
            .map_err(store_error)
    }

    async fn create_status(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        status: &NewStatus,
    ) -> Result<(), ForgeError> {
        self.path(repo)?;
        let not_found = || ForgeError::NotFound {
            what: format!("deployment {id} of {repo}"),
        };
        self.store
            .local_deployment(repo, id)
            .await
            .map_err(store_error)?
            .ok_or_else(not_found)?;
        let at = now_millis();
        self.store
            .insert_local_status(repo, id, status, at)
            .await
            .map_err(store_error)?;
        // Read back so the event carries the deployment with its new state.
        let deployment = self
            .store
            .local_deployment(repo, id)
            .await
            .map_err(store_error)?
            .ok_or_else(not_found)?;
        self.send(ForgeEvent::DeploymentStatus {
            repo: repo.clone(),
            deployment,
            status: status.clone(),
            at,
        });
        Ok(())
    }
}
