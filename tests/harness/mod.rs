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

use crate::fakes::discord::{self, FakeDiscord};
use crate::fakes::discord_gateway::FakeGateway;
use crate::fakes::github::{FakeGitHub, TOKEN};
use crate::fakes::slack::{BOT_TOKEN, FakeSlack};
use crate::support::http;

pub mod web;

pub const MAIN: &str = "1111111111111111111111111111111111111111";
pub const SIGNING_SECRET: &str = "slack-signing-secret-for-tests";
pub const WEBHOOK_SECRET: &str = "github-webhook-secret-for-tests";
pub const STATUS_FIXTURE: &str = include_str!("../fixtures/github/deployment_status.created.json");
/// octokit/webhooks' examples; the tests set the fields they need.
pub const COMMENT_FIXTURE: &str =
    include_str!("../fixtures/github/issue_comment.created.issue.json");
pub const PULL_REQUEST_FIXTURE: &str = include_str!("../fixtures/github/pull_request.closed.json");
pub const PUSH_FIXTURE: &str = include_str!("../fixtures/github/push.json");
pub const DISCORD_COMMAND_FIXTURE: &str =
    include_str!("../fixtures/discord/interaction.application_command.discord-docs.json");
pub const COMMIT_STATUS_FIXTURE: &str = include_str!("../fixtures/github/status.json");
pub const CHECK_SUITE_FIXTURE: &str = include_str!("../fixtures/github/check_suite.completed.json");
/// GitHub's published `deployment` event; the tests set the deployment.
pub const DEPLOYMENT_FIXTURE: &str = include_str!("../fixtures/github/deployment.created.json");
/// Where [`serve_with_stderr_file`] writes hoist's stderr, in the serving
/// directory.
pub const STDERR_FILE: &str = "hoist.stderr";

pub struct Serving {
    pub dir: tempfile::TempDir,
    pub github: FakeGitHub,
    pub slack: FakeSlack,
    pub discord: FakeDiscord,
    /// Connected to only with `HOIST_DISCORD__GATEWAY=true`.
    pub gateway: FakeGateway,
    pub address: SocketAddr,
    pub process: tokio::process::Child,
}

pub async fn serve() -> Serving {
    serve_with("").await
}

/// `extra` is appended to hoist.toml.
pub async fn serve_with(extra: &str) -> Serving {
    serve_with_env(extra, &[]).await
}

/// With more environment variables for hoist (`HOIST_GITHUB__APP_ID`).
pub async fn serve_with_env(extra: &str, env: &[(&str, &str)]) -> Serving {
    serve_configured(extra, env, false).await
}

/// [`serve_with_env`], with hoist's stderr (its log) written to
/// [`STDERR_FILE`] in the serving directory instead of the test's own
/// ([`Serving::stderr`] reads it).
pub async fn serve_with_stderr_file(extra: &str, env: &[(&str, &str)]) -> Serving {
    serve_configured(extra, env, true).await
}

async fn serve_configured(extra: &str, env: &[(&str, &str)], stderr_to_file: bool) -> Serving {
    let github = FakeGitHub::start().await;
    github.add_repo("acme/api", "main", MAIN);
    github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "staging:\n  required_contexts: []\n",
    );
    let slack = FakeSlack::start().await;
    let discord = FakeDiscord::start().await;
    let gateway = FakeGateway::start().await;
    discord.set_gateway_url(&gateway.url());
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let config = dir.path().join("hoist.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{address}\"\npublic_url = \"http://{address}\"\n\
             [store]\nurl = \"sqlite://{db}\"\n[forge]\nkind = \"github\"\n\
             [github]\napi_url = \"{github}\"\n[slack]\napi_url = \"{slack}\"\n\
             [discord]\napi_url = \"{discord_api}\"\npublic_key = \"{public_key}\"\napplication_id = \"{application}\"\ngateway = false\n\
             [users]\nU0ADA = \"ada-gh\"\nU0GRACE = \"grace-gh\"\nU0HAL = \"hal-gh\"\n53908232506183680 = \"mason-gh\"\n[apps.api]\nrepo = \"acme/api\"\n{extra}",
            db = dir.path().join("hoist.db").display(),
            github = github.url(),
            slack = slack.api_url(),
            discord_api = discord.api_url(),
            public_key = discord::public_key_hex(),
            application = discord::APPLICATION_ID,
        ),
    )
    .unwrap();
    let stderr = match stderr_to_file {
        true => Stdio::from(std::fs::File::create(dir.path().join(STDERR_FILE)).unwrap()),
        false => Stdio::inherit(),
    };
    let process = spawn_hoist(&config, address, env, stderr).await;
    Serving {
        dir,
        github,
        slack,
        discord,
        gateway,
        address,
        process,
    }
}

/// A free port for a hoist: bind, read, release.
pub fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Starts `hoist serve` with its secrets in the environment, and waits
/// until it listens.
pub async fn start_hoist(config: &std::path::Path, address: SocketAddr) -> tokio::process::Child {
    start_hoist_with(config, address, &[]).await
}

