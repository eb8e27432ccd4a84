//! [`DeployHooks`] on PostgreSQL: one row per hook; the unique name makes
//! two replicas creating the same hook at once store one.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{PgStore, millis};
use crate::store::rows::{HOOK_COLUMNS as COLUMNS, HookRow};
use crate::store::{DeployHook, DeployHooks, StoreResult};

#[async_trait]
impl DeployHooks for PgStore {
    async fn create_hook(&self, hook: &DeployHook) -> StoreResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO deploy_hooks (id, name, app, environment, secret_sha256, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&hook.id)
        .bind(&hook.name)
        .bind(&hook.app)
        .bind(&hook.environment)
        .bind(&hook.secret_sha256)
        .bind(millis(hook.created_at))
        .bind(hook.last_used_at.map(millis))
        .execute(&self.pool)
        .await
        .with_context(|| format!("cannot store the deploy hook {}", hook.name))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn hook_by_id(&self, id: &str) -> StoreResult<Option<DeployHook>> {
        let row: Option<HookRow> = sqlx::query_as(&format!("SELECT {COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .context("cannot read a deploy hook")?;
        row.map(HookRow::into_hook).transpose()
    }

    async fn hooks(&self) -> StoreResult<Vec<DeployHook>> {
        // Byte order, as SQLite sorts: the list reads the same on both.
        let rows: Vec<HookRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} ORDER BY name COLLATE \"C\""))
                .fetch_all(&self.pool)
                .await
                .context("cannot read the deploy hooks")?;
        rows.into_iter().map(HookRow::into_hook).collect()
    }

    async fn delete_hook(&self, name: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM deploy_hooks WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .with_context(|| format!("cannot delete the deploy hook {name}"))?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn hook_used(&self, id: &str, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE deploy_hooks SET last_used_at = $1 WHERE id = $2")
            .bind(millis(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .context("cannot note a deploy hook's use")?;
        Ok(())
    }
}
