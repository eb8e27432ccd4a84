//! `approvals`: a target whose deployments wait until enough of the
//! people it names agree. What a vote may be, who may cast it, and when
//! a request has enough; the workflow keeps the votes in the store.

use jiff::SignedDuration;
use serde::{Deserialize, Serialize};

use super::principal::{listed, names};
use crate::domain::Actor;

/// How long a request waits for its approvals when deploy.yml says not.
pub const DEFAULT_EXPIRY: SignedDuration = SignedDuration::from_hours(1);

/// A target's `approvals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approvals {
    /// How many different people must approve (at least 1).
    pub required: u32,
    /// Who may approve: GitHub logins, or teams as `org/team-slug`.
    pub from: Vec<String>,
    /// How long a request waits before it expires, in seconds.
    pub expire_after_secs: u64,
}

impl Approvals {
    /// `2 approvals from `ada`, `bob` or a member of `acme/sre``.
    pub fn describe(&self) -> String {
        let count = match self.required {
            1 => "1 approval".to_owned(),
            n => format!("{n} approvals"),
        };
        format!("{count} from {}", names(&self.from, "or"))
    }

    pub fn expire_after(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::try_from(self.expire_after_secs).unwrap_or(i64::MAX))
    }
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

/// Whether `voter` may cast `verdict` on a request `requester` made.
/// `teams` are the teams of `approvals.from` the voter is a member of
/// (the workflow asks GitHub). The requester may not approve their own
/// request, but may withdraw it with a rejection.
pub fn may_vote(
    approvals: &Approvals,
    requester: &Actor,
    voter: &Actor,
    teams: &[String],
    verdict: Verdict,
    environment: &str,
) -> Result<(), String> {
    let own = same_person(requester, voter);
    match verdict {
        Verdict::Reject if own => return Ok(()),
        Verdict::Approve if own => {
            return Err(
                "You asked for this deployment, so someone else must approve it.".to_owned(),
            );
        }
        _ => {}
    }
    let Some(login) = voter.login.as_deref() else {
        return Err(
            "hoist knows no GitHub login for you, so it cannot tell whether you may approve (`whoami` says how to link one)."
                .to_owned(),
        );
    };
    if listed(&approvals.from, login, teams) {
        Ok(())
    } else {
        let verb = match verdict {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        };
        Err(format!(
            "Only {} may {verb} deployments to {environment}; you are `{login}`.",
            names(&approvals.from, "and")
        ))
    }
}

/// The same person: by GitHub login where both have one, else by chat
/// id. A person with a login on one platform and none on another is two
/// people here, which errs on the side of refusing self-approval only
/// where hoist can tell.
pub fn same_person(a: &Actor, b: &Actor) -> bool {
    match (&a.login, &b.login) {
        (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
        _ => a.id == b.id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(login: Option<&str>, id: &str) -> Actor {
        Actor {
            id: id.into(),
            name: login.unwrap_or(id).into(),
            login: login.map(str::to_owned),
        }
    }

    fn rule() -> Approvals {
        Approvals {
            required: 2,
            from: vec!["ada".into(), "bob".into(), "acme/sre".into()],
            expire_after_secs: 3600,
        }
    }

    #[test]
    fn who_may_vote() {
        let eve = person(Some("eve"), "U3");
        let ada = person(Some("ada"), "U1");
        let vote = |voter: &Actor, teams: &[String], verdict| {
            may_vote(&rule(), &eve, voter, teams, verdict, "production")
        };
        assert_eq!(vote(&ada, &[], Verdict::Approve), Ok(()));
        assert_eq!(vote(&ada, &[], Verdict::Reject), Ok(()));
        let grace = person(Some("grace"), "U7");
        assert_eq!(
            vote(&grace, &[], Verdict::Approve),
            Err("Only `ada`, `bob` and `acme/sre` may approve deployments to production; you are `grace`.".into())
        );
        assert_eq!(
            vote(&grace, &["acme/sre".into()], Verdict::Approve),
            Ok(()),
            "a member of a named team"
        );
        assert!(
            vote(&person(None, "U9"), &[], Verdict::Approve)
                .unwrap_err()
                .contains("no GitHub login")
        );
        // The requester, even one who is an approver.
        let own = may_vote(&rule(), &ada, &ada, &[], Verdict::Approve, "production");
        assert!(own.unwrap_err().contains("someone else must approve"));
        let on_slack = person(Some("ADA"), "U1-slack");
        let own = may_vote(
            &rule(),
            &ada,
            &on_slack,
            &[],
            Verdict::Approve,
            "production",
        );
        assert!(own.is_err(), "the same login on another platform");
        assert_eq!(
            may_vote(&rule(), &eve, &eve, &[], Verdict::Reject, "production"),
            Ok(()),
            "a requester withdraws their own"
        );
    }

    #[test]
    fn the_rule_says_how_many_from_whom() {
        assert_eq!(
            rule().describe(),
            "2 approvals from `ada`, `bob` or `acme/sre`"
        );
    }
}
