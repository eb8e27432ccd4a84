//! The local forge against real git repositories and a real SQLite store.

mod local_forge_fixture;

use std::collections::HashMap;
use std::sync::Arc;

use hoist::domain::{DeploymentId, DeploymentState, RepoName};
use hoist::forge::local::LocalForge;
use hoist::forge::{
    Check, CheckState, DeploymentFilter, Forge, ForgeError, ForgeEvent, NewDeployment, NewStatus,
};
use hoist::policy::blocking_checks;
use hoist::store::sqlite::SqliteStore;
use local_forge_fixture::GitRepo;
use serde_json::json;

const MAIN_CONFIG: &str = "staging:\n  environment: staging\n";
const BRANCH_CONFIG: &str = "production:\n  environment: production\n  required_contexts: []\n";

fn api() -> RepoName {
    "acme/api".parse().expect("repo name")
}

/// A forge serving one repository as `acme/api`, with its event receiver.
async fn forge_for(repo: &GitRepo) -> (LocalForge, hoist::forge::EventSource) {
    let store = SqliteStore::connect("sqlite::memory:")
        .await
        .expect("store");
    let (tx, rx) = hoist::forge::event_queue();
    let repos = HashMap::from([(api(), repo.path().to_path_buf())]);
    (LocalForge::new(Arc::new(store), repos, tx), rx)
}

/// `main` with a deploy.yml, and a branch `feature` that rewrites it.
fn repo_with_branch() -> GitRepo {
    let repo = GitRepo::new();
    repo.write(".github/deploy.yml", MAIN_CONFIG);
    repo.write("README", "v1\n");
    repo.commit("first");
    repo.git(&["tag", "v1"]);
    repo.git(&["switch", "--quiet", "--create", "feature"]);
    repo.write(".github/deploy.yml", BRANCH_CONFIG);
    repo.commit("feature rewrites the rules");
    repo.git(&["switch", "--quiet", "main"]);
    repo
}

fn request(key: &str, git_ref: &str, required: Option<Vec<&str>>) -> NewDeployment {
    NewDeployment {
        git_ref: git_ref.into(),
        task: "deploy".into(),
        environment: "staging".into(),
        description: Some("from the test".into()),
        auto_merge: true,
        required_contexts: required.map(|names| names.into_iter().map(String::from).collect()),
        payload: json!({"target": "staging", "params": {"a": "1"}}),
        transient_environment: false,
        production_environment: false,
        request_key: key.into(),
        retried: false,
        requested_by: "ada".into(),
    }
}

fn check(name: &str, state: CheckState) -> Check {
    Check {
        name: name.into(),
        state,
        url: None,
    }
}

#[tokio::test]
async fn deploy_config_comes_from_the_default_branch_only() {
    let repo = repo_with_branch();
    let (forge, _events) = forge_for(&repo).await;
    assert_eq!(forge.kind(), "local");
    assert_eq!(forge.default_branch(&api()).await.expect("branch"), "main");
    let config = forge
        .deploy_config(&api())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(config.text, MAIN_CONFIG);
    assert_eq!(config.label, "acme/api:.github/deploy.yml@main");
    // The work tree's copy is not what counts either: only the commit.
    repo.write(".github/deploy.yml", "edited: {}\n");
    let config = forge
        .deploy_config(&api())
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(config.text, MAIN_CONFIG);
}

#[tokio::test]
async fn deploy_config_on_a_branch_only_is_no_config() {
    let repo = GitRepo::new();
    repo.write("README", "hello\n");
    repo.commit("first");
    repo.git(&["switch", "--quiet", "--create", "feature"]);
    repo.write(".github/deploy.yml", BRANCH_CONFIG);
    repo.commit("rules on a branch");
    repo.git(&["switch", "--quiet", "main"]);
    let (forge, _events) = forge_for(&repo).await;
    assert!(forge.deploy_config(&api()).await.expect("read").is_none());
}

#[tokio::test]
async fn a_huge_deploy_config_is_refused() {
    let repo = GitRepo::new();
    repo.write(".github/deploy.yml", &"# padding\n".repeat(120_000));
    repo.commit("huge");
    let (forge, _events) = forge_for(&repo).await;
    let error = forge.deploy_config(&api()).await.expect_err("too big");
    assert!(
        matches!(&error, ForgeError::Rejected { message } if message.contains("limit is 1048576")),
        "{error}"
    );
}

