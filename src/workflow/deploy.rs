//! `deploy` and `noop`: from a request to a deployment (or to a report of
//! what a deployment would be).

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};

use crate::app::Hoist;
use crate::chat::{DeploymentCard, Implied, Inbound};
use crate::command::{self, DeployRequest};
use crate::domain::DeploymentState;
use crate::domain::Origin;
use crate::domain::{AppName, RepoName, Sha};
use crate::forge::{Check, CheckState, DeploymentFilter, ForgeError, NewDeployment};
use crate::policy::{
    self, Decision, Lock, LockKind, LockScope, RenderedTarget, Rule, TemplateVars,
};
use crate::relay::card_key;
use crate::store::{DeploymentKey, DeploymentRecord, TakeLock};
use serde::{Deserialize, Serialize};

use super::{Outcome, PendingChecks};
use crate::actions::Secret;

/// Why the rules did not let a deployment through.
enum JudgeStop {
    /// The answer to give (a refusal, or an auto-deploy that waits).
    Refused(Outcome),
    /// Every rule passed but the approvals: ask for them.
    NeedsApproval { audit: String },
}

/// What the rules let through, for the audit log and the answer.
struct Judged {
    audit: String,
    /// Said beside the answer (`outdated: warn`).
    warnings: Vec<String>,
    /// The commit's checks, as the rules read them.
    checks: Vec<Check>,
}

/// A deployment as the safety rules see it.
pub(super) struct Asked<'a> {
    pub app: &'a str,
    /// Where the request came from (a deployment lock remembers it).
    pub origin: &'a crate::domain::Origin,
    pub rules: &'a crate::policy::DeployConfig,
    pub target: &'a crate::policy::Target,
    pub repo: &'a RepoName,
    pub sha: &'a Sha,
    /// The ref as the request named it (or the default branch).
    pub git_ref: &'a str,
    pub actor: &'a crate::domain::Actor,
    pub force: bool,
    pub automatic: bool,
    /// Stopped by a lock, a freeze window or pending checks, it waits
    /// ([`Inbound::waits`]) instead of being refused.
    pub waits: bool,
    /// To a production environment (the rendered target's).
    pub production: bool,
    /// The `remove` task: no checks, no approvals.
    pub removal: bool,
    /// Who approved it (a request that waited for approvals).
    pub approved_by: &'a [String],
}

/// A deploy request kept in the store to deploy later as it was asked
/// (waiting for approvals, held for integration actions): who asked,
/// where to answer, and what the rules let through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct KeptRequest {
    pub origin: Origin,
    pub text: String,
    pub request_key: String,
    pub implied: Implied,
    pub automatic: bool,
    /// A deploy hook's additions to the payload.
    #[serde(default)]
    pub payload: Map<String, Value>,
    /// The request with its app, ref and target filled in.
    pub request: DeployRequest,
    /// `api main (abc1234) to production`.
    pub what: String,
    pub sha: Sha,
}

impl KeptRequest {
    pub fn new(inbound: &Inbound, request: &DeployRequest, asked: &Asked<'_>, what: &str) -> Self {
        Self {
            origin: inbound.origin.clone(),
            text: inbound.text.clone(),
            request_key: inbound.request_key.clone(),
            implied: inbound.implied.clone(),
            automatic: inbound.automatic,
            payload: inbound.payload.clone(),
            request: DeployRequest {
                app: Some(asked.app.to_owned()),
                git_ref: Some(asked.git_ref.to_owned()),
                environment: Some(asked.target.name.clone()),
                ..request.clone()
            },
            what: what.to_owned(),
            sha: asked.sha.clone(),
        }
    }

    /// The request again, under `request_key:suffix`, answered where it
    /// was asked.
    pub fn inbound(&self, suffix: &str, automatic: bool) -> Inbound {
        Inbound {
            implied: self.implied.clone(),
            automatic,
            payload: self.payload.clone(),
            ..Inbound::typed(
                self.origin.clone(),
                self.text.clone(),
                format!("{}:{suffix}", self.request_key),
            )
        }
    }
}

