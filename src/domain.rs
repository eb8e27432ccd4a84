//! Identifiers and facts shared by every part of hoist.
//!
//! These are the words the core speaks: no platform (Slack, Discord, GitHub)
//! type appears here. Newtypes keep an app name from being passed where an
//! environment is expected, and normalise case where the outside world is
//! case-insensitive.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The chat name of an app (`api`, `demo`): hubot-deploy's apps.json key.
/// Always lower case; `[-_.0-9a-z]+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AppName(String);

impl AppName {
    /// Normalises to lower case. Returns `None` for an empty name or one with
    /// characters outside `[-_.0-9a-z]`.
    pub fn new(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        let valid = !lower.is_empty()
            && lower
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        valid.then_some(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AppName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A repository on the forge, `owner/name`. GitHub compares these without
/// regard to case, so equality does too.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName {
    owner: String,
    name: String,
}

impl RepoName {
    pub fn new(owner: &str, name: &str) -> Option<Self> {
        let ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        (ok(owner) && ok(name)).then(|| Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::str::FromStr for RepoName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split_once('/')
            .and_then(|(owner, name)| Self::new(owner, name))
            .ok_or_else(|| format!("`{s}` is not a repository name of the form owner/name"))
    }
}

impl TryFrom<String> for RepoName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RepoName> for String {
    fn from(r: RepoName) -> String {
        r.to_string()
    }
}

impl PartialEq for RepoName {
    fn eq(&self, other: &Self) -> bool {
        self.owner.eq_ignore_ascii_case(&other.owner) && self.name.eq_ignore_ascii_case(&other.name)
    }
}

impl Eq for RepoName {}

impl std::hash::Hash for RepoName {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.owner.to_ascii_lowercase().hash(state);
        self.name.to_ascii_lowercase().hash(state);
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// A full 40-hex-digit commit id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sha(String);

impl Sha {
    /// Accepts 40 hex digits (any case), stores lower case.
    pub fn new(s: &str) -> Option<Self> {
        (s.len() == 40 && s.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first seven digits, as git and GitHub show them.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl fmt::Display for Sha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A deployment's id on its forge (GitHub's numeric id, or the local forge's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeploymentId(pub i64);

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The states of a GitHub deployment status, which the local forge shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentState {
    Pending,
    Queued,
    InProgress,
    Success,
    Failure,
    Error,
    Inactive,
}

impl DeploymentState {
    pub const ALL: [DeploymentState; 7] = [
        Self::Pending,
        Self::Queued,
        Self::InProgress,
        Self::Success,
        Self::Failure,
        Self::Error,
        Self::Inactive,
    ];

    /// The name GitHub uses on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Error => "error",
            Self::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// No further status is expected after this one.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failure | Self::Error | Self::Inactive
        )
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a command came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Shell,
    Slack,
    Discord,
    PullRequest,
    Hook,
    /// A push to the forge that auto-deployed, for an app that names no
    /// channel to announce in: a conversation nobody reads, so replies
    /// to it are not sent.
    Push,
    /// An integration's webhook endpoint (deploy.yml's `actions`): the
    /// outbox delivers its webhooks as it delivers replies.
    Integration,
    /// The web dashboard: its answers are the page itself. The
    /// conversation is the app acted on: what concerns everyone is said
    /// in that app's channel, the rest is not sent.
    Dashboard,
}

impl Platform {
    /// The platform as a sentence names it ("on Slack", "on the shell").
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Shell => "the shell",
            Self::Slack => "Slack",
            Self::Discord => "Discord",
            Self::PullRequest => "GitHub",
            Self::Hook => "a deploy hook",
            Self::Push => "a push",
            Self::Integration => "an integration",
            Self::Dashboard => "the dashboard",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shell => "shell",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::PullRequest => "pull_request",
            Self::Hook => "hook",
            Self::Push => "push",
            Self::Integration => "integration",
            Self::Dashboard => "dashboard",
        }
    }
}

/// The person who typed a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The platform's user id (Slack `U…`, Discord snowflake, GitHub login).
    pub id: String,
    /// A name to show people.
    pub name: String,
    /// The GitHub login this person maps to, where known (`[users]`).
    pub login: Option<String>,
}

/// The conversation a command came from, so that replies about the
/// deployment it created find their way back. It travels in the
/// deployment's payload (`payload.hoist.origin`) so any replica can route
/// statuses without shared memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub platform: Platform,
    /// Channel id, PR number, shell session: where replies go.
    pub conversation: String,
    /// The message that held the command, where the platform has one.
    pub message: Option<String>,
    /// A web address of that message (or its channel), where the adapter
    /// knows one that the conversation and message alone do not give: a
    /// Discord link needs the server, which replies do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    pub actor: Actor,
}

/// A person's permission on a repository, lowest first. GitHub folds its
/// finer roles in (`maintain` is write, `triage` is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    Write,
    Admin,
}

impl Permission {
    /// GitHub's word for it (`maintain`, `triage` folded in).
    pub fn parse(text: &str) -> Self {
        match text {
            "admin" => Self::Admin,
            "write" | "maintain" => Self::Write,
            "read" | "triage" => Self::Read,
            _ => Self::None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}
