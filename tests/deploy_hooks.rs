//! Deploy hooks through the real binary: `hoist hooks create | list |
//! delete` on the store of a running `hoist serve`, and CI's calls to
//! `POST /api/v1/dh` over HTTP against the fake GitHub and Slack: a
//! deployment with its image tag and payload, announced and audited as
//! the hook; the same `Idempotency-Key` deploying once; tokens wrong,
//! malformed, missing or deleted; bodies refused naming their fault; the
//! limit on failed calls; a lock refusing the call; approvals making it
//! wait; and the token kept out of hoist's log.

mod fakes;
mod harness;
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use harness::{MAIN, Serving, serve_with, serve_with_stderr_file};
use support::hoist;

const CHANNEL: &str = "channel = \"slack:C0CHAN\"\n";
const RELEASE: &str = "2222222222222222222222222222222222222222";

/// An answer of hoist: its status, headers (lower-case names) and JSON.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

/// `POST /api/v1/dh` as curl sends it: `headers`, then `body`.
async fn call(serving: &Serving, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(serving.address)
        .await
        .unwrap();
    let mut request = format!(
        "POST /api/v1/dh HTTP/1.1\r\nHost: hoist\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    // hoist may answer (413) before reading a large body.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("hoist answers in time")
        .unwrap_or_default();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.get(9..12))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

/// A call with `token` and a JSON body.
async fn deploy(serving: &Serving, token: &str, body: &Value) -> Answer {
    call(
        serving,
        &[
            ("X-Deploy-Hook-Token", token),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
    .await
}

/// `hoist ARGS --config <the serving hoist.toml>`.
async fn cli(serving: &Serving, args: &[&str]) -> support::Run {
    let config = serving.config_path();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--config", config.to_str().unwrap()]);
    hoist(&all, "", &[]).await
}

/// `hoist hooks create`: the token it prints (its own line).
async fn create_hook(serving: &Serving, name: &str, environment: &str) -> String {
    let created = cli(
        serving,
        &[
            "hooks",
            "create",
            "--app",
            "api",
            "--env",
            environment,
            "--name",
            name,
        ],
    )
    .await;
    assert!(created.success, "{created:?}");
    assert!(
        created.stdout.contains("/api/v1/dh") && created.stdout.contains("curl -X POST"),
        "a ready curl line: {}",
        created.stdout
    );
    created
        .stdout
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("dh_") && !line.contains(' '))
        .expect("the token on its own line")
        .to_owned()
}

/// The token's secret part: what must never be kept or logged.
fn secret_of(token: &str) -> &str {
    &token[token.len() - 43..]
}

/// Deployments hoist created at the fake GitHub.
fn created(serving: &Serving) -> usize {
    serving.github.deployment_requests("acme/api").len()
}

#[tokio::test]
async fn a_ci_job_deploys_as_its_hook_once_per_idempotency_key() {
    let mut serving = serve_with(CHANNEL).await;
    let token = create_hook(&serving, "ci-staging", "staging").await;
    let body = json!({"imageTag": "1.2.0", "payload": {"replicas": 3}});
    let headers = [
        ("X-Deploy-Hook-Token", token.as_str()),
        ("Idempotency-Key", "run-41"),
    ];

    let first = call(&serving, &headers, body.to_string().as_bytes()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let deployment = &first.body["deployment"];
    let id = deployment["id"].as_i64().expect("an id");
    assert_eq!(deployment["environment"], "staging");
    assert_eq!(deployment["ref"], "main");
    assert_eq!(deployment["sha"], MAIN);
    let status_url = format!(
        "http://{}/deployments/github/acme/api/{id}/log",
        serving.address
    );
    assert_eq!(deployment["statusUrl"], status_url.as_str());
    assert!(!first.body.to_string().contains(&token));

    let sent = &serving.github.deployment_requests("acme/api")[0];
    assert_eq!(sent["environment"], "staging");
    assert_eq!(sent["ref"], "main");
    assert_eq!(sent["payload"]["imageTag"], "1.2.0");
    assert_eq!(sent["payload"]["replicas"], 3);
    assert_eq!(
        sent["payload"]["hoist"]["origin"]["actor"]["name"],
        "hook ci-staging"
    );
    assert!(
        sent["description"]
            .as_str()
            .is_some_and(|d| d.contains("hook ci-staging")),
        "{sent}"
    );
    let announced = serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    assert_eq!(announced.channel, "C0CHAN");
    assert_eq!(announced.method, "chat.postMessage");

    // CI retries: the same deployment, nothing new.
    let again = call(&serving, &headers, body.to_string().as_bytes()).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body["deployment"]["id"], id);
    assert_eq!(created(&serving), 1);

    // Another key, another ref.
    serving.github.set_branch("acme/api", "release", RELEASE);
    let other = deploy(&serving, &token, &json!({"ref": "release"})).await;
    assert_eq!(other.status, 201, "{}", other.body);
    assert_eq!(other.body["deployment"]["ref"], "release");
    assert_eq!(other.body["deployment"]["sha"], RELEASE);
    assert_ne!(other.body["deployment"]["id"], id);
    assert_eq!(created(&serving), 2);

    // hoist's runner does not run it (GitHub's side does): no log here.
    let (log_status, _) = support::http(
        serving.address,
        "GET",
        &format!("/deployments/github/acme/api/{id}/log"),
        &[],
        b"",
    )
    .await;
    assert_eq!(log_status, 404);

    let audit = cli(&serving, &["audit", "--actor", "hook ci-staging"]).await;
    assert!(audit.success, "{audit:?}");
    assert!(
        audit.stdout.contains("deployed")
            && audit
                .stdout
                .contains("deploy api to staging (deploy hook ci-staging)"),
        "{}",
        audit.stdout
    );
    let listed = cli(&serving, &["hooks", "list"]).await;
    assert!(listed.success, "{listed:?}");
    let row = listed
        .stdout
        .lines()
        .find(|line| line.starts_with("ci-staging "))
        .unwrap_or_else(|| panic!("the hook is listed: {}", listed.stdout));
    assert!(row.contains(" api ") && row.contains(" staging "), "{row}");
    assert!(!row.ends_with("never"), "it was used: {row}");
    assert!(!listed.stdout.contains(secret_of(&token)));
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn tokens_wrong_malformed_missing_or_deleted_deploy_nothing() {
    let mut serving = serve_with(CHANNEL).await;
    let token = create_hook(&serving, "ci-staging", "staging").await;
    let body = json!({"imageTag": "1.2.0"});

    // Another secret with the hook's id.
    let last = if token.ends_with('A') { "B" } else { "A" };
    let wrong = format!("{}{last}", &token[..token.len() - 1]);
    let answer = deploy(&serving, &wrong, &body).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.message(), "no deploy hook has this token");
    let answer = deploy(&serving, "not-a-token", &body).await;
    assert_eq!(answer.status, 404);
    let answer = call(&serving, &[], body.to_string().as_bytes()).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.message().contains("X-Deploy-Hook-Token"),
        "{}",
        answer.body
    );
    assert_eq!(created(&serving), 0);

    let listed = cli(&serving, &["hooks", "list"]).await;
    assert!(listed.stdout.contains("ci-staging"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("never"),
        "not used yet: {}",
        listed.stdout
    );
    assert!(!listed.stdout.contains(secret_of(&token)));

    let deleted = cli(&serving, &["hooks", "delete", "ci-staging"]).await;
    assert!(deleted.success, "{deleted:?}");
    let answer = deploy(&serving, &token, &body).await;
    assert_eq!(answer.status, 404);
    assert_eq!(created(&serving), 0);
    let again = cli(&serving, &["hooks", "delete", "ci-staging"]).await;
    assert!(!again.success);
    assert!(
        again
            .stderr
            .contains("no deploy hook is called `ci-staging`"),
        "{again:?}"
    );
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn the_cli_refuses_an_unknown_app_a_bad_name_and_a_name_taken() {
    let mut serving = serve_with("").await;
    create_hook(&serving, "ci", "staging").await;
    for (args, needle) in [
        (
            ["--app", "web", "--env", "staging", "--name", "ci-web"],
            "--app web: hoist.toml has no such app",
        ),
        (
            ["--app", "api", "--env", "staging", "--name", "CI Staging"],
            "a hook's name is 1 to 63",
        ),
        (
            ["--app", "api", "--env", "production", "--name", "ci"],
            "a deploy hook called `ci` exists already",
        ),
    ] {
        let mut all = vec!["hooks", "create"];
        all.extend(args);
        let refused = cli(&serving, &all).await;
        assert!(!refused.success, "{args:?}");
        assert!(refused.stderr.contains(needle), "{refused:?}");
        assert!(!refused.stdout.contains("dh_"), "{refused:?}");
    }
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_their_fault() {
    let mut serving = serve_with(CHANNEL).await;
    let token = create_hook(&serving, "ci-staging", "staging").await;
    let header = [("X-Deploy-Hook-Token", token.as_str())];
    for (body, needle) in [
        ("{\"imageTag\": ", "the body is not JSON"),
        ("{\"image\": \"1.2.0\"}", "unknown field `image`"),
        (
            "{\"environment\": \"production\"}",
            "this hook deploys api to staging only",
        ),
        (
            "{\"payload\": {\"hoist\": {\"app\": \"web\"}}}",
            "payload.hoist is hoist's own key",
        ),
        ("{\"imageTag\": \"1.2.0; rm -rf /\"}", "imageTag must be"),
        (
            "{\"ref\": \"no-such-branch\"}",
            "I can't find `no-such-branch`",
        ),
    ] {
        let answer = call(&serving, &header, body.as_bytes()).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert!(answer.message().contains(needle), "{body}: {}", answer.body);
    }
    let huge = json!({"payload": {"notes": "x".repeat(64 * 1024)}});
    let answer = call(&serving, &header, huge.to_string().as_bytes()).await;
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_eq!(created(&serving), 0);

    // An empty body is `{}`: the default branch to the hook's environment.
    let answer = call(&serving, &header, b"").await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["deployment"]["ref"], "main");
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_burst_of_bad_tokens_is_limited_and_then_even_the_good_token_waits() {
    let mut serving = serve_with(CHANNEL).await;
    let token = create_hook(&serving, "ci-staging", "staging").await;
    let body = json!({});
    let mut statuses = Vec::new();
    for n in 0..12 {
        let answer = deploy(&serving, &format!("dh_guess{n}"), &body).await;
        statuses.push(answer.status);
        if answer.status == 429 {
            let wait: u64 = answer
                .header("retry-after")
                .and_then(|value| value.parse().ok())
                .expect("Retry-After in seconds");
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }
    assert_eq!(statuses[..10], [404; 10]);
    assert_eq!(statuses[10..], [429, 429]);
    let answer = deploy(&serving, &token, &body).await;
    assert_eq!(answer.status, 429, "{}", answer.body);
    assert!(answer.header("retry-after").is_some());
    assert_eq!(created(&serving), 0);
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_lock_on_the_environment_refuses_the_call_and_nothing_waits() {
    let mut serving = serve_with(CHANNEL).await;
    let token = create_hook(&serving, "ci-staging", "staging").await;
    serving
        .hoist_command("lock staging for api migrating the db", "l-1")
        .await;
    serving.slack.wait_for("locked staging of api").await;

    let answer = deploy(&serving, &token, &json!({"imageTag": "1.2.0"})).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(
        answer
            .message()
            .starts_with("Not deployed: staging of api is locked by ada since ")
            && answer.message().ends_with(": migrating the db."),
        "{}",
        answer.body
    );
    assert_eq!(created(&serving), 0);
    let audit = cli(&serving, &["audit", "--actor", "hook ci-staging"]).await;
    assert!(audit.stdout.contains("refused"), "{}", audit.stdout);

    // Unlocked, the refused call does not come back on its own (it was
    // not kept); CI calls again and it deploys.
    serving.hoist_command("unlock staging for api", "u-1").await;
    serving.slack.wait_for("ada unlocked staging of api").await;
    let answer = deploy(&serving, &token, &json!({"imageTag": "1.2.0"})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(created(&serving), 1);
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_target_with_approvals_makes_the_call_wait_with_202() {
    let mut serving = serve_with(CHANNEL).await;
    serving.github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "production:\n  required_contexts: []\n  approvals: { required: 1, from: [ada-gh], expire_after: 1h }\n",
    );
    let token = create_hook(&serving, "ci-production", "production").await;
    let answer = deploy(&serving, &token, &json!({"imageTag": "1.2.0"})).await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body["approvalRequest"], 1);
    assert!(
        answer.message().contains("Deployment request #1"),
        "{}",
        answer.body
    );
    serving.slack.wait_for("Deployment request #1").await;
    assert_eq!(created(&serving), 0);
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn the_token_never_reaches_hoists_log() {
    let mut serving = serve_with_stderr_file(CHANNEL, &[("RUST_LOG", "debug")]).await;
    let token = create_hook(&serving, "ci-staging", "staging").await;
    let answer = deploy(&serving, &token, &json!({"imageTag": "1.2.0"})).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let wrong = format!("{}A", &token[..token.len() - 1]);
    let wrong = if wrong == token {
        format!("{}B", &token[..token.len() - 1])
    } else {
        wrong
    };
    assert_eq!(deploy(&serving, &wrong, &json!({})).await.status, 404);
    serving.slack.wait_for("Deploying api main").await;

    let log = serving.stderr();
    assert!(log.contains("deploy hook called"), "{log}");
    assert!(log.contains("ci-staging"), "the log names the hook: {log}");
    assert!(log.contains("deploy hook call refused"), "{log}");
    assert!(
        !log.contains(secret_of(&token)),
        "the token's secret is in the log"
    );
    assert!(
        !log.contains(secret_of(&wrong)),
        "a presented secret is in the log"
    );
    serving.process.kill().await.unwrap();
}
