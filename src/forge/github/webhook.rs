//! GitHub webhooks: the `X-Hub-Signature-256` check and the events hoist
//! reads, turned into [`ForgeEvent`]s.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use super::wire::{WireDeployment, WireStatus};
use crate::domain::{RepoName, Sha};
use crate::forge::{ForgeEvent, PullRequestAction, PullRequestChange, Push};

/// Why a delivery's signature was refused (all answered 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("the X-Hub-Signature-256 header is not `sha256=` and hex")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks `X-Hub-Signature-256: sha256=<hex>` over the raw body, in
/// constant time (hmac's `verify_slice`).
pub fn verify_signature(
    secret: &SecretString,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// The events hoist stores and handles; others are acknowledged and
/// dropped. (`commands/github-app.json` subscribes to these.)
pub const HANDLED_EVENTS: [&str; 7] = [
    "check_suite",
    "deployment",
    "deployment_status",
    "issue_comment",
    "pull_request",
    "push",
    "status",
];

pub fn is_handled(event: &str) -> bool {
    HANDLED_EVENTS.contains(&event)
}

/// The repository and GitHub App installation a delivery names, if it
/// came to an app (`installation.id`).
pub fn installation(body: &str) -> Option<(RepoName, u64)> {
    #[derive(Deserialize)]
    struct Delivery {
        installation: Option<Id>,
        repository: Option<Repository>,
    }
    #[derive(Deserialize)]
    struct Id {
        id: u64,
    }
    let delivery: Delivery = serde_json::from_str(body).ok()?;
    let repo = delivery.repository?.full_name.parse().ok()?;
    Some((repo, delivery.installation?.id))
}

#[derive(Debug, Deserialize)]
struct StatusEvent {
    deployment_status: WireStatus,
    deployment: WireDeployment,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct DeploymentEvent {
    deployment: WireDeployment,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

impl Repository {
    fn name(&self) -> Result<RepoName, String> {
        self.full_name
            .parse()
            .map_err(|_| format!("bad repository name `{}`", self.full_name))
    }
}

#[derive(Debug, Deserialize)]
struct Sender {
    login: String,
}

/// `status` (with `sha`) or `check_suite` (with `check_suite.head_sha`).
#[derive(Debug, Deserialize)]
struct ChecksEvent {
    sha: Option<String>,
    check_suite: Option<CheckSuite>,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct CheckSuite {
    head_sha: String,
}

#[derive(Debug, Deserialize)]
struct PushEvent {
    #[serde(rename = "ref")]
    git_ref: String,
    after: String,
    #[serde(default)]
    deleted: bool,
    repository: Repository,
    sender: Sender,
}

#[derive(Debug, Deserialize)]
struct PullRequestEvent {
    action: String,
    number: u64,
    pull_request: WirePullRequest,
    repository: Repository,
    sender: Sender,
}

#[derive(Debug, Deserialize)]
struct WirePullRequest {
    head: Head,
}

#[derive(Debug, Deserialize)]
struct Head {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    /// `null` when the fork was deleted.
    repo: Option<Repository>,
}

/// A stored delivery as a forge event, or why it cannot be one.
pub fn parse_event(event: &str, body: &str) -> Result<ForgeEvent, String> {
    match event {
        "deployment_status" => {
            let parsed: StatusEvent = serde_json::from_str(body)
                .map_err(|e| format!("not a deployment_status event: {e}"))?;
            let repo = parsed.repository.name()?;
            let (status, at) = parsed
                .deployment_status
                .into_status()
                .map_err(|e| e.to_string())?;
            let deployment = parsed
                .deployment
                .into_deployment(Some((status.state, Some(at))))
                .map_err(|e| e.to_string())?;
            Ok(ForgeEvent::DeploymentStatus {
                repo,
                deployment,
                status,
                at,
            })
        }
        "deployment" => {
            let parsed: DeploymentEvent =
                serde_json::from_str(body).map_err(|e| format!("not a deployment event: {e}"))?;
            Ok(ForgeEvent::Deployment {
                repo: parsed.repository.name()?,
                deployment: parsed
                    .deployment
                    .into_deployment(None)
                    .map_err(|e| e.to_string())?,
            })
        }
        "push" => {
            let parsed: PushEvent =
                serde_json::from_str(body).map_err(|e| format!("not a push event: {e}"))?;
            let sha = match parsed.deleted {
                true => None,
                false => Some(
                    Sha::new(&parsed.after)
                        .ok_or_else(|| format!("bad commit sha `{}`", parsed.after))?,
                ),
            };
            Ok(ForgeEvent::Push(Push {
                repo: parsed.repository.name()?,
                git_ref: parsed.git_ref,
                sha,
                pusher: parsed.sender.login,
            }))
        }
        "pull_request" => {
            let parsed: PullRequestEvent =
                serde_json::from_str(body).map_err(|e| format!("not a pull_request event: {e}"))?;
            let repo = parsed.repository.name()?;
            let head = parsed.pull_request.head;
            let head_repo = head.repo.as_ref().and_then(|r| r.name().ok());
            Ok(ForgeEvent::PullRequest(PullRequestChange {
                number: parsed.number,
                action: match parsed.action.as_str() {
                    "opened" | "reopened" => PullRequestAction::Opened,
                    "synchronize" => PullRequestAction::Pushed,
                    "closed" => PullRequestAction::Closed,
                    _ => PullRequestAction::Other,
                },
                head_sha: Sha::new(&head.sha)
                    .ok_or_else(|| format!("bad head sha `{}`", head.sha))?,
                head_ref: head.git_ref,
                from_fork: head_repo.as_ref() != Some(&repo),
                repo,
                sender: parsed.sender.login,
            }))
        }
        "status" | "check_suite" => {
            let parsed: ChecksEvent =
                serde_json::from_str(body).map_err(|e| format!("not a {event} event: {e}"))?;
            let sha = parsed
                .sha
                .or(parsed.check_suite.map(|suite| suite.head_sha))
                .ok_or_else(|| format!("a {event} event without a commit"))?;
            Ok(ForgeEvent::ChecksChanged {
                repo: parsed.repository.name()?,
                sha: Sha::new(&sha).ok_or_else(|| format!("bad commit sha `{sha}`"))?,
            })
        }
        other => Err(format!("hoist does not handle `{other}` events")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GitHub App manifest subscribes to exactly what hoist handles,
    /// and asks for what the handlers call.
    #[test]
    fn the_app_manifest_matches_the_events_and_calls() {
        let manifest: serde_json::Value =
            serde_json::from_str(include_str!("../../../commands/github-app.json")).unwrap();
        let mut events: Vec<&str> = manifest["default_events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|event| event.as_str())
            .collect();
        events.sort_unstable();
        let mut handled = HANDLED_EVENTS.to_vec();
        handled.sort_unstable();
        assert_eq!(events, handled);
        let permissions = &manifest["default_permissions"];
        for (scope, level) in [
            ("deployments", "write"),
            ("issues", "write"),
            ("pull_requests", "write"),
            ("contents", "read"),
            ("metadata", "read"),
            ("statuses", "read"),
            ("checks", "read"),
            // Organization: team membership (`GitHubForge::team_member`).
            ("members", "read"),
        ] {
            assert_eq!(permissions[scope], level, "{scope}");
        }
    }

    /// GitHub's documented example ("Validating webhook deliveries"):
    /// secret "It's a Secret to Everybody", body "Hello, World!".
    #[test]
    fn githubs_published_test_vector_verifies() {
        let secret = SecretString::from("It's a Secret to Everybody");
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            verify_signature(&secret, b"Hello, World!", Some(signature)),
            Ok(())
        );
        assert_eq!(
            verify_signature(&secret, b"Hello, World?", Some(signature)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&secret, b"x", None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(&secret, b"x", Some("sha1=abc")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(&secret, b"x", Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
    }
}
