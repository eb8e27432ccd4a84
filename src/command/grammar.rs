//! The nom grammar behind [`super::parse`].
//!
//! Every parser takes the remaining input as a sub-slice of the original
//! text, so a failure's position is just "how much is left", and
//! [`super::parse`] turns it into a column. Failures are
//! `nom::Err::Failure`: once a keyword is recognised there is exactly one
//! way to read the rest, so there is nothing to backtrack into and the
//! first problem found is the one to report.

use nom::bytes::complete::{tag, tag_no_case, take_till, take_while, take_while1};
use nom::character::complete::{char, one_of};
use nom::combinator::opt;
use nom::error::ErrorKind;
use nom::{IResult, Parser};

use super::error::excerpt;
use super::refname::check_ref;
use super::{Command, DeployRequest};
use crate::suggest::nearest;

mod approvals;
mod locks;
mod params;
mod reason;

pub(crate) use approvals::{APPROVE, REJECT, reads_bare as reject_reason_reads_bare};
pub(crate) use locks::reads_bare as reason_reads_bare;
use params::params;

/// Every command keyword, as typed after the optional `.`/`/` prefix.
pub(crate) const KEYWORDS: [&str; 12] = [
    "deploy", "deploys", "noop", "where", "lock", "unlock", "locks", "help", "whoami", "rollback",
    APPROVE, REJECT,
];

/// The words that introduce an environment.
const PREPOSITIONS: [&str; 3] = ["to", "in", "on"];

/// The task a `deploy` without `:task` asks for (GitHub's default).
pub(crate) const DEFAULT_TASK: &str = "deploy";

/// The task suffix that makes `deploy:...` a [`Command::Cancel`], and
/// that command's name in the catalogue (`commands/cancel.toml`).
pub(crate) const CANCEL: &str = "cancel";

/// The keyword of [`Command::Rollback`], and its name in the catalogue.
pub(crate) const ROLLBACK: &str = "rollback";

/// Whether [`request`] reads a ref, hosts and parameters (`deploy`,
/// `noop`), or refuses each where it starts, for the command typed
/// (`deploy:cancel`, `rollback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extras {
    Read,
    Refuse(&'static str),
}

/// The part of a deploy a command refuses.
#[derive(Debug, Clone, Copy)]
enum Refused {
    Ref,
    Hosts,
    Params,
}

/// Why `command` (as typed: `deploy:cancel`, `rollback`) refuses `part`
/// of `app`'s deploy.
fn refusal(command: &str, part: Refused, app: &str) -> String {
    match (command == ROLLBACK, part) {
        (false, Refused::Ref) => format!("`{command}` takes no ref: it stops what is running"),
        (false, Refused::Hosts) => {
            format!("`{command}` takes no hosts: it stops the whole deployment")
        }
        (false, Refused::Params) => {
            format!("`{command}` takes no parameters: it runs no deploy script")
        }
        (true, Refused::Ref) => format!(
            "`{command}` goes back to the previous successful deployment: it takes no ref; \
             to deploy a ref, use `deploy {app}/REF to env`"
        ),
        (true, Refused::Hosts) => format!(
            "`{command}` takes no hosts: it goes back in the whole environment; to deploy to \
             some hosts, use `deploy {app}/REF to env/host,...`"
        ),
        (true, Refused::Params) => format!(
            "`{command}` takes no parameters: to deploy with some, use \
             `deploy {app}/REF to env | key=value`"
        ),
    }
}

/// Why parsing stopped: where, what was wrong, and what was meant.
#[derive(Debug)]
pub(crate) struct Fail<'a> {
    /// The input left at the problem; its length gives the column.
    pub at: &'a str,
    pub message: String,
    pub suggestion: Option<String>,
    /// The command being typed, once its keyword was read.
    pub command: Option<&'static str>,
}

impl<'a> nom::error::ParseError<&'a str> for Fail<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        Fail {
            at: input,
            message: format!("unexpected `{}`", excerpt(first_word(input))),
            suggestion: None,
            command: None,
        }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a str, T, Fail<'a>>;

