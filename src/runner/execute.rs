//! One run's steps: where the code comes from, the checkout, the
//! command and its environment, and the verdict.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::capture::LogSink;
use super::checkout::{self, Source};
use super::process::{self, Outcome};
use super::workdir::WorkDir;
use super::{Runner, RunnerApp, Verdict};
use crate::actions::Secret;
use crate::domain::DeploymentState;
use crate::forge::Deployment;
use secrecy::ExposeSecret;

/// What a run is given besides its deployment: where its code is
/// fetched from, and the secrets its integration actions handed over
/// (environment variables, masked in its log).
pub(super) struct Inputs<'a> {
    pub remote: Option<&'a crate::forge::GitRemote>,
    pub secrets: &'a [Secret],
}

impl Runner {
    /// Where a remote app's code is fetched from, with the token to use.
    pub(super) async fn remote_for(
        &self,
        app: &RunnerApp,
    ) -> Result<Option<crate::forge::GitRemote>, Verdict> {
        match (&app.source, &self.git) {
            (Source::Local(_), _) => Ok(None),
            (Source::Remote, Some(git)) => git
                .git_remote(&app.repo)
                .await
                .map(Some)
                .map_err(|error| Verdict::error(format!("cannot fetch {}: {error}", app.repo))),
            (Source::Remote, None) => Err(no_git_access()),
        }
    }

    /// Prepares the checkout and runs the command; the log gets every step.
    pub(super) async fn prepare_and_run(
        &self,
        name: &str,
        app: &RunnerApp,
        deployment: &Deployment,
        inputs: &Inputs<'_>,
        log: &LogSink,
        stop: &CancellationToken,
    ) -> Result<Verdict, Verdict> {
        let remote = inputs.remote;
        let (argv, program) = command_for(app, &deployment.task)?;
        let payload = deployment.payload.to_string();
        let dir = WorkDir::create()
            .await
            .map_err(|error| Verdict::error(format!("{error:#}")))?;
        let source = match (&app.source, remote) {
            (Source::Local(path), _) => path.clone(),
            (Source::Remote, Some(remote)) => {
                let cache = self.settings.work_dir.join(format!("{name}.git"));
                log.note(format!(
                    "fetching {} from {}",
                    deployment.sha.short(),
                    remote.url
                ))
                .await;
                let lock = self.cache_lock(name);
                let _only_fetch = lock.lock().await;
                checkout::fetch(&cache, remote, &deployment.sha)
                    .await
                    .map_err(|error| Verdict::error(format!("{error:#}")))?;
                cache
            }
            (Source::Remote, None) => return Err(no_git_access()),
        };
        let prepared = async {
            dir.export(&source, &deployment.sha)
                .await
                .with_context(|| format!("cannot check out {}", deployment.sha.short()))?;
            dir.write_payload(&payload).await
        }
        .await;
        let verdict =
            match prepared {
                Ok(payload_file) => {
                    let mut env: Vec<(String, String)> = app
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    env.extend([
                        ("HOIST_APP".into(), name.to_owned()),
                        ("HOIST_ENVIRONMENT".into(), deployment.environment.clone()),
                        ("HOIST_REF".into(), deployment.git_ref.clone()),
                        ("HOIST_SHA".into(), deployment.sha.to_string()),
                        ("HOIST_TASK".into(), deployment.task.clone()),
                        ("HOIST_DEPLOYMENT_ID".into(), deployment.id.to_string()),
                        ("HOIST_PAYLOAD".into(), payload),
                        (
                            "HOIST_PAYLOAD_FILE".into(),
                            payload_file.display().to_string(),
                        ),
                    ]);
                    env.extend(inputs.secrets.iter().map(|secret| {
                        (secret.name.clone(), secret.value.expose_secret().to_owned())
                    }));
                    let spec = process::Spec {
                        argv: &argv,
                        cwd: &dir.checkout(),
                        env,
                        timeout: app.timeout,
                        stop,
                    };
                    verdict(&program, app.timeout, process::execute(&spec, log).await)
                }
                Err(error) => Verdict::error(format!("{error:#}")),
            };
        dir.remove().await;
        Ok(verdict)
    }

    fn cache_lock(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut caches = self
            .caches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(caches.entry(app.to_owned()).or_default())
    }
}

fn no_git_access() -> Verdict {
    Verdict::error("this forge gives the runner no way to fetch the code")
}

/// The argv for `task`: `remove_command` for `remove`, the deploy command
/// for anything else (which reads `HOIST_TASK` to tell tasks apart),
/// wrapped in `sh -c` when the app asks for a shell; and the program's
/// name as the statuses say it (the configured one, not `sh`).
fn command_for(app: &RunnerApp, task: &str) -> Result<(Vec<String>, String), Verdict> {
    let argv = match task {
        "remove" => app
            .remove_command
            .as_ref()
            .ok_or_else(|| Verdict::error("no remove_command is configured for this app"))?,
        _ => &app.deploy_command,
    };
    let Some(program) = argv.first() else {
        return Err(Verdict::error("the app's command is empty"));
    };
    let argv = match app.shell {
        true => vec!["sh".into(), "-c".into(), argv.join(" ")],
        false => argv.clone(),
    };
    Ok((argv, program.clone()))
}

fn verdict(program: &str, timeout: Duration, outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Exited(0) => {
            Verdict::new(DeploymentState::Success, format!("`{program}` succeeded"))
        }
        Outcome::Exited(code) => Verdict::new(
            DeploymentState::Failure,
            format!("`{program}` failed with exit code {code}"),
        ),
        Outcome::Signalled(signal) => Verdict::new(
            DeploymentState::Failure,
            format!("`{program}` was killed by signal {signal}"),
        ),
        Outcome::Stopped => Verdict {
            stopped: true,
            ..Verdict::new(DeploymentState::Failure, "stopped on request")
        },
        Outcome::TimedOut => Verdict::error(format!(
            "`{program}` timed out after {} s; it and its children were killed",
            timeout.as_secs_f64()
        )),
        Outcome::Broken(reason) => Verdict::error(reason),
    }
}
