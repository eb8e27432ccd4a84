//! Talking to GitHub's REST API: authentication, time limits, rate-limit
//! waits, one retry where it is safe, and ETag caching.
//!
//! octocrab carries the requests (base URL, auth header, GitHub App JWTs
//! and installation tokens cached until shortly before they expire); its
//! raw `execute` is used so every status code and header reaches
//! [`Answer`], where the forge maps it to a reply a person can act on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use octocrab::Octocrab;
use octocrab::models::{AppId, InstallationId};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::wire::{ErrorBody, Installation};
use super::{GitHubAuth, GitHubSettings};
use crate::domain::RepoName;
use crate::forge::ForgeError;

/// No GitHub answer hoist reads comes near this; a larger one is refused.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Entries in the ETag cache before it starts over.
const MAX_CACHED: usize = 1024;

/// A cached answer: its ETag, its body, and when GitHub last confirmed it.
#[derive(Debug, Clone)]
struct Cached {
    etag: String,
    body: Vec<u8>,
    confirmed: Instant,
}

/// One HTTP exchange's result.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, ForgeError> {
        serde_json::from_slice(&self.body).map_err(|_| ForgeError::Unavailable {
            detail: format!("GitHub sent {what} hoist could not read"),
        })
    }

    pub fn error(&self) -> ErrorBody {
        ErrorBody::parse(&self.body)
    }
}

/// What to ask.
pub(super) struct Call<'a> {
    pub method: Method,
    /// Path and query below `api_url`: `/repos/acme/api/deployments`.
    pub path: String,
    pub accept: &'a str,
    pub body: Option<&'a Value>,
}

impl<'a> Call<'a> {
    pub fn get(path: String) -> Self {
        Self {
            method: Method::GET,
            path,
            accept: "application/vnd.github+json",
            body: None,
        }
    }

    pub fn post(path: String, body: &'a Value) -> Self {
        Self {
            method: Method::POST,
            path,
            accept: "application/vnd.github+json",
            body: Some(body),
        }
    }

    pub fn patch(path: String, body: &'a Value) -> Self {
        Self {
            method: Method::PATCH,
            ..Self::post(path, body)
        }
    }
}

enum Auth {
    /// The client, and the token again for git over HTTPS.
    Token(Arc<Octocrab>, secrecy::SecretString),
    /// The app's JWT client, and one installation client per repository
    /// with its installation id (each caches its installation token).
    App {
        app: Box<Octocrab>,
        installations: tokio::sync::Mutex<HashMap<String, (u64, Arc<Octocrab>)>>,
    },
}

pub(super) struct Client {
    auth: Auth,
    request_timeout: Duration,
    max_rate_limit_wait: Duration,
    /// GETs answered 200 with an ETag, by path.
    etags: std::sync::Mutex<HashMap<String, Cached>>,
}

impl Client {
    pub fn new(settings: &GitHubSettings) -> anyhow::Result<Self> {
        let builder = || {
            Octocrab::builder()
                .base_uri(settings.api_url.as_str())
                .map_err(|_| anyhow::anyhow!("github.api_url: `{}` is not a URL", settings.api_url))
                .map(|b| {
                    b.set_connect_timeout(Some(settings.request_timeout))
                        .set_read_timeout(Some(settings.request_timeout))
                })
        };
        let auth = match &settings.auth {
            GitHubAuth::Token(token) => Auth::Token(
                Arc::new(
                    builder()?
                        .personal_token(token.expose_secret().to_owned())
                        .build()
                        .map_err(|_| anyhow::anyhow!("cannot build the GitHub client"))?,
                ),
                token.clone(),
            ),
            GitHubAuth::App {
                app_id,
                private_key_pem,
            } => {
                let key =
                    octocrab::EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                        .map_err(|_| {
                            anyhow::anyhow!(
                                "github.private_key_path: not an RSA private key in PEM form"
                            )
                        })?;
                Auth::App {
                    app: Box::new(
                        builder()?
                            .app(AppId(*app_id), key)
                            .build()
                            .map_err(|_| anyhow::anyhow!("cannot build the GitHub client"))?,
                    ),
                    installations: tokio::sync::Mutex::default(),
                }
            }
        };
        Ok(Self {
            auth,
            request_timeout: settings.request_timeout,
            max_rate_limit_wait: settings.max_rate_limit_wait,
            etags: std::sync::Mutex::default(),
        })
    }

