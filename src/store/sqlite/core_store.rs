//! [`Store`] on SQLite: deployment records, statuses, logs, audit, outbox.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, from_millis, millis, name_of, repo_key, sql_limit};
use crate::domain::DeploymentState;
use crate::forge::NewStatus;
use crate::store::rows::{
    AuditRow, DEPLOYMENT_COLUMNS, DeploymentRow, LogRow, UnfinishedRow, like_anywhere,
};
use crate::store::{
    AuditEntry, AuditFilter, DeploymentKey, DeploymentRecord, LogLine, Store, StoreResult,
};

#[async_trait]
impl Store for SqliteStore {
    async fn record_deployment(&self, record: &DeploymentRecord) -> StoreResult<()> {
        let origin = serde_json::to_string(&record.origin).context("cannot serialise an origin")?;
        sqlx::query(&format!(
            "INSERT INTO deployments ({DEPLOYMENT_COLUMNS}, actor) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        ))
        .bind(&record.key.forge)
        .bind(repo_key(&record.key.repo))
        .bind(record.key.id.0)
        .bind(record.app.as_str())
        .bind(&record.environment)
        .bind(&record.git_ref)
        .bind(record.sha.as_str())
        .bind(&record.task)
        .bind(origin)
        .bind(&record.request_key)
        .bind(millis(record.created_at))
        .bind(&record.decision)
        .bind(&record.origin.actor.name)
        .execute(&self.writer)
        .await
        .with_context(|| {
            format!(
                "cannot record deployment {} {} {}",
                record.key.forge, record.key.repo, record.key.id
            )
        })?;
        Ok(())
    }

    async fn deployment_by_request(
        &self,
        request_key: &str,
    ) -> StoreResult<Option<DeploymentRecord>> {
        let row: Option<DeploymentRow> = sqlx::query_as(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE request_key = ?"
        ))
        .bind(request_key)
        .fetch_optional(&self.reader)
        .await
        .with_context(|| format!("cannot read the deployment for request `{request_key}`"))?;
        row.map(DeploymentRow::into_record).transpose()
    }

    async fn deployment(&self, key: &DeploymentKey) -> StoreResult<Option<DeploymentRecord>> {
        let row: Option<DeploymentRow> = sqlx::query_as(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
             WHERE forge = ? AND repo = ? AND deployment_id = ?"
        ))
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .fetch_optional(&self.reader)
        .await
        .with_context(|| {
            format!(
                "cannot read deployment {} {} {}",
                key.forge, key.repo, key.id
            )
        })?;
        row.map(DeploymentRow::into_record).transpose()
    }

    async fn has_status(
        &self,
        key: &DeploymentKey,
        state: DeploymentState,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let found: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM deployment_statuses \
             WHERE forge = ? AND repo = ? AND deployment_id = ? AND state = ? AND at = ?",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(state.as_str())
        .bind(millis(at))
        .fetch_optional(&self.reader)
        .await
        .with_context(|| {
            format!(
                "cannot look up status {state} of deployment {} {} {}",
                key.forge, key.repo, key.id
            )
        })?;
        Ok(found.is_some())
    }

