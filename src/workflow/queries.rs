//! `where can I deploy app` and `deploys app [in env]`: answers that read
//! and change nothing.

use jiff::Timestamp;

use crate::app::Hoist;
use crate::forge::DeploymentFilter;
use crate::policy::ago;

use super::Outcome;
use super::target::list_or_none;

/// How many deployments `deploys` lists.
const RECENT_DEPLOYMENTS: usize = 10;

impl Hoist {
    pub(super) async fn where_can_i_deploy(&self, app: &str) -> Outcome {
        let rules = match self.app_rules(app).await {
            Ok(rules) => rules,
            Err(outcome) => return outcome,
        };
        let now = Timestamp::now();
        let locks = match self.store.locks(now).await {
            Ok(locks) => locks,
            Err(error) => {
                return Outcome::new("error", format!("I couldn't read the locks: {error:#}."));
            }
        };
        // Each target with what stops it now: a lock (who, why), a freeze.
        let names: Vec<String> = rules
            .rules
            .targets()
            .iter()
            .map(|target| {
                let environment = target.name.to_ascii_lowercase();
                let mut notes: Vec<String> = locks
                    .iter()
                    .filter(|lock| lock.scope.covers(&rules.name, &environment))
                    .map(|lock| lock.describe(now))
                    .collect();
                notes.extend(target.freeze.iter().filter_map(|window| {
                    let end = window.ends_after(now)?;
                    Some(format!(
                        "frozen until {}",
                        end.strftime("%a %Y-%m-%d %H:%M %Z")
                    ))
                }));
                match notes.is_empty() {
                    true => target.name.clone(),
                    false => format!("{} ({})", target.name, notes.join("; ")),
                }
            })
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let default = rules.environment_name(self, None);
        Outcome::new(
            "answered",
            format!(
                "{} ({}) can be deployed to: {}. Without `to env` it goes to {default}.",
                rules.name,
                rules.app.repo,
                list_or_none(&names)
            ),
        )
    }

    pub(super) async fn recent_deployments(&self, app: &str, environment: Option<&str>) -> Outcome {
        let app_config = match self.known_app(app) {
            Ok(app_config) => app_config,
            Err(outcome) => return outcome,
        };
        let environment = environment.map(|name| self.config.resolve_alias(name));
        let filter = DeploymentFilter {
            environment: environment.clone(),
            limit: RECENT_DEPLOYMENTS,
            ..DeploymentFilter::default()
        };
        let deployments = match self.forge.list_deployments(&app_config.repo, &filter).await {
            Ok(list) => list,
            Err(error) => {
                return Outcome::new(
                    "error",
                    format!(
                        "I couldn't list the deployments of {}: {error}.",
                        app_config.repo
                    ),
                );
            }
        };
        let scope = environment
            .map(|env| format!(" in {env}"))
            .unwrap_or_default();
        if deployments.is_empty() {
            return Outcome::new(
                "answered",
                format!("No deployments of {}{scope} yet.", app.to_ascii_lowercase()),
            );
        }
        let now = Timestamp::now();
        let lines: Vec<String> = deployments
            .iter()
            .map(|d| {
                format!(
                    "#{} {} {} ({}) to {} by {}, {}",
                    d.id,
                    d.state.map_or("created", |s| s.as_str()),
                    d.git_ref,
                    d.sha.short(),
                    d.environment,
                    d.creator,
                    ago(now, d.created_at)
                )
            })
            .collect();
        Outcome::new(
            "answered",
            format!(
                "Recent deployments of {}{scope}:\n{}",
                app.to_ascii_lowercase(),
                lines.join("\n")
            ),
        )
    }
}
