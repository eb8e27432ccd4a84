//! Discord: application commands in (`POST /discord/interactions`,
//! Ed25519-signed, stored, deferred at once), answers out through the REST
//! API: the deferred response edited into the answer, and a deployment's
//! message edited as its statuses arrive.
//!
//! Options are turned into the text command they stand for (`/deploy
//! app:api environment:staging` is `deploy api to staging`) and parsed by
//! the one grammar, so Discord means what typing means. A command whose
//! options do not parse is answered at once, for the asker alone, and
//! never stored.

pub mod gateway;

use std::time::Duration;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AnswerHandle, ChatAdapter, DeliveryError, DeploymentCard, Inbound, Reaction, Reply};
use crate::command::{self, Command};
use crate::domain::{Actor, DeploymentState, Origin, Platform};

/// The longest one REST call may take, answer included.
const REST_TIMEOUT: Duration = Duration::from_secs(10);
/// No Discord answer hoist reads comes near this.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// The custom id of a deployment's Cancel button: `hoist_cancel:{card key}`.
pub const CANCEL_PREFIX: &str = "hoist_cancel:";

/// The custom ids of a deployment request's Approve and Reject buttons:
/// `hoist_approve:{number}`, `hoist_reject:{number}`.
pub const APPROVE_PREFIX: &str = "hoist_approve:";
pub const REJECT_PREFIX: &str = "hoist_reject:";
/// Interaction types and callback types, as Discord numbers them.
const PING: u8 = 1;
const APPLICATION_COMMAND: u8 = 2;
const MESSAGE_COMPONENT: u8 = 3;
const EPHEMERAL: u64 = 1 << 6;

/// Why an interaction's signature was refused (all answered 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Signature-Ed25519 or X-Signature-Timestamp header is missing")]
    Missing,
    #[error("the request timestamp is more than five minutes away from now")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
    #[error("discord.public_key is not a hex Ed25519 public key")]
    BadKey,
}

/// Checks Discord's signature: Ed25519 over the timestamp followed by the
/// raw body, under the application's public key (hex); and the timestamp
/// (unix seconds) within five minutes of `now`.
pub fn verify_signature(
    public_key_hex: &str,
    signature_hex: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let key: [u8; 32] = hex::decode(public_key_hex.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(SignatureError::BadKey)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| SignatureError::BadKey)?;
    let (Some(signature_hex), Some(timestamp)) = (signature_hex, timestamp) else {
        return Err(SignatureError::Missing);
    };
    if !super::is_fresh(timestamp, now) {
        return Err(SignatureError::Stale);
    }
    let signature: [u8; 64] = hex::decode(signature_hex.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(SignatureError::Mismatch)?;
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    key.verify(&message, &Signature::from_bytes(&signature))
        .map_err(|_| SignatureError::Mismatch)
}

/// An interaction as Discord posts it (the fields hoist reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Interaction {
    pub id: String,
    #[serde(default)]
    pub application_id: String,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub channel_id: Option<String>,
    /// The server it was sent in; absent in a DM.
    #[serde(default)]
    guild_id: Option<String>,
    #[serde(default)]
    data: Option<InteractionData>,
    /// In a server; `user` in a DM.
    #[serde(default)]
    member: Option<Member>,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Debug, Clone, Deserialize)]
struct InteractionData {
    #[serde(default)]
    name: String,
    #[serde(default)]
    options: Vec<CommandOption>,
    /// A button's.
    #[serde(default)]
    custom_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct CommandOption {
    name: String,
    #[serde(default)]
    value: Value,
}

#[derive(Debug, Clone, Deserialize)]
struct Member {
    user: User,
}

#[derive(Debug, Clone, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    global_name: Option<String>,
}

impl User {
    /// Named as Discord shows them (display name, else username, else
    /// id), with the GitHub login `[users]` gives.
    fn actor(&self, users: &std::collections::BTreeMap<String, String>) -> Actor {
        let name = [self.global_name.as_deref(), Some(self.username.as_str())]
            .into_iter()
            .flatten()
            .find(|name| !name.is_empty())
            .unwrap_or(&self.id);
        Actor {
            id: self.id.clone(),
            name: name.to_owned(),
            login: users.get(&self.id).cloned(),
        }
    }
}

