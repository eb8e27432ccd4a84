//! Unit tests of `parse` and `parse_comment`: error positions, the
//! suggestions, and the edges of the grammar the catalogue does not show.

use super::{Command, DeployRequest, MAX_INPUT_CHARS, ParseError, parse, parse_comment};

fn rejected(text: &str) -> ParseError {
    match parse(text) {
        Ok(command) => panic!("{text:?} should not parse, got {command:?}"),
        Err(error) => error,
    }
}

fn deploy(text: &str) -> DeployRequest {
    match parse(text) {
        Ok(Command::Deploy(request)) => request,
        other => panic!("{text:?} should be a deploy, got {other:?}"),
    }
}

#[test]
fn misspelled_keywords_get_a_suggestion_and_a_column() {
    let cases: [(&str, usize, Option<&str>, Option<&str>); 8] = [
        ("deplyo demo", 1, Some("deploy"), Some("deploy")),
        ("  .deplo demo", 4, Some("deploy"), Some("deploy")),
        ("@hoist noo demo", 8, Some("noop"), Some("noop")),
        ("hello there", 1, None, None),
        ("deploy demo tu staging", 13, Some("to"), Some("deploy")),
        ("deploy demo staging", 13, None, Some("deploy")),
        ("deploys demo ni staging", 14, Some("in"), Some("deploys")),
        ("where cna i deploy demo", 7, Some("can"), Some("where")),
    ];
    for (text, column, suggestion, command) in cases {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert_eq!(error.suggestion.as_deref(), suggestion, "{text:?}: {error}");
        assert_eq!(
            error.usage,
            command.and_then(super::usage),
            "{text:?}: {error}"
        );
    }
}

#[test]
fn the_reply_is_one_line_with_usage() {
    assert_eq!(
        rejected("deploy demo tu staging").to_string(),
        "I couldn't read that: expected `to`, `in` or `on` after the app at column 13 \
         (did you mean `to`?). Usage: \
         `deploy[:task][!] app[/ref] [to|in|on env[/host,...]] [| key=value ...]`"
    );
}

#[test]
fn columns_count_chars_not_bytes() {
    // "ü" is two bytes; the `..` starts at char 15.
    let error = rejected("deploy api/üü..x");
    assert_eq!(error.column, 14);
    assert!(error.message.contains("`..`"));
}

#[test]
fn ref_rules_reach_the_reply() {
    for (text, column, rule) in [
        ("deploy api/-x", 12, "start with `-`"),
        ("deploy api//x", 12, "start with `/`"),
        ("deploy api/a//x", 13, "`//`"),
        ("deploy api/x/", 13, "end with `/`"),
        ("deploy api/x.", 13, "end with `.`"),
        ("deploy api/@", 12, "just `@`"),
        ("deploy api/a~1", 13, "`~`"),
        ("deploy api/a\u{1}b", 13, "control characters"),
        ("deploy api/.x", 12, "start with `.`"),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(rule), "{text:?}: {error}");
    }
    let long = format!("deploy api/{}", "a".repeat(256));
    assert!(rejected(&long).message.contains("at most 255 bytes"));
    let fits = format!("deploy api/{}", "a".repeat(255));
    assert_eq!(deploy(&fits).git_ref.map(|r| r.len()), Some(255));
}

#[test]
fn unicode_refs_pass_when_git_would_take_them() {
    assert_eq!(
        deploy("deploy api/功能/ünïcode-✓").git_ref.as_deref(),
        Some("功能/ünïcode-✓")
    );
}

#[test]
fn empty_and_oversized_input_are_errors() {
    assert_eq!(rejected("").column, 1);
    assert!(rejected("   \n\t").message.contains("nothing to read"));
    let huge = format!("deploy api | note={}", "x".repeat(MAX_INPUT_CHARS));
    let error = rejected(&huge);
    assert_eq!(error.column, MAX_INPUT_CHARS + 1);
    assert!(error.message.contains("too long"));
    let at_limit = format!("deploy api | n={}", "x".repeat(MAX_INPUT_CHARS - 15));
    assert_eq!(at_limit.chars().count(), MAX_INPUT_CHARS);
    assert!(parse(&at_limit).is_ok());
}

#[test]
fn a_mention_alone_is_not_a_command() {
    let error = rejected("<@U0LAN0Z89>");
    assert_eq!(error.column, 13);
    assert!(error.message.contains("expected a command"));
    assert_eq!(error.usage, None);
}

