//! [`Holds`] on SQLite: a report and the decision it makes in one
//! transaction on the single writer connection.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Sqlite, SqliteExecutor, Transaction};

use super::{SqliteStore, millis, parse_repo, repo_key};
use crate::domain::Sha;
use crate::store::rows::{ActionRow, HOLD_COLUMNS, HoldRow};
use crate::store::{
    ActionReport, ActionState, HeldAction, HoldRecord, HoldState, Holds, NewHold, ReportOutcome,
    RunSecrets, StoreResult,
};

async fn actions_of(executor: impl SqliteExecutor<'_>, id: i64) -> anyhow::Result<Vec<HeldAction>> {
    let rows: Vec<ActionRow> = sqlx::query_as(
        "SELECT name, state, deadline, sealed, reason FROM held_actions \
         WHERE hold_id = ? ORDER BY position",
    )
    .bind(id)
    .fetch_all(executor)
    .await
    .context("cannot read a held deployment's actions")?;
    rows.into_iter().map(ActionRow::into_action).collect()
}

async fn hold_in(tx: &mut Transaction<'_, Sqlite>, id: i64) -> anyhow::Result<Option<HoldRecord>> {
    let row: Option<HoldRow> = sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM held_deployments WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
    .context("cannot read a held deployment")?;
    match row {
        Some(row) => {
            let actions = actions_of(&mut **tx, row.id).await?;
            Ok(Some(row.into_record(actions)?))
        }
        None => Ok(None),
    }
}

/// Rows to records, reading each one's actions through `pool`.
async fn records(pool: &sqlx::SqlitePool, rows: Vec<HoldRow>) -> anyhow::Result<Vec<HoldRecord>> {
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let actions = actions_of(pool, row.id).await?;
        records.push(row.into_record(actions)?);
    }
    Ok(records)
}

async fn set_state(
    tx: &mut Transaction<'_, Sqlite>,
    id: i64,
    state: HoldState,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE held_deployments SET state = ? WHERE id = ?")
        .bind(state.as_str())
        .bind(id)
        .execute(&mut **tx)
        .await
        .context("cannot move a held deployment on")?;
    Ok(())
}

