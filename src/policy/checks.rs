//! Required checks: which of a commit's checks stop its deployment, by
//! GitHub's own rule, so hoist can say so before asking GitHub (and the
//! local forge can enforce them as GitHub does).

use crate::forge::{Check, CheckState};

/// The checks that stop a deployment, by GitHub's rule: with no list,
/// every check must pass; with a list, each listed one must (a missing one
/// counts as pending: GitHub treats it as not passing); an empty list
/// requires nothing.
pub fn blocking_checks(checks: &[Check], required: Option<&[String]>) -> Vec<Check> {
    match required {
        None => checks
            .iter()
            .filter(|c| c.state != CheckState::Success)
            .cloned()
            .collect(),
        Some(names) => names
            .iter()
            .filter_map(|name| match checks.iter().find(|c| &c.name == name) {
                Some(check) if check.state == CheckState::Success => None,
                Some(check) => Some(check.clone()),
                None => Some(Check {
                    name: name.clone(),
                    state: CheckState::Pending,
                    url: None,
                }),
            })
            .collect(),
    }
}

/// `ci failure (https://…), lint pending`.
pub fn describe_checks(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| match &c.url {
            Some(url) => format!("{} {} ({url})", c.name, c.state.as_str()),
            None => format!("{} {}", c.name, c.state.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, state: CheckState) -> Check {
        Check {
            name: name.into(),
            state,
            url: None,
        }
    }

    #[test]
    fn every_check_must_pass_when_none_are_listed() {
        let checks = [
            check("ci", CheckState::Success),
            check("lint", CheckState::Failure),
        ];
        assert_eq!(
            blocking_checks(&checks, None),
            vec![check("lint", CheckState::Failure)]
        );
    }

    #[test]
    fn listed_checks_must_exist_and_pass() {
        let checks = [
            check("ci", CheckState::Success),
            check("lint", CheckState::Failure),
        ];
        let required = ["ci".to_owned(), "deploy/promotion".to_owned()];
        assert_eq!(
            blocking_checks(&checks, Some(&required)),
            vec![check("deploy/promotion", CheckState::Pending)]
        );
        assert!(blocking_checks(&checks, Some(&[])).is_empty());
    }

    #[test]
    fn a_check_is_named_with_its_link() {
        let mut ci = check("ci", CheckState::Failure);
        ci.url = Some("https://ci.example/1".into());
        let lint = check("lint", CheckState::Pending);
        assert_eq!(
            describe_checks(&[ci, lint]),
            "ci failure (https://ci.example/1), lint pending"
        );
    }
}
