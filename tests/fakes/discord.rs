//! A fake Discord REST API (v10): the original interaction response,
//! edited through the interaction's webhook, channel messages, and bulk
//! overwrites of application commands, answering with Discord's JSON
//! shapes and error codes, with scripted 429s. Also the test keypair that
//! signs interactions as Discord does.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

pub const BOT_TOKEN: &str = "discord-bot-token-for-tests";
pub const APPLICATION_ID: &str = "1000000000000000001";
pub const BOT_USER_ID: &str = "1000000000000000002";
/// Every message object the fake answers with is this one, filled in.
const MESSAGE_FIXTURE: &str = include_str!("../fixtures/discord/message.example.discord-docs.json");
/// The snowflakes the fake hands out count up from here.
const FIRST_ID: u64 = 1_100_000_000_000_000_000;
/// The seed of the test keypair: fixed, so every run signs alike. Not a secret.
const SIGNING_SEED: [u8; 32] = [7; 32];

/// A message, as it stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeMessage {
    pub id: String,
    pub channel_id: String,
    pub content: String,
    /// The embeds array (`[]` when none).
    pub embeds: Value,
    /// The components array (`[]` when none).
    pub components: Value,
    /// Message flags, e.g. 64 for an ephemeral interaction response.
    pub flags: u64,
    /// How many times it was edited after it was posted.
    pub edits: usize,
    /// What it replies to, as sent.
    pub message_reference: Option<Value>,
}

struct Stored {
    message: FakeMessage,
    /// The token of the interaction whose original response it is.
    interaction: Option<String>,
    timestamp: String,
    edited_timestamp: Option<String>,
}

impl Stored {
    fn edited(&mut self) {
        self.message.edits += 1;
        self.edited_timestamp = Some(now());
    }
}

struct Model {
    /// In creation order.
    messages: Vec<Stored>,
    /// Interaction token -> the channel the interaction came from.
    interactions: HashMap<String, String>,
    /// Guild (`None`: global) -> the last array put, as sent.
    commands: HashMap<Option<String>, Vec<Value>>,
    last_id: u64,
    /// `retry_after` of the next requests to answer 429.
    rate_limits: VecDeque<f64>,
    rate_limited: usize,
    /// What `GET /gateway/bot` names.
    gateway_url: Option<String>,
    /// Message id -> the bot's reactions on it, in order, each once.
    reactions: HashMap<String, Vec<String>>,
}

impl Model {
    fn snowflake(&mut self) -> String {
        self.last_id += 1;
        self.last_id.to_string()
    }
}

pub struct FakeDiscord {
    address: SocketAddr,
    model: Arc<Mutex<Model>>,
}

impl FakeDiscord {
    pub async fn start() -> Self {
        let model = Arc::new(Mutex::new(Model {
            messages: Vec::new(),
            interactions: HashMap::new(),
            commands: HashMap::new(),
            last_id: FIRST_ID,
            rate_limits: VecDeque::new(),
            rate_limited: 0,
            gateway_url: None,
            reactions: HashMap::new(),
        }));
        let address = super::listen(
            Router::new()
                .fallback(handle)
                .with_state(Arc::clone(&model)),
        )
        .await;
        Self { address, model }
    }

    /// The bot's reactions on a message (emoji), in the order added.
    pub fn reactions(&self, message_id: &str) -> Vec<String> {
        self.model()
            .reactions
            .get(message_id)
            .cloned()
            .unwrap_or_default()
    }

    /// Makes `GET /gateway/bot` name this gateway (a `FakeGateway`'s).
    pub fn set_gateway_url(&self, url: &str) {
        self.model().gateway_url = Some(url.to_owned());
    }

    /// The REST API base URL.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/v10", self.address)
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap()
    }

    /// Discord got an interaction with `token` in `channel_id` (and showed
    /// the deferred response): hoist may now edit its original response.
    pub fn expect_interaction(&self, token: &str, channel_id: &str) {
        self.model()
            .interactions
            .insert(token.to_owned(), channel_id.to_owned());
    }

    /// The next request, whatever it is, answers 429 telling the client to
    /// wait `retry_after_secs`.
    pub fn rate_limit_next(&self, retry_after_secs: f64) {
        self.model().rate_limits.push_back(retry_after_secs);
    }

    /// Requests answered 429.
    pub fn rate_limited(&self) -> usize {
        self.model().rate_limited
    }

    /// Every message, interaction responses included, in creation order.
    pub fn messages(&self) -> Vec<FakeMessage> {
        self.model()
            .messages
            .iter()
            .map(|s| s.message.clone())
            .collect()
    }

    /// The last command array hoist put, as it sent it, for a guild or
    /// (`None`) globally.
    pub fn commands(&self, guild: Option<&str>) -> Vec<Value> {
        self.model()
            .commands
            .get(&guild.map(str::to_owned))
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until a message's content or embeds contain `needle` (or
    /// fails after 10 s).
    pub async fn wait_for(&self, needle: &str) -> FakeMessage {
        for _ in 0..200 {
            if let Some(message) = self
                .messages()
                .into_iter()
                .find(|m| m.content.contains(needle) || m.embeds.to_string().contains(needle))
            {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "Discord never got {needle:?}; it got {:#?}",
            self.messages()
        );
    }
}

/// The key Discord would sign interactions with; hoist is given
/// `public_key_hex()` as the application's public key.
pub fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&SIGNING_SEED)
}

