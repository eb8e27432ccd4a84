//! A fake GitHub REST API: repositories with branches, tags, files, commit
//! statuses and check runs, the Deployments API, and the parts of pull
//! request conversations hoist uses (pull requests, collaborator
//! permissions, issue comments, reactions), organization teams' memberships,
//! answering as GitHub does (the
//! JSON shapes of `tests/fixtures/github/`, 200/201/202/304/404/409/422,
//! rate-limit headers), with scripted failures.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hoist::forge::github::{GitHubAuth, GitHubSettings};
use serde_json::{Value, json};

/// The personal token the fake accepts.
pub const TOKEN: &str = "ghp_faketoken0123456789abcdefghijklmnop";
pub const APP_ID: u64 = 4242;
pub const INSTALLATION_ID: u64 = 77;
const DEPLOYMENT_FIXTURE: &str = include_str!("../fixtures/github/deployment.created.json");
const STATUS_FIXTURE: &str = include_str!("../fixtures/github/deployment_status.created.json");
const APP_KEY: &str = include_str!("../fixtures/github/test-app-key.pem");
/// The id of every repository the fake holds (a fork's head repo gets the next one).
const REPO_ID: u64 = 1296269;
/// Who hoist's comments and reactions come from.
const BOT_LOGIN: &str = "hoist-bot";
const FIRST_COMMENT_ID: u64 = 5000;
/// The reactions GitHub accepts.
const REACTIONS: [&str; 8] = [
    "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
];

