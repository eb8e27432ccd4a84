//! Rows both back ends read, and their conversion to the store's records:
//! the schemas are twins with every integer BIGINT, so one
//! `sqlx::FromRow` type reads a row of either.

use anyhow::Context;

use super::sql::{from_millis, parse_name, parse_repo};
use crate::domain::{AppName, DeploymentId, DeploymentState, Sha};
use crate::forge::{Check, Deployment, NewStatus};
use crate::store::{
    ActionState, ApprovalRecord, ApprovalState, AuditEntry, DeadReply, DeployHook, DeploymentKey,
    DeploymentRecord, HeldAction, HoldRecord, HoldState, InboxItem, LogLine, OutboxItem, RunJob,
    Vote, WaitingItem,
};

#[derive(sqlx::FromRow)]
pub(super) struct DeploymentRow {
    forge: String,
    repo: String,
    deployment_id: i64,
    app: String,
    environment: String,
    git_ref: String,
    sha: String,
    task: String,
    origin: String,
    request_key: String,
    created_at: i64,
    decision: Option<String>,
}

impl DeploymentRow {
    pub(super) fn into_record(self) -> anyhow::Result<DeploymentRecord> {
        Ok(DeploymentRecord {
            key: DeploymentKey {
                forge: self.forge,
                repo: parse_repo(&self.repo)?,
                id: DeploymentId(self.deployment_id),
            },
            app: parse_app(&self.app)?,
            environment: self.environment,
            git_ref: self.git_ref,
            sha: Sha::new(&self.sha)
                .with_context(|| format!("corrupt sha `{}` in the store", self.sha))?,
            task: self.task,
            origin: serde_json::from_str(&self.origin).context("corrupt origin in the store")?,
            request_key: self.request_key,
            created_at: from_millis(self.created_at)?,
            decision: self.decision,
        })
    }
}

/// The columns of [`DeploymentRow`], in the order an INSERT binds them
/// (then `actor`, which only filters).
pub(super) const DEPLOYMENT_COLUMNS: &str = "forge, repo, deployment_id, app, environment, \
     git_ref, sha, task, origin, request_key, created_at, decision";

/// A deployment with its latest status ([`super::History`]).
#[derive(sqlx::FromRow)]
pub(super) struct SummaryRow {
    #[sqlx(flatten)]
    deployment: DeploymentRow,
    latest_state: Option<String>,
    latest_at: Option<i64>,
}

impl SummaryRow {
    pub(super) fn into_summary(self) -> anyhow::Result<super::DeploymentSummary> {
        Ok(super::DeploymentSummary {
            record: self.deployment.into_record()?,
            state: self.latest_state.as_deref().map(parse_state).transpose()?,
            state_at: self.latest_at.map(from_millis).transpose()?,
        })
    }
}

/// What a deployment came to ([`super::History::deployment_outcomes`]).
#[derive(sqlx::FromRow)]
pub(super) struct OutcomeRow {
    app: String,
    environment: String,
    created_at: i64,
    sha: String,
    task: String,
    latest_state: Option<String>,
    latest_at: Option<i64>,
}

impl OutcomeRow {
    pub(super) fn into_outcome(self) -> anyhow::Result<super::DeploymentOutcome> {
        Ok(super::DeploymentOutcome {
            app: parse_app(&self.app)?,
            environment: self.environment,
            created_at: from_millis(self.created_at)?,
            sha: self.sha,
            task: self.task,
            state: self.latest_state.as_deref().map(parse_state).transpose()?,
            state_at: self.latest_at.map(from_millis).transpose()?,
        })
    }
}

/// An app's name as the store keeps it.
pub(super) fn parse_app(app: &str) -> anyhow::Result<AppName> {
    AppName::new(app).with_context(|| format!("corrupt app `{app}` in the store"))
}

/// A status's state as the store keeps it.
fn parse_state(state: &str) -> anyhow::Result<DeploymentState> {
    DeploymentState::parse(state).with_context(|| format!("corrupt state `{state}` in the store"))
}

/// A deployment whose statuses the watch looks for, and whether it has
/// any yet.
#[derive(sqlx::FromRow)]
pub(super) struct UnfinishedRow {
    #[sqlx(flatten)]
    deployment: DeploymentRow,
    statuses: i64,
}

