//! The main path with the real binary: a signed Slack slash command
//! creates a deployment at the fake GitHub, and a signed
//! `deployment_status` webhook reaches the Slack conversation, each once.

mod fakes;
mod harness;
mod support;

use std::time::Duration;

use harness::{serve, serve_with, start_hoist};
use serde_json::{Value, json};
use support::http;

#[tokio::test]
async fn slash_command_to_github_deployment_to_slack_status() {
    let mut serving = serve().await;

    let (status, ack) = serving.slash("api to staging", "1.2.3", 0).await;
    assert_eq!(status, 200, "{ack}");
    assert!(ack.contains("Working on `deploy api to staging`"), "{ack}");
    let created = serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    assert_eq!(created.method, "chat.postMessage");
    assert_eq!(created.channel, "C0DEPLOYS");
    let blocks = created
        .blocks
        .as_ref()
        .expect("a Block Kit message")
        .to_string();
    assert!(
        blocks.contains("*api* `main` (1111111) to *staging*: created"),
        "{blocks}"
    );
    assert!(blocks.contains("requested by ada-gh"), "{blocks}");

    let ids = serving.github.deployment_ids("acme/api");
    assert_eq!(ids.len(), 1);
    let sent = &serving.github.deployment_requests("acme/api")[0];
    assert_eq!(sent["payload"]["hoist"]["origin"]["platform"], "slack");
    assert_eq!(
        sent["payload"]["hoist"]["origin"]["actor"]["login"],
        "ada-gh"
    );

    // Slack (or an impatient person's client) sends the same request again.
    assert_eq!(serving.slash("api to staging", "1.2.3", 0).await.0, 200);

    // The status from GitHub reaches the conversation; Slack is rate
    // limiting at that moment, and hoist waits as told.
    serving.slack.answer_next(429, Some(1));
    assert_eq!(serving.status_webhook(ids[0], "success", "d-1").await, 202);
    let done = serving
        .slack
        .wait_for("to staging: succeeded (rolled out by CI)")
        .await;
    assert_eq!(done.channel, "C0DEPLOYS");
    // The deployment's message is updated in place, and the change is
    // told in its thread.
    let sent = serving.slack.sent();
    let update = sent
        .iter()
        .find(|s| s.method == "chat.update")
        .expect("an update");
    assert_eq!(update.ts, created.ts);
    assert!(
        update
            .blocks
            .as_ref()
            .unwrap()
            .to_string()
            .contains("to *staging*: succeeded")
    );
    // Posted just after the update: it may not be there yet.
    let in_thread = support::eventually("the change in the thread", || {
        serving
            .slack
            .sent()
            .into_iter()
            .find(|s| s.method == "chat.postMessage" && s.text.contains("succeeded"))
    })
    .await;
    assert_eq!(in_thread.thread_ts.as_deref(), Some(created.ts.as_str()));
    assert!(serving.slack.refused() >= 1);
    // GitHub redelivers it.
    assert_eq!(serving.status_webhook(ids[0], "success", "d-1").await, 200);

    // Who am I: the Slack user and the GitHub login from `[users]`, to
    // the typer alone.
    assert_eq!(serving.hoist_command("whoami", "1.2.3w").await.0, 200);
    let me = serving
        .slack
        .wait_for("hoist knows you as GitHub user `ada-gh`")
        .await;
    assert_eq!(me.method, "chat.postEphemeral");
    assert!(me.text.contains("(U0ADA) on Slack"), "{}", me.text);

    // Mistakes go to the typer alone.
    assert_eq!(serving.slash("apy to staging", "1.2.4", 0).await.0, 200);
    let mistake = serving
        .slack
        .wait_for("I don't know an app called `apy`")
        .await;
    assert_eq!(mistake.method, "chat.postEphemeral");
    assert_eq!(mistake.user.as_deref(), Some("U0ADA"));

    // A second, new request deploys again; forged and stale ones are
    // refused and change nothing.
    assert_eq!(serving.slash("api to staging", "1.2.5", 0).await.0, 200);
    let now = jiff::Timestamp::now().as_second().to_string();
    let forged = [
        ("X-Slack-Request-Timestamp", now.as_str()),
        ("X-Slack-Signature", "v0=00"),
    ];
    let (status, _) = http(
        serving.address,
        "POST",
        "/slack/commands",
        &forged,
        b"command=%2Fdeploy",
    )
    .await;
    assert_eq!(status, 401);
    let stale = serving.slash("api to staging", "1.2.6", 600).await;
    assert_eq!(
        stale,
        (
            401,
            "the request timestamp is more than five minutes away from now\n".into()
        )
    );

    // Give the workers a moment, then count: one deployment per trigger
    // that was accepted (1.2.3 twice, 1.2.5 once), one line per status.
    serving.slack.wait_for("deployment #1002 created").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(serving.github.deployment_ids("acme/api").len(), 2);
    let sent = serving.slack.sent();
    assert_eq!(
        sent.iter()
            .filter(|s| s.text.contains("deployment #1001 created"))
            .count(),
        1,
        "{sent:#?}"
    );
    assert_eq!(
        sent.iter()
            .filter(|s| s.method == "chat.postMessage" && s.text.contains("succeeded"))
            .count(),
        1,
        "{sent:#?}"
    );
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_mention_deploys_once_however_often_slack_retries() {
    let mut serving = serve().await;
    let check = include_str!("fixtures/slack/url_verification.slack-docs.json");
    let (status, answer) = serving
        .signed_slack("/slack/events", check.as_bytes(), 0, &[])
        .await;
    assert_eq!(status, 200);
    let expected: Value = serde_json::from_str(check).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap()["challenge"],
        expected["challenge"]
    );

    // Slack's app_mention example, asking for a deployment.
    let mut event: Value = serde_json::from_str(include_str!(
        "fixtures/slack/event_callback.app_mention.slack-docs.json"
    ))
    .unwrap();
    event["event"]["text"] = json!("<@U0LAN0Z89> deploy api to staging");
    let body = serde_json::to_vec(&event).unwrap();
    assert_eq!(
        serving.signed_slack("/slack/events", &body, 0, &[]).await.0,
        200
    );
    let retry = [
        ("X-Slack-Retry-Num", "1"),
        ("X-Slack-Retry-Reason", "http_timeout"),
    ];
    assert_eq!(
        serving
            .signed_slack("/slack/events", &body, 0, &retry)
            .await
            .0,
        200
    );
    let posted = serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    assert_eq!(posted.channel, "C123ABC456");

    // Other events are acknowledged and ignored; unsigned ones refused.
    let other = br#"{"type": "event_callback", "team_id": "T1", "event_id": "Ev9", "event": {"type": "reaction_added"}}"#;
    assert_eq!(
        serving.signed_slack("/slack/events", other, 0, &[]).await.0,
        200
    );
    let (status, _) = http(serving.address, "POST", "/slack/events", &[], &body).await;
    assert_eq!(status, 401);

    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(serving.github.deployment_ids("acme/api").len(), 1);
    assert_eq!(serving.slack.sent().len(), 1, "{:#?}", serving.slack.sent());
    serving.process.kill().await.unwrap();
}

