//! [`Store`] on PostgreSQL: deployment records, statuses, logs, audit.
//! Every write is one statement (or, for a log batch, one transaction),
//! and the unique keys make a repeat of any of them a no-op, whichever
//! replica repeats it.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{PgStore, from_millis, millis, name_of, repo_key, sql_limit};
use crate::domain::DeploymentState;
use crate::forge::NewStatus;
use crate::store::rows::{
    AuditRow, DEPLOYMENT_COLUMNS, DeploymentRow, LogRow, UnfinishedRow, like_anywhere,
};
use crate::store::{
    AuditEntry, AuditFilter, DeploymentKey, DeploymentRecord, LogLine, Store, StoreResult,
};

#[async_trait]
impl Store for PgStore {
    async fn record_deployment(&self, record: &DeploymentRecord) -> StoreResult<()> {
        let origin = serde_json::to_string(&record.origin).context("cannot serialise an origin")?;
        sqlx::query(&format!(
            "INSERT INTO deployments ({DEPLOYMENT_COLUMNS}, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING"
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
        .execute(&self.pool)
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
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE request_key = $1"
        ))
        .bind(request_key)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("cannot read the deployment for request `{request_key}`"))?;
        row.map(DeploymentRow::into_record).transpose()
    }

    async fn deployment(&self, key: &DeploymentKey) -> StoreResult<Option<DeploymentRecord>> {
        let row: Option<DeploymentRow> = sqlx::query_as(&format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments \
             WHERE forge = $1 AND repo = $2 AND deployment_id = $3"
        ))
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .fetch_optional(&self.pool)
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
        let found: Option<(i32,)> = sqlx::query_as(
            "SELECT 1 FROM deployment_statuses \
             WHERE forge = $1 AND repo = $2 AND deployment_id = $3 AND state = $4 AND at = $5",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(state.as_str())
        .bind(millis(at))
        .fetch_optional(&self.pool)
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(status.state.as_str())
        .bind(&status.description)
        .bind(&status.log_url)
        .bind(&status.environment_url)
        .bind(millis(at))
        .execute(&self.pool)
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
        // One statement for both answers: the insert claims, or the
        // conflict's no-op update returns the first claim's time. Of two
        // replicas claiming at once, the second waits for the first's row
        // and reads it.
        let (claimed_at, inserted): (i64, bool) = sqlx::query_as(
            "INSERT INTO request_claims (request_key, claimed_at) VALUES ($1, $2) \
             ON CONFLICT (request_key) DO UPDATE SET claimed_at = request_claims.claimed_at \
             RETURNING claimed_at, (xmax = 0) AS inserted",
        )
        .bind(request_key)
        .bind(millis(now))
        .fetch_one(&self.pool)
        .await
        .with_context(|| format!("cannot claim request {request_key}"))?;
        if inserted {
            return Ok(None);
        }
        Ok(Some(from_millis(claimed_at)?))
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
             FROM deployments d WHERE created_at >= $1 AND NOT EXISTS ( \
                SELECT 1 FROM deployment_statuses s WHERE s.forge = d.forge AND s.repo = d.repo \
                AND s.deployment_id = d.deployment_id \
                AND s.state IN ('success', 'failure', 'error', 'inactive')) \
             ORDER BY created_at LIMIT $2"
        );
        let rows: Vec<UnfinishedRow> = sqlx::query_as(&sql)
            .bind(millis(since))
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .context("cannot list unfinished deployments")?;
        rows.into_iter().map(UnfinishedRow::into_pair).collect()
    }

    async fn append_log(&self, key: &DeploymentKey, lines: &[LogLine]) -> StoreResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let context = || {
            format!(
                "cannot append to the log of {} {} {}",
                key.forge, key.repo, key.id
            )
        };
        // One statement per batch, the lines in order (`WITH ORDINALITY`
        // keeps it), so their ids follow the order they came in.
        let at: Vec<i64> = lines.iter().map(|line| millis(line.at)).collect();
        let streams: Vec<String> = lines
            .iter()
            .map(|line| name_of(&line.stream))
            .collect::<anyhow::Result<_>>()?;
        let texts: Vec<&str> = lines.iter().map(|line| line.text.as_str()).collect();
        sqlx::query(
            "INSERT INTO deployment_logs (forge, repo, deployment_id, at, stream, text) \
             SELECT $1, $2, $3, line.at, line.stream, line.text \
             FROM UNNEST($4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY \
                AS line (at, stream, text, n) ORDER BY line.n",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(&at)
        .bind(&streams)
        .bind(&texts)
        .execute(&self.pool)
        .await
        .with_context(context)?;
        Ok(())
    }

    async fn read_log(&self, key: &DeploymentKey, skip: usize) -> StoreResult<Vec<LogLine>> {
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT at, stream, text FROM deployment_logs \
             WHERE forge = $1 AND repo = $2 AND deployment_id = $3 ORDER BY id OFFSET $4",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .bind(sql_limit(skip))
        .fetch_all(&self.pool)
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
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(millis(entry.at))
        .bind(entry.platform.as_str())
        .bind(&entry.actor)
        .bind(&entry.command)
        .bind(&entry.outcome)
        .bind(&entry.detail)
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot append `{}` to the audit log", entry.command))?;
        Ok(())
    }

    async fn audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        // As on SQLite: the actor without case (NOCASE there), the text
        // without case (SQLite's LIKE ignores ASCII case; ILIKE here).
        let text = filter.text.as_deref().map(like_anywhere);
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, platform, actor, command, outcome, detail FROM audit \
             WHERE ($1::text IS NULL OR lower(actor) = lower($1)) \
               AND ($2::text IS NULL OR outcome = $2) \
               AND ($3::text IS NULL OR command ILIKE $3 ESCAPE '\\' OR detail ILIKE $3 ESCAPE '\\') \
               AND ($4::bigint IS NULL OR at >= $4) \
             ORDER BY id DESC LIMIT $5",
        )
        .bind(filter.actor.as_deref())
        .bind(filter.outcome.as_deref())
        .bind(text.as_deref())
        .bind(filter.since.map(millis))
        .bind(sql_limit(filter.limit))
        .fetch_all(&self.pool)
        .await
        .context("cannot read the audit log")?;
        rows.into_iter().map(AuditRow::into_entry).collect()
    }
}
