//! Discord's gateway, as much as bot mentions need: a WebSocket that says
//! HELLO, is IDENTIFYed (or RESUMEd), heartbeats, and carries
//! MESSAGE_CREATE. A message that starts by mentioning the bot is stored
//! in the inbox under its id and handled like a Slack mention; replies go
//! through the outbox over REST, so losing the connection loses none.
//!
//! Hand-written over tokio-tungstenite rather than serenity: serenity
//! 0.12 builds a second rustls (0.22) and tungstenite (0.21) beside the
//! ones hoist already has, and a cache and model of all of Discord, for
//! the one event hoist reads. The protocol part is small and is tested
//! against a local gateway fake (HELLO, IDENTIFY, READY, MESSAGE_CREATE,
//! a dropped connection, RESUME).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::Rest;
use crate::app::Hoist;
use crate::store::InboxLane;

/// Guild messages and direct messages. Not MESSAGE_CONTENT: Discord
/// sends the content of messages that mention the app without it.
const INTENTS: u64 = (1 << 9) | (1 << 12);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A connection that lasted this long ended normally; a shorter one that
/// ends again and again is backed off like a failure.
const STABLE: Duration = Duration::from_secs(30);
/// Close codes after which connecting again cannot help: bad token,
/// bad shard, sharding required, bad API version, bad or disallowed
/// intents.
const FATAL_CLOSE_CODES: [u16; 6] = [4004, 4010, 4011, 4012, 4013, 4014];
/// Close codes after which the session cannot be resumed: bad sequence,
/// session timed out.
const NEW_SESSION_CLOSE_CODES: [u16; 2] = [4007, 4009];

/// A session the gateway can resume.
#[derive(Debug, Clone)]
struct Session {
    id: String,
    resume_url: String,
    bot_user_id: String,
}

/// What ended one connection.
enum Ended {
    Stopped,
    /// Connect again at once (resuming, if the session still stands).
    Reconnect,
    /// Connecting again cannot help.
    Fatal(String),
}

#[derive(Deserialize)]
struct Frame {
    op: u8,
    #[serde(default)]
    d: Value,
    #[serde(default)]
    s: Option<u64>,
    #[serde(default)]
    t: Option<String>,
}

/// A gateway connection that reconnects and resumes by itself.
pub struct Gateway {
    rest: Rest,
    session: Option<Session>,
    /// The last sequence number seen, for heartbeats and RESUME.
    seq: Option<u64>,
}

impl Gateway {
    pub fn new(api_url: &str, bot_token: &secrecy::SecretString) -> anyhow::Result<Self> {
        Ok(Self {
            rest: Rest::new(api_url, bot_token)?,
            session: None,
            seq: None,
        })
    }

