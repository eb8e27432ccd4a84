//! `GET /`: every app the viewer can read, each environment a cell: what
//! is live there, what is on its way, a lock, deployments waiting for
//! approval or integrations, and the actions the viewer may take.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use maud::{Markup, html};

use super::Dashboard;
use super::layout;
use super::refusal::Refusal;
use super::session::Viewer;
use super::view::{action_fields, deployment_line, state_badge, when};
use crate::config::AppConfig;
use crate::domain::DeploymentState;
use crate::policy::{Lock, LockScope};
use crate::store::{ApprovalRecord, HoldRecord, TargetSummary};

/// One app's row of the grid.
struct AppRow<'a> {
    name: &'a str,
    app: &'a AppConfig,
    /// Why deploy.yml could not be read, if it could not.
    rules_problem: Option<String>,
    cells: Vec<Cell>,
}

/// One environment of an app.
struct Cell {
    environment: String,
    target: Option<TargetSummary>,
    approvals: Vec<ApprovalRecord>,
    holds: Vec<HoldRecord>,
}

pub async fn page(State(dashboard): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let visit = match dashboard.visit(&headers, "/") {
        Ok(visit) => visit,
        Err(refusal) => return refusal.into_response(),
    };
    match rows(&dashboard, &visit.viewer).await {
        Ok(rows) => {
            let locks = match dashboard.hoist.store.locks(Timestamp::now()).await {
                Ok(locks) => locks,
                Err(error) => return failed(error),
            };
            let body = render(&rows, &locks, &visit.viewer);
            {
                let page = layout::page("Overview", &visit.viewer, body);
                visit.respond(page)
            }
        }
        Err(error) => failed(error),
    }
}

fn failed(error: anyhow::Error) -> Response {
    tracing::error!(
        error = format!("{error:#}"),
        "dashboard: cannot read the store"
    );
    Refusal::Failed("hoist could not read its store; try again in a moment.".into()).into_response()
}

async fn rows<'a>(dashboard: &'a Dashboard, viewer: &Viewer) -> anyhow::Result<Vec<AppRow<'a>>> {
    let hoist = &dashboard.hoist;
    let now = Timestamp::now();
    let apps: Vec<(&str, &AppConfig)> = hoist
        .config
        .apps
        .iter()
        .filter(|(_, app)| viewer.can_read(&app.repo))
        .map(|(name, app)| (name.as_str(), app))
        .collect();
    let names: Vec<String> = apps.iter().map(|(name, _)| (*name).to_owned()).collect();
    let targets = hoist.store.targets_overview(&names).await?;
    let approvals = hoist.store.waiting_approvals(None, now).await?;
    let mut rows = Vec::new();
    for (name, app) in apps {
        let (named, rules_problem) = match hoist.environments_of(name).await {
            Ok(environments) => (environments, None),
            Err(problem) => (Vec::new(), Some(problem)),
        };
        let holds = hoist.store.provisioning_holds(name, None).await?;
        let mut environments = named.clone();
        let seen: BTreeSet<String> = named.iter().map(|e| e.to_ascii_lowercase()).collect();
        let mut more: Vec<String> = targets
            .iter()
            .filter(|t| {
                t.app.as_str() == name && !seen.contains(&t.environment.to_ascii_lowercase())
            })
            .map(|t| t.environment.clone())
            .collect();
        more.sort();
        more.dedup();
        environments.extend(more);
        let cells = environments
            .into_iter()
            .map(|environment| Cell {
                target: targets
                    .iter()
                    .find(|t| {
                        t.app.as_str() == name && t.environment.eq_ignore_ascii_case(&environment)
                    })
                    .cloned(),
                approvals: approvals
                    .iter()
                    .filter(|a| {
                        approval_target(a) == Some((name, environment.to_ascii_lowercase()))
                    })
                    .cloned()
                    .collect(),
                holds: holds
                    .iter()
                    .filter(|h| h.environment.eq_ignore_ascii_case(&environment))
                    .cloned()
                    .collect(),
                environment,
            })
            .collect();
        rows.push(AppRow {
            name,
            app,
            rules_problem,
            cells,
        });
    }
    Ok(rows)
}

/// An element id from a name: `[a-z0-9-]` only.
fn field_id(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect()
}

/// The app and (lower-case) environment an approval request deploys to,
/// as the workflow kept it.
fn approval_target(approval: &ApprovalRecord) -> Option<(&str, String)> {
    let request = approval.body.get("request")?;
    Some((
        request.get("app")?.as_str()?,
        request.get("environment")?.as_str()?.to_ascii_lowercase(),
    ))
}

/// What an approval request deploys, as chat said it.
pub fn approval_what(approval: &ApprovalRecord) -> &str {
    approval
        .body
        .get("what")
        .and_then(|what| what.as_str())
        .unwrap_or("a deployment")
}

