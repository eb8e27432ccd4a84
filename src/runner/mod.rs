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
mod process;
mod workdir;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use secrecy::ExposeSecret;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::domain::{DeploymentState, RepoName};
use crate::forge::{Deployment, Forge, GitAccess, NewStatus};
use crate::store::{DeploymentKey, RunCancel, RunJob, Store};
use capture::LogSink;
pub use capture::{MASK, Masker};
pub use checkout::Source;
use process::Outcome;
use workdir::WorkDir;

/// GitHub cuts a status description at 140 characters; keep ours whole.
const MAX_DESCRIPTION_CHARS: usize = 140;
/// The status of a run hoist did not see to its end.
const INTERRUPTED: &str = "interrupted by a restart of hoist before it finished; deploy again";
/// A running job's lease: a worker renews it while the command runs, and
/// a job whose lease lapsed this long ago lost its worker.
const LEASE: Duration = Duration::from_secs(30);
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How often a running job looks for a request to stop it.
const STOP_POLL: Duration = Duration::from_millis(250);
/// A job that could not start because the forge did not answer is tried
/// again after this long.
const RETRY_START: Duration = Duration::from_secs(10);
/// Tries at posting a run's final status (1, 2, 4, 8 s apart).
const FINAL_STATUS_ATTEMPTS: u32 = 5;
/// How often an idle worker looks at the queue without being woken (jobs
/// queued by another replica, a lane freed by one).
const IDLE_POLL: Duration = Duration::from_secs(1);

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
    /// Runs at once.
    pub workers: usize,
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

