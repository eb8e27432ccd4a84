//! The core store (deployment records, statuses, logs, audit, outbox,
//! inbox, waiting deployments, deploy hooks) and the local forge's store,
//! method by method, on both back ends: each test runs on SQLite and on
//! PostgreSQL ([`store_test!`]).

#[macro_use]
mod stores;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hoist::domain::{Actor, AppName, DeploymentId, DeploymentState, Origin, Platform};
use hoist::forge::{Check, CheckState, DeploymentFilter, NewDeployment, NewStatus};
use hoist::store::postgres::PgStore;
use hoist::store::sqlite::SqliteStore;
use hoist::store::{
    AuditEntry, AuditFilter, DeployHook, DeployHooks, DeploymentKey, DeploymentRecord, Inbox,
    InboxLane, LocalForgeStore, LogLine, LogStream, OutboxItem, Replies, Store, Waiting,
};
use jiff::Timestamp;
use serde_json::json;
use stores::{RawSql, at, at_once, repo, sha};

fn origin() -> Origin {
    Origin {
        platform: Platform::Slack,
        conversation: "C123".into(),
        message: Some("1700000000.000100".into()),
        link: None,
        actor: Actor {
            id: "U42".into(),
            name: "ada".into(),
            login: Some("ada-l".into()),
        },
    }
}

fn key(id: i64) -> DeploymentKey {
    DeploymentKey {
        forge: "github".into(),
        repo: repo("Acme/API"),
        id: DeploymentId(id),
    }
}

fn record(id: i64, request_key: &str) -> DeploymentRecord {
    DeploymentRecord {
        key: key(id),
        app: AppName::new("api").expect("valid app"),
        environment: "staging".into(),
        git_ref: "feature-x".into(),
        sha: sha('a'),
        task: "deploy".into(),
        origin: origin(),
        request_key: request_key.into(),
        created_at: at(0),
        decision: None,
    }
}

fn status(state: DeploymentState) -> NewStatus {
    NewStatus {
        state,
        description: Some(format!("now {state}")),
        log_url: Some("http://127.0.0.1:3000/log".into()),
        environment_url: None,
    }
}

/// The store as several connections share it, for what must hold across
/// connections: on SQLite a file (the writer, the readers, the intake's
/// group commits) in place of the in-memory store; on PostgreSQL the
/// store itself, whose pool holds several connections to the server.
#[allow(async_fn_in_trait)]
trait Shared: Sized {
    /// The shared store, and the directory to keep while it is used.
    async fn shared(self) -> (Arc<Self>, Option<tempfile::TempDir>);
}

impl Shared for SqliteStore {
    async fn shared(self) -> (Arc<Self>, Option<tempfile::TempDir>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("hoist.db").display());
        let store = SqliteStore::connect(&url).await.expect("store on a file");
        (Arc::new(store), Some(dir))
    }
}

impl Shared for PgStore {
    async fn shared(self) -> (Arc<Self>, Option<tempfile::TempDir>) {
        (Arc::new(self), None)
    }
}

store_test!(
    deployment_records_round_trip_and_repeat_as_no_ops,
    |store| {
        let first = record(7, "slack:C123:1");
        store.record_deployment(&first).await.expect("record");
        // Same deployment again: no error, nothing changes.
        let mut again = first.clone();
        again.environment = "production".into();
        store.record_deployment(&again).await.expect("repeat");

        let by_request = store
            .deployment_by_request("slack:C123:1")
            .await
            .expect("read");
        assert_eq!(by_request, Some(first.clone()));
        // Repository names compare without case, as on GitHub.
        let mut lower = key(7);
        lower.repo = repo("acme/api");
        assert_eq!(store.deployment(&lower).await.expect("read"), Some(first));

        assert_eq!(store.deployment(&key(8)).await.expect("read"), None);
        let mut other_forge = key(7);
        other_forge.forge = "local".into();
        assert_eq!(store.deployment(&other_forge).await.expect("read"), None);
        assert_eq!(
            store.deployment_by_request("nope").await.expect("read"),
            None
        );
    }
);

store_test!(a_status_is_recorded_once_per_state_and_time, |store| {
    let pending = status(DeploymentState::Pending);
    assert!(
        store
            .record_status(&key(1), &pending, at(0))
            .await
            .expect("first")
    );
    assert!(
        !store
            .record_status(&key(1), &pending, at(0))
            .await
            .expect("redelivery")
    );
    assert!(
        store
            .record_status(&key(1), &pending, at(1))
            .await
            .expect("later")
    );
    let success = status(DeploymentState::Success);
    assert!(
        store
            .record_status(&key(1), &success, at(0))
            .await
            .expect("other state")
    );
    assert!(
        store
            .record_status(&key(2), &pending, at(0))
            .await
            .expect("other deployment")
    );
    // What was recorded is found, and nothing else.
    assert!(
        store
            .has_status(&key(1), DeploymentState::Pending, at(1))
            .await
            .expect("look up")
    );
    assert!(
        !store
            .has_status(&key(1), DeploymentState::Pending, at(2))
            .await
            .expect("look up")
    );
    assert!(
        !store
            .has_status(&key(2), DeploymentState::Success, at(0))
            .await
            .expect("look up")
    );
});

