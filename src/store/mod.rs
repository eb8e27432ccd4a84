//! Persistence behind one trait.
//!
//! [`Store`] is what the core needs: which conversation asked for which
//! deployment, the statuses seen, run logs, the audit log and the reply
//! outbox. [`LocalForgeStore`] is what the local forge keeps: its
//! deployments, their statuses and commit checks. SQLite (one process) and
//! PostgreSQL (several replicas) implement both; [`open`] picks one by
//! `store.url`.
//!
//! **Architecture invariant:** every write that acknowledges something to
//! the outside world (a webhook, a chat request) is committed before the
//! acknowledgement; methods here return only after the data is durable.

mod history;
mod holds;
pub use history::{
    DeploymentOutcome, DeploymentSummary, History, HistoryFilter, StateFilter, TargetSummary,
};
pub mod postgres;
mod rows;
pub mod schema;
mod sql;
pub mod sqlite;

pub use holds::{
    ActionReport, ActionState, HeldAction, HoldRecord, HoldState, Holds, NewHold, ReportOutcome,
    RunSecrets,
};

use async_trait::async_trait;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{AppName, DeploymentId, DeploymentState, Origin, Platform, RepoName, Sha};
use crate::forge::{Check, Deployment, DeploymentFilter, NewDeployment, NewStatus};
use crate::policy::{Lock, LockScope};

pub type StoreResult<T> = anyhow::Result<T>;

/// Both traits in one object: what `store.url` opens.
pub trait Backend: Store + LocalForgeStore {}

impl<T: Store + LocalForgeStore> Backend for T {}

/// Opens the store `url` names: `sqlite:` (migrated as it opens: one
/// process owns the file) or `postgres:` (which must be migrated already,
/// by `hoist migrate`). Either refuses a schema newer than this hoist.
pub async fn open(url: &str) -> anyhow::Result<std::sync::Arc<dyn Backend>> {
    Ok(match Kind::of(url)? {
        Kind::Sqlite => std::sync::Arc::new(sqlite::SqliteStore::connect(url).await?),
        Kind::Postgres => std::sync::Arc::new(postgres::PgStore::connect(url).await?),
    })
}

/// Applies the migrations the store at `url` lacks; returns their
/// versions (none: it was up to date).
pub async fn migrate(url: &str) -> anyhow::Result<Vec<i64>> {
    match Kind::of(url)? {
        Kind::Sqlite => sqlite::SqliteStore::migrate(url).await,
        Kind::Postgres => postgres::PgStore::migrate(url).await,
    }
}

/// The database behind a store url.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    pub fn of(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!(
                "store.url {} is neither sqlite:// nor postgres://",
                shown_url(url)
            )
        }
    }
}

/// A store url fit for errors and logs: its password replaced by `***`.
pub fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed)
            if parsed.password().is_none()
                && !parsed.query_pairs().any(|(key, _)| key == "password") =>
        {
            url.to_owned()
        }
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for urls that cannot have a password at all.
                let _ = parsed.set_password(Some("***"));
            }
            // PostgreSQL also takes `?password=...`.
            if parsed.query_pairs().any(|(key, _)| key == "password") {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(key, value)| {
                        let value = if key == "password" {
                            "***".into()
                        } else {
                            value.into_owned()
                        };
                        (key.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        // Unparseable: show only its scheme, which holds no secret.
        Err(_) => match url.split_once(':') {
            Some((scheme, _)) => format!("{scheme}:…"),
            None => "(unreadable url)".to_owned(),
        },
    }
}

/// A deployment on a given forge: the key for statuses and logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeploymentKey {
    /// `github` or `local` ([`crate::forge::Forge::kind`]).
    pub forge: String,
    pub repo: RepoName,
    pub id: DeploymentId,
}

/// Which conversation asked for a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    pub key: DeploymentKey,
    pub app: AppName,
    pub environment: String,
    pub git_ref: String,
    pub sha: Sha,
    pub task: String,
    pub origin: Origin,
    pub request_key: String,
    pub created_at: Timestamp,
    pub decision: Option<String>,
}

