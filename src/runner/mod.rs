//! The deployment runner: runs an app's deploy command for a deployment
//! and reports back to the forge as statuses.
//!
//! For each deployment: `pending` (only if nothing was posted yet: the local
//! forge has no queue), `in_progress`, then `success` (exit 0), `failure`
//! (non-zero exit or a signal) or `error` (could not start, timeout). The
//! command runs in a fresh export of the deployed commit, without a shell,
//! with the deployment's facts in `HOIST_*` variables; its output goes to
//! the store line by line and every status links to it.
//!
//! **Architecture invariant:** the runner never changes the source
//! repository (HEAD, index, work tree): it exports files through a private
//! index into its own directory.

mod capture;
mod process;
mod workdir;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::domain::{DeploymentState, RepoName};
use crate::forge::{Deployment, DeploymentFilter, Forge, NewStatus};
use crate::store::{DeploymentKey, Store};
use capture::LogSink;
pub use capture::{MASK, Masker};
use process::Outcome;
use workdir::WorkDir;

/// GitHub cuts a status description at 140 characters; keep ours whole.
const MAX_DESCRIPTION_CHARS: usize = 140;
/// Deployments per repository looked at for runs left unfinished.
const RECOVERY_LOOKBACK: usize = 100;
/// The status of a run hoist did not see to its end.
const INTERRUPTED: &str = "interrupted by a restart of hoist before it finished; deploy again";

/// The runner's configuration, from `[apps.NAME]` in hoist.toml.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Apps the runner deploys, by app name (several apps may share a
    /// repository). Others are not its business.
    pub apps: HashMap<String, RunnerApp>,
    /// hoist's public base URL, for links to run logs.
    pub public_url: String,
    /// What run logs never show ([`Masker`]).
    pub masker: Masker,
}

/// How to deploy one app.
#[derive(Debug, Clone)]
pub struct RunnerApp {
    /// The repository the app's deployments are made on.
    pub repo: RepoName,
    /// `argv`, run without a shell in the checkout of the deployed commit;
    /// `./deploy.sh` means the script in the repository.
    pub deploy_command: Vec<String>,
    /// `argv` for the task `remove`; without it, `remove` is an error.
    pub remove_command: Option<Vec<String>>,
    /// The app's git repository on disk.
    pub source: PathBuf,
    /// Extra environment for the command. hoist's `HOIST_*` facts win over
    /// a variable of the same name here.
    pub env: BTreeMap<String, String>,
    /// After this long the command and everything it started is killed.
    pub timeout: Duration,
}

/// Runs deployments for the apps in its settings.
pub struct Runner {
    forge: Arc<dyn Forge>,
    store: Arc<dyn Store>,
    settings: RunnerSettings,
    /// One run at a time per repository and environment: the held lock
    /// is the run going there, the others wait for it in turn.
    environments: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Where a deployment's run log is shown:
/// `{public_url}/deployments/{forge}/{owner}/{repo}/{id}/log`.
pub fn log_url(public_url: &str, key: &DeploymentKey) -> String {
    format!(
        "{}/deployments/{}/{}/{}/{}/log",
        public_url.trim_end_matches('/'),
        key.forge,
        key.repo.owner(),
        key.repo.name(),
        key.id
    )
}

/// How the run ended, as the final status says it.
struct Verdict {
    state: DeploymentState,
    description: String,
}

impl Verdict {
    fn error(description: impl Into<String>) -> Self {
        Self {
            state: DeploymentState::Error,
            description: description.into(),
        }
    }
}

impl Runner {
    pub fn new(forge: Arc<dyn Forge>, store: Arc<dyn Store>, settings: RunnerSettings) -> Self {
        Self {
            forge,
            store,
            settings,
            environments: std::sync::Mutex::default(),
        }
    }

    /// The lock of one repository's environment.
    fn environment_lock(&self, repo: &RepoName, environment: &str) -> Arc<tokio::sync::Mutex<()>> {
        let key = format!("{}/{}", repo.to_string().to_ascii_lowercase(), environment);
        let mut locks = self
            .environments
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(locks.entry(key).or_default())
    }

