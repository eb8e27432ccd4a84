//! The GitHub forge over real HTTP against the fake GitHub in
//! `tests/fakes/`.

mod fakes;

use std::time::{Duration, Instant};

use axum::http::Method;
use fakes::github::{Failure, FakeGitHub, TOKEN};
use hoist::domain::{DeploymentId, DeploymentState, RepoName, Sha};
use hoist::forge::github::{GitHubAuth, GitHubForge};
use hoist::forge::{CheckState, DeploymentFilter, Forge, ForgeError, NewDeployment, NewStatus};
use serde_json::json;

const MAIN: &str = "1111111111111111111111111111111111111111";
const FEATURE: &str = "2222222222222222222222222222222222222222";
const TAGGED: &str = "3333333333333333333333333333333333333333";
const RULES: &str = "staging:\n  required_contexts: []\n";

fn api() -> RepoName {
    "acme/api".parse().unwrap()
}

/// A fake with `acme/api`: `main`, `feature/x`, tag `v1.0`, and a deploy.yml
/// on each branch (the feature branch's tries to loosen the rules).
async fn github() -> FakeGitHub {
    let fake = FakeGitHub::start().await;
    fake.add_repo("acme/api", "main", MAIN);
    fake.set_branch("acme/api", "feature/x", FEATURE);
    fake.set_tag("acme/api", "v1.0", TAGGED);
    fake.set_file("acme/api", "main", ".github/deploy.yml", RULES);
    fake.set_file(
        "acme/api",
        "feature/x",
        ".github/deploy.yml",
        "anything-goes:\n",
    );
    fake
}

fn forge(fake: &FakeGitHub) -> GitHubForge {
    GitHubForge::new(fake.settings(FakeGitHub::token_auth())).unwrap()
}

fn request(key: &str) -> NewDeployment {
    NewDeployment {
        git_ref: "feature/x".into(),
        task: "deploy:migrations".into(),
        environment: "staging".into(),
        description: Some("Deploy feature/x for ada".into()),
        auto_merge: false,
        required_contexts: Some(vec!["ci/build".into()]),
        payload: json!({
            "target": "staging",
            "hosts": ["web-1"],
            "params": {"log_level": "debug"},
            "hoist": {"app": "api", "request_key": key, "origin": {"platform": "slack", "conversation": "C1", "message": null, "actor": {"id": "U1", "name": "Ada", "login": "ada"}}},
        }),
        transient_environment: true,
        production_environment: false,
        request_key: key.into(),
        retried: false,
        requested_by: "ada".into(),
    }
}

#[tokio::test]
async fn deploy_rules_come_from_the_default_branch_and_are_cached_by_etag() {
    let fake = github().await;
    let forge = forge(&fake);
    let file = forge.deploy_config(&api()).await.unwrap().unwrap();
    assert_eq!(file.text, RULES, "never the feature branch's file");
    assert_eq!(file.label, "acme/api:.github/deploy.yml@main");

    let again = forge.deploy_config(&api()).await.unwrap().unwrap();
    assert_eq!(again.text, RULES);
    let contents: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/repos/acme/api/contents/"))
        .collect();
    assert_eq!(contents.len(), 2);
    assert_eq!(contents[0].if_none_match, None);
    assert!(contents[1].if_none_match.is_some());
    assert_eq!(
        contents[1].status, 304,
        "the second read costs no rate limit"
    );

    // A change on the default branch is seen at once.
    fake.set_file("acme/api", "main", ".github/deploy.yml", "production:\n");
    assert_eq!(
        forge.deploy_config(&api()).await.unwrap().unwrap().text,
        "production:\n"
    );
    // And so is a new default branch.
    fake.set_default_branch("acme/api", "feature/x");
    assert_eq!(
        forge.deploy_config(&api()).await.unwrap().unwrap().text,
        "anything-goes:\n"
    );
}

