//! [`RunQueue`] on PostgreSQL: the runner's jobs, one running per lane,
//! whichever replica's worker claims them.
//!
//! A claim is one `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP
//! LOCKED)`: two claims at once never lock the same job. What the row
//! lock cannot see is the rest of the lane, read from the statement's
//! snapshot: a claim whose snapshot is a moment old can pick a job of a
//! lane another claim has just started (a job queued with a lower id that
//! committed late, say). The unique partial index `runner_jobs_one_running`
//! refuses that second start; the claim that loses runs again, sees the
//! winner's job running, and takes another lane's job or none.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{PgStore, millis, parse_name, repo_key};
use crate::store::rows::{JOB_COLUMNS, JobRow};
use crate::store::{DeploymentKey, RunCancel, RunJob, RunQueue, RunState, StoreResult};

/// The index that refuses a second running job in a lane.
const ONE_RUNNING: &str = "runner_jobs_one_running";

/// How many times a claim that lost a lane to another claim tries again.
/// Each loss means another claim started a job meanwhile, so a few are
/// plenty; past them the caller polls again anyway.
const CLAIM_ATTEMPTS: usize = 4;

/// Whether `error` is the database refusing a second running job in a
/// lane.
fn lost_the_lane(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() && db.constraint() == Some(ONE_RUNNING)
        }
        _ => false,
    }
}

#[async_trait]
impl RunQueue for PgStore {
    async fn enqueue_run(
        &self,
        key: &DeploymentKey,
        app: &str,
        lane: &str,
        deployment: &crate::forge::Deployment,
        now: Timestamp,
    ) -> StoreResult<Option<i64>> {
        let context = || {
            format!(
                "cannot queue the run of deployment {} of {}",
                key.id, key.repo
            )
        };
        let body = serde_json::to_string(deployment).with_context(context)?;
        // Two replicas queueing one deployment at once: the second insert
        // waits for the first and then does nothing.
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO runner_jobs (forge, repo, deployment_id, app, lane, deployment, enqueued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(app)
        .bind(lane)
        .bind(body)
        .bind(millis(now))
        .fetch_optional(&self.pool)
        .await
        .with_context(context)?;
        Ok(id)
    }

    async fn lane_length(&self, lane: &str) -> StoreResult<usize> {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runner_jobs WHERE lane = $1 AND state <> 'done'",
        )
        .bind(lane)
        .fetch_one(&self.pool)
        .await
        .with_context(|| format!("cannot read the runner queue of {lane}"))?;
        Ok(usize::try_from(open).unwrap_or(0))
    }

    async fn claim_run(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<RunJob>> {
        // One statement, so two workers never take the same job: the
        // inner select locks the job it picks and skips any another claim
        // holds (and a job another claim has just started no longer
        // matches `queued` when rechecked). A lane's jobs start in the
        // order they were queued: only its oldest queued job may start,
        // and only while nothing of it runs.
        let sql = format!(
            "UPDATE runner_jobs SET state = 'running', worker = $1, lease_until = $2, started_at = $3 \
             WHERE id = (SELECT j.id FROM runner_jobs j WHERE j.state = 'queued' AND j.not_before <= $3 \
                 AND NOT EXISTS (SELECT 1 FROM runner_jobs e WHERE e.lane = j.lane AND e.state = 'queued' AND e.id < j.id) \
                 AND NOT EXISTS (SELECT 1 FROM runner_jobs r WHERE r.lane = j.lane AND r.state = 'running') \
                 ORDER BY j.id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {JOB_COLUMNS}"
        );
        for _ in 0..CLAIM_ATTEMPTS {
            let claimed: Result<Option<JobRow>, sqlx::Error> = sqlx::query_as(&sql)
                .bind(worker)
                .bind(millis(lease_until))
                .bind(millis(now))
                .fetch_optional(&self.pool)
                .await;
            match claimed {
                Ok(row) => return row.map(JobRow::into_job).transpose(),
                // Another claim started a job of this lane after this
                // statement's snapshot was taken; the statement changed
                // nothing. The next attempt's snapshot sees that job.
                Err(error) if lost_the_lane(&error) => continue,
                Err(error) => return Err(error).context("cannot claim a runner job"),
            }
        }
        // Lost every time: others are starting jobs as fast as this asks.
        // Nothing was taken; the worker polls again.
        Ok(None)
    }

    async fn renew_run(&self, id: i64, worker: &str, lease_until: Timestamp) -> StoreResult<bool> {
        let renewed = sqlx::query(
            "UPDATE runner_jobs SET lease_until = $1 WHERE id = $2 AND worker = $3 AND state = 'running'",
        )
        .bind(millis(lease_until))
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot renew the lease of runner job {id}"))?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_run(&self, id: i64, not_before: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE runner_jobs SET state = 'queued', worker = NULL, lease_until = 0, \
             started_at = NULL, not_before = $1 WHERE id = $2 AND state = 'running'",
        )
        .bind(millis(not_before))
        .bind(id)
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot put runner job {id} back in the queue"))?;
        Ok(())
    }

