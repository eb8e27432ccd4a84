//! `hoist shell` with `forge.kind = "github"`, against the fake GitHub:
//! what a person types, what GitHub receives, and what the person reads
//! back when GitHub says no.

mod fakes;
mod support;

use axum::http::Method;
use fakes::github::{Failure, FakeGitHub, TOKEN};
use support::hoist;

const MAIN: &str = "1111111111111111111111111111111111111111";
const FEATURE: &str = "2222222222222222222222222222222222222222";
const RULES: &str = r#"staging:
  description: "${{ ref }} to staging by ${{ actor }}"
  payload:
    url: "https://${{ short_sha }}.staging.example.com"
production:
  required_contexts: ["ci/build"]
  auto_merge: true
"#;

struct Setup {
    fake: FakeGitHub,
    dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let fake = FakeGitHub::start().await;
    fake.add_repo("acme/api", "main", MAIN);
    fake.set_branch("acme/api", "feature/x", FEATURE);
    fake.set_file("acme/api", "main", ".github/deploy.yml", RULES);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hoist.toml"),
        format!(
            "[store]\nurl = \"sqlite://{}\"\n[forge]\nkind = \"github\"\n[github]\napi_url = \"{}\"\nrequest_timeout_secs = 2\n[apps.api]\nrepo = \"acme/api\"\n",
            dir.path().join("hoist.db").display(),
            fake.url()
        ),
    )
    .unwrap();
    Setup { fake, dir }
}

impl Setup {
    async fn shell(&self, input: &str) -> support::Run {
        let config = self.dir.path().join("hoist.toml").display().to_string();
        hoist(
            &["shell", "--config", &config],
            input,
            &[("HOIST_GITHUB__TOKEN", TOKEN), ("USER", "ada")],
        )
        .await
    }
}

#[tokio::test]
async fn a_typed_command_becomes_a_github_deployment_with_every_field() {
    let setup = setup().await;
    let run = setup
        .shell("deploy:migrate api/feature/x to staging/web-1,web-2 | log_level=debug\n")
        .await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout.contains("Deploying api feature/x (2222222) to staging: deployment #1001 created (task deploy:migrate)"),
        "{}",
        run.stdout
    );
    let sent = setup.fake.deployment_requests("acme/api");
    assert_eq!(sent.len(), 1, "{run:?}");
    let sent = &sent[0];
    assert_eq!(sent["ref"], "feature/x");
    assert_eq!(sent["task"], "deploy:migrate");
    assert_eq!(sent["environment"], "staging");
    assert_eq!(sent["description"], "feature/x to staging by ada");
    assert_eq!(sent["auto_merge"], false);
    assert!(
        sent.get("required_contexts").is_none(),
        "absent: GitHub checks every context"
    );
    assert_eq!(sent["production_environment"], false);
    assert_eq!(sent["transient_environment"], false);
    let payload = &sent["payload"];
    assert_eq!(payload["target"], "staging");
    assert_eq!(payload["url"], "https://2222222.staging.example.com");
    assert_eq!(payload["hosts"], serde_json::json!(["web-1", "web-2"]));
    assert_eq!(payload["params"]["log_level"], "debug");
    assert_eq!(payload["hoist"]["app"], "api");
    assert_eq!(payload["hoist"]["origin"]["platform"], "shell");
    assert_eq!(payload["hoist"]["origin"]["actor"]["name"], "ada");
}

#[tokio::test]
async fn githubs_refusals_become_short_clear_replies() {
    let setup = setup().await;
    setup
        .fake
        .set_status("acme/api", MAIN, "ci/build", "failure");
    setup.fake.fail_next(Failure::new(
        Method::GET,
        "/repos/acme/api/commits/",
        500,
        "{}",
    ));
    setup.fake.fail_next(Failure::new(
        Method::GET,
        "/repos/acme/api/commits/",
        500,
        "{}",
    ));
    let run = setup
        .shell("deploy api to production\ndeploy api/nope to staging\ndeploy api to production\n")
        .await;
    assert!(run.success, "{run:?}");
    support::assert_in_order(
        &run.stdout,
        &[
            "Nothing was deployed: the forge is unavailable (GitHub answered 500); nothing was changed, try again shortly.",
            "I can't find `nope` in acme/api: no branch, tag or commit has that name.",
            // GitHub's refusal names the check; hoist adds its page.
            "Nothing was deployed: required checks are not passing: ci/build is failure (https://ci.example.com/1111111111111111111111111111111111111111/ci/build).",
        ],
    );
    assert!(setup.fake.deployment_requests("acme/api").is_empty());

    // `!` forces past the failing check (and never auto-merges).
    let run = setup.shell("deploy! api to production\n").await;
    assert!(run.stdout.contains("deployment #1001 created"), "{run:?}");
    assert!(
        run.stdout
            .contains("Forced: required checks were not enforced."),
        "{run:?}"
    );
    let sent = &setup.fake.deployment_requests("acme/api")[0];
    assert_eq!(sent["required_contexts"], serde_json::json!([]));
    assert_eq!(sent["auto_merge"], false);
    assert_eq!(sent["production_environment"], true);
}

#[tokio::test]
async fn a_rejected_token_is_reported_without_showing_it() {
    let setup = setup().await;
    let config = setup.dir.path().join("hoist.toml").display().to_string();
    let secret = "ghp_definitely_not_valid_0000";
    let run = hoist(
        &["shell", "--config", &config],
        "deploy api to staging\n",
        &[("HOIST_GITHUB__TOKEN", secret)],
    )
    .await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout.contains("I couldn't read the deploy rules of acme/api: hoist's credentials for the forge were refused: GitHub answered 401 (Bad credentials)"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "{run:?}"
    );
}
