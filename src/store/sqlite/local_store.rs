//! [`LocalForgeStore`] on SQLite: the local forge's deployments, statuses
//! and commit checks.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{SqliteStore, from_millis, millis, name_of, parse_name, repo_key};
use crate::domain::{DeploymentId, DeploymentState, RepoName, Sha};
use crate::forge::{Check, Deployment, DeploymentFilter, NewDeployment, NewStatus};
use crate::store::{LocalForgeStore, StoreResult};

/// Every column of a [`Deployment`], with its latest state and when that
/// was posted.
const SELECT_DEPLOYMENT: &str = "SELECT d.id, d.git_ref, d.sha, d.task, d.environment, \
     d.description, d.creator, d.created_at, d.payload, d.transient_environment, \
     d.production_environment, \
     (SELECT s.state FROM local_statuses s WHERE s.deployment_id = d.id \
      ORDER BY s.id DESC LIMIT 1) AS state, \
     (SELECT s.at FROM local_statuses s WHERE s.deployment_id = d.id \
      ORDER BY s.id DESC LIMIT 1) AS status_at \
     FROM local_deployments d";

#[derive(sqlx::FromRow)]
struct DeploymentRow {
    id: i64,
    git_ref: String,
    sha: String,
    task: String,
    environment: String,
    description: Option<String>,
    creator: String,
    created_at: i64,
    payload: String,
    transient_environment: bool,
    production_environment: bool,
    state: Option<String>,
    status_at: Option<i64>,
}

impl DeploymentRow {
    fn into_deployment(self) -> anyhow::Result<Deployment> {
        let state = self
            .state
            .map(|s| {
                DeploymentState::parse(&s)
                    .with_context(|| format!("corrupt deployment state `{s}` in the store"))
            })
            .transpose()?;
        Ok(Deployment {
            id: DeploymentId(self.id),
            git_ref: self.git_ref,
            sha: Sha::new(&self.sha)
                .with_context(|| format!("corrupt sha `{}` in the store", self.sha))?,
            task: self.task,
            environment: self.environment,
            description: self.description,
            creator: self.creator,
            created_at: from_millis(self.created_at)?,
            payload: serde_json::from_str(&self.payload)
                .with_context(|| format!("corrupt payload of local deployment {}", self.id))?,
            state,
            status_at: self.status_at.map(from_millis).transpose()?,
            transient_environment: self.transient_environment,
            production_environment: self.production_environment,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CheckRow {
    name: String,
    state: String,
}

#[async_trait]
impl LocalForgeStore for SqliteStore {
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
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
        .execute(&self.writer)
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
        let row: Option<DeploymentRow> = sqlx::query_as(&format!(
            "{SELECT_DEPLOYMENT} WHERE d.repo = ? AND d.id = ?"
        ))
        .bind(repo_key(repo))
        .bind(id.0)
        .fetch_optional(&self.reader)
        .await
        .with_context(|| format!("cannot read local deployment {id} of {repo}"))?;
        row.map(DeploymentRow::into_deployment).transpose()
    }

    async fn local_deployment_by_request(
        &self,
        repo: &RepoName,
        request_key: &str,
    ) -> StoreResult<Option<Deployment>> {
        let row: Option<DeploymentRow> = sqlx::query_as(&format!(
            "{SELECT_DEPLOYMENT} WHERE d.repo = ? AND d.request_key = ?"
        ))
        .bind(repo_key(repo))
        .bind(request_key)
        .fetch_optional(&self.reader)
        .await
        .with_context(|| {
            format!("cannot read the local deployment of {repo} for request `{request_key}`")
        })?;
        row.map(DeploymentRow::into_deployment).transpose()
    }

    async fn list_local_deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> StoreResult<Vec<Deployment>> {
        let mut sql = format!("{SELECT_DEPLOYMENT} WHERE d.repo = ?");
        if filter.environment.is_some() {
            sql.push_str(" AND d.environment = ?");
        }
        if filter.sha.is_some() {
            sql.push_str(" AND d.sha = ?");
        }
        if filter.task.is_some() {
            sql.push_str(" AND d.task = ?");
        }
        // Ids grow with time, so the highest id is the newest.
        sql.push_str(" ORDER BY d.id DESC LIMIT ?");
        let mut query = sqlx::query_as::<_, DeploymentRow>(&sql).bind(repo_key(repo));
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
            .fetch_all(&self.reader)
            .await
            .with_context(|| format!("cannot list local deployments of {repo}"))?;
        rows.into_iter()
            .map(DeploymentRow::into_deployment)
            .collect()
    }

    async fn local_statuses(
        &self,
        repo: &RepoName,
        id: DeploymentId,
    ) -> StoreResult<Vec<(NewStatus, Timestamp)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            state: String,
            description: Option<String>,
            log_url: Option<String>,
            environment_url: Option<String>,
            at: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT s.state, s.description, s.log_url, s.environment_url, s.at \
             FROM local_statuses s JOIN local_deployments d ON d.id = s.deployment_id \
             WHERE d.id = ? AND d.repo = ? ORDER BY s.id",
        )
        .bind(id.0)
        .bind(repo_key(repo))
        .fetch_all(&self.reader)
        .await
        .with_context(|| format!("cannot read the statuses of local deployment {id} of {repo}"))?;
        rows.into_iter()
            .map(|row| {
                let state = DeploymentState::parse(&row.state)
                    .with_context(|| format!("corrupt state `{}` in the store", row.state))?;
                Ok((
                    NewStatus {
                        state,
                        description: row.description,
                        log_url: row.log_url,
                        environment_url: row.environment_url,
                    },
                    from_millis(row.at)?,
                ))
            })
            .collect()
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
             SELECT id, ?, ?, ?, ?, ? FROM local_deployments WHERE id = ? AND repo = ?",
        )
        .bind(status.state.as_str())
        .bind(&status.description)
        .bind(&status.log_url)
        .bind(&status.environment_url)
        .bind(millis(at))
        .bind(id.0)
        .bind(repo_key(repo))
        .execute(&self.writer)
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
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (repo, sha, name) \
             DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
        )
        .bind(repo_key(repo))
        .bind(sha.as_str())
        .bind(&check.name)
        .bind(name_of(&check.state)?)
        .bind(millis(Timestamp::now()))
        .execute(&self.writer)
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
            "SELECT name, state FROM local_commit_checks WHERE repo = ? AND sha = ? ORDER BY name",
        )
        .bind(repo_key(repo))
        .bind(sha.as_str())
        .fetch_all(&self.reader)
        .await
        .with_context(|| format!("cannot read the checks of {repo}@{}", sha.short()))?;
        rows.into_iter()
            .map(|row| {
                Ok(Check {
                    state: parse_name(&row.state, "check state")?,
                    name: row.name,
                    url: None,
                })
            })
            .collect()
    }
}
