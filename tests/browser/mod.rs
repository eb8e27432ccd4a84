//! End-to-end browser tests: headless Chromium driven over WebDriver by
//! fantoccini, with checks of what a person using a keyboard or a screen
//! reader, or reading low-contrast text, would run into.
//!
//! [`start`] runs Debian's `chromedriver` on a free port of 127.0.0.1 and
//! opens a session in a fresh profile. Without chromedriver the test says
//! it skipped and passes, except under CI (`CI` set), where `.ci/run`
//! installs it and a missing browser is a failure.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// Where Debian's chromium-driver puts the driver; `HOIST_CHROMEDRIVER`
/// overrides it.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's chromium launcher; `HOIST_CHROMIUM` overrides it.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// How long [`Browser::wait_for`] waits for a selector to match.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long chromedriver has to say it is ready.
const DRIVER_READY: Duration = Duration::from_secs(10);
/// How long Chromium has to start and open the session.
const SESSION_START: Duration = Duration::from_secs(60);

/// The flags Chromium runs with. Without the background-networking ones
/// it keeps trying to reach Google's services, which this machine refuses.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
];

/// A headless Chromium session. Dropping it ends the session and kills
/// chromedriver and the browser under it; [`Browser::close`] does the
/// same and waits for it.
pub struct Browser {
    pub client: Client,
    /// How long [`Browser::wait_for`] waits; [`WAIT`] unless changed.
    pub wait: Duration,
    driver: Driver,
}

/// The chromedriver process, its own process group, and the browser
/// profile. Field order is drop order: the profile goes last.
struct Driver {
    child: tokio::process::Child,
    address: SocketAddr,
    /// The session to delete when dropped (None once closed).
    session: Option<String>,
    log: PathBuf,
    profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Blocking on purpose: Drop cannot await, and chromedriver is
            // another process, so this needs nothing from the runtime.
            let _ = blocking_request(self.address, "DELETE", &format!("/session/{session}"));
        }
        if let Some(pid) = self.child.id() {
            // chromedriver leads its own group; Chromium's processes are in it.
            let group = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
        // Reap it, so no zombie outlives the test's runtime.
        let deadline = Instant::now() + Duration::from_secs(2);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn env_path(variable: &str, default: &str) -> PathBuf {
    std::env::var_os(variable)
        .filter(|value| !value.is_empty())
        .map_or_else(|| PathBuf::from(default), PathBuf::from)
}

/// Under CI a missing browser fails the test; elsewhere it is skipped.
fn missing(what: &str, path: &Path) -> Option<Browser> {
    if std::env::var_os("CI").is_some() {
        panic!(
            "{what} not found at {} and CI is set: browser tests must run in CI \
             (.ci/run installs chromium and chromium-driver with apt-get)",
            path.display()
        );
    }
    eprintln!(
        "skipped browser test: {what} not found (apt-get install chromium chromium-driver, as .ci/run does)"
    );
    None
}

/// Starts chromedriver and a headless Chromium session, or returns None
/// (said on stderr) when chromedriver is not installed and CI is not set.
pub async fn start() -> Option<Browser> {
    let chromedriver = env_path("HOIST_CHROMEDRIVER", CHROMEDRIVER);
    if !chromedriver.is_file() {
        return missing("chromedriver", &chromedriver);
    }
    let chromium = env_path("HOIST_CHROMIUM", CHROMIUM);
    if !chromium.is_file() {
        return missing("chromium", &chromium);
    }
    let profile = tempfile::Builder::new()
        .prefix("hoist-chromium-")
        .tempdir()
        .expect("a temporary directory for the browser profile");
    let log = profile.path().join("chromedriver.log");
    let (child, address) = spawn_driver(&chromedriver, &log).await;
    let mut driver = Driver {
        child,
        address,
        session: None,
        log,
        profile,
    };

    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|flag| flag.to_string()).collect();
    args.push(format!(
        "--user-data-dir={}",
        driver.profile.path().join("profile").display()
    ));
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium.display().to_string(),
            "args": args,
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    // Plain HTTP: chromedriver listens on 127.0.0.1 without TLS. Not
    // `ClientBuilder::rustls()`: in test builds rustls has both the ring
    // provider (hoist's) and aws-lc-rs (fantoccini's hyper-rustls
    // defaults), so it cannot choose one and panics when configured.
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(capabilities);
    let url = format!("http://{address}");
    let client = match tokio::time::timeout(SESSION_START, builder.connect(&url)).await {
        Ok(Ok(client)) => client,
        Ok(Err(error)) => panic!(
            "Chromium did not start ({}): {error}\nchromedriver's log:\n{}",
            chromium.display(),
            log_tail(&driver.log)
        ),
        Err(_) => panic!(
            "Chromium did not start in {SESSION_START:?} ({})\nchromedriver's log:\n{}",
            chromium.display(),
            log_tail(&driver.log)
        ),
    };
    driver.session = client.session_id().await.ok().flatten();
    // The session is deleted by Driver's Drop (synchronously, before the
    // driver is killed), not by fantoccini's background task.
    let _ = client.persist().await;
    Some(Browser {
        client,
        wait: WAIT,
        driver,
    })
}

