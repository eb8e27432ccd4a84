//! The runner with a real deploy script in a real git repository, the local
//! forge and a SQLite store: statuses, logs, environment, failures and the
//! timeout that must kill grandchildren too.

mod local_forge_fixture;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hoist::domain::{DeploymentId, DeploymentState, RepoName};
use hoist::forge::local::LocalForge;
use hoist::forge::{Deployment, Forge, ForgeEvent, NewDeployment, NewStatus};
use hoist::runner::{MASK, Masker, Runner, RunnerApp, RunnerSettings, log_url};
use hoist::store::sqlite::SqliteStore;
use hoist::store::{DeploymentKey, LogLine, LogStream, Store};
use local_forge_fixture::GitRepo;
use serde_json::json;

/// A test that has not finished by then is hung: fail it instead.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The deploy command's timeout in tests: short, as hanging scripts wait it out.
const RUN_TIMEOUT: Duration = Duration::from_secs(1);

const PUBLIC_URL: &str = "http://127.0.0.1:3000/";

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, future)
        .await
        .expect("the test ran past its timeout")
}

fn api() -> RepoName {
    "acme/api".parse().expect("repo name")
}

struct Setup {
    repo: GitRepo,
    forge: Arc<LocalForge>,
    store: Arc<SqliteStore>,
    events: hoist::forge::EventSource,
}

/// A repository whose `deploy.sh` is `script`, served by a local forge.
async fn setup(script: &str) -> Setup {
    let repo = GitRepo::new();
    repo.write_script("deploy.sh", script);
    repo.write("README", "hello\n");
    repo.commit("add the deploy script");
    let store = Arc::new(
        SqliteStore::connect("sqlite::memory:")
            .await
            .expect("store"),
    );
    let (tx, events) = hoist::forge::event_queue();
    let repos = HashMap::from([(api(), repo.path().to_path_buf())]);
    let forge = Arc::new(LocalForge::new(store.clone(), repos, tx));
    Setup {
        repo,
        forge,
        store,
        events,
    }
}

impl Setup {
    fn app(&self) -> RunnerApp {
        RunnerApp {
            repo: api(),
            deploy_command: vec!["./deploy.sh".into()],
            remove_command: None,
            source: self.repo.path().to_path_buf(),
            env: BTreeMap::from([("APP_SETTING".into(), "from-config".into())]),
            timeout: RUN_TIMEOUT,
        }
    }

    fn runner(&self, app: RunnerApp) -> Runner {
        self.runner_masking(app, Masker::default())
    }

    fn runner_masking(&self, app: RunnerApp, masker: Masker) -> Runner {
        Runner::new(
            self.forge.clone(),
            self.store.clone(),
            RunnerSettings {
                apps: HashMap::from([("api".to_owned(), app)]),
                public_url: PUBLIC_URL.into(),
                masker,
            },
        )
    }

    /// Creates a deployment through the forge and takes its event.
    async fn deploy(&mut self, task: &str) -> Deployment {
        let request = NewDeployment {
            git_ref: "main".into(),
            task: task.into(),
            environment: "staging".into(),
            description: None,
            auto_merge: false,
            required_contexts: None,
            payload: json!({"target": "staging", "params": {"color": "blue"}}),
            transient_environment: false,
            production_environment: false,
            request_key: format!("test:{task}"),
            retried: false,
            requested_by: "ada".into(),
        };
        let made = self
            .forge
            .create_deployment(&api(), &request)
            .await
            .expect("deployment");
        match self.events.try_recv().expect("deployment event") {
            ForgeEvent::Deployment { deployment, .. } => assert_eq!(deployment, made),
            other => panic!("expected a deployment event, got {other:?}"),
        }
        made
    }

    /// The statuses posted so far, in order.
    fn statuses(&mut self) -> Vec<NewStatus> {
        let mut statuses = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if let ForgeEvent::DeploymentStatus { status, .. } = event {
                statuses.push(status);
            }
        }
        statuses
    }

    async fn log(&self, id: DeploymentId) -> Vec<LogLine> {
        self.store
            .read_log(&DeploymentKey {
                forge: "local".into(),
                repo: api(),
                id,
            })
            .await
            .expect("log")
    }
}

