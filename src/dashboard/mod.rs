//! The web dashboard (`[dashboard] enabled`): every app and environment at
//! a glance, a deployment's statuses and live log, history with the
//! delivery figures, and the actions chat has (lock, unlock, approve,
//! reject, cancel, redeploy), each through the same workflow and rules.
//!
//! Pages are rendered on the server (maud); the one script follows a run
//! log over server-sent events. Who sees what: with GitHub, people log
//! in through GitHub's OAuth web flow and see the apps whose repositories
//! they can read there, and act where they can write (the workflow then
//! judges the request as it judges a chat command). With the local forge
//! there is no login: whoever reaches hoist (on a loopback address,
//! config validation makes sure) is its operator.

pub mod chart;
pub mod dora;

mod actions;
mod deployment;
mod github_login;
mod history;
mod layout;
mod live;
mod overview;
mod refusal;
mod session;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::app::Hoist;
use crate::config::ForgeKind;

/// What every dashboard handler shares.
pub struct Dashboard {
    hoist: Arc<Hoist>,
    /// Signs the session and login cookies.
    key: axum_extra::extract::cookie::Key,
    /// GitHub's login, when the forge is GitHub.
    login: Option<github_login::GitHubLogin>,
}

impl Dashboard {
    fn config(&self) -> &crate::config::Config {
        &self.hoist.config
    }

    /// Cookies go over HTTPS only when hoist is reached over HTTPS.
    fn secure_cookies(&self) -> bool {
        self.config().server.public_url.starts_with("https://")
    }
}

/// The dashboard's routes, with their state. `GET /` is the overview.
pub fn router(hoist: Arc<Hoist>) -> anyhow::Result<Router> {
    let config = &hoist.config;
    let key = session::key(&config.dashboard)?;
    let login = match config.forge.kind {
        ForgeKind::Github => Some(github_login::GitHubLogin::new(config)?),
        ForgeKind::Local => None,
    };
    let dashboard = Arc::new(Dashboard { hoist, key, login });
    Ok(Router::new()
        .route("/", get(overview::page))
        .route("/history", get(history::page))
        .route(
            "/deployments/{forge}/{owner}/{repo}/{id}",
            get(deployment::page),
        )
        .route(
            "/deployments/{forge}/{owner}/{repo}/{id}/events",
            get(live::events),
        )
        .route("/login", get(github_login::start))
        .route("/auth/callback", get(github_login::callback))
        .route("/logout", post(session::logout))
        .route("/actions/{action}", post(actions::act))
        .route("/static/dashboard.css", get(layout::stylesheet))
        .route("/static/dashboard.js", get(layout::script))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(dashboard))
}

/// No page of hoist's is framed, sniffed, or runs a script it did not
/// serve itself.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
