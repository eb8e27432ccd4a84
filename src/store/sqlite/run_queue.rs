//! [`RunQueue`] on SQLite: the runner's jobs, one running per lane.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, millis, parse_name, repo_key};
use crate::store::rows::{JOB_COLUMNS, JobRow};
use crate::store::{DeploymentKey, RunCancel, RunJob, RunQueue, RunState, StoreResult};

#[async_trait]
impl RunQueue for SqliteStore {
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
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO runner_jobs (forge, repo, deployment_id, app, lane, deployment, enqueued_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(app)
        .bind(lane)
        .bind(body)
        .bind(millis(now))
        .fetch_optional(&self.writer)
        .await
        .with_context(context)?;
        Ok(id)
    }

    async fn lane_length(&self, lane: &str) -> StoreResult<usize> {
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM runner_jobs WHERE lane = ? AND state <> 'done'",
        )
        .bind(lane)
        .fetch_one(&self.reader)
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
        // One statement, so two workers never take the same job. A lane's
        // jobs start in the order they were queued: only its oldest queued
        // job may start, and only while nothing of it runs.
        let row: Option<JobRow> = sqlx::query_as(&format!(
            "UPDATE runner_jobs SET state = 'running', worker = ?, lease_until = ?, started_at = ? \
             WHERE id = (SELECT j.id FROM runner_jobs j WHERE j.state = 'queued' AND j.not_before <= ? \
                 AND NOT EXISTS (SELECT 1 FROM runner_jobs e WHERE e.lane = j.lane AND e.state = 'queued' AND e.id < j.id) \
                 AND NOT EXISTS (SELECT 1 FROM runner_jobs r WHERE r.lane = j.lane AND r.state = 'running') \
                 ORDER BY j.id LIMIT 1) \
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(worker)
        .bind(millis(lease_until))
        .bind(millis(now))
        .bind(millis(now))
        .fetch_optional(&self.writer)
        .await
        .context("cannot claim a runner job")?;
        row.map(JobRow::into_job).transpose()
    }

    async fn renew_run(&self, id: i64, worker: &str, lease_until: Timestamp) -> StoreResult<bool> {
        let renewed = sqlx::query(
            "UPDATE runner_jobs SET lease_until = ? WHERE id = ? AND worker = ? AND state = 'running'",
        )
        .bind(millis(lease_until))
        .bind(id)
        .bind(worker)
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot renew the lease of runner job {id}"))?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn release_run(&self, id: i64, not_before: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE runner_jobs SET state = 'queued', worker = NULL, lease_until = 0, \
             started_at = NULL, not_before = ? WHERE id = ? AND state = 'running'",
        )
        .bind(millis(not_before))
        .bind(id)
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot put runner job {id} back in the queue"))?;
        Ok(())
    }

    async fn run_cancel_requested(&self, id: i64) -> StoreResult<Option<String>> {
        let by: Option<Option<String>> =
            sqlx::query_scalar("SELECT cancel_requested_by FROM runner_jobs WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.reader)
                .await
                .with_context(|| format!("cannot read runner job {id}"))?;
        Ok(by.flatten())
    }

    async fn finish_run(&self, id: i64, now: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE runner_jobs SET state = 'done', finished_at = ? WHERE id = ?")
            .bind(millis(now))
            .bind(id)
            .execute(&self.writer)
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
        // The state moves only forward (queued, running, done), so a job
        // claimed between these statements is found by the next one.
        let dequeued = sqlx::query(
            "UPDATE runner_jobs SET state = 'done', cancel_requested_by = ?, finished_at = ? \
             WHERE forge = ? AND repo = ? AND deployment_id = ? AND state = 'queued'",
        )
        .bind(by)
        .bind(millis(now))
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .execute(&self.writer)
        .await
        .with_context(context)?;
        if dequeued.rows_affected() == 1 {
            return Ok(RunCancel::Dequeued);
        }
        // The first to ask is the one the status names.
        let requested = sqlx::query(
            "UPDATE runner_jobs SET cancel_requested_by = COALESCE(cancel_requested_by, ?) \
             WHERE forge = ? AND repo = ? AND deployment_id = ? AND state = 'running'",
        )
        .bind(by)
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .execute(&self.writer)
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
             WHERE state = 'running' AND lease_until < ? ORDER BY id"
        ))
        .bind(millis(lapsed_before))
        .fetch_all(&self.reader)
        .await
        .context("cannot find interrupted runner jobs")?;
        rows.into_iter().map(JobRow::into_job).collect()
    }

    async fn run_state(&self, key: &DeploymentKey) -> StoreResult<Option<RunState>> {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT state FROM runner_jobs WHERE forge = ? AND repo = ? AND deployment_id = ?",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .fetch_optional(&self.reader)
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
            "SELECT {JOB_COLUMNS} FROM runner_jobs WHERE lane = ? AND state <> 'done' \
             ORDER BY state = 'running' DESC, id LIMIT 1"
        ))
        .bind(lane)
        .fetch_optional(&self.reader)
        .await
        .with_context(|| format!("cannot read the runner queue of {lane}"))?;
        row.map(JobRow::into_job).transpose()
    }
}