/// Runs chromedriver on a free port, retrying if another process took the
/// port in between, and waits until `/status` says it is ready.
async fn spawn_driver(chromedriver: &Path, log: &Path) -> (tokio::process::Child, SocketAddr) {
    let mut last_error = String::new();
    for _ in 0..3 {
        let address = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port on 127.0.0.1");
        let output = std::fs::File::create(log).expect("chromedriver's log file");
        let mut child = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={}", address.port()))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log file handle"))
            .stderr(output)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", chromedriver.display()));
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                last_error = format!("chromedriver exited ({status})");
                break;
            }
            if let Ok(body) = blocking_request(address, "GET", "/status")
                && serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|status| status["value"]["ready"].as_bool())
                    == Some(true)
            {
                return (child, address);
            }
            if Instant::now() > deadline {
                last_error = format!("chromedriver was not ready in {DRIVER_READY:?}");
                let _ = child.start_kill();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!(
        "{}: {last_error}\nits log:\n{}",
        chromedriver.display(),
        log_tail(log)
    );
}

/// One HTTP/1.1 request to chromedriver, with short timeouts; the body.
fn blocking_request(address: SocketAddr, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )?;
    // chromedriver keeps the connection open whatever the request says:
    // read the headers, then Content-Length bytes.
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if length.is_some_and(|length| body.len() >= length) {
                return Ok(body.to_owned());
            }
        }
    }
    let response = String::from_utf8_lossy(&response);
    Ok(response
        .split_once("\r\n\r\n")
        .map_or("", |(_, body)| body)
        .to_owned())
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn excerpt(text: &str, limit: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > limit {
        format!("{}…", text.chars().take(limit).collect::<String>())
    } else {
        text
    }
}

impl Browser {
    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("the browser does not open {url}: {e}"));
    }

    /// The first element matching the CSS selector `css`, waiting up to
    /// [`Browser::wait`] for it to appear. The panic names the selector, the page
    /// and the start of its text.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(self.wait)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(error) => {
                let url = self
                    .client
                    .current_url()
                    .await
                    .map_or_else(|e| format!("(unknown: {e})"), |url| url.to_string());
                let text = self
                    .client
                    .execute(
                        "return document.body ? document.body.innerText : '';",
                        vec![],
                    )
                    .await
                    .ok()
                    .and_then(|text| text.as_str().map(str::to_owned))
                    .unwrap_or_default();
                panic!(
                    "no element matches {css:?} after {:?} on {url} ({error}); the page says: {:?}",
                    self.wait,
                    excerpt(&text, 300)
                );
            }
        }
    }

    /// The rendered text of the first element matching `css` (waited for).
    pub async fn text_of(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        element
            .text()
            .await
            .unwrap_or_else(|e| panic!("the text of {css:?}: {e}"))
    }

    /// Writes a PNG screenshot of the window to `path`, creating its
    /// directories.
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("a screenshot for {}: {e}", path.display()));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Resizes the window, e.g. to a phone's 390×844.
    pub async fn set_window(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("resizing the window to {width}×{height}: {e}"));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("a script in the page fails: {e}"))
    }

    /// Ends the session and stops chromedriver, waiting for both.
    pub async fn close(self) {
        let Browser {
            client, mut driver, ..
        } = self;
        if client.close().await.is_ok() {
            driver.session = None;
        }
        drop(driver);
    }
}