#[tokio::test]
async fn a_missing_file_is_none_and_a_missing_repository_is_not_found() {
    let fake = github().await;
    fake.add_repo("acme/empty", "main", MAIN);
    let forge = forge(&fake);
    assert!(
        forge
            .deploy_config(&"acme/empty".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let error = forge
        .deploy_config(&"acme/nope".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "repository acme/nope not found, or hoist has no access to it"
    );
}

#[tokio::test]
async fn refs_resolve_to_commits() {
    let fake = github().await;
    let forge = forge(&fake);
    assert_eq!(forge.default_branch(&api()).await.unwrap(), "main");
    assert_eq!(
        forge.resolve_ref(&api(), "main").await.unwrap().as_str(),
        MAIN
    );
    assert_eq!(
        forge
            .resolve_ref(&api(), "feature/x")
            .await
            .unwrap()
            .as_str(),
        FEATURE
    );
    assert_eq!(
        forge.resolve_ref(&api(), "v1.0").await.unwrap().as_str(),
        TAGGED
    );
    assert_eq!(
        forge.resolve_ref(&api(), TAGGED).await.unwrap().as_str(),
        TAGGED
    );
    let error = forge.resolve_ref(&api(), "nope").await.unwrap_err();
    assert_eq!(
        error,
        ForgeError::NotFound {
            what: "`nope` in acme/api".into()
        }
    );
}

#[tokio::test]
async fn checks_combine_statuses_and_check_runs() {
    let fake = github().await;
    fake.set_status("acme/api", MAIN, "ci/build", "success");
    fake.set_status("acme/api", MAIN, "ci/lint", "failure");
    fake.set_check_run("acme/api", MAIN, "tests", "in_progress", None);
    fake.set_check_run("acme/api", MAIN, "audit", "completed", Some("success"));
    let checks = forge(&fake)
        .commit_checks(&api(), &Sha::new(MAIN).unwrap())
        .await
        .unwrap();
    let states: Vec<(&str, CheckState)> =
        checks.iter().map(|c| (c.name.as_str(), c.state)).collect();
    assert_eq!(
        states,
        [
            ("ci/build", CheckState::Success),
            ("ci/lint", CheckState::Failure),
            ("tests", CheckState::Pending),
            ("audit", CheckState::Success),
        ]
    );
}

#[tokio::test]
async fn a_deployment_carries_every_deliverybot_field() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/build", "success");
    let made = forge(&fake)
        .create_deployment(&api(), &request("slack:T1:1"))
        .await
        .unwrap();
    assert_eq!(made.sha.as_str(), FEATURE);
    assert_eq!(made.git_ref, "feature/x");
    assert_eq!(made.task, "deploy:migrations");
    assert_eq!(made.environment, "staging");
    assert_eq!(made.creator, "ada", "the person, not the bot's token");
    assert!(made.transient_environment);
    assert!(!made.production_environment);
    assert_eq!(made.state, None);

    let sent = fake.deployment_requests("acme/api");
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent["ref"], "feature/x");
    assert_eq!(sent["task"], "deploy:migrations");
    assert_eq!(sent["environment"], "staging");
    assert_eq!(sent["description"], "Deploy feature/x for ada");
    assert_eq!(sent["auto_merge"], false);
    assert_eq!(sent["required_contexts"], json!(["ci/build"]));
    assert_eq!(sent["transient_environment"], true);
    assert_eq!(sent["production_environment"], false);
    assert_eq!(sent["payload"]["hosts"], json!(["web-1"]));
    assert_eq!(sent["payload"]["params"]["log_level"], "debug");
    assert_eq!(sent["payload"]["hoist"]["origin"]["conversation"], "C1");
}

