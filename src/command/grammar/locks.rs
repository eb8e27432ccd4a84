//! `lock`, `unlock` and `locks`: environment locks, after
//! github/branch-deploy's `.lock`/`.unlock` and SlashDeploy's
//! `lock ENV on REPO: message`.
//!
//! `lock [env] [for app] [for DURATION] [reason...]`, with `--global`
//! anywhere before the reason. The parts are read in that order, so a
//! word's place says what it is:
//!
//! - the first plain word is the environment, unless `for` or an option
//!   came first;
//! - after `for`, a word that starts with a digit and has only digits and
//!   unit letters (`2h`, `1h30m`, `90`) is a duration, any other the app;
//! - the rest, once a plain word can no longer be the environment, is the
//!   reason, as typed; `:` or `--reason` starts it anywhere.

use nom::Parser;
use nom::bytes::complete::take_while;

use super::super::duration;
use super::reason;
use super::{
    Fail, NAME_CHARS, Res, ends_word, excerpt, fail, fail_with, first_word, is_name_char, keyword,
    name, next_char, preposition, ws0,
};
use crate::command::Command;
use crate::suggest::nearest;

/// The refusal of an environment or app named beside `--global`, by
/// `lock` and by `unlock`.
const GLOBAL_NAMES_NONE: [&str; 2] = [
    "`--global` locks every environment; name none",
    "`--global` releases the lock on every environment; name none",
];

/// Whether `reason` reads back as itself when typed bare where a reason
/// may start (after the environment, the app or the duration): not when
/// it starts as a `:`, an option, `for` or `to`/`in`/`on` would. Render
/// puts any other after `--reason`.
pub(crate) fn reads_bare(reason: &str) -> bool {
    !reason.is_empty()
        && reason.trim() == reason
        && !reason.starts_with(':')
        && !reason.starts_with("--")
        && keyword("for")(reason).is_err()
        && preposition(reason).is_err()
}

/// Whether a name, a duration or an option ends here: whitespace, the
/// end, or the `:` before a reason.
fn ends_lock_part(input: &str) -> bool {
    ends_word(input) || input.starts_with(':')
}

/// A name in a lock command: [`name`], but ending only where
/// [`ends_lock_part`] says (a `|` has no meaning here).
fn lock_name<'a>(input: &'a str, noun: &str, after: Option<&str>) -> Res<'a, String> {
    let (rest, name) = name(input, noun, after, &[':'])?;
    if ends_lock_part(rest) {
        Ok((rest, name))
    } else {
        fail(
            rest,
            format!(
                "unexpected `{}` in {noun} (use {NAME_CHARS})",
                next_char(rest)
            ),
        )
    }
}

/// The word a name or a duration would be read from.
fn token(input: &str) -> &str {
    take_while::<_, _, Fail>(is_name_char)
        .parse(input)
        .map_or("", |(_, token)| token)
}

/// The refusal of `!`, which branch-deploy reads as "steal the lock".
const NO_BANG: &str = "`lock` has no `!`: to take a lock someone else holds, `unlock` it \
                       first, which the audit log records";

/// After `command`'s keyword: whitespace, the end, or (`lock` only) the
/// `:` of a reason.
fn after_keyword<'a>(input: &'a str, command: &str, colon: bool) -> Res<'a, ()> {
    if command == "lock" && input.starts_with('!') {
        return fail(input, NO_BANG);
    }
    if ends_word(input) || (colon && input.starts_with(':')) {
        Ok((input, ()))
    } else {
        fail(
            input,
            format!("unexpected `{}` after `{command}`", next_char(input)),
        )
    }
}

/// `to`, `in` or `on` where the environment or the reason would start:
/// deploy's syntax, which would otherwise lock the wrong thing
/// (`lock api in production` would lock environment `api`).
fn refuse_preposition<'a, T>(input: &'a str, command: &str) -> Res<'a, T> {
    let word = first_word(input).to_ascii_lowercase();
    let reason = if command == "lock" {
        format!(" (a reason that starts with `{word}` goes after `:`)")
    } else {
        String::new()
    };
    fail(
        input,
        format!("`{command}` takes no `{word}`: write `{command} production for api`{reason}"),
    )
}

/// An option after `--`: its name, lower-cased, and the input after it.
/// Only `known` options pass; any other is refused with the nearest.
pub(super) fn option<'a>(
    input: &'a str,
    command: &str,
    known: &[&'static str],
) -> Res<'a, &'static str> {
    let after_dashes = input.get(2..).unwrap_or_default();
    let (rest, typed) = take_while::<_, _, Fail>(|c: char| c.is_ascii_alphanumeric() || c == '-')
        .parse(after_dashes)?;
    let listed = known
        .iter()
        .map(|k| format!("`--{k}`"))
        .collect::<Vec<_>>()
        .join(" and ");
    let lowered = typed.to_ascii_lowercase();
    let Some(found) = known.iter().find(|k| **k == lowered) else {
        let message = if typed.is_empty() {
            format!("expected an option after `--`: `{command}` takes {listed}")
        } else {
            format!(
                "unknown option `--{}`: `{command}` takes {listed}",
                excerpt(typed)
            )
        };
        let suggestion = nearest(&lowered, known.iter().copied()).map(|k| format!("--{k}"));
        return fail_with(input, message, suggestion.as_deref());
    };
    if !ends_lock_part(rest) {
        return fail(
            rest,
            format!("unexpected `{}` after `--{found}`", next_char(rest)),
        );
    }
    Ok((rest, found))
}

