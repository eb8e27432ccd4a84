//! Deploy parameters: `| key=value key="a value" --key=value --flag`,
//! after branch-deploy's parameter syntax. They reach the deploy script as
//! `payload.params`, so values are kept exactly as typed (quotes removed).

use nom::Parser;
use nom::bytes::complete::{tag, take_till, take_while1};
use nom::combinator::opt;

use super::{Fail, Res, ends_word, excerpt, fail, first_word, is_name_char, next_char, ws0};

/// `key=value ...` after `|`: at least one, keys unique, order kept.
pub(super) fn params(input: &str) -> Res<'_, Vec<(String, String)>> {
    let mut params: Vec<(String, String)> = Vec::new();
    let mut rest = input;
    loop {
        let (next, _) = ws0(rest)?;
        if next.is_empty() {
            if params.is_empty() {
                return fail(next, "expected `key=value` after `|`");
            }
            return Ok((next, params));
        }
        let (after, (key, value)) = param(next)?;
        if params.iter().any(|(known, _)| *known == key) {
            let key_at = next.trim_start_matches('-');
            return fail(
                key_at,
                format!("parameter `{}` is given twice", excerpt(&key)),
            );
        }
        params.push((key, value));
        if !ends_word(after) {
            return fail(
                after,
                format!("unexpected `{}` after a parameter", next_char(after)),
            );
        }
        rest = after;
    }
}

/// One parameter: `key=value`, `key="a value"`, `--key=value` or a bare
/// `--flag`, which means `flag=true`.
fn param(input: &str) -> Res<'_, (String, String)> {
    let (rest, dashes) = opt(tag("--")).parse(input)?;
    let key_ok = rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
    let parsed = take_while1::<_, _, Fail>(is_name_char).parse(rest);
    let (Ok((rest, key)), true) = (parsed, key_ok) else {
        return fail(
            rest,
            format!(
                "expected `key=value`, not `{}`: keys use letters, digits, `-`, `_` and `.`",
                excerpt(first_word(rest))
            ),
        );
    };
    if let Some(after) = rest.strip_prefix('=') {
        let (rest, value) = value(after)?;
        return Ok((rest, (key.to_owned(), value)));
    }
    if dashes.is_some() && ends_word(rest) {
        return Ok((rest, (key.to_owned(), "true".to_owned())));
    }
    let message = if dashes.is_some() {
        format!("expected `=` or a space after `--{}`", excerpt(key))
    } else {
        format!(
            "expected `=` after `{}` (or write `--{}` for a flag)",
            excerpt(key),
            excerpt(key)
        )
    };
    fail(rest, message)
}

/// A value: up to the next whitespace, or in double quotes where `\"`
/// and `\\` stand for `"` and `\` and every other character is itself.
fn value(input: &str) -> Res<'_, String> {
    let Some(quoted) = input.strip_prefix('"') else {
        let (rest, value) = take_till(|c: char| c.is_whitespace() || c == '"').parse(input)?;
        if rest.starts_with('"') {
            return fail(
                rest,
                "a quote must start the value: write `key=\"a value\"`",
            );
        }
        return Ok((rest, value.to_owned()));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((quoted.get(at + 1..).unwrap_or_default(), value)),
            '\\' => match chars.clone().next() {
                Some((_, escaped @ ('"' | '\\'))) => {
                    value.push(escaped);
                    chars.next();
                }
                _ => value.push(c),
            },
            _ => value.push(c),
        }
    }
    fail(input, "this quote is never closed")
}
