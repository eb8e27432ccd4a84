//! The command grammar: chat text in, a typed [`Command`] out.
//!
//! **Architecture invariant:** this module does no I/O and knows no
//! platform. It does not know which apps or environments exist either:
//! aliases and defaults are applied later, from configuration.
//!
//! The exact syntax of every command lives in `commands/*.toml` (usage,
//! help and worked examples); `catalogue` loads it and the tests run
//! every example through [`parse`].

mod catalogue;
pub(crate) mod duration;
mod error;
mod grammar;
mod refname;
mod render;

use serde::{Deserialize, Serialize};

pub use catalogue::{Catalogue, CommandDoc, Example, catalogue, help, markdown_reference, usage};
pub use error::ParseError;
pub use refname::{MAX_REF_BYTES, RefError, check_ref};
pub use render::render;

/// The longest text [`parse`] reads, in chars. Longer text is a paste
/// accident, and the cap bounds the work one message can cause.
pub const MAX_INPUT_CHARS: usize = 4096;

/// A command as typed, before any configuration is applied.
///
/// The serde form (`{ command = "deploy", task = "deploy", ... }`) is the
/// one the catalogue's `expect` tables use. When a variant or field
/// changes, change with it: the grammar (`grammar.rs`), [`render`], the
/// catalogue file in `commands/` and the property tests' generators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// `deploy[:task][!] app[/ref] [to|in|on env[/host,host]] [| key=value ...]`
    Deploy(DeployRequest),
    /// `noop app[/ref] [to|in|on env[/host,host]] [| key=value ...]`:
    /// evaluate everything, create nothing. The task is always `deploy`
    /// and `force` always false.
    Noop(DeployRequest),
    /// `deploy:cancel [app] [to|in|on env]`: stop the running (or the
    /// next queued) deployment of app in env. It takes no ref, hosts,
    /// parameters or `!`.
    Cancel {
        /// `None` in the short form (`.deploy:cancel to staging`), as for
        /// [`DeployRequest::app`].
        app: Option<String>,
        /// `None` means the app's default environment, as for `deploy`.
        environment: Option<String>,
    },
    /// `rollback [app] [to|in|on env]`: deploy again, as a normal
    /// deployment, the commit of the last successful deployment before
    /// the one live in env. It takes no ref, hosts, parameters, task or
    /// `!`.
    Rollback {
        /// `None` in the short form (`.rollback in staging`), as for
        /// [`DeployRequest::app`].
        app: Option<String>,
        /// `None` means the app's default environment, as for `deploy`.
        environment: Option<String>,
    },
    /// `where can I deploy app[?]`
    WhereCanIDeploy { app: String },
    /// `deploys app [in|to|on env]`
    Deploys {
        app: String,
        environment: Option<String>,
    },
    /// `lock [env] [for app] [for DURATION] [reason...]`, or
    /// `lock --global [for DURATION] [reason...]`: stop everyone but the
    /// holder from deploying there until `unlock` or the duration ends.
    Lock {
        /// `None` means the app's default environment, as for `deploy`;
        /// always `None` when `global`.
        environment: Option<String>,
        /// `for app`; `None` in the short form (`.lock production` in a
        /// pull request comment) and when `global`.
        app: Option<String>,
        /// `--global`: every app and environment.
        #[serde(default)]
        global: bool,
        /// `for 2h`: the lock ends by itself after this long, between one
        /// minute and 30 days; `None` holds it until `unlock`.
        duration_secs: Option<u64>,
        /// What is left, after an optional `:` or `--reason`: trimmed,
        /// otherwise as typed, at most 200 chars; never empty.
        reason: Option<String>,
    },
    /// `unlock [env] [for app]` or `unlock --global`: release a lock.
    Unlock {
        /// As for [`Command::Lock`].
        environment: Option<String>,
        /// As for [`Command::Lock`].
        app: Option<String>,
        /// `--global`: release the lock on everything (not the locks of
        /// single environments).
        #[serde(default)]
        global: bool,
    },
    /// `locks [app]`: who holds which lock; `None` lists every app's.
    Locks { app: Option<String> },
    /// `approve [#N]`: approve deployment request N, which waits for
    /// approvals (deploy.yml's `approvals`).
    Approve {
        /// `None`: the one request waiting in this conversation.
        request: Option<u64>,
    },
    /// `reject [#N] [reason...]`: refuse deployment request N; one
    /// rejection ends it.
    Reject {
        /// As for [`Command::Approve`].
        request: Option<u64>,
        /// As for [`Command::Lock`]'s reason.
        reason: Option<String>,
    },
    /// `help [command]`
    Help { topic: Option<String> },
    /// `whoami`: who hoist takes the typer to be.
    #[serde(rename = "whoami")]
    WhoAmI,
}