fn fail<'a, T>(at: &'a str, message: impl Into<String>) -> Res<'a, T> {
    fail_with(at, message, None)
}

fn fail_with<'a, T>(
    at: &'a str,
    message: impl Into<String>,
    suggestion: Option<&str>,
) -> Res<'a, T> {
    Err(nom::Err::Failure(Fail {
        at,
        message: message.into(),
        suggestion: suggestion.map(str::to_owned),
        command: None,
    }))
}

/// Marks a failure as happening inside `command`, so the reply can show
/// that command's usage line.
fn within<'a, T>(command: &'static str, result: Res<'a, T>) -> Res<'a, T> {
    result.map_err(|error| {
        error.map(|mut fail| {
            fail.command.get_or_insert(command);
            fail
        })
    })
}

/// Letters, digits, `-`, `_` and `.`: app, environment and topic names.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Task suffixes may also nest with `:` (`deploy:db:migrate`).
fn is_task_char(c: char) -> bool {
    is_name_char(c) || c == ':'
}

/// Hosts may carry a port (`db1:5432`).
fn is_host_char(c: char) -> bool {
    is_name_char(c) || c == ':'
}

fn ws0(input: &str) -> Res<'_, &str> {
    take_while(char::is_whitespace).parse(input)
}

fn ends_word(input: &str) -> bool {
    input.is_empty() || input.starts_with(char::is_whitespace)
}

/// Whether a deploy-like command's part ends here: whitespace, the end,
/// or the parameter separator.
fn ends_part(input: &str) -> bool {
    ends_word(input) || input.starts_with('|')
}

fn first_word(input: &str) -> &str {
    input.split(char::is_whitespace).next().unwrap_or_default()
}

fn next_char(input: &str) -> String {
    input
        .chars()
        .next()
        .map_or_else(String::new, |c| c.escape_debug().collect())
}

/// What a name may contain, for error messages.
const NAME_CHARS: &str = "letters, digits, `-`, `_` and `.`";

/// A name (`noun`: "an app name"), lower-cased, or a failure that says
/// what was wrong; `after` says what it follows, for the message.
/// Besides whitespace, the end and `|`, only a char in `followers` may
/// come right after it (`/` before a ref or hosts, `?` after a question).
fn name<'a>(
    input: &'a str,
    noun: &str,
    after: Option<&str>,
    followers: &[char],
) -> Res<'a, String> {
    let Ok((rest, name)) = take_while1::<_, _, Fail>(is_name_char).parse(input) else {
        let expected = match after {
            Some(after) => format!("expected {noun} after {after}"),
            None => format!("expected {noun}"),
        };
        return if input.is_empty() || input.starts_with('|') {
            fail(input, expected)
        } else {
            let typed = excerpt(first_word(input));
            fail(
                input,
                format!("{expected}, not `{typed}` (use {NAME_CHARS})"),
            )
        };
    };
    if ends_part(rest) || rest.starts_with(followers) {
        Ok((rest, name.to_ascii_lowercase()))
    } else {
        let c = next_char(rest);
        fail(
            rest,
            format!("unexpected `{c}` in {noun} (use {NAME_CHARS})"),
        )
    }
}

/// A keyword, without regard to case, that must end at a word boundary
/// (`to` but not `toronto`).
fn keyword<'a>(word: &'static str) -> impl Fn(&'a str) -> Res<'a, &'a str> {
    move |input| {
        let (rest, matched) = tag_no_case(word).parse(input)?;
        if ends_word(rest) {
            Ok((rest, matched))
        } else {
            Err(nom::Err::Error(nom::error::ParseError::from_error_kind(
                input,
                ErrorKind::Tag,
            )))
        }
    }
}

