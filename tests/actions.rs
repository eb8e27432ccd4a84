//! Integration actions through the real binary: a target whose deploy.yml
//! lists `actions` holds the deployment, sends each integration a signed
//! `start` webhook (the fake integration checks the signature), and
//! deploys once they report done over `PATCH /v1/deployments/{id}/actions/{action}`;
//! hoist's runner then sees the secrets they handed over, while the
//! forge's payload, the run log, hoist's chat messages, its own log and
//! its store do not. A failure, a timeout and a cancel end the hold and tell the
//! integrations to stop; removing a review environment sends `cleanup`.

mod fakes;
mod harness;
mod support;

use std::time::Duration;

use fakes::integration::{FakeIntegration, Plan};
use harness::{Serving, serve_with_stderr_file};
use serde_json::{Value, json};
use support::http;

const ACTION_SECRET: &str = "action-secret-for-tests-0123456789";
const DATABASE_URL: &str = "postgres://branch-42:pw-f00dfeed-not-for-logs@db.example.com/42";
const START: &str = "deployment.integration.action.start";
const CANCEL: &str = "deployment.integration.action.cancel";
const CLEANUP: &str = "deployment.integration.action.cleanup";

/// The deploy script: says it runs, and leaves the secret it was given
/// where the test can read it (and prints it, for the log to mask).
const SCRIPT: &str = r#"#!/bin/sh
echo "deploying $HOIST_SHA to $HOIST_ENVIRONMENT"
echo "database is $DATABASE_URL"
printf '%s' "$DATABASE_URL" > "$SEEN/database_url"
"#;

struct Setup {
    serving: Serving,
    integration: FakeIntegration,
    sha: String,
    seen: tempfile::TempDir,
}

/// hoist with its runner on, acme/api's deploy script served over git,
/// a fake integration, and deploy.yml's staging target holding
/// deployments for `actions` (name, plan) at that integration.
async fn setup(actions: &[(&str, Plan)]) -> Setup {
    let source = tempfile::tempdir().unwrap();
    support::repository(source.path(), &[("deploy.sh", SCRIPT, true)]);
    let sha = support::git(source.path(), &["rev-parse", "HEAD"]);
    let seen = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let serving = serve_with_stderr_file(
        &format!(
            "channel = \"slack:C0DEPLOYS\"\n\
             deploy_command = [\"./deploy.sh\"]\n\
             timeout_secs = 20\n\
             env = {{ SEEN = \"{seen}\" }}\n\
             [runner]\nenabled = true\nwork_dir = \"{work}\"\n\
             [watch]\ninterval_secs = 1\n",
            seen = seen.path().display(),
            work = work.keep().display(),
        ),
        &[
            ("DB_ACTION_SECRET", ACTION_SECRET),
            ("RUST_LOG", "hoist=debug"),
        ],
    )
    .await;
    serving.github.serve_git("acme/api", source.path());
    serving.github.set_branch("acme/api", "main", &sha);
    let integration = FakeIntegration::start(ACTION_SECRET).await;
    let mut yaml = String::from("staging:\n  required_contexts: []\n");
    if !actions.is_empty() {
        yaml.push_str("  actions:\n");
    }
    for (name, plan) in actions {
        yaml.push_str(&format!(
            "    - name: {name}\n      url: {}\n      secret: env:DB_ACTION_SECRET\n      timeout: 10m\n",
            integration.url(&format!("/hooks/{name}"))
        ));
        integration.answer_with(name, plan.clone());
    }
    serving
        .github
        .set_file("acme/api", "main", ".github/deploy.yml", &yaml);
    Setup {
        serving,
        integration,
        sha,
        seen,
    }
}

impl Setup {
    /// The deployment hoist made at the fake GitHub, once it has.
    async fn created(&self) -> (i64, Value) {
        let id = long_wait("a deployment at GitHub", || {
            self.serving
                .github
                .deployment_ids("acme/api")
                .last()
                .copied()
        })
        .await;
        (id, self.serving.github.deployment_json(id))
    }

    /// GitHub's `deployment` webhook for `deployment`, which starts the run.
    async fn announce(&self, deployment: &Value, delivery: &str) {
        let mut event: Value =
            serde_json::from_str(include_str!("fixtures/github/deployment.created.json")).unwrap();
        event["deployment"] = deployment.clone();
        event["repository"]["full_name"] = json!("acme/api");
        assert_eq!(
            self.serving
                .github_event("deployment", delivery, &event)
                .await,
            202
        );
    }

