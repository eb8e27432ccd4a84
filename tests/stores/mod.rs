//! Every store test runs on both back ends: [`store_test!`] makes one test
//! on SQLite (in memory) and one on PostgreSQL, in a schema of its own on
//! the server `HOIST_TEST_DATABASE_URL` names. Without that variable the
//! PostgreSQL half says it skipped and passes.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use hoist::domain::{RepoName, Sha};
use hoist::store::postgres::PgStore;
use hoist::store::sqlite::SqliteStore;

/// The variable `.ci/run` sets to the machine's PostgreSQL.
pub const DATABASE_URL: &str = "HOIST_TEST_DATABASE_URL";

/// Test schemas older than this are dropped by the next test that makes
/// one: what a killed test run left behind.
const STALE_SECS: u64 = 3600;

/// Makes `$name::sqlite` and `$name::postgres`, each running `$body` with
/// `$store` a fresh, migrated store of that back end.
#[macro_export]
macro_rules! store_test {
    ($name:ident, |$store:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let $store = $crate::stores::sqlite().await;
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some($store) = $crate::stores::postgres().await else {
                    return;
                };
                $body
            }
        }
    };
}

pub async fn sqlite() -> SqliteStore {
    SqliteStore::connect("sqlite::memory:")
        .await
        .expect("in-memory store")
}

/// A migrated store in a new schema, or `None` (said on stderr) when
/// `HOIST_TEST_DATABASE_URL` is not set.
pub async fn postgres() -> Option<PgStore> {
    let url = postgres_url().await?;
    PgStore::migrate(&url).await.expect("migrations apply");
    Some(PgStore::connect(&url).await.expect("migrated store opens"))
}

/// The url of a new, empty schema on the test server, or `None` (said on
/// stderr) when `HOIST_TEST_DATABASE_URL` is not set. Several processes
/// given this url share the schema, as replicas share a database.
pub async fn postgres_url() -> Option<String> {
    let Ok(server) = std::env::var(DATABASE_URL) else {
        eprintln!("skipped PostgreSQL: {DATABASE_URL} is not set (.ci/run sets it)");
        return None;
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let schema = format!(
        "hoist_test_{now}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = sqlx::PgPool::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("{DATABASE_URL} is set but PostgreSQL is unreachable: {e}"));
    drop_stale_schemas(&admin, now).await;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .expect("test schema");
    admin.close().await;
    let separator = if server.contains('?') { '&' } else { '?' };
    Some(format!(
        "{server}{separator}options=-c%20search_path%3D{schema}"
    ))
}

async fn drop_stale_schemas(admin: &sqlx::PgPool, now: u64) {
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'hoist\\_test\\_%'")
            .fetch_all(admin)
            .await
            .expect("schema list");
    for (name,) in names {
        let made: Option<u64> = name
            .strip_prefix("hoist_test_")
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse().ok());
        if made.is_some_and(|made| made + STALE_SECS < now) {
            // Another run may drop it at the same time: either is fine.
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(admin)
                .await;
        }
    }
}

/// Raw SQL against a store under test, for what no trait method does
/// (moving a time into the past, trying to edit the audit log).
#[allow(async_fn_in_trait)]
pub trait RawSql {
    /// Runs `sql` (no binds); the rows it changed, or the database's error.
    async fn execute(&self, sql: &str) -> Result<u64, String>;
    /// Reads one integer (`SELECT count(*) ...`).
    async fn fetch_i64(&self, sql: &str) -> i64;
}

impl RawSql for SqliteStore {
    async fn execute(&self, sql: &str) -> Result<u64, String> {
        sqlx::query(sql)
            .execute(self.pool())
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| e.to_string())
    }

    async fn fetch_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .expect("one integer")
    }
}

impl RawSql for PgStore {
    async fn execute(&self, sql: &str) -> Result<u64, String> {
        sqlx::query(sql)
            .execute(self.pool())
            .await
            .map(|done| done.rows_affected())
            .map_err(|e| e.to_string())
    }

    async fn fetch_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.pool())
            .await
            .expect("one integer")
    }
}

/// A fixed, millisecond-precise time: the store keeps milliseconds.
pub fn at(offset_ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(1_700_000_000_000 + offset_ms).expect("valid time")
}

pub fn repo(s: &str) -> RepoName {
    s.parse().expect("valid repo")
}

pub fn sha(digit: char) -> Sha {
    Sha::new(&digit.to_string().repeat(40)).expect("valid sha")
}

/// Runs `tasks` at once, each a tokio task released by one barrier, and
/// returns what each came to, in order. A task that panics (a store call
/// that errs) fails the test.
pub async fn at_once<T, F>(tasks: Vec<F>) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks.len()));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|task| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                task.await
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(handles.len());
    for handle in handles {
        outcomes.push(handle.await.expect("no task fails"));
    }
    outcomes
}
