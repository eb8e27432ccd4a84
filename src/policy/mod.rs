//! `.github/deploy.yml`: the Deliverybot format, a typed model, a loader
//! whose errors carry file, line and column, template rendering, and the
//! safety rules (`evaluate`: access, locks, freeze windows, order,
//! outdated refs, required checks, approvals), and the integration
//! `actions` a deployment waits for.
//!
//! **Architecture invariant:** no I/O here; the caller reads the file.
//! (`Action::secret` reads one variable of hoist's environment, when the
//! caller needs the secret.)

mod action;
mod approval;
mod checks;
mod evaluate;
mod freeze;
mod load;
mod lock;
mod model;
mod principal;
mod template;

use std::fmt;

use serde::de::DeserializeSeed;

pub use action::Action;
pub use approval::{Approvals, Verdict, may_vote, same_person};
pub use checks::{blocking_checks, describe_checks};
pub use evaluate::{Behind, Decision, Facts, Request, Rule, evaluate};
pub use freeze::{FreezeSpan, FreezeWindow, Moment};
pub use lock::{Lock, LockKind, LockScope, ago, utc_clock};
pub use model::{AutoDeployOn, DeployConfig, Outdated, Payload, RenderedTarget, Target};
pub use principal::teams;
pub use template::{RenderError, Template, TemplateError, TemplateVars};

/// The largest deploy.yml hoist reads (GitHub's contents API stops at
/// 1 MiB, and no honest deploy config comes near it).
pub const MAX_DEPLOY_YML_BYTES: usize = 1024 * 1024;

/// One problem in a deploy.yml, printed as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Reads deploy.yml. `file` names it in diagnostics. On error the list
/// holds at least one diagnostic (the parser stops at the first problem).
pub fn load(file: &str, text: &str) -> Result<DeployConfig, Vec<Diagnostic>> {
    let at_start = |message: String| {
        vec![Diagnostic {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message,
        }]
    };
    if text.len() > MAX_DEPLOY_YML_BYTES {
        return Err(at_start(format!(
            "the file is {} bytes; hoist reads at most {MAX_DEPLOY_YML_BYTES}",
            text.len()
        )));
    }
    let blank_or_comment = |line: &str| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    };
    if text.lines().all(blank_or_comment) {
        return Err(at_start("the file defines no targets".into()));
    }
    let deserializer = serde_yaml_ng::Deserializer::from_str(text);
    load::ConfigSeed.deserialize(deserializer).map_err(|error| {
        let (line, column) = error
            .location()
            .map_or((1, 1), |at| (at.line(), at.column()));
        vec![Diagnostic {
            file: file.to_owned(),
            line,
            column,
            message: message_without_position(&error.to_string()),
        }]
    })
}

/// Every problem in a deploy.yml; empty when it loads.
pub fn check(file: &str, text: &str) -> Vec<Diagnostic> {
    load(file, text).err().unwrap_or_default()
}

/// serde_yaml_ng appends ` at line L column C` (and, for syntax errors,
/// `, while parsing … at line …`); the diagnostic carries the position
/// itself.
fn message_without_position(message: &str) -> String {
    let first = message.split(" at line ").next().unwrap_or(message);
    first.trim_end_matches(',').trim().to_owned()
}

#[cfg(test)]
mod tests;