/// Shared by the checks: how an element is named in a problem.
const DESCRIBE_JS: &str = r#"
function hoistDescribe(el) {
  let out = el.tagName.toLowerCase();
  if (el.id) out += '#' + el.id;
  else if (el.classList && el.classList.length) out += '.' + el.classList[0];
  else {
    for (const attr of ['name', 'type', 'href', 'src', 'role']) {
      const value = el.getAttribute(attr);
      if (value) { out += '[' + attr + '="' + value.slice(0, 40) + '"]'; break; }
    }
  }
  const text = (el.innerText || el.textContent || '').replace(/\s+/g, ' ').trim();
  if (text) out += ' "' + (text.length > 40 ? text.slice(0, 40) + '…' : text) + '"';
  return out;
}
"#;

const ACCESSIBILITY_JS: &str = r#"
const problems = [];
const shown = (el) => el.checkVisibility
  ? el.checkVisibility({ visibilityProperty: true })
  : el.getClientRects().length > 0;
const exposed = (el) => shown(el) && !el.closest('[aria-hidden="true"]');
const clean = (s) => (s || '').replace(/\s+/g, ' ').trim();
function labelledBy(el) {
  const ids = clean(el.getAttribute('aria-labelledby'));
  if (!ids) return '';
  return clean(ids.split(' ').map((id) => document.getElementById(id))
    .filter(Boolean).map((e) => e.textContent).join(' '));
}
function ariaName(el) {
  return labelledBy(el) || clean(el.getAttribute('aria-label'));
}
function contentName(el) {
  let out = '';
  for (const node of el.childNodes) {
    if (node.nodeType === Node.TEXT_NODE) { out += node.textContent; continue; }
    if (node.nodeType !== Node.ELEMENT_NODE) continue;
    if (node.getAttribute('aria-hidden') === 'true') continue;
    const tag = node.tagName.toLowerCase();
    if (tag === 'img') out += ' ' + (node.getAttribute('alt') || '');
    else if (tag === 'svg') {
      const title = node.querySelector('title');
      out += ' ' + (ariaName(node) || (title ? title.textContent : ''));
    } else out += ' ' + (ariaName(node) || contentName(node));
  }
  return clean(out);
}

// Form fields and their labels.
for (const el of document.querySelectorAll('input, select, textarea')) {
  const type = (el.getAttribute('type') || '').toLowerCase();
  if (['hidden', 'submit', 'button', 'reset', 'image'].includes(type)) continue;
  if (!exposed(el)) continue;
  const fromLabels = el.labels
    ? clean(Array.from(el.labels).map((l) => l.textContent).join(' '))
    : '';
  if (!fromLabels && !ariaName(el)) {
    problems.push('form field without a label: ' + hoistDescribe(el) +
      ' (add <label for>, a wrapping <label>, aria-label or aria-labelledby)');
  }
}

// Buttons and links and their names.
const buttons = 'button, [role="button"], input[type="submit"], input[type="button"], ' +
  'input[type="reset"], input[type="image"]';