/// Reads the exact word `word`, or fails naming it and the nearest
/// spelling of what was typed instead.
fn expect_word<'a>(input: &'a str, word: &'static str, after: &str) -> Res<'a, ()> {
    let (input, _) = ws0(input)?;
    match keyword(word)(input) {
        Ok((rest, _)) => Ok((rest, ())),
        Err(_) => {
            let typed = first_word(input);
            let suggestion = if typed.is_empty() {
                None
            } else {
                nearest(typed, [word])
            };
            fail_with(
                input,
                format!("expected `{word}` after {after}"),
                suggestion,
            )
        }
    }
}

/// `to`, `in` or `on`, without regard to case.
fn preposition(input: &str) -> Res<'_, &str> {
    keyword("to")(input)
        .or_else(|_| keyword("in")(input))
        .or_else(|_| keyword("on")(input))
}

/// A bot mention before the command: `@hoist`, Slack's `<@U0LAN0Z89>` or
/// `<@U0LAN0Z89|hoist>`, Discord's `<@123456>` or `<@!123456>`; an
/// optional `:` or `,` may follow it.
fn mention(input: &str) -> Res<'_, ()> {
    let plain = (char('@'), take_while1(is_name_char));
    let bracketed = (
        tag("<@"),
        opt(char('!')),
        take_while1(|c: char| c.is_ascii_alphanumeric()),
        opt((char('|'), take_till(|c| c == '>'))),
        char('>'),
    );
    let (rest, _) = if input.starts_with('<') {
        bracketed.map(|_| ()).parse(input)?
    } else {
        plain.map(|_| ()).parse(input)?
    };
    let (rest, _) = opt(one_of(":,")).parse(rest)?;
    Ok((rest, ()))
}

/// The whole text: optional mention, optional `.`/`/`, a keyword and its
/// arguments, and nothing after them.
pub(crate) fn command(input: &str) -> Res<'_, Command> {
    let (rest, _) = ws0(input)?;
    let (rest, _) = opt(mention).parse(rest)?;
    let (rest, _) = ws0(rest)?;
    let (rest, _) = opt(one_of("./")).parse(rest)?;
    let Ok((after, word)) =
        take_while1::<_, _, Fail>(|c: char| c.is_ascii_alphanumeric()).parse(rest)
    else {
        return fail(
            rest,
            "expected a command such as `deploy`, `noop` or `help`",
        );
    };
    let (name, body): (&'static str, fn(&str) -> Res<'_, Command>) =
        match word.to_ascii_lowercase().as_str() {
            "deploy" => ("deploy", deploy),
            "noop" => ("noop", noop),
            "deploys" => ("deploys", deploys),
            "rollback" => (ROLLBACK, rollback),
            "where" => ("where", where_can_i_deploy),
            "lock" => ("lock", locks::lock),
            "unlock" => ("unlock", locks::unlock),
            "locks" => ("locks", locks::locks),
            APPROVE => (APPROVE, approvals::approve),
            REJECT => (REJECT, approvals::reject),
            "help" => ("help", help),
            "whoami" => ("whoami", whoami),
            _ => {
                let suggestion = nearest(word, KEYWORDS);
                let mut failure = fail_with(
                    rest,
                    format!("unknown command `{}`", excerpt(word)),
                    suggestion,
                );
                if let Err(nom::Err::Failure(fail)) = &mut failure {
                    fail.command = KEYWORDS.into_iter().find(|k| Some(*k) == suggestion);
                }
                return failure;
            }
        };
    within(
        name,
        body(after).and_then(|(rest, command)| {
            let (rest, _) = ws0(rest)?;
            if rest.is_empty() {
                Ok((rest, command))
            } else {
                fail(rest, format!("unexpected `{}`", excerpt(first_word(rest))))
            }
        }),
    )
}