store_test!(
    unfinished_deployments_are_those_without_a_final_status,
    |store| {
        for (id, created) in [(1, 0), (2, 10), (3, 20), (4, 30)] {
            let mut made = record(id, &format!("r{id}"));
            made.created_at = at(created);
            store.record_deployment(&made).await.expect("record");
        }
        store
            .record_status(&key(2), &status(DeploymentState::InProgress), at(11))
            .await
            .expect("status");
        store
            .record_status(&key(3), &status(DeploymentState::Pending), at(21))
            .await
            .expect("status");
        store
            .record_status(&key(3), &status(DeploymentState::Success), at(22))
            .await
            .expect("status");

        // Oldest first, since the time asked, each with whether it has any
        // status; a finished one is not listed.
        let unfinished = store.unfinished_deployments(at(5), 10).await.expect("list");
        assert_eq!(
            unfinished
                .iter()
                .map(|(record, seen)| (record.key.id.0, *seen))
                .collect::<Vec<_>>(),
            [(2, true), (4, false)]
        );
        assert_eq!(unfinished[1].0, {
            let mut made = record(4, "r4");
            made.created_at = at(30);
            made
        });
        assert_eq!(
            store
                .unfinished_deployments(at(0), 1)
                .await
                .expect("list")
                .len(),
            1
        );
    }
);

store_test!(a_request_is_claimed_once, |store| {
    assert_eq!(
        store
            .claim_request("slack:C1:1", at(0))
            .await
            .expect("claim"),
        None
    );
    // A second claim is told when the first was made.
    assert_eq!(
        store
            .claim_request("slack:C1:1", at(5))
            .await
            .expect("claim"),
        Some(at(0))
    );
    assert_eq!(
        store
            .claim_request("slack:C1:2", at(5))
            .await
            .expect("claim"),
        None
    );
});

store_test!(
    log_lines_come_back_in_the_order_they_were_appended,
    |store| {
        let line = |n: i64, stream, text: &str| LogLine {
            at: at(n),
            stream,
            text: text.into(),
        };
        let first = vec![
            line(0, LogStream::Hoist, "started"),
            line(1, LogStream::Stdout, "building"),
        ];
        let second = vec![
            line(2, LogStream::Stderr, "warning: unused"),
            line(3, LogStream::Stdout, "done ✓"),
        ];
        store.append_log(&key(1), &first).await.expect("append");
        store
            .append_log(&key(2), &[line(9, LogStream::Stdout, "other")])
            .await
            .expect("append");
        store.append_log(&key(1), &second).await.expect("append");
        store.append_log(&key(1), &[]).await.expect("empty batch");

        let log = store.read_log(&key(1), 0).await.expect("read");
        assert_eq!(log, [first, second.clone()].concat());
        // A reader following the log asks for what came after what it has.
        assert_eq!(store.read_log(&key(1), 2).await.expect("read"), second);
        assert!(store.read_log(&key(1), 4).await.expect("read").is_empty());
        assert!(store.read_log(&key(3), 0).await.expect("read").is_empty());
        // A long batch keeps its order too.
        let long: Vec<LogLine> = (0..300)
            .map(|n| line(10 + n, LogStream::Stdout, &format!("line {n}")))
            .collect();
        store.append_log(&key(4), &long).await.expect("append");
        assert_eq!(store.read_log(&key(4), 0).await.expect("read"), long);
    }
);

