//! `PATCH /v1/deployments/{id}/actions/{action}`: an integration reports
//! on an action, as Vercel's "Update Deployment Integration Action". The
//! body may hold secrets: it is never logged, and never stored but
//! sealed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::report::Answer;
use crate::app::Hoist;

pub async fn report_action(
    State(hoist): State<Arc<Hoist>>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return answer(Answer::NotFound);
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    answer(hoist.report_action(id, &action, bearer, &body).await)
}

fn answer(answer: Answer) -> Response {
    let (status, message) = match answer {
        Answer::Done(message) => (StatusCode::OK, message),
        Answer::BadRequest(problem) => (StatusCode::BAD_REQUEST, problem),
        Answer::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            "the bearer token is not this action's secret".to_owned(),
        ),
        Answer::NotFound => (
            StatusCode::NOT_FOUND,
            "no held deployment has this id and action".to_owned(),
        ),
        Answer::Conflict(why) => (StatusCode::CONFLICT, why),
        Answer::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "hoist could not record the report; try again".to_owned(),
        ),
    };
    (status, axum::Json(json!({ "message": message }))).into_response()
}
