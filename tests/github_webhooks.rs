//! `POST /github/webhooks` over real HTTP: signatures, the inbox, and a
//! `deployment_status` relayed to the conversation that asked, once.

mod fakes;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fakes::github::{FakeGitHub, TOKEN};
use hmac::{Hmac, Mac};
use hoist::app::Hoist;
use hoist::chat::{ChatAdapter, DeliveryError, Inbound, Reply};
use hoist::config::Config;
use hoist::domain::{Actor, Origin, Platform};
use hoist::relay::Outbox;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec-test-0123456789";
const MAIN: &str = "1111111111111111111111111111111111111111";
const STATUS_FIXTURE: &str = include_str!("fixtures/github/deployment_status.created.json");

/// Every reply the outbox delivered to "Slack", in order.
#[derive(Default)]
struct Recorder {
    replies: Mutex<Vec<Reply>>,
}

#[async_trait::async_trait]
impl ChatAdapter for Recorder {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    async fn deliver(
        &self,
        reply: &Reply,
        _card_message: Option<&str>,
    ) -> Result<Option<String>, DeliveryError> {
        self.replies.lock().unwrap().push(reply.clone());
        Ok(None)
    }
}

impl Recorder {
    fn texts(&self) -> Vec<String> {
        self.replies
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.text.clone())
            .collect()
    }
}

struct Running {
    _dir: tempfile::TempDir,
    github: FakeGitHub,
    hoist: Arc<Hoist>,
    recorder: Arc<Recorder>,
    address: std::net::SocketAddr,
    _stop: tokio_util::sync::DropGuard,
}

