//! `GET /deployments/{forge}/{owner}/{repo}/{id}`: one deployment: its
//! facts, the rules' decision, where it was asked for (a link back), its
//! statuses as a timeline, and its run's log, followed live while it
//! runs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::{Markup, html};

use super::Dashboard;
use super::layout;
use super::refusal::Refusal;
use super::session::Viewer;
use super::view::{action_fields, deployment_href, state_badge, when};
use crate::domain::{DeploymentId, Platform, RepoName};
use crate::forge::NewStatus;
use crate::store::{DeploymentKey, DeploymentRecord, LogLine, LogStream, RunState};

/// The deployment a path names, if it parses and the viewer may read its
/// repository (one they may not read is "not found", as GitHub says).
pub fn key_from_path(
    viewer: &Viewer,
    (forge, owner, repo, id): (String, String, String, String),
) -> Result<DeploymentKey, Refusal> {
    let id: i64 = id
        .parse()
        .map_err(|_| Refusal::BadRequest(format!("`{}` is not a deployment id", clip(&id))))?;
    let repo = RepoName::new(&owner, &repo)
        .filter(|repo| viewer.can_read(repo))
        .ok_or_else(|| Refusal::NotFound("No such deployment.".into()))?;
    Ok(DeploymentKey {
        forge,
        repo,
        id: DeploymentId(id),
    })
}

/// Text from a URL, short enough to show back.
pub fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

pub async fn page(
    State(dashboard): State<Arc<Dashboard>>,
    Path(path): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let here = format!("/deployments/{}/{}/{}/{}", path.0, path.1, path.2, path.3);
    let visit = match dashboard.visit(&headers, &here) {
        Ok(visit) => visit,
        Err(refusal) => return refusal.into_response(),
    };
    let key = match key_from_path(&visit.viewer, path) {
        Ok(key) => key,
        Err(refusal) => return refusal.into_response(),
    };
    match read(&dashboard, &key).await {
        Ok(Some(shown)) => {
            let title = format!("{} #{}", shown.record.app, shown.record.key.id);
            let body = render(&dashboard, &shown, &visit.viewer);
            {
                let page = layout::page(&title, &visit.viewer, body);
                visit.respond(page)
            }
        }
        Ok(None) => Refusal::NotFound("No such deployment.".into()).into_response(),
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "dashboard: cannot read a deployment"
            );
            Refusal::Failed("hoist could not read its store; try again in a moment.".into())
                .into_response()
        }
    }
}

/// What the page shows.
struct Shown {
    record: DeploymentRecord,
    statuses: Vec<(NewStatus, Timestamp)>,
    log: Vec<LogLine>,
    run: Option<RunState>,
}

async fn read(dashboard: &Dashboard, key: &DeploymentKey) -> anyhow::Result<Option<Shown>> {
    let store = &dashboard.hoist.store;
    let Some(record) = store.deployment(key).await? else {
        return Ok(None);
    };
    // The run's state before its log, so a run that ends between the
    // two is read whole.
    let run = store.run_state(key).await?;
    let log = store.read_log(key, 0).await?;
    let statuses = store.deployment_statuses(key).await?;
    Ok(Some(Shown {
        record,
        statuses,
        log,
        run,
    }))
}

