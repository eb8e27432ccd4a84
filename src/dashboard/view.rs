//! Small pieces the pages share: a state's badge, a time, a deployment's
//! link, and the form fields every action carries.

use jiff::Timestamp;
use maud::{Markup, html};

use super::session::{Session, random_token};
use crate::domain::DeploymentState;
use crate::store::{DeploymentKey, DeploymentSummary};

/// A state as people read it.
pub fn state_word(state: Option<DeploymentState>) -> &'static str {
    match state {
        None => "created",
        Some(DeploymentState::Pending) => "pending",
        Some(DeploymentState::Queued) => "queued",
        Some(DeploymentState::InProgress) => "in progress",
        Some(DeploymentState::Success) => "succeeded",
        Some(DeploymentState::Failure) => "failed",
        Some(DeploymentState::Error) => "error",
        Some(DeploymentState::Inactive) => "inactive",
    }
}

/// The state with its colour (and its word, so colour is never the only
/// sign).
pub fn state_badge(state: Option<DeploymentState>) -> Markup {
    let class = state.map_or("created", DeploymentState::as_str);
    html! { span class={ "badge state-" (class) } { (state_word(state)) } }
}

/// A time as "5 min ago", with the exact UTC time for a tooltip and for
/// machines.
pub fn when(at: Timestamp, now: Timestamp) -> Markup {
    let exact = at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! { time datetime=(at.to_string()) title=(exact) { (ago(at, now)) } }
}

fn ago(at: Timestamp, now: Timestamp) -> String {
    let secs = now.as_second() - at.as_second();
    match secs {
        ..0 => "just now".into(),
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// `/deployments/{forge}/{owner}/{repo}/{id}`.
pub fn deployment_href(key: &DeploymentKey) -> String {
    format!(
        "/deployments/{}/{}/{}/{}",
        key.forge,
        key.repo.owner(),
        key.repo.name(),
        key.id
    )
}

/// One deployment in a line: its ref and commit, linked to its page, who
/// and when.
pub fn deployment_line(summary: &DeploymentSummary, now: Timestamp) -> Markup {
    let record = &summary.record;
    html! {
        a href=(deployment_href(&record.key)) {
            code { (record.git_ref) } " (" code { (record.sha.short()) } ")"
        }
        " by " (record.origin.actor.name) ", " (when(record.created_at, now))
    }
}

/// The hidden fields of an action's form: the CSRF token, and a nonce,
/// the request's key (a deploy form sent twice makes one deployment).
pub fn action_fields(session: &Session) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(session.csrf);
        input type="hidden" name="nonce" value=(random_token());
    }
}