/// What an interaction asks of hoist.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Discord checking the endpoint: answer PONG.
    Ping,
    /// A command, parsed.
    Command(Box<(Inbound, Command)>),
    /// A command whose options do not make one: the answer, at once.
    Invalid(String),
    /// The Cancel button of a deployment's message.
    Cancel { card_key: String, origin: Origin },
    /// Anything else (autocomplete, a modal, a button not hoist's).
    Other,
}

impl Interaction {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a Discord interaction: {e}"))
    }

    /// What this interaction asks. `users` maps Discord user ids to
    /// GitHub logins (`[users]`).
    pub fn request(&self, users: &std::collections::BTreeMap<String, String>) -> Request {
        let origin = || self.origin(users);
        match (self.kind, &self.data) {
            (PING, _) => Request::Ping,
            (APPLICATION_COMMAND, Some(data)) => {
                let Some(origin) = origin() else {
                    return Request::Other;
                };
                match data
                    .command_text()
                    .map(|text| (command::parse(&text), text))
                {
                    Ok((Ok(command), text)) => {
                        let mut inbound =
                            Inbound::typed(origin, text, format!("discord:{}", self.id));
                        inbound.answer_handle = Some(AnswerHandle(format!(
                            "{}:{}",
                            self.application_id, self.token
                        )));
                        Request::Command(Box::new((inbound, command)))
                    }
                    Ok((Err(error), _)) => Request::Invalid(error.to_string()),
                    Err(error) => Request::Invalid(error),
                }
            }
            (MESSAGE_COMPONENT, Some(data)) => {
                let (Some(custom_id), Some(origin)) = (data.custom_id.as_deref(), origin()) else {
                    return Request::Other;
                };
                if let Some(card_key) = custom_id.strip_prefix(CANCEL_PREFIX) {
                    return Request::Cancel {
                        card_key: card_key.to_owned(),
                        origin,
                    };
                }
                match self.vote(custom_id, origin) {
                    Some(vote) => Request::Command(Box::new(vote)),
                    None => Request::Other,
                }
            }
            _ => Request::Other,
        }
    }

    /// An Approve or Reject button: the command it stands for, as if
    /// typed (`approve #7`), answered through this interaction.
    fn vote(&self, custom_id: &str, origin: Origin) -> Option<(Inbound, Command)> {
        let number = |prefix: &str| custom_id.strip_prefix(prefix)?.parse::<u64>().ok();
        let (text, command) = if let Some(n) = number(APPROVE_PREFIX) {
            (
                format!("approve #{n}"),
                Command::Approve { request: Some(n) },
            )
        } else {
            let n = number(REJECT_PREFIX)?;
            let command = Command::Reject {
                request: Some(n),
                reason: None,
            };
            (format!("reject #{n}"), command)
        };
        let mut inbound = Inbound::typed(origin, text, format!("discord:{}", self.id));
        inbound.answer_handle = Some(AnswerHandle(format!(
            "{}:{}",
            self.application_id, self.token
        )));
        Some((inbound, command))
    }

    /// The command as the person chose it (`/deploy app:api`), for the
    /// audit log.
    pub fn as_typed(&self) -> String {
        let Some(data) = &self.data else {
            return String::new();
        };
        let options = data
            .options
            .iter()
            .map(|o| match &o.value {
                Value::String(text) => format!(" {}:{text}", o.name),
                other => format!(" {}:{other}", o.name),
            })
            .collect::<String>();
        format!("/{}{options}", data.name)
    }

    /// Who asked, and where.
    pub fn origin(&self, users: &std::collections::BTreeMap<String, String>) -> Option<Origin> {
        let user = self
            .member
            .as_ref()
            .map(|member| &member.user)
            .or(self.user.as_ref())?;
        Some(Origin {
            platform: Platform::Discord,
            conversation: self.channel_id.clone()?,
            message: None,
            link: Some(discord_link(
                self.guild_id.as_deref(),
                self.channel_id.as_deref()?,
                None,
            )),
            actor: user.actor(users),
        })
    }
}

