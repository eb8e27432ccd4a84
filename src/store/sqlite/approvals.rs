//! [`ApprovalRequests`] on SQLite: a vote and the decision it makes in
//! one transaction on the single writer connection.

use anyhow::Context;
use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::{Sqlite, Transaction};

use super::{SqliteStore, millis};
use crate::policy::Verdict;
use crate::store::rows::{APPROVAL_COLUMNS, ApprovalRow};
use crate::store::{
    ApprovalRecord, ApprovalRequests, ApprovalState, NewApproval, StoreResult, Vote, VoteOutcome,
};

async fn votes(
    executor: impl sqlx::SqliteExecutor<'_>,
    request_id: i64,
) -> anyhow::Result<Vec<Vote>> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT vote FROM approval_votes WHERE request_id = ? ORDER BY at, voter",
    )
    .bind(request_id)
    .fetch_all(executor)
    .await
    .context("cannot read the votes")?;
    rows.iter()
        .map(|row| serde_json::from_str(row).context("corrupt vote in the store"))
        .collect()
}

async fn request_in(
    tx: &mut Transaction<'_, Sqlite>,
    id: i64,
) -> anyhow::Result<Option<ApprovalRecord>> {
    let row: Option<ApprovalRow> = sqlx::query_as(&format!(
        "SELECT {APPROVAL_COLUMNS} FROM approval_requests WHERE id = ?"
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
    tx: &mut Transaction<'_, Sqlite>,
    id: i64,
    state: ApprovalState,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE approval_requests SET state = ? WHERE id = ?")
        .bind(state.as_str())
        .bind(id)
        .execute(&mut **tx)
        .await
        .context("cannot decide an approval request")?;
    Ok(())
}

#[async_trait]
impl ApprovalRequests for SqliteStore {
    async fn ask_approval(&self, request: &NewApproval) -> StoreResult<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO approval_requests (request_key, conversation, required, created_at, expires_at, body) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (request_key) DO UPDATE SET request_key = excluded.request_key \
             RETURNING id",
        )
        .bind(&request.request_key)
        .bind(&request.conversation)
        .bind(i64::from(request.required))
        .bind(millis(request.created_at))
        .bind(millis(request.expires_at))
        .bind(request.body.to_string())
        .fetch_one(&self.writer)
        .await
        .context("cannot keep a request waiting for approvals")?;
        Ok(id)
    }

    async fn approval(&self, id: i64) -> StoreResult<Option<ApprovalRecord>> {
        let row: Option<ApprovalRow> = sqlx::query_as(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approval_requests WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .context("cannot read an approval request")?;
        match row {
            Some(row) => {
                let votes = votes(&self.reader, row.id).await?;
                Ok(Some(row.into_record(votes)?))
            }
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
             WHERE state = 'waiting' AND expires_at > ? AND (? IS NULL OR conversation = ?) \
             ORDER BY id LIMIT 50"
        ))
        .bind(millis(now))
        .bind(conversation)
        .bind(conversation)
        .fetch_all(&self.reader)
        .await
        .context("cannot read the requests waiting for approvals")?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let votes = votes(&self.reader, row.id).await?;
            records.push(row.into_record(votes)?);
        }
        Ok(records)
    }

    async fn vote(&self, id: i64, vote: &Vote, now: Timestamp) -> StoreResult<VoteOutcome> {
        let mut tx = self.writer.begin().await.context("cannot count a vote")?;
        let Some(request) = request_in(&mut tx, id).await? else {
            return Ok(VoteOutcome::Unknown);
        };
        if request.state != ApprovalState::Waiting {
            return Ok(VoteOutcome::Closed(request));
        }
        if request.expires_at <= now {
            set_state(&mut tx, id, ApprovalState::Expired).await?;
            let request = request_in(&mut tx, id)
                .await?
                .context("a request vanished")?;
            tx.commit().await.context("cannot expire a request")?;
            return Ok(VoteOutcome::Closed(request));
        }
        let inserted = sqlx::query(
            "INSERT INTO approval_votes (request_id, voter, vote, at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (request_id, voter) DO NOTHING",
        )
        .bind(id)
        .bind(&vote.voter)
        .bind(serde_json::to_string(vote).context("cannot store a vote")?)
        .bind(millis(vote.at))
        .execute(&mut *tx)
        .await
        .context("cannot count a vote")?;
        if inserted.rows_affected() == 0 {
            return Ok(VoteOutcome::AlreadyVoted(request));
        }
        let mut counted = request_in(&mut tx, id)
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
            set_state(&mut tx, id, decided).await?;
            counted.state = decided;
        }
        tx.commit().await.context("cannot count a vote")?;
        Ok(match counted.state {
            ApprovalState::Approved => VoteOutcome::Approved(counted),
            ApprovalState::Rejected => VoteOutcome::Rejected(counted),
            _ => VoteOutcome::Counted(counted),
        })
    }

    async fn expire_approvals(&self, now: Timestamp) -> StoreResult<Vec<ApprovalRecord>> {
        // Marked in the statement that finds them: two replicas never
        // both announce one.
        let rows: Vec<ApprovalRow> = sqlx::query_as(&format!(
            "UPDATE approval_requests SET state = 'expired' \
             WHERE state = 'waiting' AND expires_at <= ? RETURNING {APPROVAL_COLUMNS}"
        ))
        .bind(millis(now))
        .fetch_all(&self.writer)
        .await
        .context("cannot expire approval requests")?;
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            let votes = votes(&self.writer, row.id).await?;
            records.push(row.into_record(votes)?);
        }
        Ok(records)
    }
}
