//! Property tests of the grammar: no input panics the parser, every
//! error is one line that points inside the text, and every command the
//! grammar can produce renders to text that parses back to itself.

use hoist::command::{Command, DeployRequest, check_ref, parse, parse_comment, render};
use proptest::prelude::*;

/// Pieces of the grammar, glued at random, reach deeper than random text.
const TOKENS: &[&str] = &[
    "deploy",
    "DEPLOY",
    "deploys",
    "noop",
    "cancel",
    "cancle",
    "where",
    "can",
    "I",
    "help",
    "to",
    "in",
    "on",
    ":",
    "!",
    "/",
    " ",
    "  ",
    "\t",
    "\n",
    "|",
    "=",
    "\"",
    "\\",
    "--",
    ",",
    "@",
    "<@",
    "<@!",
    ">",
    ".",
    "..",
    "@{",
    ".lock",
    "api",
    "staging",
    "x",
    "ü",
    "功",
    "\u{0}",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "?",
    "-",
    "'",
    "lock",
    "unlock",
    "locks",
    "for",
    "--global",
    "--reason",
    "2h",
    "90m",
    "1h30m",
    "30s",
    "31d",
    "90",
    "prod",
    "LOCK",
    "rollback",
    "ROLLBACK",
    "rolback",
    "approve",
    "APPROVE",
    "aprove",
    "reject",
    "Reject",
    "rejcet",
    "#",
    "#12",
    "12",
    "0",
    "#0",
    "18446744073709551616",
];

fn token_soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(TOKENS), 0..24).prop_map(|t| t.concat())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        token_soup(),
        token_soup().prop_map(|t| format!(".{t}")),
        token_soup().prop_map(|t| format!("deploy {t}")),
        token_soup().prop_map(|t| format!("deploy:cancel{t}")),
        token_soup().prop_map(|t| format!("rollback{t}")),
        token_soup().prop_map(|t| format!("lock {t}")),
        token_soup().prop_map(|t| format!("unlock{t}")),
        token_soup().prop_map(|t| format!("locks {t}")),
        token_soup().prop_map(|t| format!("approve {t}")),
        token_soup().prop_map(|t| format!("reject{t}")),
        token_soup().prop_map(|t| format!("reject #12 {t}")),
    ]
}

fn name() -> impl Strategy<Value = String> {
    "[-_.a-z0-9]{1,10}".prop_filter("a preposition would start the environment", |n| {
        !matches!(n.as_str(), "to" | "in" | "on")
    })
}

/// Whether a word after `for` in a lock would be read as a duration: it
/// starts with a digit and has only digits and unit letters.
fn looks_like_duration(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || "smhdw".contains(c))
}

/// An app a lock can name after `for`.
fn lock_app() -> impl Strategy<Value = String> {
    name().prop_filter("a duration-shaped word after `for` is a duration", |n| {
        !looks_like_duration(n)
    })
}

/// An environment a lock can name: its first plain word, so neither
/// `for`, an option nor a duration.
fn lock_environment() -> impl Strategy<Value = String> {
    lock_app().prop_filter("`for` and options have their own meaning", |n| {
        n != "for" && !n.starts_with("--")
    })
}

/// A duration the grammar accepts, in seconds: any, and round ones.
fn lock_duration() -> impl Strategy<Value = u64> {
    prop_oneof![
        60u64..=2_592_000,
        (1u64..=43_200).prop_map(|minutes| minutes * 60),
        (1u64..=720).prop_map(|hours| hours * 3_600),
    ]
}

/// A reason as `parse` returns it: trimmed, not empty, at most 200
/// chars; often starting with what the grammar would otherwise read.
fn lock_reason() -> impl Strategy<Value = String> {
    let start = proptest::sample::select(
        &[
            "",
            "for ",
            "FOR ",
            "for",
            "--global ",
            "--reason ",
            "--",
            ":",
            ": ",
            "to ",
            "in ",
            "on ",
            "!",
            "2h ",
            "production ",
            "--globl ",
            "for api ",
            "for 2h ",
        ][..],
    );
    let body = prop_oneof![
        "[a-z!?:. ]{0,20}",
        "[-a-zA-Z0-9_.:!'\"|=/ \t]{0,40}",
        any::<String>(),
    ];
    (start, body)
        .prop_map(|(start, body)| format!("{start}{body}").trim().to_owned())
        .prop_map(|reason| {
            reason
                .chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .prop_filter("a reason is never empty", |reason| !reason.is_empty())
}

fn lock() -> impl Strategy<Value = Command> {
    let target = prop_oneof![
        (
            proptest::option::of(lock_environment()),
            proptest::option::of(lock_app())
        )
            .prop_map(|(environment, app)| (environment, app, false)),
        Just((None, None, true)),
    ];
    (
        target,
        proptest::option::of(lock_duration()),
        proptest::option::of(lock_reason()),
    )
        .prop_map(
            |((environment, app, global), duration_secs, reason)| Command::Lock {
                environment,
                app,
                global,
                duration_secs,
                reason,
            },
        )
}

fn unlock() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            proptest::option::of(lock_environment()),
            proptest::option::of(lock_app())
        )
            .prop_map(|(environment, app)| Command::Unlock {
                environment,
                app,
                global: false,
            }),
        Just(Command::Unlock {
            environment: None,
            app: None,
            global: true,
        }),
    ]
}

