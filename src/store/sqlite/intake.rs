//! Group commit for the inbox: deliveries that arrive together are stored
//! in one durable (FULL) commit, so a burst of webhooks costs one disk sync
//! rather than one each. Each caller still gets its answer only after the
//! commit that holds its delivery is on disk.

use std::collections::HashSet;

use anyhow::Context;
use jiff::Timestamp;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::millis;
use crate::store::InboxLane;

/// The most deliveries one commit takes: a bound on the statement's size
/// (six binds a row, far below SQLite's limit).
const MAX_BATCH: usize = 64;
/// Deliveries waiting for a commit before senders wait for room.
const QUEUE: usize = 1024;

/// One delivery to store, and where to say whether it was new.
struct Delivery {
    source: String,
    delivery_id: String,
    event: String,
    body: String,
    stored: oneshot::Sender<Result<bool, String>>,
}

/// The handle callers store through; the committing task ends when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub(super) struct Intake {
    queue: mpsc::Sender<Delivery>,
}

impl Intake {
    /// Starts the task that commits deliveries through `writer`.
    pub(super) fn start(writer: SqlitePool) -> Self {
        let (queue, deliveries) = mpsc::channel(QUEUE);
        tokio::spawn(commit_until_closed(writer, deliveries));
        Self { queue }
    }

    /// Stores a delivery durably; `false` when its (source, delivery id)
    /// was stored before.
    pub(super) async fn store(
        &self,
        source: &str,
        delivery_id: &str,
        event: &str,
        body: &str,
    ) -> anyhow::Result<bool> {
        let (stored, answer) = oneshot::channel();
        let delivery = Delivery {
            source: source.to_owned(),
            delivery_id: delivery_id.to_owned(),
            event: event.to_owned(),
            body: body.to_owned(),
            stored,
        };
        let stopped = || anyhow::anyhow!("the store's intake has stopped");
        self.queue.send(delivery).await.map_err(|_| stopped())?;
        answer
            .await
            .map_err(|_| stopped())?
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot store {source} delivery {delivery_id}"))
    }
}

async fn commit_until_closed(writer: SqlitePool, mut deliveries: mpsc::Receiver<Delivery>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while deliveries.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match commit(&writer, &batch).await {
            Ok(new) => {
                for (delivery, new) in batch.drain(..).zip(new) {
                    let _ = delivery.stored.send(Ok(new));
                }
            }
            Err(error) => {
                let error = format!("{error:#}");
                for delivery in batch.drain(..) {
                    let _ = delivery.stored.send(Err(error.clone()));
                }
            }
        }
    }
}

/// One FULL commit of `batch`; for each delivery, whether it was new.
async fn commit(writer: &SqlitePool, batch: &[Delivery]) -> anyhow::Result<Vec<bool>> {
    let mut connection = writer.acquire().await.context("cannot reach the store")?;
    // The callers acknowledge once this returns, so this commit is synced
    // to disk (FULL) whatever the pool's setting (see `SqliteStore`).
    sqlx::query("PRAGMA synchronous = FULL")
        .execute(&mut *connection)
        .await
        .context("cannot make the insert durable")?;
    let rows = vec!["(?, ?, ?, ?, ?, ?)"; batch.len()].join(", ");
    let sql = format!(
        "INSERT INTO webhook_inbox (source, delivery_id, event, body, received_at, order_key) \
         VALUES {rows} ON CONFLICT DO NOTHING RETURNING source, delivery_id"
    );
    let now = millis(Timestamp::now());
    let mut insert = sqlx::query_as::<_, (String, String)>(&sql);
    for delivery in batch {
        insert = insert
            .bind(&delivery.source)
            .bind(&delivery.delivery_id)
            .bind(&delivery.event)
            .bind(&delivery.body)
            .bind(now)
            .bind(InboxLane::order_key(
                &delivery.source,
                &delivery.event,
                &delivery.body,
            ));
    }
    let inserted = insert.fetch_all(&mut *connection).await;
    // Back to the pool's setting whatever happened (a connection left
    // FULL is only slower).
    let _ = sqlx::query("PRAGMA synchronous = NORMAL")
        .execute(&mut *connection)
        .await;
    let mut inserted: HashSet<(String, String)> = inserted?.into_iter().collect();
    // A key sent twice in one batch was inserted once: new for the first.
    Ok(batch
        .iter()
        .map(|d| inserted.remove(&(d.source.clone(), d.delivery_id.clone())))
        .collect())
}
