//! `GET /history`: deployments newest first, filtered by app,
//! environment, person and state, a page at a time; and for each
//! environment shown, the last 30 days' figures (deployments per day,
//! change failure rate, time to restore) with a chart drawn here.
//!
//! A query that does not parse is a 400 page that says which field.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jiff::{SignedDuration, Timestamp};
use maud::{Markup, html};
use serde::Deserialize;

use super::Dashboard;
use super::chart;
use super::dora::{self, Figures};
use super::layout;
use super::refusal::Refusal;
use super::session::Viewer;
use super::view::{deployment_line, state_badge};
use crate::domain::DeploymentState;
use crate::store::{DeploymentSummary, HistoryFilter, StateFilter};

const PAGE_SIZE: usize = 25;
/// Far enough for any real use; a page number past it is a typo.
const MAX_PAGE: usize = 10_000;
/// The figures' window.
const DAYS: u32 = 30;
/// Deployments read per environment for the figures: more than 30 days
/// of anyone's.
const MAX_FIGURE_SAMPLES: usize = 5_000;
/// Charts on one page.
const MAX_CHARTS: usize = 12;

#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    app: Option<String>,
    environment: Option<String>,
    person: Option<String>,
    state: Option<String>,
    page: Option<String>,
}

/// The query, read: each field checked, empty ones absent.
#[derive(Debug, Clone, PartialEq)]
struct Asked {
    app: Option<String>,
    environment: Option<String>,
    person: Option<String>,
    state: Option<StateFilter>,
    page: usize,
}

fn read_query(query: HistoryQuery) -> Result<Asked, String> {
    let given = |value: Option<String>| {
        value
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let too_long = |value: &Option<String>, name: &str| match value {
        Some(value) if value.chars().count() > 100 => {
            Err(format!("`{name}` is at most 100 characters."))
        }
        _ => Ok(()),
    };
    let app = given(query.app).map(|app| app.to_ascii_lowercase());
    let environment = given(query.environment);
    let person = given(query.person);
    too_long(&app, "app")?;
    too_long(&environment, "environment")?;
    too_long(&person, "person")?;
    let state = match given(query.state).as_deref() {
        None => None,
        Some("created") => Some(StateFilter::Created),
        Some(word) => Some(StateFilter::State(
            DeploymentState::parse(word).ok_or_else(|| {
                format!(
                    "`state` is one of created, {}.",
                    DeploymentState::ALL.map(DeploymentState::as_str).join(", ")
                )
            })?,
        )),
    };
    let page = match given(query.page) {
        None => 1,
        Some(page) => page
            .parse::<usize>()
            .ok()
            .filter(|page| (1..=MAX_PAGE).contains(page))
            .ok_or_else(|| format!("`page` is a whole number from 1 to {MAX_PAGE}."))?,
    };
    Ok(Asked {
        app,
        environment,
        person,
        state,
        page,
    })
}

pub async fn page(
    State(dashboard): State<Arc<Dashboard>>,
    headers: HeaderMap,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Response {
    let visit = match dashboard.visit(&headers, "/history") {
        Ok(visit) => visit,
        Err(refusal) => return refusal.into_response(),
    };
    let asked = match query
        .map_err(|_| "The query string does not parse.".to_owned())
        .and_then(|Query(query)| read_query(query))
    {
        Ok(asked) => asked,
        Err(problem) => return visit.respond(Refusal::BadRequest(problem)),
    };
    let apps = visible_apps(&dashboard, &visit.viewer);
    if let Some(app) = &asked.app
        && !apps.contains(app)
    {
        let problem = format!("hoist has no app named `{}`.", super::deployment::clip(app));
        return visit.respond(Refusal::BadRequest(problem));
    }
    match read(&dashboard, &asked, apps.clone()).await {
        Ok((rows, more, charts)) => {
            let body = render(&asked, &apps, &rows, more, &charts);
            {
                let page = layout::page("History", &visit.viewer, body);
                visit.respond(page)
            }
        }
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                "dashboard: cannot read the history"
            );
            visit.respond(Refusal::Failed(
                "hoist could not read its store; try again in a moment.".into(),
            ))
        }
    }
}