store_test!(the_audit_log_reads_newest_first, |store| {
    for (n, outcome) in ["deployed", "denied", "invalid"].iter().enumerate() {
        store
            .append_audit(&AuditEntry {
                at: at(n as i64),
                platform: Platform::Discord,
                actor: "ada".into(),
                command: format!("deploy api to env{n}"),
                outcome: (*outcome).into(),
                detail: format!("detail {n}"),
            })
            .await
            .expect("append");
    }
    let recent = store
        .audit(&AuditFilter {
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("read");
    let outcomes: Vec<_> = recent.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["invalid", "denied"]);
    assert_eq!(recent[0].platform, Platform::Discord);
    assert_eq!(recent[0].command, "deploy api to env2");
    assert_eq!(recent[0].at, at(2));
    assert_eq!(
        store
            .audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("read")
            .len(),
        3
    );
});

store_test!(the_audit_log_is_filtered_and_cannot_be_changed, |store| {
    for (n, (actor, outcome, command)) in [
        ("ada", "deployed", "deploy api to staging"),
        ("bob", "refused", "deploy api to production"),
        ("Ada", "locked", "lock production for api 100%_sure"),
    ]
    .iter()
    .enumerate()
    {
        store
            .append_audit(&AuditEntry {
                at: at(n as i64 * 1000),
                platform: Platform::Slack,
                actor: (*actor).into(),
                command: (*command).into(),
                outcome: (*outcome).into(),
                detail: format!("detail {n}"),
            })
            .await
            .expect("append");
    }
    let find = |filter: AuditFilter| {
        let store = &store;
        async move {
            store
                .audit(&AuditFilter {
                    limit: 10,
                    ..filter
                })
                .await
                .expect("read")
                .into_iter()
                .map(|entry| entry.command)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        find(AuditFilter {
            actor: Some("ADA".into()),
            ..Default::default()
        })
        .await,
        ["lock production for api 100%_sure", "deploy api to staging"]
    );
    assert_eq!(
        find(AuditFilter {
            outcome: Some("refused".into()),
            ..Default::default()
        })
        .await,
        ["deploy api to production"]
    );
    // LIKE's wildcards are taken literally.
    assert_eq!(
        find(AuditFilter {
            text: Some("0%_s".into()),
            ..Default::default()
        })
        .await,
        ["lock production for api 100%_sure"]
    );
    assert!(
        find(AuditFilter {
            text: Some("1_0".into()),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    // The text is found without case, in the command or the detail.
    assert_eq!(
        find(AuditFilter {
            text: Some("PRODUCTION".into()),
            ..Default::default()
        })
        .await,
        [
            "lock production for api 100%_sure",
            "deploy api to production"
        ]
    );
    assert_eq!(
        find(AuditFilter {
            text: Some("Detail 0".into()),
            ..Default::default()
        })
        .await,
        ["deploy api to staging"]
    );
    assert_eq!(
        find(AuditFilter {
            since: Some(at(1000)),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    for statement in ["UPDATE audit SET detail = 'changed'", "DELETE FROM audit"] {
        let error = store.execute(statement).await.expect_err("append-only");
        assert!(error.contains("append-only"), "{error}");
    }
    assert_eq!(store.fetch_i64("SELECT count(*) FROM audit").await, 3);
});

store_test!(the_outbox_dedupes_leases_retries_and_delivers, |store| {
    let body = |n: i32| json!({"text": format!("reply {n}")});
    let a = store
        .enqueue_reply(Platform::Slack, "C1", &body(1), Some("status:1:success"))
        .await
        .expect("enqueue")
        .expect("new");
    assert_eq!(
        store
            .enqueue_reply(Platform::Slack, "C1", &body(9), Some("status:1:success"))
            .await
            .expect("enqueue"),
        None,
        "same dedupe key is dropped"
    );
    let b = store
        .enqueue_reply(Platform::Slack, "C2", &body(2), None)
        .await
        .expect("enqueue")
        .expect("new");
    let c = store
        .enqueue_reply(Platform::Discord, "D1", &body(3), None)
        .await
        .expect("enqueue")
        .expect("new");
    // No dedupe key never collides.
    let d = store
        .enqueue_reply(Platform::Slack, "C3", &body(4), None)
        .await
        .expect("enqueue")
        .expect("new");

    // Oldest first, only the asked platforms, at most `limit`.
    let claimed = store
        .claim_replies(&[Platform::Slack], at(0), at(1_000), 2)
        .await
        .expect("claim");
    assert_eq!(claimed.iter().map(|i| i.id).collect::<Vec<_>>(), [a, b]);
    assert_eq!(claimed[0].body, body(1));
    assert_eq!(claimed[0].platform, Platform::Slack);
    assert_eq!(claimed[0].attempts, 1);

    // Leased rows are not handed out again before the lease ends.
    let next = store
        .claim_replies(
            &[Platform::Slack, Platform::Discord],
            at(500),
            at(1_500),
            10,
        )
        .await
        .expect("claim");
    assert_eq!(next.iter().map(|i| i.id).collect::<Vec<_>>(), [c, d]);

    store.replies_delivered(&[a]).await.expect("delivered");
    store
        .reply_failed(b, at(5_000), "slack said ratelimited")
        .await
        .expect("failed");
    assert_eq!(
        store
            .fetch_i64(&format!(
                "SELECT count(*) FROM outbox WHERE id = {b} \
                 AND last_error = 'slack said ratelimited'"
            ))
            .await,
        1
    );

    // After the lease of c and d ran out, before b's retry time.
    let later = store
        .claim_replies(
            &[Platform::Slack, Platform::Discord],
            at(2_000),
            at(3_000),
            10,
        )
        .await
        .expect("claim");
    assert_eq!(
        later.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
        [(c, 2), (d, 2)]
    );

    store.replies_delivered(&[c]).await.expect("delivered");
    store.replies_delivered(&[d]).await.expect("delivered");
    // b is due again at its retry time; delivered ones never come back.
    let retry = store
        .claim_replies(&[Platform::Slack], at(5_000), at(6_000), 10)
        .await
        .expect("claim");
    assert_eq!(
        retry.iter().map(|i| (i.id, i.attempts)).collect::<Vec<_>>(),
        [(b, 2)]
    );

    assert!(
        store
            .claim_replies(&[], at(9_000), at(9_999), 10)
            .await
            .expect("claim")
            .is_empty()
    );
    assert!(store.replies_delivered(&[999]).await.is_err());
    assert!(
        store.reply_failed(a, at(0), "too late").await.is_err(),
        "a was delivered"
    );
});

store_test!(
    a_conversation_reads_its_replies_in_order_and_given_up_ones_can_be_retried,
    |store| {
        let first = store
            .enqueue_reply(Platform::Slack, "C9", &json!({"text": "first"}), None)
            .await
            .expect("enqueue")
            .expect("new");
        let second = store
            .enqueue_reply(Platform::Slack, "C9", &json!({"text": "second"}), None)
            .await
            .expect("enqueue")
            .expect("new");
        let other = store
            .enqueue_reply(Platform::Slack, "C10", &json!({"text": "elsewhere"}), None)
            .await
            .expect("enqueue")
            .expect("new");
        // The same conversation id on another platform is another
        // conversation.
        let elsewhere = store
            .enqueue_reply(Platform::Discord, "C9", &json!({"text": "discord"}), None)
            .await
            .expect("enqueue")
            .expect("new");
        let ids = |items: Vec<OutboxItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
        let claim = |now: i64| store.claim_replies(&[Platform::Slack], at(now), at(now + 100), 10);

        // The second waits behind the first; another conversation does not.
        assert_eq!(ids(claim(0).await.expect("claim")), [first, other]);
        assert_eq!(
            ids(store
                .claim_replies(&[Platform::Discord], at(0), at(100), 10)
                .await
                .expect("claim")),
            [elsewhere]
        );
        store.replies_delivered(&[other]).await.expect("delivered");
        store
            .reply_failed(first, at(5_000), "slack is down")
            .await
            .expect("failed");
        assert!(
            ids(claim(1_000).await.expect("claim")).is_empty(),
            "still behind the first"
        );

        // Given up, the first no longer holds the conversation back.
        store
            .reply_given_up(first, "slack is down")
            .await
            .expect("given up");
        assert_eq!(ids(claim(2_000).await.expect("claim")), [second]);
        let dead = store.dead_replies(10).await.expect("dead letters");
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].id, dead[0].conversation.as_str()), (first, "C9"));
        assert_eq!(dead[0].last_error.as_deref(), Some("slack is down"));
        assert_eq!(dead[0].body["text"], "first");

        // Retried, it is due at once and no longer dead.
        assert!(store.retry_dead_reply(first).await.expect("retry"));
        assert!(
            !store.retry_dead_reply(first).await.expect("retry"),
            "only dead ones"
        );
        assert!(!store.retry_dead_reply(999).await.expect("retry"));
        assert!(
            store
                .dead_replies(10)
                .await
                .expect("dead letters")
                .is_empty()
        );
        let again = claim(3_000).await.expect("claim");
        assert_eq!(ids(again.clone()), [first]);
        assert_eq!(again[0].attempts, 1, "counted afresh");
    }
);

/// Workers claiming from one outbox at once (on PostgreSQL, on several
/// connections, each claim a statement of its own on the server).
const WORKERS: usize = 8;

store_test!(two_workers_never_claim_the_same_reply, |store| {
    let (store, _dir) = store.shared().await;
    let mut ids = HashSet::new();
    for n in 0..120 {
        let id = store
            .enqueue_reply(Platform::Shell, &format!("c{n}"), &json!({ "n": n }), None)
            .await
            .expect("enqueue")
            .expect("new");
        ids.insert(id);
    }
    // Every worker starts claiming at the same moment.
    let start = Arc::new(tokio::sync::Barrier::new(WORKERS));
    let workers = (0..WORKERS).map(|_| {
        let (store, start) = (Arc::clone(&store), Arc::clone(&start));
        tokio::spawn(async move {
            start.wait().await;
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_replies(&[Platform::Shell], at(0), at(60_000), 3)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|item| item.id));
            }
        })
    });
    let mut all = Vec::new();
    for worker in futures_util::future::join_all(workers).await {
        all.extend(worker.expect("worker"));
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a reply was claimed twice");
    assert_eq!(unique, ids);
});

store_test!(
    workers_at_once_still_deliver_a_conversation_in_order,
    |store| {
        let (store, _dir) = store.shared().await;
        // Five replies to each of twelve conversations, interleaved.
        let mut conversation_of = HashMap::new();
        for n in 0..60 {
            let conversation = format!("c{}", n % 12);
            let id = store
                .enqueue_reply(Platform::Shell, &conversation, &json!({ "n": n }), None)
                .await
                .expect("enqueue")
                .expect("new");
            conversation_of.insert(id, conversation);
        }
        let total = conversation_of.len();
        // Each claim is numbered once it returns, before its replies are
        // delivered: a reply claimed after another was delivered has the
        // higher number.
        let turn = Arc::new(AtomicU64::new(0));
        let delivered = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(tokio::sync::Barrier::new(WORKERS));
        let workers = (0..WORKERS).map(|_| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            let (turn, delivered) = (Arc::clone(&turn), Arc::clone(&delivered));
            tokio::spawn(async move {
                start.wait().await;
                let mut mine = Vec::new();
                while delivered.load(Ordering::SeqCst) < total {
                    let batch = store
                        .claim_replies(&[Platform::Shell], at(0), at(60_000), 2)
                        .await
                        .expect("claim");
                    if batch.is_empty() {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    let number = turn.fetch_add(1, Ordering::SeqCst);
                    let claimed: Vec<i64> = batch.iter().map(|item| item.id).collect();
                    mine.extend(claimed.iter().map(|&id| (number, id)));
                    store.replies_delivered(&claimed).await.expect("delivered");
                    delivered.fetch_add(claimed.len(), Ordering::SeqCst);
                }
                mine
            })
        });
        let mut claims = Vec::new();
        for worker in futures_util::future::join_all(workers).await {
            claims.extend(worker.expect("worker"));
        }
        let unique: HashSet<i64> = claims.iter().map(|&(_, id)| id).collect();
        assert_eq!(claims.len(), unique.len(), "a reply was claimed twice");
        assert_eq!(unique.len(), total);
        // Per conversation, each reply was claimed in a later claim than the
        // one before it (two of one conversation are never claimed together).
        claims.sort_unstable();
        let mut last: HashMap<&str, (u64, i64)> = HashMap::new();
        for (number, id) in &claims {
            let conversation = conversation_of[id].as_str();
            if let Some((before_number, before_id)) = last.insert(conversation, (*number, *id)) {
                assert!(
                    before_number < *number && before_id < *id,
                    "reply {id} of {conversation} claimed in claim {number}, \
                 after {before_id} in claim {before_number}"
                );
            }
        }
    }
);

store_test!(pruning_forgets_only_what_was_delivered, |store| {
    let enqueue = async |n: i64| {
        store
            .enqueue_reply(Platform::Shell, &format!("c{n}"), &json!({ "n": n }), None)
            .await
            .expect("enqueue")
            .expect("new")
    };
    let (delivered, dead, pending) = (enqueue(1).await, enqueue(2).await, enqueue(3).await);
    store
        .replies_delivered(&[delivered])
        .await
        .expect("delivered");
    store.reply_given_up(dead, "gone").await.expect("given up");
    let far = Timestamp::now() + jiff::SignedDuration::from_hours(24 * 365);
    assert_eq!(store.prune_delivered_replies(far).await.expect("prune"), 1);
    let dead_letters = store.dead_replies(10).await.expect("dead letters");
    assert_eq!(
        dead_letters.iter().map(|d| d.id).collect::<Vec<_>>(),
        [dead]
    );
    let due = store
        .claim_replies(&[Platform::Shell], far, far, 10)
        .await
        .expect("claim");
    assert_eq!(
        due.iter().map(|item| item.id).collect::<Vec<_>>(),
        [pending]
    );

    // Deliveries: a pending one stays, a handled one goes.
    store
        .store_webhook("github", "kept", "deployment_status", "{}")
        .await
        .expect("stored");
    store
        .store_webhook("github", "handled", "deployment_status", "{}")
        .await
        .expect("stored");
    let claimed = store
        .claim_webhooks(InboxLane::Statuses, at(0), at(1), 5, 10)
        .await
        .expect("claim");
    let handled: Vec<i64> = claimed.iter().skip(1).map(|item| item.id).collect();
    store.webhooks_processed(&handled).await.expect("processed");
    assert_eq!(store.prune_handled_webhooks(far).await.expect("prune"), 1);
    let left = store
        .claim_webhooks(InboxLane::Statuses, far, far, 5, 10)
        .await
        .expect("claim");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, claimed[0].id);
});

store_test!(card_messages_are_remembered_per_platform, |store| {
    assert_eq!(
        store
            .card_message("github:acme/api:7", Platform::Slack)
            .await
            .expect("read"),
        None
    );
    store
        .remember_card_message("github:acme/api:7", Platform::Slack, "1.0001")
        .await
        .expect("remember");
    store
        .remember_card_message("github:acme/api:7", Platform::Discord, "999")
        .await
        .expect("remember");
    // A new message for the same card replaces the one before.
    store
        .remember_card_message("github:acme/api:7", Platform::Slack, "2.0002")
        .await
        .expect("remember");
    assert_eq!(
        store
            .card_message("github:acme/api:7", Platform::Slack)
            .await
            .expect("read")
            .as_deref(),
        Some("2.0002")
    );
    assert_eq!(
        store
            .card_message("github:acme/api:7", Platform::Discord)
            .await
            .expect("read")
            .as_deref(),
        Some("999")
    );
});

fn new_deployment(request_key: &str, environment: &str) -> NewDeployment {
    NewDeployment {
        git_ref: "main".into(),
        task: "deploy".into(),
        environment: environment.into(),
        description: Some("ship it".into()),
        auto_merge: false,
        required_contexts: None,
        payload: json!({"target": environment, "hoist": {"origin": {"platform": "shell"}}}),
        transient_environment: false,
        production_environment: environment == "production",
        request_key: request_key.into(),
        retried: false,
        requested_by: "ada".into(),
    }
}

store_test!(
    local_deployments_insert_idempotently_and_list_newest_first,
    |store| {
        let api = repo("acme/api");
        let first = store
            .insert_local_deployment(&api, &new_deployment("r1", "staging"), &sha('a'), at(0))
            .await
            .expect("insert");
        assert_eq!(first.git_ref, "main");
        assert_eq!(first.sha, sha('a'));
        assert_eq!(first.creator, "ada");
        assert_eq!(first.created_at, at(0));
        assert_eq!(first.state, None);
        assert!(!first.production_environment);
        assert_eq!(first.payload["target"], "staging");

        // The same request again returns the first deployment unchanged.
        let repeat = store
            .insert_local_deployment(
                &repo("ACME/api"),
                &new_deployment("r1", "production"),
                &sha('b'),
                at(5),
            )
            .await
            .expect("repeat");
        assert_eq!(repeat, first);
        assert_eq!(
            store
                .local_deployment_by_request(&api, "r1")
                .await
                .expect("read"),
            Some(first.clone())
        );
        assert_eq!(
            store
                .local_deployment_by_request(&api, "r2")
                .await
                .expect("read"),
            None
        );

        let second = store
            .insert_local_deployment(&api, &new_deployment("r2", "production"), &sha('b'), at(1))
            .await
            .expect("insert");
        assert!(second.id > first.id);
        assert!(second.production_environment);
        // The same request key in another repository is another deployment.
        let other = store
            .insert_local_deployment(
                &repo("acme/web"),
                &new_deployment("r1", "staging"),
                &sha('c'),
                at(2),
            )
            .await
            .expect("insert");
        assert_ne!(other.id, first.id);

        store
            .insert_local_status(&api, first.id, &status(DeploymentState::InProgress), at(3))
            .await
            .expect("status");
        store
            .insert_local_status(&api, first.id, &status(DeploymentState::Success), at(4))
            .await
            .expect("status");
        let read = store
            .local_deployment(&api, first.id)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(read.state, Some(DeploymentState::Success));
        assert_eq!(read.status_at, Some(at(4)));
        assert_eq!(
            store
                .local_statuses(&api, first.id)
                .await
                .expect("statuses"),
            vec![
                (status(DeploymentState::InProgress), at(3)),
                (status(DeploymentState::Success), at(4))
            ]
        );
        assert!(
            store
                .local_statuses(&repo("acme/web"), first.id)
                .await
                .expect("statuses")
                .is_empty()
        );
        assert_eq!(
            store
                .local_deployment(&repo("acme/web"), first.id)
                .await
                .expect("read"),
            None
        );

        let all = store
            .list_local_deployments(&api, &DeploymentFilter::default())
            .await
            .expect("list");
        assert_eq!(
            all.iter().map(|d| d.id).collect::<Vec<_>>(),
            [second.id, first.id]
        );
        let staging = DeploymentFilter {
            environment: Some("staging".into()),
            ..DeploymentFilter::default()
        };
        let listed = store
            .list_local_deployments(&api, &staging)
            .await
            .expect("list");
        assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [first.id]);
        assert_eq!(listed[0].state, Some(DeploymentState::Success));
        let by_sha = DeploymentFilter {
            sha: Some(sha('b')),
            task: Some("deploy".into()),
            ..DeploymentFilter::default()
        };
        let listed = store
            .list_local_deployments(&api, &by_sha)
            .await
            .expect("list");
        assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), [second.id]);
        let other_task = DeploymentFilter {
            task: Some("deploy:migrate".into()),
            ..DeploymentFilter::default()
        };
        assert!(
            store
                .list_local_deployments(&api, &other_task)
                .await
                .expect("list")
                .is_empty()
        );
        let one = DeploymentFilter {
            limit: 1,
            ..DeploymentFilter::default()
        };
        assert_eq!(
            store
                .list_local_deployments(&api, &one)
                .await
                .expect("list")
                .len(),
            1
        );
    }
);

