//! The SQLite store, method by method, on real databases (in memory, and a
//! file where connections must share it).

use std::collections::HashSet;
use std::sync::Arc;

use hoist::domain::{
    Actor, AppName, DeploymentId, DeploymentState, Origin, Platform, RepoName, Sha,
};
use hoist::forge::{Check, CheckState, DeploymentFilter, NewDeployment, NewStatus};
use hoist::policy::{Lock, LockKind, LockScope};
use hoist::store::Locks;
use hoist::store::sqlite::SqliteStore;
use hoist::store::{
    AuditEntry, DeploymentKey, DeploymentRecord, Inbox, InboxLane, LocalForgeStore, LogLine,
    LogStream, Replies, RunCancel, RunQueue, RunState, Store, TakeLock, Waiting,
};
use jiff::Timestamp;
use serde_json::json;

/// A fixed, millisecond-precise time: the store keeps milliseconds.
fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millisecond(1_700_000_000_000 + offset_ms).expect("valid time")
}

fn repo(s: &str) -> RepoName {
    s.parse().expect("valid repo")
}

fn sha(digit: char) -> Sha {
    Sha::new(&digit.to_string().repeat(40)).expect("valid sha")
}

async fn memory() -> SqliteStore {
    SqliteStore::connect("sqlite::memory:")
        .await
        .expect("in-memory store")
}

