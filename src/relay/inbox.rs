//! The webhook inbox worker: handles stored deliveries after they were
//! acknowledged, so a crash between the two loses nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::app::Hoist;
use crate::chat::discord::{self, Interaction};
use crate::chat::pr_comment::CommentEvent;
use crate::chat::slack::{ButtonPress, ButtonRequest, EventEnvelope, SlashCommand};
use crate::domain::RepoName;
use crate::forge::github::webhook;
use crate::forge::{Deployment, ForgeEvent, NewStatus};
use crate::store::{InboxItem, InboxLane};
use crate::workflow::EARLIER_ATTEMPT_LAPSED;

/// A delivery that keeps failing (the store, say) is tried this often.
const MAX_ATTEMPTS: u32 = 5;
const BATCH: usize = 50;
/// Requests handled at once; each may wait seconds on GitHub.
const REQUESTS_IN_FLIGHT: usize = 16;
const IDLE_POLL: Duration = Duration::from_secs(1);

impl Hoist {
    /// Relays the statuses due now; returns how many were claimed.
    pub async fn relay_due_statuses(&self) -> anyhow::Result<usize> {
        let items = self.claim_due(InboxLane::Statuses, BATCH).await?;
        self.relay_stored_statuses(&items).await?;
        Ok(items.len())
    }

    /// Starts the requests due now, as many as `slots` has free, each on
    /// its own task: one command waiting on GitHub holds up none of the
    /// others, and a slot freed is taken at once. Returns how many were
    /// started. Requests were never promised an order among themselves.
    pub async fn start_due_requests(
        self: &Arc<Self>,
        slots: &Arc<Semaphore>,
    ) -> anyhow::Result<usize> {
        let free = slots.available_permits().min(BATCH);
        if free == 0 {
            return Ok(0);
        }
        let items = self.claim_due(InboxLane::Requests, free).await?;
        let started = items.len();
        for item in items {
            let slot = Arc::clone(slots).try_acquire_owned()?;
            let hoist = Arc::clone(self);
            tokio::spawn(async move {
                // Claimed before: the attempt that claimed it let its lease
                // lapse (it died, with its replica perhaps).
                let lapsed = item.attempts > 1;
                let outcome = EARLIER_ATTEMPT_LAPSED
                    .scope(lapsed, hoist.handle_webhook(&item))
                    .await;
                if let Err(error) = hoist.settle_webhook(&item, outcome).await {
                    // Still leased: tried again when the lease runs out.
                    tracing::error!(
                        id = item.id,
                        error = format!("{error:#}"),
                        "cannot settle a request"
                    );
                }
                drop(slot);
                hoist.inbox_wakeup(InboxLane::Requests).notify_one();
            });
        }
        Ok(started)
    }

    async fn claim_due(&self, lane: InboxLane, limit: usize) -> anyhow::Result<Vec<InboxItem>> {
        let now = Timestamp::now();
        // A worker (or replica) that dies mid-way releases it by expiry.
        let lease_until = now + SignedDuration::try_from(self.config.store.lease())?;
        self.store
            .claim_webhooks(lane, now, lease_until, MAX_ATTEMPTS, limit)
            .await
    }

    /// Relays stored `deployment_status` deliveries: each deployment's in
    /// the order they arrived (a conversation never reads `success`
    /// before `pending`), different deployments side by side. The relayed
    /// ones are marked processed together at the end; a crash before that
    /// relays them again, which the relay makes a no-op.
    async fn relay_stored_statuses(&self, items: &[InboxItem]) -> anyhow::Result<()> {
        let mut by_deployment: HashMap<String, Vec<(&InboxItem, StatusEvent)>> = HashMap::new();
        for item in items {
            match webhook::parse_event(&item.event, &item.body) {
                Ok(ForgeEvent::DeploymentStatus {
                    repo,
                    deployment,
                    status,
                    at,
                }) => by_deployment
                    .entry(format!("{repo}#{}", deployment.id))
                    .or_default()
                    .push((item, (repo, deployment, status, at))),
                Ok(_) => {
                    let reason = "not a deployment status".to_owned();
                    self.settle_webhook(item, Err(Handling::Dropped(reason)))
                        .await?;
                }
                Err(reason) => {
                    self.settle_webhook(item, Err(Handling::Dropped(reason)))
                        .await?;
                }
            }
        }
        let relayed = by_deployment.into_values().map(|statuses| async move {
            let mut relayed = Vec::with_capacity(statuses.len());
            for (item, (repo, deployment, status, at)) in statuses {
                if let Err(error) = self.relay_status(&repo, &deployment, &status, at).await {
                    // The later statuses of this deployment wait with it.
                    self.settle_webhook(item, Err(Handling::Retry(error)))
                        .await?;
                    break;
                }
                relayed.push(item.id);
            }
            anyhow::Ok(relayed)
        });
        let mut processed = Vec::with_capacity(items.len());
        for relayed in join_all(relayed).await {
            processed.extend(relayed?);
        }
        self.store.webhooks_processed(&processed).await?;
        self.metrics.webhooks_handled("processed", processed.len());
        Ok(())
    }