/// `deploy[:task][!] ...`, after the word `deploy`; `deploy:cancel ...`
/// is a command of its own.
fn deploy(input: &str) -> Res<'_, Command> {
    let (rest, task) = match input.strip_prefix(':') {
        Some(after) => match take_while1::<_, _, Fail>(is_task_char).parse(after) {
            Ok((rest, suffix)) if suffix.eq_ignore_ascii_case(CANCEL) => {
                return within(CANCEL, cancel(rest));
            }
            // A slip on the way to `deploy:cancel` must not deploy.
            Ok((_, suffix)) if is_near_cancel(suffix) => {
                return fail_with(
                    after,
                    format!(
                        "`deploy:{}` is one typo away from `deploy:cancel`, \
                         so hoist does not take it for a task",
                        excerpt(suffix)
                    ),
                    Some("deploy:cancel"),
                );
            }
            Ok((rest, suffix)) => (rest, format!("{DEFAULT_TASK}:{suffix}")),
            Err(_) => return fail(after, "expected a task name after `deploy:`"),
        },
        None => (input, DEFAULT_TASK.to_owned()),
    };
    let (rest, bang) = opt(char('!')).parse(rest)?;
    if !ends_part(rest) {
        return fail(
            rest,
            format!("unexpected `{}` after `deploy`", next_char(rest)),
        );
    }
    let (rest, mut request) = request(rest, Extras::Read)?;
    request.task = task;
    request.force = bang.is_some();
    Ok((rest, Command::Deploy(request)))
}

/// Whether a task suffix is one edit from `cancel` (`cancle`, `cancl`),
/// without regard to case.
fn is_near_cancel(suffix: &str) -> bool {
    strsim::damerau_levenshtein(&suffix.to_ascii_lowercase(), CANCEL) == 1
}

/// `deploy:cancel [app] [to|in|on env]`, after `deploy:cancel`: a
/// deploy's app and environment and nothing else, each refused part
/// named where it starts.
fn cancel(input: &str) -> Res<'_, Command> {
    if input.starts_with('!') {
        return fail(
            input,
            "`deploy:cancel` cannot be forced: it only stops a deployment",
        );
    }
    if !ends_part(input) {
        return fail(
            input,
            format!("unexpected `{}` after `deploy:cancel`", next_char(input)),
        );
    }
    let (rest, request) = request(input, Extras::Refuse("deploy:cancel"))?;
    Ok((
        rest,
        Command::Cancel {
            app: request.app,
            environment: request.environment,
        },
    ))
}

/// `rollback [app] [to|in|on env]`, after the word `rollback`: like
/// `deploy:cancel`, a deploy's app and environment and nothing else.
fn rollback(input: &str) -> Res<'_, Command> {
    if input.starts_with(':') {
        return fail(
            input,
            "`rollback` takes no task: to run one, use `deploy:TASK app to env`",
        );
    }
    if input.starts_with('!') {
        return fail(
            input,
            "`rollback` cannot be forced: it goes through every rule, as any deployment \
             does; to force one, use `deploy!`",
        );
    }
    if !ends_part(input) {
        return fail(
            input,
            format!("unexpected `{}` after `rollback`", next_char(input)),
        );
    }
    let (rest, request) = request(input, Extras::Refuse(ROLLBACK))?;
    Ok((
        rest,
        Command::Rollback {
            app: request.app,
            environment: request.environment,
        },
    ))
}

/// `noop ...`, after the word `noop`: a deploy's arguments, no task, no
/// force (a dry run deploys nothing to force).
fn noop(input: &str) -> Res<'_, Command> {
    if input.starts_with(':') {
        return fail(
            input,
            "`noop` takes no task: it runs the `deploy` checks only",
        );
    }
    if input.starts_with('!') {
        return fail(input, "`noop` cannot be forced: it never deploys");
    }
    if !ends_part(input) {
        return fail(
            input,
            format!("unexpected `{}` after `noop`", next_char(input)),
        );
    }
    let (rest, mut request) = request(input, Extras::Read)?;
    request.task = DEFAULT_TASK.to_owned();
    Ok((rest, Command::Noop(request)))
}