store_test!(
    a_local_status_needs_a_deployment_of_that_repository,
    |store| {
        let api = repo("acme/api");
        let made = store
            .insert_local_deployment(&api, &new_deployment("r1", "staging"), &sha('a'), at(0))
            .await
            .expect("insert");
        let error = store
            .insert_local_status(
                &repo("acme/web"),
                made.id,
                &status(DeploymentState::Success),
                at(1),
            )
            .await
            .expect_err("wrong repo");
        assert!(
            format!("{error:#}").contains("acme/web has no local deployment"),
            "{error:#}"
        );
        assert!(
            store
                .insert_local_status(
                    &api,
                    DeploymentId(999),
                    &status(DeploymentState::Success),
                    at(1)
                )
                .await
                .is_err()
        );
    }
);

store_test!(commit_checks_are_one_per_name_and_upserted, |store| {
    let api = repo("acme/api");
    let check = |name: &str, state| Check {
        name: name.into(),
        state,
        url: None,
    };
    store
        .set_commit_check(&api, &sha('a'), &check("ci", CheckState::Pending))
        .await
        .expect("set");
    store
        .set_commit_check(&api, &sha('a'), &check("lint", CheckState::Failure))
        .await
        .expect("set");
    store
        .set_commit_check(&api, &sha('a'), &check("ci", CheckState::Success))
        .await
        .expect("set");
    store
        .set_commit_check(&api, &sha('b'), &check("ci", CheckState::Error))
        .await
        .expect("set");

    assert_eq!(
        store.commit_checks(&api, &sha('a')).await.expect("read"),
        vec![
            check("ci", CheckState::Success),
            check("lint", CheckState::Failure)
        ]
    );
    assert_eq!(
        store
            .commit_checks(&repo("Acme/Api"), &sha('b'))
            .await
            .expect("read"),
        vec![check("ci", CheckState::Error)]
    );
    assert!(
        store
            .commit_checks(&repo("acme/web"), &sha('a'))
            .await
            .expect("read")
            .is_empty()
    );
});

