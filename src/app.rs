//! The running bot: configuration, forge, store and runner wired together,
//! and the background work (forge events, outbox) that keeps it moving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ForgeKind};
use crate::forge::github::{GitHubAuth, GitHubForge, GitHubSettings};
use crate::forge::local::LocalForge;
use crate::forge::{EventSink, EventSource, Forge, ForgeEvent, event_queue};
use crate::metrics::Metrics;
use crate::runner::{Masker, Runner, RunnerApp, RunnerSettings};
use crate::store::sqlite::SqliteStore;
use crate::store::{InboxLane, Store};

/// Everything a command or event handler needs.
pub struct Hoist {
    pub config: Arc<Config>,
    pub forge: Arc<dyn Forge>,
    /// The forge again when it is GitHub: pull request conversations use
    /// its comments, reactions and permissions.
    pub github: Option<Arc<GitHubForge>>,
    pub store: Arc<dyn Store>,
    /// Present when some app has a `deploy_command` hoist runs itself.
    pub runner: Option<Arc<Runner>>,
    pub metrics: Metrics,
    /// Wakes the outbox worker when a reply is queued.
    pub(crate) outbox_wakeup: Notify,
    /// Wake the inbox's workers when a delivery is stored in their lane.
    statuses_wakeup: Notify,
    requests_wakeup: Notify,
    /// Runs in flight, so [`Hoist::settle`] can wait.
    tasks: TaskTracker,
    /// Held (shared) by every command being answered; the event pump
    /// takes it exclusively for a moment before each event.
    pub(crate) answering: tokio::sync::RwLock<()>,
    events: EventSink,
}

/// A built hoist and the parts the caller starts.
pub struct Built {
    pub hoist: Arc<Hoist>,
    /// Forge events to pump with [`Hoist::pump_events`].
    pub events: EventSource,
    /// The local forge, when it is the forge (the demo marks checks on it).
    pub local_forge: Option<Arc<LocalForge>>,
}

impl Hoist {
    pub async fn build(config: Config) -> anyhow::Result<Built> {
        let store = Arc::new(
            SqliteStore::connect(&config.store.url)
                .await
                .with_context(|| format!("cannot open the store at {}", config.store.url))?,
        );
        let (sink, source) = event_queue();
        let (forge, local_forge, github): (Arc<dyn Forge>, _, _) = match config.forge.kind {
            ForgeKind::Local => {
                let local = Arc::new(LocalForge::new(
                    store.clone(),
                    config.local_repos(),
                    sink.clone(),
                ));
                (local.clone(), Some(local), None)
            }
            ForgeKind::Github => {
                let github = Arc::new(GitHubForge::new(github_settings(&config)?)?);
                (github.clone(), None, Some(github))
            }
        };
        // The runner of this release runs local-forge deployments; running
        // GitHub's `deployment` events comes with the webhook intake.
        let runner = (config.forge.kind == ForgeKind::Local)
            .then(|| runner_settings(&config))
            .filter(|settings| !settings.apps.is_empty())
            .map(|settings| Arc::new(Runner::new(forge.clone(), store.clone(), settings)));
        let hoist = Arc::new(Hoist {
            config: Arc::new(config),
            forge,
            github,
            store,
            runner,
            metrics: Metrics::default(),
            outbox_wakeup: Notify::new(),
            statuses_wakeup: Notify::new(),
            requests_wakeup: Notify::new(),
            tasks: TaskTracker::new(),
            answering: tokio::sync::RwLock::new(()),
            events: sink,
        });
        Ok(Built {
            hoist,
            events: source,
            local_forge,
        })
    }

