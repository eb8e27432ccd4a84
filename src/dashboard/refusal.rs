//! Every way a dashboard request is refused, each a short page (or, for
//! the event stream, plain text) with the right status. Nothing is
//! changed by a refused request.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout;
use super::session::{SESSION_COOKIE, removal};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No session where nothing is public: log in, then back to `next`.
    LogIn {
        next: String,
    },
    /// A session cookie whose signature is not hoist's.
    ForgedSession,
    /// A session past its end.
    ExpiredSession,
    /// A form without the session's CSRF token.
    Csrf,
    /// Not this person's to see or do.
    Forbidden(String),
    NotFound(String),
    /// Query or form fields that do not parse.
    BadRequest(String),
    /// hoist could not answer (the store, GitHub).
    Failed(String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::LogIn { .. } => StatusCode::SEE_OTHER,
            Self::ForgedSession | Self::ExpiredSession => StatusCode::UNAUTHORIZED,
            Self::Csrf | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Failed(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn title_and_text(&self) -> (&'static str, String) {
        match self {
            Self::LogIn { .. } => ("Log in", "Log in with GitHub to see this page.".into()),
            Self::ForgedSession => (
                "Session not recognised",
                "Your session cookie was not signed by this hoist (or its key changed). Nothing was done. Log in again.".into(),
            ),
            Self::ExpiredSession => (
                "Session ended",
                "Your login ran out. Nothing was done. Log in again.".into(),
            ),
            Self::Csrf => (
                "Form refused",
                "This form did not carry your session's token, so it may not have come from this dashboard. Nothing was done. Reload the page and try again.".into(),
            ),
            Self::Forbidden(text) => ("Not allowed", text.clone()),
            Self::NotFound(text) => ("Not found", text.clone()),
            Self::BadRequest(text) => ("Bad request", text.clone()),
            Self::Failed(text) => ("hoist could not answer", text.clone()),
        }
    }

    /// For the event stream and other non-page answers: plain text, 401
    /// instead of a redirect to the login.
    pub fn into_plain(self) -> Response {
        let status = match self {
            Self::LogIn { .. } => StatusCode::UNAUTHORIZED,
            ref other => other.status(),
        };
        let (_, text) = self.title_and_text();
        (status, format!("{text}\n")).into_response()
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if let Self::LogIn { next } = &self {
            let query = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
            return Redirect::to(&format!("/login?{query}")).into_response();
        }
        let status = self.status();
        let (title, text) = self.title_and_text();
        let log_in_again = matches!(self, Self::ForgedSession | Self::ExpiredSession);
        let body = html! {
            h1 { (title) }
            p.refusal role="alert" { (text) }
            @if log_in_again {
                p { a href="/login" { "Log in again" } }
            } @else {
                p { a href="/" { "Back to the overview" } }
            }
        };
        let page = layout::bare(title, body);
        if log_in_again {
            // The bad cookie goes, so the next visit starts clean.
            let jar = removal(SESSION_COOKIE, "/");
            return (status, jar, page).into_response();
        }
        (status, page).into_response()
    }
}