store_test!(
    deliveries_stored_side_by_side_are_each_new_once_and_claimed_by_lane,
    |store| {
        let (store, _dir) = store.shared().await;
        // 120 requests at once (on SQLite committed in groups): 40 keys
        // sent twice, some of them surely side by side.
        let stores = (0..120).map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let (source, event) = if n % 2 == 0 {
                    ("github", "deployment_status")
                } else {
                    ("slack", "slash_command")
                };
                let delivery = format!("d-{}", n % 80);
                let new = store
                    .store_webhook(source, &delivery, event, &format!("{{\"n\":{n}}}"))
                    .await
                    .expect("stored");
                (source, delivery, new)
            })
        });
        let mut new_per_key = HashMap::new();
        for stored in futures_util::future::join_all(stores).await {
            let (source, delivery, new) = stored.expect("task");
            *new_per_key.entry((source, delivery)).or_insert(0) += usize::from(new);
        }
        assert!(new_per_key.values().all(|&new| new == 1), "{new_per_key:?}");

        let statuses = store
            .claim_webhooks(InboxLane::Statuses, at(0), at(60_000), 5, 1000)
            .await
            .expect("claim statuses");
        let requests = store
            .claim_webhooks(InboxLane::Requests, at(0), at(60_000), 5, 1000)
            .await
            .expect("claim requests");
        assert!(
            statuses
                .iter()
                .all(|item| item.event == "deployment_status")
        );
        assert!(requests.iter().all(|item| item.event == "slash_command"));
        assert_eq!(statuses.len() + requests.len(), new_per_key.len());

        // Processed together; nothing is due again, even after the lease.
        let ids: Vec<i64> = statuses.iter().map(|item| item.id).collect();
        store.webhooks_processed(&ids).await.expect("processed");
        let again = store
            .claim_webhooks(InboxLane::Statuses, at(120_000), at(180_000), 5, 1000)
            .await
            .expect("claim again");
        assert!(again.is_empty(), "{again:?}");
    }
);

