//! The command catalogue: `commands/*.toml`, embedded in the binary.
//!
//! Each file documents one command: its usage line, a one-line summary,
//! a help paragraph and worked examples (text -> expected parse, or text
//! -> expected error). Help replies and the README's command reference
//! are rendered from it, and the tests run every example through
//! [`super::parse`], so the documentation cannot drift from the grammar.

use std::sync::LazyLock;

use serde::Deserialize;

use super::Command;
use crate::suggest::nearest;

/// The catalogue files, in the order help lists them.
const SOURCES: [(&str, &str); 13] = [
    ("deploy.toml", include_str!("../../commands/deploy.toml")),
    ("noop.toml", include_str!("../../commands/noop.toml")),
    ("cancel.toml", include_str!("../../commands/cancel.toml")),
    ("where.toml", include_str!("../../commands/where.toml")),
    ("deploys.toml", include_str!("../../commands/deploys.toml")),
    (
        "rollback.toml",
        include_str!("../../commands/rollback.toml"),
    ),
    ("approve.toml", include_str!("../../commands/approve.toml")),
    ("reject.toml", include_str!("../../commands/reject.toml")),
    ("lock.toml", include_str!("../../commands/lock.toml")),
    ("unlock.toml", include_str!("../../commands/unlock.toml")),
    ("locks.toml", include_str!("../../commands/locks.toml")),
    ("help.toml", include_str!("../../commands/help.toml")),
    ("whoami.toml", include_str!("../../commands/whoami.toml")),
];

/// How many worked examples a command's help reply shows.
const HELP_EXAMPLES: usize = 3;

/// Every command hoist understands, documented.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Catalogue {
    pub commands: Vec<CommandDoc>,
}

/// One `commands/NAME.toml` file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDoc {
    /// The keyword, as in `help NAME`.
    pub name: String,
    /// The exact syntax, on one line.
    pub usage: String,
    /// What the command does, on one line.
    pub summary: String,
    /// A paragraph: defaults, where each part goes, what to expect.
    pub help: String,
    #[serde(default)]
    pub examples: Vec<Example>,
}

/// A worked example: exactly one of `expect` and `error_contains` is set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// What a person types.
    pub text: String,
    /// What it does, for the reference; examples without a note are
    /// grammar cases that only the tests show.
    #[serde(default)]
    pub note: Option<String>,
    /// The command it parses to.
    #[serde(default)]
    pub expect: Option<Command>,
    /// A piece of the error reply it must produce.
    #[serde(default)]
    pub error_contains: Option<String>,
}

impl Catalogue {
    /// The documentation of command `name` (exact, lower case).
    pub fn get(&self, name: &str) -> Option<&CommandDoc> {
        self.commands.iter().find(|doc| doc.name == name)
    }
}

/// Parses the embedded files. An error names the file; the unit tests
/// below make sure there is none in what ships.
pub(crate) fn load() -> Result<Catalogue, String> {
    let mut commands = Vec::with_capacity(SOURCES.len());
    for (file, source) in SOURCES {
        let doc: CommandDoc =
            toml::from_str(source).map_err(|error| format!("commands/{file}: {error}"))?;
        commands.push(doc);
    }
    Ok(Catalogue { commands })
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    load().unwrap_or_else(|error| {
        // Only a broken build can get here (the files are compiled in and
        // tested); help degrades to nothing rather than take hoist down.
        tracing::error!(%error, "the embedded command catalogue does not parse");
        Catalogue::default()
    })
});

/// The catalogue, parsed once.
pub fn catalogue() -> &'static Catalogue {
    &CATALOGUE
}

/// The usage line of command `name`, if there is such a command.
pub fn usage(name: &str) -> Option<&'static str> {
    catalogue().get(name).map(|doc| doc.usage.as_str())
}

/// The reply to `help [topic]`: the overview of every command, or one
/// command's usage, help and examples. An unknown topic says so, suggests
/// the nearest command and shows the overview.
pub fn help(topic: Option<&str>) -> String {
    let catalogue = catalogue();
    let Some(topic) = topic else {
        return overview(catalogue);
    };
    let wanted = topic
        .trim()
        .trim_start_matches(['.', '/'])
        .to_ascii_lowercase();
    if wanted.is_empty() {
        return overview(catalogue);
    }
    if let Some(doc) = catalogue.get(&wanted) {
        return command_help(doc);
    }
    let names = catalogue.commands.iter().map(|doc| doc.name.as_str());
    let shown = super::error::excerpt(topic.trim());
    let opening = match nearest(&wanted, names) {
        Some(name) => format!("no command `{shown}`; did you mean `{name}`?"),
        None => format!("no command `{shown}`."),
    };
    format!("{opening}\n\n{}", overview(catalogue))
}

fn overview(catalogue: &Catalogue) -> String {
    let mut text = String::from("Commands:\n");
    for doc in &catalogue.commands {
        text.push_str(&format!("`{}`: {}\n", doc.usage, doc.summary));
    }
    text.push_str("Type `help COMMAND` for more, e.g. `help deploy`.");
    text
}

