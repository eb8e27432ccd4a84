//! `GET /deployments/{forge}/{owner}/{repo}/{id}/events`: a running
//! deployment's new log lines as server-sent events (`line`, JSON with
//! `stream` and `text`), then `done` when the run ends. The page sends
//! what was printed before it loaded; the stream sends what follows.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;

use super::Dashboard;
use super::deployment::key_from_path;
use crate::app::Hoist;
use crate::store::{DeploymentKey, RunState};

/// How often the stream looks for new lines.
const POLL: Duration = Duration::from_millis(250);
/// A stream ends after this long whatever the run does (a replica that
/// died holding it); the browser's EventSource connects again.
const MAX_STREAM: Duration = Duration::from_secs(30 * 60);

pub async fn events(
    State(dashboard): State<Arc<Dashboard>>,
    Path(path): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let visit = match dashboard.visit(&headers, "/") {
        Ok(visit) => visit,
        Err(refusal) => return refusal.into_plain(),
    };
    let key = match key_from_path(&visit.viewer, path) {
        Ok(key) => key,
        Err(refusal) => return refusal.into_plain(),
    };
    // Lines already on the page are skipped: the page read them all.
    let seen = match dashboard.hoist.store.read_log(&key, 0).await {
        Ok(lines) => lines.len(),
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "dashboard: cannot read a log");
            return super::refusal::Refusal::Failed("cannot read the log".into()).into_plain();
        }
    };
    let skip = headers
        .get("last-event-id")
        .and_then(|id| id.to_str().ok())
        .and_then(|id| id.parse::<usize>().ok())
        .unwrap_or(seen);
    let stream = follow(Arc::clone(&dashboard.hoist), key, skip);
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

struct Following {
    hoist: Arc<Hoist>,
    key: DeploymentKey,
    /// Lines sent (and skipped) so far.
    seen: usize,
    /// Lines read and not sent yet.
    buffer: std::collections::VecDeque<crate::store::LogLine>,
    done: bool,
    until: tokio::time::Instant,
}

fn follow(
    hoist: Arc<Hoist>,
    key: DeploymentKey,
    seen: usize,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = Following {
        hoist,
        key,
        seen,
        buffer: Default::default(),
        done: false,
        until: tokio::time::Instant::now() + MAX_STREAM,
    };
    futures_util::stream::unfold(Some(start), |state| async move {
        let mut following = state?;
        loop {
            if let Some(line) = following.buffer.pop_front() {
                // One event per line, its number the id a reconnecting
                // browser sends back as Last-Event-ID.
                following.seen += 1;
                let data = serde_json::json!({ "stream": line.stream, "text": line.text });
                let event = Event::default()
                    .event("line")
                    .id(following.seen.to_string())
                    .data(data.to_string());
                return Some((Ok(event), Some(following)));
            }
            if following.done {
                let ended = ended_text(&following).await;
                return Some((Ok(Event::default().event("done").data(ended)), None));
            }
            // Whether it still runs is read before the lines, so the last
            // lines of a run that just ended are still sent.
            let state = following.hoist.store.run_state(&following.key).await;
            following.done = tokio::time::Instant::now() >= following.until
                || !matches!(state, Ok(Some(RunState::Queued | RunState::Running)));
            match following
                .hoist
                .store
                .read_log(&following.key, following.seen)
                .await
            {
                Ok(lines) if !lines.is_empty() => following.buffer.extend(lines),
                Ok(_) if !following.done => tokio::time::sleep(POLL).await,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "dashboard: a log stream stopped"
                    );
                    following.done = true;
                }
            }
        }
    })
}

/// What the page says when the run ends: the deployment's latest state.
async fn ended_text(following: &Following) -> String {
    let latest = following
        .hoist
        .store
        .deployment_statuses(&following.key)
        .await
        .ok()
        .and_then(|statuses| statuses.last().map(|(status, _)| status.state));
    format!("The run has ended ({}).", super::view::state_word(latest))
}
