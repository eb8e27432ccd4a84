//! `evaluate`: may this deployment go ahead? Every safety rule in one
//! pure function of the request, the person, the target's rules, what
//! the store knows (locks) and the time, so a table of cases tests it
//! with the clock in the test's hand.
//!
//! **Architecture invariant:** no I/O and no platform types; the workflow
//! gathers the facts, calls this, and writes the decision to the audit log
//! whatever it is.

use jiff::Timestamp;

use super::checks::{blocking_checks, describe_checks};
use super::lock::Lock;
use super::model::{Outdated, Target};
use super::principal::{listed, names};
use crate::domain::{Actor, Permission};
use crate::forge::Check;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// hoist.toml's app name.
    pub app: &'a str,
    /// The GitHub environment (the target's, rendered).
    pub environment: &'a str,
    /// `deploy!`.
    pub force: bool,
    /// Started by an event (a push, a pull request), not typed.
    pub automatic: bool,
    /// To a production environment (`production_environment`).
    pub production: bool,
    /// Shutting a transient environment down (the `remove` task): it
    /// needs no checks and no approvals.
    pub removal: bool,
}

/// What hoist knows besides the request and the rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The locks held now (any scope; expired ones are ignored).
    pub locks: &'a [Lock],
    /// The targets of the target's `after` where this commit has
    /// deployed successfully.
    pub proven_in: &'a [String],
    /// How many commits of the default branch the ref lacks (`None`:
    /// not asked, the target allows outdated refs).
    pub behind: Option<Behind<'a>>,
    /// The commit is the default branch's tip.
    pub default_branch_tip: bool,
    /// The person's permission on the repository, where the forge has
    /// one and they have a linked login (asked only for `min_permission`).
    pub permission: Option<Permission>,
    /// The teams the target's lists name that the person is a member of.
    pub teams: &'a [String],
    /// The checks reported on the commit (`None`: not read, which skips
    /// the rule: GitHub still enforces `required_contexts`).
    pub checks: Option<&'a [Check]>,
    /// Who approved this deployment (a request that waited for
    /// approvals and got them).
    pub approved_by: &'a [String],
}

/// A ref behind the default branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behind<'a> {
    pub git_ref: &'a str,
    pub default_branch: &'a str,
    pub commits: u64,
}

/// The rule that stopped a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `allowed_users`: who may deploy to the target.
    Access,
    /// A lock held by someone else (or any lock, for an auto-deploy).
    Lock,
    /// A freeze window.
    Freeze,
    /// `after`: the commit has not succeeded where it must first.
    Order,
    /// `outdated: refuse`: the ref lacks commits of the default branch.
    Outdated,
    /// A required check failed or has not finished.
    Checks,
    /// `approvals`: it waits until enough people approve.
    Approval,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Lock => "lock",
            Self::Freeze => "freeze",
            Self::Order => "order",
            Self::Outdated => "outdated",
            Self::Checks => "checks",
            Self::Approval => "approval",
        }
    }
}

/// The answer, with its reasons in words people read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; `reasons` says what was checked (and what was overridden).
    Allowed { reasons: Vec<String> },
    /// Stopped by `rule`; `reason` is the one line the person reads.
    Denied { rule: Rule, reason: String },
}

impl Decision {
    /// The audit log's account of it.
    pub fn audit_text(&self) -> String {
        match self {
            Self::Allowed { reasons } => format!("policy: allowed ({})", reasons.join("; ")),
            Self::Denied { rule, reason } => format!("policy: denied by {}: {reason}", rule.name()),
        }
    }
}

