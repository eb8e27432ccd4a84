use super::*;

const EXAMPLE: &str = include_str!("../../deploy.example.yml");

fn vars(target: &str) -> TemplateVars {
    TemplateVars {
        git_ref: "feature/x".into(),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        short_sha: "0123456".into(),
        target: target.into(),
        owner: "acme".into(),
        repo: "api".into(),
        pr: None,
        actor: "octocat".into(),
    }
}

/// The one diagnostic a broken file gives, as printed.
fn problem(text: &str) -> String {
    let diagnostics = load("deploy.yml", text).expect_err("the file should be refused");
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    diagnostics[0].to_string()
}

#[test]
fn the_example_file_loads_with_every_key() {
    let config = load("deploy.example.yml", EXAMPLE).unwrap();
    assert_eq!(config.target_names(), ["staging", "production", "review"]);
    let staging = config.target("STAGING").unwrap();
    assert_eq!(staging.environment.as_literal(), Some("staging"));
    assert_eq!(staging.task, "deploy");
    assert_eq!(staging.required_contexts, Some(vec![]));
    assert_eq!(staging.production_environment, Some(false));
    assert_eq!(
        staging.auto_deploy_on,
        Some(AutoDeployOn::Ref("refs/heads/main".into()))
    );
    let review = config.target("review").unwrap();
    assert!(review.transient_environment);
    assert_eq!(review.auto_deploy_on, Some(AutoDeployOn::PullRequest));
    assert_eq!(review.environment.as_literal(), None);
    assert_eq!(
        staging.actions,
        [Action {
            name: "branch-db".into(),
            url: "https://db.example.com/hoist".into(),
            secret_env: "DB_ACTION_SECRET".into(),
            timeout_secs: 15 * 60,
            resource: Some("main-db".into()),
        }]
    );
    assert!(review.actions.is_empty());
    assert!(check("deploy.example.yml", EXAMPLE).is_empty());
}

#[test]
fn rendering_fills_templates_and_adds_the_target_to_the_payload() {
    let config = load("deploy.example.yml", EXAMPLE).unwrap();
    let staging = config
        .target("staging")
        .unwrap()
        .render(&vars("staging"))
        .unwrap();
    assert_eq!(staging.environment, "staging");
    assert_eq!(
        staging.description.as_deref(),
        Some("Deploy feature/x (0123456) to staging for octocat")
    );
    assert_eq!(
        staging.payload,
        serde_json::json!({"url": "https://staging.example.com", "notify": ["#deploys"], "target": "staging"})
    );
    assert!(!staging.production_environment);

    let review = config.target("review").unwrap();
    let with_pr = TemplateVars {
        pr: Some(7),
        ..vars("review")
    };
    let rendered = review.render(&with_pr).unwrap();
    assert_eq!(rendered.environment, "pr7");
    assert_eq!(rendered.payload["host"], "pr-7.review.example.com");
    assert_eq!(
        review.render(&vars("review")),
        Err(RenderError::NoPullRequest)
    );
}

#[test]
fn defaults_are_the_safe_ones() {
    let config = load(
        "deploy.yml",
        "production:\nqa:\n  task: deploy:qa\n  payload:\n",
    )
    .unwrap();
    let production = config.target("production").unwrap();
    assert_eq!(
        production.required_contexts, None,
        "absent means every check"
    );
    assert!(!production.auto_merge);
    let rendered = production.render(&vars("production")).unwrap();
    assert_eq!(rendered.environment, "production");
    assert!(rendered.production_environment);
    assert_eq!(
        rendered.payload,
        serde_json::json!({"target": "production"})
    );
    let qa = config.target("qa").unwrap().render(&vars("qa")).unwrap();
    assert_eq!(
        qa.environment, "qa",
        "the environment defaults to the target name"
    );
    assert_eq!(qa.task, "deploy:qa");
    assert!(!qa.production_environment);
}

#[test]
fn an_unknown_key_names_the_nearest_one_at_its_position() {
    assert_eq!(
        problem("staging:\n  enviroment: staging\n"),
        "deploy.yml:2:3: staging: unknown key `enviroment` (did you mean `environment`?)"
    );
    let far = problem("staging:\n  colour: blue\n");
    assert!(
        far.starts_with("deploy.yml:2:3: staging: unknown key `colour` (known keys: environment, "),
        "{far}"
    );
}