/// One line of a run's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    /// hoist's own notes in the log (started, exit code, timeout).
    Hoist,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: Timestamp,
    pub stream: LogStream,
    pub text: String,
}

/// One entry of the audit log: a command and what hoist decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub platform: Platform,
    pub actor: String,
    pub command: String,
    /// `deployed`, `denied`, `invalid`, `noop`, `error`, ...
    pub outcome: String,
    /// The reason or the deployment created.
    pub detail: String,
}

/// Which audit entries to read (`hoist audit`); every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Who (the name the audit shows), without case.
    pub actor: Option<String>,
    /// `deployed`, `refused`, `locked`, ...
    pub outcome: Option<String>,
    /// Text the command or its detail contains, without case.
    pub text: Option<String>,
    pub since: Option<Timestamp>,
    /// At most this many.
    pub limit: usize,
}

/// A reply waiting to be delivered to a chat platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    pub id: i64,
    pub platform: Platform,
    /// When it was queued: a reply undelivered for too long is given up.
    pub created_at: Timestamp,
    /// The adapter's own message description (a serialised `chat::Reply`).
    pub body: serde_json::Value,
    pub attempts: u32,
}

/// A stored webhook delivery waiting to be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxItem {
    pub id: i64,
    /// Who sent it: `github`.
    pub source: String,
    /// The event name (`deployment_status`).
    pub event: String,
    pub body: String,
    /// Including this one.
    pub attempts: u32,
}

/// A reply given up on: kept for `hoist outbox` to show and retry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadReply {
    pub id: i64,
    pub platform: Platform,
    pub conversation: String,
    pub body: serde_json::Value,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub last_error: Option<String>,
}

/// The outbox: replies waiting for delivery, delivered in order per
/// conversation, given up on into a dead-letter list.
#[async_trait]
pub trait Replies: Send + Sync + 'static {
    /// Queues a reply to `conversation`. With a `dedupe_key`, a second
    /// reply with the same key is dropped (returns `None`).
    async fn enqueue_reply(
        &self,
        platform: Platform,
        conversation: &str,
        body: &serde_json::Value,
        dedupe_key: Option<&str>,
    ) -> StoreResult<Option<i64>>;

    /// Replies due for delivery, oldest first, leased to the caller until
    /// `lease_until` so another worker does not send them too. A reply
    /// waits while an older one to the same conversation is undelivered
    /// (and not given up on), so a conversation reads them in order.
    async fn claim_replies(
        &self,
        platforms: &[Platform],
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<OutboxItem>>;

    /// Delivered, all of them, in one write; their bodies are released.
    async fn replies_delivered(&self, ids: &[i64]) -> StoreResult<()>;

    /// Deletes replies delivered before `before` (never dead letters);
    /// returns how many.
    async fn prune_delivered_replies(&self, before: Timestamp) -> StoreResult<u64>;

    /// Delivery failed: try again at `retry_at`.
    async fn reply_failed(&self, id: i64, retry_at: Timestamp, error: &str) -> StoreResult<()>;

    /// Delivery failed for too long: moved to the dead-letter list.
    async fn reply_given_up(&self, id: i64, error: &str) -> StoreResult<()>;

    /// The dead-letter list, oldest first.
    async fn dead_replies(&self, limit: usize) -> StoreResult<Vec<DeadReply>>;

    /// Puts a given-up reply back in the queue, due now. Returns `false`
    /// when there is no such dead reply.
    async fn retry_dead_reply(&self, id: i64) -> StoreResult<bool>;

    /// Remembers the message that shows a deployment on a platform.
    async fn remember_card_message(
        &self,
        card_key: &str,
        platform: Platform,
        message_id: &str,
    ) -> StoreResult<()>;

    /// The message that shows a deployment on a platform, if one was sent.
    async fn card_message(&self, card_key: &str, platform: Platform)
    -> StoreResult<Option<String>>;
}

/// The inbox's two queues, each with its own worker, so a command waiting
/// on a slow GitHub never holds up the statuses of other deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboxLane {
    /// GitHub's `deployment_status` events: quick, relayed in order.
    Statuses,
    /// Everything else: commands, button presses, other events.
    Requests,
}

