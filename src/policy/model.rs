//! The typed model of `.github/deploy.yml` and what one deployment of a
//! target looks like once its templates are filled in.

use std::fmt;

use serde_json::{Map, Value};

use super::action::Action;
use super::approval::Approvals;
use super::freeze::FreezeWindow;
use super::template::{RenderError, Template, TemplateVars};
use crate::domain::Permission;

/// A repository's deploy rules: its targets, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployConfig {
    pub(super) targets: Vec<Target>,
}

impl DeployConfig {
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// The target a person named, compared without case (`Staging`).
    pub fn target(&self, name: &str) -> Option<&Target> {
        self.targets
            .iter()
            .find(|target| target.name.eq_ignore_ascii_case(name))
    }

    pub fn target_names(&self) -> Vec<&str> {
        self.targets
            .iter()
            .map(|target| target.name.as_str())
            .collect()
    }
}

/// One top-level key of deploy.yml: the thing typed after `to`.
///
/// Defaults differ from Deliverybot's where Deliverybot's were unsafe; each
/// is documented in `deploy.example.yml`.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub name: String,
    /// The GitHub environment. Default: the target's name (Deliverybot
    /// defaulted to `production`, so a target without the key deployed
    /// there).
    pub environment: Template,
    pub description: Option<Template>,
    /// Default `deploy`; a typed task (`deploy:migrate`) wins.
    pub task: String,
    /// Always a mapping; `target` is added when rendered.
    pub payload: Payload,
    /// Default `false`: hoist never changes the branch being deployed
    /// unless told to.
    pub auto_merge: bool,
    /// `None` (the key absent): GitHub checks every status context, its
    /// own default. Deliverybot sent `[]` and so checked nothing.
    pub required_contexts: Option<Vec<String>>,
    /// `None`: true when the environment is named `production`.
    pub production_environment: Option<bool>,
    pub transient_environment: bool,
    pub auto_deploy_on: Option<AutoDeployOn>,
    /// GitHub logins (or teams, `org/team-slug`) that may deploy here by
    /// command; `None`: anyone hoist takes commands from.
    pub allowed_users: Option<Vec<String>>,
    /// When the target takes no deployments.
    pub freeze: Vec<FreezeWindow>,
    /// GitHub logins (or teams) whose `deploy!` goes through a freeze
    /// window.
    pub freeze_override: Vec<String>,
    /// Targets where the same commit must have deployed successfully
    /// first (staging before production).
    pub after: Vec<String>,
    /// Each deployment holds the environment's lock until it ends, so
    /// nobody else deploys there meanwhile.
    pub deployment_lock: bool,
    /// What to do with a ref behind the default branch.
    pub outdated: Outdated,
    /// Deploying the default branch is always allowed as a rollback:
    /// it passes freeze windows and the order (branch-deploy's "the
    /// stable branch"); who may deploy and locks still apply.
    pub default_branch_rollback: bool,
    /// The least repository permission a person needs to deploy here by
    /// command (checked on GitHub through their linked login).
    pub min_permission: Option<Permission>,
    /// Deployments wait until this many of these people approve.
    pub approvals: Option<Approvals>,
    /// Whether `deploy!` deploys despite failing or pending required
    /// checks. `None`: yes, except to a production environment.
    pub force_skips_checks: Option<bool>,
    /// Integrations whose start webhook hoist sends before the deployment
    /// is created, waiting until each reports its work done.
    pub actions: Vec<Action>,
}

/// `outdated`: a ref that lacks commits of the default branch would
/// undo them where it deploys (branch-deploy's "outdated branch").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outdated {
    /// Deploy it and say nothing (Deliverybot's behaviour).
    #[default]
    Allow,
    /// Deploy it, and say how far behind it is.
    Warn,
    /// Refuse it until it is brought up to date.
    Refuse,
}

/// When a target deploys by itself (acted on by the auto-deploy issue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoDeployOn {
    /// `pr`: a pull request opened or pushed to.
    PullRequest,
    /// `refs/heads/main`, or a prefix ending in `*` (`refs/tags/*`).
    Ref(String),
}

impl AutoDeployOn {
    /// Whether a push to `git_ref` (in full: `refs/heads/main`) deploys:
    /// the same ref, or one starting with a pattern's part before its
    /// closing `*` (Deliverybot's rule).
    pub fn matches_push(&self, git_ref: &str) -> bool {
        match self {
            Self::PullRequest => false,
            Self::Ref(pattern) => match pattern.strip_suffix('*') {
                Some(prefix) => git_ref.starts_with(prefix),
                None => git_ref == pattern,
            },
        }
    }
}

impl fmt::Display for AutoDeployOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PullRequest => f.write_str("pr"),
            Self::Ref(pattern) => f.write_str(pattern),
        }
    }
}

/// A `payload` value whose strings are templates.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Template),
    List(Vec<Payload>),
    Map(Vec<(String, Payload)>),
}

impl Payload {
    fn render(&self, vars: &TemplateVars) -> Result<Value, RenderError> {
        Ok(match self {
            Self::Null => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Number(n) => Value::Number(n.clone()),
            Self::String(template) => Value::String(template.render(vars)?),
            Self::List(items) => Value::Array(
                items
                    .iter()
                    .map(|item| item.render(vars))
                    .collect::<Result<_, _>>()?,
            ),
            Self::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| Ok((key.clone(), value.render(vars)?)))
                    .collect::<Result<Map<_, _>, _>>()?,
            ),
        })
    }
}

/// A target filled in for one deployment: what the forge is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedTarget {
    pub environment: String,
    pub description: Option<String>,
    pub task: String,
    /// The target's payload with `target` set to the target's name.
    pub payload: Value,
    pub auto_merge: bool,
    pub required_contexts: Option<Vec<String>>,
    pub production_environment: bool,
    pub transient_environment: bool,
}

impl Target {
    /// Whether `deploy!` skips the required checks, for a deployment
    /// to a production environment or not.
    pub fn force_skips_checks(&self, production: bool) -> bool {
        self.force_skips_checks.unwrap_or(!production)
    }

    /// The teams its lists name, whose membership the rules need.
    pub fn teams(&self) -> Vec<&str> {
        let lists = [
            self.allowed_users.as_deref().unwrap_or_default(),
            &self.freeze_override,
            self.approvals
                .as_ref()
                .map(|approvals| approvals.from.as_slice())
                .unwrap_or_default(),
        ];
        let mut teams: Vec<&str> = lists
            .into_iter()
            .flat_map(super::principal::teams)
            .collect();
        teams.sort_unstable_by_key(|team| team.to_ascii_lowercase());
        teams.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        teams
    }

    /// `vars.target` should be this target's name.
    pub fn render(&self, vars: &TemplateVars) -> Result<RenderedTarget, RenderError> {
        let environment = self.environment.render(vars)?;
        let mut payload = match self.payload.render(vars)? {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        payload.insert("target".into(), Value::String(self.name.clone()));
        Ok(RenderedTarget {
            production_environment: self
                .production_environment
                .unwrap_or_else(|| environment.eq_ignore_ascii_case("production")),
            environment,
            description: self
                .description
                .as_ref()
                .map(|template| template.render(vars))
                .transpose()?,
            task: self.task.clone(),
            payload: Value::Object(payload),
            auto_merge: self.auto_merge,
            required_contexts: self.required_contexts.clone(),
            transient_environment: self.transient_environment,
        })
    }
}