impl InteractionData {
    /// The text command these options stand for.
    fn command_text(&self) -> Result<String, String> {
        // A word each (but `/hoist`'s whole command): `ref: "x to
        // production"` must not name an environment by the back door.
        let known = matches!(self.name.as_str(), "deploy" | "deploys" | "where");
        if let Some(spaced) = self.options.iter().filter(|_| known).find(|o| {
            o.value
                .as_str()
                .is_some_and(|v| v.trim().contains(char::is_whitespace))
        }) {
            return Err(format!(
                "`{}` is one word: `{}` has spaces. Usage: {}",
                spaced.name,
                spaced.value.as_str().unwrap_or_default().trim(),
                command::usage(&self.name).unwrap_or("help")
            ));
        }
        let option = |name: &str| -> Option<String> {
            let value = &self.options.iter().find(|o| o.name == name)?.value;
            match value {
                Value::String(text) => Some(text.trim().to_owned()),
                Value::Bool(true) => Some("true".to_owned()),
                _ => None,
            }
        };
        let needed = |name: &str| {
            option(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                format!(
                    "`/{}` needs the `{name}` option. Usage: {}",
                    self.name,
                    command::usage(&self.name).unwrap_or("help")
                )
            })
        };
        let text = match self.name.as_str() {
            "deploy" => {
                let mut text = match option("task").filter(|t| !t.is_empty()) {
                    Some(task) if task.starts_with("deploy") => task,
                    Some(task) => format!("deploy:{task}"),
                    None => "deploy".to_owned(),
                };
                if option("force").is_some() {
                    text.push('!');
                }
                text.push(' ');
                text.push_str(&needed("app")?);
                if let Some(git_ref) = option("ref").filter(|r| !r.is_empty()) {
                    text.push('/');
                    text.push_str(&git_ref);
                }
                if let Some(environment) = option("environment").filter(|e| !e.is_empty()) {
                    text.push_str(&format!(" to {environment}"));
                }
                text
            }
            "deploys" => match option("environment").filter(|e| !e.is_empty()) {
                Some(environment) => format!("deploys {} in {environment}", needed("app")?),
                None => format!("deploys {}", needed("app")?),
            },
            "where" => format!("where can I deploy {}", needed("app")?),
            // Any command as typed: help, whoami, noop, ...
            "hoist" => needed("command")?,
            other => {
                return Err(format!(
                    "hoist has no `/{other}` command. Commands: /deploy, /deploys, /where, /hoist (any command as text, such as `help`)."
                ));
            }
        };
        Ok(text)
    }
}

/// The web address Discord gives a message, or a channel without one:
/// `https://discord.com/channels/{server or @me}/{channel}[/{message}]`.
fn discord_link(guild: Option<&str>, channel: &str, message: Option<&str>) -> String {
    let server = guild.unwrap_or("@me");
    match message {
        Some(message) => format!("https://discord.com/channels/{server}/{channel}/{message}"),
        None => format!("https://discord.com/channels/{server}/{channel}"),
    }
}

/// A message hoist's gateway stored (it starts by mentioning the bot),
/// as the command it holds.
pub fn mention(
    body: &str,
    users: &std::collections::BTreeMap<String, String>,
) -> Result<Inbound, String> {
    #[derive(Deserialize)]
    struct Mention {
        id: String,
        channel_id: String,
        /// Absent in a direct message.
        #[serde(default)]
        guild_id: Option<String>,
        content: String,
        author: User,
    }
    let mention: Mention =
        serde_json::from_str(body).map_err(|e| format!("not a Discord message: {e}"))?;
    let origin = Origin {
        platform: Platform::Discord,
        link: Some(discord_link(
            mention.guild_id.as_deref(),
            &mention.channel_id,
            Some(&mention.id),
        )),
        conversation: mention.channel_id,
        message: Some(mention.id.clone()),
        actor: mention.author.actor(users),
    };
    Ok(Inbound::typed(
        origin,
        mention.content,
        format!("discord:message:{}", mention.id),
    ))
}

/// The immediate answer to an interaction Discord is waiting on.
pub fn immediate_answer(request: &Request) -> Value {
    match request {
        Request::Ping => json!({ "type": 1 }),
        // Deferred: "hoist is thinking…", edited into the answer later:
        // for the channel when it is a deployment (the channel follows
        // those), else for the asker alone.
        Request::Command(parsed) => {
            let flags = match parsed.1 {
                Command::Deploy(_) | Command::Approve { .. } | Command::Reject { .. } => 0,
                _ => EPHEMERAL,
            };
            json!({ "type": 5, "data": { "flags": flags } })
        }
        // The message stays as it is until the deployment's next status.
        Request::Cancel { .. } => json!({ "type": 6 }),
        Request::Invalid(text) => {
            json!({ "type": 4, "data": { "content": text, "flags": EPHEMERAL } })
        }
        Request::Other => json!({
            "type": 4,
            "data": { "content": "hoist does not handle that interaction.", "flags": EPHEMERAL },
        }),
    }
}