#[test]
fn prepositions_need_a_word_boundary() {
    // `toronto` is not `to` + `ronto`.
    let error = rejected("deploy api toronto");
    assert_eq!(error.column, 12);
    assert_eq!(error.suggestion, None);
    // ...but an app may be called `tokyo`.
    assert_eq!(deploy("deploy tokyo on eu").app.as_deref(), Some("tokyo"));
}

#[test]
fn duplicate_params_point_at_the_second_key() {
    let error = rejected("deploy api | --flag x=1 flag=2");
    assert_eq!(error.column, 25);
    assert!(error.message.contains("`flag` is given twice"));
    let error = rejected("deploy api | a=1 --a");
    assert_eq!(error.column, 20);
}

#[test]
fn bad_params_say_what_is_wrong() {
    for (text, column, message) in [
        ("deploy api | =x", 14, "expected `key=value`"),
        ("deploy api | ---x", 16, "expected `key=value`"),
        ("deploy api | a=b\"c", 17, "a quote must start the value"),
        (
            "deploy api | a=\"b\"c",
            19,
            "unexpected `c` after a parameter",
        ),
        (
            "deploy api | --flag!",
            20,
            "expected `=` or a space after `--flag`",
        ),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
    }
}

#[test]
fn quoted_values_keep_everything_inside() {
    let request = deploy("deploy api | a=\"x | y=z\" b=\"line\nbreak\" c=\"back\\slash\"");
    assert_eq!(
        request.params,
        [
            ("a".to_owned(), "x | y=z".to_owned()),
            ("b".to_owned(), "line\nbreak".to_owned()),
            ("c".to_owned(), "back\\slash".to_owned()),
        ]
    );
}

#[test]
fn messages_escape_what_was_typed() {
    let error = rejected("deploy api to staging \u{7}bell");
    assert!(error.message.contains("\\u{7}bell"), "{error}");
    assert!(!error.to_string().contains('\u{7}'));
}

#[test]
fn comments_are_ignored_unless_they_start_with_a_command() {
    for text in [
        "",
        "LGTM, ship it",
        "please deploy api to staging",
        "/dev/null is fine",
        "...and then",
        "./script.sh",
        "> .deploy api",
        "/",
        "    .deploy api",
        " /help",
    ] {
        assert_eq!(parse_comment(text), None, "{text:?}");
    }
}

#[test]
fn comments_that_start_with_a_command_are_parsed() {
    assert_eq!(
        parse_comment(".deploy to staging\r\nThanks!"),
        Some(Ok(Command::Deploy(DeployRequest {
            task: "deploy".to_owned(),
            environment: Some("staging".to_owned()),
            ..DeployRequest::default()
        })))
    );
    assert_eq!(
        parse_comment("/help"),
        Some(Ok(Command::Help { topic: None }))
    );
    assert!(matches!(
        parse_comment(".noop\nmore"),
        Some(Ok(Command::Noop(_)))
    ));
    assert!(matches!(
        parse_comment(".deploy:migrations! to production"),
        Some(Ok(Command::Deploy(_)))
    ));
}

#[test]
fn comments_with_a_near_miss_get_the_suggestion() {
    for (text, suggestion) in [
        (".deplyo to staging", "deploy"),
        ("/nop", "noop"),
        (".hepl", "help"),
    ] {
        match parse_comment(text) {
            Some(Err(error)) => assert_eq!(error.suggestion.as_deref(), Some(suggestion)),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // Two edits away: not meant for hoist.
    assert_eq!(parse_comment(".depot"), None);
    assert_eq!(parse_comment(".not sure"), None);
}

#[test]
fn a_malformed_comment_command_is_an_error_not_silence() {
    match parse_comment(".deploy api tu staging") {
        Some(Err(error)) => assert_eq!(error.column, 13),
        other => panic!("{other:?}"),
    }
}

#[test]
fn stray_punctuation_is_named_where_it_is() {
    for (text, column, message) in [
        (
            "deploy api? to staging",
            11,
            "unexpected `?` in an app name",
        ),
        (
            "deploy api to staging? ",
            22,
            "unexpected `?` in an environment name",
        ),
        (
            "deploys api in prod/x",
            20,
            "unexpected `/` in an environment name",
        ),
        ("help deploy?", 12, "unexpected `?` in a command name"),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
    }
    assert_eq!(
        parse("where can I deploy api?"),
        Ok(Command::WhereCanIDeploy {
            app: "api".to_owned()
        })
    );
}
