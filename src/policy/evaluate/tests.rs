//! The rule matrix: every rule alone and combined, the clock in hand.

use super::*;
use crate::domain::{Origin, Platform};
use crate::forge::CheckState;
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
  required_contexts: [ci]
  approvals: { required: 2, from: [ada, bob, acme/sre] }
staging:
  outdated: warn
qa:
  allowed_users: [acme/qa]
  force_skips_checks: false
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
            link: None,
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
    /// The teams of the target's lists the person is in.
    teams: Vec<String>,
    /// The commit's checks.
    checks: Option<Vec<Check>>,
    /// Who approved it.
    approved_by: Vec<String>,
    removal: bool,
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
        teams: Vec::new(),
        checks: Some(vec![check("ci", CheckState::Success)]),
        approved_by: vec!["bob".to_owned(), "carol".to_owned()],
        removal: false,
        now: WEEKDAY,
        denied: None,
    };
    let failing = || {
        Some(vec![
            check("ci", CheckState::Failure),
            check("lint", CheckState::Pending),
        ])
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
            denied: Some((Rule::Lock, "staging of api is locked by ada")),
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
        // Teams.
        Case {
            teams: vec!["acme/qa".to_owned()],
            ..case("a member of the allowed team", "qa", &eve)
        },
        Case {
            denied: Some((
                Rule::Access,
                "Only `acme/qa` may deploy to qa; you are `eve`.",
            )),
            ..case("not in the allowed team", "qa", &eve)
        },
        // Required checks.
        Case {
            checks: failing(),
            denied: Some((
                Rule::Checks,
                "these checks must pass first: ci failure, lint pending.",
            )),
            ..case("failing checks", "staging", &eve)
        },
        Case {
            checks: failing(),
            force: true,
            ..case("`!` skips them outside production", "staging", &eve)
        },
        Case {
            checks: failing(),
            force: true,
            denied: Some((
                Rule::Checks,
                "these checks must pass first: ci failure. `!` does not skip checks on production here.",
            )),
            ..case("`!` does not skip them in production", "production", &ada)
        },
        Case {
            checks: failing(),
            force: true,
            teams: vec!["acme/qa".to_owned()],
            denied: Some((Rule::Checks, "`!` does not skip checks on qa here.")),
            ..case("nor where the target says so", "qa", &eve)
        },
        Case {
            checks: Some(vec![
                check("ci", CheckState::Success),
                check("lint", CheckState::Failure),
            ]),
            ..case("only the required contexts count", "production", &ada)
        },
        Case {
            checks: Some(vec![check("lint", CheckState::Success)]),
            denied: Some((Rule::Checks, "ci pending")),
            ..case("a required context never reported", "production", &ada)
        },
        Case {
            checks: Some(Vec::new()),
            ..case("no checks at all", "staging", &eve)
        },
        Case {
            checks: None,
            ..case("checks not read", "staging", &eve)
        },
        // Approvals.
        Case {
            approved_by: vec!["bob".to_owned()],
            denied: Some((
                Rule::Approval,
                "deploying to production needs 2 approvals from `ada`, `bob` or `acme/sre`.",
            )),
            ..case("one approval of two", "production", &ada)
        },
        Case {
            approved_by: Vec::new(),
            force: true,
            denied: Some((Rule::Approval, "needs 2 approvals")),
            ..case("`!` does not skip approvals", "production", &ada)
        },
        Case {
            approved_by: Vec::new(),
            locks: vec![env_lock("production", &bob, None)],
            denied: Some((Rule::Lock, "locked by bob")),
            ..case(
                "nobody is asked to approve what a lock stops",
                "production",
                &ada,
            )
        },
        Case {
            approved_by: Vec::new(),
            checks: failing(),
            denied: Some((Rule::Checks, "ci failure")),
            ..case("nor what failing checks stop", "production", &ada)
        },
        Case {
            approved_by: Vec::new(),
            removal: true,
            ..case("a removal needs no approvals", "production", &ada)
        },
    ];
    for case in cases {
        let request = Request {
            app: "api",
            environment: case.environment,
            force: case.force,
            automatic: case.automatic,
            production: case.environment == "production",
            removal: case.removal,
        };
        let facts = Facts {
            teams: &case.teams,
            checks: case.checks.as_deref(),
            approved_by: &case.approved_by,
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
        production: true,
        removal: false,
    };
    let proven = ["staging".to_owned()];
    let approvers = ["bob".to_owned(), "eve".to_owned()];
    let checks = [check("ci", CheckState::Success)];
    let facts = Facts {
        teams: &[],
        checks: Some(&checks),
        approved_by: &approvers,
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
        "policy: allowed (permission: admin (at least write); access: ada is allowed; no lock; forced through the freeze Fri 16:00 - Mon 08:00 Europe/Berlin; succeeded in staging first; checks passed; approved by bob, eve)"
    );
}

fn check(name: &str, state: CheckState) -> Check {
    Check {
        name: name.into(),
        state,
        url: None,
    }
}