#[test]
fn an_unknown_template_name_is_reported_at_its_string() {
    assert_eq!(
        problem("review:\n  environment: pr-${{ number }}\n"),
        "deploy.yml:2:16: review.environment: unknown template name `number`; known names: ref, sha, short_sha, target, owner, repo, pr, actor"
    );
    let nested = problem("review:\n  payload:\n    hosts:\n      - \"${{ shaa }}.example\"\n");
    assert!(nested.starts_with("deploy.yml:4:9: review.payload.hosts[0]: unknown template name `shaa` (did you mean `sha`?)"), "{nested}");
}

#[test]
fn wrong_types_are_reported_at_the_value() {
    let text = "production:\n  auto_merge: sometimes\n";
    let message = problem(text);
    assert!(message.starts_with("deploy.yml:2:15: production.auto_merge: invalid type: string \"sometimes\", expected a boolean"), "{message}");
    let contexts = problem("production:\n  required_contexts: ci/build\n");
    assert!(
        contexts.starts_with("deploy.yml:2:22: production.required_contexts: invalid type: string"),
        "{contexts}"
    );
    assert_eq!(
        problem("production:\n  payload: [1, 2]\n"),
        "deploy.yml:2:12: production.payload: invalid type: sequence, expected a mapping of keys to values"
    );
    let target = problem("production: yes\n");
    assert!(target.starts_with("deploy.yml:1:13: production: invalid type: string \"yes\", expected the settings of target `production`"), "{target}");
}

#[test]
fn bad_values_are_explained() {
    let auto = problem("staging:\n  auto_deploy_on: main\n");
    assert!(
        auto.starts_with(
            "deploy.yml:2:19: staging.auto_deploy_on: `main` must be `pr` or a full ref"
        ),
        "{auto}"
    );
    let task = problem("staging:\n  task: \"rm -rf\"\n");
    assert!(
        task.starts_with("deploy.yml:2:9: staging.task: task `rm -rf` must be letters"),
        "{task}"
    );
    assert_eq!(
        problem("staging:\n  environment: \"pr${{ pr\"\n"),
        "deploy.yml:2:16: staging.environment: `${{` is not closed by `}}` in \"pr${{ pr\""
    );
}

#[test]
fn duplicates_are_refused() {
    assert_eq!(
        problem("staging:\n  task: deploy\nStaging:\n  task: deploy\n"),
        "deploy.yml:3:1: target `Staging` is defined twice"
    );
    assert_eq!(
        problem("staging:\n  task: deploy\n  task: other\n"),
        "deploy.yml:3:3: staging: `task` is set twice"
    );
    assert_eq!(
        problem("staging:\n  deployments:\n    - task: deploy\n"),
        "deploy.yml:2:3: staging: the legacy `deployments` list is not supported: put its keys directly under the target"
    );
}

#[test]
fn files_that_are_not_a_mapping_of_targets_are_refused() {
    assert_eq!(problem(""), "deploy.yml:1:1: the file defines no targets");
    assert_eq!(
        problem("# nothing yet\n"),
        "deploy.yml:1:1: the file defines no targets"
    );
    assert_eq!(
        problem("{}\n"),
        "deploy.yml:1:1: the file defines no targets"
    );
    let list = problem("- staging\n- production\n");
    assert!(
        list.starts_with(
            "deploy.yml:1:1: invalid type: sequence, expected a mapping of target names"
        ),
        "{list}"
    );
    let syntax = problem("staging:\n  task: [deploy\n");
    assert!(syntax.starts_with("deploy.yml:"), "{syntax}");
    assert!(!syntax.contains(" at line "), "{syntax}");
    let docs = problem("staging:\n---\nproduction:\n");
    assert!(docs.contains("more than one document"), "{docs}");
}

#[test]
fn a_huge_file_is_refused_before_parsing() {
    let huge = format!(
        "staging:\n  description: \"{}\"\n",
        "x".repeat(MAX_DEPLOY_YML_BYTES)
    );
    let message = problem(&huge);
    assert!(
        message.starts_with("deploy.yml:1:1: the file is "),
        "{message}"
    );
}

