//! SQLite store: [`SqliteStore`] implements both [`crate::store::Store`]
//! and [`crate::store::LocalForgeStore`] on one database file.
//!
//! Queries are plain `sqlx::query` with binds, not the compile-time checked
//! macros, so a clean clone builds without a database. The schema lives in
//! `migrations/sqlite/` (see the conventions at the top of the first file): times
//! are unix milliseconds, JSON is TEXT, repositories are lower case.

mod approvals;
mod core_store;
mod history;
mod holds;
mod hooks;
mod inbox;
mod intake;
mod local_store;
mod locks;
mod replies;
mod run_queue;
mod waiting;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use jiff::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::schema::{SchemaState, applied_versions};
use super::sql::{from_millis, millis, name_of, parse_name, parse_repo, repo_key, sql_limit};

/// Every migration in `migrations/`, embedded at build time. One shared
/// instance so the server, the CLI and the migration tests apply exactly the
/// same set (and sqlx builds the embedded list once).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for another connection's lock before failing:
/// long enough to ride out a burst of webhooks, short enough to surface a
/// stuck lock as an error instead of a hang.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of the database file each connection maps into memory: an
/// address range, not an allocation; only the pages read count. They are
/// the kernel's page cache, in RSS but not hoist's own memory.
const MMAP_BYTES: u64 = 1024 * 1024 * 1024;

/// Reading connections to a file database. WAL lets readers run beside
/// the writer.
const MAX_READERS: u32 = 8;

/// hoist's store on SQLite.
///
/// Every write goes through `writer`, a pool of one connection: SQLite
/// takes one writer at a time anyway, and writers that meet inside SQLite
/// wait in its busy handler, which sleeps for up to 100 ms at a time.
/// Queued on the pool instead, they follow one another at once. Reads go
/// through `reader`, beside the writer. A read that must see a write made
/// just before sees it: the write has committed when its call returns.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Stores webhook deliveries, several to a commit.
    intake: intake::Intake,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url`, such as
    /// `sqlite://hoist.db` or `sqlite::memory:`, and applies migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Self::open(url).await?.0)
    }

    /// The store, and the versions of the migrations it applied.
    async fn open(url: &str) -> anyhow::Result<(Self, Vec<i64>)> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("cannot parse the store url `{url}`"))?
            .create_if_missing(true)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // An in-memory database lives only while a connection holds it, and
        // each pool connection would otherwise see its own: keep exactly one
        // connection, forever, for reads and writes alike. WAL does not
        // apply to memory.
        if in_memory {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
                .with_context(|| format!("cannot open the store at `{url}`"))?;
            return Self::migrated(pool.clone(), pool, url).await;
        }
        // NORMAL, WAL's usual: a commit survives a crashed process, and
        // after a power cut the database comes back as a prefix of its
        // commits. The one write that must survive a power cut, the
        // insert a webhook or command is acknowledged after, runs FULL
        // (`intake`), which also makes every commit before it durable.
        // Every write after it can be redone.
        //
        // Every commit makes the other connections drop their page
        // caches and read the pages again; mapped, those reads are not
        // copies through read(2). Measured in benches/relay.rs.
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .pragma("mmap_size", MMAP_BYTES.to_string());
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open the store at `{url}`"))?;
        // The writer made the file and switched it to WAL, which the file
        // keeps; readers only read.
        let reader = SqlitePoolOptions::new()
            .max_connections(MAX_READERS)
            .connect_with(options.read_only(true))
            .await
            .with_context(|| format!("cannot open the store at `{url}` for reading"))?;
        Self::migrated(writer, reader, url).await
    }

    /// Opens the database at `url` and applies the migrations it lacks
    /// (as [`SqliteStore::connect`] does); returns their versions.
    pub async fn migrate(url: &str) -> anyhow::Result<Vec<i64>> {
        Ok(Self::open(url).await?.1)
    }

    async fn migrated(
        writer: SqlitePool,
        reader: SqlitePool,
        url: &str,
    ) -> anyhow::Result<(Self, Vec<i64>)> {
        let mut connection = writer.acquire().await.context("cannot reach the store")?;
        let applied = applied_versions(&mut *connection).await?;
        drop(connection);
        let state = SchemaState::compare(&MIGRATOR, &applied);
        state.refuse_newer(url)?;
        MIGRATOR
            .run(&writer)
            .await
            .with_context(|| format!("cannot apply migrations to the store at `{url}`"))?;
        let intake = intake::Intake::start(writer.clone());
        let store = Self {
            writer,
            reader,
            intake,
        };
        Ok((store, state.pending))
    }

    /// Runs `update` (an `UPDATE ... SET ...` whose one `?` is now) on
    /// the rows `ids`, in one write; returns how many rows it changed.
    async fn stamp_ids(&self, update: &str, ids: &[i64]) -> sqlx::Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!("{update} WHERE id IN ({})", placeholders(ids.len()));
        let mut query = sqlx::query(&sql).bind(millis(Timestamp::now()));
        for id in ids {
            query = query.bind(id);
        }
        Ok(query.execute(&self.writer).await?.rows_affected())
    }

    /// The writing connection, for tests and maintenance tasks.
    pub fn pool(&self) -> &SqlitePool {
        &self.writer
    }
}

/// `?, ?, ?` for an `IN (...)` list of `n` binds.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}