fn render(dashboard: &Dashboard, shown: &Shown, viewer: &Viewer) -> Markup {
    let now = Timestamp::now();
    let record = &shown.record;
    let latest = shown.statuses.last().map(|(status, _)| status.state);
    let running = shown.run.is_some_and(|run| run != RunState::Done);
    let href = deployment_href(&record.key);
    let origin = &record.origin;
    html! {
        h1 { (record.app) " #" (record.key.id) " to " (record.environment) " " (state_badge(latest)) }
        dl.facts {
            dt { "Ref" } dd { code { (record.git_ref) } }
            dt { "Commit" } dd { code { (record.sha) } }
            dt { "Task" } dd { (record.task) }
            dt { "Repository" } dd { (record.key.repo) }
            dt { "Asked by" } dd { (origin.actor.name) " on " (origin.platform.display_name()) ", " (when(record.created_at, now)) }
            dt { "Asked in" } dd { (origin_link(dashboard, record)) }
            dt { "Rules" } dd {
                @match &record.decision {
                    Some(decision) => { (decision) }
                    None => span.muted { "not recorded (made before hoist kept decisions)" },
                }
            }
        }
        @if let (true, Some(session)) = (viewer.can_act(&record.key.repo), viewer.session()) {
            form.inline method="post" action="/actions/redeploy" {
                (action_fields(session))
                input type="hidden" name="app" value=(record.app);
                input type="hidden" name="environment" value=(record.environment);
                input type="hidden" name="git_ref" value=(record.sha);
                button.secondary type="submit" { "Deploy " (record.sha.short()) " to " (record.environment) " again" }
            }
        }
        h2 { "Statuses" }
        @if shown.statuses.is_empty() {
            p.muted { "No status yet." }
        } @else {
            ol.timeline {
                @for (status, at) in &shown.statuses {
                    li {
                        (state_badge(Some(status.state))) " " (when(*at, now))
                        @if let Some(description) = &status.description { " " (description) }
                        @if let Some(url) = status.environment_url.as_deref().filter(|url| is_web_link(url)) {
                            " " a href=(url) { "open the environment" }
                        }
                    }
                }
            }
        }
        h2 { "Log" }
        p {
            span id="run-state" role="status" {
                @match (shown.run, running) {
                    (None, _) => "hoist's runner did not run this deployment.",
                    (Some(_), true) => "Running: new lines appear as they are printed.",
                    (Some(_), false) => "The run has ended.",
                }
            }
            " " a href={ (href) "/log" } { "Plain text" }
        }
        @if shown.run.is_some() {
            pre.log
                aria-label="Run log"
                tabindex="0"
                data-events=[running.then(|| format!("{href}/events"))] {
                @for line in &shown.log { (log_line(line)) }
            }
        }
        p { a href={ "/history?app=" (record.app) "&environment=" (record.environment) } { "History of " (record.app) " in " (record.environment) } }
    }
}

pub fn log_line(line: &LogLine) -> Markup {
    html! {
        @match line.stream {
            LogStream::Stderr => span.stderr { (line.text) "\n" },
            _ => span { (line.text) "\n" },
        }
    }
}

/// Only http(s) links are made links: a status's URL comes from whoever
/// posted it.
fn is_web_link(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// A link back to the conversation that asked, where hoist can make one.
fn origin_link(dashboard: &Dashboard, record: &DeploymentRecord) -> Markup {
    let origin = &record.origin;
    let config = dashboard.config();
    match origin.platform {
        Platform::PullRequest => {
            let web = config.dashboard.oauth_base(&config.github.api_url);
            let (repo, number) = origin
                .conversation
                .rsplit_once('#')
                .unwrap_or((origin.conversation.as_str(), ""));
            let anchor = origin
                .message
                .as_deref()
                .map(|id| format!("#issuecomment-{id}"))
                .unwrap_or_default();
            html! { a href={ (web) "/" (repo) "/pull/" (number) (anchor) } { "pull request " (origin.conversation) } }
        }
        Platform::Slack => {
            let channel = &origin.conversation;
            let href = match &origin.message {
                Some(ts) => format!(
                    "https://slack.com/archives/{channel}/p{}",
                    ts.replace('.', "")
                ),
                None => format!("https://slack.com/app_redirect?channel={channel}"),
            };
            html! { a href=(href) { "Slack channel " (channel) } }
        }
        Platform::Discord => match origin.link.as_deref().filter(|link| is_web_link(link)) {
            Some(link) => html! { a href=(link) { "Discord channel " (origin.conversation) } },
            // Asked before hoist kept the link: the ids are all there is.
            None => html! { "Discord channel " code { (origin.conversation) } },
        },
        other => html! { (other.display_name()) },
    }
}
