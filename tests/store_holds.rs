//! Held deployments, on both back ends: each report recorded once, each
//! hold decided once (also when reports race), timeouts announced once,
//! cleanups taken once, and run secrets kept and forgotten.

#[macro_use]
mod stores;

use std::future::Future;
use std::sync::Arc;
use stores::{at, at_once};

use hoist::domain::{RepoName, Sha};
use hoist::store::{
    ActionReport, ActionState, HoldState, Holds, NewHold, ReportOutcome, RunSecrets,
};
use serde_json::json;

/// A hold of `request_key` to staging with `actions`, each due at +10 s.
fn hold(request_key: &str, actions: &[&str]) -> NewHold {
    NewHold {
        request_key: request_key.into(),
        app: "api".into(),
        environment: "Staging".into(),
        created_at: at(0),
        body: json!({ "what": "api main to staging" }),
        actions: actions
            .iter()
            .map(|name| ((*name).to_owned(), at(10_000)))
            .collect(),
    }
}

fn succeeded(sealed: &[u8]) -> ActionReport {
    ActionReport::Succeeded {
        sealed: Some(sealed.to_vec()),
    }
}

store_test!(a_hold_is_ready_once_every_action_succeeded, |store| {
    let id = store
        .hold_deployment(&hold("r1", &["branch-db", "cache"]))
        .await
        .unwrap();
    assert_eq!(
        store
            .hold_deployment(&hold("r1", &["branch-db", "cache"]))
            .await
            .unwrap(),
        id,
        "the same request is one hold"
    );
    let ReportOutcome::Recorded(after) = store
        .report_action(id, "branch-db", &succeeded(b"sealed-1"), at(1000))
        .await
        .unwrap()
    else {
        panic!("the first of two is recorded");
    };
    assert_eq!(after.state, HoldState::Provisioning);
    assert_eq!(
        after.pending().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["cache"]
    );
    assert!(matches!(
        store
            .report_action(id, "branch-db", &succeeded(b"sealed-1"), at(1100))
            .await
            .unwrap(),
        ReportOutcome::Repeated(_)
    ));
    let ReportOutcome::Ready(ready) = store
        .report_action(
            id,
            "cache",
            &ActionReport::Succeeded { sealed: None },
            at(2000),
        )
        .await
        .unwrap()
    else {
        panic!("the last success makes it ready");
    };
    assert_eq!(ready.state, HoldState::Ready);
    assert_eq!(ready.actions[0].sealed.as_deref(), Some(&b"sealed-1"[..]));
    // A success reported again while it is ready (the integration never
    // got the answer) says ready again; deploying is idempotent.
    assert!(matches!(
        store
            .report_action(
                id,
                "cache",
                &ActionReport::Succeeded { sealed: None },
                at(2100)
            )
            .await
            .unwrap(),
        ReportOutcome::Ready(_)
    ));
    store.settle_hold(id, HoldState::Deployed).await.unwrap();
    let settled = store.hold(id).await.unwrap().unwrap();
    assert_eq!(settled.state, HoldState::Deployed);
    assert!(
        settled.actions.iter().all(|a| a.sealed.is_none()),
        "secrets are dropped once it is created"
    );
    assert!(matches!(
        store
            .report_action(
                id,
                "cache",
                &ActionReport::Succeeded { sealed: None },
                at(2200)
            )
            .await
            .unwrap(),
        ReportOutcome::Closed(_)
    ));
    assert!(matches!(
        store
            .report_action(
                id,
                "nope",
                &ActionReport::Succeeded { sealed: None },
                at(2200)
            )
            .await
            .unwrap(),
        ReportOutcome::Unknown
    ));
    assert!(matches!(
        store
            .report_action(
                id + 1,
                "cache",
                &ActionReport::Succeeded { sealed: None },
                at(2200)
            )
            .await
            .unwrap(),
        ReportOutcome::Unknown
    ));
});

store_test!(
    a_failure_ends_the_hold_and_later_reports_change_nothing,
    |store| {
        let id = store
            .hold_deployment(&hold("r1", &["branch-db", "cache"]))
            .await
            .unwrap();
        let failure = ActionReport::Failed {
            reason: "branch limit reached".into(),
        };
        let ReportOutcome::Failed(failed) = store
            .report_action(id, "branch-db", &failure, at(1000))
            .await
            .unwrap()
        else {
            panic!("a failure ends it");
        };
        assert_eq!(failed.state, HoldState::Failed);
        assert_eq!(failed.actions[0].state, ActionState::Failed);
        assert_eq!(
            failed.actions[0].reason.as_deref(),
            Some("branch limit reached")
        );
        assert!(matches!(
            store
                .report_action(id, "cache", &succeeded(b"late"), at(1100))
                .await
                .unwrap(),
            ReportOutcome::Closed(_)
        ));
        assert_eq!(
            store.end_hold(id, HoldState::Cancelled).await.unwrap(),
            None
        );
        assert_eq!(
            store.hold(id).await.unwrap().unwrap().actions[1].sealed,
            None,
            "nothing of the late report is kept"
        );
    }
);