/// A request number the grammar accepts: small ones, as hoist hands
/// out, and any that fits.
fn request_number() -> impl Strategy<Value = u64> {
    prop_oneof![1u64..=100, 1u64..=u64::MAX]
}

/// A reject's reason: a lock's, or one that starts as a request number
/// would.
fn reject_reason() -> impl Strategy<Value = String> {
    let start = proptest::sample::select(&["", "#12 ", "#", "7 ", "#x ", "0 "][..]);
    (start, lock_reason()).prop_map(|(start, reason)| {
        format!("{start}{reason}")
            .chars()
            .take(200)
            .collect::<String>()
            .trim()
            .to_owned()
    })
}

fn approve() -> impl Strategy<Value = Command> {
    proptest::option::of(request_number()).prop_map(|request| Command::Approve { request })
}

fn reject() -> impl Strategy<Value = Command> {
    (
        proptest::option::of(request_number()),
        proptest::option::of(reject_reason()),
    )
        .prop_map(|(request, reason)| Command::Reject { request, reason })
}

fn git_ref() -> impl Strategy<Value = String> {
    "[-a-zA-Z0-9_./@{}|!=,\"'üß功✓]{1,24}"
        .prop_filter("git must accept it", |r| check_ref(r).is_ok())
}

fn task() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("deploy".to_owned()),
        "[a-zA-Z0-9_.:-]{1,10}"
            .prop_filter("`deploy:cancel` and its near misses are not tasks", |t| {
                strsim::damerau_levenshtein(&t.to_ascii_lowercase(), "cancel") > 1
            })
            .prop_map(|t| format!("deploy:{t}")),
    ]
}

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    let key = "[a-zA-Z0-9_][-_.a-zA-Z0-9]{0,8}";
    let value = prop_oneof![
        "[a-z0-9=|,:/?]{0,8}",
        proptest::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ];
    proptest::collection::btree_map(key, value, 0..4).prop_map(|m| m.into_iter().collect())
}

fn request() -> impl Strategy<Value = DeployRequest> {
    let app_and_ref = proptest::option::of((name(), proptest::option::of(git_ref())));
    let target = proptest::option::of((
        name(),
        proptest::collection::vec("[a-z0-9][-_.:a-z0-9]{0,8}", 0..3),
    ));
    (task(), any::<bool>(), app_and_ref, target, params()).prop_map(
        |(task, force, app_and_ref, target, params)| {
            let (app, git_ref) = app_and_ref.map_or((None, None), |(a, r)| (Some(a), r));
            let (environment, hosts) = target.map_or((None, Vec::new()), |(e, h)| (Some(e), h));
            DeployRequest {
                task,
                force,
                app,
                git_ref,
                environment,
                hosts,
                params,
            }
        },
    )
}

fn command() -> impl Strategy<Value = Command> {
    let topic = "[a-z0-9][-_.a-z0-9]{0,10}";
    prop_oneof![
        request().prop_map(Command::Deploy),
        request().prop_map(|r| Command::Noop(DeployRequest {
            task: "deploy".to_owned(),
            force: false,
            ..r
        })),
        name().prop_map(|app| Command::WhereCanIDeploy { app }),
        (name(), proptest::option::of(name()))
            .prop_map(|(app, environment)| Command::Deploys { app, environment }),
        (proptest::option::of(name()), proptest::option::of(name()))
            .prop_map(|(app, environment)| Command::Cancel { app, environment }),
        (proptest::option::of(name()), proptest::option::of(name()))
            .prop_map(|(app, environment)| Command::Rollback { app, environment }),
        lock(),
        unlock(),
        proptest::option::of(name())
            .prop_filter("`locks` takes no `for` or option", |app| {
                app.as_deref()
                    .is_none_or(|app| app != "for" && !app.starts_with("--"))
            })
            .prop_map(|app| Command::Locks { app }),
        approve(),
        reject(),
        proptest::option::of(topic).prop_map(|topic| Command::Help { topic }),
        Just(Command::WhoAmI),
    ]
}

proptest! {
    // No failure files: a failing case is printed, minimised, in the output.
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_input_panics_and_errors_point_inside_it(text in any_text()) {
        if let Err(error) = parse(&text) {
            prop_assert!(error.column >= 1);
            prop_assert!(error.column <= text.chars().count() + 1);
            let reply = error.to_string();
            prop_assert!(!reply.contains('\n') && !reply.contains('\r'), "{reply:?}");
        }
        let _ = parse_comment(&text);
        let _ = parse_comment(&format!("/{text}"));
    }

    #[test]
    fn rendered_commands_parse_back(command in command()) {
        let text = render(&command);
        prop_assert_eq!(parse(&text), Ok(command), "{:?}", text);
    }

    #[test]
    fn a_prefix_or_mention_changes_nothing(command in command()) {
        let text = render(&command);
        let expected = Ok(command);
        prop_assert_eq!(&parse(&format!(".{text}")), &expected);
        prop_assert_eq!(&parse(&format!("<@!123> /{text}")), &expected);
        // A comment is read up to its first line break, so only a
        // single-line rendering (no newline inside a quoted value) applies.
        if !text.contains('\n') {
            prop_assert_eq!(&parse_comment(&format!(".{text}\nthanks")), &Some(expected));
        }
    }
}
