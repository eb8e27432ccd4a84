//! The runner on GitHub, Heaven-style, with the real binary: a signed
//! `deployment` webhook (GitHub's published example, with the fields the
//! test needs) is queued, the commit fetched over git's smart HTTP from
//! the fake GitHub with the token, the script run, and its statuses and
//! log posted back; failures, bad deployments, cancel from chat and a
//! `kill -9` of hoist mid-run.

mod fakes;
mod harness;
mod support;

use std::path::Path;
use std::time::Duration;

use harness::{DEPLOYMENT_FIXTURE, Serving, serve_with_env, start_hoist};
use serde_json::{Value, json};
use support::{eventually, http};

const APP_DEPLOYMENT_FIXTURE: &str =
    include_str!("fixtures/github/deployment.created.with-installation.json");

/// The deploy script every test commits: prints what it deploys, a
/// secret from the app's env (masked), and what the test asks for in
/// `BEHAVE` (read from the payload's `behave` param).
const SCRIPT: &str = r#"#!/bin/sh
echo "deploying $HOIST_SHA to $HOIST_ENVIRONMENT as $HOIST_TASK"
echo "the secret is $DEPLOY_TOKEN"
if env | grep -q GIT_CONFIG; then echo "git credentials leaked into the command"; fi
behave=$(sed -n 's/.*"behave":"\([a-z-]*\)".*/\1/p' "$HOIST_PAYLOAD_FILE")
case "$behave" in
  fail) echo "migrations failed" >&2; exit 3 ;;
  hang) sleep 300 & echo $! > "$PIDS/child"; wait ;;
  slow) for i in 1 2 3 4 5 6; do echo "step $i"; sleep 0.3; done ;;
esac
echo done
"#;

const SECRET: &str = "s3cr3t-deploy-token";

struct Runner {
    serving: Serving,
    /// The repository the fake GitHub serves over git.
    source: tempfile::TempDir,
    sha: String,
    /// Where scripts leave the pids of what they started.
    pids: tempfile::TempDir,
}

/// hoist serving acme/api with the runner on: the app's deploy script is
/// committed in a real repository the fake GitHub serves over git.
async fn runner() -> Runner {
    runner_with_env(&[]).await
}

async fn runner_with_env(env: &[(&str, &str)]) -> Runner {
    let source = tempfile::tempdir().unwrap();
    support::repository(source.path(), &[("deploy.sh", SCRIPT, true)]);
    let sha = support::git(source.path(), &["rev-parse", "HEAD"]);
    let pids = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let serving = serve_with_env(
        &format!(
            "deploy_command = [\"./deploy.sh\"]\n\
         timeout_secs = 20\n\
         environment_urls = {{ staging = \"https://staging.api.example.com\" }}\n\
         env = {{ DEPLOY_TOKEN = \"{SECRET}\", PIDS = \"{pids}\" }}\n\
         [runner]\nenabled = true\nworkers = 2\nwork_dir = \"{work}\"\n",
            pids = pids.path().display(),
            work = work.keep().display(),
        ),
        env,
    )
    .await;
    serving.github.serve_git("acme/api", source.path());
    serving.github.set_branch("acme/api", "main", &sha);
    Runner {
        serving,
        source,
        sha,
        pids,
    }
}

impl Runner {
    /// A deployment made at the fake GitHub and announced to hoist by a
    /// signed `deployment` webhook; its id.
    async fn deploy(&self, behave: &str, delivery: &str) -> i64 {
        self.deploy_payload(json!({ "params": { "behave": behave } }), delivery)
            .await
    }

    async fn deploy_payload(&self, payload: Value, delivery: &str) -> i64 {
        let deployment = self
            .serving
            .github
            .add_deployment("acme/api", "main", "staging", payload);
        let id = deployment["id"].as_i64().unwrap();
        assert_eq!(self.announce(&deployment, delivery).await, 202);
        id
    }

    async fn announce(&self, deployment: &Value, delivery: &str) -> u16 {
        self.announce_as(DEPLOYMENT_FIXTURE, deployment, delivery)
            .await
    }

    /// `deployment` in the webhook `fixture` (a token's, or a GitHub App's).
    async fn announce_as(&self, fixture: &str, deployment: &Value, delivery: &str) -> u16 {
        let mut event: Value = serde_json::from_str(fixture).unwrap();
        if event.get("installation").is_some() {
            event["installation"]["id"] = json!(fakes::github::INSTALLATION_ID);
        }
        event["deployment"] = deployment.clone();
        event["repository"]["full_name"] = json!("acme/api");
        self.serving
            .github_event("deployment", delivery, &event)
            .await
    }