store_test!(two_last_reports_at_once_make_it_ready_once, |store| {
    let store = Arc::new(store);
    for round in 0..10 {
        let id = store
            .hold_deployment(&hold(&format!("r{round}"), &["a", "b"]))
            .await
            .unwrap();
        let reports = ["a", "b"]
            .into_iter()
            .map(|name| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .report_action(id, name, &succeeded(name.as_bytes()), at(1000))
                        .await
                        .unwrap()
                }
            })
            .collect();
        let outcomes = at_once(reports).await;
        let ready = outcomes
            .iter()
            .filter(|o| matches!(o, ReportOutcome::Ready(_)))
            .count();
        let recorded = outcomes
            .iter()
            .filter(|o| matches!(o, ReportOutcome::Recorded(_)))
            .count();
        assert_eq!((ready, recorded), (1, 1), "round {round}: {outcomes:?}");
        // Both reports are kept, neither overwrote the other.
        let after = store.hold(id).await.unwrap().unwrap();
        assert_eq!(after.state, HoldState::Ready, "round {round}");
        assert_eq!(
            after
                .actions
                .iter()
                .map(|a| (a.state, a.sealed.clone()))
                .collect::<Vec<_>>(),
            [
                (ActionState::Succeeded, Some(b"a".to_vec())),
                (ActionState::Succeeded, Some(b"b".to_vec()))
            ],
            "round {round}"
        );
    }
});

store_test!(a_report_repeated_at_once_is_recorded_once, |store| {
    // An integration retrying a report it got no answer for, from two
    // replicas at once: one records it, the other finds it repeated.
    let store = Arc::new(store);
    for round in 0..5 {
        let id = store
            .hold_deployment(&hold(&format!("r{round}"), &["a", "b"]))
            .await
            .unwrap();
        let reports = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .report_action(id, "a", &succeeded(b"a"), at(1000))
                        .await
                        .unwrap()
                }
            })
            .collect();
        let outcomes = at_once(reports).await;
        let recorded = outcomes
            .iter()
            .filter(|o| matches!(o, ReportOutcome::Recorded(_)))
            .count();
        let repeated = outcomes
            .iter()
            .filter(|o| matches!(o, ReportOutcome::Repeated(_)))
            .count();
        assert_eq!((recorded, repeated), (1, 3), "round {round}: {outcomes:?}");
    }
});

store_test!(the_same_request_held_at_once_is_one_hold, |store| {
    let store = Arc::new(store);
    for round in 0..5 {
        let holds = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                async move {
                    store
                        .hold_deployment(&hold(&format!("r{round}"), &["a", "b"]))
                        .await
                        .unwrap()
                }
            })
            .collect();
        let ids = at_once(holds).await;
        assert!(ids.iter().all(|id| *id == ids[0]), "round {round}: {ids:?}");
        let held = store.hold(ids[0]).await.unwrap().unwrap();
        assert_eq!(held.actions.len(), 2, "its actions once");
    }
});

store_test!(a_late_action_times_the_hold_out_once, |store| {
    let id = store
        .hold_deployment(&hold("r1", &["branch-db"]))
        .await
        .unwrap();
    assert!(store.expire_holds(at(9_999)).await.unwrap().is_empty());
    assert!(
        matches!(
            store
                .report_action(id, "branch-db", &succeeded(b"x"), at(10_000))
                .await
                .unwrap(),
            ReportOutcome::Closed(_)
        ),
        "a report after the deadline is too late"
    );
    let expired = store.expire_holds(at(10_000)).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].state, HoldState::TimedOut);
    assert!(store.expire_holds(at(20_000)).await.unwrap().is_empty());
    assert_eq!(
        store.end_hold(id, HoldState::Cancelled).await.unwrap(),
        None
    );
});

