//! Who is looking: a session in a signed, HttpOnly, SameSite cookie.
//!
//! The cookie holds the person's login, a CSRF token every form carries
//! back, when the session ends, and their permission on each repository
//! hoist deploys, read from GitHub with their token when they logged in
//! (the token itself is dropped then: hoist never stores it). The value
//! is signed (HMAC-SHA256, axum-extra's `SignedCookieJar`), so a changed
//! byte makes it no session at all, and its end is inside the signed
//! value, so an old cookie cannot be made to last.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, Key, SameSite, SignedCookieJar};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};
use std::sync::Arc;

use super::Dashboard;
use super::refusal::Refusal;
use crate::config::DashboardConfig;
use crate::domain::{Actor, Permission, RepoName};

pub const SESSION_COOKIE: &str = "hoist_session";

/// A logged-in person (or, with the local forge, its operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub login: String,
    pub name: String,
    /// Every form carries it back; a form without it changes nothing.
    pub csrf: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Lower-case `owner/name` -> GitHub's word for the permission.
    #[serde(default)]
    pub repos: BTreeMap<String, String>,
    /// The local forge's operator: may see and do everything.
    #[serde(default)]
    pub operator: bool,
}

impl Session {
    pub fn permission(&self, repo: &RepoName) -> Permission {
        if self.operator {
            return Permission::Admin;
        }
        self.repos
            .get(&repo.to_string().to_ascii_lowercase())
            .map_or(Permission::None, |word| Permission::parse(word))
    }

    /// Who the workflow sees acting.
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.login.clone(),
            name: self.login.clone(),
            login: (!self.operator).then(|| self.login.clone()),
        }
    }
}

/// Who is looking at a page.
#[derive(Debug, Clone)]
pub enum Viewer {
    Person(Session),
    /// Nobody logged in, on a public dashboard: may look, not act.
    Anonymous,
}

impl Viewer {
    pub fn session(&self) -> Option<&Session> {
        match self {
            Self::Person(session) => Some(session),
            Self::Anonymous => None,
        }
    }

    pub fn can_read(&self, repo: &RepoName) -> bool {
        match self {
            Self::Person(session) => session.permission(repo) >= Permission::Read,
            Self::Anonymous => true,
        }
    }

    /// Whether the page offers this person actions on `repo` (the
    /// workflow's rules still judge each).
    pub fn can_act(&self, repo: &RepoName) -> bool {
        self.session()
            .is_some_and(|session| session.permission(repo) >= Permission::Write)
    }
}

/// A visit: who it is, and the cookie to set when hoist just made their
/// session (the local operator's).
pub struct Visit {
    pub viewer: Viewer,
    minted: Option<SignedCookieJar>,
}

impl Visit {
    /// `response`, with the new session's cookie if one was made.
    pub fn respond(self, response: impl IntoResponse) -> Response {
        match self.minted {
            Some(jar) => (jar, response).into_response(),
            None => response.into_response(),
        }
    }
}

/// The cookie key: from `dashboard.session_key` (SHA-512 stretches it to
/// the 64 bytes `Key` takes; the key is already high-entropy text, so
/// no slow KDF is needed), else random for this process.
pub fn key(config: &DashboardConfig) -> anyhow::Result<Key> {
    match &config.session_key {
        Some(secret) => Ok(Key::from(&Sha512::digest(
            secret.expose_secret().as_bytes(),
        ))),
        None => {
            let mut bytes = [0u8; 64];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| anyhow::anyhow!("no random bytes for the dashboard's cookie key"))?;
            Ok(Key::from(&bytes))
        }
    }
}

/// 32 random bytes as hex: CSRF tokens, OAuth states, form nonces.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // ring's system randomness fails only without /dev/urandom, where
    // nothing else of hoist would work either.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        panic!("the system has no source of random bytes");
    }
    hex::encode(bytes)
}

/// A value inside a signed cookie: JSON, base64url, so any text fits.
pub fn encode<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

pub fn decode<T: for<'de> Deserialize<'de>>(text: &str) -> Option<T> {
    let json = URL_SAFE_NO_PAD.decode(text).ok()?;
    serde_json::from_slice(&json).ok()
}