#[test]
fn alias_bombs_are_refused() {
    // "Billion laughs": each level doubles the one before it.
    let mut text = String::from("staging:\n  payload:\n    l0: &l0 [\"lol\", \"lol\"]\n");
    for level in 1..40 {
        let previous = level - 1;
        text.push_str(&format!(
            "    l{level}: &l{level} [*l{previous}, *l{previous}]\n"
        ));
    }
    let message = problem(&text);
    assert!(message.contains("repetition limit exceeded"), "{message}");
}

proptest::proptest! {
    /// Whatever the file holds, loading it answers (no panic), and a
    /// refusal points inside the file.
    #[test]
    fn no_file_panics_the_loader(text in "(staging:|\\n|  |- |environment: |payload:|\\$\\{\\{|\\}\\}|pr|&a |\\*a|\\[|\\]|\\{|\\}|#|\"|'|[a-z_]{1,12}|\\PC)*") {
        if let Err(diagnostics) = load("deploy.yml", &text) {
            proptest::prop_assert!(!diagnostics.is_empty());
            // YAML also breaks lines at CR, NEL and the Unicode line and
            // paragraph separators.
            let breaks = text.chars().filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')).count();
            let lines = breaks + 2;
            for diagnostic in diagnostics {
                proptest::prop_assert!(diagnostic.line >= 1 && diagnostic.line <= lines, "{diagnostic} in {text:?}");
                proptest::prop_assert!(diagnostic.column >= 1);
            }
        }
    }
}

#[test]
fn auto_deploy_matches_a_ref_or_a_prefix() {
    let main = AutoDeployOn::Ref("refs/heads/main".into());
    assert!(main.matches_push("refs/heads/main"));
    assert!(!main.matches_push("refs/heads/main-2"));
    assert!(!main.matches_push("refs/heads/feature"));
    let tags = AutoDeployOn::Ref("refs/tags/*".into());
    assert!(tags.matches_push("refs/tags/v1.2"));
    assert!(!tags.matches_push("refs/heads/v1.2"));
    assert!(!AutoDeployOn::PullRequest.matches_push("refs/heads/main"));
}

#[test]
fn freeze_windows_and_allowed_users_are_read_and_their_mistakes_placed() {
    let config = load(
        "deploy.yml",
        "production:\n  allowed_users: [octocat, hubot]\n  freeze_override: [octocat]\n  freeze:\n    - from: Fri 16:00\n      to: Mon 08:00\n      timezone: Europe/Berlin\n    - { from: 2026-12-24, to: 2026-12-26, timezone: UTC, reason: holidays }\n",
    )
    .unwrap();
    let production = config.target("production").unwrap();
    assert_eq!(
        production.allowed_users.as_deref(),
        Some(&["octocat".to_owned(), "hubot".to_owned()][..])
    );
    assert_eq!(production.freeze_override, ["octocat"]);
    assert_eq!(production.freeze.len(), 2);
    assert_eq!(
        production.freeze[0].to_string(),
        "Fri 16:00 - Mon 08:00 Europe/Berlin"
    );
    assert_eq!(production.freeze[1].reason.as_deref(), Some("holidays"));

    let zone = problem(
        "production:\n  freeze:\n    - { from: Fri 16:00, to: Mon 08:00, timezone: Europe/Berlln }\n",
    );
    assert!(
        zone.starts_with(
            "deploy.yml:3:51: production.freeze[0].timezone: unknown time zone `Europe/Berlln`"
        ),
        "{zone}"
    );
    let time = problem(
        "production:\n  freeze:\n    - from: Fri 4pm\n      to: Mon 08:00\n      timezone: UTC\n",
    );
    assert!(
        time.starts_with(
            "deploy.yml:3:13: production.freeze[0].from: `4pm` is not a time such as `16:00`"
        ),
        "{time}"
    );
    let mixed = problem(
        "production:\n  freeze:\n    - { from: Fri 16:00, to: 2026-12-24, timezone: UTC }\n",
    );
    assert!(mixed.contains("must both be weekly"), "{mixed}");
    let missing = problem("production:\n  freeze:\n    - { from: Fri 16:00, to: Mon 08:00 }\n");
    assert!(
        missing.contains("a freeze window needs `timezone`"),
        "{missing}"
    );
    let login = problem("production:\n  allowed_users: [\"not a login\"]\n");
    assert!(
        login.starts_with(
            "deploy.yml:2:19: production.allowed_users[0]: `not a login` is not a GitHub login"
        ),
        "{login}"
    );
}

