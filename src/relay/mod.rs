//! The status relay and the outbox.
//!
//! A deployment status (from a GitHub webhook or the local forge) is
//! recorded, matched to the conversation that asked for the deployment
//! (`payload.hoist.origin`, else the store's record), and queued in the
//! outbox. The outbox worker delivers queued replies through the adapter
//! of their platform, retrying with backoff (or as long as the platform's
//! `Retry-After` says) until they are delivered.
//!
//! **Architecture invariant:** nothing is sent to a chat platform except
//! through the outbox, so a crash between deciding and sending loses
//! nothing.

mod inbox;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::app::Hoist;
use crate::chat::{ChatAdapter, DeliveryError, DeploymentCard, Reply};
use crate::domain::{DeploymentState, Origin, Platform, RepoName};
use crate::forge::{Deployment, NewStatus};
use crate::store::DeploymentKey;

/// How long a claimed reply stays leased to one worker before another
/// may try it (a worker that died mid-send).
const DELIVERY_LEASE: Duration = Duration::from_secs(60);
/// How often the worker looks for replies due for a retry when nothing
/// wakes it.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Replies claimed per round.
const BATCH: usize = 20;
/// The longest wait between two delivery attempts of one reply.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

impl Hoist {
    /// Queues a reply. With a `dedupe_key`, the same reply is queued once
    /// however often this is called (a redelivered webhook, a retried
    /// request).
    pub async fn reply(&self, reply: &Reply, dedupe_key: Option<&str>) -> anyhow::Result<()> {
        let body = serde_json::to_value(reply)?;
        self.store
            .enqueue_reply(
                reply.origin.platform,
                &reply.origin.conversation,
                &body,
                dedupe_key,
            )
            .await?;
        self.outbox_wakeup.notify_one();
        Ok(())
    }

    /// Records a status and tells the conversation that asked for the
    /// deployment. A status seen before is not told twice.
    pub async fn relay_status(
        &self,
        repo: &RepoName,
        deployment: &Deployment,
        status: &NewStatus,
        at: Timestamp,
    ) -> anyhow::Result<()> {
        let key = DeploymentKey {
            forge: self.forge.kind().to_owned(),
            repo: repo.clone(),
            id: deployment.id,
        };
        if !self.store.record_status(&key, status, at).await? {
            return Ok(());
        }
        let record = self.store.deployment(&key).await?;
        let origin = match (origin_in_payload(&deployment.payload), &record) {
            (Some(origin), _) => origin,
            (None, Some(record)) => record.origin.clone(),
            (None, None) => {
                tracing::debug!(%repo, id = %deployment.id, "status for a deployment hoist did not create");
                return Ok(());
            }
        };
        // Several apps may share a repository: the deployment names its own.
        let app = deployment
            .payload
            .pointer("/hoist/app")
            .and_then(|app| app.as_str())
            .map(str::to_owned)
            .or_else(|| record.map(|record| record.app.to_string()))
            .or_else(|| self.config.app_for_repo(repo).map(str::to_owned))
            .unwrap_or_else(|| repo.to_string());
        let card = DeploymentCard {
            key: card_key(&key),
            app: app.clone(),
            git_ref: deployment.git_ref.clone(),
            short_sha: deployment.sha.short().to_owned(),
            environment: deployment.environment.clone(),
            who: deployment.creator.clone(),
            state: state_word(status.state).to_owned(),
            log_url: status.log_url.clone(),
            first: false,
        };
        let reply = Reply {
            origin,
            text: status_line(&app, deployment, status),
            only_asker: false,
            card: Some(card),
        };
        let dedupe = format!(
            "status:{}:{repo}:{}:{}:{}",
            key.forge,
            deployment.id,
            status.state,
            at.as_millisecond()
        );
        self.reply(&reply, Some(&dedupe)).await?;
        self.metrics.status_relayed();
        Ok(())
    }
}

