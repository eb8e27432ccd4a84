//! The deployment runner: runs an app's deploy command for a deployment
//! and reports back to the forge as statuses (Heaven's job, done in-house).
//!
//! A deployment is first *accepted* ([`Runner::accept`]): hoist decides
//! whether it is one of its apps' (a deployment another tool runs is left
//! alone, one it cannot run gets `error` saying why), puts it in the
//! store's run queue ([`crate::store::RunQueue`]) and posts `pending`, or
//! `queued` with its place when its environment is busy. Workers
//! ([`Runner::run_workers_until`]) take jobs from the queue, one per
//! repository and environment at a time, and post `in_progress`, then
//! `success` (exit 0), `failure` (non-zero exit, a signal, stopped on
//! request) or `error` (could not start, timeout, interrupted by a
//! restart). Every status links to the run's log.
//!
//! A run: the deployed commit's files in a fresh directory (exported from
//! the repository on disk, or fetched from GitHub into the app's git
//! cache first: [`checkout`]), the command without a shell (unless the
//! app asks for one), the deployment's facts in `HOIST_*` variables and
//! the payload in a file, output to the store line by line with secrets
//! masked, and a deadline after which the whole process group dies.
//!
//! **Architecture invariant:** the runner never changes the source
//! repository (HEAD, index, work tree): it exports files through a private
//! index into its own directory.

mod capture;
mod checkout;
mod execute;
mod process;
mod recovery;
mod workdir;
mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{DeploymentState, RepoName};
use crate::forge::{Deployment, Forge, GitAccess, NewStatus};
use crate::store::{DeploymentKey, RunCancel, RunJob, Store};
pub use capture::{MASK, Masker};
pub use checkout::Source;

/// GitHub cuts a status description at 140 characters; keep ours whole.
const MAX_DESCRIPTION_CHARS: usize = 140;

/// The runner's configuration, from `[runner]` and `[apps.NAME]`.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Apps the runner deploys, by app name (several apps may share a
    /// repository).
    pub apps: HashMap<String, RunnerApp>,
    /// Every app in hoist.toml, with a command or not: a deployment of one
    /// without a command is some other tool's to run.
    pub known_apps: HashSet<String>,
    /// hoist's public base URL, for links to run logs.
    pub public_url: String,
    /// What run logs never show ([`Masker`]).
    pub masker: Masker,
    /// Opens the secrets integration actions handed to a deployment.
    pub seal: std::sync::Arc<crate::actions::SealKey>,
    /// Runs at once.
    pub workers: usize,
    /// A running job's lease (`store.lease_secs`), renewed while it runs.
    pub lease: std::time::Duration,
    /// Where fetched apps keep their git cache (`<work_dir>/<app>.git`).
    pub work_dir: PathBuf,
}

/// How to deploy one app.
#[derive(Debug, Clone)]
pub struct RunnerApp {
    /// The repository the app's deployments are made on.
    pub repo: RepoName,
    /// `argv`, run without a shell in the checkout of the deployed commit;
    /// `./deploy.sh` means the script in the repository.
    pub deploy_command: Vec<String>,
    /// `argv` for the task `remove`; without it, `remove` is an error.
    pub remove_command: Option<Vec<String>>,
    /// Run the command as one `sh -c` line instead.
    pub shell: bool,
    /// Where the files come from.
    pub source: Source,
    /// Extra environment for the command. hoist's `HOIST_*` facts win over
    /// a variable of the same name here.
    pub env: BTreeMap<String, String>,
    /// After this long the command and everything it started is killed.
    pub timeout: Duration,
    /// Environment -> the app's URL there (`environment_url`).
    pub environment_urls: BTreeMap<String, String>,
}

/// Runs deployments for the apps in its settings.
pub struct Runner {
    forge: Arc<dyn Forge>,
    /// How remote sources are fetched (GitHub's git over HTTPS).
    git: Option<Arc<dyn GitAccess>>,
    store: Arc<dyn Store>,
    settings: RunnerSettings,
    /// This process's name on the jobs it holds.
    worker: String,
    /// Wakes an idle worker: a job was queued or a lane freed.
    wakeup: Notify,
    /// Deployments accepted in this process and not yet finished, so the
    /// shell can wait for its runs ([`Runner::wait_idle`]). Jobs another
    /// process queued are not in it.
    open: tokio::sync::watch::Sender<HashSet<DeploymentKey>>,
    /// One fetch at a time into an app's git cache.
    caches: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Cancelled when hoist shuts down: running commands are stopped
    /// (their whole group killed) rather than orphaned.
    shutdown: CancellationToken,
}

