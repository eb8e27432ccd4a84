//! Deploying from pull requests with the real binary against the fake
//! GitHub: `.deploy` comments answered by one comment edited in place,
//! review environments deployed when a pull request opens and removed
//! when it closes, and what hoist must not deploy.

mod fakes;
mod harness;
mod support;

use axum::http::Method;
use fakes::github::{APP_ID, Failure, INSTALLATION_ID};
use harness::{MAIN, Serving, serve_with_env};
use serde_json::json;
use support::eventually;

const FEATURE: &str = "2222222222222222222222222222222222222222";
const FORK_HEAD: &str = "3333333333333333333333333333333333333333";

/// hoist serving acme/api with pull request #7 from branch feature-x,
/// and ada (`ada-gh`) a writer.
/// The bodies of hoist's comments on pull request `number`, once all
/// `count` comments sent were handled and answered.
async fn answers(serving: &Serving, number: u64, count: usize) -> Vec<String> {
    serving.wait_handled(count as u64).await;
    let comments = eventually("the answers", || {
        Some(serving.github.comments("acme/api", number)).filter(|c| c.len() == count)
    })
    .await;
    comments.into_iter().map(|comment| comment.body).collect()
}

async fn serve_pr(extra: &str) -> Serving {
    serve_pr_with_env(extra, &[]).await
}

async fn serve_pr_with_env(extra: &str, env: &[(&str, &str)]) -> Serving {
    let serving = serve_with_env(extra, env).await;
    serving.github.set_branch("acme/api", "feature-x", FEATURE);
    serving
        .github
        .add_pull("acme/api", 7, "feature-x", FEATURE, "acme/api");
    serving.github.set_permission("acme/api", "ada-gh", "write");
    serving
}

#[tokio::test]
async fn a_deploy_comment_deploys_the_head_and_one_comment_follows_it_to_success() {
    let serving = serve_pr("").await;
    let github = &serving.github;

    let accepted = serving
        .pr_comment(7, 9001, "ada-gh", ".deploy to staging", "c-1")
        .await;
    assert_eq!(accepted, 202);
    let ids = eventually("a deployment", || {
        Some(github.deployment_ids("acme/api")).filter(|ids| !ids.is_empty())
    })
    .await;
    let sent = &github.deployment_requests("acme/api")[0];
    assert_eq!(sent["ref"], "feature-x", "the pull request's head branch");
    assert_eq!(sent["environment"], "staging");
    assert_eq!(
        sent["payload"]["hoist"]["origin"]["platform"],
        "pull_request"
    );
    assert_eq!(
        sent["payload"]["hoist"]["origin"]["conversation"],
        "acme/api#7"
    );
    let announced = eventually("the deployment's comment", || {
        github.comments("acme/api", 7).into_iter().next()
    })
    .await;
    assert!(
        announced
            .body
            .contains("**api** `feature-x` (`2222222`) to **staging**: **created**"),
        "{}",
        announced.body
    );
    assert_eq!(github.reactions("acme/api", 9001), ["eyes"]);

    // GitHub delivers the same comment again, and hoist does nothing new.
    assert_eq!(
        serving
            .pr_comment(7, 9001, "ada-gh", ".deploy to staging", "c-1")
            .await,
        200
    );

    // The edit meets GitHub's secondary rate limit; hoist waits as told.
    github.fail_next(
        Failure::new(
            Method::PATCH,
            "/repos/acme/api/issues/comments/",
            403,
            r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}"#,
        )
        .header("retry-after", "1"),
    );
    assert_eq!(
        serving.status_webhook(ids[0], "in_progress", "s-1").await,
        202
    );
    let log = format!(
        "http://{}/deployments/github/acme/api/{}/log",
        serving.address, ids[0]
    );
    let mut event: serde_json::Value = serde_json::from_str(harness::STATUS_FIXTURE).unwrap();
    event["deployment"] = github.deployment_json(ids[0]);
    event["deployment_status"]["state"] = json!("success");
    event["deployment_status"]["log_url"] = json!(log);
    event["deployment_status"]["created_at"] = json!("2026-11-23T12:05:00Z");
    event["repository"]["full_name"] = json!("acme/api");
    assert_eq!(
        serving
            .github_event("deployment_status", "s-2", &event)
            .await,
        202
    );

    let finished = eventually("the comment edited to success", || {
        github
            .comments("acme/api", 7)
            .into_iter()
            .find(|comment| comment.body.contains("**succeeded**"))
    })
    .await;
    assert_eq!(finished.id, announced.id, "the same comment, edited");
    assert!(
        finished.body.contains(&format!("[log]({log})")),
        "{}",
        finished.body
    );
    eventually("the rocket", || {
        Some(()).filter(|()| github.reactions("acme/api", 9001) == ["eyes", "rocket"])
    })
    .await;
    let limited = github
        .seen()
        .iter()
        .filter(|seen| seen.method == Method::PATCH && seen.status == 403)
        .count();
    assert_eq!(
        limited, 1,
        "the rate-limited edit was tried again, not lost"
    );
    assert_eq!(github.comments("acme/api", 7).len(), 1);
    assert_eq!(github.deployment_ids("acme/api").len(), 1);
}

