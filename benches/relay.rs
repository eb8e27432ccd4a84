//! hoist's main path under load, against loopback fakes of GitHub and
//! Slack and a real `hoist serve` (release build) on SQLite, then the
//! status path on PostgreSQL with one and two replicas, side by side.
//! Prints each figure beside its target; asserts nothing (figures are not
//! tests).
//!
//! `cargo bench --bench relay`. `HOIST_BENCH_SECS` sets the paced run's
//! length (default 10; the target speaks of 5 minutes: 300). The
//! PostgreSQL columns need `HOIST_TEST_DATABASE_URL` (a schema of their
//! own is made on that server).

mod common;
#[path = "../tests/fakes/mod.rs"]
mod fakes;
#[path = "../tests/harness/mod.rs"]
mod harness;
#[path = "../tests/stores/mod.rs"]
mod stores;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use common::{ms, percentile, row};
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
    let (idle_rss, idle_anon) = memory_kib(pid);

    println!(
        "hoist benchmark: loopback fakes, SQLite, release build, {} cores; webhooks from 32 senders at once",
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

    let paced = webhooks(&serving, &[serving.address], paced_load(sustained), 0).await;
    row(
        "at 1,000 webhooks/s offered: accepted per second",
        format!("{:.0}", paced.accepted),
        ">= 1,000",
    );
    row(
        "... signed deployment_status -> Slack, p50",
        ms(percentile(&paced.latencies, 50)),
        "",
    );
    row(
        "... signed deployment_status -> Slack, p99",
        ms(percentile(&paced.latencies, 99)),
        "< 100 ms at 1,000/s",
    );
    let flat_out = webhooks(&serving, &[serving.address], flat_out_load(), 1_000_000).await;
    row(
        "as fast as hoist takes them: relayed per second",
        format!("{:.0}", flat_out.relayed),
        ">= 1,000",
    );
    let one_by_one = webhooks(
        &serving,
        &[serving.address],
        Load {
            rate: None,
            in_flight: 1,
            secs: 5,
        },
        2_000_000,
    )
    .await;
    row(
        "one sender, one at a time: accepted per second",
        format!("{:.0}", one_by_one.accepted),
        "",
    );
    let (loaded_rss, loaded_anon) = memory_kib(pid);
    row(
        "resident memory, idle (own memory / all with the mapped store)",
        format!("{} / {} MiB", idle_anon / 1024, idle_rss / 1024),
        "< 30 MiB",
    );
    row(
        &format!("... after the load (own / all), {sustained} s paced run"),
        format!("{} / {} MiB", loaded_anon / 1024, loaded_rss / 1024),
        "no growth across a 5-minute run",
    );
    serving.process.kill().await.ok();
    stores_side_by_side(sustained, &paced, &flat_out).await;
}

/// The status path on SQLite (the figures above) and on PostgreSQL with
/// one and two replicas, webhooks sent to the replicas in turn.
async fn stores_side_by_side(sustained: u64, sqlite_paced: &Relayed, sqlite_flat: &Relayed) {
    let Some(url) = stores::postgres_url().await else {
        println!("PostgreSQL: skipped (set HOIST_TEST_DATABASE_URL for its columns)");
        return;
    };
    hoist::store::migrate(&url).await.expect("migrations apply");
    let env = [("HOIST_STORE__URL", url.as_str())];
    let mut serving = harness::serve_with_env("", &env).await;
    slash_commands(&serving, 20, "pg").await;
    let one = [serving.address];
    let pg_paced = webhooks(&serving, &one, paced_load(sustained), 3_000_000).await;
    let pg_flat = webhooks(&serving, &one, flat_out_load(), 4_000_000).await;
    let (second, mut replica) = serving.start_replica(&env).await;
    let two = [serving.address, second];
    let two_paced = webhooks(&serving, &two, paced_load(sustained), 5_000_000).await;
    let two_flat = webhooks(&serving, &two, flat_out_load(), 6_000_000).await;
    replica.kill().await.ok();
    serving.process.kill().await.ok();

    println!();
    println!(
        "{:<44} {:>12} {:>12} {:>12}   target",
        "status webhooks, by store", "SQLite", "PG 1", "PG 2"
    );
    let side = |figure: &str, values: [String; 3], target: &str| {
        println!(
            "{figure:<44} {:>12} {:>12} {:>12}   {target}",
            values[0], values[1], values[2]
        );
    };
    let per_second = |relayed: f64| format!("{relayed:.0}");
    side(
        "as fast as hoist takes them: relayed/s",
        [sqlite_flat, &pg_flat, &two_flat].map(|r| per_second(r.relayed)),
        ">= 1,000",
    );
    side(
        &format!("1,000/s offered for {sustained} s: accepted/s"),
        [sqlite_paced, &pg_paced, &two_paced].map(|r| per_second(r.accepted)),
        ">= 1,000",
    );
    side(
        "... webhook -> Slack, p99",
        [sqlite_paced, &pg_paced, &two_paced].map(|r| ms(percentile(&r.latencies, 99))),
        "< 100 ms at 1,000/s",
    );
}