fn visible_apps(dashboard: &Dashboard, viewer: &Viewer) -> Vec<String> {
    dashboard
        .config()
        .apps
        .iter()
        .filter(|(_, app)| viewer.can_read(&app.repo))
        .map(|(name, _)| name.clone())
        .collect()
}

/// One environment's figures.
struct EnvironmentChart {
    app: String,
    environment: String,
    figures: Figures,
}

async fn read(
    dashboard: &Dashboard,
    asked: &Asked,
    apps: Vec<String>,
) -> anyhow::Result<(Vec<DeploymentSummary>, bool, Vec<EnvironmentChart>)> {
    let store = &dashboard.hoist.store;
    let filter = HistoryFilter {
        apps: Some(apps.clone()),
        app: asked.app.clone(),
        environment: asked.environment.clone(),
        actor: asked.person.clone(),
        state: asked.state,
        since: None,
        offset: (asked.page - 1) * PAGE_SIZE,
        limit: PAGE_SIZE + 1,
    };
    let mut rows = store.deployment_history(&filter).await?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);

    let now = Timestamp::now();
    let since = now - SignedDuration::from_hours(24 * i64::from(DAYS));
    let shown_apps = match &asked.app {
        Some(app) => vec![app.clone()],
        None => apps,
    };
    // One read for every chart: what each deployment of the 30 days came
    // to, without the rest of its record.
    let outcomes = store
        .deployment_outcomes(&shown_apps, since, MAX_CHARTS * MAX_FIGURE_SAMPLES)
        .await?;
    let mut charts = Vec::new();
    for (app, environment) in store.targets(&shown_apps).await? {
        if charts.len() == MAX_CHARTS {
            break;
        }
        if asked
            .environment
            .as_ref()
            .is_some_and(|asked| !asked.eq_ignore_ascii_case(&environment))
        {
            continue;
        }
        let samples = outcomes
            .iter()
            .filter(|outcome| {
                outcome.app == app && outcome.environment.eq_ignore_ascii_case(&environment)
            })
            .take(MAX_FIGURE_SAMPLES);
        charts.push(EnvironmentChart {
            app: app.to_string(),
            figures: dora::figures(samples, now, DAYS, &jiff::tz::TimeZone::UTC),
            environment,
        });
    }
    Ok((rows, more, charts))
}

fn render(
    asked: &Asked,
    apps: &[String],
    rows: &[DeploymentSummary],
    more: bool,
    charts: &[EnvironmentChart],
) -> Markup {
    let now = Timestamp::now();
    let state_value = match asked.state {
        None => String::new(),
        Some(StateFilter::Created) => "created".into(),
        Some(StateFilter::State(state)) => state.as_str().into(),
    };
    html! {
        h1 { "History" }
        form.filters method="get" action="/history" role="search" aria-label="Filter the history" {
            div {
                label for="f-app" { "App" }
                select id="f-app" name="app" {
                    option value="" { "every app" }
                    @for app in apps {
                        option value=(app) selected[asked.app.as_deref() == Some(app.as_str())] { (app) }
                    }
                }
            }
            div {
                label for="f-environment" { "Environment" }
                input id="f-environment" type="text" name="environment" value=[asked.environment.as_deref()] maxlength="100";
            }
            div {
                label for="f-person" { "Person" }
                input id="f-person" type="text" name="person" value=[asked.person.as_deref()] maxlength="100";
            }
            div {
                label for="f-state" { "State" }
                select id="f-state" name="state" {
                    option value="" { "any state" }
                    option value="created" selected[state_value == "created"] { "created" }
                    @for state in DeploymentState::ALL {
                        option value=(state.as_str()) selected[state_value == state.as_str()] { (state.as_str()) }
                    }
                }
            }
            div { button type="submit" { "Filter" } }
        }
        @if !charts.is_empty() {
            h2 { "The last " (DAYS) " days" }
            div.charts {
                @for chart in charts { (render_chart(chart)) }
            }
        }
        h2 { "Deployments" }
        @if rows.is_empty() {
            p { "No deployment matches." }
        } @else {
            div.table {
                table {
                    thead { tr { th scope="col" { "App" } th scope="col" { "Environment" } th scope="col" { "Deployment" } th scope="col" { "State" } } }
                    tbody {
                        @for row in rows {
                            tr {
                                td { (row.record.app) }
                                td { (row.record.environment) }
                                td { (deployment_line(row, now)) }
                                td { (state_badge(row.state)) }
                            }
                        }
                    }
                }
            }
        }
        nav.pages aria-label="Pages" {
            @if asked.page > 1 {
                a href=(page_href(asked, asked.page - 1)) rel="prev" { "Newer" }
            }
            span { "Page " (asked.page) }
            @if more {
                a href=(page_href(asked, asked.page + 1)) rel="next" { "Older" }
            }
        }
    }
}