/// Delivers replies through Discord's REST API.
pub struct DiscordAdapter {
    rest: Rest,
}

impl DiscordAdapter {
    /// `api_url` is Discord's REST base (`https://discord.com/api/v10`)
    /// or a fake's.
    pub fn new(api_url: &str, bot_token: &SecretString) -> anyhow::Result<Self> {
        Ok(Self {
            rest: Rest::new(api_url, bot_token)?,
        })
    }
}

#[async_trait::async_trait]
impl ChatAdapter for DiscordAdapter {
    fn platform(&self) -> Platform {
        Platform::Discord
    }

    async fn deliver(
        &self,
        reply: &Reply,
        card_message: Option<&str>,
    ) -> Result<Option<String>, DeliveryError> {
        // Reactions first: they are idempotent, and a retry must not post
        // a message twice.
        let ending = reply.card.as_ref().and_then(DeploymentCard::ending);
        for reaction in reply.reaction.into_iter().chain(ending) {
            self.react(reply, reaction).await?;
        }
        if reply.text.is_empty() && reply.card.is_none() {
            return Ok(None);
        }
        let message = message_body(reply);
        let channel = &reply.origin.conversation;
        // The answer to an interaction: its deferred response, edited.
        if let Some(handle) = &reply.answer_handle
            && let Some((application, token)) = handle.0.split_once(':')
        {
            let path = format!("/webhooks/{application}/{token}/messages/@original");
            match self.rest.call(Method::PATCH, &path, &message, false).await {
                Ok(posted) => return Ok(reply.card.as_ref().and(posted)),
                // The token lasts 15 minutes; an answer later than that
                // (the outbox was waiting) goes to the channel instead.
                Err(Refused::NotFound) => {}
                Err(Refused::Delivery(error)) => return Err(error),
            }
        }
        if let (Some(card), Some(id)) = (&reply.card, card_message)
            && !card.first
        {
            let path = format!("/channels/{channel}/messages/{id}");
            match self.rest.call(Method::PATCH, &path, &message, true).await {
                Ok(_) => return Ok(None),
                // Deleted: posted anew below, and edited from then on.
                Err(Refused::NotFound) => {}
                Err(Refused::Delivery(error)) => return Err(error),
            }
        }
        let path = format!("/channels/{channel}/messages");
        let mut message = message;
        // A mention's answer replies to it.
        if let Some(mention) = &reply.origin.message {
            message["message_reference"] =
                json!({ "message_id": mention, "fail_if_not_exists": false });
        }
        match self.rest.call(Method::POST, &path, &message, true).await {
            Ok(posted) => Ok(reply.card.as_ref().and(posted)),
            Err(Refused::NotFound) => Err(DeliveryError::Failed(format!(
                "Discord knows no channel {channel} hoist can post in"
            ))),
            Err(Refused::Delivery(error)) => Err(error),
        }
    }
}

impl DiscordAdapter {
    /// Reacts to the mention the reply answers, if it answers one.
    async fn react(&self, reply: &Reply, reaction: Reaction) -> Result<(), DeliveryError> {
        let Some(mention) = &reply.origin.message else {
            return Ok(());
        };
        let emoji = match reaction {
            Reaction::Eyes => "%F0%9F%91%80",
            Reaction::Rocket => "%F0%9F%9A%80",
            Reaction::Confused => "%F0%9F%98%95",
        };
        let channel = &reply.origin.conversation;
        let path = format!("/channels/{channel}/messages/{mention}/reactions/{emoji}/@me");
        match self.rest.call(Method::PUT, &path, &Value::Null, true).await {
            // A deleted mention: nothing to mark.
            Ok(_) | Err(Refused::NotFound) => Ok(()),
            Err(Refused::Delivery(error)) => Err(error),
        }
    }
}

