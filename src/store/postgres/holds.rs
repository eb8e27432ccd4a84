//! [`Holds`] on PostgreSQL: a report and the decision it makes in one
//! transaction that holds the hold's row lock.
//!
//! SQLite reads a hold, then writes its decision, on its single writer
//! connection. Here two replicas may record the last two reports at once,
//! so a report first locks the hold row (`SELECT ... FOR UPDATE`): the
//! second waits for the first to commit, then reads the hold and its
//! actions as the first left them (each statement of a READ COMMITTED
//! transaction sees what was committed before it began), and the hold is
//! made ready once. Ending, settling and timing a hold out change that row
//! too, so they wait for a report deciding on it, and it for them.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{PgExecutor, Postgres, Transaction};

use super::{PgStore, millis, parse_repo, repo_key};
use crate::domain::Sha;
use crate::store::rows::{ActionRow, HOLD_COLUMNS, HoldRow};
use crate::store::{
    ActionReport, ActionState, HeldAction, HoldRecord, HoldState, Holds, NewHold, ReportOutcome,
    RunSecrets, StoreResult,
};

async fn actions_of(executor: impl PgExecutor<'_>, id: i64) -> anyhow::Result<Vec<HeldAction>> {
    let rows: Vec<ActionRow> = sqlx::query_as(
        "SELECT name, state, deadline, sealed, reason FROM held_actions \
         WHERE hold_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(executor)
    .await
    .context("cannot read a held deployment's actions")?;
    rows.into_iter().map(ActionRow::into_action).collect()
}

/// The hold `id` as this transaction sees it; with `lock`, its row is
/// locked until the transaction ends (waiting for a report another
/// replica is recording on it).
async fn hold_in(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    lock: bool,
) -> anyhow::Result<Option<HoldRecord>> {
    let row: Option<HoldRow> = sqlx::query_as(&format!(
        "SELECT {HOLD_COLUMNS} FROM held_deployments WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
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
async fn records(pool: &sqlx::PgPool, rows: Vec<HoldRow>) -> anyhow::Result<Vec<HoldRecord>> {
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let actions = actions_of(pool, row.id).await?;
        records.push(row.into_record(actions)?);
    }
    Ok(records)
}

async fn set_state(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    state: HoldState,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE held_deployments SET state = $1 WHERE id = $2")
        .bind(state.as_str())
        .bind(id)
        .execute(&mut **tx)
        .await
        .context("cannot move a held deployment on")?;
    Ok(())
}

/// Records a report and the decision it makes, in `tx`, which the caller
/// commits.
async fn report_in(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    action: &str,
    report: &ActionReport,
    now: Timestamp,
) -> anyhow::Result<ReportOutcome> {
    // The row lock first: every report on this hold (and every end of
    // it) decides after the one before it committed.
    let Some(hold) = hold_in(tx, id, true).await? else {
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
        "UPDATE held_actions SET state = $1, sealed = $2, reason = $3 WHERE hold_id = $4 AND name = $5",
    )
    .bind(reported.as_str())
    .bind(sealed)
    .bind(reason)
    .bind(id)
    .bind(action)
    .execute(&mut **tx)
    .await
    .context("cannot record a report")?;
    let mut after = hold_in(tx, id, false).await?.context("a hold vanished")?;
    let decided = match reported {
        ActionState::Failed => Some(HoldState::Failed),
        _ if after.pending().next().is_none() => Some(HoldState::Ready),
        _ => None,
    };
    if let Some(decided) = decided {
        set_state(tx, id, decided).await?;
        after.state = decided;
    }
    Ok(match after.state {
        HoldState::Ready => ReportOutcome::Ready(after),
        HoldState::Failed => ReportOutcome::Failed(after),
        _ => ReportOutcome::Recorded(after),
    })
}

#[async_trait]
impl Holds for PgStore {
    async fn hold_deployment(&self, hold: &NewHold) -> StoreResult<i64> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot hold a deployment")?;
        // Not SQLite's look-then-insert: two replicas holding one request
        // at once would both look, find nothing, and the second insert
        // fail. Here the second insert waits for the first's commit and
        // does nothing; the look after it then sees the first hold.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO held_deployments (request_key, app, environment, created_at, body) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_key) DO NOTHING RETURNING id",
        )
        .bind(&hold.request_key)
        .bind(&hold.app)
        .bind(hold.environment.to_ascii_lowercase())
        .bind(millis(hold.created_at))
        .bind(hold.body.to_string())
        .fetch_optional(&mut *tx)
        .await
        .context("cannot hold a deployment")?;
        let Some(id) = inserted else {
            let existing: i64 =
                sqlx::query_scalar("SELECT id FROM held_deployments WHERE request_key = $1")
                    .bind(&hold.request_key)
                    .fetch_one(&mut *tx)
                    .await
                    .context("cannot hold a deployment")?;
            tx.commit().await.context("cannot hold a deployment")?;
            return Ok(existing);
        };
        for (position, (name, deadline)) in hold.actions.iter().enumerate() {
            sqlx::query(
                "INSERT INTO held_actions (hold_id, name, position, deadline) VALUES ($1, $2, $3, $4)",
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
            "SELECT {HOLD_COLUMNS} FROM held_deployments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("cannot read a held deployment")?;
        match row {
            Some(row) => Ok(records(&self.pool, vec![row]).await?.pop()),
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
        let mut tx = self.pool.begin().await.context("cannot record a report")?;
        let outcome = report_in(&mut tx, id, action, report, now).await?;
        // Committed whatever the outcome, also when nothing changed: a
        // transaction only dropped is rolled back when its connection is
        // next used, and until then it keeps the hold's row locked (sweeps
        // skip it, reports wait for it).
        tx.commit().await.context("cannot record a report")?;
        Ok(outcome)
    }

    async fn end_hold(&self, id: i64, state: HoldState) -> StoreResult<Option<HoldRecord>> {
        let mut tx = self.pool.begin().await.context("cannot end a hold")?;
        // The update waits for a report holding the row, then rechecks
        // `provisioning` on what it committed: of two ends, one ends it.
        let ended = sqlx::query(
            "UPDATE held_deployments SET state = $1 WHERE id = $2 AND state = 'provisioning'",
        )
        .bind(state.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("cannot end a hold")?;
        let hold = if ended.rows_affected() == 0 {
            None
        } else {
            hold_in(&mut tx, id, false).await?
        };
        tx.commit().await.context("cannot end a hold")?;
        Ok(hold)
    }

    async fn settle_hold(&self, id: i64, state: HoldState) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.context("cannot settle a hold")?;
        sqlx::query("UPDATE held_deployments SET state = $1 WHERE id = $2 AND state = 'ready'")
            .bind(state.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("cannot settle a hold")?;
        sqlx::query("UPDATE held_actions SET sealed = NULL WHERE hold_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("cannot drop a hold's secrets")?;
        tx.commit().await.context("cannot settle a hold")?;
        Ok(())
    }

    async fn expire_holds(&self, now: Timestamp) -> StoreResult<Vec<HoldRecord>> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot time out held deployments")?;
        // First lock the candidates, skipping any a report (or another
        // sweep) holds. The lateness is then checked again in a statement
        // of its own: its snapshot is taken once the rows are ours, so it
        // sees a report that committed just before. (Checked in the first
        // statement only, a report that recorded an action in time but
        // left the hold's row as it was would go unseen: a row only
        // locked, not changed, is not rechecked.)
        let candidates: Vec<i64> = sqlx::query_scalar(
            "SELECT h.id FROM held_deployments h \
             WHERE h.state = 'provisioning' AND EXISTS \
               (SELECT 1 FROM held_actions a WHERE a.hold_id = h.id AND a.state = 'pending' AND a.deadline <= $1) \
             FOR UPDATE OF h SKIP LOCKED",
        )
        .bind(millis(now))
        .fetch_all(&mut *tx)
        .await
        .context("cannot time out held deployments")?;
        // Marked in the statement that finds them: two replicas never
        // both announce one.
        let mut rows: Vec<HoldRow> = sqlx::query_as(&format!(
            "UPDATE held_deployments SET state = 'timed_out' \
             WHERE id = ANY($2) AND state = 'provisioning' AND id IN \
               (SELECT hold_id FROM held_actions WHERE state = 'pending' AND deadline <= $1) \
             RETURNING {HOLD_COLUMNS}"
        ))
        .bind(millis(now))
        .bind(&candidates)
        .fetch_all(&mut *tx)
        .await
        .context("cannot time out held deployments")?;
        tx.commit()
            .await
            .context("cannot time out held deployments")?;
        // RETURNING keeps no order.
        rows.sort_by_key(|row| row.id);
        records(&self.pool, rows).await
    }

    async fn provisioning_holds(
        &self,
        app: &str,
        environment: Option<&str>,
    ) -> StoreResult<Vec<HoldRecord>> {
        let environment = environment.map(str::to_ascii_lowercase);
        let rows: Vec<HoldRow> = sqlx::query_as(&format!(
            "SELECT {HOLD_COLUMNS} FROM held_deployments \
             WHERE app = $1 AND ($2::text IS NULL OR environment = $2) AND state = 'provisioning' \
             ORDER BY id LIMIT 50"
        ))
        .bind(app)
        .bind(&environment)
        .fetch_all(&self.pool)
        .await
        .context("cannot read the held deployments")?;
        records(&self.pool, rows).await
    }

    async fn take_holds_to_clean(
        &self,
        app: &str,
        environment: &str,
    ) -> StoreResult<Vec<HoldRecord>> {
        // Marked in the statement that finds them: two replicas taking at
        // once lock different rows, and a row the other has marked
        // meanwhile no longer matches when rechecked.
        let mut rows: Vec<HoldRow> = sqlx::query_as(&format!(
            "UPDATE held_deployments SET cleaned = 1 \
             WHERE id IN (SELECT id FROM held_deployments \
                 WHERE app = $1 AND environment = $2 AND state = 'deployed' AND cleaned = 0 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING {HOLD_COLUMNS}"
        ))
        .bind(app)
        .bind(environment.to_ascii_lowercase())
        .fetch_all(&self.pool)
        .await
        .context("cannot mark held deployments cleaned up")?;
        // RETURNING keeps no order.
        rows.sort_by_key(|row| row.id);
        records(&self.pool, rows).await
    }

    async fn put_run_secrets(&self, secrets: &RunSecrets) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO run_secrets (request_key, repo, sha, environment, sealed) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (request_key) DO UPDATE SET repo = EXCLUDED.repo, sha = EXCLUDED.sha, \
             environment = EXCLUDED.environment, sealed = EXCLUDED.sealed",
        )
        .bind(&secrets.request_key)
        .bind(repo_key(&secrets.repo))
        .bind(secrets.sha.as_str())
        .bind(&secrets.environment)
        .bind(&secrets.sealed)
        .execute(&self.pool)
        .await
        .context("cannot keep a deployment's secrets")?;
        Ok(())
    }

    async fn run_secrets(&self, request_key: &str) -> StoreResult<Option<RunSecrets>> {
        let row: Option<(String, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT repo, sha, environment, sealed FROM run_secrets WHERE request_key = $1",
        )
        .bind(request_key)
        .fetch_optional(&self.pool)
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
        sqlx::query("DELETE FROM run_secrets WHERE request_key = $1")
            .bind(request_key)
            .execute(&self.pool)
            .await
            .context("cannot forget a deployment's secrets")?;
        Ok(())
    }
}
