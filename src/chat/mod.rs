//! Chat adapters: each turns a platform's events into [`Inbound`] and
//! delivers [`Reply`] back. The core sees only these two types.

pub mod shell;
pub mod slack;

use serde::{Deserialize, Serialize};

use crate::domain::Origin;

/// A command someone typed, already authenticated by its adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub origin: Origin,
    pub text: String,
    /// Unique per request (Slack trigger, webhook delivery, shell line):
    /// handling the same key twice never creates a second deployment.
    pub request_key: String,
    /// The app a conversation implies (a pull request's repository), for
    /// the short form `.deploy to staging`.
    pub implied_app: Option<String>,
}

/// Something to say in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub origin: Origin,
    pub text: String,
    /// For the person who asked alone (a Slack ephemeral message): a
    /// mistake or a refusal is nobody else's business. Platforms without
    /// such messages show it in the conversation.
    #[serde(default)]
    pub only_asker: bool,
    /// The deployment this reply is about, for platforms that show one
    /// message per deployment and update it as statuses arrive.
    #[serde(default)]
    pub card: Option<DeploymentCard>,
}

/// The facts of one deployment as a chat message shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentCard {
    /// Stable per deployment: `forge/owner/repo/id`.
    pub key: String,
    pub app: String,
    pub git_ref: String,
    pub short_sha: String,
    pub environment: String,
    pub who: String,
    /// `created`, then the latest status (`in progress`, `succeeded`, ...).
    pub state: String,
    pub log_url: Option<String>,
    /// The reply that announces the deployment (`true`) or a later state
    /// change (`false`).
    pub first: bool,
}

/// Why a reply could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The platform asked us to slow down (HTTP 429 `Retry-After`).
    #[error("rate limited for {} s", .0.as_secs())]
    RetryAfter(std::time::Duration),
    /// Worth another try later (network, 5xx).
    #[error("{0}")]
    Failed(String),
}

/// The sending side of a chat platform: the outbox hands it replies.
#[async_trait::async_trait]
pub trait ChatAdapter: Send + Sync + 'static {
    fn platform(&self) -> crate::domain::Platform;

    /// Sends `reply`. `card_message` is the platform's id of the message
    /// that announced the deployment the reply is about, if it was sent.
    /// Returns the id of a message that announces a deployment, so later
    /// replies about it can find it.
    async fn deliver(
        &self,
        reply: &Reply,
        card_message: Option<&str>,
    ) -> Result<Option<String>, DeliveryError>;
}
