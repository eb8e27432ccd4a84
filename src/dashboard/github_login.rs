//! "Log in with GitHub": GitHub's OAuth web application flow.
//!
//! `GET /login` sends the browser to `{oauth}/login/oauth/authorize` with
//! a random `state`, kept in a short-lived signed cookie; GitHub sends it
//! back to `GET /auth/callback` with a code. hoist checks the state,
//! trades the code for a token, reads who the person is (`GET /user`)
//! and their permission on each repository hoist deploys (`GET
//! /repos/{owner}/{repo}`, whose `permissions` GitHub fills for the
//! token's user; 404 when they cannot read it), puts those in the
//! session, and drops the token: hoist keeps no GitHub token of anyone's.
//!
//! The requests go through hoist's one HTTPS client (hyper-rustls), not
//! octocrab: the token exchange is not part of the REST API, and three
//! plain calls need none of octocrab's machinery.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, SameSite, SignedCookieJar};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::Dashboard;
use super::layout;
use super::refusal::Refusal;
use super::session::{Session, cookie_duration, decode, encode, random_token, removal};
use crate::config::Config;
use crate::domain::{Permission, RepoName};
use crate::http_client::HttpsClient;

const LOGIN_COOKIE: &str = "hoist_login";
/// How long a login may take at GitHub.
const LOGIN_SECS: i64 = 10 * 60;
/// GitHub's answers here are small; a larger one is not GitHub's.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// What the token may do: read the private repositories the person can
/// (an OAuth app needs `repo` for that; a GitHub App's user token
/// ignores scopes). The token lives only while the login is checked.
const SCOPE: &str = "repo";

/// The OAuth app and where GitHub is.
pub struct GitHubLogin {
    client_id: String,
    client_secret: SecretString,
    oauth_base: String,
    api_base: String,
    callback: String,
    http: HttpsClient,
    timeout: Duration,
}

/// A login under way, in its signed cookie.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    /// Where to go after: a path of this dashboard.
    next: String,
    expires_at: i64,
}

impl GitHubLogin {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let dashboard = &config.dashboard;
        let (Some(client_id), Some(client_secret)) =
            (&dashboard.client_id, &dashboard.client_secret)
        else {
            anyhow::bail!("dashboard.client_id and dashboard.client_secret are needed");
        };
        Ok(Self {
            client_id: client_id.clone(),
            client_secret: client_secret.clone(),
            oauth_base: dashboard.oauth_base(&config.github.api_url),
            api_base: config.github.api_url.trim_end_matches('/').to_owned(),
            callback: format!(
                "{}/auth/callback",
                config.server.public_url.trim_end_matches('/')
            ),
            http: crate::http_client::https()?,
            timeout: Duration::from_secs(config.github.request_timeout_secs.max(1)),
        })
    }
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// A path of this site to return to; anything else (another site, a
/// protocol-relative `//host`) is the overview.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && path.len() < 500 =>
        {
            path.to_owned()
        }
        _ => "/".into(),
    }
}

