//! What replicas coordinate through the store, on both back ends: the
//! runner's queue (one job per lane, leases), environment locks and their
//! reminders, and approval requests. Where claims or votes race, they run
//! as tasks at once on one store; on PostgreSQL each is a transaction on a
//! connection of its own, as replicas' would be.

#[macro_use]
mod stores;

use std::future::Future;
use std::sync::Arc;
use stores::{at, at_once, repo, sha};

use hoist::domain::{Actor, DeploymentId, Origin, Platform};
use hoist::policy::{Lock, LockKind, LockScope};
use hoist::store::{
    ApprovalRequests, ApprovalState, DeploymentKey, Locks, NewApproval, RunCancel, RunQueue,
    RunState, TakeLock, Vote, VoteOutcome,
};
use serde_json::json;

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

store_test!(
    the_run_queue_runs_one_job_per_lane_in_order_and_never_twice,
    |store| {
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
);

store_test!(
    cancelling_a_run_dequeues_it_or_asks_its_worker_and_leases_end_interrupted_ones,
    |store| {
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
);

store_test!(
    two_claims_of_one_lane_at_once_give_its_job_to_one,
    |store| {
        // Two jobs in one lane: only the older may start, so of several
        // claims at once one gets it and every other gets nothing, no error
        // (on PostgreSQL, a claim that loses the lane to another is refused
        // by the one-running index and must not surface that).
        let store = Arc::new(store);
        for round in 0..10_i64 {
            let lane: &'static str = format!("acme/api/lane{round}").leak();
            let (older, newer) = (100 * round + 1, 100 * round + 2);
            for id in [older, newer] {
                store
                    .enqueue_run(&key(id), "api", lane, &run_deployment(id, lane), at(id))
                    .await
                    .expect("enqueue");
            }
            let claims = (0..4)
                .map(|n| {
                    let store = Arc::clone(&store);
                    async move {
                        store
                            .claim_run(&format!("w{n}"), at(100_000), at(130_000))
                            .await
                            .expect("a losing claim is no error")
                    }
                })
                .collect();
            let claimed: Vec<_> = at_once(claims).await.into_iter().flatten().collect();
            assert_eq!(
                claimed
                    .iter()
                    .map(|job| job.key.clone())
                    .collect::<Vec<_>>(),
                [key(older)],
                "round {round}: one claimer gets the older job"
            );
            assert_eq!(
                store.run_state(&key(newer)).await.expect("state"),
                Some(RunState::Queued),
                "round {round}: the newer waits"
            );
            // This round's job ends, so the next round's claims see no job
            // of this lane but its newer one, and that one may start: end
            // it too.
            store
                .finish_run(claimed[0].id, at(100_001))
                .await
                .expect("finish");
            let newer_job = store
                .claim_run("w0", at(100_002), at(130_000))
                .await
                .expect("claim")
                .expect("the newer starts once the older ends");
            assert_eq!(newer_job.key, key(newer));
            store
                .finish_run(newer_job.id, at(100_003))
                .await
                .expect("finish");
        }
    }
);

store_test!(
    claims_at_once_across_lanes_start_one_job_per_lane,
    |store| {
        // Three lanes of three jobs, claimed by more workers than lanes at
        // once: each lane's oldest starts, once, and nothing else.
        let store = Arc::new(store);
        let lanes = ["acme/api/a", "acme/api/b", "acme/api/c"];
        for n in 0..9_i64 {
            let lane = lanes[usize::try_from(n).expect("small") % 3];
            store
                .enqueue_run(
                    &key(n + 1),
                    "api",
                    lane,
                    &run_deployment(n + 1, lane),
                    at(n),
                )
                .await
                .expect("enqueue");
        }
        let claims = (0..8)
            .map(|n| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .claim_run(&format!("w{n}"), at(100), at(30_000))
                        .await
                        .expect("a losing claim is no error")
                }
            })
            .collect();
        let mut started: Vec<i64> = at_once(claims)
            .await
            .into_iter()
            .flatten()
            .map(|job| job.key.id.0)
            .collect();
        started.sort_unstable();
        assert_eq!(started, [1, 2, 3], "each lane's oldest, once");
    }
);

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

store_test!(a_lock_is_one_holders_until_released_or_run_out, |store| {
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
});

