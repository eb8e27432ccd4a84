//! Slack: slash commands in (signed, stored, answered at once), replies
//! out through the Web API (slack-morphism).
//!
//! A slash command is checked against the signing secret, stored in the
//! inbox under its `trigger_id` and acknowledged; the inbox worker turns it
//! into an [`Inbound`] and the workflow answers through the outbox, so a
//! crash after the acknowledgement loses nothing and a retried request
//! deploys once.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::{ChatAdapter, DeliveryError, DeploymentCard, Inbound, Reply};
use crate::command::{self, Command};
use crate::domain::{Actor, Origin, Platform};

/// Why a request was refused (all answered 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the X-Slack-Signature or X-Slack-Request-Timestamp header is missing")]
    Missing,
    #[error("the request timestamp is more than five minutes away from now")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

/// Checks Slack's v0 signature: HMAC-SHA256 of `v0:{timestamp}:{body}`
/// under the signing secret, hex, compared in constant time; and the
/// timestamp within five minutes of `now` (unix seconds).
///
/// Hand-rolled over the hmac crate rather than slack-morphism's verifier,
/// which reads the clock itself: the replay window must be testable with
/// Slack's published vector (dated 2018).
pub fn verify_signature(
    secret: &SecretString,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(SignatureError::Missing);
    };
    if !super::is_fresh(timestamp, now) {
        return Err(SignatureError::Stale);
    }
    let expected = signature
        .strip_prefix("v0=")
        .and_then(|digest| hex::decode(digest).ok())
        .ok_or(SignatureError::Mismatch)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| SignatureError::Mismatch)?;
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Who asked, and where: a Slack user (named by `user_name`, else by id,
/// with the GitHub login `[users]` gives) in a channel.
fn slack_origin(
    channel: &str,
    message: Option<String>,
    user_id: &str,
    user_name: &str,
    users: &BTreeMap<String, String>,
) -> Origin {
    let name = if user_name.is_empty() {
        user_id
    } else {
        user_name
    };
    Origin {
        platform: Platform::Slack,
        conversation: channel.to_owned(),
        message,
        link: None,
        actor: Actor {
            id: user_id.to_owned(),
            name: name.to_owned(),
            login: users.get(user_id).cloned(),
        },
    }
}

/// The form Slack posts for a slash command (the fields hoist reads).
#[derive(Debug, Clone, Deserialize)]
pub struct SlashCommand {
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub team_id: String,
    pub channel_id: String,
    pub user_id: String,
    #[serde(default)]
    pub user_name: String,
    pub trigger_id: String,
}

impl SlashCommand {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_urlencoded::from_bytes(body).map_err(|e| format!("not a slash command: {e}"))
    }

    /// What the person asked for, as hoist's grammar reads it: `/deploy
    /// api to staging` is `deploy api to staging`; any other slash command
    /// name (`/hoist deploys api`) carries the whole command in its text.
    pub fn command_text(&self) -> String {
        let name = self.command.trim_start_matches('/').to_ascii_lowercase();
        // `/deploy help` and `/deploy whoami` mean `help` and `whoami`.
        let first_word = self.text.split_whitespace().next().unwrap_or_default();
        let names_a_command = command::usage(&first_word.to_ascii_lowercase()).is_some();
        if command::usage(&name).is_some() && !names_a_command {
            format!("{name} {}", self.text).trim().to_owned()
        } else {
            self.text.trim().to_owned()
        }
    }

    /// The command as the workflow sees it. `users` maps Slack user ids
    /// to GitHub logins (`[users]`).
    pub fn inbound(&self, users: &BTreeMap<String, String>) -> Inbound {
        Inbound::typed(
            slack_origin(
                &self.channel_id,
                None,
                &self.user_id,
                &self.user_name,
                users,
            ),
            self.command_text(),
            format!("slack:{}:{}", self.team_id, self.trigger_id),
        )
    }
}

/// What `POST /slack/events` receives (the fields hoist reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventEnvelope {
    /// Slack checking the Request URL: answer with the challenge.
    UrlVerification { challenge: String },
    EventCallback {
        team_id: String,
        event_id: String,
        event: serde_json::Value,
    },
    #[serde(other)]
    Other,
}

/// An `app_mention` event: `@hoist deploy api to staging`.
#[derive(Debug, Clone, Deserialize)]
struct AppMention {
    user: String,
    text: String,
    channel: String,
    ts: String,
}

