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
            // hoist looks before asking GitHub, and names the check's page.
            "Not deployed: these checks must pass first: ci/build failure (https://ci.example.com/1111111111111111111111111111111111111111/ci/build).",
        ],
    );
    assert!(setup.fake.deployment_requests("acme/api").is_empty());

    // `!` does not skip checks on production unless deploy.yml says so.
    let run = setup.shell("deploy! api to production\n").await;
    assert!(
        run.stdout
            .contains("these checks must pass first: ci/build failure")
            && run
                .stdout
                .contains("`!` does not skip checks on production here."),
        "{run:?}"
    );
    assert!(setup.fake.deployment_requests("acme/api").is_empty());
    let forcible = RULES.replace("production:\n", "production:\n  force_skips_checks: true\n");
    setup
        .fake
        .set_file("acme/api", "main", ".github/deploy.yml", &forcible);

    // Where it may, `!` forces past the failing check (and never auto-merges).
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

#[tokio::test]
async fn deploys_says_how_long_each_deployment_took_or_has_taken() {
    let setup = setup().await;
    let fake = &setup.fake;
    let now = jiff::Timestamp::now();
    let ago = |secs: i64| now - jiff::SignedDuration::from_secs(secs);
    // Made by another tool, with statuses posted at known times (an open
    // one's time runs on while hoist starts: hours and days keep still).
    let made = |created: i64, statuses: &[(&str, i64)]| {
        let id = fake.add_deployment("acme/api", "main", "staging", serde_json::json!({}))["id"]
            .as_i64()
            .unwrap();
        fake.set_created_at(id, ago(created));
        for (state, at) in statuses {
            fake.add_status_at(id, state, "", ago(*at));
        }
        id
    };
    let succeeded = made(7200, &[("in_progress", 7195), ("success", 7200 - 130)]);
    let failed = made(600, &[("in_progress", 599), ("failure", 600 - 45)]);
    let superseded = made(500, &[("success", 490), ("inactive", 10)]);
    let running = made(
        3 * 3600,
        &[("queued", 3 * 3600), ("in_progress", 3 * 3600 - 5)],
    );
    let waiting = made(2 * 86_400 + 60, &[("queued", 2 * 86_400)]);
    let untouched = made(5 * 3600, &[]);

    let run = setup.shell("deploys api\n").await;
    assert!(run.success, "{run:?}");
    let line = |id: i64| {
        run.stdout
            .lines()
            .find(|line| line.starts_with(&format!("#{id} ")))
            .unwrap_or_else(|| panic!("no line for #{id}: {}", run.stdout))
    };
    let expect = [
        (succeeded, "success", "2 h ago, took 2m 10s"),
        (failed, "failure", "10 min ago, took 45s"),
        (superseded, "inactive", "8 min ago"),
        (running, "in_progress", "3 h ago, running 3h so far"),
        (waiting, "queued", "2 days ago, waiting 2d"),
        (untouched, "created", "5 h ago, waiting 5h"),
    ];
    for (id, state, tail) in expect {
        let line = line(id);
        assert!(
            line.starts_with(&format!("#{id} {state} main (1111111) to staging by ")),
            "{line}"
        );
        assert!(line.ends_with(&format!(", {tail}")), "{line}");
    }
}