impl InboxLane {
    /// The lane a stored delivery waits in.
    pub fn of(source: &str, event: &str) -> Self {
        if source == "github" && event == "deployment_status" {
            Self::Statuses
        } else {
            Self::Requests
        }
    }

    /// What a delivery waits its turn behind: a status, behind the
    /// earlier statuses of its deployment (`repo#id`); the rest, nothing.
    /// Stored with the delivery, so that workers of several replicas
    /// relay one deployment's statuses in order.
    pub fn order_key(source: &str, event: &str, body: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct Status {
            deployment: Id,
            repository: Repository,
        }
        #[derive(Deserialize)]
        struct Id {
            id: i64,
        }
        #[derive(Deserialize)]
        struct Repository {
            full_name: String,
        }
        if Self::of(source, event) != Self::Statuses {
            return None;
        }
        // A body that does not parse is dropped by the worker, in its turn.
        let status: Status = serde_json::from_str(body).ok()?;
        Some(format!(
            "{}#{}",
            status.repository.full_name.to_ascii_lowercase(),
            status.deployment.id
        ))
    }
}

/// Webhook deliveries: stored before they are acknowledged, handled after.
#[async_trait]
pub trait Inbox: Send + Sync + 'static {
    /// Stores a delivery. Returns `false` when this (source, delivery id)
    /// was stored before: a redelivery, acknowledged and ignored.
    async fn store_webhook(
        &self,
        source: &str,
        delivery_id: &str,
        event: &str,
        body: &str,
    ) -> StoreResult<bool>;

    /// Deliveries of `lane` due for handling, oldest first, leased to the
    /// caller until `lease_until` (a worker that dies releases them by
    /// expiry). A delivery is tried at most `max_attempts` times.
    async fn claim_webhooks(
        &self,
        lane: InboxLane,
        now: Timestamp,
        lease_until: Timestamp,
        max_attempts: u32,
        limit: usize,
    ) -> StoreResult<Vec<InboxItem>>;

    /// Dropped, never to be handled: `reason` says why, and the body is
    /// kept to be looked at.
    async fn webhook_dropped(&self, id: i64, reason: &str) -> StoreResult<()>;

    /// All of `ids` handled, in one write; their bodies are released.
    async fn webhooks_processed(&self, ids: &[i64]) -> StoreResult<()>;

    /// Deletes deliveries handled before `before`; returns how many.
    async fn prune_handled_webhooks(&self, before: Timestamp) -> StoreResult<u64>;
}

/// An automatic deployment waiting for its commit's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingItem {
    pub id: i64,
    /// What to deploy, as the workflow wrote it.
    pub body: serde_json::Value,
    /// When it first met pending checks.
    pub created_at: Timestamp,
}

/// Auto-deploys that met pending checks, kept until the checks are done.
#[async_trait]
pub trait Waiting: Send + Sync + 'static {
    /// Keeps `body` waiting for the checks of `sha`. Keyed by
    /// `request_key`: the same request kept again is updated, and keeps
    /// the time it first waited.
    async fn wait_for_checks(
        &self,
        repo: &RepoName,
        sha: &Sha,
        request_key: &str,
        body: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Waiting deployments of one commit (or, with `None`, of every
    /// commit), oldest first, leased to the caller until `lease_until`.
    async fn claim_waiting(
        &self,
        commit: Option<(&RepoName, &Sha)>,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<WaitingItem>>;

    /// Done waiting: deployed, refused, or given up.
    async fn stop_waiting(&self, id: i64) -> StoreResult<()>;

    /// Still waiting: released for the next look.
    async fn keep_waiting(&self, id: i64) -> StoreResult<()>;
}

/// A deployment in the runner's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct RunJob {
    pub id: i64,
    pub key: DeploymentKey,
    /// The app in hoist.toml whose command runs it.
    pub app: String,
    pub deployment: Deployment,
}

/// Where a job is in the runner's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    Done,
}