impl EventEnvelope {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a Slack event: {e}"))
    }

    /// The command in an `app_mention` event, or `None` for any other
    /// event (which hoist acknowledges and ignores).
    pub fn mention(&self, users: &BTreeMap<String, String>) -> Option<Inbound> {
        let Self::EventCallback {
            team_id,
            event_id,
            event,
        } = self
        else {
            return None;
        };
        if event.get("type")?.as_str()? != "app_mention" {
            return None;
        }
        let mention: AppMention = serde_json::from_value(event.clone()).ok()?;
        Some(Inbound::typed(
            slack_origin(&mention.channel, Some(mention.ts), &mention.user, "", users),
            mention.text,
            format!("slack:{team_id}:{event_id}"),
        ))
    }
}

/// The action id of the button that cancels a deployment not yet started.
pub const CANCEL_ACTION: &str = "hoist_cancel";

/// The action ids of the buttons that approve and reject a deployment
/// request; the value is the request's number.
pub const APPROVE_ACTION: &str = "hoist_approve";
pub const REJECT_ACTION: &str = "hoist_reject";

/// A button press on a message hoist posted (`block_actions`).
#[derive(Debug, Clone, Deserialize)]
pub struct ButtonPress {
    pub trigger_id: String,
    pub user: SlackUser,
    pub channel: SlackChannel,
    pub team: SlackTeam,
    pub actions: Vec<ButtonAction>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlackUser {
    pub id: String,
    #[serde(default)]
    pub username: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlackChannel {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlackTeam {
    pub id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ButtonAction {
    pub action_id: String,
    #[serde(default)]
    pub value: String,
}

/// What a button asks hoist to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ButtonRequest {
    /// Cancel the deployment with this card key, for this person.
    Cancel { card_key: String, origin: Origin },
    /// Approve or reject a deployment request: the command it stands
    /// for, as if typed (`approve #7`), keyed by the press.
    Vote(Box<(Inbound, Command)>),
}

impl ButtonPress {
    /// Slack posts interactions form-encoded, as one `payload` field of JSON.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Form {
            payload: String,
        }
        let form: Form =
            serde_urlencoded::from_bytes(body).map_err(|e| format!("not an interaction: {e}"))?;
        serde_json::from_str(&form.payload).map_err(|e| format!("not a button press: {e}"))
    }

    /// The request, if the button is one of hoist's.
    pub fn request(&self, users: &BTreeMap<String, String>) -> Option<ButtonRequest> {
        let action = self.actions.first()?;
        let origin = slack_origin(
            &self.channel.id,
            None,
            &self.user.id,
            &self.user.username,
            users,
        );
        let number = || action.value.parse::<u64>().ok();
        let vote = |command: Command, text: String| {
            let key = format!("slack:{}:{}", self.team.id, self.trigger_id);
            let inbound = Inbound::typed(origin.clone(), text, key);
            ButtonRequest::Vote(Box::new((inbound, command)))
        };
        match action.action_id.as_str() {
            CANCEL_ACTION => Some(ButtonRequest::Cancel {
                card_key: action.value.clone(),
                origin: origin.clone(),
            }),
            APPROVE_ACTION => number().map(|n| {
                let command = Command::Approve { request: Some(n) };
                vote(command, format!("approve #{n}"))
            }),
            REJECT_ACTION => number().map(|n| {
                let command = Command::Reject {
                    request: Some(n),
                    reason: None,
                };
                vote(command, format!("reject #{n}"))
            }),
            _ => None,
        }
    }
}

/// Delivers replies with `chat.postMessage` (or `chat.postEphemeral` for
/// the asker alone).
pub struct SlackAdapter {
    client: SlackHyperClient,
    token: SlackApiToken,
}

impl SlackAdapter {
    /// `api_url` is Slack's Web API base (`https://slack.com/api`) or a
    /// fake's.
    pub fn new(api_url: &str, bot_token: &SecretString) -> anyhow::Result<Self> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        let connector =
            SlackClientHyperConnector::with_connector(connector).with_slack_api_url(api_url);
        Ok(Self {
            client: SlackClient::new(connector),
            token: SlackApiToken::new(SlackApiTokenValue(bot_token.expose_secret().to_owned())),
        })
    }
}

#[async_trait::async_trait]
impl ChatAdapter for SlackAdapter {
    fn platform(&self) -> Platform {
        Platform::Slack
    }

