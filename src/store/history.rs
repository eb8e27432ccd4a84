//! What the dashboard reads: deployments with their latest status,
//! filtered and paged (the history), each app's environments with what
//! is live there (the overview), and a deployment's statuses (its
//! timeline).
//!
//! The queries are built once here, with `?` for each bound value, and
//! each back end runs them (PostgreSQL numbering the placeholders): the
//! SQL is the same on both, as the schemas are twins.

use async_trait::async_trait;
use jiff::Timestamp;

use super::sql::{millis, sql_limit};
use super::{DeploymentKey, DeploymentRecord, StoreResult};
use crate::domain::{AppName, DeploymentState};
use crate::forge::NewStatus;

/// Which deployments a history page lists. Every field narrows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    /// Only these apps (those the viewer may read); `None`: every app.
    pub apps: Option<Vec<String>>,
    pub app: Option<String>,
    /// Compared without regard to case.
    pub environment: Option<String>,
    /// The origin's actor name (`origin.actor.name`), without regard to
    /// case.
    pub actor: Option<String>,
    pub state: Option<StateFilter>,
    /// Created at or after.
    pub since: Option<Timestamp>,
    pub offset: usize,
    /// At most this many (a caller asks one more to know whether a next
    /// page exists).
    pub limit: usize,
}

/// A deployment's latest status, as a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    /// No status yet.
    Created,
    State(DeploymentState),
}

/// A deployment with its latest status (the greatest `at`, then the
/// latest recorded).
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentSummary {
    pub record: DeploymentRecord,
    pub state: Option<DeploymentState>,
    pub state_at: Option<Timestamp>,
}

/// One app's environment: its newest deployment, and the newest whose
/// latest status is success (what is live there).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSummary {
    pub app: AppName,
    pub environment: String,
    pub latest: DeploymentSummary,
    pub live: Option<DeploymentSummary>,
}

/// What a deployment came to, for the dashboard's figures: when, which
/// commit, and its latest status; none of the rest of its record.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentOutcome {
    pub app: AppName,
    pub environment: String,
    pub created_at: Timestamp,
    pub sha: String,
    pub task: String,
    pub state: Option<DeploymentState>,
    pub state_at: Option<Timestamp>,
}

#[async_trait]
pub trait History: Send + Sync + 'static {
    /// Newest first (created, then deployment id, descending).
    async fn deployment_history(
        &self,
        filter: &HistoryFilter,
    ) -> StoreResult<Vec<DeploymentSummary>>;

    /// Every (app, environment) with a deployment of one of `apps`, by
    /// app then environment; none for no apps.
    async fn targets_overview(&self, apps: &[String]) -> StoreResult<Vec<TargetSummary>>;

    /// Every (app, environment) with a deployment of one of `apps`, by
    /// app then environment (environments alike but for case are one);
    /// none for no apps. [`History::targets_overview`] without reading
    /// what is there.
    async fn targets(&self, apps: &[String]) -> StoreResult<Vec<(AppName, String)>>;

    /// What the deployments of `apps` created at or after `since` came
    /// to, newest first, at most `limit`; none for no apps.
    async fn deployment_outcomes(
        &self,
        apps: &[String],
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<DeploymentOutcome>>;

    /// A deployment's statuses, oldest first.
    async fn deployment_statuses(
        &self,
        key: &DeploymentKey,
    ) -> StoreResult<Vec<(NewStatus, Timestamp)>>;
}

/// A value bound to a `?`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Bound {
    Text(String),
    Int(i64),
}

/// SQL with `?` placeholders and what they stand for, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Query {
    pub sql: String,
    pub binds: Vec<Bound>,
}

impl Query {
    /// The SQL with PostgreSQL's `$1, $2, ...`. No query here has a `?`
    /// of its own (no string literal holds one).
    pub fn numbered(&self) -> String {
        let mut sql = String::with_capacity(self.sql.len() + 16);
        let mut n = 0;
        for c in self.sql.chars() {
            match c {
                '?' => {
                    n += 1;
                    sql.push_str(&format!("${n}"));
                }
                c => sql.push(c),
            }
        }
        sql
    }
}

/// Deployments with their latest status (kept beside each by the store's
/// triggers), as a subquery `x` to filter and order; `where_sql` narrows
/// the deployments first.
fn summaries(where_sql: &str) -> String {
    format!(
        "SELECT d.forge, d.repo, d.deployment_id, d.app, d.environment, d.git_ref, d.sha, d.task, \
                d.origin, d.request_key, d.created_at, d.decision, \
                d.latest_state, d.latest_at \
         FROM deployments d WHERE {where_sql}"
    )
}

/// `app IN (?, ...)` for `apps`, with their binds.
fn apps_in(apps: &[String], binds: &mut Vec<Bound>) -> String {
    let marks = vec!["?"; apps.len()].join(", ");
    binds.extend(apps.iter().cloned().map(Bound::Text));
    format!("d.app IN ({marks})")
}