    /// Sends `call` on behalf of `repo`'s installation (or the token) and
    /// returns any answer that is not a transport, auth, rate-limit or
    /// server failure; those become the matching [`ForgeError`].
    pub async fn send(&self, repo: &RepoName, call: &Call<'_>) -> Result<Answer, ForgeError> {
        let crab = self.client_for(repo).await?;
        self.send_with(&crab, call, None).await
    }

    /// A GET answered from the cache when GitHub says 304 Not Modified
    /// (which does not count against the rate limit).
    pub async fn get_cached(&self, repo: &RepoName, call: &Call<'_>) -> Result<Answer, ForgeError> {
        self.get_fresh(repo, call, Duration::ZERO).await
    }

    /// Like [`Client::get_cached`], but an answer GitHub confirmed less
    /// than `fresh_for` ago is used without asking again: a burst of
    /// commands costs one round trip, not one each.
    pub async fn get_fresh(
        &self,
        repo: &RepoName,
        call: &Call<'_>,
        fresh_for: Duration,
    ) -> Result<Answer, ForgeError> {
        let cached = self.lock_etags().get(&call.path).cloned();
        if let Some(hit) = cached
            .as_ref()
            .filter(|hit| hit.confirmed.elapsed() < fresh_for)
        {
            return Ok(Answer {
                status: StatusCode::OK,
                body: hit.body.clone(),
            });
        }
        let crab = self.client_for(repo).await?;
        self.revalidate(&crab, call, cached).await
    }

    /// Like [`Client::get_cached`], for an organization's endpoint
    /// (`/orgs/{org}/...`): as a GitHub App, through the installation on
    /// that organization.
    pub async fn get_cached_in_org(
        &self,
        org: &str,
        call: &Call<'_>,
    ) -> Result<Answer, ForgeError> {
        let cached = self.lock_etags().get(&call.path).cloned();
        let crab = self.client_for_org(org).await?;
        self.revalidate(&crab, call, cached).await
    }

    /// Sends a GET with the cached answer's ETag, if there is one, and
    /// answers from the cache on 304.
    async fn revalidate(
        &self,
        crab: &Octocrab,
        call: &Call<'_>,
        cached: Option<Cached>,
    ) -> Result<Answer, ForgeError> {
        let answer = self
            .send_with(crab, call, cached.as_ref().map(|hit| hit.etag.as_str()))
            .await?;
        if answer.status == StatusCode::NOT_MODIFIED {
            return match cached {
                Some(hit) => {
                    if let Some(entry) = self.lock_etags().get_mut(&call.path) {
                        entry.confirmed = Instant::now();
                    }
                    Ok(Answer {
                        status: StatusCode::OK,
                        body: hit.body,
                    })
                }
                None => Err(ForgeError::Unavailable {
                    detail: "GitHub said 304 to a request hoist had not cached".into(),
                }),
            };
        }
        Ok(answer)
    }