    /// The deployment's statuses once it has a final one: (state,
    /// description, log_url, environment_url).
    async fn ended(&self, id: i64) -> Vec<(String, String, String, String)> {
        let statuses = eventually_long("a final status", || {
            let statuses = self.serving.github.statuses(id);
            statuses
                .last()
                .filter(|s| {
                    matches!(
                        s["state"].as_str(),
                        Some("success" | "failure" | "error" | "inactive")
                    )
                })
                .map(|_| statuses.clone())
        })
        .await;
        statuses
            .iter()
            .map(|s| {
                let text = |key: &str| s[key].as_str().unwrap_or_default().to_owned();
                (
                    text("state"),
                    text("description"),
                    text("log_url"),
                    text("environment_url"),
                )
            })
            .collect()
    }

    async fn wait_for_state(&self, id: i64, state: &str) {
        eventually_long(state, || {
            self.serving
                .github
                .statuses(id)
                .iter()
                .any(|s| s["state"] == state)
                .then_some(())
        })
        .await;
    }

    async fn log(&self, log_url: &str) -> (u16, String) {
        let path = log_url
            .strip_prefix(&format!("http://{}", self.serving.address))
            .expect("a log URL on hoist");
        http(self.serving.address, "GET", path, &[], b"").await
    }

    fn log_url(&self, id: i64) -> String {
        format!(
            "http://{}/deployments/github/acme/api/{id}/log",
            self.serving.address
        )
    }
}

/// [`eventually`] for runs, which take seconds: up to 30 s.
async fn eventually_long<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(value) = check() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn states(statuses: &[(String, String, String, String)]) -> Vec<&str> {
    statuses.iter().map(|s| s.0.as_str()).collect()
}

fn is_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => false,
        Ok(stat) => !matches!(
            stat.rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next()),
            Some('Z' | 'X')
        ),
    }
}

async fn child_pid(pids: &Path) -> String {
    eventually("the script's child", || {
        std::fs::read_to_string(pids.join("child"))
            .ok()
            .filter(|pid| !pid.trim().is_empty())
    })
    .await
}