/// What a request that waited (for approvals, for its integration
/// actions) has been granted: it deploys the commit it waited with.
#[derive(Debug, Clone)]
pub(super) struct Granted {
    /// The approval request's number, for a request that was approved.
    pub request: Option<i64>,
    pub sha: Sha,
    pub approvers: Vec<String>,
    /// The secrets its integration actions handed over, once they are
    /// all done (`None`: the actions have not run yet).
    pub secrets: Option<Vec<Secret>>,
}

impl Granted {
    /// The refusal when the ref moved on while the request waited.
    fn moved(&self, git_ref: &str, now: &Sha) -> String {
        let was = self.sha.short();
        let since = match self.request {
            Some(number) => {
                format!("since request #{number} was asked, and the approvals were for {was}")
            }
            None => format!("while its integration actions prepared {was}"),
        };
        format!(
            "Not deployed: `{git_ref}` moved from {was} to {} {since}. Ask again to deploy the new commit.",
            now.short()
        )
    }
}

/// The task of a deployment that shuts a transient environment down
/// (Deliverybot's removal deployments).
pub const REMOVE_TASK: &str = "remove";

/// A request claimed less than this long ago is taken as still in flight.
const IN_FLIGHT: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);

tokio::task_local! {
    /// Set by the inbox while it handles a delivery that an earlier
    /// attempt claimed and let lapse: that attempt's worker (or its whole
    /// replica) died, so a request claim it left is stale however recent.
    /// Without this, a command whose handler was killed after claiming it
    /// would be answered "already on it" by the next attempt, and lost.
    pub static EARLIER_ATTEMPT_LAPSED: bool;
}

/// Whether this request is being handled again after an attempt died.
fn earlier_attempt_lapsed() -> bool {
    EARLIER_ATTEMPT_LAPSED
        .try_with(|lapsed| *lapsed)
        .unwrap_or(false)
}

