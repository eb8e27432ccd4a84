//! Runs every worked example in `commands/*.toml` through the parser:
//! the catalogue is the grammar's specification, so it cannot drift.

use hoist::command::{Command, catalogue, markdown_reference, parse, render};

#[test]
fn every_example_parses_as_documented() {
    let mut checked = 0;
    for doc in &catalogue().commands {
        for example in &doc.examples {
            let parsed = parse(&example.text);
            match (&example.expect, &example.error_contains) {
                (Some(expect), None) => {
                    assert_eq!(
                        parsed.as_ref(),
                        Ok(expect),
                        "commands/{}.toml: `{}`",
                        doc.name,
                        example.text
                    );
                }
                (None, Some(wanted)) => match parsed {
                    Ok(command) => panic!(
                        "commands/{}.toml: `{}` should fail but parsed as {command:?}",
                        doc.name, example.text
                    ),
                    Err(error) => assert!(
                        error.to_string().contains(wanted.as_str()),
                        "commands/{}.toml: `{}`: {error} does not contain {wanted:?}",
                        doc.name,
                        example.text
                    ),
                },
                _ => panic!(
                    "commands/{}.toml: `{}` needs exactly one of expect and error_contains",
                    doc.name, example.text
                ),
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} examples");
}

#[test]
fn every_command_documents_itself_with_examples() {
    let catalogue = catalogue();
    let successes = |name: &str| {
        catalogue.get(name).map_or(0, |doc| {
            doc.examples.iter().filter(|e| e.expect.is_some()).count()
        })
    };
    assert!(successes("deploy") >= 12);
    for name in ["noop", "where", "deploys", "help", "whoami"] {
        assert!(successes(name) >= 2, "{name}");
    }
}

#[test]
fn examples_survive_a_round_trip() {
    for doc in &catalogue().commands {
        for expect in doc.examples.iter().filter_map(|e| e.expect.as_ref()) {
            let text = render(expect);
            assert_eq!(parse(&text).as_ref(), Ok(expect), "`{text}`");
        }
    }
}

#[test]
fn the_deploy_help_says_what_the_issue_asks() {
    let Some(deploy) = catalogue().get("deploy") else {
        panic!("no deploy in the catalogue");
    };
    for needle in [
        "`!` forces",
        "task defaults to `deploy`",
        "`default_environment`",
        "`production`",
        "`prod`",
        "`stg`",
        "`payload.hosts`",
        "`payload.params`",
    ] {
        assert!(deploy.help.contains(needle), "deploy help lacks {needle:?}");
    }
}

#[test]
fn each_prefix_form_reaches_the_same_command() {
    let plain = parse("deploy api to staging");
    for text in [
        ".deploy api to staging",
        "/deploy api to staging",
        "@hoist deploy api to staging",
        "<@U0LAN0Z89> deploy api to staging",
        "<@U0LAN0Z89|hoist> deploy api to staging",
        "<@123456> deploy api to staging",
        "<@!123456> deploy api to staging",
        "@hoist: /deploy api to staging",
        "\t deploy api to staging \n",
        "Deploy API TO STAGING",
    ] {
        assert_eq!(parse(text), plain, "{text:?}");
    }
    assert!(matches!(plain, Ok(Command::Deploy(_))));
}

/// The README's command reference is generated: between the markers it
/// must equal `markdown_reference()`. Run with `HOIST_BLESS=1` to rewrite
/// it after changing `commands/`.
#[test]
fn the_readme_reference_is_current() {
    const START: &str = "<!-- commands:start -->\n";
    const END: &str = "<!-- commands:end -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md is readable");
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lost its `<!-- commands:start -->` ... `<!-- commands:end -->` block");
    };
    let (Some(before), Some(current), Some(after)) = (
        readme.get(..start + START.len()),
        readme.get(start + START.len()..end),
        readme.get(end..),
    ) else {
        panic!("README.md: `<!-- commands:end -->` comes before `<!-- commands:start -->`");
    };
    let reference = markdown_reference();
    if std::env::var_os("HOIST_BLESS").is_some() {
        if let Err(error) = std::fs::write(path, format!("{before}{reference}{after}")) {
            panic!("cannot rewrite README.md: {error}");
        }
        return;
    }
    assert_eq!(
        current, reference,
        "README.md's command reference is stale: run `HOIST_BLESS=1 cargo test --test command_catalogue`"
    );
}

#[test]
fn the_reference_covers_every_command() {
    let reference = markdown_reference();
    for doc in &catalogue().commands {
        assert!(reference.contains(&format!("### `{}`", doc.name)));
        assert!(reference.contains(&doc.usage));
    }
    assert!(
        reference.contains(
            "- `deploy api/feature-x to staging`: deploy branch `feature-x` to `staging`"
        )
    );
}