#[test]
fn after_names_other_targets_of_the_file() {
    let config = load("deploy.yml", "staging:\nproduction:\n  after: [staging]\n").unwrap();
    assert_eq!(config.target("production").unwrap().after, ["staging"]);
    let typo = problem("staging:\nproduction:\n  after: [stagin]\n");
    assert!(
        typo.contains(
            "production.after: `stagin` is not a target of this file (did you mean `staging`?)"
        ),
        "{typo}"
    );
    let itself = problem("production:\n  after: [production]\n");
    assert!(
        itself.contains("a target cannot come after itself"),
        "{itself}"
    );
}

#[test]
fn outdated_is_allow_warn_or_refuse() {
    use crate::policy::Outdated;
    let config = load("deploy.yml", "production:\n  outdated: refuse\nstaging:\n").unwrap();
    assert_eq!(
        config.target("production").unwrap().outdated,
        Outdated::Refuse
    );
    assert_eq!(config.target("staging").unwrap().outdated, Outdated::Allow);
    assert_eq!(
        problem("production:\n  outdated: sometimes\n"),
        "deploy.yml:2:13: production.outdated: `sometimes` is not `allow`, `warn` or `refuse`"
    );
}

#[test]
fn min_permission_is_read_write_or_admin() {
    use crate::domain::Permission;
    let config = load("deploy.yml", "production:\n  min_permission: maintain\n").unwrap();
    assert_eq!(
        config.target("production").unwrap().min_permission,
        Some(Permission::Write)
    );
    assert_eq!(
        problem("production:\n  min_permission: owner\n"),
        "deploy.yml:2:19: production.min_permission: `owner` is not `read`, `write` or `admin`"
    );
}

#[test]
fn approvals_and_teams_are_read_and_their_mistakes_placed() {
    let config = load(
        "deploy.yml",
        "production:\n  allowed_users: [octocat, acme/release-team]\n  force_skips_checks: true\n  approvals:\n    required: 2\n    from: [octocat, hubot, acme/sre]\n    expire_after: 30m\n",
    )
    .unwrap();
    let production = config.target("production").unwrap();
    let approvals = production.approvals.as_ref().unwrap();
    assert_eq!(approvals.required, 2);
    assert_eq!(approvals.from, ["octocat", "hubot", "acme/sre"]);
    assert_eq!(approvals.expire_after_secs, 30 * 60);
    assert_eq!(production.teams(), ["acme/release-team", "acme/sre"]);
    assert!(production.force_skips_checks(true));

    let defaults = load(
        "deploy.yml",
        "production:\n  approvals: { from: [octocat] }\n",
    )
    .unwrap();
    let production = defaults.target("production").unwrap();
    let approvals = production.approvals.as_ref().unwrap();
    assert_eq!((approvals.required, approvals.expire_after_secs), (1, 3600));
    assert!(
        !production.force_skips_checks(true) && production.force_skips_checks(false),
        "by default `!` skips checks everywhere but production"
    );

    let duration =
        problem("production:\n  approvals:\n    from: [octocat]\n    expire_after: 2 hours\n");
    assert!(
        duration.starts_with(
            "deploy.yml:4:19: production.approvals.expire_after: `2 hours` is not a duration"
        ),
        "{duration}"
    );
    let never = problem("production:\n  approvals: { required: 3, from: [octocat, hubot] }\n");
    assert!(never.contains("it could never be met"), "{never}");
    let nobody = problem("production:\n  approvals: { required: 1 }\n");
    assert!(nobody.contains("approvals needs `from`"), "{nobody}");
    let zero = problem("production:\n  approvals: { required: 0, from: [octocat] }\n");
    assert!(zero.contains("at least 1"), "{zero}");
    let team = problem("production:\n  allowed_users: [acme/]\n");
    assert!(
        team.starts_with(
            "deploy.yml:2:19: production.allowed_users[0]: `acme/` is not a GitHub login or a team"
        ),
        "{team}"
    );
}

/// A target `staging` whose one action has `fields` (one per line, as
/// written under `- `).
fn with_action(fields: &[&str]) -> String {
    format!("staging:\n  actions:\n    - {}\n", fields.join("\n      "))
}

