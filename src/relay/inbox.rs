//! The webhook inbox worker: handles stored deliveries after they were
//! acknowledged, so a crash between the two loses nothing.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::app::Hoist;
use crate::chat::slack::{ButtonPress, ButtonRequest, EventEnvelope, SlashCommand};
use crate::forge::ForgeEvent;
use crate::forge::github::webhook;
use crate::store::InboxItem;

/// A claimed delivery stays with one worker this long; a worker that died
/// mid-way releases it by expiry.
const LEASE: Duration = Duration::from_secs(60);
/// A delivery that keeps failing (the store, say) is tried this often.
const MAX_ATTEMPTS: u32 = 5;
const BATCH: usize = 50;
const IDLE_POLL: Duration = Duration::from_secs(1);

impl Hoist {
    /// Handles what is due now; returns how many deliveries were claimed.
    pub async fn handle_due_webhooks(&self) -> anyhow::Result<usize> {
        let now = Timestamp::now();
        let lease_until = now + SignedDuration::try_from(LEASE)?;
        let items = self
            .store
            .claim_webhooks(now, lease_until, MAX_ATTEMPTS, BATCH)
            .await?;
        for item in &items {
            match self.handle_webhook(item).await {
                Ok(()) => self.store.webhook_processed(item.id, None).await?,
                Err(Handling::Dropped(reason)) => {
                    tracing::warn!(id = item.id, event = %item.event, %reason, "webhook delivery dropped");
                    self.store.webhook_processed(item.id, Some(&reason)).await?;
                }
                // Left leased: tried again when the lease runs out.
                Err(Handling::Retry(error)) => {
                    tracing::error!(
                        id = item.id,
                        attempt = item.attempts,
                        error = format!("{error:#}"),
                        "webhook delivery failed; will retry"
                    );
                }
            }
        }
        Ok(items.len())
    }

    async fn handle_webhook(&self, item: &InboxItem) -> Result<(), Handling> {
        match (item.source.as_str(), item.event.as_str()) {
            ("github", event) => self.handle_github_event(event, &item.body).await,
            ("slack", "slash_command") => {
                let command =
                    SlashCommand::parse(item.body.as_bytes()).map_err(Handling::Dropped)?;
                self.handle(command.inbound(&self.config.users))
                    .await
                    .map(drop)
                    .map_err(Handling::Retry)
            }
            ("slack", "block_actions") => {
                let press = ButtonPress::parse(item.body.as_bytes()).map_err(Handling::Dropped)?;
                match press.request(&self.config.users) {
                    Some(ButtonRequest::Cancel { card_key, origin }) => self
                        .cancel(&card_key, &origin)
                        .await
                        .map_err(Handling::Retry),
                    None => Err(Handling::Dropped("not one of hoist's buttons".into())),
                }
            }
            ("slack", "app_mention") => {
                let envelope =
                    EventEnvelope::parse(item.body.as_bytes()).map_err(Handling::Dropped)?;
                let inbound = envelope
                    .mention(&self.config.users)
                    .ok_or_else(|| Handling::Dropped("not an app_mention".into()))?;
                self.handle(inbound)
                    .await
                    .map(drop)
                    .map_err(Handling::Retry)
            }
            (source, event) => Err(Handling::Dropped(format!(
                "no handler for {source} `{event}`"
            ))),
        }
    }

    async fn handle_github_event(&self, event: &str, body: &str) -> Result<(), Handling> {
        let event = webhook::parse_event(event, body).map_err(Handling::Dropped)?;
        match event {
            ForgeEvent::DeploymentStatus {
                repo,
                deployment,
                status,
                at,
            } => self
                .relay_status(&repo, &deployment, &status, at)
                .await
                .map_err(Handling::Retry),
            // Runs of GitHub deployments come with the runner issue.
            ForgeEvent::Deployment { .. } => Ok(()),
        }
    }

    /// Handles stored deliveries until `stop` is cancelled.
    pub async fn run_inbox_until(self: Arc<Self>, stop: CancellationToken) {
        loop {
            match self.handle_due_webhooks().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "webhook inbox round failed");
                }
            }
            tokio::select! {
                _ = self.inbox_wakeup.notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

enum Handling {
    /// It can never be handled (malformed, or not for hoist).
    Dropped(String),
    /// Something on hoist's side failed; try again.
    Retry(anyhow::Error),
}