/// `GET /login`: off to GitHub.
pub async fn start(
    State(dashboard): State<Arc<Dashboard>>,
    query: Result<Query<StartQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(login) = &dashboard.login else {
        // The local forge: nobody logs in.
        return Redirect::to("/").into_response();
    };
    let next = safe_next(query.ok().and_then(|Query(q)| q.next).as_deref());
    let pending = Pending {
        state: random_token(),
        next,
        expires_at: Timestamp::now().as_second() + LOGIN_SECS,
    };
    let query = serde_urlencoded::to_string([
        ("client_id", login.client_id.as_str()),
        ("redirect_uri", login.callback.as_str()),
        ("state", pending.state.as_str()),
        ("scope", SCOPE),
        ("allow_signup", "false"),
    ])
    .unwrap_or_default();
    let jar = SignedCookieJar::new(dashboard.key.clone()).add(
        Cookie::build((LOGIN_COOKIE, encode(&pending)))
            .path("/auth")
            .http_only(true)
            // Lax: GitHub's redirect back is a top-level GET, which
            // carries it.
            .same_site(SameSite::Lax)
            .secure(dashboard.secure_cookies())
            .max_age(cookie_duration(LOGIN_SECS)),
    );
    let to = format!("{}/login/oauth/authorize?{query}", login.oauth_base);
    (jar, Redirect::to(&to)).into_response()
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: back from GitHub.
pub async fn callback(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(login) = &dashboard.login else {
        return Redirect::to("/").into_response();
    };
    let Ok(Query(query)) = query else {
        return Refusal::BadRequest("GitHub's answer did not parse. Log in again.".into())
            .into_response();
    };
    let jar = SignedCookieJar::from_headers(&headers, dashboard.key.clone());
    let pending = jar
        .get(LOGIN_COOKIE)
        .and_then(|cookie| decode::<Pending>(cookie.value()))
        .filter(|pending| pending.expires_at > Timestamp::now().as_second());
    let jar = jar.remove(Cookie::build((LOGIN_COOKIE, "")).path("/auth"));
    let Some(pending) = pending else {
        return login_refused(
            StatusCode::BAD_REQUEST,
            "This login did not start here, or took over ten minutes. Nothing was done.",
        );
    };
    let state = query.state.unwrap_or_default();
    if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
        return login_refused(
            StatusCode::BAD_REQUEST,
            "This answer from GitHub is not for the login this browser started. Nothing was done.",
        );
    }
    if let Some(error) = query.error {
        let text = match error.as_str() {
            "access_denied" => {
                "You did not let hoist see who you are on GitHub, so you are not logged in."
                    .to_owned()
            }
            _ => format!(
                "GitHub did not log you in ({}).",
                super::deployment::clip(&error)
            ),
        };
        return login_refused(StatusCode::FORBIDDEN, &text);
    }
    let Some(code) = query
        .code
        .filter(|code| !code.is_empty() && code.len() < 200)
    else {
        return login_refused(
            StatusCode::BAD_REQUEST,
            "GitHub sent no code back. Log in again.",
        );
    };
    let session = match login.session_for(&dashboard, &code).await {
        Ok(session) => session,
        Err(problem) => {
            tracing::warn!(problem = %problem, "dashboard: a login failed");
            return login_refused(StatusCode::BAD_GATEWAY, &problem);
        }
    };
    tracing::info!(login = %session.login, "dashboard: logged in");
    let jar = dashboard.issue(jar, &session);
    (jar, Redirect::to(&pending.next)).into_response()
}

fn login_refused(status: StatusCode, text: &str) -> Response {
    let body = maud::html! {
        h1 { "Not logged in" }
        p.refusal role="alert" { (text) }
        p { a href="/login" { "Log in with GitHub" } }
    };
    let jar = removal(LOGIN_COOKIE, "/auth");
    (status, jar, layout::bare("Not logged in", body)).into_response()
}

impl GitHubLogin {
    /// The session of the person whose code this is. The error is for
    /// people: it names what failed, never a code or token.
    async fn session_for(&self, dashboard: &Dashboard, code: &str) -> Result<Session, String> {
        let token = self.exchange(code).await?;
        let user = self
            .get_json("/user", &token)
            .await?
            .ok_or("GitHub did not say who you are")?;
        let login = user
            .get("login")
            .and_then(Value::as_str)
            .filter(|login| !login.is_empty())
            .ok_or("GitHub's answer about you had no login")?
            .to_owned();
        let name = user
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(&login)
            .to_owned();
        let mut repos = BTreeMap::new();
        let mut asked: Vec<&RepoName> = dashboard
            .config()
            .apps
            .values()
            .map(|app| &app.repo)
            .collect();
        asked.sort_by_key(|repo| repo.to_string().to_ascii_lowercase());
        asked.dedup();
        for repo in asked {
            let permission = self.permission(repo, &token).await?;
            if permission >= Permission::Read {
                repos.insert(
                    repo.to_string().to_ascii_lowercase(),
                    permission.as_str().to_owned(),
                );
            }
        }
        Ok(Session {
            login,
            name,
            csrf: random_token(),
            expires_at: dashboard.session_end(Timestamp::now()),
            repos,
            operator: false,
        })
    }

