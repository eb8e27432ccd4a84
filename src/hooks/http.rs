//! `POST /api/v1/dh`: a deploy hook called by CI.
//!
//! The token (`X-Deploy-Hook-Token`) first, before the body is looked
//! at, so a caller without one learns nothing else; then the body and
//! `Idempotency-Key`; then the deployment through the workflow, whose
//! outcome picks the answer. Every answer is JSON, `{"message": ...}`,
//! and never holds the token; the log names the hook, never its token.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use axum::{Extension, Json};
use serde_json::json;

use super::limit::FailureLimiter;
use super::request::{HookBody, idempotency_key};
use super::token::PresentedToken;
use crate::app::Hoist;
use crate::runner;
use crate::store::DeployHook;
use crate::workflow::{HookDeployment, HookRequest};

/// The largest body a call may send; larger ones get 413.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Failed calls (no, a malformed or an unknown token) allowed from one
/// address in [`FAILURE_WINDOW`]; past them, every call gets 429.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

const TOKEN_HEADER: &str = "x-deploy-hook-token";
const IDEMPOTENCY_HEADER: &str = "idempotency-key";
const NOT_FOUND: &str = "no deploy hook has this token";

/// The route's handler, with its own body limit and failure count.
pub fn route() -> MethodRouter<Arc<Hoist>> {
    let limiter = Arc::new(FailureLimiter::new(MAX_FAILURES, FAILURE_WINDOW));
    post(deploy_hook)
        .layer::<_, Infallible>(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer::<_, Infallible>(Extension(limiter))
}

async fn deploy_hook(
    State(hoist): State<Arc<Hoist>>,
    Extension(limiter): Extension<Arc<FailureLimiter>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A router used without connection info (in-process, in tests): its
    // callers share one count.
    let source = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.0.0.ip());
    let now = Instant::now();
    if let Some(wait) = limiter.blocked(source, now) {
        return too_many(wait);
    }
    let refused_token = |reason: &str| {
        tracing::warn!(%source, reason, "deploy hook call refused");
        limiter.failed(source, now);
    };
    let Some(token) = headers.get(TOKEN_HEADER) else {
        refused_token("no token");
        return answer(
            StatusCode::BAD_REQUEST,
            "the X-Deploy-Hook-Token header is required",
        );
    };
    let hook = match find_hook(&hoist, token).await {
        Ok(Some(hook)) => hook,
        Ok(None) => {
            refused_token("no hook has this token");
            return answer(StatusCode::NOT_FOUND, NOT_FOUND);
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "cannot read the deploy hooks");
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hoist could not read its deploy hooks; nothing was deployed",
            );
        }
    };
    if let Err(error) = hoist
        .store
        .hook_used(&hook.id, jiff::Timestamp::now())
        .await
    {
        tracing::warn!(hook = %hook.name, error = format!("{error:#}"), "cannot note a deploy hook's use");
    }
    let request = match read_request(&hook, &headers, body) {
        Ok(request) => request,
        Err(refusal) => {
            tracing::info!(hook = %hook.name, reason = %refusal.1, "deploy hook call refused");
            return answer(refusal.0, &refusal.1);
        }
    };
    match hoist.deploy_by_hook(&hook, request).await {
        Ok(called) => {
            tracing::info!(
                hook = %hook.name,
                app = %hook.app,
                environment = %hook.environment,
                outcome = called.outcome.kind,
                "deploy hook called"
            );
            deployment_answer(&hoist, called)
        }
        Err(error) => {
            tracing::error!(hook = %hook.name, error = format!("{error:#}"), "a deploy hook call failed");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hoist could not finish this call; the operator can find the details in hoist's log",
            )
        }
    }
}

/// The hook whose token this is, if any: found by its id, then its
/// secret compared with the stored hash.
async fn find_hook(hoist: &Hoist, token: &HeaderValue) -> anyhow::Result<Option<DeployHook>> {
    let Some(presented) = token.to_str().ok().and_then(PresentedToken::parse) else {
        return Ok(None);
    };
    let hook = hoist.store.hook_by_id(presented.id).await?;
    Ok(hook.filter(|hook| presented.matches(&hook.secret_sha256)))
}

/// The body and `Idempotency-Key`, checked against what the hook may do.
fn read_request(
    hook: &DeployHook,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<HookRequest, (StatusCode, String)> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, message);
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {} KiB", MAX_BODY_BYTES / 1024),
        ),
        _ => bad(format!(
            "the body cannot be read: {}",
            rejection.body_text()
        )),
    })?;
    let asked = HookBody::parse(&body).map_err(bad)?;
    // A leaked staging token must never deploy elsewhere.
    if let Some(environment) = &asked.environment
        && !environment.eq_ignore_ascii_case(&hook.environment)
    {
        return Err(bad(format!(
            "this hook deploys {} to {} only",
            hook.app, hook.environment
        )));
    }
    let key =
        idempotency_key(headers.get(IDEMPOTENCY_HEADER).map(HeaderValue::as_bytes)).map_err(bad)?;
    // With a key, a retried call is the same request: one deployment.
    let key = key.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    Ok(HookRequest {
        git_ref: asked.git_ref,
        payload: asked.payload,
        request_key: format!("hook:{}:{key}", hook.id),
    })
}

/// The answer for what the workflow made of the call.
fn deployment_answer(hoist: &Hoist, called: HookDeployment) -> Response {
    let outcome = &called.outcome;
    let status = match (outcome.kind, &called.deployment) {
        ("deployed", Some(deployment)) => {
            let status_url = runner::log_url(&hoist.config.server.public_url, &deployment.key);
            let body = json!({
                "message": outcome.detail,
                "deployment": {
                    "id": deployment.key.id.0,
                    "environment": deployment.environment,
                    "ref": deployment.git_ref,
                    "sha": deployment.sha.as_str(),
                    "statusUrl": status_url,
                },
            });
            return (StatusCode::CREATED, Json(body)).into_response();
        }
        // The same request, being handled by an earlier call right now.
        ("deployed", None) => StatusCode::ACCEPTED,
        ("queued", _) => {
            let body = json!({
                "message": outcome.detail,
                "approvalRequest": outcome.approval,
            });
            return (StatusCode::ACCEPTED, Json(body)).into_response();
        }
        ("provisioning", _) => StatusCode::ACCEPTED,
        ("invalid", _) => StatusCode::BAD_REQUEST,
        ("refused", _) => StatusCode::CONFLICT,
        // hoist's own trouble, or the forge's: the details are in the log
        // (and the channel's answer), not for the caller.
        _ => {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                "nothing was deployed: something went wrong on hoist's side; the operator can find the details in hoist's log",
            );
        }
    };
    answer(status, &outcome.detail)
}

/// 429 until the window ends, in whole seconds (at least one).
fn too_many(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut response = answer(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("too many failed calls from this address: try again in {seconds} s"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn answer(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let seconds = |wait| {
            too_many(wait)
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(seconds(Duration::from_millis(1)).as_deref(), Some("1"));
        assert_eq!(
            seconds(Duration::from_millis(59_001)).as_deref(),
            Some("60")
        );
        assert_eq!(seconds(Duration::from_secs(3)).as_deref(), Some("3"));
    }

    #[test]
    fn answers_are_json_messages() {
        let response = answer(StatusCode::NOT_FOUND, NOT_FOUND);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(HeaderValue::as_bytes),
            Some(&b"application/json"[..])
        );
    }
}
