//! [`DeployHooks`] on SQLite: one row per hook, written through the
//! writer connection.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, from_millis, millis};
use crate::store::{DeployHook, DeployHooks, StoreResult};

#[derive(sqlx::FromRow)]
struct HookRow {
    id: String,
    name: String,
    app: String,
    environment: String,
    secret_sha256: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl HookRow {
    fn into_hook(self) -> anyhow::Result<DeployHook> {
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

const COLUMNS: &str =
    "id, name, app, environment, secret_sha256, created_at, last_used_at FROM deploy_hooks";

#[async_trait]
impl DeployHooks for SqliteStore {
    async fn create_hook(&self, hook: &DeployHook) -> StoreResult<bool> {
        let inserted = sqlx::query(
            "INSERT INTO deploy_hooks (id, name, app, environment, secret_sha256, created_at, last_used_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&hook.id)
        .bind(&hook.name)
        .bind(&hook.app)
        .bind(&hook.environment)
        .bind(&hook.secret_sha256)
        .bind(millis(hook.created_at))
        .bind(hook.last_used_at.map(millis))
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot store the deploy hook {}", hook.name))?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn hook_by_id(&self, id: &str) -> StoreResult<Option<DeployHook>> {
        let row: Option<HookRow> = sqlx::query_as(&format!("SELECT {COLUMNS} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .context("cannot read a deploy hook")?;
        row.map(HookRow::into_hook).transpose()
    }

    async fn hooks(&self) -> StoreResult<Vec<DeployHook>> {
        let rows: Vec<HookRow> = sqlx::query_as(&format!("SELECT {COLUMNS} ORDER BY name"))
            .fetch_all(&self.reader)
            .await
            .context("cannot read the deploy hooks")?;
        rows.into_iter().map(HookRow::into_hook).collect()
    }

    async fn delete_hook(&self, name: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM deploy_hooks WHERE name = ?")
            .bind(name)
            .execute(&self.writer)
            .await
            .with_context(|| format!("cannot delete the deploy hook {name}"))?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn hook_used(&self, id: &str, at: Timestamp) -> StoreResult<()> {
        sqlx::query("UPDATE deploy_hooks SET last_used_at = ? WHERE id = ?")
            .bind(millis(at))
            .bind(id)
            .execute(&self.writer)
            .await
            .context("cannot note a deploy hook's use")?;
        Ok(())
    }
}
