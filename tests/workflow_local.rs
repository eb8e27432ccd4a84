//! The workflow in-process on the local forge, with a recording chat
//! adapter behind the real outbox, and hoist's HTTP server over real
//! HTTP: idempotent requests, the pull-request short form, and the routes
//! of `hoist serve`.

mod support;

use std::sync::{Arc, Mutex};

use hoist::app::Hoist;
use hoist::chat::{ChatAdapter, DeliveryError, Inbound, Reply};
use hoist::config::Config;
use hoist::domain::{Actor, Origin, Platform, RepoName};
use hoist::forge::DeploymentFilter;
use hoist::relay::Outbox;
use support::repository;
use tokio_util::sync::CancellationToken;

const DEPLOY_YML: &str = "staging:\n  required_contexts: []\n";
const SCRIPT: &str = "#!/bin/sh\necho \"shipping $HOIST_REF to $HOIST_ENVIRONMENT\"\n";

/// Every reply the outbox delivered, in order.
#[derive(Default)]
struct Recorder {
    replies: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ChatAdapter for Recorder {
    fn platform(&self) -> Platform {
        Platform::Shell
    }

    async fn deliver(
        &self,
        reply: &Reply,
        _card_message: Option<&str>,
    ) -> Result<Option<String>, DeliveryError> {
        self.replies.lock().unwrap().push(reply.text.clone());
        Ok(None)
    }
}

struct Running {
    _dir: tempfile::TempDir,
    hoist: Arc<Hoist>,
    recorder: Arc<Recorder>,
    stop: CancellationToken,
    outbox: tokio::task::JoinHandle<()>,
    repo: RepoName,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let web = repository(
        &dir.path().join("web"),
        &[
            (".github/deploy.yml", DEPLOY_YML, false),
            ("deploy.sh", SCRIPT, true),
        ],
    );
    git_branch(&web, "feature/x");
    let config = Config::from_toml_str(&format!(
        "[store]\nurl = \"sqlite://{}\"\n[apps.web]\nrepo = \"acme/web\"\npath = \"{}\"\ndefault_environment = \"staging\"\ndeploy_command = [\"./deploy.sh\"]\n",
        dir.path().join("hoist.db").display(),
        web.display()
    ))
    .unwrap();
    let built = Hoist::build(config).await.unwrap();
    tokio::spawn(Arc::clone(&built.hoist).pump_events(built.events));
    let recorder = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let outbox = Outbox::new([Arc::clone(&recorder) as Arc<dyn ChatAdapter>]);
    let outbox = tokio::spawn(outbox.run_until(Arc::clone(&built.hoist), stop.clone()));
    tokio::spawn(Arc::clone(&built.hoist).run_runner_until(stop.clone()));
    Running {
        _dir: dir,
        hoist: built.hoist,
        recorder,
        stop,
        outbox,
        repo: "acme/web".parse().unwrap(),
    }
}

fn git_branch(dir: &std::path::Path, name: &str) {
    support::git(dir, &["branch", name]);
}

fn inbound(text: &str, request_key: &str, implied_app: Option<&str>) -> Inbound {
    let mut inbound = Inbound::typed(
        Origin {
            platform: Platform::Shell,
            conversation: "room-1".into(),
            message: None,
            link: None,
            actor: Actor {
                id: "U1".into(),
                name: "Ada".into(),
                login: Some("ada".into()),
            },
        },
        text,
        request_key,
    );
    inbound.implied.app = implied_app.map(str::to_owned);
    inbound
}

impl Running {
    /// Waits for runs and statuses to finish and every reply to be out.
    async fn replies(self) -> Vec<String> {
        self.hoist.settle().await;
        self.stop.cancel();
        self.outbox.await.unwrap();
        self.recorder.replies.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn the_same_request_twice_makes_one_deployment() {
    let running = start().await;
    let first = running
        .hoist
        .handle(inbound("deploy web to staging", "slack:T1:trigger-9", None))
        .await
        .unwrap();
    let again = running
        .hoist
        .handle(inbound("deploy web to staging", "slack:T1:trigger-9", None))
        .await
        .unwrap();
    assert_eq!(first.kind, "deployed");
    assert_eq!(again.kind, "deployed");
    assert!(
        again.detail.starts_with("Already on it: deployment #1"),
        "{}",
        again.detail
    );
    let deployments = running
        .hoist
        .forge
        .list_deployments(&running.repo, &DeploymentFilter::default())
        .await
        .unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(
        deployments[0].creator, "ada",
        "the GitHub login where known"
    );
    assert_eq!(
        deployments[0].payload["hoist"]["origin"]["conversation"],
        "room-1"
    );
    let replies = running.replies().await;
    // One answer (the retry's answer is deduplicated) and one line per status.
    let answers = replies
        .iter()
        .filter(|r| r.starts_with("Deploying web"))
        .count();
    assert_eq!(answers, 1, "{replies:#?}");
    assert_eq!(
        replies.iter().filter(|r| r.contains(": succeeded")).count(),
        1,
        "{replies:#?}"
    );
}

#[tokio::test]
async fn in_a_pull_request_the_first_word_may_be_a_ref() {
    let running = start().await;
    let outcome = running
        .hoist
        .handle(inbound(
            ".deploy feature/x to staging",
            "pr:1:comment:7",
            Some("web"),
        ))
        .await
        .unwrap();
    assert_eq!(outcome.kind, "deployed", "{}", outcome.detail);
    assert!(
        outcome.detail.starts_with("Deploying web feature/x ("),
        "{}",
        outcome.detail
    );
    let without_ref = running
        .hoist
        .handle(inbound(".deploy to staging", "pr:1:comment:8", Some("web")))
        .await
        .unwrap();
    assert!(
        without_ref.detail.starts_with("Deploying web main ("),
        "{}",
        without_ref.detail
    );
    running.replies().await;
}

async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    support::http(address, "GET", path, &[], b"").await
}

#[tokio::test]
async fn the_server_answers_health_metrics_and_run_logs() {
    let running = start().await;
    running
        .hoist
        .handle(inbound("deploy web to staging", "shell:1", None))
        .await
        .unwrap();
    running.hoist.settle().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(hoist::server::serve(Arc::clone(&running.hoist), listener));

    assert_eq!(get(address, "/healthz").await, (200, "ok\n".into()));

    let (status, metrics) = get(address, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("hoist_deployments_created_total 1"),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"deployed\""), "{metrics}");

    let (status, log) = get(address, "/deployments/local/acme/web/1/log").await;
    assert_eq!(status, 200, "{log}");
    assert!(log.contains("out | shipping main to staging"), "{log}");
    assert!(log.contains("hoist | success"), "{log}");

    // A browser gets a page; the run has ended, so it does not refresh.
    let accept = [("Accept", "text/html,application/xhtml+xml")];
    let (status, page) = support::http(
        address,
        "GET",
        "/deployments/local/acme/web/1/log",
        &accept,
        b"",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<title>Deployment #1 of acme/web</title>"),
        "{page}"
    );
    assert!(page.contains("out | shipping main to staging"), "{page}");
    assert!(page.contains("<p>Finished.</p>"), "{page}");
    assert!(!page.contains("refresh"), "{page}");

    let (status, _) = get(address, "/deployments/local/acme/web/99/log").await;
    assert_eq!(status, 404);
    let (status, _) = get(address, "/deployments/local/..%2F/web/1/log").await;
    assert_eq!(status, 404);
    running.replies().await;
}