    /// Keeps a connection until `stop` is cancelled, or Discord says no
    /// connection can work (a bad token, intents not allowed).
    pub async fn run_until(mut self, hoist: Arc<Hoist>, stop: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let started = tokio::time::Instant::now();
            let ended = self.connect_once(&hoist, &stop).await;
            let stable = started.elapsed() > STABLE;
            if stable {
                backoff = Duration::from_secs(1);
            }
            let wait = match ended {
                Ok(Ended::Stopped) => return,
                Ok(Ended::Fatal(reason)) => {
                    tracing::error!(%reason, "Discord's gateway refused hoist; mentions are off until it restarts");
                    return;
                }
                // Asked to reconnect: at once, unless it keeps happening.
                Ok(Ended::Reconnect) if stable => Duration::ZERO,
                Ok(Ended::Reconnect) => backoff,
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        wait_secs = backoff.as_secs(),
                        "Discord gateway connection lost; connecting again"
                    );
                    backoff
                }
            };
            if !wait.is_zero() {
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => return,
            }
        }
    }

    async fn connect_once(
        &mut self,
        hoist: &Hoist,
        stop: &CancellationToken,
    ) -> anyhow::Result<Ended> {
        let base = match &self.session {
            Some(session) => session.resume_url.clone(),
            None => self.gateway_url().await?,
        };
        let url = format!("{}/?v=10&encoding=json", base.trim_end_matches('/'));
        let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        let hello = read_frame(&mut socket)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the gateway closed before HELLO"))?;
        let interval = hello.d["heartbeat_interval"]
            .as_u64()
            .filter(|_| hello.op == 10)
            .ok_or_else(|| anyhow::anyhow!("the gateway's first frame was not HELLO"))?;
        let token = self.rest.bot_token();
        let greeting = match &self.session {
            Some(session) => {
                json!({"op": 6, "d": {"token": token, "session_id": session.id, "seq": self.seq}})
            }
            None => json!({"op": 2, "d": {
                "token": token,
                "intents": INTENTS,
                "properties": {"os": std::env::consts::OS, "browser": "hoist", "device": "hoist"},
            }}),
        };
        socket.send(Message::text(greeting.to_string())).await?;

        let period = Duration::from_millis(interval.max(1000));
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + period / 2, period);
        let mut acknowledged = true;
        loop {
            let frame = tokio::select! {
                _ = stop.cancelled() => {
                    let _ = socket.close(None).await;
                    return Ok(Ended::Stopped);
                }
                _ = heartbeat.tick() => {
                    // No ACK since the last one: a zombie connection.
                    if !acknowledged {
                        return Ok(Ended::Reconnect);
                    }
                    acknowledged = false;
                    socket.send(Message::text(json!({"op": 1, "d": self.seq}).to_string())).await?;
                    continue;
                }
                frame = socket.next() => frame,
            };
            let text = match frame {
                None => anyhow::bail!("the gateway ended the connection"),
                Some(Err(error)) => return Err(error.into()),
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(close))) => {
                    let code = close.map(|c| u16::from(c.code)).unwrap_or(1000);
                    return Ok(self.closed_with(code));
                }
                Some(Ok(_)) => continue,
            };
            let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
                continue;
            };
            if frame.s.is_some() {
                self.seq = frame.s;
            }
            match frame.op {
                0 => self.dispatch(hoist, frame.t.as_deref(), frame.d).await,
                1 => {
                    socket
                        .send(Message::text(json!({"op": 1, "d": self.seq}).to_string()))
                        .await?;
                }
                7 => return Ok(Ended::Reconnect),
                9 => {
                    if frame.d != Value::Bool(true) {
                        self.forget_session();
                    }
                    // Discord asks for a pause of one to five seconds.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.cancelled() => return Ok(Ended::Stopped),
                    }
                    return Ok(Ended::Reconnect);
                }
                11 => acknowledged = true,
                _ => {}
            }
        }
    }

    /// What a close code means for the next connection.
    fn closed_with(&mut self, code: u16) -> Ended {
        if FATAL_CLOSE_CODES.contains(&code) {
            return Ended::Fatal(format!("the gateway closed with code {code}"));
        }
        if NEW_SESSION_CLOSE_CODES.contains(&code) || code == u16::from(CloseCode::Normal) {
            self.forget_session();
        }
        Ended::Reconnect
    }

    fn forget_session(&mut self) {
        self.session = None;
        self.seq = None;
    }

    async fn dispatch(&mut self, hoist: &Hoist, event: Option<&str>, data: Value) {
        match event {
            Some("READY") => {
                let text = |pointer: &str| data.pointer(pointer).and_then(Value::as_str);
                if let (Some(id), Some(resume_url), Some(bot)) = (
                    text("/session_id"),
                    text("/resume_gateway_url"),
                    text("/user/id"),
                ) {
                    self.session = Some(Session {
                        id: id.to_owned(),
                        resume_url: resume_url.to_owned(),
                        bot_user_id: bot.to_owned(),
                    });
                }
            }
            Some("MESSAGE_CREATE") => {
                let Some(session) = &self.session else {
                    return;
                };
                if addressed_to(&data, &session.bot_user_id) {
                    store_mention(hoist, &data).await;
                }
            }
            _ => {}
        }
    }

    /// The gateway's address (`GET /gateway/bot`).
    async fn gateway_url(&self) -> anyhow::Result<String> {
        let answer = self.rest.get("/gateway/bot").await?;
        answer["url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("Discord named no gateway"))
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn read_frame(socket: &mut Socket) -> anyhow::Result<Option<Frame>> {
    while let Some(message) = socket.next().await {
        if let Message::Text(text) = message? {
            return Ok(Some(serde_json::from_str(text.as_str())?));
        }
    }
    Ok(None)
}

/// A message by a person that starts by mentioning the bot.
fn addressed_to(message: &Value, bot_user_id: &str) -> bool {
    let by_bot = message
        .pointer("/author/bot")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let content = message["content"].as_str().unwrap_or_default().trim_start();
    let mention = [format!("<@{bot_user_id}>"), format!("<@!{bot_user_id}>")];
    !by_bot && mention.iter().any(|m| content.starts_with(m.as_str()))
}

/// Keeps a mention in the inbox (its message id makes a resumed replay
/// count once) and wakes the worker. The gateway has no acknowledgement
/// to hold back, so a mention the store refuses is logged.
async fn store_mention(hoist: &Hoist, message: &Value) {
    let Some(id) = message["id"].as_str() else {
        return;
    };
    let key = format!("message:{id}");
    match hoist
        .store
        .store_webhook("discord", &key, "message_create", &message.to_string())
        .await
    {
        Ok(_) => hoist.inbox_wakeup(InboxLane::Requests).notify_one(),
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), %id, "cannot store a Discord mention")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_persons_message_that_starts_with_the_mention_is_a_command() {
        let message = |content: &str, bot: bool| json!({"content": content, "author": {"id": "1", "bot": bot}});
        assert!(addressed_to(&message("<@42> deploy api", false), "42"));
        assert!(addressed_to(&message("  <@!42> deploys api", false), "42"));
        assert!(!addressed_to(&message("thanks <@42>!", false), "42"));
        assert!(!addressed_to(&message("<@42> deploy api", true), "42"));
        assert!(!addressed_to(&message("<@43> deploy api", false), "42"));
    }
}