/// A reply as a Discord message: plain text, or a deployment's embed
/// with its Cancel button while it can still be cancelled.
/// Echoed names never ping anyone: `allowed_mentions` is empty.
fn message_body(reply: &Reply) -> Value {
    let Some(card) = &reply.card else {
        let components = match reply.approval {
            Some(number) => json!([{ "type": 1, "components": [
                { "type": 2, "style": 3, "label": "Approve", "custom_id": format!("{APPROVE_PREFIX}{number}") },
                { "type": 2, "style": 4, "label": "Reject", "custom_id": format!("{REJECT_PREFIX}{number}") },
            ]}]),
            None => json!([]),
        };
        return json!({
            "content": truncate(&reply.text, 2000),
            "components": components,
            "allowed_mentions": { "parse": [] },
        });
    };
    // As on Slack: until it ends.
    let cancellable = !card.status.is_some_and(DeploymentState::is_final);
    let components = if cancellable {
        json!([{ "type": 1, "components": [{
            "type": 2, "style": 4, "label": "Cancel",
            "custom_id": format!("{CANCEL_PREFIX}{}", card.key),
        }]}])
    } else {
        json!([])
    };
    json!({
        "content": "",
        "embeds": [embed(card, &reply.text)],
        "components": components,
        "allowed_mentions": { "parse": [] },
    })
}

fn embed(card: &DeploymentCard, latest: &str) -> Value {
    let colour = match card.status {
        Some(DeploymentState::Success) => 0x2EB67D,
        Some(DeploymentState::Failure | DeploymentState::Error) => 0xE01E5A,
        Some(DeploymentState::InProgress | DeploymentState::Queued | DeploymentState::Pending) => {
            0xECB22E
        }
        None | Some(DeploymentState::Inactive) => 0x9E9E9E,
    };
    let mut fields = vec![
        json!({ "name": "ref", "value": format!("`{}` ({})", card.git_ref, card.short_sha), "inline": true }),
        json!({ "name": "environment", "value": card.environment, "inline": true }),
        json!({ "name": "state", "value": card.state, "inline": true }),
        json!({ "name": "requested by", "value": card.who, "inline": true }),
    ];
    if let Some(url) = &card.log_url {
        fields.push(json!({ "name": "log", "value": format!("[log]({url})"), "inline": true }));
    }
    let mut embed = json!({
        "title": truncate(&format!("{} {} to {}: {}", card.app, card.git_ref, card.environment, card.state), 256),
        "description": truncate(latest, 4096),
        "color": colour,
        "fields": fields,
    });
    if let Some(url) = &card.log_url {
        embed["url"] = json!(url);
    }
    embed
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// Discord said no to a call.
enum Refused {
    /// 404: the message or channel is gone; or the interaction token
    /// has expired (after 15 minutes Discord answers 401, code 50027).
    NotFound,
    Delivery(DeliveryError),
}

/// Discord's REST API over hyper and rustls.
struct Rest {
    client: crate::http_client::HttpsClient,
    api_url: String,
    bot_token: SecretString,
}

impl Rest {
    fn new(api_url: &str, bot_token: &SecretString) -> anyhow::Result<Self> {
        Ok(Self {
            client: crate::http_client::https()?,
            api_url: api_url.trim_end_matches('/').to_owned(),
            bot_token: bot_token.clone(),
        })
    }

    /// Sends `body` and returns the id of the message Discord answers
    /// with. `as_bot`: with the bot token (channel calls); interaction
    /// webhooks carry their credential in the path.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        as_bot: bool,
    ) -> Result<Option<String>, Refused> {
        let (status, headers, answer) = self
            .exchange(method, path, body, as_bot)
            .await
            .map_err(Refused::Delivery)?;
        match status {
            status if status.is_success() => Ok(serde_json::from_slice::<Value>(&answer)
                .ok()
                .and_then(|message| message["id"].as_str().map(str::to_owned))),
            StatusCode::NOT_FOUND => Err(Refused::NotFound),
            StatusCode::UNAUTHORIZED if !as_bot => Err(Refused::NotFound),
            StatusCode::TOO_MANY_REQUESTS => Err(Refused::Delivery(DeliveryError::RetryAfter(
                retry_after(&headers, &answer),
            ))),
            status => Err(Refused::Delivery(DeliveryError::Failed(format!(
                "Discord answered {}: {}",
                status.as_u16(),
                serde_json::from_slice::<Value>(&answer)
                    .ok()
                    .and_then(|error| error["message"].as_str().map(str::to_owned))
                    .unwrap_or_default()
            )))),
        }
    }

    /// The bot token, for the gateway's IDENTIFY and RESUME.
    fn bot_token(&self) -> &str {
        self.bot_token.expose_secret()
    }

    /// Gets `path` with the bot token; the answer's JSON.
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.json(Method::GET, path, &Value::Null).await
    }

    /// Puts `body` at `path` with the bot token (command registration);
    /// the answer's JSON.
    async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.json(Method::PUT, path, body).await
    }

    async fn json(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, _, answer) = self
            .exchange(method, path, body, true)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let answer: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        if !status.is_success() {
            anyhow::bail!(
                "Discord answered {}: {}",
                status.as_u16(),
                answer["message"].as_str().unwrap_or("no reason given")
            );
        }
        Ok(answer)
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        as_bot: bool,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), DeliveryError> {
        let failed = |detail: &str| DeliveryError::Failed(detail.to_owned());
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api_url))
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                "DiscordBot (https://github.com/hoist, 0.1)",
            );
        if as_bot {
            request = request.header(
                header::AUTHORIZATION,
                format!("Bot {}", self.bot_token.expose_secret()),
            );
        }
        let body = match body {
            Value::Null => bytes::Bytes::new(),
            body => bytes::Bytes::from(body.to_string()),
        };
        let request = request
            .body(Full::new(body))
            .map_err(|_| failed("hoist could not build the request"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                tracing::debug!(%error, "Discord request failed");
                failed("Discord could not be reached")
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|_| failed("Discord's answer was cut off or too large"))?
                .to_bytes()
                .to_vec();
            Ok((parts.status, parts.headers, body))
        };
        tokio::time::timeout(REST_TIMEOUT, exchange)
            .await
            .map_err(|_| failed("Discord did not answer in time"))?
    }
}

