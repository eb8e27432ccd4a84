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

fn rollback(app: Option<&str>, environment: Option<&str>) -> Command {
    Command::Rollback {
        app: app.map(str::to_owned),
        environment: environment.map(str::to_owned),
    }
}

#[test]
fn rollback_takes_an_app_and_an_environment() {
    for (text, expected) in [
        (
            "rollback api in production",
            rollback(Some("api"), Some("production")),
        ),
        ("rollback api", rollback(Some("api"), None)),
        ("rollback in staging", rollback(None, Some("staging"))),
        ("rollback", rollback(None, None)),
        (".ROLLBACK Api TO Qa", rollback(Some("api"), Some("qa"))),
        (
            "@hoist: rollback  api\ton  staging ",
            rollback(Some("api"), Some("staging")),
        ),
        // A plain word is the app, as for `deploy`.
        ("rollback staging", rollback(Some("staging"), None)),
        ("rollback tokyo on eu", rollback(Some("tokyo"), Some("eu"))),
    ] {
        assert_eq!(parse(text), Ok(expected), "{text:?}");
    }
    for (command, text) in [
        (
            rollback(Some("api"), Some("production")),
            "rollback api in production",
        ),
        (rollback(Some("api"), None), "rollback api"),
        (rollback(None, Some("staging")), "rollback in staging"),
        (rollback(None, None), "rollback"),
    ] {
        assert_eq!(super::render(&command), text);
        assert_eq!(parse(text), Ok(command));
    }
    assert_eq!(
        parse_comment(".rollback in staging\nit broke checkout"),
        Some(Ok(rollback(None, Some("staging"))))
    );
    assert_eq!(parse_comment("/rollback"), Some(Ok(rollback(None, None))));
    let near = parse_comment(".rolback api");
    assert!(
        matches!(&near, Some(Err(error)) if error.suggestion.as_deref() == Some("rollback")),
        "{near:?}"
    );
}