fn origin_in_payload(payload: &serde_json::Value) -> Option<Origin> {
    serde_json::from_value(payload.pointer("/hoist/origin")?.clone()).ok()
}

/// The key of a deployment's chat card: stable across replicas.
pub fn card_key(key: &DeploymentKey) -> String {
    format!("{}/{}/{}", key.forge, key.repo, key.id)
}

/// A state as people read it.
pub fn state_word(state: DeploymentState) -> &'static str {
    match state {
        DeploymentState::Pending => "pending",
        DeploymentState::Queued => "queued",
        DeploymentState::InProgress => "in progress",
        DeploymentState::Success => "succeeded",
        DeploymentState::Failure => "failed",
        DeploymentState::Error => "errored",
        DeploymentState::Inactive => "inactive",
    }
}

/// One line per status: what, where, how it went, and the log.
pub fn status_line(app: &str, deployment: &Deployment, status: &NewStatus) -> String {
    let state = state_word(status.state);
    let mut line = format!(
        "Deployment #{} of {app} {} ({}) to {}: {state}",
        deployment.id,
        deployment.git_ref,
        deployment.sha.short(),
        deployment.environment
    );
    if let Some(description) = status.description.as_deref().filter(|d| !d.is_empty()) {
        line.push_str(&format!(" ({description})"));
    }
    if let Some(url) = &status.environment_url {
        line.push_str(&format!(". Live at {url}"));
    }
    if let Some(url) = &status.log_url {
        line.push_str(&format!(". Log: {url}"));
    }
    line
}

/// Delivers queued replies through the adapters hoist runs.
pub struct Outbox {
    adapters: HashMap<Platform, Arc<dyn ChatAdapter>>,
}

impl Outbox {
    pub fn new(adapters: impl IntoIterator<Item = Arc<dyn ChatAdapter>>) -> Self {
        Self {
            adapters: adapters
                .into_iter()
                .map(|adapter| (adapter.platform(), adapter))
                .collect(),
        }
    }

    /// Delivers what is due now; returns how many replies were handled.
    pub async fn deliver_due(&self, hoist: &Hoist) -> anyhow::Result<usize> {
        let platforms: Vec<Platform> = self.adapters.keys().copied().collect();
        if platforms.is_empty() {
            return Ok(0);
        }
        let now = Timestamp::now();
        let lease_until = now + SignedDuration::try_from(DELIVERY_LEASE)?;
        let items = hoist
            .store
            .claim_replies(&platforms, now, lease_until, BATCH)
            .await?;
        let give_up = SignedDuration::from_secs(
            i64::try_from(hoist.config.outbox.give_up_after_secs).unwrap_or(i64::MAX),
        );
        for item in &items {
            let Some(adapter) = self.adapters.get(&item.platform) else {
                continue;
            };
            let reply: Reply = match serde_json::from_value(item.body.clone()) {
                Ok(reply) => reply,
                Err(error) => {
                    // Written by this program, so unreadable means a bug or
                    // an incompatible older version; keep it, retry late.
                    tracing::error!(id = item.id, %error, "unreadable reply in the outbox");
                    let later = now + SignedDuration::try_from(MAX_BACKOFF)?;
                    hoist
                        .store
                        .reply_failed(item.id, later, "unreadable")
                        .await?;
                    continue;
                }
            };
            let card_message = match &reply.card {
                Some(card) if !card.first => {
                    hoist.store.card_message(&card.key, item.platform).await?
                }
                _ => None,
            };
            match adapter.deliver(&reply, card_message.as_deref()).await {
                Ok(posted) => {
                    if let (Some(card), Some(message_id)) = (&reply.card, posted) {
                        hoist
                            .store
                            .remember_card_message(&card.key, item.platform, &message_id)
                            .await?;
                    }
                    hoist.store.reply_delivered(item.id).await?;
                    hoist.metrics.reply_delivered();
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
        }
        Ok(items.len())
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