    async fn run_cancel_requested(&self, id: i64) -> StoreResult<Option<String>> {
        let by: Option<Option<String>> =
            sqlx::query_scalar("SELECT cancel_requested_by FROM runner_jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .with_context(|| format!("cannot read runner job {id}"))?;
        Ok(by.flatten())
    }

    async fn finish_run(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE runner_jobs SET state = 'done', finished_at = $1 WHERE id = $2")
            .bind(millis(now))
            .bind(id)
            .execute(&self.pool)
            .await
            .with_context(|| format!("cannot end runner job {id}"))?;
        Ok(())
    }

    async fn cancel_run(
        &self,
        key: &DeploymentKey,
        by: &str,
        now: Timestamp,
    ) -> StoreResult<RunCancel> {
        let context = || {
            format!(
                "cannot cancel the run of deployment {} of {}",
                key.id, key.repo
            )
        };
        // Each statement is atomic on its own: an UPDATE that meets a row
        // another replica is changing waits for it, then rechecks `state`
        // on what was committed. A job claimed between these statements
        // is found running by the next one.
        let dequeued = sqlx::query(
            "UPDATE runner_jobs SET state = 'done', cancel_requested_by = $1, finished_at = $2 \
             WHERE forge = $3 AND repo = $4 AND deployment_id = $5 AND state = 'queued'",
        )
        .bind(by)
        .bind(millis(now))
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .execute(&self.pool)
        .await
        .with_context(context)?;
        if dequeued.rows_affected() == 1 {
            return Ok(RunCancel::Dequeued);
        }
        // The first to ask is the one the status names.
        let requested = sqlx::query(
            "UPDATE runner_jobs SET cancel_requested_by = COALESCE(cancel_requested_by, $1) \
             WHERE forge = $2 AND repo = $3 AND deployment_id = $4 AND state = 'running'",
        )
        .bind(by)
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .execute(&self.pool)
        .await
        .with_context(context)?;
        if requested.rows_affected() == 1 {
            return Ok(RunCancel::Requested);
        }
        Ok(match self.run_state(key).await? {
            Some(_) => RunCancel::Finished,
            None => RunCancel::Unknown,
        })
    }

    async fn interrupted_runs(&self, lapsed_before: Timestamp) -> StoreResult<Vec<RunJob>> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM runner_jobs \
             WHERE state = 'running' AND lease_until < $1 ORDER BY id"
        ))
        .bind(millis(lapsed_before))
        .fetch_all(&self.pool)
        .await
        .context("cannot find interrupted runner jobs")?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    async fn run_state(&self, key: &DeploymentKey) -> StoreResult<Option<RunState>> {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM runner_jobs WHERE forge = $1 AND repo = $2 AND deployment_id = $3",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| {
            format!(
                "cannot read the run of deployment {} of {}",
                key.id, key.repo
            )
        })?;
        state
            .map(|state| parse_name(&state, "runner job state"))
            .transpose()
    }

    async fn open_run(&self, lane: &str) -> StoreResult<Option<RunJob>> {
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM runner_jobs WHERE lane = $1 AND state <> 'done' \
             ORDER BY state = 'running' DESC, id LIMIT 1"
        ))
        .bind(lane)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("cannot read the runner queue of {lane}"))?;
        row.map(JobRow::into_job).transpose()
    }
}