/// What [`Runner::start_job`] found.
enum Start<'a> {
    /// Run it with this app's config.
    Run(&'a RunnerApp),
    /// Not run: it ended (or could not start) with this state.
    Ended(DeploymentState),
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
        let Some(queued) = self
            .store
            .enqueue_run(&key, name, &lane, deployment, Timestamp::now())
            .await?
        else {
            // Another delivery of it queued it meanwhile.
            return Ok(Accepted::AlreadyQueued);
        };
        self.open.send_modify(|open| {
            open.insert(key.clone());
        });
        self.wakeup.notify_one();
        Ok(Accepted::Queued {
            ahead: queued.ahead,
        })
    }

    fn key(&self, repo: &RepoName, deployment: &Deployment) -> DeploymentKey {
        DeploymentKey {
            forge: self.forge.kind().to_owned(),
            repo: repo.clone(),
            id: deployment.id,
        }
    }

    /// Runs queued jobs with `settings.workers` workers until `stop`; the
    /// runs going then are stopped and end with `error`.
    pub async fn run_workers_until(self: Arc<Self>, stop: CancellationToken) {
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            shutdown.cancel();
        });
        let workers: Vec<_> = (0..self.settings.workers.max(1))
            .map(|_| tokio::spawn(Arc::clone(&self).work_until(self.shutdown.clone())))
            .collect();
        let sweeper = tokio::spawn(Arc::clone(&self).sweep_until(self.shutdown.clone()));
        for worker in workers {
            worker.await.ok();
        }
        sweeper.await.ok();
    }

    /// Every lease period, ends the jobs whose worker is gone.
    async fn sweep_until(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(LEASE) => {}
                () = stop.cancelled() => return,
            }
            if let Err(error) = self.end_lapsed_runs().await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "cannot look for interrupted runs"
                );
            }
        }
    }

    async fn work_until(self: Arc<Self>, stop: CancellationToken) {
        while !stop.is_cancelled() {
            match self.run_next().await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "runner round failed");
                }
            }
            tokio::select! {
                () = self.wakeup.notified() => {}
                () = tokio::time::sleep(IDLE_POLL) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Takes the next job a worker may start and runs it to its end.
    /// Returns its final state, or `None` when no job may start now.
    pub async fn run_next(&self) -> anyhow::Result<Option<DeploymentState>> {
        let now = Timestamp::now();
        let Some(job) = self
            .store
            .claim_run(&self.worker, now, now + SignedDuration::try_from(LEASE)?)
            .await?
        else {
            return Ok(None);
        };
        if self.shutdown.is_cancelled() {
            // Claimed as hoist stops: it waits for the next hoist.
            self.store.release_run(job.id, Timestamp::now()).await?;
            return Ok(None);
        }
        let app = match self.start_job(&job).await {
            Ok(Start::Run(app)) => app,
            Ok(Start::Ended(state)) => {
                self.job_done(&job).await?;
                return Ok(Some(state));
            }
            Err(error) => {
                // The forge did not answer: the job waits its turn again,
                // so a GitHub outage delays deployments but loses none.
                let retry_at = Timestamp::now() + SignedDuration::try_from(RETRY_START)?;
                self.store.release_run(job.id, retry_at).await?;
                return Err(error.context(format!(
                    "deployment {} of {} could not start; tried again in {} s",
                    job.key.id,
                    job.key.repo,
                    RETRY_START.as_secs()
                )));
            }
        };
        let state = self.run_started(&job, app).await;
        self.job_done(&job).await?;
        Ok(Some(state))
    }

    /// The job's run is over: its lane is free for the next.
    async fn job_done(&self, job: &RunJob) -> anyhow::Result<()> {
        let finished = self.store.finish_run(job.id, Timestamp::now()).await;
        self.forget(&job.key);
        self.wakeup.notify_one();
        finished
    }

    /// Before the command: the job's app, whether the deployment ended
    /// while it waited (cancelled by someone else, or a status from
    /// another tool: not run), and `in_progress`. `Err`: the forge did not
    /// answer.
    async fn start_job(&self, job: &RunJob) -> anyhow::Result<Start<'_>> {
        let key = &job.key;
        let deployment = &job.deployment;
        let log_url = log_url(&self.settings.public_url, key);
        let Some(app) = self.settings.apps.get(&job.app) else {
            let reason = format!("hoist no longer has the app `{}` to run", job.app);
            self.post(key, DeploymentState::Error, &reason, Some(&log_url))
                .await?;
            return Ok(Start::Ended(DeploymentState::Error));
        };
        let ended = self
            .forge
            .deployment_statuses(&key.repo, key.id)
            .await
            .with_context(|| format!("cannot read the statuses of deployment {}", key.id))?
            .last()
            .map(|(status, _)| status.state)
            .filter(|state| state.is_final());
        if let Some(state) = ended {
            return Ok(Start::Ended(state));
        }
        self.post(
            key,
            DeploymentState::InProgress,
            &format!("running {} of {}", deployment.task, deployment.sha.short()),
            Some(&log_url),
        )
        .await?;
        Ok(Start::Run(app))
    }

    /// Runs a started job's command to its end and posts how it went.
    async fn run_started(&self, job: &RunJob, app: &RunnerApp) -> DeploymentState {
        let key = &job.key;
        let deployment = &job.deployment;
        let log_url = log_url(&self.settings.public_url, key);
        let remote = self.remote_for(app).await;
        let token = remote
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map(|remote| remote.token.expose_secret().to_owned());
        let log = LogSink::start(
            self.store.clone(),
            key.clone(),
            self.settings.masker.with(token),
        );
        let stop = self.shutdown.child_token();
        let watch = self.watch_job(job, stop.clone());
        let verdict = match remote {
            Ok(remote) => match self
                .prepare_and_run(&job.app, app, deployment, remote.as_ref(), &log, &stop)
                .await
            {
                Ok(verdict) | Err(verdict) => verdict,
            },
            Err(verdict) => verdict,
        };
        watch.abort();
        let verdict = match verdict.stopped {
            false => verdict,
            true if self.shutdown.is_cancelled() => {
                Verdict::error("interrupted: hoist was shut down while it ran; deploy again")
            }
            true => {
                let by = self
                    .store
                    .run_cancel_requested(job.id)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "hoist (another worker took the job over)".into());
                Verdict::new(
                    DeploymentState::Failure,
                    format!("cancelled by {by} while it ran; its command and children were killed"),
                )
            }
        };
        log.note(format!("{}: {}", verdict.state, verdict.description))
            .await;
        log.finish().await;
        let mut status = self.status(verdict.state, &verdict.description, Some(&log_url));
        if verdict.state == DeploymentState::Success {
            status.environment_url = app.environment_urls.get(&deployment.environment).cloned();
        }
        self.post_final(key, &status).await;
        verdict.state
    }

    /// Posts a run's last status, retrying for a while: the run is over
    /// whatever GitHub says, but the people waiting should learn how.
    async fn post_final(&self, key: &DeploymentKey, status: &NewStatus) {
        let mut wait = Duration::from_secs(1);
        for attempt in 1..=FINAL_STATUS_ATTEMPTS {
            match self.forge.create_status(&key.repo, key.id, status).await {
                Ok(()) => return,
                Err(error) if attempt == FINAL_STATUS_ATTEMPTS => {
                    tracing::error!(%error, id = %key.id, repo = %key.repo, state = %status.state,
                        "cannot post the end of a run; the log has it");
                }
                Err(error) => {
                    tracing::warn!(%error, id = %key.id, attempt, "cannot post the end of a run yet");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }

    /// Watches a running job: renews its lease, and stops the run when
    /// someone asks (or the job was taken from this worker).
    fn watch_job(&self, job: &RunJob, stop: CancellationToken) -> tokio::task::AbortHandle {
        let store = Arc::clone(&self.store);
        let worker = self.worker.clone();
        let id = job.id;
        tokio::spawn(async move {
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(STOP_POLL).await;
                if matches!(store.run_cancel_requested(id).await, Ok(Some(_))) {
                    stop.cancel();
                    return;
                }
                if renewed.elapsed() >= RENEW_EVERY {
                    renewed = tokio::time::Instant::now();
                    let lease_until = Timestamp::now()
                        + SignedDuration::try_from(LEASE).unwrap_or(SignedDuration::ZERO);
                    if let Ok(false) = store.renew_run(id, &worker, lease_until).await {
                        tracing::warn!(id, "a runner job was taken from this worker; stopping it");
                        stop.cancel();
                        return;
                    }
                }
            }
        })
        .abort_handle()
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

    /// Ends the runs a previous hoist left unfinished (it was killed or
    /// the machine went down): each gets `error`, so none stays "in
    /// progress" for ever. One SQLite store serves one hoist, so at start
    /// every job still marked running was the dead one's. Jobs that were
    /// only queued are run as usual. Returns how many were ended; one the
    /// forge would not take is left for [`Runner::end_lapsed_runs`].
    pub async fn end_interrupted_runs(&self) -> anyhow::Result<usize> {
        self.end_runs_lapsed_before(Timestamp::MAX).await
    }

    /// Ends the running jobs whose lease lapsed (their worker is gone, and
    /// so is the one that ended them at start, if that failed).
    pub async fn end_lapsed_runs(&self) -> anyhow::Result<usize> {
        self.end_runs_lapsed_before(Timestamp::now()).await
    }

    async fn end_runs_lapsed_before(&self, lapsed_before: Timestamp) -> anyhow::Result<usize> {
        let jobs = self.store.interrupted_runs(lapsed_before).await?;
        let mut ended = 0;
        for job in jobs {
            match self.end_interrupted(&job).await {
                Ok(posted) => ended += usize::from(posted),
                Err(error) => tracing::error!(
                    id = %job.key.id, repo = %job.key.repo, error = format!("{error:#}"),
                    "cannot end an interrupted run yet; trying again later"
                ),
            }
        }
        Ok(ended)
    }

    /// Posts `error` to an interrupted job's deployment (unless it posted
    /// its end before it died), then ends the job; `true` if posted.
    async fn end_interrupted(&self, job: &RunJob) -> anyhow::Result<bool> {
        let key = &job.key;
        let last = self
            .forge
            .deployment_statuses(&key.repo, key.id)
            .await
            .with_context(|| format!("cannot read the statuses of deployment {}", key.id))?
            .last()
            .map(|(status, _)| status.state);
        let post = !last.is_some_and(DeploymentState::is_final);
        if post {
            let log_url = log_url(&self.settings.public_url, key);
            self.post(key, DeploymentState::Error, INTERRUPTED, Some(&log_url))
                .await?;
        }
        self.store.finish_run(job.id, Timestamp::now()).await?;
        Ok(post)
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

    /// Where a remote app's code is fetched from, with the token to use.
    async fn remote_for(
        &self,
        app: &RunnerApp,
    ) -> Result<Option<crate::forge::GitRemote>, Verdict> {
        match (&app.source, &self.git) {
            (Source::Local(_), _) => Ok(None),
            (Source::Remote, Some(git)) => git
                .git_remote(&app.repo)
                .await
                .map(Some)
                .map_err(|error| Verdict::error(format!("cannot fetch {}: {error}", app.repo))),
            (Source::Remote, None) => Err(no_git_access()),
        }
    }

    /// Prepares the checkout and runs the command; the log gets every step.
    async fn prepare_and_run(
        &self,
        name: &str,
        app: &RunnerApp,
        deployment: &Deployment,
        remote: Option<&crate::forge::GitRemote>,
        log: &LogSink,
        stop: &CancellationToken,
    ) -> Result<Verdict, Verdict> {
        let (argv, program) = command_for(app, &deployment.task)?;
        let payload = deployment.payload.to_string();
        let dir = WorkDir::create()
            .await
            .map_err(|error| Verdict::error(format!("{error:#}")))?;
        let source = match (&app.source, remote) {
            (Source::Local(path), _) => path.clone(),
            (Source::Remote, Some(remote)) => {
                let cache = self.settings.work_dir.join(format!("{name}.git"));
                log.note(format!(
                    "fetching {} from {}",
                    deployment.sha.short(),
                    remote.url
                ))
                .await;
                let lock = self.cache_lock(name);
                let _only_fetch = lock.lock().await;
                checkout::fetch(&cache, remote, &deployment.sha)
                    .await
                    .map_err(|error| Verdict::error(format!("{error:#}")))?;
                cache
            }
            (Source::Remote, None) => return Err(no_git_access()),
        };
        let prepared = async {
            dir.export(&source, &deployment.sha)
                .await
                .with_context(|| format!("cannot check out {}", deployment.sha.short()))?;
            dir.write_payload(&payload).await
        }
        .await;
        let verdict = match prepared {
            Ok(payload_file) => {
                let mut env: Vec<(String, String)> = app
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                env.extend([
                    ("HOIST_APP".into(), name.to_owned()),
                    ("HOIST_ENVIRONMENT".into(), deployment.environment.clone()),
                    ("HOIST_REF".into(), deployment.git_ref.clone()),
                    ("HOIST_SHA".into(), deployment.sha.to_string()),
                    ("HOIST_TASK".into(), deployment.task.clone()),
                    ("HOIST_DEPLOYMENT_ID".into(), deployment.id.to_string()),
                    ("HOIST_PAYLOAD".into(), payload),
                    (
                        "HOIST_PAYLOAD_FILE".into(),
                        payload_file.display().to_string(),
                    ),
                ]);
                let spec = process::Spec {
                    argv: &argv,
                    cwd: &dir.checkout(),
                    env,
                    timeout: app.timeout,
                    stop,
                };
                verdict(&program, app.timeout, process::execute(&spec, log).await)
            }
            Err(error) => Verdict::error(format!("{error:#}")),
        };
        dir.remove().await;
        Ok(verdict)
    }

    fn cache_lock(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut caches = self
            .caches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(caches.entry(app.to_owned()).or_default())
    }
}

fn no_git_access() -> Verdict {
    Verdict::error("this forge gives the runner no way to fetch the code")
}

/// The argv for `task`: `remove_command` for `remove`, the deploy command
/// for anything else (which reads `HOIST_TASK` to tell tasks apart),
/// wrapped in `sh -c` when the app asks for a shell; and the program's
/// name as the statuses say it (the configured one, not `sh`).
fn command_for(app: &RunnerApp, task: &str) -> Result<(Vec<String>, String), Verdict> {
    let argv = match task {
        "remove" => app
            .remove_command
            .as_ref()
            .ok_or_else(|| Verdict::error("no remove_command is configured for this app"))?,
        _ => &app.deploy_command,
    };
    let Some(program) = argv.first() else {
        return Err(Verdict::error("the app's command is empty"));
    };
    let argv = match app.shell {
        true => vec!["sh".into(), "-c".into(), argv.join(" ")],
        false => argv.clone(),
    };
    Ok((argv, program.clone()))
}

fn verdict(program: &str, timeout: Duration, outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Exited(0) => {
            Verdict::new(DeploymentState::Success, format!("`{program}` succeeded"))
        }
        Outcome::Exited(code) => Verdict::new(
            DeploymentState::Failure,
            format!("`{program}` failed with exit code {code}"),
        ),
        Outcome::Signalled(signal) => Verdict::new(
            DeploymentState::Failure,
            format!("`{program}` was killed by signal {signal}"),
        ),
        Outcome::Stopped => Verdict {
            stopped: true,
            ..Verdict::new(DeploymentState::Failure, "stopped on request")
        },
        Outcome::TimedOut => Verdict::error(format!(
            "`{program}` timed out after {} s; it and its children were killed",
            timeout.as_secs_f64()
        )),
        Outcome::Broken(reason) => Verdict::error(reason),
    }
}