#[tokio::test]
async fn a_commenter_without_write_permission_gets_one_answer_and_no_deployment() {
    let serving = serve_pr("").await;
    let github = &serving.github;
    github.set_permission("acme/api", "grace", "read");

    serving
        .pr_comment(7, 9101, "grace", ".deploy to staging", "c-1")
        .await;
    // Someone GitHub knows nothing of, on the same pull request.
    serving
        .pr_comment(7, 9102, "mallory", ".deploy to staging", "c-2")
        .await;
    let bodies = answers(&serving, 7, 2).await;
    assert!(
        bodies.iter().any(|body| body.starts_with(
            "Nothing was done: commands on pull requests need write permission on acme/api, and grace has read."
        )),
        "{bodies:?}"
    );
    assert!(
        bodies
            .iter()
            .any(|body| body.contains("and mallory has none")),
        "{bodies:?}"
    );
    assert_eq!(github.reactions("acme/api", 9101), ["eyes", "confused"]);
    assert!(github.deployment_ids("acme/api").is_empty());
}

#[tokio::test]
async fn a_pull_request_from_a_fork_is_deployed_only_where_the_app_allows_it() {
    for (extra, deploys) in [("", false), ("allow_forks = true\n", true)] {
        let serving = serve_pr(extra).await;
        let github = &serving.github;
        // GitHub keeps a fork's commits reachable from the base repository.
        github.set_branch("acme/api", "refs-pull-8-head", FORK_HEAD);
        github.add_pull("acme/api", 8, "feature-x", FORK_HEAD, "mallory/api");

        serving
            .pr_comment(8, 9201, "ada-gh", ".deploy to staging", "c-1")
            .await;
        let answer = eventually("an answer", || {
            github.comments("acme/api", 8).into_iter().next()
        })
        .await;
        if deploys {
            let sent = &github.deployment_requests("acme/api")[0];
            assert_eq!(
                sent["ref"], FORK_HEAD,
                "a fork deploys by sha, not by its branch name"
            );
            assert!(answer.body.contains("**created**"), "{}", answer.body);
        } else {
            assert!(
                answer
                    .body
                    .contains("comes from mallory/api, and forks are not deployed"),
                "{}",
                answer.body
            );
            assert!(
                answer.body.contains("allow_forks = true"),
                "{}",
                answer.body
            );
            assert!(github.deployment_ids("acme/api").is_empty());
        }
    }
}

