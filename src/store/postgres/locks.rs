//! [`Locks`] on PostgreSQL: one row per scope, claimed in a transaction
//! that first takes a transaction-scoped advisory lock on the scope.
//!
//! SQLite makes its read-then-write claim atomic by having one writer
//! connection. Here several replicas write at once, and the row a claim
//! decides on may not exist yet (nothing to `FOR UPDATE`), so a claim and
//! a release of one scope first take `pg_advisory_xact_lock` on it: they
//! run in turn, each seeing what the one before it committed, and the
//! lock is let go when the transaction ends, even if the replica dies.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Postgres, Transaction};

use super::{PgStore, millis};
use crate::policy::{Lock, LockScope};
use crate::store::{Locks, StoreResult, TakeLock};

/// The advisory locks' first key: this table's, so hoist's other advisory
/// locks (sqlx's migration lock among them) never wait on these.
const ADVISORY_CLASS: i32 = 0x686c_636b; // "hlck"

fn lock_json(lock: &Lock) -> anyhow::Result<String> {
    serde_json::to_string(lock).context("cannot store a lock")
}

fn read_lock(json: &str) -> anyhow::Result<Lock> {
    serde_json::from_str(json).context("corrupt lock in the store")
}

/// Waits for the scope `key` to be this transaction's to decide on.
async fn lock_scope(tx: &mut Transaction<'_, Postgres>, key: &str) -> sqlx::Result<()> {
    // Two different scopes may share a hash: they then wait for each
    // other, which is slower, never wrong.
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
        .bind(ADVISORY_CLASS)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Locks for PgStore {
    async fn take_lock(&self, lock: &Lock, now: Timestamp) -> StoreResult<TakeLock> {
        let key = lock.scope.key();
        let context = || format!("cannot lock {}", lock.scope);
        let mut tx = self.pool.begin().await.with_context(context)?;
        // Every statement after this one reads a snapshot taken once the
        // scope is ours: it sees the claim or release before this one.
        lock_scope(&mut tx, &key).await.with_context(context)?;
        // One that ran out is gone.
        sqlx::query("DELETE FROM locks WHERE scope_key = $1 AND until IS NOT NULL AND until <= $2")
            .bind(&key)
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .with_context(context)?;
        let inserted = sqlx::query(
            "INSERT INTO locks (scope_key, lock, since, until) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope_key) DO NOTHING",
        )
        .bind(&key)
        .bind(lock_json(lock)?)
        .bind(millis(lock.since))
        .bind(lock.until.map(millis))
        .execute(&mut *tx)
        .await
        .with_context(context)?;
        let outcome = if inserted.rows_affected() == 1 {
            TakeLock::Taken
        } else {
            // The row exists and stays: only a claim or release of this
            // scope removes it, and they wait for the advisory lock.
            let held: String =
                sqlx::query_scalar("SELECT lock FROM locks WHERE scope_key = $1 FOR UPDATE")
                    .bind(&key)
                    .fetch_one(&mut *tx)
                    .await
                    .with_context(context)?;
            let held = read_lock(&held)?;
            if held.is_held_by(&lock.holder) {
                // Renewed: a new reason and end, the first time kept.
                let renewed = Lock {
                    since: held.since,
                    ..lock.clone()
                };
                sqlx::query("UPDATE locks SET lock = $1, until = $2 WHERE scope_key = $3")
                    .bind(lock_json(&renewed)?)
                    .bind(renewed.until.map(millis))
                    .bind(&key)
                    .execute(&mut *tx)
                    .await
                    .with_context(context)?;
                TakeLock::Renewed
            } else {
                TakeLock::Held(Box::new(held))
            }
        };
        tx.commit().await.with_context(context)?;
        Ok(outcome)
    }

    async fn release_lock(&self, scope: &LockScope, now: Timestamp) -> StoreResult<Option<Lock>> {
        let key = scope.key();
        let context = || format!("cannot unlock {scope}");
        let mut tx = self.pool.begin().await.with_context(context)?;
        // In turn with claims, so a claim never finds the row it saw
        // conflict gone before it reads it.
        lock_scope(&mut tx, &key).await.with_context(context)?;
        let released: Option<(String, Option<i64>)> =
            sqlx::query_as("DELETE FROM locks WHERE scope_key = $1 RETURNING lock, until")
                .bind(&key)
                .fetch_optional(&mut *tx)
                .await
                .with_context(context)?;
        tx.commit().await.with_context(context)?;
        match released {
            Some((_, Some(until))) if until <= millis(now) => Ok(None),
            Some((lock, _)) => Ok(Some(read_lock(&lock)?)),
            None => Ok(None),
        }
    }

    async fn locks_to_remind(
        &self,
        held_since: Timestamp,
        now: Timestamp,
    ) -> StoreResult<Vec<Lock>> {
        // Marked in the statement that finds them: two replicas asking at
        // once lock different rows (each skips the other's), and a row
        // the other has marked meanwhile no longer matches when rechecked.
        let mut rows: Vec<(String, i64, String)> = sqlx::query_as(
            "UPDATE locks SET reminded_at = $1 \
             WHERE scope_key IN (SELECT scope_key FROM locks \
                 WHERE since < $2 AND (until IS NULL OR until > $1) \
                   AND (reminded_at IS NULL OR reminded_at < $2) \
                   AND (lock::jsonb ->> 'kind') = 'sticky' \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING lock, since, scope_key",
        )
        .bind(millis(now))
        .bind(millis(held_since))
        .fetch_all(&self.pool)
        .await
        .context("cannot find long-held locks")?;
        // RETURNING keeps no order: oldest first, as `locks` reads them.
        rows.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
        rows.iter().map(|(lock, _, _)| read_lock(lock)).collect()
    }

    async fn locks(&self, now: Timestamp) -> StoreResult<Vec<Lock>> {
        // `COLLATE "C"`: scopes compared byte by byte, as SQLite does.
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT lock FROM locks WHERE until IS NULL OR until > $1 \
             ORDER BY since, scope_key COLLATE \"C\"",
        )
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await
        .context("cannot read the locks")?;
        rows.iter().map(|row| read_lock(row)).collect()
    }
}
