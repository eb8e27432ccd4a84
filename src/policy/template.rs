//! Deliverybot's `${{ name }}` templates: plain substitution of a fixed set
//! of names.
//!
//! Hand-written rather than a template crate: Deliverybot's syntax has no
//! logic (no filters, loops or expressions), and a template language would
//! accept constructs Deliverybot never did. Every name is checked when the
//! file is loaded, so `hoist check` reports a misspelled one instead of the
//! deployment carrying `${{ refs }}` unrendered (Deliverybot's behaviour).

use std::fmt;

use crate::suggest;

/// The values a template may name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateVars {
    /// The ref as typed (`main`, `feature/x`, a tag or a sha).
    pub git_ref: String,
    pub sha: String,
    pub short_sha: String,
    /// The deploy.yml target's name.
    pub target: String,
    pub owner: String,
    pub repo: String,
    /// The pull request number, when the deployment comes from one.
    pub pr: Option<u64>,
    /// Who asked: their GitHub login where known, else their chat name.
    pub actor: String,
}

/// One name a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    Ref,
    Sha,
    ShortSha,
    Target,
    Owner,
    Repo,
    Pr,
    Actor,
}

const VARS: [(&str, Var); 8] = [
    ("ref", Var::Ref),
    ("sha", Var::Sha),
    ("short_sha", Var::ShortSha),
    ("target", Var::Target),
    ("owner", Var::Owner),
    ("repo", Var::Repo),
    ("pr", Var::Pr),
    ("actor", Var::Actor),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

/// A parsed template; [`Template::render`] cannot meet an unknown name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// Why a deploy.yml value is not a valid template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("`${{{{` is not closed by `}}}}` in {text:?}")]
    Unclosed { text: String },
    #[error("unknown template name `{name}`{hint}; known names: {known}", known = known_names())]
    UnknownName { name: String, hint: String },
}

/// Why a template could not be filled in for one deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("`${{{{ pr }}}}` needs a pull request, and this deployment does not come from one")]
    NoPullRequest,
}

fn known_names() -> String {
    VARS.iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(start) = rest.find("${{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after_open = &rest[start + 3..];
            let Some(end) = after_open.find("}}") else {
                return Err(TemplateError::Unclosed {
                    text: source.to_owned(),
                });
            };
            let name = after_open[..end].trim();
            let var = VARS
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, var)| *var)
                .ok_or_else(|| TemplateError::UnknownName {
                    name: name.to_owned(),
                    hint: suggest::nearest(name, VARS.iter().map(|(known, _)| *known))
                        .map(|near| format!(" (did you mean `{near}`?)"))
                        .unwrap_or_default(),
                })?;
            parts.push(Part::Var(var));
            rest = &after_open[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// A template that is just `text`, whatever it contains.
    pub fn literal(text: &str) -> Self {
        Self {
            source: text.to_owned(),
            parts: vec![Part::Text(text.to_owned())],
        }
    }

    /// The text as written in deploy.yml.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The text itself when it names nothing (`staging`), else `None`
    /// (`pr${{ pr }}` is only known per deployment).
    pub fn as_literal(&self) -> Option<&str> {
        self.parts
            .iter()
            .all(|part| matches!(part, Part::Text(_)))
            .then_some(self.source.as_str())
    }

    pub fn render(&self, vars: &TemplateVars) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.source.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(var) => match var {
                    Var::Ref => out.push_str(&vars.git_ref),
                    Var::Sha => out.push_str(&vars.sha),
                    Var::ShortSha => out.push_str(&vars.short_sha),
                    Var::Target => out.push_str(&vars.target),
                    Var::Owner => out.push_str(&vars.owner),
                    Var::Repo => out.push_str(&vars.repo),
                    Var::Actor => out.push_str(&vars.actor),
                    Var::Pr => {
                        out.push_str(&vars.pr.ok_or(RenderError::NoPullRequest)?.to_string())
                    }
                },
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TemplateVars {
        TemplateVars {
            git_ref: "feature/x".into(),
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            short_sha: "0123456".into(),
            target: "review".into(),
            owner: "acme".into(),
            repo: "api".into(),
            pr: Some(42),
            actor: "octocat".into(),
        }
    }

    #[test]
    fn substitutes_every_name_with_or_without_spaces() {
        let template =
            Template::parse("${{ref}}@${{ short_sha }} ${{sha}} ${{ target }} ${{owner}}/${{repo}} pr${{ pr }} by ${{actor}}")
                .unwrap();
        assert_eq!(
            template.render(&vars()).unwrap(),
            "feature/x@0123456 0123456789abcdef0123456789abcdef01234567 review acme/api pr42 by octocat"
        );
        assert_eq!(template.as_literal(), None);
    }

    #[test]
    fn plain_text_is_a_literal() {
        let template = Template::parse("staging").unwrap();
        assert_eq!(template.as_literal(), Some("staging"));
        assert_eq!(template.render(&vars()).unwrap(), "staging");
        assert_eq!(Template::parse("").unwrap().render(&vars()).unwrap(), "");
    }

    #[test]
    fn an_unknown_name_is_an_error_that_suggests_the_nearest() {
        let error = Template::parse("pr-${{ refs }}").unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown template name `refs` (did you mean `ref`?); known names: ref, sha, short_sha, target, owner, repo, pr, actor"
        );
    }

    #[test]
    fn an_unclosed_brace_is_an_error() {
        let error = Template::parse("pr${{ pr").unwrap_err();
        assert_eq!(
            error.to_string(),
            "`${{` is not closed by `}}` in \"pr${{ pr\""
        );
    }

    #[test]
    fn pr_outside_a_pull_request_is_a_render_error() {
        let template = Template::parse("pr${{ pr }}").unwrap();
        let vars = TemplateVars { pr: None, ..vars() };
        assert_eq!(template.render(&vars), Err(RenderError::NoPullRequest));
    }
}
