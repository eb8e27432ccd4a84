//! Two `hoist serve` replicas on one PostgreSQL database, behind no load
//! balancer but the test: a stream of signed Slack commands and GitHub
//! `deployment_status` webhooks goes to both, one replica is killed with
//! SIGKILL mid-way (the one running a deployment), and the other must
//! carry everything either accepted: every accepted command makes exactly
//! one deployment, every accepted status exactly one chat message, and
//! the run the dead replica held is ended by the survivor once its lease
//! lapses.
//!
//! Needs `HOIST_TEST_DATABASE_URL` (`.ci/run` sets it); without it the
//! test says it skipped.

mod fakes;
mod harness;
mod stores;
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::future::join_all;
use harness::{DEPLOYMENT_FIXTURE, SIGNING_SECRET, WEBHOOK_SECRET, hmac_hex};
use serde_json::{Value, json};
use support::try_http;

/// Short leases, so the survivor takes over within seconds, not a minute.
const LEASE_SECS: &str = "3";
/// Commands sent while both replicas run, then during the kill.
const FIRST_COMMANDS: usize = 16;
const LATER_COMMANDS: usize = 16;
/// Status webhooks per deployment of the first commands.
const STATUSES_EACH: usize = 2;

/// Writes which hoist runs it (its parent), then outlives the kill.
const SCRIPT: &str = "#!/bin/sh\necho \"$PPID $$\" > \"$PIDS/runner\"\nsleep 120\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_loses_nothing_and_the_other_repeats_nothing() {
    let Some(url) = stores::postgres_url().await else {
        return;
    };
    let refusal = hoist_alone(&url, &["serve"]);
    assert!(
        !refusal.status.success()
            && String::from_utf8_lossy(&refusal.stderr).contains("run `hoist migrate` first"),
        "hoist serve on a database not migrated: {refusal:?}"
    );
    let migrations = &hoist::store::postgres::MIGRATOR;
    assert_eq!(
        hoist_migrate(&url),
        format!(
            "Applied {} migrations to the store at the test schema; its schema is at version {}.",
            migrations.iter().count(),
            migrations.iter().last().unwrap().version
        ),
    );
    let source = tempfile::tempdir().unwrap();
    support::repository(source.path(), &[("deploy.sh", SCRIPT, true)]);
    let sha = support::git(source.path(), &["rev-parse", "HEAD"]);
    let pids = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let env = [
        ("HOIST_STORE__URL", url.as_str()),
        ("HOIST_STORE__LEASE_SECS", LEASE_SECS),
    ];
    let mut first = harness::serve_with_env(
        &format!(
            "deploy_command = [\"./deploy.sh\"]\nenv = {{ PIDS = \"{pids}\" }}\n\
             [runner]\nenabled = true\nwork_dir = \"{work}\"\n",
            pids = pids.path().display(),
            work = work.path().display(),
        ),
        &env,
    )
    .await;
    first.github.serve_git("acme/api", source.path());
    first.github.set_branch("acme/api", "main", &sha);
    let (second_address, mut second) = first.start_replica(&env).await;
    let replicas = [first.address, second_address];
    let github = &first.github;
    let slack = &first.slack;

    // A run, claimed by whichever replica's runner is quicker.
    let run = github.add_deployment("acme/api", "main", "staging", json!({}));
    let run_id = run["id"].as_i64().unwrap();
    let mut event: Value = serde_json::from_str(DEPLOYMENT_FIXTURE).unwrap();
    event["deployment"] = run;
    event["repository"]["full_name"] = json!("acme/api");
    let body = serde_json::to_vec(&event).unwrap();
    assert_eq!(
        deliver(
            &replicas,
            &github_webhook("deployment", "run-1", &body),
            None
        )
        .await,
        202
    );
    let holder = support::eventually("the run to start", || {
        std::fs::read_to_string(pids.path().join("runner")).ok()
    })
    .await;
    let (holder_pid, script_pid) = holder.trim().split_once(' ').unwrap();
    let holder_pid: u32 = holder_pid.parse().unwrap();
    let victim = if first.process.id() == Some(holder_pid) {
        0
    } else {
        assert_eq!(second.id(), Some(holder_pid), "a replica runs it");
        1
    };

    // Commands to both, each from its own channel.
    let accepted = join_all((0..FIRST_COMMANDS).map(|i| {
        let request = slash(&format!("Cfirst{i}"), &format!("first.{i}"));
        async move { deliver(&replicas, &request, Some(i)).await }
    }))
    .await;
    assert!(accepted.iter().all(|status| *status == 200), "{accepted:?}");
    let ids = support::eventually("the first deployments", || {
        let ids = github.deployment_ids("acme/api");
        (ids.len() > FIRST_COMMANDS).then_some(ids)
    })
    .await;
    let made: Vec<i64> = ids.into_iter().filter(|id| *id != run_id).collect();

    // The stream: more commands and statuses of the first deployments,
    // the victim killed when half of it is sent. What the victim can no
    // longer take goes to the survivor, as a load balancer retries.
    // The stream. Its first half carries half the later commands, all to
    // the victim, and statuses to both; the victim is killed while GitHub
    // (slowed to a second an answer) holds some of its creates: made at
    // GitHub, not yet known to hoist. Then the rest: what the victim can
    // no longer take goes to the survivor, as a load balancer retries.
    let mut stream: Vec<(Request, usize)> = Vec::new();
    for i in 0..LATER_COMMANDS {
        stream.push((slash(&format!("Clater{i}"), &format!("later.{i}")), victim));
        for step in 0..STATUSES_EACH {
            let n = i * STATUSES_EACH + step;
            let id = made[n % made.len()];
            stream.push((status_webhook(github.deployment_json(id), n), n));
        }
    }
    // Slack refusing (429, retry in 1 s) across the kill: no reply is in
    // the air when the victim dies, so every message can be counted
    // exactly. (One Slack took in the instant before a replica died would
    // be sent again by the survivor: replies are delivered at least once.)
    let creates_before = creates(github);
    github.set_latency(Duration::from_secs(1));
    slack.rate_limit_all(true);
    let killed = tokio_util::sync::CancellationToken::new();
    let half = stream.len() / 2;
    let (sent, ()) = tokio::join!(
        join_all(stream.iter().enumerate().map(|(i, (request, turn))| {
            let killed = &killed;
            async move {
                if i >= half {
                    killed.cancelled().await;
                }
                deliver(&replicas, request, Some(*turn)).await
            }
        })),
        async {
            support::eventually_for(Duration::from_secs(30), "creates in flight", || {
                (creates(github) >= creates_before + 3).then_some(())
            })
            .await;
            match victim {
                0 => first.process.start_kill().unwrap(),
                _ => second.start_kill().unwrap(),
            }
            killed.cancel();
            tokio::time::sleep(Duration::from_millis(500)).await;
            slack.rate_limit_all(false);
            github.set_latency(Duration::ZERO);
        }
    );
    assert!(
        sent.iter().all(|status| *status == 200 || *status == 202),
        "every request is accepted by a replica: {sent:?}"
    );

    // Every command: exactly one deployment, from its channel.
    let channels: Vec<String> = (0..FIRST_COMMANDS)
        .map(|i| format!("Cfirst{i}"))
        .chain((0..LATER_COMMANDS).map(|i| format!("Clater{i}")))
        .collect();
    let by_channel = support::eventually_for(Duration::from_secs(60), "every deployment", || {
        let counts = deployments_by_channel(github);
        channels
            .iter()
            .all(|channel| counts.contains_key(channel))
            .then_some(counts)
    })
    .await;
    // Every status: exactly one thread message.
    let steps = LATER_COMMANDS * STATUSES_EACH;
    let messages = support::eventually_for(Duration::from_secs(60), "every status", || {
        let counts = step_messages(slack);
        (counts.len() == steps).then_some(counts)
    })
    .await;
    // The run the victim held: ended by the survivor after its lease.
    let ended = support::eventually_for(Duration::from_secs(60), "the run ended", || {
        let statuses = github.statuses(run_id);
        statuses
            .iter()
            .find(|status| status["state"] == "error")
            .map(|status| status["description"].as_str().unwrap_or("").to_owned())
    })
    .await;
    // Give a duplicate the time to show before counting.
    tokio::time::sleep(Duration::from_secs(2 * 3)).await;
    let by_channel_after = deployments_by_channel(github);
    let messages_after = step_messages(slack);
    let confirmed = confirmations(slack);
    let _ = std::process::Command::new("kill")
        .args(["-9", &format!("-{script_pid}")])
        .status();
    for channel in &channels {
        assert_eq!(
            by_channel_after.get(channel),
            Some(&1),
            "one deployment for the command in {channel} (first seen: {:?})",
            by_channel.get(channel)
        );
    }
    assert_eq!(
        by_channel_after.len(),
        channels.len(),
        "no deployment from elsewhere"
    );
    for channel in &channels {
        assert_eq!(
            confirmed.get(channel),
            Some(&1),
            "the command in {channel} is answered once with its deployment: {:?}",
            slack
                .sent()
                .iter()
                .filter(|sent| &sent.channel == channel)
                .map(|sent| &sent.text)
                .collect::<Vec<_>>()
        );
    }
    for step in 0..steps {
        assert_eq!(
            messages_after.get(&step),
            Some(&1),
            "one message for status step {step} (first seen: {:?})",
            messages.get(&step)
        );
    }
    assert!(
        ended.starts_with("interrupted: the hoist running it stopped"),
        "{ended}"
    );
    assert_eq!(
        github
            .statuses(run_id)
            .iter()
            .filter(|status| status["state"] == "error")
            .count(),
        1,
        "the run is ended once"
    );
    let _ = first.process.kill().await;
    let _ = second.kill().await;
}

