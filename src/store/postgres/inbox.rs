//! [`Inbox`] on PostgreSQL: webhook deliveries stored before they are
//! acknowledged, claimed by any replica's workers.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{PgStore, millis, sql_limit};
use crate::store::rows::InboxRow;
use crate::store::{Inbox, InboxItem, InboxLane, StoreResult};

/// The advisory lock statuses claims take in turn (`pg_advisory_xact_lock`
/// key; any number no other lock of hoist's uses).
const STATUSES_CLAIM_LOCK: i64 = 0x686f_6973_7401;

#[async_trait]
impl Inbox for PgStore {
    async fn store_webhook(
        &self,
        source: &str,
        delivery_id: &str,
        event: &str,
        body: &str,
    ) -> StoreResult<bool> {
        // One insert, committed (synchronously: PostgreSQL's default)
        // before the caller acknowledges. Of two replicas storing one
        // delivery at once, the second waits for the first's row and
        // finds it.
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO webhook_inbox (source, delivery_id, event, body, received_at, order_key) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(source)
        .bind(delivery_id)
        .bind(event)
        .bind(body)
        .bind(millis(Timestamp::now()))
        .bind(InboxLane::order_key(source, event, body))
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("cannot store {source} delivery {delivery_id}"))?;
        Ok(inserted.is_some())
    }

    async fn claim_webhooks(
        &self,
        lane: InboxLane,
        now: Timestamp,
        lease_until: Timestamp,
        max_attempts: u32,
        limit: usize,
    ) -> StoreResult<Vec<InboxItem>> {
        // Must say what `InboxLane::of` says, and read as the lane's
        // partial index does.
        let in_lane = match lane {
            InboxLane::Statuses => "(source = 'github' AND event = 'deployment_status')",
            InboxLane::Requests => "NOT (source = 'github' AND event = 'deployment_status')",
        };
        // SKIP LOCKED: replicas claiming at once take different rows. A
        // status also waits while an earlier one of its deployment is
        // leased, to any replica; for that to see the other claims'
        // leases, statuses claims take turns (an advisory lock held to
        // the commit), so each one's statement reads the leases the one
        // before committed.
        let sql = format!(
            "UPDATE webhook_inbox SET lease_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM webhook_inbox AS w \
                 WHERE processed_at IS NULL AND attempts < $2 AND {in_lane} \
                 AND (lease_until IS NULL OR lease_until <= $3) \
                 AND NOT EXISTS (SELECT 1 FROM webhook_inbox AS e \
                     WHERE e.order_key = w.order_key AND e.id < w.id \
                     AND e.processed_at IS NULL AND e.lease_until > $3) \
                 ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING id, source, event, body, attempts"
        );
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot claim webhook deliveries")?;
        if lane == InboxLane::Statuses {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(STATUSES_CLAIM_LOCK)
                .execute(&mut *tx)
                .await
                .context("cannot claim webhook deliveries")?;
        }
        let rows: Vec<InboxRow> = sqlx::query_as(&sql)
            .bind(millis(lease_until))
            .bind(i64::from(max_attempts))
            .bind(millis(now))
            .bind(sql_limit(limit))
            .fetch_all(&mut *tx)
            .await
            .context("cannot claim webhook deliveries")?;
        tx.commit()
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
            "UPDATE webhook_inbox SET processed_at = $1, lease_until = NULL, last_error = $2 \
             WHERE id = $3",
        )
        .bind(millis(Timestamp::now()))
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot mark webhook delivery {id} dropped"))?;
        Ok(())
    }

    async fn webhooks_processed(&self, ids: &[i64]) -> StoreResult<()> {
        // A delivery handled well keeps its key (to recognise a
        // redelivery), not its body.
        let set = "UPDATE webhook_inbox SET processed_at = $1, lease_until = NULL, last_error = NULL, body = ''";
        self.stamp_ids(set, ids)
            .await
            .with_context(|| format!("cannot mark {} webhook deliveries processed", ids.len()))?;
        Ok(())
    }

    async fn prune_handled_webhooks(&self, before: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM webhook_inbox WHERE processed_at < $1")
            .bind(millis(before))
            .execute(&self.pool)
            .await
            .context("cannot delete handled webhook deliveries")?;
        Ok(done.rows_affected())
    }
}
