//! A fake integration for deploy.yml's `actions` (Vercel's deployment
//! integration actions, as hoist speaks them). It receives hoist's
//! webhooks, checks each one's `X-Hoist-Signature-256`, and answers a
//! `start` as the test planned: after a while it PATCHes the action's
//! URL on hoist (`payload.deployment.url`) with the bearer secret,
//! `succeeded` with secrets or `failed` with a reason, or it never does.
//!
//! The wire contract it holds hoist to:
//! - hoist POSTs JSON with `X-Hoist-Event: <type>`, `X-Hoist-Delivery:
//!   <uuid>` and `X-Hoist-Signature-256: sha256=<hex HMAC-SHA256(secret,
//!   raw body)>`; the body is `{"type", "id", "createdAt", "payload":
//!   {"installationId", "action", "resourceId", "deployment": {"id",
//!   "app", "environment", "ref", "sha", "url"}}}`.
//! - the integration answers with `PATCH <payload.deployment.url>`,
//!   `Authorization: Bearer <secret>`, and `{"status": "succeeded",
//!   "outcomes": [{"kind": "resource-secrets", "secrets": [{"name",
//!   "value"}]}]}` or `{"status": "failed", "reason"}`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const START: &str = "deployment.integration.action.start";
pub const CANCEL: &str = "deployment.integration.action.cancel";
pub const CLEANUP: &str = "deployment.integration.action.cleanup";

/// How long [`FakeIntegration::wait_for`] waits.
const WAIT_LIMIT: Duration = Duration::from_secs(20);
const POLL_EVERY: Duration = Duration::from_millis(50);

/// `sha256=<lowercase hex HMAC-SHA256(secret, body)>`: the value of
/// `X-Hoist-Signature-256`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is `body`'s signature with `secret`, compared in
/// constant time as a real integration should.
fn signature_matches(secret: &str, body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_digest) = header.and_then(|value| value.strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

/// How the integration answers a `start` of one action.
#[derive(Debug, Clone, Default)]
pub enum Plan {
    /// Reports `succeeded` with these secrets (name, value) after `after`.
    Succeed {
        after: Duration,
        secrets: Vec<(String, String)>,
    },
    /// Reports `failed` with `reason` after `after`.
    Fail { after: Duration, reason: String },
    /// Never reports: the deployment waits until its action times out.
    #[default]
    Never,
}

impl Plan {
    /// The PATCH body and the wait before it; `None` for `Never`.
    fn report(&self) -> Option<(Duration, Value)> {
        match self {
            Self::Succeed { after, secrets } => {
                let secrets: Vec<Value> = secrets
                    .iter()
                    .map(|(name, value)| json!({"name": name, "value": value}))
                    .collect();
                let body = json!({
                    "status": "succeeded",
                    "outcomes": [{"kind": "resource-secrets", "secrets": secrets}],
                });
                Some((*after, body))
            }
            Self::Fail { after, reason } => {
                Some((*after, json!({"status": "failed", "reason": reason})))
            }
            Self::Never => None,
        }
    }
}

/// A webhook hoist sent.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// `X-Hoist-Event` (empty when absent).
    pub event: String,
    /// `X-Hoist-Delivery` (empty when absent).
    pub delivery_id: String,
    pub signature_ok: bool,
    /// The parsed body; `Null` when it was not JSON.
    pub body: Value,
    /// What the fake answered: 200, 401 for a bad signature, 500 when
    /// told to fail.
    pub answered: u16,
}

impl Delivery {
    /// `payload.action`.
    pub fn action(&self) -> &str {
        self.body["payload"]["action"].as_str().unwrap_or_default()
    }
}

/// A report the fake PATCHed to hoist, and hoist's answer.
#[derive(Debug, Clone)]
pub struct Patched {
    pub action: String,
    pub url: String,
    pub body: Value,
    /// hoist's status code; `None` when hoist gave no HTTP answer.
    pub status: Option<u16>,
}

#[derive(Default)]
struct Model {
    deliveries: Vec<Delivery>,
    plans: HashMap<String, Plan>,
    /// How many of the next deliveries are answered 500.
    failing: usize,
    patches: Vec<Patched>,
}