/// One request as the platform would send it.
struct Request {
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn slash(channel: &str, trigger: &str) -> Request {
    let body = format!(
        "token=legacy&team_id=T0TEAM&channel_id={channel}&user_id=U0ADA&user_name=ada&command=%2Fdeploy&text=api+to+staging&trigger_id={trigger}"
    )
    .into_bytes();
    let timestamp = jiff::Timestamp::now().as_second().to_string();
    let signature = format!(
        "v0={}",
        hmac_hex(SIGNING_SECRET, &[b"v0:", timestamp.as_bytes(), b":", &body])
    );
    Request {
        path: "/slack/commands",
        headers: vec![
            ("X-Slack-Request-Timestamp".into(), timestamp),
            ("X-Slack-Signature".into(), signature),
        ],
        body,
    }
}

fn github_webhook(event: &str, delivery: &str, body: &[u8]) -> Request {
    Request {
        path: "/github/webhooks",
        headers: vec![
            ("X-GitHub-Event".into(), event.into()),
            ("X-GitHub-Delivery".into(), delivery.into()),
            (
                "X-Hub-Signature-256".into(),
                format!("sha256={}", hmac_hex(WEBHOOK_SECRET, &[body])),
            ),
        ],
        body: body.to_vec(),
    }
}

/// Status step `n` of `deployment`: its description names the step.
fn status_webhook(deployment: Value, n: usize) -> Request {
    let mut event: Value = serde_json::from_str(harness::STATUS_FIXTURE).unwrap();
    event["deployment"] = deployment;
    event["deployment_status"]["state"] = json!("in_progress");
    event["deployment_status"]["description"] = json!(format!("step {n}"));
    let at = jiff::Timestamp::from_millisecond(1_700_000_000_000 + n as i64).unwrap();
    event["deployment_status"]["created_at"] = json!(at.to_string());
    event["repository"]["full_name"] = json!("acme/api");
    github_webhook(
        "deployment_status",
        &format!("status-{n}"),
        &serde_json::to_vec(&event).unwrap(),
    )
}

/// Sends `request` to replica `turn` (alternating), or to the other when
/// that one is gone; the status of the replica that accepted it.
async fn deliver(replicas: &[SocketAddr; 2], request: &Request, turn: Option<usize>) -> u16 {
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let start = turn.unwrap_or(0);
    for attempt in 0..replicas.len() {
        let address = replicas[(start + attempt) % replicas.len()];
        if let Ok((status, _)) =
            try_http(address, "POST", request.path, &headers, &request.body).await
            && status != 0
        {
            return status;
        }
    }
    0
}

/// How many deployments each channel's commands made.
fn deployments_by_channel(github: &fakes::github::FakeGitHub) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for request in github.deployment_requests("acme/api") {
        if let Some(channel) = request
            .pointer("/payload/hoist/origin/conversation")
            .and_then(Value::as_str)
        {
            *counts.entry(channel.to_owned()).or_default() += 1;
        }
    }
    counts
}