/// What `for` introduced: an app or a duration.
enum ForWhat {
    App(String),
    Duration(u64),
}

/// The word after `for`, which `input` starts just after.
fn for_what<'a>(input: &'a str, command: &str) -> Res<'a, ForWhat> {
    let (at, _) = ws0(input)?;
    let word = token(at);
    if !duration::looks_like(word) {
        let noun = if word.is_empty() && command == "lock" {
            "an app name or a duration"
        } else {
            "an app name"
        };
        let (rest, app) = lock_name(at, noun, Some("`for`"))?;
        return Ok((rest, ForWhat::App(app)));
    }
    if command != "lock" {
        return fail(
            at,
            format!("`{command}` takes no duration: it releases the lock now"),
        );
    }
    let rest = at.get(word.len()..).unwrap_or_default();
    if !ends_lock_part(rest) {
        return fail(
            rest,
            format!("unexpected `{}` in a duration", next_char(rest)),
        );
    }
    match duration::parse(word) {
        Ok(secs) => Ok((rest, ForWhat::Duration(secs))),
        Err(error) => fail(at.get(error.offset..).unwrap_or(at), error.message),
    }
}

/// The first plain word, as the environment: not a duration (`lock 2h`
/// means `lock for 2h`) and not `to`/`in`/`on`.
fn environment<'a>(input: &'a str, command: &str) -> Res<'a, String> {
    if preposition(input).is_ok() {
        return refuse_preposition(input, command);
    }
    let word = token(input);
    if word.eq_ignore_ascii_case("for") {
        // `for:`, which is not the keyword `for` (that ends at a space).
        let noun = if command == "lock" {
            "an app name or a duration"
        } else {
            "an app name"
        };
        let after = input.get(word.len()..).unwrap_or_default();
        return fail(after, format!("expected {noun} after `for`"));
    }
    if duration::looks_like(word) {
        let how = if command == "lock" {
            format!(
                "`{}` is not an environment: a duration goes after `for`, as in \
                 `lock for {}` or `lock production for {}`",
                excerpt(word),
                excerpt(word),
                excerpt(word)
            )
        } else {
            format!("`{command}` takes no duration: it releases the lock now")
        };
        return fail(input, how);
    }
    lock_name(input, "an environment name", None)
}

