//! `GET /deployments/{forge}/{owner}/{repo}/{id}/log`: a run's output.
//!
//! Plain text, one line per line the command printed, streamed while the
//! run goes on (the response ends when the run does, so `curl` follows a
//! deployment live); or, for a browser (`Accept: text/html`), a page that
//! refreshes itself while the deployment runs (no script).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::app::Hoist;
use crate::domain::{DeploymentId, RepoName};
use crate::store::{DeploymentKey, LogLine, LogStream, RunState};

/// How often a streamed log looks for new lines.
const STREAM_POLL: Duration = Duration::from_millis(250);
/// A stream ends after this long even if the run seems to go on (a
/// replica that died holding it): a client may ask again.
const MAX_STREAM: Duration = Duration::from_secs(60 * 60);

pub(super) async fn deployment_log(
    State(hoist): State<Arc<Hoist>>,
    Path((forge, owner, repo, id)): Path<(String, String, String, i64)>,
    headers: HeaderMap,
) -> Response {
    let Some(repo) = RepoName::new(&owner, &repo) else {
        return (StatusCode::NOT_FOUND, "no such repository\n").into_response();
    };
    let key = DeploymentKey {
        forge,
        repo,
        id: DeploymentId(id),
    };
    let (lines, running) = match read(&hoist, &key).await {
        Ok(read) => read,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "cannot read a deployment log");
            return (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the log\n").into_response();
        }
    };
    if lines.is_empty() && !running {
        return (StatusCode::NOT_FOUND, "no log for this deployment\n").into_response();
    }
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let text: String = lines.iter().map(render_line).collect();
    if wants_html {
        let page = log_page(&key, &text, running);
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
    }
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    if !running {
        return (content_type, text).into_response();
    }
    let stream = follow(hoist, key, lines.len(), text);
    (content_type, Body::from_stream(stream)).into_response()
}

/// The log so far, and whether the run is still queued or going.
async fn read(hoist: &Hoist, key: &DeploymentKey) -> anyhow::Result<(Vec<LogLine>, bool)> {
    // The state first: a run that ends between the two reads is then
    // read whole, never cut short.
    let running = is_running(hoist, key).await?;
    let lines = hoist.store.read_log(key, 0).await?;
    Ok((lines, running))
}

/// Queued or running in hoist's runner. Only the store is asked: anyone
/// may fetch a log, and following one must not cost GitHub requests (a
/// run the runner never had has no log to follow).
async fn is_running(hoist: &Hoist, key: &DeploymentKey) -> anyhow::Result<bool> {
    Ok(hoist
        .store
        .run_state(key)
        .await?
        .is_some_and(|state| state != RunState::Done))
}

/// Where a streamed log is.
struct Follow {
    hoist: Arc<Hoist>,
    key: DeploymentKey,
    /// Lines sent so far.
    seen: usize,
    /// What was read before the stream began, sent first.
    first: Option<String>,
    done: bool,
    until: tokio::time::Instant,
}

/// The body of a streamed log: what was read already, then each new
/// batch of lines as it is stored, until the run is done.
fn follow(
    hoist: Arc<Hoist>,
    key: DeploymentKey,
    seen: usize,
    first: String,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    let start = Follow {
        hoist,
        key,
        seen,
        first: Some(first),
        done: false,
        until: tokio::time::Instant::now() + MAX_STREAM,
    };
    futures_util::stream::unfold(start, |mut follow| async move {
        if let Some(first) = follow.first.take() {
            return Some((Ok(first), follow));
        }
        while !follow.done {
            // Done is read before the lines, so the last lines of a run
            // that just ended are still sent.
            follow.done = tokio::time::Instant::now() >= follow.until
                || !is_running(&follow.hoist, &follow.key)
                    .await
                    .unwrap_or(false);
            match follow.hoist.store.read_log(&follow.key, follow.seen).await {
                Ok(lines) if !lines.is_empty() => {
                    follow.seen += lines.len();
                    let text = lines.iter().map(render_line).collect();
                    return Some((Ok(text), follow));
                }
                Ok(_) => {}
                Err(error) => {
                    follow.done = true;
                    return Some((Err(std::io::Error::other(error)), follow));
                }
            }
            if !follow.done {
                tokio::time::sleep(STREAM_POLL).await;
            }
        }
        None
    })
}

fn render_line(line: &LogLine) -> String {
    let stream = match line.stream {
        LogStream::Stdout => "out",
        LogStream::Stderr => "err",
        LogStream::Hoist => "hoist",
    };
    format!("{} {stream:>5} | {}\n", line.at, line.text)
}

/// The log as a page: the text as it is, and while the run goes on a
/// refresh every two seconds (no script).
fn log_page(key: &DeploymentKey, text: &str, running: bool) -> String {
    let title = format!("Deployment #{} of {}", key.id, key.repo);
    let (refresh, state) = if running {
        (
            r#"<meta http-equiv="refresh" content="2">"#,
            "Still running: this page refreshes every 2 s.",
        )
    } else {
        ("", "Finished.")
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">{refresh}<title>{title}</title></head>\n\
         <body><h1>{title}</h1><p>{state}</p><pre>{}</pre></body></html>\n",
        escape_html(text),
        title = escape_html(&title),
    )
}

/// Five characters to escape: not worth a crate.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_logs_page_refreshes_and_what_it_shows_is_escaped() {
        let key = DeploymentKey {
            forge: "local".into(),
            repo: "acme/api".parse().unwrap(),
            id: DeploymentId(7),
        };
        let page = log_page(&key, "out | <script>alert('x')</script> & done\n", true);
        assert!(
            page.contains(r#"<meta http-equiv="refresh" content="2">"#),
            "{page}"
        );
        assert!(page.contains("Still running"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; done"),
            "{page}"
        );
        assert!(!page.contains("<script>"), "{page}");
    }
}
