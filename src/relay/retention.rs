//! Retention: the inbox and the outbox keep what they handled for
//! `store.keep_handled_days`, then forget it, so the store does not grow
//! without end. What is still to do, and dead letters, are never deleted;
//! deployments, their statuses and the audit log are kept.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::app::Hoist;

/// How often old rows are looked for: they pile up over days.
const EVERY: Duration = Duration::from_secs(60 * 60);

impl Hoist {
    /// Deletes deliveries and replies handled more than
    /// `store.keep_handled_days` before `now`; returns how many of each.
    pub async fn prune_handled(&self, now: Timestamp) -> anyhow::Result<(u64, u64)> {
        let days = i64::try_from(self.config.store.keep_handled_days).unwrap_or(i64::MAX / 86_400);
        let before = now - SignedDuration::from_hours(days.saturating_mul(24));
        let deliveries = self.store.prune_handled_webhooks(before).await?;
        let replies = self.store.prune_delivered_replies(before).await?;
        Ok((deliveries, replies))
    }

    /// Prunes once an hour (and once at start) until `stop` is cancelled.
    pub async fn run_retention_until(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.prune_handled(Timestamp::now()).await {
                Ok((0, 0)) => {}
                Ok((deliveries, replies)) => {
                    tracing::info!(
                        deliveries,
                        replies,
                        "deleted handled deliveries and replies past store.keep_handled_days"
                    );
                }
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "retention round failed")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}
