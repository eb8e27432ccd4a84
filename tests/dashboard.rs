//! The dashboard's handlers over real HTTP, against a real `hoist serve`
//! with the fake GitHub (its OAuth web flow too) and the fake Slack:
//! logging in, what each person sees and may do, actions through the
//! same rules as chat, and every kind of bad input refused with a page
//! and nothing changed.

mod fakes;
mod harness;
mod support;

use axum_extra::extract::cookie::{Cookie, Key};
use harness::web::{Answer, Web, hidden_field};
use harness::{Serving, serve_with};
use serde_json::json;
use sha2::{Digest, Sha512};

const CLIENT_ID: &str = "dashboard-client";
const CLIENT_SECRET: &str = "dashboard-client-secret";
const SESSION_KEY: &str = "a-session-key-for-the-dashboard-tests-0123456789";

fn dashboard_toml() -> String {
    format!(
        "[dashboard]\nenabled = true\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\nsession_key = \"{SESSION_KEY}\"\n"
    )
}

async fn serve_dashboard() -> Serving {
    serve_dashboard_with("").await
}

/// `app` is appended to `[apps.api]`.
async fn serve_dashboard_with(app: &str) -> Serving {
    let serving = serve_with(&format!("{app}{}", dashboard_toml())).await;
    serving.github.oauth_app(CLIENT_ID, CLIENT_SECRET);
    serving
}

/// Logs `login` in through the fake GitHub's OAuth pages, as a browser
/// follows the redirects; returns the browser.
async fn log_in(serving: &Serving, login: &str) -> Web {
    serving.github.sign_in_as(login, &format!("{login} (name)"));
    let mut web = Web::new();
    let start = web.get(serving.address, "/login?next=%2Fhistory").await;
    assert_eq!(start.status, 303, "{start:?}");
    let authorize = start.header("location").unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/login/oauth/authorize?", serving.github.url())),
        "{authorize}"
    );
    assert!(
        authorize.contains(&format!("client_id={CLIENT_ID}")),
        "{authorize}"
    );
    let at_github = web.get_url(&authorize).await;
    assert_eq!(at_github.status, 302, "{at_github:?}");
    let callback = at_github.header("location").unwrap().to_owned();
    let back = web.get_url(&callback).await;
    assert_eq!(back.status, 303, "{back:?}");
    assert_eq!(back.header("location"), Some("/history"));
    let session = back
        .set_cookies()
        .into_iter()
        .find(|cookie| cookie.starts_with("hoist_session="))
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(session.contains(attribute), "{session}");
    }
    web
}

/// The CSRF token of the page's forms.
fn csrf(page: &Answer) -> String {
    hidden_field(&page.body, "csrf").expect("a form with the CSRF token")
}

/// Sends the form of `action` as a page's form would: with the page's
/// CSRF token and a fresh nonce.
async fn submit(
    web: &mut Web,
    serving: &Serving,
    page: &Answer,
    action: &str,
    fields: &[(&str, &str)],
) -> Answer {
    let (token, nonce) = (csrf(page), nonce());
    let mut form = vec![("csrf", token.as_str()), ("nonce", nonce.as_str())];
    form.extend_from_slice(fields);
    web.post_form(serving.address, &format!("/actions/{action}"), &form)
        .await
}

fn nonce() -> String {
    format!("{:064x}", rand_u128())
}

fn rand_u128() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