#[tokio::test]
async fn bots_edits_quotes_and_plain_issues_deploy_nothing() {
    let serving = serve_pr("").await;
    let github = &serving.github;
    let mut by_bot = harness::comment_event(7, 9301, "hoist-bot[bot]", ".deploy to staging");
    by_bot["comment"]["user"]["type"] = json!("Bot");
    serving.github_event("issue_comment", "c-1", &by_bot).await;
    let mut edited = harness::comment_event(7, 9302, "ada-gh", ".deploy to staging");
    edited["action"] = json!("edited");
    serving.github_event("issue_comment", "c-2", &edited).await;
    let mut on_issue = harness::comment_event(3, 9303, "ada-gh", ".deploy to staging");
    on_issue["issue"]
        .as_object_mut()
        .unwrap()
        .remove("pull_request");
    serving
        .github_event("issue_comment", "c-3", &on_issue)
        .await;
    serving
        .pr_comment(
            7,
            9304,
            "ada-gh",
            "> .deploy to staging\n\nShould we?",
            "c-4",
        )
        .await;
    serving
        .pr_comment(7, 9305, "ada-gh", "```\n.deploy to staging\n```", "c-5")
        .await;
    // Signed, but not an issue_comment hoist can read: dropped at once,
    // not retried.
    serving
        .github_event("issue_comment", "c-6", &json!({"action": "created"}))
        .await;
    serving.wait_handled(6).await;

    assert!(github.deployment_ids("acme/api").is_empty());
    assert!(github.comments("acme/api", 7).is_empty());
    assert!(github.comments("acme/api", 3).is_empty());
    for comment in 9301..=9305 {
        assert!(
            github.reactions("acme/api", comment).is_empty(),
            "{comment}"
        );
    }
}

#[tokio::test]
async fn a_command_that_does_not_parse_gets_one_answer_with_the_usage() {
    let serving = serve_pr("").await;
    let github = &serving.github;

    serving
        .pr_comment(7, 9401, "ada-gh", ".deplyo to staging", "c-1")
        .await;
    serving
        .pr_comment(7, 9402, "ada-gh", ".deploy to", "c-2")
        .await;
    let bodies = answers(&serving, 7, 2).await;
    assert!(
        bodies.iter().any(|body| body.contains("`deploy`")),
        "the nearest word: {bodies:?}"
    );
    assert!(
        bodies.iter().all(|body| body.contains("deploy[:task][!]")),
        "the usage: {bodies:?}"
    );
    assert!(github.deployment_ids("acme/api").is_empty());
}

const REVIEW_APPS: &str = "staging:\n  required_contexts: []\n\
review:\n  environment: pr${{ pr }}\n  transient_environment: true\n  auto_deploy_on: pr\n  required_contexts: []\n\
review-db:\n  environment: pr${{ pr }}-db\n  transient_environment: true\n  auto_deploy_on: pr\n  required_contexts: []\n";

