//! The runner's reaction time: from a signed `deployment` webhook to the
//! `in_progress` status at the fake GitHub, with a real `hoist serve`
//! (release build) on SQLite, the commit fetched over git from the fake,
//! and a deploy script that does nothing. Prints each figure beside its
//! target; asserts nothing.
//!
//! `cargo bench --bench runner`. `HOIST_BENCH_RUNS` sets how many
//! deployments are timed one after another (default 100).

mod common;
#[path = "../tests/fakes/mod.rs"]
mod fakes;
#[path = "../tests/harness/mod.rs"]
mod harness;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{Value, json};

use common::{ms, percentile, row};
use harness::Serving;

const DEPLOYMENT_FIXTURE: &str = include_str!("../tests/fixtures/github/deployment.created.json");

#[tokio::main]
async fn main() {
    let runs = std::env::var("HOIST_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100usize);
    let source = tempfile::tempdir().unwrap();
    support::repository(source.path(), &[("deploy.sh", "#!/bin/sh\nexit 0\n", true)]);
    let sha = support::git(source.path(), &["rev-parse", "HEAD"]);
    let work = tempfile::tempdir().unwrap();
    let mut serving = harness::serve_with(&format!(
        "deploy_command = [\"./deploy.sh\"]\n[runner]\nenabled = true\nworkers = 4\nwork_dir = \"{}\"\n",
        work.path().display()
    ))
    .await;
    serving.github.serve_git("acme/api", source.path());
    serving.github.set_branch("acme/api", "main", &sha);
    tokio::time::sleep(Duration::from_secs(1)).await;

    println!("hoist runner benchmark: loopback fakes, SQLite, release build, {runs} deployments");
    row("figure", "value".into(), "target");

    // The first deployment after start (hoist's connections still cold,
    // its git cache empty: the fetch itself comes after `in_progress`).
    let first = to_in_progress(&serving, "staging", "warm-up").await;
    row("first deployment after start", ms(first), "");

    let mut one_by_one = Vec::with_capacity(runs);
    for i in 0..runs {
        one_by_one.push(to_in_progress(&serving, "staging", &format!("seq-{i}")).await);
    }
    row(
        "deployment webhook -> in_progress, one at a time, p50",
        ms(percentile(&one_by_one, 50)),
        "",
    );
    row(
        "deployment webhook -> in_progress, one at a time, p99",
        ms(percentile(&one_by_one, 99)),
        "< 100 ms",
    );

    // Four environments at once: the four workers start side by side.
    let mut side_by_side = Vec::new();
    for round in 0..(runs / 4).max(1) {
        let started = futures_util::future::join_all((0..4).map(|lane| {
            let serving = &serving;
            async move {
                to_in_progress(
                    serving,
                    &format!("env-{lane}"),
                    &format!("par-{round}-{lane}"),
                )
                .await
            }
        }))
        .await;
        side_by_side.extend(started);
    }
    row(
        "... four environments at once, p50",
        ms(percentile(&side_by_side, 50)),
        "",
    );
    row(
        "... four environments at once, p99",
        ms(percentile(&side_by_side, 99)),
        "< 100 ms",
    );
    serving.process.kill().await.ok();
}

/// Makes a deployment at the fake, announces it, and waits for its run to
/// end; returns the time from the webhook to the `in_progress` status.
async fn to_in_progress(serving: &Serving, environment: &str, delivery: &str) -> Duration {
    let deployment = serving
        .github
        .add_deployment("acme/api", "main", environment, json!({}));
    let id = deployment["id"].as_i64().unwrap();
    let mut event: Value = serde_json::from_str(DEPLOYMENT_FIXTURE).unwrap();
    event["deployment"] = deployment;
    event["repository"]["full_name"] = json!("acme/api");
    let statuses = format!("/repos/acme/api/deployments/{id}/statuses");
    let sent = Instant::now();
    assert_eq!(
        serving.github_event("deployment", delivery, &event).await,
        202
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = serving.github.seen();
        let started = seen.iter().find(|s| {
            s.method == Method::POST
                && s.path == statuses
                && s.body.as_ref().is_some_and(|b| b["state"] == "in_progress")
        });
        let ended = serving
            .github
            .statuses(id)
            .iter()
            .any(|s| matches!(s["state"].as_str(), Some("success" | "failure" | "error")));
        if let (Some(started), true) = (started, ended) {
            return started.at.duration_since(sent);
        }
        assert!(Instant::now() < deadline, "deployment {id} did not run");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}