#[tokio::test]
async fn a_signed_deployment_webhook_is_run_and_its_statuses_link_the_log() {
    let mut r = runner().await;
    let id = r.deploy("", "d-run").await;
    let statuses = r.ended(id).await;
    assert_eq!(
        states(&statuses),
        ["pending", "in_progress", "success"],
        "{statuses:?}"
    );
    for (_, _, log_url, _) in &statuses {
        assert_eq!(log_url, &r.log_url(id));
    }
    let (_, description, log_url, environment_url) = statuses.last().unwrap();
    assert_eq!(description, "`./deploy.sh` succeeded");
    assert_eq!(environment_url, "https://staging.api.example.com");

    let (status, log) = r.log(log_url).await;
    assert_eq!(status, 200, "{log}");
    support::assert_in_order(
        &log,
        &[
            &format!("fetching {}", &r.sha[..7]),
            &format!("deploying {} to staging as deploy", r.sha),
            "the secret is ***",
            "done",
            "success: `./deploy.sh` succeeded",
        ],
    );
    assert!(!log.contains(SECRET), "{log}");
    assert!(!log.contains("git credentials leaked"), "{log}");
    assert!(!log.contains(fakes::github::TOKEN), "{log}");
    let (fetched, refused) = r.serving.github.git_requests();
    assert!(
        fetched >= 2,
        "git fetched from the fake ({fetched} requests)"
    );
    assert_eq!(refused, 0, "git presented the token on its first request");

    // The same deployment announced again (a redelivery, or the same
    // event under a new delivery id) runs nothing twice.
    let deployment = r.serving.github.deployment_json(id);
    assert_eq!(r.announce(&deployment, "d-run").await, 200);
    assert_eq!(r.announce(&deployment, "d-run-again").await, 202);
    r.serving.wait_handled(2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.serving.github.statuses(id).len(), 3);
    r.serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_failing_script_is_a_failure_with_its_exit_code_and_output() {
    let mut r = runner().await;
    let id = r.deploy("fail", "d-fail").await;
    let statuses = r.ended(id).await;
    assert_eq!(states(&statuses), ["pending", "in_progress", "failure"]);
    let (_, description, log_url, environment_url) = statuses.last().unwrap();
    assert_eq!(description, "`./deploy.sh` failed with exit code 3");
    assert_eq!(
        environment_url, "",
        "no environment URL for a failed deploy"
    );
    let (_, log) = r.log(log_url).await;
    assert!(log.contains("  err | migrations failed"), "{log}");
    r.serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn deployments_hoist_cannot_run_get_an_error_saying_why() {
    let mut r = runner().await;
    let unknown = r
        .deploy_payload(json!({ "hoist": { "app": "billing" } }), "d-unknown")
        .await;
    let not_json = r.deploy_payload(json!("{not json"), "d-not-json").await;
    let unknown = r.ended(unknown).await;
    assert_eq!(states(&unknown), ["error"]);
    assert_eq!(unknown[0].1, "hoist has no app `billing` to run");
    let not_json = r.ended(not_json).await;
    assert_eq!(states(&not_json), ["error"]);
    assert_eq!(
        not_json[0].1,
        "the deployment's payload is not a JSON object, so hoist cannot run it"
    );
    // A webhook that is not signed changes nothing.
    let deployment = r
        .serving
        .github
        .add_deployment("acme/api", "main", "staging", json!({}));
    let mut event: Value = serde_json::from_str(DEPLOYMENT_FIXTURE).unwrap();
    event["deployment"] = deployment.clone();
    event["repository"]["full_name"] = json!("acme/api");
    let body = serde_json::to_vec(&event).unwrap();
    let headers = [
        ("X-GitHub-Event", "deployment"),
        ("X-GitHub-Delivery", "d-unsigned"),
        ("X-Hub-Signature-256", "sha256=00"),
    ];
    let (status, _) = http(
        r.serving.address,
        "POST",
        "/github/webhooks",
        &headers,
        &body,
    )
    .await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = deployment["id"].as_i64().unwrap();
    assert!(r.serving.github.statuses(id).is_empty());
    r.serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_second_deployment_to_the_environment_waits_and_says_its_place() {
    let mut r = runner().await;
    let first = r.deploy("slow", "d-first").await;
    r.wait_for_state(first, "in_progress").await;
    let second = r.deploy("", "d-second").await;
    let second_statuses = r.ended(second).await;
    let first_statuses = r.ended(first).await;
    assert_eq!(
        states(&second_statuses),
        ["queued", "in_progress", "success"]
    );
    assert_eq!(
        second_statuses[0].1,
        "queued: 1 deployment to staging before this one"
    );
    // The second started only after the first ended.
    let statuses = r.serving.github.statuses(second);
    let started = statuses
        .iter()
        .find(|s| s["state"] == "in_progress")
        .unwrap()["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let first_end = r.serving.github.statuses(first).last().unwrap()["created_at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(started >= first_end, "{started} before {first_end}");
    assert_eq!(states(&first_statuses).last(), Some(&"success"));
    r.serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn the_log_streams_while_the_run_goes_on() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut r = runner().await;
    let id = r.deploy("slow", "d-stream").await;
    r.wait_for_state(id, "in_progress").await;
    let mut stream = tokio::net::TcpStream::connect(r.serving.address)
        .await
        .unwrap();
    let request = format!(
        "GET /deployments/github/acme/api/{id}/log HTTP/1.1\r\nHost: hoist\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = String::new();
    let mut buffer = [0u8; 4096];
    // Before the run ends, an early step has arrived and the last has not.
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("log data in time")
            .unwrap();
        assert!(n > 0, "the stream ended early: {received}");
        received.push_str(&String::from_utf8_lossy(&buffer[..n]));
        if received.contains("step 2") {
            break;
        }
    }
    assert!(!received.contains("success:"), "{received}");
    assert!(
        received
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{received}"
    );
    // Then the rest, and the response ends with the run.
    tokio::time::timeout(
        Duration::from_secs(20),
        stream.read_to_string(&mut received),
    )
    .await
    .expect("the stream ends with the run")
    .unwrap();
    support::assert_in_order(&received, &["step 2", "step 6", "done", "success:"]);
    r.serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn deploy_cancel_from_slack_stops_the_run_and_kills_its_children() {
    let mut r = runner().await;
    let id = r.deploy("hang", "d-hang").await;
    r.wait_for_state(id, "in_progress").await;
    let child = child_pid(r.pids.path()).await;
    assert!(is_alive(&child));
    let (status, _) = r
        .serving
        .hoist_command("deploy:cancel api in staging", "t-cancel")
        .await;
    assert_eq!(status, 200);
    let statuses = r.ended(id).await;
    let (state, description, _, _) = statuses.last().unwrap();
    assert_eq!(state, "failure");
    assert!(description.starts_with("cancelled by "), "{description}");
    eventually("the child to die", || (!is_alive(&child)).then_some(())).await;
    let answer = eventually("the answer", || {
        r.serving
            .slack
            .sent()
            .into_iter()
            .find(|sent| {
                sent.method == "chat.postEphemeral" && sent.text.contains("Stopping deployment")
            })
            .map(|sent| sent.text)
    })
    .await;
    assert!(answer.contains(&format!("#{id}")), "{answer}");
    r.serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_run_going_when_hoist_is_killed_ends_with_error_and_the_queue_goes_on() {
    let mut r = runner().await;
    let hanging = r.deploy("hang", "d-hang-kill").await;
    r.wait_for_state(hanging, "in_progress").await;
    let child = child_pid(r.pids.path()).await;
    let queued = r.deploy("", "d-queued").await;
    r.wait_for_state(queued, "queued").await;

    r.serving.process.kill().await.unwrap(); // SIGKILL
    // The dead hoist's children are not hoist's to reap now; stop the
    // sleep so it does not outlive the test.
    let _ = std::process::Command::new("kill")
        .arg(child.trim())
        .status();
    let config = r.serving.dir.path().join("hoist.toml");
    r.serving.process = start_hoist(&config, r.serving.address).await;

    let statuses = r.ended(hanging).await;
    let (state, description, _, _) = statuses.last().unwrap();
    assert_eq!(state, "error");
    assert!(
        description.starts_with("interrupted: the hoist running it stopped"),
        "{description}"
    );
    let statuses = r.ended(queued).await;
    assert_eq!(
        states(&statuses),
        ["queued", "in_progress", "success"],
        "the queued one was kept and ran after the restart"
    );
    drop(r.source);
    r.serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn as_a_github_app_the_checkout_is_fetched_with_the_installation_token() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github/test-app-key.pem"
    );
    let app_id = fakes::github::APP_ID.to_string();
    let mut r = runner_with_env(&[
        ("HOIST_GITHUB__APP_ID", &app_id),
        ("HOIST_GITHUB__PRIVATE_KEY_PATH", key),
    ])
    .await;
    let deployment = r
        .serving
        .github
        .add_deployment("acme/api", "main", "staging", json!({}));
    let id = deployment["id"].as_i64().unwrap();
    assert_eq!(
        r.announce_as(APP_DEPLOYMENT_FIXTURE, &deployment, "d-app")
            .await,
        202
    );
    let statuses = r.ended(id).await;
    assert_eq!(states(&statuses), ["pending", "in_progress", "success"]);
    assert!(r.serving.github.installation_tokens_issued() >= 1);
    let (fetched, refused) = r.serving.github.git_requests();
    assert!(fetched >= 2, "fetched with the installation token");
    assert_eq!(refused, 0);
    let (_, log) = r.log(&statuses[2].2).await;
    assert!(log.contains("deploying"), "{log}");
    assert!(
        !log.contains("ghs_"),
        "no installation token in the log: {log}"
    );
    r.serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_run_github_would_not_let_start_waits_and_starts_later() {
    use axum::http::Method;
    use fakes::github::Failure;
    let mut r = runner().await;
    let deployment = r
        .serving
        .github
        .add_deployment("acme/api", "main", "staging", json!({}));
    let id = deployment["id"].as_i64().unwrap();
    // The worker's look at the statuses fails (and its one retry): GitHub
    // is down for a moment.
    let statuses = format!("/repos/acme/api/deployments/{id}/statuses");
    for _ in 0..2 {
        r.serving
            .github
            .fail_next(Failure::new(Method::GET, &statuses, 502, "{}"));
    }
    assert_eq!(r.announce(&deployment, "d-outage").await, 202);
    let statuses = r.ended(id).await;
    assert_eq!(
        states(&statuses),
        ["pending", "in_progress", "success"],
        "run once GitHub answered again"
    );
    r.serving.process.kill().await.unwrap();
}
