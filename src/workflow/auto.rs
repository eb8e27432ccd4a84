//! Deployments nobody typed: a push to a ref that a target's
//! `auto_deploy_on` names, a pull request opened or pushed to
//! (`auto_deploy_on: pr`), and the removal of a pull request's review
//! environments when it closes.
//!
//! Each goes through [`Hoist::handle_command`] like a typed command (the
//! same rules, audit entry and replies), with a request key made from the
//! delivery, so a redelivered event deploys nothing twice.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::app::Hoist;
use crate::chat::pr_comment;
use crate::chat::{Implied, Inbound};
use crate::command::{self, Command, DeployRequest};
use crate::config::AppConfig;
use crate::domain::{Actor, DeploymentState, Origin, Platform, RepoName, Sha};
use crate::forge::{
    CheckState, Deployment, DeploymentFilter, ForgeError, NewStatus, PullRequestAction,
    PullRequestChange, Push,
};
use crate::policy::{AutoDeployOn, Decision, Rule, Target, TemplateVars};
use crate::store::WaitingItem;

use super::Outcome;
use super::deploy::REMOVE_TASK;

/// A target's deployments looked at to find a review environment's live
/// ones (newest first).
const LIVE_LOOKBACK: usize = 30;
/// A waiting deployment being looked at stays with one worker this long.
const WAITING_LEASE: SignedDuration = SignedDuration::from_secs(60);
/// Waiting deployments looked at per round.
const WAITING_PER_ROUND: usize = 20;