impl Hoist {
    pub(super) async fn deploy(
        &self,
        inbound: &Inbound,
        request: &DeployRequest,
        dry_run: bool,
    ) -> Outcome {
        match self.try_deploy(inbound, request, dry_run, None).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    /// A request whose approvals came in: deployed as its requester
    /// asked, if the ref still names the commit approved.
    pub(super) async fn deploy_granted(
        &self,
        inbound: &Inbound,
        request: &DeployRequest,
        granted: &Granted,
    ) -> Outcome {
        match self
            .try_deploy(inbound, request, false, Some(granted))
            .await
        {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    async fn try_deploy(
        &self,
        inbound: &Inbound,
        request: &DeployRequest,
        dry_run: bool,
        granted: Option<&Granted>,
    ) -> Result<Outcome, Outcome> {
        if !dry_run
            && let Some(earlier) = self
                .store
                .deployment_by_request(&inbound.request_key)
                .await
                .map_err(internal)?
        {
            return Ok(Outcome::new(
                "deployed",
                format!(
                    "Already on it: deployment #{} of {} {} to {} was created for this request.",
                    earlier.key.id, earlier.app, earlier.git_ref, earlier.environment
                ),
            ));
        }
        let (app_name, typed_ref) = self.app_and_ref(inbound, request)?;
        let rules = self.app_rules(&app_name).await?;
        let environment = rules.environment_name(self, request.environment.as_deref());
        let target = rules.target(&environment)?;
        let repo = rules.app.repo.clone();

        let git_ref = match typed_ref {
            Some(git_ref) => git_ref,
            None => self
                .forge
                .default_branch(&repo)
                .await
                .map_err(|e| forge_refusal(&e))?,
        };
        let sha = self
            .forge
            .resolve_ref(&repo, &git_ref)
            .await
            .map_err(|e| match e {
                ForgeError::NotFound { .. } => Outcome::new(
                    "invalid",
                    format!("I can't find `{git_ref}` in {repo}: no branch, tag or commit has that name."),
                ),
                other => forge_refusal(&other),
            })?;
        if let Some(granted) = granted.filter(|granted| granted.sha != sha) {
            return Err(Outcome::new("refused", granted.moved(&git_ref, &sha)));
        }
        let actor = &inbound.origin.actor;
        let vars = TemplateVars {
            git_ref: git_ref.clone(),
            sha: sha.to_string(),
            short_sha: sha.short().to_owned(),
            target: target.name.clone(),
            owner: repo.owner().to_owned(),
            repo: repo.name().to_owned(),
            pr: inbound.implied.pull_request,
            actor: actor.login.clone().unwrap_or_else(|| actor.name.clone()),
        };
        let rendered = target.render(&vars).map_err(|e| {
            Outcome::new("refused", format!("The deploy rules can't be applied: {e}"))
        })?;
        let mut deployment = new_deployment(inbound, request, &app_name, &git_ref, &rendered);
        let what = format!(
            "{app_name} {git_ref} ({}) to {}",
            sha.short(),
            deployment.environment
        );

        let asked = Asked {
            app: &app_name,
            origin: &inbound.origin,
            rules: &rules.rules,
            target,
            repo: &repo,
            sha: &sha,
            git_ref: &git_ref,
            actor: &inbound.origin.actor,
            force: request.force,
            automatic: inbound.automatic,
            waits: inbound.waits,
            production: rendered.production_environment,
            removal: deployment.task == REMOVE_TASK,
            approved_by: granted.map_or(&[], |granted| granted.approvers.as_slice()),
        };
        let policy = match self.judge(&asked, &what, dry_run).await {
            Err(JudgeStop::Refused(outcome)) => return Err(outcome),
            Err(JudgeStop::NeedsApproval { audit }) if granted.is_none() => {
                return self
                    .ask_for_approvals(inbound, request, &asked, &what)
                    .await
                    .map(|outcome| outcome.judged(&audit));
            }
            Err(JudgeStop::NeedsApproval { audit }) => {
                return Err(Outcome::new(
                    "refused",
                    format!("Not deployed: {what} still needs approvals (deploy.yml asks for more than it got)."),
                )
                .judged(&audit));
            }
            Ok(judged) => judged,
        };
        let secrets = granted.and_then(|granted| granted.secrets.as_deref());
        if !dry_run && !asked.removal && !target.actions.is_empty() && secrets.is_none() {
            return self
                .hold_for_actions(inbound, request, &asked, &what, &deployment.environment)
                .await
                .map(|outcome| outcome.judged(&policy.audit));
        }
        // `!` sends no required checks only where the rules let it skip them.
        let skip_checks = asked.removal
            || (request.force && target.force_skips_checks(rendered.production_environment));
        if skip_checks {
            deployment.required_contexts = Some(Vec::new());
        }
        if dry_run {
            return Ok(dry_run_report(&policy.checks, &deployment, &what)
                .judged(&policy.audit)
                .warned(&policy.warnings));
        }

        match self
            .store
            .claim_request(&inbound.request_key, Timestamp::now())
            .await
            .map_err(internal)?
        {
            None => {}
            // The same request, being handled right now (a retry that
            // overtook the first attempt).
            Some(claimed)
                if !earlier_attempt_lapsed()
                    && Timestamp::now().duration_since(claimed) < IN_FLIGHT =>
            {
                return Ok(Outcome::new(
                    "deployed",
                    "Already on it: this request is being handled; I'll post its progress here.",
                ));
            }
            // Claimed long ago (or by an attempt that died) and never
            // recorded: it may have created the deployment. The forge
            // looks first.
            Some(_) => deployment.retried = true,
        }
        match (secrets.filter(|secrets| !secrets.is_empty()), &self.runner) {
            (Some(secrets), Some(_)) => {
                self.keep_run_secrets(inbound, &repo, &sha, &deployment.environment, secrets)
                    .await?;
            }
            // Only hoist's runner can be handed them.
            (Some(_), None) => tracing::warn!(
                app = %app_name,
                "integration actions handed over secrets, but hoist's runner is off: they are not passed on"
            ),
            (None, _) => {}
        }
        let deployment_lock = match target.deployment_lock {
            true => self.take_deployment_lock(&asked).await?,
            false => None,
        };
        let created = self.forge.create_deployment(&repo, &deployment).await;
        if let Some(lock) = deployment_lock {
            // Held for the deployment made, released when it ends; none
            // made, released now: never left behind.
            self.settle_deployment_lock(lock, created.as_ref().ok(), &repo)
                .await;
        }
        if created.is_err() && secrets.is_some_and(|secrets| !secrets.is_empty()) {
            self.forget_run_secrets(&inbound.request_key).await;
        }
        // GitHub's refusal names the checks; their pages are a look away.
        let created = match created {
            Err(ForgeError::ChecksFailed { checks }) => Err(ForgeError::ChecksFailed {
                checks: self.with_links(&repo, &sha, checks).await,
            }),
            other => other,
        };
        let created = created.map_err(|e| match e {
            // Nobody typed it, so nobody would type it again: it waits.
            ForgeError::ChecksFailed { checks }
                if inbound.waits && checks.iter().all(|c| c.state == CheckState::Pending) =>
            {
                waiting_for(&repo, &sha, &checks, &what)
            }
            other => forge_refusal(&other),
        })?;
        let record = DeploymentRecord {
            key: DeploymentKey {
                forge: self.forge.kind().to_owned(),
                repo: repo.clone(),
                id: created.id,
            },
            app: AppName::new(&app_name).ok_or_else(|| internal("app name"))?,
            environment: created.environment.clone(),
            git_ref: git_ref.clone(),
            sha: created.sha.clone(),
            task: created.task.clone(),
            origin: inbound.origin.clone(),
            request_key: inbound.request_key.clone(),
            created_at: Timestamp::now(),
            decision: Some(policy.audit.clone()),
        };
        self.store
            .record_deployment(&record)
            .await
            .map_err(internal)?;
        self.metrics.deployment_created();
        let forced = if skip_checks && created.task != REMOVE_TASK {
            " Forced: required checks were not enforced."
        } else {
            ""
        };
        let doing = if created.task == REMOVE_TASK {
            format!("Removing {}", created.environment)
        } else {
            format!("Deploying {what}")
        };
        let card = DeploymentCard {
            key: card_key(&record.key),
            app: app_name.clone(),
            git_ref: git_ref.clone(),
            short_sha: created.sha.short().to_owned(),
            environment: created.environment.clone(),
            who: deployment.requested_by.clone(),
            state: "created".into(),
            status: None,
            log_url: None,
            first: true,
        };
        // The dashboard's answer links to the deployment's page, which
        // follows its progress (as does the app's channel, if it has one).
        let progress = match inbound.origin.platform {
            crate::domain::Platform::Dashboard => "",
            _ => " I'll post its progress here.",
        };
        Ok(Outcome {
            card: Some(Box::new(card)),
            ..Outcome::new(
                "deployed",
                format!(
                    "{doing}: deployment #{} created (task {}).{forced}{progress}",
                    created.id, created.task
                ),
            )
        }
        .judged(&policy.audit)
        .warned(&policy.warnings))
    }

    /// The safety rules' verdict ([`policy::evaluate`]) on this deployment,
    /// for the audit log; `Err` is the refusal to answer with, or the
    /// approvals it needs. A deployment that waits ([`Inbound::waits`],
    /// an auto-deploy) stopped by a lock or a freeze window waits, and
    /// one stopped by pending checks waits for them; any other is refused.
    async fn judge(
        &self,
        asked: &Asked<'_>,
        what: &str,
        dry_run: bool,
    ) -> Result<Judged, JudgeStop> {
        // GitHub failing is said as GitHub failing, not as hoist's fault.
        let (decision, checks) = self.decide_with_checks(asked).await.map_err(|error| {
            JudgeStop::Refused(match error.downcast_ref::<ForgeError>() {
                Some(forge) => forge_refusal(forge),
                None => internal(error),
            })
        })?;
        let audit = decision.audit_text();
        let refused = JudgeStop::Refused;
        // Nobody typed it, so nobody would type it again: an auto-deploy
        // whose checks are only pending waits for them.
        let blocking = policy::blocking_checks(&checks, asked.target.required_contexts.as_deref());
        let waits_for_checks =
            asked.waits && !dry_run && blocking.iter().all(|c| c.state == CheckState::Pending);
        match decision {
            Decision::Allowed { reasons } => Ok(Judged {
                audit,
                warnings: reasons
                    .iter()
                    .filter_map(|reason| reason.strip_prefix("warning: "))
                    .map(str::to_owned)
                    .collect(),
                checks,
            }),
            Decision::Denied {
                rule: Rule::Approval,
                reason,
            } if dry_run => Ok(Judged {
                audit,
                warnings: vec![format!("it would wait for approvals: {reason}")],
                checks,
            }),
            Decision::Denied {
                rule: Rule::Approval,
                ..
            } => Err(JudgeStop::NeedsApproval { audit }),
            // The dry run's own report names the checks and their state.
            Decision::Denied {
                rule: Rule::Checks, ..
            } if dry_run => Ok(Judged {
                audit,
                warnings: Vec::new(),
                checks,
            }),
            Decision::Denied {
                rule: Rule::Checks, ..
            } if waits_for_checks => Err(refused(
                waiting_for(asked.repo, asked.sha, &blocking, what).judged(&audit),
            )),
            Decision::Denied { rule, reason }
                if asked.waits && !dry_run && matches!(rule, Rule::Lock | Rule::Freeze) =>
            {
                Err(refused(
                    Outcome {
                        pending: Some(Box::new(PendingChecks {
                            repo: asked.repo.clone(),
                            sha: asked.sha.clone(),
                            checks: Vec::new(),
                            blocked_by: Some(rule),
                        })),
                        ..Outcome::new(
                            "waiting",
                            format!(
                                "Waiting to deploy {what}: {reason} It deploys once that ends."
                            ),
                        )
                    }
                    .judged(&audit),
                ))
            }
            Decision::Denied { reason, .. } => {
                let verb = if dry_run {
                    "Would not deploy"
                } else {
                    "Not deployed"
                };
                Err(refused(
                    Outcome::new("refused", format!("{verb}: {reason}")).judged(&audit),
                ))
            }
        }
    }

    /// A target with `deployment_lock`: the environment's lock for this
    /// deployment, unless the requester holds a lock there already.
    /// Another's (taken since the rules were judged) refuses it.
    async fn take_deployment_lock(&self, asked: &Asked<'_>) -> Result<Option<Lock>, Outcome> {
        let now = Timestamp::now();
        let scope = LockScope::Environment {
            app: asked.app.to_owned(),
            environment: asked.target.name.to_ascii_lowercase(),
        };
        let held = self.store.locks(now).await.map_err(internal)?;
        if held
            .iter()
            .any(|lock| lock.scope == scope && lock.is_held_by(asked.actor))
        {
            return Ok(None);
        }
        let backstop = SignedDuration::from_secs(
            i64::try_from(self.config.watch.max_age_secs).unwrap_or(i64::MAX),
        );
        let lock = Lock {
            scope,
            kind: LockKind::Deployment,
            holder: asked.actor.clone(),
            reason: Some("deploying".into()),
            origin: asked.origin.clone(),
            since: now,
            // Released when the deployment ends; this is the backstop for
            // one whose end hoist never learns.
            until: now.checked_add(backstop).ok(),
            deployment: None,
        };
        match self.store.take_lock(&lock, now).await.map_err(internal)? {
            TakeLock::Taken | TakeLock::Renewed => Ok(Some(lock)),
            TakeLock::Held(other) => Err(Outcome::new(
                "refused",
                format!("Not deployed: {} is {}.", other.scope, other.describe(now)),
            )),
        }
    }

    /// After the create: the lock names the deployment, or goes.
    async fn settle_deployment_lock(
        &self,
        lock: Lock,
        created: Option<&crate::forge::Deployment>,
        repo: &RepoName,
    ) {
        let now = Timestamp::now();
        let settled = match created {
            Some(created) => {
                let named = Lock {
                    deployment: Some(card_key(&DeploymentKey {
                        forge: self.forge.kind().to_owned(),
                        repo: repo.clone(),
                        id: created.id,
                    })),
                    ..lock
                };
                self.store.take_lock(&named, now).await.map(drop)
            }
            None => self.store.release_lock(&lock.scope, now).await.map(drop),
        };
        if let Err(error) = settled {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot settle a deployment lock; it ends by itself"
            );
        }
    }

    /// The person's permission on the repository, asked of GitHub only
    /// where the target needs one and they have a linked login.
    async fn permission(
        &self,
        asked: &Asked<'_>,
    ) -> anyhow::Result<Option<crate::domain::Permission>> {
        let (Some(_), Some(github), Some(login), false) = (
            asked.target.min_permission,
            &self.github,
            asked.actor.login.as_deref(),
            asked.automatic,
        ) else {
            return Ok(None);
        };
        Ok(Some(github.permission(asked.repo, login).await?))
    }

    /// `checks` with the link of each the forge reports on `sha` (best
    /// effort: without an answer, the names alone).
    async fn with_links(&self, repo: &RepoName, sha: &Sha, mut checks: Vec<Check>) -> Vec<Check> {
        if checks.iter().all(|check| check.url.is_some()) {
            return checks;
        }
        if let Ok(reported) = self.forge.commit_checks(repo, sha).await {
            for check in checks.iter_mut().filter(|check| check.url.is_none()) {
                check.url = reported
                    .iter()
                    .find(|other| other.name == check.name)
                    .and_then(|other| other.url.clone());
            }
        }
        checks
    }

    /// [`policy::evaluate`] with the facts from the store and the forge,
    /// now.
    pub(super) async fn decide(&self, asked: &Asked<'_>) -> anyhow::Result<Decision> {
        self.decide_with_checks(asked)
            .await
            .map(|(decision, _)| decision)
    }

    /// [`Hoist::decide`], and the commit's checks it read.
    async fn decide_with_checks(
        &self,
        asked: &Asked<'_>,
    ) -> anyhow::Result<(Decision, Vec<Check>)> {
        let now = Timestamp::now();
        // A removal needs no checks: nothing is put live.
        let checks = match asked.removal {
            true => None,
            false => Some(self.forge.commit_checks(asked.repo, asked.sha).await?),
        };
        let locks = self.store.locks(now).await?;
        let proven_in = self.proven_in(asked).await?;
        let permission = self.permission(asked).await?;
        // The default branch, read once, for the rules that compare with it.
        let target = asked.target;
        let outdated_matters = target.outdated != policy::Outdated::Allow;
        let default_branch = match outdated_matters || target.default_branch_rollback {
            true => Some(self.forge.default_branch(asked.repo).await?),
            false => None,
        };
        let default_branch_tip = match (&default_branch, target.default_branch_rollback) {
            (Some(branch), true) => self.forge.resolve_ref(asked.repo, branch).await? == *asked.sha,
            _ => false,
        };
        let behind = match (&default_branch, outdated_matters) {
            (Some(branch), true) => Some(policy::Behind {
                git_ref: asked.git_ref,
                default_branch: branch,
                commits: self.forge.behind_by(asked.repo, branch, asked.sha).await?,
            }),
            _ => None,
        };
        let environment = asked.target.name.to_ascii_lowercase();
        let request = policy::Request {
            app: asked.app,
            environment: &environment,
            force: asked.force,
            automatic: asked.automatic,
            production: asked.production,
            removal: asked.removal,
        };
        let teams = match asked.automatic {
            true => Vec::new(),
            false => self.teams_of(asked.actor, asked.target.teams()).await?,
        };
        let facts = policy::Facts {
            locks: &locks,
            proven_in: &proven_in,
            behind,
            default_branch_tip,
            permission,
            teams: &teams,
            checks: checks.as_deref(),
            approved_by: asked.approved_by,
        };
        let decision = policy::evaluate(&request, asked.actor, asked.target, &facts, now);
        Ok((decision, checks.unwrap_or_default()))
    }

    /// Those of `teams` (`org/slug`) the person is a member of, asked of
    /// GitHub for their linked login; none without one, or off GitHub.
    pub(super) async fn teams_of<'t>(
        &self,
        actor: &crate::domain::Actor,
        teams: impl IntoIterator<Item = &'t str>,
    ) -> anyhow::Result<Vec<String>> {
        let (Some(github), Some(login)) = (&self.github, actor.login.as_deref()) else {
            return Ok(Vec::new());
        };
        let mut member_of = Vec::new();
        for team in teams {
            if github.team_member(team, login).await? {
                member_of.push(team.to_owned());
            }
        }
        Ok(member_of)
    }

    /// The targets of `after` where the commit has deployed successfully
    /// (its deployment there is `success`, or `inactive` since, which
    /// GitHub gives only to one that succeeded).
    async fn proven_in(&self, asked: &Asked<'_>) -> anyhow::Result<Vec<String>> {
        let mut proven = Vec::new();
        for before in &asked.target.after {
            let environment = asked
                .rules
                .target(before)
                .and_then(|target| target.environment.as_literal())
                .unwrap_or(before);
            let filter = DeploymentFilter {
                environment: Some(environment.to_owned()),
                sha: Some(asked.sha.clone()),
                limit: 10,
                ..DeploymentFilter::default()
            };
            let deployments = self.forge.list_deployments(asked.repo, &filter).await?;
            if deployments.iter().any(|deployment| {
                matches!(
                    deployment.state,
                    Some(DeploymentState::Success | DeploymentState::Inactive)
                )
            }) {
                proven.push(before.clone());
            }
        }
        Ok(proven)
    }

    /// The app and ref a request names. In a conversation that implies an
    /// app (a pull request), `.deploy feature/x to staging` names a ref:
    /// a first word that is not an app is read as the ref. With no ref
    /// named, the conversation's own app deploys the ref it implies (the
    /// pull request's head); any other app, its default branch.
    fn app_and_ref(
        &self,
        inbound: &Inbound,
        request: &DeployRequest,
    ) -> Result<(String, Option<String>), Outcome> {
        let implied = &inbound.implied;
        let own_ref = |app: &str, typed: &Option<String>| match typed {
            Some(git_ref) => Some(git_ref.clone()),
            None if implied.app.as_deref() == Some(app) => implied.git_ref.clone(),
            None => None,
        };
        match (&request.app, &implied.app) {
            (Some(app), Some(implied)) if self.config.app(app).is_none() => {
                let git_ref = match &request.git_ref {
                    Some(rest) => format!("{app}/{rest}"),
                    None => app.clone(),
                };
                Ok((implied.clone(), Some(git_ref)))
            }
            (Some(app), _) => Ok((app.clone(), own_ref(app, &request.git_ref))),
            (None, Some(implied)) => Ok((implied.clone(), own_ref(implied, &request.git_ref))),
            (None, None) => Err(Outcome::new(
                "invalid",
                format!(
                    "Which app? Name it: `deploy app[/ref] to env`. Usage: {}",
                    command::usage("deploy").unwrap_or("help deploy")
                ),
            )),
        }
    }
}

/// What `noop` says: the deployment it would make, and its checks.
fn dry_run_report(checks: &[Check], deployment: &NewDeployment, what: &str) -> Outcome {
    let blocking = policy::blocking_checks(checks, deployment.required_contexts.as_deref());
    let verdict = if blocking.is_empty() {
        "it would be accepted".to_owned()
    } else {
        format!(
            "it would be refused until these pass: {}",
            policy::describe_checks(&blocking)
        )
    };
    let seen = if checks.is_empty() {
        "none reported".to_owned()
    } else {
        policy::describe_checks(checks)
    };
    Outcome::new(
        "noop",
        format!(
            "Dry run: would deploy {what} (task {}). Checks: {seen}; {verdict}. Nothing was created.",
            deployment.task
        ),
    )
}

/// The deployment request: the rendered target plus what the person typed,
/// with the origin in the payload so statuses can find their way back.
fn new_deployment(
    inbound: &Inbound,
    request: &DeployRequest,
    app: &str,
    git_ref: &str,
    rendered: &RenderedTarget,
) -> NewDeployment {
    let mut payload = match &rendered.payload {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    if !request.hosts.is_empty() {
        payload.insert("hosts".into(), json!(request.hosts));
    }
    payload.extend(inbound.payload.clone());
    if !request.params.is_empty() {
        let params: Map<String, Value> = request
            .params
            .iter()
            .map(|(key, value)| (key.clone(), Value::String(value.clone())))
            .collect();
        payload.insert("params".into(), Value::Object(params));
    }
    payload.insert(
        "hoist".into(),
        json!({
            "app": app,
            "force": request.force,
            "origin": inbound.origin,
            "request_key": inbound.request_key,
        }),
    );
    let actor = &inbound.origin.actor;
    let requested_by = actor.login.clone().unwrap_or_else(|| actor.name.clone());
    // A typed task (`deploy:migrations`) wins over the target's default.
    let task = if request.task.is_empty() || request.task == "deploy" {
        rendered.task.clone()
    } else {
        request.task.clone()
    };
    NewDeployment {
        git_ref: git_ref.to_owned(),
        task,
        environment: rendered.environment.clone(),
        description: Some(
            rendered
                .description
                .clone()
                .unwrap_or_else(|| format!("Deploy request from hoist by {requested_by}")),
        ),
        auto_merge: rendered.auto_merge && !request.force,
        // `[]` (skip them) is set by the caller where the rules allow.
        required_contexts: rendered.required_contexts.clone(),
        payload: Value::Object(payload),
        transient_environment: rendered.transient_environment,
        production_environment: rendered.production_environment,
        request_key: inbound.request_key.clone(),
        retried: false,
        requested_by,
    }
}

/// An automatic deployment that met pending checks: it deploys when they
/// pass.
fn waiting_for(repo: &RepoName, sha: &Sha, checks: &[Check], what: &str) -> Outcome {
    Outcome {
        pending: Some(Box::new(PendingChecks {
            repo: repo.clone(),
            sha: sha.clone(),
            checks: checks.iter().map(|check| check.name.clone()).collect(),
            blocked_by: None,
        })),
        ..Outcome::new(
            "waiting",
            format!(
                "Waiting for {} before deploying {what}: it deploys when they pass.",
                policy::describe_checks(checks)
            ),
        )
    }
}

fn forge_refusal(error: &ForgeError) -> Outcome {
    let kind = match error {
        ForgeError::Unavailable { .. } | ForgeError::Unauthorized { .. } => "error",
        _ => "refused",
    };
    Outcome::new(kind, format!("Nothing was deployed: {error}."))
}

/// An error of hoist's own (the store): logged in full, answered briefly.
pub(super) fn internal(error: impl std::fmt::Display) -> Outcome {
    tracing::error!(%error, "internal error while handling a deploy");
    Outcome::new(
        "error",
        "Something went wrong on my side and nothing was deployed; the operator can find the details in hoist's log.",
    )
}
