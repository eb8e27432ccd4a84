//! The HTTP server of `hoist serve`: every route in one readable place.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use tokio::net::TcpListener;

mod log;

use crate::actions;
use crate::app::Hoist;
use crate::chat::discord::{self, Interaction};
use crate::chat::slack::{self, ButtonPress, EventEnvelope, SlashCommand};
use crate::forge::github::webhook;
use crate::store::{AuditEntry, InboxLane};

/// No endpoint of hoist needs a larger body; bigger requests get 413.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// GitHub's delivery ids are GUIDs; anything much longer is not one.
const MAX_DELIVERY_ID: usize = 100;

/// Every route; the dashboard's too when `[dashboard] enabled`.
pub fn router(hoist: Arc<Hoist>) -> anyhow::Result<Router> {
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/github/webhooks", post(github_webhook))
        .route("/slack/commands", post(slack_command))
        .route("/slack/events", post(slack_event))
        .route("/slack/interactions", post(slack_interaction))
        .route("/discord/interactions", post(discord_interaction))
        .route(
            "/deployments/{forge}/{owner}/{repo}/{id}/log",
            get(log::deployment_log),
        )
        .route(
            "/v1/deployments/{id}/actions/{action}",
            patch(actions::http::report_action),
        )
        .route("/api/v1/dh", crate::hooks::route())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::clone(&hoist));
    if !hoist.config.dashboard.enabled {
        return Ok(routes);
    }
    let dashboard = crate::dashboard::router(hoist)?.layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Ok(routes.merge(dashboard))
}

/// Serves until the process ends. Each request knows its peer's address
/// (deploy hooks count failed calls per address).
pub async fn serve(hoist: Arc<Hoist>, listener: TcpListener) -> anyhow::Result<()> {
    let app = router(hoist)?.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(hoist): State<Arc<Hoist>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        hoist.metrics.render(),
    )
        .into_response()
}

/// A GitHub webhook: checked, stored, acknowledged; handled afterwards by
/// the inbox worker. A redelivery (same `X-GitHub-Delivery`) is
/// acknowledged and ignored.
async fn github_webhook(
    State(hoist): State<Arc<Hoist>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(secret) = &hoist.config.github.webhook_secret else {
        return text(
            StatusCode::UNAUTHORIZED,
            "hoist has no github.webhook_secret, so it accepts no webhooks",
        );
    };
    if let Err(error) = webhook::verify_signature(secret, &body, header("x-hub-signature-256")) {
        return text(StatusCode::UNAUTHORIZED, &error.to_string());
    }
    let (Some(event), Some(delivery)) = (header("x-github-event"), header("x-github-delivery"))
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "X-GitHub-Event and X-GitHub-Delivery are required",
        );
    };
    if delivery.is_empty() || delivery.len() > MAX_DELIVERY_ID {
        return text(
            StatusCode::BAD_REQUEST,
            "X-GitHub-Delivery is not a delivery id",
        );
    }
    if event == "ping" {
        return text(StatusCode::OK, "pong");
    }
    if !webhook::is_handled(event) {
        return text(
            StatusCode::ACCEPTED,
            &format!("ignored: hoist does not handle `{event}` events"),
        );
    }
    let stored = ToStore {
        source: "github",
        key: delivery,
        event,
        what: "a GitHub delivery; redeliver it from GitHub",
    };
    store_then(&hoist, stored, &body, |new| {
        if new {
            text(StatusCode::ACCEPTED, "stored")
        } else {
            text(
                StatusCode::OK,
                "already stored: this delivery was received before",
            )
        }
    })
    .await
}

/// Checks a Slack request's signature; the refusal to send otherwise.
fn refuse_unsigned_slack(hoist: &Hoist, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(secret) = &hoist.config.slack.signing_secret else {
        return Some(text(
            StatusCode::UNAUTHORIZED,
            "hoist has no slack.signing_secret, so it accepts no Slack requests",
        ));
    };
    let now = jiff::Timestamp::now().as_second();
    slack::verify_signature(
        secret,
        header("x-slack-signature"),
        header("x-slack-request-timestamp"),
        body,
        now,
    )
    .err()
    .map(|error| text(StatusCode::UNAUTHORIZED, &error.to_string()))
}

/// Slack's Events API: the Request URL check, and `app_mention`s stored
/// under their event id (Slack's retries carry the same id) before the
/// acknowledgement.
async fn slack_event(State(hoist): State<Arc<Hoist>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = refuse_unsigned_slack(&hoist, &headers, &body) {
        return refusal;
    }
    let envelope = match EventEnvelope::parse(&body) {
        Ok(envelope) => envelope,
        Err(error) => return text(StatusCode::BAD_REQUEST, &error),
    };
    let (team_id, event_id) = match &envelope {
        EventEnvelope::UrlVerification { challenge } => {
            return axum::Json(serde_json::json!({ "challenge": challenge })).into_response();
        }
        EventEnvelope::EventCallback {
            team_id, event_id, ..
        } if envelope.mention(&hoist.config.users).is_some() => (team_id.clone(), event_id.clone()),
        _ => {
            return text(
                StatusCode::OK,
                "ignored: hoist handles app_mention events only",
            );
        }
    };
    // Slack retries a delivery that failed, so a refusal loses nothing.
    let key = format!("{team_id}:{event_id}");
    let stored = ToStore {
        source: "slack",
        key: &key,
        event: "app_mention",
        what: "the Slack event",
    };
    store_then(&hoist, stored, &body, |_| text(StatusCode::OK, "stored")).await
}

