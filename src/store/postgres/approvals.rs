//! [`ApprovalRequests`] on PostgreSQL: a vote and the decision it makes
//! in one transaction that holds the request's row lock.
//!
//! SQLite decides a vote by reading then writing on its single writer
//! connection. Here two replicas may count the last two votes at once, so
//! a vote first locks the request row (`SELECT ... FOR UPDATE`): the
//! second vote waits for the first to commit, and then reads the request
//! and its votes as the first left them (each statement of a READ
//! COMMITTED transaction sees what was committed before it began), so it
//! finds the request approved and counts as closed.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Postgres, Transaction};

use super::{PgStore, millis};
use crate::policy::Verdict;
use crate::store::rows::{APPROVAL_COLUMNS, ApprovalRow};
use crate::store::{
    ApprovalRecord, ApprovalRequests, ApprovalState, NewApproval, StoreResult, Vote, VoteOutcome,
};

async fn votes(executor: impl sqlx::PgExecutor<'_>, request_id: i64) -> anyhow::Result<Vec<Vote>> {
    // `COLLATE "C"`: voters compared byte by byte, as SQLite does.
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT vote FROM approval_votes WHERE request_id = $1 ORDER BY at, voter COLLATE \"C\"",
    )
    .bind(request_id)
    .fetch_all(executor)
    .await
    .context("cannot read the votes")?;
    rows.iter()
        .map(|row| serde_json::from_str(row).context("corrupt vote in the store"))
        .collect()
}

/// Rows to records, reading each one's votes through `pool`.
async fn records(
    pool: &sqlx::PgPool,
    rows: Vec<ApprovalRow>,
) -> anyhow::Result<Vec<ApprovalRecord>> {
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let votes = votes(pool, row.id).await?;
        records.push(row.into_record(votes)?);
    }
    Ok(records)
}

