//! A fake Slack Web API: `chat.postMessage`, `chat.postEphemeral` and
//! `chat.update`,
//! recording what hoist sent, checking the bot token, and answering 429
//! with `Retry-After` or 500 when told to.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

pub const BOT_TOKEN: &str = "xoxb-fake-bot-token-0000";

/// A call hoist made.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `chat.postMessage`, `chat.postEphemeral` or `chat.update`.
    pub method: String,
    pub channel: String,
    /// Set for ephemeral messages.
    pub user: Option<String>,
    pub text: String,
    /// Block Kit blocks, when sent.
    pub blocks: Option<Value>,
    /// The message's ts: the one given to a new message, or the one updated.
    pub ts: String,
    /// The thread a message replies in.
    pub thread_ts: Option<String>,
    /// When the call arrived (for the benchmark's latencies).
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Model {
    sent: Vec<Sent>,
    /// Answers for the next calls, in order: (status, Retry-After).
    scripted: Vec<(u16, Option<u64>)>,
    /// While set, every call is answered 429 with `Retry-After: 1`.
    rate_limited: bool,
    refused: usize,
}

pub struct FakeSlack {
    address: SocketAddr,
    model: Arc<Mutex<Model>>,
}

impl FakeSlack {
    pub async fn start() -> Self {
        let model = Arc::new(Mutex::new(Model::default()));
        let address = super::listen(
            Router::new()
                .route("/api/{method}", post(method))
                .with_state(Arc::clone(&model)),
        )
        .await;
        Self { address, model }
    }

    /// The Web API base URL (`slack.api_url`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.address)
    }

    /// The next call is answered `status` (with `Retry-After` if given).
    pub fn answer_next(&self, status: u16, retry_after: Option<u64>) {
        self.model
            .lock()
            .unwrap()
            .scripted
            .push((status, retry_after));
    }

    /// From now on (until called with `false`), every call is refused
    /// 429 with `Retry-After: 1`, as Slack does when a workspace sends
    /// too much: nothing is posted.
    pub fn rate_limit_all(&self, on: bool) {
        self.model.lock().unwrap().rate_limited = on;
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.model.lock().unwrap().sent.clone()
    }

    /// Messages posted in a deployment's thread so far (without copying
    /// them: the benchmark counts hundreds of thousands).
    pub fn thread_messages(&self) -> usize {
        self.model
            .lock()
            .unwrap()
            .sent
            .iter()
            .filter(|s| s.method == "chat.postMessage" && s.thread_ts.is_some())
            .count()
    }

    /// Calls answered with an error (scripted or a bad token).
    pub fn refused(&self) -> usize {
        self.model.lock().unwrap().refused
    }

    /// Waits until a sent message contains `needle` (or fails after 10 s).
    pub async fn wait_for(&self, needle: &str) -> Sent {
        for _ in 0..200 {
            if let Some(sent) = self.sent().into_iter().find(|s| s.text.contains(needle)) {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Slack never got {needle:?}; it got {:#?}", self.sent());
    }
}

async fn method(
    State(model): State<Arc<Mutex<Model>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut model = model.lock().unwrap();
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {BOT_TOKEN}"));
    if !authorized {
        model.refused += 1;
        return axum::Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    if model.rate_limited {
        model.scripted.insert(0, (429, Some(1)));
    }
    if !model.scripted.is_empty() {
        let (status, retry_after) = model.scripted.remove(0);
        model.refused += 1;
        let mut response = (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"ok": false, "error": "ratelimited"})),
        )
            .into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        return response;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return axum::Json(json!({"ok": false, "error": "invalid_json"})).into_response();
    };
    let channel = request["channel"].as_str().unwrap_or_default().to_owned();
    let text = request["text"].as_str().unwrap_or_default().to_owned();
    let new_ts = format!("1700000000.{:06}", model.sent.len() + 1);
    let ts = match method.as_str() {
        "chat.update" => match request["ts"].as_str() {
            Some(ts)
                if model
                    .sent
                    .iter()
                    .any(|s| s.ts == ts && s.method == "chat.postMessage") =>
            {
                ts.to_owned()
            }
            _ => {
                return axum::Json(json!({"ok": false, "error": "message_not_found"}))
                    .into_response();
            }
        },
        "chat.postMessage" | "chat.postEphemeral" => new_ts,
        _ => return axum::Json(json!({"ok": false, "error": "unknown_method"})).into_response(),
    };
    model.sent.push(Sent {
        method: method.clone(),
        channel: channel.clone(),
        user: request["user"].as_str().map(str::to_owned),
        text: text.clone(),
        blocks: request.get("blocks").cloned(),
        ts: ts.clone(),
        thread_ts: request["thread_ts"].as_str().map(str::to_owned),
        at: std::time::Instant::now(),
    });
    match method.as_str() {
        "chat.postEphemeral" => axum::Json(json!({"ok": true, "message_ts": ts})).into_response(),
        _ => axum::Json(json!({"ok": true, "channel": channel, "ts": ts, "text": text, "message": {"type": "message", "text": text, "ts": ts}}))
            .into_response(),
    }
}