store_test!(
    two_claims_of_one_environment_at_once_give_it_to_one,
    |store| {
        let store = Arc::new(store);
        for round in 0..5_i64 {
            let environment = format!("production-{round}");
            // In the last rounds the environment holds a lock that has run
            // out: it blocks none of the claims, and one takes its place.
            if round >= 3 {
                store
                    .take_lock(&a_lock(&environment, ("X", Some("old")), Some(1)), at(0))
                    .await
                    .expect("take");
            }
            let claims = (0..8_i64)
                .map(|n| {
                    let store = Arc::clone(&store);
                    let environment = environment.clone();
                    async move {
                        let holder = format!("U{n}");
                        let login = format!("user{n}");
                        store
                            .take_lock(
                                &a_lock(&environment, (&holder, Some(&login)), None),
                                at(n + 2),
                            )
                            .await
                            .expect("take")
                    }
                })
                .collect();
            let outcomes = at_once(claims).await;
            let taken = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, TakeLock::Taken))
                .count();
            let held = outcomes
                .iter()
                .filter(|outcome| matches!(outcome, TakeLock::Held(_)))
                .count();
            assert_eq!((taken, held), (1, 7), "round {round}: {outcomes:?}");
            let locks = store.locks(at(100)).await.expect("locks");
            let here: Vec<_> = locks
                .iter()
                .filter(|lock| lock.scope == a_lock(&environment, ("-", None), None).scope)
                .collect();
            assert_eq!(here.len(), 1, "round {round}");
            // Every loser was shown the winner's lock.
            let winner = &here[0].holder;
            assert!(outcomes.iter().all(|outcome| match outcome {
                TakeLock::Held(lock) => &lock.holder == winner,
                _ => true,
            }));
        }
        assert_eq!(store.locks(at(100)).await.expect("locks").len(), 5);
    }
);

store_test!(claims_racing_a_release_find_the_lock_or_take_it, |store| {
    // Ada releases while others claim: a claim finds her lock, or takes
    // the scope once she let it go, and none fails on a lock that went
    // away between its looking and its reading.
    let store = Arc::new(store);
    let ada = ("U1", Some("ada"));
    for round in 0..20_i64 {
        let environment = format!("production-{round}");
        store
            .take_lock(&a_lock(&environment, ada, None), at(0))
            .await
            .expect("take");
        let release = {
            let store = Arc::clone(&store);
            let scope = a_lock(&environment, ada, None).scope;
            Box::pin(async move {
                let released = store.release_lock(&scope, at(1)).await.expect("release");
                assert_eq!(
                    released.map(|lock| lock.holder.id),
                    Some("U1".to_owned()),
                    "the release finds ada's lock"
                );
                None
            }) as std::pin::Pin<Box<dyn Future<Output = Option<TakeLock>> + Send>>
        };
        let claims = (2..8_i64).map(|n| {
            let store = Arc::clone(&store);
            let environment = environment.clone();
            Box::pin(async move {
                let holder = format!("U{n}");
                let login = format!("user{n}");
                Some(
                    store
                        .take_lock(&a_lock(&environment, (&holder, Some(&login)), None), at(n))
                        .await
                        .expect("take"),
                )
            }) as std::pin::Pin<Box<dyn Future<Output = Option<TakeLock>> + Send>>
        });
        let outcomes: Vec<TakeLock> = at_once(std::iter::once(release).chain(claims).collect())
            .await
            .into_iter()
            .flatten()
            .collect();
        let taken = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, TakeLock::Taken))
            .count();
        assert!(taken <= 1, "round {round}: {outcomes:?}");
        let scope = a_lock(&environment, ada, None).scope;
        let here: Vec<Lock> = store
            .locks(at(100))
            .await
            .expect("locks")
            .into_iter()
            .filter(|lock| lock.scope == scope)
            .collect();
        assert_eq!(here.len(), taken, "round {round}: the taker holds it");
        assert!(
            here.iter().all(|lock| lock.holder.id != "U1"),
            "round {round}: ada's is gone"
        );
    }
});

store_test!(a_long_held_lock_is_reminded_once_a_period, |store| {
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
});

store_test!(reminder_rounds_at_once_remind_each_lock_once, |store| {
    let store = Arc::new(store);
    for environment in ["a", "b", "c", "d"] {
        store
            .take_lock(&a_lock(environment, ("U1", Some("ada")), None), at(0))
            .await
            .expect("take");
    }
    for round in 0..5_i64 {
        let (held_since, now) = (at(100 * round + 10), at(100 * round + 20));
        let asks = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .locks_to_remind(held_since, now)
                        .await
                        .expect("remind")
                }
            })
            .collect();
        let mut reminded: Vec<String> = at_once(asks)
            .await
            .into_iter()
            .flatten()
            .map(|lock| lock.scope.key())
            .collect();
        reminded.sort();
        let mut every: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(|environment| a_lock(environment, ("-", None), None).scope.key())
            .collect();
        every.sort();
        assert_eq!(reminded, every, "round {round}: each lock once");
    }
});