    /// Hands every forge event to its handler until the forge goes away.
    ///
    /// Statuses are relayed one at a time, in the order the forge sent
    /// them, so a conversation never sees `pending` after `success`. Runs
    /// go to their own tasks. Before each event the pump waits for the
    /// commands being answered: the local forge sends a deployment's
    /// events while the command that made it is still running, and the
    /// person should read "Deploying…" before its first status.
    pub async fn pump_events(self: Arc<Self>, mut events: EventSource) {
        while let Some(event) = events.recv().await {
            drop(self.answering.write().await);
            match event {
                ForgeEvent::Deployment { repo, deployment } => {
                    if let Some(runner) = self
                        .runner
                        .as_ref()
                        .filter(|runner| runner.handles(&repo, &deployment))
                    {
                        let runner = Arc::clone(runner);
                        self.tasks.spawn(async move {
                            if let Err(error) = runner.run(&repo, &deployment).await {
                                tracing::error!(%repo, id = %deployment.id, error = format!("{error:#}"), "deployment run failed");
                            }
                        });
                    }
                }
                ForgeEvent::DeploymentStatus {
                    repo,
                    deployment,
                    status,
                    at,
                } => {
                    if let Err(error) = self.relay_status(&repo, &deployment, &status, at).await {
                        tracing::error!(%repo, id = %deployment.id, error = format!("{error:#}"), "status relay failed");
                    }
                }
                // The local forge has no pushes or pull requests to send.
                ForgeEvent::Push(_)
                | ForgeEvent::PullRequest(_)
                | ForgeEvent::ChecksChanged { .. } => {}
            }
            events.handed_on();
        }
    }

    /// Ends the runs a previous hoist left unfinished (see
    /// [`Runner::end_interrupted_runs`]); the events it causes tell their
    /// conversations. Call once at start, with the event pump running.
    pub async fn end_interrupted_runs(&self) -> anyhow::Result<()> {
        let Some(runner) = &self.runner else {
            return Ok(());
        };
        let ended = runner.end_interrupted_runs().await?;
        if ended > 0 {
            tracing::warn!(
                ended,
                "runs left unfinished by a previous hoist were marked error"
            );
        }
        Ok(())
    }

    /// What wakes the inbox worker of `lane`.
    pub(crate) fn inbox_wakeup(&self, lane: InboxLane) -> &Notify {
        match lane {
            InboxLane::Statuses => &self.statuses_wakeup,
            InboxLane::Requests => &self.requests_wakeup,
        }
    }

    /// Deployments running or events waiting to be handled.
    pub fn busy(&self) -> bool {
        self.events.in_queue() > 0 || !self.tasks.is_empty()
    }

    /// Waits until every event sent so far has been handled and every run
    /// it started has finished (the shell waits for this at end of input).
    pub async fn settle(&self) {
        while self.busy() {
            self.tasks.close();
            self.tasks.wait().await;
            self.tasks.reopen();
            tokio::task::yield_now().await;
        }
    }
}

fn github_settings(config: &Config) -> anyhow::Result<GitHubSettings> {
    let github = &config.github;
    let auth = match (&github.token, github.app_id, &github.private_key_path) {
        (_, Some(app_id), Some(path)) => {
            let pem = std::fs::read_to_string(path).with_context(|| {
                format!("github.private_key_path: cannot read {}", path.display())
            })?;
            GitHubAuth::App {
                app_id,
                private_key_pem: SecretString::from(pem),
            }
        }
        (Some(token), _, _) => GitHubAuth::Token(token.clone()),
        _ => {
            anyhow::bail!(
                "github.token (or github.app_id with github.private_key_path) must be set when forge.kind = \"github\""
            )
        }
    };
    Ok(GitHubSettings {
        api_url: github.api_url.clone(),
        auth,
        request_timeout: Duration::from_secs(github.request_timeout_secs),
        max_rate_limit_wait: Duration::from_secs(github.max_rate_limit_wait_secs),
        rules_fresh_for: Duration::from_secs(github.rules_cache_secs),
    })
}

fn runner_settings(config: &Config) -> RunnerSettings {
    let apps: HashMap<_, _> = config
        .apps
        .iter()
        .filter_map(|(name, app)| {
            Some((
                name.clone(),
                RunnerApp {
                    repo: app.repo.clone(),
                    deploy_command: app.deploy_command.clone()?,
                    remove_command: app.remove_command.clone(),
                    source: app.path.clone()?,
                    env: app.env.clone(),
                    timeout: config.app_timeout(app),
                },
            ))
        })
        .collect();
    RunnerSettings {
        apps,
        public_url: config.server.public_url.clone(),
        masker: Masker::new(config.log_secrets()),
    }
}