/// `[app[/ref]] [to|in|on env[/host,...]] [| key=value ...]`; with
/// [`Extras::Refuse`], only `[app] [to|in|on env]`, each refused part
/// named where it starts.
fn request(input: &str, extras: Extras) -> Res<'_, DeployRequest> {
    let mut request = DeployRequest::default();
    let (rest, _) = ws0(input)?;
    // The short form: no app when nothing, `|` or a preposition follows.
    let short = rest.is_empty() || rest.starts_with('|') || preposition(rest).is_ok();
    let rest = if short {
        rest
    } else {
        let (rest, (app, git_ref)) = app_and_ref(rest, extras)?;
        request.app = Some(app);
        request.git_ref = git_ref;
        rest
    };
    let (rest, _) = ws0(rest)?;
    let rest = if rest.is_empty() || rest.starts_with('|') {
        rest
    } else {
        let Ok((after, word)) = preposition(rest) else {
            // Only reachable with an app: the short form starts with a
            // preposition or has nothing here.
            return fail_with(
                rest,
                "expected `to`, `in` or `on` after the app",
                nearest(first_word(rest), PREPOSITIONS),
            );
        };
        let (after, _) = ws0(after)?;
        let preposition = format!("`{}`", word.to_ascii_lowercase());
        let (rest, environment) = name(after, "an environment name", Some(&preposition), &['/'])?;
        if let Extras::Refuse(command) = extras
            && rest.starts_with('/')
        {
            let app = request.app.as_deref().unwrap_or("app");
            return fail(rest, refusal(command, Refused::Hosts, app));
        }
        let (rest, hosts) = hosts(rest)?;
        request.environment = Some(environment);
        request.hosts = hosts;
        rest
    };
    let (rest, _) = ws0(rest)?;
    let (rest, params) = match rest.strip_prefix('|') {
        Some(after) => match extras {
            Extras::Read => params(after)?,
            Extras::Refuse(command) => {
                let app = request.app.as_deref().unwrap_or("app");
                return fail(rest, refusal(command, Refused::Params, app));
            }
        },
        None if rest.is_empty() => (rest, Vec::new()),
        None if matches!(extras, Extras::Refuse(_)) => {
            return fail(rest, format!("unexpected `{}`", excerpt(first_word(rest))));
        }
        None => {
            return fail(
                rest,
                format!(
                    "unexpected `{}`: parameters go after `|`",
                    excerpt(first_word(rest))
                ),
            );
        }
    };
    request.params = params;
    Ok((rest, request))
}

/// `app[/ref]`: the app lower-cased, the ref as typed once git would
/// accept it; with [`Extras::Refuse`], the app alone.
fn app_and_ref(input: &str, extras: Extras) -> Res<'_, (String, Option<String>)> {
    let (rest, app) = name(input, "an app name", None, &['/'])?;
    let Some(after) = rest.strip_prefix('/') else {
        return Ok((rest, (app, None)));
    };
    if let Extras::Refuse(command) = extras {
        return fail(rest, refusal(command, Refused::Ref, &app));
    }
    let (rest, git_ref) = take_till(char::is_whitespace).parse(after)?;
    if git_ref.is_empty() {
        return fail(after, "expected a ref after `/`");
    }
    if let Err(error) = check_ref(git_ref) {
        let at = git_ref
            .char_indices()
            .nth(error.offset)
            .and_then(|(offset, _)| after.get(offset..))
            .unwrap_or(after);
        return fail(at, error.message);
    }
    Ok((rest, (app, Some(git_ref.to_owned()))))
}

/// `/host,host` after an environment, or nothing.
fn hosts(input: &str) -> Res<'_, Vec<String>> {
    let Some(mut rest) = input.strip_prefix('/') else {
        return Ok((input, Vec::new()));
    };
    let mut hosts = Vec::new();
    loop {
        let Ok((after, host)) = take_while1::<_, _, Fail>(is_host_char).parse(rest) else {
            return fail(
                rest,
                "expected a host name: letters, digits, `-`, `_`, `.` and `:`",
            );
        };
        hosts.push(host.to_owned());
        match after.strip_prefix(',') {
            Some(next) => rest = next,
            None if ends_part(after) => return Ok((after, hosts)),
            None => {
                return fail(
                    after,
                    format!("unexpected `{}` in the hosts", next_char(after)),
                );
            }
        }
    }
}