    /// Whether this runner deploys `deployment`. The caller asks before
    /// [`Runner::run`]; an app without runner config is deployed by
    /// something else (or nothing).
    pub fn handles(&self, repo: &RepoName, deployment: &Deployment) -> bool {
        self.app_for(repo, deployment).is_some()
    }

    /// The app a deployment is for: the one hoist named in the payload
    /// (`hoist.app`), else the only app of the repository. Deployments
    /// of a repository with several apps that name none are not ours to
    /// guess.
    fn app_for(&self, repo: &RepoName, deployment: &Deployment) -> Option<&RunnerApp> {
        let apps = &self.settings.apps;
        match deployment
            .payload
            .pointer("/hoist/app")
            .and_then(|v| v.as_str())
        {
            Some(name) => apps.get(name).filter(|app| &app.repo == repo),
            None => {
                let mut of_repo = apps.values().filter(|app| &app.repo == repo);
                let only = of_repo.next();
                of_repo.next().is_none().then_some(only).flatten()
            }
        }
    }

    /// Ends the runs a previous hoist left unfinished (it was killed or
    /// the machine went down): each deployment of the runner's apps still
    /// `pending`, `queued` or `in_progress` gets `error`, so none stays
    /// "in progress" forever. Call it once at start, before any run.
    /// Returns how many were ended.
    pub async fn end_interrupted_runs(&self) -> anyhow::Result<usize> {
        let mut repos: Vec<&RepoName> = self.settings.apps.values().map(|app| &app.repo).collect();
        repos.sort_by_key(|repo| repo.to_string().to_ascii_lowercase());
        repos.dedup();
        let recent = DeploymentFilter {
            limit: RECOVERY_LOOKBACK,
            ..DeploymentFilter::default()
        };
        let mut ended = 0;
        for repo in repos {
            let deployments = self
                .forge
                .list_deployments(repo, &recent)
                .await
                .with_context(|| format!("cannot list the deployments of {repo}"))?;
            for deployment in deployments.iter().filter(|d| {
                matches!(
                    d.state,
                    Some(
                        DeploymentState::Pending
                            | DeploymentState::Queued
                            | DeploymentState::InProgress
                    )
                ) && self.handles(repo, d)
            }) {
                let key = DeploymentKey {
                    forge: self.forge.kind().to_owned(),
                    repo: repo.clone(),
                    id: deployment.id,
                };
                let log_url = log_url(&self.settings.public_url, &key);
                self.post(&key, DeploymentState::Error, INTERRUPTED, &log_url)
                    .await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Runs `deployment` of `repo` to the end and returns the final state,
    /// which was also posted to the forge. `Err` means hoist could not talk
    /// to the forge or has no config for `repo`; what the command did is
    /// always a state.
    pub async fn run(
        &self,
        repo: &RepoName,
        deployment: &Deployment,
    ) -> anyhow::Result<DeploymentState> {
        let app = self
            .app_for(repo, deployment)
            .with_context(|| format!("no runner is configured for this deployment of {repo}"))?;
        let key = DeploymentKey {
            forge: self.forge.kind().to_owned(),
            repo: repo.clone(),
            id: deployment.id,
        };
        let log_url = log_url(&self.settings.public_url, &key);
        if deployment.state.is_none() {
            self.post(
                &key,
                DeploymentState::Pending,
                "waiting for the runner",
                &log_url,
            )
            .await?;
        }
        // Two deployments to one environment never run at once: a later
        // one says it is queued, and starts when the earlier one ends.
        let lock = self.environment_lock(repo, &deployment.environment);
        let _turn = match lock.clone().try_lock_owned() {
            Ok(turn) => turn,
            Err(_) => {
                let waiting = format!(
                    "queued: another deployment to {} is running; this one starts when it ends",
                    deployment.environment
                );
                self.post(&key, DeploymentState::Queued, &waiting, &log_url)
                    .await?;
                lock.lock_owned().await
            }
        };
        // Cancelled (or otherwise ended) since it was handed over: not run.
        let ended = self
            .forge
            .deployment_statuses(repo, deployment.id)
            .await
            .with_context(|| format!("cannot read the statuses of deployment {}", deployment.id))?
            .last()
            .map(|(status, _)| status.state)
            .filter(|state| state.is_final() && Some(*state) != deployment.state);
        if let Some(state) = ended {
            return Ok(state);
        }
        self.post(
            &key,
            DeploymentState::InProgress,
            &format!("running {} of {}", deployment.task, deployment.sha.short()),
            &log_url,
        )
        .await?;

        let log = LogSink::start(
            self.store.clone(),
            key.clone(),
            self.settings.masker.clone(),
        );
        let verdict = self.execute(app, deployment, &log).await;
        log.note(format!("{}: {}", verdict.state, verdict.description))
            .await;
        log.finish().await;

        self.post(&key, verdict.state, &verdict.description, &log_url)
            .await?;
        Ok(verdict.state)
    }

    async fn post(
        &self,
        key: &DeploymentKey,
        state: DeploymentState,
        description: &str,
        log_url: &str,
    ) -> anyhow::Result<()> {
        let status = NewStatus {
            state,
            description: Some(description.chars().take(MAX_DESCRIPTION_CHARS).collect()),
            log_url: Some(log_url.to_owned()),
            environment_url: None,
        };
        self.forge
            .create_status(&key.repo, key.id, &status)
            .await
            .with_context(|| {
                format!(
                    "cannot post status {state} to deployment {} of {}",
                    key.id, key.repo
                )
            })
    }

    /// Prepares the checkout, runs the command and says how it went.
    async fn execute(&self, app: &RunnerApp, deployment: &Deployment, log: &LogSink) -> Verdict {
        let argv = match deployment.task.as_str() {
            "remove" => match &app.remove_command {
                Some(argv) => argv,
                None => return Verdict::error("no remove_command is configured for this app"),
            },
            // `deploy`, and any other task: the deploy command, which reads
            // HOIST_TASK to tell them apart.
            _ => &app.deploy_command,
        };
        let Some(program) = argv.first() else {
            return Verdict::error("the app's command is empty");
        };
        let payload = deployment.payload.to_string();
        let dir = match WorkDir::create().await {
            Ok(dir) => dir,
            Err(error) => return Verdict::error(format!("{error:#}")),
        };
        let verdict = match prepare(&dir, app, deployment, &payload).await {
            Ok(payload_file) => {
                let mut env: Vec<(String, String)> = app
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                env.extend([
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
                let spec = process::Spec {
                    argv,
                    cwd: &dir.checkout(),
                    env,
                    timeout: app.timeout,
                };
                verdict(program, app.timeout, process::execute(&spec, log).await)
            }
            Err(error) => Verdict::error(format!("{error:#}")),
        };
        dir.remove().await;
        verdict
    }
}

/// Exports the commit and writes the payload file; returns its path.
async fn prepare(
    dir: &WorkDir,
    app: &RunnerApp,
    deployment: &Deployment,
    payload: &str,
) -> anyhow::Result<PathBuf> {
    dir.export(&app.source, &deployment.sha)
        .await
        .with_context(|| format!("cannot check out {}", deployment.sha.short()))?;
    dir.write_payload(payload).await
}

fn verdict(program: &str, timeout: Duration, outcome: Outcome) -> Verdict {
    match outcome {
        Outcome::Exited(0) => Verdict {
            state: DeploymentState::Success,
            description: format!("`{program}` succeeded"),
        },
        Outcome::Exited(code) => Verdict {
            state: DeploymentState::Failure,
            description: format!("`{program}` failed with exit code {code}"),
        },
        Outcome::Signalled(signal) => Verdict {
            state: DeploymentState::Failure,
            description: format!("`{program}` was killed by signal {signal}"),
        },
        Outcome::TimedOut => Verdict::error(format!(
            "`{program}` timed out after {} s; it and its children were killed",
            timeout.as_secs_f64()
        )),
        Outcome::Broken(reason) => Verdict::error(reason),
    }
}