/// What asking a job to stop did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunCancel {
    /// It had not started: it never will.
    Dequeued,
    /// It is running: its worker was asked to stop it.
    Requested,
    /// It had already ended.
    Finished,
    /// The runner never had it.
    Unknown,
}

/// The runner's durable queue. A lane (a repository and environment)
/// runs one job at a time, in the order the jobs were queued; a running
/// job is leased to its worker, which renews the lease while it runs.
///
/// Several replicas can share it: a claim is one statement (on
/// PostgreSQL, the inner select takes `FOR UPDATE SKIP LOCKED`), the
/// database refuses a second running job in a lane (a unique partial
/// index), and a job whose worker died is found by its lapsed lease.
#[async_trait]
pub trait RunQueue: Send + Sync + 'static {
    /// Queues a run of `deployment` in `lane`; returns the job's id, or
    /// `None` when this deployment was queued before (a redelivered
    /// webhook).
    async fn enqueue_run(
        &self,
        key: &DeploymentKey,
        app: &str,
        lane: &str,
        deployment: &Deployment,
        now: Timestamp,
    ) -> StoreResult<Option<i64>>;

    /// Jobs of `lane` queued or running: those a job queued now waits
    /// for.
    async fn lane_length(&self, lane: &str) -> StoreResult<usize>;

    /// Takes the oldest queued job whose lane has nothing running, for
    /// `worker` until `lease_until`.
    async fn claim_run(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<RunJob>>;

    /// Extends a running job's lease. `false`: the job is no longer this
    /// worker's (it was found interrupted and ended).
    async fn renew_run(&self, id: i64, worker: &str, lease_until: Timestamp) -> StoreResult<bool>;

    /// Puts a job that could not start back in the queue, to be claimed
    /// again from `not_before` on (ahead of later jobs of its lane).
    async fn release_run(&self, id: i64, not_before: Timestamp) -> StoreResult<()>;

    /// Who asked to stop a running job, if anyone has.
    async fn run_cancel_requested(&self, id: i64) -> StoreResult<Option<String>>;

    /// The job's run ended (whatever the outcome).
    async fn finish_run(&self, id: i64, now: Timestamp) -> StoreResult<()>;

    /// Asks for `key`'s run to stop, on behalf of `by`.
    async fn cancel_run(
        &self,
        key: &DeploymentKey,
        by: &str,
        now: Timestamp,
    ) -> StoreResult<RunCancel>;

    /// The running jobs whose lease lapsed before `lapsed_before` (their
    /// worker died with them), oldest first. The caller ends each with
    /// [`RunQueue::finish_run`] once its deployment says so.
    async fn interrupted_runs(&self, lapsed_before: Timestamp) -> StoreResult<Vec<RunJob>>;

    /// Where `key` is in the queue; `None` if the runner never had it.
    async fn run_state(&self, key: &DeploymentKey) -> StoreResult<Option<RunState>>;

    /// The job of `lane` to cancel: the running one, else the oldest
    /// queued.
    async fn open_run(&self, lane: &str) -> StoreResult<Option<RunJob>>;
}

/// What [`Locks::take_lock`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum TakeLock {
    /// The lock is the caller's now.
    Taken,
    /// The caller held it already: its reason and end are updated.
    Renewed,
    /// Someone else holds it.
    Held(Box<Lock>),
}

/// Environment locks ([`crate::policy::Lock`]). A lock whose `until` has
/// passed is gone: it neither holds nor blocks a new one.
#[async_trait]
pub trait Locks: Send + Sync + 'static {
    /// Claims `lock.scope` for `lock.holder`, atomically: of two claims of
    /// one scope at once, one gets [`TakeLock::Held`].
    async fn take_lock(&self, lock: &Lock, now: Timestamp) -> StoreResult<TakeLock>;

    /// Removes the lock of `scope`; returns it if one held.
    async fn release_lock(&self, scope: &LockScope, now: Timestamp) -> StoreResult<Option<Lock>>;

    /// Every lock that holds at `now`, oldest first.
    async fn locks(&self, now: Timestamp) -> StoreResult<Vec<Lock>>;

    /// Sticky locks held since before `held_since` whose holder was not
    /// reminded since then; each is marked reminded at `now`.
    async fn locks_to_remind(
        &self,
        held_since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<Lock>>;
}