    fn lock_etags(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // A poisoned cache is still a valid cache: every entry is whole.
        self.etags
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn client_for(&self, repo: &RepoName) -> Result<Arc<Octocrab>, ForgeError> {
        match &self.auth {
            Auth::Token(crab, _) => Ok(Arc::clone(crab)),
            Auth::App { app, installations } => {
                let key = repo.to_string().to_lowercase();
                let mut installations = installations.lock().await;
                if let Some((_, crab)) = installations.get(&key) {
                    return Ok(Arc::clone(crab));
                }
                let answer = self
                    .send_with(app, &Call::get(format!("/repos/{repo}/installation")), None)
                    .await?;
                if answer.status == StatusCode::NOT_FOUND {
                    return Err(ForgeError::NotFound {
                        what: format!("an installation of hoist's GitHub App on {repo}"),
                    });
                }
                expect_success(&answer)?;
                let installation: Installation = answer.json("an installation")?;
                let crab = installation_client(app, installation.id)?;
                installations.insert(key, (installation.id, Arc::clone(&crab)));
                Ok(crab)
            }
        }
    }

    /// The client for an organization's endpoints: the token, or the
    /// app's installation on `org`. An app has one installation per
    /// account, so one already known for a repository of `org` is it;
    /// otherwise GitHub is asked once (`GET /orgs/{org}/installation`).
    async fn client_for_org(&self, org: &str) -> Result<Arc<Octocrab>, ForgeError> {
        match &self.auth {
            Auth::Token(crab, _) => Ok(Arc::clone(crab)),
            Auth::App { app, installations } => {
                // Repositories are keyed `owner/name`, organizations
                // `owner`: the two never collide.
                let key = org.to_lowercase();
                let prefix = format!("{key}/");
                let mut installations = installations.lock().await;
                let known = installations
                    .iter()
                    .find(|(repo, _)| repo.starts_with(&prefix))
                    .map(|(_, entry)| entry)
                    .or_else(|| installations.get(&key));
                if let Some((_, crab)) = known {
                    return Ok(Arc::clone(crab));
                }
                let path = format!(
                    "/orgs/{}/installation",
                    percent_encoding::utf8_percent_encode(org, super::QUERY)
                );
                let answer = self.send_with(app, &Call::get(path), None).await?;
                if answer.status == StatusCode::NOT_FOUND {
                    return Err(ForgeError::NotFound {
                        what: format!(
                            "an installation of hoist's GitHub App on the organization {org}"
                        ),
                    });
                }
                expect_success(&answer)?;
                let installation: Installation = answer.json("an installation")?;
                let crab = installation_client(app, installation.id)?;
                installations.insert(key, (installation.id, Arc::clone(&crab)));
                Ok(crab)
            }
        }
    }

    /// The token git presents to fetch `repo`: the personal token, or
    /// the installation's token (octocrab's, renewed when it is about to
    /// expire).
    pub async fn git_token(&self, repo: &RepoName) -> Result<secrecy::SecretString, ForgeError> {
        if let Auth::Token(_, token) = &self.auth {
            return Ok(token.clone());
        }
        let crab = self.client_for(repo).await?;
        crab.installation_token()
            .await
            .map_err(|_| ForgeError::Unavailable {
                detail: format!("GitHub gave no installation token for {repo}"),
            })
    }

    /// Takes `repo`'s installation id from a webhook (every delivery to a
    /// GitHub App names it), so no request is spent looking it up. A
    /// token needs none; an id already known is kept with its token.
    pub async fn use_installation(&self, repo: &RepoName, id: u64) -> Result<(), ForgeError> {
        let Auth::App { app, installations } = &self.auth else {
            return Ok(());
        };
        let key = repo.to_string().to_lowercase();
        let mut installations = installations.lock().await;
        if installations
            .get(&key)
            .is_some_and(|(known, _)| *known == id)
        {
            return Ok(());
        }
        installations.insert(key, (id, installation_client(app, id)?));
        Ok(())
    }

    async fn send_with(
        &self,
        crab: &Octocrab,
        call: &Call<'_>,
        if_none_match: Option<&str>,
    ) -> Result<Answer, ForgeError> {
        let mut retried = false;
        loop {
            let (status, headers, body) = self.exchange(crab, call, if_none_match).await?;
            if let Some(wait) = rate_limit_wait(status, &headers) {
                if !retried && wait <= self.max_rate_limit_wait {
                    tracing::info!(wait_secs = wait.as_secs(), path = %call.path, "GitHub rate limit: waiting");
                    tokio::time::sleep(wait).await;
                    retried = true;
                    continue;
                }
                return Err(ForgeError::RateLimited { retry_after: wait });
            }
            if status.is_server_error() {
                // A GET changes nothing, so one more try is safe; a POST
                // may have been applied before the server failed, and
                // the caller's idempotency check must decide.
                if call.method == Method::GET && !retried {
                    retried = true;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                return Err(ForgeError::Unavailable {
                    detail: format!("GitHub answered {}", status.as_u16()),
                });
            }
            if status == StatusCode::UNAUTHORIZED {
                return Err(ForgeError::Unauthorized {
                    message: format!(
                        "GitHub answered 401 ({})",
                        ErrorBody::parse(&body).summary()
                    ),
                });
            }
            if status.is_success()
                && call.method == Method::GET
                && let Some(etag) = headers.get(header::ETAG).and_then(|v| v.to_str().ok())
            {
                let mut etags = self.lock_etags();
                if etags.len() >= MAX_CACHED {
                    etags.clear();
                }
                etags.insert(
                    call.path.clone(),
                    Cached {
                        etag: etag.to_owned(),
                        body: body.clone(),
                        confirmed: Instant::now(),
                    },
                );
            }
            return Ok(Answer { status, body });
        }
    }

    /// One request and its whole body, within the time limit.
    async fn exchange(
        &self,
        crab: &Octocrab,
        call: &Call<'_>,
        if_none_match: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), ForgeError> {
        let unavailable = |detail: &str| ForgeError::Unavailable {
            detail: detail.to_owned(),
        };
        let mut builder = http::Request::builder()
            .method(call.method.clone())
            .uri(call.path.as_str())
            .header(header::ACCEPT, call.accept)
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(etag) = if_none_match {
            builder = builder.header(header::IF_NONE_MATCH, etag);
        }
        let request = crab
            .build_request(builder, call.body)
            .map_err(|_| unavailable("hoist could not build the request"))?;
        let exchange = async {
            let response = crab.execute(request).await.map_err(|error| {
                // octocrab reports a refused installation token as an error
                // of its own; say so without its details (URLs, no secrets,
                // but noise for the person reading).
                if let octocrab::Error::GitHub { source, .. } = &error {
                    return ForgeError::Unauthorized {
                        message: format!(
                            "GitHub refused the app's installation token ({})",
                            source.message
                        ),
                    };
                }
                tracing::debug!(error = %error, "GitHub request failed");
                unavailable("GitHub could not be reached")
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|_| unavailable("GitHub's answer was cut off or too large"))?
                .to_bytes()
                .to_vec();
            Ok((parts.status, parts.headers, body))
        };
        tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| ForgeError::Unavailable {
                detail: format!(
                    "GitHub did not answer within {} s",
                    self.request_timeout.as_secs_f32()
                ),
            })?
    }
}

/// A client that acts as one installation of the app (octocrab fetches
/// and renews its token).
fn installation_client(app: &Octocrab, id: u64) -> Result<Arc<Octocrab>, ForgeError> {
    app.installation(InstallationId(id))
        .map(Arc::new)
        .map_err(|_| ForgeError::Unauthorized {
            message: "the GitHub App cannot act as its installation".into(),
        })
}

/// How long GitHub asks us to wait, when an answer is a rate limit:
/// `Retry-After` (secondary limits), else `X-RateLimit-Reset` when
/// `X-RateLimit-Remaining` is 0 (primary limit).
fn rate_limit_wait(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let number =
        |name: &str| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    if let Some(seconds) = number("retry-after") {
        return Some(Duration::from_secs(seconds.max(0).unsigned_abs()));
    }
    if number("x-ratelimit-remaining") == Some(0) {
        let reset = number("x-ratelimit-reset")?;
        let now = jiff::Timestamp::now().as_second();
        return Some(Duration::from_secs((reset - now).max(1).unsigned_abs()));
    }
    // A 429 without headers is still a limit; GitHub's advice is a minute.
    (status == StatusCode::TOO_MANY_REQUESTS).then(|| Duration::from_secs(60))
}

/// Any answer outside 2xx that the caller has no specific meaning for.
pub(super) fn expect_success(answer: &Answer) -> Result<(), ForgeError> {
    if answer.status.is_success() {
        return Ok(());
    }
    let summary = answer.error().summary();
    Err(match answer.status {
        StatusCode::FORBIDDEN => ForgeError::Unauthorized {
            message: format!("GitHub answered 403 ({summary})"),
        },
        status => ForgeError::Rejected {
            message: format!("GitHub answered {} ({summary})", status.as_u16()),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn rate_limits_are_read_from_either_header() {
        let retry = headers(&[("retry-after", "7".into())]);
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &retry),
            Some(Duration::from_secs(7))
        );
        let reset = jiff::Timestamp::now().as_second() + 30;
        let primary = headers(&[
            ("x-ratelimit-remaining", "0".into()),
            ("x-ratelimit-reset", reset.to_string()),
        ]);
        let wait = rate_limit_wait(StatusCode::FORBIDDEN, &primary).unwrap();
        assert!((29..=31).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &HeaderMap::new()),
            None,
            "a plain 403 is a refusal"
        );
        assert_eq!(rate_limit_wait(StatusCode::OK, &retry), None);
    }
}
