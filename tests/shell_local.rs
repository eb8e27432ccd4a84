//! The `hoist shell` binary end to end on the local forge: real git
//! repositories, real deploy scripts, SQLite, piped input.

mod support;

use std::path::{Path, PathBuf};

use support::{assert_in_order, commit_files, git, hoist, repository};

const DEPLOY_YML: &str = "\
staging:
  required_contexts: []
production:
  required_contexts: [\"ci/build\"]
  force_skips_checks: true
";

const OK_SCRIPT: &str = "#!/bin/sh
echo \"shipping $HOIST_REF to $HOIST_ENVIRONMENT task=$HOIST_TASK\"
echo \"payload=$HOIST_PAYLOAD\"
";

/// A workspace: one app `web` (deploy script succeeds), one app `flaky`
/// (exits 3), one app `stuck` (hangs past its 1 s timeout).
struct Workspace {
    _dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    web: PathBuf,
}

fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let web = repository(
        &dir.path().join("web"),
        &[
            (".github/deploy.yml", DEPLOY_YML, false),
            ("deploy.sh", OK_SCRIPT, true),
            (
                "fail.sh",
                "#!/bin/sh\necho about to fail >&2\nexit 3\n",
                true,
            ),
            ("hang.sh", "#!/bin/sh\necho hanging\nsleep 30\n", true),
        ],
    );
    let db = dir.path().join("hoist.db");
    let config = dir.path().join("hoist.toml");
    let path = toml_string(&web);
    std::fs::write(
        &config,
        format!(
            r#"
[store]
url = {db}
[forge]
kind = "local"
[apps.web]
repo = "acme/web"
path = {path}
default_environment = "staging"
deploy_command = ["./deploy.sh"]
[apps.flaky]
repo = "acme/web"
path = {path}
deploy_command = ["./fail.sh"]
[apps.stuck]
repo = "acme/web"
path = {path}
deploy_command = ["./hang.sh"]
timeout_secs = 1
"#,
            db = toml_string(&PathBuf::from(format!("sqlite://{}", db.display()))),
        ),
    )
    .unwrap();
    Workspace {
        _dir: dir,
        config,
        db,
        web,
    }
}

fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

async fn shell(ws: &Workspace, input: &str) -> support::Run {
    let config = ws.config.display().to_string();
    hoist(&["shell", "--config", &config], input, &[]).await
}

#[tokio::test]
async fn deploy_runs_through_success_and_is_listed() {
    let ws = workspace();
    let run = shell(&ws, "deploy web to staging\ndeploys web\n").await;
    assert!(run.success, "{run:?}");
    let sha = git(&ws.web, &["rev-parse", "--short=7", "HEAD"]);
    assert_in_order(
        &run.stdout,
        &[
            &format!("Deploying web main ({sha}) to staging: deployment #1 created"),
            "Recent deployments of web:",
            "#1 ",
            &format!("main ({sha}) to staging by "),
        ],
    );
    // Listed while it runs (or just after): how long it has taken so far.
    let listed = deployment_line(&run.stdout, 1);
    assert!(
        [", waiting ", ", running ", ", took "]
            .iter()
            .any(|timing| listed.contains(timing)),
        "{listed}"
    );
    assert_in_order(
        &run.stdout,
        &[
            "Deployment #1 of web main",
            "in progress",
            "Deployment #1 of web main",
            "succeeded",
        ],
    );
    // Listed again once it succeeded: how long it took, to its success.
    let again = shell(&ws, "deploys web\n").await;
    assert!(again.success, "{again:?}");
    let listed = deployment_line(&again.stdout, 1);
    assert!(
        listed.starts_with(&format!("#1 success main ({sha}) to staging by ")),
        "{listed}"
    );
    let took = listed
        .rsplit_once(", took ")
        .map(|(_, took)| took)
        .unwrap_or_else(|| panic!("no duration: {listed}"));
    assert!(
        took.ends_with('s') && took[..took.len() - 1].parse::<u32>().is_ok(),
        "seconds, for a script that returns at once: {listed}"
    );
}

