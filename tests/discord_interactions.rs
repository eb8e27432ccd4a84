//! Discord application commands with the real binary: signed
//! interactions, the deferred response edited through to the
//! deployment's end, what is refused at the door, and registering the
//! commands.

mod fakes;
mod harness;
mod support;

use fakes::discord::{self, APPLICATION_ID};
use harness::{discord_command, serve};
use serde_json::{Value, json};
use support::eventually;

const CHANNEL: &str = "645027906669510667";

fn option(name: &str, value: &str) -> Value {
    json!({"name": name, "type": 3, "value": value})
}

#[tokio::test]
async fn a_signed_deploy_is_deferred_and_its_response_follows_the_deployment_to_success() {
    let serving = serve().await;
    serving.discord.expect_interaction("tok-deploy-1", CHANNEL);
    let interaction = discord_command(
        "786008729715212338",
        "tok-deploy-1",
        "deploy",
        json!([option("app", "api"), option("environment", "staging")]),
    );

    let (status, answer) = serving.discord_interaction(&interaction, 0).await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(
        answer,
        json!({"type": 5, "data": {"flags": 0}}),
        "deferred, for the channel"
    );

    let github = &serving.github;
    let ids = eventually("a deployment", || {
        Some(github.deployment_ids("acme/api")).filter(|ids| !ids.is_empty())
    })
    .await;
    let sent = &github.deployment_requests("acme/api")[0];
    assert_eq!(sent["environment"], "staging");
    assert_eq!(sent["payload"]["hoist"]["origin"]["platform"], "discord");
    assert_eq!(sent["payload"]["hoist"]["origin"]["conversation"], CHANNEL);
    assert_eq!(
        sent["payload"]["hoist"]["origin"]["actor"]["login"],
        "mason-gh"
    );
    assert!(
        !sent.to_string().contains("tok-deploy-1"),
        "the interaction token is a credential: it stays out of the payload"
    );

    let created = serving
        .discord
        .wait_for("api main to staging: created")
        .await;
    assert_eq!(created.channel_id, CHANNEL);
    assert!(
        created
            .components
            .to_string()
            .contains("hoist_cancel:github/acme/api/"),
        "{}",
        created.components
    );

    // Discord rate limits the edit; the outbox waits as told.
    serving.discord.rate_limit_next(1.0);
    serving.status_webhook(ids[0], "in_progress", "s-1").await;
    serving
        .status_webhook_with(ids[0], "success", "s-2", "done", "2026-11-23T12:05:00Z")
        .await;
    let done = serving
        .discord
        .wait_for("api main to staging: succeeded")
        .await;
    assert_eq!(done.id, created.id, "the deferred response itself, edited");
    assert_eq!(done.embeds[0]["color"], 0x2EB67D);
    assert_eq!(done.components, json!([]), "nothing left to cancel");
    assert_eq!(serving.discord.rate_limited(), 1);
    assert_eq!(serving.discord.messages().len(), 1);

    // Discord retrying the same interaction: acknowledged, not stored
    // again, nothing deployed again.
    let (status, _) = serving.discord_interaction(&interaction, 0).await;
    assert_eq!(status, 200);
    serving.wait_handled(3).await;
    assert_eq!(serving.handled().await, 3);
    assert_eq!(github.deployment_ids("acme/api").len(), 1);
}

