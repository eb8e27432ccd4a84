//! [`Waiting`] on PostgreSQL: auto-deploys waiting for their checks,
//! leased to one replica's watch round at a time.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{PgStore, millis, repo_key, sql_limit};
use crate::domain::{RepoName, Sha};
use crate::store::rows::WaitingRow;
use crate::store::{StoreResult, Waiting, WaitingItem};

#[async_trait]
impl Waiting for PgStore {
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
            "INSERT INTO waiting_deploys (repo, sha, request_key, body, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (request_key) DO UPDATE SET body = excluded.body, lease_until = 0",
        )
        .bind(repo_key(repo))
        .bind(sha.as_str())
        .bind(request_key)
        .bind(body.to_string())
        .bind(millis(now))
        .execute(&self.pool)
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
        // SKIP LOCKED: two replicas' rounds take different ones, neither
        // waits for the other.
        let rows: Vec<WaitingRow> = sqlx::query_as(
            "UPDATE waiting_deploys SET lease_until = $1 WHERE id IN ( \
                 SELECT id FROM waiting_deploys \
                 WHERE ($2::text IS NULL OR (repo = $2 AND sha = $3)) AND lease_until <= $4 \
                 ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED) \
             RETURNING id, body, created_at",
        )
        .bind(millis(lease_until))
        .bind(repo.as_deref())
        .bind(sha.as_deref())
        .bind(millis(now))
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
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
        sqlx::query("DELETE FROM waiting_deploys WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .with_context(|| format!("cannot end waiting deployment {id}"))?;
        Ok(())
    }

    async fn keep_waiting(&self, id: i64) -> StoreResult<()> {
        sqlx::query("UPDATE waiting_deploys SET lease_until = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .with_context(|| format!("cannot release waiting deployment {id}"))?;
        Ok(())
    }
}