/// A request for approvals, as the workflow hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    /// The deploy request's key: asking twice for one request is one
    /// approval request.
    pub request_key: String,
    /// `platform:conversation`, where `approve` with no number finds it.
    pub conversation: String,
    /// How many approvals end the wait.
    pub required: u32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// What to deploy once approved: the workflow's, opaque here.
    pub body: serde_json::Value,
}

/// Where an approval request stands; only `Waiting` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    Waiting,
    Approved,
    Rejected,
    Expired,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

/// One person's vote on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Who, as [`Vote::key`] of their actor.
    pub voter: String,
    /// How to name them (their GitHub login, else their chat name).
    pub name: String,
    pub verdict: crate::policy::Verdict,
    /// A rejection's reason.
    pub reason: Option<String>,
    pub at: Timestamp,
}

impl Vote {
    /// One key per person: the GitHub login in lower case, else the chat
    /// id, so nobody votes twice from two platforms under one login.
    pub fn key(actor: &crate::domain::Actor) -> String {
        match &actor.login {
            Some(login) => login.to_ascii_lowercase(),
            None => format!("id:{}", actor.id),
        }
    }
}

/// An approval request and its votes, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRecord {
    pub id: i64,
    pub state: ApprovalState,
    pub required: u32,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub body: serde_json::Value,
    pub votes: Vec<Vote>,
}

impl ApprovalRecord {
    /// The names of those who approved, in order.
    pub fn approvers(&self) -> Vec<String> {
        self.votes
            .iter()
            .filter(|vote| vote.verdict == crate::policy::Verdict::Approve)
            .map(|vote| vote.name.clone())
            .collect()
    }
}

/// What a vote came to. Each carries the request as it is after the vote.
#[derive(Debug, Clone, PartialEq)]
pub enum VoteOutcome {
    /// Counted; the request still waits for more.
    Counted(ApprovalRecord),
    /// The last approval needed: the request is approved (once: of two
    /// last votes at once, one gets this).
    Approved(ApprovalRecord),
    /// A rejection: the request is over.
    Rejected(ApprovalRecord),
    /// This person voted on it before; nothing changed.
    AlreadyVoted(ApprovalRecord),
    /// It is no longer waiting (approved, rejected, or expired before
    /// this vote, which marked it so); nothing changed.
    Closed(ApprovalRecord),
    /// No request has this number.
    Unknown,
}

/// Deployment requests waiting for approvals. A vote is counted and the
/// request decided in one transaction, so two people approving at once
/// never both count as the last.
#[async_trait]
pub trait ApprovalRequests: Send + Sync + 'static {
    /// Keeps `request` waiting; returns its number. The same request key
    /// asked again returns the first one's number.
    async fn ask_approval(&self, request: &NewApproval) -> StoreResult<i64>;

    async fn approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>>;

    /// The requests waiting in `conversation` (`None`: anywhere), oldest
    /// first; an expired one is not waiting.
    async fn waiting_approvals(
        &self,
        conversation: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Vec<ApprovalRecord>>;

    /// Casts `vote` on request `id`.
    async fn vote(&self, id: i64, vote: &Vote, now: Timestamp) -> StoreResult<VoteOutcome>;

    /// Marks every waiting request whose time ran out as expired, and
    /// returns them (each once, to be announced).
    async fn expire_approvals(&self, now: Timestamp) -> StoreResult<Vec<ApprovalRecord>>;
}

/// A deploy hook as stored: what it deploys, and the SHA-256 of its
/// token's secret (hex), never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployHook {
    /// The token's public part (`dh_<id>_...`): how a call finds its hook.
    pub id: String,
    /// Unique among hooks: `hoist hooks delete NAME`, and the audit log's
    /// actor (`hook NAME`).
    pub name: String,
    pub app: String,
    pub environment: String,
    pub secret_sha256: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// Deploy hooks (`hoist hooks`, `POST /api/v1/dh`).
