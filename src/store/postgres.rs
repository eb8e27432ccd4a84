//! PostgreSQL store: [`PgStore`] implements [`crate::store::Store`] and
//! [`crate::store::LocalForgeStore`] on a database several hoist replicas
//! share. The database is the coordinator: no replica leads.
//!
//! The schema in `migrations/postgres/` is the SQLite one's twin, version
//! for version (every integer BIGINT, so one row type reads both). What
//! differs is how replicas meet:
//!
//! - A claim (outbox, inbox, runner queue, waiting deployments) is one
//!   `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)`: two
//!   replicas claiming at once take different rows, neither waits for the
//!   other, and a lease that lapses hands the row to whoever claims next.
//! - A decision (a vote, an action's report, taking a lock) locks the row
//!   it decides on (`FOR UPDATE`, or a transaction-scoped advisory lock
//!   when the row may not exist yet), so two replicas deciding at once
//!   decide in turn.
//! - Commits are synchronous (PostgreSQL's default), so a write has
//!   reached the server's disk when its call returns.
//!
//! Migrations are not applied by [`PgStore::connect`]: replicas share the
//! schema, and `hoist migrate` changes it on purpose ([`PgStore::migrate`]).

mod approvals;
mod core_store;
mod history;
mod holds;
mod hooks;
mod inbox;
mod local_store;
mod locks;
mod replies;
mod run_queue;
mod waiting;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::schema::{SchemaState, applied_versions};
use super::shown_url;
use super::sql::{from_millis, millis, name_of, parse_name, parse_repo, repo_key, sql_limit};

/// Every migration in `migrations/postgres/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connections one replica opens: its workers (inbox lanes, outbox,
/// runner, watch round) and the requests being answered.
const MAX_CONNECTIONS: u32 = 10;

/// How long a call waits for a free connection before failing, rather
/// than hanging while the database is unreachable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// hoist's store on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://...`), which must
    /// have every migration this hoist knows and none it does not.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let store = Self::open(url).await?;
        let state = store.schema().await?;
        state.refuse_newer(&shown_url(url))?;
        if let Some(first) = state.pending.first() {
            anyhow::bail!(
                "the store at {} lacks {} migration{} (from version {first}): run `hoist migrate` first",
                shown_url(url),
                state.pending.len(),
                if state.pending.len() == 1 { "" } else { "s" }
            );
        }
        Ok(store)
    }

    /// Applies the migrations the database at `url` lacks (one replica at
    /// a time: sqlx holds an advisory lock while it migrates). Returns the
    /// versions applied.
    pub async fn migrate(url: &str) -> anyhow::Result<Vec<i64>> {
        let store = Self::open(url).await?;
        let state = store.schema().await?;
        state.refuse_newer(&shown_url(url))?;
        MIGRATOR.run(&store.pool).await.with_context(|| {
            format!("cannot apply migrations to the store at {}", shown_url(url))
        })?;
        Ok(state.pending)
    }

    async fn open(url: &str) -> anyhow::Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("cannot parse the store url {}", shown_url(url)))?
            .application_name("hoist");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot reach the store at {}", shown_url(url)))?;
        Ok(Self { pool })
    }

    async fn schema(&self) -> anyhow::Result<SchemaState> {
        let mut connection = self
            .pool
            .acquire()
            .await
            .context("cannot reach the store")?;
        let applied = applied_versions(&mut *connection).await?;
        Ok(SchemaState::compare(&MIGRATOR, &applied))
    }

    /// Runs `update` (an `UPDATE ... SET ...` whose `$1` is now) on the
    /// rows `ids`, in one write; returns how many rows it changed.
    async fn stamp_ids(&self, update: &str, ids: &[i64]) -> sqlx::Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!("{update} WHERE id = ANY($2)");
        let done = sqlx::query(&sql)
            .bind(millis(Timestamp::now()))
            .bind(ids)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// The pool, for tests and maintenance tasks.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
