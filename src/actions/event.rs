//! The webhooks hoist sends an integration, in Vercel's shape: `start`
//! when a deployment is held for the action, `cancel` when the held
//! deployment is cancelled (or ended by another action's failure or a
//! timeout), `cleanup` when its transient environment is removed.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;

use crate::policy::Action;

/// Which webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Start,
    Cancel,
    Cleanup,
}

impl Event {
    /// The webhook's `type`, as Vercel names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "deployment.integration.action.start",
            Self::Cancel => "deployment.integration.action.cancel",
            Self::Cleanup => "deployment.integration.action.cleanup",
        }
    }
}

/// The held deployment a webhook is about.
pub struct About<'a> {
    pub hold: i64,
    pub app: &'a str,
    pub repo: &'a crate::domain::RepoName,
    pub environment: &'a str,
    pub git_ref: &'a str,
    pub sha: &'a str,
    /// hoist's `server.public_url`, for the URL the integration reports to.
    pub public_url: &'a str,
}

/// One webhook to send, as the outbox keeps it: the body is fixed when
/// it is queued (a retry sends the same bytes, the same delivery id), the
/// secret is read from hoist's environment when it is signed, so it is
/// never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub event: Event,
    pub action: String,
    pub url: String,
    /// The environment variable that holds the action's secret.
    pub secret_env: String,
    pub delivery: String,
    pub body: String,
}

impl Call {
    pub fn new(event: Event, action: &Action, about: &About<'_>) -> Self {
        let delivery = uuid::Uuid::new_v4().to_string();
        let report_url = report_url(about.public_url, about.hold, &action.name);
        let body = json!({
            "type": event.as_str(),
            "id": delivery,
            "createdAt": jiff::Timestamp::now().as_millisecond(),
            "payload": {
                "installationId": format!("hoist:{}", about.repo),
                "action": action.name,
                "resourceId": action.resource_id(about.app, about.environment),
                "deployment": {
                    "id": about.hold.to_string(),
                    "app": about.app,
                    "environment": about.environment,
                    "ref": about.git_ref,
                    "sha": about.sha,
                    "url": report_url,
                },
            },
        });
        Self {
            event,
            action: action.name.clone(),
            url: action.url.clone(),
            secret_env: action.secret_env.clone(),
            delivery,
            body: body.to_string(),
        }
    }

    /// The outbox conversation: one per held deployment and action, so
    /// an action hears `start` before `cancel`, and `cancel` before
    /// `cleanup`.
    pub fn conversation(hold: i64, action: &str) -> String {
        format!("hold:{hold}:{action}")
    }
}

/// Where an integration reports on an action of a held deployment.
pub fn report_url(public_url: &str, hold: i64, action: &str) -> String {
    format!(
        "{}/v1/deployments/{hold}/actions/{action}",
        public_url.trim_end_matches('/')
    )
}

/// `sha256=` and the HMAC-SHA256 of `body` under `secret`, in lower-case
/// hex: GitHub's `X-Hub-Signature-256` scheme, which integrations know.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_githubs_scheme() {
        // GitHub's published test vector for X-Hub-Signature-256.
        assert_eq!(
            signature(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn a_start_call_says_what_vercel_integrations_read() {
        let action = Action {
            name: "branch-db".into(),
            url: "https://db.example.com/hoist".into(),
            secret_env: "DB_ACTION_SECRET".into(),
            timeout_secs: 600,
            resource: None,
        };
        let about = About {
            hold: 12,
            app: "api",
            repo: &"acme/api".parse().unwrap(),
            environment: "staging",
            git_ref: "main",
            sha: "1111111111111111111111111111111111111111",
            public_url: "https://hoist.example.com/",
        };
        let call = Call::new(Event::Start, &action, &about);
        let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
        assert_eq!(body["type"], "deployment.integration.action.start");
        assert_eq!(body["id"], call.delivery.as_str());
        assert_eq!(body["payload"]["installationId"], "hoist:acme/api");
        assert_eq!(body["payload"]["action"], "branch-db");
        assert_eq!(body["payload"]["resourceId"], "api-staging");
        assert_eq!(body["payload"]["deployment"]["id"], "12");
        assert_eq!(
            body["payload"]["deployment"]["url"],
            "https://hoist.example.com/v1/deployments/12/actions/branch-db"
        );
        assert!(!call.body.contains("DB_ACTION_SECRET"));
    }
}
