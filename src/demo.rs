//! `hoist demo`: the whole loop on one machine, with nothing to set up.
//!
//! It makes a throwaway git repository holding app `demo` (a deploy.yml
//! with `staging` and `production`, where production requires the check
//! `ci/demo`, which the demo marks passing) and a deploy script, starts
//! the local forge on SQLite, serves the run logs and the dashboard on an
//! ephemeral port of 127.0.0.1 (no login: the local forge's operator is
//! whoever runs the demo), and opens the shell. Everything is deleted when the shell exits.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use crate::app::Hoist;
use crate::chat::shell;
use crate::config::Config;
use crate::domain::RepoName;
use crate::forge::{Check, CheckState, Forge};

const DEPLOY_YML: &str = r#"# The demo app's deploy rules (see deploy.example.yml for every key).
staging:
  description: "Deploy ${{ ref }} to staging, asked by ${{ actor }}"
  # Staging takes any commit.
  required_contexts: []
production:
  # Production only takes commits whose ci/demo check passed.
  required_contexts: ["ci/demo"]
"#;

const DEPLOY_SCRIPT: &str = r#"#!/bin/sh
# The demo's deploy script: hoist runs it with the deployment's facts in
# HOIST_* variables and keeps what it prints as the run's log.
set -e
echo "Deploying $HOIST_REF ($HOIST_SHA) to $HOIST_ENVIRONMENT (task $HOIST_TASK)"
sleep 1
echo "Migrating the database... done"
sleep 1
echo "Deployment #$HOIST_DEPLOYMENT_ID is live."
"#;

/// The check production requires, marked passing on the demo's commit.
const DEMO_CHECK: &str = "ci/demo";

pub async fn run() -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("hoist-demo-")
        .tempdir()
        .context("cannot create a temporary directory for the demo")?;
    let repo_path = dir.path().join("demo");
    create_repository(&repo_path).await?;

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1 for the demo's dashboard")?;
    let public_url = format!("http://{}", listener.local_addr()?);
    let config = Config::from_toml_str(&demo_config(dir.path(), &repo_path, &public_url))
        .map_err(anyhow::Error::msg)?;
    let built = Hoist::build(config).await?;
    let hoist = built.hoist;
    let Some(local_forge) = built.local_forge else {
        bail!("the demo needs the local forge (is HOIST_FORGE__KIND set?)");
    };
    let repo: RepoName = "local/demo".parse().map_err(anyhow::Error::msg)?;
    let sha = local_forge.resolve_ref(&repo, "main").await?;
    local_forge
        .set_commit_check(
            &repo,
            &sha,
            &Check {
                name: DEMO_CHECK.into(),
                state: CheckState::Success,
                url: None,
            },
        )
        .await?;

    tokio::spawn(Arc::clone(&hoist).pump_events(built.events));
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(Arc::clone(&hoist).run_runner_until(stop.clone()));
    tokio::spawn(crate::server::serve(Arc::clone(&hoist), listener));
    println!(
        "hoist demo: app `demo` lives in a throwaway repository at {}.\n\
         It has environments staging and production (production requires the check {DEMO_CHECK}, marked passing).\n\
         Dashboard: {public_url}/ (deployments, live logs, locks and history)\n\
         Try: deploy demo to staging    deploys demo    where can I deploy demo    noop demo to production    help",
        repo_path.display()
    );
    let result = shell::run(hoist).await;
    stop.cancel();
    drop(dir);
    result
}

fn demo_config(dir: &Path, repo: &Path, public_url: &str) -> String {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let db = dir.join("hoist.db");
    format!(
        r#"
[server]
public_url = {public_url}
[store]
url = {store}
[forge]
kind = "local"
[apps.demo]
repo = "local/demo"
path = {path}
default_environment = "staging"
deploy_command = ["./deploy.sh"]
timeout_secs = 60
[dashboard]
enabled = true
"#,
        public_url = quote(public_url),
        store = quote(&format!("sqlite://{}", db.display())),
        path = quote(&repo.display().to_string()),
    )
}

/// `git init` a repository with deploy.yml and the deploy script on `main`.
async fn create_repository(path: &Path) -> anyhow::Result<()> {
    tokio::fs::create_dir_all(path.join(".github")).await?;
    tokio::fs::write(path.join(".github/deploy.yml"), DEPLOY_YML).await?;
    let script = path.join("deploy.sh");
    tokio::fs::write(&script, DEPLOY_SCRIPT).await?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tokio::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).await?;
    }
    git(path, &["init", "--quiet", "--initial-branch=main"]).await?;
    git(path, &["add", "."]).await?;
    git(
        path,
        &[
            "-c",
            "user.name=hoist demo",
            "-c",
            "user.email=demo@hoist.invalid",
            "commit",
            "--quiet",
            "-m",
            "The demo app",
        ],
    )
    .await
}

async fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .await
        .context("the demo needs git on the PATH")?;
    if !output.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