/// `deploys app [in|to|on env]`, after the word `deploys`.
fn deploys(input: &str) -> Res<'_, Command> {
    if !ends_word(input) {
        return fail(
            input,
            format!("unexpected `{}` after `deploys`", next_char(input)),
        );
    }
    let (rest, _) = ws0(input)?;
    let (rest, app) = name(rest, "an app name", Some("`deploys`"), &['/'])?;
    if rest.starts_with('/') {
        return fail(
            rest,
            "`deploys` lists an app's deployments: it takes no ref",
        );
    }
    let (rest, _) = ws0(rest)?;
    if rest.is_empty() {
        return Ok((
            rest,
            Command::Deploys {
                app,
                environment: None,
            },
        ));
    }
    let Ok((after, word)) = preposition(rest) else {
        return fail_with(
            rest,
            "expected `in`, `to` or `on` after the app",
            nearest(first_word(rest), PREPOSITIONS),
        );
    };
    let (after, _) = ws0(after)?;
    let preposition = format!("`{}`", word.to_ascii_lowercase());
    let (rest, environment) = name(after, "an environment name", Some(&preposition), &[])?;
    Ok((
        rest,
        Command::Deploys {
            app,
            environment: Some(environment),
        },
    ))
}

/// `where can I deploy app[?]`, after the word `where`.
fn where_can_i_deploy(input: &str) -> Res<'_, Command> {
    let (rest, ()) = expect_word(input, "can", "`where`")?;
    let (rest, ()) = expect_word(rest, "I", "`where can`")?;
    let (rest, ()) = expect_word(rest, "deploy", "`where can I`")?;
    let (rest, _) = ws0(rest)?;
    let (rest, app) = name(rest, "an app name", Some("`where can I deploy`"), &['?'])?;
    let (rest, _) = opt(char('?')).parse(rest)?;
    Ok((rest, Command::WhereCanIDeploy { app }))
}

/// `help [command]`, after the word `help`.
fn help(input: &str) -> Res<'_, Command> {
    if !ends_word(input) {
        return fail(
            input,
            format!("unexpected `{}` after `help`", next_char(input)),
        );
    }
    let (rest, _) = ws0(input)?;
    if rest.is_empty() {
        return Ok((rest, Command::Help { topic: None }));
    }
    let (rest, _) = opt(one_of("./")).parse(rest)?;
    let (rest, topic) = name(rest, "a command name", Some("`help`"), &[':'])?;
    let Some(after) = rest.strip_prefix(':') else {
        return Ok((rest, Command::Help { topic: Some(topic) }));
    };
    // `help deploy:cancel`: the command as typed, documented as `cancel`.
    let (after, suffix) = take_while(is_task_char).parse(after)?;
    if topic != DEFAULT_TASK || !suffix.eq_ignore_ascii_case(CANCEL) {
        return fail(
            rest,
            format!("unexpected `:` in a command name (use {NAME_CHARS})"),
        );
    }
    if !ends_part(after) {
        return fail(
            after,
            format!(
                "unexpected `{}` in a command name (use {NAME_CHARS})",
                next_char(after)
            ),
        );
    }
    Ok((
        after,
        Command::Help {
            topic: Some(CANCEL.to_owned()),
        },
    ))
}

/// `whoami`, after the word: nothing follows it.
fn whoami(input: &str) -> Res<'_, Command> {
    if ends_word(input) {
        Ok((input, Command::WhoAmI))
    } else {
        fail(
            input,
            format!("unexpected `{}` after `whoami`", next_char(input)),
        )
    }
}