/// What every request handler needs.
struct Shared {
    secret: String,
    model: Mutex<Model>,
}

pub struct FakeIntegration {
    address: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeIntegration {
    /// An integration sharing `secret` with hoist (the HMAC key of the
    /// webhooks and the bearer of its reports).
    pub async fn start(secret: &str) -> Self {
        let shared = Arc::new(Shared {
            secret: secret.to_owned(),
            model: Mutex::new(Model::default()),
        });
        let address = super::listen(
            Router::new()
                .fallback(receive)
                .with_state(Arc::clone(&shared)),
        )
        .await;
        Self { address, shared }
    }

    /// The URL of `path` (`/hoist`) on the fake: an action's `url`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.shared.model.lock().unwrap()
    }

    /// How the next `start`s of `action` are answered.
    pub fn answer_with(&self, action: &str, plan: Plan) {
        self.model().plans.insert(action.to_owned(), plan);
    }

    /// The next `n` deliveries, whatever they are, are answered 500.
    pub fn fail_deliveries(&self, n: usize) {
        self.model().failing = n;
    }

    /// Every delivery so far, in the order they arrived.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.model().deliveries.clone()
    }

    /// Every report PATCHed to hoist so far, with hoist's answer.
    pub fn patch_statuses(&self) -> Vec<Patched> {
        self.model().patches.clone()
    }

    /// The first delivery of `event` for `action` the fake accepted (a
    /// good signature, not answered 500); panics after ~20 s with what it
    /// did receive.
    pub async fn wait_for(&self, event: &str, action: &str) -> Delivery {
        let found = || {
            self.deliveries().into_iter().find(|delivery| {
                delivery.answered == 200 && delivery.event == event && delivery.action() == action
            })
        };
        let started = tokio::time::Instant::now();
        while started.elapsed() < WAIT_LIMIT {
            if let Some(delivery) = found() {
                return delivery;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        panic!(
            "the integration never accepted {event} for `{action}`; it got {:#?}",
            self.deliveries()
        );
    }
}

/// Every POST: a webhook from hoist.
async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let mut delivery = Delivery {
        event: header("x-hoist-event").unwrap_or_default().to_owned(),
        delivery_id: header("x-hoist-delivery").unwrap_or_default().to_owned(),
        signature_ok: signature_matches(&shared.secret, &body, header("x-hoist-signature-256")),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: 200,
    };
    let mut model = shared.model.lock().unwrap();
    let answer = if model.failing > 0 {
        // An outage: hoist must deliver again later.
        model.failing -= 1;
        StatusCode::INTERNAL_SERVER_ERROR
    } else if !delivery.signature_ok {
        StatusCode::UNAUTHORIZED
    } else {
        if delivery.event == START {
            let plan = model
                .plans
                .get(delivery.action())
                .cloned()
                .unwrap_or_default();
            report_later(&shared, &delivery, &plan);
        }
        StatusCode::OK
    };
    delivery.answered = answer.as_u16();
    model.deliveries.push(delivery);
    answer
}

/// Spawns the PATCH that `plan` makes for a `start`, if any.
fn report_later(shared: &Arc<Shared>, start: &Delivery, plan: &Plan) {
    let Some((after, body)) = plan.report() else {
        return;
    };
    let action = start.action().to_owned();
    let url = start.body["payload"]["deployment"]["url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let status = patch(&url, &shared.secret, &body).await;
        shared.model.lock().unwrap().patches.push(Patched {
            action,
            url,
            body,
            status,
        });
    });
}

/// `PATCH url` with the bearer and JSON body, over a plain HTTP/1.1
/// connection as `tests/support`'s `http` makes them (this module is
/// also built by test binaries without `support`). hoist's status code,
/// or `None` when it gives no HTTP answer.
async fn patch(url: &str, bearer: &str, body: &Value) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/')?;
    let body = body.to_string();
    let request = format!(
        "PATCH /{path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    // `HTTP/1.1 200 OK`: the code is bytes 9 to 12.
    String::from_utf8_lossy(&response).get(9..12)?.parse().ok()
}