    async fn record_status(
        &self,
        key: &DeploymentKey,
        status: &NewStatus,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO deployment_statuses \
             (forge, repo, deployment_id, state, description, log_url, environment_url, at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(status.state.as_str())
        .bind(&status.description)
        .bind(&status.log_url)
        .bind(&status.environment_url)
        .bind(millis(at))
        .execute(&self.writer)
        .await
        .with_context(|| {
            format!(
                "cannot record status {} of deployment {} {} {}",
                status.state, key.forge, key.repo, key.id
            )
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn claim_request(
        &self,
        request_key: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        let claimed = sqlx::query(
            "INSERT INTO request_claims (request_key, claimed_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(request_key)
        .bind(millis(now))
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot claim request {request_key}"))?;
        if claimed.rows_affected() == 1 {
            return Ok(None);
        }
        let (at,): (i64,) =
            sqlx::query_as("SELECT claimed_at FROM request_claims WHERE request_key = ?")
                .bind(request_key)
                .fetch_one(&self.reader)
                .await
                .with_context(|| format!("cannot read the claim of request {request_key}"))?;
        Ok(Some(from_millis(at)?))
    }

    async fn unfinished_deployments(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(DeploymentRecord, bool)>> {
        let sql = format!(
            "SELECT {DEPLOYMENT_COLUMNS}, \
                (SELECT COUNT(*) FROM deployment_statuses s WHERE s.forge = d.forge \
                 AND s.repo = d.repo AND s.deployment_id = d.deployment_id) AS statuses \
             FROM deployments d WHERE created_at >= ? AND NOT EXISTS ( \
                SELECT 1 FROM deployment_statuses s WHERE s.forge = d.forge AND s.repo = d.repo \
                AND s.deployment_id = d.deployment_id \
                AND s.state IN ('success', 'failure', 'error', 'inactive')) \
             ORDER BY created_at LIMIT ?"
        );
        let rows: Vec<UnfinishedRow> = sqlx::query_as(&sql)
            .bind(millis(since))
            .bind(sql_limit(limit))
            .fetch_all(&self.reader)
            .await
            .context("cannot list unfinished deployments")?;
        rows.into_iter().map(UnfinishedRow::into_pair).collect()
    }

    async fn append_log(&self, key: &DeploymentKey, lines: &[LogLine]) -> StoreResult<()> {
        let context = || {
            format!(
                "cannot append to the log of {} {} {}",
                key.forge, key.repo, key.id
            )
        };
        // One transaction per batch: one fsync instead of one per line.
        let mut tx = self.writer.begin().await.with_context(context)?;
        for line in lines {
            sqlx::query(
                "INSERT INTO deployment_logs (forge, repo, deployment_id, at, stream, text) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&key.forge)
            .bind(repo_key(&key.repo))
            .bind(key.id.0)
            .bind(millis(line.at))
            .bind(name_of(&line.stream)?)
            .bind(&line.text)
            .execute(&mut *tx)
            .await
            .with_context(context)?;
        }
        tx.commit().await.with_context(context)
    }

    async fn read_log(&self, key: &DeploymentKey, skip: usize) -> StoreResult<Vec<LogLine>> {
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT at, stream, text FROM deployment_logs \
             WHERE forge = ? AND repo = ? AND deployment_id = ? ORDER BY id LIMIT -1 OFFSET ?",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(sql_limit(skip))
        .fetch_all(&self.reader)
        .await
        .with_context(|| {
            format!(
                "cannot read the log of {} {} {}",
                key.forge, key.repo, key.id
            )
        })?;
        rows.into_iter().map(LogRow::into_line).collect()
    }

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit (at, platform, actor, command, outcome, detail) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(millis(entry.at))
        .bind(entry.platform.as_str())
        .bind(&entry.actor)
        .bind(&entry.command)
        .bind(&entry.outcome)
        .bind(&entry.detail)
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot append `{}` to the audit log", entry.command))?;
        Ok(())
    }

    async fn audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let text = filter.text.as_deref().map(like_anywhere);
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, platform, actor, command, outcome, detail FROM audit \
             WHERE (? IS NULL OR actor = ? COLLATE NOCASE) \
               AND (? IS NULL OR outcome = ?) \
               AND (? IS NULL OR command LIKE ? ESCAPE '\\' OR detail LIKE ? ESCAPE '\\') \
               AND (? IS NULL OR at >= ?) \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(filter.actor.as_deref())
        .bind(filter.actor.as_deref())
        .bind(filter.outcome.as_deref())
        .bind(filter.outcome.as_deref())
        .bind(text.as_deref())
        .bind(text.as_deref())
        .bind(text.as_deref())
        .bind(filter.since.map(millis))
        .bind(filter.since.map(millis))
        .bind(sql_limit(filter.limit))
        .fetch_all(&self.reader)
        .await
        .context("cannot read the audit log")?;
        rows.into_iter().map(AuditRow::into_entry).collect()
    }
}