    async fn final_state(&self, id: i64) -> String {
        long_wait("a final status", || {
            self.serving
                .github
                .statuses(id)
                .iter()
                .filter_map(|s| s["state"].as_str())
                .find(|state| matches!(*state, "success" | "failure" | "error"))
                .map(str::to_owned)
        })
        .await
    }

    /// Reports on an action as an integration would.
    async fn report(&self, hold: &str, action: &str, bearer: &str, body: &str) -> (u16, String) {
        let auth = format!("Bearer {bearer}");
        http(
            self.serving.address,
            "PATCH",
            &format!("/v1/deployments/{hold}/actions/{action}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
        .await
    }

    /// Every byte hoist's store has on disk.
    fn store_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let path = self.serving.dir.path().join(format!("hoist.db{suffix}"));
            bytes.extend(std::fs::read(path).unwrap_or_default());
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Waits for runs and webhooks, which take seconds: up to 30 s.
async fn long_wait<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(value) = check() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

fn succeed_after(ms: u64) -> Plan {
    Plan::Succeed {
        after: Duration::from_millis(ms),
        secrets: vec![("DATABASE_URL".into(), DATABASE_URL.into())],
    }
}

#[tokio::test]
async fn a_held_deployment_waits_for_its_action_and_its_run_sees_the_secret() {
    let s = setup(&[("branch-db", succeed_after(300))]).await;
    s.serving.hoist_command("deploy api to staging", "T1").await;
    let held = s.serving.slack.wait_for("waiting for `branch-db`").await;
    assert!(held.text.contains("Held api main"), "{}", held.text);

    let start = s.integration.wait_for(START, "branch-db").await;
    assert!(start.signature_ok, "hoist signs its webhooks");
    let payload = &start.body["payload"];
    assert_eq!(payload["action"], "branch-db");
    assert_eq!(payload["installationId"], "hoist:acme/api");
    assert_eq!(payload["resourceId"], "api-staging");
    assert_eq!(payload["deployment"]["environment"], "staging");
    assert_eq!(payload["deployment"]["sha"], s.sha.as_str());

    // Nothing reaches GitHub before the action is done; then it does.
    let (id, deployment) = s.created().await;
    // hoist creates the deployment before it answers the report.
    let patches = long_wait("hoist's answer to the report", || {
        let patches = s.integration.patch_statuses();
        (!patches.is_empty()).then_some(patches)
    })
    .await;
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].status, Some(200), "{:?}", patches[0].body);
    assert_eq!(deployment["environment"], "staging");
    assert!(
        !deployment.to_string().contains("pw-f00dfeed"),
        "the secret is not in the forge's payload: {deployment}"
    );
    s.serving.slack.wait_for("Deploying api main").await;

    s.announce(&deployment, "d-run-1").await;
    assert_eq!(s.final_state(id).await, "success");
    let seen = std::fs::read_to_string(s.seen.path().join("database_url")).unwrap();
    assert_eq!(seen, DATABASE_URL, "the run has the integration's secret");

    let log_path = format!("/deployments/github/acme/api/{id}/log");
    let (status, log) = http(s.serving.address, "GET", &log_path, &[], b"").await;
    assert_eq!(status, 200);
    assert!(log.contains("database is ***"), "{log}");
    assert!(!log.contains("pw-f00dfeed"), "{log}");
    for sent in s.serving.slack.sent() {
        assert!(!sent.text.contains("pw-f00dfeed"), "{}", sent.text);
    }
    assert!(
        !contains(&s.store_bytes(), "pw-f00dfeed"),
        "the store never holds the secret in plain text"
    );
    let log = s.serving.stderr();
    assert!(log.contains("hoist"), "hoist's log was captured");
    assert!(
        !log.contains("pw-f00dfeed"),
        "hoist's log never shows the secret"
    );
    assert!(!log.contains(ACTION_SECRET), "nor the action's own secret");
}

#[tokio::test]
async fn a_failed_action_ends_the_hold_and_the_others_are_told_to_stop() {
    let s = setup(&[
        (
            "branch-db",
            Plan::Fail {
                after: Duration::from_millis(300),
                reason: "branch limit reached".into(),
            },
        ),
        ("cache", Plan::Never),
    ])
    .await;
    s.serving.hoist_command("deploy api to staging", "T1").await;
    s.serving
        .slack
        .wait_for("waiting for `branch-db` and `cache`")
        .await;
    let failed = s
        .serving
        .slack
        .wait_for("Not deployed: `branch-db` failed")
        .await;
    assert!(
        failed.text.contains("branch limit reached"),
        "{}",
        failed.text
    );
    let cancel = s.integration.wait_for(CANCEL, "cache").await;
    assert!(cancel.signature_ok);
    assert!(
        !s.integration
            .deliveries()
            .iter()
            .any(|d| d.event == CANCEL && d.body["payload"]["action"] == "branch-db"),
        "the one that failed is not told to stop"
    );
    assert!(s.serving.github.deployment_ids("acme/api").is_empty());
}

#[tokio::test]
async fn an_action_that_never_reports_times_out_and_is_told_to_stop() {
    let s = setup(&[("branch-db", Plan::Never)]).await;
    s.serving.hoist_command("deploy api to staging", "T1").await;
    s.serving.slack.wait_for("waiting for `branch-db`").await;
    s.integration.wait_for(START, "branch-db").await;
    // Ten minutes pass: the deadline is moved into the past.
    let url = format!(
        "sqlite://{}",
        s.serving.dir.path().join("hoist.db").display()
    );
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE held_actions SET deadline = 0")
        .execute(&db)
        .await
        .unwrap();
    s.serving
        .slack
        .wait_for("Not deployed: `branch-db` did not report in time")
        .await;
    s.integration.wait_for(CANCEL, "branch-db").await;
    let hold = s.integration.wait_for(START, "branch-db").await.body["payload"]["deployment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let late = r#"{"status":"succeeded"}"#;
    let (status, body) = s.report(&hold, "branch-db", ACTION_SECRET, late).await;
    assert_eq!(status, 409, "{body}");
    assert!(s.serving.github.deployment_ids("acme/api").is_empty());
}

#[tokio::test]
async fn cancelling_a_held_deployment_tells_its_integrations() {
    let s = setup(&[("branch-db", Plan::Never)]).await;
    s.serving.hoist_command("deploy api to staging", "T1").await;
    s.serving.slack.wait_for("waiting for `branch-db`").await;
    let start = s.integration.wait_for(START, "branch-db").await;
    let hold = start.body["payload"]["deployment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.serving
        .hoist_command("deploy:cancel api in staging", "T2")
        .await;
    let cancelled = s.serving.slack.wait_for("cancelled api main").await;
    assert!(
        cancelled.text.contains("nothing was deployed"),
        "{}",
        cancelled.text
    );
    let cancel = s.integration.wait_for(CANCEL, "branch-db").await;
    assert!(cancel.signature_ok);
    assert_eq!(cancel.body["payload"]["deployment"]["id"], hold.as_str());
    let (status, _) = s
        .report(
            &hold,
            "branch-db",
            ACTION_SECRET,
            r#"{"status":"succeeded"}"#,
        )
        .await;
    assert_eq!(status, 409, "a report after the cancel changes nothing");
    assert!(s.serving.github.deployment_ids("acme/api").is_empty());
}

#[tokio::test]
async fn reports_that_are_not_the_integrations_change_nothing() {
    let s = setup(&[("branch-db", Plan::Never)]).await;
    s.serving.hoist_command("deploy api to staging", "T1").await;
    let start = s.integration.wait_for(START, "branch-db").await;
    let hold = start.body["payload"]["deployment"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let good = r#"{"status":"succeeded"}"#;
    let cases = [
        (hold.as_str(), "branch-db", "not-the-secret", good, 401),
        (hold.as_str(), "branch-db", "", good, 401),
        ("999", "branch-db", ACTION_SECRET, good, 404),
        ("not-a-number", "branch-db", ACTION_SECRET, good, 404),
        (hold.as_str(), "other", ACTION_SECRET, good, 404),
        (hold.as_str(), "branch-db", ACTION_SECRET, "{nope", 400),
        (
            hold.as_str(),
            "branch-db",
            ACTION_SECRET,
            r#"{"status":"done"}"#,
            400,
        ),
    ];
    for (hold, action, bearer, body, expected) in cases {
        let (status, answer) = s.report(hold, action, bearer, body).await;
        assert_eq!(status, expected, "{hold} {action} {bearer}: {answer}");
        assert!(!answer.contains(ACTION_SECRET), "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.serving.github.deployment_ids("acme/api").is_empty());
    // The real one still works after all that.
    let (status, answer) = s.report(&hold, "branch-db", ACTION_SECRET, good).await;
    assert_eq!(status, 200, "{answer}");
    s.created().await;
}

#[tokio::test]
async fn an_integration_that_fails_to_answer_gets_the_webhook_again() {
    let s = setup(&[("branch-db", succeed_after(100))]).await;
    s.integration.fail_deliveries(2);
    s.serving.hoist_command("deploy api to staging", "T1").await;
    s.created().await;
    let starts: Vec<_> = s
        .integration
        .deliveries()
        .into_iter()
        .filter(|d| d.event == START)
        .collect();
    assert_eq!(starts.len(), 3, "two failed answers, then delivered");
    assert!(
        starts
            .iter()
            .all(|d| d.delivery_id == starts[0].delivery_id),
        "a retry is the same delivery"
    );
}

#[tokio::test]
async fn removing_a_review_environment_sends_cleanup() {
    let s = setup(&[]).await;
    let yaml = format!(
        "review:\n  environment: pr${{{{ pr }}}}\n  transient_environment: true\n  auto_deploy_on: pr\n  required_contexts: []\n  \
         actions:\n    - name: branch-db\n      url: {}\n      secret: env:DB_ACTION_SECRET\n",
        s.integration.url("/hooks/branch-db")
    );
    s.serving
        .github
        .set_file("acme/api", "main", ".github/deploy.yml", &yaml);
    s.integration.answer_with("branch-db", succeed_after(100));
    s.serving.github.set_branch("acme/api", "feature-x", &s.sha);
    let head = ("feature-x", s.sha.as_str(), "acme/api");
    s.serving.pull_request_event("opened", 7, head, "p-1").await;
    s.integration.wait_for(START, "branch-db").await;
    let (id, deployment) = s.created().await;
    assert_eq!(deployment["environment"], "pr7");
    s.serving.github.add_status(id, "success", "deployed");

    s.serving.pull_request_event("closed", 7, head, "p-2").await;
    let cleanup = s.integration.wait_for(CLEANUP, "branch-db").await;
    assert!(cleanup.signature_ok);
    assert_eq!(cleanup.body["payload"]["deployment"]["environment"], "pr7");
    let removals = long_wait("the removal", || {
        let all = s.serving.github.deployment_requests("acme/api");
        all.iter().any(|d| d["task"] == "remove").then_some(all)
    })
    .await;
    assert_eq!(removals.len(), 2, "the removal is not held for the action");
}

#[tokio::test]
async fn closing_a_pull_request_cancels_its_held_review_app() {
    let s = setup(&[]).await;
    let yaml = format!(
        "review:\n  environment: pr${{{{ pr }}}}\n  transient_environment: true\n  auto_deploy_on: pr\n  required_contexts: []\n  \
         actions:\n    - name: branch-db\n      url: {}\n      secret: env:DB_ACTION_SECRET\n",
        s.integration.url("/hooks/branch-db")
    );
    s.serving
        .github
        .set_file("acme/api", "main", ".github/deploy.yml", &yaml);
    s.serving.github.set_branch("acme/api", "feature-x", &s.sha);
    let head = ("feature-x", s.sha.as_str(), "acme/api");
    s.serving.pull_request_event("opened", 7, head, "p-1").await;
    s.integration.wait_for(START, "branch-db").await;

    s.serving.pull_request_event("closed", 7, head, "p-2").await;
    let cancel = s.integration.wait_for(CANCEL, "branch-db").await;
    assert!(cancel.signature_ok);
    assert_eq!(cancel.body["payload"]["deployment"]["environment"], "pr7");
    long_wait("the cancel said on the pull request", || {
        s.serving
            .github
            .comments("acme/api", 7)
            .iter()
            .any(|c| c.body.contains("Closing pull request #7 cancelled"))
            .then_some(())
    })
    .await;
    assert!(s.serving.github.deployment_ids("acme/api").is_empty());
}