#[tokio::test]
async fn without_a_session_people_are_sent_to_log_in_and_come_back_logged_in() {
    let serving = serve_dashboard().await;
    serving.github.set_permission("acme/api", "ada-gh", "write");
    let mut anonymous = Web::new();
    let overview = anonymous.get(serving.address, "/").await;
    assert_eq!(overview.status, 303, "{overview:?}");
    assert_eq!(overview.header("location"), Some("/login?next=%2F"));
    let history = anonymous.get(serving.address, "/history?app=api").await;
    assert_eq!(history.status, 303);
    let events = anonymous
        .get(serving.address, "/deployments/github/acme/api/1/events")
        .await;
    assert_eq!(events.status, 401, "the event stream is an API: {events:?}");

    let mut ada = log_in(&serving, "ada-gh").await;
    let page = ada.get(serving.address, "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Logged in as <strong>ada-gh</strong>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("acme/api"), "{}", page.body);
    assert!(
        page.body.contains("<h3>staging</h3>"),
        "deploy.yml's target: {}",
        page.body
    );
    assert!(
        page.body.contains("Lock staging"),
        "a writer may lock: {}",
        page.body
    );
    let policy = page.header("content-security-policy").unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(serving.github.oauth_exchanges(), 1);

    // Logging out ends it: the next page asks for a login again.
    let out = ada
        .post_form(serving.address, "/logout", &[("csrf", &csrf(&page))])
        .await;
    assert_eq!(out.status, 303, "{out:?}");
    assert_eq!(ada.get(serving.address, "/").await.status, 303);
}

#[tokio::test]
async fn a_forged_or_expired_session_cookie_is_refused_with_a_page() {
    let serving = serve_dashboard().await;
    serving.github.set_permission("acme/api", "ada-gh", "admin");
    let mut ada = log_in(&serving, "ada-gh").await;

    // One character of the signed value changed.
    let mut forged = ada.clone();
    let value = forged.cookies.get_mut("hoist_session").unwrap();
    let last = value.pop().unwrap();
    value.push(if last == 'A' { 'B' } else { 'A' });
    let page = forged.get(serving.address, "/").await;
    assert_eq!(page.status, 401, "{page:?}");
    assert!(
        page.body.contains("was not signed by this hoist"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Log in again"), "{}", page.body);

    // A session signed with the right key but past its end (as an old
    // cookie kept by a browser would be).
    let key = Key::from(&Sha512::digest(SESSION_KEY.as_bytes()));
    let mut jar = cookie::CookieJar::new();
    let session = json!({
        "login": "ada-gh", "name": "Ada", "csrf": "x".repeat(64),
        "expires_at": jiff::Timestamp::now().as_second() - 60,
        "repos": {"acme/api": "admin"}, "operator": false,
    });
    let value = base64_url(&serde_json::to_vec(&session).unwrap());
    jar.signed_mut(&key)
        .add(Cookie::new("hoist_session", value));
    let signed = jar.get("hoist_session").unwrap();
    let mut expired = Web::new();
    expired
        .cookies
        .insert("hoist_session".into(), signed.value().to_owned());
    let page = expired.get(serving.address, "/").await;
    assert_eq!(page.status, 401, "{page:?}");
    assert!(page.body.contains("Your login ran out"), "{}", page.body);
    // The refusal removed the cookie; a browser that kept it anyway:
    expired
        .cookies
        .insert("hoist_session".into(), signed.value().to_owned());
    let action = expired
        .post_form(
            serving.address,
            "/actions/lock",
            &[
                ("csrf", &"x".repeat(64)),
                ("nonce", &nonce()),
                ("app", "api"),
                ("environment", "staging"),
            ],
        )
        .await;
    assert_eq!(
        action.status, 401,
        "an expired session acts on nothing: {action:?}"
    );

    // The real one still works.
    assert_eq!(ada.get(serving.address, "/").await.status, 200);
    let locks = ada.get(serving.address, "/").await;
    assert!(
        !locks.body.contains("badge lock"),
        "nothing was locked: {}",
        locks.body
    );
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_lock_from_the_dashboard_stops_a_chat_deploy_and_is_audited() {
    let serving = serve_dashboard().await;
    serving.github.set_permission("acme/api", "ada-gh", "write");
    let mut ada = log_in(&serving, "ada-gh").await;
    let page = ada.get(serving.address, "/").await;
    let token = csrf(&page);

    // Without the token, or with another, nothing happens.
    let fields = [
        ("nonce", nonce()),
        ("app", "api".into()),
        ("environment", "staging".into()),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let missing = ada
        .post_form(serving.address, "/actions/lock", &fields)
        .await;
    assert_eq!(missing.status, 403, "{missing:?}");
    assert!(
        missing.body.contains("did not carry your session"),
        "{}",
        missing.body
    );
    let mut wrong = fields.clone();
    let other = "f".repeat(64);
    wrong.push(("csrf", &other));
    assert_eq!(
        ada.post_form(serving.address, "/actions/lock", &wrong)
            .await
            .status,
        403
    );
    assert!(
        !ada.get(serving.address, "/")
            .await
            .body
            .contains("badge lock")
    );

    let mut locking = fields.clone();
    locking.push(("csrf", &token));
    locking.push(("reason", "release freeze"));
    let locked = ada
        .post_form(serving.address, "/actions/lock", &locking)
        .await;
    assert_eq!(locked.status, 200, "{}", locked.body);
    assert!(locked.body.contains("locked"), "{}", locked.body);
    // Sent again (the back button), it renews the lock: still ada's.
    let again = ada
        .post_form(serving.address, "/actions/lock", &locking)
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(
        again.body.contains("ada-gh still holds the lock"),
        "{}",
        again.body
    );

    let overview = ada.get(serving.address, "/").await;
    assert!(overview.body.contains("badge lock"), "{}", overview.body);
    assert!(
        overview.body.contains("by ada-gh: release freeze"),
        "{}",
        overview.body
    );
    assert!(
        overview.body.contains("Unlock staging"),
        "{}",
        overview.body
    );

    // Grace, on Slack, is refused.
    let (status, _) = serving
        .hoist_command_as(("U0GRACE", "grace"), "deploy api to staging", "9.9.9")
        .await;
    assert_eq!(status, 200);
    let refused = serving.slack.wait_for("locked").await;
    assert!(refused.text.contains("ada-gh"), "{}", refused.text);
    assert!(serving.github.deployment_requests("acme/api").is_empty());

    // The audit log names the dashboard and the person, once per form sent.
    let audit = support::hoist(
        &[
            "audit",
            "--config",
            serving.config_path().to_str().unwrap(),
            "--outcome",
            "locked",
        ],
        "",
        &[],
    )
    .await;
    assert!(audit.stdout.contains("dashboard"), "{}", audit.stdout);
    assert!(audit.stdout.contains("ada-gh"), "{}", audit.stdout);
    assert_eq!(
        audit
            .stdout
            .matches("lock staging for api release freeze (dashboard)")
            .count(),
        2,
        "{}",
        audit.stdout
    );
}

#[tokio::test]
async fn what_the_dashboard_does_for_everyone_is_said_in_the_apps_channel() {
    let serving = serve_dashboard_with("channel = \"slack:C0DEPLOYS\"\n").await;
    serving.github.set_permission("acme/api", "ada-gh", "write");
    let mut ada = log_in(&serving, "ada-gh").await;
    let page = ada.get(serving.address, "/").await;

    let deployed = submit(
        &mut ada,
        &serving,
        &page,
        "deploy",
        &[("app", "api"), ("environment", "staging")],
    )
    .await;
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    let announced = serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    assert_eq!(announced.channel, "C0DEPLOYS");
    assert!(
        !announced.text.contains("progress here"),
        "the channel did not ask: {}",
        announced.text
    );
    let id = serving.github.deployment_ids("acme/api")[0];
    assert_eq!(serving.status_webhook(id, "success", "d-1").await, 202);
    let status = serving.slack.wait_for("succeeded").await;
    assert_eq!(status.channel, "C0DEPLOYS", "its statuses follow it there");

    let locked = submit(
        &mut ada,
        &serving,
        &page,
        "lock",
        &[
            ("app", "api"),
            ("environment", "staging"),
            ("reason", "release freeze"),
        ],
    )
    .await;
    assert_eq!(locked.status, 200, "{}", locked.body);
    let lock = serving.slack.wait_for("ada-gh locked staging").await;
    assert_eq!(lock.channel, "C0DEPLOYS");
    assert!(lock.text.contains("release freeze"), "{}", lock.text);

    // A refusal is the page's alone: a deploy of a branch that does not
    // exist is not news.
    let before = serving.slack.sent().len();
    let refused = submit(
        &mut ada,
        &serving,
        &page,
        "deploy",
        &[
            ("app", "api"),
            ("environment", "staging"),
            ("git_ref", "no-such-branch"),
        ],
    )
    .await;
    assert_ne!(refused.status, 200, "{}", refused.body);
    let unlocked = submit(
        &mut ada,
        &serving,
        &page,
        "unlock",
        &[("app", "api"), ("environment", "staging")],
    )
    .await;
    assert_eq!(unlocked.status, 200, "{}", unlocked.body);
    serving.slack.wait_for("ada-gh unlocked staging").await;
    let since: Vec<String> = serving.slack.sent()[before..]
        .iter()
        .map(|sent| sent.text.clone())
        .collect();
    assert_eq!(since.len(), 1, "only the unlock: {since:?}");
}

#[tokio::test]
async fn a_reader_sees_without_actions_and_is_refused_when_acting() {
    let serving = serve_dashboard().await;
    serving.github.set_permission("acme/api", "rita-gh", "read");
    let mut rita = log_in(&serving, "rita-gh").await;
    let page = rita.get(serving.address, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("acme/api"), "{}", page.body);
    assert!(
        !page.body.contains("Lock staging"),
        "a reader gets no buttons: {}",
        page.body
    );
    let refused = submit(
        &mut rita,
        &serving,
        &page,
        "lock",
        &[("app", "api"), ("environment", "staging")],
    )
    .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        refused
            .body
            .contains("may read acme/api on GitHub but not write to it"),
        "{}",
        refused.body
    );
    assert!(
        !rita
            .get(serving.address, "/")
            .await
            .body
            .contains("badge lock")
    );

    // Someone who cannot read the repository sees no app and no
    // deployment of it.
    let mut nobody = log_in(&serving, "nobody-gh").await;
    let page = nobody.get(serving.address, "/").await;
    assert!(
        page.body.contains("can read none of the repositories"),
        "{}",
        page.body
    );
    let deployment = nobody
        .get(serving.address, "/deployments/github/acme/api/1000")
        .await;
    assert_eq!(deployment.status, 404, "{deployment:?}");
    let history = nobody.get(serving.address, "/history?app=api").await;
    assert_eq!(
        history.status, 400,
        "an app they cannot read is unknown: {history:?}"
    );
}

#[tokio::test]
async fn query_parameters_that_do_not_parse_get_a_400_page() {
    let serving = serve_dashboard().await;
    serving.github.set_permission("acme/api", "ada-gh", "write");
    let mut ada = log_in(&serving, "ada-gh").await;
    for (path, says) in [
        ("/history?page=x", "`page` is a whole number"),
        ("/history?page=0", "`page` is a whole number"),
        (
            "/history?state=finished",
            "`state` is one of created, pending",
        ),
        ("/history?app=web", "no app named `web`"),
        ("/history?page=%ZZ", "`page` is a whole number"),
        ("/history?app=api&app=web", "does not parse"),
        (
            "/deployments/github/acme/api/seven",
            "is not a deployment id",
        ),
    ] {
        let answer = ada.get(serving.address, path).await;
        assert_eq!(answer.status, 400, "{path}: {answer:?}");
        assert!(answer.body.contains(says), "{path}: {}", answer.body);
        assert!(
            answer.body.contains("<h1>Bad request</h1>"),
            "{path}: {}",
            answer.body
        );
    }
    let unknown = ada
        .get(serving.address, "/deployments/github/acme/api/424242")
        .await;
    assert_eq!(unknown.status, 404);
    let token = csrf(&ada.get(serving.address, "/").await);
    let action = ada
        .post_form(serving.address, "/actions/explode", &[("csrf", &token)])
        .await;
    assert_eq!(action.status, 400, "no nonce: {action:?}");
}

#[tokio::test]
async fn a_chat_deployment_shows_its_timeline_decision_origin_and_history() {
    let serving = serve_dashboard().await;
    serving.github.set_permission("acme/api", "ada-gh", "write");
    let (status, _) = serving.slash("api to staging", "1.2.3", 0).await;
    assert_eq!(status, 200);
    serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    let id = serving.github.deployment_ids("acme/api")[0];
    assert_eq!(serving.status_webhook(id, "in_progress", "d-1").await, 202);
    assert_eq!(serving.status_webhook(id, "success", "d-2").await, 202);
    serving.slack.wait_for("succeeded").await;

    let mut ada = log_in(&serving, "ada-gh").await;
    let path = format!("/deployments/github/acme/api/{id}");
    let mut page = ada.get(serving.address, &path).await;
    for _ in 0..100 {
        if page.body.contains("badge state-success") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        page = ada.get(serving.address, &path).await;
    }
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("api #"), "{}", page.body);
    assert!(
        page.body.contains("in progress"),
        "the timeline: {}",
        page.body
    );
    assert!(
        page.body.contains(
            r#"<a href="https://slack.com/app_redirect?channel=C0DEPLOYS">Slack channel C0DEPLOYS</a>"#
        ),
        "a slash command is no message: a link to its channel: {}",
        page.body
    );
    assert!(
        page.body.contains("policy: allowed"),
        "the rules' decision: {}",
        page.body
    );
    assert!(
        page.body.contains("Deploy 1111111 to staging again"),
        "{}",
        page.body
    );

    let overview = ada.get(serving.address, "/").await;
    assert!(overview.body.contains("Live: "), "{}", overview.body);
    assert!(overview.body.contains("1111111"), "{}", overview.body);

    let history = ada
        .get(serving.address, "/history?app=api&state=success")
        .await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert!(
        history
            .body
            .contains(&format!("/deployments/github/acme/api/{id}")),
        "{}",
        history.body
    );
    assert!(history.body.contains("<svg"), "the chart: {}", history.body);
    assert!(
        history.body.contains("change failure rate 0%"),
        "{}",
        history.body
    );
    let none = ada
        .get(serving.address, "/history?app=api&state=failure")
        .await;
    assert!(
        none.body.contains("No deployment matches."),
        "{}",
        none.body
    );

    // Redeploying from the page makes a deployment as ada, through the
    // same rules (the fake GitHub records who asked).
    let redeploy = submit(
        &mut ada,
        &serving,
        &page,
        "redeploy",
        &[
            ("app", "api"),
            ("environment", "staging"),
            ("git_ref", "1111111111111111111111111111111111111111"),
        ],
    )
    .await;
    assert_eq!(redeploy.status, 200, "{}", redeploy.body);
    assert!(
        redeploy.body.contains("Follow deployment #"),
        "{}",
        redeploy.body
    );
    let requests = serving.github.deployment_requests("acme/api");
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1]["payload"]["hoist"]["origin"]["actor"]["login"],
        json!("ada-gh"),
        "{}",
        requests[1]
    );
}

#[tokio::test]
async fn approvals_are_decided_from_the_overview_by_the_rules_of_chat() {
    let serving = serve_dashboard().await;
    serving.github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "production:\n  required_contexts: []\n  approvals: { from: [grace-gh] }\n",
    );
    for login in ["ada-gh", "grace-gh"] {
        serving.github.set_permission("acme/api", login, "write");
    }
    // ada asks on Slack; the request waits for grace.
    let (status, _) = serving.slash("api to production", "3.3.3", 0).await;
    assert_eq!(status, 200);
    serving.slack.wait_for("Deployment request #1").await;

    let mut ada = log_in(&serving, "ada-gh").await;
    let page = ada.get(serving.address, "/").await;
    assert!(page.body.contains("#1 awaiting approval"), "{}", page.body);
    let own = submit(
        &mut ada,
        &serving,
        &page,
        "approve",
        &[("app", "api"), ("number", "1")],
    )
    .await;
    assert_eq!(
        own.status, 403,
        "the requester's own approval: {}",
        own.body
    );
    assert!(serving.github.deployment_requests("acme/api").is_empty());

    let mut grace = log_in(&serving, "grace-gh").await;
    let page = grace.get(serving.address, "/").await;
    assert!(page.body.contains("Approve #1"), "{}", page.body);
    let approved = submit(
        &mut grace,
        &serving,
        &page,
        "approve",
        &[("app", "api"), ("number", "1")],
    )
    .await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert!(approved.body.contains("approved"), "{}", approved.body);
    let requests = serving.github.deployment_requests("acme/api");
    assert_eq!(requests.len(), 1, "the approval deployed it");
    // The deployment is ada's, as she asked; the approval grace's.
    assert_eq!(
        requests[0]["payload"]["hoist"]["origin"]["actor"]["name"],
        json!("ada"),
        "{}",
        requests[0]
    );
    let unknown = submit(
        &mut grace,
        &serving,
        &page,
        "reject",
        &[("app", "api"), ("number", "7")],
    )
    .await;
    assert_eq!(unknown.status, 404, "{unknown:?}");
}

#[tokio::test]
async fn a_public_dashboard_shows_everyone_and_lets_only_people_logged_in_act() {
    let serving = serve_with(&format!("{}public = true\n", dashboard_toml())).await;
    serving.github.oauth_app(CLIENT_ID, CLIENT_SECRET);
    let mut anyone = Web::new();
    let page = anyone.get(serving.address, "/").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("Log in with GitHub"), "{}", page.body);
    assert!(page.body.contains("<h3>staging</h3>"), "{}", page.body);
    assert!(
        !page.body.contains("name=\"csrf\""),
        "no forms for nobody: {}",
        page.body
    );
    let act = anyone
        .post_form(
            serving.address,
            "/actions/lock",
            &[
                ("csrf", "x"),
                ("nonce", &nonce()),
                ("app", "api"),
                ("environment", "staging"),
            ],
        )
        .await;
    assert_eq!(act.status, 403, "{act:?}");
    assert!(
        act.body.contains("Log in with GitHub to do this."),
        "{}",
        act.body
    );
}
