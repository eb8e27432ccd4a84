//! The inbox's two lanes with the real binary: statuses are relayed while
//! a command waits on a slow GitHub, and each deployment's statuses reach
//! Slack in the order GitHub sent them while several deployments are
//! relayed side by side.

mod fakes;
mod harness;
mod support;

use std::time::Duration;

use harness::serve;

#[tokio::test]
async fn a_command_waiting_on_github_does_not_hold_up_statuses() {
    let mut serving = serve().await;
    assert_eq!(serving.slash("api to staging", "l.1", 0).await.0, 200);
    serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    let first = serving.github.deployment_ids("acme/api")[0];

    // GitHub turns slow; a second command now waits seconds on it (the
    // branch must be resolved and the deployment created).
    serving
        .github
        .set_branch("acme/api", "feature", harness::MAIN);
    serving.github.set_latency(Duration::from_secs(2));
    assert_eq!(
        serving.slash("api/feature to staging", "l.2", 0).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        serving.status_webhook(first, "success", "lane-1").await,
        202
    );
    serving
        .slack
        .wait_for("to staging: succeeded (rolled out by CI)")
        .await;
    // The status got through while the command was still waiting.
    assert_eq!(
        serving.github.deployment_ids("acme/api").len(),
        1,
        "the status was relayed only after the slow command finished"
    );
    // And the command was in flight all along: it deploys in the end.
    serving
        .slack
        .wait_for("Deploying api feature (1111111) to staging")
        .await;
    assert_eq!(serving.github.deployment_ids("acme/api").len(), 2);
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn each_deployments_statuses_arrive_in_order_among_many() {
    let mut serving = serve().await;
    const DEPLOYMENTS: usize = 4;
    for i in 0..DEPLOYMENTS {
        let channel = format!("C0ORDER{i}");
        let trigger = format!("o.{i}");
        assert_eq!(
            serving
                .slash_in(&channel, "api to staging", &trigger, 0)
                .await
                .0,
            200
        );
        serving
            .slack
            .wait_for(&format!("deployment #{} created", 1001 + i))
            .await;
    }
    let ids = serving.github.deployment_ids("acme/api");
    assert_eq!(ids.len(), DEPLOYMENTS);

    // Three states per deployment, interleaved across deployments, sent
    // as fast as hoist takes them so they are claimed together.
    let states = ["pending", "in_progress", "success"];
    for (step, state) in states.iter().enumerate() {
        for id in &ids {
            let at = format!("2026-11-23T12:00:0{step}Z");
            let delivery = format!("order-{id}-{step}");
            let description = format!("step {step} of {id}");
            let status = serving
                .status_webhook_with(*id, state, &delivery, &description, &at)
                .await;
            assert_eq!(status, 202);
        }
    }
    for id in &ids {
        serving.slack.wait_for(&format!("(step 2 of {id})")).await;
    }

    let sent = serving.slack.sent();
    for id in &ids {
        let steps: Vec<String> = sent
            .iter()
            .filter(|s| s.method == "chat.postMessage" && s.thread_ts.is_some())
            .filter_map(|s| {
                let (_, rest) = s.text.split_once("(step ")?;
                let (step, of) = rest.split_once(" of ")?;
                (of.strip_prefix(&id.to_string())?.starts_with(')')).then(|| step.to_owned())
            })
            .collect();
        assert_eq!(steps, ["0", "1", "2"], "deployment {id}: {sent:#?}");
    }
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_command_waiting_on_github_does_not_hold_up_the_next_command() {
    let mut serving = serve().await;
    serving
        .github
        .set_branch("acme/api", "feature", harness::MAIN);
    serving.github.set_latency(Duration::from_secs(1));
    assert_eq!(
        serving.slash("api/feature to staging", "n.1", 0).await.0,
        200
    );
    // The deploy is claimed and waiting on GitHub when this arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(serving.hoist_command("whoami", "n.2").await.0, 200);
    serving
        .slack
        .wait_for("hoist knows you as GitHub user `ada-gh`")
        .await;
    assert!(
        serving.github.deployment_ids("acme/api").is_empty(),
        "the second command was answered only after the slow one finished"
    );
    serving
        .slack
        .wait_for("Deploying api feature (1111111) to staging")
        .await;
    serving.process.kill().await.unwrap();
}