#[async_trait]
impl Holds for SqliteStore {
    async fn hold_deployment(&self, hold: &NewHold) -> StoreResult<i64> {
        let mut tx = self
            .writer
            .begin()
            .await
            .context("cannot hold a deployment")?;
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM held_deployments WHERE request_key = ?")
                .bind(&hold.request_key)
                .fetch_optional(&mut *tx)
                .await
                .context("cannot hold a deployment")?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO held_deployments (request_key, app, environment, created_at, body) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&hold.request_key)
        .bind(&hold.app)
        .bind(hold.environment.to_ascii_lowercase())
        .bind(millis(hold.created_at))
        .bind(hold.body.to_string())
        .fetch_one(&mut *tx)
        .await
        .context("cannot hold a deployment")?;
        for (position, (name, deadline)) in hold.actions.iter().enumerate() {
            sqlx::query(
                "INSERT INTO held_actions (hold_id, name, position, deadline) VALUES (?, ?, ?, ?)",
            )
            .bind(id)
            .bind(name)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(millis(*deadline))
            .execute(&mut *tx)
            .await
            .context("cannot hold a deployment's actions")?;
        }
        tx.commit().await.context("cannot hold a deployment")?;
        Ok(id)
    }

    async fn hold(&self, id: i64) -> StoreResult<Option<HoldRecord>> {
        let row: Option<HoldRow> = sqlx::query_as(&format!(
            "SELECT {HOLD_COLUMNS} FROM held_deployments WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .context("cannot read a held deployment")?;
        match row {
            Some(row) => Ok(records(&self.reader, vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    async fn report_action(
        &self,
        id: i64,
        action: &str,
        report: &ActionReport,
        now: Timestamp,
    ) -> StoreResult<ReportOutcome> {
        let mut tx = self
            .writer
            .begin()
            .await
            .context("cannot record a report")?;
        let Some(hold) = hold_in(&mut tx, id).await? else {
            return Ok(ReportOutcome::Unknown);
        };
        let Some(current) = hold.actions.iter().find(|held| held.name == action) else {
            return Ok(ReportOutcome::Unknown);
        };
        let reported = match report {
            ActionReport::Succeeded { .. } => ActionState::Succeeded,
            ActionReport::Failed { .. } => ActionState::Failed,
        };
        if current.state != ActionState::Pending {
            return Ok(match (current.state == reported, hold.state) {
                (true, HoldState::Ready) => ReportOutcome::Ready(hold),
                (true, HoldState::Provisioning) => ReportOutcome::Repeated(hold),
                _ => ReportOutcome::Closed(hold),
            });
        }
        if hold.state != HoldState::Provisioning {
            return Ok(ReportOutcome::Closed(hold));
        }
        if current.deadline <= now {
            // Too late, whether or not the watch round has timed it out
            // yet (it announces the timeout, once).
            return Ok(ReportOutcome::Closed(hold));
        }
        let (sealed, reason) = match report {
            ActionReport::Succeeded { sealed } => (sealed.clone(), None),
            ActionReport::Failed { reason } => (None, Some(reason.clone())),
        };
        sqlx::query(
            "UPDATE held_actions SET state = ?, sealed = ?, reason = ? WHERE hold_id = ? AND name = ?",
        )
        .bind(reported.as_str())
        .bind(sealed)
        .bind(reason)
        .bind(id)
        .bind(action)
        .execute(&mut *tx)
        .await
        .context("cannot record a report")?;
        let mut after = hold_in(&mut tx, id).await?.context("a hold vanished")?;
        let decided = match reported {
            ActionState::Failed => Some(HoldState::Failed),
            _ if after.pending().next().is_none() => Some(HoldState::Ready),
            _ => None,
        };
        if let Some(decided) = decided {
            set_state(&mut tx, id, decided).await?;
            after.state = decided;
        }
        tx.commit().await.context("cannot record a report")?;
        Ok(match after.state {
            HoldState::Ready => ReportOutcome::Ready(after),
            HoldState::Failed => ReportOutcome::Failed(after),
            _ => ReportOutcome::Recorded(after),
        })
    }

    async fn end_hold(&self, id: i64, state: HoldState) -> StoreResult<Option<HoldRecord>> {
        let mut tx = self.writer.begin().await.context("cannot end a hold")?;
        let ended = sqlx::query(
            "UPDATE held_deployments SET state = ? WHERE id = ? AND state = 'provisioning'",
        )
        .bind(state.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("cannot end a hold")?;
        if ended.rows_affected() == 0 {
            return Ok(None);
        }
        let hold = hold_in(&mut tx, id).await?;
        tx.commit().await.context("cannot end a hold")?;
        Ok(hold)
    }

    async fn settle_hold(&self, id: i64, state: HoldState) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.context("cannot settle a hold")?;
        sqlx::query("UPDATE held_deployments SET state = ? WHERE id = ? AND state = 'ready'")
            .bind(state.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("cannot settle a hold")?;
        sqlx::query("UPDATE held_actions SET sealed = NULL WHERE hold_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("cannot drop a hold's secrets")?;
        tx.commit().await.context("cannot settle a hold")?;
        Ok(())
    }

    async fn expire_holds(&self, now: Timestamp) -> StoreResult<Vec<HoldRecord>> {
        // Marked in the statement that finds them: two replicas never
        // both announce one.
        let rows: Vec<HoldRow> = sqlx::query_as(&format!(
            "UPDATE held_deployments SET state = 'timed_out' \
             WHERE state = 'provisioning' AND id IN \
               (SELECT hold_id FROM held_actions WHERE state = 'pending' AND deadline <= ?) \
             RETURNING {HOLD_COLUMNS}"
        ))
        .bind(millis(now))
        .fetch_all(&self.writer)
        .await
        .context("cannot time out held deployments")?;
        records(&self.writer, rows).await
    }

    async fn provisioning_holds(
        &self,
        app: &str,
        environment: Option<&str>,
    ) -> StoreResult<Vec<HoldRecord>> {
        let environment = environment.map(str::to_ascii_lowercase);
        let rows: Vec<HoldRow> = sqlx::query_as(&format!(
            "SELECT {HOLD_COLUMNS} FROM held_deployments \
             WHERE app = ? AND (? IS NULL OR environment = ?) AND state = 'provisioning' \
             ORDER BY id LIMIT 50"
        ))
        .bind(app)
        .bind(&environment)
        .bind(&environment)
        .fetch_all(&self.reader)
        .await
        .context("cannot read the held deployments")?;
        records(&self.reader, rows).await
    }

    async fn take_holds_to_clean(
        &self,
        app: &str,
        environment: &str,
    ) -> StoreResult<Vec<HoldRecord>> {
        let rows: Vec<HoldRow> = sqlx::query_as(&format!(
            "UPDATE held_deployments SET cleaned = 1 \
             WHERE app = ? AND environment = ? AND state = 'deployed' AND cleaned = 0 \
             RETURNING {HOLD_COLUMNS}"
        ))
        .bind(app)
        .bind(environment.to_ascii_lowercase())
        .fetch_all(&self.writer)
        .await
        .context("cannot mark held deployments cleaned up")?;
        records(&self.writer, rows).await
    }

    async fn put_run_secrets(&self, secrets: &RunSecrets) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO run_secrets (request_key, repo, sha, environment, sealed) \
             VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (request_key) DO UPDATE SET repo = excluded.repo, sha = excluded.sha, \
             environment = excluded.environment, sealed = excluded.sealed",
        )
        .bind(&secrets.request_key)
        .bind(repo_key(&secrets.repo))
        .bind(secrets.sha.as_str())
        .bind(&secrets.environment)
        .bind(&secrets.sealed)
        .execute(&self.writer)
        .await
        .context("cannot keep a deployment's secrets")?;
        Ok(())
    }

    async fn run_secrets(&self, request_key: &str) -> StoreResult<Option<RunSecrets>> {
        let row: Option<(String, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT repo, sha, environment, sealed FROM run_secrets WHERE request_key = ?",
        )
        .bind(request_key)
        .fetch_optional(&self.reader)
        .await
        .context("cannot read a deployment's secrets")?;
        row.map(|(repo, sha, environment, sealed)| {
            Ok(RunSecrets {
                request_key: request_key.to_owned(),
                repo: parse_repo(&repo)?,
                sha: Sha::new(&sha).context("corrupt commit in run_secrets")?,
                environment,
                sealed,
            })
        })
        .transpose()
    }

    async fn drop_run_secrets(&self, request_key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM run_secrets WHERE request_key = ?")
            .bind(request_key)
            .execute(&self.writer)
            .await
            .context("cannot forget a deployment's secrets")?;
        Ok(())
    }
}