#[tokio::test]
async fn unsigned_forged_and_stale_interactions_get_401_and_a_ping_gets_pong() {
    let serving = serve().await;
    let interaction = discord_command(
        "786008729715212339",
        "tok-2",
        "deploy",
        json!([option("app", "api")]),
    );
    let body = serde_json::to_vec(&interaction).unwrap();
    let unsigned =
        support::http(serving.address, "POST", "/discord/interactions", &[], &body).await;
    assert_eq!(unsigned.0, 401, "{}", unsigned.1);
    let timestamp = jiff::Timestamp::now().as_second().to_string();
    let forged = discord::sign(&timestamp, b"another body");
    let headers = [
        ("X-Signature-Ed25519", forged.as_str()),
        ("X-Signature-Timestamp", timestamp.as_str()),
    ];
    let forged = support::http(
        serving.address,
        "POST",
        "/discord/interactions",
        &headers,
        &body,
    )
    .await;
    assert_eq!(
        forged,
        (401, "the signature does not match the body\n".to_owned())
    );
    let (status, stale) = serving.discord_interaction(&interaction, 600).await;
    assert_eq!(status, 401, "{stale}");

    let ping = json!({"id": "786008729715212340", "application_id": APPLICATION_ID, "type": 1, "token": "tok-ping", "version": 1});
    let (status, pong) = serving.discord_interaction(&ping, 0).await;
    assert_eq!((status, pong.as_str()), (200, r#"{"type":1}"#));

    assert_eq!(serving.handled().await, 0, "nothing was stored");
    assert!(serving.github.deployment_ids("acme/api").is_empty());
}

#[tokio::test]
async fn options_that_make_no_command_are_answered_at_once_for_the_asker_alone() {
    let serving = serve().await;
    for (name, options, says) in [
        ("where", json!([]), "`/where` needs the `app` option"),
        (
            "cardsearch",
            json!([option("cardname", "The Gitrog Monster")]),
            "hoist has no `/cardsearch` command",
        ),
        (
            "hoist",
            json!([option("command", "deplyo api")]),
            "`deploy`",
        ),
    ] {
        let interaction = discord_command("786008729715212341", "tok-3", name, options);
        let (status, answer) = serving.discord_interaction(&interaction, 0).await;
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["type"], 4, "answered at once: {answer}");
        assert_eq!(answer["data"]["flags"], 64, "for the asker alone");
        let content = answer["data"]["content"].as_str().unwrap();
        assert!(content.contains(says), "{content}");
    }
    assert_eq!(serving.handled().await, 0);
    assert!(serving.discord.messages().is_empty());
    let (_, metrics) = support::http(serving.address, "GET", "/metrics", &[], b"").await;
    assert!(
        metrics.contains("hoist_commands_total{outcome=\"invalid\"} 3"),
        "each one is counted (and audited): {metrics}"
    );
}

#[tokio::test]
async fn a_command_answered_privately_edits_its_deferred_response() {
    let serving = serve().await;
    serving.discord.expect_interaction("tok-whoami", CHANNEL);
    let interaction = discord_command(
        "786008729715212342",
        "tok-whoami",
        "hoist",
        json!([option("command", "whoami")]),
    );
    let (_, answer) = serving.discord_interaction(&interaction, 0).await;
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer, json!({"type": 5, "data": {"flags": 64}}));
    let told = serving
        .discord
        .wait_for("hoist knows you as GitHub user `mason-gh`")
        .await;
    assert!(
        told.content
            .starts_with("You are Mason (53908232506183680) on Discord"),
        "{}",
        told.content
    );
}

#[tokio::test]
async fn register_puts_the_commands_for_every_server_or_one() {
    let serving = serve().await;
    let config = serving.dir.path().join("hoist.toml");
    let config = config.to_str().unwrap();
    // Only Discord's token: registering never talks to GitHub.
    let env = [("HOIST_DISCORD__BOT_TOKEN", discord::BOT_TOKEN)];

    let global = support::hoist(&["discord", "register", "--config", config], "", &env).await;
    assert!(global.success, "{}", global.stderr);
    assert_eq!(
        global.stdout,
        "Registered /deploy, /deploys, /where, /hoist in every server.\n"
    );
    let names: Vec<Value> = serving
        .discord
        .commands(None)
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("deploy"),
            json!("deploys"),
            json!("where"),
            json!("hoist")
        ]
    );

    let one = support::hoist(
        &[
            "discord",
            "register",
            "--config",
            config,
            "--guild",
            "290926798626357999",
        ],
        "",
        &env,
    )
    .await;
    assert!(one.success, "{}", one.stderr);
    assert_eq!(
        serving.discord.commands(Some("290926798626357999")).len(),
        4
    );

    let without_token = support::hoist(&["discord", "register", "--config", config], "", &[]).await;
    assert!(!without_token.success);
    assert!(
        without_token
            .stderr
            .contains("discord.bot_token and discord.application_id"),
        "{}",
        without_token.stderr
    );
}