/// The request `id` as this transaction sees it; with `lock`, its row is
/// locked until the transaction ends (waiting for a vote another replica
/// is counting on it).
async fn request_in(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    lock: bool,
) -> anyhow::Result<Option<ApprovalRecord>> {
    let row: Option<ApprovalRow> = sqlx::query_as(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM approval_requests WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await
    .context("cannot read an approval request")?;
    match row {
        Some(row) => {
            let votes = votes(&mut **tx, row.id).await?;
            Ok(Some(row.into_record(votes)?))
        }
        None => Ok(None),
    }
}

async fn set_state(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    state: ApprovalState,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE approval_requests SET state = $1 WHERE id = $2")
        .bind(state.as_str())
        .bind(id)
        .execute(&mut **tx)
        .await
        .context("cannot decide an approval request")?;
    Ok(())
}

/// Counts `vote` and makes the decision it makes, in `tx`, which the
/// caller commits.
async fn vote_in(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    vote: &Vote,
    now: Timestamp,
) -> anyhow::Result<VoteOutcome> {
    // The row lock first: every vote on this request (and the sweep
    // that expires it) decides after the one before it committed.
    let Some(request) = request_in(tx, id, true).await? else {
        return Ok(VoteOutcome::Unknown);
    };
    if request.state != ApprovalState::Waiting {
        return Ok(VoteOutcome::Closed(request));
    }
    if request.expires_at <= now {
        set_state(tx, id, ApprovalState::Expired).await?;
        let request = request_in(tx, id, false)
            .await?
            .context("a request vanished")?;
        return Ok(VoteOutcome::Closed(request));
    }
    let inserted = sqlx::query(
        "INSERT INTO approval_votes (request_id, voter, vote, at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (request_id, voter) DO NOTHING",
    )
    .bind(id)
    .bind(&vote.voter)
    .bind(serde_json::to_string(vote).context("cannot store a vote")?)
    .bind(millis(vote.at))
    .execute(&mut **tx)
    .await
    .context("cannot count a vote")?;
    if inserted.rows_affected() == 0 {
        return Ok(VoteOutcome::AlreadyVoted(request));
    }
    let mut counted = request_in(tx, id, false)
        .await?
        .context("a request vanished")?;
    let approvals = counted.approvers().len();
    let decided = match vote.verdict {
        Verdict::Reject => Some(ApprovalState::Rejected),
        Verdict::Approve
            if approvals >= usize::try_from(counted.required).unwrap_or(usize::MAX) =>
        {
            Some(ApprovalState::Approved)
        }
        Verdict::Approve => None,
    };
    if let Some(decided) = decided {
        set_state(tx, id, decided).await?;
        counted.state = decided;
    }
    Ok(match counted.state {
        ApprovalState::Approved => VoteOutcome::Approved(counted),
        ApprovalState::Rejected => VoteOutcome::Rejected(counted),
        _ => VoteOutcome::Counted(counted),
    })
}

#[async_trait]
impl ApprovalRequests for PgStore {
    async fn ask_approval(&self, request: &NewApproval) -> StoreResult<i64> {
        // The no-op update makes RETURNING give the first one's id; a
        // second replica asking at once waits for the first's insert.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO approval_requests (request_key, conversation, required, created_at, expires_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (request_key) DO UPDATE SET request_key = EXCLUDED.request_key \
             RETURNING id",
        )
        .bind(&request.request_key)
        .bind(&request.conversation)
        .bind(i64::from(request.required))
        .bind(millis(request.created_at))
        .bind(millis(request.expires_at))
        .bind(request.body.to_string())
        .fetch_one(&self.pool)
        .await
        .context("cannot keep a request waiting for approvals")?;
        Ok(id)
    }

    async fn approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>> {
        let row: Option<ApprovalRow> = sqlx::query_as(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approval_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .context("cannot read an approval request")?;
        match row {
            Some(row) => Ok(records(&self.pool, vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    async fn waiting_approvals(
        &self,
        conversation: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Vec<ApprovalRecord>> {
        let rows: Vec<ApprovalRow> = sqlx::query_as(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approval_requests \
             WHERE state = 'waiting' AND expires_at > $1 AND ($2::text IS NULL OR conversation = $2) \
             ORDER BY id LIMIT 50"
        ))
        .bind(millis(now))
        .bind(conversation)
        .fetch_all(&self.pool)
        .await
        .context("cannot read the requests waiting for approvals")?;
        records(&self.pool, rows).await
    }

    async fn vote(&self, id: i64, vote: &Vote, now: Timestamp) -> StoreResult<VoteOutcome> {
        let mut tx = self.pool.begin().await.context("cannot count a vote")?;
        let outcome = vote_in(&mut tx, id, vote, now).await?;
        // Committed whatever the outcome, also when nothing changed: a
        // transaction only dropped is rolled back when its connection is
        // next used, and until then it keeps the request's row locked
        // (sweeps skip it, votes wait for it).
        tx.commit().await.context("cannot count a vote")?;
        Ok(outcome)
    }

    async fn expire_approvals(&self, now: Timestamp) -> StoreResult<Vec<ApprovalRecord>> {
        // Marked in the statement that finds them: two replicas sweeping
        // at once lock different rows, and a row the other has marked (or
        // a vote has decided) meanwhile no longer matches when rechecked,
        // so each is announced once. A request a vote holds is skipped:
        // that vote expires it itself if its time ran out, else the next
        // sweep does.
        let mut rows: Vec<ApprovalRow> = sqlx::query_as(&format!(
            "UPDATE approval_requests SET state = 'expired' \
             WHERE id IN (SELECT id FROM approval_requests \
                 WHERE state = 'waiting' AND expires_at <= $1 FOR UPDATE SKIP LOCKED) \
             RETURNING {APPROVAL_COLUMNS}"
        ))
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await
        .context("cannot expire approval requests")?;
        // RETURNING keeps no order.
        rows.sort_by_key(|row| row.id);
        records(&self.pool, rows).await
    }
}
