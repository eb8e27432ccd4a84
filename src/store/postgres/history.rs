//! [`History`] on PostgreSQL: the queries `store/history.rs` builds, their
//! placeholders numbered.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;

use super::{PgStore, repo_key};
use crate::domain::AppName;
use crate::forge::NewStatus;
use crate::store::history::{
    Bound, Query, STATUSES_SQL, history_query, newest_per_target_query, outcomes_query, overview,
    targets_query,
};
use crate::store::rows::{LocalStatusRow, OutcomeRow, SummaryRow, parse_app};
use crate::store::{
    DeploymentKey, DeploymentOutcome, DeploymentSummary, History, HistoryFilter, StoreResult,
    TargetSummary,
};

impl PgStore {
    /// The rows of a query built in `store/history.rs`.
    async fn rows<R>(&self, query: Option<Query>) -> StoreResult<Vec<R>>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
    {
        let Some(query) = query else {
            return Ok(Vec::new());
        };
        let numbered = query.numbered();
        let mut sql = sqlx::query_as::<_, R>(&numbered);
        for bound in query.binds {
            sql = match bound {
                Bound::Text(text) => sql.bind(text),
                Bound::Int(int) => sql.bind(int),
            };
        }
        sql.fetch_all(&self.pool)
            .await
            .context("cannot read the deployment history")
    }

    async fn summaries(&self, query: Option<Query>) -> StoreResult<Vec<DeploymentSummary>> {
        let rows: Vec<SummaryRow> = self.rows(query).await?;
        rows.into_iter().map(SummaryRow::into_summary).collect()
    }
}

#[async_trait]
impl History for PgStore {
    async fn deployment_history(
        &self,
        filter: &HistoryFilter,
    ) -> StoreResult<Vec<DeploymentSummary>> {
        self.summaries(history_query(filter)).await
    }

    async fn targets_overview(&self, apps: &[String]) -> StoreResult<Vec<TargetSummary>> {
        let latest = self.summaries(newest_per_target_query(apps, false)).await?;
        let live = self.summaries(newest_per_target_query(apps, true)).await?;
        Ok(overview(latest, live))
    }

    async fn targets(&self, apps: &[String]) -> StoreResult<Vec<(AppName, String)>> {
        let rows: Vec<(String, String)> = self.rows(targets_query(apps)).await?;
        rows.into_iter()
            .map(|(app, environment)| Ok((parse_app(&app)?, environment)))
            .collect()
    }

    async fn deployment_outcomes(
        &self,
        apps: &[String],
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<DeploymentOutcome>> {
        let rows: Vec<OutcomeRow> = self.rows(outcomes_query(apps, since, limit)).await?;
        rows.into_iter().map(OutcomeRow::into_outcome).collect()
    }

    async fn deployment_statuses(
        &self,
        key: &DeploymentKey,
    ) -> StoreResult<Vec<(NewStatus, Timestamp)>> {
        let statuses_sql = Query {
            sql: STATUSES_SQL.to_owned(),
            binds: Vec::new(),
        }
        .numbered();
        let rows: Vec<LocalStatusRow> = sqlx::query_as(&statuses_sql)
            .bind(&key.forge)
            .bind(repo_key(&key.repo))
            .bind(key.id.0)
            .fetch_all(&self.pool)
            .await
            .with_context(|| {
                format!(
                    "cannot read the statuses of deployment {} {}",
                    key.repo, key.id
                )
            })?;
        rows.into_iter().map(LocalStatusRow::into_status).collect()
    }
}
