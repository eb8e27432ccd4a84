//! hoist's main path under load, against loopback fakes of GitHub and
//! Slack and a real `hoist serve` (release build) on SQLite. Prints each
//! figure beside its target; asserts nothing (figures are not tests).
//!
//! `cargo bench --bench relay`. `HOIST_BENCH_SECS` sets the sustained
//! run's length (default 10; the target speaks of 5 minutes: 300).

#[path = "../tests/fakes/mod.rs"]
mod fakes;
#[path = "../tests/harness/mod.rs"]
mod harness;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use harness::Serving;

#[tokio::main]
async fn main() {
    let sustained = std::env::var("HOIST_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10u64);
    let mut serving = harness::serve().await;
    let pid = serving.process.id().expect("hoist runs");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(pid);

    println!(
        "hoist benchmark: loopback fakes, SQLite, release build, {} cores; one client, sending sequentially",
        cores()
    );
    row("figure", "value".into(), "target");

    let (ack, created) = slash_commands(&serving, 200, "a").await;
    row(
        "slash command acknowledged, p50",
        ms(percentile(&ack, 50)),
        "",
    );
    row(
        "slash command acknowledged, p99",
        ms(percentile(&ack, 99)),
        "< 50 ms",
    );
    row(
        "slash command -> deployment at GitHub, p50",
        ms(percentile(&created, 50)),
        "",
    );
    row(
        "slash command -> deployment at GitHub, p99",
        ms(percentile(&created, 99)),
        "",
    );

    serving.github.set_latency(Duration::from_millis(50));
    let (_, slow) = slash_commands(&serving, 40, "b").await;
    let p50 = percentile(&slow, 50);
    row("... with GitHub 50 ms away, p50", ms(p50), "");
    row(
        "GitHub round trips on the critical path (p50 / 50 ms)",
        format!("{:.1}", p50.as_secs_f64() / 0.050),
        "<= 2 (warm deploy.yml cache)",
    );
    serving.github.set_latency(Duration::ZERO);

    let (latencies, rate) = webhooks(&serving, sustained).await;
    row(
        "signed deployment_status -> Slack, p50",
        ms(percentile(&latencies, 50)),
        "",
    );
    row(
        "signed deployment_status -> Slack, p99",
        ms(percentile(&latencies, 99)),
        "< 100 ms at 1,000/s",
    );
    row(
        "sustained webhooks relayed per second",
        format!("{rate:.0}"),
        ">= 1,000",
    );
    row(
        "resident memory, idle",
        format!("{} MiB", idle_rss / 1024),
        "< 30 MiB",
    );
    row(
        &format!("resident memory after {sustained} s of load"),
        format!("{} MiB", rss_kib(pid) / 1024),
        "no growth across a 5-minute run",
    );
    serving.process.kill().await.ok();
}

/// `n` slash commands one after another, each in its own channel: the
/// time to the acknowledgement, and to the deployment at the fake GitHub.
async fn slash_commands(serving: &Serving, n: usize, tag: &str) -> (Vec<Duration>, Vec<Duration>) {
    let mut ack = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    for i in 0..n {
        let before = serving.github.deployment_ids("acme/api").len();
        let sent = Instant::now();
        let (status, _) = serving
            .slash_in(
                &format!("C{tag}{i}"),
                "api to staging",
                &format!("{tag}.{i}"),
                0,
            )
            .await;
        assert_eq!(status, 200);
        ack.push(sent.elapsed());
        loop {
            let seen = serving.github.seen();
            let posts: Vec<_> = seen
                .iter()
                .filter(|s| {
                    s.method == axum::http::Method::POST && s.path == "/repos/acme/api/deployments"
                })
                .collect();
            if posts.len() > before {
                created.push(posts[before].at.duration_since(sent));
                break;
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
    (ack, created)
}

/// Signed status webhooks for the deployments made so far, as fast as the
/// server takes them, for `secs` seconds: the latency of each to its Slack
/// message, and the rate at which they were relayed.
async fn webhooks(serving: &Serving, secs: u64) -> (Vec<Duration>, f64) {
    let ids = serving.github.deployment_ids("acme/api");
    let started = Instant::now();
    let mut sent_at = Vec::new();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let id = ids[(n as usize) % ids.len()];
        let at = jiff::Timestamp::UNIX_EPOCH
            + jiff::SignedDuration::from_millis(1_700_000_000_000 + n as i64);
        let status = serving
            .status_webhook_with(
                id,
                "in_progress",
                &format!("bench-{n}"),
                &format!("step {n}"),
                &at.to_string(),
            )
            .await;
        assert_eq!(status, 202);
        sent_at.push((format!("(step {n})"), Instant::now()));
        n += 1;
    }
    // Wait for the last one to arrive.
    let last = sent_at
        .last()
        .map(|(needle, _)| needle.clone())
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline && !serving.slack.got(&last) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_done = started.elapsed();
    // Each status's thread message, by its step number.
    let arrived: std::collections::HashMap<u64, Instant> = serving
        .slack
        .sent()
        .into_iter()
        .filter(|s| s.method == "chat.postMessage")
        .filter_map(|s| {
            let step = s
                .text
                .split("(step ")
                .nth(1)?
                .split(')')
                .next()?
                .parse()
                .ok()?;
            Some((step, s.at))
        })
        .collect();
    let latencies: Vec<Duration> = sent_at
        .iter()
        .enumerate()
        .filter_map(|(step, (_, at))| {
            arrived
                .get(&(step as u64))
                .map(|arrival| arrival.saturating_duration_since(*at))
        })
        .collect();
    (latencies, n as f64 / all_done.as_secs_f64())
}

fn percentile(values: &[Duration], p: usize) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted
        .get((sorted.len() * p / 100).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn row(figure: &str, value: String, target: &str) {
    println!("{figure:<58} {value:>12}   {target}");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
