//! Chat adapters: each turns a platform's events into [`Inbound`] and
//! delivers [`Reply`] back. The core sees only these two types.

pub mod discord;
pub mod pr_comment;
pub mod shell;
pub mod slack;

use serde::{Deserialize, Serialize};

use crate::domain::{DeploymentState, Origin};

/// The replay window of signed requests: Slack's five minutes, and
/// Discord's by choice (it publishes none; interaction ids are unique, so
/// a replay inside the window is stored once).
const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

/// Whether a signed request's timestamp (unix seconds) is within the
/// replay window of `now`.
fn is_fresh(timestamp: &str, now: i64) -> bool {
    timestamp
        .trim()
        .parse::<i64>()
        .is_ok_and(|sent_at| (now - sent_at).abs() <= MAX_CLOCK_SKEW_SECS)
}

/// A command someone typed, already authenticated by its adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub origin: Origin,
    pub text: String,
    /// Unique per request (Slack trigger, webhook delivery, shell line):
    /// handling the same key twice never creates a second deployment.
    pub request_key: String,
    /// What the conversation implies, for the short form `.deploy to
    /// staging`.
    pub implied: Implied,
    /// Started by an event (a push, a pull request opened), not typed:
    /// there is nobody to answer privately, so every answer is public.
    pub automatic: bool,
    /// An automatic deployment that a lock, a freeze window or pending
    /// checks stop is kept to go later (an auto-deploy: nobody would ask
    /// again). Without it, it is refused: a deploy hook's caller is told
    /// at once.
    pub waits: bool,
    /// How the platform lets hoist answer this one request (a Discord
    /// interaction's token), carried to the answer's [`Reply`].
    pub answer_handle: Option<AnswerHandle>,
    /// Fields the caller adds to the deployment's payload (a deploy
    /// hook's `imageTag` and `payload`). `hoist` is hoist's own key and
    /// is never taken from here.
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// A platform's short-lived credential for answering one request (a
/// Discord interaction's token, for 15 minutes). It stays in hoist's
/// store with the reply and is never put in a deployment's payload,
/// which everyone who can read the repository sees.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AnswerHandle(pub String);

impl std::fmt::Debug for AnswerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerHandle([REDACTED])")
    }
}

impl Inbound {
    /// A command a person typed in a conversation that implies nothing.
    pub fn typed(origin: Origin, text: impl Into<String>, request_key: impl Into<String>) -> Self {
        Self {
            origin,
            text: text.into(),
            request_key: request_key.into(),
            implied: Implied::default(),
            automatic: false,
            waits: false,
            answer_handle: None,
            payload: serde_json::Map::new(),
        }
    }
}

/// What a pull request implies about a command typed on it: its
/// repository's app, its head as the ref, and its number (the `pr` of
/// deploy.yml's templates).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Implied {
    pub app: Option<String>,
    pub git_ref: Option<String>,
    pub pull_request: Option<u64>,
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
    /// A reaction to the message that held the command (`origin.message`),
    /// on platforms that have them; the others skip it.
    #[serde(default)]
    pub reaction: Option<Reaction>,
    /// The request's own way to be answered, for the answer to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_handle: Option<AnswerHandle>,
    /// The approval request this reply asks people to decide, for
    /// platforms that show Approve and Reject buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<i64>,
}

impl Reply {
    /// Plain text to a conversation, about no deployment.
    pub fn text(origin: Origin, text: impl Into<String>, only_asker: bool) -> Self {
        Self {
            origin,
            text: text.into(),
            only_asker,
            card: None,
            reaction: None,
            answer_handle: None,
            approval: None,
        }
    }
}

/// How hoist marks a command it read: heard, and how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reaction {
    /// Heard: hoist is on it.
    Eyes,
    /// The deployment succeeded.
    Rocket,
    /// It failed, or the command was refused.
    Confused,
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
    /// The latest status as the forge names it; `None` until one arrives.
    #[serde(default)]
    pub status: Option<DeploymentState>,
    pub log_url: Option<String>,
    /// The reply that announces the deployment (`true`) or a later state
    /// change (`false`).
    pub first: bool,
}

impl DeploymentCard {
    /// The reaction that marks the command when the deployment ends:
    /// 🚀 on success, 😕 on failure or error; none before.
    pub fn ending(&self) -> Option<Reaction> {
        match self.status? {
            DeploymentState::Success => Some(Reaction::Rocket),
            DeploymentState::Failure | DeploymentState::Error => Some(Reaction::Confused),
            _ => None,
        }
    }
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