/// A scripted answer to the next request that matches.
#[derive(Debug, Clone)]
pub struct Failure {
    method: Method,
    path_prefix: String,
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

impl Failure {
    pub fn new(method: Method, path_prefix: &str, status: u16, body: &str) -> Self {
        Self {
            method,
            path_prefix: path_prefix.to_owned(),
            status: StatusCode::from_u16(status).unwrap(),
            headers: Vec::new(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Answers only after `delay` (to make a client time out).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub if_none_match: Option<String>,
    /// The JSON body, when there was one.
    pub body: Option<Value>,
    pub status: u16,
    /// When the request arrived (for the benchmark's latencies).
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Repo {
    default_branch: String,
    branches: HashMap<String, String>,
    tags: HashMap<String, String>,
    /// (branch, path) -> text
    files: HashMap<(String, String), String>,
    /// sha -> (context, state)
    statuses: HashMap<String, Vec<(String, String)>>,
    /// sha -> (name, status, conclusion)
    check_runs: HashMap<String, Vec<(String, String, Option<String>)>>,
    needs_merge: HashSet<String>,
    pulls: HashMap<u64, Pull>,
    /// lowercased login -> role as set (admin, maintain, write, ...)
    roles: HashMap<String, String>,
    /// head sha -> how many commits of the default branch it lacks.
    behind: HashMap<String, u64>,
}

struct Pull {
    head_ref: String,
    head_sha: String,
    /// `owner/name` of the repository the head branch lives in.
    head_repo: String,
    /// When it was closed; `None` while open.
    closed_at: Option<String>,
    merged: bool,
}

struct StoredComment {
    repo: String,
    number: u64,
    json: Value,
    edits: usize,
}

struct StoredReaction {
    repo: String,
    comment_id: u64,
    json: Value,
}

/// A comment hoist posted, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeComment {
    pub id: u64,
    /// The latest body.
    pub body: String,
    /// How many times hoist edited it.
    pub edits: usize,
}

struct StoredDeployment {
    repo: String,
    json: Value,
    /// What hoist sent.
    request: Value,
    statuses: Vec<Value>,
}

#[derive(Default)]
struct Model {
    repos: HashMap<String, Repo>,
    deployments: Vec<StoredDeployment>,
    next_id: i64,
    comments: Vec<StoredComment>,
    reactions: Vec<StoredReaction>,
    failures: Vec<Failure>,
    seen: Vec<Seen>,
    /// Added to every answer, like a distant GitHub.
    latency: Duration,
    installation_tokens: Vec<String>,
    /// Lowercased `org/team-slug` -> lowercased login -> `active` or
    /// `pending`.
    teams: HashMap<String, HashMap<String, &'static str>>,
    /// Where repositories served over git live (`<root>/owner/name.git`).
    git_root: Option<tempfile::TempDir>,
    /// Git requests answered, and those refused for their credentials.
    git_requests: usize,
    git_refused: usize,
    /// The OAuth apps people log in through: client id -> secret.
    oauth_apps: HashMap<String, String>,
    /// Who is signed in to the fake's web pages (login, name).
    signed_in: Option<(String, String)>,
    /// The next authorization is declined.
    deny_next: bool,
    /// Codes not yet traded, by code.
    oauth_codes: HashMap<String, OAuthCode>,
    /// User tokens (`gho_...`) -> (login, name).
    user_tokens: HashMap<String, (String, String)>,
    oauth_exchanges: usize,
}

/// A code the authorize page handed out: for one app, callback and person.
struct OAuthCode {
    client_id: String,
    redirect_uri: String,
    login: String,
    name: String,
    scope: String,
    expires: std::time::Instant,
}

pub struct FakeGitHub {
    address: SocketAddr,
    model: Arc<Mutex<Model>>,
}

impl FakeGitHub {
    pub async fn start() -> Self {
        let model = Arc::new(Mutex::new(Model {
            next_id: 1000,
            ..Model::default()
        }));
        let address = super::listen(
            Router::new()
                .fallback(handle)
                .with_state(Arc::clone(&model)),
        )
        .await;
        Self { address, model }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn settings(&self, auth: GitHubAuth) -> GitHubSettings {
        GitHubSettings {
            api_url: self.url(),
            auth,
            request_timeout: Duration::from_secs(2),
            max_rate_limit_wait: Duration::from_secs(5),
            // Every read asks (and revalidates): tests see each request.
            rules_fresh_for: Duration::ZERO,
        }
    }

    pub fn token_auth() -> GitHubAuth {
        GitHubAuth::Token(TOKEN.to_owned().into())
    }

    pub fn app_auth() -> GitHubAuth {
        GitHubAuth::App {
            app_id: APP_ID,
            private_key_pem: APP_KEY.to_owned().into(),
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap()
    }

    /// A repository whose default branch points at `sha`.
    pub fn add_repo(&self, repo: &str, default_branch: &str, sha: &str) {
        let mut model = self.model();
        let entry = model.repos.entry(repo.to_lowercase()).or_default();
        entry.default_branch = default_branch.to_owned();
        entry
            .branches
            .insert(default_branch.to_owned(), sha.to_owned());
    }

    /// `sha` lacks `commits` commits of the default branch (the compare API).
    pub fn set_behind(&self, repo: &str, sha: &str, commits: u64) {
        self.model()
            .repos
            .get_mut(repo)
            .unwrap()
            .behind
            .insert(sha.to_owned(), commits);
    }

    pub fn set_default_branch(&self, repo: &str, branch: &str) {
        self.model()
            .repos
            .get_mut(&repo.to_lowercase())
            .unwrap()
            .default_branch = branch.to_owned();
    }

    pub fn set_branch(&self, repo: &str, branch: &str, sha: &str) {
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        entry.branches.insert(branch.to_owned(), sha.to_owned());
    }

    pub fn set_tag(&self, repo: &str, tag: &str, sha: &str) {
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        entry.tags.insert(tag.to_owned(), sha.to_owned());
    }

    pub fn set_file(&self, repo: &str, branch: &str, path: &str, text: &str) {
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        entry
            .files
            .insert((branch.to_owned(), path.to_owned()), text.to_owned());
    }

    pub fn set_status(&self, repo: &str, sha: &str, context: &str, state: &str) {
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        let statuses = entry.statuses.entry(sha.to_owned()).or_default();
        statuses.retain(|(name, _)| name != context);
        statuses.push((context.to_owned(), state.to_owned()));
    }

    /// Sets the check run `name` of a commit (replacing one of that name).
    pub fn set_check_run(
        &self,
        repo: &str,
        sha: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) {
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        let runs = entry.check_runs.entry(sha.to_owned()).or_default();
        runs.retain(|(run, _, _)| run != name);
        runs.push((
            name.to_owned(),
            status.to_owned(),
            conclusion.map(str::to_owned),
        ));
    }

    /// The default branch has commits `branch` lacks: a deployment with
    /// `auto_merge` gets GitHub's 202 (it merged instead of deploying).
    pub fn needs_merge(&self, repo: &str, branch: &str) {
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        entry.needs_merge.insert(branch.to_owned());
    }

    /// An open pull request. `head_repo` is the `owner/name` its head
    /// branch lives in: `repo` itself, or another name for a fork.
    pub fn add_pull(
        &self,
        repo: &str,
        number: u64,
        head_ref: &str,
        head_sha: &str,
        head_repo: &str,
    ) {
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        entry.pulls.insert(
            number,
            Pull {
                head_ref: head_ref.to_owned(),
                head_sha: head_sha.to_owned(),
                head_repo: head_repo.to_owned(),
                closed_at: None,
                merged: false,
            },
        );
    }

    pub fn close_pull(&self, repo: &str, number: u64, merged: bool) {
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        let pull = entry
            .pulls
            .get_mut(&number)
            .expect("a pull request of the fake");
        pull.closed_at = Some(jiff::Timestamp::now().to_string());
        pull.merged = merged;
    }

    /// `login`'s role on `repo`: admin, maintain, write, triage, read or
    /// none. Logins never set have none.
    pub fn set_permission(&self, repo: &str, login: &str, permission: &str) {
        assert!(
            folded_permission(permission).is_some(),
            "not a GitHub role: {permission}"
        );
        let mut model = self.model();
        let entry = model.repos.get_mut(&repo.to_lowercase()).unwrap();
        entry
            .roles
            .insert(login.to_lowercase(), permission.to_owned());
    }

    /// Makes `logins` the active members of `team` (`org/team-slug`),
    /// creating the team; its pending members stay. A team never set is
    /// unknown: GitHub answers 404, as for someone not in it.
    pub fn set_team_members(&self, team: &str, logins: &[&str]) {
        let mut model = self.model();
        let members = model.teams.entry(team.to_lowercase()).or_default();
        members.retain(|_, state| *state == "pending");
        for login in logins {
            members.insert(login.to_lowercase(), "active");
        }
    }

    /// `login` is invited to `team` and has not accepted yet: GitHub's
    /// membership answer says `pending`.
    pub fn invite_to_team(&self, team: &str, login: &str) {
        self.model()
            .teams
            .entry(team.to_lowercase())
            .or_default()
            .insert(login.to_lowercase(), "pending");
    }

    /// The comments hoist posted on issue or pull request `number`, oldest
    /// first.
    pub fn comments(&self, repo: &str, number: u64) -> Vec<FakeComment> {
        self.model()
            .comments
            .iter()
            .filter(|c| c.repo == repo.to_lowercase() && c.number == number)
            .map(|c| FakeComment {
                id: c.json["id"].as_u64().unwrap(),
                body: c.json["body"].as_str().unwrap().to_owned(),
                edits: c.edits,
            })
            .collect()
    }

    /// The reactions hoist put on a comment, in the order added (each
    /// content once, as GitHub keeps them).
    pub fn reactions(&self, repo: &str, comment_id: u64) -> Vec<String> {
        self.model()
            .reactions
            .iter()
            .filter(|r| r.repo == repo.to_lowercase() && r.comment_id == comment_id)
            .map(|r| r.json["content"].as_str().unwrap().to_owned())
            .collect()
    }

    /// An OAuth app people may log in through (GitHub's web flow).
    pub fn oauth_app(&self, client_id: &str, client_secret: &str) {
        self.model()
            .oauth_apps
            .insert(client_id.to_owned(), client_secret.to_owned());
    }

    /// The person signed in to the fake's web pages: its authorize page
    /// approves as them at once.
    pub fn sign_in_as(&self, login: &str, name: &str) {
        self.model().signed_in = Some((login.to_owned(), name.to_owned()));
    }

    /// The next authorization is declined (`error=access_denied`).
    pub fn deny_next_authorization(&self) {
        self.model().deny_next = true;
    }

    /// A user token for `login`, as a finished web flow would give.
    pub fn user_token(&self, login: &str, name: &str) -> String {
        let mut model = self.model();
        let token = format!("gho_{}", model.user_tokens.len() + 1000);
        model
            .user_tokens
            .insert(token.clone(), (login.to_owned(), name.to_owned()));
        token
    }

    /// Codes traded for tokens so far.
    pub fn oauth_exchanges(&self) -> usize {
        self.model().oauth_exchanges
    }

    /// Every answer comes `latency` late.
    pub fn set_latency(&self, latency: Duration) {
        self.model().latency = latency;
    }

    pub fn fail_next(&self, failure: Failure) {
        self.model().failures.push(failure);
    }

    /// What hoist sent for each deployment it created, oldest first.
    pub fn deployment_requests(&self, repo: &str) -> Vec<Value> {
        self.model()
            .deployments
            .iter()
            .filter(|d| d.repo == repo.to_lowercase())
            .map(|d| d.request.clone())
            .collect()
    }

    /// The ids of a repository's deployments, oldest first.
    pub fn deployment_ids(&self, repo: &str) -> Vec<i64> {
        self.model()
            .deployments
            .iter()
            .filter(|d| d.repo == repo.to_lowercase())
            .filter_map(|d| d.json["id"].as_i64())
            .collect()
    }

    /// Replaces a deployment's payload (as if another client made it).
    pub fn set_payload(&self, id: i64, payload: Value) {
        let mut model = self.model();
        let deployment = model
            .deployments
            .iter_mut()
            .find(|d| d.json["id"] == id)
            .expect("a deployment of the fake");
        deployment.json["payload"] = payload;
    }

    /// A deployment as GitHub shows it (and sends it in webhooks).
    pub fn deployment_json(&self, id: i64) -> Value {
        self.model()
            .deployments
            .iter()
            .find(|d| d.json["id"] == id)
            .map(|d| d.json.clone())
            .unwrap_or(Value::Null)
    }

    /// The repository (`owner/name`, lower case) a deployment belongs to.
    pub fn deployment_repo(&self, id: i64) -> Option<String> {
        self.model()
            .deployments
            .iter()
            .find(|d| d.json["id"] == id)
            .map(|d| d.repo.clone())
    }

    /// A status posted by something else (CI, a runner) without a webhook
    /// reaching hoist.
    pub fn add_status(&self, id: i64, state: &str, description: &str) {
        self.add_status_at(id, state, description, jiff::Timestamp::now());
    }

    /// Like [`FakeGitHub::add_status`], posted at `at`.
    pub fn add_status_at(&self, id: i64, state: &str, description: &str, at: jiff::Timestamp) {
        let fixture: Value = serde_json::from_str(STATUS_FIXTURE).unwrap();
        let mut model = self.model();
        let deployment = model
            .deployments
            .iter_mut()
            .find(|d| d.json["id"] == id)
            .expect("a deployment of the fake");
        let mut status = fixture["deployment_status"].clone();
        status["id"] = json!(deployment.statuses.len() + 1);
        status["state"] = json!(state);
        status["description"] = json!(description);
        status["created_at"] = json!(at.to_string());
        status["updated_at"] = json!(at.to_string());
        deployment.statuses.push(status);
    }

    /// Moves a deployment's creation time (as if it were made at `at`).
    pub fn set_created_at(&self, id: i64, at: jiff::Timestamp) {
        let mut model = self.model();
        let deployment = model
            .deployments
            .iter_mut()
            .find(|d| d.json["id"] == id)
            .expect("a deployment of the fake");
        deployment.json["created_at"] = json!(at.to_string());
        deployment.json["updated_at"] = json!(at.to_string());
    }

    /// The statuses posted to a deployment, oldest first.
    pub fn statuses(&self, id: i64) -> Vec<Value> {
        self.model()
            .deployments
            .iter()
            .find(|d| d.json["id"] == id)
            .map(|d| d.statuses.clone())
            .unwrap_or_default()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.model().seen.clone()
    }

    /// Requests whose path starts with `prefix` (and method matches).
    pub fn count(&self, method: Method, prefix: &str) -> usize {
        self.model()
            .seen
            .iter()
            .filter(|s| s.method == method && s.path.starts_with(prefix))
            .count()
    }

    pub fn installation_tokens_issued(&self) -> usize {
        self.model().installation_tokens.len()
    }

    /// Serves the git repository at `source` as `repo` over git's smart
    /// HTTP (`/owner/name.git/...`, as github.com does), to callers that
    /// present a token the way git does: Basic `x-access-token:<token>`.
    pub fn serve_git(&self, repo: &str, source: &std::path::Path) {
        let mut model = self.model();
        let root = model
            .git_root
            .get_or_insert_with(|| tempfile::tempdir().unwrap())
            .path()
            .to_path_buf();
        let bare = root.join(format!("{repo}.git"));
        let _ = std::fs::remove_dir_all(&bare);
        let git = |args: &[&std::ffi::OsStr]| {
            let status = std::process::Command::new("git")
                .args(args)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        git(&[
            "clone".as_ref(),
            "--quiet".as_ref(),
            "--bare".as_ref(),
            source.as_os_str(),
            bare.as_os_str(),
        ]);
        // GitHub serves any reachable commit by id; git's default is not to.
        git(&[
            "-C".as_ref(),
            bare.as_os_str(),
            "config".as_ref(),
            "uploadpack.allowAnySHA1InWant".as_ref(),
            "true".as_ref(),
        ]);
    }

    /// Git requests answered (each fetch makes two), and refused (401).
    pub fn git_requests(&self) -> (usize, usize) {
        let model = self.model();
        (model.git_requests, model.git_refused)
    }

    /// A deployment made by something other than hoist (GitHub Actions,
    /// a person with the API), for the runner to pick up from its
    /// `deployment` webhook. Returns the deployment as GitHub shows it.
    pub fn add_deployment(
        &self,
        repo: &str,
        git_ref: &str,
        environment: &str,
        payload: Value,
    ) -> Value {
        let body = json!({
            "ref": git_ref,
            "environment": environment,
            "payload": payload,
            "auto_merge": false,
            "required_contexts": [],
        });
        let mut model = self.model();
        let response = create_deployment(&mut model, repo, body.to_string().as_bytes());
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "the fake made the deployment"
        );
        let created = model.deployments.last().unwrap();
        let mut json = created.json.clone();
        json["creator"]["login"] = json!("octocat");
        json
    }
}

/// Git's smart HTTP through `git http-backend`, git's own CGI server, for
/// the repositories of [`FakeGitHub::serve_git`].
async fn git_http(
    model: &Arc<Mutex<Model>>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let (root, allowed) = {
        let model = model.lock().unwrap();
        let Some(root) = model.git_root.as_ref().map(|dir| dir.path().to_path_buf()) else {
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        let mut allowed = model.installation_tokens.clone();
        allowed.push(TOKEN.to_owned());
        (root, allowed)
    };
    let presented = header_str(headers, header::AUTHORIZATION)
        .and_then(|value| value.strip_prefix("Basic ").map(str::to_owned))
        .and_then(|encoded| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let authorized = presented.as_deref().is_some_and(|credential| {
        allowed
            .iter()
            .any(|token| credential == format!("x-access-token:{token}"))
    });
    if !authorized {
        model.lock().unwrap().git_refused += 1;
        let mut refused = message(StatusCode::UNAUTHORIZED, "Invalid username or token.");
        refused.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"GitHub\"".parse().unwrap(),
        );
        return refused;
    }
    model.lock().unwrap().git_requests += 1;
    let mut cgi = tokio::process::Command::new("git");
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("REQUEST_METHOD", method.as_str())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    for (name, variable) in [
        (header::CONTENT_TYPE, "CONTENT_TYPE"),
        (header::CONTENT_ENCODING, "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(value) = header_str(headers, name) {
            cgi.env(variable, value);
        }
    }
    if let Some(protocol) = headers.get("git-protocol").and_then(|v| v.to_str().ok()) {
        cgi.env("GIT_PROTOCOL", protocol);
    }
    let mut child = cgi.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await.unwrap();
    writer.await.unwrap();
    // CGI: headers, a blank line, the body.
    let split = output
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| {
            output
                .stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|at| (at, 2))
        })
        .expect("a CGI answer");
    let (head, rest) = output.stdout.split_at(split.0);
    let mut response = Response::new(axum::body::Body::from(rest[split.1..].to_vec()));
    for line in String::from_utf8_lossy(head).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code: u16 = value.split(' ').next().unwrap().parse().unwrap();
            *response.status_mut() = StatusCode::from_u16(code).unwrap();
        } else {
            response.headers_mut().insert(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
    }
    response
}

async fn handle(
    State(model): State<Arc<Mutex<Model>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path().contains(".git/") {
        return git_http(&model, &method, &uri, &headers, body).await;
    }
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let (response, delay) = {
        let mut model = model.lock().unwrap();
        let scripted = model
            .failures
            .iter()
            .position(|f| f.method == method && path.starts_with(&f.path_prefix))
            .map(|at| model.failures.remove(at));
        let (response, delay) = match scripted {
            Some(failure) => (scripted_answer(&failure), failure.delay),
            None => (
                answer(&mut model, &method, &uri, &headers, &body),
                model.latency,
            ),
        };
        model.seen.push(Seen {
            method: method.clone(),
            path,
            if_none_match: header_str(&headers, header::IF_NONE_MATCH),
            body: serde_json::from_slice(&body).ok(),
            status: response.status().as_u16(),
            at: std::time::Instant::now(),
        });
        (response, delay)
    };
    tokio::time::sleep(delay).await;
    response
}

fn scripted_answer(failure: &Failure) -> Response {
    let mut response = (failure.status, failure.body.clone()).into_response();
    for (name, value) in &failure.headers {
        response.headers_mut().insert(
            header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn message(status: StatusCode, text: &str) -> Response {
    json_answer(
        status,
        json!({"message": text, "documentation_url": "https://docs.github.com/rest", "status": status.as_str()}),
    )
}

fn query(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(k), decode(v))
        })
        .collect()
}

/// An ETag for a body, and 304 when the client already has it.
fn with_etag(headers: &HeaderMap, content: &str, response: impl FnOnce() -> Response) -> Response {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    content.hash(&mut hasher);
    let etag = format!("\"{:016x}\"", hasher.finish());
    if header_str(headers, header::IF_NONE_MATCH).as_deref() == Some(etag.as_str()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let mut response = response();
    response
        .headers_mut()
        .insert(header::ETAG, etag.parse().unwrap());
    response
}

enum Caller {
    Token,
    App,
    /// A person's OAuth token: their login.
    User(String),
    Nobody,
}

fn caller(model: &Model, headers: &HeaderMap) -> Caller {
    let Some(value) = header_str(headers, header::AUTHORIZATION) else {
        return Caller::Nobody;
    };
    let credential = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "))
        .unwrap_or("");
    if credential == TOKEN || model.installation_tokens.iter().any(|t| t == credential) {
        return Caller::Token;
    }
    if let Some((login, _)) = model.user_tokens.get(credential) {
        return Caller::User(login.clone());
    }
    // A GitHub App JWT: three parts, issued by our app id.
    let parts: Vec<&str> = credential.split('.').collect();
    if parts.len() == 3 {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        if let Some(claims) = claims
            && (claims["iss"] == json!(APP_ID) || claims["iss"] == json!(APP_ID.to_string()))
        {
            return Caller::App;
        }
    }
    Caller::Nobody
}

fn answer(
    model: &mut Model,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let who = caller(model, headers);
    if let ["login", "oauth", step] = segments.as_slice() {
        return oauth(model, method, step, uri, body);
    }
    if let Caller::User(login) = &who {
        return user_answer(model, method, &segments, login);
    }
    match (&who, method, segments.as_slice()) {
        (Caller::App, &Method::POST, ["app", "installations", id, "access_tokens"]) => {
            if *id != INSTALLATION_ID.to_string() {
                return message(StatusCode::NOT_FOUND, "Not Found");
            }
            let token = format!("ghs_installation{}", model.installation_tokens.len() + 1);
            model.installation_tokens.push(token.clone());
            let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
            json_answer(
                StatusCode::CREATED,
                json!({"token": token, "expires_at": expires.to_string(), "permissions": {"deployments": "write", "contents": "read", "statuses": "read"}, "repository_selection": "all"}),
            )
        }
        (Caller::App, &Method::GET, ["repos", owner, name, "installation"]) => {
            if !model
                .repos
                .contains_key(&format!("{owner}/{name}").to_lowercase())
            {
                return message(StatusCode::NOT_FOUND, "Not Found");
            }
            json_answer(
                StatusCode::OK,
                json!({"id": INSTALLATION_ID, "app_id": APP_ID, "target_type": "Organization"}),
            )
        }
        (Caller::App, &Method::GET, ["orgs", org, "installation"]) => {
            let prefix = format!("{}/", org.to_lowercase());
            let known = model.repos.keys().any(|repo| repo.starts_with(&prefix))
                || model.teams.keys().any(|team| team.starts_with(&prefix));
            if !known {
                return message(StatusCode::NOT_FOUND, "Not Found");
            }
            json_answer(
                StatusCode::OK,
                json!({"id": INSTALLATION_ID, "app_id": APP_ID, "target_type": "Organization", "account": {"login": org, "type": "Organization"}}),
            )
        }
        (Caller::Token, &Method::GET, ["orgs", org, "teams", slug, "memberships", login]) => {
            let team = format!("{org}/{slug}").to_lowercase();
            let Some(state) = model
                .teams
                .get(&team)
                .and_then(|members| members.get(&login.to_lowercase()))
            else {
                return message(StatusCode::NOT_FOUND, "Not Found");
            };
            let body = json!({"url": format!("https://api.github.com/teams/1/memberships/{login}"),
                              "role": "member", "state": state});
            with_etag(headers, &body.to_string(), || {
                json_answer(StatusCode::OK, body.clone())
            })
        }
        (Caller::Token, _, ["repos", owner, name, rest @ ..]) => {
            let full = format!("{owner}/{name}").to_lowercase();
            if !model.repos.contains_key(&full) {
                return message(StatusCode::NOT_FOUND, "Not Found");
            }
            repo_answer(model, &full, method, uri, headers, body, rest)
        }
        _ => message(StatusCode::UNAUTHORIZED, "Bad credentials"),
    }
}

fn resolve(repo: &Repo, git_ref: &str) -> Option<String> {
    if let Some(sha) = repo
        .branches
        .get(git_ref)
        .or_else(|| repo.tags.get(git_ref))
    {
        return Some(sha.clone());
    }
    let known = repo
        .branches
        .values()
        .chain(repo.tags.values())
        .any(|sha| sha == git_ref);
    (known && git_ref.len() == 40).then(|| git_ref.to_owned())
}

fn repo_answer(
    model: &mut Model,
    full: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    rest: &[&str],
) -> Response {
    let repo = &model.repos[full];
    let accept = header_str(headers, header::ACCEPT).unwrap_or_default();
    match (method, rest) {
        (&Method::GET, []) => {
            let (owner, name) = full.split_once('/').unwrap();
            let body = json!({"id": REPO_ID, "name": name, "full_name": full, "owner": {"login": owner}, "private": false, "default_branch": repo.default_branch});
            with_etag(headers, &body.to_string(), || {
                json_answer(StatusCode::OK, body.clone())
            })
        }
        (&Method::GET, ["contents", path @ ..]) => {
            let branch = query(uri)
                .get("ref")
                .cloned()
                .unwrap_or_else(|| repo.default_branch.clone());
            match repo.files.get(&(branch, path.join("/"))) {
                Some(text) if accept.contains("raw") => with_etag(headers, text, || {
                    (StatusCode::OK, text.clone()).into_response()
                }),
                Some(_) => message(
                    StatusCode::NOT_ACCEPTABLE,
                    "the fake serves file contents raw only",
                ),
                None => message(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        (&Method::GET, ["commits", tail @ ..]) => commits_answer(repo, &accept, tail),
        (&Method::GET, ["compare", spec]) => match spec.split_once("...") {
            Some((base, head)) if base == repo.default_branch => {
                let behind = repo.behind.get(head).copied().unwrap_or(0);
                let status = if behind > 0 { "behind" } else { "identical" };
                json_answer(
                    StatusCode::OK,
                    json!({"status": status, "ahead_by": 0, "behind_by": behind, "total_commits": 0}),
                )
            }
            _ => message(StatusCode::NOT_FOUND, "Not Found"),
        },
        (&Method::GET, ["deployments"]) => {
            let q = query(uri);
            let per_page: usize = q.get("per_page").and_then(|n| n.parse().ok()).unwrap_or(30);
            let list: Vec<Value> = model
                .deployments
                .iter()
                .rev()
                .filter(|d| d.repo == full)
                .filter(|d| {
                    ["ref", "sha", "environment", "task"]
                        .iter()
                        .all(|key| q.get(*key).is_none_or(|v| d.json[*key] == json!(v)))
                })
                .take(per_page)
                .map(|d| d.json.clone())
                .collect();
            json_answer(StatusCode::OK, Value::Array(list))
        }
        (&Method::POST, ["deployments"]) => create_deployment(model, full, body),
        (&Method::GET, ["deployments", id, "statuses"]) => {
            let per_page: usize = query(uri)
                .get("per_page")
                .and_then(|n| n.parse().ok())
                .unwrap_or(30);
            match model
                .deployments
                .iter()
                .find(|d| d.repo == full && id.parse::<i64>().is_ok_and(|id| d.json["id"] == id))
            {
                Some(d) => {
                    let list =
                        Value::Array(d.statuses.iter().rev().take(per_page).cloned().collect());
                    with_etag(headers, &list.to_string(), || {
                        json_answer(StatusCode::OK, list.clone())
                    })
                }
                None => message(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        (&Method::POST, ["deployments", id, "statuses"]) => create_status(model, full, id, body),
        (&Method::GET, ["pulls", number]) => {
            match number
                .parse()
                .ok()
                .and_then(|n| Some((n, repo.pulls.get(&n)?)))
            {
                Some((number, pull)) => {
                    json_answer(StatusCode::OK, pull_json(repo, full, number, pull))
                }
                None => message(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        (&Method::GET, ["collaborators", login, "permission"]) => {
            let role = repo
                .roles
                .get(&login.to_lowercase())
                .map_or("none", String::as_str);
            json_answer(
                StatusCode::OK,
                json!({"permission": folded_permission(role), "role_name": role, "user": {"login": login, "type": "User"}}),
            )
        }
        (&Method::POST, ["issues", number, "comments"]) => match number.parse() {
            Ok(number) => create_comment(model, full, number, body),
            Err(_) => message(StatusCode::NOT_FOUND, "Not Found"),
        },
        (&Method::PATCH, ["issues", "comments", id]) => update_comment(model, full, id, body),
        (&Method::POST, ["issues", "comments", id, "reactions"]) => match id.parse() {
            Ok(id) => add_reaction(model, full, id, body),
            Err(_) => message(StatusCode::NOT_FOUND, "Not Found"),
        },
        _ => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// GitHub's `permission` field knows only admin, write, read and none: it
/// folds maintain into write and triage into read (`role_name` keeps the
/// role).
/// GitHub's OAuth web flow: the authorize page (approving as whoever is
/// signed in) and the code's exchange for a token, with GitHub's errors.
fn oauth(model: &mut Model, method: &Method, step: &str, uri: &Uri, body: &[u8]) -> Response {
    match (method, step) {
        (&Method::GET, "authorize") => {
            let asked = query(uri);
            let field = |name: &str| asked.get(name).cloned().unwrap_or_default();
            let client_id = field("client_id");
            if !model.oauth_apps.contains_key(&client_id) {
                return (
                    StatusCode::NOT_FOUND,
                    axum::response::Html("<h1>404: no such OAuth app</h1>"),
                )
                    .into_response();
            }
            let Some((login, name)) = model.signed_in.clone() else {
                return axum::response::Html(
                    "<h1>Sign in to GitHub</h1><p>Nobody is signed in.</p>",
                )
                .into_response();
            };
            let redirect_uri = field("redirect_uri");
            let state = field("state");
            let back = match std::mem::take(&mut model.deny_next) {
                true => serde_urlencoded::to_string([
                    ("error", "access_denied"),
                    ("error_description", "The user has denied your application access."),
                    ("error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied"),
                    ("state", state.as_str()),
                ]),
                false => {
                    let code = format!("code{}", uuid::Uuid::new_v4().simple());
                    model.oauth_codes.insert(
                        code.clone(),
                        OAuthCode {
                            client_id,
                            redirect_uri: redirect_uri.clone(),
                            login,
                            name,
                            scope: field("scope"),
                            expires: std::time::Instant::now() + Duration::from_secs(600),
                        },
                    );
                    serde_urlencoded::to_string([("code", code.as_str()), ("state", state.as_str())])
                }
            }
            .unwrap();
            (
                StatusCode::FOUND,
                [(header::LOCATION, format!("{redirect_uri}?{back}"))],
            )
                .into_response()
        }
        (&Method::POST, "access_token") => {
            let form: HashMap<String, String> = serde_urlencoded::from_bytes(body)
                .ok()
                .or_else(|| serde_json::from_slice(body).ok())
                .unwrap_or_default();
            let field = |name: &str| form.get(name).cloned().unwrap_or_default();
            let error = |error: &str, description: &str| {
                json_answer(
                    StatusCode::OK,
                    json!({"error": error, "error_description": description,
                           "error_uri": format!("https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#{}", error.replace('_', "-"))}),
                )
            };
            let client_id = field("client_id");
            if model.oauth_apps.get(&client_id) != Some(&field("client_secret")) {
                return error(
                    "incorrect_client_credentials",
                    "The client_id and/or client_secret passed are incorrect.",
                );
            }
            let code = model.oauth_codes.remove(&field("code"));
            let Some(code) = code.filter(|code| {
                code.client_id == client_id && code.expires > std::time::Instant::now()
            }) else {
                return error(
                    "bad_verification_code",
                    "The code passed is incorrect or expired.",
                );
            };
            if code.redirect_uri != field("redirect_uri") {
                return error(
                    "redirect_uri_mismatch",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                );
            }
            let token = format!("gho_{}", uuid::Uuid::new_v4().simple());
            model
                .user_tokens
                .insert(token.clone(), (code.login, code.name));
            model.oauth_exchanges += 1;
            json_answer(
                StatusCode::OK,
                json!({"access_token": token, "token_type": "bearer", "scope": code.scope}),
            )
        }
        _ => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// What a person's token may ask: who they are, and a repository with
/// their permissions (404 where they have none: the fake's repositories
/// are private).
fn user_answer(model: &Model, method: &Method, segments: &[&str], login: &str) -> Response {
    match (method, segments) {
        (&Method::GET, ["user"]) => {
            // The user object of GitHub's published `deployment` event
            // (its `sender`), with this person's login and name.
            let mut user: Value =
                serde_json::from_str::<Value>(DEPLOYMENT_FIXTURE).unwrap()["sender"].clone();
            let name = model
                .user_tokens
                .values()
                .find(|(l, _)| l == login)
                .map(|(_, n)| n.clone());
            user["login"] = json!(login);
            user["name"] = json!(name);
            json_answer(StatusCode::OK, user)
        }
        (&Method::GET, ["repos", owner, name]) => {
            let full = format!("{owner}/{name}").to_lowercase();
            let role = model
                .repos
                .get(&full)
                .and_then(|repo| repo.roles.get(&login.to_lowercase()))
                .map(String::as_str)
                .unwrap_or("none");
            let rank = ["none", "read", "triage", "write", "maintain", "admin"]
                .iter()
                .position(|r| *r == role)
                .unwrap_or(0);
            if rank == 0 {
                return message(StatusCode::NOT_FOUND, "Not Found");
            }
            let repo = &model.repos[&full];
            json_answer(
                StatusCode::OK,
                json!({"id": REPO_ID, "name": name, "full_name": full, "owner": {"login": owner},
                       "private": true, "default_branch": repo.default_branch,
                       "permissions": {"admin": rank >= 5, "maintain": rank >= 4, "push": rank >= 3,
                                       "triage": rank >= 2, "pull": rank >= 1}}),
            )
        }
        _ => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn folded_permission(role: &str) -> Option<&'static str> {
    match role {
        "admin" => Some("admin"),
        "maintain" | "write" => Some("write"),
        "triage" | "read" => Some("read"),
        "none" => Some("none"),
        _ => None,
    }
}

/// A repository as a pull request's `head.repo` or `base.repo` shows it.
fn repo_json(full: &str, fork: bool) -> Value {
    let (owner, name) = full.split_once('/').unwrap();
    json!({"id": if fork { REPO_ID + 1 } else { REPO_ID }, "name": name, "full_name": full,
           "private": false, "fork": fork, "owner": {"login": owner, "type": "User"},
           "html_url": format!("https://github.com/{full}"), "url": format!("https://api.github.com/repos/{full}")})
}

fn pull_json(repo: &Repo, full: &str, number: u64, pull: &Pull) -> Value {
    let (owner, _) = full.split_once('/').unwrap();
    let (head_owner, _) = pull.head_repo.split_once('/').unwrap();
    let fork = !pull.head_repo.eq_ignore_ascii_case(full);
    let url = format!("https://api.github.com/repos/{full}/pulls/{number}");
    let html_url = format!("https://github.com/{full}/pull/{number}");
    json!({
        "url": url,
        "id": 1_000_000 + number,
        "node_id": format!("PR_fake{number}"),
        "html_url": html_url,
        "diff_url": format!("{html_url}.diff"),
        "patch_url": format!("{html_url}.patch"),
        "issue_url": format!("https://api.github.com/repos/{full}/issues/{number}"),
        "number": number,
        "state": if pull.closed_at.is_some() { "closed" } else { "open" },
        "locked": false,
        "title": format!("Change {}", pull.head_ref),
        "user": {"login": head_owner, "type": "User"},
        "body": null,
        "closed_at": pull.closed_at,
        "merged_at": pull.closed_at.as_ref().filter(|_| pull.merged),
        "head": {
            "label": format!("{head_owner}:{}", pull.head_ref),
            "ref": pull.head_ref,
            "sha": pull.head_sha,
            "user": {"login": head_owner, "type": "User"},
            "repo": repo_json(&pull.head_repo, fork),
        },
        "base": {
            "label": format!("{owner}:{}", repo.default_branch),
            "ref": repo.default_branch,
            "sha": repo.branches.get(&repo.default_branch),
            "user": {"login": owner, "type": "User"},
            "repo": repo_json(full, false),
        },
        "draft": false,
        "merged": pull.merged,
    })
}

/// The `body` of a comment request, or GitHub's answer to a bad one.
fn comment_body(body: &[u8]) -> Result<String, Box<Response>> {
    let request = serde_json::from_slice::<Value>(body)
        .map_err(|_| Box::new(message(StatusCode::BAD_REQUEST, "Problems parsing JSON")))?;
    match request["body"].as_str() {
        Some(text) if !text.is_empty() => Ok(text.to_owned()),
        _ => Err(Box::new(json_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Validation Failed", "errors": [{"resource": "IssueComment", "code": "missing_field", "field": "body"}],
                   "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment", "status": "422"}),
        ))),
    }
}

fn create_comment(model: &mut Model, full: &str, number: u64, body: &[u8]) -> Response {
    let text = match comment_body(body) {
        Ok(text) => text,
        Err(response) => return *response,
    };
    let id = FIRST_COMMENT_ID + model.comments.len() as u64;
    let now = jiff::Timestamp::now().to_string();
    let json = json!({
        "id": id,
        "node_id": format!("IC_fake{id}"),
        "url": format!("https://api.github.com/repos/{full}/issues/comments/{id}"),
        "html_url": format!("https://github.com/{full}/pull/{number}#issuecomment-{id}"),
        "issue_url": format!("https://api.github.com/repos/{full}/issues/{number}"),
        "body": text,
        "user": {"login": BOT_LOGIN, "type": "Bot"},
        "created_at": now,
        "updated_at": now,
    });
    model.comments.push(StoredComment {
        repo: full.to_owned(),
        number,
        json: json.clone(),
        edits: 0,
    });
    json_answer(StatusCode::CREATED, json)
}

fn update_comment(model: &mut Model, full: &str, id: &str, body: &[u8]) -> Response {
    let Some(comment) = model
        .comments
        .iter_mut()
        .find(|c| c.repo == full && id.parse::<u64>().is_ok_and(|id| c.json["id"] == id))
    else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let text = match comment_body(body) {
        Ok(text) => text,
        Err(response) => return *response,
    };
    comment.json["body"] = json!(text);
    comment.json["updated_at"] = json!(jiff::Timestamp::now().to_string());
    comment.edits += 1;
    json_answer(StatusCode::OK, comment.json.clone())
}

/// Any comment id is accepted: hoist reacts to the commands people type,
/// which reach it in webhooks, not through the fake.
fn add_reaction(model: &mut Model, full: &str, comment_id: u64, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return message(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(content) = request["content"]
        .as_str()
        .filter(|c| REACTIONS.contains(c))
    else {
        return json_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Validation Failed", "errors": [{"resource": "Reaction", "code": "invalid", "field": "content"}],
                   "documentation_url": "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment", "status": "422"}),
        );
    };
    // GitHub answers 200, not 201, when this user already reacted so.
    if let Some(existing) = model
        .reactions
        .iter()
        .find(|r| r.repo == full && r.comment_id == comment_id && r.json["content"] == content)
    {
        return json_answer(StatusCode::OK, existing.json.clone());
    }
    let id = model.reactions.len() + 1;
    let json = json!({
        "id": id,
        "node_id": format!("REA_fake{id}"),
        "user": {"login": BOT_LOGIN, "type": "Bot"},
        "content": content,
        "created_at": jiff::Timestamp::now().to_string(),
    });
    model.reactions.push(StoredReaction {
        repo: full.to_owned(),
        comment_id,
        json: json.clone(),
    });
    json_answer(StatusCode::CREATED, json)
}

fn commits_answer(repo: &Repo, accept: &str, tail: &[&str]) -> Response {
    let (git_ref, what) = match tail {
        [head @ .., "status"] if !head.is_empty() => (head.join("/"), "status"),
        [head @ .., "check-runs"] if !head.is_empty() => (head.join("/"), "check-runs"),
        all => (all.join("/"), "commit"),
    };
    let Some(sha) = resolve(repo, &git_ref) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("No commit found for SHA: {git_ref}"),
        );
    };
    match what {
        "status" => {
            let statuses: Vec<Value> = repo
                .statuses
                .get(&sha)
                .into_iter()
                .flatten()
                // CI links each status to its build.
                .map(|(context, state)| json!({"context": context, "state": state, "description": null, "target_url": format!("https://ci.example.com/{sha}/{context}")}))
                .collect();
            json_answer(
                StatusCode::OK,
                json!({"state": "pending", "sha": sha, "total_count": statuses.len(), "statuses": statuses}),
            )
        }
        "check-runs" => {
            let runs: Vec<Value> = repo
                .check_runs
                .get(&sha)
                .into_iter()
                .flatten()
                .map(|(name, status, conclusion)| json!({"name": name, "status": status, "conclusion": conclusion, "head_sha": sha, "details_url": null, "html_url": format!("https://github.com/runs/{name}")}))
                .collect();
            json_answer(
                StatusCode::OK,
                json!({"total_count": runs.len(), "check_runs": runs}),
            )
        }
        _ if accept.contains("sha") => (StatusCode::OK, sha).into_response(),
        _ => json_answer(StatusCode::OK, json!({"sha": sha})),
    }
}

fn create_deployment(model: &mut Model, full: &str, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return message(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(git_ref) = request["ref"].as_str() else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid request.\n\n\"ref\" wasn't supplied.",
        );
    };
    let repo = model.repos.get_mut(full).unwrap();
    let Some(sha) = resolve(repo, git_ref) else {
        return message(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("No ref found for: {git_ref}"),
        );
    };
    let auto_merge = request["auto_merge"].as_bool().unwrap_or(true);
    if auto_merge && repo.needs_merge.remove(git_ref) {
        let message_text = format!(
            "Auto-merged {} into {git_ref} on deployment.",
            repo.default_branch
        );
        return json_answer(StatusCode::ACCEPTED, json!({"message": message_text}));
    }
    let mut contexts: Vec<(String, String)> = repo.statuses.get(&sha).cloned().unwrap_or_default();
    for (name, status, conclusion) in repo.check_runs.get(&sha).into_iter().flatten() {
        let state = match (status.as_str(), conclusion.as_deref()) {
            ("completed", Some("success" | "neutral" | "skipped")) => "success",
            ("completed", _) => "failure",
            _ => "pending",
        };
        contexts.push((name.clone(), state.to_owned()));
    }
    let required: Vec<(String, String)> = match request.get("required_contexts") {
        None => contexts,
        Some(list) => list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|name| {
                let state = contexts
                    .iter()
                    .find(|(c, _)| c == name)
                    .map_or("pending", |(_, s)| s.as_str());
                (name.to_owned(), state.to_owned())
            })
            .collect(),
    };
    if required.iter().any(|(_, state)| state != "success") {
        let listed: Vec<Value> = required
            .iter()
            .map(|(c, s)| json!({"context": c, "state": s}))
            .collect();
        return json_answer(
            StatusCode::CONFLICT,
            json!({"message": format!("Conflict: Commit status checks failed for {git_ref}."),
                   "errors": [{"contexts": listed, "resource": "Deployment", "field": "required_contexts", "code": "invalid"}],
                   "documentation_url": "https://docs.github.com/rest/deployments/deployments#create-a-deployment"}),
        );
    }
    model.next_id += 1;
    let id = model.next_id;
    let fixture: Value = serde_json::from_str(DEPLOYMENT_FIXTURE).unwrap();
    let mut json = fixture["deployment"].clone();
    let now = jiff::Timestamp::now().to_string();
    let url = format!("https://api.github.com/repos/{full}/deployments/{id}");
    let environment = request["environment"].as_str().unwrap_or("production");
    for (key, value) in [
        ("url", json!(url)),
        ("id", json!(id)),
        ("sha", json!(sha)),
        ("ref", json!(git_ref)),
        ("task", json!(request["task"].as_str().unwrap_or("deploy"))),
        (
            "payload",
            request.get("payload").cloned().unwrap_or(json!({})),
        ),
        ("original_environment", json!(environment)),
        ("environment", json!(environment)),
        (
            "description",
            request.get("description").cloned().unwrap_or(Value::Null),
        ),
        ("created_at", json!(now)),
        ("updated_at", json!(now)),
        ("statuses_url", json!(format!("{url}/statuses"))),
        (
            "transient_environment",
            json!(request["transient_environment"].as_bool().unwrap_or(false)),
        ),
        (
            "production_environment",
            json!(
                request["production_environment"]
                    .as_bool()
                    .unwrap_or(environment == "production")
            ),
        ),
    ] {
        json[key] = value;
    }
    json["creator"]["login"] = json!("hoist-bot");
    model.deployments.push(StoredDeployment {
        repo: full.to_owned(),
        json: json.clone(),
        request,
        statuses: Vec::new(),
    });
    json_answer(StatusCode::CREATED, json)
}

fn create_status(model: &mut Model, full: &str, id: &str, body: &[u8]) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return message(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let Some(deployment) = model
        .deployments
        .iter_mut()
        .find(|d| d.repo == full && id.parse::<i64>().is_ok_and(|id| d.json["id"] == id))
    else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let states = [
        "error",
        "failure",
        "inactive",
        "in_progress",
        "queued",
        "pending",
        "success",
    ];
    let Some(state) = request["state"].as_str().filter(|s| states.contains(s)) else {
        return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed");
    };
    if request["description"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 140)
    {
        return json_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Validation Failed", "errors": [{"resource": "DeploymentStatus", "code": "custom", "field": "description", "message": "description is too long (maximum is 140 characters)"}]}),
        );
    }
    let fixture: Value = serde_json::from_str(STATUS_FIXTURE).unwrap();
    let mut status = fixture["deployment_status"].clone();
    status["id"] = json!(deployment.statuses.len() + 1);
    status["state"] = json!(state);
    status["description"] = request.get("description").cloned().unwrap_or(Value::Null);
    status["log_url"] = request.get("log_url").cloned().unwrap_or(Value::Null);
    status["target_url"] = request.get("log_url").cloned().unwrap_or(Value::Null);
    status["environment_url"] = request
        .get("environment_url")
        .cloned()
        .unwrap_or(Value::Null);
    // Posted now, as GitHub stamps it (not the fixture's 2019 time).
    let now = jiff::Timestamp::now().to_string();
    status["created_at"] = json!(now);
    status["updated_at"] = json!(now);
    deployment.statuses.push(status.clone());
    json_answer(StatusCode::CREATED, status)
}