    /// Mistakes go to the asker alone (`chat.postEphemeral`). A new
    /// deployment gets its own message (Block Kit), whose `ts` hoist keeps;
    /// each later status updates that message in place (`chat.update`)
    /// and adds the change as a reply in its thread.
    async fn deliver(
        &self,
        reply: &Reply,
        card_message: Option<&str>,
    ) -> Result<Option<String>, DeliveryError> {
        // A reaction alone (Slack messages get none from hoist).
        if reply.text.is_empty() && reply.card.is_none() {
            return Ok(None);
        }
        let session = self.client.open_session(&self.token);
        let channel = SlackChannelId(reply.origin.conversation.clone());
        let plain = SlackMessageContent::new().with_text(reply.text.clone());
        if reply.only_asker {
            let user = SlackUserId(reply.origin.actor.id.clone());
            let request = SlackApiChatPostEphemeralRequest::new(channel, user, plain);
            session
                .chat_post_ephemeral(&request)
                .await
                .map_err(refusal)?;
            return Ok(None);
        }
        let Some(card) = &reply.card else {
            let content = match reply.approval {
                Some(number) => approval_content(number, &reply.text),
                None => plain,
            };
            let request = SlackApiChatPostMessageRequest::new(channel, content);
            session.chat_post_message(&request).await.map_err(refusal)?;
            return Ok(None);
        };
        let content = card_content(card, &reply.text);
        match (card.first, card_message) {
            (false, Some(ts)) => {
                let ts = SlackTs(ts.to_owned());
                let update = SlackApiChatUpdateRequest::new(channel.clone(), content, ts.clone());
                session.chat_update(&update).await.map_err(refusal)?;
                let in_thread =
                    SlackApiChatPostMessageRequest::new(channel, plain).with_thread_ts(ts);
                session
                    .chat_post_message(&in_thread)
                    .await
                    .map_err(refusal)?;
                Ok(None)
            }
            // The first message, or a status whose card was never posted.
            _ => {
                let request = SlackApiChatPostMessageRequest::new(channel, content);
                let posted = session.chat_post_message(&request).await.map_err(refusal)?;
                Ok(card.first.then_some(posted.ts.0))
            }
        }
    }
}

/// A deployment's message: what, where, who, the state, and the log.
fn card_content(card: &DeploymentCard, fallback: &str) -> SlackMessageContent {
    let headline = SlackSectionBlock::new().with_text(md!(format!(
        "*{}* `{}` ({}) to *{}*: {}",
        card.app, card.git_ref, card.short_sha, card.environment, card.state
    )));
    let mut context = vec![SlackContextBlockElement::MarkDown(
        SlackBlockMarkDownText::new(format!("requested by {}", card.who)),
    )];
    if let Some(url) = &card.log_url {
        context.push(SlackContextBlockElement::MarkDown(
            SlackBlockMarkDownText::new(format!("<{url}|log>")),
        ));
    }
    let mut blocks: Vec<SlackBlock> = vec![headline.into(), SlackContextBlock::new(context).into()];
    // Until it ends, a deployment can be called off (one hoist's runner is
    // running is stopped; one another tool runs is answered "too late").
    if matches!(
        card.state.as_str(),
        "created" | "pending" | "queued" | "in progress"
    ) {
        let cancel = SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from("Cancel"))
            .with_action_id(SlackActionId(CANCEL_ACTION.into()))
            .with_value(card.key.clone())
            .with_style(SlackBlockButtonStyle::Danger);
        blocks.push(SlackActionsBlock::new(vec![cancel.into()]).into());
    }
    SlackMessageContent::new()
        .with_text(fallback.to_owned())
        .with_blocks(blocks)
}

/// A deployment request waiting for approvals: the text and its two
/// buttons, which stand for `approve #N` and `reject #N`.
fn approval_content(number: i64, text: &str) -> SlackMessageContent {
    let value = number.to_string();
    let approve = SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from("Approve"))
        .with_action_id(SlackActionId(APPROVE_ACTION.into()))
        .with_value(value.clone())
        .with_style(SlackBlockButtonStyle::Primary);
    let reject = SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from("Reject"))
        .with_action_id(SlackActionId(REJECT_ACTION.into()))
        .with_value(value)
        .with_style(SlackBlockButtonStyle::Danger);
    let blocks: Vec<SlackBlock> = vec![
        SlackSectionBlock::new()
            .with_text(md!(text.to_owned()))
            .into(),
        SlackActionsBlock::new(vec![approve.into(), reject.into()]).into(),
    ];
    SlackMessageContent::new()
        .with_text(text.to_owned())
        .with_blocks(blocks)
}