/// What [`Runner::accept`] made of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Queued; `ahead` deployments to its environment go first.
    Queued { ahead: usize },
    /// Queued before (a redelivered event): nothing done.
    AlreadyQueued,
    /// Not for this runner: another tool runs it.
    NotOurs,
    /// It cannot be run; it got `error` with this reason.
    Refused(String),
}

/// Where a deployment's run log is shown:
/// `{public_url}/deployments/{forge}/{owner}/{repo}/{id}/log`.
pub fn log_url(public_url: &str, key: &DeploymentKey) -> String {
    format!(
        "{}/deployments/{}/{}/{}/{}/log",
        public_url.trim_end_matches('/'),
        key.forge,
        key.repo.owner(),
        key.repo.name(),
        key.id
    )
}

/// The queue lane of a repository's environment: one run at a time.
pub fn lane(repo: &RepoName, environment: &str) -> String {
    format!("{}/{environment}", repo.to_string().to_ascii_lowercase())
}

/// How the run ended, as the final status says it.
struct Verdict {
    state: DeploymentState,
    description: String,
    /// Stopped on request (cancel, shutdown): the description says by
    /// whom once that is known.
    stopped: bool,
}

impl Verdict {
    fn new(state: DeploymentState, description: impl Into<String>) -> Self {
        Self {
            state,
            description: description.into(),
            stopped: false,
        }
    }

    fn error(description: impl Into<String>) -> Self {
        Self::new(DeploymentState::Error, description)
    }
}

/// Whose app a deployment is, as [`Runner::accept`] decides it.
enum Claim<'a> {
    Ours(&'a str, &'a RunnerApp),
    NotOurs,
    Refused(String),
}

