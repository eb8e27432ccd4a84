//! The dashboard in a real headless Chromium (Debian's, driven through
//! chromedriver): logging in through the fake GitHub's OAuth pages, the
//! overview, locking an environment and a chat command refused by it, a
//! running deployment's log growing on its page, the accessibility basics
//! (labels, names, contrast, keyboard) of every page, and the layout at
//! a phone's width.
//!
//! Screenshots are kept in `target/dashboard-screenshots/`; with
//! `HOIST_BLESS=1` the overview's also becomes the README's
//! (`docs/dashboard-overview.png`).

mod browser;
mod fakes;
mod harness;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Locator;
use harness::{Serving, free_address, serve_with, start_hoist};

const CLIENT_ID: &str = "dashboard-client";
const CLIENT_SECRET: &str = "dashboard-client-secret";

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots")
}

/// Fails the test with every problem the page has, named.
async fn assert_accessible(browser: &browser::Browser, page: &str, focusable_at_least: usize) {
    let mut problems = browser::accessibility_problems(browser).await;
    problems.extend(browser::keyboard_problems(browser, focusable_at_least).await);
    assert!(problems.is_empty(), "{page}:\n{}", problems.join("\n"));
}

/// Nothing wider than the window: the page folds on a phone.
async fn assert_fits(browser: &browser::Browser, page: &str) {
    let widths = browser
        .run(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await;
    let (scroll, window) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(
        scroll <= window,
        "{page} is {scroll}px wide in a {window}px window"
    );
}

/// The text of `css` once it contains `needle` (the page reloaded until
/// then, up to 10 s).
async fn text_once_it_says(browser: &browser::Browser, css: &str, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = browser.text_of(css).await;
        if text.contains(needle) || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.client.refresh().await.unwrap();
    }
}

async fn serve_on_github() -> Serving {
    let serving = serve_with(&format!(
        "[dashboard]\nenabled = true\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n\
         [apps.web]\nrepo = \"acme/web\"\n"
    ))
    .await;
    serving.github.oauth_app(CLIENT_ID, CLIENT_SECRET);
    serving.github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "staging:\n  required_contexts: []\nproduction:\n  required_contexts: []\n",
    );
    serving.github.add_repo("acme/web", "main", harness::MAIN);
    serving.github.set_file(
        "acme/web",
        "main",
        ".github/deploy.yml",
        "staging:\n  required_contexts: []\nproduction:\n  required_contexts: []\n",
    );
    for repo in ["acme/api", "acme/web"] {
        serving.github.set_permission(repo, "ada-gh", "write");
    }
    serving
}