/// Deployments the fake GitHub was asked to create so far.
fn creates(github: &fakes::github::FakeGitHub) -> usize {
    github
        .seen()
        .iter()
        .filter(|s| s.method == axum::http::Method::POST && s.path == "/repos/acme/api/deployments")
        .count()
}

/// How many answers "…: deployment #N created" each channel got.
fn confirmations(slack: &fakes::slack::FakeSlack) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for sent in slack.sent() {
        if sent.text.contains(": deployment #") && sent.text.contains(" created ") {
            *counts.entry(sent.channel).or_default() += 1;
        }
    }
    counts
}

/// How many thread messages each status step made.
fn step_messages(slack: &fakes::slack::FakeSlack) -> HashMap<usize, usize> {
    let mut counts = HashMap::new();
    for sent in slack.sent() {
        if sent.method != "chat.postMessage" {
            continue;
        }
        let step = sent
            .text
            .split("(step ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(step) = step {
            *counts.entry(step).or_default() += 1;
        }
    }
    counts
}

/// `hoist migrate` on `url`, with nothing but the environment; what it
/// printed, with the schema's url put as "the test schema".
fn hoist_migrate(url: &str) -> String {
    let output = hoist_alone(url, &["migrate"]);
    assert!(
        output.status.success(),
        "hoist migrate: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .replace(url, "the test schema")
}

/// `hoist ARGS` on the store `url`, configured by the environment alone
/// (GitHub as the forge, a free port), run to its end.
fn hoist_alone(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .env("HOIST_STORE__URL", url)
        .env("HOIST_FORGE__KIND", "github")
        .env("HOIST_SERVER__LISTEN", "127.0.0.1:0")
        .current_dir(Path::new(env!("CARGO_TARGET_TMPDIR")))
        .output()
        .expect("hoist runs")
}