/// The `deploys` line of deployment `#id`.
fn deployment_line(stdout: &str, id: u64) -> &str {
    stdout
        .lines()
        .find(|line| line.starts_with(&format!("#{id} ")))
        .unwrap_or_else(|| panic!("no line for #{id} in:\n{stdout}"))
}

#[tokio::test]
async fn a_failing_script_reports_failure_and_a_hanging_one_times_out() {
    let ws = workspace();
    let run = shell(&ws, "deploy flaky to staging\ndeploy stuck to staging\n").await;
    assert!(run.success, "{run:?}");
    assert!(run.stdout.contains(": failed"), "{}", run.stdout);
    assert!(
        run.stdout.contains("exit code 3") || run.stdout.contains("exit 3"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains(": errored"), "{}", run.stdout);
    assert!(
        run.stdout.to_lowercase().contains("timed out") || run.stdout.contains("timeout"),
        "{}",
        run.stdout
    );
    // How long each took: the hanging one at least its 1 s timeout.
    let listed = shell(&ws, "deploys web\n").await;
    assert!(listed.success, "{listed:?}");
    let failed = deployment_line(&listed.stdout, 1);
    assert!(failed.starts_with("#1 failure "), "{failed}");
    assert!(failed.contains(", took "), "{failed}");
    let timed_out = deployment_line(&listed.stdout, 2);
    assert!(timed_out.starts_with("#2 error "), "{timed_out}");
    assert!(timed_out.contains(", took "), "{timed_out}");
    assert!(!timed_out.ends_with(", took 0s"), "{timed_out}");
}

#[tokio::test]
async fn mistakes_get_one_clear_reply_and_create_nothing() {
    let ws = workspace();
    let run = shell(
        &ws,
        "deploy wbe to staging\ndeploy web to stagign\ndeploy web/no-such-branch to staging\ndeploy web tu staging\ndeploys web\n",
    )
    .await;
    assert!(run.success, "{run:?}");
    let out = &run.stdout;
    assert!(
        out.contains("I don't know an app called `wbe` (did you mean `web`?)"),
        "{out}"
    );
    assert!(
        out.contains("`stagign` is not an environment of web (did you mean `staging`?)"),
        "{out}"
    );
    assert!(
        out.contains("I can't find `no-such-branch` in acme/web"),
        "{out}"
    );
    assert!(out.contains("did you mean `to`?"), "{out}");
    assert!(out.contains("No deployments of web yet."), "{out}");
    assert!(!out.contains("created"), "{out}");
}

#[tokio::test]
async fn required_checks_are_enforced_and_noop_explains_them() {
    let ws = workspace();
    let run = shell(
        &ws,
        "noop web to production\ndeploy web to prod\ndeploys web\n",
    )
    .await;
    assert!(run.success, "{run:?}");
    let out = &run.stdout;
    assert!(
        out.contains("Dry run: would deploy web main") && out.contains("to production"),
        "{out}"
    );
    assert!(
        out.contains("would be refused until these pass: ci/build pending"),
        "{out}"
    );
    assert!(out.contains("Nothing was created."), "{out}");
    assert!(
        out.contains("Not deployed: these checks must pass first: ci/build pending."),
        "{out}"
    );
    assert!(out.contains("No deployments of web yet."), "{out}");
}

#[tokio::test]
async fn force_skips_checks_and_params_reach_the_script() {
    let ws = workspace();
    let run = shell(&ws, "deploy! web to production | LOG_LEVEL=debug\n").await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("Forced: required checks were not enforced."),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("succeeded"), "{}", run.stdout);
}

