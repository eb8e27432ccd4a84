//! Catch-up and watchdog. GitHub does not redeliver a webhook hoist
//! missed (it was down, or the webhook is misconfigured), so hoist polls
//! the statuses of every deployment it made that has not finished, and
//! relays what it missed; `record_status` makes a status seen twice
//! (webhook and poll) count once. A deployment that gets no status at all
//! for a while is reported: the silence hubot-deploy and SlashDeploy users
//! met when nothing was running their deployments.

use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::Hoist;
use crate::chat::Reply;
use crate::forge::Deployment;
use crate::store::DeploymentRecord;

/// Deployments looked at per round: a bound on the requests one round
/// makes (each an ETag request that GitHub does not count when nothing
/// changed).
const PER_ROUND: usize = 20;

impl Hoist {
    /// One round: polls unfinished deployments and reports silent ones,
    /// looks again at auto-deploys waiting for checks (for a status
    /// event missed), ends approval requests and held deployments that
    /// ran out of time, and
    /// reminds the holders of long-held locks. Returns how many deployments were looked at.
    pub async fn watch_round(&self) -> anyhow::Result<usize> {
        // Its own errors are its own: the catch-up below still runs.
        if let Err(error) = self.recheck_waiting(None).await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot look at the waiting auto-deploys"
            );
        }
        if let Err(error) = self.expire_approval_requests().await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot end the approval requests that ran out of time"
            );
        }
        if let Err(error) = self.expire_held_deployments().await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot end the held deployments whose actions ran out of time"
            );
        }
        if let Err(error) = self.remind_long_held_locks().await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot remind the holders of long-held locks"
            );
        }
        let watch = &self.config.watch;
        let now = Timestamp::now();
        let since = now - SignedDuration::from_secs(secs(watch.max_age_secs));
        let unfinished = self.store.unfinished_deployments(since, PER_ROUND).await?;
        for (record, seen_a_status) in &unfinished {
            if record.key.forge != self.forge.kind() {
                continue;
            }
            let seen = match self.catch_up(record).await {
                Ok(relayed) => *seen_a_status || relayed > 0,
                Err(error) => {
                    tracing::warn!(repo = %record.key.repo, id = %record.key.id, error = format!("{error:#}"), "cannot poll a deployment's statuses");
                    *seen_a_status
                }
            };
            let silent_for = now.duration_since(record.created_at);
            if !seen && silent_for > SignedDuration::from_secs(secs(watch.silence_secs)) {
                self.report_silence(record).await?;
            }
        }
        Ok(unfinished.len())
    }

    /// Relays every status of `record`'s deployment hoist has not seen;
    /// returns how many statuses the forge has.
    async fn catch_up(&self, record: &DeploymentRecord) -> anyhow::Result<usize> {
        let statuses = self
            .forge
            .deployment_statuses(&record.key.repo, record.key.id)
            .await?;
        let deployment = deployment_of(record);
        for (status, at) in &statuses {
            self.relay_status(&record.key.repo, &deployment, status, *at)
                .await?;
        }
        Ok(statuses.len())
    }

    /// Tells the conversation, once, that nothing has picked the
    /// deployment up.
    async fn report_silence(&self, record: &DeploymentRecord) -> anyhow::Result<()> {
        let text = format!(
            "Deployment #{} of {} {} to {} has had no status for {} s: nothing seems to be running deployments for {}. \
             Check that something answers GitHub's `deployment` events for {} (a workflow on `deployment`, a runner such as hoist's or Heaven).",
            record.key.id,
            record.app,
            record.git_ref,
            record.environment,
            self.config.watch.silence_secs,
            record.environment,
            record.key.repo,
        );
        let reply = Reply::text(record.origin.clone(), text, false);
        let dedupe = format!("silence:{}", super::card_key(&record.key));
        self.reply(&reply, Some(&dedupe)).await
    }

    /// Watches until `stop` is cancelled.
    pub async fn run_watch_until(self: Arc<Self>, stop: CancellationToken) {
        let every = Duration::from_secs(self.config.watch.interval_secs.max(1));
        loop {
            if let Err(error) = self.watch_round().await {
                tracing::error!(error = format!("{error:#}"), "watch round failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                // A lock was released: what waited for it goes now.
                _ = self.waiting_wakeup.notified() => {
                    if let Err(error) = self.recheck_waiting(None).await {
                        tracing::error!(error = format!("{error:#}"), "cannot look at waiting deployments");
                    }
                    continue;
                }
                _ = stop.cancelled() => return,
            }
        }
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The deployment as the relay needs it, from what hoist recorded when it
/// created it (the forge's statuses list does not repeat it).
fn deployment_of(record: &DeploymentRecord) -> Deployment {
    let actor = &record.origin.actor;
    Deployment {
        id: record.key.id,
        git_ref: record.git_ref.clone(),
        sha: record.sha.clone(),
        task: record.task.clone(),
        environment: record.environment.clone(),
        description: None,
        creator: actor.login.clone().unwrap_or_else(|| actor.name.clone()),
        created_at: record.created_at,
        payload: json!({"hoist": {"app": record.app, "origin": record.origin}}),
        state: None,
        status_at: None,
        transient_environment: false,
        production_environment: false,
    }
}
