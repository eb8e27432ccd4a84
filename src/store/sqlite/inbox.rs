//! [`Inbox`] on SQLite: webhook deliveries stored before acknowledgement.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, millis, sql_limit};
use crate::store::rows::InboxRow;
use crate::store::{Inbox, InboxItem, InboxLane, StoreResult};

#[async_trait]
impl Inbox for SqliteStore {
    async fn store_webhook(
        &self,
        source: &str,
        delivery_id: &str,
        event: &str,
        body: &str,
    ) -> StoreResult<bool> {
        // Committed with the deliveries that arrive beside it: one disk
        // sync for a burst.
        self.intake.store(source, delivery_id, event, body).await
    }

    async fn claim_webhooks(
        &self,
        lane: InboxLane,
        now: Timestamp,
        lease_until: Timestamp,
        max_attempts: u32,
        limit: usize,
    ) -> StoreResult<Vec<InboxItem>> {
        // One statement: SQLite runs it under the write lock, so two
        // workers never lease the same delivery.
        // Must say what `InboxLane::of` says, and read as the lane's
        // partial index does. INDEXED BY: without statistics the planner
        // would rather walk every delivery ever stored from GitHub (the
        // unique key's index), which grows without end.
        let (in_lane, index) = match lane {
            InboxLane::Statuses => (
                "(source = 'github' AND event = 'deployment_status')",
                "webhook_inbox_pending_statuses",
            ),
            InboxLane::Requests => (
                "NOT (source = 'github' AND event = 'deployment_status')",
                "webhook_inbox_pending_requests",
            ),
        };
        // A status waits while an earlier one of its deployment is leased
        // (`order_key`), as on PostgreSQL; here one worker claims a lane,
        // so that is only a batch not yet settled.
        let sql = format!(
            "UPDATE webhook_inbox SET lease_until = ?, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM webhook_inbox AS w INDEXED BY {index} \
                 WHERE processed_at IS NULL AND attempts < ? AND {in_lane} \
                 AND (lease_until IS NULL OR lease_until <= ?) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_inbox AS e \
                     WHERE e.order_key = w.order_key AND e.id < w.id \
                     AND e.processed_at IS NULL AND e.lease_until > ?) \
                 ORDER BY id LIMIT ?) \
             RETURNING id, source, event, body, attempts"
        );
        let rows: Vec<InboxRow> = sqlx::query_as(&sql)
            .bind(millis(lease_until))
            .bind(i64::from(max_attempts))
            .bind(millis(now))
            .bind(millis(now))
            .bind(sql_limit(limit))
            .fetch_all(&self.writer)
            .await
            .context("cannot claim webhook deliveries")?;
        let mut items: Vec<InboxItem> = rows.into_iter().map(InboxRow::into_item).collect();
        // RETURNING gives no order guarantee; deliveries are handled in
        // the order they arrived.
        items.sort_by_key(|item| item.id);
        Ok(items)
    }

    async fn webhook_dropped(&self, id: i64, reason: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE webhook_inbox SET processed_at = ?, lease_until = NULL, last_error = ? WHERE id = ?",
        )
        .bind(millis(Timestamp::now()))
        .bind(reason)
        .bind(id)
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot mark webhook delivery {id} dropped"))?;
        Ok(())
    }

    async fn webhooks_processed(&self, ids: &[i64]) -> StoreResult<()> {
        // The body of a delivery handled well is of no more use: its id
        // stays to recognise a redelivery, and its pages go back to the
        // file for the deliveries to come (webhook bodies are most of what
        // hoist writes, and a file that grows by them keeps the busy pages
        // apart).
        let set = "UPDATE webhook_inbox SET processed_at = ?, lease_until = NULL, last_error = NULL, body = ''";
        self.stamp_ids(set, ids)
            .await
            .with_context(|| format!("cannot mark {} webhook deliveries processed", ids.len()))?;
        Ok(())
    }

    async fn prune_handled_webhooks(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM webhook_inbox WHERE processed_at < ?")
            .bind(millis(before))
            .execute(&self.writer)
            .await
            .context("cannot delete handled webhook deliveries")?;
        Ok(done.rows_affected())
    }
}
