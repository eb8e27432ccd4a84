//! Integration actions: a target's `actions` in deploy.yml hold a
//! deployment until external integrations report their pre-deploy work
//! done (Vercel's deployment integration actions): a database branched,
//! a cache warmed. hoist sends each action a signed webhook (`event`,
//! delivered through the outbox by `deliver`), the integration answers
//! with `PATCH /v1/deployments/{id}/actions/{action}` (`report`, `http`),
//! and the secrets it hands back reach the deployment's run sealed
//! (`seal`), never in plain text, never in the forge's payload.

pub mod deliver;
pub mod event;
pub mod http;
pub mod report;
pub mod seal;

pub use deliver::Webhooks;
pub use event::{Call, Event};
pub use report::{Report, Secret};
pub use seal::SealKey;

use crate::store::RunSecrets;

/// The AEAD context of a run's sealed secrets: bound to its request.
pub fn run_context(request_key: &str) -> Vec<u8> {
    format!("run:{request_key}").into_bytes()
}

/// The secrets kept for a deployment's run, opened.
pub fn open_run_secrets(key: &SealKey, kept: &RunSecrets) -> anyhow::Result<Vec<Secret>> {
    let plain = key.open(&kept.sealed, &run_context(&kept.request_key))?;
    Ok(serde_json::from_slice(&plain)?)
}