/// The public key as the Developer Portal shows it.
pub fn public_key_hex() -> String {
    hex::encode(signing_key().verifying_key().to_bytes())
}

/// The `X-Signature-Ed25519` of a request whose `X-Signature-Timestamp`
/// is `timestamp`: Discord signs the timestamp followed by the body.
pub fn sign(timestamp: &str, body: &[u8]) -> String {
    let signed = [timestamp.as_bytes(), body].concat();
    hex::encode(signing_key().sign(&signed).to_bytes())
}

async fn handle(
    State(model): State<Arc<Mutex<Model>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut model = model.lock().unwrap();
    if let Some(retry_after) = model.rate_limits.pop_front() {
        model.rate_limited += 1;
        return rate_limit(retry_after);
    }
    let not_found = || error(StatusCode::NOT_FOUND, "404: Not Found", 0);
    let Some(path) = uri.path().strip_prefix("/api/v10/") else {
        return not_found();
    };
    let segments: Vec<&str> = path.split('/').collect();
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bot {BOT_TOKEN}"));
    match (&method, segments.as_slice()) {
        // The interaction token in the path is the credential.
        (&Method::PATCH, ["webhooks", application, token, "messages", "@original"]) => {
            edit_original(&mut model, application, token, &body)
        }
        _ if !authorized => error(StatusCode::UNAUTHORIZED, "401: Unauthorized", 0),
        (&Method::GET, ["gateway", "bot"]) => match &model.gateway_url {
            Some(url) => Json(json!({
                "url": url,
                "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1},
            }))
            .into_response(),
            None => not_found(),
        },
        (&Method::POST, ["channels", channel, "messages"]) => {
            create_message(&mut model, channel, &body)
        }
        // Discord answers 204 whether the reaction is new or not.
        (&Method::PUT, ["channels", _, "messages", id, "reactions", emoji, "@me"]) => {
            let emoji = percent_encoding::percent_decode_str(emoji)
                .decode_utf8_lossy()
                .into_owned();
            let on = model.reactions.entry((*id).to_owned()).or_default();
            if !on.contains(&emoji) {
                on.push(emoji);
            }
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::PATCH, ["channels", channel, "messages", id]) => {
            edit_message(&mut model, channel, id, &body)
        }
        (&Method::PUT, ["applications", application, "commands"]) => {
            overwrite_commands(&mut model, application, None, &body)
        }
        (&Method::PUT, ["applications", application, "guilds", guild, "commands"]) => {
            overwrite_commands(&mut model, application, Some(guild), &body)
        }
        _ => not_found(),
    }
}

fn edit_original(model: &mut Model, application: &str, token: &str, body: &[u8]) -> Response {
    let Some(channel) = model
        .interactions
        .get(token)
        .filter(|_| application == APPLICATION_ID)
        .cloned()
    else {
        return error(StatusCode::NOT_FOUND, "Unknown Webhook", 10015);
    };
    let Some(request) = parse(body) else {
        return invalid_json();
    };
    let stored = match model
        .messages
        .iter()
        .position(|s| s.interaction.as_deref() == Some(token))
    {
        Some(at) => {
            model.messages[at].edited();
            &mut model.messages[at]
        }
        // The first edit fills in the deferred "thinking" message.
        None => post(model, &channel, Some(token)),
    };
    apply(&mut stored.message, &request);
    Json(message_json(stored)).into_response()
}

fn create_message(model: &mut Model, channel: &str, body: &[u8]) -> Response {
    let Some(request) = parse(body) else {
        return invalid_json();
    };
    let empty = |key: &str| {
        request
            .get(key)
            .is_none_or(|v| v.is_null() || v == "" || v.as_array().is_some_and(Vec::is_empty))
    };
    if empty("content") && empty("embeds") && empty("components") {
        return error(
            StatusCode::BAD_REQUEST,
            "Cannot send an empty message",
            50006,
        );
    }
    let stored = post(model, channel, None);
    stored.message.message_reference = request.get("message_reference").cloned();
    apply(&mut stored.message, &request);
    Json(message_json(stored)).into_response()
}

