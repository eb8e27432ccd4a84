//! The page around every dashboard page, its stylesheet and its one
//! script. The colours meet WCAG AA contrast (4.5:1 for text), focus is
//! always visible, and the layout folds to one column on a phone.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::Viewer;

const STYLESHEET: &str = include_str!("dashboard.css");
const SCRIPT: &str = include_str!("dashboard.js");

/// A page with the navigation: who is logged in, and the way out.
pub fn page(title: &str, viewer: &Viewer, main: Markup) -> Markup {
    let header = html! {
        header.top {
            nav aria-label="Main" {
                a.brand href="/" { "hoist" }
                a href="/" { "Overview" }
                a href="/history" { "History" }
            }
            div.who {
                @match viewer {
                    Viewer::Person(session) if session.operator => {
                        span { "Operator " strong { (session.login) } " (local forge)" }
                    }
                    Viewer::Person(session) => {
                        span { "Logged in as " strong { (session.login) } }
                        form.inline method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button.secondary type="submit" { "Log out" }
                        }
                    }
                    Viewer::Anonymous => {
                        a.button href="/login" { "Log in with GitHub" }
                    }
                }
            }
        }
    };
    document(title, header, main)
}

/// A page without the navigation (refusals, the login's own pages).
pub fn bare(title: &str, main: Markup) -> Markup {
    let header = html! {
        header.top { nav aria-label="Main" { a.brand href="/" { "hoist" } } }
    };
    document(title, header, main)
}

fn document(title: &str, header: Markup, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hoist" }
                link rel="stylesheet" href="/static/dashboard.css";
                script src="/static/dashboard.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                (header)
                main id="main" { (main) }
            }
        }
    }
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        SCRIPT,
    )
        .into_response()
}