    /// Marks a delivery processed, or leaves it leased for a retry.
    async fn settle_webhook(
        &self,
        item: &InboxItem,
        outcome: Result<(), Handling>,
    ) -> anyhow::Result<()> {
        match outcome {
            Ok(()) => {
                self.store.webhooks_processed(&[item.id]).await?;
                self.metrics.webhooks_handled("processed", 1);
            }
            Err(Handling::Dropped(reason)) => {
                tracing::warn!(id = item.id, event = %item.event, %reason, "webhook delivery dropped");
                self.store.webhook_dropped(item.id, &reason).await?;
                self.metrics.webhooks_handled("dropped", 1);
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
        Ok(())
    }

    async fn handle_webhook(&self, item: &InboxItem) -> Result<(), Handling> {
        match (item.source.as_str(), item.event.as_str()) {
            ("github", event) => self.handle_github_event(item.id, event, &item.body).await,
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
                    Some(ButtonRequest::Vote(vote)) => {
                        let (inbound, command) = *vote;
                        self.handle_command(inbound, command)
                            .await
                            .map(drop)
                            .map_err(Handling::Retry)
                    }
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
            ("discord", "message_create") => {
                let inbound =
                    discord::mention(&item.body, &self.config.users).map_err(Handling::Dropped)?;
                self.heard(&inbound).await.map_err(Handling::Retry)?;
                self.handle(inbound)
                    .await
                    .map(drop)
                    .map_err(Handling::Retry)
            }
            ("discord", "interaction") => {
                let interaction =
                    Interaction::parse(item.body.as_bytes()).map_err(Handling::Dropped)?;
                match interaction.request(&self.config.users) {
                    discord::Request::Command(parsed) => self
                        .handle_command(parsed.0, parsed.1)
                        .await
                        .map(drop)
                        .map_err(Handling::Retry),
                    discord::Request::Cancel { card_key, origin } => self
                        .cancel(&card_key, &origin)
                        .await
                        .map_err(Handling::Retry),
                    _ => Err(Handling::Dropped(
                        "not a command or button of hoist's".into(),
                    )),
                }
            }
            (source, event) => Err(Handling::Dropped(format!(
                "no handler for {source} `{event}`"
            ))),
        }
    }

    /// `id` is the delivery's place in the inbox: the requests it makes
    /// are keyed by it, so handling it twice does each once.
    async fn handle_github_event(&self, id: i64, event: &str, body: &str) -> Result<(), Handling> {
        if let (Some(github), Some((repo, installation))) =
            (&self.github, webhook::installation(body))
        {
            github
                .use_installation(&repo, installation)
                .await
                .map_err(|e| Handling::Retry(e.into()))?;
        }
        if event == "issue_comment" {
            let comment = CommentEvent::parse(body).map_err(Handling::Dropped)?;
            return self
                .handle_pr_comment(&comment)
                .await
                .map_err(Handling::Retry);
        }
        let key = format!("github:{id}");
        let event = webhook::parse_event(event, body).map_err(Handling::Dropped)?;
        match event {
            ForgeEvent::Push(push) => self
                .push_received(&push, &key)
                .await
                .map_err(Handling::Retry),
            ForgeEvent::ChecksChanged { repo, sha } => self
                .recheck_waiting(Some((&repo, &sha)))
                .await
                .map(drop)
                .map_err(Handling::Retry),
            ForgeEvent::PullRequest(change) => self
                .pull_request_changed(&change, &key)
                .await
                .map_err(Handling::Retry),
            ForgeEvent::DeploymentStatus {
                repo,
                deployment,
                status,
                at,
            } => self
                .relay_status(&repo, &deployment, &status, at)
                .await
                .map_err(Handling::Retry),
            ForgeEvent::Deployment { repo, deployment } => self
                .deployment_created(&repo, &deployment)
                .await
                .map_err(Handling::Retry),
        }
    }

    /// Handles stored deliveries, one worker per lane, until `stop` is
    /// cancelled.
    pub async fn run_inbox_until(self: Arc<Self>, stop: CancellationToken) {
        let statuses =
            tokio::spawn(Arc::clone(&self).run_lane_until(InboxLane::Statuses, stop.clone()));
        self.run_lane_until(InboxLane::Requests, stop).await;
        statuses.await.ok();
    }

    async fn run_lane_until(self: Arc<Self>, lane: InboxLane, stop: CancellationToken) {
        // The requests lane's tasks in flight (the statuses lane runs its
        // work inside the loop).
        let slots = Arc::new(Semaphore::new(REQUESTS_IN_FLIGHT));
        loop {
            let round = match lane {
                InboxLane::Statuses => self.relay_due_statuses().await,
                InboxLane::Requests => self.start_due_requests(&slots).await,
            };
            match round {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(
                        ?lane,
                        error = format!("{error:#}"),
                        "webhook inbox round failed"
                    );
                }
            }
            tokio::select! {
                _ = self.inbox_wakeup(lane).notified() => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}

/// A status event's parts, as the relay takes them.
type StatusEvent = (RepoName, Deployment, NewStatus, Timestamp);

enum Handling {
    /// It can never be handled (malformed, or not for hoist).
    Dropped(String),
    /// Something on hoist's side failed; try again.
    Retry(anyhow::Error),
}