#[test]
fn rollback_refuses_what_it_has_no_use_for() {
    for (text, column, message) in [
        (
            "rollback api/main",
            13,
            "`rollback` goes back to the previous successful deployment: it takes no ref; \
             to deploy a ref, use `deploy api/REF to env`",
        ),
        // The ref is refused before git's rules are applied to it.
        ("rollback api/feature..x in qa", 13, "it takes no ref"),
        ("rollback! api", 9, "`rollback` cannot be forced"),
        ("rollback!", 9, "`rollback` cannot be forced"),
        ("rollback:migrations api", 9, "`rollback` takes no task"),
        ("rollback: api", 9, "`rollback` takes no task"),
        (
            "rollback api to staging/web1,web2",
            24,
            "`rollback` takes no hosts",
        ),
        (
            "rollback api to staging | a=1",
            25,
            "`rollback` takes no parameters",
        ),
        ("rollback api|a=1", 13, "`rollback` takes no parameters"),
        (".rollback | --now", 11, "`rollback` takes no parameters"),
        (
            "rollback api staging",
            14,
            "expected `to`, `in` or `on` after the app",
        ),
        (
            "rollback api to",
            16,
            "expected an environment name after `to`",
        ),
        ("rollback api to staging now", 25, "unexpected `now`"),
        ("rollback? api", 9, "unexpected `?` after `rollback`"),
        ("rollback api? to x", 13, "unexpected `?` in an app name"),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
        assert_eq!(error.usage, super::usage("rollback"), "{text:?}: {error}");
    }
    assert_eq!(
        super::usage("rollback"),
        Some("rollback [app] [to|in|on env]")
    );
    // `deploy:cancel` keeps its own words.
    assert!(
        rejected("deploy:cancel api/main")
            .message
            .contains("it stops what is running")
    );
    assert!(
        !rejected("rollback api to staging now")
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

fn lock(
    environment: Option<&str>,
    app: Option<&str>,
    duration_secs: Option<u64>,
    reason: Option<&str>,
) -> Command {
    Command::Lock {
        environment: environment.map(str::to_owned),
        app: app.map(str::to_owned),
        global: false,
        duration_secs,
        reason: reason.map(str::to_owned),
    }
}

fn global_lock(duration_secs: Option<u64>, reason: Option<&str>) -> Command {
    Command::Lock {
        environment: None,
        app: None,
        global: true,
        duration_secs,
        reason: reason.map(str::to_owned),
    }
}

#[test]
fn lock_reads_its_parts_in_either_order() {
    let full = lock(
        Some("production"),
        Some("api"),
        Some(7_200),
        Some("migrating the db"),
    );
    for text in [
        "lock production for api for 2h migrating the db",
        "lock production for 2h for api migrating the db",
        "lock production for 2h for api: migrating the db",
        "lock production for 2h for api:migrating the db",
        "lock production for api for 2h --reason migrating the db",
        "LOCK PRODUCTION FOR API FOR 2H migrating the db",
        "@hoist: lock\tproduction  for api\nfor 120m   migrating the db  ",
    ] {
        assert_eq!(parse(text), Ok(full.clone()), "{text:?}");
    }
    for (text, expected) in [
        ("lock", lock(None, None, None, None)),
        (
            "lock production",
            lock(Some("production"), None, None, None),
        ),
        ("lock for api", lock(None, Some("api"), None, None)),
        ("lock for 1h30m", lock(None, None, Some(5_400), None)),
        (
            "lock production: migrating",
            lock(Some("production"), None, None, Some("migrating")),
        ),
        (
            "lock production:migrating",
            lock(Some("production"), None, None, Some("migrating")),
        ),
        ("lock: migrating", lock(None, None, None, Some("migrating"))),
        (
            "lock --reason migrating",
            lock(None, None, None, Some("migrating")),
        ),
        // A reason keeps its case, inner spacing and anything in it.
        (
            "lock staging DON'T  deploy --global for 2h!",
            lock(
                Some("staging"),
                None,
                None,
                Some("DON'T  deploy --global for 2h!"),
            ),
        ),
        // `!` is only part of the reason: there is no stealing a lock.
        (
            "lock production !",
            lock(Some("production"), None, None, Some("!")),
        ),
        // A `:` or `--reason` lets a reason start like anything else.
        (
            "lock production: for the release",
            lock(Some("production"), None, None, Some("for the release")),
        ),
        (
            "lock production: : colon",
            lock(Some("production"), None, None, Some(": colon")),
        ),
        (
            "lock --reason --global is not a flag here",
            lock(None, None, None, Some("--global is not a flag here")),
        ),
        // `for:` is no keyword: after the environment it starts a reason.
        (
            "lock production for: the release",
            lock(Some("production"), None, None, Some("for: the release")),
        ),
        // A word after `for` that is not duration-shaped is the app.
        (
            "lock production for 2h-api",
            lock(Some("production"), Some("2h-api"), None, None),
        ),
        (
            "lock production for h2",
            lock(Some("production"), Some("h2"), None, None),
        ),
    ] {
        assert_eq!(parse(text), Ok(expected), "{text:?}");
    }
}

#[test]
fn global_locks_name_nothing_but_may_last_and_say_why() {
    for (text, expected) in [
        ("lock --global", global_lock(None, None)),
        ("lock --GLOBAL", global_lock(None, None)),
        ("lock for 2h --global", global_lock(Some(7_200), None)),
        (
            "lock --global for 2h freeze",
            global_lock(Some(7_200), Some("freeze")),
        ),
        ("lock --global: freeze", global_lock(None, Some("freeze"))),
        (
            "lock --global --reason freeze",
            global_lock(None, Some("freeze")),
        ),
        (
            "lock --reason freeze --global",
            lock(None, None, None, Some("freeze --global")),
        ),
    ] {
        assert_eq!(parse(text), Ok(expected), "{text:?}");
    }
    for (text, column) in [
        ("lock --global production", 15),
        ("lock --global freeze", 15),
        ("lock production --global", 6),
        ("lock --global for api", 19),
        ("lock for api --global", 10),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(
            error
                .message
                .starts_with("`--global` locks every environment; name none"),
            "{text:?}: {error}"
        );
    }
    for (text, column) in [
        ("unlock --global staging", 17),
        ("unlock for api --global", 12),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert_eq!(
            error.message,
            "`--global` releases the lock on every environment; name none"
        );
    }
    assert!(rejected("lock --global --global").message.contains("twice"));
}

#[test]
fn lock_refuses_with_the_column_of_the_problem() {
    let long = format!("lock production {}", "x".repeat(201));
    let fits = format!("lock production {}", "x".repeat(200));
    assert!(parse(&fits).is_ok());
    for (text, column, message) in [
        (long.as_str(), 217, "at most 200 characters"),
        ("lock production for 59s", 21, "at least 1 minute"),
        ("lock production for 0m", 21, "at least 1 minute"),
        ("lock production for 30d1s", 21, "at most 30 days"),
        ("lock production for 1h30", 25, "expected a unit after `30`"),
        ("lock production for 1h1h", 23, "largest first"),
        (
            "lock production for 2h/x",
            23,
            "unexpected `/` in a duration",
        ),
        (
            "lock production for 2h|x",
            23,
            "unexpected `|` in a duration",
        ),
        (
            "lock production for api/main",
            24,
            "unexpected `/` in an app name",
        ),
        (
            "lock production|x",
            16,
            "unexpected `|` in an environment name",
        ),
        (
            "lock production for \"api\"",
            21,
            "expected an app name or a duration after `for`, not `",
        ),
        (
            "lock for:",
            9,
            "expected an app name or a duration after `for`",
        ),
        ("lock 90", 6, "`90` is not an environment"),
        ("lock in production", 6, "`lock` takes no `in`"),
        (
            "lock production for api to staging",
            25,
            "`lock` takes no `to`",
        ),
        ("lock production -- x", 17, "expected an option after `--`"),
        ("lock --reason:x", 14, "write `--reason TEXT`, without `:`"),
        ("lock --reasons x", 6, "unknown option `--reasons`"),
        ("lock !", 6, "`lock` has no `!`"),
        ("lock!", 5, "`lock` has no `!`"),
        ("lock? x", 5, "unexpected `?` after `lock`"),
        ("lock production:  ", 19, "expected a reason after `:`"),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
        assert_eq!(error.usage, super::usage("lock"), "{text:?}");
    }
    // The 201st char of the reason, counted in chars, not bytes.
    let error = rejected(&format!("lock production {}", "ü".repeat(201)));
    assert_eq!(error.column, 217);
    assert_eq!(
        rejected("lock production --globl").suggestion.as_deref(),
        Some("--global")
    );
}

#[test]
fn unlock_and_locks_take_no_more_than_they_need() {
    let unlock = |environment: Option<&str>, app: Option<&str>, global: bool| Command::Unlock {
        environment: environment.map(str::to_owned),
        app: app.map(str::to_owned),
        global,
    };
    for (text, expected) in [
        ("unlock", unlock(None, None, false)),
        ("unlock production", unlock(Some("production"), None, false)),
        (
            "unlock production for api",
            unlock(Some("production"), Some("api"), false),
        ),
        ("unlock for api", unlock(None, Some("api"), false)),
        ("UNLOCK --Global", unlock(None, None, true)),
    ] {
        assert_eq!(parse(text), Ok(expected), "{text:?}");
    }
    for (text, column, message) in [
        ("unlock production done", 19, "`unlock` takes no reason"),
        ("unlock: done", 7, "`unlock` takes no reason"),
        ("unlock --reason done", 8, "`unlock` takes no reason"),
        ("unlock --REASON", 8, "`unlock` takes no reason"),
        ("unlock for api for api", 20, "the app is already `api`"),
        ("unlock 2h", 8, "`unlock` takes no duration"),
        ("unlock for 2h", 12, "`unlock` takes no duration"),
        ("unlock for:", 11, "expected an app name after `for`"),
        (
            "unlock --force",
            8,
            "unknown option `--force`: `unlock` takes `--global`",
        ),
        ("unlock!", 7, "unexpected `!` after `unlock`"),
        (
            "unlock production!",
            18,
            "unexpected `!` in an environment name",
        ),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
        assert_eq!(error.usage, super::usage("unlock"), "{text:?}");
    }
    assert_eq!(parse("locks"), Ok(Command::Locks { app: None }));
    assert_eq!(
        parse(".Locks API"),
        Ok(Command::Locks {
            app: Some("api".to_owned())
        })
    );
    for (text, column, message) in [
        ("locks --global", 7, "`locks` takes an app alone"),
        ("locks in production", 7, "`locks` takes an app alone"),
        ("locks api staging", 11, "unexpected `staging`"),
        ("locks api: x", 10, "unexpected `:`"),
        ("locks:", 6, "unexpected `:` after `locks`"),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
        assert_eq!(error.usage, super::usage("locks"), "{text:?}");
    }
}

#[test]
fn lock_commands_are_addressed_in_comments() {
    assert_eq!(
        parse_comment(".lock production\nback in an hour"),
        Some(Ok(lock(Some("production"), None, None, None)))
    );
    assert_eq!(
        parse_comment("/unlock"),
        Some(Ok(Command::Unlock {
            environment: None,
            app: None,
            global: false,
        }))
    );
    assert!(matches!(
        parse_comment(".locks"),
        Some(Ok(Command::Locks { app: None }))
    ));
    for (text, suggestion) in [
        (".lokc", "lock"),
        (".unlcok", "unlock"),
        (".lcoks", "locks"),
    ] {
        match parse_comment(text) {
            Some(Err(error)) => assert_eq!(error.suggestion.as_deref(), Some(suggestion)),
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn lock_renders_canonically() {
    for (command, text) in [
        (
            lock(
                Some("production"),
                Some("api"),
                Some(7_200),
                Some("migrating the db"),
            ),
            "lock production for api for 2h migrating the db",
        ),
        (lock(None, None, Some(5_400), None), "lock for 1h30m"),
        (
            lock(None, None, None, Some("migrating")),
            "lock --reason migrating",
        ),
        (
            lock(Some("production"), None, None, Some("for the release")),
            "lock production --reason for the release",
        ),
        (
            lock(Some("production"), None, None, Some(": x")),
            "lock production --reason : x",
        ),
        (
            lock(Some("production"), None, None, Some("in a minute")),
            "lock production --reason in a minute",
        ),
        (
            global_lock(Some(86_400), Some("freeze")),
            "lock --global for 1d freeze",
        ),
        (
            global_lock(None, Some("freeze")),
            "lock --global --reason freeze",
        ),
        (
            Command::Unlock {
                environment: Some("staging".to_owned()),
                app: Some("api".to_owned()),
                global: false,
            },
            "unlock staging for api",
        ),
        (
            Command::Locks {
                app: Some("api".to_owned()),
            },
            "locks api",
        ),
    ] {
        assert_eq!(super::render(&command), text);
        assert_eq!(parse(text), Ok(command), "{text:?}");
    }
}

fn approve(request: Option<u64>) -> Command {
    Command::Approve { request }
}

fn reject(request: Option<u64>, reason: Option<&str>) -> Command {
    Command::Reject {
        request,
        reason: reason.map(str::to_owned),
    }
}

#[test]
fn approve_takes_a_request_number_alone() {
    for (text, command) in [
        ("approve", approve(None)),
        ("approve 12", approve(Some(12))),
        ("approve #12", approve(Some(12))),
        (".approve #12", approve(Some(12))),
        ("/Approve\t#12 ", approve(Some(12))),
        ("<@U0LAN0Z89> APPROVE 12", approve(Some(12))),
        ("@hoist: approve", approve(None)),
        ("approve #0012", approve(Some(12))),
        ("approve #1", approve(Some(1))),
        ("approve 18446744073709551615", approve(Some(u64::MAX))),
    ] {
        assert_eq!(parse(text), Ok(command), "{text:?}");
    }
    for (text, column, message) in [
        (
            "approve #x",
            9,
            "`#x` is not a request number: `approve #12`",
        ),
        ("approve x", 9, "`x` is not a request number: `approve #12`"),
        ("approve #12x", 9, "`#12x` is not a request number"),
        ("approve ##12", 9, "`##12` is not a request number"),
        ("approve #-1", 9, "`#-1` is not a request number"),
        ("approve #+1", 9, "`#+1` is not a request number"),
        ("approve #1.5", 9, "`#1.5` is not a request number"),
        ("approve #１２", 9, "`#１２` is not a request number"),
        (
            "approve #0",
            9,
            "`#0` is not a request number: they start at 1",
        ),
        (
            "approve 000",
            9,
            "`000` is not a request number: they start at 1",
        ),
        (
            "approve 18446744073709551616",
            9,
            "is not a request number: too large",
        ),
        ("approve #", 10, "expected a request number after `#`"),
        ("approve # 12", 10, "expected a request number after `#`"),
        (
            "approve #12 #13",
            13,
            "unexpected `#13`: `approve` takes a request number alone",
        ),
        (
            "approve 12 now",
            12,
            "unexpected `now`: `approve` takes a request number alone",
        ),
        ("approve #12:", 12, "`approve` takes no reason"),
        ("approve: lgtm", 8, "`approve` takes no reason"),
        ("approve : lgtm", 9, "`approve` takes no reason"),
        ("approve --reason lgtm", 9, "`approve` takes no reason"),
        ("approve --REASON", 9, "`approve` takes no reason"),
        (
            "approve --force",
            9,
            "unexpected `--force`: `approve` takes a request number alone",
        ),
        ("approve!", 8, "unexpected `!` after `approve`"),
        ("approve#12", 8, "unexpected `#` after `approve`"),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
        assert_eq!(error.usage, super::usage("approve"), "{text:?}");
    }
}

#[test]
fn reject_takes_a_number_and_a_reason_by_lock_rules() {
    for (text, command) in [
        ("reject", reject(None, None)),
        ("reject #12", reject(Some(12), None)),
        ("reject 12", reject(Some(12), None)),
        (
            "reject 12 not before the demo",
            reject(Some(12), Some("not before the demo")),
        ),
        (
            "reject: too risky today",
            reject(None, Some("too risky today")),
        ),
        ("reject :too risky", reject(None, Some("too risky"))),
        ("reject #12: too risky", reject(Some(12), Some("too risky"))),
        ("reject #12:too risky", reject(Some(12), Some("too risky"))),
        (
            "reject #12 : too risky",
            reject(Some(12), Some("too risky")),
        ),
        ("reject --reason too risky", reject(None, Some("too risky"))),
        (
            "reject #12 --reason too risky",
            reject(Some(12), Some("too risky")),
        ),
        (
            "reject --REASON #12 too risky",
            reject(None, Some("#12 too risky")),
        ),
        ("reject: #12", reject(None, Some("#12"))),
        ("reject #12 #13", reject(Some(12), Some("#13"))),
        ("reject #12 : : colon", reject(Some(12), Some(": colon"))),
        (
            "reject #12 for the demo",
            reject(Some(12), Some("for the demo")),
        ),
        (
            "reject #12 in production",
            reject(Some(12), Some("in production")),
        ),
        ("reject #12 -x", reject(Some(12), Some("-x"))),
        ("reject 12 no!", reject(Some(12), Some("no!"))),
        (
            "@hoist /REJECT\t#12\n line two  ",
            reject(Some(12), Some("line two")),
        ),
    ] {
        assert_eq!(parse(text), Ok(command), "{text:?}");
    }
    let long = format!("reject #12 {}", "x".repeat(201));
    let fits = format!("reject #12 {}", "x".repeat(200));
    assert!(parse(&fits).is_ok());
    for (text, column, message) in [
        (long.as_str(), 212, "a reason has at most 200 characters"),
        (
            "reject too risky",
            8,
            "`too` is not a request number: `reject #12` (a reason with no number before it \
             goes after `:` or `--reason`)",
        ),
        ("reject #x", 8, "`#x` is not a request number: `reject #12`"),
        (
            "reject #0 sure",
            8,
            "`#0` is not a request number: they start at 1",
        ),
        ("reject #", 9, "expected a request number after `#`"),
        ("reject:", 8, "expected a reason after `:`"),
        ("reject #12:  ", 14, "expected a reason after `:`"),
        ("reject --reason", 16, "expected a reason after `--reason`"),
        (
            "reject #12 --reason:x",
            20,
            "write `--reason TEXT`, without `:`",
        ),
        (
            "reject #12 --force",
            12,
            "unknown option `--force`: `reject` takes `--reason`",
        ),
        ("reject #12 -- x", 12, "expected an option after `--`"),
        ("reject!", 7, "unexpected `!` after `reject`"),
    ] {
        let error = rejected(text);
        assert_eq!(error.column, column, "{text:?}: {error}");
        assert!(error.message.contains(message), "{text:?}: {error}");
        assert_eq!(error.usage, super::usage("reject"), "{text:?}");
    }
    assert_eq!(
        rejected("reject #12 --reasn x").suggestion.as_deref(),
        Some("--reason")
    );
}

#[test]
fn approvals_are_addressed_in_comments() {
    assert_eq!(
        parse_comment(".approve\nlooks good"),
        Some(Ok(approve(None)))
    );
    assert_eq!(
        parse_comment(".reject #3 no\nsee the thread"),
        Some(Ok(reject(Some(3), Some("no"))))
    );
    assert_eq!(parse_comment("/approve #3"), Some(Ok(approve(Some(3)))));
    for (text, suggestion) in [(".aprove", "approve"), (".rejetc #3", "reject")] {
        match parse_comment(text) {
            Some(Err(error)) => assert_eq!(error.suggestion.as_deref(), Some(suggestion)),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert_eq!(parse_comment("I approve of this"), None);
}

#[test]
fn approvals_render_canonically() {
    for (command, text) in [
        (approve(None), "approve"),
        (approve(Some(12)), "approve #12"),
        (reject(None, None), "reject"),
        (reject(Some(12), None), "reject #12"),
        (reject(Some(12), Some("too risky")), "reject #12 too risky"),
        (reject(None, Some("too risky")), "reject --reason too risky"),
        (reject(Some(12), Some(": x")), "reject #12 --reason : x"),
        (
            reject(Some(12), Some("--force")),
            "reject #12 --reason --force",
        ),
        (reject(None, Some("#12")), "reject --reason #12"),
        (
            reject(Some(12), Some("for the demo")),
            "reject #12 for the demo",
        ),
    ] {
        assert_eq!(super::render(&command), text);
        assert_eq!(parse(text), Ok(command), "{text:?}");
    }
    // Hand-built, never parsed: rendered as it is, and refused.
    assert_eq!(super::render(&approve(Some(0))), "approve #0");
    assert!(parse("approve #0").is_err());
}
