//! The one error a malformed command produces, worded for the person who
//! typed it: what was wrong, where, the nearest valid word and the usage.

use std::fmt;

/// A command that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based position of the problem, counted in chars of the text as
    /// it was received (mention and prefix included).
    pub column: usize,
    /// What was wrong, short and lower case: "expected `to`, `in` or `on`
    /// after the app".
    pub message: String,
    /// The usage line of the command being typed, from the catalogue;
    /// `None` when no command keyword was recognised.
    pub usage: Option<&'static str>,
    /// The nearest valid word to a misspelled keyword.
    pub suggestion: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "I couldn't read that: {} at column {}",
            self.message, self.column
        )?;
        if let Some(suggestion) = &self.suggestion {
            write!(f, " (did you mean `{suggestion}`?)")?;
        }
        match self.usage {
            Some(usage) => write!(f, ". Usage: `{usage}`"),
            None => write!(f, ". Type `help` to see the commands."),
        }
    }
}

impl std::error::Error for ParseError {}

/// Shows a piece of user text inside a message: escaped, so control
/// characters cannot garble the reply, and cut short, so a pasted novel
/// does not become a novel-sized reply.
pub(crate) fn excerpt(text: &str) -> String {
    /// Enough to recognise a word, short enough for one chat line.
    const MAX_EXCERPT_CHARS: usize = 24;
    let mut shown: String = text
        .chars()
        .take(MAX_EXCERPT_CHARS)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MAX_EXCERPT_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::{ParseError, excerpt};

    #[test]
    fn renders_one_line_with_usage_and_suggestion() {
        let error = ParseError {
            column: 13,
            message: "expected `to`, `in` or `on` after the app".into(),
            usage: Some("deploy app [to env]"),
            suggestion: Some("to".into()),
        };
        assert_eq!(
            error.to_string(),
            "I couldn't read that: expected `to`, `in` or `on` after the app at column 13 \
             (did you mean `to`?). Usage: `deploy app [to env]`"
        );
    }

    #[test]
    fn points_to_help_without_a_usage() {
        let error = ParseError {
            column: 1,
            message: "unknown command `hello`".into(),
            usage: None,
            suggestion: None,
        };
        assert_eq!(
            error.to_string(),
            "I couldn't read that: unknown command `hello` at column 1. \
             Type `help` to see the commands."
        );
    }

    #[test]
    fn excerpts_are_escaped_and_short() {
        assert_eq!(excerpt("a\u{7}b"), "a\\u{7}b");
        assert_eq!(excerpt(&"x".repeat(100)), format!("{}…", "x".repeat(24)));
    }
}
