//! The dashboard's pages with a busy month behind them: a real `hoist
//! serve` (release build) on SQLite with the fake GitHub, its store filled
//! with `HOIST_BENCH_DEPLOYMENTS` deployments (default 10,000) of one app
//! to three environments over the last 30 days, each with its statuses.
//! Each page is asked for one at a time (latency), then the overview by 8
//! clients at once (throughput). Prints each figure beside its target;
//! checks only that each page is served (figures are not tests).
//!
//! `cargo bench --bench dashboard`.

mod common;
#[path = "../tests/fakes/mod.rs"]
mod fakes;
#[path = "../tests/harness/mod.rs"]
mod harness;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hoist::domain::{Actor, AppName, DeploymentId, DeploymentState, Origin, Platform, Sha};
use hoist::forge::NewStatus;
use hoist::store::{DeploymentKey, DeploymentRecord};

use common::{ms, percentile, row};
use harness::web::Web;

const ENVIRONMENTS: [&str; 3] = ["staging", "qa", "production"];
const PEOPLE: [&str; 5] = ["ada", "grace", "hal", "linus", "mason"];
/// Requests per page for its latency figures.
const ASKED: usize = 100;
const CLIENTS: usize = 8;

#[tokio::main]
async fn main() {
    let deployments: i64 = std::env::var("HOIST_BENCH_DEPLOYMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let serving = harness::serve_with(
        "[dashboard]\nenabled = true\npublic = true\nclient_id = \"bench\"\nclient_secret = \"bench-secret\"\n\
         session_key = \"a-session-key-for-the-dashboard-benchmark-0123\"\n",
    )
    .await;
    serving.github.oauth_app("bench", "bench-secret");

    let started = Instant::now();
    seed(&serving, deployments).await;
    println!(
        "hoist dashboard benchmark: loopback fake GitHub, SQLite, release build; \
         {deployments} deployments over 30 days, seeded in {:.1} s; anonymous viewer of a public dashboard",
        started.elapsed().as_secs_f64()
    );
    row("figure", "value".into(), "target");

    let middle = deployments / 2;
    let pages = [
        ("overview (/)", "/".to_owned()),
        ("history, first page, 3 charts", "/history".to_owned()),
        (
            "history, production failures",
            "/history?environment=production&state=failure".to_owned(),
        ),
        ("history, page 200", "/history?page=200".to_owned()),
        (
            "a deployment's page",
            format!("/deployments/github/acme/api/{middle}"),
        ),
    ];
    for (name, path) in &pages {
        let times = one_at_a_time(&serving, path).await;
        row(&format!("{name}, p50"), ms(percentile(&times, 50)), "");
        row(
            &format!("{name}, p99"),
            ms(percentile(&times, 99)),
            "< 100 ms",
        );
    }
    let (served, took) = at_once(&serving, "/").await;
    row(
        &format!("overview, {CLIENTS} clients at once"),
        format!("{:.0}/s", served as f64 / took.as_secs_f64()),
        ">= 100/s",
    );
}

/// Records `count` deployments, newest last, each with `in_progress` and
/// then `success` (one in ten `failure`), as the status relay would.
async fn seed(serving: &harness::Serving, count: i64) {
    let url = format!("sqlite://{}", serving.dir.path().join("hoist.db").display());
    let store = hoist::store::open(&url).await.expect("the store opens");
    let now = jiff::Timestamp::now().as_millisecond();
    let month = 30 * 24 * 3600 * 1000_i64;
    for id in 1..=count {
        let created = now - month + month * id / (count + 1);
        let at = |ms: i64| jiff::Timestamp::from_millisecond(created + ms).unwrap();
        let person = PEOPLE[id as usize % PEOPLE.len()];
        let record = DeploymentRecord {
            key: DeploymentKey {
                forge: "github".into(),
                repo: "acme/api".parse().unwrap(),
                id: DeploymentId(id),
            },
            app: AppName::new("api").unwrap(),
            environment: ENVIRONMENTS[id as usize % ENVIRONMENTS.len()].into(),
            git_ref: "main".into(),
            sha: Sha::new(&format!("{id:040x}")).unwrap(),
            task: "deploy".into(),
            origin: Origin {
                platform: Platform::Slack,
                conversation: "C0DEPLOYS".into(),
                message: None,
                link: None,
                actor: Actor {
                    id: format!("U0{person}"),
                    name: person.into(),
                    login: Some(format!("{person}-gh")),
                },
            },
            request_key: format!("bench-{id}"),
            created_at: at(0),
            decision: Some("policy: allowed (the benchmark)".into()),
        };
        store.record_deployment(&record).await.unwrap();
        let last = if id % 10 == 0 {
            DeploymentState::Failure
        } else {
            DeploymentState::Success
        };
        for (n, state) in [DeploymentState::InProgress, last].into_iter().enumerate() {
            let status = NewStatus {
                state,
                description: Some(format!("{state} (the benchmark)")),
                log_url: None,
                environment_url: None,
            };
            store
                .record_status(&record.key, &status, at(60_000 * (n as i64 + 1)))
                .await
                .unwrap();
        }
    }
}

async fn one_at_a_time(serving: &harness::Serving, path: &str) -> Vec<Duration> {
    let mut web = Web::new();
    let mut times = Vec::with_capacity(ASKED);
    for _ in 0..ASKED {
        let started = Instant::now();
        let page = web.get(serving.address, path).await;
        times.push(started.elapsed());
        assert_eq!(page.status, 200, "{path}: {}", page.body);
    }
    times
}

/// Pages served to `CLIENTS` clients asking `ASKED` times each, and how
/// long that took.
async fn at_once(serving: &harness::Serving, path: &str) -> (usize, Duration) {
    let started = Instant::now();
    let clients = (0..CLIENTS).map(|_| async {
        let mut web = Web::new();
        for _ in 0..ASKED {
            assert_eq!(web.get(serving.address, path).await.status, 200);
        }
    });
    join_all(clients).await;
    (CLIENTS * ASKED, started.elapsed())
}