#[tokio::test]
async fn required_contexts_absent_means_all_and_empty_means_none() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/lint", "failure");
    let forge = forge(&fake);

    let every_check = NewDeployment {
        required_contexts: None,
        ..request("k1")
    };
    let error = forge
        .create_deployment(&api(), &every_check)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ForgeError::ChecksFailed { .. }),
        "{error:?}"
    );
    assert!(fake.deployment_requests("acme/api").is_empty());

    let forced = NewDeployment {
        required_contexts: Some(vec![]),
        ..request("k2")
    };
    forge.create_deployment(&api(), &forced).await.unwrap();
    let posts: Vec<serde_json::Value> = fake
        .seen()
        .into_iter()
        .filter(|s| s.method == Method::POST)
        .filter_map(|s| s.body)
        .collect();
    assert_eq!(posts.len(), 2);
    assert!(
        posts[0].get("required_contexts").is_none(),
        "absent, so GitHub checks all: {}",
        posts[0]
    );
    assert_eq!(posts[1]["required_contexts"], json!([]));
}

#[tokio::test]
async fn failing_contexts_are_named_with_their_states() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/build", "failure");
    fake.set_status("acme/api", FEATURE, "ci/test", "success");
    let wanted = NewDeployment {
        required_contexts: Some(vec!["ci/build".into(), "ci/test".into(), "security".into()]),
        ..request("k")
    };
    let error = forge(&fake)
        .create_deployment(&api(), &wanted)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "required checks are not passing: ci/build is failure, security is pending"
    );
}

#[tokio::test]
async fn the_same_request_makes_one_deployment_even_across_processes() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/build", "success");
    let first = forge(&fake)
        .create_deployment(&api(), &request("slack:T1:42"))
        .await
        .unwrap();
    // A fresh request costs no lookup: one POST, no listing.
    assert_eq!(fake.count(Method::GET, "/repos/acme/api/deployments"), 0);

    // Another process retries it (its store saw a claim and no record).
    let retried = NewDeployment {
        retried: true,
        ..request("slack:T1:42")
    };
    let forge_a = forge(&fake);
    let again = forge_a.create_deployment(&api(), &retried).await.unwrap();
    assert_eq!(again.id, first.id, "found again through GitHub's listing");
    let once_more = forge_a.create_deployment(&api(), &retried).await.unwrap();
    assert_eq!(once_more.id, first.id);
    assert_eq!(fake.count(Method::POST, "/repos/acme/api/deployments"), 1);
    let other = forge_a
        .create_deployment(&api(), &request("slack:T1:43"))
        .await
        .unwrap();
    assert_ne!(other.id, first.id);
}

#[tokio::test]
async fn auto_merge_is_reported_instead_of_a_deployment() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/build", "success");
    fake.needs_merge("acme/api", "feature/x");
    let wanted = NewDeployment {
        auto_merge: true,
        ..request("k")
    };
    let error = forge(&fake)
        .create_deployment(&api(), &wanted)
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ForgeError::AutoMerged {
            git_ref: "feature/x".into()
        }
    );
    assert!(
        error
            .to_string()
            .contains("merged the default branch into `feature/x`")
    );
}