const NAME: &str = "name: branch-db";
const URL: &str = "url: https://db.example.com/hoist";
const SECRET: &str = "secret: env:DB_ACTION_SECRET";

#[test]
fn actions_are_read_with_their_defaults() {
    let config = load("deploy.yml", &with_action(&[NAME, URL, SECRET])).unwrap();
    let action = &config.target("staging").unwrap().actions[0];
    assert_eq!(action.timeout(), jiff::SignedDuration::from_mins(10));
    assert_eq!(action.resource, None);
    assert_eq!(action.resource_id("api", "staging"), "api-staging");
    let config = load(
        "deploy.yml",
        "staging:\n  actions:\n    - { name: a, url: \"http://127.0.0.1:8080\", secret: env:_A1, timeout: 24h, resource: db 1 }\n    - { name: b-2, url: \"https://[::1]/x?y#z\", secret: env:B }\n",
    )
    .unwrap();
    let actions = &config.target("staging").unwrap().actions;
    assert_eq!(actions[0].timeout_secs, 24 * 3600);
    assert_eq!(actions[0].resource_id("api", "staging"), "db 1");
    assert_eq!(actions[1].name, "b-2");
    assert_eq!(
        load("deploy.yml", "staging:\n").unwrap().targets()[0].actions,
        []
    );
}

#[test]
fn an_actions_secret_is_read_from_the_environment_when_asked() {
    use secrecy::ExposeSecret;
    let config = load(
        "deploy.yml",
        &with_action(&[NAME, URL, "secret: env:POLICY_TEST_UNSET_ACTION_SECRET"]),
    )
    .unwrap();
    let action = &config.target("staging").unwrap().actions[0];
    assert_eq!(action.secret_env, "POLICY_TEST_UNSET_ACTION_SECRET");
    assert_eq!(
        action.secret().unwrap_err(),
        "the secret of action `branch-db` is not set: hoist's environment has no POLICY_TEST_UNSET_ACTION_SECRET"
    );
    // `PATH` is set wherever tests run.
    let path = Action {
        secret_env: "PATH".into(),
        ..action.clone()
    };
    assert_eq!(
        path.secret().unwrap().expose_secret(),
        std::env::var("PATH").unwrap()
    );
}

#[test]
fn an_action_needs_a_name_a_url_and_a_secret() {
    assert_eq!(
        problem(&with_action(&[URL, SECRET])),
        "deploy.yml:3:7: staging.actions[0]: an action needs `name`"
    );
    assert_eq!(
        problem(&with_action(&[NAME, SECRET])),
        "deploy.yml:3:7: staging.actions[0]: an action needs `url`: where hoist sends its webhooks"
    );
    assert_eq!(
        problem(&with_action(&[NAME, URL])),
        "deploy.yml:3:7: staging.actions[0]: an action needs `secret`: `env:NAME`, the variable of hoist's environment holding the shared secret"
    );
    assert_eq!(
        problem(&with_action(&[NAME, URL, SECRET, "retries: 3"])),
        "deploy.yml:6:7: staging.actions[0]: unknown key `retries` in an action (name, url, secret, timeout, resource)"
    );
    assert_eq!(
        problem(&with_action(&[
            NAME,
            URL,
            SECRET,
            "url: https://other.example.com"
        ])),
        "deploy.yml:6:7: staging.actions[0]: `url` is set twice"
    );
    let list = problem("staging:\n  actions: { name: branch-db }\n");
    assert!(
        list.starts_with(
            "deploy.yml:2:12: staging.actions: invalid type: map, expected a list of actions"
        ),
        "{list}"
    );
}

#[test]
fn action_names_are_url_safe_and_unique() {
    for bad in ["Branch-DB", "-db", "branch_db", "a.b", &"a".repeat(64)] {
        let message = problem(&with_action(&[&format!("name: \"{bad}\""), URL, SECRET]));
        assert_eq!(
            message,
            format!(
                "deploy.yml:3:13: staging.actions[0].name: action name `{bad}` must be lowercase letters, digits and `-`, starting with a letter or digit, at most 63 characters (it is part of hoist's URL)"
            )
        );
    }
    assert!(
        load(
            "deploy.yml",
            &with_action(&[&format!("name: {}", "a".repeat(63)), URL, SECRET])
        )
        .is_ok()
    );
    assert_eq!(
        problem(
            "staging:\n  actions:\n    - { name: db, url: \"https://a.example\", secret: env:A }\n    - { name: db, url: \"https://b.example\", secret: env:B }\n"
        ),
        "deploy.yml:4:15: staging.actions[1].name: action `db` is defined twice in this target"
    );
    // Another target may use the same name.
    assert!(load("deploy.yml", "staging:\n  actions: [{ name: db, url: \"https://a.example\", secret: env:A }]\nproduction:\n  actions: [{ name: db, url: \"https://a.example\", secret: env:A }]\n").is_ok());
}