async fn start() -> Running {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/api", "main", MAIN);
    github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "staging:\n  required_contexts: []\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(&format!(
        "[store]\nurl = \"sqlite://{}\"\n[forge]\nkind = \"github\"\n[github]\napi_url = \"{}\"\ntoken = \"{TOKEN}\"\nwebhook_secret = \"{SECRET}\"\n[apps.api]\nrepo = \"acme/api\"\n",
        dir.path().join("hoist.db").display(),
        github.url(),
    ))
    .unwrap();
    let built = Hoist::build(config).await.unwrap();
    let hoist = built.hoist;
    let stop = CancellationToken::new();
    let recorder = Arc::new(Recorder::default());
    let outbox = Outbox::new([Arc::clone(&recorder) as Arc<dyn ChatAdapter>]);
    tokio::spawn(outbox.run_until(Arc::clone(&hoist), stop.clone()));
    tokio::spawn(Arc::clone(&hoist).run_inbox_until(stop.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(hoist::server::serve(Arc::clone(&hoist), listener));
    Running {
        _dir: dir,
        github,
        hoist,
        recorder,
        address,
        _stop: stop.drop_guard(),
    }
}

/// `deploy api to staging`, typed by ada in a Slack channel.
fn slack_inbound(request_key: &str) -> Inbound {
    Inbound::typed(
        Origin {
            platform: Platform::Slack,
            conversation: "C0DEPLOYS".into(),
            message: None,
            link: None,
            actor: Actor {
                id: "U123".into(),
                name: "ada".into(),
                login: Some("ada".into()),
            },
        },
        "deploy api to staging",
        request_key,
    )
}

fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Running {
    /// Asks for a deployment from a Slack conversation; returns its id.
    async fn deploy_from_slack(&self) -> i64 {
        let outcome = self
            .hoist
            .handle(slack_inbound("slack:T1:trigger-1"))
            .await
            .unwrap();
        assert_eq!(outcome.kind, "deployed", "{}", outcome.detail);
        *self
            .github
            .deployment_ids("acme/api")
            .last()
            .expect("a deployment")
    }

    /// A `deployment_status` event in GitHub's shape (the octokit
    /// fixture) for deployment `id` as the fake GitHub holds it.
    fn status_event(&self, id: i64, state: &str, at: &str) -> Vec<u8> {
        let mut event: Value = serde_json::from_str(STATUS_FIXTURE).unwrap();
        event["deployment"] = self.github.deployment_json(id);
        event["deployment_status"]["state"] = json!(state);
        event["deployment_status"]["description"] = json!("rolled out");
        event["deployment_status"]["log_url"] = json!("https://ci.example.com/runs/7");
        event["deployment_status"]["created_at"] = json!(at);
        event["repository"]["full_name"] = json!("acme/api");
        serde_json::to_vec(&event).unwrap()
    }

    async fn post(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> (u16, String) {
        let signed = sign(body);
        let mut headers = vec![
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", delivery),
            ("Content-Type", "application/json"),
        ];
        if let Some(signature) = signature
            .or(Some(signed.as_str()))
            .filter(|s| !s.is_empty())
        {
            headers.push(("X-Hub-Signature-256", signature));
        }
        support::http(self.address, "POST", "/github/webhooks", &headers, body).await
    }

    /// Waits until `n` replies mention `needle` (or fails after 5 s).
    async fn wait_for(&self, needle: &str, n: usize) -> Vec<String> {
        for _ in 0..100 {
            let texts = self.recorder.texts();
            if texts.iter().filter(|t| t.contains(needle)).count() >= n {
                return texts;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {n}x {needle:?} in {:#?}", self.recorder.texts());
    }

    /// Lets the workers finish, then checks that exactly one reply
    /// mentions `needle`.
    async fn assert_told_once(&self, needle: &str) {
        let texts = self.settled_texts().await;
        let told = texts.iter().filter(|t| t.contains(needle)).count();
        assert_eq!(told, 1, "{needle:?} told {told} times: {texts:#?}");
    }

    /// Lets the workers finish anything in flight, then returns every reply.
    async fn settled_texts(&self) -> Vec<String> {
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.recorder.texts()
    }
}

#[tokio::test]
async fn a_signed_status_reaches_the_conversation_that_asked_once() {
    let running = start().await;
    let id = running.deploy_from_slack().await;
    let body = running.status_event(id, "success", "2026-11-23T10:00:00Z");

    assert_eq!(
        running
            .post("deployment_status", "guid-1", &body, None)
            .await,
        (202, "stored\n".into())
    );
    let texts = running.wait_for("to staging: succeeded", 1).await;
    let line = texts.iter().find(|t| t.contains("succeeded")).unwrap();
    assert!(
        line.starts_with(&format!(
            "Deployment #{id} of api main (1111111) to staging: succeeded (rolled out)"
        )),
        "{line}"
    );
    assert!(line.contains("https://ci.example.com/runs/7"), "{line}");
    let replies = running.recorder.replies.lock().unwrap().clone();
    assert!(replies.iter().all(|r| r.origin.conversation == "C0DEPLOYS"));

    // GitHub redelivers the same delivery: acknowledged, nothing twice.
    let (status, text) = running
        .post("deployment_status", "guid-1", &body, None)
        .await;
    assert_eq!(status, 200, "{text}");
    // The same status under a new delivery id: recorded once, told once.
    assert_eq!(
        running
            .post("deployment_status", "guid-2", &body, None)
            .await
            .0,
        202
    );
    running.assert_told_once("succeeded").await;
}

#[tokio::test]
async fn unsigned_or_forged_deliveries_are_refused_and_change_nothing() {
    let running = start().await;
    let id = running.deploy_from_slack().await;
    let body = running.status_event(id, "failure", "2026-11-23T10:00:00Z");
    let forged = sign(b"another body");
    let (status, text) = running
        .post("deployment_status", "guid-f", &body, Some(&forged))
        .await;
    assert_eq!(
        (status, text.as_str()),
        (401, "the signature does not match the body\n")
    );
    let (status, text) = running
        .post("deployment_status", "guid-u", &body, Some(""))
        .await;
    assert_eq!(
        (status, text.as_str()),
        (401, "the X-Hub-Signature-256 header is missing\n")
    );
    let texts = running.settled_texts().await;
    assert!(!texts.iter().any(|t| t.contains("failed")), "{texts:#?}");
    // The refused delivery ids were not stored: sent properly, they count.
    assert_eq!(
        running
            .post("deployment_status", "guid-f", &body, None)
            .await
            .0,
        202
    );
    running.wait_for("to staging: failed", 1).await;
}

#[tokio::test]
async fn ping_other_events_huge_bodies_and_strangers_deployments() {
    let running = start().await;
    let ping = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
    assert_eq!(
        running.post("ping", "guid-p", ping, None).await,
        (200, "pong\n".into())
    );
    let starred = br#"{"action": "created", "starred_at": "2026-11-23T12:00:00Z"}"#;
    let (status, text) = running.post("star", "guid-star", starred, None).await;
    assert_eq!(status, 202);
    assert_eq!(text, "ignored: hoist does not handle `star` events\n");

    let huge = vec![b'x'; 2 * 1024 * 1024];
    assert_eq!(
        running
            .post("deployment_status", "guid-h", &huge, None)
            .await
            .0,
        413
    );

    // The octokit fixture as it is: a deployment hoist never made.
    let stranger = STATUS_FIXTURE.as_bytes();
    assert_eq!(
        running
            .post("deployment_status", "guid-s", stranger, None)
            .await
            .0,
        202
    );
    // Malformed JSON is stored (it was signed) and dropped by the worker.
    assert_eq!(
        running
            .post("deployment_status", "guid-m", b"{not json", None)
            .await
            .0,
        202
    );
    let texts = running.settled_texts().await;
    assert!(texts.is_empty(), "{texts:#?}");
    // And hoist is still healthy.
    assert_eq!(
        support::http(running.address, "GET", "/healthz", &[], b"")
            .await
            .0,
        200
    );
}

/// A retry of a request: answered without creating while the first
/// attempt runs; after an attempt died mid-way (claimed, never
/// recorded), the deployment it made is found on GitHub, not made again.
#[tokio::test]
async fn a_retried_request_never_deploys_twice() {
    let running = start().await;
    let inbound = slack_inbound;
    let now = jiff::Timestamp::now();

    // In flight: claimed a moment ago by another worker.
    running
        .hoist
        .store
        .claim_request("slack:T1:busy", now)
        .await
        .unwrap();
    let outcome = running
        .hoist
        .handle(inbound("slack:T1:busy"))
        .await
        .unwrap();
    assert!(
        outcome
            .detail
            .starts_with("Already on it: this request is being handled"),
        "{}",
        outcome.detail
    );
    assert!(running.github.deployment_ids("acme/api").is_empty());

    // Died mid-way an hour ago, after GitHub made the deployment.
    let first = running
        .hoist
        .handle(inbound("slack:T1:first"))
        .await
        .unwrap();
    assert_eq!(first.kind, "deployed");
    let made = running.github.deployment_ids("acme/api");
    let mut payload = running.github.deployment_json(made[0])["payload"].clone();
    payload["hoist"]["request_key"] = json!("slack:T1:crashed");
    // (Re-key the fake's deployment as if the crashed attempt made it.)
    running.github.set_payload(made[0], payload);
    let hour_ago = now - jiff::SignedDuration::from_hours(1);
    running
        .hoist
        .store
        .claim_request("slack:T1:crashed", hour_ago)
        .await
        .unwrap();
    let retried = running
        .hoist
        .handle(inbound("slack:T1:crashed"))
        .await
        .unwrap();
    assert_eq!(retried.kind, "deployed", "{}", retried.detail);
    assert!(
        retried
            .detail
            .contains(&format!("deployment #{} created", made[0])),
        "{}",
        retried.detail
    );
    assert_eq!(
        running.github.deployment_ids("acme/api").len(),
        1,
        "found, not made again"
    );
}

#[tokio::test]
async fn handled_deliveries_and_replies_are_forgotten_after_keep_handled_days() {
    let running = start().await;
    let id = running.deploy_from_slack().await;
    let body = running.status_event(id, "success", "2026-11-23T10:00:00Z");
    assert_eq!(
        running
            .post("deployment_status", "guid-old", &body, None)
            .await
            .0,
        202
    );
    running.wait_for("to staging: succeeded", 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Within the 14 days kept by default: nothing goes.
    let now = jiff::Timestamp::now();
    assert_eq!(running.hoist.prune_handled(now).await.unwrap(), (0, 0));
    // Fifteen days on: the delivery and both replies (the deployment's
    // announcement and its status) go.
    let later = now + jiff::SignedDuration::from_hours(15 * 24);
    assert_eq!(running.hoist.prune_handled(later).await.unwrap(), (1, 2));

    // GitHub redelivers the forgotten delivery: it is stored as new, and
    // still tells the conversation nothing twice (the status is
    // remembered with its deployment).
    assert_eq!(
        running
            .post("deployment_status", "guid-old", &body, None)
            .await
            .0,
        202
    );
    running.assert_told_once("succeeded").await;
}
