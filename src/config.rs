//! hoist.toml: the operator's configuration, layered from the file and
//! `HOIST_<SECTION>__<KEY>` environment variables (figment).
//!
//! Every field is documented in `config/hoist.toml`, which a test loads so
//! the two cannot drift apart. Unknown keys are errors: a misspelled key
//! that silently does nothing is worse than a refusal to start.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::{AppName, Platform, RepoName};

/// Environment aliases used when `[aliases]` is absent (hubot-deploy's).
const DEFAULT_ALIASES: [(&str, &str); 2] = [("prod", "production"), ("stg", "staging")];

/// The environment a command without `to env` deploys to, when the app
/// names no `default_environment` (hubot-deploy's default).
pub const FALLBACK_ENVIRONMENT: &str = "production";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub forge: ForgeConfig,
    #[serde(default)]
    pub github: GitHubConfig,
    #[serde(default)]
    pub slack: SlackConfig,
    #[serde(default)]
    pub discord: DiscordConfig,
    #[serde(default)]
    pub runner: RunnerConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub watch: WatchConfig,
    #[serde(default)]
    pub locks: LocksConfig,
    #[serde(default)]
    pub actions: ActionsConfig,
    #[serde(default)]
    pub dashboard: DashboardConfig,
    /// Environment aliases: `prod = "production"`.
    #[serde(default = "default_aliases")]
    pub aliases: BTreeMap<String, String>,
    /// Chat name -> app.
    #[serde(default)]
    pub apps: BTreeMap<String, AppConfig>,
    /// Chat user id (Slack `U…`, Discord snowflake) -> GitHub login, so
    /// deployments and the audit log name a real person.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    pub public_url: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            public_url: "http://127.0.0.1:3000".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub url: String,
    /// Handled webhook deliveries and delivered replies are deleted this
    /// many days after they were handled (dead letters are kept).
    pub keep_handled_days: u64,
    /// How long a claimed webhook, reply or run stays with the process
    /// that claimed it: a replica that dies hands its work to another
    /// this long after (a run's lease is renewed while it runs).
    pub lease_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://hoist.db".into(),
            keep_handled_days: 14,
            lease_secs: 60,
        }
    }
}

