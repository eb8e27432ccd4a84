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
mod outbox;
mod retention;
mod watch;

pub use outbox::Outbox;

use jiff::Timestamp;

use crate::app::Hoist;
use crate::chat::{DeploymentCard, Inbound, Reaction, Reply};
use crate::domain::{DeploymentState, Origin, Platform, RepoName};
use crate::forge::{Deployment, NewStatus};
use crate::policy::LockKind;
use crate::store::DeploymentKey;

impl Hoist {
    /// Queues a reply. With a `dedupe_key`, the same reply is queued once
    /// however often this is called (a redelivered webhook, a retried
    /// request).
    pub async fn reply(&self, reply: &Reply, dedupe_key: Option<&str>) -> anyhow::Result<()> {
        let announcement;
        let reply = match reply.origin.platform {
            Platform::Push => {
                tracing::debug!(text = %reply.text, "not announced: the app names no channel");
                return Ok(());
            }
            Platform::Dashboard => match self.dashboard_announcement(reply) {
                Some(announced) => {
                    announcement = announced;
                    &announcement
                }
                None => return Ok(()),
            },
            _ => reply,
        };
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

    /// What the dashboard did that concerns everyone (a deployment and
    /// its statuses, a lock, an approval: what chat says to the whole
    /// conversation) is said in the app's channel, as an auto-deploy is.
    /// The rest, and everything for an app without a channel, was the
    /// page's answer alone.
    fn dashboard_announcement(&self, reply: &Reply) -> Option<Reply> {
        if reply.only_asker || reply.reaction.is_some() {
            return None;
        }
        // A dashboard origin's conversation is the app acted on.
        let channel = self
            .config
            .app(&reply.origin.conversation)?
            .channel
            .as_ref()?;
        Some(Reply {
            origin: Origin {
                platform: channel.platform,
                conversation: channel.conversation.clone(),
                message: None,
                link: None,
                actor: reply.origin.actor.clone(),
            },
            answer_handle: None,
            ..reply.clone()
        })
    }

    /// Marks a command as heard (👀) where the platform shows reactions
    /// on the message that held it, before anything else is said; once
    /// per request.
    pub async fn heard(&self, inbound: &Inbound) -> anyhow::Result<()> {
        let heard = Reply {
            reaction: Some(Reaction::Eyes),
            ..Reply::text(inbound.origin.clone(), "", false)
        };
        self.reply(&heard, Some(&format!("heard:{}", inbound.request_key)))
            .await
    }

    /// Tells the conversation that asked for the deployment about a
    /// status, and records it. A status seen before is not told twice.
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
        // The status record is what says "told before": replies' dedupe
        // keys go when delivered replies are pruned, statuses stay.
        if self.store.has_status(&key, status.state, at).await? {
            return Ok(());
        }
        // The deployment's payload names its conversation and app (so any
        // replica can route it); the store's record is the fallback.
        let in_payload = origin_in_payload(&deployment.payload);
        let app_in_payload = deployment
            .payload
            .pointer("/hoist/app")
            .and_then(|app| app.as_str())
            .map(str::to_owned);
        let record = match (&in_payload, &app_in_payload) {
            (Some(_), Some(_)) => None,
            _ => self.store.deployment(&key).await?,
        };
        let origin = match (in_payload, &record) {
            (Some(origin), _) => origin,
            (None, Some(record)) => record.origin.clone(),
            (None, None) => {
                tracing::debug!(%repo, id = %deployment.id, "status for a deployment hoist did not create");
                return Ok(());
            }
        };
        // Several apps may share a repository: the deployment names its own.
        let app = app_in_payload
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
            status: Some(status.state),
            log_url: status.log_url.clone(),
            first: false,
        };
        let reply = Reply {
            card: Some(card),
            ..Reply::text(origin, status_line(&app, deployment, status), false)
        };
        let dedupe = format!(
            "status:{}:{repo}:{}:{}:{}",
            key.forge,
            deployment.id,
            status.state,
            at.as_millisecond()
        );
        self.reply(&reply, Some(&dedupe)).await?;
        // Recorded only once its reply is queued: a crash between the two
        // relays the status again, and the dedupe key makes that one reply.
        // (Recorded first, a crash there would lose the reply.)
        if !self.store.record_status(&key, status, at).await? {
            return Ok(());
        }
        self.metrics.status_relayed();
        if status.state.is_final() {
            self.release_deployment_lock(&card_key(&key)).await?;
        }
        Ok(())
    }

    /// The deployment lock a deployment held (`deployment_lock`) goes when
    /// it ends, whatever the outcome; auto-deploys waiting for it go too.
    async fn release_deployment_lock(&self, deployment: &str) -> anyhow::Result<()> {
        let now = Timestamp::now();
        let held = self.store.locks(now).await?;
        let Some(lock) = held.into_iter().find(|lock| {
            lock.kind == LockKind::Deployment && lock.deployment.as_deref() == Some(deployment)
        }) else {
            return Ok(());
        };
        self.store.release_lock(&lock.scope, now).await?;
        self.waiting_wakeup.notify_one();
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
