//! A real `hoist serve` process wired to the fake GitHub and fake Slack,
//! with helpers that sign requests as the platforms do. Shared by the
//! end-to-end tests and the benchmark.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::fakes::github::{FakeGitHub, TOKEN};
use crate::fakes::slack::{BOT_TOKEN, FakeSlack};
use crate::support::http;

pub const MAIN: &str = "1111111111111111111111111111111111111111";
pub const SIGNING_SECRET: &str = "slack-signing-secret-for-tests";
pub const WEBHOOK_SECRET: &str = "github-webhook-secret-for-tests";
pub const STATUS_FIXTURE: &str = include_str!("../fixtures/github/deployment_status.created.json");

pub struct Serving {
    pub dir: tempfile::TempDir,
    pub github: FakeGitHub,
    pub slack: FakeSlack,
    pub address: SocketAddr,
    pub process: tokio::process::Child,
}

pub async fn serve() -> Serving {
    serve_with("").await
}

/// `extra` is appended to hoist.toml.
pub async fn serve_with(extra: &str) -> Serving {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/api", "main", MAIN);
    github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "staging:\n  required_contexts: []\n",
    );
    let slack = FakeSlack::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A free port for hoist: bind, read, release.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = dir.path().join("hoist.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{address}\"\npublic_url = \"http://{address}\"\n\
             [store]\nurl = \"sqlite://{db}\"\n[forge]\nkind = \"github\"\n\
             [github]\napi_url = \"{github}\"\n[slack]\napi_url = \"{slack}\"\n\
             [users]\nU0ADA = \"ada-gh\"\n[apps.api]\nrepo = \"acme/api\"\n{extra}",
            db = dir.path().join("hoist.db").display(),
            github = github.url(),
            slack = slack.api_url(),
        ),
    )
    .unwrap();
    let process = start_hoist(&config, address).await;
    Serving {
        dir,
        github,
        slack,
        address,
        process,
    }
}

/// Starts `hoist serve` with its secrets in the environment, and waits
/// until it listens.
pub async fn start_hoist(config: &std::path::Path, address: SocketAddr) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .env("HOIST_GITHUB__TOKEN", TOKEN)
        .env("HOIST_GITHUB__WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("HOIST_SLACK__BOT_TOKEN", BOT_TOKEN)
        .env("HOIST_SLACK__SIGNING_SECRET", SIGNING_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let process = command.spawn().expect("hoist serve starts");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return process;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("hoist serve did not listen on {address}");
}

pub fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

impl Serving {
    /// Posts a slash command signed now (or at `age` seconds ago).
    pub async fn slash(&self, text: &str, trigger: &str, age: i64) -> (u16, String) {
        self.slash_in("C0DEPLOYS", text, trigger, age).await
    }

    /// A `/deploy` command typed in `channel`.
    pub async fn slash_in(
        &self,
        channel: &str,
        text: &str,
        trigger: &str,
        age: i64,
    ) -> (u16, String) {
        self.slash_command("deploy", channel, text, trigger, age)
            .await
    }

    /// `/hoist text` (any command), typed in the usual channel.
    pub async fn hoist_command(&self, text: &str, trigger: &str) -> (u16, String) {
        self.slash_command("hoist", "C0DEPLOYS", text, trigger, 0)
            .await
    }

    /// `/{command} text`, typed by ada in `channel`, signed `age` s ago.
    async fn slash_command(
        &self,
        command: &str,
        channel: &str,
        text: &str,
        trigger: &str,
        age: i64,
    ) -> (u16, String) {
        let body = format!(
            "token=legacy&team_id=T0TEAM&channel_id={channel}&user_id=U0ADA&user_name=ada&command=%2F{command}&text={}&trigger_id={trigger}",
            text.replace(' ', "+")
        );
        self.signed_slack("/slack/commands", body.as_bytes(), age, &[])
            .await
    }

    /// Posts `body` to `path`, signed as Slack signs, `age` seconds ago.
    pub async fn signed_slack(
        &self,
        path: &str,
        body: &[u8],
        age: i64,
        extra: &[(&str, &str)],
    ) -> (u16, String) {
        let timestamp = (jiff::Timestamp::now().as_second() - age).to_string();
        let signature = format!(
            "v0={}",
            hmac_hex(SIGNING_SECRET, &[b"v0:", timestamp.as_bytes(), b":", body])
        );
        let mut headers = vec![
            ("X-Slack-Request-Timestamp", timestamp.as_str()),
            ("X-Slack-Signature", signature.as_str()),
        ];
        headers.extend_from_slice(extra);
        http(self.address, "POST", path, &headers, body).await
    }

    pub async fn status_webhook(&self, id: i64, state: &str, delivery: &str) -> u16 {
        self.status_webhook_with(
            id,
            state,
            delivery,
            "rolled out by CI",
            "2026-11-23T12:00:00Z",
        )
        .await
    }

    /// A signed `deployment_status` with this description and time.
    pub async fn status_webhook_with(
        &self,
        id: i64,
        state: &str,
        delivery: &str,
        description: &str,
        created_at: &str,
    ) -> u16 {
        let mut event: Value = serde_json::from_str(STATUS_FIXTURE).unwrap();
        event["deployment"] = self.github.deployment_json(id);
        event["deployment_status"]["state"] = json!(state);
        event["deployment_status"]["description"] = json!(description);
        event["deployment_status"]["created_at"] = json!(created_at);
        event["repository"]["full_name"] = json!("acme/api");
        let body = serde_json::to_vec(&event).unwrap();
        let signature = format!("sha256={}", hmac_hex(WEBHOOK_SECRET, &[&body]));
        let headers = [
            ("X-GitHub-Event", "deployment_status"),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        http(self.address, "POST", "/github/webhooks", &headers, &body)
            .await
            .0
    }
}
