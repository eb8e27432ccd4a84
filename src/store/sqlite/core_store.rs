//! [`Store`] on SQLite: deployment records, statuses, logs, audit, outbox.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, from_millis, millis, name_of, parse_name, parse_repo, repo_key};
use crate::domain::{AppName, DeploymentId, Platform, Sha};
use crate::forge::NewStatus;
use crate::store::{
    AuditEntry, DeploymentKey, DeploymentRecord, LogLine, OutboxItem, Store, StoreResult,
};

#[derive(sqlx::FromRow)]
struct DeploymentRow {
    forge: String,
    repo: String,
    deployment_id: i64,
    app: String,
    environment: String,
    git_ref: String,
    sha: String,
    task: String,
    origin: String,
    request_key: String,
    created_at: i64,
}

impl DeploymentRow {
    fn into_record(self) -> anyhow::Result<DeploymentRecord> {
        Ok(DeploymentRecord {
            key: DeploymentKey {
                forge: self.forge,
                repo: parse_repo(&self.repo)?,
                id: DeploymentId(self.deployment_id),
            },
            app: AppName::new(&self.app)
                .with_context(|| format!("corrupt app name `{}` in the store", self.app))?,
            environment: self.environment,
            git_ref: self.git_ref,
            sha: Sha::new(&self.sha)
                .with_context(|| format!("corrupt sha `{}` in the store", self.sha))?,
            task: self.task,
            origin: serde_json::from_str(&self.origin).context("corrupt origin in the store")?,
            request_key: self.request_key,
            created_at: from_millis(self.created_at)?,
        })
    }
}

const DEPLOYMENT_COLUMNS: &str = "forge, repo, deployment_id, app, environment, git_ref, sha, \
     task, origin, request_key, created_at";

#[derive(sqlx::FromRow)]
struct LogRow {
    at: i64,
    stream: String,
    text: String,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    at: i64,
    platform: String,
    actor: String,
    command: String,
    outcome: String,
    detail: String,
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    id: i64,
    platform: String,
    body: String,
    attempts: i64,
}