/// The manifest users paste into Slack names routes hoist serves and
/// commands hoist understands.
#[test]
fn the_slack_manifest_points_at_real_routes() {
    let manifest: Value =
        serde_yaml_ng::from_str(include_str!("../commands/slack-manifest.yml")).unwrap();
    let commands = manifest["features"]["slash_commands"].as_array().unwrap();
    for command in commands {
        assert_eq!(command["url"], "https://hoist.example.com/slack/commands");
        let name = command["command"].as_str().unwrap().trim_start_matches('/');
        assert!(
            name == "hoist" || hoist::command::usage(name).is_some(),
            "{name}"
        );
    }
    assert_eq!(
        manifest["settings"]["event_subscriptions"]["request_url"],
        "https://hoist.example.com/slack/events"
    );
    assert_eq!(
        manifest["settings"]["interactivity"]["request_url"],
        "https://hoist.example.com/slack/interactions"
    );
    let scopes = manifest["oauth_config"]["scopes"]["bot"]
        .as_array()
        .unwrap();
    for scope in ["commands", "chat:write", "app_mentions:read"] {
        assert!(scopes.contains(&json!(scope)), "{scope}");
    }
}

#[tokio::test]
async fn a_reply_slack_keeps_refusing_is_given_up_listed_and_retried() {
    let mut serving = serve_with("[outbox]\ngive_up_after_secs = 1\n").await;
    // Slack fails the first two attempts (the second comes after the
    // give-up time), then works again.
    serving.slack.answer_next(500, None);
    serving.slack.answer_next(500, None);
    assert_eq!(serving.slash("api to staging", "9.9.9", 0).await.0, 200);

    let config = serving.dir.path().join("hoist.toml").display().to_string();
    // The operator runs it with the server's file and no secrets: it
    // only reads and writes the store.
    let env = [];
    let mut listed = String::new();
    for _ in 0..100 {
        listed = support::hoist(&["outbox", "--config", &config], "", &env)
            .await
            .stdout;
        if listed.contains("Deploying api main") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(listed.starts_with("#1 slack C0DEPLOYS queued "), "{listed}");
    assert!(
        listed.contains("after 2 attempts: Deploying api main (1111111) to staging"),
        "{listed}"
    );
    assert!(serving.slack.sent().is_empty());

    let retried = support::hoist(&["outbox", "--config", &config, "--retry-all"], "", &env).await;
    assert!(retried.success, "{retried:?}");
    assert_eq!(
        retried.stdout,
        "#1 queued again; a running `hoist serve` delivers it.\n"
    );
    serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    let after = support::hoist(&["outbox", "--config", &config], "", &env).await;
    assert!(
        after.stdout.starts_with("No replies were given up"),
        "{after:?}"
    );
    let wrong = support::hoist(&["outbox", "--config", &config, "--retry", "42"], "", &env).await;
    assert!(!wrong.success);
    assert!(
        wrong.stderr.contains("#42 is not a given-up reply"),
        "{wrong:?}"
    );
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn kill_9_after_the_acknowledgement_loses_nothing() {
    let mut serving = serve().await;
    assert_eq!(serving.slash("api to staging", "7.7.7", 0).await.0, 200);
    serving.slack.wait_for("deployment #1001 created").await;
    let id = serving.github.deployment_ids("acme/api")[0];

    // Slack is down when the status arrives: the webhook is acknowledged
    // (stored), the reply is queued and fails...
    serving.slack.answer_next(500, None);
    let refused_before = serving.slack.refused();
    assert_eq!(serving.status_webhook(id, "success", "d-kill").await, 202);
    for _ in 0..100 {
        if serving.slack.refused() > refused_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        serving.slack.refused() > refused_before,
        "the reply was tried"
    );
    // ...and hoist dies without a chance to clean up.
    serving.process.kill().await.unwrap(); // SIGKILL
    serving.process.wait().await.unwrap();
    assert!(
        !serving
            .slack
            .sent()
            .iter()
            .any(|s| s.text.contains("succeeded"))
    );

    // A new process on the same store delivers it, once.
    let config = serving.dir.path().join("hoist.toml");
    serving.process = start_hoist(&config, serving.address).await;
    // The redelivered webhook changes nothing either.
    assert_eq!(serving.status_webhook(id, "success", "d-kill").await, 200);
    serving
        .slack
        .wait_for("to staging: succeeded (rolled out by CI)")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let told = serving
        .slack
        .sent()
        .into_iter()
        .filter(|s| s.method == "chat.postMessage" && s.text.contains("succeeded"))
        .count();
    assert_eq!(told, 1);
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn missed_statuses_are_caught_up_and_silence_is_reported() {
    let mut serving = serve_with("[watch]\ninterval_secs = 1\nsilence_secs = 2\n").await;
    assert_eq!(serving.slash("api to staging", "5.5.1", 0).await.0, 200);
    serving.slack.wait_for("deployment #1001 created").await;
    // CI posts a status on GitHub; no webhook reaches hoist.
    serving.github.add_status(1001, "success", "deployed by CI");
    serving
        .slack
        .wait_for("to staging: succeeded (deployed by CI)")
        .await;

    // A deployment nothing picks up.
    assert_eq!(serving.slash("api to staging", "5.5.2", 0).await.0, 200);
    let silence = serving
        .slack
        .wait_for("Deployment #1002 of api main to staging has had no status for 2 s")
        .await;
    assert_eq!(silence.channel, "C0DEPLOYS");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let sent = serving.slack.sent();
    assert_eq!(
        sent.iter()
            .filter(|s| s.text.contains("has had no status"))
            .count(),
        1,
        "told once"
    );
    assert_eq!(
        sent.iter()
            .filter(|s| s.method == "chat.postMessage" && s.text.contains("succeeded"))
            .count(),
        1,
        "caught up once, however many rounds"
    );
    // Polling an unchanged list costs nothing: GitHub answered 304. (A
    // finished deployment, #1001, is no longer polled at all.)
    let polls = serving.github.seen();
    assert!(
        polls
            .iter()
            .any(|s| s.path.contains("/deployments/1002/statuses") && s.status == 304),
        "{polls:#?}"
    );
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn the_cancel_button_calls_off_a_deployment_that_has_not_started() {
    let mut serving = serve().await;
    assert_eq!(serving.slash("api to staging", "4.4.1", 0).await.0, 200);
    let card = serving.slack.wait_for("deployment #1001 created").await;
    let blocks = card.blocks.expect("Block Kit").to_string();
    assert!(
        blocks.contains("hoist_cancel") && blocks.contains("github/acme/api/1001"),
        "{blocks}"
    );

    let press = |key: &str, trigger: &str| {
        let mut payload: Value = serde_json::from_str(include_str!(
            "fixtures/slack/block_actions.button.slack-docs.json"
        ))
        .unwrap();
        payload["trigger_id"] = json!(trigger);
        payload["user"]["id"] = json!("U0ADA");
        payload["user"]["username"] = json!("ada");
        payload["channel"]["id"] = json!("C0DEPLOYS");
        payload["actions"][0]["action_id"] = json!("hoist_cancel");
        payload["actions"][0]["value"] = json!(key);
        serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
    };
    let body = press("github/acme/api/1001", "t-1");
    assert_eq!(
        serving
            .signed_slack("/slack/interactions", body.as_bytes(), 0, &[])
            .await
            .0,
        200
    );
    let answer = serving
        .slack
        .wait_for("Cancelled deployment #1001 of api main to staging.")
        .await;
    assert_eq!(answer.method, "chat.postEphemeral");
    assert_eq!(answer.user.as_deref(), Some("U0ADA"));
    let statuses = serving.github.statuses(1001);
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0]["state"], "error");
    assert_eq!(
        statuses[0]["description"],
        "Cancelled by ada before it started"
    );

    // Once something has started it, it is too late.
    assert_eq!(serving.slash("api to staging", "4.4.2", 0).await.0, 200);
    serving.slack.wait_for("deployment #1002 created").await;
    serving
        .github
        .add_status(1002, "in_progress", "rolling out");
    let body = press("github/acme/api/1002", "t-2");
    assert_eq!(
        serving
            .signed_slack("/slack/interactions", body.as_bytes(), 0, &[])
            .await
            .0,
        200
    );
    serving
        .slack
        .wait_for("Too late to cancel deployment #1002 of api main to staging: it is already in progress.")
        .await;
    assert_eq!(serving.github.statuses(1002).len(), 1, "nothing posted");

    // Unsigned presses are refused.
    let (status, _) = http(
        serving.address,
        "POST",
        "/slack/interactions",
        &[],
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 401);
    serving.process.kill().await.unwrap();
}
