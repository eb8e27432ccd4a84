//! The browser test support itself: headless Chromium opens small static
//! pages served on 127.0.0.1, and the accessibility and keyboard checks
//! find nothing on a good page and name each problem on a bad one.
//!
//! Without chromedriver (and CI unset) each test says it skipped.

mod browser;

use std::time::Duration;

use axum::response::Html;
use axum::routing::get;

/// A labelled form, named buttons and links, text that reads well (one
/// large light-grey line that only large text may have, one on a
/// translucent card) and visible focus: an outline, or a box-shadow
/// where the outline is removed.
const GOOD: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Deployments</title>
<style>
  body { font: 16px/1.4 sans-serif; color: #222; background: #fff; margin: 2rem; }
  :focus-visible { outline: 3px solid #1a5fb4; outline-offset: 2px; }
  .lead { font-size: 24px; color: #949494; }
  .card { background: rgba(0, 0, 0, 0.06); padding: 1rem; color: #333; }
  .primary { background: #1a5fb4; color: #fff; border: 0; padding: .5rem 1rem; }
  .primary:focus-visible { outline: none; box-shadow: 0 0 0 3px #f5c211; }
  .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  form { display: flex; flex-wrap: wrap; gap: .5rem; }
</style>
</head>
<body>
<h1>Deployments</h1>
<nav><a href="/good">Home</a> <a href="/good#history">History</a></nav>
<p class="lead">Large light text</p>
<div class="card"><p>Last deployed <strong>3 minutes</strong> ago</p></div>
<form>
  <label for="repo">Repository</label> <input id="repo" name="repo">
  <label>Environment <select name="env"><option>staging</option><option>production</option></select></label>
  <input type="hidden" name="csrf" value="x">
  <span id="filter-label" class="sr-only">Filter</span>
  <input type="search" aria-labelledby="filter-label">
  <button type="submit" class="primary">Deploy</button>
  <button type="button" aria-label="Close"><svg aria-hidden="true" width="12" height="12"></svg></button>
  <button type="button"><img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" alt="Refresh" width="12" height="12"></button>
</form>
<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" alt="" width="4" height="4">
<svg role="img" aria-label="Healthy" width="12" height="12"><circle cx="6" cy="6" r="6" fill="#26a269"/></svg>
<p id="status">All green</p>
</body>
</html>
"##;

/// Each problem once: no lang, no h1, an unlabelled field, an empty
/// button, an img without alt, an unnamed svg image, #aaa text on white,
/// and focus outlines removed with nothing in their place.
const BAD: &str = r##"<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>Bad</title>
<style>
  body { font: 16px sans-serif; background: #fff; color: #000; }
  .muted { color: #aaa; }
  :focus { outline: none; }
  .icon { width: 2rem; height: 2rem; }
</style>
</head>
<body>
<h2>Deployments</h2>
<input name="query" placeholder="Search">
<button class="icon"></button>
<img src="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" class="logo" width="8" height="8">
<svg role="img" class="chart" width="12" height="12"></svg>
<p class="muted">Last deployed 3 minutes ago</p>
<a href="/bad#history">History</a>
</body>
</html>
"##;

/// Tab stops on #second: a keyboard trap.
const TRAP: &str = r##"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Trap</title></head>
<body>
<h1>Trap</h1>
<button id="first">First</button>
<button id="second">Second</button>
<button id="third">Third</button>
<script>
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Tab' && document.activeElement.id === 'second') event.preventDefault();
  });
</script>
</body>
</html>
"##;

/// A positive tabindex puts "Last" first, out of document order.
const ORDER: &str = r##"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Order</title></head>
<body>
<h1>Order</h1>
<a href="/order#one">One</a>
<a href="/order#two">Two</a>
<button tabindex="1">Last</button>
</body>
</html>
"##;

/// Serves the pages on a free port of 127.0.0.1; the base URL.
async fn serve() -> String {
    let app = axum::Router::new()
        .route("/good", get(|| async { Html(GOOD) }))
        .route("/bad", get(|| async { Html(BAD) }))
        .route("/trap", get(|| async { Html(TRAP) }))
        .route("/order", get(|| async { Html(ORDER) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

fn assert_reported(problems: &[String], needle: &str, subject: &str) {
    assert!(
        problems
            .iter()
            .any(|problem| problem.contains(needle) && problem.contains(subject)),
        "expected a problem with {needle:?} naming {subject:?} in:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn a_good_page_has_no_problems() {
    let Some(browser) = browser::start().await else {
        return;
    };
    let base = serve().await;
    browser.goto(&format!("{base}/good")).await;
    assert_eq!(browser.text_of("h1").await, "Deployments");
    assert_eq!(browser.text_of("#status").await, "All green");

    let problems = browser::accessibility_problems(&browser).await;
    assert!(problems.is_empty(), "problems:\n{}", problems.join("\n"));
    let problems = browser::keyboard_problems(&browser, 8).await;
    assert!(problems.is_empty(), "problems:\n{}", problems.join("\n"));
    // The checks leave the page as it was.
    assert!(
        browser
            .run(
                "return document.getElementById('__hoist_focus_start') === null;",
                vec![]
            )
            .await
            .as_bool()
            .unwrap()
    );
    browser.close().await;
}

#[tokio::test]
async fn a_bad_page_has_each_problem_named() {
    let Some(browser) = browser::start().await else {
        return;
    };
    let base = serve().await;
    browser.goto(&format!("{base}/bad")).await;

    let problems = browser::accessibility_problems(&browser).await;
    assert_reported(
        &problems,
        "form field without a label",
        "input[name=\"query\"]",
    );
    assert_reported(
        &problems,
        "button without an accessible name",
        "button.icon",
    );
    assert_reported(&problems, "img without alt", "img.logo");
    assert_reported(&problems, "svg role=img without a title", "svg.chart");
    assert_reported(&problems, "html element without lang", "lang");
    assert_reported(&problems, "page without an h1", "h1");
    assert_reported(
        &problems,
        "low text contrast 2.32:1 (needs 4.5:1)",
        "p.muted",
    );
    assert_reported(
        &problems,
        "\"Last deployed 3 minutes ago\", colour rgb(170, 170, 170) on rgb(255, 255, 255)",
        "p.muted",
    );
    assert_eq!(
        problems.len(),
        7,
        "one problem each:\n{}",
        problems.join("\n")
    );

    let problems = browser::keyboard_problems(&browser, 3).await;
    assert_reported(
        &problems,
        "no visible focus indicator",
        "input[name=\"query\"]",
    );
    assert_reported(&problems, "no visible focus indicator", "button.icon");
    assert_reported(
        &problems,
        "no visible focus indicator",
        "a[href=\"/bad#history\"]",
    );
    assert_eq!(
        problems.len(),
        3,
        "one problem each:\n{}",
        problems.join("\n")
    );

    // Asking for more focus stops than the page has is a problem too.
    let problems = browser::keyboard_problems(&browser, 4).await;
    assert_reported(
        &problems,
        "only 3 elements got keyboard focus",
        "at least 4",
    );
}

#[tokio::test]
async fn keyboard_traps_and_tab_order_are_reported() {
    let Some(browser) = browser::start().await else {
        return;
    };
    let base = serve().await;

    browser.goto(&format!("{base}/trap")).await;
    let problems = browser::keyboard_problems(&browser, 3).await;
    assert_reported(&problems, "focus is trapped", "button#second");
    assert_reported(&problems, "Tab never reached", "button#third");
    assert_reported(
        &problems,
        "only 2 elements got keyboard focus",
        "at least 3",
    );
    assert_eq!(problems.len(), 3, "{}", problems.join("\n"));

    browser.goto(&format!("{base}/order")).await;
    let problems = browser::keyboard_problems(&browser, 3).await;
    assert_reported(&problems, "but document order has", "button \"Last\"");
    assert_eq!(
        problems.len(),
        1,
        "only the jump is wrong:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn screenshots_are_png_and_a_phone_sized_window_works() {
    let Some(browser) = browser::start().await else {
        return;
    };
    let base = serve().await;
    browser.goto(&format!("{base}/good")).await;
    let dir = tempfile::tempdir().unwrap();

    let desktop = dir.path().join("shots/desktop.png");
    browser.screenshot(&desktop).await;
    let png = std::fs::read(&desktop).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(png_size(&png).0, 1280);

    browser.set_window(390, 844).await;
    let width = browser.run("return window.innerWidth;", vec![]).await;
    assert_eq!(width.as_u64(), Some(390), "the viewport is phone-sized");
    let phone = dir.path().join("shots/phone/good.png");
    browser.screenshot(&phone).await;
    let png = std::fs::read(&phone).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(png_size(&png).0, 390);
    // The page still works and reads well at that size.
    assert_eq!(browser.text_of("h1").await, "Deployments");
    let problems = browser::accessibility_problems(&browser).await;
    assert!(problems.is_empty(), "problems:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn waiting_for_a_missing_element_names_it_and_the_page() {
    let Some(mut browser) = browser::start().await else {
        return;
    };
    let base = serve().await;
    browser.goto(&format!("{base}/good")).await;
    browser.wait = Duration::from_millis(500);
    let waited = tokio::spawn(async move {
        browser.wait_for("#nowhere").await;
    })
    .await;
    let panic = waited.expect_err("wait_for panics").into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("\"#nowhere\""), "{message}");
    assert!(message.contains(&format!("{base}/good")), "{message}");
    assert!(message.contains("Deployments"), "{message}");
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}