impl Dashboard {
    /// Who is asking for `path`, or the refusal: a login first where
    /// nothing is public, or a clear word about a cookie that is not
    /// hoist's or ran out.
    pub fn visit(&self, headers: &HeaderMap, path: &str) -> Result<Visit, Refusal> {
        let now = Timestamp::now();
        match (self.session(headers, now), &self.login) {
            (Ok(Some(session)), _) => Ok(Visit {
                viewer: Viewer::Person(session),
                minted: None,
            }),
            // The local forge: no login; whoever reaches hoist runs it.
            (_, None) => {
                let session = self.operator_session(now);
                let jar = self.issue(SignedCookieJar::new(self.key.clone()), &session);
                Ok(Visit {
                    viewer: Viewer::Person(session),
                    minted: Some(jar),
                })
            }
            (Err(problem), Some(_)) => Err(problem),
            (Ok(None), Some(_)) if self.config().dashboard.public => Ok(Visit {
                viewer: Viewer::Anonymous,
                minted: None,
            }),
            (Ok(None), Some(_)) => Err(Refusal::LogIn {
                next: path.to_owned(),
            }),
        }
    }

    /// The session the request's cookie carries. A cookie whose
    /// signature fails is [`Refusal::ForgedSession`], one past its end
    /// [`Refusal::ExpiredSession`].
    fn session(&self, headers: &HeaderMap, now: Timestamp) -> Result<Option<Session>, Refusal> {
        let plain = CookieJar::from_headers(headers);
        if plain.get(SESSION_COOKIE).is_none() {
            return Ok(None);
        }
        let signed = SignedCookieJar::from_headers(headers, self.key.clone());
        let session = signed
            .get(SESSION_COOKIE)
            .and_then(|cookie| decode::<Session>(cookie.value()))
            .ok_or(Refusal::ForgedSession)?;
        if session.expires_at <= now.as_second() {
            return Err(Refusal::ExpiredSession);
        }
        Ok(Some(session))
    }

    fn operator_session(&self, now: Timestamp) -> Session {
        let name = std::env::var("USER")
            .ok()
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| "operator".into());
        Session {
            login: name.clone(),
            name,
            csrf: random_token(),
            expires_at: self.session_end(now),
            repos: BTreeMap::new(),
            operator: true,
        }
    }

    pub fn session_end(&self, now: Timestamp) -> i64 {
        let hours = i64::try_from(self.config().dashboard.session_hours).unwrap_or(i64::MAX / 7200);
        now.as_second().saturating_add(hours.saturating_mul(3600))
    }

    /// `jar` with `session` as its cookie.
    pub fn issue(&self, jar: SignedCookieJar, session: &Session) -> SignedCookieJar {
        let hours = i64::try_from(self.config().dashboard.session_hours).unwrap_or(24);
        jar.add(
            Cookie::build((SESSION_COOKIE, encode(session)))
                .path("/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .secure(self.secure_cookies())
                .max_age(cookie_duration(hours * 3600)),
        )
    }
}

pub fn cookie_duration(secs: i64) -> cookie::time::Duration {
    cookie::time::Duration::seconds(secs)
}

/// A jar whose one cookie removes `name` (at `path`) from the browser.
pub fn removal(name: &'static str, path: &'static str) -> CookieJar {
    let mut cookie = Cookie::build((name, "")).path(path).build();
    cookie.make_removal();
    CookieJar::new().add(cookie)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: the session cookie removed (with its CSRF token, so
/// another site cannot log people out).
pub async fn logout(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    form: Result<axum::Form<LogoutForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let visit = match dashboard.visit(&headers, "/") {
        Ok(visit) => visit,
        Err(Refusal::ForgedSession | Refusal::ExpiredSession) => {
            return (removal(SESSION_COOKIE, "/"), Redirect::to("/")).into_response();
        }
        Err(refusal) => return refusal.into_response(),
    };
    let Some(session) = visit.viewer.session() else {
        return Redirect::to("/").into_response();
    };
    let form = match form {
        Ok(axum::Form(form)) => form,
        Err(_) => return Refusal::Csrf.into_response(),
    };
    if !csrf_matches(session, &form.csrf) {
        return Refusal::Csrf.into_response();
    }
    (removal(SESSION_COOKIE, "/"), Redirect::to("/")).into_response()
}

/// Whether a form's token is the session's, compared in constant time.
pub fn csrf_matches(session: &Session, token: &str) -> bool {
    use subtle::ConstantTimeEq;
    !token.is_empty() && bool::from(session.csrf.as_bytes().ct_eq(token.as_bytes()))
}