impl UnfinishedRow {
    pub(super) fn into_pair(self) -> anyhow::Result<(DeploymentRecord, bool)> {
        Ok((self.deployment.into_record()?, self.statuses > 0))
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct LogRow {
    at: i64,
    stream: String,
    text: String,
}

impl LogRow {
    pub(super) fn into_line(self) -> anyhow::Result<LogLine> {
        Ok(LogLine {
            at: from_millis(self.at)?,
            stream: parse_name(&self.stream, "log stream")?,
            text: self.text,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    at: i64,
    platform: String,
    actor: String,
    command: String,
    outcome: String,
    detail: String,
}

impl AuditRow {
    pub(super) fn into_entry(self) -> anyhow::Result<AuditEntry> {
        Ok(AuditEntry {
            at: from_millis(self.at)?,
            platform: parse_name(&self.platform, "platform")?,
            actor: self.actor,
            command: self.command,
            outcome: self.outcome,
            detail: self.detail,
        })
    }
}

/// `text` with LIKE's wildcards taken literally (escaped with `\`), and
/// wrapped in `%` to match anywhere.
pub(super) fn like_anywhere(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

#[derive(sqlx::FromRow)]
pub(super) struct HookRow {
    id: String,
    name: String,
    app: String,
    environment: String,
    secret_sha256: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl HookRow {
    pub(super) fn into_hook(self) -> anyhow::Result<DeployHook> {
        Ok(DeployHook {
            id: self.id,
            name: self.name,
            app: self.app,
            environment: self.environment,
            secret_sha256: self.secret_sha256,
            created_at: from_millis(self.created_at)?,
            last_used_at: self.last_used_at.map(from_millis).transpose()?,
        })
    }
}

/// The columns of [`HookRow`], and the table.
pub(super) const HOOK_COLUMNS: &str =
    "id, name, app, environment, secret_sha256, created_at, last_used_at FROM deploy_hooks";

#[derive(sqlx::FromRow)]
pub(super) struct WaitingRow {
    id: i64,
    body: String,
    created_at: i64,
}

impl WaitingRow {
    pub(super) fn into_item(self) -> anyhow::Result<WaitingItem> {
        Ok(WaitingItem {
            id: self.id,
            body: serde_json::from_str(&self.body)
                .context("corrupt waiting deployment in the store")?,
            created_at: from_millis(self.created_at)?,
        })
    }
}

/// Every column of a [`Deployment`], with its latest state and when that
/// was posted.
pub(super) const SELECT_LOCAL_DEPLOYMENT: &str = "SELECT d.id, d.git_ref, d.sha, d.task, d.environment, \
     d.description, d.creator, d.created_at, d.payload, d.transient_environment, \
     d.production_environment, \
     (SELECT s.state FROM local_statuses s WHERE s.deployment_id = d.id \
      ORDER BY s.id DESC LIMIT 1) AS state, \
     (SELECT s.at FROM local_statuses s WHERE s.deployment_id = d.id \
      ORDER BY s.id DESC LIMIT 1) AS status_at \
     FROM local_deployments d";

#[derive(sqlx::FromRow)]
pub(super) struct LocalDeploymentRow {
    id: i64,
    git_ref: String,
    sha: String,
    task: String,
    environment: String,
    description: Option<String>,
    creator: String,
    created_at: i64,
    payload: String,
    transient_environment: bool,
    production_environment: bool,
    state: Option<String>,
    status_at: Option<i64>,
}

impl LocalDeploymentRow {
    pub(super) fn into_deployment(self) -> anyhow::Result<Deployment> {
        let state = self
            .state
            .map(|s| {
                DeploymentState::parse(&s)
                    .with_context(|| format!("corrupt deployment state `{s}` in the store"))
            })
            .transpose()?;
        Ok(Deployment {
            id: DeploymentId(self.id),
            git_ref: self.git_ref,
            sha: Sha::new(&self.sha)
                .with_context(|| format!("corrupt sha `{}` in the store", self.sha))?,
            task: self.task,
            environment: self.environment,
            description: self.description,
            creator: self.creator,
            created_at: from_millis(self.created_at)?,
            payload: serde_json::from_str(&self.payload)
                .with_context(|| format!("corrupt payload of local deployment {}", self.id))?,
            state,
            status_at: self.status_at.map(from_millis).transpose()?,
            transient_environment: self.transient_environment,
            production_environment: self.production_environment,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CheckRow {
    name: String,
    state: String,
}

impl CheckRow {
    pub(super) fn into_check(self) -> anyhow::Result<Check> {
        Ok(Check {
            state: parse_name(&self.state, "check state")?,
            name: self.name,
            url: None,
        })
    }
}

/// A local deployment's status, with when it was posted.
#[derive(sqlx::FromRow)]
pub(super) struct LocalStatusRow {
    state: String,
    description: Option<String>,
    log_url: Option<String>,
    environment_url: Option<String>,
    at: i64,
}

impl LocalStatusRow {
    pub(super) fn into_status(self) -> anyhow::Result<(NewStatus, jiff::Timestamp)> {
        let state = parse_state(&self.state)?;
        Ok((
            NewStatus {
                state,
                description: self.description,
                log_url: self.log_url,
                environment_url: self.environment_url,
            },
            from_millis(self.at)?,
        ))
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct OutboxRow {
    pub(super) id: i64,
    platform: String,
    conversation: Option<String>,
    body: String,
    attempts: i64,
    created_at: i64,
    last_error: Option<String>,
}

impl OutboxRow {
    pub(super) fn into_item(self) -> anyhow::Result<OutboxItem> {
        Ok(OutboxItem {
            id: self.id,
            platform: parse_name(&self.platform, "platform")?,
            created_at: from_millis(self.created_at)?,
            body: serde_json::from_str(&self.body)
                .with_context(|| format!("corrupt body of reply {}", self.id))?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
        })
    }

    pub(super) fn into_dead(self) -> anyhow::Result<DeadReply> {
        Ok(DeadReply {
            id: self.id,
            platform: parse_name(&self.platform, "platform")?,
            conversation: self.conversation.unwrap_or_default(),
            body: serde_json::from_str(&self.body)
                .with_context(|| format!("corrupt body of reply {}", self.id))?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            created_at: from_millis(self.created_at)?,
            last_error: self.last_error,
        })
    }
}

/// A stored webhook delivery.
#[derive(sqlx::FromRow)]
pub(super) struct InboxRow {
    id: i64,
    source: String,
    event: String,
    body: String,
    attempts: i64,
}

impl InboxRow {
    pub(super) fn into_item(self) -> InboxItem {
        InboxItem {
            id: self.id,
            source: self.source,
            event: self.event,
            body: self.body,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
        }
    }
}

/// The columns [`JobRow`] reads.
pub(super) const JOB_COLUMNS: &str = "id, forge, repo, deployment_id, app, deployment";

/// A job of the runner's queue.
#[derive(sqlx::FromRow)]
pub(super) struct JobRow {
    id: i64,
    forge: String,
    repo: String,
    deployment_id: i64,
    app: String,
    deployment: String,
}

impl JobRow {
    pub(super) fn into_job(self) -> anyhow::Result<RunJob> {
        Ok(RunJob {
            id: self.id,
            key: DeploymentKey {
                forge: self.forge,
                repo: parse_repo(&self.repo)?,
                id: DeploymentId(self.deployment_id),
            },
            app: self.app,
            deployment: serde_json::from_str(&self.deployment)
                .context("corrupt runner job in the store")?,
        })
    }
}

/// The columns of [`ApprovalRow`].
pub(super) const APPROVAL_COLUMNS: &str = "id, state, required, created_at, expires_at, body";

/// An approval request, without its votes (a table of their own).
#[derive(sqlx::FromRow)]
pub(super) struct ApprovalRow {
    pub(super) id: i64,
    state: String,
    required: i64,
    created_at: i64,
    expires_at: i64,
    body: String,
}

impl ApprovalRow {
    pub(super) fn into_record(self, votes: Vec<Vote>) -> anyhow::Result<ApprovalRecord> {
        let state = match self.state.as_str() {
            "waiting" => ApprovalState::Waiting,
            "approved" => ApprovalState::Approved,
            "rejected" => ApprovalState::Rejected,
            "expired" => ApprovalState::Expired,
            other => anyhow::bail!("unknown approval state `{other}` in the store"),
        };
        Ok(ApprovalRecord {
            id: self.id,
            state,
            required: u32::try_from(self.required).context("corrupt approval request")?,
            created_at: from_millis(self.created_at)?,
            expires_at: from_millis(self.expires_at)?,
            body: serde_json::from_str(&self.body).context("corrupt approval request")?,
            votes,
        })
    }
}

/// The columns of [`HoldRow`].
pub(super) const HOLD_COLUMNS: &str = "id, request_key, app, environment, state, created_at, body";

/// A held deployment, without its actions (a table of their own).
#[derive(sqlx::FromRow)]
pub(super) struct HoldRow {
    pub(super) id: i64,
    request_key: String,
    app: String,
    environment: String,
    state: String,
    created_at: i64,
    body: String,
}

impl HoldRow {
    pub(super) fn into_record(self, actions: Vec<HeldAction>) -> anyhow::Result<HoldRecord> {
        Ok(HoldRecord {
            id: self.id,
            state: HoldState::parse(&self.state)
                .with_context(|| format!("unknown hold state `{}`", self.state))?,
            created_at: from_millis(self.created_at)?,
            body: serde_json::from_str(&self.body).context("corrupt held deployment")?,
            request_key: self.request_key,
            app: self.app,
            environment: self.environment,
            actions,
        })
    }
}

/// One action of a held deployment.
#[derive(sqlx::FromRow)]
pub(super) struct ActionRow {
    name: String,
    state: String,
    deadline: i64,
    sealed: Option<Vec<u8>>,
    reason: Option<String>,
}

impl ActionRow {
    pub(super) fn into_action(self) -> anyhow::Result<HeldAction> {
        Ok(HeldAction {
            state: ActionState::parse(&self.state)
                .with_context(|| format!("unknown action state `{}`", self.state))?,
            deadline: from_millis(self.deadline)?,
            name: self.name,
            sealed: self.sealed,
            reason: self.reason,
        })
    }
}