#[tokio::test]
async fn log_in_through_github_see_the_overview_lock_staging_and_chat_is_refused() {
    let Some(browser) = browser::start().await else {
        return;
    };
    let serving = serve_on_github().await;
    // Something to show, from Slack: api live in staging, its last
    // production deployment failed, web on its way to staging.
    let deploy = |text: &'static str, trigger: &'static str| async {
        let (status, _) = serving.slash(text, trigger, 0).await;
        assert_eq!(status, 200);
    };
    deploy("api to staging", "1.1.1").await;
    serving
        .slack
        .wait_for("Deploying api main (1111111) to staging")
        .await;
    deploy("api to production", "1.1.2").await;
    serving
        .slack
        .wait_for("Deploying api main (1111111) to production")
        .await;
    deploy("web to staging", "1.1.3").await;
    serving
        .slack
        .wait_for("Deploying web main (1111111) to staging")
        .await;
    let api = serving.github.deployment_ids("acme/api");
    let id = api[0];
    let web = serving.github.deployment_ids("acme/web")[0];
    assert_eq!(
        serving.status_webhook(id, "success", "browser-1").await,
        202
    );
    assert_eq!(
        serving.status_webhook(api[1], "failure", "browser-2").await,
        202
    );
    assert_eq!(
        serving
            .status_webhook(web, "in_progress", "browser-3")
            .await,
        202
    );
    serving.slack.wait_for("failed").await;

    serving.github.sign_in_as("ada-gh", "Ada Lovelace");
    let hoist = format!("http://{}", serving.address);
    browser.goto(&format!("{hoist}/")).await;
    // Sent to GitHub's (the fake's) authorize page and straight back.
    let who = browser.text_of("header .who").await;
    assert!(who.contains("Logged in as ada-gh"), "{who}");
    assert_eq!(browser.text_of("h1").await, "Overview");
    let live = text_once_it_says(
        &browser,
        "article[aria-label='api in staging']",
        "Live: main (1111111)",
    )
    .await;
    assert!(live.contains("succeeded"), "{live}");
    assert!(browser.text_of("#app-web").await.contains("acme/web"));
    assert_accessible(&browser, "the overview", 8).await;

    // Lock api's staging with a reason, through the form.
    let cell = "article[aria-label='api in staging']";
    browser
        .wait_for(&format!(
            "{cell} form[action='/actions/lock'] input[name='reason']"
        ))
        .await
        .send_keys("release freeze")
        .await
        .unwrap();
    browser
        .wait_for(&format!("{cell} form[action='/actions/lock'] button"))
        .await
        .click()
        .await
        .unwrap();
    let answer = browser.text_of("main p[role='status']").await;
    assert!(answer.contains("locked"), "{answer}");
    browser
        .client
        .find(Locator::LinkText("Back to the overview"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let cell_text = browser.text_of(cell).await;
    assert!(
        cell_text.contains("locked by ada-gh: release freeze"),
        "{cell_text}"
    );
    let overview = screenshots().join("overview.png");
    browser.screenshot(&overview).await;
    if std::env::var_os("HOIST_BLESS").is_some() {
        let readme_picture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard-overview.png");
        std::fs::create_dir_all(readme_picture.parent().unwrap()).unwrap();
        std::fs::copy(&overview, &readme_picture).unwrap();
    }

    // Grace's chat command is refused by the lock.
    let (status, _) = serving
        .hoist_command_as(("U0GRACE", "grace"), "deploy api to staging", "2.2.2")
        .await;
    assert_eq!(status, 200);
    let refused = serving.slack.wait_for("ada-gh").await;
    assert!(refused.text.contains("locked"), "{}", refused.text);
    assert_eq!(serving.github.deployment_requests("acme/api").len(), 2);

    // History, with its charts, and the deployment's page.
    browser.goto(&format!("{hoist}/history?app=api")).await;
    browser.wait_for("svg[role='img']").await;
    assert_accessible(&browser, "the history", 6).await;
    browser.screenshot(screenshots().join("history.png")).await;
    browser
        .goto(&format!("{hoist}/deployments/github/acme/api/{id}"))
        .await;
    assert!(browser.text_of("h1").await.contains("api #"));
    assert_accessible(&browser, "a deployment", 3).await;

    // A phone's width: one column, nothing cut off.
    browser.set_window(390, 844).await;
    browser.goto(&format!("{hoist}/")).await;
    browser.wait_for("h1").await;
    assert_fits(&browser, "the overview").await;
    browser
        .screenshot(screenshots().join("overview-phone.png"))
        .await;
    browser.close().await;
}

const SLOW_DEPLOY: &str = "#!/bin/sh\necho \"Deploying $HOIST_REF to $HOIST_ENVIRONMENT\"\n\
     i=1\nwhile [ $i -le 20 ]; do echo \"step $i\"; i=$((i+1)); sleep 0.4; done\necho finished\n";

#[tokio::test]
async fn a_running_deployment_log_grows_on_its_page() {
    let Some(browser) = browser::start().await else {
        return;
    };
    // The local forge: no login, the operator on 127.0.0.1.
    let dir = tempfile::tempdir().unwrap();
    let repo = support::repository(
        &dir.path().join("web"),
        &[
            (
                ".github/deploy.yml",
                "staging:\n  required_contexts: []\n",
                false,
            ),
            ("deploy.sh", SLOW_DEPLOY, true),
        ],
    );
    let address = free_address();
    let config = dir.path().join("hoist.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{address}\"\npublic_url = \"http://{address}\"\n\
             [store]\nurl = \"sqlite://{db}\"\n[forge]\nkind = \"local\"\n[dashboard]\nenabled = true\n\
             [apps.web]\nrepo = \"local/web\"\npath = \"{repo}\"\ndefault_environment = \"staging\"\ndeploy_command = [\"./deploy.sh\"]\n",
            db = dir.path().join("hoist.db").display(),
            repo = repo.display(),
        ),
    )
    .unwrap();
    let _hoist = start_hoist(&config, address).await;

    browser.goto(&format!("http://{address}/")).await;
    assert!(
        browser
            .text_of("header .who")
            .await
            .contains("(local forge)")
    );
    browser
        .wait_for("article[aria-label='web in staging'] form[action='/actions/deploy'] button")
        .await
        .click()
        .await
        .unwrap();
    let answer = browser.text_of("main p[role='status']").await;
    assert!(answer.contains("deployment #1 created"), "{answer}");
    browser
        .client
        .find(Locator::Css("main a[href^='/deployments/']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for("pre.log[data-events]").await;
    let lines = || async {
        browser
            .run(
                "return document.querySelectorAll('pre.log span').length;",
                vec![],
            )
            .await
            .as_u64()
            .unwrap()
    };
    let first = lines().await;
    let mut seen = vec![first];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while tokio::time::Instant::now() < deadline {
        let state = browser.text_of("#run-state").await;
        seen.push(lines().await);
        if state.contains("ended") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The page reloads itself once the run ends, to show its statuses.
    tokio::time::sleep(Duration::from_secs(3)).await;
    browser.wait_for("pre.log:not([data-events])").await;
    let log = browser.text_of("pre.log").await;
    assert!(log.contains("step 20") && log.contains("finished"), "{log}");
    let grew = seen.windows(2).filter(|pair| pair[1] > pair[0]).count();
    assert!(
        grew >= 2,
        "the log grew while the page was open, not only at load: line counts {seen:?}"
    );
    let ended = browser.text_of("#run-state").await;
    assert!(ended.contains("The run has ended"), "{ended}");
    assert_accessible(&browser, "a running deployment", 3).await;
    browser
        .screenshot(screenshots().join("deployment.png"))
        .await;
    browser.close().await;
}
