//! `evaluate`: may this deployment go ahead? Every safety rule in one
//! pure function of the request, the person, the target's rules, what
//! the store knows (locks) and the time, so a table of cases tests it
//! with the clock in the test's hand.
//!
//! **Architecture invariant:** no I/O and no platform types; the workflow
//! gathers the facts, calls this, and writes the decision to the audit log
//! whatever it is.

use jiff::Timestamp;

use super::lock::Lock;
use super::model::{Outdated, Target};
use crate::domain::{Actor, Permission};

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
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Lock => "lock",
            Self::Freeze => "freeze",
            Self::Order => "order",
            Self::Outdated => "outdated",
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
    let listed =
        |logins: &[String]| login.is_some_and(|l| logins.iter().any(|x| x.eq_ignore_ascii_case(l)));

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
        Some(users) if !request.automatic && !listed(users) => {
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
                    names(users),
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
                    "{} is {}. Automatic deployments wait until it is unlocked.",
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
        let may_override = listed(&target.freeze_override);
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
                names(&target.freeze_override)
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
    Decision::Allowed { reasons }
}

/// `ada`, `ada and bob`, `ada, bob and eve`.
fn names(logins: &[String]) -> String {
    match logins {
        [] => "nobody".to_owned(),
        [one] => format!("`{one}`"),
        [rest @ .., last] => format!(
            "{} and `{last}`",
            rest.iter()
                .map(|login| format!("`{login}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Origin, Platform};
    use crate::policy::lock::{LockKind, LockScope};

    const TARGET: &str = "
production:
  allowed_users: [ada, bob]
  freeze:
    - { from: \"Fri 16:00\", to: \"Mon 08:00\", timezone: Europe/Berlin, reason: weekend }
  freeze_override: [ada]
  after: [staging]
  outdated: refuse
  default_branch_rollback: true
  min_permission: write
staging:
  outdated: warn
";

    fn target(name: &str) -> Target {
        crate::policy::load("deploy.yml", TARGET)
            .unwrap()
            .target(name)
            .unwrap()
            .clone()
    }

    fn person(login: Option<&str>, id: &str) -> Actor {
        Actor {
            id: id.into(),
            name: login.unwrap_or(id).into(),
            login: login.map(str::to_owned),
        }
    }

    fn lock(scope: LockScope, holder: &Actor, until: Option<&str>) -> Lock {
        Lock {
            scope,
            kind: LockKind::Sticky,
            holder: holder.clone(),
            reason: Some("migrating the db".into()),
            origin: Origin {
                platform: Platform::Slack,
                conversation: "C1".into(),
                message: None,
                actor: holder.clone(),
            },
            since: "2026-12-02T09:00:00Z".parse().unwrap(),
            until: until.map(|t| t.parse().unwrap()),
            deployment: None,
        }
    }

    fn env_lock(environment: &str, holder: &Actor, until: Option<&str>) -> Lock {
        let scope = LockScope::Environment {
            app: "api".into(),
            environment: environment.into(),
        };
        lock(scope, holder, until)
    }

    /// A Wednesday, outside the weekend freeze.
    const WEEKDAY: &str = "2026-12-02T10:00:00Z";
    /// A Saturday, inside it.
    const WEEKEND: &str = "2026-12-05T10:00:00Z";

    struct Case {
        name: &'static str,
        environment: &'static str,
        actor: Actor,
        force: bool,
        automatic: bool,
        locks: Vec<Lock>,
        /// Targets where the commit succeeded already.
        proven_in: Vec<String>,
        /// Commits of `main` the ref lacks, when asked.
        behind: Option<u64>,
        /// Deploying `main`'s tip.
        stable: bool,
        /// The person's permission on the repository.
        permission: Option<Permission>,
        now: &'static str,
        /// `None`: allowed; else the rule and a piece of the reason.
        denied: Option<(Rule, &'static str)>,
    }

    #[test]
    fn the_rule_matrix() {
        let ada = person(Some("ada"), "U1");
        let bob = person(Some("bob"), "U2");
        let eve = person(Some("eve"), "U3");
        let nameless = person(None, "U9");
        let case = |name, environment, actor: &Actor| Case {
            name,
            environment,
            actor: actor.clone(),
            force: false,
            automatic: false,
            locks: Vec::new(),
            proven_in: vec!["staging".to_owned()],
            behind: None,
            stable: false,
            permission: Some(Permission::Write),
            now: WEEKDAY,
            denied: None,
        };
        let cases = vec![
            // Access alone.
            case("an allowed user", "production", &bob),
            Case {
                denied: Some((
                    Rule::Access,
                    "Only `ada` and `bob` may deploy to production; you are `eve`.",
                )),
                ..case("a user not listed", "production", &eve)
            },
            Case {
                denied: Some((Rule::Access, "hoist knows no GitHub login for you")),
                ..case("a chat user with no login", "production", &nameless)
            },
            case("an open target", "staging", &eve),
            Case {
                automatic: true,
                ..case("an auto-deploy passes access", "production", &nameless)
            },
            // Locks alone.
            Case {
                locks: vec![env_lock("staging", &ada, None)],
                denied: Some((
                    Rule::Lock,
                    "Staging of api is locked by ada since 2026-12-02 09:00 UTC (1 h ago): migrating the db. Only ada can deploy there",
                )),
                ..case("a lock held by someone else", "staging", &eve)
            },
            Case {
                locks: vec![env_lock("staging", &ada, None)],
                ..case("the holder deploys through her own lock", "staging", &ada)
            },
            Case {
                locks: vec![env_lock("staging", &person(Some("ADA"), "D77"), None)],
                ..case(
                    "the holder, from another platform, by login",
                    "staging",
                    &ada,
                )
            },
            Case {
                locks: vec![env_lock("staging", &ada, Some("2026-12-02T09:30:00Z"))],
                ..case("an expired lock stops nobody", "staging", &eve)
            },
            Case {
                locks: vec![env_lock("staging", &ada, Some("2026-12-02T12:00:00Z"))],
                denied: Some((Rule::Lock, "until 2026-12-02 12:00 UTC")),
                ..case("a lock with time left", "staging", &eve)
            },
            Case {
                locks: vec![env_lock("production", &ada, None)],
                ..case("a lock elsewhere", "staging", &eve)
            },
            Case {
                locks: vec![lock(LockScope::Global, &ada, None)],
                denied: Some((Rule::Lock, "Every environment is locked by ada")),
                ..case("a global lock", "staging", &eve)
            },
            Case {
                automatic: true,
                locks: vec![env_lock("staging", &ada, None)],
                denied: Some((
                    Rule::Lock,
                    "Automatic deployments wait until it is unlocked.",
                )),
                ..case(
                    "an auto-deploy meets its holder's own lock",
                    "staging",
                    &ada,
                )
            },
            Case {
                force: true,
                locks: vec![env_lock("staging", &ada, None)],
                denied: Some((Rule::Lock, "locked by ada")),
                ..case("`!` does not break a lock", "staging", &eve)
            },
            // Freeze alone, and with force.
            Case {
                now: WEEKEND,
                denied: Some((
                    Rule::Freeze,
                    "production is frozen until Mon 2026-12-07 08:00 CET (Fri 16:00 - Mon 08:00 Europe/Berlin): weekend.",
                )),
                ..case("inside the freeze", "production", &bob)
            },
            Case {
                now: WEEKEND,
                denied: Some((Rule::Freeze, "You may force it with `deploy!`.")),
                ..case("inside the freeze, one who may force", "production", &ada)
            },
            Case {
                now: WEEKEND,
                force: true,
                ..case("forced by one who may", "production", &ada)
            },
            Case {
                now: WEEKEND,
                force: true,
                denied: Some((Rule::Freeze, "`!` overrides it only for `ada`.")),
                ..case("forced by one who may not", "production", &bob)
            },
            case("outside the freeze", "production", &ada),
            Case {
                now: WEEKEND,
                ..case("a target without a freeze", "staging", &eve)
            },
            // Combined: the first rule that denies is the answer.
            Case {
                now: WEEKEND,
                force: true,
                locks: vec![env_lock("production", &bob, None)],
                denied: Some((Rule::Lock, "locked by bob")),
                ..case(
                    "forced through the freeze but locked by another",
                    "production",
                    &ada,
                )
            },
            Case {
                now: WEEKEND,
                locks: vec![env_lock("production", &bob, None)],
                denied: Some((Rule::Access, "you are `eve`")),
                ..case("not allowed, locked and frozen", "production", &eve)
            },
            Case {
                now: WEEKEND,
                force: true,
                locks: vec![env_lock("production", &ada, None)],
                ..case("her own lock and her override", "production", &ada)
            },
            // Order alone, and with force.
            Case {
                proven_in: Vec::new(),
                denied: Some((
                    Rule::Order,
                    "this commit must deploy successfully to staging before production",
                )),
                ..case("not yet in staging", "production", &ada)
            },
            Case {
                proven_in: Vec::new(),
                force: true,
                denied: Some((Rule::Order, "deploy it there first")),
                ..case("`!` does not skip the order", "production", &ada)
            },
            Case {
                proven_in: Vec::new(),
                ..case("a target with no order", "staging", &eve)
            },
            // Permission.
            Case {
                permission: Some(Permission::Read),
                denied: Some((
                    Rule::Access,
                    "Deploying to production needs write permission on the repository; you have read.",
                )),
                ..case("an allowed user who can only read", "production", &bob)
            },
            Case {
                permission: None,
                denied: Some((
                    Rule::Access,
                    "needs write permission on the repository, and hoist knows no GitHub login",
                )),
                ..case(
                    "no login where a permission is needed",
                    "production",
                    &nameless,
                )
            },
            Case {
                permission: None,
                ..case("a forge without permissions", "production", &bob)
            },
            Case {
                permission: Some(Permission::None),
                ..case("permission is not asked of an open target", "staging", &eve)
            },
            // Outdated refs.
            Case {
                behind: Some(3),
                denied: Some((
                    Rule::Outdated,
                    "`feature-x` is 3 commits behind `main`, and production takes no outdated refs: merge `main` into it first.",
                )),
                ..case(
                    "behind, where outdated refs are refused",
                    "production",
                    &ada,
                )
            },
            Case {
                behind: Some(0),
                ..case(
                    "up to date, where outdated refs are refused",
                    "production",
                    &ada,
                )
            },
            Case {
                behind: Some(1),
                ..case("behind, where it is a warning", "staging", &eve)
            },
            // The default branch as a rollback: through the freeze and the
            // order, not through a lock or access.
            Case {
                now: WEEKEND,
                proven_in: Vec::new(),
                stable: true,
                ..case("main in the freeze, never in staging", "production", &bob)
            },
            Case {
                stable: true,
                locks: vec![env_lock("production", &ada, None)],
                denied: Some((Rule::Lock, "locked by ada")),
                ..case("main into a lock", "production", &bob)
            },
            Case {
                stable: true,
                denied: Some((Rule::Access, "you are `eve`")),
                ..case("main by one not allowed", "production", &eve)
            },
        ];
        for case in cases {
            let request = Request {
                app: "api",
                environment: case.environment,
                force: case.force,
                automatic: case.automatic,
            };
            let facts = Facts {
                locks: &case.locks,
                proven_in: &case.proven_in,
                behind: case.behind.map(|commits| Behind {
                    git_ref: "feature-x",
                    default_branch: "main",
                    commits,
                }),
                default_branch_tip: case.stable,
                permission: case.permission,
            };
            let decision = evaluate(
                &request,
                &case.actor,
                &target(case.environment),
                &facts,
                case.now.parse().unwrap(),
            );
            match (&decision, case.denied) {
                (Decision::Allowed { .. }, None) => {}
                (Decision::Denied { rule, reason }, Some((expected, piece))) => {
                    assert_eq!(*rule, expected, "{}: {reason}", case.name);
                    assert!(reason.contains(piece), "{}: {reason}", case.name);
                }
                (decision, expected) => {
                    panic!("{}: got {decision:?}, expected {expected:?}", case.name)
                }
            }
        }
    }

    #[test]
    fn the_audit_text_names_the_rule_or_what_was_checked() {
        let ada = person(Some("ada"), "U1");
        let request = Request {
            app: "api",
            environment: "production",
            force: true,
            automatic: false,
        };
        let proven = ["staging".to_owned()];
        let facts = Facts {
            locks: &[],
            proven_in: &proven,
            behind: None,
            default_branch_tip: false,
            permission: Some(Permission::Admin),
        };
        let allowed = evaluate(
            &request,
            &ada,
            &target("production"),
            &facts,
            WEEKEND.parse().unwrap(),
        );
        assert_eq!(
            allowed.audit_text(),
            "policy: allowed (permission: admin (at least write); access: ada is allowed; no lock; forced through the freeze Fri 16:00 - Mon 08:00 Europe/Berlin; succeeded in staging first)"
        );
    }
}