store_test!(
    a_delivery_is_leased_tried_a_bounded_number_of_times_or_dropped,
    |store| {
        assert!(
            store
                .store_webhook("github", "g-1", "deployment_status", "{\"a\":1}")
                .await
                .expect("stored")
        );
        assert!(
            !store
                .store_webhook("github", "g-1", "deployment_status", "{\"a\":2}")
                .await
                .expect("redelivery"),
            "a redelivery is not new"
        );
        // Another source's delivery id is its own; a GitHub event that is not
        // a status waits in the requests lane.
        assert!(
            store
                .store_webhook("slack", "g-1", "slash_command", "{}")
                .await
                .expect("stored")
        );
        assert!(
            store
                .store_webhook("github", "g-2", "push", "{}")
                .await
                .expect("stored")
        );

        let first = store
            .claim_webhooks(InboxLane::Statuses, at(0), at(100), 2, 10)
            .await
            .expect("claim");
        assert_eq!(first.len(), 1);
        assert_eq!(
            (
                first[0].source.as_str(),
                first[0].event.as_str(),
                first[0].body.as_str()
            ),
            ("github", "deployment_status", "{\"a\":1}")
        );
        assert_eq!(first[0].attempts, 1);
        let requests = store
            .claim_webhooks(InboxLane::Requests, at(0), at(100), 2, 10)
            .await
            .expect("claim");
        assert_eq!(
            requests
                .iter()
                .map(|item| (item.source.as_str(), item.event.as_str()))
                .collect::<Vec<_>>(),
            [("slack", "slash_command"), ("github", "push")]
        );
        // Leased: not handed out again until the lease runs out.
        assert!(
            store
                .claim_webhooks(InboxLane::Statuses, at(50), at(150), 2, 10)
                .await
                .expect("claim")
                .is_empty()
        );
        let second = store
            .claim_webhooks(InboxLane::Statuses, at(100), at(200), 2, 10)
            .await
            .expect("claim");
        assert_eq!(
            second
                .iter()
                .map(|i| (i.id, i.attempts))
                .collect::<Vec<_>>(),
            [(first[0].id, 2)]
        );
        // Tried as often as allowed: never again.
        assert!(
            store
                .claim_webhooks(InboxLane::Statuses, at(300), at(400), 2, 10)
                .await
                .expect("claim")
                .is_empty()
        );

        // Dropped, a delivery is not handed out again, and keeps its body.
        store
            .webhook_dropped(requests[0].id, "unknown command")
            .await
            .expect("dropped");
        let left = store
            .claim_webhooks(InboxLane::Requests, at(500), at(600), 5, 10)
            .await
            .expect("claim");
        assert_eq!(
            left.iter().map(|item| item.id).collect::<Vec<_>>(),
            [requests[1].id]
        );
        assert_eq!(
            store
                .fetch_i64(&format!(
                    "SELECT count(*) FROM webhook_inbox WHERE id = {} \
                 AND last_error = 'unknown command' AND body = '{{}}'",
                    requests[0].id
                ))
                .await,
            1
        );
    }
);