/// [`start_hoist`] with more environment variables.
pub async fn start_hoist_with(
    config: &std::path::Path,
    address: SocketAddr,
    env: &[(&str, &str)],
) -> tokio::process::Child {
    spawn_hoist(config, address, env, Stdio::inherit()).await
}

async fn spawn_hoist(
    config: &std::path::Path,
    address: SocketAddr,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoist"));
    command
        .args(["serve", "--config"])
        .arg(config)
        .env("HOIST_GITHUB__TOKEN", TOKEN)
        .env("HOIST_GITHUB__WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("HOIST_SLACK__BOT_TOKEN", BOT_TOKEN)
        .env("HOIST_SLACK__SIGNING_SECRET", SIGNING_SECRET)
        .env("HOIST_DISCORD__BOT_TOKEN", discord::BOT_TOKEN)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
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

/// Discord's documented slash command interaction, as `/{name}` with
/// `options` (`[{"name": "app", "type": 3, "value": "api"}]`), by Mason
/// (Discord user 53908232506183680) in channel 645027906669510667.
pub fn discord_command(id: &str, token: &str, name: &str, options: Value) -> Value {
    let mut interaction: Value = serde_json::from_str(DISCORD_COMMAND_FIXTURE).unwrap();
    interaction["id"] = json!(id);
    interaction["token"] = json!(token);
    interaction["application_id"] = json!(discord::APPLICATION_ID);
    interaction["data"]["name"] = json!(name);
    interaction["data"]["options"] = options;
    interaction
}

/// An `issue_comment` by `login` on acme/api's pull request `number`.
pub fn comment_event(number: u64, comment_id: u64, login: &str, text: &str) -> Value {
    let mut event: Value = serde_json::from_str(COMMENT_FIXTURE).unwrap();
    event["issue"]["number"] = json!(number);
    event["issue"]["pull_request"] = json!({
        "url": format!("https://api.github.com/repos/acme/api/pulls/{number}"),
        "html_url": format!("https://github.com/acme/api/pull/{number}"),
        "diff_url": format!("https://github.com/acme/api/pull/{number}.diff"),
        "patch_url": format!("https://github.com/acme/api/pull/{number}.patch"),
        "merged_at": null,
    });
    event["comment"]["id"] = json!(comment_id);
    event["comment"]["body"] = json!(text);
    event["comment"]["user"]["login"] = json!(login);
    event["repository"]["full_name"] = json!("acme/api");
    event["sender"]["login"] = json!(login);
    event
}

pub fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

impl Serving {
    /// The hoist.toml hoist serves with, for the CLI (`--config`).
    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("hoist.toml")
    }

    /// What hoist wrote to its stderr so far (with
    /// [`serve_with_stderr_file`]; empty otherwise).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(STDERR_FILE)).unwrap_or_default()
    }

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

    /// `/hoist text` typed by another Slack user (`id`, `name`), whom
    /// hoist.toml's `[users]` does not link to a GitHub login.
    pub async fn hoist_command_as(
        &self,
        (id, name): (&str, &str),
        text: &str,
        trigger: &str,
    ) -> (u16, String) {
        self.slash_command_by(id, name, "hoist", "C0DEPLOYS", text, trigger, 0)
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
        self.slash_command_by("U0ADA", "ada", command, channel, text, trigger, age)
            .await
    }

    #[allow(clippy::too_many_arguments, reason = "a slash command's fields")]
    async fn slash_command_by(
        &self,
        user_id: &str,
        user_name: &str,
        command: &str,
        channel: &str,
        text: &str,
        trigger: &str,
        age: i64,
    ) -> (u16, String) {
        let text: String = serde_urlencoded::to_string([("text", text)]).unwrap();
        let body = format!(
            "token=legacy&team_id=T0TEAM&channel_id={channel}&user_id={user_id}&user_name={user_name}&command=%2F{command}&{text}&trigger_id={trigger}",
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

    /// Posts a Discord interaction, signed as Discord signs, `age` seconds
    /// ago.
    pub async fn discord_interaction(&self, interaction: &Value, age: i64) -> (u16, String) {
        let body = serde_json::to_vec(interaction).unwrap();
        let timestamp = (jiff::Timestamp::now().as_second() - age).to_string();
        let signature = discord::sign(&timestamp, &body);
        let headers = [
            ("X-Signature-Ed25519", signature.as_str()),
            ("X-Signature-Timestamp", timestamp.as_str()),
            ("Content-Type", "application/json"),
        ];
        http(
            self.address,
            "POST",
            "/discord/interactions",
            &headers,
            &body,
        )
        .await
    }

    /// Stored deliveries hoist has handled so far (`/metrics`).
    pub async fn handled(&self) -> u64 {
        let (_, metrics) = http(self.address, "GET", "/metrics", &[], b"").await;
        metrics
            .lines()
            .filter(|line| line.starts_with("hoist_webhooks_handled_total"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Waits until hoist has handled `count` stored deliveries.
    pub async fn wait_handled(&self, count: u64) {
        for _ in 0..400 {
            if self.handled().await >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "hoist handled {} deliveries, not {count}",
            self.handled().await
        );
    }

    /// Posts a GitHub webhook, signed.
    pub async fn github_event(&self, event: &str, delivery: &str, body: &Value) -> u16 {
        let body = serde_json::to_vec(body).unwrap();
        let signature = format!("sha256={}", hmac_hex(WEBHOOK_SECRET, &[&body]));
        let headers = [
            ("X-GitHub-Event", event),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        http(self.address, "POST", "/github/webhooks", &headers, &body)
            .await
            .0
    }

    /// `login` comments `text` on pull request `number` of acme/api: the
    /// published `issue_comment` example, marked as a pull request's the
    /// way GitHub marks it (`issue.pull_request`).
    pub async fn pr_comment(
        &self,
        number: u64,
        comment_id: u64,
        login: &str,
        text: &str,
        delivery: &str,
    ) -> u16 {
        let event = comment_event(number, comment_id, login, text);
        self.github_event("issue_comment", delivery, &event).await
    }

    /// A `pull_request` event of acme/api's pull request `number`, whose
    /// head is `head_ref` at `head_sha` in `head_repo`.
    pub async fn pull_request_event(
        &self,
        action: &str,
        number: u64,
        (head_ref, head_sha, head_repo): (&str, &str, &str),
        delivery: &str,
    ) -> u16 {
        let mut event: Value = serde_json::from_str(PULL_REQUEST_FIXTURE).unwrap();
        event["action"] = json!(action);
        event["number"] = json!(number);
        event["pull_request"]["number"] = json!(number);
        event["pull_request"]["merged"] = json!(action == "closed");
        event["pull_request"]["head"]["ref"] = json!(head_ref);
        event["pull_request"]["head"]["sha"] = json!(head_sha);
        event["pull_request"]["head"]["repo"]["full_name"] = json!(head_repo);
        event["repository"]["full_name"] = json!("acme/api");
        event["sender"]["login"] = json!("ada-gh");
        self.github_event("pull_request", delivery, &event).await
    }

    /// CI sets status `context` of acme/api's commit `sha` to `state`, at
    /// the fake GitHub and by webhook.
    pub async fn commit_status(
        &self,
        sha: &str,
        context: &str,
        state: &str,
        delivery: &str,
    ) -> u16 {
        self.github.set_status("acme/api", sha, context, state);
        let mut event: Value = serde_json::from_str(COMMIT_STATUS_FIXTURE).unwrap();
        event["sha"] = json!(sha);
        event["context"] = json!(context);
        event["state"] = json!(state);
        event["repository"]["full_name"] = json!("acme/api");
        self.github_event("status", delivery, &event).await
    }

    /// A check suite of acme/api's commit `sha` completed.
    pub async fn check_suite_completed(&self, sha: &str, delivery: &str) -> u16 {
        let mut event: Value = serde_json::from_str(CHECK_SUITE_FIXTURE).unwrap();
        event["check_suite"]["head_sha"] = json!(sha);
        event["repository"]["full_name"] = json!("acme/api");
        self.github_event("check_suite", delivery, &event).await
    }

    /// ada pushes `sha` to `git_ref` (in full: `refs/heads/main`).
    pub async fn push_event(&self, git_ref: &str, sha: &str, delivery: &str) -> u16 {
        let mut event: Value = serde_json::from_str(PUSH_FIXTURE).unwrap();
        event["ref"] = json!(git_ref);
        event["after"] = json!(sha);
        event["deleted"] = json!(false);
        event["created"] = json!(false);
        event["repository"]["full_name"] = json!("acme/api");
        event["sender"]["login"] = json!("ada-gh");
        self.github_event("push", delivery, &event).await
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
        self.status_webhook_to(self.address, id, state, delivery, description, created_at)
            .await
    }

    /// [`Serving::status_webhook_with`], sent to the hoist at `address`
    /// (another replica of this one, [`Serving::start_replica`]).
    pub async fn status_webhook_to(
        &self,
        address: SocketAddr,
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
        let repo = self.github.deployment_repo(id);
        event["repository"]["full_name"] = json!(repo.as_deref().unwrap_or("acme/api"));
        let body = serde_json::to_vec(&event).unwrap();
        let signature = format!("sha256={}", hmac_hex(WEBHOOK_SECRET, &[&body]));
        let headers = [
            ("X-GitHub-Event", "deployment_status"),
            ("X-GitHub-Delivery", delivery),
            ("X-Hub-Signature-256", signature.as_str()),
        ];
        http(address, "POST", "/github/webhooks", &headers, &body)
            .await
            .0
    }

    /// Another `hoist serve` with this one's configuration but for where
    /// it listens, and more environment (`HOIST_STORE__URL`: replicas of
    /// one PostgreSQL store); its address and process.
    pub async fn start_replica(&self, env: &[(&str, &str)]) -> (SocketAddr, tokio::process::Child) {
        let address = free_address();
        let text = std::fs::read_to_string(self.config_path()).unwrap();
        let config = self
            .dir
            .path()
            .join(format!("hoist-{}.toml", address.port()));
        std::fs::write(
            &config,
            text.replace(&self.address.to_string(), &address.to_string()),
        )
        .unwrap();
        (address, start_hoist_with(&config, address, env).await)
    }
}
