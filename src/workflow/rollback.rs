//! `rollback app [in env]`: deploy again the commit that was live before
//! the current one, as an ordinary deployment (every rule applies).

use crate::app::Hoist;
use crate::chat::Inbound;
use crate::command::DeployRequest;
use crate::domain::DeploymentState;
use crate::forge::{Deployment, DeploymentFilter};

use super::Outcome;
use super::deploy::REMOVE_TASK;
use super::target::named_app;

/// Deployments looked through for the live one and the one before it.
const LOOKBACK: usize = 30;

impl Hoist {
    pub(super) async fn rollback(
        &self,
        inbound: &Inbound,
        app: Option<&str>,
        environment: Option<&str>,
    ) -> Outcome {
        let name = match named_app(inbound, app, "rollback app in env") {
            Ok(name) => name,
            Err(outcome) => return outcome,
        };
        let rules = match self.app_rules(name).await {
            Ok(rules) => rules,
            Err(outcome) => return outcome,
        };
        let environment = rules.environment_name(self, environment);
        let target = match rules.target(&environment) {
            Ok(target) => target,
            Err(outcome) => return outcome,
        };
        let github_environment = target
            .environment
            .as_literal()
            .unwrap_or(&target.name)
            .to_owned();
        let filter = DeploymentFilter {
            environment: Some(github_environment.clone()),
            limit: LOOKBACK,
            ..DeploymentFilter::default()
        };
        let deployments = match self.forge.list_deployments(&rules.app.repo, &filter).await {
            Ok(deployments) => deployments,
            Err(error) => {
                return Outcome::new(
                    "error",
                    format!("Nothing was rolled back: I couldn't list the deployments: {error}."),
                );
            }
        };
        let (current, previous) = match live_and_before(&deployments) {
            Ok(pair) => pair,
            Err(why) => {
                return Outcome::new(
                    "refused",
                    format!("Nothing to roll back in {github_environment}: {why}."),
                );
            }
        };
        let request = DeployRequest {
            task: "deploy".into(),
            force: false,
            app: Some(rules.name.clone()),
            git_ref: Some(previous.sha.to_string()),
            environment: Some(target.name.clone()),
            hosts: Vec::new(),
            params: Vec::new(),
        };
        let outcome = self.deploy(inbound, &request, false).await;
        Outcome {
            detail: format!(
                "Rolling back {} in {github_environment} from #{} {} ({}) to #{} {} ({}). {}",
                rules.name,
                current.id,
                current.git_ref,
                current.sha.short(),
                previous.id,
                previous.git_ref,
                previous.sha.short(),
                outcome.detail
            ),
            ..outcome
        }
    }
}

/// Of deployments newest first: the live one (the newest that succeeded)
/// and the newest before it that succeeded with another commit. Removals
/// are not deployments of the app.
fn live_and_before(deployments: &[Deployment]) -> Result<(&Deployment, &Deployment), String> {
    let mut succeeded = deployments.iter().filter(|deployment| {
        deployment.task != REMOVE_TASK
            && matches!(
                deployment.state,
                Some(DeploymentState::Success | DeploymentState::Inactive)
            )
    });
    let current = succeeded
        .next()
        .ok_or("no deployment there has succeeded yet")?;
    let previous = succeeded
        .find(|deployment| deployment.sha != current.sha)
        .ok_or_else(|| {
            format!(
                "#{} ({} {}) is the only commit that succeeded there",
                current.id,
                current.git_ref,
                current.sha.short()
            )
        })?;
    Ok((current, previous))
}
