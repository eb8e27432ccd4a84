//! Environment locks: what they are, whom they stop, how they read.
//!
//! The semantics, chosen where the anchors' users were hurt (branch-deploy
//! #155, #424, #438; SlashDeploy #19, #73, #92):
//!
//! - A lock is a person's, not a pull request's or a branch's: its holder
//!   may still deploy there, everyone else is refused and told who holds
//!   it, why and since when.
//! - **Sticky** locks (`lock production`) last until someone unlocks
//!   them or their duration (`for 2h`) runs out. **Deployment** locks are
//!   taken by hoist for one deployment and released when it ends,
//!   whatever the outcome.
//! - Deployments nobody typed (auto-deploys) are stopped by every lock,
//!   their holder's too, and wait for it to go.
//! - `--global` locks every app and environment.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{Actor, Origin};

/// What a lock covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case")]
pub enum LockScope {
    /// Every app and environment.
    Global,
    /// One environment of one app (hoist.toml's name).
    Environment { app: String, environment: String },
}

impl LockScope {
    /// The key two locks of the same scope share (one holds at a time).
    pub fn key(&self) -> String {
        match self {
            Self::Global => "*".to_owned(),
            Self::Environment { app, environment } => format!("{app}/{environment}"),
        }
    }

    /// Whether this lock stops deployments of `app` to `environment`.
    pub fn covers(&self, app: &str, environment: &str) -> bool {
        match self {
            Self::Global => true,
            Self::Environment {
                app: locked_app,
                environment: locked,
            } => locked_app == app && locked == environment,
        }
    }
}

impl fmt::Display for LockScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Global => f.write_str("every environment"),
            Self::Environment { app, environment } => write!(f, "{environment} of {app}"),
        }
    }
}

/// How long a lock lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Until unlocked, or until `until`.
    Sticky,
    /// For one deployment: released when it ends.
    Deployment,
}

/// A lock as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    pub scope: LockScope,
    pub kind: LockKind,
    pub holder: Actor,
    pub reason: Option<String>,
    /// Where it was taken (a channel, a pull request), for `locks`.
    pub origin: Origin,
    pub since: Timestamp,
    /// When it ends by itself.
    pub until: Option<Timestamp>,
    /// A deployment lock's deployment (its card key,
    /// `forge/owner/repo/id`), once created.
    #[serde(default)]
    pub deployment: Option<String>,
}

impl Lock {
    /// Whether it still holds at `now`.
    pub fn holds_at(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| now < until)
    }

    /// Whether `actor` is its holder: the same GitHub login when both have
    /// one (the same person on Slack, Discord or a pull request), else the
    /// same chat user id.
    pub fn is_held_by(&self, actor: &Actor) -> bool {
        match (&self.holder.login, &actor.login) {
            (Some(holder), Some(login)) => holder.eq_ignore_ascii_case(login),
            _ => self.holder.id == actor.id,
        }
    }

    /// "locked by ada since 10:02 UTC (2 h ago), until 12:02 UTC: migrating the db"
    pub fn describe(&self, now: Timestamp) -> String {
        let mut text = format!(
            "locked by {} since {} ({})",
            self.holder.name,
            utc_clock(self.since),
            ago(now, self.since)
        );
        if let Some(until) = self.until {
            text.push_str(&format!(", until {}", utc_clock(until)));
        }
        if let Some(reason) = &self.reason {
            text.push_str(&format!(": {reason}"));
        }
        text
    }
}

/// `2026-12-02 10:02 UTC`: locks are read across time zones.
pub fn utc_clock(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// `just now`, `5 min ago`, `3 h ago`, `2 days ago`.
pub fn ago(now: Timestamp, then: Timestamp) -> String {
    let secs = now.duration_since(then).as_secs().max(0);
    match secs {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::ago;
    use jiff::Timestamp;

    #[test]
    fn ages_read_naturally() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let at = |s: i64| Timestamp::from_second(1_000_000 - s).unwrap();
        assert_eq!(ago(now, at(5)), "just now");
        assert_eq!(ago(now, at(300)), "5 min ago");
        assert_eq!(ago(now, at(7200)), "2 h ago");
        assert_eq!(ago(now, at(3 * 86_400)), "3 days ago");
        assert_eq!(ago(now, at(-50)), "just now");
    }
}
