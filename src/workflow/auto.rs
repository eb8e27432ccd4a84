//! Deployments nobody typed: a push to a ref that a target's
//! `auto_deploy_on` names, a pull request opened or pushed to
//! (`auto_deploy_on: pr`), and the removal of a pull request's review
//! environments when it closes.
//!
//! Each goes through [`Hoist::handle_command`] like a typed command (the
//! same rules, audit entry and replies), with a request key made from the
//! delivery, so a redelivered event deploys nothing twice.

use crate::app::Hoist;
use crate::chat::pr_comment;
use crate::chat::{Implied, Inbound};
use crate::command::{self, Command, DeployRequest};
use crate::config::AppConfig;
use crate::domain::{Actor, DeploymentState, Origin, Platform};
use crate::forge::{
    Deployment, DeploymentFilter, ForgeError, NewStatus, PullRequestAction, PullRequestChange, Push,
};
use crate::policy::{AutoDeployOn, Target, TemplateVars};

use super::deploy::REMOVE_TASK;

/// A target's deployments looked at to find a review environment's live
/// ones (newest first).
const LIVE_LOOKBACK: usize = 30;

impl Hoist {
    /// Deploys a push to every target whose `auto_deploy_on` matches its
    /// ref. `key` is unique per delivery.
    pub async fn push_received(&self, push: &Push, key: &str) -> anyhow::Result<()> {
        let Some(sha) = &push.sha else {
            return Ok(()); // a deleted branch or tag
        };
        let short_ref = push
            .git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| push.git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(&push.git_ref);
        for (app_name, app) in self.config.apps_for_repo(&push.repo) {
            let targets = self
                .targets_where(app_name, |target| {
                    target
                        .auto_deploy_on
                        .as_ref()
                        .is_some_and(|on| on.matches_push(&push.git_ref))
                })
                .await;
            if targets.is_empty() {
                continue;
            }
            // A newer push already moved the ref on: its own event deploys.
            match self.forge.resolve_ref(&push.repo, short_ref).await {
                Ok(now) if &now != sha => {
                    tracing::info!(repo = %push.repo, git_ref = %push.git_ref, %sha, "not auto-deployed: superseded by a newer push");
                    continue;
                }
                Ok(_) => {}
                Err(ForgeError::NotFound { .. }) => continue,
                Err(error) => anyhow::bail!("cannot resolve {short_ref}: {error}"),
            }
            for target in targets {
                let request = deploy_request(app_name, short_ref, &target);
                let why = format!("on push to {} by {}", push.git_ref, push.pusher);
                let inbound = automatic(
                    announce_origin(app, &push.pusher),
                    &request,
                    &why,
                    format!("push:{key}:{app_name}:{target}"),
                    Implied::default(),
                );
                self.handle_command(inbound, Command::Deploy(request))
                    .await?;
            }
        }
        Ok(())
    }

    /// Deploys a pull request's review apps when it is opened or pushed
    /// to, and removes them when it closes.
    pub async fn pull_request_changed(
        &self,
        change: &PullRequestChange,
        key: &str,
    ) -> anyhow::Result<()> {
        match change.action {
            PullRequestAction::Opened | PullRequestAction::Pushed => {
                self.deploy_review_apps(change, key).await
            }
            PullRequestAction::Closed => self.remove_review_environments(change, key).await,
            PullRequestAction::Other => Ok(()),
        }
    }

    async fn deploy_review_apps(
        &self,
        change: &PullRequestChange,
        key: &str,
    ) -> anyhow::Result<()> {
        let origin = pr_comment::origin(&change.repo, change.number, None, &change.sender);
        for (app_name, app) in self.config.apps_for_repo(&change.repo) {
            let targets = self
                .targets_where(app_name, |target| {
                    target.auto_deploy_on == Some(AutoDeployOn::PullRequest)
                })
                .await;
            if targets.is_empty() {
                continue;
            }
            if change.from_fork && !app.allow_forks {
                // Keyed by the pull request, not the delivery: said once,
                // not again on every push to the fork.
                let inbound = Inbound::typed(
                    origin.clone(),
                    "(pull request from a fork)",
                    format!("fork:{}#{}:{app_name}", change.repo, change.number),
                );
                let refusal = super::Outcome::new(
                    "refused",
                    format!(
                        "Review apps of {app_name} ({}) are not deployed for pull requests from forks: their code would run with the environment's secrets. \
                         An operator may set `allow_forks = true` under [apps.{app_name}].",
                        targets.join(", ")
                    ),
                );
                self.conclude(
                    &Inbound {
                        automatic: true,
                        ..inbound
                    },
                    refusal,
                )
                .await?;
                continue;
            }
            // A fork's branch name means nothing here; its sha does.
            let git_ref = match change.from_fork {
                true => change.head_sha.to_string(),
                false => change.head_ref.clone(),
            };
            for target in targets {
                let request = deploy_request(app_name, &git_ref, &target);
                let inbound = automatic(
                    origin.clone(),
                    &request,
                    &format!("on pull request #{} by {}", change.number, change.sender),
                    format!("pr:{key}:{app_name}:{target}"),
                    implied_by(change, app_name),
                );
                self.handle_command(inbound, Command::Deploy(request))
                    .await?;
            }
        }
        Ok(())
    }