/// Whether `request` by `actor` may go ahead under `target`'s rules,
/// given `facts`, at `now`. The rules, in order (the first that denies
/// is the answer):
///
/// 1. **Access**: a target with `min_permission` takes typed deployments
///    only from people with at least that permission on the repository,
///    and one with `allowed_users` only from those GitHub logins (a chat
///    user with no linked login is neither). Auto-deploys are the
///    repository's own rules and pass.
/// 2. **Locks**: a lock on the environment (or a global one) held by
///    someone else stops it; an auto-deploy is stopped by every lock.
/// 3. **Freeze windows**: inside one, only `deploy!` by a login in
///    `freeze_override` goes ahead.
/// 4. **Order**: a target with `after` takes a commit only once it has
///    deployed successfully to each of those targets; `!` does not skip
///    it.
/// 5. **Outdated refs**: with `outdated: refuse`, a ref behind the default
///    branch is refused; with `warn`, it goes with a warning.
/// 6. **Required checks**: each check GitHub would require (every one, or
///    `required_contexts`) must have passed; `!` skips them where
///    `force_skips_checks` allows (by default, everywhere but production).
/// 7. **Approvals**: a target with `approvals` takes a deployment only
///    with enough approvals; without them the workflow asks for them.
///    Last, so nobody is asked to approve what another rule refuses.
///
/// With `default_branch_rollback`, the default branch's tip passes 3 and
/// 4: it is the known-good state to go back to.
pub fn evaluate(
    request: &Request<'_>,
    actor: &Actor,
    target: &Target,
    facts: &Facts<'_>,
    now: Timestamp,
) -> Decision {
    let mut reasons = Vec::new();
    let login = actor.login.as_deref();
    let named = |entries: &[String]| login.is_some_and(|l| listed(entries, l, facts.teams));

    if let Some(min) = target.min_permission.filter(|_| !request.automatic) {
        match facts.permission {
            Some(has) if has >= min => {
                reasons.push(format!(
                    "permission: {} (at least {})",
                    has.as_str(),
                    min.as_str()
                ));
            }
            Some(has) => {
                return Decision::Denied {
                    rule: Rule::Access,
                    reason: format!(
                        "Deploying to {} needs {} permission on the repository; you have {}.",
                        request.environment,
                        min.as_str(),
                        has.as_str()
                    ),
                };
            }
            None if login.is_none() => {
                return Decision::Denied {
                    rule: Rule::Access,
                    reason: format!(
                        "Deploying to {} needs {} permission on the repository, and hoist knows no GitHub login for you (`whoami` says how to link one).",
                        request.environment,
                        min.as_str()
                    ),
                };
            }
            // The forge has no permissions (the local forge).
            None => reasons.push("permission: not known on this forge".to_owned()),
        }
    }

    match &target.allowed_users {
        Some(users) if !request.automatic && !named(users) => {
            let who = match login {
                Some(login) => format!("you are `{login}`"),
                None => {
                    "hoist knows no GitHub login for you (`whoami` says how to link one)".to_owned()
                }
            };
            return Decision::Denied {
                rule: Rule::Access,
                reason: format!(
                    "Only {} may deploy to {}; {who}.",
                    names(users, "and"),
                    request.environment
                ),
            };
        }
        Some(_) if request.automatic => reasons.push("access: automatic".to_owned()),
        Some(_) => reasons.push(format!("access: {} is allowed", login.unwrap_or(""))),
        None => reasons.push("access: open".to_owned()),
    }

    let mut own_locks = 0;
    for lock in facts
        .locks
        .iter()
        .filter(|lock| lock.holds_at(now) && lock.scope.covers(request.app, request.environment))
    {
        if request.automatic {
            return Decision::Denied {
                rule: Rule::Lock,
                reason: format!(
                    // Any lock stops one, its holder's own too: nobody typed it.
                    "{} is {}.",
                    lock.scope,
                    lock.describe(now)
                ),
            };
        }
        if !lock.is_held_by(actor) {
            return Decision::Denied {
                rule: Rule::Lock,
                reason: format!(
                    "{} is {}. Only {} can deploy there until it is unlocked.",
                    capitalised(&lock.scope.to_string()),
                    lock.describe(now),
                    lock.holder.name
                ),
            };
        }
        own_locks += 1;
    }
    reasons.push(match own_locks {
        0 => "no lock".to_owned(),
        _ => "locked by the requester".to_owned(),
    });

    // The stable branch, where the target allows it as a rollback.
    let stable = target.default_branch_rollback && facts.default_branch_tip;
    if stable && (!target.freeze.is_empty() || !target.after.is_empty()) {
        reasons.push("the default branch, allowed as a rollback".to_owned());
    }

    for window in target.freeze.iter().filter(|_| !stable) {
        let Some(end) = window.ends_after(now) else {
            continue;
        };
        let may_override = named(&target.freeze_override);
        if request.force && may_override {
            reasons.push(format!("forced through the freeze {window}"));
            continue;
        }
        let why = window
            .reason
            .as_deref()
            .map(|reason| format!(": {reason}"))
            .unwrap_or_default();
        let hint = match (request.force, may_override) {
            (_, true) => " You may force it with `deploy!`.".to_owned(),
            (true, false) if target.freeze_override.is_empty() => {
                " `!` does not override a freeze here.".to_owned()
            }
            (true, false) => format!(
                " `!` overrides it only for {}.",
                names(&target.freeze_override, "and")
            ),
            (false, false) => String::new(),
        };
        return Decision::Denied {
            rule: Rule::Freeze,
            reason: format!(
                "{} is frozen until {} ({window}){why}.{hint}",
                request.environment,
                end.strftime("%a %Y-%m-%d %H:%M %Z"),
            ),
        };
    }
    if target.freeze.is_empty() {
        reasons.push("no freeze window".to_owned());
    }

    let missing: Vec<String> = target
        .after
        .iter()
        .filter(|_| !stable)
        .filter(|before| {
            !facts
                .proven_in
                .iter()
                .any(|proven| proven.eq_ignore_ascii_case(before))
        })
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Decision::Denied {
            rule: Rule::Order,
            reason: format!(
                "this commit must deploy successfully to {} before {}; deploy it there first.",
                missing.join(" and "),
                request.environment
            ),
        };
    }
    if !target.after.is_empty() {
        reasons.push(format!("succeeded in {} first", target.after.join(", ")));
    }

    if let Some(behind) = facts.behind.filter(|behind| behind.commits > 0) {
        let lacks = format!(
            "`{}` is {} commit{} behind `{}`",
            behind.git_ref,
            behind.commits,
            if behind.commits == 1 { "" } else { "s" },
            behind.default_branch
        );
        match target.outdated {
            Outdated::Refuse => {
                return Decision::Denied {
                    rule: Rule::Outdated,
                    reason: format!(
                        "{lacks}, and {} takes no outdated refs: merge `{}` into it first.",
                        request.environment, behind.default_branch
                    ),
                };
            }
            Outdated::Warn => reasons.push(format!("warning: {lacks}")),
            Outdated::Allow => {}
        }
    }

    if let Some(checks) = facts.checks {
        let blocking = blocking_checks(checks, target.required_contexts.as_deref());
        let may_skip = request.force && target.force_skips_checks(request.production);
        match (blocking.is_empty(), may_skip) {
            (true, _) if checks.is_empty() => reasons.push("no checks reported".to_owned()),
            (true, _) => reasons.push("checks passed".to_owned()),
            (false, true) => reasons.push(format!(
                "forced past the checks: {}",
                describe_checks(&blocking)
            )),
            (false, false) => {
                let hint = if request.force {
                    format!(" `!` does not skip checks on {} here.", request.environment)
                } else {
                    String::new()
                };
                return Decision::Denied {
                    rule: Rule::Checks,
                    reason: format!(
                        "these checks must pass first: {}.{hint}",
                        describe_checks(&blocking)
                    ),
                };
            }
        }
    }

    if let Some(approvals) = target.approvals.as_ref().filter(|_| !request.removal) {
        let count = usize::try_from(approvals.required).unwrap_or(usize::MAX);
        if facts.approved_by.len() < count {
            return Decision::Denied {
                rule: Rule::Approval,
                reason: format!(
                    "deploying to {} needs {}.",
                    request.environment,
                    approvals.describe()
                ),
            };
        }
        reasons.push(format!("approved by {}", facts.approved_by.join(", ")));
    }
    Decision::Allowed { reasons }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests;
