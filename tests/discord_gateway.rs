//! Discord mentions over the gateway with the real binary: hoist
//! identifies, a mention deploys and its reply follows the deployment,
//! and a dropped connection is resumed without losing a message.

mod fakes;
mod harness;
mod support;

use fakes::discord::BOT_USER_ID;
use harness::serve_with_env;
use support::eventually;

const CHANNEL: &str = "244567637332328449";
const MASON: (&str, &str) = ("53908232506183680", "Mason");

#[tokio::test]
async fn a_mention_deploys_and_a_dropped_connection_is_resumed() {
    let serving = serve_with_env("", &[("HOIST_DISCORD__GATEWAY", "true")]).await;
    let greetings = serving.gateway.wait_greetings(1).await;
    assert_eq!(greetings[0]["op"], 2, "IDENTIFY first");
    assert_eq!(greetings[0]["d"]["intents"], (1 << 9) | (1 << 12));
    assert_eq!(greetings[0]["d"]["token"], fakes::discord::BOT_TOKEN);

    // Talk that is not for hoist, and hoist's own kind, are not commands.
    serving
        .gateway
        .message("302917639565475840", CHANNEL, MASON, "lunch?");
    serving.gateway.message(
        "302917639565475841",
        CHANNEL,
        MASON,
        &format!("<@{BOT_USER_ID}> deploy api to staging"),
    );
    let github = &serving.github;
    let ids = eventually("a deployment", || {
        Some(github.deployment_ids("acme/api")).filter(|ids| !ids.is_empty())
    })
    .await;
    let sent = &github.deployment_requests("acme/api")[0];
    assert_eq!(
        sent["payload"]["hoist"]["origin"]["actor"]["login"],
        "mason-gh"
    );
    let created = serving
        .discord
        .wait_for("api main to staging: created")
        .await;
    assert_eq!(created.channel_id, CHANNEL);
    assert_eq!(
        created.message_reference.as_ref().unwrap()["message_id"],
        "302917639565475841",
        "a reply to the mention"
    );

    // The network drops; hoist resumes the session where it was.
    serving.gateway.drop_connection();
    let greetings = serving.gateway.wait_greetings(2).await;
    assert_eq!(greetings[1]["op"], 6, "RESUME, not a new IDENTIFY");
    assert_eq!(greetings[1]["d"]["session_id"], "fake-session-1");
    assert_eq!(greetings[1]["d"]["seq"], 3, "READY, and two messages");

    serving.gateway.message(
        "302917639565475842",
        CHANNEL,
        MASON,
        &format!("<@{BOT_USER_ID}> whoami"),
    );
    serving
        .discord
        .wait_for("hoist knows you as GitHub user `mason-gh`")
        .await;
    serving
        .status_webhook_with(ids[0], "success", "s-1", "done", "2026-11-23T12:05:00Z")
        .await;
    let done = serving
        .discord
        .wait_for("api main to staging: succeeded")
        .await;
    assert_eq!(done.id, created.id, "the reply, edited");
    eventually("👀 then 🚀 on the mention", || {
        Some(()).filter(|()| serving.discord.reactions("302917639565475841") == ["👀", "🚀"])
    })
    .await;
    assert!(
        serving.discord.reactions("302917639565475840").is_empty(),
        "not a command"
    );
    assert_eq!(github.deployment_ids("acme/api").len(), 1);
    assert_eq!(
        serving.discord.messages().len(),
        2,
        "the card and the whoami answer"
    );
}
