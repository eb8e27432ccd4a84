//! The store's [`History`] (the dashboard's history, overview and
//! timelines), on both back ends ([`store_test!`]).

#[macro_use]
mod stores;

use hoist::domain::{Actor, AppName, DeploymentId, DeploymentState, Origin, Platform};
use hoist::forge::NewStatus;
use hoist::store::{DeploymentKey, DeploymentRecord, History, HistoryFilter, StateFilter, Store};
use stores::{at, repo, sha};

use DeploymentState::{Failure, InProgress, Pending, Success};

fn record(id: i64, app: &str, environment: &str, actor: &str, created: i64) -> DeploymentRecord {
    DeploymentRecord {
        key: DeploymentKey {
            forge: "github".into(),
            repo: repo(&format!("acme/{app}")),
            id: DeploymentId(id),
        },
        app: AppName::new(app).unwrap(),
        environment: environment.into(),
        git_ref: "main".into(),
        sha: sha(char::from_digit((id % 10) as u32, 10).unwrap()),
        task: "deploy".into(),
        origin: Origin {
            platform: Platform::Slack,
            conversation: "C1".into(),
            message: None,
            link: None,
            actor: Actor {
                id: format!("U{actor}"),
                name: actor.into(),
                login: None,
            },
        },
        request_key: format!("request-{id}"),
        created_at: at(created),
        decision: Some(format!("policy: allowed (deployment {id})")),
    }
}

fn status(state: DeploymentState) -> NewStatus {
    NewStatus {
        state,
        description: Some(format!("now {state}")),
        log_url: None,
        environment_url: None,
    }
}

/// Records `record` with `statuses` at 10 ms, 20 ms, ... after it.
async fn deployed(store: &impl Store, record: &DeploymentRecord, statuses: &[DeploymentState]) {
    store.record_deployment(record).await.unwrap();
    let created = record.created_at.as_millisecond() - at(0).as_millisecond();
    for (n, state) in statuses.iter().enumerate() {
        let when = at(created + 10 * (n as i64 + 1));
        assert!(
            store
                .record_status(&record.key, &status(*state), when)
                .await
                .unwrap()
        );
    }
}

/// The ids a filter lists, in its order.
async fn ids(store: &impl History, filter: HistoryFilter) -> Vec<i64> {
    store
        .deployment_history(&HistoryFilter {
            limit: if filter.limit == 0 { 100 } else { filter.limit },
            ..filter
        })
        .await
        .unwrap()
        .into_iter()
        .map(|summary| summary.record.key.id.0)
        .collect()
}

/// api: 1 staging succeeded (ada), 2 staging failed after starting
/// (grace), 3 production created only (Ada); web: 4 staging succeeded.
async fn four(store: &impl Store) {
    deployed(
        store,
        &record(1, "api", "staging", "ada", 0),
        &[Pending, InProgress, Success],
    )
    .await;
    deployed(
        store,
        &record(2, "api", "staging", "grace", 1_000),
        &[InProgress, Failure],
    )
    .await;
    deployed(store, &record(3, "api", "Production", "Ada", 2_000), &[]).await;
    deployed(
        store,
        &record(4, "web", "staging", "hal", 3_000),
        &[Success],
    )
    .await;
}