#[tokio::test]
async fn rules_come_from_the_default_branch_only() {
    let ws = workspace();
    git(&ws.web, &["checkout", "--quiet", "-b", "sneaky"]);
    commit_files(
        &ws.web,
        &[(
            ".github/deploy.yml",
            "anywhere:\n  required_contexts: []\n",
            false,
        )],
        "let me deploy anywhere",
    );
    git(&ws.web, &["checkout", "--quiet", "main"]);
    let run = shell(
        &ws,
        "deploy web/sneaky to anywhere\nwhere can I deploy web\n",
    )
    .await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("`anywhere` is not an environment of web"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("can be deployed to: staging, production"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_broken_deploy_yml_is_reported_with_its_position() {
    let ws = workspace();
    commit_files(
        &ws.web,
        &[(
            ".github/deploy.yml",
            "staging:\n  enviroment: staging\n",
            false,
        )],
        "typo",
    );
    let run = shell(&ws, "deploy web to staging\n").await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout.contains("The deploy rules are broken"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("deploy.yml@main:2:3"), "{}", run.stdout);
    assert!(run.stdout.contains("environment"), "{}", run.stdout);
}

#[tokio::test]
async fn help_lists_the_commands() {
    let ws = workspace();
    let run = shell(&ws, "help\nhelp deploy\n").await;
    assert!(run.success, "{run:?}");
    for word in ["deploy", "noop", "where can I deploy", "deploys", "help"] {
        assert!(
            run.stdout.contains(word),
            "{word} missing from {}",
            run.stdout
        );
    }
}

#[tokio::test]
async fn whoami_says_who_hoist_takes_you_to_be_and_how_to_be_linked() {
    let ws = workspace();
    let run = shell(&ws, "whoami\n").await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout
            .contains("on the shell; hoist knows no GitHub login for you"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("= \"your-github-login\"` under `[users]`"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn every_command_is_audited() {
    let ws = workspace();
    let run = shell(&ws, "deploy web to staging\ndeploy nope\n").await;
    assert!(run.success, "{run:?}");
    use hoist::store::Store;
    let store =
        hoist::store::sqlite::SqliteStore::connect(&format!("sqlite://{}", ws.db.display()))
            .await
            .unwrap();
    let audit = store
        .audit(&hoist::store::AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let outcomes: Vec<(&str, &str)> = audit
        .iter()
        .map(|e| (e.command.as_str(), e.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("deploy nope", "invalid"),
            ("deploy web to staging", "deployed")
        ]
    );
}

#[tokio::test]
async fn locks_in_the_shell_and_the_audit_command_shows_each_decision() {
    let ws = workspace();
    let run = shell(
        &ws,
        "lock staging for web testing the shell\ndeploy web to staging\nlocks web\nunlock staging for web\nlock prodution for web\n",
    )
    .await;
    assert!(run.success, "{run:?}");
    support::assert_in_order(
        &run.stdout,
        &[
            "locked staging of web: testing the shell.",
            "Deploying web main",
            "Locks of web:\nstaging of web: locked by",
            "unlocked staging of web.",
            "`prodution` is not an environment of web",
        ],
    );
    let config = ws.config.display().to_string();
    let audit = hoist(&["audit", "--config", &config], "", &[]).await;
    assert!(audit.success, "{audit:?}");
    support::assert_in_order(
        &audit.stdout,
        &[
            "invalid   lock prodution for web",
            "unlocked  unlock staging for web",
            "deployed  deploy web to staging -> Deploying web main",
            "[policy: allowed (access: open; locked by the requester; no freeze window; no checks reported)]",
            "locked    lock staging for web testing the shell",
        ],
    );
    let locked = hoist(
        &["audit", "--config", &config, "--outcome", "locked"],
        "",
        &[],
    )
    .await;
    assert_eq!(locked.stdout.lines().count(), 1, "{}", locked.stdout);
    let nothing = hoist(
        &["audit", "--config", &config, "--grep", "no such text"],
        "",
        &[],
    )
    .await;
    assert_eq!(nothing.stdout, "No audit entries match.\n");
    let wrong = hoist(&["audit", "--config", &config, "--since", "soon"], "", &[]).await;
    assert!(!wrong.success);
    assert!(
        wrong
            .stderr
            .contains("--since `soon`: use a number and m, h, d or w"),
        "{}",
        wrong.stderr
    );
}