/// The parts of a `deploy` or `noop` command.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeployRequest {
    /// `deploy`, or the whole `deploy:NAME` when typed so (hubot-deploy's
    /// and GitHub's convention, e.g. `deploy:migrations`); the suffix
    /// keeps its case. Never `deploy:cancel` from [`parse`]: that is
    /// [`Command::Cancel`].
    pub task: String,
    /// `!`: deploy even if required checks fail.
    pub force: bool,
    /// `None` in the short form (`.deploy to staging`) where the
    /// conversation implies the app (a pull request comment).
    pub app: Option<String>,
    /// Branch, tag or sha; `None` means the default.
    pub git_ref: Option<String>,
    /// `None` means the app's default environment.
    pub environment: Option<String>,
    /// `env/host1,host2`: goes to `payload.hosts`.
    pub hosts: Vec<String>,
    /// `| key=value ...`: goes to `payload.params`, in order.
    pub params: Vec<(String, String)>,
}

/// Parses text addressed to hoist: a shell line, a slash command's text,
/// a message that mentions the bot.
///
/// Accepts an optional bot mention (`@hoist`, `<@U0LAN0Z89>`,
/// `<@!123456>`), an optional `.` or `/` before the keyword, and
/// surrounding whitespace. Keywords are case-insensitive; app and
/// environment names come back lower-cased; refs come back as typed.
pub fn parse(text: &str) -> Result<Command, ParseError> {
    if text.chars().nth(MAX_INPUT_CHARS).is_some() {
        return Err(ParseError {
            column: MAX_INPUT_CHARS + 1,
            message: format!(
                "that is too long: a command has at most {MAX_INPUT_CHARS} characters"
            ),
            usage: None,
            suggestion: None,
        });
    }
    if text.trim().is_empty() {
        return Err(ParseError {
            column: 1,
            message: "there is nothing to read".to_owned(),
            usage: None,
            suggestion: None,
        });
    }
    match grammar::command(text) {
        Ok((_, command)) => Ok(command),
        Err(nom::Err::Error(fail) | nom::Err::Failure(fail)) => {
            let offset = text.len().saturating_sub(fail.at.len());
            let column = text
                .get(..offset)
                .map_or(1, |before| before.chars().count() + 1);
            Err(ParseError {
                column,
                message: fail.message,
                usage: fail.command.and_then(usage),
                suggestion: fail.suggestion,
            })
        }
        // The grammar uses only `complete` parsers, which never ask for
        // more input; say so rather than panic if that ever changes.
        Err(nom::Err::Incomplete(_)) => Err(ParseError {
            column: text.chars().count() + 1,
            message: "the command ends too early".to_owned(),
            usage: None,
            suggestion: None,
        }),
    }
}

/// Parses ambient text, such as a pull request comment, that may or may
/// not be meant for hoist.
///
/// `None` unless the first line starts with `.` or `/` followed by a
/// command keyword, or by a word one edit away from one (`.deplyo`), which
/// gives `Some(Err(..))` with the suggestion. Only the first line is read:
/// the rest of a comment is for people. The prefix must be the very first
/// character: an indented line is a Markdown code block, not a command.
pub fn parse_comment(text: &str) -> Option<Result<Command, ParseError>> {
    let line = text.lines().next()?;
    let after_prefix = line.strip_prefix(['.', '/'])?;
    let word_end = after_prefix
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(after_prefix.len());
    let word = after_prefix.get(..word_end)?.to_ascii_lowercase();
    if word.is_empty() {
        return None;
    }
    let addressed = grammar::KEYWORDS
        .iter()
        .any(|keyword| strsim::damerau_levenshtein(&word, keyword) <= 1);
    addressed.then(|| parse(line))
}

#[cfg(test)]
mod tests;