    /// For every transient target with a live environment for this pull
    /// request: a `task: remove` deployment to it, then its earlier
    /// deployments marked inactive.
    async fn remove_review_environments(
        &self,
        change: &PullRequestChange,
        key: &str,
    ) -> anyhow::Result<()> {
        let origin = pr_comment::origin(&change.repo, change.number, None, &change.sender);
        for (app_name, _) in self.config.apps_for_repo(&change.repo) {
            let Ok(rules) = self.app_rules(app_name).await else {
                tracing::warn!(
                    app = app_name,
                    "pull request closed, but the app's deploy rules cannot be read"
                );
                continue;
            };
            for target in rules
                .rules
                .targets()
                .iter()
                .filter(|t| t.transient_environment)
            {
                let Some(environment) = review_environment(target, change) else {
                    continue;
                };
                let live = self.live_deployments(change, &environment).await?;
                if live.is_empty() {
                    continue;
                }
                let mut request = deploy_request(app_name, change.head_sha.as_str(), &target.name);
                request.task = REMOVE_TASK.to_owned();
                // Nothing to check before shutting an environment down.
                request.force = true;
                let inbound = automatic(
                    origin.clone(),
                    &request,
                    &format!("pull request #{} closed", change.number),
                    format!("remove:{key}:{app_name}:{}", target.name),
                    implied_by(change, app_name),
                );
                let outcome = self
                    .handle_command(inbound, Command::Deploy(request))
                    .await?;
                if outcome.kind != "deployed" {
                    continue;
                }
                for deployment in live {
                    let status = NewStatus {
                        state: DeploymentState::Inactive,
                        description: Some(format!(
                            "Pull request #{} was closed; the environment is being removed",
                            change.number
                        )),
                        log_url: None,
                        environment_url: None,
                    };
                    self.forge
                        .create_status(&change.repo, deployment.id, &status)
                        .await
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "cannot mark deployment {} inactive: {e}",
                                deployment.id
                            )
                        })?;
                }
            }
        }
        Ok(())
    }

    /// The deployments to `environment` that are still live: not marked
    /// inactive, and not removals themselves.
    async fn live_deployments(
        &self,
        change: &PullRequestChange,
        environment: &str,
    ) -> anyhow::Result<Vec<Deployment>> {
        let filter = DeploymentFilter {
            environment: Some(environment.to_owned()),
            limit: LIVE_LOOKBACK,
            ..DeploymentFilter::default()
        };
        let deployments = self
            .forge
            .list_deployments(&change.repo, &filter)
            .await
            .map_err(|e| anyhow::anyhow!("cannot list the deployments to {environment}: {e}"))?;
        Ok(deployments
            .into_iter()
            .filter(|d| d.task != REMOVE_TASK && d.state != Some(DeploymentState::Inactive))
            .collect())
    }

    /// The names of an app's targets that `wanted` picks; none when its
    /// rules cannot be read (logged: nobody asked, so nobody to answer).
    async fn targets_where(&self, app: &str, wanted: impl Fn(&Target) -> bool) -> Vec<String> {
        match self.app_rules(app).await {
            Ok(rules) => rules
                .rules
                .targets()
                .iter()
                .filter(|target| wanted(target))
                .map(|target| target.name.clone())
                .collect(),
            Err(outcome) => {
                tracing::warn!(app, reason = %outcome.detail, "no auto-deploy: the deploy rules cannot be read");
                Vec::new()
            }
        }
    }
}

fn deploy_request(app: &str, git_ref: &str, target: &str) -> DeployRequest {
    DeployRequest {
        task: "deploy".to_owned(),
        app: Some(app.to_owned()),
        git_ref: Some(git_ref.to_owned()),
        environment: Some(target.to_owned()),
        ..DeployRequest::default()
    }
}

/// A request an event made: its audit text says what and why.
fn automatic(
    origin: Origin,
    request: &DeployRequest,
    why: &str,
    request_key: String,
    implied: Implied,
) -> Inbound {
    let text = format!(
        "{} ({why})",
        command::render(&Command::Deploy(request.clone()))
    );
    Inbound {
        implied,
        automatic: true,
        ..Inbound::typed(origin, text, request_key)
    }
}

fn implied_by(change: &PullRequestChange, app: &str) -> Implied {
    Implied {
        app: Some(app.to_owned()),
        git_ref: None,
        pull_request: Some(change.number),
    }
}

/// Where an app's auto-deploys are announced: its `channel`, or nowhere.
fn announce_origin(app: &AppConfig, login: &str) -> Origin {
    let (platform, conversation) = match &app.channel {
        Some(channel) => (channel.platform, channel.conversation.clone()),
        None => (Platform::Push, String::new()),
    };
    Origin {
        platform,
        conversation,
        message: None,
        actor: Actor {
            id: login.to_owned(),
            name: login.to_owned(),
            login: Some(login.to_owned()),
        },
    }
}

/// The environment a transient target gave this pull request, rendered
/// as its deployments were; `None` when the template cannot be filled.
fn review_environment(target: &Target, change: &PullRequestChange) -> Option<String> {
    let vars = TemplateVars {
        git_ref: change.head_ref.clone(),
        sha: change.head_sha.to_string(),
        short_sha: change.head_sha.short().to_owned(),
        target: target.name.clone(),
        owner: change.repo.owner().to_owned(),
        repo: change.repo.name().to_owned(),
        pr: Some(change.number),
        actor: change.sender.clone(),
    };
    target
        .render(&vars)
        .ok()
        .map(|rendered| rendered.environment)
}
