//! Approvals through the real binary against the fakes: a deployment to
//! a target with deploy.yml's `approvals` waits, numbered, with Approve
//! and Reject buttons on Slack and `.approve` on pull requests; the
//! requester cannot approve their own; a rejection, an expiry or a moved
//! ref ends it with nothing deployed.

mod fakes;
mod harness;
mod support;

use serde_json::{Value, json};

use harness::{MAIN, Serving, serve_with};
use support::eventually;

const RULES: &str = "staging:\n  required_contexts: []\nproduction:\n  required_contexts: []\n  approvals: { required: 2, from: [ada-gh, grace-gh, hal-gh], expire_after: 1h }\n";

/// Linked in the harness's `[users]` to `grace-gh` and `hal-gh`.
const GRACE: (&str, &str) = ("U0GRACE", "grace");
const HAL: (&str, &str) = ("U0HAL", "hal");
/// Linked to no login.
const BOB: (&str, &str) = ("U0BOB", "bob");

async fn serve_rules(deploy_yml: &str) -> Serving {
    let serving = serve_with("").await;
    serving
        .github
        .set_file("acme/api", "main", ".github/deploy.yml", deploy_yml);
    serving
}

/// A press of one of hoist's buttons by `user`, as Slack posts it (the
/// published `block_actions` example, with hoist's ids).
async fn press(
    serving: &Serving,
    (id, name): (&str, &str),
    action: &str,
    value: &str,
    trigger: &str,
) {
    let mut payload: Value = serde_json::from_str(include_str!(
        "fixtures/slack/block_actions.button.slack-docs.json"
    ))
    .unwrap();
    payload["trigger_id"] = json!(trigger);
    payload["user"]["id"] = json!(id);
    payload["user"]["username"] = json!(name);
    payload["channel"]["id"] = json!("C0DEPLOYS");
    payload["actions"][0]["action_id"] = json!(action);
    payload["actions"][0]["value"] = json!(value);
    let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
    let (status, _) = serving
        .signed_slack("/slack/interactions", body.as_bytes(), 0, &[])
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn two_approvals_from_others_deploy_it_and_the_requesters_own_does_not_count() {
    let mut serving = serve_rules(RULES).await;
    serving
        .hoist_command("deploy api to production", "d-1")
        .await;
    let asked = serving
        .slack
        .wait_for("Deployment request #1: api main (1111111) to production waits for 2 approvals from `ada-gh`, `grace-gh` or `hal-gh` until")
        .await;
    assert_eq!(asked.method, "chat.postMessage", "the channel sees it");
    let blocks = asked.blocks.expect("Block Kit").to_string();
    assert!(
        blocks.contains("hoist_approve") && blocks.contains("hoist_reject"),
        "{blocks}"
    );
    assert!(serving.github.deployment_ids("acme/api").is_empty());

    // The requester's own approval, by button.
    press(&serving, ("U0ADA", "ada"), "hoist_approve", "1", "t-ada").await;
    let own = serving
        .slack
        .wait_for(
            "Nothing changed: You asked for this deployment, so someone else must approve it.",
        )
        .await;
    assert_eq!(own.method, "chat.postEphemeral");
    // Someone hoist knows no login for.
    serving.hoist_command_as(BOB, "approve #1", "a-bob").await;
    serving
        .slack
        .wait_for("Nothing changed: hoist knows no GitHub login for you")
        .await;

    press(&serving, GRACE, "hoist_approve", "1", "t-grace").await;
    serving
        .slack
        .wait_for("grace-gh approved request #1 (api main (1111111) to production); 1 of 2 approvals: it needs 1 more.")
        .await;
    serving
        .hoist_command_as(GRACE, "approve #1", "a-grace-2")
        .await;
    serving
        .slack
        .wait_for("You voted on request #1 already; 1 of 2 approvals: it needs 1 more.")
        .await;
    assert!(serving.github.deployment_ids("acme/api").is_empty());

    // The last one needed: no number, the one waiting in this channel.
    serving.hoist_command_as(HAL, "approve", "a-hal").await;
    serving
        .slack
        .wait_for("hal-gh approved request #1: approved by grace-gh and hal-gh, so api main (1111111) to production deploys now.")
        .await;
    serving
        .slack
        .wait_for("Deploying api main (1111111) to production: deployment #1001 created")
        .await;
    let sent = &serving.github.deployment_requests("acme/api")[0];
    assert_eq!(
        sent["payload"]["hoist"]["origin"]["actor"]["login"], "ada-gh",
        "it deploys as its requester asked it"
    );

    // Approving one that already went.
    serving
        .hoist_command_as(GRACE, "approve #1", "a-grace-3")
        .await;
    serving
        .slack
        .wait_for("Request #1 (api main (1111111) to production) was approved already, by grace-gh and hal-gh, and sent to deploy; nothing changed.")
        .await;
    serving
        .hoist_command_as(GRACE, "approve #9", "a-grace-4")
        .await;
    serving
        .slack
        .wait_for("There is no deployment request #9; nothing changed.")
        .await;
    assert_eq!(serving.github.deployment_ids("acme/api").len(), 1);
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_rejection_ends_the_request_and_nobody_outside_the_list_decides() {
    let mut serving = serve_rules(RULES).await;
    serving
        .hoist_command("deploy api to production", "d-1")
        .await;
    serving.slack.wait_for("Deployment request #1").await;
    serving
        .hoist_command_as(("U0EVE", "eve"), "reject #1", "r-eve")
        .await;
    serving
        .slack
        .wait_for("Nothing changed: hoist knows no GitHub login for you")
        .await;
    press(&serving, HAL, "hoist_reject", "1", "t-hal").await;
    serving
        .slack
        .wait_for(
            "hal-gh rejected request #1 (api main (1111111) to production). Nothing was deployed.",
        )
        .await;
    press(&serving, GRACE, "hoist_approve", "1", "t-grace").await;
    serving
        .slack
        .wait_for("Request #1 (api main (1111111) to production) was rejected by hal-gh; nothing changed.")
        .await;

    // A requester may withdraw their own, with a reason.
    serving
        .hoist_command("deploy api to production", "d-2")
        .await;
    serving.slack.wait_for("Deployment request #2").await;
    serving
        .hoist_command("reject #2: wrong branch", "r-ada")
        .await;
    serving
        .slack
        .wait_for("ada-gh withdrew request #2 (api main (1111111) to production): wrong branch. Nothing was deployed.")
        .await;
    assert!(serving.github.deployment_ids("acme/api").is_empty());
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn approvals_are_for_a_commit_and_a_moved_ref_is_not_deployed() {
    let mut serving = serve_rules(RULES).await;
    serving
        .hoist_command("deploy api to production", "d-1")
        .await;
    serving.slack.wait_for("Deployment request #1").await;
    serving.github.set_branch(
        "acme/api",
        "main",
        "2222222222222222222222222222222222222222",
    );
    serving.hoist_command_as(GRACE, "approve #1", "a-1").await;
    serving.hoist_command_as(HAL, "approve #1", "a-2").await;
    serving
        .slack
        .wait_for("Not deployed: `main` moved from 1111111 to 2222222 since request #1 was asked")
        .await;
    assert!(serving.github.deployment_ids("acme/api").is_empty());
    assert_eq!(
        MAIN.len(),
        40,
        "the harness's main is a full sha, so the move above is real"
    );
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn an_expired_request_is_announced_and_cannot_be_approved() {
    let mut serving = serve_with("[watch]\ninterval_secs = 1\n").await;
    serving
        .github
        .set_file("acme/api", "main", ".github/deploy.yml", RULES);
    serving
        .hoist_command("deploy api to production", "d-1")
        .await;
    serving.slack.wait_for("Deployment request #1").await;
    serving.hoist_command_as(GRACE, "approve #1", "a-1").await;
    serving.slack.wait_for("grace-gh approved request #1").await;
    // An hour on: the request's end moved to the past, in the store.
    let db = serving.dir.path().join("hoist.db");
    let url = format!("sqlite://{}", db.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE approval_requests SET expires_at = 0 WHERE id = 1")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    serving
        .slack
        .wait_for("Deployment request #1 (api main (1111111) to production) expired with 1 of 2 approvals. Nothing was deployed; ask again to start over.")
        .await;
    serving.hoist_command_as(HAL, "approve #1", "a-2").await;
    serving
        .slack
        .wait_for("Request #1 (api main (1111111) to production) expired at")
        .await;
    assert!(serving.github.deployment_ids("acme/api").is_empty());
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn on_a_pull_request_an_approve_comment_approves_it() {
    let serving =
        serve_rules("production:\n  required_contexts: []\n  approvals: { from: [grace-gh] }\n")
            .await;
    let github = &serving.github;
    github.set_permission("acme/api", "ada-gh", "write");
    github.set_permission("acme/api", "grace-gh", "write");
    github.set_branch("acme/api", "feature-x", MAIN);
    github.add_pull("acme/api", 7, "feature-x", MAIN, "acme/api");
    serving
        .pr_comment(7, 9001, "ada-gh", ".deploy to production", "c-1")
        .await;
    let asked = eventually("the request's comment", || {
        github
            .comments("acme/api", 7)
            .into_iter()
            .find(|c| c.body.contains("Deployment request #1"))
    })
    .await;
    assert!(
        asked.body.contains("Approve it with `.approve #1`"),
        "{}",
        asked.body
    );
    serving
        .pr_comment(7, 9002, "ada-gh", ".approve", "c-2")
        .await;
    eventually("the refusal of her own", || {
        github
            .comments("acme/api", 7)
            .into_iter()
            .find(|c| c.body.contains("someone else must approve it"))
    })
    .await;
    serving
        .pr_comment(7, 9003, "grace-gh", ".approve", "c-3")
        .await;
    eventually("the deployment", || {
        Some(github.deployment_ids("acme/api")).filter(|ids| ids.len() == 1)
    })
    .await;
    let sent = &github.deployment_requests("acme/api")[0];
    assert_eq!(sent["ref"], "feature-x", "the pull request's head");
    assert_eq!(sent["environment"], "production");
}

#[tokio::test]
async fn teams_name_who_may_deploy_and_who_may_approve() {
    let mut serving = serve_rules(
        "production:\n  required_contexts: []\n  allowed_users: [acme/release]\n  approvals: { from: [acme/sre] }\n",
    )
    .await;
    serving.github.set_team_members("acme/release", &["ada-gh"]);
    serving.github.set_team_members("acme/sre", &["hal-gh"]);
    serving
        .hoist_command_as(GRACE, "deploy api to production", "d-grace")
        .await;
    serving
        .slack
        .wait_for("Not deployed: Only `acme/release` may deploy to production; you are `grace-gh`.")
        .await;
    serving
        .hoist_command("deploy api to production", "d-ada")
        .await;
    serving
        .slack
        .wait_for("waits for 1 approval from `acme/sre`")
        .await;
    serving
        .hoist_command_as(GRACE, "approve #1", "a-grace")
        .await;
    serving
        .slack
        .wait_for("Nothing changed: Only `acme/sre` may approve deployments to production; you are `grace-gh`.")
        .await;
    serving.hoist_command_as(HAL, "approve #1", "a-hal").await;
    serving
        .slack
        .wait_for("Deploying api main (1111111) to production: deployment #1001 created")
        .await;
    serving.process.kill().await.unwrap();
}
