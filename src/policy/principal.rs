//! Who a deploy.yml list names: GitHub logins (`ada`) and teams
//! (`acme/sre`, an organisation and a team's slug), as `allowed_users`,
//! `freeze_override` and `approvals.from` take them.

/// Whether an entry names a team rather than a login.
pub fn is_team(entry: &str) -> bool {
    entry.contains('/')
}

/// The teams among `entries`, for the workflow to ask the forge about.
pub fn teams(entries: &[String]) -> impl Iterator<Item = &str> {
    entries.iter().map(String::as_str).filter(|e| is_team(e))
}

/// Whether the person with `login`, a member of `teams` (those of the
/// entries the forge confirmed), is named by `entries`. Logins and team
/// names compare without case, as GitHub's do.
pub fn listed(entries: &[String], login: &str, teams: &[String]) -> bool {
    entries.iter().any(|entry| {
        if is_team(entry) {
            teams.iter().any(|team| team.eq_ignore_ascii_case(entry))
        } else {
            entry.eq_ignore_ascii_case(login)
        }
    })
}

/// `` `ada` ``, `` `ada` and `bob` ``, `` `ada`, `bob` or `acme/sre` ``.
pub fn names(entries: &[String], conjunction: &str) -> String {
    match entries {
        [] => "nobody".to_owned(),
        [one] => format!("`{one}`"),
        [rest @ .., last] => format!(
            "{} {conjunction} `{last}`",
            rest.iter()
                .map(|entry| format!("`{entry}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_and_teams() {
        let entries = vec!["Ada".to_owned(), "acme/SRE".to_owned()];
        assert!(listed(&entries, "ada", &[]));
        assert!(!listed(&entries, "bob", &[]));
        assert!(listed(&entries, "bob", &["acme/sre".to_owned()]));
        assert!(
            !listed(&entries, "acme/sre", &[]),
            "a login never matches a team entry"
        );
        assert_eq!(teams(&entries).collect::<Vec<_>>(), ["acme/SRE"]);
        assert_eq!(names(&entries, "or"), "`Ada` or `acme/SRE`");
    }
}