#[tokio::test]
async fn opening_a_pull_request_deploys_its_review_apps_and_closing_it_removes_them() {
    let serving = serve_pr("").await;
    let github = &serving.github;
    github.set_file("acme/api", "main", ".github/deploy.yml", REVIEW_APPS);
    let head = ("feature-x", FEATURE, "acme/api");

    serving.pull_request_event("opened", 7, head, "p-1").await;
    serving.wait_handled(1).await;
    let opened = github.deployment_requests("acme/api");
    let mut environments: Vec<&str> = opened
        .iter()
        .map(|d| d.get("environment").and_then(|e| e.as_str()).unwrap())
        .collect();
    environments.sort_unstable();
    assert_eq!(environments, ["pr7", "pr7-db"]);
    assert!(
        opened
            .iter()
            .all(|d| d["ref"] == "feature-x" && d["transient_environment"] == true)
    );
    let live = github.deployment_ids("acme/api");
    eventually("both announced on the pull request", || {
        Some(()).filter(|()| github.comments("acme/api", 7).len() == 2)
    })
    .await;

    serving.pull_request_event("closed", 7, head, "p-2").await;
    serving.wait_handled(2).await;
    let all = github.deployment_requests("acme/api");
    let removals: Vec<_> = all.iter().filter(|d| d["task"] == "remove").collect();
    let mut removed: Vec<&str> = removals
        .iter()
        .map(|d| d["environment"].as_str().unwrap())
        .collect();
    removed.sort_unstable();
    assert_eq!(removed, ["pr7", "pr7-db"]);
    assert!(removals.iter().all(|d| d["required_contexts"] == json!([])));
    for id in &live {
        let states: Vec<String> = github
            .statuses(*id)
            .iter()
            .map(|s| s["state"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(states, ["inactive"], "deployment {id}");
    }
    eventually("the removals announced", || {
        Some(()).filter(|()| {
            github
                .comments("acme/api", 7)
                .iter()
                .filter(|c| c.body.contains("Removing pr7"))
                .count()
                == 2
        })
    })
    .await;

    // Reopened and closed again: nothing is live any more.
    serving.pull_request_event("closed", 7, head, "p-3").await;
    serving.wait_handled(3).await;
    assert_eq!(github.deployment_requests("acme/api").len(), 4);
}

#[tokio::test]
async fn a_push_auto_deploys_where_deploy_yml_says_and_nowhere_else() {
    let serving = serve_pr("channel = \"slack:C0DEPLOYS\"\n").await;
    let github = &serving.github;
    github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "staging:\n  auto_deploy_on: refs/heads/main\n  required_contexts: []\nproduction:\n  required_contexts: []\n",
    );

    serving.push_event("refs/heads/main", MAIN, "push-1").await;
    let announced = serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    assert_eq!(announced.channel, "C0DEPLOYS");
    let sent = &github.deployment_requests("acme/api")[0];
    assert_eq!(sent["environment"], "staging");
    assert_eq!(
        sent["payload"]["hoist"]["origin"]["actor"]["login"],
        "ada-gh"
    );

    // A branch no target names, a push that main has since moved past,
    // and a deleted branch: none deploys.
    serving
        .push_event("refs/heads/feature-x", FEATURE, "push-2")
        .await;
    serving
        .push_event(
            "refs/heads/main",
            "4444444444444444444444444444444444444444",
            "push-3",
        )
        .await;
    let mut deleted: serde_json::Value = serde_json::from_str(harness::PUSH_FIXTURE).unwrap();
    deleted["ref"] = json!("refs/heads/main");
    deleted["repository"]["full_name"] = json!("acme/api");
    serving.github_event("push", "push-4", &deleted).await;
    serving.wait_handled(4).await;
    assert_eq!(github.deployment_ids("acme/api").len(), 1);
}

#[tokio::test]
async fn as_a_github_app_hoist_acts_as_the_installation_each_webhook_names() {
    let key = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/github/test-app-key.pem"
    );
    let app_id = APP_ID.to_string();
    let serving = serve_pr_with_env(
        "",
        &[
            ("HOIST_GITHUB__APP_ID", &app_id),
            ("HOIST_GITHUB__PRIVATE_KEY_PATH", key),
        ],
    )
    .await;
    let github = &serving.github;
    let mut event = harness::comment_event(7, 9501, "ada-gh", ".deploy to staging");
    event["installation"] =
        json!({"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNzc="});
    serving.github_event("issue_comment", "c-1", &event).await;

    eventually("a deployment", || {
        Some(()).filter(|()| github.deployment_ids("acme/api").len() == 1)
    })
    .await;
    // octocrab fetches the token lazily: two first requests at once may
    // each fetch one.
    assert!(github.installation_tokens_issued() >= 1);
    assert_eq!(
        github.count(Method::GET, "/repos/acme/api/installation"),
        0,
        "the webhook named the installation: no lookup"
    );
}

#[tokio::test]
async fn a_deleted_deployment_comment_is_posted_anew_and_kept_up_from_there() {
    let serving = serve_pr("").await;
    let github = &serving.github;
    serving
        .pr_comment(7, 9601, "ada-gh", ".deploy to staging", "c-1")
        .await;
    let first = eventually("the deployment's comment", || {
        github.comments("acme/api", 7).into_iter().next()
    })
    .await;
    let id = github.deployment_ids("acme/api")[0];

    // Someone deleted it: GitHub answers the edit with 404.
    github.fail_next(Failure::new(
        Method::PATCH,
        "/repos/acme/api/issues/comments/",
        404,
        r#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest/issues/comments#update-an-issue-comment","status":"404"}"#,
    ));
    serving.status_webhook(id, "in_progress", "s-1").await;
    let anew = eventually("a new comment", || {
        github.comments("acme/api", 7).into_iter().nth(1)
    })
    .await;
    assert!(anew.body.contains("**in progress**"), "{}", anew.body);

    serving
        .status_webhook_with(id, "success", "s-2", "done", "2026-11-23T12:05:00Z")
        .await;
    eventually("the new comment edited", || {
        github
            .comments("acme/api", 7)
            .into_iter()
            .find(|c| c.id == anew.id && c.body.contains("**succeeded**"))
    })
    .await;
    let comments = github.comments("acme/api", 7);
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0].id, first.id);
    assert_eq!(comments[0].edits, 0, "the deleted one is left alone");
}