    /// The code traded for the person's token.
    async fn exchange(&self, code: &str) -> Result<SecretString, String> {
        let body = serde_urlencoded::to_string([
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("code", code),
            ("redirect_uri", self.callback.as_str()),
        ])
        .map_err(|_| "cannot write the token request")?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}/login/oauth/access_token", self.oauth_base))
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::USER_AGENT, "hoist")
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| "cannot write the token request")?;
        let (status, answer) = self.send(request).await?;
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|_| format!("GitHub's token answer (HTTP {status}) was not JSON"))?;
        if let Some(token) = answer.get("access_token").and_then(Value::as_str) {
            return Ok(SecretString::from(token.to_owned()));
        }
        let error = answer
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no token");
        Err(match error {
            "bad_verification_code" => "GitHub says the login code is wrong or expired. Log in again.".into(),
            "incorrect_client_credentials" => "GitHub refused hoist's OAuth app credentials (dashboard.client_id / client_secret).".into(),
            "redirect_uri_mismatch" => "GitHub refused the callback URL: the OAuth app's must be server.public_url + /auth/callback.".into(),
            other => format!("GitHub gave no token ({}).", super::deployment::clip(other)),
        })
    }

    /// The person's permission on `repo`; none when GitHub says 404.
    async fn permission(
        &self,
        repo: &RepoName,
        token: &SecretString,
    ) -> Result<Permission, String> {
        let path = format!("/repos/{}/{}", repo.owner(), repo.name());
        let Some(answer) = self.get_json(&path, token).await? else {
            return Ok(Permission::None);
        };
        let allowed = |key: &str| {
            answer
                .pointer(&format!("/permissions/{key}"))
                .and_then(Value::as_bool)
                .unwrap_or(false)
        };
        Ok(if allowed("admin") {
            Permission::Admin
        } else if allowed("push") || allowed("maintain") {
            Permission::Write
        } else if allowed("pull") || allowed("triage") {
            Permission::Read
        } else {
            Permission::None
        })
    }

    /// A REST GET with the person's token; `None` for a 404.
    async fn get_json(&self, path: &str, token: &SecretString) -> Result<Option<Value>, String> {
        let request = Request::builder()
            .uri(format!("{}{path}", self.api_base))
            .header(header::ACCEPT, "application/vnd.github+json")
            .header(header::USER_AGENT, "hoist")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", token.expose_secret()),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|_| "cannot write a request to GitHub")?;
        let (status, body) = self.send(request).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => serde_json::from_slice(&body)
                .map(Some)
                .map_err(|_| format!("GitHub's answer to GET {path} was not JSON")),
            StatusCode::UNAUTHORIZED => {
                Err("GitHub did not take the token it had just given".into())
            }
            status => Err(format!("GitHub answered GET {path} with HTTP {status}")),
        }
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String> {
        let what = format!("{} {}", request.method(), request.uri().path());
        let response = tokio::time::timeout(self.timeout, self.http.request(request))
            .await
            .map_err(|_| format!("GitHub did not answer {what} in time"))?
            .map_err(|_| format!("cannot reach GitHub for {what}"))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|_| format!("GitHub's answer to {what} was cut short or too large"))?
            .to_bytes();
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn a_login_returns_only_to_a_page_of_this_dashboard() {
        assert_eq!(safe_next(Some("/history?app=api")), "/history?app=api");
        for elsewhere in [
            "//evil.example/x",
            "https://evil.example/",
            "/\\evil.example",
            "history",
        ] {
            assert_eq!(safe_next(Some(elsewhere)), "/", "{elsewhere}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