#[tokio::test]
async fn refs_resolve_to_commits_and_unknown_ones_are_not_found() {
    let repo = repo_with_branch();
    let (forge, _events) = forge_for(&repo).await;
    let main = repo.git(&["rev-parse", "main"]);
    let feature = repo.git(&["rev-parse", "feature"]);
    let repo_name = api();
    let resolve = |r: &'static str| forge.resolve_ref(&repo_name, r);
    assert_eq!(resolve("main").await.expect("main").as_str(), main);
    assert_eq!(resolve("feature").await.expect("branch").as_str(), feature);
    assert_eq!(resolve("v1").await.expect("tag").as_str(), main);
    let short = &feature[..7];
    assert_eq!(
        forge
            .resolve_ref(&api(), short)
            .await
            .expect("short")
            .as_str(),
        feature
    );
    assert_eq!(
        forge
            .resolve_ref(&api(), &feature)
            .await
            .expect("full")
            .as_str(),
        feature
    );

    for bad in [
        "nope",
        "",
        "main:README",
        "--output=/tmp/hoist-should-not-exist",
    ] {
        let error = forge.resolve_ref(&api(), bad).await.expect_err(bad);
        assert_eq!(
            error,
            ForgeError::NotFound {
                what: format!("ref `{bad}` in acme/api")
            }
        );
    }
    assert!(!std::path::Path::new("/tmp/hoist-should-not-exist").exists());
}

#[tokio::test]
async fn an_unknown_repository_is_not_found_everywhere() {
    let repo = repo_with_branch();
    let (forge, _events) = forge_for(&repo).await;
    let other: RepoName = "acme/web".parse().expect("repo");
    let not_found = ForgeError::NotFound {
        what: "repository acme/web".into(),
    };
    let sha = repo.head();
    assert_eq!(
        forge.deploy_config(&other).await.expect_err("unknown"),
        not_found
    );
    assert_eq!(
        forge.default_branch(&other).await.expect_err("unknown"),
        not_found
    );
    assert_eq!(
        forge
            .resolve_ref(&other, "main")
            .await
            .expect_err("unknown"),
        not_found
    );
    assert_eq!(
        forge
            .commit_checks(&other, &sha)
            .await
            .expect_err("unknown"),
        not_found
    );
    assert_eq!(
        forge
            .create_deployment(&other, &request("k", "main", None))
            .await
            .expect_err("unknown"),
        not_found
    );
    assert_eq!(
        forge
            .list_deployments(&other, &DeploymentFilter::default())
            .await
            .expect_err("unknown"),
        not_found
    );
    assert_eq!(
        forge
            .set_commit_check(&other, &sha, &check("ci", CheckState::Success))
            .await
            .expect_err("unknown"),
        not_found
    );
}

