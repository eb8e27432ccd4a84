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
        let Some(before) = cutoff(now, self.config.store.keep_handled_days) else {
            return Ok((0, 0));
        };
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

/// What was handled before this is forgotten; `None` when `keep_days`
/// reaches back past the start of time (then everything is kept).
fn cutoff(now: Timestamp, keep_days: u64) -> Option<Timestamp> {
    let keep = i64::try_from(keep_days)
        .ok()
        .and_then(|days| days.checked_mul(24))
        .and_then(SignedDuration::try_from_hours)?;
    now.checked_sub(keep).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_keep_days_back_and_a_huge_keep_keeps_everything() {
        let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
        assert_eq!(
            cutoff(now, 14),
            Some("2026-11-17T12:00:00Z".parse().unwrap())
        );
        assert_eq!(cutoff(now, 0), Some(now));
        assert_eq!(cutoff(now, 10_000_000), None);
        assert_eq!(cutoff(now, u64::MAX), None);
    }
}
