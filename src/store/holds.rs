//! Deployments held until integrations report their pre-deploy actions
//! done (deploy.yml's `actions`), and the secrets those actions hand to
//! a deployment's run. Secrets reach the store sealed
//! ([`crate::actions::seal`]), never in plain text.

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::domain::{RepoName, Sha};

/// Where a held deployment stands. Only `Provisioning` and `Ready` move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldState {
    /// Its actions are running; the deployment waits.
    Provisioning,
    /// Every action succeeded; the deployment is being created.
    Ready,
    /// Created on the forge.
    Deployed,
    /// An action failed, or the rules refused it once it was ready.
    Failed,
    /// An action did not report in time.
    TimedOut,
    /// Someone cancelled it while it waited.
    Cancelled,
}

impl HoldState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provisioning => "provisioning",
            Self::Ready => "ready",
            Self::Deployed => "deployed",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Provisioning,
            Self::Ready,
            Self::Deployed,
            Self::Failed,
            Self::TimedOut,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// Where one action of a held deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    Pending,
    Succeeded,
    Failed,
}

impl ActionState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// A deployment to hold, as the workflow hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHold {
    /// The deploy request's key: holding one request twice is one hold.
    pub request_key: String,
    pub app: String,
    pub environment: String,
    pub created_at: Timestamp,
    /// What to deploy once ready: the workflow's, opaque here.
    pub body: serde_json::Value,
    /// Each action's name and the time by which it must report.
    pub actions: Vec<(String, Timestamp)>,
}

/// One action of a held deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldAction {
    pub name: String,
    pub state: ActionState,
    pub deadline: Timestamp,
    /// The secrets it reported, sealed; dropped once the deployment is
    /// created (the run's copy is [`RunSecrets`]).
    pub sealed: Option<Vec<u8>>,
    /// A failure's reason, as the integration gave it.
    pub reason: Option<String>,
}

/// A held deployment and its actions, in the order deploy.yml lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldRecord {
    pub id: i64,
    pub request_key: String,
    pub app: String,
    pub environment: String,
    pub state: HoldState,
    pub created_at: Timestamp,
    pub body: serde_json::Value,
    pub actions: Vec<HeldAction>,
}

impl HoldRecord {
    /// The actions still running.
    pub fn pending(&self) -> impl Iterator<Item = &HeldAction> {
        self.actions
            .iter()
            .filter(|action| action.state == ActionState::Pending)
    }
}

/// What an integration reported for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionReport {
    /// Done; the secrets it hands the deployment, sealed (`None`: none).
    Succeeded {
        sealed: Option<Vec<u8>>,
    },
    Failed {
        reason: String,
    },
}

/// What a report came to. Each carries the hold as it is after it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReportOutcome {
    /// Recorded; other actions are still running.
    Recorded(HoldRecord),
    /// Every action has succeeded: deploy it. Given once per transition,
    /// and again for a success reported again while it is `Ready` (an
    /// integration retrying a report whose answer it never got), since
    /// deploying is idempotent per request.
    Ready(HoldRecord),
    /// This failure ended the hold.
    Failed(HoldRecord),
    /// The action had reported this already; nothing changed.
    Repeated(HoldRecord),
    /// The hold is over (failed, timed out, cancelled, deployed), or the
    /// action reported otherwise before; nothing changed.
    Closed(HoldRecord),
    /// No held deployment has this id and action.
    Unknown,
}

/// The secrets a deployment's actions handed to its run, sealed, bound
/// to the deployment's request, repository, commit and environment: a
/// run takes them only for the deployment they were made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSecrets {
    pub request_key: String,
    pub repo: RepoName,
    pub sha: Sha,
    pub environment: String,
    pub sealed: Vec<u8>,
}

/// Held deployments. A report and the decision it makes are one
/// transaction, so two last reports at once make it ready once.
#[async_trait]
pub trait Holds: Send + Sync + 'static {
    /// Holds a deployment with its actions pending; returns its id. The
    /// same request key again returns the first hold's id.
    async fn hold_deployment(&self, hold: &NewHold) -> StoreResult<i64>;

    async fn hold(&self, id: i64) -> StoreResult<Option<HoldRecord>>;

    /// Records what an integration reported for `action` of hold `id`.
    async fn report_action(
        &self,
        id: i64,
        action: &str,
        report: &ActionReport,
        now: Timestamp,
    ) -> StoreResult<ReportOutcome>;

    /// Ends a hold that is still provisioning (cancelled, or failed at
    /// once); `None` when it was not provisioning (ended by someone else
    /// first: each hold ends once).
    async fn end_hold(&self, id: i64, state: HoldState) -> StoreResult<Option<HoldRecord>>;

    /// A ready hold's end: deployed, or refused when it was created.
    /// Its actions' sealed secrets are dropped either way.
    async fn settle_hold(&self, id: i64, state: HoldState) -> StoreResult<()>;

    /// Marks timed out every provisioning hold with an action pending past
    /// its deadline, and returns them (each once, to be announced).
    async fn expire_holds(&self, now: Timestamp) -> StoreResult<Vec<HoldRecord>>;

    /// The holds still provisioning for an app (and environment, lower
    /// case), oldest first.
    async fn provisioning_holds(
        &self,
        app: &str,
        environment: Option<&str>,
    ) -> StoreResult<Vec<HoldRecord>>;

    /// The deployed holds of an environment not yet cleaned up, marked
    /// cleaned as they are returned (each once).
    async fn take_holds_to_clean(
        &self,
        app: &str,
        environment: &str,
    ) -> StoreResult<Vec<HoldRecord>>;

    /// Keeps a deployment's secrets for its run (replacing any).
    async fn put_run_secrets(&self, secrets: &RunSecrets) -> StoreResult<()>;

    async fn run_secrets(&self, request_key: &str) -> StoreResult<Option<RunSecrets>>;

    /// Forgets a deployment's secrets (its run is over, or it was never
    /// created).
    async fn drop_run_secrets(&self, request_key: &str) -> StoreResult<()>;
}
