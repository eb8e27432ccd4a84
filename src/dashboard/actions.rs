//! `POST /actions/{action}`: what a logged-in person may do from the
//! dashboard, each the chat command it stands for, handled by
//! [`Hoist::handle_command`](crate::app::Hoist) like a typed one: the same
//! rules (`policy::evaluate` for deployments, the lock and approval
//! rules), the same audit entry (platform `dashboard`), and the answer
//! shown as the page.
//!
//! Before the workflow sees it, a form must carry the session's CSRF
//! token, name an app whose repository the person can write to (their
//! GitHub permission, read at login), and make a command the grammar
//! reads back unchanged (its names are what chat would accept). A form's
//! nonce is its request key, so a deploy form sent twice (a double
//! click, the back button) makes one deployment; the other actions are
//! the same when repeated (a lock renewed, a vote already counted).

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::Dashboard;
use super::layout;
use super::refusal::Refusal;
use super::session::{Session, Visit, csrf_matches};
use super::view::deployment_href;
use crate::chat::Inbound;
use crate::command::{self, Command, DeployRequest};
use crate::domain::{Origin, Platform};
use crate::workflow::Outcome;

/// Every field any action's form has; each action reads its own.
#[derive(Debug, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    nonce: String,
    app: Option<String>,
    environment: Option<String>,
    reason: Option<String>,
    /// An approval request's number.
    number: Option<String>,
    git_ref: Option<String>,
}

pub async fn act(
    State(dashboard): State<Arc<Dashboard>>,
    Path(action): Path<String>,
    headers: HeaderMap,
    form: Result<axum::Form<ActionForm>, FormRejection>,
) -> Response {
    let visit = match dashboard.visit(&headers, "/") {
        Ok(visit) => visit,
        // A login redirect would lose the form.
        Err(Refusal::LogIn { .. }) => {
            return Refusal::Forbidden("Log in with GitHub to do this.".into()).into_response();
        }
        Err(refusal) => return refusal.into_response(),
    };
    match act_as(&dashboard, &visit, &action, form).await {
        Ok(response) => visit.respond(response),
        Err(refusal) => visit.respond(refusal),
    }
}

async fn act_as(
    dashboard: &Dashboard,
    visit: &Visit,
    action: &str,
    form: Result<axum::Form<ActionForm>, FormRejection>,
) -> Result<Response, Refusal> {
    let Some(session) = visit.viewer.session() else {
        return Err(Refusal::Forbidden("Log in with GitHub to do this.".into()));
    };
    // The token first: a form from elsewhere learns nothing, not even
    // whether its fields were right.
    let form = match form {
        Ok(axum::Form(form)) if csrf_matches(session, &form.csrf) => form,
        Ok(_) => return Err(Refusal::Csrf),
        Err(_) => return Err(Refusal::Csrf),
    };
    if form.nonce.len() != 64 || !form.nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Refusal::BadRequest(
            "This form has no valid nonce; reload the page and try again.".into(),
        ));
    }
    let (app, command) = command_of(dashboard, action, &form).await?;
    let Some(config) = dashboard.config().app(&app) else {
        return Err(Refusal::BadRequest(format!(
            "hoist has no app named `{}`.",
            super::deployment::clip(&app)
        )));
    };
    if !visit.viewer.can_read(&config.repo) {
        return Err(Refusal::BadRequest(format!(
            "hoist has no app named `{}`.",
            super::deployment::clip(&app)
        )));
    }
    if !visit.viewer.can_act(&config.repo) {
        return Err(Refusal::Forbidden(format!(
            "You ({}) may read {} on GitHub but not write to it; acting on {app} needs write access. Nothing was done.",
            session.login, config.repo
        )));
    }
    // Names that chat's grammar would not read back the same are not
    // names hoist takes.
    let text = command::render(&command);
    if command::parse(&text).ok().as_ref() != Some(&command) {
        return Err(Refusal::BadRequest(
            "That environment, ref or reason is not one a command can name. Nothing was done."
                .into(),
        ));
    }
    let request_key = format!("dashboard:{action}:{}", form.nonce);
    let inbound = Inbound::typed(
        origin(session, &app),
        format!("{text} (dashboard)"),
        &request_key,
    );
    let outcome = dashboard
        .hoist
        .handle_command(inbound, command)
        .await
        .map_err(|error| {
            tracing::error!(error = format!("{error:#}"), "dashboard: an action failed");
            Refusal::Failed("hoist could not finish that; try again in a moment.".into())
        })?;
    let deployment = match outcome.kind {
        "deployed" => dashboard
            .hoist
            .store
            .deployment_by_request(&request_key)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    Ok(answer(&outcome, deployment.as_ref(), &visit.viewer))
}