store_test!(
    the_history_is_newest_first_and_each_filter_narrows,
    |store| {
        four(&store).await;
        assert_eq!(ids(&store, HistoryFilter::default()).await, [4, 3, 2, 1]);
        let api = || HistoryFilter {
            app: Some("api".into()),
            ..HistoryFilter::default()
        };
        assert_eq!(ids(&store, api()).await, [3, 2, 1]);
        let only_web = HistoryFilter {
            apps: Some(vec!["web".into()]),
            ..HistoryFilter::default()
        };
        assert_eq!(ids(&store, only_web).await, [4]);
        let none = HistoryFilter {
            apps: Some(Vec::new()),
            ..HistoryFilter::default()
        };
        assert!(ids(&store, none).await.is_empty());
        let production = HistoryFilter {
            environment: Some("PRODUCTION".into()),
            ..HistoryFilter::default()
        };
        assert_eq!(ids(&store, production).await, [3]);
        let ada = HistoryFilter {
            actor: Some("ADA".into()),
            ..HistoryFilter::default()
        };
        assert_eq!(ids(&store, ada).await, [3, 1], "without regard to case");
        let since = HistoryFilter {
            since: Some(at(1_000)),
            ..api()
        };
        assert_eq!(ids(&store, since).await, [3, 2]);
    }
);

store_test!(the_state_filter_reads_the_latest_status, |store| {
    four(&store).await;
    let state = |state| HistoryFilter {
        state: Some(state),
        ..HistoryFilter::default()
    };
    assert_eq!(
        ids(&store, state(StateFilter::State(Success))).await,
        [4, 1]
    );
    assert_eq!(ids(&store, state(StateFilter::State(Failure))).await, [2]);
    assert!(
        ids(&store, state(StateFilter::State(InProgress)))
            .await
            .is_empty(),
        "a status a later one replaced does not match"
    );
    assert_eq!(ids(&store, state(StateFilter::Created)).await, [3]);
    let summaries = store
        .deployment_history(&HistoryFilter {
            limit: 10,
            ..HistoryFilter::default()
        })
        .await
        .unwrap();
    let two = summaries.iter().find(|s| s.record.key.id.0 == 2).unwrap();
    assert_eq!(two.state, Some(Failure));
    assert_eq!(two.state_at, Some(at(1_020)));
    assert_eq!(
        two.record.decision.as_deref(),
        Some("policy: allowed (deployment 2)")
    );
    let three = summaries.iter().find(|s| s.record.key.id.0 == 3).unwrap();
    assert_eq!((three.state, three.state_at), (None, None));
});

store_test!(
    the_latest_status_holds_whatever_order_things_are_recorded_in,
    |store| {
        // A replica may record a status webhook before the create's
        // answer is recorded: the deployment still takes it as latest.
        let early = record(5, "api", "staging", "ada", 0);
        assert!(
            store
                .record_status(&early.key, &status(InProgress), at(50))
                .await
                .unwrap()
        );
        store.record_deployment(&early).await.unwrap();
        let latest = || async {
            let summary = store
                .deployment_history(&HistoryFilter {
                    limit: 10,
                    ..HistoryFilter::default()
                })
                .await
                .unwrap()
                .remove(0);
            (summary.state, summary.state_at)
        };
        assert_eq!(latest().await, (Some(InProgress), Some(at(50))));
        // A status older than the latest (a late redelivery) is kept in
        // the timeline but does not replace it; a tie goes to the later.
        for (state, when) in [(Success, 100), (Pending, 10), (Failure, 100)] {
            store
                .record_status(&early.key, &status(state), at(when))
                .await
                .unwrap();
        }
        assert_eq!(latest().await, (Some(Failure), Some(at(100))));
        assert_eq!(
            store.deployment_statuses(&early.key).await.unwrap().len(),
            4
        );
    }
);

store_test!(outcomes_are_what_each_recent_deployment_came_to, |store| {
    four(&store).await;
    let outcomes = store
        .deployment_outcomes(&["api".to_owned()], at(1_000), 10)
        .await
        .unwrap();
    let seen: Vec<_> = outcomes
        .iter()
        .map(|o| (o.environment.as_str(), o.created_at, o.state, o.state_at))
        .collect();
    assert_eq!(
        seen,
        [
            ("Production", at(2_000), None, None),
            ("staging", at(1_000), Some(Failure), Some(at(1_020))),
        ],
        "api's since 1 s, newest first"
    );
    assert_eq!(
        outcomes[1].sha,
        record(2, "api", "staging", "grace", 1_000).sha.as_str()
    );
    let limited = store
        .deployment_outcomes(&["api".to_owned(), "web".to_owned()], at(0), 2)
        .await
        .unwrap();
    let apps: Vec<_> = limited.iter().map(|o| o.app.as_str()).collect();
    assert_eq!(apps, ["web", "api"]);
    assert!(
        store
            .deployment_outcomes(&[], at(0), 10)
            .await
            .unwrap()
            .is_empty()
    );
});