fn edit_message(model: &mut Model, channel: &str, id: &str, body: &[u8]) -> Response {
    let Some(request) = parse(body) else {
        return invalid_json();
    };
    let Some(stored) = model
        .messages
        .iter_mut()
        .find(|s| s.message.id == id && s.message.channel_id == channel)
    else {
        return error(StatusCode::NOT_FOUND, "Unknown Message", 10008);
    };
    stored.edited();
    apply(&mut stored.message, &request);
    Json(message_json(stored)).into_response()
}

fn overwrite_commands(
    model: &mut Model,
    application: &str,
    guild: Option<&str>,
    body: &[u8],
) -> Response {
    if application != APPLICATION_ID {
        return error(StatusCode::FORBIDDEN, "Missing Access", 50001);
    }
    let sent = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(list)) if list.iter().all(Value::is_object) => list,
        _ => return error(StatusCode::BAD_REQUEST, "Invalid Form Body", 50035),
    };
    let mut answered = sent.clone();
    for command in &mut answered {
        command["id"] = json!(model.snowflake());
        command["application_id"] = json!(APPLICATION_ID);
        command["version"] = json!(model.snowflake());
        if let Some(guild) = guild {
            command["guild_id"] = json!(guild);
        }
    }
    model.commands.insert(guild.map(str::to_owned), sent);
    Json(answered).into_response()
}

/// A new, empty message in `channel`.
fn post<'m>(model: &'m mut Model, channel: &str, interaction: Option<&str>) -> &'m mut Stored {
    let id = model.snowflake();
    model.messages.push(Stored {
        message: FakeMessage {
            id,
            channel_id: channel.to_owned(),
            content: String::new(),
            embeds: json!([]),
            components: json!([]),
            flags: 0,
            edits: 0,
            message_reference: None,
        },
        interaction: interaction.map(str::to_owned),
        timestamp: now(),
        edited_timestamp: None,
    });
    model.messages.last_mut().unwrap()
}

/// Sets the fields the request gives (a null one clears).
fn apply(message: &mut FakeMessage, request: &Value) {
    if let Some(content) = request.get("content") {
        content
            .as_str()
            .unwrap_or_default()
            .clone_into(&mut message.content);
    }
    for (key, field) in [
        ("embeds", &mut message.embeds),
        ("components", &mut message.components),
    ] {
        if let Some(value) = request.get(key) {
            *field = if value.is_null() {
                json!([])
            } else {
                value.clone()
            };
        }
    }
    if let Some(flags) = request.get("flags") {
        message.flags = flags.as_u64().unwrap_or_default();
    }
}

fn message_json(stored: &Stored) -> Value {
    let message = &stored.message;
    let mut json: Value = serde_json::from_str(MESSAGE_FIXTURE).unwrap();
    // The example's reaction is no one's on a message just posted.
    json.as_object_mut().unwrap().remove("reactions");
    for (key, value) in [
        ("id", json!(message.id)),
        ("channel_id", json!(message.channel_id)),
        ("content", json!(message.content)),
        ("embeds", message.embeds.clone()),
        ("components", message.components.clone()),
        ("flags", json!(message.flags)),
        ("timestamp", json!(stored.timestamp)),
        ("edited_timestamp", json!(stored.edited_timestamp)),
    ] {
        json[key] = value;
    }
    json["author"]["id"] = json!(BOT_USER_ID);
    json["author"]["username"] = json!("hoist");
    json["author"]["avatar"] = Value::Null;
    json["author"]["bot"] = json!(true);
    if let Some(reference) = &message.message_reference {
        json["message_reference"] = reference.clone();
    }
    // An interaction's response comes from the application's webhook, as
    // a CHAT_INPUT_COMMAND message.
    if stored.interaction.is_some() {
        json["type"] = json!(20);
        json["webhook_id"] = json!(APPLICATION_ID);
        json["application_id"] = json!(APPLICATION_ID);
    }
    json
}

/// Discord's timestamp format: `2017-07-11T17:27:07.299000+00:00`.
fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

fn parse(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

fn invalid_json() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "The request body contains invalid JSON.",
        50109,
    )
}

fn error(status: StatusCode, message: &str, code: u32) -> Response {
    (status, Json(json!({"message": message, "code": code}))).into_response()
}

/// A 429 with the headers of the docs' "Example Exceeded User Rate Limit
/// Response".
fn rate_limit(retry_after: f64) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [
            ("retry-after", retry_after.ceil().to_string()),
            ("x-ratelimit-limit", "5".to_owned()),
            ("x-ratelimit-remaining", "0".to_owned()),
            ("x-ratelimit-reset-after", retry_after.to_string()),
            ("x-ratelimit-scope", "user".to_owned()),
        ],
        Json(json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false})),
    )
        .into_response()
}