fn refusal(error: SlackClientError) -> DeliveryError {
    match error {
        SlackClientError::RateLimitError(limit) => {
            DeliveryError::RetryAfter(limit.retry_after.unwrap_or(Duration::from_secs(30)))
        }
        other => DeliveryError::Failed(format!("Slack refused the message: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str =
        include_str!("../../tests/fixtures/slack/slash_command.webhook-collect.body.txt");

    /// Slack's published example ("Verifying requests from Slack").
    #[test]
    fn slacks_published_test_vector_verifies_within_its_window() {
        let secret = SecretString::from("8f742231b10e8888abcd99yyyzzz85a5");
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        let at = 1_531_420_618;
        let verify = |body: &[u8], now| {
            verify_signature(&secret, Some(signature), Some("1531420618"), body, now)
        };
        assert_eq!(verify(BODY.as_bytes(), at + 10), Ok(()));
        assert_eq!(
            verify(BODY.as_bytes(), at + 301),
            Err(SignatureError::Stale),
            "a replay after five minutes"
        );
        assert_eq!(verify(b"token=forged", at), Err(SignatureError::Mismatch));
        assert_eq!(
            verify_signature(&secret, None, Some("1531420618"), BODY.as_bytes(), at),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn an_app_mention_becomes_an_inbound_command() {
        let body =
            include_str!("../../tests/fixtures/slack/event_callback.app_mention.slack-docs.json");
        let envelope = EventEnvelope::parse(body.as_bytes()).unwrap();
        let inbound = envelope.mention(&BTreeMap::new()).unwrap();
        assert_eq!(
            inbound.text,
            "<@U0LAN0Z89> is it everything a river should be?"
        );
        assert_eq!(inbound.origin.conversation, "C123ABC456");
        assert_eq!(inbound.origin.actor.id, "U061F7AUR");
        assert_eq!(inbound.origin.message.as_deref(), Some("1515449522.000016"));
        assert_eq!(inbound.request_key, "slack:T123ABC456:Ev123ABC456");

        let check = include_str!("../../tests/fixtures/slack/url_verification.slack-docs.json");
        let EventEnvelope::UrlVerification { challenge } =
            EventEnvelope::parse(check.as_bytes()).unwrap()
        else {
            panic!("a url_verification");
        };
        assert!(!challenge.is_empty());
        let other =
            EventEnvelope::parse(br#"{"type": "app_rate_limited", "team_id": "T1"}"#).unwrap();
        assert!(other.mention(&BTreeMap::new()).is_none());
    }

    #[test]
    fn a_cancel_button_press_names_the_deployment_and_the_person() {
        let docs: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/slack/block_actions.button.slack-docs.json"
        ))
        .unwrap();
        let form = |payload: &serde_json::Value| {
            serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap()
        };
        // Slack's example is a button of another app: not hoist's business.
        let theirs = ButtonPress::parse(form(&docs).as_bytes()).unwrap();
        assert_eq!(theirs.request(&BTreeMap::new()), None);

        let mut ours = docs.clone();
        ours["actions"][0]["action_id"] = CANCEL_ACTION.into();
        ours["actions"][0]["value"] = "github/acme/api/1001".into();
        let press = ButtonPress::parse(form(&ours).as_bytes()).unwrap();
        let Some(ButtonRequest::Cancel { card_key, origin }) = press.request(&BTreeMap::new())
        else {
            panic!("a cancel request");
        };
        assert_eq!(card_key, "github/acme/api/1001");
        assert_eq!(origin.conversation, "CBR2V3XEX");
        assert_eq!(
            (origin.actor.id.as_str(), origin.actor.name.as_str()),
            ("UA8RXUSPL", "jtorrance")
        );
        assert!(ButtonPress::parse(b"payload=%7Bnot").is_err());
    }

    #[test]
    fn a_slash_command_becomes_an_inbound_command() {
        let command = SlashCommand::parse(BODY.as_bytes()).unwrap();
        assert_eq!(command.command, "/webhook-collect");
        let inbound = command.inbound(&BTreeMap::from([(
            "U2CERLKJA".to_owned(),
            "octocat".to_owned(),
        )]));
        assert_eq!(inbound.origin.platform, Platform::Slack);
        assert_eq!(inbound.origin.conversation, "G8PSS9T3V");
        assert_eq!(inbound.origin.actor.name, "roadrunner");
        assert_eq!(inbound.origin.actor.login.as_deref(), Some("octocat"));
        assert_eq!(
            inbound.request_key,
            "slack:T1DC2JH3J:398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
        );
        assert_eq!(
            inbound.text, "",
            "a command name hoist does not know carries its text as is"
        );

        let deploy = SlashCommand {
            command: "/deploy".into(),
            text: "api/feature-x to staging".into(),
            ..command
        };
        assert_eq!(deploy.command_text(), "deploy api/feature-x to staging");
        let hoist = SlashCommand {
            command: "/hoist".into(),
            text: " deploys api ".into(),
            ..deploy
        };
        assert_eq!(hoist.command_text(), "deploys api");
        let help = SlashCommand {
            command: "/deploy".into(),
            text: "Help deploy".into(),
            ..hoist
        };
        assert_eq!(help.command_text(), "Help deploy", "`/deploy help` is help");
    }
}