fn texts(log: &[LogLine], stream: LogStream) -> Vec<String> {
    log.iter()
        .filter(|line| line.stream == stream)
        .map(|line| line.text.clone())
        .collect()
}

fn states(statuses: &[NewStatus]) -> Vec<DeploymentState> {
    statuses.iter().map(|s| s.state).collect()
}

fn final_description(statuses: &[NewStatus]) -> String {
    statuses
        .last()
        .and_then(|s| s.description.clone())
        .expect("a final status with a description")
}

/// Alive means running: gone, or a zombie waiting for a reaper that a
/// container may not have, both count as dead.
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => {
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z' | 'X'))
        }
    }
}

#[test]
fn log_urls_name_the_forge_repository_and_deployment() {
    let key = DeploymentKey {
        forge: "local".into(),
        repo: api(),
        id: DeploymentId(42),
    };
    let expected = "http://127.0.0.1:3000/deployments/local/acme/api/42/log";
    assert_eq!(log_url("http://127.0.0.1:3000", &key), expected);
    assert_eq!(log_url("http://127.0.0.1:3000/", &key), expected);
}

#[tokio::test]
async fn the_runner_handles_only_configured_apps() {
    let mut s = setup("#!/bin/sh\n").await;
    let runner = s.runner(s.app());
    let mut deployment = s.deploy("deploy").await;
    // Without `hoist.app`, the only app of the repository.
    assert!(runner.handles(&api(), &deployment));
    assert!(runner.handles(&"ACME/Api".parse().expect("repo"), &deployment));
    assert!(!runner.handles(&"acme/web".parse().expect("repo"), &deployment));
    // With it, only that app, and only on its own repository.
    deployment.payload = json!({"hoist": {"app": "api"}});
    assert!(runner.handles(&api(), &deployment));
    deployment.payload = json!({"hoist": {"app": "worker"}});
    assert!(!runner.handles(&api(), &deployment));
}

#[tokio::test]
async fn a_successful_run_posts_statuses_and_keeps_the_log_in_order() {
    bounded(async {
        let mut s =
            setup("#!/bin/sh\necho one\necho oops >&2\necho two\nprintf 'no newline'\npwd >&2\n")
                .await;
        let head_before = s.repo.git(&["symbolic-ref", "HEAD"]);
        let sha_before = s.repo.head();
        let deployment = s.deploy("deploy").await;
        let runner = s.runner(s.app());

        let state = runner.run(&api(), &deployment).await.expect("run");
        assert_eq!(state, DeploymentState::Success);

        let statuses = s.statuses();
        assert_eq!(
            states(&statuses),
            [
                DeploymentState::Pending,
                DeploymentState::InProgress,
                DeploymentState::Success
            ]
        );
        let url = format!(
            "http://127.0.0.1:3000/deployments/local/acme/api/{}/log",
            deployment.id
        );
        assert!(
            statuses
                .iter()
                .all(|s| s.log_url.as_deref() == Some(url.as_str()))
        );
        assert_eq!(final_description(&statuses), "`./deploy.sh` succeeded");

        let log = s.log(deployment.id).await;
        assert_eq!(texts(&log, LogStream::Stdout), ["one", "two", "no newline"]);
        let stderr = texts(&log, LogStream::Stderr);
        assert_eq!(stderr.first().map(String::as_str), Some("oops"));
        let hoist = texts(&log, LogStream::Hoist);
        assert_eq!(
            hoist.first().map(String::as_str),
            Some("started `./deploy.sh`")
        );
        assert_eq!(
            hoist.last().map(String::as_str),
            Some("success: `./deploy.sh` succeeded")
        );

        // It ran in a checkout of its own, removed afterwards.
        let workdir = stderr.get(1).expect("pwd");
        assert!(workdir.contains("hoist-run-"), "{workdir}");
        assert!(!std::path::Path::new(workdir).exists());

        // The source repository is untouched.
        assert_eq!(s.repo.git(&["symbolic-ref", "HEAD"]), head_before);
        assert_eq!(s.repo.head(), sha_before);
        assert_eq!(s.repo.git(&["status", "--porcelain"]), "");
    })
    .await;
}

