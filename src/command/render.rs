//! Commands back to text: the canonical form [`super::parse`] reads back
//! to the same value. Used to echo what hoist understood ("deploying
//! `deploy api/x to staging`") and by the round-trip property tests.

use std::fmt::Write as _;

use super::grammar::{CANCEL, DEFAULT_TASK};
use super::{Command, DeployRequest};

/// Prints `command` in canonical form: lower-case keywords, `to` before
/// an environment, parameters as `key=value` (quoted when needed).
///
/// Every command [`super::parse`] returns renders to text that parses to
/// the same command. A hand-built command that `parse` could never
/// produce (hosts without an environment, a ref without an app) renders
/// without the part that has no place in the grammar.
pub fn render(command: &Command) -> String {
    match command {
        Command::Deploy(request) => {
            let mut text = if request.task == DEFAULT_TASK
                || request.task.starts_with(&format!("{DEFAULT_TASK}:"))
            {
                request.task.clone()
            } else {
                format!("{DEFAULT_TASK}:{}", request.task)
            };
            if request.force {
                text.push('!');
            }
            render_request(&mut text, request);
            text
        }
        Command::Noop(request) => {
            let mut text = "noop".to_owned();
            render_request(&mut text, request);
            text
        }
        Command::Cancel { app, environment } => {
            let mut text = format!("{DEFAULT_TASK}:{CANCEL}");
            if let Some(app) = app {
                let _ = write!(text, " {app}");
            }
            if let Some(environment) = environment {
                let _ = write!(text, " in {environment}");
            }
            text
        }
        Command::WhereCanIDeploy { app } => format!("where can I deploy {app}"),
        Command::Deploys { app, environment } => match environment {
            Some(environment) => format!("deploys {app} in {environment}"),
            None => format!("deploys {app}"),
        },
        Command::Help { topic } => match topic {
            Some(topic) => format!("help {topic}"),
            None => "help".to_owned(),
        },
        Command::WhoAmI => "whoami".to_owned(),
    }
}

fn render_request(text: &mut String, request: &DeployRequest) {
    if let Some(app) = &request.app {
        let _ = write!(text, " {app}");
        if let Some(git_ref) = &request.git_ref {
            let _ = write!(text, "/{git_ref}");
        }
    }
    if let Some(environment) = &request.environment {
        let _ = write!(text, " to {environment}");
        if !request.hosts.is_empty() {
            let _ = write!(text, "/{}", request.hosts.join(","));
        }
    }
    if !request.params.is_empty() {
        text.push_str(" |");
        for (key, value) in &request.params {
            let _ = write!(text, " {key}={}", quote_value(value));
        }
    }
}

/// A parameter value as the grammar reads it: bare when it is one plain
/// word, else in double quotes with `"` and `\` escaped.
fn quote_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\');
    if plain {
        return value.to_owned();
    }
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::quote_value;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote_value("debug"), "debug");
        assert_eq!(quote_value("a=b|c"), "a=b|c");
        assert_eq!(quote_value(""), "\"\"");
        assert_eq!(quote_value("two words"), "\"two words\"");
        assert_eq!(quote_value(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote_value(r"C:\dir"), r#""C:\\dir""#);
    }
}
