//! The runner with a real deploy script in a real git repository, the local
//! forge and a SQLite store: the queue, statuses, logs, environment,
//! failures, cancel, shutdown and the timeout that must kill grandchildren
//! too.

mod local_forge_fixture;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hoist::domain::{DeploymentId, DeploymentState, RepoName};
use hoist::forge::local::LocalForge;
use hoist::forge::{Deployment, Forge, ForgeEvent, NewDeployment, NewStatus};
use hoist::runner::{Accepted, MASK, Masker, Runner, RunnerApp, RunnerSettings, Source, log_url};
use hoist::store::sqlite::SqliteStore;
use hoist::store::{DeploymentKey, LogLine, LogStream, RunCancel, RunQueue, RunState, Store};
use local_forge_fixture::GitRepo;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A test that has not finished by then is hung: fail it instead.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The deploy command's timeout in tests: short, as hanging scripts wait it out.
const RUN_TIMEOUT: Duration = Duration::from_secs(1);

/// For runs a test stops itself: long enough never to be what stops them.
const LONG_TIMEOUT: Duration = Duration::from_secs(60);

const PUBLIC_URL: &str = "http://127.0.0.1:3000/";

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, future)
        .await
        .expect("the test ran past its timeout")
}

fn api() -> RepoName {
    "acme/api".parse().expect("repo name")
}

fn key(id: DeploymentId) -> DeploymentKey {
    DeploymentKey {
        forge: "local".into(),
        repo: api(),
        id,
    }
}

struct Setup {
    repo: GitRepo,
    forge: Arc<LocalForge>,
    store: Arc<SqliteStore>,
    events: hoist::forge::EventSource,
    /// Statuses taken from `events` while looking for a deployment event.
    seen: Vec<NewStatus>,
    /// The runner's work dir (unused by local sources, but configured).
    work: tempfile::TempDir,
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
        seen: Vec::new(),
        work: tempfile::tempdir().expect("work dir"),
    }
}

/// A deployment request of `task` to staging.
fn request(task: &str) -> NewDeployment {
    NewDeployment {
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
    }
}

impl Setup {
    fn app(&self) -> RunnerApp {
        RunnerApp {
            repo: api(),
            deploy_command: vec!["./deploy.sh".into()],
            remove_command: None,
            shell: false,
            source: Source::Local(self.repo.path().to_path_buf()),
            env: BTreeMap::from([("APP_SETTING".into(), "from-config".into())]),
            timeout: RUN_TIMEOUT,
            environment_urls: BTreeMap::new(),
        }
    }

    fn settings(&self, apps: HashMap<String, RunnerApp>, masker: Masker) -> RunnerSettings {
        RunnerSettings {
            known_apps: apps.keys().cloned().collect(),
            apps,
            public_url: PUBLIC_URL.into(),
            masker,
            seal: std::sync::Arc::new(hoist::actions::SealKey::random()),
            workers: 1,
            lease: std::time::Duration::from_secs(60),
            work_dir: self.work.path().to_path_buf(),
        }
    }

    fn runner(&self, app: RunnerApp) -> Runner {
        self.runner_masking(app, Masker::default())
    }

    fn runner_masking(&self, app: RunnerApp, masker: Masker) -> Runner {
        self.runner_with(self.settings(HashMap::from([("api".to_owned(), app)]), masker))
    }

    fn runner_with(&self, settings: RunnerSettings) -> Runner {
        Runner::new(self.forge.clone(), None, self.store.clone(), settings)
    }

    /// Creates a deployment of `task` to staging through the forge and
    /// takes its event.
    async fn deploy(&mut self, task: &str) -> Deployment {
        self.deploy_request(request(task)).await
    }

    async fn deploy_request(&mut self, request: NewDeployment) -> Deployment {
        let made = self
            .forge
            .create_deployment(&api(), &request)
            .await
            .expect("deployment");
        loop {
            match self.events.try_recv().expect("deployment event") {
                ForgeEvent::Deployment { deployment, .. } => {
                    assert_eq!(deployment, made);
                    return made;
                }
                ForgeEvent::DeploymentStatus { status, .. } => self.seen.push(status),
                other => panic!("expected a deployment event, got {other:?}"),
            }
        }
    }