#[tokio::test]
async fn conflicts_rejections_and_missing_repositories_are_explained() {
    let fake = github().await;
    let forge = forge(&fake);
    fake.fail_next(Failure::new(
        Method::POST,
        "/repos/acme/api/deployments",
        409,
        r#"{"message": "Conflict merging main into feature/x."}"#,
    ));
    let error = forge
        .create_deployment(&api(), &request("a"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the default branch cannot be merged into `feature/x` automatically: Conflict merging main into feature/x."
    );

    let unknown_ref = NewDeployment {
        git_ref: "gone".into(),
        ..request("b")
    };
    let error = forge
        .create_deployment(&api(), &unknown_ref)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the forge rejected the request: No ref found for: gone"
    );

    let error = forge
        .create_deployment(&"acme/nope".parse().unwrap(), &request("c"))
        .await
        .unwrap_err();
    assert!(matches!(error, ForgeError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn a_server_error_on_create_is_not_retried_but_a_get_is() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/build", "success");
    let forge = forge(&fake);
    fake.fail_next(Failure::new(
        Method::POST,
        "/repos/acme/api/deployments",
        500,
        "{}",
    ));
    let error = forge
        .create_deployment(&api(), &request("k"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the forge is unavailable (GitHub answered 500); nothing was changed, try again shortly"
    );
    assert_eq!(fake.count(Method::POST, "/repos/acme/api/deployments"), 1);

    fake.fail_next(Failure::new(
        Method::GET,
        "/repos/acme/api/commits/",
        502,
        "bad gateway",
    ));
    assert_eq!(
        forge.resolve_ref(&api(), "main").await.unwrap().as_str(),
        MAIN
    );
}

#[tokio::test]
async fn a_github_that_does_not_answer_in_time_is_unavailable() {
    let fake = github().await;
    let mut settings = fake.settings(FakeGitHub::token_auth());
    settings.request_timeout = Duration::from_millis(500);
    let forge = GitHubForge::new(settings).unwrap();
    fake.fail_next(
        Failure::new(Method::GET, "/repos/acme/api/commits/", 200, "")
            .delay(Duration::from_secs(3)),
    );
    let started = Instant::now();
    let error = forge.resolve_ref(&api(), "main").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        error.to_string(),
        "the forge is unavailable (GitHub did not answer within 0.5 s); nothing was changed, try again shortly"
    );
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out_and_a_long_one_reported() {
    let fake = github().await;
    let forge = forge(&fake);
    fake.fail_next(
        Failure::new(
            Method::GET,
            "/repos/acme/api/commits/",
            403,
            r#"{"message": "You have exceeded a secondary rate limit."}"#,
        )
        .header("retry-after", "1"),
    );
    let started = Instant::now();
    assert_eq!(
        forge.resolve_ref(&api(), "main").await.unwrap().as_str(),
        MAIN
    );
    assert!(started.elapsed() >= Duration::from_secs(1));

    let reset = (jiff::Timestamp::now().as_second() + 3600).to_string();
    fake.fail_next(
        Failure::new(
            Method::GET,
            "/repos/acme/api/commits/",
            403,
            r#"{"message": "API rate limit exceeded"}"#,
        )
        .header("x-ratelimit-remaining", "0")
        .header("x-ratelimit-reset", &reset),
    );
    let error = forge.resolve_ref(&api(), "main").await.unwrap_err();
    let ForgeError::RateLimited { retry_after } = error else {
        panic!("expected a rate limit, got {error:?}");
    };
    assert!(
        (3590..=3600).contains(&retry_after.as_secs()),
        "{retry_after:?}"
    );
}

#[tokio::test]
async fn a_refused_token_is_unauthorized_and_never_shown() {
    let fake = github().await;
    let secret = "ghp_wrongtoken_never_print_me";
    let settings = fake.settings(GitHubAuth::Token(secret.to_owned().into()));
    assert!(!format!("{settings:?}").contains(secret));
    let error = GitHubForge::new(settings)
        .unwrap()
        .default_branch(&api())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "hoist's credentials for the forge were refused: GitHub answered 401 (Bad credentials)"
    );
    assert!(!format!("{error:?}").contains(secret));
}

#[tokio::test]
async fn a_github_app_gets_one_installation_token_and_reuses_it() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/build", "success");
    let settings = fake.settings(FakeGitHub::app_auth());
    assert!(!format!("{settings:?}").contains("PRIVATE KEY"));
    let forge = GitHubForge::new(settings).unwrap();
    assert_eq!(forge.default_branch(&api()).await.unwrap(), "main");
    forge
        .create_deployment(&api(), &request("k"))
        .await
        .unwrap();
    forge.resolve_ref(&api(), "v1.0").await.unwrap();
    assert_eq!(fake.installation_tokens_issued(), 1);
    assert_eq!(fake.count(Method::GET, "/repos/acme/api/installation"), 1);
    // A repository the app is not installed on.
    let error = forge
        .default_branch(&"acme/elsewhere".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("installation of hoist's GitHub App on acme/elsewhere"),
        "{error}"
    );
    // The installation token is never a personal token.
    assert!(!format!("{:?}", fake.seen()).contains(TOKEN));
}

#[tokio::test]
async fn statuses_are_posted_shortened_and_listed_as_the_latest_state() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/build", "success");
    let forge = forge(&fake);
    let made = forge
        .create_deployment(&api(), &request("k"))
        .await
        .unwrap();
    let long = "x".repeat(300);
    for (state, description) in [
        (DeploymentState::InProgress, "running"),
        (DeploymentState::Success, long.as_str()),
    ] {
        let status = NewStatus {
            state,
            description: Some(description.into()),
            log_url: Some("http://127.0.0.1:3000/deployments/github/acme/api/1/log".into()),
            environment_url: Some("https://staging.example.com".into()),
        };
        forge.create_status(&api(), made.id, &status).await.unwrap();
    }
    let posted = fake.statuses(made.id.0);
    assert_eq!(posted.len(), 2);
    assert_eq!(
        posted[1]["description"].as_str().unwrap().chars().count(),
        140
    );
    assert_eq!(posted[1]["environment_url"], "https://staging.example.com");

    let listed = forge
        .list_deployments(&api(), &DeploymentFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, Some(DeploymentState::Success));
    // When the latest status was posted: GitHub's `created_at` of it.
    let success_at: jiff::Timestamp = posted[1]["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(listed[0].status_at, Some(success_at));
    assert!(listed[0].created_at <= success_at);
    let none = DeploymentFilter {
        environment: Some("production".into()),
        ..DeploymentFilter::default()
    };
    assert!(
        forge
            .list_deployments(&api(), &none)
            .await
            .unwrap()
            .is_empty()
    );

    let error = forge
        .create_status(
            &api(),
            DeploymentId(1),
            &NewStatus {
                state: DeploymentState::Success,
                description: None,
                log_url: None,
                environment_url: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "deployment 1 of acme/api not found, or hoist has no access to it"
    );
}

#[tokio::test]
async fn fresh_rules_are_used_without_asking_again() {
    let fake = github().await;
    let mut settings = fake.settings(FakeGitHub::token_auth());
    settings.rules_fresh_for = Duration::from_secs(60);
    let forge = GitHubForge::new(settings).unwrap();
    for _ in 0..3 {
        assert_eq!(
            forge.deploy_config(&api()).await.unwrap().unwrap().text,
            RULES
        );
    }
    assert_eq!(fake.count(Method::GET, "/repos/acme/api/contents/"), 1);
    assert_eq!(
        fake.count(Method::GET, "/repos/acme/api"),
        2,
        "the repository once, the file once"
    );
}

#[tokio::test]
async fn a_deployment_without_statuses_has_no_status_time_and_a_later_one_its_own() {
    let fake = github().await;
    fake.set_status("acme/api", FEATURE, "ci/build", "success");
    let forge = forge(&fake);
    let made = forge
        .create_deployment(&api(), &request("k"))
        .await
        .unwrap();
    assert_eq!((made.state, made.status_at), (None, None));
    let created: jiff::Timestamp = "2024-03-01T10:00:00Z".parse().unwrap();
    let ended: jiff::Timestamp = "2024-03-01T10:02:10Z".parse().unwrap();
    fake.set_created_at(made.id.0, created);
    fake.add_status_at(made.id.0, "in_progress", "running", created);
    fake.add_status_at(made.id.0, "failure", "exit 1", ended);
    let listed = forge
        .list_deployments(&api(), &DeploymentFilter::default())
        .await
        .unwrap();
    assert_eq!(listed[0].created_at, created);
    assert_eq!(listed[0].state, Some(DeploymentState::Failure));
    assert_eq!(listed[0].status_at, Some(ended), "the latest status's time");
}

#[tokio::test]
async fn team_membership_is_true_only_for_an_active_member() {
    let fake = github().await;
    fake.set_team_members("acme/releasers", &["ada", "Grace"]);
    fake.invite_to_team("acme/releasers", "linus");
    let forge = forge(&fake);
    let member = |team: &'static str, login: &'static str| {
        let forge = &forge;
        async move { forge.team_member(team, login).await }
    };
    assert_eq!(member("acme/releasers", "ada").await, Ok(true));
    // GitHub's names are case-insensitive.
    assert_eq!(member("ACME/Releasers", "grace").await, Ok(true));
    assert_eq!(
        member("acme/releasers", "bob").await,
        Ok(false),
        "not in it"
    );
    assert_eq!(
        member("acme/releasers", "linus").await,
        Ok(false),
        "invited, not joined yet"
    );
    assert_eq!(
        member("acme/nobody", "ada").await,
        Ok(false),
        "unknown team"
    );
    assert_eq!(member("other/releasers", "ada").await, Ok(false));
    assert_eq!(
        fake.count(Method::GET, "/orgs/acme/teams/releasers/memberships/ada"),
        1
    );
    assert!(matches!(
        member("releasers", "ada").await,
        Err(ForgeError::Rejected { .. })
    ));

    // Asked again: revalidated with its ETag, still GitHub's answer.
    assert_eq!(member("acme/releasers", "ada").await, Ok(true));
    let asked: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.path == "/orgs/acme/teams/releasers/memberships/ada")
        .collect();
    assert_eq!(asked.len(), 2);
    assert!(asked[1].if_none_match.is_some());
    assert_eq!(asked[1].status, 304);
    // Removed from the team: the next answer says so.
    fake.set_team_members("acme/releasers", &["grace"]);
    assert_eq!(member("acme/releasers", "ada").await, Ok(false));
}

#[tokio::test]
async fn team_membership_errors_map_like_any_other_call() {
    let fake = github().await;
    fake.set_team_members("acme/releasers", &["ada"]);
    let forge = forge(&fake);
    // A token without `members: read` (or `read:org`).
    fake.fail_next(Failure::new(
        Method::GET,
        "/orgs/acme/teams/",
        403,
        r#"{"message": "Resource not accessible by personal access token"}"#,
    ));
    let error = forge
        .team_member("acme/releasers", "ada")
        .await
        .unwrap_err();
    assert!(matches!(error, ForgeError::Unauthorized { .. }), "{error}");
    assert!(
        error.to_string().contains("Resource not accessible"),
        "{error}"
    );
    // A server error on a GET is retried once.
    fake.fail_next(Failure::new(Method::GET, "/orgs/acme/teams/", 502, "{}"));
    assert_eq!(forge.team_member("acme/releasers", "ada").await, Ok(true));
    for _ in 0..2 {
        fake.fail_next(Failure::new(Method::GET, "/orgs/acme/teams/", 500, "{}"));
    }
    assert!(matches!(
        forge.team_member("acme/releasers", "ada").await,
        Err(ForgeError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn a_github_app_reads_teams_through_the_organizations_installation() {
    let fake = github().await;
    fake.set_team_members("acme/releasers", &["ada"]);
    fake.set_team_members("globex/ops", &["hank"]);
    let forge = GitHubForge::new(fake.settings(FakeGitHub::app_auth())).unwrap();
    // No repository of globex is known: its installation is looked up once.
    assert_eq!(forge.team_member("globex/ops", "hank").await, Ok(true));
    assert_eq!(forge.team_member("globex/ops", "ada").await, Ok(false));
    assert_eq!(fake.count(Method::GET, "/orgs/globex/installation"), 1);
    // A repository of acme already named the installation: no lookup.
    forge
        .use_installation(&api(), fakes::github::INSTALLATION_ID)
        .await
        .unwrap();
    assert_eq!(forge.team_member("acme/releasers", "ada").await, Ok(true));
    assert_eq!(fake.count(Method::GET, "/orgs/acme/installation"), 0);
    // An organization the app is not installed on.
    let error = forge.team_member("initech/ops", "ada").await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("installation of hoist's GitHub App on the organization initech"),
        "{error}"
    );
    assert!(!format!("{:?}", fake.seen()).contains(TOKEN));
}