fn approval_request(key: &str, conversation: &str) -> NewApproval {
    NewApproval {
        request_key: key.into(),
        conversation: conversation.into(),
        required: 2,
        created_at: at(0),
        expires_at: at(10_000),
        body: json!({ "what": key }),
    }
}

fn vote_by(login: &str, verdict: hoist::policy::Verdict, offset: i64) -> Vote {
    let actor = Actor {
        id: format!("U-{login}"),
        name: login.into(),
        login: Some(login.into()),
    };
    Vote {
        voter: Vote::key(&actor),
        name: login.into(),
        verdict,
        reason: None,
        at: at(offset),
    }
}

store_test!(
    an_approval_request_counts_each_person_once_and_decides_once,
    |store| {
        use hoist::policy::Verdict::{Approve, Reject};
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
        twice.voter = Vote::key(&Actor {
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
);

store_test!(
    an_approval_request_expires_once_and_a_late_vote_finds_it_expired,
    |store| {
        use hoist::policy::Verdict::Approve;
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
);

store_test!(two_last_approvals_at_once_approve_it_once, |store| {
    use hoist::policy::Verdict::Approve;
    let store = Arc::new(store);
    for round in 0..5_i64 {
        let mut request = approval_request(&format!("r{round}"), "slack:C1");
        request.required = 1;
        let id = store.ask_approval(&request).await.expect("ask");
        let votes = (0..8_i64)
            .map(|n| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .vote(id, &vote_by(&format!("user{n}"), Approve, n), at(n))
                        .await
                        .expect("vote")
                }
            })
            .collect();
        let outcomes = at_once(votes).await;
        let approved = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, VoteOutcome::Approved(_)))
            .count();
        let closed = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, VoteOutcome::Closed(_)))
            .count();
        assert_eq!((approved, closed), (1, 7), "round {round}: {outcomes:?}");
        let record = store.approval(id).await.expect("read").expect("kept");
        assert_eq!(record.state, ApprovalState::Approved);
        assert_eq!(record.votes.len(), 1, "round {round}: one vote counted");
    }
});

store_test!(sweeps_at_once_expire_each_request_once, |store| {
    let store = Arc::new(store);
    let mut asked = Vec::new();
    for n in 0..6 {
        asked.push(
            store
                .ask_approval(&approval_request(&format!("r{n}"), "slack:C1"))
                .await
                .expect("ask"),
        );
    }
    let sweeps = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            async move { store.expire_approvals(at(10_001)).await.expect("expire") }
        })
        .collect();
    let mut expired: Vec<i64> = at_once(sweeps)
        .await
        .into_iter()
        .flatten()
        .map(|record| record.id)
        .collect();
    expired.sort_unstable();
    assert_eq!(expired, asked, "each once");
});

/// PostgreSQL only: a claim that picks a job of a lane whose other job
/// another claim is starting (as one whose snapshot missed that job
/// would) is refused by the one-running index, and comes back with
/// nothing rather than the error.
#[tokio::test]
async fn a_claim_that_loses_its_lane_to_another_gets_nothing_not_an_error() {
    let Some(store) = stores::postgres().await else {
        return;
    };
    let lane = "acme/api/staging";
    for id in [1, 2] {
        store
            .enqueue_run(&key(id), "api", lane, &run_deployment(id, lane), at(id))
            .await
            .expect("enqueue");
    }
    // The other claim: it started the newer job and has not committed.
    let mut other = store.pool().begin().await.expect("begin");
    sqlx::query(
        "UPDATE runner_jobs SET state = 'running', worker = 'other' \
         WHERE deployment_id = 2",
    )
    .execute(&mut *other)
    .await
    .expect("start the newer job");
    // This claim sees the older job queued and no job running, takes the
    // older job and waits on the index for the other claim to end.
    let claim = {
        let store = store.clone();
        tokio::spawn(async move { store.claim_run("w1", at(10), at(30_000)).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!claim.is_finished(), "the claim waits for the other");
    other.commit().await.expect("commit");
    let claimed = claim.await.expect("task").expect("no error");
    assert_eq!(claimed, None, "the lane is the other's");
    assert_eq!(
        store.run_state(&key(1)).await.expect("state"),
        Some(RunState::Queued),
        "the older job is still queued"
    );
    let running: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM runner_jobs WHERE lane = 'acme/api/staging' AND state = 'running'",
    )
    .fetch_one(store.pool())
    .await
    .expect("count");
    assert_eq!(running, 1);
}
