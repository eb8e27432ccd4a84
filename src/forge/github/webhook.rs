//! GitHub webhooks: the `X-Hub-Signature-256` check and the events hoist
//! reads, turned into [`ForgeEvent`]s.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use super::wire::{WireDeployment, WireStatus};
use crate::domain::RepoName;
use crate::forge::ForgeEvent;

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
/// dropped.
pub fn is_handled(event: &str) -> bool {
    event == "deployment_status"
}

#[derive(Debug, Deserialize)]
struct StatusEvent {
    deployment_status: WireStatus,
    deployment: WireDeployment,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

/// A stored delivery as a forge event, or why it cannot be one.
pub fn parse_event(event: &str, body: &str) -> Result<ForgeEvent, String> {
    match event {
        "deployment_status" => {
            let parsed: StatusEvent = serde_json::from_str(body)
                .map_err(|e| format!("not a deployment_status event: {e}"))?;
            let repo: RepoName =
                parsed.repository.full_name.parse().map_err(|_| {
                    format!("bad repository name `{}`", parsed.repository.full_name)
                })?;
            let (status, at) = parsed
                .deployment_status
                .into_status()
                .map_err(|e| e.to_string())?;
            let deployment = parsed
                .deployment
                .into_deployment(Some(status.state))
                .map_err(|e| e.to_string())?;
            Ok(ForgeEvent::DeploymentStatus {
                repo,
                deployment,
                status,
                at,
            })
        }
        other => Err(format!("hoist does not handle `{other}` events")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