impl StoreConfig {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_secs)
    }

    /// Whether other hoist processes may share this store (PostgreSQL):
    /// then nothing found unfinished in it at start was this process's.
    pub fn is_shared(&self) -> bool {
        crate::store::Kind::of(&self.url).is_ok_and(|kind| kind == crate::store::Kind::Postgres)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForgeKind {
    /// GitHub or GitHub Enterprise Server, through the REST API.
    Github,
    /// Git repositories on this machine; deployments live in hoist's store.
    #[default]
    Local,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForgeConfig {
    #[serde(default)]
    pub kind: ForgeKind,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitHubConfig {
    pub api_url: String,
    pub token: Option<SecretString>,
    pub app_id: Option<u64>,
    pub private_key_path: Option<PathBuf>,
    pub webhook_secret: Option<SecretString>,
    pub request_timeout_secs: u64,
    pub max_rate_limit_wait_secs: u64,
    /// Seconds a deploy.yml or default branch, once read, is used before
    /// it is checked again.
    pub rules_cache_secs: u64,
}

impl Default for GitHubConfig {
    fn default() -> Self {
        Self {
            api_url: "https://api.github.com".into(),
            token: None,
            app_id: None,
            private_key_path: None,
            webhook_secret: None,
            request_timeout_secs: 10,
            max_rate_limit_wait_secs: 30,
            rules_cache_secs: 10,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    pub api_url: String,
    pub bot_token: Option<SecretString>,
    pub signing_secret: Option<SecretString>,
}

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            api_url: "https://slack.com/api".into(),
            bot_token: None,
            signing_secret: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    /// Discord's REST API base, ending in `/api/v10` (or a fake's).
    pub api_url: String,
    pub bot_token: Option<SecretString>,
    /// The application's public key (hex), from the Developer Portal:
    /// interactions are checked against it.
    pub public_key: Option<String>,
    /// The application's id, for `hoist discord register`.
    pub application_id: Option<String>,
    /// With a bot token, keep a gateway connection for mentions
    /// (`@hoist deploy api to staging`).
    pub gateway: bool,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            api_url: "https://discord.com/api/v10".into(),
            bot_token: None,
            public_key: None,
            application_id: None,
            gateway: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// A reply still undelivered this long after it was queued is given
    /// up (a dead letter that `hoist outbox` shows and can retry).
    pub give_up_after_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            give_up_after_secs: 24 * 60 * 60,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Seconds between two rounds of polling unfinished deployments.
    pub interval_secs: u64,
    /// A deployment with no status after this many seconds is reported.
    pub silence_secs: u64,
    /// Deployments older than this are no longer watched.
    pub max_age_secs: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            interval_secs: 30,
            silence_secs: 60,
            max_age_secs: 24 * 60 * 60,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocksConfig {
    /// A lock held this long reminds its holder (and again after as
    /// long); 0: never.
    pub remind_after_secs: u64,
    /// A lock taken in a pull request is released when it closes (merged
    /// or not).
    pub release_on_close: bool,
}

impl Default for LocksConfig {
    fn default() -> Self {
        Self {
            remind_after_secs: 4 * 60 * 60,
            release_on_close: true,
        }
    }
}

/// Integration actions (deploy.yml's `actions`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionsConfig {
    /// 64 hex digits: the key that seals the secrets integrations hand to
    /// a deployment while they wait in the store for its run. Without it
    /// hoist makes a key at start that dies with the process, so a run
    /// that outlives a restart cannot read its secrets and fails saying
    /// so. Best given as `HOIST_ACTIONS__KEY`.
    pub key: Option<SecretString>,
}

/// The web dashboard (`GET /`): what is where, live logs, locks,
/// history, and actions through the same rules as chat.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    pub enabled: bool,
    /// Anyone who reaches hoist may look without logging in (acting
    /// still needs a login). With the local forge there is no login:
    /// whoever reaches hoist is its operator, so hoist must listen on a
    /// loopback address.
    pub public: bool,
    /// The GitHub OAuth app (or GitHub App) people log in through.
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    /// Where GitHub's login pages are (`/login/oauth/...`). Default: from
    /// github.api_url (`https://github.com` for api.github.com, the host
    /// for Enterprise's `/api/v3`, the URL itself otherwise).
    pub oauth_url: Option<String>,
    /// Signs session cookies (at least 32 characters). Without it hoist
    /// makes one at start: logins end with the process, and replicas do
    /// not share them.
    pub session_key: Option<SecretString>,
    /// How long a login lasts.
    pub session_hours: u64,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            public: false,
            client_id: None,
            client_secret: None,
            oauth_url: None,
            session_key: None,
            session_hours: 8,
        }
    }
}

/// The smallest session key hoist takes: 256 bits of text.
pub const MIN_SESSION_KEY_LEN: usize = 32;

impl DashboardConfig {
    /// Where GitHub's OAuth endpoints are for `api_url`.
    pub fn oauth_base(&self, api_url: &str) -> String {
        if let Some(url) = &self.oauth_url {
            return url.trim_end_matches('/').to_owned();
        }
        let api = api_url.trim_end_matches('/');
        if api == "https://api.github.com" {
            return "https://github.com".into();
        }
        api.strip_suffix("/api/v3").unwrap_or(api).to_owned()
    }

    fn validate(&self, forge: ForgeKind, listen: &str) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.session_hours == 0 {
            return Err("dashboard.session_hours: at least 1".into());
        }
        if let Some(key) = &self.session_key
            && key.expose_secret().len() < MIN_SESSION_KEY_LEN
        {
            return Err(format!(
                "dashboard.session_key: at least {MIN_SESSION_KEY_LEN} characters (`openssl rand -hex 32`)"
            ));
        }
        match forge {
            ForgeKind::Local => {
                let loopback = listen
                    .parse::<std::net::SocketAddr>()
                    .is_ok_and(|address| address.ip().is_loopback());
                if !loopback {
                    return Err(format!(
                        "dashboard.enabled with forge.kind = \"local\": the dashboard has no login there, so server.listen must be a loopback address (it is {listen})"
                    ));
                }
            }
            ForgeKind::Github => {
                if self.client_id.is_none() || self.client_secret.is_none() {
                    return Err(
                        "dashboard.client_id and dashboard.client_secret are needed for logging in with GitHub (an OAuth app's, or a GitHub App's)".into(),
                    );
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// With forge.kind = "github": run the deployments GitHub announces
    /// (`deployment` webhooks) for apps with a `deploy_command`. The
    /// local forge's deployments are always run.
    pub enabled: bool,
    /// Deployments run at once (each environment still one at a time).
    pub workers: usize,
    /// Default for apps that set no `timeout_secs`.
    pub timeout_secs: u64,
    /// Where the runner keeps a git cache per app (fetched commits);
    /// each run still gets a fresh directory of its own.
    pub work_dir: PathBuf,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            workers: 4,
            timeout_secs: 30 * 60,
            work_dir: PathBuf::from("hoist-work"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub repo: RepoName,
    pub default_environment: Option<String>,
    /// Local forge: the git repository on disk.
    pub path: Option<PathBuf>,
    /// argv of the command the runner starts; no shell is involved
    /// unless `shell` is true.
    pub deploy_command: Option<Vec<String>>,
    /// argv for `task: remove` deployments.
    pub remove_command: Option<Vec<String>>,
    /// Run `deploy_command` and `remove_command` as one `sh -c` line
    /// (their words joined by spaces), for pipes and `$VARIABLES`.
    #[serde(default)]
    pub shell: bool,
    pub timeout_secs: Option<u64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment -> the URL where the app is reached there, sent as
    /// the `environment_url` of the runner's statuses.
    #[serde(default)]
    pub environment_urls: BTreeMap<String, String>,
    /// Where deployments nobody typed (auto-deploys on push) are
    /// announced; without it they are made silently.
    pub channel: Option<Channel>,
    /// Pull requests from forks may be deployed from a comment or on
    /// `auto_deploy_on: pr`. Default false: a fork's code is not the
    /// team's, and deploying it hands it the environment's secrets.
    #[serde(default)]
    pub allow_forks: bool,
}

/// A conversation on a chat platform, written `slack:C0123456` or
/// `discord:<channel id>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Channel {
    pub platform: Platform,
    pub conversation: String,
}

impl TryFrom<String> for Channel {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let (platform, conversation) = text
            .split_once(':')
            .filter(|(_, id)| !id.is_empty() && !id.contains(char::is_whitespace))
            .ok_or_else(|| format!("`{text}` is not `slack:CHANNEL_ID` or `discord:CHANNEL_ID`"))?;
        let platform = match platform {
            "slack" => Platform::Slack,
            "discord" => Platform::Discord,
            other => {
                return Err(format!(
                    "`{other}` is not a chat platform hoist announces on (slack, discord)"
                ));
            }
        };
        Ok(Self {
            platform,
            conversation: conversation.to_owned(),
        })
    }
}

fn default_aliases() -> BTreeMap<String, String> {
    DEFAULT_ALIASES
        .iter()
        .map(|(alias, env)| (alias.to_string(), env.to_string()))
        .collect()
}

impl Config {
    /// Reads `file` (if given), then `HOIST_<SECTION>__<KEY>` variables,
    /// and checks the result. The error is one line naming the key.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!("config file {} does not exist", file.display()));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        Self::from_figment(figment.merge(env_provider()))
    }

    /// A configuration built in code (the demo), still overridable from
    /// the environment like any other.
    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        Self::from_figment(
            Figment::new()
                .merge(Toml::string(text))
                .merge(env_provider()),
        )
    }

    fn from_figment(figment: Figment) -> Result<Self, String> {
        let config: Config = figment.extract().map_err(describe_figment_error)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        for name in self.apps.keys() {
            if AppName::new(name).is_none_or(|app| app.as_str() != name) {
                return Err(format!(
                    "apps.{name}: app names are lower case letters, digits, `-`, `_` and `.`"
                ));
            }
        }
        for (alias, target) in &self.aliases {
            if alias.is_empty() || target.is_empty() {
                return Err("aliases: an alias and its environment must not be empty".into());
            }
        }
        match self.forge.kind {
            ForgeKind::Github => {
                let has_app =
                    self.github.app_id.is_some() || self.github.private_key_path.is_some();
                if has_app
                    && (self.github.app_id.is_none() || self.github.private_key_path.is_none())
                {
                    return Err(
                        "github.app_id and github.private_key_path must be set together".into(),
                    );
                }
                // A missing credential is said when hoist connects to
                // GitHub (`Hoist::build`), so that tools that never do
                // (`hoist outbox`, `hoist discord register`) need none.
            }
            ForgeKind::Local => {
                if let Some((name, _)) = self.apps.iter().find(|(_, app)| app.path.is_none()) {
                    return Err(format!(
                        "apps.{name}.path must name the app's git repository when forge.kind = \"local\""
                    ));
                }
            }
        }
        if let Some(key) = &self.discord.public_key
            && hex::decode(key.trim()).map_or(true, |bytes| bytes.len() != 32)
        {
            return Err(
                "discord.public_key: not the application's public key (64 hex digits, from the Developer Portal)".into(),
            );
        }
        if let Some((name, _)) = self.apps.iter().find(|(_, app)| {
            app.deploy_command
                .as_ref()
                .is_some_and(|argv| argv.is_empty())
        }) {
            return Err(format!("apps.{name}.deploy_command must not be empty"));
        }
        crate::store::Kind::of(&self.store.url).map_err(|e| e.to_string())?;
        if self.store.lease_secs < 3 {
            return Err(
                "store.lease_secs: at least 3 (a lease is renewed every third of it)".into(),
            );
        }
        if self.runner.workers == 0 {
            return Err("runner.workers: at least 1 is needed to run deployments".into());
        }
        self.dashboard
            .validate(self.forge.kind, &self.server.listen)?;
        Ok(())
    }

    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps.get(&name.to_ascii_lowercase())
    }

    pub fn app_names(&self) -> impl Iterator<Item = &str> {
        self.apps.keys().map(String::as_str)
    }

    /// The chat name of the app that deploys `repo`, if any.
    pub fn app_for_repo(&self, repo: &RepoName) -> Option<&str> {
        self.apps_for_repo(repo).next().map(|(name, _)| name)
    }

    /// Every app that deploys `repo` (several may share one), by name.
    pub fn apps_for_repo(&self, repo: &RepoName) -> impl Iterator<Item = (&str, &AppConfig)> {
        let repo = repo.clone();
        self.apps
            .iter()
            .filter(move |(_, app)| app.repo == repo)
            .map(|(name, app)| (name.as_str(), app))
    }

    /// `prod` -> `production`; other names unchanged (lower-cased).
    pub fn resolve_alias(&self, environment: &str) -> String {
        let lower = environment.to_ascii_lowercase();
        self.aliases.get(&lower).cloned().unwrap_or(lower)
    }

    /// The local forge's repositories: repo -> path on disk.
    pub fn local_repos(&self) -> HashMap<RepoName, PathBuf> {
        self.apps
            .values()
            .filter_map(|app| Some((app.repo.clone(), app.path.clone()?)))
            .collect()
    }

    /// What run logs mask: hoist's own credentials, and every app `env`
    /// value whose name says it is one (`…TOKEN`, `…SECRET`,
    /// `…PASSWORD`, `…KEY`, `…CREDENTIALS`, `…AUTH…`).
    pub fn log_secrets(&self) -> Vec<String> {
        const SECRET_NAMES: [&str; 7] = [
            "TOKEN",
            "SECRET",
            "PASSWORD",
            "PASSWD",
            "KEY",
            "CREDENTIAL",
            "AUTH",
        ];
        let own = [
            &self.github.token,
            &self.github.webhook_secret,
            &self.slack.bot_token,
            &self.slack.signing_secret,
            &self.discord.bot_token,
            &self.actions.key,
        ]
        .into_iter()
        .flatten()
        .map(|secret| secret.expose_secret().to_owned());
        let of_apps = self.apps.values().flat_map(|app| {
            app.env
                .iter()
                .filter(|(name, _)| {
                    let name = name.to_ascii_uppercase();
                    SECRET_NAMES.iter().any(|word| name.contains(word))
                })
                .map(|(_, value)| value.clone())
        });
        own.chain(of_apps).collect()
    }

    pub fn app_timeout(&self, app: &AppConfig) -> Duration {
        Duration::from_secs(app.timeout_secs.unwrap_or(self.runner.timeout_secs))
    }
}

