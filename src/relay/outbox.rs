//! The outbox worker: delivers queued replies through the adapters hoist
//! runs, retrying with backoff (or as long as the platform's
//! `Retry-After` says), and gives up after `outbox.give_up_after_secs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::actions::{Call, Webhooks};
use crate::app::Hoist;
use crate::chat::{ChatAdapter, DeliveryError, Reply};
use crate::domain::Platform;
use crate::store::OutboxItem;

/// How often the worker looks for replies due for a retry when nothing
/// wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Replies claimed per round.
const BATCH: usize = 20;
/// The longest wait between two delivery attempts of one reply.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Delivers queued replies through the adapters hoist runs, and
/// integration actions' webhooks.
pub struct Outbox {
    adapters: HashMap<Platform, Arc<dyn ChatAdapter>>,
    webhooks: Option<Webhooks>,
}

impl Outbox {
    pub fn new(adapters: impl IntoIterator<Item = Arc<dyn ChatAdapter>>) -> Self {
        Self {
            adapters: adapters
                .into_iter()
                .map(|adapter| (adapter.platform(), adapter))
                .collect(),
            webhooks: None,
        }
    }

    /// Also delivers integration actions' webhooks
    /// ([`Platform::Integration`]).
    pub fn with_webhooks(self, webhooks: Webhooks) -> Self {
        Self {
            webhooks: Some(webhooks),
            ..self
        }
    }

    /// Delivers what is due now; returns how many replies were handled.
    pub async fn deliver_due(&self, hoist: &Hoist) -> anyhow::Result<usize> {
        let mut platforms: Vec<Platform> = self.adapters.keys().copied().collect();
        if self.webhooks.is_some() {
            platforms.push(Platform::Integration);
        }
        if platforms.is_empty() {
            return Ok(0);
        }
        let now = Timestamp::now();
        // Another worker (or replica) may try it once this lapses: one
        // that died mid-send.
        let lease_until = now + SignedDuration::try_from(hoist.config.store.lease())?;
        let items = hoist
            .store
            .claim_replies(&platforms, now, lease_until, BATCH)
            .await?;
        let give_up = SignedDuration::from_secs(
            i64::try_from(hoist.config.outbox.give_up_after_secs).unwrap_or(i64::MAX),
        );
        // Side by side: a claim holds at most one reply per conversation
        // (the oldest undelivered), so order within each is kept.
        let attempts = items
            .iter()
            .map(|item| self.deliver_one(hoist, item, now, give_up));
        let mut delivered = Vec::with_capacity(items.len());
        let mut failed = Ok(());
        for attempt in join_all(attempts).await {
            match attempt {
                Ok(id) => delivered.extend(id),
                Err(error) => failed = Err(error),
            }
        }
        // Marked together: a crash before this sends them again (replies
        // are delivered at least once, never lost).
        hoist.store.replies_delivered(&delivered).await?;
        failed.map(|()| items.len())
    }

    async fn deliver_one(
        &self,
        hoist: &Hoist,
        item: &OutboxItem,
        now: Timestamp,
        give_up: SignedDuration,
    ) -> anyhow::Result<Option<i64>> {
        let sent = match (&self.webhooks, item.platform) {
            (Some(webhooks), Platform::Integration) => {
                match read::<Call>(hoist, item, now).await? {
                    Some(call) => webhooks.deliver(&call).await,
                    None => return Ok(None),
                }
            }
            _ => match self.deliver_reply(hoist, item, now).await? {
                Some(sent) => sent,
                None => return Ok(None),
            },
        };
        match sent {
            Ok(()) => {
                hoist.metrics.reply_delivered();
                return Ok(Some(item.id));
            }
            Err(error) if now.duration_since(item.created_at) > give_up => {
                tracing::error!(id = item.id, attempts = item.attempts, %error, "reply given up: see `hoist outbox`");
                hoist
                    .store
                    .reply_given_up(item.id, &error.to_string())
                    .await?;
                hoist.metrics.reply_failed();
            }
            Err(error) => {
                let wait = match &error {
                    DeliveryError::RetryAfter(wait) => *wait,
                    DeliveryError::Failed(_) => backoff(item.attempts),
                };
                tracing::warn!(id = item.id, attempts = item.attempts, %error, "reply not delivered; will retry");
                let retry_at = Timestamp::now() + SignedDuration::try_from(wait)?;
                hoist
                    .store
                    .reply_failed(item.id, retry_at, &error.to_string())
                    .await?;
                hoist.metrics.reply_failed();
            }
        }
        Ok(None)
    }

    /// Sends a chat reply through its platform's adapter; `None` when it
    /// cannot be sent here.
    async fn deliver_reply(
        &self,
        hoist: &Hoist,
        item: &OutboxItem,
        now: Timestamp,
    ) -> anyhow::Result<Option<Result<(), DeliveryError>>> {
        let Some(adapter) = self.adapters.get(&item.platform) else {
            return Ok(None);
        };
        let Some(reply) = read::<Reply>(hoist, item, now).await? else {
            return Ok(None);
        };
        let card_message = match &reply.card {
            Some(card) if !card.first => hoist.store.card_message(&card.key, item.platform).await?,
            _ => None,
        };
        let posted = match adapter.deliver(&reply, card_message.as_deref()).await {
            Ok(posted) => posted,
            Err(error) => return Ok(Some(Err(error))),
        };
        if let (Some(card), Some(message_id)) = (&reply.card, posted) {
            hoist
                .store
                .remember_card_message(&card.key, item.platform, &message_id)
                .await?;
        }
        Ok(Some(Ok(())))
    }

    /// Delivers replies until `stop` is cancelled, then delivers what is
    /// due and returns.
    pub async fn run_until(self, hoist: Arc<Hoist>, stop: CancellationToken) {
        loop {
            match self.deliver_due(&hoist).await {
                Ok(n) if n > 0 => continue,
                Ok(_) if stop.is_cancelled() => return,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "outbox delivery round failed");
                    if stop.is_cancelled() {
                        return;
                    }
                }
            }
            tokio::select! {
                _ = hoist.outbox_wakeup.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.cancelled() => {}
            }
        }
    }
}

/// An item's body as what it is; `None` when it cannot be read, kept
/// and tried again late.
async fn read<T: serde::de::DeserializeOwned>(
    hoist: &Hoist,
    item: &OutboxItem,
    now: Timestamp,
) -> anyhow::Result<Option<T>> {
    match serde_json::from_value(item.body.clone()) {
        Ok(body) => Ok(Some(body)),
        Err(error) => {
            // Written by this program, so unreadable means a bug or an
            // incompatible older version; keep it, retry late.
            tracing::error!(id = item.id, %error, "unreadable item in the outbox");
            let later = now + SignedDuration::try_from(MAX_BACKOFF)?;
            hoist
                .store
                .reply_failed(item.id, later, "unreadable")
                .await?;
            Ok(None)
        }
    }
}

/// 1 s, 2 s, 4 s, ... up to five minutes.
fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(9)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_the_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