fn command_help(doc: &CommandDoc) -> String {
    let mut text = format!("`{}`\n{}\n\n{}", doc.usage, doc.summary, doc.help.trim());
    let examples: Vec<&Example> = doc
        .examples
        .iter()
        .filter(|example| example.expect.is_some() && example.note.is_some())
        .take(HELP_EXAMPLES)
        .collect();
    if !examples.is_empty() {
        text.push_str("\n\nExamples:");
        for example in examples {
            text.push_str(&format!("\n`{}`", example.text));
            if let Some(note) = &example.note {
                text.push_str(&format!(": {note}"));
            }
        }
    }
    text
}

/// The whole catalogue as Markdown, for the README's command reference.
pub fn markdown_reference() -> String {
    let mut text = String::from(
        "<!-- Generated from commands/*.toml by hoist::command::markdown_reference(). -->\n",
    );
    for doc in &catalogue().commands {
        text.push_str(&format!(
            "\n### `{}`\n\n```text\n{}\n```\n\n{}\n\n{}\n",
            doc.name,
            doc.usage,
            doc.summary,
            doc.help.trim()
        ));
        let examples: Vec<&Example> = doc
            .examples
            .iter()
            .filter(|example| example.expect.is_some() && example.note.is_some())
            .collect();
        if !examples.is_empty() {
            text.push_str("\nExamples:\n\n");
            for example in examples {
                text.push_str(&format!("- `{}`", example.text));
                if let Some(note) = &example.note {
                    text.push_str(&format!(": {note}"));
                }
                text.push('\n');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{SOURCES, help, load, usage};

    #[test]
    fn the_embedded_files_parse() {
        let catalogue = load().unwrap_or_else(|error| panic!("{error}"));
        let names: Vec<&str> = catalogue.commands.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "deploy", "noop", "cancel", "where", "deploys", "rollback", "approve", "reject",
                "lock", "unlock", "locks", "help", "whoami"
            ]
        );
        // Each keyword the grammar knows is documented, and each file in
        // commands/ is embedded.
        for keyword in crate::command::grammar::KEYWORDS {
            assert!(names.contains(&keyword), "{keyword} has no commands/ file");
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/commands");
        for entry in std::fs::read_dir(dir).expect("commands/ is readable") {
            let file = entry.expect("a commands/ entry").file_name();
            let file = file.to_string_lossy();
            if file.ends_with(".toml") {
                assert!(
                    SOURCES.iter().any(|(embedded, _)| *embedded == file),
                    "commands/{file} is not in SOURCES"
                );
            }
        }
        for ((file, _), doc) in SOURCES.iter().zip(&catalogue.commands) {
            assert_eq!(*file, format!("{}.toml", doc.name));
            assert!(!doc.usage.contains('\n'), "{file}: usage is one line");
            assert!(!doc.summary.contains('\n'), "{file}: summary is one line");
            assert!(!doc.help.trim().is_empty(), "{file}: help is empty");
            for example in &doc.examples {
                assert!(
                    example.expect.is_some() != example.error_contains.is_some(),
                    "{file}: `{}` needs exactly one of expect and error_contains",
                    example.text
                );
            }
        }
    }

    #[test]
    fn usage_comes_from_the_catalogue() {
        assert_eq!(
            usage("deploy"),
            Some("deploy[:task][!] app[/ref] [to|in|on env[/host,...]] [| key=value ...]")
        );
        assert_eq!(usage("nope"), None);
    }

    #[test]
    fn overview_lists_every_command() {
        let overview = help(None);
        for name in [
            "deploy",
            "noop",
            "deploy:cancel",
            "where can I deploy",
            "deploys",
            "rollback [app]",
            "approve [#N]",
            "reject [#N]",
            "lock [env]",
            "unlock",
            "locks",
            "help",
        ] {
            assert!(overview.contains(&format!("`{name}")), "{overview}");
        }
    }

    #[test]
    fn one_command_shows_usage_help_and_examples() {
        let text = help(Some("deploy"));
        assert!(text.starts_with("`deploy[:task][!]"), "{text}");
        assert!(text.contains("Examples:\n`deploy api`"), "{text}");
        assert_eq!(help(Some(" /DEPLOY ")), text);
        assert_eq!(text.matches("\n`").count(), 3, "{text}");
    }

    #[test]
    fn unknown_topic_suggests_and_shows_the_overview() {
        let text = help(Some("deplyo"));
        assert!(
            text.starts_with("no command `deplyo`; did you mean `deploy`?\n\nCommands:"),
            "{text}"
        );
        assert_eq!(help(Some(" ")), help(None));
        let text = help(Some("banana"));
        assert!(
            text.starts_with("no command `banana`.\n\nCommands:"),
            "{text}"
        );
    }
}