#[async_trait]
pub trait DeployHooks: Send + Sync + 'static {
    /// Stores a new hook. `false` when a hook has this name already
    /// (nothing is stored).
    async fn create_hook(&self, hook: &DeployHook) -> StoreResult<bool>;

    /// The hook whose token has this id.
    async fn hook_by_id(&self, id: &str) -> StoreResult<Option<DeployHook>>;

    /// Every hook, by name.
    async fn hooks(&self) -> StoreResult<Vec<DeployHook>>;

    /// Deletes the hook called `name`; `false` when there is none.
    async fn delete_hook(&self, name: &str) -> StoreResult<bool>;

    /// Notes that the hook `id` was called at `at`.
    async fn hook_used(&self, id: &str, at: Timestamp) -> StoreResult<()>;
}

#[async_trait]
pub trait Store:
    Inbox
    + Replies
    + Waiting
    + RunQueue
    + Locks
    + ApprovalRequests
    + Holds
    + DeployHooks
    + History
    + Send
    + Sync
    + 'static
{
    /// Remembers which conversation asked for a deployment. Recording the
    /// same deployment again is a no-op.
    async fn record_deployment(&self, record: &DeploymentRecord) -> StoreResult<()>;

    async fn deployment_by_request(
        &self,
        request_key: &str,
    ) -> StoreResult<Option<DeploymentRecord>>;

    async fn deployment(&self, key: &DeploymentKey) -> StoreResult<Option<DeploymentRecord>>;

    /// Claims a request before its deployment is created. Returns `None`
    /// when this call claimed it, or when an earlier call did.
    async fn claim_request(
        &self,
        request_key: &str,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>>;

    /// Whether this exact status (state and time) was recorded.
    async fn has_status(
        &self,
        key: &DeploymentKey,
        state: DeploymentState,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Remembers a status. Returns `false` when this exact status (state
    /// and time) was already recorded, so a redelivered event is relayed
    /// once.
    async fn record_status(
        &self,
        key: &DeploymentKey,
        status: &NewStatus,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// Deployments hoist created since `since` that have no final status
    /// (success, failure, error, inactive) yet, oldest first, each with
    /// whether any status was seen at all.
    async fn unfinished_deployments(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<(DeploymentRecord, bool)>>;

    async fn append_log(&self, key: &DeploymentKey, lines: &[LogLine]) -> StoreResult<()>;

    /// The log's lines after the first `skip` (0: all of it), in order.
    async fn read_log(&self, key: &DeploymentKey, skip: usize) -> StoreResult<Vec<LogLine>>;

    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()>;

    /// The entries `filter` picks, newest first.
    async fn audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
}

/// What the local forge keeps: the GitHub Deployments API's data, on disk.
#[async_trait]
pub trait LocalForgeStore: Send + Sync + 'static {
    /// Inserts a deployment, or returns the one already inserted with the
    /// same `request.request_key`.
    async fn insert_local_deployment(
        &self,
        repo: &RepoName,
        request: &NewDeployment,
        sha: &Sha,
        at: Timestamp,
    ) -> StoreResult<Deployment>;

    async fn local_deployment(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> StoreResult<Option<Deployment>>;

    /// The deployment inserted for this request, if any: lets the local
    /// forge tell a repeated request (no second event) from a new one.
    async fn local_deployment_by_request(
        &self,
        repo: &RepoName,
        request_key: &str,
    ) -> StoreResult<Option<Deployment>>;

    /// Newest first, each with its latest state.
    async fn list_local_deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> StoreResult<Vec<Deployment>>;

    /// A local deployment's statuses, oldest first, with their times.
    async fn local_statuses(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> StoreResult<Vec<(NewStatus, Timestamp)>>;

    async fn insert_local_status(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        status: &NewStatus,
        at: Timestamp,
    ) -> StoreResult<()>;

    /// Sets a commit's status context (the local stand-in for CI).
    async fn set_commit_check(&self, repo: &RepoName, sha: &Sha, check: &Check) -> StoreResult<()>;

    async fn commit_checks(&self, repo: &RepoName, sha: &Sha) -> StoreResult<Vec<Check>>;
}
