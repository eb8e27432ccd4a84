//! The safety rules through the real binary, from Slack and pull request
//! comments against the fakes: locks (held by someone else, the holder's
//! own, unlocked by another, an unknown environment), an auto-deploy that
//! waits for a lock and goes when it is released, a freeze window with a
//! forced deploy allowed and refused, and who may deploy where.

mod fakes;
mod harness;
mod support;

use axum::http::Method;
use fakes::github::Failure;
use harness::{MAIN, Serving, serve_with};
use support::eventually;

const BOB: (&str, &str) = ("U0BOB", "bob");

/// Every deployment hoist created at the fake, as (environment, ref).
fn created(serving: &Serving) -> Vec<(String, String)> {
    serving
        .github
        .deployment_requests("acme/api")
        .iter()
        .map(|sent| {
            (
                sent["environment"].as_str().unwrap_or_default().to_owned(),
                sent["ref"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// hoist serving acme/api with these deploy rules.
async fn serve_rules(deploy_yml: &str) -> Serving {
    let serving = serve_with("").await;
    serving
        .github
        .set_file("acme/api", "main", ".github/deploy.yml", deploy_yml);
    serving
}

/// The text of the first message Slack got that contains `needle`, and
/// whether it went to one person only.
async fn said(serving: &Serving, needle: &str) -> (String, bool) {
    let sent = serving.slack.wait_for(needle).await;
    (sent.text, sent.method == "chat.postEphemeral")
}

#[tokio::test]
async fn a_lock_stops_everyone_but_its_holder_until_it_is_released() {
    let mut serving = serve_rules("staging:\n  required_contexts: []\nproduction:\n").await;
    serving
        .hoist_command("lock staging for api migrating the db", "l-1")
        .await;
    let (text, private) = said(&serving, "locked staging of api").await;
    assert_eq!(
        text,
        "ada locked staging of api: migrating the db. Only they can deploy there until `unlock staging for api`."
    );
    assert!(!private, "a lock is announced to the channel");

    // Bob is refused, told who holds it and why; nothing is created.
    serving
        .hoist_command_as(BOB, "deploy api to staging", "d-bob")
        .await;
    let (refusal, private) = said(&serving, "Not deployed: Staging of api is locked").await;
    assert!(private);
    assert!(
        refusal.contains("locked by ada since ")
            && refusal.contains(": migrating the db. Only ada can deploy there"),
        "{refusal}"
    );
    // Bob cannot take it either; production is not locked.
    serving
        .hoist_command_as(BOB, "lock staging for api", "l-bob")
        .await;
    said(
        &serving,
        "Not locked: staging of api is already locked by ada",
    )
    .await;
    serving
        .hoist_command_as(BOB, "where can I deploy api", "w-1")
        .await;
    let (answer, _) = said(&serving, "can be deployed to:").await;
    assert!(
        answer.contains("staging (locked by ada since ")
            && answer.contains(": migrating the db), production."),
        "{answer}"
    );
    serving
        .hoist_command_as(BOB, "deploy api to production", "d-bob-prod")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    // The holder deploys through her own lock.
    serving
        .hoist_command("deploy api to staging", "d-ada")
        .await;
    serving.slack.wait_for("deployment #1002 created").await;
    assert_eq!(
        created(&serving),
        [
            ("production".to_owned(), "main".to_owned()),
            ("staging".to_owned(), "main".to_owned())
        ]
    );

    // `locks` lists it; bob unlocks (recorded), then deploys.
    serving.hoist_command_as(BOB, "locks", "ls").await;
    let (list, private) = said(&serving, "Locks:").await;
    assert!(private);
    assert!(
        list.contains("staging of api: locked by ada since") && list.contains("taken in C0DEPLOYS"),
        "{list}"
    );
    serving
        .hoist_command_as(BOB, "unlock staging for api", "u-bob")
        .await;
    let (unlocked, private) = said(&serving, "bob unlocked staging of api").await;
    assert!(!private);
    assert!(
        unlocked.contains("(it was locked by ada since"),
        "{unlocked}"
    );
    serving
        .hoist_command_as(BOB, "deploy api to staging", "d-bob-2")
        .await;
    serving.slack.wait_for("deployment #1003 created").await;
    serving
        .hoist_command("unlock staging for api", "u-again")
        .await;
    said(&serving, "staging of api was not locked.").await;
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_lock_on_an_environment_deploy_yml_does_not_have_changes_nothing() {
    let mut serving = serve_rules("staging:\nproduction:\n").await;
    serving
        .hoist_command("lock prodution for api", "l-typo")
        .await;
    let (answer, private) = said(&serving, "is not an environment of api").await;
    assert!(private);
    assert!(answer.contains("(did you mean `production`?)"), "{answer}");
    serving.hoist_command("locks", "ls").await;
    said(&serving, "No locks: every environment takes deployments.").await;
    serving
        .hoist_command("lock --global: code freeze", "l-global")
        .await;
    said(&serving, "ada locked every environment: code freeze.").await;
    serving
        .hoist_command_as(BOB, "deploy api to production", "d-bob")
        .await;
    said(&serving, "Not deployed: Every environment is locked by ada").await;
    assert!(created(&serving).is_empty());
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn an_auto_deploy_that_meets_a_lock_waits_and_goes_when_it_is_released() {
    let mut serving =
        serve_rules("staging:\n  required_contexts: []\n  auto_deploy_on: refs/heads/main\n").await;
    serving.hoist_command("lock staging for api", "l-1").await;
    said(&serving, "ada locked staging of api").await;
    // Even the holder's own push waits: nobody typed it.
    assert_eq!(
        serving.push_event("refs/heads/main", MAIN, "p-1").await,
        202
    );
    serving.wait_handled(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        created(&serving).is_empty(),
        "nothing deployed while locked"
    );

    serving.hoist_command("unlock staging for api", "u-1").await;
    said(&serving, "ada unlocked staging of api.").await;
    let made = eventually("the auto-deploy after the unlock", || {
        Some(created(&serving)).filter(|made| !made.is_empty())
    })
    .await;
    assert_eq!(made, [("staging".to_owned(), "main".to_owned())]);
    serving.process.kill().await.unwrap();
}

/// A dated window from yesterday to tomorrow in New York: whatever the
/// time the test runs, it is inside.
fn freeze_yml() -> String {
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .date();
    let yesterday = today.yesterday().unwrap();
    let tomorrow = today.tomorrow().unwrap();
    format!(
        "production:\n  required_contexts: []\n  freeze:\n    - {{ from: {yesterday}, to: {tomorrow}, timezone: America/New_York, reason: year-end }}\n  freeze_override: [ada-gh]\n"
    )
}

#[tokio::test]
async fn a_freeze_window_refuses_unless_forced_by_someone_allowed() {
    let mut serving = serve_rules(&freeze_yml()).await;
    serving
        .hoist_command_as(BOB, "deploy api to production", "d-bob")
        .await;
    let (refusal, private) = said(&serving, "Not deployed: production is frozen until").await;
    assert!(private);
    assert!(
        refusal.contains("America/New_York): year-end."),
        "{refusal}"
    );
    // `!` from someone the config does not allow changes nothing.
    serving
        .hoist_command_as(BOB, "deploy! api to production", "d-bob-forced")
        .await;
    said(&serving, "`!` overrides it only for `ada-gh`.").await;
    // Ada may, and is told so; forced, it goes.
    serving
        .hoist_command("deploy api to production", "d-ada")
        .await;
    said(&serving, "You may force it with `deploy!`.").await;
    serving
        .hoist_command("deploy! api to production", "d-ada-forced")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    assert_eq!(created(&serving).len(), 1);
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn only_the_allowed_users_deploy_to_a_target_that_names_them() {
    let mut serving = serve_rules("production:\n  required_contexts: []\n  allowed_users: [ada-gh]\nstaging:\n  required_contexts: []\n").await;
    serving
        .hoist_command_as(BOB, "deploy api to production", "d-bob")
        .await;
    let (refusal, _) = said(
        &serving,
        "Not deployed: Only `ada-gh` may deploy to production",
    )
    .await;
    assert!(
        refusal.contains("hoist knows no GitHub login for you"),
        "{refusal}"
    );
    serving
        .hoist_command_as(BOB, "deploy api to staging", "d-bob-staging")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    serving
        .hoist_command("deploy api to production", "d-ada")
        .await;
    serving.slack.wait_for("deployment #1002 created").await;
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn in_a_pull_request_a_lock_is_taken_and_held_by_the_commenter() {
    let mut serving = serve_rules("staging:\n  required_contexts: []\n").await;
    serving.github.set_branch(
        "acme/api",
        "feature-x",
        "2222222222222222222222222222222222222222",
    );
    serving.github.add_pull(
        "acme/api",
        7,
        "feature-x",
        "2222222222222222222222222222222222222222",
        "acme/api",
    );
    serving.github.set_permission("acme/api", "ada-gh", "write");
    serving.github.set_permission("acme/api", "bob-gh", "write");
    serving
        .pr_comment(7, 9001, "ada-gh", ".lock staging testing feature-x", "c-1")
        .await;
    let locked = eventually("the lock's answer", || {
        serving
            .github
            .comments("acme/api", 7)
            .into_iter()
            .find(|comment| comment.body.contains("locked staging of api"))
    })
    .await;
    assert!(locked.body.contains("testing feature-x"), "{}", locked.body);
    serving
        .pr_comment(7, 9002, "bob-gh", ".deploy to staging", "c-2")
        .await;
    let refused = eventually("the refusal", || {
        serving
            .github
            .comments("acme/api", 7)
            .into_iter()
            .find(|comment| {
                comment
                    .body
                    .contains("Not deployed: Staging of api is locked by ada-gh")
            })
    })
    .await;
    assert!(
        refused.body.contains("testing feature-x"),
        "{}",
        refused.body
    );
    assert!(created(&serving).is_empty());
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn production_takes_a_commit_only_after_it_succeeded_in_staging() {
    let mut serving = serve_rules(
        "staging:\n  required_contexts: []\nproduction:\n  required_contexts: []\n  after: [staging]\n",
    )
    .await;
    serving
        .hoist_command("deploy! api to production", "d-prod")
        .await;
    said(
        &serving,
        "Not deployed: this commit must deploy successfully to staging before production; deploy it there first.",
    )
    .await;
    assert!(created(&serving).is_empty(), "`!` does not skip the order");

    serving
        .hoist_command("deploy api to staging", "d-staging")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    // Not yet succeeded: still refused.
    serving
        .hoist_command("deploy api to production", "d-prod-2")
        .await;
    eventually("the second refusal", || {
        (serving
            .slack
            .sent()
            .iter()
            .filter(|sent| sent.text.contains("must deploy successfully to staging"))
            .count()
            == 2)
            .then_some(())
    })
    .await;
    serving.github.add_status(1001, "success", "deployed");
    serving
        .hoist_command("deploy api to production", "d-prod-3")
        .await;
    serving.slack.wait_for("deployment #1002 created").await;
    assert_eq!(
        created(&serving),
        [
            ("staging".to_owned(), "main".to_owned()),
            ("production".to_owned(), "main".to_owned())
        ]
    );
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_deployment_lock_is_held_while_the_deployment_runs_and_never_left_behind() {
    let mut serving = serve_rules(
        "staging:\n  required_contexts: []\n  deployment_lock: true\nproduction:\n  required_contexts: []\n  deployment_lock: true\n",
    )
    .await;
    serving
        .hoist_command("deploy api to staging", "d-ada")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    serving
        .hoist_command_as(BOB, "deploy api to staging", "d-bob")
        .await;
    let (refusal, _) = said(&serving, "Not deployed: Staging of api is locked by ada").await;
    assert!(refusal.contains(": deploying."), "{refusal}");

    // The deployment ends (a failure counts): the lock goes with it.
    assert_eq!(serving.status_webhook(1001, "failure", "s-1").await, 202);
    serving.slack.wait_for("failed").await;
    serving
        .hoist_command_as(BOB, "deploy api to staging", "d-bob-2")
        .await;
    serving.slack.wait_for("deployment #1002 created").await;

    // A deployment GitHub refuses (after the lock was taken) leaves no lock.
    serving.github.fail_next(Failure::new(
        Method::POST,
        "/repos/acme/api/deployments",
        409,
        r#"{"message": "Conflict merging main into feature/x."}"#,
    ));
    serving
        .hoist_command("deploy api to production", "d-prod")
        .await;
    said(
        &serving,
        "Nothing was deployed: the default branch cannot be merged",
    )
    .await;
    serving.hoist_command("locks", "ls").await;
    let (locks, _) = said(&serving, "Locks:").await;
    assert!(!locks.contains("production"), "{locks}");
    assert!(locks.contains("staging of api: locked by bob"), "{locks}");
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn the_holder_of_a_long_held_lock_is_reminded() {
    let mut serving =
        serve_with("[locks]\nremind_after_secs = 1\n[watch]\ninterval_secs = 1\n").await;
    serving
        .github
        .set_file("acme/api", "main", ".github/deploy.yml", "staging:\n");
    serving
        .hoist_command("lock staging for api migrating", "l-1")
        .await;
    said(&serving, "ada locked staging of api").await;
    let sent = serving
        .slack
        .wait_for("ada, you still hold the lock on staging of api")
        .await;
    assert_eq!(sent.method, "chat.postEphemeral", "to the holder alone");
    assert_eq!(sent.user.as_deref(), Some("U0ADA"));
    assert!(
        sent.text
            .contains(": migrating. `unlock staging for api` when you are done"),
        "{}",
        sent.text
    );
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn rollback_redeploys_the_commit_live_before_the_current_one() {
    const OLD: &str = "3333333333333333333333333333333333333333";
    let mut serving = serve_rules("production:\n  required_contexts: []\n").await;
    serving
        .hoist_command("rollback api in production", "r-0")
        .await;
    said(
        &serving,
        "Nothing to roll back in production: no deployment there has succeeded yet.",
    )
    .await;
    // v1 (OLD) succeeded, then main succeeded, then a later main failed.
    serving.github.set_tag("acme/api", "v1", OLD);
    serving
        .hoist_command("deploy api/v1 to production", "d-1")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    serving.github.add_status(1001, "success", "ok");
    serving
        .hoist_command("deploy api to production", "d-2")
        .await;
    serving.slack.wait_for("deployment #1002 created").await;
    serving.github.add_status(1002, "success", "ok");
    serving
        .hoist_command("deploy api to production", "d-3")
        .await;
    serving.slack.wait_for("deployment #1003 created").await;
    serving.github.add_status(1003, "failure", "broke");

    serving
        .hoist_command("rollback api in production", "r-1")
        .await;
    let (answer, private) = said(&serving, "Rolling back api in production").await;
    assert!(!private, "a rollback is a deployment: the channel sees it");
    assert!(
        answer.starts_with("Rolling back api in production from #1002 main (1111111) to #1001 v1 (3333333). Deploying api"),
        "{answer}"
    );
    let sent = serving.github.deployment_requests("acme/api");
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[3]["ref"], OLD, "the earlier commit, by sha");
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn an_outdated_branch_is_refused_or_warned_about_as_the_target_says() {
    const FEATURE: &str = "2222222222222222222222222222222222222222";
    let mut serving = serve_rules(
        "production:\n  required_contexts: []\n  outdated: refuse\nstaging:\n  required_contexts: []\n  outdated: warn\n",
    )
    .await;
    serving.github.set_branch("acme/api", "feature-x", FEATURE);
    serving.github.set_behind("acme/api", FEATURE, 3);
    serving
        .hoist_command("deploy api/feature-x to production", "d-prod")
        .await;
    said(
        &serving,
        "Not deployed: `feature-x` is 3 commits behind `main`, and production takes no outdated refs: merge `main` into it first.",
    )
    .await;
    serving
        .hoist_command("deploy api/feature-x to staging", "d-staging")
        .await;
    let (answer, _) = said(&serving, "deployment #1001 created").await;
    assert!(
        answer.ends_with("Warning: `feature-x` is 3 commits behind `main`."),
        "{answer}"
    );
    // Brought up to date, it goes to production.
    serving.github.set_behind("acme/api", FEATURE, 0);
    serving
        .hoist_command("deploy api/feature-x to production", "d-prod-2")
        .await;
    serving.slack.wait_for("deployment #1002 created").await;
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn the_default_branch_goes_through_a_freeze_where_it_is_the_rollback() {
    let mut serving = serve_rules(&format!(
        "{}  default_branch_rollback: true\n",
        freeze_yml()
    ))
    .await;
    serving.github.set_branch(
        "acme/api",
        "feature-x",
        "2222222222222222222222222222222222222222",
    );
    serving
        .hoist_command_as(BOB, "deploy api/feature-x to production", "d-feature")
        .await;
    said(&serving, "Not deployed: production is frozen until").await;
    serving
        .hoist_command_as(BOB, "deploy api to production", "d-main")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    assert_eq!(
        created(&serving),
        [("production".to_owned(), "main".to_owned())]
    );
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_target_may_need_a_repository_permission_of_whoever_deploys() {
    let mut serving =
        serve_rules("production:\n  required_contexts: []\n  min_permission: write\n").await;
    serving.github.set_permission("acme/api", "ada-gh", "read");
    serving
        .hoist_command("deploy api to production", "d-read")
        .await;
    said(
        &serving,
        "Not deployed: Deploying to production needs write permission on the repository; you have read.",
    )
    .await;
    serving
        .hoist_command_as(BOB, "deploy api to production", "d-bob")
        .await;
    said(&serving, "and hoist knows no GitHub login for you").await;
    serving
        .github
        .set_permission("acme/api", "ada-gh", "maintain");
    serving
        .hoist_command("deploy api to production", "d-write")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn github_failing_while_the_rules_are_judged_is_said_as_github_failing() {
    use axum::http::Method;
    use fakes::github::Failure;
    let mut serving =
        serve_rules("production:\n  required_contexts: []\n  outdated: refuse\n").await;
    // The compare fails, and its one retry.
    for _ in 0..2 {
        serving.github.fail_next(Failure::new(
            Method::GET,
            "/repos/acme/api/compare/",
            502,
            "{}",
        ));
    }
    serving
        .hoist_command("deploy api to production", "d-1")
        .await;
    said(
        &serving,
        "Nothing was deployed: the forge is unavailable (GitHub answered 502)",
    )
    .await;
    assert!(created(&serving).is_empty());
    serving.process.kill().await.unwrap();
}

#[tokio::test]
async fn a_lock_that_ran_out_stops_nobody() {
    let mut serving = serve_rules("staging:\n  required_contexts: []\n").await;
    serving
        .hoist_command("lock staging for api for 1h load test", "l-1")
        .await;
    said(&serving, "locked staging of api until").await;
    serving
        .hoist_command_as(BOB, "deploy api to staging", "d-bob-1")
        .await;
    said(&serving, "Not deployed: Staging of api is locked by ada").await;
    // An hour on: the lock's end moved to the past, in the store.
    let db = serving.dir.path().join("hoist.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE locks SET until = 0")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    serving
        .hoist_command_as(BOB, "deploy api to staging", "d-bob-2")
        .await;
    serving.slack.wait_for("deployment #1001 created").await;
    serving.hoist_command_as(BOB, "locks", "ls").await;
    said(&serving, "No locks").await;
    serving.process.kill().await.unwrap();
}