/// A button press on one of hoist's messages: checked, stored under its
/// trigger id, acknowledged; the inbox worker acts on it.
async fn slack_interaction(
    State(hoist): State<Arc<Hoist>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refuse_unsigned_slack(&hoist, &headers, &body) {
        return refusal;
    }
    let press = match ButtonPress::parse(&body) {
        Ok(press) => press,
        Err(error) => return text(StatusCode::BAD_REQUEST, &error),
    };
    if press.request(&hoist.config.users).is_none() {
        return text(StatusCode::OK, "ignored: not one of hoist's buttons");
    }
    let key = format!("{}:{}", press.team.id, press.trigger_id);
    let stored = ToStore {
        source: "slack",
        key: &key,
        event: "block_actions",
        what: "the button press; please press it again",
    };
    store_then(&hoist, stored, &body, |_| StatusCode::OK.into_response()).await
}

/// A Slack slash command: checked, stored under its trigger id, and
/// acknowledged at once (Slack allows three seconds); the inbox worker
/// runs it and the answer comes through the outbox.
async fn slack_command(
    State(hoist): State<Arc<Hoist>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refuse_unsigned_slack(&hoist, &headers, &body) {
        return refusal;
    }
    let command = match SlashCommand::parse(&body) {
        Ok(command) => command,
        Err(error) => return text(StatusCode::BAD_REQUEST, &error),
    };
    let key = format!("{}:{}", command.team_id, command.trigger_id);
    let stored = ToStore {
        source: "slack",
        key: &key,
        event: "slash_command",
        what: "the command; please try again",
    };
    let ack = serde_json::json!({
        "response_type": "ephemeral",
        "text": format!("Working on `{}`…", command.command_text()),
    });
    store_then(&hoist, stored, &body, |_| axum::Json(ack).into_response()).await
}

/// A Discord interaction: checked (Ed25519), and PING answered; a command
/// or button stored under its interaction id and deferred (Discord
/// allows three seconds); one whose options make no command answered at
/// once, for the asker alone, and not stored.
async fn discord_interaction(
    State(hoist): State<Arc<Hoist>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let Some(public_key) = &hoist.config.discord.public_key else {
        return text(
            StatusCode::UNAUTHORIZED,
            "hoist has no discord.public_key, so it accepts no Discord interactions",
        );
    };
    let now = jiff::Timestamp::now().as_second();
    if let Err(error) = discord::verify_signature(
        public_key,
        header("x-signature-ed25519"),
        header("x-signature-timestamp"),
        &body,
        now,
    ) {
        return text(StatusCode::UNAUTHORIZED, &error.to_string());
    }
    let interaction = match Interaction::parse(&body) {
        Ok(interaction) => interaction,
        Err(error) => return text(StatusCode::BAD_REQUEST, &error),
    };
    let request = interaction.request(&hoist.config.users);
    let answer = axum::Json(discord::immediate_answer(&request));
    if let (discord::Request::Invalid(reason), Some(origin)) =
        (&request, interaction.origin(&hoist.config.users))
    {
        // Answered here, not by the workflow: audited here too.
        hoist.metrics.command("invalid");
        let entry = AuditEntry {
            at: jiff::Timestamp::now(),
            platform: origin.platform,
            actor: origin.actor.name,
            command: interaction.as_typed().chars().take(500).collect(),
            outcome: "invalid".into(),
            detail: reason.clone(),
        };
        if let Err(error) = hoist.store.append_audit(&entry).await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot audit a Discord interaction"
            );
        }
    }
    if !matches!(
        request,
        discord::Request::Command(..) | discord::Request::Cancel { .. }
    ) {
        return answer.into_response();
    }
    let stored = ToStore {
        source: "discord",
        key: &interaction.id,
        event: "interaction",
        what: "the interaction; please try again",
    };
    store_then(&hoist, stored, &body, |_| answer.into_response()).await
}

/// A request to keep in the inbox: who sent it, under which key, what.
struct ToStore<'a> {
    source: &'a str,
    key: &'a str,
    event: &'a str,
    /// For the refusal when it cannot be stored: "hoist could not store …".
    what: &'a str,
}

/// Stores a checked request in the inbox, wakes its worker, and only then
/// answers with `ack` (told whether the key was new).
async fn store_then(
    hoist: &Hoist,
    request: ToStore<'_>,
    body: &[u8],
    ack: impl FnOnce(bool) -> Response,
) -> Response {
    let Ok(body) = std::str::from_utf8(body) else {
        return text(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    match hoist
        .store
        .store_webhook(request.source, request.key, request.event, body)
        .await
    {
        Ok(new) => {
            hoist
                .inbox_wakeup(InboxLane::of(request.source, request.event))
                .notify_one();
            ack(new)
        }
        Err(error) => {
            tracing::error!(
                error = format!("{error:#}"),
                source = request.source,
                event = request.event,
                "cannot store a request"
            );
            let message = format!("hoist could not store {}\n", request.what);
            (StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
        }
    }
}

/// A short plain-text answer, one line.
fn text(status: StatusCode, message: &str) -> Response {
    (status, format!("{message}\n")).into_response()
}
