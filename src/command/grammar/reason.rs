//! The free text some commands end with: `lock`'s reason and
//! `reject`'s. The rules are one: an optional `:` or `--reason` starts
//! it, the rest of the line is read as typed (no quotes needed) and
//! trimmed, at most [`MAX_REASON_CHARS`], and never empty.

use super::{Res, fail, ws0};

/// The longest reason, in chars: a sentence, not a paste.
pub(super) const MAX_REASON_CHARS: usize = 200;

/// The reason: the rest of the text, trimmed, at most
/// [`MAX_REASON_CHARS`]; `after` names what introduced it, for the
/// message when nothing follows.
pub(super) fn reason<'a>(input: &'a str, after: &str) -> Res<'a, String> {
    let (start, _) = ws0(input)?;
    let reason = start.trim_end();
    if reason.is_empty() {
        return fail(start, format!("expected a reason after {after}"));
    }
    if let Some((offset, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
        return fail(
            start.get(offset..).unwrap_or(start),
            format!("a reason has at most {MAX_REASON_CHARS} characters; this one goes on"),
        );
    }
    Ok((
        start.get(start.len()..).unwrap_or_default(),
        reason.to_owned(),
    ))
}

/// The reason after the option `--reason`, which `input` starts just
/// after: a space first, not a `:`.
pub(super) fn after_option(input: &str) -> Res<'_, String> {
    if input.starts_with(':') {
        return fail(input, "write `--reason TEXT`, without `:`");
    }
    reason(input, "`--reason`")
}
