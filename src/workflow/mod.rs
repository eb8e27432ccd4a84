//! The deployment workflow: a parsed command in, a decision and replies out.
//!
//! `handle` is the one entry point every adapter calls with an [`Inbound`].
//! It parses the text, resolves the app and environment against hoist.toml
//! and the repository's deploy.yml, asks the forge, records what happened
//! in the audit log, and queues every reply in the durable outbox.
//!
//! **Architecture invariant:** no platform types here; replies are plain
//! text addressed to an [`Origin`](crate::domain::Origin).

mod approvals;
mod auto;
mod cancel;
mod deploy;
mod hook;
mod locks;
mod provision;
mod queries;
mod rollback;
mod target;

use jiff::Timestamp;

use crate::app::Hoist;
use crate::chat::{DeploymentCard, Inbound, Reaction, Reply};
use crate::command::{self, Command};
use crate::domain::{Origin, RepoName, Sha};
use crate::policy::{Rule, Verdict};
use crate::store::AuditEntry;

pub(crate) use deploy::EARLIER_ATTEMPT_LAPSED;
pub use hook::{HookDeployment, HookRequest};

/// What a command came to, for the audit log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `deployed`, `noop`, `answered`, `invalid`, `refused`, `error`,
    /// `waiting` (an automatic deployment whose checks are pending),
    /// `queued` (waiting for approvals), `approved`, `rejected`,
    /// `expired`, `provisioning` (held for integration actions),
    /// `provision_failed`, `provision_cancelled`, `locked`, `unlocked`, ...
    pub kind: &'static str,
    /// The reply sent (or its gist): the audit log's detail.
    pub detail: String,
    /// The deployment created, for platforms that show one message per
    /// deployment.
    pub card: Option<Box<DeploymentCard>>,
    /// What a `waiting` deployment waits for.
    pub pending: Option<Box<PendingChecks>>,
    /// What `policy::evaluate` decided, for the audit log (a deployment's
    /// request; `None` for commands it does not judge).
    pub policy: Option<String>,
    /// The approval request a `queued` deployment waits in, for
    /// platforms that show buttons to approve it.
    pub approval: Option<i64>,
}

/// What an automatic deployment waits for: checks pending on its
/// commit, or a rule (a lock, a freeze window) that stops it for now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChecks {
    pub repo: RepoName,
    pub sha: Sha,
    pub checks: Vec<String>,
    pub blocked_by: Option<Rule>,
}

impl Outcome {
    pub fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            card: None,
            pending: None,
            policy: None,
            approval: None,
        }
    }
}

impl Outcome {
    /// With the safety rules' verdict for the audit log.
    fn judged(self, policy: &str) -> Self {
        Self {
            policy: Some(policy.to_owned()),
            ..self
        }
    }

    /// With the rules' warnings after the answer.
    fn warned(self, warnings: &[String]) -> Self {
        if warnings.is_empty() {
            return self;
        }
        let detail = format!("{} Warning: {}.", self.detail, warnings.join("; "));
        Self { detail, ..self }
    }
}

impl Hoist {
    /// Handles one command from any adapter. Everything the person should
    /// see is queued in the outbox before this returns.
    pub async fn handle(&self, inbound: Inbound) -> anyhow::Result<Outcome> {
        match command::parse(&inbound.text) {
            Err(error) => {
                let outcome = Outcome::new("invalid", error.to_string());
                self.conclude(&inbound, outcome).await
            }
            Ok(command) => self.handle_command(inbound, command).await,
        }
    }

    /// Handles a command already parsed (by an adapter with a grammar of
    /// its own, or built from an event such as a push). `inbound.text` is
    /// what the audit log shows.
    pub async fn handle_command(
        &self,
        inbound: Inbound,
        command: Command,
    ) -> anyhow::Result<Outcome> {
        let _answering = self.answering.read().await;
        let outcome = self.run_command(&inbound, command).await;
        self.conclude(&inbound, outcome).await
    }

