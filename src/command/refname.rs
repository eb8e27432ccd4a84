//! Git ref names as `git check-ref-format --allow-onelevel` accepts them.
//!
//! A ref typed in chat ends up in API calls and, with the local forge, in
//! `git` invocations, so it is checked here, before anything sees it. The
//! rules are git's (see `git help check-ref-format`), plus a length cap.
//! Non-ASCII text is allowed because git allows it.

/// The longest ref hoist accepts, in bytes. Git has no limit of its own,
/// but file systems cap a path component near 255 bytes and a chat ref
/// longer than that is a paste accident.
pub const MAX_REF_BYTES: usize = 255;

/// Why a ref was rejected: the rule broken, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError {
    /// Offset of the offending part, in chars from the start of the ref.
    pub offset: usize,
    /// The rule that was broken, worded for the person who typed it.
    pub message: String,
}

impl RefError {
    fn at(reference: &str, byte_offset: usize, message: impl Into<String>) -> Self {
        let offset = reference
            .get(..byte_offset)
            .map_or(0, |before| before.chars().count());
        Self {
            offset,
            message: message.into(),
        }
    }
}

/// Checks `reference` against git's ref-name rules.
pub fn check_ref(reference: &str) -> Result<(), RefError> {
    if reference.is_empty() {
        return Err(RefError::at(reference, 0, "a ref cannot be empty"));
    }
    if reference.len() > MAX_REF_BYTES {
        return Err(RefError::at(
            reference,
            0,
            format!("a ref can be at most {MAX_REF_BYTES} bytes long"),
        ));
    }
    if reference == "@" {
        return Err(RefError::at(reference, 0, "a ref cannot be just `@`"));
    }
    for (at, c) in reference.char_indices() {
        if c.is_ascii_control() {
            return Err(RefError::at(
                reference,
                at,
                "a ref cannot contain control characters",
            ));
        }
        if matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\') {
            return Err(RefError::at(
                reference,
                at,
                format!("a ref cannot contain `{c}`"),
            ));
        }
    }
    if let Some(at) = reference.find("..") {
        return Err(RefError::at(reference, at, "a ref cannot contain `..`"));
    }
    if let Some(at) = reference.find("@{") {
        return Err(RefError::at(reference, at, "a ref cannot contain `@{`"));
    }
    if let Some(at) = reference.find("//") {
        return Err(RefError::at(reference, at, "a ref cannot contain `//`"));
    }
    if reference.starts_with('-') {
        return Err(RefError::at(reference, 0, "a ref cannot start with `-`"));
    }
    if reference.starts_with('/') {
        return Err(RefError::at(reference, 0, "a ref cannot start with `/`"));
    }
    let last = reference.len() - reference.chars().last().map_or(0, char::len_utf8);
    if reference.ends_with('/') {
        return Err(RefError::at(reference, last, "a ref cannot end with `/`"));
    }
    if reference.ends_with('.') {
        return Err(RefError::at(reference, last, "a ref cannot end with `.`"));
    }
    check_components(reference)
}

/// The per-component rules: no component starts with `.` or ends with
/// `.lock` (git uses `NAME.lock` files to lock `NAME`).
fn check_components(reference: &str) -> Result<(), RefError> {
    let mut start = 0;
    for component in reference.split('/') {
        if component.starts_with('.') {
            return Err(RefError::at(
                reference,
                start,
                "a ref component cannot start with `.`",
            ));
        }
        if component.ends_with(".lock") {
            let at = start + component.len() - ".lock".len();
            return Err(RefError::at(
                reference,
                at,
                "a ref component cannot end with `.lock`",
            ));
        }
        start += component.len() + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{MAX_REF_BYTES, RefError, check_ref};

    fn rejected(reference: &str) -> RefError {
        match check_ref(reference) {
            Ok(()) => panic!("{reference:?} should be rejected"),
            Err(error) => error,
        }
    }

    #[test]
    fn accepts_what_git_accepts() {
        for good in [
            "main",
            "feature-x",
            "feature/x",
            "refs/heads/main",
            "v1.2.3",
            "a.b",
            "@foo",
            "foo@bar",
            "hotfix/ümlaut",
            "功能/分支",
            "a|b",
            "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef",
            "lock",
            "x.locked",
        ] {
            assert_eq!(check_ref(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn names_each_broken_rule_and_where() {
        let cases = [
            ("", 0, "cannot be empty"),
            ("@", 0, "just `@`"),
            ("a..b", 1, "`..`"),
            ("main@{1}", 4, "`@{`"),
            ("a b", 1, "` `"),
            ("a\u{7}b", 1, "control characters"),
            ("a\u{7f}", 1, "control characters"),
            ("a~1", 1, "`~`"),
            ("a^", 1, "`^`"),
            ("a:b", 1, "`:`"),
            ("a?", 1, "`?`"),
            ("a*", 1, "`*`"),
            ("a[b", 1, "`[`"),
            ("a\\b", 1, "`\\`"),
            ("-x", 0, "start with `-`"),
            ("/x", 0, "start with `/`"),
            ("a//b", 1, "`//`"),
            ("a/", 1, "end with `/`"),
            ("a.", 1, "end with `.`"),
            ("main.lock", 4, "`.lock`"),
            ("a.lock/b", 1, "`.lock`"),
            (".hidden", 0, "start with `.`"),
            ("a/.b", 2, "start with `.`"),
            ("ü/.b", 2, "start with `.`"),
        ];
        for (reference, offset, message) in cases {
            let error = rejected(reference);
            assert_eq!(error.offset, offset, "{reference:?}: {error:?}");
            assert!(error.message.contains(message), "{reference:?}: {error:?}");
        }
    }

    #[test]
    fn caps_the_length_in_bytes() {
        assert_eq!(check_ref(&"a".repeat(MAX_REF_BYTES)), Ok(()));
        assert!(
            rejected(&"a".repeat(MAX_REF_BYTES + 1))
                .message
                .contains("255 bytes")
        );
        // 128 two-byte chars are 256 bytes: too long though only 128 chars.
        assert!(rejected(&"ü".repeat(128)).message.contains("255 bytes"));
    }
}