/// `HOIST_GITHUB__TOKEN` -> `github.token`. Only sectioned names are read,
/// so unrelated variables (`HOIST_TEST_DATABASE_URL`) are left alone.
fn env_provider() -> Env {
    Env::prefixed("HOIST_")
        .split("__")
        .filter(|key| key.as_str().contains('.'))
}

/// figment says `... for key "default.github.app_id" in hoist.toml`; the
/// profile name means nothing to an operator.
fn describe_figment_error(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            if key.is_empty() {
                format!("configuration: {}{source}", e.kind)
            } else {
                format!("{key}: {}{source}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_loads() {
        let example = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/hoist.toml"));
        let config = Config::load(Some(example)).unwrap();
        let api = config.app("API").unwrap();
        assert_eq!(api.repo.to_string(), "acme/api");
        assert_eq!(
            api.deploy_command.as_deref(),
            Some(&["./script/deploy".to_owned()][..])
        );
        assert_eq!(config.app_timeout(api), Duration::from_secs(600));
        assert_eq!(config.resolve_alias("PROD"), "production");
        assert_eq!(config.resolve_alias("qa"), "qa");
        assert_eq!(
            config.app_for_repo(&"ACME/API".parse().unwrap()),
            Some("api")
        );
    }

    #[test]
    fn channels_name_a_platform_and_a_conversation() {
        let example = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/hoist.toml"));
        let config = Config::load(Some(example)).unwrap();
        let channel = config.app("api").unwrap().channel.clone().unwrap();
        assert_eq!(channel.platform, Platform::Slack);
        assert_eq!(channel.conversation, "C0DEPLOYS");
        for wrong in ["C0DEPLOYS", "irc:#deploys", "slack:", "slack:C0 X"] {
            let error = Config::from_toml_str(&format!(
                "[apps.web]\nrepo = \"a/b\"\npath = \"/x\"\nchannel = \"{wrong}\"\n"
            ))
            .unwrap_err();
            assert!(error.starts_with("apps.web.channel: "), "{wrong}: {error}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let config = Config::from_toml_str(
            "[forge]\nkind = \"github\"\n[github]\ntoken = \"ghp_supersecret\"\nwebhook_secret = \"whsec\"\n",
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("ghp_supersecret"), "{debug}");
        assert!(!debug.contains("whsec"), "{debug}");
    }

    #[test]
    fn wrong_settings_name_their_key() {
        let error =
            Config::from_toml_str("[github]\nrequest_timeout_secs = \"soon\"\n").unwrap_err();
        assert!(
            error.starts_with("github.request_timeout_secs: "),
            "{error}"
        );
        let error =
            Config::from_toml_str("[apps.Web]\nrepo = \"a/b\"\npath = \"/x\"\n").unwrap_err();
        assert!(error.starts_with("apps.Web: "), "{error}");
        let error = Config::from_toml_str("[apps.web]\nrepo = \"not-a-repo\"\npath = \"/x\"\n")
            .unwrap_err();
        assert!(error.contains("apps.web.repo"), "{error}");
        let error = Config::from_toml_str("[forge]\nkind = \"gitlab\"\n").unwrap_err();
        assert!(error.contains("forge.kind"), "{error}");
        let error = Config::from_toml_str("[discord]\npublic_key = \"abc\"\n").unwrap_err();
        assert!(error.starts_with("discord.public_key: "), "{error}");
    }

    #[test]
    fn the_dashboard_needs_a_login_or_a_loopback_address() {
        let github = "[forge]\nkind = \"github\"\n[dashboard]\nenabled = true\n";
        let error = Config::from_toml_str(github).unwrap_err();
        assert!(
            error.starts_with("dashboard.client_id and dashboard.client_secret"),
            "{error}"
        );
        let with_app = format!("{github}client_id = \"id\"\nclient_secret = \"secret\"\n");
        assert!(Config::from_toml_str(&with_app).is_ok());
        let short = format!("{with_app}session_key = \"short\"\n");
        let error = Config::from_toml_str(&short).unwrap_err();
        assert!(
            error.starts_with("dashboard.session_key: at least 32"),
            "{error}"
        );
        assert!(!error.contains("short"), "the key is never shown: {error}");

        let local = "[dashboard]\nenabled = true\n";
        assert!(
            Config::from_toml_str(local).is_ok(),
            "127.0.0.1:3000 by default"
        );
        let exposed = format!("[server]\nlisten = \"0.0.0.0:3000\"\n{local}");
        let error = Config::from_toml_str(&exposed).unwrap_err();
        assert!(
            error.contains("server.listen must be a loopback address"),
            "{error}"
        );
        // Off, nothing is asked of it.
        assert!(Config::from_toml_str("[server]\nlisten = \"0.0.0.0:3000\"\n").is_ok());
    }

    #[test]
    fn the_oauth_pages_are_found_from_the_api_url() {
        let dashboard = DashboardConfig::default();
        assert_eq!(
            dashboard.oauth_base("https://api.github.com"),
            "https://github.com"
        );
        assert_eq!(
            dashboard.oauth_base("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com"
        );
        assert_eq!(
            dashboard.oauth_base("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000"
        );
        let set = DashboardConfig {
            oauth_url: Some("https://login.example.com/".into()),
            ..DashboardConfig::default()
        };
        assert_eq!(
            set.oauth_base("https://api.github.com"),
            "https://login.example.com"
        );
    }
}