/// An automatic deployment kept until its checks are done: the request
/// and where to answer, as when it was first made.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WaitingDeploy {
    origin: Origin,
    text: String,
    /// The first attempt's; later ones add `:after-checks:N`.
    request_key: String,
    implied: Implied,
    request: DeployRequest,
    /// The commit it waits on, and the checks.
    sha: Option<Sha>,
    checks: Vec<String>,
    /// Attempts made after the checks passed (a new pending check can
    /// appear in between).
    attempt: u32,
    /// The rule it waits on instead of checks (`lock`, `freeze`).
    #[serde(default)]
    blocked_by: Option<String>,
}

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
                self.deploy_automatically(inbound, request).await?;
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
            PullRequestAction::Closed => {
                let origin = pr_comment::origin(&change.repo, change.number, None, &change.sender);
                self.release_locks_of_pull_request(&origin).await?;
                self.remove_review_environments(change, key).await
            }
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
                let refusal = Outcome::new(
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
                self.deploy_automatically(inbound, request).await?;
            }
        }
        Ok(())
    }

    /// For every transient target with a live environment for this pull
    /// request: a deployment held there for its integration actions
    /// cancelled, a `task: remove` deployment to it, its integration
    /// actions sent `cleanup`, then its earlier deployments marked
    /// inactive.
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
                let mut request = deploy_request(app_name, change.head_sha.as_str(), &target.name);
                // One still held for its integration actions goes with it.
                let by = format!("Closing pull request #{}", change.number);
                if let Some(cancelled) = self.cancel_held(app_name, &environment, &by).await? {
                    let inbound = automatic(
                        origin.clone(),
                        &request,
                        &format!("pull request #{} closed", change.number),
                        format!("cancel-held:{key}:{app_name}:{}", target.name),
                        implied_by(change, app_name),
                    );
                    self.conclude(&inbound, cancelled).await?;
                }
                let live = self.live_deployments(change, &environment).await?;
                if live.is_empty() {
                    continue;
                }
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
                let outcome = self.deploy_automatically(inbound, request).await?;
                if outcome.kind != "deployed" {
                    continue;
                }
                self.clean_up_actions(app_name, &environment).await?;
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

    /// Runs an automatic deployment; one that meets pending checks is
    /// kept to deploy when they pass.
    async fn deploy_automatically(
        &self,
        inbound: Inbound,
        request: DeployRequest,
    ) -> anyhow::Result<Outcome> {
        let waiting = WaitingDeploy {
            origin: inbound.origin.clone(),
            text: inbound.text.clone(),
            request_key: inbound.request_key.clone(),
            implied: inbound.implied.clone(),
            request: request.clone(),
            sha: None,
            checks: Vec::new(),
            attempt: 0,
            blocked_by: None,
        };
        let outcome = self
            .handle_command(inbound, Command::Deploy(request))
            .await?;
        self.keep_if_pending(waiting, &outcome).await?;
        Ok(outcome)
    }

    async fn keep_if_pending(
        &self,
        mut waiting: WaitingDeploy,
        outcome: &Outcome,
    ) -> anyhow::Result<()> {
        let Some(pending) = &outcome.pending else {
            return Ok(());
        };
        waiting.sha = Some(pending.sha.clone());
        waiting.checks = pending.checks.clone();
        waiting.blocked_by = pending.blocked_by.map(|rule| rule.name().to_owned());
        self.store
            .wait_for_checks(
                &pending.repo,
                &pending.sha,
                &waiting.request_key,
                &serde_json::to_value(&waiting)?,
                Timestamp::now(),
            )
            .await
    }

    /// Looks again at the deployments waiting for a commit's checks (a
    /// status or check suite changed on it), or with `None` at every one
    /// (the watch's round, for events missed). Returns how many.
    pub async fn recheck_waiting(
        &self,
        commit: Option<(&RepoName, &Sha)>,
    ) -> anyhow::Result<usize> {
        let now = Timestamp::now();
        let items = self
            .store
            .claim_waiting(commit, now, now + WAITING_LEASE, WAITING_PER_ROUND)
            .await?;
        for item in &items {
            if let Err(error) = self.recheck(item).await {
                // Released by its lease: looked at again next round.
                tracing::warn!(
                    id = item.id,
                    error = format!("{error:#}"),
                    "cannot look at a waiting deployment"
                );
            }
        }
        Ok(items.len())
    }

    /// Deploys a waiting deployment whose checks passed, tells why one
    /// will not deploy (a check failed, or it waited too long), or keeps
    /// it waiting.
    async fn recheck(&self, item: &WaitingItem) -> anyhow::Result<()> {
        // Written by this program: unreadable means a bug or an older
        // version's shape, which no later look would read either.
        let mut waiting: WaitingDeploy = match serde_json::from_value(item.body.clone()) {
            Ok(waiting) => waiting,
            Err(error) => {
                tracing::error!(id = item.id, %error, "an unreadable waiting deployment was dropped");
                return self.store.stop_waiting(item.id).await;
            }
        };
        let (Some(repo), Some(git_ref)) =
            (self.waiting_repo(&waiting), waiting.request.git_ref.clone())
        else {
            self.store.stop_waiting(item.id).await?;
            return Ok(());
        };
        let inbound = |suffix: &str| Inbound {
            implied: waiting.implied.clone(),
            automatic: true,
            waits: true,
            ..Inbound::typed(
                waiting.origin.clone(),
                waiting.text.clone(),
                format!("{}:{suffix}", waiting.request_key),
            )
        };
        let max_age = SignedDuration::from_secs(
            i64::try_from(self.config.watch.max_age_secs).unwrap_or(i64::MAX),
        );
        // A lock or a freeze is waited out however long it lasts.
        if waiting.blocked_by.is_none()
            && Timestamp::now().duration_since(item.created_at) > max_age
        {
            let gave_up = Outcome::new(
                "refused",
                format!(
                    "Not deployed: {} were still not done after {} h, so I stopped waiting for them. Deploy it by hand when they pass.",
                    waiting.checks.join(", "),
                    max_age.as_hours()
                ),
            );
            self.conclude(&inbound("gave-up"), gave_up).await?;
            return self.store.stop_waiting(item.id).await;
        }
        // The ref moved on (or went): a newer push deploys, not this one.
        // GitHub failing is no answer: looked at again when the lease ends.
        let now_at = match self.forge.resolve_ref(&repo, &git_ref).await {
            Ok(sha) => Some(sha),
            Err(ForgeError::NotFound { .. }) => None,
            Err(error) => anyhow::bail!("cannot resolve {git_ref}: {error}"),
        };
        let Some(sha) = now_at.filter(|sha| Some(sha) == waiting.sha.as_ref()) else {
            tracing::info!(%repo, %git_ref, "stopped waiting: the ref moved on");
            return self.store.stop_waiting(item.id).await;
        };
        if waiting.blocked_by.is_some() && self.still_blocked(&waiting).await {
            return self.store.keep_waiting(item.id).await;
        }
        let checks = self
            .forge
            .commit_checks(&repo, &sha)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let state = |name: &String| checks.iter().find(|c| &c.name == name).map(|c| c.state);
        let failed: Vec<&String> = waiting
            .checks
            .iter()
            .filter(|name| matches!(state(name), Some(CheckState::Failure | CheckState::Error)))
            .collect();
        if !failed.is_empty() {
            let refusal = Outcome::new(
                "refused",
                format!(
                    "Not deployed: {} failed on {git_ref}.",
                    failed
                        .iter()
                        .map(|n| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            self.conclude(&inbound("failed"), refusal).await?;
            return self.store.stop_waiting(item.id).await;
        }
        if waiting
            .checks
            .iter()
            .any(|name| state(name) != Some(CheckState::Success))
        {
            return self.store.keep_waiting(item.id).await;
        }
        waiting.attempt += 1;
        let outcome = self
            .handle_command(
                inbound(&format!("after-checks:{}", waiting.attempt)),
                Command::Deploy(waiting.request.clone()),
            )
            .await?;
        // A check that appeared since: waiting again, from the same time.
        match outcome.pending {
            Some(_) => self.keep_if_pending(waiting, &outcome).await,
            None => self.store.stop_waiting(item.id).await,
        }
    }

    /// Whether a lock or freeze window still stops a waiting deployment;
    /// asked quietly, so a wait says nothing until it ends. Not knowing
    /// (deploy.yml unreadable) counts as not blocked: the deployment's own
    /// attempt then says what is wrong.
    async fn still_blocked(&self, waiting: &WaitingDeploy) -> bool {
        let (Some(app), Some(environment)) = (
            waiting.request.app.as_deref(),
            waiting.request.environment.as_deref(),
        ) else {
            return false;
        };
        let Ok(rules) = self.app_rules(app).await else {
            return false;
        };
        let Ok(target) = rules.target(environment) else {
            return false;
        };
        let (Some(repo), Some(sha)) = (self.waiting_repo(waiting), waiting.sha.as_ref()) else {
            return false;
        };
        let asked = super::deploy::Asked {
            app: &rules.name,
            origin: &waiting.origin,
            rules: &rules.rules,
            target,
            repo: &repo,
            sha,
            git_ref: waiting.request.git_ref.as_deref().unwrap_or_default(),
            actor: &waiting.origin.actor,
            force: false,
            automatic: true,
            waits: true,
            production: target.production_environment.unwrap_or(false),
            removal: false,
            approved_by: &[],
        };
        matches!(
            self.decide(&asked).await,
            Ok(Decision::Denied {
                rule: Rule::Lock | Rule::Freeze,
                ..
            })
        )
    }

    fn waiting_repo(&self, waiting: &WaitingDeploy) -> Option<RepoName> {
        let app = waiting.request.app.as_deref()?;
        Some(self.config.app(app)?.repo.clone())
    }

    /// The deployments of this pull request's head to `environment` that
    /// are still live: not marked inactive, and not removals themselves.
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
        // Of this pull request's head only: an environment a target does
        // not name per pull request (no `${{ pr }}`) is shared, and another
        // pull request's deployment there is not this one's to remove.
        let of_this_head = |d: &Deployment| {
            d.git_ref == change.head_ref
                || d.git_ref == change.head_sha.as_str()
                || d.sha == change.head_sha
        };
        Ok(deployments
            .into_iter()
            .filter(|d| d.task != REMOVE_TASK && d.state != Some(DeploymentState::Inactive))
            .filter(of_this_head)
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
        waits: true,
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
pub(super) fn announce_origin(app: &AppConfig, login: &str) -> Origin {
    let (platform, conversation) = match &app.channel {
        Some(channel) => (channel.platform, channel.conversation.clone()),
        None => (Platform::Push, String::new()),
    };
    Origin {
        platform,
        conversation,
        message: None,
        link: None,
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