store_test!(
    targets_are_each_apps_environments_alike_but_for_case_once,
    |store| {
        four(&store).await;
        deployed(&store, &record(5, "api", "production", "hal", 4_000), &[]).await;
        let targets: Vec<(String, String)> = store
            .targets(&["api".to_owned(), "web".to_owned()])
            .await
            .unwrap()
            .into_iter()
            .map(|(app, environment)| (app.to_string(), environment.to_lowercase()))
            .collect();
        let expected = [
            ("api", "production"),
            ("api", "staging"),
            ("web", "staging"),
        ]
        .map(|(app, environment)| (app.to_owned(), environment.to_owned()));
        assert_eq!(targets, expected);
        assert_eq!(store.targets(&["web".to_owned()]).await.unwrap().len(), 1);
        assert!(store.targets(&[]).await.unwrap().is_empty());
    }
);

store_test!(pages_are_offsets_of_the_newest_first_order, |store| {
    for id in 1..=7 {
        // Two pairs share a creation time: the deployment id breaks it.
        let created = (id / 2) * 100;
        deployed(&store, &record(id, "api", "staging", "ada", created), &[]).await;
    }
    let page = |offset| HistoryFilter {
        offset,
        limit: 3,
        ..HistoryFilter::default()
    };
    assert_eq!(ids(&store, page(0)).await, [7, 6, 5]);
    assert_eq!(ids(&store, page(3)).await, [4, 3, 2]);
    assert_eq!(ids(&store, page(6)).await, [1]);
    assert!(ids(&store, page(9)).await.is_empty());
});

store_test!(
    the_overview_names_what_is_live_and_what_came_last,
    |store| {
        four(&store).await;
        // A later success to api staging that then failed is not live.
        deployed(
            &store,
            &record(5, "api", "STAGING", "ada", 4_000),
            &[Success, Failure],
        )
        .await;
        let overview = store
            .targets_overview(&["api".into(), "web".into()])
            .await
            .unwrap();
        let shown: Vec<(&str, String, i64, Option<i64>)> = overview
            .iter()
            .map(|t| {
                (
                    t.app.as_str(),
                    t.environment.to_lowercase(),
                    t.latest.record.key.id.0,
                    t.live.as_ref().map(|live| live.record.key.id.0),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("api", "production".into(), 3, None),
                ("api", "staging".into(), 5, Some(1)),
                ("web", "staging".into(), 4, Some(4)),
            ]
        );
        assert_eq!(overview[1].latest.state, Some(Failure));
        let only_web = store.targets_overview(&["web".into()]).await.unwrap();
        assert_eq!(only_web.len(), 1);
        assert!(store.targets_overview(&[]).await.unwrap().is_empty());
    }
);

store_test!(a_deployments_statuses_are_its_timeline, |store| {
    four(&store).await;
    let one = record(1, "api", "staging", "ada", 0).key;
    let timeline: Vec<_> = store
        .deployment_statuses(&one)
        .await
        .unwrap()
        .into_iter()
        .map(|(status, when)| (status.state, when))
        .collect();
    assert_eq!(
        timeline,
        [(Pending, at(10)), (InProgress, at(20)), (Success, at(30))]
    );
    let unknown = DeploymentKey {
        id: DeploymentId(99),
        ..one
    };
    assert!(
        store
            .deployment_statuses(&unknown)
            .await
            .unwrap()
            .is_empty()
    );
});