const STAGING_ON_PUSH: &str =
    "staging:\n  auto_deploy_on: refs/heads/main\n  required_contexts: [\"ci/test\", \"build\"]\n";

#[tokio::test]
async fn an_auto_deploy_that_meets_pending_checks_deploys_when_they_pass() {
    let serving = serve_pr("channel = \"slack:C0DEPLOYS\"\n").await;
    let github = &serving.github;
    github.set_file("acme/api", "main", ".github/deploy.yml", STAGING_ON_PUSH);
    github.set_status("acme/api", MAIN, "ci/test", "pending");
    github.set_check_run("acme/api", MAIN, "build", "queued", None);

    serving.push_event("refs/heads/main", MAIN, "push-1").await;
    serving
        .slack
        .wait_for(&format!(
            "Waiting for ci/test pending (https://ci.example.com/{MAIN}/ci/test), build pending (https://github.com/runs/build) before deploying api main (1111111) to staging"
        ))
        .await;
    assert!(github.deployment_ids("acme/api").is_empty());

    // One passes: still waiting, and nothing more is said.
    serving
        .commit_status(MAIN, "ci/test", "success", "st-1")
        .await;
    serving.wait_handled(2).await;
    assert!(github.deployment_ids("acme/api").is_empty());

    github.set_check_run("acme/api", MAIN, "build", "completed", Some("success"));
    serving.check_suite_completed(MAIN, "cs-1").await;
    serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    assert_eq!(github.deployment_ids("acme/api").len(), 1);

    // The same event again: the wait is over, nothing deploys twice.
    serving.check_suite_completed(MAIN, "cs-2").await;
    serving.wait_handled(4).await;
    assert_eq!(github.deployment_ids("acme/api").len(), 1);
    let waiting_said = serving
        .slack
        .sent()
        .iter()
        .filter(|sent| sent.text.contains("Waiting for"))
        .count();
    assert_eq!(waiting_said, 1);
}

#[tokio::test]
async fn an_auto_deploy_whose_check_fails_is_not_deployed_and_says_why() {
    let serving = serve_pr("channel = \"slack:C0DEPLOYS\"\n").await;
    let github = &serving.github;
    github.set_file("acme/api", "main", ".github/deploy.yml", STAGING_ON_PUSH);
    github.set_status("acme/api", MAIN, "ci/test", "pending");
    github.set_check_run("acme/api", MAIN, "build", "completed", Some("success"));

    serving.push_event("refs/heads/main", MAIN, "push-1").await;
    serving.slack.wait_for("Waiting for ci/test pending").await;
    serving
        .commit_status(MAIN, "ci/test", "failure", "st-1")
        .await;
    serving
        .slack
        .wait_for("Not deployed: ci/test failed on main.")
        .await;
    serving.wait_handled(2).await;
    assert!(github.deployment_ids("acme/api").is_empty());
}

#[tokio::test]
async fn closing_a_pull_request_leaves_another_pull_requests_deployment_alone() {
    const OTHER: &str = "5555555555555555555555555555555555555555";
    let serving = serve_pr("").await;
    let github = &serving.github;
    // One review environment shared by every pull request.
    github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "review:\n  environment: review\n  transient_environment: true\n  auto_deploy_on: pr\n  required_contexts: []\n",
    );
    github.set_branch("acme/api", "other", OTHER);
    github.add_pull("acme/api", 8, "other", OTHER, "acme/api");

    serving
        .pull_request_event("opened", 8, ("other", OTHER, "acme/api"), "p-1")
        .await;
    serving.wait_handled(1).await;
    let head = ("feature-x", FEATURE, "acme/api");
    serving.pull_request_event("opened", 7, head, "p-2").await;
    serving.wait_handled(2).await;
    let [of_8, of_7] = github.deployment_ids("acme/api")[..] else {
        panic!("two deployments");
    };

    serving.pull_request_event("closed", 7, head, "p-3").await;
    serving.wait_handled(3).await;
    let removal = &github.deployment_requests("acme/api")[2];
    assert_eq!(removal["task"], "remove");
    assert_eq!(github.statuses(of_7)[0]["state"], "inactive");
    assert!(
        github.statuses(of_8).is_empty(),
        "pull request 8's is left alone"
    );
}