fn paced_load(secs: u64) -> Load {
    Load {
        rate: Some(1000.0),
        in_flight: 32,
        secs,
    }
}

fn flat_out_load() -> Load {
    Load {
        rate: None,
        in_flight: 32,
        secs: 5,
    }
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

/// How the status webhooks of one run are sent.
struct Load {
    /// Webhooks per second to aim at; `None`: as fast as hoist takes them.
    rate: Option<f64>,
    /// Requests in flight at once (GitHub sends deliveries side by side).
    in_flight: usize,
    secs: u64,
}

/// What one run of status webhooks measured.
struct Relayed {
    /// Each webhook's time from being sent to its Slack thread message.
    latencies: Vec<Duration>,
    /// Webhooks acknowledged per second while sending.
    accepted: f64,
    /// Webhooks relayed to Slack per second, from the first sent to the
    /// last delivered.
    relayed: f64,
}

/// Signed status webhooks for the deployments made so far, each with its
/// own step number, sent as `load` says, to each of `targets` in turn.
async fn webhooks(
    serving: &Serving,
    targets: &[SocketAddr],
    load: Load,
    first_step: u64,
) -> Relayed {
    let ids = serving.github.deployment_ids("acme/api");
    let threads_before = serving.slack.thread_messages();
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let stop = started + Duration::from_secs(load.secs);
    let sender = || async {
        let mut sent = Vec::new();
        loop {
            let n = next.fetch_add(1, Ordering::Relaxed);
            if let Some(rate) = load.rate {
                tokio::time::sleep_until(
                    (started + Duration::from_secs_f64(n as f64 / rate)).into(),
                )
                .await;
            }
            if Instant::now() >= stop {
                return sent;
            }
            let step = first_step + n;
            let id = ids[(step as usize) % ids.len()];
            let at = jiff::Timestamp::UNIX_EPOCH
                + jiff::SignedDuration::from_millis(1_700_000_000_000 + step as i64);
            let sent_at = Instant::now();
            let status = serving
                .status_webhook_to(
                    targets[(step as usize) % targets.len()],
                    id,
                    "in_progress",
                    &format!("bench-{step}"),
                    &format!("step {step}"),
                    &at.to_string(),
                )
                .await;
            assert_eq!(status, 202);
            sent.push((step, sent_at));
        }
    };
    let sent: Vec<(u64, Instant)> = join_all((0..load.in_flight).map(|_| sender()))
        .await
        .into_iter()
        .flatten()
        .collect();
    let sending = started.elapsed();
    // Wait for every one to arrive (each step's thread message).
    let last = sent
        .iter()
        .map(|(step, _)| *step)
        .max()
        .unwrap_or(first_step);
    let deadline = Instant::now() + Duration::from_secs(600);
    while serving.slack.thread_messages() < threads_before + sent.len() && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let arrived = arrivals(serving);
    let done = arrived.get(&last).map_or(started.elapsed(), |at| {
        at.saturating_duration_since(started)
    });
    let latencies = sent
        .iter()
        .filter_map(|(step, at)| arrived.get(step).map(|a| a.saturating_duration_since(*at)))
        .collect();
    Relayed {
        latencies,
        accepted: sent.len() as f64 / sending.as_secs_f64(),
        relayed: sent.len() as f64 / done.as_secs_f64().max(sending.as_secs_f64()),
    }
}

/// When each step's message reached the fake Slack's thread.
fn arrivals(serving: &Serving) -> HashMap<u64, Instant> {
    serving
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
        .collect()
}

/// Resident memory in KiB: all of it, and the anonymous part (hoist's own
/// heap and stacks, without the file pages SQLite maps).
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
