//! GitHub's JSON, as much of it as hoist reads, and its translation into
//! the forge's types.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{DeploymentId, DeploymentState, Sha};
use crate::forge::{Check, CheckState, Deployment, ForgeError, NewStatus};

#[derive(Debug, Deserialize)]
pub(super) struct Repository {
    pub default_branch: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct Installation {
    pub id: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct Login {
    pub login: String,
}

/// A deployment as the Deployments API returns it.
#[derive(Debug, Deserialize)]
pub(super) struct WireDeployment {
    pub id: i64,
    pub sha: String,
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub task: String,
    pub environment: String,
    pub description: Option<String>,
    pub creator: Option<Login>,
    pub created_at: Timestamp,
    #[serde(default)]
    pub payload: Value,
    #[serde(default)]
    pub transient_environment: bool,
    #[serde(default)]
    pub production_environment: bool,
}

impl WireDeployment {
    /// The deployment with its latest status's state and time, when
    /// known.
    pub fn into_deployment(
        self,
        latest: Option<(DeploymentState, Option<Timestamp>)>,
    ) -> Result<Deployment, ForgeError> {
        let sha =
            Sha::new(&self.sha).ok_or_else(|| bad_answer("a deployment without a valid sha"))?;
        // A deployment created with a string payload comes back as one.
        let payload = match self.payload {
            Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            other => other,
        };
        let creator = payload
            .pointer("/hoist/origin/actor/login")
            .or_else(|| payload.pointer("/hoist/origin/actor/name"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or(self.creator.map(|c| c.login))
            .unwrap_or_default();
        Ok(Deployment {
            id: DeploymentId(self.id),
            git_ref: self.git_ref,
            sha,
            task: self.task,
            environment: self.environment,
            description: self.description,
            creator,
            created_at: self.created_at,
            payload,
            state: latest.map(|(state, _)| state),
            status_at: latest.and_then(|(_, at)| at),
            transient_environment: self.transient_environment,
            production_environment: self.production_environment,
        })
    }
}

/// A deployment status as the REST API and webhooks show it.
#[derive(Debug, Deserialize)]
pub(super) struct WireStatus {
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    /// The older name of `log_url`.
    #[serde(default)]
    pub target_url: Option<String>,
    #[serde(default)]
    pub environment_url: Option<String>,
    pub created_at: Option<Timestamp>,
}

impl WireStatus {
    /// The state and time of a status, as a deployment's latest; `None`
    /// for a state hoist does not know.
    pub fn latest(&self) -> Option<(DeploymentState, Option<Timestamp>)> {
        DeploymentState::parse(&self.state).map(|state| (state, self.created_at))
    }

    pub fn into_status(self) -> Result<(NewStatus, Timestamp), ForgeError> {
        let state = DeploymentState::parse(&self.state)
            .ok_or_else(|| bad_answer("a deployment status with an unknown state"))?;
        let at = self
            .created_at
            .ok_or_else(|| bad_answer("a deployment status without a time"))?;
        let status = NewStatus {
            state,
            description: self.description,
            log_url: self
                .log_url
                .or(self.target_url)
                .filter(|url| !url.is_empty()),
            environment_url: self.environment_url.filter(|url| !url.is_empty()),
        };
        Ok((status, at))
    }
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/status`
#[derive(Debug, Deserialize)]
pub(super) struct CombinedStatus {
    #[serde(default)]
    pub statuses: Vec<CommitStatus>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CommitStatus {
    pub context: String,
    pub state: String,
    #[serde(default)]
    pub target_url: Option<String>,
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`
#[derive(Debug, Deserialize)]
pub(super) struct CheckRuns {
    #[serde(default)]
    pub check_runs: Vec<CheckRun>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CheckRun {
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    /// The page of the run on GitHub.
    #[serde(default)]
    pub html_url: Option<String>,
    /// The integration's own page for it, when it gives one.
    #[serde(default)]
    pub details_url: Option<String>,
}

pub(super) fn status_state(state: &str) -> CheckState {
    match state {
        "success" => CheckState::Success,
        "failure" => CheckState::Failure,
        "error" => CheckState::Error,
        _ => CheckState::Pending,
    }
}

impl CheckRun {
    pub fn state(&self) -> CheckState {
        if self.status != "completed" {
            return CheckState::Pending;
        }
        match self.conclusion.as_deref() {
            Some("success" | "neutral" | "skipped") => CheckState::Success,
            Some("cancelled" | "stale") => CheckState::Error,
            _ => CheckState::Failure,
        }
    }
}

/// GitHub's error body: `message`, and `errors` that are objects (with
/// `message`, or a 409's `contexts`) or plain strings.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<Value>,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> Self {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The contexts a 409 names, each with its state.
    pub fn contexts(&self) -> Vec<Check> {
        self.errors
            .iter()
            .filter_map(|error| error.get("contexts")?.as_array())
            .flatten()
            .filter_map(|context| {
                Some(Check {
                    name: context.get("context")?.as_str()?.to_owned(),
                    state: status_state(context.get("state")?.as_str()?),
                    url: None,
                })
            })
            .collect()
    }

    /// `message` and every error's own message, in one line.
    pub fn summary(&self) -> String {
        let details: Vec<&str> = self
            .errors
            .iter()
            .filter_map(|error| error.as_str().or_else(|| error.get("message")?.as_str()))
            .collect();
        let message = if self.message.is_empty() {
            "no reason given"
        } else {
            self.message.as_str()
        };
        if details.is_empty() {
            message.to_owned()
        } else {
            format!("{message} ({})", details.join("; "))
        }
    }
}

pub(super) fn bad_answer(what: &str) -> ForgeError {
    ForgeError::Unavailable {
        detail: format!("GitHub sent {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_409_names_each_context_with_its_state() {
        let body = br#"{"message": "Conflict: Commit status checks failed for topic-branch.",
            "errors": [{"contexts": [{"context": "continuous-integration", "state": "success"},
                                     {"context": "security-scan", "state": "error"},
                                     {"context": "test-coverage", "state": "pending"}],
                        "resource": "Deployment", "field": "required_contexts", "code": "invalid"}]}"#;
        let parsed = ErrorBody::parse(body);
        let names: Vec<(String, CheckState)> = parsed
            .contexts()
            .into_iter()
            .map(|c| (c.name, c.state))
            .collect();
        assert_eq!(
            names,
            [
                ("continuous-integration".to_owned(), CheckState::Success),
                ("security-scan".to_owned(), CheckState::Error),
                ("test-coverage".to_owned(), CheckState::Pending),
            ]
        );
    }

    #[test]
    fn a_422_summary_carries_every_message() {
        let body = br#"{"message": "Validation Failed", "errors": [{"message": "environment is too long"}, "task is invalid"]}"#;
        assert_eq!(
            ErrorBody::parse(body).summary(),
            "Validation Failed (environment is too long; task is invalid)"
        );
        assert_eq!(ErrorBody::parse(b"<html>").summary(), "no reason given");
    }

    #[test]
    fn check_runs_map_to_states() {
        let run = |status: &str, conclusion: Option<&str>| CheckRun {
            name: "build".into(),
            status: status.into(),
            conclusion: conclusion.map(str::to_owned),
            html_url: None,
            details_url: None,
        };
        assert_eq!(run("in_progress", None).state(), CheckState::Pending);
        assert_eq!(
            run("completed", Some("success")).state(),
            CheckState::Success
        );
        assert_eq!(
            run("completed", Some("skipped")).state(),
            CheckState::Success
        );
        assert_eq!(
            run("completed", Some("timed_out")).state(),
            CheckState::Failure
        );
        assert_eq!(
            run("completed", Some("cancelled")).state(),
            CheckState::Error
        );
    }
}