for (const el of document.querySelectorAll(buttons + ', a[href], [role="link"]')) {
  if (!exposed(el)) continue;
  const tag = el.tagName.toLowerCase();
  let name = ariaName(el);
  if (!name && tag === 'input') {
    const type = (el.getAttribute('type') || '').toLowerCase();
    name = type === 'image' ? clean(el.getAttribute('alt'))
      : clean(el.value) || (type === 'submit' || type === 'reset' ? type : '');
  }
  if (!name) name = contentName(el);
  if (!name) name = clean(el.getAttribute('title'));
  if (!name) {
    const kind = el.matches(buttons) ? 'button' : 'link';
    problems.push(kind + ' without an accessible name: ' + hoistDescribe(el) +
      ' (give it text, aria-label, title or an img with alt)');
  }
}

// Images.
for (const el of document.querySelectorAll('img')) {
  if (!el.hasAttribute('alt') && exposed(el)) {
    problems.push('img without alt: ' + hoistDescribe(el) + ' (alt="" if it is decoration)');
  }
}
for (const el of document.querySelectorAll('svg[role="img"]')) {
  if (!exposed(el)) continue;
  const title = el.querySelector(':scope > title');
  if (!ariaName(el) && !(title && clean(title.textContent))) {
    problems.push('svg role=img without a title, aria-label or aria-labelledby: ' + hoistDescribe(el));
  }
}

// The document.
if (!clean(document.documentElement.getAttribute('lang'))) {
  problems.push('html element without lang (e.g. <html lang="en">)');
}
if (document.querySelectorAll('h1').length === 0) {
  problems.push('page without an h1');
}

