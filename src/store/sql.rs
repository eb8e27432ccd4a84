//! What both back ends share: how values are stored (times as unix
//! milliseconds, enums as their serde names, repositories in lower case)
//! and read back, with an error naming what was corrupt.

use anyhow::Context;
use jiff::Timestamp;
use serde::de::DeserializeOwned;

use crate::domain::RepoName;

/// The stored form of a repository name: GitHub compares them without case.
pub(super) fn repo_key(repo: &RepoName) -> String {
    repo.to_string().to_ascii_lowercase()
}

pub(super) fn parse_repo(text: &str) -> anyhow::Result<RepoName> {
    text.parse()
        .map_err(|e: String| anyhow::anyhow!(e))
        .context("corrupt repository name in the store")
}

/// A `usize` limit as SQL wants it; anything past `i64::MAX` is "all".
pub(super) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

pub(super) fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

pub(super) fn from_millis(ms: i64) -> anyhow::Result<Timestamp> {
    Timestamp::from_millisecond(ms).with_context(|| format!("corrupt time {ms} in the store"))
}

/// Reads back an enum stored as its serde (snake_case) name.
pub(super) fn parse_name<T: DeserializeOwned>(name: &str, what: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .with_context(|| format!("corrupt {what} `{name}` in the store"))
}

/// The serde (snake_case) name of an enum, as stored.
pub(super) fn name_of<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    match serde_json::to_value(value).context("cannot name a value for the store")? {
        serde_json::Value::String(s) => Ok(s),
        other => anyhow::bail!("expected a name, got {other}"),
    }
}