impl Runner {
    pub fn new(
        forge: Arc<dyn Forge>,
        git: Option<Arc<dyn GitAccess>>,
        store: Arc<dyn Store>,
        settings: RunnerSettings,
    ) -> Self {
        Self {
            forge,
            git,
            store,
            settings,
            worker: format!("hoist-{}", uuid::Uuid::new_v4()),
            wakeup: Notify::new(),
            open: tokio::sync::watch::Sender::new(HashSet::new()),
            caches: std::sync::Mutex::default(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Whether this runner deploys `deployment`: it names (in
    /// `payload.hoist.app`, or hubot-deploy's `payload.name`) one of its
    /// apps on this repository, or names none and the repository has
    /// exactly one.
    pub fn handles(&self, repo: &RepoName, deployment: &Deployment) -> bool {
        matches!(self.claim(repo, deployment), Claim::Ours(..))
    }

    fn claim<'a>(&'a self, repo: &RepoName, deployment: &Deployment) -> Claim<'a> {
        let apps = &self.settings.apps;
        let mut of_repo = apps.iter().filter(|(_, app)| &app.repo == repo);
        let named = ["/hoist/app", "/name"]
            .iter()
            .find_map(|pointer| deployment.payload.pointer(pointer))
            .and_then(|name| name.as_str())
            .map(str::to_ascii_lowercase);
        let claim = match named {
            Some(name) => match apps.get_key_value(&name) {
                Some((name, app)) if &app.repo == repo => Claim::Ours(name, app),
                Some((name, app)) => Claim::Refused(format!(
                    "hoist's app `{name}` deploys {}, not {repo}",
                    app.repo
                )),
                None if self.settings.known_apps.contains(&name) => Claim::NotOurs,
                // Named for hoist but unknown to it: say so. A name in a
                // repository hoist has no app for is another tool's.
                None if of_repo.next().is_some() || deployment.payload.get("hoist").is_some() => {
                    Claim::Refused(format!("hoist has no app `{name}` to run"))
                }
                None => Claim::NotOurs,
            },
            None => match (of_repo.next(), of_repo.next()) {
                (Some((name, app)), None) => Claim::Ours(name, app),
                (Some((first, _)), Some((second, _))) => Claim::Refused(format!(
                    "{repo} has several apps in hoist ({first}, {second}); \
                     the payload must name one in hoist.app"
                )),
                (None, _) => Claim::NotOurs,
            },
        };
        match claim {
            Claim::Ours(..) if !deployment.payload.is_object() => Claim::Refused(
                "the deployment's payload is not a JSON object, so hoist cannot run it".into(),
            ),
            claim => claim,
        }
    }

    /// Takes a deployment the forge announced: queues it when it is one
    /// of the runner's apps' and posts `pending` (or `queued` with its
    /// place), or posts `error` when hoist cannot run it. A deployment
    /// queued before is left alone, so a redelivered event runs nothing
    /// twice. `Err`: the store or the forge failed; try again.
    pub async fn accept(
        &self,
        repo: &RepoName,
        deployment: &Deployment,
    ) -> anyhow::Result<Accepted> {
        let key = self.key(repo, deployment);
        let (name, app) = match self.claim(repo, deployment) {
            Claim::Ours(name, app) => (name, app),
            Claim::NotOurs => return Ok(Accepted::NotOurs),
            Claim::Refused(reason) => {
                self.post(&key, DeploymentState::Error, &reason, None)
                    .await?;
                return Ok(Accepted::Refused(reason));
            }
        };
        if self.store.run_state(&key).await?.is_some() {
            return Ok(Accepted::AlreadyQueued);
        }
        // Its first status goes out before it is queued: a worker that
        // takes it at once must not post `in_progress` before `pending`.
        // (If queueing then fails, the retry posts `pending` again.)
        let lane = lane(&app.repo, &deployment.environment);
        let ahead = self.store.lane_length(&lane).await?;
        let log = Some(log_url(&self.settings.public_url, &key));
        match ahead {
            0 if deployment.state.is_none() => {
                self.post(
                    &key,
                    DeploymentState::Pending,
                    "waiting for the runner",
                    log.as_deref(),
                )
                .await?;
            }
            0 => {}
            ahead => {
                let waiting = format!(
                    "queued: {ahead} deployment{} to {} before this one",
                    if ahead == 1 { "" } else { "s" },
                    deployment.environment
                );
                self.post(&key, DeploymentState::Queued, &waiting, log.as_deref())
                    .await?;
            }
        }
        let queued = self
            .store
            .enqueue_run(&key, name, &lane, deployment, Timestamp::now())
            .await?;
        if queued.is_none() {
            // Another delivery of it queued it meanwhile.
            return Ok(Accepted::AlreadyQueued);
        }
        self.open.send_modify(|open| {
            open.insert(key.clone());
        });
        self.wakeup.notify_one();
        Ok(Accepted::Queued { ahead })
    }

    fn key(&self, repo: &RepoName, deployment: &Deployment) -> DeploymentKey {
        DeploymentKey {
            forge: self.forge.kind().to_owned(),
            repo: repo.clone(),
            id: deployment.id,
        }
    }

    /// Asks the run of `key` to stop, for `by`. See [`RunCancel`].
    pub async fn cancel(&self, key: &DeploymentKey, by: &str) -> anyhow::Result<RunCancel> {
        let cancelled = self.store.cancel_run(key, by, Timestamp::now()).await?;
        if cancelled == RunCancel::Dequeued {
            self.forget(key);
        }
        Ok(cancelled)
    }

    /// The job to stop for `deploy:cancel app in env`: the running one,
    /// else the oldest queued.
    pub async fn open_run(
        &self,
        repo: &RepoName,
        environment: &str,
    ) -> anyhow::Result<Option<RunJob>> {
        self.store.open_run(&lane(repo, environment)).await
    }

    /// Waits until every job accepted by this process has finished (the
    /// shell waits for this at end of input).
    pub async fn wait_idle(&self) {
        let mut open = self.open.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = open.wait_for(HashSet::is_empty).await;
    }

    /// `key` is no longer this process's to wait for.
    fn forget(&self, key: &DeploymentKey) {
        self.open.send_if_modified(|open| open.remove(key));
    }

    /// Whether jobs accepted by this process are still queued or running.
    pub fn is_busy(&self) -> bool {
        !self.open.borrow().is_empty()
    }

    fn status(
        &self,
        state: DeploymentState,
        description: &str,
        log_url: Option<&str>,
    ) -> NewStatus {
        NewStatus {
            state,
            description: Some(description.chars().take(MAX_DESCRIPTION_CHARS).collect()),
            log_url: log_url.map(str::to_owned),
            environment_url: None,
        }
    }

    async fn post(
        &self,
        key: &DeploymentKey,
        state: DeploymentState,
        description: &str,
        log_url: Option<&str>,
    ) -> anyhow::Result<()> {
        let status = self.status(state, description, log_url);
        self.forge
            .create_status(&key.repo, key.id, &status)
            .await
            .with_context(|| {
                format!(
                    "cannot post status {state} to deployment {} of {}",
                    key.id, key.repo
                )
            })
    }
}
