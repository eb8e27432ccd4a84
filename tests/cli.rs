//! The `hoist` command line: `check`, `demo`, and start-up errors.

mod support;

use support::{assert_in_order, hoist};

#[tokio::test]
async fn check_passes_the_shipped_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy.example.yml");
    let run = hoist(&["check", example], "", &[]).await;
    assert!(run.success, "{run:?}");
    assert!(run.stdout.contains("deploy.example.yml: ok"), "{run:?}");
}

#[tokio::test]
async fn check_reports_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deploy.yml");
    std::fs::write(&file, "production:\n  auto_merge: true\n  taks: deploy\n").unwrap();
    let path = file.display().to_string();
    let run = hoist(&["check", &path], "", &[]).await;
    assert!(!run.success, "{run:?}");
    assert!(
        run.stderr.contains(&format!("{path}:3:3: ")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("`task`"), "{}", run.stderr);
}

#[tokio::test]
async fn check_of_a_missing_file_says_so() {
    let run = hoist(&["check", "/nonexistent/deploy.yml"], "", &[]).await;
    assert!(!run.success);
    assert!(
        run.stderr.contains("cannot read /nonexistent/deploy.yml"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn demo_deploys_to_staging_through_success_with_piped_input() {
    let run = hoist(&["demo"], "deploy demo to staging\ndeploys demo\n", &[]).await;
    assert!(run.success, "{run:?}");
    assert_in_order(
        &run.stdout,
        &[
            "deployment #1 created",
            "Recent deployments of demo:",
            "#1 ",
        ],
    );
    // Listed at once: waiting (or running, or done) for some seconds.
    let listed = run
        .stdout
        .lines()
        .find(|line| line.starts_with("#1 "))
        .unwrap();
    assert!(
        [", waiting ", ", running ", ", took "]
            .iter()
            .any(|timing| listed.contains(timing)),
        "{listed}"
    );
    assert_in_order(
        &run.stdout,
        &["Deployment #1 of demo", "in progress", "succeeded"],
    );
}

#[tokio::test]
async fn demo_production_needs_its_check_which_the_demo_marks_passing() {
    let run = hoist(&["demo"], "deploy demo to production\nexit\n", &[]).await;
    assert!(run.success, "{run:?}");
    assert!(
        run.stdout.contains("to production: succeeded"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_bad_setting_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hoist.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\nlistn = 3\n").unwrap();
    let path = config.display().to_string();
    let run = hoist(&["shell", "--config", &path], "", &[]).await;
    assert!(!run.success);
    let stderr = run.stderr.trim();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("server") && stderr.contains("listn"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn github_without_credentials_is_refused_by_name_and_secrets_stay_hidden() {
    let run = hoist(
        &["shell"],
        "",
        &[
            ("HOIST_FORGE__KIND", "github"),
            ("HOIST_GITHUB__WEBHOOK_SECRET", "hunter2-secret"),
            // Not a file in the working directory.
            ("HOIST_STORE__URL", "sqlite::memory:"),
        ],
    )
    .await;
    assert!(!run.success);
    assert!(run.stderr.contains("github.token"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2-secret"), "{}", run.stderr);
}

#[tokio::test]
async fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hoist.toml");
    std::fs::write(
        &config,
        "[forge]\nkind = \"local\"\n[apps.api]\nrepo = \"acme/api\"\n",
    )
    .unwrap();
    let path = config.display().to_string();
    // The file alone lacks apps.api.path; the environment supplies a wrong type elsewhere.
    let run = hoist(&["shell", "--config", &path], "", &[]).await;
    assert!(!run.success);
    assert!(run.stderr.contains("apps.api.path"), "{}", run.stderr);
    let run = hoist(
        &["shell", "--config", &path],
        "help\n",
        &[
            ("HOIST_APPS__API__PATH", "/tmp"),
            ("HOIST_STORE__URL", "sqlite::memory:"),
        ],
    )
    .await;
    assert!(run.success, "{run:?}");
}

#[tokio::test]
async fn the_demo_shows_its_dashboard_which_needs_no_login() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("demo")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("Dashboard: ") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("the demo printed no dashboard URL");
    })
    .await
    .expect("the demo starts in time");
    let address: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    assert!(address.ip().is_loopback(), "{url}");
    let (status, page) = support::http(address, "GET", "/", &[], b"").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("(local forge)"), "{page}");
    assert!(page.contains("Deploy to staging of demo"), "{page}");
    drop(stdin);
    let _ = child.wait().await;
}
