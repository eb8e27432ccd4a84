//! [`Locks`] on SQLite: one row per scope, claimed in one transaction on
//! the single writer connection.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, millis};
use crate::policy::{Lock, LockScope};
use crate::store::{Locks, StoreResult, TakeLock};

fn lock_json(lock: &Lock) -> anyhow::Result<String> {
    serde_json::to_string(lock).context("cannot store a lock")
}

fn read_lock(json: &str) -> anyhow::Result<Lock> {
    serde_json::from_str(json).context("corrupt lock in the store")
}

#[async_trait]
impl Locks for SqliteStore {
    async fn take_lock(&self, lock: &Lock, now: Timestamp) -> StoreResult<TakeLock> {
        let key = lock.scope.key();
        let context = || format!("cannot lock {}", lock.scope);
        let mut tx = self.writer.begin().await.with_context(context)?;
        // One that ran out is gone.
        sqlx::query("DELETE FROM locks WHERE scope_key = ? AND until IS NOT NULL AND until <= ?")
            .bind(&key)
            .bind(millis(now))
            .execute(&mut *tx)
            .await
            .with_context(context)?;
        let inserted = sqlx::query(
            "INSERT INTO locks (scope_key, lock, since, until) VALUES (?, ?, ?, ?) \
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
            let held: String = sqlx::query_scalar("SELECT lock FROM locks WHERE scope_key = ?")
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
                sqlx::query("UPDATE locks SET lock = ?, until = ? WHERE scope_key = ?")
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
        let released: Option<(String, Option<i64>)> =
            sqlx::query_as("DELETE FROM locks WHERE scope_key = ? RETURNING lock, until")
                .bind(scope.key())
                .fetch_optional(&self.writer)
                .await
                .with_context(|| format!("cannot unlock {scope}"))?;
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
        // Marked in the same statement: two replicas never both remind.
        let rows: Vec<String> = sqlx::query_scalar(
            "UPDATE locks SET reminded_at = ? \
             WHERE since < ? AND (until IS NULL OR until > ?) \
               AND (reminded_at IS NULL OR reminded_at < ?) \
               AND json_extract(lock, '$.kind') = 'sticky' \
             RETURNING lock",
        )
        .bind(millis(now))
        .bind(millis(held_since))
        .bind(millis(now))
        .bind(millis(held_since))
        .fetch_all(&self.writer)
        .await
        .context("cannot find long-held locks")?;
        rows.iter().map(|row| read_lock(row)).collect()
    }

    async fn locks(&self, now: Timestamp) -> StoreResult<Vec<Lock>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT lock FROM locks WHERE until IS NULL OR until > ? ORDER BY since, scope_key",
        )
        .bind(millis(now))
        .fetch_all(&self.reader)
        .await
        .context("cannot read the locks")?;
        rows.iter().map(|row| read_lock(row)).collect()
    }
}
