//! The `hoist` command line: demo, serve, shell, migrate, check, and the
//! store's tools (outbox, audit, hooks).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use hoist::app::Hoist;
use hoist::chat::ChatAdapter;
use hoist::chat::discord::gateway::Gateway;
use hoist::chat::discord::{self as discord_chat, DiscordAdapter};
use hoist::chat::pr_comment::PrCommentAdapter;
use hoist::chat::slack::SlackAdapter;
use hoist::config::Config;
use hoist::relay::Outbox;
use hoist::store::{self, AuditFilter, Backend};
use hoist::{chat, demo, hooks, policy, server};
use tokio_util::sync::CancellationToken;

/// Where `hoist check` looks when no file is given.
const DEFAULT_DEPLOY_YML: &str = ".github/deploy.yml";

#[derive(Parser)]
#[command(name = "hoist", version, about = "Deploy from where you talk.")]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// A throwaway repository, the local forge, SQLite and the shell: try hoist in one command.
    Demo,
    /// Run the server (HTTP endpoints, forge events, runner).
    Serve {
        /// hoist.toml; every key can also come from HOIST_<SECTION>__<KEY>.
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Type commands as a chat user would.
    Shell {
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Apply the store's pending migrations (PostgreSQL needs this before `serve`; SQLite migrates as it opens).
    Migrate {
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List the replies hoist gave up delivering, or put them back in the queue.
    Outbox {
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
        /// Queue this given-up reply again (its id from the list).
        #[arg(long, value_name = "ID", conflicts_with = "retry_all")]
        retry: Option<i64>,
        /// Queue every given-up reply again.
        #[arg(long)]
        retry_all: bool,
    },
    /// The audit log, newest first: every command and what it came to.
    Audit {
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
        /// Only this person (the name the log shows).
        #[arg(long)]
        actor: Option<String>,
        /// Only this outcome: deployed, refused, locked, unlocked, invalid, ...
        #[arg(long)]
        outcome: Option<String>,
        /// Only entries whose command or detail contains this text.
        #[arg(long, value_name = "TEXT")]
        grep: Option<String>,
        /// Only the last DURATION (`2h`, `7d`, `30m`).
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
        /// At most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Deploy hooks: HTTP triggers for CI (`POST /api/v1/dh`).
    Hooks {
        #[command(subcommand)]
        command: HooksCommand,
    },
    /// Discord: `hoist discord register` puts hoist's slash commands on Discord.
    Discord {
        #[command(subcommand)]
        command: DiscordCommand,
    },
    /// Validate a deploy.yml; errors are printed as file:line:col: message.
    Check {
        /// Defaults to .github/deploy.yml.
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum DiscordCommand {
    /// Register /deploy, /deploys, /where and /hoist (commands/discord-commands.json).
    Register {
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
        /// Only in this server (shows at once); without it, in every server.
        #[arg(long, value_name = "GUILD_ID")]
        guild: Option<String>,
    },
}

#[derive(Subcommand)]
enum HooksCommand {
    /// Make a hook that deploys APP to ENV; prints its token, once.
    Create {
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
        /// An app in hoist.toml.
        #[arg(long)]
        app: String,
        /// The one environment the hook deploys to.
        #[arg(long = "env", value_name = "ENV")]
        environment: String,
        /// `[a-z0-9][a-z0-9._-]{0,62}`, unique: names the hook in the audit log.
        #[arg(long)]
        name: String,
    },
    /// The hooks, with when each was made and last used (never a token).
    List {
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Delete a hook: its token stops working at once.
    Delete {
        #[arg(long, env = "HOIST_CONFIG")]
        config: Option<PathBuf>,
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The shell and the demo talk to a person on this terminal: keep the
    // log to warnings there unless RUST_LOG asks for more.
    let default_log = match cli.command {
        Commands::Serve { .. } => "hoist=info",
        _ => "hoist=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_log)),
        )
        .with_writer(std::io::stderr)
        .init();

    let result = match cli.command {
        Commands::Check { file } => check(file.as_deref()),
        command => tokio::runtime::Runtime::new()
            .context("cannot start the async runtime")
            .and_then(|runtime| runtime.block_on(run(command))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hoist: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Commands) -> anyhow::Result<()> {
    match command {
        Commands::Demo => demo::run().await,
        Commands::Shell { config } => {
            let built = Hoist::build(load_config(config.as_deref())?).await?;
            tokio::spawn(Arc::clone(&built.hoist).pump_events(built.events));
            built.hoist.end_interrupted_runs().await?;
            let stop = CancellationToken::new();
            tokio::spawn(Arc::clone(&built.hoist).run_runner_until(stop.clone()));
            let result = chat::shell::run(built.hoist).await;
            stop.cancel();
            result
        }
        Commands::Serve { config } => {
            let config = load_config(config.as_deref())?;
            let listen = config.server.listen.clone();
            let built = Hoist::build(config).await?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("server.listen: cannot listen on {listen}"))?;
            tracing::info!(%listen, "hoist is serving");
            let dashboard = &built.hoist.config.dashboard;
            if dashboard.enabled {
                let url = built.hoist.config.server.public_url.trim_end_matches('/');
                tracing::info!(url = %format!("{url}/"), "the dashboard is on");
                if dashboard.session_key.is_none() && built.hoist.config.store.is_shared() {
                    tracing::warn!(
                        "dashboard.session_key is not set: each replica signs its own sessions, so a login works only on the replica that made it"
                    );
                }
            }
            tokio::spawn(Arc::clone(&built.hoist).pump_events(built.events));
            built.hoist.end_interrupted_runs().await?;
            let stop = CancellationToken::new();
            let inbox = tokio::spawn(Arc::clone(&built.hoist).run_inbox_until(stop.clone()));
            let watch = tokio::spawn(Arc::clone(&built.hoist).run_watch_until(stop.clone()));
            let retention =
                tokio::spawn(Arc::clone(&built.hoist).run_retention_until(stop.clone()));
            let runner = tokio::spawn(Arc::clone(&built.hoist).run_runner_until(stop.clone()));
            let discord = &built.hoist.config.discord;
            let gateway = match (&discord.bot_token, discord.gateway) {
                (Some(token), true) => {
                    let gateway = Gateway::new(&discord.api_url, token)
                        .context("discord: cannot set up the gateway client")?;
                    Some(tokio::spawn(
                        gateway.run_until(Arc::clone(&built.hoist), stop.clone()),
                    ))
                }
                _ => None,
            };
            let webhooks = hoist::actions::Webhooks::new()
                .context("cannot set up the client for integration webhooks")?;
            let outbox = Outbox::new(chat_adapters(&built.hoist)?).with_webhooks(webhooks);
            let outbox = tokio::spawn(outbox.run_until(Arc::clone(&built.hoist), stop.clone()));
            let result = tokio::select! {
                result = server::serve(built.hoist, listener) => result,
                _ = tokio::signal::ctrl_c() => Ok(()),
            };
            stop.cancel();
            inbox.await?;
            watch.await?;
            retention.await?;
            runner.await?;
            outbox.await?;
            if let Some(gateway) = gateway {
                gateway.await?;
            }
            result
        }
        Commands::Outbox {
            config,
            retry,
            retry_all,
        } => outbox(load_config(config.as_deref())?, retry, retry_all).await,
        Commands::Audit {
            config,
            actor,
            outcome,
            grep,
            since,
            limit,
        } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let filter = AuditFilter {
                actor,
                outcome,
                text: grep,
                since,
                limit,
            };
            audit(load_config(config.as_deref())?, &filter).await
        }
        Commands::Hooks { command } => deploy_hooks(command).await,
        Commands::Migrate { config } => migrate(load_config(config.as_deref())?).await,
        Commands::Discord {
            command: DiscordCommand::Register { config, guild },
        } => register_discord(load_config(config.as_deref())?, guild.as_deref()).await,
        Commands::Check { file } => check(file.as_deref()),
    }
}

/// The store `store.url` names, for the commands that need only it.
async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Backend>> {
    store::open(&config.store.url).await
}

/// `hoist migrate`: says what it applied, so a deploy script's log shows it.
async fn migrate(config: Config) -> anyhow::Result<()> {
    let applied = store::migrate(&config.store.url).await?;
    let shown = store::shown_url(&config.store.url);
    match applied.as_slice() {
        [] => println!("The store at {shown} is up to date."),
        [.., newest] => println!(
            "Applied {} migration{} to the store at {shown}; its schema is at version {newest}.",
            applied.len(),
            if applied.len() == 1 { "" } else { "s" }
        ),
    }
    Ok(())
}

/// `hoist hooks`: on the store alone, like `hoist audit`.
async fn deploy_hooks(command: HooksCommand) -> anyhow::Result<()> {
    let (HooksCommand::Create { config, .. }
    | HooksCommand::List { config }
    | HooksCommand::Delete { config, .. }) = &command;
    let config = load_config(config.as_deref())?;
    let store = open_store(&config).await?;
    match command {
        HooksCommand::Create {
            app,
            environment,
            name,
            ..
        } => {
            let created = hooks::admin::create(&*store, &config, &app, &environment, &name).await?;
            print!(
                "{}",
                hooks::admin::created_text(&created, &config.server.public_url)
            );
        }
        HooksCommand::List { .. } => print!("{}", hooks::admin::list_text(&store.hooks().await?)),
        HooksCommand::Delete { name, .. } => {
            hooks::admin::delete(&*store, &name).await?;
            println!("Deleted deploy hook `{name}`: its token no longer deploys anything.");
        }
    }
    Ok(())
}

/// `hoist discord register`: needs the bot token and the application id.
async fn register_discord(config: Config, guild: Option<&str>) -> anyhow::Result<()> {
    let discord = &config.discord;
    let (Some(token), Some(application)) = (&discord.bot_token, &discord.application_id) else {
        anyhow::bail!(
            "discord.bot_token and discord.application_id must be set to register commands"
        );
    };
    let names =
        discord_chat::register_commands(&discord.api_url, token, application, guild).await?;
    let scope = guild.map_or_else(
        || "every server".to_owned(),
        |guild| format!("server {guild}"),
    );
    println!("Registered /{} in {scope}.", names.join(", /"));
    Ok(())
}

/// `hoist outbox`: the dead letters, and retrying them. Talks to the store
/// only, so it works while the server runs (or while a platform is down).
/// `2h` back from now: digits and a unit (`m`, `h`, `d`, `w`).
fn parse_since(text: &str) -> anyhow::Result<jiff::Timestamp> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let secs_per = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => anyhow::bail!("--since `{text}`: use a number and m, h, d or w (`2h`, `7d`)"),
    };
    let count: i64 =
        number.parse().ok().filter(|n| *n > 0).with_context(|| {
            format!("--since `{text}`: use a number and m, h, d or w (`2h`, `7d`)")
        })?;
    let back = jiff::SignedDuration::from_secs(count.saturating_mul(secs_per));
    jiff::Timestamp::now()
        .checked_sub(back)
        .with_context(|| format!("--since `{text}` reaches too far back"))
}

async fn audit(config: Config, filter: &AuditFilter) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let entries = store.audit(filter).await?;
    if entries.is_empty() {
        println!("No audit entries match.");
    }
    for entry in entries {
        println!(
            "{} {:<7} {:<12} {:<9} {} -> {}",
            entry.at.strftime("%Y-%m-%d %H:%M:%SZ"),
            entry.platform.as_str(),
            entry.actor,
            entry.outcome,
            entry.command,
            entry.detail
        );
    }
    Ok(())
}

async fn outbox(config: Config, retry: Option<i64>, retry_all: bool) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let dead = store.dead_replies(usize::MAX).await?;
    let wanted: Vec<i64> = match (retry, retry_all) {
        (Some(id), _) => vec![id],
        (None, true) => dead.iter().map(|reply| reply.id).collect(),
        (None, false) => {
            if dead.is_empty() {
                println!(
                    "No replies were given up: every reply was delivered or is still being tried."
                );
            }
            for reply in &dead {
                let text = reply.body["text"].as_str().unwrap_or("(no text)");
                println!(
                    "#{} {} {} queued {} after {} attempts: {} [{}]",
                    reply.id,
                    reply.platform.as_str(),
                    reply.conversation,
                    reply.created_at,
                    reply.attempts,
                    text,
                    reply.last_error.as_deref().unwrap_or("no error recorded")
                );
            }
            return Ok(());
        }
    };
    for id in wanted {
        if store.retry_dead_reply(id).await? {
            println!("#{id} queued again; a running `hoist serve` delivers it.");
        } else {
            anyhow::bail!("#{id} is not a given-up reply (see `hoist outbox`)");
        }
    }
    Ok(())
}

/// The chat platforms hoist can deliver replies to, from the config; pull
/// requests whenever the forge is GitHub.
fn chat_adapters(hoist: &Hoist) -> anyhow::Result<Vec<Arc<dyn ChatAdapter>>> {
    let config = &hoist.config;
    let mut adapters: Vec<Arc<dyn ChatAdapter>> = Vec::new();
    if let Some(github) = &hoist.github {
        adapters.push(Arc::new(PrCommentAdapter::new(Arc::clone(github))));
    }
    if let Some(token) = &config.discord.bot_token {
        let discord = DiscordAdapter::new(&config.discord.api_url, token)
            .context("discord: cannot set up the REST client")?;
        adapters.push(Arc::new(discord));
    }
    if let Some(token) = &config.slack.bot_token {
        let slack = SlackAdapter::new(&config.slack.api_url, token)
            .context("slack: cannot set up the Web API client")?;
        adapters.push(Arc::new(slack));
    }
    Ok(adapters)
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    Config::load(path).map_err(anyhow::Error::msg)
}

/// Prints `file:line:col: message` for each problem; fails if there is one.
fn check(file: Option<&Path>) -> anyhow::Result<()> {
    let path = file.unwrap_or(Path::new(DEFAULT_DEPLOY_YML));
    let label = path.display().to_string();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {label}"))?;
    let Ok(text) = String::from_utf8(bytes) else {
        anyhow::bail!("{label}:1:1: the file is not UTF-8 text");
    };
    let diagnostics = policy::check(&label, &text);
    if diagnostics.is_empty() {
        println!("{label}: ok");
        return Ok(());
    }
    for diagnostic in &diagnostics {
        eprintln!("{diagnostic}");
    }
    anyhow::bail!("{label}: {} problem(s) found", diagnostics.len())
}