store_test!(
    waiting_deployments_are_claimed_by_commit_leased_and_kept_or_ended,
    |store| {
        let api = repo("Acme/API");
        store
            .wait_for_checks(&api, &sha('a'), "push:1", &json!({"n": 1}), at(0))
            .await
            .unwrap();
        store
            .wait_for_checks(&api, &sha('b'), "push:2", &json!({"n": 2}), at(1))
            .await
            .unwrap();
        // Kept again (a new pending check): the body changes, the time stays.
        store
            .wait_for_checks(&api, &sha('a'), "push:1", &json!({"n": 10}), at(5))
            .await
            .unwrap();

        let of_a = store
            .claim_waiting(Some((&repo("acme/api"), &sha('a'))), at(10), at(70), 10)
            .await
            .unwrap();
        assert_eq!(of_a.len(), 1, "one commit's only, whatever the name's case");
        assert_eq!(of_a[0].body, json!({"n": 10}));
        assert_eq!(of_a[0].created_at, at(0));
        // Leased: a second look finds it taken, the other commit's free.
        let all = store.claim_waiting(None, at(11), at(71), 10).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].body, json!({"n": 2}));

        store.keep_waiting(of_a[0].id).await.unwrap();
        store.stop_waiting(all[0].id).await.unwrap();
        let again = store.claim_waiting(None, at(12), at(72), 10).await.unwrap();
        assert_eq!(
            again.iter().map(|item| item.id).collect::<Vec<_>>(),
            [of_a[0].id],
            "kept is free at once; stopped is gone"
        );
        // A lease that ran out (a worker died) frees it too.
        let expired = store
            .claim_waiting(None, at(73), at(133), 10)
            .await
            .unwrap();
        assert_eq!(expired.len(), 1);
    }
);

fn hook(id: &str, name: &str) -> DeployHook {
    DeployHook {
        id: id.into(),
        name: name.into(),
        app: "api".into(),
        environment: "staging".into(),
        secret_sha256: "ab".repeat(32),
        created_at: at(0),
        last_used_at: None,
    }
}

store_test!(
    deploy_hooks_are_found_by_id_listed_by_name_and_names_are_unique,
    |store| {
        assert!(store.create_hook(&hook("id-b", "ci-web")).await.unwrap());
        assert!(store.create_hook(&hook("id-a", "ci-api")).await.unwrap());
        // A taken name stores nothing.
        assert!(!store.create_hook(&hook("id-c", "ci-api")).await.unwrap());
        assert_eq!(store.hook_by_id("id-c").await.unwrap(), None);

        assert_eq!(
            store.hook_by_id("id-a").await.unwrap(),
            Some(hook("id-a", "ci-api"))
        );
        assert_eq!(store.hook_by_id("unknown").await.unwrap(), None);
        let names: Vec<String> = store
            .hooks()
            .await
            .unwrap()
            .into_iter()
            .map(|hook| hook.name)
            .collect();
        assert_eq!(names, ["ci-api", "ci-web"]);

        store.hook_used("id-a", at(5_000)).await.unwrap();
        let used = store.hook_by_id("id-a").await.unwrap().unwrap();
        assert_eq!(used.last_used_at, Some(at(5_000)));
    }
);

store_test!(
    a_deleted_deploy_hook_is_gone_at_once_and_its_name_free,
    |store| {
        // On SQLite a file: read through the readers, right after the
        // writer's delete.
        let (store, _dir) = store.shared().await;
        store.create_hook(&hook("id-a", "ci-api")).await.unwrap();
        assert!(store.delete_hook("ci-api").await.unwrap());
        assert_eq!(store.hook_by_id("id-a").await.unwrap(), None);
        assert!(!store.delete_hook("ci-api").await.unwrap());
        assert!(store.hooks().await.unwrap().is_empty());
        assert!(store.create_hook(&hook("id-b", "ci-api")).await.unwrap());
    }
);

store_test!(a_webhook_stored_twice_at_once_is_new_once, |store| {
    let store = Arc::new(store);
    // The same delivery, sent by many at once (GitHub redelivering while
    // the first is still being stored, or two replicas behind a balancer).
    for (source, event) in [("github", "deployment_status"), ("slack", "slash_command")] {
        let tasks = (0..16)
            .map(|n| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .store_webhook(source, "same-delivery", event, &format!("{{\"n\":{n}}}"))
                        .await
                        .expect("stored")
                }
            })
            .collect();
        let outcomes = at_once(tasks).await;
        assert_eq!(
            outcomes.iter().filter(|&&new| new).count(),
            1,
            "{source}: new exactly once: {outcomes:?}"
        );
    }
    assert_eq!(
        store
            .fetch_i64("SELECT count(*) FROM webhook_inbox WHERE delivery_id = 'same-delivery'")
            .await,
        2,
        "one row per source"
    );
    let statuses = store
        .claim_webhooks(InboxLane::Statuses, at(0), at(60_000), 5, 100)
        .await
        .expect("claim statuses");
    let requests = store
        .claim_webhooks(InboxLane::Requests, at(0), at(60_000), 5, 100)
        .await
        .expect("claim requests");
    assert_eq!((statuses.len(), requests.len()), (1, 1));
    assert_eq!(statuses[0].source, "github");
    assert_eq!(requests[0].source, "slack");
});

