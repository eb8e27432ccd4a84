//! From the names a person typed to the rules that apply: the app in
//! hoist.toml, its repository's deploy.yml (default branch only), and the
//! deploy.yml target for the environment.

use crate::app::Hoist;
use crate::config::{AppConfig, FALLBACK_ENVIRONMENT};
use crate::policy::{self, DeployConfig, Target};
use crate::suggest;

use super::Outcome;

/// An app and the deploy rules read from its repository.
pub(super) struct AppRules<'a> {
    pub name: String,
    pub app: &'a AppConfig,
    pub rules: DeployConfig,
}

impl Hoist {
    /// The app named `name` (or the conversation's implied app) and its
    /// deploy.yml, or the reply explaining why there is none.
    pub(super) async fn app_rules(&self, name: &str) -> Result<AppRules<'_>, Outcome> {
        let app = self.known_app(name)?;
        let file = match self.forge.deploy_config(&app.repo).await {
            Ok(Some(file)) => file,
            Ok(None) => {
                return Err(Outcome::new(
                    "refused",
                    format!(
                        "{} has no .github/deploy.yml on its default branch, so I don't know where it may be deployed. See deploy.example.yml for the format.",
                        app.repo
                    ),
                ));
            }
            Err(error) => {
                return Err(Outcome::new(
                    "error",
                    format!("I couldn't read the deploy rules of {}: {error}", app.repo),
                ));
            }
        };
        match policy::load(&file.label, &file.text) {
            Ok(rules) => Ok(AppRules {
                name: name.to_ascii_lowercase(),
                app,
                rules,
            }),
            Err(diagnostics) => {
                let more = match diagnostics.len() {
                    0 | 1 => String::new(),
                    n => format!(" (and {} more; `hoist check` lists them all)", n - 1),
                };
                let first = diagnostics
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| file.label.clone());
                Err(Outcome::new(
                    "refused",
                    format!("The deploy rules are broken, so nothing was done: {first}{more}"),
                ))
            }
        }
    }
}

impl Hoist {
    /// The environments `app`'s deploy.yml names, in its order (review
    /// apps' transient targets left out: their environments are made per
    /// pull request), for the dashboard's grid; or why they cannot be
    /// read.
    pub async fn environments_of(&self, app: &str) -> Result<Vec<String>, String> {
        let rules = self
            .app_rules(app)
            .await
            .map_err(|outcome| outcome.detail)?;
        Ok(rules
            .rules
            .targets()
            .iter()
            .filter(|target| !target.transient_environment)
            .map(|target| target.name.clone())
            .collect())
    }
}

/// The app a command names, or the conversation's (a pull request's);
/// without either, the reply asking for it, with `example` of the form.
pub(super) fn named_app<'a>(
    inbound: &'a crate::chat::Inbound,
    typed: Option<&'a str>,
    example: &str,
) -> Result<&'a str, Outcome> {
    typed
        .or(inbound.implied.app.as_deref())
        .ok_or_else(|| Outcome::new("invalid", format!("Which app? Name it: `{example}`.")))
}

impl Hoist {
    /// The app called `name` in hoist.toml, or a reply naming the nearest.
    pub(super) fn known_app(&self, name: &str) -> Result<&AppConfig, Outcome> {
        self.config
            .app(name)
            .ok_or_else(|| Outcome::new("invalid", unknown_app(name, self.config.app_names())))
    }
}

impl AppRules<'_> {
    /// The environment a command names (a target's own name, else after
    /// aliases), or the app's default, or `production`.
    pub fn environment_name(&self, hoist: &Hoist, typed: Option<&str>) -> String {
        match typed {
            Some(name) if self.rules.target(name).is_some() => name.to_ascii_lowercase(),
            Some(name) => hoist.config.resolve_alias(name),
            None => self
                .app
                .default_environment
                .as_deref()
                .map(|name| hoist.config.resolve_alias(name))
                .unwrap_or_else(|| FALLBACK_ENVIRONMENT.to_owned()),
        }
    }

    /// The deploy.yml target for an environment, or a reply naming the
    /// nearest one.
    pub fn target(&self, environment: &str) -> Result<&Target, Outcome> {
        self.rules.target(environment).ok_or_else(|| {
            let names = self.rules.target_names();
            let hint = suggest::nearest(environment, names.iter().copied())
                .map(|near| format!(" (did you mean `{near}`?)"))
                .unwrap_or_default();
            Outcome::new(
                "invalid",
                format!(
                    "`{environment}` is not an environment of {}{hint}. Environments: {}.",
                    self.name,
                    list_or_none(&names)
                ),
            )
        })
    }
}

fn unknown_app<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = known.collect();
    if names.is_empty() {
        return "No apps are configured yet: add one under [apps] in hoist.toml.".into();
    }
    let hint = suggest::nearest(name, names.iter().copied())
        .map(|near| format!(" (did you mean `{near}`?)"))
        .unwrap_or_default();
    format!(
        "I don't know an app called `{name}`{hint}. Apps: {}.",
        names.join(", ")
    )
}

pub(super) fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