/// How long a 429 asks to wait: the body's `retry_after` (seconds, a
/// fraction), else `Retry-After`, else a second.
fn retry_after(headers: &HeaderMap, body: &[u8]) -> Duration {
    let from_body = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|answer| answer["retry_after"].as_f64());
    let from_header = || {
        headers
            .get(header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
    };
    let seconds = from_body.or_else(from_header).unwrap_or(1.0);
    // `NaN` parses as a number; no answer may panic hoist.
    Duration::try_from_secs_f64(seconds.clamp(0.0, 3600.0).ceil()).unwrap_or(Duration::from_secs(1))
}

/// `hoist discord register`: puts hoist's application commands
/// (`commands/discord-commands.json`) on Discord, for every server or for
/// one (`guild`, where a change shows at once). Returns their names.
pub async fn register_commands(
    api_url: &str,
    bot_token: &SecretString,
    application_id: &str,
    guild: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let commands: Value = serde_json::from_str(COMMANDS)?;
    let path = match guild {
        Some(guild) => format!("/applications/{application_id}/guilds/{guild}/commands"),
        None => format!("/applications/{application_id}/commands"),
    };
    let registered = Rest::new(api_url, bot_token)?.put(&path, &commands).await?;
    Ok(registered
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|command| command["name"].as_str().map(str::to_owned))
        .collect())
}