// Text contrast (WCAG 2: 4.5:1, or 3:1 for large text).
const canvas = document.createElement('canvas');
canvas.width = canvas.height = 1;
const ctx = canvas.getContext('2d', { willReadFrequently: true });
function parseColour(css) {
  const m = css.match(/^rgba?\(\s*([\d.]+)[,\s]+([\d.]+)[,\s]+([\d.]+)(?:\s*[,/]\s*([\d.]+)(%?))?\s*\)$/);
  if (m) {
    let a = m[4] === undefined ? 1 : parseFloat(m[4]);
    if (m[5] === '%') a /= 100;
    return [parseFloat(m[1]), parseFloat(m[2]), parseFloat(m[3]), a];
  }
  ctx.clearRect(0, 0, 1, 1);
  ctx.fillStyle = 'rgba(0, 0, 0, 0)';
  ctx.fillStyle = css;
  ctx.fillRect(0, 0, 1, 1);
  const d = ctx.getImageData(0, 0, 1, 1).data;
  return [d[0], d[1], d[2], d[3] / 255];
}
const over = (top, bottom) => [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat([1]);
const show = (c) => 'rgb(' + c.slice(0, 3).map((v) => Math.round(v)).join(', ') + ')';
function luminance(c) {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    const s = v / 255;
    return s <= 0.04045 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
// The colour behind `el`: its own and its ancestors' backgrounds, blended
// over white; null if an image or gradient is in the way.
function background(el) {
  const layers = [];
  for (let node = el; node && node.nodeType === Node.ELEMENT_NODE; node = node.parentElement) {
    const style = getComputedStyle(node);
    const colour = parseColour(style.backgroundColor);
    if (colour[3] > 0) layers.push(colour);
    if (colour[3] >= 1) break;
    if (style.backgroundImage && style.backgroundImage !== 'none') return null;
  }
  let result = [255, 255, 255, 1];
  for (const layer of layers.reverse()) result = over(layer, result);
  return result;
}
const skip = new Set(['script', 'style', 'noscript', 'template', 'title', 'option', 'optgroup']);
for (const el of [document.body, ...document.body.querySelectorAll('*')]) {
  if (skip.has(el.tagName.toLowerCase())) continue;
  const own = Array.from(el.childNodes)
    .filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join('');
  if (!clean(own)) continue;
  if (el.checkVisibility && !el.checkVisibility({ visibilityProperty: true, opacityProperty: true })) continue;
  const rect = el.getBoundingClientRect();
  if (rect.width <= 1 || rect.height <= 1) continue;
  if (el.closest(':disabled')) continue;
  const style = getComputedStyle(el);
  const bg = background(el);
  if (!bg) continue;
  let fg = parseColour(style.color);
  if (fg[3] === 0) continue;
  if (fg[3] < 1) fg = over(fg, bg);
  const [hi, lo] = [luminance(fg), luminance(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  const size = parseFloat(style.fontSize);
  const bold = parseInt(style.fontWeight, 10) >= 700;
  const large = size >= 24 || (bold && size >= 18.66);
  const needed = large ? 3 : 4.5;
  if (ratio < needed) {
    const text = clean(own);
    problems.push('low text contrast ' + ratio.toFixed(2) + ':1 (needs ' + needed + ':1' +
      (large ? ', large text' : '') + '): ' + hoistDescribe(el).split(' "')[0] + ' "' +
      (text.length > 40 ? text.slice(0, 40) + '…' : text) + '", colour ' + show(fg) +
      ' on ' + show(bg));
  }
}
return problems;
"#;

/// What the page does wrong for screen readers and low vision: unlabelled
/// form fields, unnamed buttons and links, images without alt, no `lang`,
/// no `h1`, and text below WCAG 2's contrast minimum. Empty when fine.
pub async fn accessibility_problems(browser: &Browser) -> Vec<String> {
    let script = format!("{DESCRIBE_JS}\n{ACCESSIBILITY_JS}");
    strings(browser.run(&script, vec![]).await)
}

fn strings(value: Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => text,
                other => other.to_string(),
            })
            .collect(),
        other => panic!("a check in the page returned {other}, not a list"),
    }
}

/// Lists the elements Tab should reach, in document order (radio groups
/// count once), and puts a focus starting point before the first.
const FOCUSABLES_JS: &str = r#"
const selector = 'a[href], area[href], button, input, select, textarea, summary, ' +
  '[tabindex], [contenteditable=""], [contenteditable="true"], audio[controls], video[controls]';
const seenRadios = new Set();
const all = Array.from(document.querySelectorAll(selector)).filter((el) => {
  if (el.matches('input[type="hidden"]')) return false;
  if (el.tabIndex < 0) return false;
  if (el.matches(':disabled') || el.closest('[inert]')) return false;
  if (el.checkVisibility ? !el.checkVisibility({ visibilityProperty: true })
    : el.getClientRects().length === 0) return false;
  if (el.matches('summary') && el.parentElement && el.parentElement.tagName !== 'DETAILS') return false;
  return true;
});
const focusables = all.filter((el) => {
  if (!el.matches('input[type="radio"]') || !el.name) return true;
  const key = (el.form ? 'form' : 'doc') + ':' + el.name;
  const group = all.filter((o) => o.matches('input[type="radio"]') && o.name === el.name && o.form === el.form);
  const checked = group.find((o) => o.checked);
  if (checked) return el === checked;
  if (seenRadios.has(key)) return false;
  seenRadios.add(key);
  return true;
});
window.__hoistFocusables = focusables;
const start = document.createElement('span');
// tabindex 1 and first in the body: Tab from here goes where Tab from
// the top of a fresh page would, positive tabindex first.
start.tabIndex = 1;
start.id = '__hoist_focus_start';
document.body.prepend(start);
window.scrollTo(0, 0);
start.focus();
return focusables.map(hoistDescribe);
"#;

/// Where focus is, and whether it shows.
const FOCUS_JS: &str = r#"
const el = document.activeElement;
if (!el || el === document.body || el === document.documentElement ||
    el.id === '__hoist_focus_start') {
  return { index: -1, body: true, describe: 'the page body', visible: false, style: '' };
}
const style = getComputedStyle(el);
const width = parseFloat(style.outlineWidth) || 0;
const outlineColour = style.outlineColor;
const transparent = /^rgba\(.*,\s*0\)$/.test(outlineColour) || outlineColour === 'transparent';
const outline = style.outlineStyle !== 'none' && width > 0 && !transparent;
const shadow = style.boxShadow && style.boxShadow !== 'none';
return {
  index: (window.__hoistFocusables || []).indexOf(el),
  body: false,
  describe: hoistDescribe(el),
  visible: Boolean(outline || shadow),
  style: 'outline ' + style.outlineStyle + ' ' + style.outlineWidth + ' ' + outlineColour +
    ', box-shadow ' + style.boxShadow,
};
"#;

const FOCUS_CLEANUP_JS: &str = r#"
const start = document.getElementById('__hoist_focus_start');
if (start) start.remove();
delete window.__hoistFocusables;
if (document.activeElement) document.activeElement.blur();
return null;
"#;

/// Presses Tab from the top of the page, once per focusable element and
/// twice more, and checks that focus visits every link, button and field
/// in document order without getting stuck, that at least `expected_min`
/// elements got focus, and that each shows a focus indicator (an outline
/// or a box-shadow). Empty when fine.
pub async fn keyboard_problems(browser: &Browser, expected_min: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let expected = strings(
        browser
            .run(&format!("{DESCRIBE_JS}\n{FOCUSABLES_JS}"), vec![])
            .await,
    );
    let focus_script = format!("{DESCRIBE_JS}\n{FOCUS_JS}");
    let mut visited = vec![false; expected.len()];
    let mut next = 0;
    let mut previous: Option<i64> = None;
    let mut previous_name = String::from("the top of the page");
    for press in 1..=expected.len() + 2 {
        let tab: char = Key::Tab.into();
        let keys = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down { value: tab })
            .then(KeyAction::Up { value: tab });
        browser
            .client
            .perform_actions(keys)
            .await
            .unwrap_or_else(|e| panic!("pressing Tab: {e}"));
        let focus = browser.run(&focus_script, vec![]).await;
        let index = focus["index"].as_i64().unwrap_or(-1);
        let name = focus["describe"].as_str().unwrap_or("?").to_owned();
        let first_missing = visited.iter().position(|v| !*v);
        if focus["body"].as_bool() == Some(true) {
            if let Some(missing) = first_missing {
                problems.push(format!(
                    "Tab {press} from {previous_name} left the page before reaching {}",
                    expected[missing]
                ));
            }
            break;
        }
        if previous == Some(index) && (index >= 0 || name == previous_name) {
            problems.push(format!("focus is trapped: Tab {press} stays on {name}"));
            break;
        }
        if index < 0 {
            problems.push(format!(
                "Tab {press} focused {name}, which is not a link, button or field in the page's order"
            ));
        } else {
            let at = index as usize;
            if visited[at] {
                if let Some(missing) = first_missing {
                    problems.push(format!(
                        "focus is trapped: Tab {press} went from {previous_name} back to {name} \
                         before reaching {}",
                        expected[missing]
                    ));
                }
                break; // round to an element seen before: done
            }
            if at != next && next < expected.len() {
                problems.push(format!(
                    "Tab {press} went from {previous_name} to {name}, but document order has {} next",
                    expected[next]
                ));
            }
            if focus["visible"].as_bool() != Some(true) {
                problems.push(format!(
                    "no visible focus indicator on {name} ({})",
                    focus["style"].as_str().unwrap_or("")
                ));
            }
            visited[at] = true;
            next = at + 1;
        }
        previous = Some(index);
        previous_name = name;
    }
    let reached = visited.iter().filter(|v| **v).count();
    let missed: Vec<&str> = expected
        .iter()
        .zip(&visited)
        .filter(|(_, v)| !**v)
        .map(|(name, _)| name.as_str())
        .collect();
    if !missed.is_empty() {
        problems.push(format!(
            "Tab never reached {} of {} elements: {}",
            missed.len(),
            expected.len(),
            missed.join(", ")
        ));
    }
    if reached < expected_min {
        problems.push(format!(
            "only {reached} element{} got keyboard focus, expected at least {expected_min}",
            if reached == 1 { "" } else { "s" }
        ));
    }
    browser.run(FOCUS_CLEANUP_JS, vec![]).await;
    problems
}