    /// Accepts `deployment` (it must be queued) and runs it to its end.
    async fn run(&self, runner: &Runner, deployment: &Deployment) -> DeploymentState {
        let accepted = runner.accept(&api(), deployment).await.expect("accept");
        assert!(
            matches!(accepted, Accepted::Queued { .. }),
            "not queued: {accepted:?}"
        );
        runner
            .run_next()
            .await
            .unwrap_or_else(|error| panic!("the run failed: {error:#}"))
            .expect("a job to run")
    }

    /// The statuses posted since the last call, in order.
    fn statuses(&mut self) -> Vec<NewStatus> {
        let mut statuses = std::mem::take(&mut self.seen);
        while let Ok(event) = self.events.try_recv() {
            if let ForgeEvent::DeploymentStatus { status, .. } = event {
                statuses.push(status);
            }
        }
        statuses
    }

    /// All statuses of one deployment, oldest first, as the forge has them.
    async fn statuses_of(&self, id: DeploymentId) -> Vec<NewStatus> {
        self.forge
            .deployment_statuses(&api(), id)
            .await
            .expect("statuses")
            .into_iter()
            .map(|(status, _)| status)
            .collect()
    }

    /// Waits until each of `ids` has a final status.
    async fn until_final(&self, ids: &[DeploymentId]) {
        for &id in ids {
            loop {
                let statuses = self.statuses_of(id).await;
                if statuses.last().is_some_and(|s| s.state.is_final()) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    async fn log(&self, id: DeploymentId) -> Vec<LogLine> {
        self.store.read_log(&key(id), 0).await.expect("log")
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

/// Waits until a script wrote a pid to `file`.
async fn pid_in(file: &Path) -> u32 {
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A process killed a moment ago may take a moment to be reaped.
async fn until_dead(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!is_alive(pid), "process {pid} survived its run");
}

/// A script that starts a long `sleep` in the background, leaves its pid
/// in `$PIDFILE` and waits for it.
const SLEEPER: &str =
    "#!/bin/sh\nsleep 30 &\necho $! > \"$PIDFILE\"\necho started\nwait\necho finished\n";

#[test]
fn log_urls_name_the_forge_repository_and_deployment() {
    let key = key(DeploymentId(42));
    let expected = "http://127.0.0.1:3000/deployments/local/acme/api/42/log";
    assert_eq!(log_url("http://127.0.0.1:3000", &key), expected);
    assert_eq!(log_url("http://127.0.0.1:3000/", &key), expected);
}

#[tokio::test]
async fn the_runner_handles_only_configured_apps() {
    bounded(async {
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
        assert!(!runner.handles(&"acme/web".parse().expect("repo"), &deployment));
        deployment.payload = json!({"hoist": {"app": "worker"}});
        assert!(!runner.handles(&api(), &deployment));
        // hubot-deploy's `payload.name` names the app too, in any case;
        // `hoist.app` wins over it.
        deployment.payload = json!({"name": "api"});
        assert!(runner.handles(&api(), &deployment));
        deployment.payload = json!({"name": "API"});
        assert!(runner.handles(&api(), &deployment));
        deployment.payload = json!({"name": "worker"});
        assert!(!runner.handles(&api(), &deployment));
        deployment.payload = json!({"hoist": {"app": "api"}, "name": "worker"});
        assert!(runner.handles(&api(), &deployment));
        // A payload that is not an object is never run.
        deployment.payload = json!("not json");
        assert!(!runner.handles(&api(), &deployment));
    })
    .await;
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

        let state = s.run(&runner, &deployment).await;
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
        assert!(statuses.iter().all(|s| s.environment_url.is_none()));
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
        // `skip` reads the rest of the log.
        let rest = s.store.read_log(&key(deployment.id), 2).await.expect("log");
        assert_eq!(rest, log[2..]);

        // It ran in a checkout of its own, removed afterwards.
        let workdir = stderr.get(1).expect("pwd");
        assert!(workdir.contains("hoist-run-"), "{workdir}");
        assert!(!std::path::Path::new(workdir).exists());

        // The source repository is untouched.
        assert_eq!(s.repo.git(&["symbolic-ref", "HEAD"]), head_before);
        assert_eq!(s.repo.head(), sha_before);
        assert_eq!(s.repo.git(&["status", "--porcelain"]), "");

        // The queue is empty again, the job done.
        assert_eq!(runner.run_next().await.expect("next"), None);
        assert_eq!(
            s.store.run_state(&key(deployment.id)).await.expect("state"),
            Some(RunState::Done)
        );
        assert!(!runner.is_busy());
    })
    .await;
}

#[tokio::test]
async fn the_script_sees_the_deployment_in_its_environment() {
    bounded(async {
        let mut s = setup(concat!(
            "#!/bin/sh\n",
            "echo \"env=$HOIST_ENVIRONMENT ref=$HOIST_REF task=$HOIST_TASK id=$HOIST_DEPLOYMENT_ID\"\n",
            "echo \"app=$HOIST_APP sha=$HOIST_SHA\"\n",
            "echo \"payload=$HOIST_PAYLOAD\"\n",
            "cat \"$HOIST_PAYLOAD_FILE\"; echo\n",
            "echo \"setting=$APP_SETTING\"\n",
            "test -f README && echo 'files=present'\n",
        ))
        .await;
        let deployment = s.deploy("deploy:migrate").await;
        let runner = s.runner(s.app());
        assert_eq!(s.run(&runner, &deployment).await, DeploymentState::Success);

        let payload = deployment.payload.to_string();
        assert_eq!(
            texts(&s.log(deployment.id).await, LogStream::Stdout),
            [
                format!(
                    "env=staging ref=main task=deploy:migrate id={}",
                    deployment.id
                ),
                format!("app=api sha={}", deployment.sha),
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
        assert_eq!(s.run(&runner, &deployment).await, DeploymentState::Success);

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
        let state = s.run(&s.runner(s.app()), &deployment).await;
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
        let state = s.run(&s.runner(app), &deployment).await;
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
        let started = Instant::now();
        let state = s.run(&s.runner(s.app()), &deployment).await;
        assert_eq!(state, DeploymentState::Error);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
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
        until_dead(pid).await;
    })
    .await;
}

#[tokio::test]
async fn a_background_child_does_not_outlive_a_script_that_exits() {
    bounded(async {
        // The script exits at once, leaving a `sleep` behind that holds
        // neither of its pipes.
        let mut s = setup(
            "#!/bin/sh\nsleep 30 >/dev/null 2>&1 </dev/null &\necho $! > \"$PIDFILE\"\necho left\n",
        )
        .await;
        let pids = tempfile::tempdir().expect("pid dir");
        let pidfile = pids.path().join("child");
        let mut app = s.app();
        app.env
            .insert("PIDFILE".into(), pidfile.display().to_string());
        let deployment = s.deploy("deploy").await;
        let started = Instant::now();
        let state = s.run(&s.runner(app), &deployment).await;
        assert_eq!(state, DeploymentState::Success);
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid = pid_in(&pidfile).await;
        until_dead(pid).await;
        assert_eq!(final_description(&s.statuses()), "`./deploy.sh` succeeded");
    })
    .await;
}

#[tokio::test]
async fn remove_runs_the_remove_command_or_is_an_error_without_one() {
    bounded(async {
        let mut s = setup("#!/bin/sh\necho \"deploy $HOIST_TASK\"\n").await;
        let deployment = s.deploy("remove").await;
        let state = s.run(&s.runner(s.app()), &deployment).await;
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
        // A deployment that already has a status (here someone else's
        // `queued`) gets no `pending` from the runner.
        let mut again = request("remove");
        again.request_key = "test:remove-again".into();
        let deployment = s.deploy_request(again).await;
        let waiting = NewStatus {
            state: DeploymentState::Queued,
            description: Some("waiting for checks".into()),
            log_url: None,
            environment_url: None,
        };
        s.forge
            .create_status(&api(), deployment.id, &waiting)
            .await
            .expect("status");
        s.statuses();
        let deployment = s
            .forge
            .list_deployments(&api(), &Default::default())
            .await
            .expect("list")
            .into_iter()
            .find(|d| d.id == deployment.id)
            .expect("the deployment");
        assert_eq!(deployment.state, Some(DeploymentState::Queued));
        let state = s.run(&s.runner(app), &deployment).await;
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
        let state = s.run(&s.runner(s.app()), &deployment).await;
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
async fn a_repository_without_runner_config_is_not_ours() {
    bounded(async {
        let mut s = setup("#!/bin/sh\n").await;
        let deployment = s.deploy("deploy").await;
        let runner = s.runner_with(s.settings(HashMap::new(), Masker::default()));
        assert_eq!(
            runner.accept(&api(), &deployment).await.expect("accept"),
            Accepted::NotOurs
        );
        assert!(s.statuses().is_empty());
        assert_eq!(runner.run_next().await.expect("next"), None);
        assert_eq!(
            s.store.run_state(&key(deployment.id)).await.expect("state"),
            None
        );
    })
    .await;
}

#[tokio::test]
async fn an_app_of_hoist_without_a_command_is_another_tools_to_run() {
    bounded(async {
        let mut s = setup("#!/bin/sh\n").await;
        let mut settings = s.settings(
            HashMap::from([("api".to_owned(), s.app())]),
            Masker::default(),
        );
        settings.known_apps.insert("docs".into());
        let runner = s.runner_with(settings);
        let mut docs = request("deploy");
        docs.payload = json!({"hoist": {"app": "docs"}});
        let deployment = s.deploy_request(docs).await;
        assert_eq!(
            runner.accept(&api(), &deployment).await.expect("accept"),
            Accepted::NotOurs
        );
        assert!(s.statuses().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_payload_that_is_not_an_object_is_refused_with_an_error() {
    bounded(async {
        let mut s = setup("#!/bin/sh\necho ran\n").await;
        let mut odd = request("deploy");
        odd.payload = json!("not json");
        let deployment = s.deploy_request(odd).await;
        assert_eq!(deployment.payload, json!("not json"));
        let runner = s.runner(s.app());
        let Accepted::Refused(reason) = runner.accept(&api(), &deployment).await.expect("accept")
        else {
            panic!("a string payload was accepted");
        };
        assert!(reason.contains("payload is not a JSON object"), "{reason}");
        let statuses = s.statuses();
        assert_eq!(states(&statuses), [DeploymentState::Error]);
        assert_eq!(final_description(&statuses), reason);
        assert_eq!(runner.run_next().await.expect("next"), None);
        assert!(s.log(deployment.id).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_payload_naming_an_unknown_app_is_refused_with_an_error() {
    bounded(async {
        let mut s = setup("#!/bin/sh\necho ran\n").await;
        let mut nope = request("deploy");
        nope.payload = json!({"hoist": {"app": "nope"}});
        let deployment = s.deploy_request(nope).await;
        let runner = s.runner(s.app());
        let Accepted::Refused(reason) = runner.accept(&api(), &deployment).await.expect("accept")
        else {
            panic!("a deployment of an unknown app was accepted");
        };
        assert!(reason.contains("hoist has no app `nope`"), "{reason}");
        let statuses = s.statuses();
        assert_eq!(states(&statuses), [DeploymentState::Error]);
        assert!(
            final_description(&statuses).contains("hoist has no app `nope`"),
            "{statuses:?}"
        );
        assert_eq!(runner.run_next().await.expect("next"), None);
        assert!(s.log(deployment.id).await.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_deployment_accepted_twice_runs_once() {
    bounded(async {
        let mut s = setup("#!/bin/sh\necho ran\n").await;
        let deployment = s.deploy("deploy").await;
        let runner = s.runner(s.app());
        assert_eq!(
            runner.accept(&api(), &deployment).await.expect("accept"),
            Accepted::Queued { ahead: 0 }
        );
        assert_eq!(
            runner.accept(&api(), &deployment).await.expect("again"),
            Accepted::AlreadyQueued
        );
        assert_eq!(
            runner.run_next().await.expect("run"),
            Some(DeploymentState::Success)
        );
        assert_eq!(runner.run_next().await.expect("next"), None);
        // Accepted again after its run: still nothing.
        assert_eq!(
            runner.accept(&api(), &deployment).await.expect("later"),
            Accepted::AlreadyQueued
        );
        assert_eq!(runner.run_next().await.expect("next"), None);
        assert_eq!(
            states(&s.statuses()),
            [
                DeploymentState::Pending,
                DeploymentState::InProgress,
                DeploymentState::Success
            ]
        );
        assert_eq!(
            texts(&s.log(deployment.id).await, LogStream::Stdout),
            ["ran"]
        );
    })
    .await;
}

#[tokio::test]
async fn a_shell_app_runs_its_command_as_one_shell_line() {
    bounded(async {
        let mut s = setup("#!/bin/sh\n").await;
        let mut app = s.app();
        app.shell = true;
        app.deploy_command = ["echo", "$HOIST_ENVIRONMENT", "|", "tr", "a-z", "A-Z"]
            .map(String::from)
            .to_vec();
        let deployment = s.deploy("deploy").await;
        assert_eq!(
            s.run(&s.runner(app), &deployment).await,
            DeploymentState::Success
        );
        assert_eq!(
            texts(&s.log(deployment.id).await, LogStream::Stdout),
            ["STAGING"]
        );
        assert_eq!(
            s.statuses().last().map(|s| s.state),
            Some(DeploymentState::Success)
        );
    })
    .await;
}

#[tokio::test]
async fn a_success_links_the_environment_url_of_its_environment() {
    bounded(async {
        let mut s = setup("#!/bin/sh\n").await;
        let mut app = s.app();
        app.environment_urls = BTreeMap::from([(
            "staging".to_owned(),
            "https://staging.example.com".to_owned(),
        )]);
        let deployment = s.deploy("deploy").await;
        assert_eq!(
            s.run(&s.runner(app), &deployment).await,
            DeploymentState::Success
        );
        let statuses = s.statuses();
        let last = statuses.last().expect("a final status");
        assert_eq!(last.state, DeploymentState::Success);
        assert_eq!(
            last.environment_url.as_deref(),
            Some("https://staging.example.com")
        );
        assert!(
            statuses[..statuses.len() - 1]
                .iter()
                .all(|s| s.environment_url.is_none()),
            "{statuses:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn runs_a_previous_hoist_left_unfinished_are_ended_with_error_at_start() {
    bounded(async {
        let mut s = setup("#!/bin/sh\necho ran\n").await;
        let dead = s.runner(s.app());
        let in_progress = NewStatus {
            state: DeploymentState::InProgress,
            description: Some("running".into()),
            log_url: None,
            environment_url: None,
        };
        let claim = |store: Arc<SqliteStore>| async move {
            let now = jiff::Timestamp::now();
            store
                .claim_run(
                    "dead-worker",
                    now,
                    now + jiff::SignedDuration::from_secs(30),
                )
                .await
                .expect("claim")
                .expect("a job to claim")
        };

        // A run that finished before hoist died.
        let mut qa = request("deploy:qa");
        qa.environment = "qa".into();
        let finished = s.deploy_request(qa).await;
        assert_eq!(s.run(&dead, &finished).await, DeploymentState::Success);

        // One run was going when hoist died...
        let interrupted = s.deploy("deploy").await;
        dead.accept(&api(), &interrupted).await.expect("accept");
        let job = claim(s.store.clone()).await;
        assert_eq!(job.key, key(interrupted.id));
        s.forge
            .create_status(&api(), interrupted.id, &in_progress)
            .await
            .expect("status");

        // ...one had posted its end but died before telling the queue...
        let mut production = request("deploy:production");
        production.environment = "production".into();
        let ended = s.deploy_request(production).await;
        dead.accept(&api(), &ended).await.expect("accept");
        let job = claim(s.store.clone()).await;
        assert_eq!(job.key, key(ended.id));
        for state in [DeploymentState::InProgress, DeploymentState::Success] {
            let status = NewStatus {
                state,
                ..in_progress.clone()
            };
            s.forge
                .create_status(&api(), ended.id, &status)
                .await
                .expect("status");
        }

        // ...and one was waiting its turn behind the first.
        let waiting = s.deploy("deploy:waiting").await;
        assert_eq!(
            dead.accept(&api(), &waiting).await.expect("accept"),
            Accepted::Queued { ahead: 1 }
        );
        drop(dead);
        s.statuses();

        let runner = s.runner(s.app());
        assert_eq!(runner.end_interrupted_runs().await.expect("recovery"), 1);
        let posted = s.statuses();
        assert_eq!(states(&posted), [DeploymentState::Error]);
        assert!(
            final_description(&posted).starts_with("interrupted: the hoist running it stopped"),
            "{posted:?}"
        );
        let last = s.statuses_of(interrupted.id).await;
        assert_eq!(last.last().map(|s| s.state), Some(DeploymentState::Error));
        assert_eq!(
            last.last().and_then(|s| s.log_url.clone()),
            Some(log_url(PUBLIC_URL, &key(interrupted.id)))
        );
        for (id, what) in [
            (finished.id, "a finished run"),
            (ended.id, "a run that posted its end"),
        ] {
            assert_eq!(
                s.statuses_of(id).await.last().map(|s| s.state),
                Some(DeploymentState::Success),
                "{what} is left alone"
            );
        }
        assert_eq!(
            s.store
                .run_state(&key(interrupted.id))
                .await
                .expect("state"),
            Some(RunState::Done)
        );
        assert_eq!(
            s.store.run_state(&key(ended.id)).await.expect("state"),
            Some(RunState::Done)
        );
        assert_eq!(runner.end_interrupted_runs().await.expect("again"), 0);
        assert!(s.statuses().is_empty());

        // The queued one was not ended: it runs now, its lane free.
        assert_eq!(
            s.store.run_state(&key(waiting.id)).await.expect("state"),
            Some(RunState::Queued)
        );
        assert_eq!(
            runner.run_next().await.expect("run"),
            Some(DeploymentState::Success)
        );
        assert_eq!(
            states(&s.statuses_of(waiting.id).await),
            [
                DeploymentState::Queued,
                DeploymentState::InProgress,
                DeploymentState::Success
            ]
        );
        assert_eq!(texts(&s.log(waiting.id).await, LogStream::Stdout), ["ran"]);
        assert_eq!(runner.run_next().await.expect("next"), None);
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
            "sleep 0.5\n",
            "echo \"end $HOIST_DEPLOYMENT_ID\" >> \"$TRACE\"\n",
        ))
        .await;
        let first = s.deploy("deploy").await;
        let second = s.deploy("deploy:again").await;
        let mut prod = request("deploy:production");
        prod.environment = "production".into();
        let production = s.deploy_request(prod).await;
        let mut app = s.app();
        app.env
            .insert("TRACE".into(), trace.path().display().to_string());
        let mut settings = s.settings(HashMap::from([("api".to_owned(), app)]), Masker::default());
        settings.workers = 2;
        let runner = Arc::new(s.runner_with(settings));

        let repo = api();
        assert_eq!(
            runner.accept(&repo, &first).await.expect("first"),
            Accepted::Queued { ahead: 0 }
        );
        assert_eq!(
            runner.accept(&repo, &second).await.expect("second"),
            Accepted::Queued { ahead: 1 }
        );
        assert_eq!(
            runner.accept(&repo, &production).await.expect("production"),
            Accepted::Queued { ahead: 0 }
        );
        let stop = CancellationToken::new();
        let workers = tokio::spawn(Arc::clone(&runner).run_workers_until(stop.clone()));
        s.until_final(&[first.id, second.id, production.id]).await;
        stop.cancel();
        workers.await.expect("workers");

        for id in [first.id, second.id, production.id] {
            assert_eq!(
                s.statuses_of(id).await.last().map(|s| s.state),
                Some(DeploymentState::Success),
                "deployment {id}"
            );
        }
        let lines = std::fs::read_to_string(trace.path()).expect("trace");
        let lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines.len(), 6, "{lines:?}");
        let at = |line: String| {
            lines
                .iter()
                .position(|l| *l == line)
                .unwrap_or_else(|| panic!("no `{line}` in {lines:?}"))
        };
        let (start_first, end_first) = (
            at(format!("start {}", first.id)),
            at(format!("end {}", first.id)),
        );
        let (start_second, end_second) = (
            at(format!("start {}", second.id)),
            at(format!("end {}", second.id)),
        );
        assert!(
            start_first < end_first && end_first < start_second && start_second < end_second,
            "staging never interleaved: {lines:?}"
        );
        let (start_prod, end_prod) = (
            at(format!("start {}", production.id)),
            at(format!("end {}", production.id)),
        );
        assert!(
            start_prod < end_first && start_first < end_prod,
            "production ran alongside the first staging run: {lines:?}"
        );

        let statuses = s.statuses();
        let queued = statuses
            .iter()
            .filter(|status| status.state == DeploymentState::Queued)
            .collect::<Vec<_>>();
        assert_eq!(queued.len(), 1, "the later one said it was queued");
        assert_eq!(
            queued[0].description.as_deref(),
            Some("queued: 1 deployment to staging before this one"),
        );
        assert_eq!(
            states(&s.statuses_of(second.id).await),
            [
                DeploymentState::Queued,
                DeploymentState::InProgress,
                DeploymentState::Success
            ]
        );
        assert_eq!(
            states(&s.statuses_of(production.id).await),
            [
                DeploymentState::Pending,
                DeploymentState::InProgress,
                DeploymentState::Success
            ]
        );
        assert!(!runner.is_busy());
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
        let repo = api();
        assert_eq!(
            runner.accept(&repo, &first).await.expect("first"),
            Accepted::Queued { ahead: 0 }
        );
        assert_eq!(
            runner.accept(&repo, &second).await.expect("second"),
            Accepted::Queued { ahead: 1 }
        );
        let cancel = async {
            // While the first runs, cancel the second, as the Cancel
            // button does.
            loop {
                let statuses = s.statuses_of(first.id).await;
                if statuses
                    .iter()
                    .any(|status| status.state == DeploymentState::InProgress)
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            runner.cancel(&key(second.id), "ada").await.expect("cancel")
        };
        let (ran, cancelled) = tokio::join!(runner.run_next(), cancel);
        assert_eq!(cancelled, RunCancel::Dequeued);
        assert_eq!(ran.expect("first"), Some(DeploymentState::Success));
        assert_eq!(runner.run_next().await.expect("next"), None);
        assert!(s.log(second.id).await.is_empty(), "it never ran");
        assert!(!states(&s.statuses_of(second.id).await).contains(&DeploymentState::InProgress));
        assert_eq!(
            s.store.run_state(&key(second.id)).await.expect("state"),
            Some(RunState::Done)
        );
        // Cancelling it again, or the finished first, changes nothing.
        assert_eq!(
            runner.cancel(&key(second.id), "ada").await.expect("again"),
            RunCancel::Finished
        );
        assert_eq!(
            runner.cancel(&key(first.id), "ada").await.expect("first"),
            RunCancel::Finished
        );
        assert_eq!(
            runner
                .cancel(&key(DeploymentId(9999)), "ada")
                .await
                .expect("unknown"),
            RunCancel::Unknown
        );
        assert!(!runner.is_busy());
    })
    .await;
}

/// A run stopped on request ended within 5 s of `started`, its child
/// `pid` is gone, and its last status is `state` saying `piece`.
async fn ended_soon_and_killed(
    s: &mut Setup,
    started: Instant,
    pid: u32,
    state: DeploymentState,
    piece: &str,
) {
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    until_dead(pid).await;
    let statuses = s.statuses();
    assert_eq!(statuses.last().map(|s| s.state), Some(state));
    let description = final_description(&statuses);
    assert!(description.contains(piece), "{description}");
}

/// A deployment of [`SLEEPER`] with a long timeout, whose script writes
/// its background child's pid to a file.
struct Sleeper {
    pids: tempfile::TempDir,
    app: RunnerApp,
    deployment: Deployment,
}

impl Sleeper {
    fn pidfile(&self) -> std::path::PathBuf {
        self.pids.path().join("child")
    }
}

async fn sleeper() -> (Setup, Sleeper) {
    let mut s = setup(SLEEPER).await;
    let pids = tempfile::tempdir().expect("pid dir");
    let mut app = s.app();
    app.timeout = LONG_TIMEOUT;
    app.env.insert(
        "PIDFILE".into(),
        pids.path().join("child").display().to_string(),
    );
    let deployment = s.deploy("deploy").await;
    (
        s,
        Sleeper {
            pids,
            app,
            deployment,
        },
    )
}

#[tokio::test]
async fn a_running_deployment_cancelled_is_killed_with_its_children() {
    bounded(async {
        let (mut s, sleeper) = sleeper().await;
        let (pidfile, deployment) = (sleeper.pidfile(), sleeper.deployment.clone());
        let runner = s.runner(sleeper.app);
        runner.accept(&api(), &deployment).await.expect("accept");

        let started = Instant::now();
        let cancel = async {
            let pid = pid_in(&pidfile).await;
            let cancelled = runner
                .cancel(&key(deployment.id), "ada")
                .await
                .expect("cancel");
            (pid, cancelled)
        };
        let (ran, (pid, cancelled)) = tokio::join!(runner.run_next(), cancel);
        assert_eq!(cancelled, RunCancel::Requested);
        assert_eq!(ran.expect("run"), Some(DeploymentState::Failure));
        ended_soon_and_killed(
            &mut s,
            started,
            pid,
            DeploymentState::Failure,
            "cancelled by ada",
        )
        .await;
        let log = s.log(deployment.id).await;
        assert_eq!(texts(&log, LogStream::Stdout), ["started"]);
        assert!(
            texts(&log, LogStream::Hoist)
                .last()
                .is_some_and(|note| note.contains("cancelled by ada")),
            "{log:?}"
        );
        assert_eq!(
            runner
                .cancel(&key(deployment.id), "ada")
                .await
                .expect("again"),
            RunCancel::Finished
        );
    })
    .await;
}

#[tokio::test]
async fn a_shutdown_stops_the_running_deployment_with_an_error() {
    bounded(async {
        let (mut s, sleeper) = sleeper().await;
        let (pidfile, deployment) = (sleeper.pidfile(), sleeper.deployment.clone());
        let runner = Arc::new(s.runner(sleeper.app));
        runner.accept(&api(), &deployment).await.expect("accept");

        let stop = CancellationToken::new();
        let workers = tokio::spawn(Arc::clone(&runner).run_workers_until(stop.clone()));
        let pid = pid_in(&pidfile).await;
        let started = Instant::now();
        stop.cancel();
        workers.await.expect("workers");
        ended_soon_and_killed(
            &mut s,
            started,
            pid,
            DeploymentState::Error,
            "hoist was shut down",
        )
        .await;
        assert_eq!(
            s.store.run_state(&key(deployment.id)).await.expect("state"),
            Some(RunState::Done)
        );
        assert!(!runner.is_busy());
    })
    .await;
}