/// hoist's application commands, as Discord's API takes them.
pub const COMMANDS: &str = include_str!("../../commands/discord-commands.json");

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1, TEST 1: an empty message under a published key.
    /// (Discord publishes no vector of its own.)
    #[test]
    fn rfc_8032_test_1_verifies_and_a_changed_byte_does_not() {
        let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let signature = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
        let key =
            VerifyingKey::from_bytes(&hex::decode(public).unwrap().try_into().unwrap()).unwrap();
        let signature = Signature::from_bytes(&hex::decode(signature).unwrap().try_into().unwrap());
        assert!(key.verify(b"", &signature).is_ok());
        assert!(key.verify(b"x", &signature).is_err());
    }

    #[test]
    fn signatures_need_both_headers_a_fresh_timestamp_and_the_key() {
        let public = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let now = 1_800_000_000;
        let stale = (now - super::super::MAX_CLOCK_SKEW_SECS - 1).to_string();
        assert_eq!(
            verify_signature(public, None, Some("1"), b"{}", now),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(public, Some("00"), Some(&stale), b"{}", now),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(public, Some("zz"), Some(&now.to_string()), b"{}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("not hex", Some("00"), Some("1"), b"{}", now),
            Err(SignatureError::BadKey)
        );
    }

    const FIXTURE: &str = include_str!(
        "../../tests/fixtures/discord/interaction.application_command.discord-docs.json"
    );

    fn interaction(name: &str, options: Value) -> Interaction {
        let mut event: Value = serde_json::from_str(FIXTURE).unwrap();
        event["data"]["name"] = json!(name);
        event["data"]["options"] = options;
        event["application_id"] = json!("1000000000000000001");
        serde_json::from_value(event).unwrap()
    }

    #[test]
    fn options_stand_for_the_text_command() {
        let users = std::collections::BTreeMap::new();
        let deploy = interaction(
            "deploy",
            json!([{"name": "app", "type": 3, "value": "api"}, {"name": "ref", "type": 3, "value": "feature/x"},
                   {"name": "environment", "type": 3, "value": "staging"}, {"name": "task", "type": 3, "value": "migrate"},
                   {"name": "force", "type": 5, "value": true}]),
        );
        let Request::Command(parsed) = deploy.request(&users) else {
            panic!("a command");
        };
        let (inbound, command) = *parsed;
        assert_eq!(inbound.text, "deploy:migrate! api/feature/x to staging");
        assert_eq!(
            command,
            command::parse("deploy:migrate! api/feature/x to staging").unwrap()
        );
        assert_eq!(inbound.origin.platform, Platform::Discord);
        assert!(inbound.answer_handle.is_some());
        assert_eq!(
            immediate_answer(&deploy.request(&users)),
            json!({"type": 5, "data": {"flags": 0}})
        );

        let deploys = interaction(
            "deploys",
            json!([{"name": "app", "type": 3, "value": "api"}]),
        );
        assert!(matches!(
            deploys.request(&users),
            Request::Command(parsed) if matches!(parsed.1, Command::Deploys { .. })
        ));
        assert_eq!(
            immediate_answer(&deploys.request(&users)),
            json!({"type": 5, "data": {"flags": EPHEMERAL}})
        );
        let typed = interaction(
            "hoist",
            json!([{"name": "command", "type": 3, "value": "deploy api to staging"}]),
        );
        assert_eq!(
            immediate_answer(&typed.request(&users))["data"]["flags"],
            0,
            "a deployment typed as text is the channel's too"
        );
        let missing = interaction("where", json!([]));
        assert!(
            matches!(missing.request(&users), Request::Invalid(text) if text.contains("needs the `app` option"))
        );
        let unknown = interaction("cardsearch", json!([]));
        assert!(
            matches!(unknown.request(&users), Request::Invalid(text) if text.contains("no `/cardsearch`"))
        );
        let spaced = interaction(
            "deploy",
            json!([{"name": "app", "type": 3, "value": "api"}, {"name": "ref", "type": 3, "value": "x to production"}]),
        );
        assert!(
            matches!(spaced.request(&users), Request::Invalid(text) if text.contains("`ref` is one word"))
        );
        let bad = interaction(
            "hoist",
            json!([{"name": "command", "type": 3, "value": "deplyo api"}]),
        );
        assert!(matches!(bad.request(&users), Request::Invalid(text) if text.contains("`deploy`")));
    }

    #[test]
    fn the_origin_links_back_to_the_server_channel_or_message() {
        let users = std::collections::BTreeMap::new();
        let Request::Command(parsed) = interaction(
            "hoist",
            json!([{"name": "command", "type": 3, "value": "help"}]),
        )
        .request(&users) else {
            panic!("a command");
        };
        assert_eq!(
            parsed.0.origin.link.as_deref(),
            Some("https://discord.com/channels/290926798626357999/645027906669510667"),
            "a slash command is no message: its channel, in the fixture's server"
        );

        let gateway =
            include_str!("../../tests/fixtures/discord/gateway.message_create.d.serenity.json");
        let mut message: Value = serde_json::from_str(gateway).unwrap();
        message["content"] = json!("<@42> deploy api");
        let in_a_dm = mention(&message.to_string(), &users).unwrap();
        assert_eq!(
            in_a_dm.origin.link.as_deref(),
            Some("https://discord.com/channels/@me/244567637332328449/302917639565475840")
        );
        message["guild_id"] = json!("81384788765712384");
        let in_a_server = mention(&message.to_string(), &users).unwrap();
        assert_eq!(
            in_a_server.origin.link.as_deref(),
            Some(
                "https://discord.com/channels/81384788765712384/244567637332328449/302917639565475840"
            )
        );
    }

    #[test]
    fn a_rate_limit_waits_as_long_as_discord_says() {
        assert_eq!(
            retry_after(&HeaderMap::new(), br#"{"message": "You are being rate limited.", "retry_after": 1.2, "global": false}"#),
            Duration::from_secs(2)
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers, b""), Duration::from_secs(3));
        headers.insert(header::RETRY_AFTER, "NaN".parse().unwrap());
        assert_eq!(retry_after(&headers, b""), Duration::from_secs(1));
    }
}
