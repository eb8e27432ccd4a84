//! The running bot: configuration, forge, store and runner wired together,
//! and the background work (forge events, outbox) that keeps it moving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actions::SealKey;
use crate::config::{Config, ForgeKind};
use crate::domain::RepoName;
use crate::forge::github::{GitHubAuth, GitHubForge, GitHubSettings};
use crate::forge::local::LocalForge;
use crate::forge::{Deployment, EventSink, EventSource, Forge, ForgeEvent, GitAccess, event_queue};
use crate::metrics::Metrics;
use crate::runner::{Masker, Runner, RunnerApp, RunnerSettings, Source};
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
    /// Seals the secrets integration actions hand to deployments.
    pub seal: Arc<SealKey>,
    /// Wakes the outbox worker when a reply is queued.
    pub(crate) outbox_wakeup: Notify,
    /// Wakes the watch loop to look at waiting auto-deploys at once (a
    /// lock they waited for was released).
    pub(crate) waiting_wakeup: Notify,
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
        // (The store's own tools, `hoist migrate` and the like, need no
        // forge and may run with any.)
        if config.forge.kind == ForgeKind::Local && config.store.is_shared() {
            anyhow::bail!(
                "forge.kind = \"local\" keeps its events in one process: use SQLite (store.url = \"sqlite://...\"), or GitHub for several replicas"
            );
        }
        let store = crate::store::open(&config.store.url).await?;
        let seal = Arc::new(seal_key(&config)?);
        let (sink, source) = event_queue();
        let (forge, local_forge, github): (Arc<dyn Forge>, _, _) = match config.forge.kind {
            ForgeKind::Local => {
                let local = Arc::new(LocalForge::new(
                    Arc::clone(&store) as Arc<dyn crate::store::LocalForgeStore>,
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
        // The local forge's deployments are always run; GitHub's when the
        // operator turns the runner on.
        let git: Option<Arc<dyn GitAccess>> = github
            .as_ref()
            .map(|github| Arc::clone(github) as Arc<dyn GitAccess>);
        let runner = (config.forge.kind == ForgeKind::Local || config.runner.enabled)
            .then(|| runner_settings(&config, &seal))
            .filter(|settings| !settings.apps.is_empty())
            .map(|settings| Arc::new(Runner::new(forge.clone(), git, store.clone(), settings)));
        let hoist = Arc::new(Hoist {
            config: Arc::new(config),
            forge,
            github,
            store,
            runner,
            metrics: Metrics::default(),
            seal,
            outbox_wakeup: Notify::new(),
            waiting_wakeup: Notify::new(),
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
                    if let Err(error) = self.deployment_created(&repo, &deployment).await {
                        tracing::error!(%repo, id = %deployment.id, error = format!("{error:#}"), "cannot queue a deployment's run");
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

    /// A deployment was created (the local forge's event, GitHub's
    /// `deployment` webhook): the runner queues it if it is its to run.
    pub async fn deployment_created(
        &self,
        repo: &RepoName,
        deployment: &Deployment,
    ) -> anyhow::Result<()> {
        if let Some(runner) = &self.runner {
            let accepted = runner.accept(repo, deployment).await?;
            tracing::debug!(%repo, id = %deployment.id, ?accepted, "deployment seen by the runner");
        }
        Ok(())
    }

    /// Runs the runner's workers (if hoist runs deployments) until `stop`.
    pub async fn run_runner_until(self: Arc<Self>, stop: CancellationToken) {
        if let Some(runner) = &self.runner {
            Arc::clone(runner).run_workers_until(stop).await;
        }
    }

    /// Ends the runs a previous hoist left unfinished (see
    /// [`Runner::end_interrupted_runs`]); the events it causes tell their
    /// conversations. Call once at start, with the event pump running.
    pub async fn end_interrupted_runs(&self) -> anyhow::Result<()> {
        let Some(runner) = &self.runner else {
            return Ok(());
        };
        // A shared store's running jobs may be another replica's, alive:
        // only those whose lease lapsed are ended.
        let ended = if self.config.store.is_shared() {
            runner.end_lapsed_runs().await?
        } else {
            runner.end_interrupted_runs().await?
        };
        if ended > 0 {
            tracing::warn!(
                ended,
                "runs left unfinished by a stopped hoist were marked error"
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
        self.events.in_queue() > 0
            || !self.tasks.is_empty()
            || self.runner.as_ref().is_some_and(|runner| runner.is_busy())
    }

    /// Waits until every event sent so far has been handled and every run
    /// it started has finished (the shell waits for this at end of input).
    pub async fn settle(&self) {
        while self.busy() {
            self.tasks.close();
            self.tasks.wait().await;
            self.tasks.reopen();
            if let Some(runner) = &self.runner {
                runner.wait_idle().await;
            }
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

fn runner_settings(config: &Config, seal: &Arc<SealKey>) -> RunnerSettings {
    let apps: HashMap<_, _> = config
        .apps
        .iter()
        .filter_map(|(name, app)| {
            let source = match config.forge.kind {
                ForgeKind::Local => Source::Local(app.path.clone()?),
                ForgeKind::Github => Source::Remote,
            };
            Some((
                name.clone(),
                RunnerApp {
                    repo: app.repo.clone(),
                    deploy_command: app.deploy_command.clone()?,
                    remove_command: app.remove_command.clone(),
                    shell: app.shell,
                    source,
                    env: app.env.clone(),
                    timeout: config.app_timeout(app),
                    environment_urls: app.environment_urls.clone(),
                },
            ))
        })
        .collect();
    RunnerSettings {
        apps,
        known_apps: config.apps.keys().cloned().collect(),
        public_url: config.server.public_url.clone(),
        masker: Masker::new(config.log_secrets()),
        seal: Arc::clone(seal),
        workers: config.runner.workers,
        lease: config.store.lease(),
        work_dir: config.runner.work_dir.clone(),
    }
}

/// The key that seals action secrets: `actions.key`, else one made now
/// that lives as long as this process.
fn seal_key(config: &Config) -> anyhow::Result<SealKey> {
    match &config.actions.key {
        Some(key) => SealKey::from_hex(key.expose_secret().trim())
            .map_err(|error| anyhow::anyhow!("actions.key: {error}")),
        None => {
            if config.store.is_shared() {
                tracing::warn!(
                    "actions.key is not set: the secrets an integration action hands a deployment \
                     open only on the replica that received them; set HOIST_ACTIONS__KEY, the same \
                     on every replica"
                );
            }
            Ok(SealKey::random())
        }
    }
}
