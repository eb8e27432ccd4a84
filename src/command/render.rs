//! Commands back to text: the canonical form [`super::parse`] reads back
//! to the same value. Used to echo what hoist understood ("deploying
//! `deploy api/x to staging`") and by the round-trip property tests.

use std::fmt::Write as _;

use super::grammar::{
    APPROVE, CANCEL, DEFAULT_TASK, REJECT, ROLLBACK, reason_reads_bare, reject_reason_reads_bare,
};
use super::{Command, DeployRequest, duration};

/// Prints `command` in canonical form: lower-case keywords, `to` before
/// an environment, parameters as `key=value` (quoted when needed).
///
/// Every command [`super::parse`] returns renders to text that parses to
/// the same command. A hand-built command that `parse` could never
/// produce (hosts without an environment, a ref without an app) renders
/// without the part that has no place in the grammar (the environment or
/// app of a `--global` lock); a lock's duration out of range, a reason
/// too long or request number 0 renders as it is, and `parse` refuses
/// it.
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
        Command::Cancel { app, environment } => render_app_and_environment(
            format!("{DEFAULT_TASK}:{CANCEL}"),
            app.as_deref(),
            environment.as_deref(),
        ),
        Command::Rollback { app, environment } => {
            render_app_and_environment(ROLLBACK.to_owned(), app.as_deref(), environment.as_deref())
        }
        Command::WhereCanIDeploy { app } => format!("where can I deploy {app}"),
        Command::Deploys { app, environment } => match environment {
            Some(environment) => format!("deploys {app} in {environment}"),
            None => format!("deploys {app}"),
        },
        Command::Lock {
            environment,
            app,
            global,
            duration_secs,
            reason,
        } => {
            let mut text = "lock".to_owned();
            let named = render_target(&mut text, environment.as_deref(), app.as_deref(), *global);
            if let Some(secs) = duration_secs {
                let _ = write!(text, " for {}", duration::format(*secs));
            }
            if let Some(reason) = reason.as_deref().filter(|r| !r.is_empty()) {
                // A plain word where nothing has been named yet would be
                // the environment; `for ...`, `: ...` and the like would
                // be read as what they look like.
                if (named || duration_secs.is_some()) && reason_reads_bare(reason) {
                    let _ = write!(text, " {reason}");
                } else {
                    let _ = write!(text, " --reason {reason}");
                }
            }
            text
        }
        Command::Unlock {
            environment,
            app,
            global,
        } => {
            let mut text = "unlock".to_owned();
            render_target(&mut text, environment.as_deref(), app.as_deref(), *global);
            text
        }
        Command::Locks { app } => match app {
            Some(app) => format!("locks {app}"),
            None => "locks".to_owned(),
        },
        Command::Approve { request } => {
            let mut text = APPROVE.to_owned();
            render_request_number(&mut text, *request);
            text
        }
        Command::Reject { request, reason } => {
            let mut text = REJECT.to_owned();
            render_request_number(&mut text, *request);
            if let Some(reason) = reason.as_deref().filter(|r| !r.is_empty()) {
                // With no number before it, a plain word would be read as
                // the number.
                if request.is_some() && reject_reason_reads_bare(reason) {
                    let _ = write!(text, " {reason}");
                } else {
                    let _ = write!(text, " --reason {reason}");
                }
            }
            text
        }
        Command::Help { topic } => match topic {
            Some(topic) => format!("help {topic}"),
            None => "help".to_owned(),
        },
        Command::WhoAmI => "whoami".to_owned(),
    }
}

/// ` #N` after `approve` or `reject`, when a number is given.
fn render_request_number(text: &mut String, request: Option<u64>) {
    if let Some(number) = request {
        let _ = write!(text, " #{number}");
    }
}

/// `keyword [app] [in env]`, for the commands that take only those.
fn render_app_and_environment(
    mut text: String,
    app: Option<&str>,
    environment: Option<&str>,
) -> String {
    if let Some(app) = app {
        let _ = write!(text, " {app}");
    }
    if let Some(environment) = environment {
        let _ = write!(text, " in {environment}");
    }
    text
}

/// ` --global`, or ` env for app` as far as they are given; whether an
/// environment or app was written.
fn render_target(
    text: &mut String,
    environment: Option<&str>,
    app: Option<&str>,
    global: bool,
) -> bool {
    if global {
        text.push_str(" --global");
        return false;
    }
    if let Some(environment) = environment {
        let _ = write!(text, " {environment}");
    }
    if let Some(app) = app {
        let _ = write!(text, " for {app}");
    }
    environment.is_some() || app.is_some()
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
