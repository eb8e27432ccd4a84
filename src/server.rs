//! The HTTP server of `hoist serve`: every route in one readable place.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::app::Hoist;
use crate::domain::{DeploymentId, RepoName};
use crate::store::{DeploymentKey, LogStream};

/// No endpoint of hoist needs a larger body; bigger requests get 413.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(hoist: Arc<Hoist>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/deployments/{forge}/{owner}/{repo}/{id}/log",
            get(deployment_log),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(hoist)
}

/// Serves until the process ends.
pub async fn serve(hoist: Arc<Hoist>, listener: TcpListener) -> anyhow::Result<()> {
    axum::serve(listener, router(hoist)).await?;
    Ok(())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(hoist): State<Arc<Hoist>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        hoist.metrics.render(),
    )
        .into_response()
}

/// A run's output as plain text, one line per line the command printed.
async fn deployment_log(
    State(hoist): State<Arc<Hoist>>,
    Path((forge, owner, repo, id)): Path<(String, String, String, i64)>,
) -> Response {
    let Some(repo) = RepoName::new(&owner, &repo) else {
        return (StatusCode::NOT_FOUND, "no such repository\n").into_response();
    };
    let key = DeploymentKey {
        forge,
        repo,
        id: DeploymentId(id),
    };
    match hoist.store.read_log(&key).await {
        Ok(lines) if lines.is_empty() => {
            (StatusCode::NOT_FOUND, "no log for this deployment\n").into_response()
        }
        Ok(lines) => {
            let text: String = lines
                .iter()
                .map(|line| {
                    let stream = match line.stream {
                        LogStream::Stdout => "out",
                        LogStream::Stderr => "err",
                        LogStream::Hoist => "hoist",
                    };
                    format!("{} {stream:>5} | {}\n", line.at, line.text)
                })
                .collect();
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "cannot read a deployment log");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the log\n").into_response()
        }
    }
}
