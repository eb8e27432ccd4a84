//! The workers: claim a job, start it (`in_progress`), run it with a
//! watcher that renews its lease and stops it on request, post its end,
//! and free its lane.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;

use super::capture::LogSink;
use super::execute::Inputs;
use super::{Runner, RunnerApp, Verdict, log_url};
use crate::actions::Secret;
use crate::domain::DeploymentState;
use crate::forge::Deployment;
use crate::forge::NewStatus;
use crate::store::{DeploymentKey, RunJob};

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

/// What [`Runner::start_job`] found.
enum Start<'a> {
    /// Run it with this app's config.
    Run(&'a RunnerApp),
    /// Not run: it ended (or could not start) with this state.
    Ended(DeploymentState),
}

impl Runner {
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

    /// Every half lease, ends the jobs whose worker is gone (this
    /// process's or another replica's).
    async fn sweep_until(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.settings.lease / 2) => {}
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
            .claim_run(
                &self.worker,
                now,
                now + SignedDuration::try_from(self.settings.lease)?,
            )
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
        let secrets = self.secrets_for(deployment).await;
        let shown_as_mask = secrets
            .iter()
            .flatten()
            .map(|secret| secret.value.expose_secret().to_owned());
        let log = LogSink::start(
            self.store.clone(),
            key.clone(),
            self.settings
                .masker
                .with(token.into_iter().chain(shown_as_mask)),
        );
        let stop = self.shutdown.child_token();
        let watch = self.watch_job(job, stop.clone());
        let verdict = match (remote, secrets) {
            (Ok(remote), Ok(secrets)) => {
                let inputs = Inputs {
                    remote: remote.as_ref(),
                    secrets: &secrets,
                };
                match self
                    .prepare_and_run(&job.app, app, deployment, &inputs, &log, &stop)
                    .await
                {
                    Ok(verdict) | Err(verdict) => verdict,
                }
            }
            (Err(verdict), _) | (_, Err(verdict)) => verdict,
        };
        if let Some(request_key) = request_key(deployment)
            && let Err(error) = self.store.drop_run_secrets(request_key).await
        {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot forget a run's secrets"
            );
        }
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

    /// The secrets integration actions handed to this deployment, kept
    /// for it alone: the same request, repository, commit and
    /// environment. `Err`: kept, but they cannot be opened.
    async fn secrets_for(&self, deployment: &Deployment) -> Result<Vec<Secret>, Verdict> {
        let Some(request_key) = request_key(deployment) else {
            return Ok(Vec::new());
        };
        let kept = match self.store.run_secrets(request_key).await {
            Ok(Some(kept)) => kept,
            Ok(None) => return Ok(Vec::new()),
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "cannot read a run's secrets");
                return Err(Verdict::error(
                    "hoist could not read the secrets its integration actions handed over; deploy again",
                ));
            }
        };
        let made_for_it = kept.sha == deployment.sha
            && kept
                .environment
                .eq_ignore_ascii_case(&deployment.environment)
            && self.settings.apps.values().any(|app| app.repo == kept.repo);
        if !made_for_it {
            return Ok(Vec::new());
        }
        crate::actions::open_run_secrets(&self.settings.seal, &kept).map_err(|_| {
            Verdict::error(
                "the secrets its integration actions handed over cannot be opened: hoist restarted without `actions.key`; deploy again",
            )
        })
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
        // A running job's lease: renewed three times a lease, so a worker
        // alive keeps it through a slow store call, and a job whose lease
        // lapsed lost its worker.
        let lease = self.settings.lease;
        tokio::spawn(async move {
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(STOP_POLL).await;
                if matches!(store.run_cancel_requested(id).await, Ok(Some(_))) {
                    stop.cancel();
                    return;
                }
                if renewed.elapsed() >= lease / 3 {
                    renewed = tokio::time::Instant::now();
                    let lease_until = Timestamp::now()
                        + SignedDuration::try_from(lease).unwrap_or(SignedDuration::ZERO);
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
}

/// The request a deployment was made for, as hoist wrote it in the
/// payload.
fn request_key(deployment: &Deployment) -> Option<&str> {
    deployment.payload["hoist"]["request_key"].as_str()
}