/// A `deployment_status` delivery of deployment `id` of Acme/API (GitHub
/// names the repository in every such event).
fn status_body(id: i64, state: &str) -> String {
    json!({
        "deployment": {"id": id},
        "deployment_status": {"state": state},
        "repository": {"full_name": "Acme/API"},
    })
    .to_string()
}

store_test!(
    a_deployments_statuses_are_claimed_in_order_across_claimers,
    |store| {
        // Interleaved: 7a, 8a, 7b, 8b.
        for (delivery, id, state) in [
            ("7a", 7, "in_progress"),
            ("8a", 8, "in_progress"),
            ("7b", 7, "success"),
            ("8b", 8, "success"),
        ] {
            assert!(
                store
                    .store_webhook(
                        "github",
                        delivery,
                        "deployment_status",
                        &status_body(id, state)
                    )
                    .await
                    .expect("stored"),
                "{delivery} is new"
            );
        }
        let bodies = |items: &[hoist::store::InboxItem]| {
            items
                .iter()
                .map(|item| item.body.clone())
                .collect::<Vec<_>>()
        };
        let (a7, a8, b7, b8) = (
            status_body(7, "in_progress"),
            status_body(8, "in_progress"),
            status_body(7, "success"),
            status_body(8, "success"),
        );

        // Claimer A takes the oldest.
        let by_a = store
            .claim_webhooks(InboxLane::Statuses, at(0), at(60_000), 5, 1)
            .await
            .expect("claim A");
        assert_eq!(bodies(&by_a), [a7], "A gets 7a");

        // Claimer B must not get 7b while 7a is A's; 8's may come, in order.
        let by_b = store
            .claim_webhooks(InboxLane::Statuses, at(1), at(60_001), 5, 100)
            .await
            .expect("claim B");
        let got_b = bodies(&by_b);
        assert!(
            !got_b.contains(&b7),
            "B got 7b while 7a is leased to A: {got_b:?}"
        );
        assert!(
            got_b.iter().all(|body| *body == a8 || *body == b8),
            "B gets only deployment 8's: {got_b:?}"
        );
        assert!(
            !got_b.contains(&b8) || got_b.contains(&a8),
            "8b never before 8a: {got_b:?}"
        );
        // Nor does anyone else, while A holds 7a.
        let by_c = store
            .claim_webhooks(InboxLane::Statuses, at(2), at(60_002), 5, 100)
            .await
            .expect("claim C");
        assert!(
            !bodies(&by_c).contains(&b7),
            "7b claimed while 7a is leased to A: {:?}",
            bodies(&by_c)
        );

        // A is done with 7a: 7b is due.
        store
            .webhooks_processed(&[by_a[0].id])
            .await
            .expect("processed");
        let after = store
            .claim_webhooks(InboxLane::Statuses, at(3), at(60_003), 5, 100)
            .await
            .expect("claim after");
        assert!(
            bodies(&after).contains(&b7),
            "7b is due once 7a is processed: {:?}",
            bodies(&after)
        );
    }
);

store_test!(
    statuses_claimed_at_once_lease_each_deployment_to_one_claimer,
    |store| {
        let store = Arc::new(store);
        // Three deployments' statuses, interleaved: 1a, 2a, 3a, 1b, 2b, ...
        let states = ["queued", "in_progress", "success", "inactive"];
        let mut ids_of: HashMap<i64, Vec<i64>> = HashMap::new();
        for state in states {
            for deployment in 1..=3 {
                let delivery = format!("{deployment}-{state}");
                assert!(
                    store
                        .store_webhook(
                            "github",
                            &delivery,
                            "deployment_status",
                            &status_body(deployment, state)
                        )
                        .await
                        .expect("stored")
                );
            }
        }
        let claimers = (0..8)
            .map(|_| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .claim_webhooks(InboxLane::Statuses, at(0), at(60_000), 5, 2)
                        .await
                        .expect("claim")
                }
            })
            .collect();
        let claims = at_once(claimers).await;
        let mut claimer_of: HashMap<i64, usize> = HashMap::new();
        for (claimer, items) in claims.iter().enumerate() {
            for item in items {
                let body: serde_json::Value = serde_json::from_str(&item.body).expect("json");
                let deployment = body["deployment"]["id"].as_i64().expect("id");
                let first = *claimer_of.entry(deployment).or_insert(claimer);
                assert_eq!(
                    first, claimer,
                    "deployment {deployment}'s statuses leased to two claimers: {claims:?}"
                );
                ids_of.entry(deployment).or_default().push(item.id);
            }
        }
        // Each deployment's leased statuses are its oldest, in order.
        for (deployment, ids) in &ids_of {
            let all = store
                .fetch_i64(&format!(
                    "SELECT count(*) FROM webhook_inbox WHERE delivery_id LIKE '{deployment}-%'"
                ))
                .await;
            assert_eq!(all, 4);
            let older_unclaimed = store
                .fetch_i64(&format!(
                    "SELECT count(*) FROM webhook_inbox WHERE delivery_id LIKE '{deployment}-%' \
                 AND lease_until IS NULL AND id < {}",
                    ids.iter().max().expect("some")
                ))
                .await;
            assert_eq!(older_unclaimed, 0, "deployment {deployment}: {ids:?}");
        }
        assert_eq!(claimer_of.len(), 3, "every deployment's first is claimed");
    }
);