/// The history query; `None` when it can match nothing (no app may be
/// read).
pub(super) fn history_query(filter: &HistoryFilter) -> Option<Query> {
    let mut binds = Vec::new();
    let mut conditions = vec!["1 = 1".to_owned()];
    if let Some(apps) = &filter.apps {
        if apps.is_empty() {
            return None;
        }
        conditions.push(apps_in(apps, &mut binds));
    }
    if let Some(app) = &filter.app {
        conditions.push("d.app = ?".into());
        binds.push(Bound::Text(app.to_ascii_lowercase()));
    }
    if let Some(environment) = &filter.environment {
        conditions.push("LOWER(d.environment) = ?".into());
        binds.push(Bound::Text(environment.to_lowercase()));
    }
    if let Some(actor) = &filter.actor {
        conditions.push("LOWER(d.actor) = ?".into());
        binds.push(Bound::Text(actor.to_lowercase()));
    }
    if let Some(since) = filter.since {
        conditions.push("d.created_at >= ?".into());
        binds.push(Bound::Int(millis(since)));
    }
    let state = match filter.state {
        None => "1 = 1".to_owned(),
        Some(StateFilter::Created) => "x.latest_state IS NULL".to_owned(),
        Some(StateFilter::State(state)) => {
            binds.push(Bound::Text(state.as_str().to_owned()));
            "x.latest_state = ?".to_owned()
        }
    };
    binds.push(Bound::Int(sql_limit(filter.limit)));
    binds.push(Bound::Int(i64::try_from(filter.offset).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT * FROM ({}) x WHERE {state} \
         ORDER BY x.created_at DESC, x.deployment_id DESC LIMIT ? OFFSET ?",
        summaries(&conditions.join(" AND "))
    );
    Some(Query { sql, binds })
}

/// The newest deployment of each of `apps`' environments (or, `live`,
/// the newest whose latest status is success); `None` for no apps.
pub(super) fn newest_per_target_query(apps: &[String], live: bool) -> Option<Query> {
    if apps.is_empty() {
        return None;
    }
    let mut binds = Vec::new();
    let live = match live {
        true => " AND d.latest_state = 'success'",
        false => "",
    };
    // The window ranks keys alone (narrow rows sort fast); the records
    // are read for the winners only.
    let ranked = format!(
        "SELECT d.forge, d.repo, d.deployment_id, ROW_NUMBER() OVER ( \
             PARTITION BY d.app, LOWER(d.environment) \
             ORDER BY d.created_at DESC, d.deployment_id DESC) AS newest \
         FROM deployments d WHERE {}{live}",
        apps_in(apps, &mut binds)
    );
    let sql = format!(
        "{} ORDER BY d.app, LOWER(d.environment)",
        summaries(&format!(
            "(d.forge, d.repo, d.deployment_id) IN \
             (SELECT n.forge, n.repo, n.deployment_id FROM ({ranked}) n WHERE n.newest = 1)"
        ))
    );
    Some(Query { sql, binds })
}

/// [`History::targets`]' query; `None` for no apps.
pub(super) fn targets_query(apps: &[String]) -> Option<Query> {
    if apps.is_empty() {
        return None;
    }
    let mut binds = Vec::new();
    let sql = format!(
        "SELECT d.app, MAX(d.environment) AS environment FROM deployments d WHERE {} \
         GROUP BY d.app, LOWER(d.environment) ORDER BY d.app, LOWER(d.environment)",
        apps_in(apps, &mut binds)
    );
    Some(Query { sql, binds })
}

/// [`History::deployment_outcomes`]'s query; `None` for no apps.
pub(super) fn outcomes_query(apps: &[String], since: Timestamp, limit: usize) -> Option<Query> {
    if apps.is_empty() {
        return None;
    }
    let mut binds = Vec::new();
    let apps = apps_in(apps, &mut binds);
    binds.push(Bound::Int(millis(since)));
    binds.push(Bound::Int(sql_limit(limit)));
    let sql = format!(
        "SELECT d.app, d.environment, d.created_at, d.sha, d.task, d.latest_state, d.latest_at \
         FROM deployments d WHERE {apps} AND d.created_at >= ? \
         ORDER BY d.created_at DESC, d.deployment_id DESC LIMIT ?"
    );
    Some(Query { sql, binds })
}

/// A deployment's statuses, oldest first.
pub(super) const STATUSES_SQL: &str = "SELECT state, description, log_url, environment_url, at \
     FROM deployment_statuses WHERE forge = ? AND repo = ? AND deployment_id = ? \
     ORDER BY at, id";

/// The overview from the two newest-per-target answers.
pub(super) fn overview(
    latest: Vec<DeploymentSummary>,
    live: Vec<DeploymentSummary>,
) -> Vec<TargetSummary> {
    latest
        .into_iter()
        .map(|latest| {
            let same_target = |other: &&DeploymentSummary| {
                other.record.app == latest.record.app
                    && other
                        .record
                        .environment
                        .eq_ignore_ascii_case(&latest.record.environment)
            };
            TargetSummary {
                app: latest.record.app.clone(),
                environment: latest.record.environment.clone(),
                live: live.iter().find(same_target).cloned(),
                latest,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgresql() {
        let query = history_query(&HistoryFilter {
            apps: Some(vec!["api".into(), "web".into()]),
            environment: Some("Staging".into()),
            state: Some(StateFilter::State(DeploymentState::Success)),
            limit: 26,
            ..HistoryFilter::default()
        })
        .unwrap();
        assert_eq!(query.sql.matches('?').count(), query.binds.len());
        let numbered = query.numbered();
        assert!(numbered.contains("d.app IN ($1, $2)"), "{numbered}");
        assert!(numbered.contains("LOWER(d.environment) = $3"), "{numbered}");
        assert!(numbered.ends_with("LIMIT $5 OFFSET $6"), "{numbered}");
        assert_eq!(query.binds[2], Bound::Text("staging".into()));
        assert_eq!(query.binds[3], Bound::Text("success".into()));
    }

    #[test]
    fn no_app_to_read_is_no_query() {
        let nothing = HistoryFilter {
            apps: Some(Vec::new()),
            ..HistoryFilter::default()
        };
        assert_eq!(history_query(&nothing), None);
        assert_eq!(newest_per_target_query(&[], true), None);
    }
}
