//! `approve` and `reject`: votes on a deployment request that waits for
//! approvals (deploy.yml's `approvals`), named by the number hoist gave
//! it ("Deployment request #12 waits for ...").
//!
//! `approve [#N]` and `reject [#N] [reason...]`. The first word, if any,
//! is the request number, with or without `#`: digits only, from 1. What
//! follows the number is `reject`'s reason, by `lock`'s rules (see
//! [`super::reason`]): as typed, after an optional `:` or `--reason`,
//! which one of is needed when no number comes first. `approve` takes
//! nothing after the number.

use nom::Parser;
use nom::bytes::complete::take_till;

use super::locks::option;
use super::{Fail, Res, ends_word, excerpt, fail, first_word, next_char, reason, ws0};
use crate::command::Command;

/// The keyword of [`Command::Approve`], and its name in the catalogue.
pub(crate) const APPROVE: &str = "approve";

/// The keyword of [`Command::Reject`], and its name in the catalogue.
pub(crate) const REJECT: &str = "reject";

/// Whether `reason` reads back as itself when typed bare after a request
/// number: not when it starts as a `:` or an option would. Render puts
/// any other after `--reason`.
pub(crate) fn reads_bare(reason: &str) -> bool {
    !reason.is_empty()
        && reason.trim() == reason
        && !reason.starts_with(':')
        && !reason.starts_with("--")
}

/// After `command`'s keyword: whitespace, the end, or (`reject` only)
/// the `:` of a reason.
fn after_keyword<'a>(input: &'a str, command: &str) -> Res<'a, ()> {
    if ends_word(input) || (command == REJECT && input.starts_with(':')) {
        Ok((input, ()))
    } else {
        fail(
            input,
            format!("unexpected `{}` after `{command}`", next_char(input)),
        )
    }
}

/// The request number, `12` or `#12`, which `input` starts at; `hint`
/// is added to the refusal of a word that is not one.
fn request_number<'a>(input: &'a str, command: &str, hint: &str) -> Res<'a, u64> {
    let (rest, typed) =
        take_till::<_, _, Fail>(|c: char| c.is_whitespace() || c == ':').parse(input)?;
    let digits = typed.strip_prefix('#').unwrap_or(typed);
    if digits.is_empty() {
        return fail(
            rest,
            format!("expected a request number after `#`, as in `{command} #12`"),
        );
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        // A word without `#` may have been meant as something else.
        let hint = if typed.starts_with('#') { "" } else { hint };
        return fail(
            input,
            format!(
                "`{}` is not a request number: `{command} #12`{hint}",
                excerpt(typed)
            ),
        );
    }
    match digits.parse::<u64>() {
        Ok(0) => fail(
            input,
            format!(
                "`{}` is not a request number: they start at 1, as in `{command} #12`",
                excerpt(typed)
            ),
        ),
        Ok(number) => Ok((rest, number)),
        Err(_) => fail(
            input,
            format!("`{}` is not a request number: too large", excerpt(typed)),
        ),
    }
}

/// `approve [#N]`, after the word `approve`: the number and nothing
/// else.
pub(in crate::command) fn approve(input: &str) -> Res<'_, Command> {
    const NO_REASON: &str = "`approve` takes no reason: only `reject` does";
    const ALONE: &str = "`approve` takes a request number alone, as in `approve #12`";
    if input.starts_with(':') {
        return fail(input, NO_REASON);
    }
    let (rest, ()) = after_keyword(input, APPROVE)?;
    let (rest, _) = ws0(rest)?;
    if rest.is_empty() {
        return Ok((rest, Command::Approve { request: None }));
    }
    if rest.starts_with(':') {
        return fail(rest, NO_REASON);
    }
    if rest.starts_with("--") {
        let typed = first_word(rest);
        let message = if typed.eq_ignore_ascii_case("--reason") {
            NO_REASON.to_owned()
        } else {
            format!("unexpected `{}`: {ALONE}", excerpt(typed))
        };
        return fail(rest, message);
    }
    let (after, number) = request_number(rest, APPROVE, "")?;
    let (after, _) = ws0(after)?;
    if after.is_empty() {
        return Ok((
            after,
            Command::Approve {
                request: Some(number),
            },
        ));
    }
    if after.starts_with(':') {
        return fail(after, NO_REASON);
    }
    fail(
        after,
        format!("unexpected `{}`: {ALONE}", excerpt(first_word(after))),
    )
}

/// `reject [#N] [reason...]`, after the word `reject`.
pub(in crate::command) fn reject(input: &str) -> Res<'_, Command> {
    const NO_NUMBER: &str = " (a reason with no number before it goes after `:` or `--reason`)";
    let (rest, ()) = after_keyword(input, REJECT)?;
    let (rest, _) = ws0(rest)?;
    let (rest, request) = if rest.is_empty() || rest.starts_with(':') || rest.starts_with("--") {
        (rest, None)
    } else {
        let (rest, number) = request_number(rest, REJECT, NO_NUMBER)?;
        (rest, Some(number))
    };
    let (rest, _) = ws0(rest)?;
    if rest.is_empty() {
        return Ok((
            rest,
            Command::Reject {
                request,
                reason: None,
            },
        ));
    }
    let (rest, why) = if let Some(after) = rest.strip_prefix(':') {
        reason::reason(after, "`:`")?
    } else if rest.starts_with("--") {
        let (after, _) = option(rest, REJECT, &["reason"])?;
        reason::after_option(after)?
    } else {
        // Only reachable after a number: a plain word first is one.
        reason::reason(rest, "the request number")?
    };
    Ok((
        rest,
        Command::Reject {
            request,
            reason: Some(why),
        },
    ))
}