#[tokio::test]
async fn an_auto_deploy_is_announced_in_the_apps_discord_channel() {
    let serving = harness::serve_with("channel = \"discord:645027906669510667\"\n").await;
    serving.github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "staging:\n  auto_deploy_on: refs/heads/main\n  required_contexts: []\n",
    );
    serving
        .push_event("refs/heads/main", harness::MAIN, "push-1")
        .await;
    let announced = serving
        .discord
        .wait_for("api main to staging: created")
        .await;
    assert_eq!(announced.channel_id, CHANNEL);
    assert_eq!(announced.message_reference, None, "no message to reply to");
}

#[tokio::test]
async fn the_cancel_button_calls_off_a_deployment_that_has_not_started() {
    let serving = serve().await;
    serving.discord.expect_interaction("tok-cancel-1", CHANNEL);
    let deploy = discord_command(
        "786008729715212350",
        "tok-cancel-1",
        "deploy",
        json!([option("app", "api"), option("environment", "staging")]),
    );
    serving.discord_interaction(&deploy, 0).await;
    let card = serving
        .discord
        .wait_for("api main to staging: created")
        .await;
    let custom_id = card.components[0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Discord's MESSAGE_COMPONENT interaction: the documented command
    // interaction's common fields, with a button's data.
    let mut press = discord_command("786008729715212351", "tok-cancel-2", "", json!([]));
    press["type"] = json!(3);
    press["data"] = json!({"component_type": 2, "custom_id": custom_id});
    let (status, answer) = serving.discord_interaction(&press, 0).await;
    assert_eq!((status, answer.as_str()), (200, r#"{"type":6}"#));

    let id = serving.github.deployment_ids("acme/api")[0];
    let statuses = eventually("the cancel status", || {
        Some(serving.github.statuses(id)).filter(|s| !s.is_empty())
    })
    .await;
    assert_eq!(statuses[0]["state"], "error");
    assert_eq!(
        statuses[0]["description"],
        "Cancelled by Mason before it started"
    );
    serving
        .discord
        .wait_for(&format!(
            "Cancelled deployment #{id} of api main to staging."
        ))
        .await;
}

#[tokio::test]
async fn the_approve_button_approves_a_waiting_deployment() {
    let serving = serve().await;
    serving.github.set_file(
        "acme/api",
        "main",
        ".github/deploy.yml",
        "production:\n  required_contexts: []\n  approvals: { from: [hal-gh] }\n",
    );
    serving.discord.expect_interaction("tok-ask-1", CHANNEL);
    let deploy = discord_command(
        "786008729715212360",
        "tok-ask-1",
        "deploy",
        json!([option("app", "api"), option("environment", "production")]),
    );
    serving.discord_interaction(&deploy, 0).await;
    let asked = serving
        .discord
        .wait_for("Deployment request #1: api main (1111111) to production waits for 1 approval from `hal-gh`")
        .await;
    let buttons = asked.components.to_string();
    assert!(
        buttons.contains("hoist_approve:1") && buttons.contains("hoist_reject:1"),
        "{buttons}"
    );
    assert!(serving.github.deployment_ids("acme/api").is_empty());

    // Hal (linked to hal-gh in [users]) presses Approve.
    serving.discord.expect_interaction("tok-ask-2", CHANNEL);
    let mut press = discord_command("786008729715212361", "tok-ask-2", "", json!([]));
    press["type"] = json!(3);
    press["data"] = json!({"component_type": 2, "custom_id": "hoist_approve:1"});
    press["member"]["user"]["id"] = json!("U0HAL");
    let (status, answer) = serving.discord_interaction(&press, 0).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"type": 5, "data": {"flags": 0}}),
        "deferred, for the channel"
    );
    serving
        .discord
        .wait_for("approved request #1: approved by hal-gh")
        .await;
    eventually("the deployment", || {
        Some(serving.github.deployment_ids("acme/api")).filter(|ids| ids.len() == 1)
    })
    .await;
}