    /// Writes what a request came to in the audit log and queues its
    /// answer: the end of every request, including those an adapter
    /// refuses before the workflow sees them (a commenter without
    /// permission).
    pub async fn conclude(&self, inbound: &Inbound, outcome: Outcome) -> anyhow::Result<Outcome> {
        self.metrics.command(outcome.kind);
        self.store
            .append_audit(&AuditEntry {
                at: Timestamp::now(),
                platform: inbound.origin.platform,
                actor: inbound.origin.actor.name.clone(),
                command: inbound.text.chars().take(500).collect(),
                outcome: outcome.kind.to_owned(),
                detail: match &outcome.policy {
                    Some(policy) => format!("{} [{policy}]", outcome.detail),
                    None => outcome.detail.clone(),
                },
            })
            .await?;
        // Only a deployment, a lock and approvals concern the whole
        // conversation, unless an event started it and there is no asker
        // to answer alone.
        let public = matches!(
            outcome.kind,
            "deployed"
                | "locked"
                | "unlocked"
                | "queued"
                | "approved"
                | "rejected"
                | "expired"
                | "provisioning"
                | "provision_failed"
                | "provision_cancelled"
        );
        let only_asker = !public && !inbound.automatic;
        // Where the command is a message of its own (a PR comment), a
        // refusal also marks it.
        let refused = matches!(outcome.kind, "invalid" | "refused" | "error");
        let reply = Reply {
            card: outcome.card.as_deref().cloned(),
            reaction: (refused && inbound.origin.message.is_some()).then_some(Reaction::Confused),
            answer_handle: inbound.answer_handle.clone(),
            approval: outcome.approval,
            ..Reply::text(inbound.origin.clone(), outcome.detail.clone(), only_asker)
        };
        self.reply(&reply, Some(&format!("answer:{}", inbound.request_key)))
            .await?;
        Ok(outcome)
    }

    async fn run_command(&self, inbound: &Inbound, command: Command) -> Outcome {
        match command {
            Command::Help { topic } => Outcome::new("answered", command::help(topic.as_deref())),
            Command::WhoAmI => Outcome::new("answered", who_is(&inbound.origin)),
            Command::WhereCanIDeploy { app } => self.where_can_i_deploy(&app).await,
            Command::Deploys { app, environment } => {
                self.recent_deployments(&app, environment.as_deref()).await
            }
            Command::Deploy(request) => self.deploy(inbound, &request, false).await,
            Command::Noop(request) => self.deploy(inbound, &request, true).await,
            Command::Cancel { app, environment } => {
                self.cancel_command(inbound, app.as_deref(), environment.as_deref())
                    .await
            }
            Command::Lock {
                environment,
                app,
                global,
                duration_secs,
                reason,
            } => {
                let request = locks::LockRequest {
                    environment: environment.as_deref(),
                    app: app.as_deref(),
                    global,
                    duration_secs,
                    reason: reason.as_deref(),
                };
                self.lock_command(inbound, &request).await
            }
            Command::Unlock {
                environment,
                app,
                global,
            } => {
                self.unlock_command(inbound, environment.as_deref(), app.as_deref(), global)
                    .await
            }
            Command::Locks { app } => self.list_locks(app.as_deref()).await,
            Command::Approve { request } => {
                let vote = approvals::VoteRequest {
                    number: request,
                    verdict: Verdict::Approve,
                    reason: None,
                };
                self.vote_command(inbound, &vote).await
            }
            Command::Reject { request, reason } => {
                let vote = approvals::VoteRequest {
                    number: request,
                    verdict: Verdict::Reject,
                    reason: reason.as_deref(),
                };
                self.vote_command(inbound, &vote).await
            }
            Command::Rollback { app, environment } => {
                self.rollback(inbound, app.as_deref(), environment.as_deref())
                    .await
            }
        }
    }
}

/// How hoist sees the typer, and how an operator links them when it
/// knows no GitHub login for them.
///
/// There is no command to link oneself: a login anyone may claim would
/// let anyone deploy as anyone once rules check who may deploy where.
/// The operator's `[users]` table is the link; a verified one (GitHub
/// login) comes with the dashboard.
fn who_is(origin: &Origin) -> String {
    let actor = &origin.actor;
    let platform = origin.platform.display_name();
    match &actor.login {
        Some(login) => format!(
            "You are {} ({}) on {platform}; hoist knows you as GitHub user `{login}`, and deployments name you so.",
            actor.name, actor.id
        ),
        None => format!(
            "You are {} ({}) on {platform}; hoist knows no GitHub login for you, so deployments name you `{}`. \
             An operator links you by adding `{} = \"your-github-login\"` under `[users]` in hoist.toml.",
            actor.name, actor.id, actor.name, actor.id
        ),
    }
}