#[test]
fn an_actions_secret_is_an_environment_variable_and_not_hoists() {
    assert_eq!(
        problem(&with_action(&[NAME, URL, "secret: s3cr3t-literal-value"])),
        "deploy.yml:5:15: staging.actions[0].secret: must be `env:NAME`: a secret must not be written in the repository"
    );
    assert_eq!(
        problem(&with_action(&[
            NAME,
            URL,
            "secret: env:HOIST_GITHUB__TOKEN"
        ])),
        "deploy.yml:5:15: staging.actions[0].secret: `HOIST_GITHUB__TOKEN` is hoist's own: variables starting with HOIST_ hold hoist's configuration and secrets, which deploy.yml may not point at"
    );
    for bad in ["env:", "env:db_secret", "env:1SECRET", "env:DB-SECRET"] {
        let message = problem(&with_action(&[NAME, URL, &format!("secret: \"{bad}\"")]));
        assert_eq!(
            message,
            "deploy.yml:5:15: staging.actions[0].secret: after `env:` comes the name of a variable: capital letters, digits and `_`, not starting with a digit"
        );
    }
    let message = problem(&with_action(&[NAME, URL, "secret: sk_live_123456"]));
    assert!(
        !message.contains("sk_live"),
        "a secret is never echoed: {message}"
    );
}

#[test]
fn an_actions_url_is_http_or_https_with_a_host() {
    assert_eq!(
        problem(&with_action(&[NAME, "url: \"http://\"", SECRET])),
        "deploy.yml:4:12: staging.actions[0].url: `http://` has no valid host (write it as `https://db.example.com/hoist`)"
    );
    assert_eq!(
        problem(&with_action(&[
            NAME,
            "url: ftp://db.example.com/hoist",
            SECRET
        ])),
        "deploy.yml:4:12: staging.actions[0].url: `ftp://db.example.com/hoist` must be an absolute `http://` or `https://` URL"
    );
    for bad in [
        "db.example.com/hoist",
        "/hoist",
        "https:///hoist",
        "https://:80/",
        "https://db.example.com:99999/",
        "https://db example.com/",
        "https://[::1/",
    ] {
        let message = problem(&with_action(&[NAME, &format!("url: \"{bad}\""), SECRET]));
        assert!(
            message.starts_with("deploy.yml:4:12: staging.actions[0].url: "),
            "{message}"
        );
    }
    let credentials = problem(&with_action(&[
        NAME,
        "url: https://bot:hunter2@db.example.com/",
        SECRET,
    ]));
    assert_eq!(
        credentials,
        "deploy.yml:4:12: staging.actions[0].url: the URL must not carry a user or password (the shared secret goes in `secret`)"
    );
}

#[test]
fn an_actions_timeout_and_resource_are_checked() {
    let bad = problem(&with_action(&[NAME, URL, SECRET, "timeout: soon"]));
    assert!(
        bad.starts_with("deploy.yml:6:16: staging.actions[0].timeout: `soon` is not a duration"),
        "{bad}"
    );
    assert_eq!(
        problem(&with_action(&[NAME, URL, SECRET, "timeout: 2d"])),
        "deploy.yml:6:16: staging.actions[0].timeout: `2d` is too long: an action may hold a deployment for 24h at most"
    );
    let long = "r".repeat(101);
    assert_eq!(
        problem(&with_action(&[
            NAME,
            URL,
            SECRET,
            &format!("resource: {long}")
        ])),
        "deploy.yml:6:17: staging.actions[0].resource: a resource id must be 1 to 100 printable characters"
    );
    assert_eq!(
        problem(&with_action(&[NAME, URL, SECRET, "resource: \"\""])),
        "deploy.yml:6:17: staging.actions[0].resource: a resource id must be 1 to 100 printable characters"
    );
}
