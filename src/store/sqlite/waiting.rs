//! [`Waiting`] on SQLite: auto-deploys waiting for their checks.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, millis, repo_key, sql_limit};
use crate::domain::{RepoName, Sha};
use crate::store::rows::WaitingRow;
use crate::store::{StoreResult, Waiting, WaitingItem};

#[async_trait]
impl Waiting for SqliteStore {
    async fn wait_for_checks(
        &self,
        repo: &RepoName,
        sha: &Sha,
        request_key: &str,
        body: &serde_json::Value,
        now: Timestamp,
    ) -> StoreResult<()> {
        // Waiting again (new checks appeared) keeps the first time, so the
        // wait is given up counting from the push.
        sqlx::query(
            "INSERT INTO waiting_deploys (repo, sha, request_key, body, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (request_key) DO UPDATE SET body = excluded.body, lease_until = 0",
        )
        .bind(repo_key(repo))
        .bind(sha.as_str())
        .bind(request_key)
        .bind(body.to_string())
        .bind(millis(now))
        .execute(&self.writer)
        .await
        .with_context(|| format!("cannot keep {request_key} waiting for checks"))?;
        Ok(())
    }

    async fn claim_waiting(
        &self,
        commit: Option<(&RepoName, &Sha)>,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<WaitingItem>> {
        let (repo, sha) = commit.map_or((None, None), |(repo, sha)| {
            (Some(repo_key(repo)), Some(sha.to_string()))
        });
        // One statement: two workers never lease the same one.
        let rows: Vec<WaitingRow> = sqlx::query_as(
            "UPDATE waiting_deploys SET lease_until = ? WHERE id IN (SELECT id FROM waiting_deploys \
                 WHERE (? IS NULL OR (repo = ? AND sha = ?)) AND lease_until <= ? ORDER BY id LIMIT ?) \
             RETURNING id, body, created_at",
        )
        .bind(millis(lease_until))
        .bind(repo.as_deref())
        .bind(repo.as_deref())
        .bind(sha.as_deref())
        .bind(millis(now))
        .bind(sql_limit(limit))
        .fetch_all(&self.writer)
        .await
        .context("cannot claim waiting deployments")?;
        let mut items = rows
            .into_iter()
            .map(WaitingRow::into_item)
            .collect::<anyhow::Result<Vec<_>>>()?;
        items.sort_by_key(|item| item.id);
        Ok(items)
    }

    async fn stop_waiting(&self, id: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM waiting_deploys WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .with_context(|| format!("cannot end waiting deployment {id}"))?;
        Ok(())
    }

    async fn keep_waiting(&self, id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE waiting_deploys SET lease_until = 0 WHERE id = ?")
            .bind(id)
            .execute(&self.writer)
            .await
            .with_context(|| format!("cannot release waiting deployment {id}"))?;
        Ok(())
    }
}