fn origin() -> Origin {
    Origin {
        platform: Platform::Slack,
        conversation: "C123".into(),
        message: Some("1700000000.000100".into()),
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

#[tokio::test]
async fn connect_creates_a_missing_file_in_wal_mode_with_foreign_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hoist.db");
    let store = SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("store on a new file");
    assert!(path.exists());
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .expect("pragma");
    assert_eq!(fk, 1);
    // Opening again applies no migration twice.
    SqliteStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("store reopened");
}

#[tokio::test]
async fn connect_reports_an_unusable_url() {
    let error = SqliteStore::connect("sqlite:///nonexistent-dir/sub/hoist.db")
        .await
        .expect_err("no such directory");
    assert!(
        format!("{error:#}").starts_with("cannot open the store at `sqlite:///nonexistent-dir"),
        "{error:#}"
    );
}

#[tokio::test]
async fn deployment_records_round_trip_and_repeat_as_no_ops() {
    let store = memory().await;
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

#[tokio::test]
async fn a_status_is_recorded_once_per_state_and_time() {
    let store = memory().await;
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
}

#[tokio::test]
async fn log_lines_come_back_in_the_order_they_were_appended() {
    let store = memory().await;
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
}

#[tokio::test]
async fn the_audit_log_reads_newest_first() {
    let store = memory().await;
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
        .audit(&hoist::store::AuditFilter {
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
            .audit(&hoist::store::AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .expect("read")
            .len(),
        3
    );
}

#[tokio::test]
async fn the_outbox_dedupes_leases_retries_and_delivers() {
    let store = memory().await;
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
    let (error,): (Option<String>,) = sqlx::query_as("SELECT last_error FROM outbox WHERE id = ?")
        .bind(b)
        .fetch_one(store.pool())
        .await
        .expect("row");
    assert_eq!(error.as_deref(), Some("slack said ratelimited"));

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
}

#[tokio::test]
async fn a_conversation_reads_its_replies_in_order_and_given_up_ones_can_be_retried() {
    let store = memory().await;
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
    let ids =
        |items: Vec<hoist::store::OutboxItem>| items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let claim = |now: i64| store.claim_replies(&[Platform::Slack], at(now), at(now + 100), 10);

    // The second waits behind the first; another conversation does not.
    assert_eq!(ids(claim(0).await.expect("claim")), [first, other]);
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

#[tokio::test]
async fn two_workers_never_claim_the_same_reply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("hoist.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("store"));
    let mut ids = HashSet::new();
    for n in 0..60 {
        let id = store
            .enqueue_reply(Platform::Shell, &format!("c{n}"), &json!({ "n": n }), None)
            .await
            .expect("enqueue")
            .expect("new");
        ids.insert(id);
    }
    let worker = |store: Arc<SqliteStore>| async move {
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
    };
    let (one, two) = tokio::join!(
        tokio::spawn(worker(store.clone())),
        tokio::spawn(worker(store.clone()))
    );
    let (one, two) = (one.expect("worker one"), two.expect("worker two"));
    let mut all: Vec<i64> = one.iter().chain(two.iter()).copied().collect();
    all.sort_unstable();
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a reply was claimed twice");
    assert_eq!(unique, ids);
}

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

#[tokio::test]
async fn local_deployments_insert_idempotently_and_list_newest_first() {
    let store = memory().await;
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

#[tokio::test]
async fn a_local_status_needs_a_deployment_of_that_repository() {
    let store = memory().await;
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

#[tokio::test]
async fn commit_checks_are_one_per_name_and_upserted() {
    let store = memory().await;
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
}

#[tokio::test]
async fn deliveries_stored_side_by_side_are_each_new_once_and_claimed_by_lane() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("hoist.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("store"));
    // 120 requests at once, committed in groups: 40 keys sent twice, some
    // of them surely in the same group.
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
    let mut new_per_key = std::collections::HashMap::new();
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

#[tokio::test]
async fn pruning_forgets_only_what_was_delivered() {
    let store = memory().await;
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
}

#[tokio::test]
async fn waiting_deployments_are_claimed_by_commit_leased_and_kept_or_ended() {
    let store = memory().await;
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

fn run_deployment(id: i64, environment: &str) -> hoist::forge::Deployment {
    hoist::forge::Deployment {
        id: DeploymentId(id),
        git_ref: "main".into(),
        sha: sha('a'),
        task: "deploy".into(),
        environment: environment.into(),
        description: None,
        creator: "ada".into(),
        created_at: at(0),
        payload: json!({"hoist": {"app": "api"}}),
        state: None,
        status_at: None,
        transient_environment: false,
        production_environment: false,
    }
}

#[tokio::test]
async fn the_run_queue_runs_one_job_per_lane_in_order_and_never_twice() {
    let store = memory().await;
    let lease = at(30_000);
    let enqueue = |id: i64, lane: &'static str| {
        let store = &store;
        async move {
            store
                .enqueue_run(&key(id), "api", lane, &run_deployment(id, lane), at(id))
                .await
                .expect("enqueue")
        }
    };
    let length = |lane: &'static str| {
        let store = &store;
        async move { store.lane_length(lane).await.expect("length") }
    };
    assert_eq!(length("acme/api/staging").await, 0);
    assert!(enqueue(1, "acme/api/staging").await.is_some(), "new");
    assert_eq!(enqueue(1, "acme/api/staging").await, None, "queued once");
    assert_eq!(length("acme/api/staging").await, 1);
    assert!(enqueue(2, "acme/api/staging").await.is_some(), "new");
    assert_eq!(length("acme/api/production").await, 0);
    assert!(enqueue(3, "acme/api/production").await.is_some(), "new");

    assert_eq!(
        store.lane_length("acme/api/staging").await.expect("length"),
        2
    );
    assert_eq!(store.lane_length("acme/api/qa").await.expect("length"), 0);
    let claimed = store.claim_run("w1", at(10), lease).await.expect("claim");
    let claimed = claimed.expect("the oldest job");
    assert_eq!(claimed.key, key(1));
    assert_eq!(claimed.app, "api");
    assert_eq!(claimed.deployment, run_deployment(1, "acme/api/staging"));
    // Staging is busy: the next job that may start is production's.
    let next = store.claim_run("w2", at(10), lease).await.expect("claim");
    assert_eq!(next.map(|job| job.key), Some(key(3)));
    assert_eq!(
        store.claim_run("w3", at(10), lease).await.expect("claim"),
        None
    );
    assert_eq!(
        store.run_state(&key(2)).await.expect("state"),
        Some(RunState::Queued)
    );
    assert_eq!(
        store
            .open_run("acme/api/staging")
            .await
            .expect("open")
            .map(|job| job.key),
        Some(key(1)),
        "the running one first"
    );
    // Staging's first ends: its second may start.
    store.finish_run(claimed.id, at(20)).await.expect("finish");
    assert_eq!(
        store.run_state(&key(1)).await.expect("state"),
        Some(RunState::Done)
    );
    let second = store.claim_run("w1", at(21), lease).await.expect("claim");
    assert_eq!(second.map(|job| job.key), Some(key(2)));
    assert_eq!(store.run_state(&key(9)).await.expect("state"), None);
}

#[tokio::test]
async fn cancelling_a_run_dequeues_it_or_asks_its_worker_and_leases_end_interrupted_ones() {
    let store = memory().await;
    for (id, lane) in [(1, "acme/api/staging"), (2, "acme/api/staging")] {
        store
            .enqueue_run(&key(id), "api", lane, &run_deployment(id, lane), at(id))
            .await
            .expect("enqueue");
    }
    let running = store
        .claim_run("w1", at(10), at(1_000))
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(
        store
            .cancel_run(&key(2), "ada", at(11))
            .await
            .expect("cancel"),
        RunCancel::Dequeued
    );
    assert_eq!(
        store
            .claim_run("w2", at(12), at(1_000))
            .await
            .expect("claim"),
        None,
        "a dequeued job never runs"
    );
    assert_eq!(
        store.run_cancel_requested(running.id).await.expect("read"),
        None
    );
    assert_eq!(
        store
            .cancel_run(&key(1), "ada", at(13))
            .await
            .expect("cancel"),
        RunCancel::Requested
    );
    assert_eq!(
        store
            .cancel_run(&key(1), "bob", at(14))
            .await
            .expect("cancel"),
        RunCancel::Requested
    );
    assert_eq!(
        store
            .run_cancel_requested(running.id)
            .await
            .expect("read")
            .as_deref(),
        Some("ada"),
        "the first to ask is named"
    );
    assert_eq!(
        store
            .cancel_run(&key(7), "ada", at(15))
            .await
            .expect("cancel"),
        RunCancel::Unknown
    );

    // The lease is renewed by its worker only.
    assert!(
        store
            .renew_run(running.id, "w1", at(2_000))
            .await
            .expect("renew")
    );
    assert!(
        !store
            .renew_run(running.id, "w2", at(3_000))
            .await
            .expect("renew")
    );
    // Not lapsed yet: nothing is interrupted; lapsed: it is, until ended.
    assert!(
        store
            .interrupted_runs(at(1_500))
            .await
            .expect("read")
            .is_empty()
    );
    let interrupted = store.interrupted_runs(at(2_001)).await.expect("read");
    assert_eq!(
        interrupted
            .iter()
            .map(|job| job.key.clone())
            .collect::<Vec<_>>(),
        [key(1)]
    );
    store
        .finish_run(interrupted[0].id, at(2_002))
        .await
        .expect("end");
    assert!(
        store
            .interrupted_runs(at(9_000))
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        !store
            .renew_run(running.id, "w1", at(9_000))
            .await
            .expect("renew"),
        "ended: no longer its worker's"
    );
    assert_eq!(
        store
            .cancel_run(&key(1), "ada", at(9_001))
            .await
            .expect("cancel"),
        RunCancel::Finished
    );
}

fn a_lock(environment: &str, holder: (&str, Option<&str>), until: Option<i64>) -> Lock {
    let actor = Actor {
        id: holder.0.into(),
        name: holder.0.into(),
        login: holder.1.map(str::to_owned),
    };
    Lock {
        scope: LockScope::Environment {
            app: "api".into(),
            environment: environment.into(),
        },
        kind: LockKind::Sticky,
        holder: actor.clone(),
        reason: Some("migrating".into()),
        origin: Origin { actor, ..origin() },
        since: at(0),
        until: until.map(at),
        deployment: None,
    }
}

#[tokio::test]
async fn a_lock_is_one_holders_until_released_or_run_out() {
    let store = memory().await;
    let ada = ("U1", Some("ada"));
    let bob = ("U2", Some("bob"));
    assert_eq!(
        store
            .take_lock(&a_lock("production", ada, None), at(1))
            .await
            .expect("take"),
        TakeLock::Taken
    );
    let Some(held) = (match store
        .take_lock(&a_lock("production", bob, None), at(2))
        .await
        .expect("take")
    {
        TakeLock::Held(held) => Some(held),
        _ => None,
    }) else {
        panic!("bob must find ada's lock");
    };
    assert_eq!(held.holder.name, "U1");
    // Ada again: renewed, first time kept.
    let mut again = a_lock("production", ("D9", Some("ADA")), Some(5_000));
    again.since = at(3);
    again.reason = Some("still migrating".into());
    assert_eq!(
        store.take_lock(&again, at(3)).await.expect("take"),
        TakeLock::Renewed
    );
    let locks = store.locks(at(4)).await.expect("locks");
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0].since, at(0));
    assert_eq!(locks[0].reason.as_deref(), Some("still migrating"));
    // Run out: gone for readers, and free to take.
    assert!(store.locks(at(5_000)).await.expect("locks").is_empty());
    assert_eq!(
        store
            .take_lock(&a_lock("production", bob, None), at(5_001))
            .await
            .expect("take"),
        TakeLock::Taken
    );
    // Released once; a second release finds nothing.
    let scope = a_lock("production", bob, None).scope;
    let released = store
        .release_lock(&scope, at(6_000))
        .await
        .expect("release");
    assert_eq!(released.map(|lock| lock.holder.name), Some("U2".to_owned()));
    assert_eq!(
        store
            .release_lock(&scope, at(6_001))
            .await
            .expect("release"),
        None
    );
}

#[tokio::test]
async fn two_claims_of_one_environment_at_once_give_it_to_one() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("hoist.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("store"));
    let claims = (0..8).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let holder = format!("U{n}");
            let login = format!("user{n}");
            store
                .take_lock(&a_lock("production", (&holder, Some(&login)), None), at(n))
                .await
                .expect("take")
        })
    });
    let outcomes = futures_util::future::join_all(claims).await;
    let taken = outcomes
        .into_iter()
        .filter(|outcome| matches!(outcome, Ok(TakeLock::Taken)))
        .count();
    assert_eq!(taken, 1);
    assert_eq!(store.locks(at(100)).await.expect("locks").len(), 1);
}

#[tokio::test]
async fn the_audit_log_is_filtered_and_cannot_be_changed() {
    let store = memory().await;
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
    let find = |filter: hoist::store::AuditFilter| {
        let store = &store;
        async move {
            store
                .audit(&hoist::store::AuditFilter {
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
    use hoist::store::AuditFilter;
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
        let error = sqlx::query(statement)
            .execute(store.pool())
            .await
            .expect_err("append-only");
        assert!(error.to_string().contains("append-only"), "{error}");
    }
}

#[tokio::test]
async fn a_long_held_lock_is_reminded_once_a_period() {
    let store = memory().await;
    store
        .take_lock(&a_lock("production", ("U1", Some("ada")), None), at(0))
        .await
        .expect("take");
    let mut deploying = a_lock("staging", ("U1", Some("ada")), None);
    deploying.kind = LockKind::Deployment;
    store.take_lock(&deploying, at(0)).await.expect("take");
    assert!(
        store
            .locks_to_remind(at(0), at(5))
            .await
            .expect("remind")
            .is_empty(),
        "not held long yet"
    );
    let due = store.locks_to_remind(at(10), at(20)).await.expect("remind");
    assert_eq!(due.len(), 1, "sticky locks only: {due:?}");
    assert!(
        store
            .locks_to_remind(at(10), at(21))
            .await
            .expect("remind")
            .is_empty(),
        "once"
    );
    assert_eq!(
        store
            .locks_to_remind(at(30), at(40))
            .await
            .expect("remind")
            .len(),
        1,
        "and again a period later"
    );
}

fn approval_request(key: &str, conversation: &str) -> hoist::store::NewApproval {
    hoist::store::NewApproval {
        request_key: key.into(),
        conversation: conversation.into(),
        required: 2,
        created_at: at(0),
        expires_at: at(10_000),
        body: json!({ "what": key }),
    }
}

fn vote_by(login: &str, verdict: hoist::policy::Verdict, offset: i64) -> hoist::store::Vote {
    let actor = Actor {
        id: format!("U-{login}"),
        name: login.into(),
        login: Some(login.into()),
    };
    hoist::store::Vote {
        voter: hoist::store::Vote::key(&actor),
        name: login.into(),
        verdict,
        reason: None,
        at: at(offset),
    }
}

#[tokio::test]
async fn an_approval_request_counts_each_person_once_and_decides_once() {
    use hoist::policy::Verdict::{Approve, Reject};
    use hoist::store::{ApprovalRequests, ApprovalState, VoteOutcome};
    let store = memory().await;
    let first = store
        .ask_approval(&approval_request("r1", "slack:C1"))
        .await
        .expect("ask");
    let again = store
        .ask_approval(&approval_request("r1", "slack:C1"))
        .await
        .expect("ask");
    assert_eq!(first, again, "one request, asked twice, is one");
    let other = store
        .ask_approval(&approval_request("r2", "slack:C2"))
        .await
        .expect("ask");
    let here = store
        .waiting_approvals(Some("slack:C1"), at(1))
        .await
        .expect("waiting");
    assert_eq!(here.iter().map(|r| r.id).collect::<Vec<_>>(), [first]);

    let counted = store
        .vote(first, &vote_by("grace", Approve, 1), at(1))
        .await;
    assert!(matches!(counted, Ok(VoteOutcome::Counted(ref r)) if r.approvers() == ["grace"]));
    // The same login again, from any platform: not counted twice.
    let mut twice = vote_by("GRACE", Approve, 2);
    twice.voter = hoist::store::Vote::key(&Actor {
        id: "D77".into(),
        name: "grace".into(),
        login: Some("GRACE".into()),
    });
    assert!(matches!(
        store.vote(first, &twice, at(2)).await,
        Ok(VoteOutcome::AlreadyVoted(_))
    ));
    let approved = store.vote(first, &vote_by("hal", Approve, 3), at(3)).await;
    let Ok(VoteOutcome::Approved(record)) = approved else {
        panic!("the second approval decides it: {approved:?}");
    };
    assert_eq!(record.state, ApprovalState::Approved);
    assert_eq!(record.approvers(), ["grace", "hal"]);
    assert!(matches!(
        store.vote(first, &vote_by("ada", Approve, 4), at(4)).await,
        Ok(VoteOutcome::Closed(ref r)) if r.state == ApprovalState::Approved
    ));
    assert!(matches!(
        store.vote(999, &vote_by("ada", Approve, 4), at(4)).await,
        Ok(VoteOutcome::Unknown)
    ));

    // A rejection ends the other; a vote after its end is refused.
    assert!(matches!(
        store.vote(other, &vote_by("hal", Reject, 5), at(5)).await,
        Ok(VoteOutcome::Rejected(_))
    ));
    assert!(
        store
            .waiting_approvals(None, at(6))
            .await
            .expect("waiting")
            .is_empty()
    );
}

#[tokio::test]
async fn an_approval_request_expires_once_and_a_late_vote_finds_it_expired() {
    use hoist::policy::Verdict::Approve;
    use hoist::store::{ApprovalRequests, ApprovalState, VoteOutcome};
    let store = memory().await;
    let late = store
        .ask_approval(&approval_request("r1", "slack:C1"))
        .await
        .expect("ask");
    let swept = store
        .ask_approval(&approval_request("r2", "slack:C1"))
        .await
        .expect("ask");
    // Past its end, a vote marks it expired and counts nothing.
    let vote = store
        .vote(late, &vote_by("grace", Approve, 10_000), at(10_000))
        .await;
    let Ok(VoteOutcome::Closed(record)) = vote else {
        panic!("expired: {vote:?}");
    };
    assert_eq!(record.state, ApprovalState::Expired);
    assert!(record.votes.is_empty());
    // The sweep finds only the one not yet marked, and only once.
    assert!(
        store
            .expire_approvals(at(9_999))
            .await
            .expect("expire")
            .is_empty()
    );
    let expired = store.expire_approvals(at(10_001)).await.expect("expire");
    assert_eq!(expired.iter().map(|r| r.id).collect::<Vec<_>>(), [swept]);
    assert!(
        store
            .expire_approvals(at(10_002))
            .await
            .expect("expire")
            .is_empty()
    );
}

#[tokio::test]
async fn two_last_approvals_at_once_approve_it_once() {
    use hoist::policy::Verdict::Approve;
    use hoist::store::{ApprovalRequests, VoteOutcome};
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("hoist.db").display());
    let store = Arc::new(SqliteStore::connect(&url).await.expect("store"));
    let mut request = approval_request("r1", "slack:C1");
    request.required = 1;
    let id = store.ask_approval(&request).await.expect("ask");
    let votes = (0..8).map(|n| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .vote(id, &vote_by(&format!("user{n}"), Approve, n), at(n))
                .await
                .expect("vote")
        })
    });
    let outcomes = futures_util::future::join_all(votes).await;
    let approved = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Ok(VoteOutcome::Approved(_))))
        .count();
    assert_eq!(approved, 1, "{outcomes:?}");
}

fn hook(id: &str, name: &str) -> hoist::store::DeployHook {
    hoist::store::DeployHook {
        id: id.into(),
        name: name.into(),
        app: "api".into(),
        environment: "staging".into(),
        secret_sha256: "ab".repeat(32),
        created_at: at(0),
        last_used_at: None,
    }
}

#[tokio::test]
async fn deploy_hooks_are_found_by_id_listed_by_name_and_names_are_unique() {
    use hoist::store::DeployHooks;
    let store = memory().await;
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

#[tokio::test]
async fn a_deleted_deploy_hook_is_gone_at_once_and_its_name_free() {
    use hoist::store::DeployHooks;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hooks.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.create_hook(&hook("id-a", "ci-api")).await.unwrap();
    // Read through the readers, right after the writer's delete.
    assert!(store.delete_hook("ci-api").await.unwrap());
    assert_eq!(store.hook_by_id("id-a").await.unwrap(), None);
    assert!(!store.delete_hook("ci-api").await.unwrap());
    assert!(store.hooks().await.unwrap().is_empty());
    assert!(store.create_hook(&hook("id-b", "ci-api")).await.unwrap());
}