fn render(rows: &[AppRow<'_>], locks: &[Lock], viewer: &Viewer) -> Markup {
    let now = Timestamp::now();
    html! {
        h1 { "Overview" }
        @if rows.is_empty() {
            p {
                @match viewer.session() {
                    Some(session) => { "You (" (session.login) ") can read none of the repositories hoist deploys." }
                    None => { "hoist deploys no apps yet." }
                }
            }
        }
        @for row in rows {
            section.app aria-labelledby={ "app-" (row.name) } {
                h2 id={ "app-" (row.name) } { (row.name) " " span.muted { "(" (row.app.repo) ")" } }
                @if let Some(problem) = &row.rules_problem {
                    p.refusal { (problem) }
                }
                div.grid {
                    @for cell in &row.cells {
                        (render_cell(row, cell, locks, viewer, now))
                    }
                }
            }
        }
    }
}

fn render_cell(
    row: &AppRow<'_>,
    cell: &Cell,
    locks: &[Lock],
    viewer: &Viewer,
    now: Timestamp,
) -> Markup {
    let lock = locks.iter().find(|lock| {
        lock.scope
            .covers(row.name, &cell.environment.to_ascii_lowercase())
    });
    let live = cell.target.as_ref().and_then(|t| t.live.as_ref());
    let latest = cell.target.as_ref().map(|t| &t.latest);
    let on_its_way = latest
        .filter(|latest| Some(latest.record.key.clone()) != live.map(|l| l.record.key.clone()));
    let running = latest.is_some_and(|latest| !latest.state.is_some_and(DeploymentState::is_final));
    let may_act = viewer.can_act(&row.app.repo);
    html! {
        article.cell aria-label={ (row.name) " in " (cell.environment) } {
            h3 { (cell.environment) }
            @if let Some(lock) = lock {
                p {
                    span.badge.lock { "locked" } " by " (lock.holder.name)
                    @if let Some(reason) = &lock.reason { ": " (reason) }
                    @if lock.scope == LockScope::Global { " (every app and environment)" }
                    @if let Some(until) = lock.until { ", until " (when(until, now)) }
                }
            }
            @match live {
                Some(live) => p { "Live: " (deployment_line(live, now)) " " (state_badge(live.state)) },
                None => p.muted { "Nothing live" },
            }
            @if let Some(other) = on_its_way {
                p { "Latest: " (deployment_line(other, now)) " " (state_badge(other.state)) }
            }
            @for hold in &cell.holds {
                p {
                    span.badge.state-queued { "held" } " for "
                    @for (i, action) in hold.pending().enumerate() {
                        @if i > 0 { ", " } code { (action.name) }
                    }
                }
            }
            @for approval in &cell.approvals {
                div {
                    p { span.badge.state-queued { "#" (approval.id) " awaiting approval" } " " (approval_what(approval)) }
                    @if let (true, Some(session)) = (may_act, viewer.session()) {
                        form.inline method="post" action="/actions/approve" {
                            (action_fields(session))
                            input type="hidden" name="app" value=(row.name);
                            input type="hidden" name="number" value=(approval.id);
                            button type="submit" { "Approve #" (approval.id) }
                        }
                        form.inline method="post" action="/actions/reject" {
                            (action_fields(session))
                            input type="hidden" name="app" value=(row.name);
                            input type="hidden" name="number" value=(approval.id);
                            label { "Reason " input type="text" name="reason" maxlength="200"; }
                            button.danger type="submit" { "Reject #" (approval.id) }
                        }
                    }
                }
            }
            @if let (true, Some(session)) = (may_act, viewer.session()) {
                (cell_actions(row.name, &cell.environment, lock, live.is_some(), running, session))
            }
        }
    }
}

fn cell_actions(
    app: &str,
    environment: &str,
    lock: Option<&Lock>,
    live: bool,
    running: bool,
    session: &super::session::Session,
) -> Markup {
    let hidden = html! {
        (action_fields(session))
        input type="hidden" name="app" value=(app);
        input type="hidden" name="environment" value=(environment);
    };
    let scope = format!("{environment} of {app}");
    html! {
        div.actions {
            @match lock {
                Some(lock) if lock.scope != LockScope::Global => {
                    form.row method="post" action="/actions/unlock" {
                        (hidden)
                        button.secondary type="submit" aria-label={ "Unlock " (scope) } { "Unlock" }
                    }
                }
                Some(_) => {}
                None => {
                    form.row method="post" action="/actions/lock" {
                        (hidden)
                        label.visually-hidden for={ "lock-" (field_id(&scope)) } { "Why lock " (scope) }
                        input id={ "lock-" (field_id(&scope)) } type="text" name="reason" maxlength="200" placeholder="reason to lock";
                        button.secondary type="submit" aria-label={ "Lock " (scope) } { "Lock" }
                    }
                }
            }
            form.row method="post" action="/actions/deploy" {
                (hidden)
                label.visually-hidden for={ "ref-" (field_id(&scope)) } { "Ref to deploy to " (scope) }
                input id={ "ref-" (field_id(&scope)) } type="text" name="git_ref" maxlength="255" placeholder="default branch";
                button type="submit" aria-label={ "Deploy to " (scope) } { "Deploy" }
            }
            @if running || live {
                div.row {
                    @if running {
                        form method="post" action="/actions/cancel" {
                            (hidden)
                            button.danger type="submit" aria-label={ "Cancel the deployment to " (scope) } { "Cancel" }
                        }
                    }
                    @if live {
                        form method="post" action="/actions/rollback" {
                            (hidden)
                            button.secondary type="submit" aria-label={ "Roll back " (scope) } { "Roll back" }
                        }
                    }
                }
            }
        }
    }
}
