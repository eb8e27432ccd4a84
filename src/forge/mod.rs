//! The forge: where repositories, commits and deployments live.
//!
//! Two implementations sit behind [`Forge`]: GitHub (REST API through
//! octocrab) and the local forge (a git repository on disk, with deployments
//! kept in hoist's store). The core never knows which one it talks to.
//!
//! **Architecture invariant:** deploy rules are read from the repository's
//! default branch only ([`Forge::deploy_config`] takes no ref), so a branch
//! being deployed cannot rewrite its own rules.

pub mod github;
pub mod local;

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{DeploymentId, DeploymentState, RepoName, Sha};

/// Where `.github/deploy.yml` lives in a repository.
pub const DEPLOY_CONFIG_PATH: &str = ".github/deploy.yml";

#[async_trait]
pub trait Forge: Send + Sync + 'static {
    /// `github` or `local`: stored beside deployment ids, shown in logs.
    fn kind(&self) -> &'static str;

    /// The repository's `.github/deploy.yml` on its default branch, or
    /// `None` when the file does not exist.
    async fn deploy_config(&self, repo: &RepoName) -> Result<Option<ConfigFile>, ForgeError>;

    /// The repository's default branch (`main`).
    async fn default_branch(&self, repo: &RepoName) -> Result<String, ForgeError>;

    /// The commit a branch, tag or sha names.
    async fn resolve_ref(&self, repo: &RepoName, git_ref: &str) -> Result<Sha, ForgeError>;

    /// The commit's status contexts and check runs, one entry per name.
    async fn commit_checks(&self, repo: &RepoName, sha: &Sha) -> Result<Vec<Check>, ForgeError>;

    /// How many commits of branch `base` (a short name, `main`) `head`
    /// lacks: 0 when it is up to date with it or ahead.
    async fn behind_by(&self, repo: &RepoName, base: &str, head: &Sha) -> Result<u64, ForgeError>;

    /// Creates a deployment. Idempotent per `request.request_key`: calling
    /// it again with the same key returns the deployment made the first
    /// time instead of making a second one. A forge may skip looking for
    /// an earlier deployment when `request.retried` is false (the caller's
    /// store says no attempt was made before), saving a round trip.
    async fn create_deployment(
        &self,
        repo: &RepoName,
        request: &NewDeployment,
    ) -> Result<Deployment, ForgeError>;

    /// Recent deployments, newest first, each with its latest state.
    async fn list_deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, ForgeError>;

    /// Every status of a deployment, oldest first, with when it was
    /// posted (the catch-up worker's way to see what a webhook missed).
    async fn deployment_statuses(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> Result<Vec<(NewStatus, Timestamp)>, ForgeError>;

    /// Adds a status to a deployment.
    async fn create_status(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        status: &NewStatus,
    ) -> Result<(), ForgeError>;
}

/// A file read from a repository.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// How to name the file in messages: `acme/api:.github/deploy.yml@main`.
    pub label: String,
    pub text: String,
}

/// One status context or check run on a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub state: CheckState,
    /// Where to read about it (a status's `target_url`, a check run's
    /// page), when the forge gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    Success,
    Pending,
    Failure,
    Error,
}

impl CheckState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Failure => "failure",
            Self::Error => "error",
        }
    }
}

/// What to deploy: every field of GitHub's "create a deployment" request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDeployment {
    /// Branch, tag or sha, as the person named it.
    pub git_ref: String,
    pub task: String,
    pub environment: String,
    pub description: Option<String>,
    pub auto_merge: bool,
    /// `None` lets the forge check every context (GitHub's default);
    /// `Some(vec![])` checks none (a forced deploy).
    pub required_contexts: Option<Vec<String>>,
    /// Carries `target`, `hosts`, `params` and `hoist.origin`.
    pub payload: serde_json::Value,
    pub transient_environment: bool,
    pub production_environment: bool,
    /// Unique per chat request or webhook delivery: the idempotency key.
    pub request_key: String,
    /// An earlier attempt for this `request_key` may have created a
    /// deployment (it was claimed and never recorded: a crash mid-way).
    #[serde(default)]
    pub retried: bool,
    /// Who asked, as a display name (the GitHub creator is the token's).
    pub requested_by: String,
}

/// A deployment as the forge knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub git_ref: String,
    pub sha: Sha,
    pub task: String,
    pub environment: String,
    pub description: Option<String>,
    /// Who asked for it: `payload.hoist.origin.actor.name` when hoist
    /// made it, else the forge's creator login.
    pub creator: String,
    pub created_at: Timestamp,
    pub payload: serde_json::Value,
    /// The latest status, if any was posted.
    pub state: Option<DeploymentState>,
    /// When the latest status was posted (`None` with no status, or when
    /// the forge did not say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_at: Option<Timestamp>,
    pub transient_environment: bool,
    pub production_environment: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFilter {
    pub environment: Option<String>,
    pub sha: Option<Sha>,
    pub task: Option<String>,
    /// At most this many (newest first); 0 means GitHub's default page.
    pub limit: usize,
}

impl DeploymentFilter {
    /// GitHub's default page size, for `limit: 0`.
    pub const DEFAULT_LIMIT: usize = 30;