/// The environment, app and `--global` of a `lock` or `unlock`, and what
/// `lock` alone reads besides.
struct Target<'a> {
    /// `lock`, not `unlock`: for the messages.
    lock: bool,
    environment: Option<(String, &'a str)>,
    app: Option<(String, &'a str)>,
    global: bool,
    duration: Option<u64>,
}

impl<'a> Target<'a> {
    fn new(lock: bool) -> Self {
        Target {
            lock,
            environment: None,
            app: None,
            global: false,
            duration: None,
        }
    }

    fn global_names_none(&self) -> &'static str {
        GLOBAL_NAMES_NONE[usize::from(!self.lock)]
    }

    /// Whether a plain word here would be the environment: nothing but
    /// `--global` was read yet.
    fn expects_environment(&self) -> bool {
        self.environment.is_none() && self.app.is_none() && self.duration.is_none()
    }

    fn set_global(&mut self, at: &'a str) -> Res<'a, ()> {
        if self.global {
            return fail(at, "`--global` is given twice");
        }
        if let Some((_, named)) = self.environment.as_ref().or(self.app.as_ref()) {
            return fail(named, self.global_names_none());
        }
        self.global = true;
        Ok((at, ()))
    }

    fn set_environment(&mut self, environment: String, at: &'a str) -> Res<'a, ()> {
        if self.global {
            let hint = if self.lock {
                " (a reason goes after `:` or `--reason`)"
            } else {
                ""
            };
            return fail(at, format!("{}{hint}", self.global_names_none()));
        }
        self.environment = Some((environment, at));
        Ok((at, ()))
    }

    fn set_for(&mut self, what: ForWhat, at: &'a str) -> Res<'a, ()> {
        match what {
            ForWhat::App(app) => {
                if self.global {
                    return fail(at, self.global_names_none());
                }
                if let Some((known, _)) = &self.app {
                    let hint = if self.lock {
                        " (a reason that starts with `for` goes after `:`)"
                    } else {
                        ""
                    };
                    return fail(
                        at,
                        format!("the app is already `{known}`: `for` names one app{hint}"),
                    );
                }
                self.app = Some((app, at));
            }
            ForWhat::Duration(secs) => {
                if let Some(known) = self.duration {
                    return fail(
                        at,
                        format!(
                            "the duration is already `{}`: `for` gives one duration",
                            duration::format(known)
                        ),
                    );
                }
                self.duration = Some(secs);
            }
        }
        Ok((at, ()))
    }
}

/// `lock [env] [for app] [for DURATION] [reason...]` or
/// `lock --global [for DURATION] [reason...]`, after the word `lock`.
pub(in crate::command) fn lock(input: &str) -> Res<'_, Command> {
    const COMMAND: &str = "lock";
    let (mut rest, ()) = after_keyword(input, COMMAND, true)?;
    let mut target = Target::new(true);
    let mut why = None;
    loop {
        (rest, _) = ws0(rest)?;
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix(':') {
            let (after, text) = reason::reason(after, "`:`")?;
            why = Some(text);
            rest = after;
            break;
        }
        if rest.starts_with("--") {
            let (after, found) = option(rest, COMMAND, &["global", "reason"])?;
            if found == "global" {
                target.set_global(rest)?;
                rest = after;
                continue;
            }
            let (after, text) = reason::after_option(after)?;
            why = Some(text);
            rest = after;
            break;
        }
        if let Ok((after, _)) = keyword("for")(rest) {
            let (at, _) = ws0(after)?;
            let (after, what) = for_what(at, COMMAND)?;
            target.set_for(what, at)?;
            rest = after;
            continue;
        }
        if target.expects_environment() {
            if rest.starts_with('!') {
                return fail(rest, NO_BANG);
            }
            let (after, environment) = environment(rest, COMMAND)?;
            target.set_environment(environment, rest)?;
            rest = after;
            continue;
        }
        if preposition(rest).is_ok() {
            return refuse_preposition(rest, COMMAND);
        }
        let (after, text) = reason::reason(rest, "the lock")?;
        why = Some(text);
        rest = after;
        break;
    }
    Ok((
        rest,
        Command::Lock {
            environment: target.environment.map(|(environment, _)| environment),
            app: target.app.map(|(app, _)| app),
            global: target.global,
            duration_secs: target.duration,
            reason: why,
        },
    ))
}

/// `unlock [env] [for app]` or `unlock --global`, after the word
/// `unlock`: no duration and no reason, each refused where it starts.
pub(in crate::command) fn unlock(input: &str) -> Res<'_, Command> {
    const COMMAND: &str = "unlock";
    const NO_REASON: &str = "`unlock` takes no reason: it releases the lock";
    if input.starts_with(':') {
        return fail(input, NO_REASON);
    }
    let (mut rest, ()) = after_keyword(input, COMMAND, false)?;
    let mut target = Target::new(false);
    loop {
        (rest, _) = ws0(rest)?;
        if rest.is_empty() {
            break;
        }
        if rest.starts_with(':') {
            return fail(rest, NO_REASON);
        }
        if rest.starts_with("--") {
            let typed = rest.get(2..).unwrap_or_default();
            if typed
                .get(..6)
                .is_some_and(|w| w.eq_ignore_ascii_case("reason"))
                && ends_lock_part(typed.get(6..).unwrap_or_default())
            {
                return fail(rest, NO_REASON);
            }
            let (after, _) = option(rest, COMMAND, &["global"])?;
            target.set_global(rest)?;
            rest = after;
            continue;
        }
        if let Ok((after, _)) = keyword("for")(rest) {
            let (at, _) = ws0(after)?;
            let (after, what) = for_what(at, COMMAND)?;
            target.set_for(what, at)?;
            rest = after;
            continue;
        }
        if target.expects_environment() {
            let (after, environment) = environment(rest, COMMAND)?;
            target.set_environment(environment, rest)?;
            rest = after;
            continue;
        }
        if preposition(rest).is_ok() {
            return refuse_preposition(rest, COMMAND);
        }
        return fail(
            rest,
            format!("unexpected `{}`: {NO_REASON}", excerpt(first_word(rest))),
        );
    }
    Ok((
        rest,
        Command::Unlock {
            environment: target.environment.map(|(environment, _)| environment),
            app: target.app.map(|(app, _)| app),
            global: target.global,
        },
    ))
}

/// `locks [app]`, after the word `locks`.
pub(in crate::command) fn locks(input: &str) -> Res<'_, Command> {
    const COMMAND: &str = "locks";
    const ALONE: &str = "`locks` takes an app alone, as in `locks api`, and lists its locks \
                         in every environment";
    let (rest, ()) = after_keyword(input, COMMAND, false)?;
    let (rest, _) = ws0(rest)?;
    if rest.is_empty() {
        return Ok((rest, Command::Locks { app: None }));
    }
    if rest.starts_with("--") || keyword("for")(rest).is_ok() || preposition(rest).is_ok() {
        return fail(rest, ALONE);
    }
    let (after, app) = lock_name(rest, "an app name", Some("`locks`"))?;
    let (after, _) = ws0(after)?;
    if after.is_empty() {
        return Ok((after, Command::Locks { app: Some(app) }));
    }
    if after.starts_with(':') {
        return fail(after, format!("unexpected `:`: {ALONE}"));
    }
    fail(
        after,
        format!("unexpected `{}`: {ALONE}", excerpt(first_word(after))),
    )
}