#[tokio::test]
async fn creating_a_deployment_is_idempotent_and_sends_one_event() {
    let repo = repo_with_branch();
    let (forge, mut events) = forge_for(&repo).await;
    let made = forge
        .create_deployment(&api(), &request("slack:1", "feature", Some(vec![])))
        .await
        .expect("created");
    assert_eq!(made.git_ref, "feature");
    assert_eq!(made.sha.as_str(), repo.git(&["rev-parse", "feature"]));
    assert_eq!(made.creator, "ada");
    assert_eq!(made.environment, "staging");
    assert_eq!(made.payload["params"]["a"], "1");
    assert_eq!(made.state, None);
    assert_eq!(made.status_at, None);
    assert_eq!(
        events.try_recv().expect("one event"),
        ForgeEvent::Deployment {
            repo: api(),
            deployment: made.clone()
        }
    );

    // Same request key: same deployment, even though the ref moved.
    repo.git(&["switch", "--quiet", "feature"]);
    repo.commit("moves the branch");
    repo.git(&["switch", "--quiet", "main"]);
    let again = forge
        .create_deployment(&api(), &request("slack:1", "feature", Some(vec![])))
        .await
        .expect("repeat");
    assert_eq!(again, made);
    assert!(events.try_recv().is_err(), "no second event");

    let error = forge
        .create_deployment(&api(), &request("slack:2", "no-such-branch", None))
        .await
        .expect_err("unknown ref");
    assert!(matches!(error, ForgeError::NotFound { .. }), "{error}");
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn required_contexts_are_checked_as_github_does() {
    let repo = repo_with_branch();
    let (forge, mut events) = forge_for(&repo).await;
    let sha = repo.head();
    forge
        .set_commit_check(&api(), &sha, &check("ci", CheckState::Success))
        .await
        .expect("set");
    forge
        .set_commit_check(&api(), &sha, &check("lint", CheckState::Failure))
        .await
        .expect("set");
    assert_eq!(
        forge.commit_checks(&api(), &sha).await.expect("checks"),
        [
            check("ci", CheckState::Success),
            check("lint", CheckState::Failure)
        ]
    );

    // None: every check must pass.
    let error = forge
        .create_deployment(&api(), &request("r1", "main", None))
        .await
        .expect_err("lint fails");
    assert_eq!(
        error.to_string(),
        "required checks are not passing: lint is failure"
    );
    // A listed check that never reported counts as not passing.
    let error = forge
        .create_deployment(&api(), &request("r2", "main", Some(vec!["ci", "security"])))
        .await
        .expect_err("security missing");
    assert_eq!(
        error,
        ForgeError::ChecksFailed {
            checks: vec![check("security", CheckState::Pending)]
        }
    );
    assert!(events.try_recv().is_err(), "nothing was created");

    // Only the listed ones matter.
    forge
        .create_deployment(&api(), &request("r3", "main", Some(vec!["ci"])))
        .await
        .expect("ci passes");
    // An empty list (a forced deploy) requires nothing.
    forge
        .create_deployment(&api(), &request("r4", "main", Some(vec![])))
        .await
        .expect("forced");
    // Once lint passes, the default rule passes too.
    forge
        .set_commit_check(&api(), &sha, &check("lint", CheckState::Success))
        .await
        .expect("set");
    forge
        .create_deployment(&api(), &request("r5", "main", None))
        .await
        .expect("all green");
    let listed = forge
        .list_deployments(&api(), &DeploymentFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 3);
}

#[test]
fn blocking_checks_follow_githubs_rules() {
    let checks = [
        check("ci", CheckState::Success),
        check("deploy-preview", CheckState::Pending),
    ];
    assert_eq!(
        blocking_checks(&checks, None),
        [check("deploy-preview", CheckState::Pending)]
    );
    assert!(blocking_checks(&[], None).is_empty());
    assert!(blocking_checks(&checks, Some(&[])).is_empty());
    let wanted = ["ci".to_owned(), "e2e".to_owned()];
    assert_eq!(
        blocking_checks(&checks, Some(&wanted)),
        [check("e2e", CheckState::Pending)]
    );
}

#[tokio::test]
async fn statuses_are_stored_and_sent_as_events() {
    let repo = repo_with_branch();
    let (forge, mut events) = forge_for(&repo).await;
    let made = forge
        .create_deployment(&api(), &request("r1", "main", None))
        .await
        .expect("created");
    events.try_recv().expect("deployment event");

    let status = NewStatus {
        state: DeploymentState::InProgress,
        description: Some("running".into()),
        log_url: Some("http://127.0.0.1:3000/deployments/local/acme/api/1/log".into()),
        environment_url: None,
    };
    forge
        .create_status(&api(), made.id, &status)
        .await
        .expect("status");
    match events.try_recv().expect("status event") {
        ForgeEvent::DeploymentStatus {
            repo,
            deployment,
            status: sent,
            at,
        } => {
            assert_eq!(repo, api());
            assert_eq!(deployment.id, made.id);
            assert_eq!(deployment.state, Some(DeploymentState::InProgress));
            assert_eq!(deployment.status_at, Some(at), "the status's own time");
            assert!(at >= made.created_at);
            assert_eq!(sent, status);
        }
        other => panic!("expected a status event, got {other:?}"),
    }
    let listed = forge
        .list_deployments(&api(), &DeploymentFilter::default())
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, Some(DeploymentState::InProgress));
    let (_, in_progress_at) = forge
        .deployment_statuses(&api(), made.id)
        .await
        .expect("statuses")[0]
        .clone();
    assert_eq!(listed[0].status_at, Some(in_progress_at));

    let error = forge
        .create_status(&api(), DeploymentId(999), &status)
        .await
        .expect_err("unknown deployment");
    assert_eq!(
        error,
        ForgeError::NotFound {
            what: "deployment 999 of acme/api".into()
        }
    );
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn a_ref_behind_the_default_branch_counts_the_commits_it_lacks() {
    let repo = repo_with_branch();
    let (forge, _events) = forge_for(&repo).await;
    let v1 = forge.resolve_ref(&api(), "v1").await.expect("v1");
    let feature = forge.resolve_ref(&api(), "feature").await.expect("feature");
    // feature is one ahead of main: not behind.
    assert_eq!(
        forge
            .behind_by(&api(), "main", &feature)
            .await
            .expect("compare"),
        0
    );
    repo.write("README", "v2\n");
    repo.commit("second");
    repo.write("README", "v3\n");
    repo.commit("third");
    assert_eq!(
        forge.behind_by(&api(), "main", &v1).await.expect("compare"),
        2
    );
    assert_eq!(
        forge
            .behind_by(&api(), "main", &feature)
            .await
            .expect("compare"),
        2
    );
    let error = forge
        .behind_by(&api(), "no-such-branch", &v1)
        .await
        .expect_err("unknown base");
    assert!(error.to_string().contains("compare"), "{error}");
}