store_test!(a_cancel_ends_a_provisioning_hold_once, |store| {
    let first = store
        .hold_deployment(&hold("r1", &["branch-db"]))
        .await
        .unwrap();
    let other = store
        .hold_deployment(&hold("r2", &["branch-db"]))
        .await
        .unwrap();
    let open = store
        .provisioning_holds("api", Some("STAGING"))
        .await
        .unwrap();
    assert_eq!(
        open.iter().map(|h| h.id).collect::<Vec<_>>(),
        [first, other]
    );
    assert!(
        store
            .provisioning_holds("api", Some("production"))
            .await
            .unwrap()
            .is_empty()
    );
    let cancelled = store.end_hold(first, HoldState::Cancelled).await.unwrap();
    assert_eq!(cancelled.map(|h| h.state), Some(HoldState::Cancelled));
    assert_eq!(
        store.end_hold(first, HoldState::Cancelled).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .provisioning_holds("api", None)
            .await
            .unwrap()
            .iter()
            .map(|h| h.id)
            .collect::<Vec<_>>(),
        [other]
    );
});

store_test!(
    cleanups_are_taken_once_and_only_for_deployed_holds,
    |store| {
        let deployed = store.hold_deployment(&hold("r1", &["db"])).await.unwrap();
        store
            .report_action(deployed, "db", &succeeded(b"x"), at(1000))
            .await
            .unwrap();
        store
            .settle_hold(deployed, HoldState::Deployed)
            .await
            .unwrap();
        let waiting = store.hold_deployment(&hold("r2", &["db"])).await.unwrap();
        let taken = store.take_holds_to_clean("api", "staging").await.unwrap();
        assert_eq!(taken.iter().map(|h| h.id).collect::<Vec<_>>(), [deployed]);
        assert!(
            store
                .take_holds_to_clean("api", "staging")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(waiting > deployed);
    }
);

store_test!(run_secrets_are_kept_replaced_and_forgotten, |store| {
    let secrets = |sealed: &[u8]| RunSecrets {
        request_key: "slack:T1:trigger".into(),
        repo: "Acme/API".parse::<RepoName>().unwrap(),
        sha: Sha::new(&"a".repeat(40)).unwrap(),
        environment: "staging".into(),
        sealed: sealed.to_vec(),
    };
    assert_eq!(store.run_secrets("slack:T1:trigger").await.unwrap(), None);
    store.put_run_secrets(&secrets(b"one")).await.unwrap();
    store.put_run_secrets(&secrets(b"two")).await.unwrap();
    assert_eq!(
        store.run_secrets("slack:T1:trigger").await.unwrap(),
        Some(secrets(b"two"))
    );
    store.drop_run_secrets("slack:T1:trigger").await.unwrap();
    assert_eq!(store.run_secrets("slack:T1:trigger").await.unwrap(), None);
});

store_test!(sweeps_and_cancels_at_once_end_each_hold_once, |store| {
    // Two watch rounds time holds out while someone cancels them: each
    // hold ends once, announced by whichever ended it.
    let store = Arc::new(store);
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(
            store
                .hold_deployment(&hold(&format!("r{n}"), &["db"]))
                .await
                .unwrap(),
        );
    }
    let sweeps = (0..2).map(|_| {
        let store = Arc::clone(&store);
        Box::pin(async move {
            store
                .expire_holds(at(10_000))
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect::<Vec<_>>()
        }) as std::pin::Pin<Box<dyn Future<Output = Vec<i64>> + Send>>
    });
    let cancels = ids.clone().into_iter().map(|id| {
        let store = Arc::clone(&store);
        Box::pin(async move {
            store
                .end_hold(id, HoldState::Cancelled)
                .await
                .unwrap()
                .map(|h| h.id)
                .into_iter()
                .collect::<Vec<_>>()
        }) as std::pin::Pin<Box<dyn Future<Output = Vec<i64>> + Send>>
    });
    let mut ended: Vec<i64> = at_once(sweeps.chain(cancels).collect())
        .await
        .into_iter()
        .flatten()
        .collect();
    ended.sort_unstable();
    assert_eq!(ended, ids, "each once");
    assert!(store.expire_holds(at(20_000)).await.unwrap().is_empty());
});

store_test!(cleanups_taken_at_once_are_each_taken_once, |store| {
    let store = Arc::new(store);
    let mut deployed = Vec::new();
    for n in 0..4 {
        let id = store
            .hold_deployment(&hold(&format!("r{n}"), &["db"]))
            .await
            .unwrap();
        store
            .report_action(id, "db", &succeeded(b"x"), at(1000))
            .await
            .unwrap();
        store.settle_hold(id, HoldState::Deployed).await.unwrap();
        deployed.push(id);
    }
    let takes = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            async move { store.take_holds_to_clean("api", "staging").await.unwrap() }
        })
        .collect();
    let mut taken: Vec<i64> = at_once(takes)
        .await
        .into_iter()
        .flatten()
        .map(|h| h.id)
        .collect();
    taken.sort_unstable();
    assert_eq!(taken, deployed, "each once");
});