/// The app an action concerns and the command it stands for.
async fn command_of(
    dashboard: &Dashboard,
    action: &str,
    form: &ActionForm,
) -> Result<(String, Command), Refusal> {
    let field = |value: &Option<String>, name: &str| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Refusal::BadRequest(format!("The form has no {name}.")))
    };
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|reason| !reason.is_empty())
        .map(str::to_owned);
    if action == "approve" || action == "reject" {
        let number: u64 = field(&form.number, "request number")?
            .trim_start_matches('#')
            .parse()
            .map_err(|_| Refusal::BadRequest("A request number is a whole number.".into()))?;
        let approval = dashboard
            .hoist
            .store
            .approval(i64::try_from(number).unwrap_or(i64::MAX))
            .await
            .map_err(|_| Refusal::Failed("hoist could not read its store.".into()))?
            .ok_or_else(|| {
                Refusal::NotFound(format!("There is no deployment request #{number}."))
            })?;
        let app = approval
            .body
            .pointer("/request/app")
            .and_then(|app| app.as_str())
            .unwrap_or_default()
            .to_owned();
        let command = match action {
            "approve" => Command::Approve {
                request: Some(number),
            },
            _ => Command::Reject {
                request: Some(number),
                reason,
            },
        };
        return Ok((app, command));
    }
    let app = field(&form.app, "app")?;
    let environment = Some(field(&form.environment, "environment")?);
    let command = match action {
        "lock" => Command::Lock {
            environment,
            app: Some(app.clone()),
            global: false,
            duration_secs: None,
            reason,
        },
        "unlock" => Command::Unlock {
            environment,
            app: Some(app.clone()),
            global: false,
        },
        "cancel" => Command::Cancel {
            app: Some(app.clone()),
            environment,
        },
        "rollback" => Command::Rollback {
            app: Some(app.clone()),
            environment,
        },
        "deploy" => Command::Deploy(DeployRequest {
            task: "deploy".into(),
            app: Some(app.clone()),
            git_ref: form
                .git_ref
                .as_deref()
                .map(str::trim)
                .filter(|git_ref| !git_ref.is_empty())
                .map(str::to_owned),
            environment,
            ..DeployRequest::default()
        }),
        "redeploy" => Command::Deploy(DeployRequest {
            task: "deploy".into(),
            app: Some(app.clone()),
            git_ref: Some(field(&form.git_ref, "ref")?),
            environment,
            ..DeployRequest::default()
        }),
        other => {
            return Err(Refusal::NotFound(format!(
                "The dashboard has no action `{}`.",
                super::deployment::clip(other)
            )));
        }
    };
    Ok((app, command))
}

/// The dashboard user as the workflow sees them. The answer is the page;
/// what concerns everyone is also said in the app's channel (see
/// `Hoist::reply`), which is why the conversation is the app.
fn origin(session: &Session, app: &str) -> Origin {
    Origin {
        platform: Platform::Dashboard,
        conversation: app.to_owned(),
        message: None,
        link: None,
        actor: session.actor(),
    }
}

/// The workflow's answer as a page: refused ones with the status that
/// says so.
fn answer(
    outcome: &Outcome,
    deployment: Option<&crate::store::DeploymentRecord>,
    viewer: &super::session::Viewer,
) -> Response {
    let (status, title, class) = match outcome.kind {
        "invalid" => (StatusCode::BAD_REQUEST, "Not done", "refusal"),
        "refused" => (StatusCode::FORBIDDEN, "Refused", "refusal"),
        "error" => (StatusCode::BAD_GATEWAY, "Not done", "refusal"),
        _ => (StatusCode::OK, "Done", "answer"),
    };
    let body = html! {
        h1 { (title) }
        p class=(class) role="status" { (outcome.detail) }
        @if let Some(record) = deployment {
            p { a href=(deployment_href(&record.key)) { "Follow deployment #" (record.key.id) } }
        }
        p { a href="/" { "Back to the overview" } }
    };
    (status, layout::page(title, viewer, body)).into_response()
}
