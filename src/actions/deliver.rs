//! Sends an integration its webhook: signed with the action's secret at
//! the moment of sending, over the hyper and rustls hoist already has.
//! The outbox retries what fails.

use std::time::Duration;

use http::{Method, StatusCode, header};
use http_body_util::Full;
use secrecy::ExposeSecret;

use super::event::{Call, signature};
use crate::chat::DeliveryError;
use crate::http_client::HttpsClient;

/// An integration that takes longer than this to acknowledge a webhook
/// is tried again later; it should acknowledge first and work after.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Waited before a retry when an integration asks to slow down without
/// saying how long.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

/// The client that delivers integration webhooks.
pub struct Webhooks {
    client: HttpsClient,
}

impl Webhooks {
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            client: crate::http_client::https()?,
        })
    }

    /// Sends `call`. Any 2xx is delivered; a 429 waits as long as its
    /// `Retry-After` says; anything else is tried again later.
    pub async fn deliver(&self, call: &Call) -> Result<(), DeliveryError> {
        let failed = |detail: String| DeliveryError::Failed(detail);
        // Read now, never stored: an operator who rotates the secret
        // rotates it for webhooks already queued too.
        let secret = std::env::var(&call.secret_env).map_err(|_| {
            failed(format!(
                "hoist's environment has no {} for action `{}`",
                call.secret_env, call.action
            ))
        })?;
        let secret = secrecy::SecretString::from(secret);
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(&call.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "hoist")
            .header("x-hoist-event", call.event.as_str())
            .header("x-hoist-delivery", &call.delivery)
            .header(
                "x-hoist-signature-256",
                signature(secret.expose_secret().as_bytes(), call.body.as_bytes()),
            )
            .body(Full::new(bytes::Bytes::from(call.body.clone())))
            .map_err(|_| failed(format!("`{}` is not a URL hoist can call", call.url)))?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| failed("the integration did not answer in time".into()))?
            .map_err(|error| {
                tracing::debug!(%error, action = %call.action, "integration webhook failed");
                failed("the integration could not be reached".into())
            })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // The answer's body is not read: what matters is its status.
        drop(response);
        match status {
            status if status.is_success() => Ok(()),
            StatusCode::TOO_MANY_REQUESTS => Err(DeliveryError::RetryAfter(
                retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            )),
            status => Err(failed(format!(
                "the integration answered {} to `{}`",
                status.as_u16(),
                call.event.as_str()
            ))),
        }
    }
}
