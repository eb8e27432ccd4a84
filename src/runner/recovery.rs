//! Runs a hoist did not see to their end: ended with `error` at start
//! and, for a worker that died, when its lease lapses.

use anyhow::Context;
use jiff::Timestamp;

use super::{Runner, log_url};
use crate::domain::DeploymentState;
use crate::store::RunJob;

/// The status of a run hoist did not see to its end.
const INTERRUPTED: &str =
    "interrupted: the hoist running it stopped before it finished; deploy again";

impl Runner {
    /// Ends the runs a previous hoist left unfinished (it was killed or
    /// the machine went down): each gets `error`, so none stays "in
    /// progress" for ever. One SQLite store serves one hoist, so at start
    /// every job still marked running was the dead one's (a shared store
    /// uses [`Runner::end_lapsed_runs`] instead). Jobs that were
    /// only queued are run as usual. Returns how many were ended; one the
    /// forge would not take is left for [`Runner::end_lapsed_runs`].
    pub async fn end_interrupted_runs(&self) -> anyhow::Result<usize> {
        self.end_runs_lapsed_before(Timestamp::MAX).await
    }

    /// Ends the running jobs whose lease lapsed: their worker is gone,
    /// with its process (a replica that died, on a shared store), or so is
    /// the one that ended them at start, if that failed.
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
}