#[tokio::test]
async fn the_script_sees_the_deployment_in_its_environment() {
    bounded(async {
        let mut s = setup(concat!(
            "#!/bin/sh\n",
            "echo \"env=$HOIST_ENVIRONMENT ref=$HOIST_REF task=$HOIST_TASK id=$HOIST_DEPLOYMENT_ID\"\n",
            "echo \"sha=$HOIST_SHA\"\n",
            "echo \"payload=$HOIST_PAYLOAD\"\n",
            "cat \"$HOIST_PAYLOAD_FILE\"; echo\n",
            "echo \"setting=$APP_SETTING\"\n",
            "test -f README && echo 'files=present'\n",
        ))
        .await;
        let deployment = s.deploy("deploy:migrate").await;
        let runner = s.runner(s.app());
        assert_eq!(
            runner.run(&api(), &deployment).await.expect("run"),
            DeploymentState::Success
        );

        let payload = deployment.payload.to_string();
        assert_eq!(
            texts(&s.log(deployment.id).await, LogStream::Stdout),
            [
                format!(
                    "env=staging ref=main task=deploy:migrate id={}",
                    deployment.id
                ),
                format!("sha={}", deployment.sha),
                format!("payload={payload}"),
                payload.clone(),
                "setting=from-config".into(),
                "files=present".into(),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn secrets_a_script_prints_are_masked_in_its_log() {
    bounded(async {
        let mut s = setup(concat!(
            "#!/bin/sh\n",
            "echo \"connecting with $DB_PASSWORD as $DB_USER\"\n",
            "echo \"token: ghp_hoist-own-token\" >&2\n",
        ))
        .await;
        let deployment = s.deploy("deploy").await;
        let mut app = s.app();
        app.env.insert("DB_PASSWORD".into(), "hunter2-hunter2".into());
        app.env.insert("DB_USER".into(), "deployer".into());
        // As hoist builds it: its own credentials and secret-named env.
        let config = hoist::config::Config::from_toml_str(
            "[github]\ntoken = \"ghp_hoist-own-token\"\n[apps.api]\nrepo = \"acme/api\"\npath = \"/x\"\nenv = { DB_PASSWORD = \"hunter2-hunter2\", DB_USER = \"deployer\" }\n",
        )
        .expect("config");
        let runner = s.runner_masking(app, Masker::new(config.log_secrets()));
        runner.run(&api(), &deployment).await.expect("run");

        let log = s.log(deployment.id).await;
        assert_eq!(
            texts(&log, LogStream::Stdout),
            [format!("connecting with {MASK} as deployer")]
        );
        assert_eq!(texts(&log, LogStream::Stderr), [format!("token: {MASK}")]);
    })
    .await;
}

#[tokio::test]
async fn a_non_zero_exit_is_a_failure_with_the_code() {
    bounded(async {
        let mut s = setup("#!/bin/sh\necho 'migrations failed' >&2\nexit 3\n").await;
        let deployment = s.deploy("deploy").await;
        let state = s
            .runner(s.app())
            .run(&api(), &deployment)
            .await
            .expect("run");
        assert_eq!(state, DeploymentState::Failure);
        let statuses = s.statuses();
        assert_eq!(
            statuses.last().map(|s| s.state),
            Some(DeploymentState::Failure)
        );
        assert_eq!(
            final_description(&statuses),
            "`./deploy.sh` failed with exit code 3"
        );
        assert_eq!(
            texts(&s.log(deployment.id).await, LogStream::Stderr),
            ["migrations failed"]
        );
    })
    .await;
}

#[tokio::test]
async fn a_command_that_cannot_start_is_an_error_saying_why() {
    bounded(async {
        let mut s = setup("#!/bin/sh\n").await;
        let deployment = s.deploy("deploy").await;
        let mut app = s.app();
        app.deploy_command = vec!["./missing.sh".into(), "--now".into()];
        let state = s.runner(app).run(&api(), &deployment).await.expect("run");
        assert_eq!(state, DeploymentState::Error);
        assert_eq!(
            final_description(&s.statuses()),
            "cannot run `./missing.sh`: No such file or directory"
        );
    })
    .await;
}

#[tokio::test]
async fn a_hanging_script_is_killed_with_its_children_on_timeout() {
    bounded(async {
        let mut s = setup("#!/bin/sh\nsleep 300 &\necho \"child=$!\"\nwait\n").await;
        let deployment = s.deploy("deploy").await;
        let state = s
            .runner(s.app())
            .run(&api(), &deployment)
            .await
            .expect("run");
        assert_eq!(state, DeploymentState::Error);
        assert_eq!(
            final_description(&s.statuses()),
            "`./deploy.sh` timed out after 1 s; it and its children were killed"
        );
        let log = s.log(deployment.id).await;
        let child = texts(&log, LogStream::Stdout)
            .iter()
            .find_map(|line| line.strip_prefix("child=").map(str::to_owned))
            .expect("the script printed its child's pid");
        let pid: u32 = child.parse().expect("a pid");
        assert!(!is_alive(pid), "the grandchild sleep {pid} survived");
    })
    .await;
}

#[tokio::test]
async fn remove_runs_the_remove_command_or_is_an_error_without_one() {
    bounded(async {
        let mut s = setup("#!/bin/sh\necho \"deploy $HOIST_TASK\"\n").await;
        let deployment = s.deploy("remove").await;
        let state = s
            .runner(s.app())
            .run(&api(), &deployment)
            .await
            .expect("run");
        assert_eq!(state, DeploymentState::Error);
        assert_eq!(
            final_description(&s.statuses()),
            "no remove_command is configured for this app"
        );

        let mut app = s.app();
        app.remove_command = Some(vec![
            "sh".into(),
            "-c".into(),
            "echo \"removing $HOIST_TASK\"".into(),
        ]);
        // The first run posted statuses: no second `pending`.
        let deployment = s
            .forge
            .list_deployments(&api(), &Default::default())
            .await
            .expect("list")
            .remove(0);
        let state = s.runner(app).run(&api(), &deployment).await.expect("run");
        assert_eq!(state, DeploymentState::Success);
        assert_eq!(
            states(&s.statuses()),
            [DeploymentState::InProgress, DeploymentState::Success]
        );
        assert!(
            texts(&s.log(deployment.id).await, LogStream::Stdout)
                .contains(&"removing remove".to_owned())
        );
    })
    .await;
}

#[tokio::test]
async fn an_absurdly_long_line_is_cut() {
    bounded(async {
        let mut s =
            setup("#!/bin/sh\nhead -c 100000 /dev/zero | tr '\\0' x\necho\necho after\n").await;
        let deployment = s.deploy("deploy").await;
        let state = s
            .runner(s.app())
            .run(&api(), &deployment)
            .await
            .expect("run");
        assert_eq!(state, DeploymentState::Success);
        let stdout = texts(&s.log(deployment.id).await, LogStream::Stdout);
        assert_eq!(stdout.len(), 2);
        assert!(stdout[0].starts_with("xxxx"));
        assert!(stdout[0].ends_with(" [line truncated by hoist]"));
        assert!(stdout[0].len() < 20_000, "{} bytes kept", stdout[0].len());
        assert_eq!(stdout[1], "after");
    })
    .await;
}

#[tokio::test]
async fn a_repository_without_runner_config_is_refused() {
    let mut s = setup("#!/bin/sh\n").await;
    let deployment = s.deploy("deploy").await;
    let runner = Runner::new(
        s.forge.clone(),
        s.store.clone(),
        RunnerSettings {
            apps: HashMap::new(),
            public_url: PUBLIC_URL.into(),
            masker: Masker::default(),
        },
    );
    let error = runner
        .run(&api(), &deployment)
        .await
        .expect_err("no config");
    assert_eq!(
        error.to_string(),
        "no runner is configured for this deployment of acme/api"
    );
    assert!(s.statuses().is_empty());
}

#[tokio::test]
async fn runs_a_previous_hoist_left_unfinished_are_ended_with_error_at_start() {
    bounded(async {
        let mut s = setup("#!/bin/sh\n").await;
        // One run was going when hoist died; one had finished.
        let interrupted = s.deploy("deploy").await;
        let in_progress = NewStatus {
            state: DeploymentState::InProgress,
            description: Some("running".into()),
            log_url: None,
            environment_url: None,
        };
        s.forge
            .create_status(&api(), interrupted.id, &in_progress)
            .await
            .expect("status");
        s.statuses();
        let finished = s.deploy("deploy:other").await;
        s.runner(s.app()).run(&api(), &finished).await.expect("run");
        s.statuses();

        let runner = s.runner(s.app());
        assert_eq!(runner.end_interrupted_runs().await.expect("recovery"), 1);
        let posted = s.statuses();
        assert_eq!(states(&posted), [DeploymentState::Error]);
        assert!(
            final_description(&posted).starts_with("interrupted by a restart of hoist"),
            "{posted:?}"
        );
        let states_now = s
            .forge
            .deployment_statuses(&api(), finished.id)
            .await
            .expect("statuses");
        assert_eq!(
            states_now.last().map(|(status, _)| status.state),
            Some(DeploymentState::Success),
            "a finished run is left alone"
        );
        assert_eq!(runner.end_interrupted_runs().await.expect("again"), 0);
    })
    .await;
}

#[tokio::test]
async fn two_deployments_to_one_environment_run_one_after_the_other() {
    bounded(async {
        let trace = tempfile::NamedTempFile::new().expect("trace file");
        let mut s = setup(concat!(
            "#!/bin/sh\n",
            "echo \"start $HOIST_DEPLOYMENT_ID\" >> \"$TRACE\"\n",
            "sleep 0.3\n",
            "echo \"end $HOIST_DEPLOYMENT_ID\" >> \"$TRACE\"\n",
        ))
        .await;
        let first = s.deploy("deploy").await;
        let second = s.deploy("deploy:again").await;
        let mut app = s.app();
        app.env
            .insert("TRACE".into(), trace.path().display().to_string());
        let runner = s.runner(app);

        let repo = api();
        let (a, b) = tokio::join!(runner.run(&repo, &first), runner.run(&repo, &second));
        assert_eq!(a.expect("first"), DeploymentState::Success);
        assert_eq!(b.expect("second"), DeploymentState::Success);
        let lines = std::fs::read_to_string(trace.path()).expect("trace");
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 4, "{lines:?}");
        assert_eq!(
            lines[0].replace("start", "end"),
            lines[1],
            "never interleaved: {lines:?}"
        );
        assert_eq!(
            lines[2].replace("start", "end"),
            lines[3],
            "never interleaved: {lines:?}"
        );
        let queued = s
            .statuses()
            .into_iter()
            .filter(|status| status.state == DeploymentState::Queued)
            .collect::<Vec<_>>();
        assert_eq!(queued.len(), 1, "the later one said it was queued");
        assert!(
            queued[0]
                .description
                .as_deref()
                .is_some_and(|d| d.contains("another deployment to staging is running")),
            "{queued:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_deployment_cancelled_while_it_waits_its_turn_never_runs() {
    bounded(async {
        let mut s = setup("#!/bin/sh\nsleep 0.3\necho ran\n").await;
        let first = s.deploy("deploy").await;
        let second = s.deploy("deploy:again").await;
        let runner = s.runner(s.app());
        let cancel = async {
            // Once the second is queued behind the first, cancel it as the
            // Cancel button does: an error status before it started.
            loop {
                let statuses = s
                    .forge
                    .deployment_statuses(&api(), second.id)
                    .await
                    .expect("statuses");
                if statuses
                    .iter()
                    .any(|(status, _)| status.state == DeploymentState::Queued)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let cancelled = NewStatus {
                state: DeploymentState::Error,
                description: Some("Cancelled by ada before it started".into()),
                log_url: None,
                environment_url: None,
            };
            s.forge
                .create_status(&api(), second.id, &cancelled)
                .await
                .expect("cancel");
        };
        let repo = api();
        let (a, b, ()) = tokio::join!(
            runner.run(&repo, &first),
            runner.run(&repo, &second),
            cancel
        );
        assert_eq!(a.expect("first"), DeploymentState::Success);
        assert_eq!(b.expect("second"), DeploymentState::Error);
        assert!(s.log(second.id).await.is_empty(), "it never ran");
    })
    .await;
}