    /// The number of deployments to return.
    pub fn effective_limit(&self) -> usize {
        match self.limit {
            0 => Self::DEFAULT_LIMIT,
            n => n,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewStatus {
    pub state: DeploymentState,
    pub description: Option<String>,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
}

/// Where the runner fetches a repository's commits from, and the token
/// git presents there (sent as an HTTP header, never in the URL, so no
/// log or `ps` shows it).
pub struct GitRemote {
    pub url: String,
    pub token: secrecy::SecretString,
}

/// A forge whose repositories the runner fetches over git (GitHub's);
/// the local forge's are on disk and need none.
#[async_trait]
pub trait GitAccess: Send + Sync + 'static {
    async fn git_remote(&self, repo: &RepoName) -> Result<GitRemote, ForgeError>;
}

/// Something that happened on the forge that hoist reacts to: delivered
/// in-process by the local forge, by webhook from GitHub.
#[derive(Debug, Clone, PartialEq)]
pub enum ForgeEvent {
    /// A deployment was created: a runner may pick it up.
    Deployment {
        repo: RepoName,
        deployment: Deployment,
    },
    /// A deployment's status changed: relay it to the conversation.
    DeploymentStatus {
        repo: RepoName,
        deployment: Deployment,
        status: NewStatus,
        at: Timestamp,
    },
    /// Commits were pushed: targets with a matching `auto_deploy_on`
    /// deploy them.
    Push(Push),
    /// A pull request was opened, pushed to or closed: review
    /// environments are deployed or removed.
    PullRequest(PullRequestChange),
    /// A commit's checks changed (a status, a check suite completed):
    /// auto-deploys waiting for them look again.
    ChecksChanged { repo: RepoName, sha: Sha },
}

/// A push to a branch or tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    pub repo: RepoName,
    /// In full: `refs/heads/main`, `refs/tags/v1.2`.
    pub git_ref: String,
    /// The commit the ref points at now; `None` when the ref was deleted.
    pub sha: Option<Sha>,
    /// Who pushed (a GitHub login).
    pub pusher: String,
}

/// A change to a pull request that hoist acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequestChange {
    pub repo: RepoName,
    pub number: u64,
    pub action: PullRequestAction,
    /// The head branch's name (in the fork, for a fork).
    pub head_ref: String,
    pub head_sha: Sha,
    /// The head lives in another repository (or one since deleted).
    pub from_fork: bool,
    /// Who did it (a GitHub login).
    pub sender: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullRequestAction {
    /// Opened or reopened.
    Opened,
    /// New commits on the head branch (`synchronize`).
    Pushed,
    /// Closed, merged or not.
    Closed,
    /// Anything else (labelled, edited, ...): nothing to do.
    Other,
}

/// Why the forge said no, worded for the person who typed the command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForgeError {
    #[error("{what} not found, or hoist has no access to it")]
    NotFound { what: String },
    #[error("required checks are not passing: {}", describe_checks(.checks))]
    ChecksFailed { checks: Vec<Check> },
    #[error(
        "GitHub merged the default branch into `{git_ref}` first, so nothing was deployed yet; deploy again to ship the merged commit"
    )]
    AutoMerged { git_ref: String },
    #[error("the default branch cannot be merged into `{git_ref}` automatically: {message}")]
    MergeConflict { git_ref: String, message: String },
    #[error("the forge rejected the request: {message}")]
    Rejected { message: String },
    #[error("the forge's rate limit is used up; try again in {} s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("hoist's credentials for the forge were refused: {message}")]
    Unauthorized { message: String },
    #[error("the forge is unavailable ({detail}); nothing was changed, try again shortly")]
    Unavailable { detail: String },
}

fn describe_checks(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| match &c.url {
            Some(url) => format!("{} is {} ({url})", c.name, c.state.as_str()),
            None => format!("{} is {}", c.name, c.state.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The sending half of the in-process event queue (the local forge's
/// "webhooks"). It counts events from the moment they are sent until the
/// receiver has handed them on, so [`crate::app::Hoist::settle`] can tell
/// when everything sent has been dealt with.
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: tokio::sync::mpsc::UnboundedSender<ForgeEvent>,
    in_queue: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// [`EventSink::send`] found no receiver: hoist is shutting down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the forge event receiver is gone")]
pub struct ReceiverGone;

/// The receiving half of [`EventSink`].
#[derive(Debug)]
pub struct EventSource {
    rx: tokio::sync::mpsc::UnboundedReceiver<ForgeEvent>,
    in_queue: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// A new in-process event queue.
pub fn event_queue() -> (EventSink, EventSource) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let in_queue = std::sync::Arc::default();
    (
        EventSink {
            tx,
            in_queue: std::sync::Arc::clone(&in_queue),
        },
        EventSource { rx, in_queue },
    )
}

impl EventSink {
    /// Fails only when the receiver is gone (hoist is shutting down); the
    /// event is dropped then.
    pub fn send(&self, event: ForgeEvent) -> Result<(), ReceiverGone> {
        use std::sync::atomic::Ordering;
        self.in_queue.fetch_add(1, Ordering::SeqCst);
        self.tx.send(event).map_err(|_| {
            self.in_queue.fetch_sub(1, Ordering::SeqCst);
            ReceiverGone
        })
    }

    /// Events sent and not yet [handed on](EventSource::handed_on).
    pub fn in_queue(&self) -> usize {
        self.in_queue.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl EventSource {
    pub async fn recv(&mut self) -> Option<ForgeEvent> {
        self.rx.recv().await
    }

    /// Takes an event if one is waiting (tests use this to inspect what a
    /// forge sent).
    pub fn try_recv(&mut self) -> Result<ForgeEvent, tokio::sync::mpsc::error::TryRecvError> {
        self.rx.try_recv()
    }

    /// Call once per received event, after its handling is tracked.
    pub fn handed_on(&self) {
        self.in_queue
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}