fn render_chart(chart: &EnvironmentChart) -> Markup {
    let figures = &chart.figures;
    let label = format!("{}/{}", chart.app, chart.environment);
    html! {
        section.chart aria-label={ "Figures of " (label) } {
            h3 { (label) }
            (chart::deployments_per_day(&label, figures))
            p {
                (figures.deployments) " deployments; change failure rate "
                @match figures.change_failure_rate {
                    Some(rate) => { (format!("{:.0}%", rate * 100.0)) " (" (figures.failed_changes) " failed)" }
                    None => "n/a",
                }
                "; time to restore "
                @match figures.median_time_to_restore {
                    Some(median) => { (chart::format_duration(median)) " (median of " (figures.restores.len()) ")" }
                    None => "n/a",
                }
                "."
            }
        }
    }
}

/// This page's query for another page number.
fn page_href(asked: &Asked, page: usize) -> String {
    let state = match asked.state {
        None => None,
        Some(StateFilter::Created) => Some("created".to_owned()),
        Some(StateFilter::State(state)) => Some(state.as_str().to_owned()),
    };
    let page = page.to_string();
    let pairs: Vec<(&str, &str)> = [
        ("app", asked.app.as_deref()),
        ("environment", asked.environment.as_deref()),
        ("person", asked.person.as_deref()),
        ("state", state.as_deref()),
        ("page", Some(page.as_str())),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.map(|value| (key, value)))
    .collect();
    format!(
        "/history?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HistoryQuery {
        let text = serde_urlencoded::to_string(pairs).unwrap();
        serde_urlencoded::from_str(&text).unwrap()
    }

    #[test]
    fn a_query_is_read_field_by_field_and_each_fault_is_named() {
        let asked = read_query(query(&[
            ("app", "API"),
            ("state", "failure"),
            ("page", "3"),
            ("person", " "),
        ]))
        .unwrap();
        assert_eq!(asked.app.as_deref(), Some("api"));
        assert_eq!(
            asked.state,
            Some(StateFilter::State(DeploymentState::Failure))
        );
        assert_eq!(asked.page, 3);
        assert_eq!(asked.person, None);
        assert_eq!(
            read_query(query(&[("state", "created")])).unwrap().state,
            Some(StateFilter::Created)
        );
        let page = read_query(query(&[("page", "0")])).unwrap_err();
        assert!(page.contains("`page`"), "{page}");
        assert!(
            read_query(query(&[("page", "x")]))
                .unwrap_err()
                .contains("`page`")
        );
        let state = read_query(query(&[("state", "done")])).unwrap_err();
        assert!(
            state.contains("`state` is one of created, pending"),
            "{state}"
        );
        let long = "x".repeat(101);
        assert!(
            read_query(query(&[("person", &long)]))
                .unwrap_err()
                .contains("`person`")
        );
    }

    #[test]
    fn another_page_keeps_the_filters() {
        let asked = read_query(query(&[
            ("app", "api"),
            ("environment", "stag ing"),
            ("state", "created"),
        ]))
        .unwrap();
        assert_eq!(
            page_href(&asked, 2),
            "/history?app=api&environment=stag+ing&state=created&page=2"
        );
    }
}
