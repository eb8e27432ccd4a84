//! [`Replies`] on SQLite: the outbox, its dead letters, and the messages
//! that show deployments.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, millis, placeholders, sql_limit};
use crate::domain::Platform;
use crate::store::rows::OutboxRow;
use crate::store::{DeadReply, OutboxItem, Replies, StoreResult};

#[async_trait]
impl Replies for SqliteStore {
    async fn enqueue_reply(
        &self,
        platform: Platform,
        conversation: &str,
        body: &serde_json::Value,
        dedupe_key: Option<&str>,
    ) -> StoreResult<Option<i64>> {
        let now = millis(Timestamp::now());
        // A new reply is due at once (next_attempt_at 0), whatever clock the
        // relay later claims with.
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO outbox (platform, conversation, body, dedupe_key, created_at, next_attempt_at) \
             VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(platform.as_str())
        .bind(conversation)
        .bind(body.to_string())
        .bind(dedupe_key)
        .bind(now)
        .fetch_optional(&self.writer)
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
        let placeholders = placeholders(platforms.len());
        // One statement: SQLite runs it under the write lock, so two workers
        // can never lease the same row. A reply waits behind an older,
        // undelivered one to the same conversation. INDEXED BY: oldest
        // first, stopping at the limit; left to itself the planner walks
        // every pending reply of the platform and sorts them, which under
        // a backlog costs the whole backlog per claim.
        let sql = format!(
            "UPDATE outbox SET lease_until = ?, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox AS o INDEXED BY outbox_pending \
                 WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ? \
                 AND (lease_until IS NULL OR lease_until <= ?) \
                 AND platform IN ({placeholders}) \
                 AND NOT EXISTS (SELECT 1 FROM outbox AS earlier \
                     WHERE earlier.conversation = o.conversation AND earlier.platform = o.platform \
                     AND earlier.id < o.id AND earlier.delivered_at IS NULL AND earlier.dead_at IS NULL) \
                 ORDER BY id LIMIT ?) \
             RETURNING id, platform, conversation, body, attempts, created_at, last_error"
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
            .fetch_all(&self.writer)
            .await
            .context("cannot claim replies from the outbox")?;
        // RETURNING gives no order guarantee.
        rows.sort_by_key(|row| row.id);
        rows.into_iter().map(OutboxRow::into_item).collect()
    }

    async fn replies_delivered(&self, ids: &[i64]) -> StoreResult<()> {
        // A delivered reply is never read again: its dedupe key stays, its
        // body goes back to the file (dead letters keep theirs, to retry).
        let set =
            "UPDATE outbox SET delivered_at = ?, lease_until = NULL, last_error = NULL, body = ''";
        let updated = self
            .stamp_ids(set, ids)
            .await
            .with_context(|| format!("cannot mark replies {ids:?} delivered"))?;
        anyhow::ensure!(
            updated == ids.len() as u64,
            "not every one of the replies {ids:?} is in the outbox"
        );
        Ok(())
    }

    async fn prune_delivered_replies(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE delivered_at < ?")
            .bind(millis(before))
            .execute(&self.writer)
            .await
            .context("cannot delete delivered replies")?;
        Ok(done.rows_affected())
    }

    async fn reply_failed(&self, id: i64, retry_at: Timestamp, error: &str) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE outbox SET next_attempt_at = ?, lease_until = NULL, last_error = ? \
             WHERE id = ? AND delivered_at IS NULL",
        )
        .bind(millis(retry_at))
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot reschedule reply {id}"))?;
        anyhow::ensure!(
            done.rows_affected() == 1,
            "no undelivered reply {id} in the outbox"
        );
        Ok(())
    }

    async fn reply_given_up(&self, id: i64, error: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE outbox SET dead_at = ?, lease_until = NULL, last_error = ? \
             WHERE id = ? AND delivered_at IS NULL",
        )
        .bind(millis(Timestamp::now()))
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot give up reply {id}"))?;
        Ok(())
    }

    async fn dead_replies(&self, limit: usize) -> StoreResult<Vec<DeadReply>> {
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT id, platform, conversation, body, attempts, created_at, last_error FROM outbox \
             WHERE dead_at IS NOT NULL AND delivered_at IS NULL ORDER BY id LIMIT ?",
        )
        .bind(sql_limit(limit))
        .fetch_all(&self.reader)
        .await
        .context("cannot read the dead letters")?;
        rows.into_iter().map(OutboxRow::into_dead).collect()
    }

    async fn retry_dead_reply(&self, id: i64) -> StoreResult<bool> {
        // A fresh start: due now, and counted as new for the give-up time.
        let done = sqlx::query(
            "UPDATE outbox SET dead_at = NULL, next_attempt_at = 0, attempts = 0, created_at = ? \
             WHERE id = ? AND dead_at IS NOT NULL AND delivered_at IS NULL",
        )
        .bind(millis(Timestamp::now()))
        .bind(id)
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot retry reply {id}"))?;
        Ok(done.rows_affected() == 1)
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
        .execute(&self.writer)
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
        .fetch_optional(&self.reader)
        .await
        .with_context(|| format!("cannot read the message of {card_key}"))?;
        Ok(row.map(|(id,)| id))
    }
}
