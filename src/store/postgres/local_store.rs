//! [`LocalForgeStore`] on PostgreSQL: the local forge's deployments,
//! statuses and commit checks (the tests run it on both back ends; `hoist
//! serve` keeps the local forge to SQLite, its events being in-process).

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{PgStore, millis, name_of, repo_key};
use crate::domain::{DeploymentId, RepoName, Sha};
use crate::forge::{Check, Deployment, DeploymentFilter, NewDeployment, NewStatus};
use crate::store::rows::{CheckRow, LocalDeploymentRow, LocalStatusRow, SELECT_LOCAL_DEPLOYMENT};
use crate::store::{LocalForgeStore, StoreResult};

#[async_trait]
impl LocalForgeStore for PgStore {
    async fn insert_local_deployment(
        &self,
        repo: &RepoName,
        request: &NewDeployment,
        sha: &Sha,
        at: Timestamp,
    ) -> StoreResult<Deployment> {
        let context = || {
            format!(
                "cannot record local deployment of {repo} for request `{}`",
                request.request_key
            )
        };
        sqlx::query(
            "INSERT INTO local_deployments (repo, request_key, git_ref, sha, task, environment, \
             description, creator, payload, transient_environment, production_environment, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (repo, request_key) DO NOTHING",
        )
        .bind(repo_key(repo))
        .bind(&request.request_key)
        .bind(&request.git_ref)
        .bind(sha.as_str())
        .bind(&request.task)
        .bind(&request.environment)
        .bind(&request.description)
        .bind(&request.requested_by)
        .bind(request.payload.to_string())
        .bind(request.transient_environment)
        .bind(request.production_environment)
        .bind(millis(at))
        .execute(&self.pool)
        .await
        .with_context(context)?;
        // Either the row just inserted or the one an earlier identical
        // request inserted: both are the answer.
        self.local_deployment_by_request(repo, &request.request_key)
            .await?
            .with_context(context)
    }

    async fn local_deployment(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> StoreResult<Option<Deployment>> {
        let row: Option<LocalDeploymentRow> = sqlx::query_as(&format!(
            "{SELECT_LOCAL_DEPLOYMENT} WHERE d.repo = $1 AND d.id = $2"
        ))
        .bind(repo_key(repo))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| format!("cannot read local deployment {id} of {repo}"))?;
        row.map(LocalDeploymentRow::into_deployment).transpose()
    }

    async fn local_deployment_by_request(
        &self,
        repo: &RepoName,
        request_key: &str,
    ) -> StoreResult<Option<Deployment>> {
        let row: Option<LocalDeploymentRow> = sqlx::query_as(&format!(
            "{SELECT_LOCAL_DEPLOYMENT} WHERE d.repo = $1 AND d.request_key = $2"
        ))
        .bind(repo_key(repo))
        .bind(request_key)
        .fetch_optional(&self.pool)
        .await
        .with_context(|| {
            format!("cannot read the local deployment of {repo} for request `{request_key}`")
        })?;
        row.map(LocalDeploymentRow::into_deployment).transpose()
    }

    async fn list_local_deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> StoreResult<Vec<Deployment>> {
        // `$n` for each filter present, in the order they are bound.
        let mut binds = 1;
        let mut next = || {
            binds += 1;
            format!("${binds}")
        };
        let mut sql = format!("{SELECT_LOCAL_DEPLOYMENT} WHERE d.repo = $1");
        if filter.environment.is_some() {
            sql.push_str(&format!(" AND d.environment = {}", next()));
        }
        if filter.sha.is_some() {
            sql.push_str(&format!(" AND d.sha = {}", next()));
        }
        if filter.task.is_some() {
            sql.push_str(&format!(" AND d.task = {}", next()));
        }
        // Ids grow with time, so the highest id is the newest.
        sql.push_str(&format!(" ORDER BY d.id DESC LIMIT {}", next()));
        let mut query = sqlx::query_as::<_, LocalDeploymentRow>(&sql).bind(repo_key(repo));
        if let Some(environment) = &filter.environment {
            query = query.bind(environment);
        }
        if let Some(sha) = &filter.sha {
            query = query.bind(sha.as_str());
        }
        if let Some(task) = &filter.task {
            query = query.bind(task);
        }
        let limit = i64::try_from(filter.effective_limit()).unwrap_or(i64::MAX);
        let rows = query
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .with_context(|| format!("cannot list local deployments of {repo}"))?;
        rows.into_iter()
            .map(LocalDeploymentRow::into_deployment)
            .collect()
    }

    async fn local_statuses(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> StoreResult<Vec<(NewStatus, Timestamp)>> {
        let rows: Vec<LocalStatusRow> = sqlx::query_as(
            "SELECT s.state, s.description, s.log_url, s.environment_url, s.at \
             FROM local_statuses s JOIN local_deployments d ON d.id = s.deployment_id \
             WHERE d.id = $1 AND d.repo = $2 ORDER BY s.id",
        )
        .bind(id.0)
        .bind(repo_key(repo))
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("cannot read the statuses of local deployment {id} of {repo}"))?;
        rows.into_iter().map(LocalStatusRow::into_status).collect()
    }

    async fn insert_local_status(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        status: &NewStatus,
        at: Timestamp,
    ) -> StoreResult<()> {
        // Inserting through a SELECT refuses a deployment of another repo.
        let done = sqlx::query(
            "INSERT INTO local_statuses \
             (deployment_id, state, description, log_url, environment_url, at) \
             SELECT id, $1, $2, $3, $4, $5 FROM local_deployments WHERE id = $6 AND repo = $7",
        )
        .bind(status.state.as_str())
        .bind(&status.description)
        .bind(&status.log_url)
        .bind(&status.environment_url)
        .bind(millis(at))
        .bind(id.0)
        .bind(repo_key(repo))
        .execute(&self.pool)
        .await
        .with_context(|| {
            format!(
                "cannot record status {} of local deployment {id} of {repo}",
                status.state
            )
        })?;
        anyhow::ensure!(
            done.rows_affected() == 1,
            "cannot record status {}: {repo} has no local deployment {id}",
            status.state
        );
        Ok(())
    }

    async fn set_commit_check(&self, repo: &RepoName, sha: &Sha, check: &Check) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO local_commit_checks (repo, sha, name, state, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (repo, sha, name) \
             DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(repo_key(repo))
        .bind(sha.as_str())
        .bind(&check.name)
        .bind(name_of(&check.state)?)
        .bind(millis(Timestamp::now()))
        .execute(&self.pool)
        .await
        .with_context(|| {
            format!(
                "cannot set check `{}` on {repo}@{}",
                check.name,
                sha.short()
            )
        })?;
        Ok(())
    }

    async fn commit_checks(&self, repo: &RepoName, sha: &Sha) -> StoreResult<Vec<Check>> {
        let rows: Vec<CheckRow> = sqlx::query_as(
            "SELECT name, state FROM local_commit_checks WHERE repo = $1 AND sha = $2 \
             ORDER BY name COLLATE \"C\"",
        )
        .bind(repo_key(repo))
        .bind(sha.as_str())
        .fetch_all(&self.pool)
        .await
        .with_context(|| format!("cannot read the checks of {repo}@{}", sha.short()))?;
        rows.into_iter().map(CheckRow::into_check).collect()
    }
}
