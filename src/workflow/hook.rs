//! Deployments a deploy hook asks for (`POST /api/v1/dh`): a
//! `deploy APP[/REF] to ENV` built for the hook's app and environment,
//! through [`Hoist::handle_command`] like a typed one, so the same rules,
//! audit entry and announcement apply.
//!
//! The hook is the actor (`hook NAME`): no person, so the answer is
//! public and announced where the app's auto-deploys are, access rules
//! by person do not apply and any lock stops it. Unlike an auto-deploy,
//! nothing waits: a lock, a freeze window or pending checks refuse it,
//! and the CI job that called is told so at once.

use serde_json::{Map, Value};

use crate::app::Hoist;
use crate::chat::Inbound;
use crate::command::{self, Command, DeployRequest};
use crate::domain::{Actor, Origin, Platform};
use crate::store::{DeployHook, DeploymentRecord};

use super::Outcome;
use super::auto::announce_origin;

/// What a hook call asks for, already checked.
#[derive(Debug, Clone, PartialEq)]
pub struct HookRequest {
    /// `None`: the app's default branch, as `deploy api to staging`.
    pub git_ref: Option<String>,
    /// Added to the deployment's payload (`imageTag`, the body's
    /// `payload`).
    pub payload: Map<String, Value>,
    /// The same key twice is one deployment.
    pub request_key: String,
}

/// What a hook call came to.
#[derive(Debug, Clone, PartialEq)]
pub struct HookDeployment {
    pub outcome: Outcome,
    /// The deployment made for this request (now, or by an earlier call
    /// with the same key).
    pub deployment: Option<DeploymentRecord>,
}

impl Hoist {
    /// Deploys what `hook` deploys, as the hook.
    pub async fn deploy_by_hook(
        &self,
        hook: &DeployHook,
        asked: HookRequest,
    ) -> anyhow::Result<HookDeployment> {
        let actor = Actor {
            id: format!("hook:{}", hook.name),
            name: format!("hook {}", hook.name),
            login: None,
        };
        let origin = match self.config.app(&hook.app) {
            Some(app) => Origin {
                actor,
                ..announce_origin(app, &hook.name)
            },
            // hoist.toml lost the app since the hook was made: nowhere to
            // announce, and the workflow refuses it (audited) naming the
            // apps it knows.
            None => Origin {
                platform: Platform::Push,
                conversation: String::new(),
                message: None,
                link: None,
                actor,
            },
        };
        let request = DeployRequest {
            task: "deploy".to_owned(),
            app: Some(hook.app.clone()),
            git_ref: asked.git_ref,
            environment: Some(hook.environment.clone()),
            ..DeployRequest::default()
        };
        let text = format!(
            "{} (deploy hook {})",
            command::render(&Command::Deploy(request.clone())),
            hook.name
        );
        let inbound = Inbound {
            automatic: true,
            payload: asked.payload,
            ..Inbound::typed(origin, text, asked.request_key.clone())
        };
        let outcome = self
            .handle_command(inbound, Command::Deploy(request))
            .await?;
        let deployment = match outcome.kind {
            "deployed" => self.store.deployment_by_request(&asked.request_key).await?,
            _ => None,
        };
        Ok(HookDeployment {
            outcome,
            deployment,
        })
    }
}
