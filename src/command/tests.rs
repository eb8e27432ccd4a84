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

fn cancel(app: Option<&str>, environment: Option<&str>) -> Command {
    Command::Cancel {
        app: app.map(str::to_owned),
        environment: environment.map(str::to_owned),
    }
}

#[test]
fn deploy_cancel_is_a_command_of_its_own() {
    for (text, expected) in [
        (
            "deploy:cancel api in production",
            cancel(Some("api"), Some("production")),
        ),
        ("deploy:cancel api", cancel(Some("api"), None)),
        ("deploy:cancel to staging", cancel(None, Some("staging"))),
        (".deploy:cancel", cancel(None, None)),
        ("DEPLOY:CANCEL Api ON Qa", cancel(Some("api"), Some("qa"))),
        (
            "@hoist: deploy:cancel  api\tto  staging ",
            cancel(Some("api"), Some("staging")),
        ),
        // An app may be called `tokyo`, as for `deploy`.
        (
            "deploy:cancel tokyo on eu",
            cancel(Some("tokyo"), Some("eu")),
        ),
    ] {
        assert_eq!(parse(text), Ok(expected), "{text:?}");
    }
    assert_eq!(
        parse_comment(".deploy:cancel to staging\nit is stuck"),
        Some(Ok(cancel(None, Some("staging"))))
    );
    assert_eq!(
        parse_comment("/deploy:cancel"),
        Some(Ok(cancel(None, None)))
    );
}

#[test]
fn other_tasks_that_start_with_cancel_still_deploy() {
    assert_eq!(deploy("deploy:cancel:db api").task, "deploy:cancel:db");
    assert_eq!(
        deploy("deploy:cancellation api").task,
        "deploy:cancellation"
    );
    assert_eq!(deploy("deploy:migrations api").task, "deploy:migrations");
}

#[test]
fn a_near_miss_of_deploy_cancel_does_not_deploy() {
    for (text, column) in [
        ("deploy:cancle api in production", 8),
        ("deploy:cancl api", 8),
        ("  deploy:Cancels! api", 10),
        ("deploy:xancel", 8),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains("one typo away"), "{text:?}: {error}");
        assert_eq!(error.suggestion.as_deref(), Some("deploy:cancel"));
        assert_eq!(error.usage, super::usage("deploy"), "{text:?}");
    }
}

#[test]
fn deploy_cancel_refuses_what_it_has_no_use_for() {
    for (text, column, message) in [
        ("deploy:cancel! api", 14, "`deploy:cancel` cannot be forced"),
        ("deploy:cancel!", 14, "`deploy:cancel` cannot be forced"),
        (
            "deploy:cancel api/main",
            18,
            "takes no ref: it stops what is running",
        ),
        // The ref is refused before git's rules are applied to it.
        ("deploy:cancel api/feature..x", 18, "takes no ref"),
        (
            "deploy:cancel api to staging/web1,web2",
            29,
            "takes no hosts",
        ),
        (
            "deploy:cancel api to staging | a=1",
            30,
            "takes no parameters",
        ),
        ("deploy:cancel api | a=1 a=2", 19, "takes no parameters"),
        ("deploy:cancel api|a=1", 18, "takes no parameters"),
        ("deploy:cancel | --now", 15, "takes no parameters"),
        ("deploy:cancel api in staging|x", 29, "takes no parameters"),
        (
            "deploy:cancel api staging",
            19,
            "expected `to`, `in` or `on` after the app",
        ),
        (
            "deploy:cancel api to",
            21,
            "expected an environment name after `to`",
        ),
        ("deploy:cancel api to staging now", 30, "unexpected `now`"),
        (
            "deploy:cancel? api",
            14,
            "unexpected `?` after `deploy:cancel`",
        ),
        (
            "deploy:cancel api? to x",
            18,
            "unexpected `?` in an app name",
        ),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
        assert_eq!(error.usage, super::usage("cancel"), "{text:?}: {error}");
    }
    assert_eq!(
        super::usage("cancel"),
        Some("deploy:cancel [app] [to|in|on env]")
    );
    // Stray words are not taken for parameters: there are none to take.
    assert!(
        !rejected("deploy:cancel api to staging now")
            .message
            .contains("parameters")
    );
}

#[test]
fn help_takes_deploy_cancel_as_typed() {
    let topic = |topic: &str| Command::Help {
        topic: Some(topic.to_owned()),
    };
    assert_eq!(parse("help deploy:cancel"), Ok(topic("cancel")));
    assert_eq!(parse("help .DEPLOY:Cancel"), Ok(topic("cancel")));
    assert_eq!(parse("help cancel"), Ok(topic("cancel")));
    for (text, column, message) in [
        (
            "help deploy:migrations",
            12,
            "unexpected `:` in a command name",
        ),
        ("help noop:cancel", 10, "unexpected `:` in a command name"),
        ("help deploy:", 12, "unexpected `:` in a command name"),
        (
            "help deploy:cancel?",
            19,
            "unexpected `?` in a command name",
        ),
        ("help deploy:cancel now", 20, "unexpected `now`"),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
    }
    assert!(super::help(Some("cancel")).starts_with("`deploy:cancel [app] [to|in|on env]`"));
}