/// A `usize` limit as SQL wants it; anything past `i64::MAX` is "all".
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqliteStore {
    async fn record_deployment(&self, record: &DeploymentRecord) -> StoreResult<()> {
        let origin = serde_json::to_string(&record.origin).context("cannot serialise an origin")?;
        sqlx::query(&format!(
            "INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
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
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE request_key = ?"
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
             WHERE forge = ? AND repo = ? AND deployment_id = ?"
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

    async fn append_log(&self, key: &DeploymentKey, lines: &[LogLine]) -> StoreResult<()> {
        let context = || {
            format!(
                "cannot append to the log of {} {} {}",
                key.forge, key.repo, key.id
            )
        };
        // One transaction per batch: one fsync instead of one per line.
        let mut tx = self.pool.begin().await.with_context(context)?;
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

    async fn read_log(&self, key: &DeploymentKey) -> StoreResult<Vec<LogLine>> {
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT at, stream, text FROM deployment_logs \
             WHERE forge = ? AND repo = ? AND deployment_id = ? ORDER BY id",
        )
        .bind(&key.forge)
        .bind(repo_key(&key.repo))
        .bind(key.id.0)
        .fetch_all(&self.pool)
        .await
        .with_context(|| {
            format!(
                "cannot read the log of {} {} {}",
                key.forge, key.repo, key.id
            )
        })?;
        rows.into_iter()
            .map(|row| {
                Ok(LogLine {
                    at: from_millis(row.at)?,
                    stream: parse_name(&row.stream, "log stream")?,
                    text: row.text,
                })
            })
            .collect()
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
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot append `{}` to the audit log", entry.command))?;
        Ok(())
    }

    async fn recent_audit(&self, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT at, platform, actor, command, outcome, detail FROM audit \
             ORDER BY id DESC LIMIT ?",
        )
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .context("cannot read the audit log")?;
        rows.into_iter()
            .map(|row| {
                Ok(AuditEntry {
                    at: from_millis(row.at)?,
                    platform: parse_name(&row.platform, "platform")?,
                    actor: row.actor,
                    command: row.command,
                    outcome: row.outcome,
                    detail: row.detail,
                })
            })
            .collect()
    }

    async fn enqueue_reply(
        &self,
        platform: Platform,
        body: &serde_json::Value,
        dedupe_key: Option<&str>,
    ) -> StoreResult<Option<i64>> {
        let now = millis(Timestamp::now());
        // A new reply is due at once (next_attempt_at 0), whatever clock the
        // relay later claims with.
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO outbox (platform, body, dedupe_key, created_at, next_attempt_at) \
             VALUES (?, ?, ?, ?, 0) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(platform.as_str())
        .bind(body.to_string())
        .bind(dedupe_key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("cannot queue a {} reply", platform.as_str()))?;
        Ok(id.map(|(id,)| id))
    }

    async fn claim_replies(
        &self,
        platforms: &[Platform],
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<OutboxItem>> {
        if platforms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let placeholders = vec!["?"; platforms.len()].join(", ");
        // One statement: SQLite runs it under the write lock, so two workers
        // can never lease the same row.
        let sql = format!(
            "UPDATE outbox SET lease_until = ?, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
                 WHERE delivered_at IS NULL AND next_attempt_at <= ? \
                 AND (lease_until IS NULL OR lease_until <= ?) \
                 AND platform IN ({placeholders}) ORDER BY id LIMIT ?) \
             RETURNING id, platform, body, attempts"
        );
        let mut query = sqlx::query_as::<_, OutboxRow>(&sql)
            .bind(millis(lease_until))
            .bind(millis(now))
            .bind(millis(now));
        for platform in platforms {
            query = query.bind(platform.as_str());
        }
        let mut rows = query
            .bind(sql_limit(limit))
            .fetch_all(&self.pool)
            .await
            .context("cannot claim replies from the outbox")?;
        // RETURNING gives no order guarantee.
        rows.sort_by_key(|row| row.id);
        rows.into_iter()
            .map(|row| {
                Ok(OutboxItem {
                    id: row.id,
                    platform: parse_name(&row.platform, "platform")?,
                    body: serde_json::from_str(&row.body)
                        .with_context(|| format!("corrupt body of reply {}", row.id))?,
                    attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn reply_delivered(&self, id: i64) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE outbox SET delivered_at = ?, lease_until = NULL, last_error = NULL \
             WHERE id = ?",
        )
        .bind(millis(Timestamp::now()))
        .bind(id)
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot mark reply {id} delivered"))?;
        anyhow::ensure!(done.rows_affected() == 1, "no reply {id} in the outbox");
        Ok(())
    }

    async fn reply_failed(&self, id: i64, retry_at: Timestamp, error: &str) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE outbox SET next_attempt_at = ?, lease_until = NULL, last_error = ? \
             WHERE id = ? AND delivered_at IS NULL",
        )
        .bind(millis(retry_at))
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot reschedule reply {id}"))?;
        anyhow::ensure!(
            done.rows_affected() == 1,
            "no undelivered reply {id} in the outbox"
        );
        Ok(())
    }

    async fn remember_card_message(
        &self,
        card_key: &str,
        platform: Platform,
        message_id: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO chat_messages (card_key, platform, message_id) VALUES (?, ?, ?) \
             ON CONFLICT (card_key, platform) DO UPDATE SET message_id = excluded.message_id",
        )
        .bind(card_key)
        .bind(platform.as_str())
        .bind(message_id)
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot remember the message of {card_key}"))?;
        Ok(())
    }

    async fn card_message(
        &self,
        card_key: &str,
        platform: Platform,
    ) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT message_id FROM chat_messages WHERE card_key = ? AND platform = ?",
        )
        .bind(card_key)
        .bind(platform.as_str())
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("cannot read the message of {card_key}"))?;
        Ok(row.map(|(id,)| id))
    }
}
