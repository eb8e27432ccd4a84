//! Pull requests as a conversation: `.deploy to staging` commented on a
//! pull request, and one comment per deployment that hoist edits as its
//! statuses arrive.
//!
//! A comment is a command when its first line starts with `.` or `/` and
//! a command word ([`command::parse_comment`]): a quoted reply (`> .deploy`)
//! or a code block never is, so quoting an earlier command deploys
//! nothing. Edited comments, comments on plain issues and comments by bots
//! are ignored. hoist reacts with eyes first, checks that the commenter
//! may write to the repository, and refuses pull requests from forks
//! unless the app allows them.

use std::sync::Arc;

use serde::Deserialize;

use super::{ChatAdapter, DeliveryError, DeploymentCard, Inbound, Reaction, Reply};
use crate::app::Hoist;
use crate::command::{self, Command, DeployRequest, ParseError};
use crate::domain::Permission;
use crate::domain::{Actor, DeploymentState, Origin, Platform, RepoName};
use crate::forge::ForgeError;
use crate::forge::github::GitHubForge;
use crate::workflow::Outcome;

/// The permission a commenter needs for any command.
const NEEDED: Permission = Permission::Write;
/// Ends every comment hoist writes, unseen: with a token, hoist comments
/// as a person, not a bot, and must still never read its own words as a
/// command.
const MARK: &str = "<!-- hoist -->";

/// An `issue_comment` webhook, as much as hoist reads.
#[derive(Debug, Deserialize)]
pub struct CommentEvent {
    action: String,
    issue: Issue,
    comment: Comment,
    repository: Repository,
}

#[derive(Debug, Deserialize)]
struct Issue {
    number: u64,
    /// Present only when the issue is a pull request.
    pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    user: User,
}

#[derive(Debug, Deserialize)]
struct User {
    login: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct Repository {
    full_name: String,
}

/// A comment that addresses hoist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentCommand {
    pub repo: RepoName,
    pub number: u64,
    pub comment_id: u64,
    pub login: String,
    /// The first line, as typed (the audit log's command).
    pub text: String,
    pub parsed: Result<Command, ParseError>,
}

impl CommentEvent {
    pub fn parse(body: &str) -> Result<Self, String> {
        serde_json::from_str(body).map_err(|e| format!("not an issue_comment event: {e}"))
    }

    /// The command this comment holds, or `None` when hoist should stay
    /// silent: not a new comment, not on a pull request, written by a bot
    /// (hoist's own comments included), or not addressed to hoist.
    pub fn command(&self) -> Option<CommentCommand> {
        let by_bot = self.comment.user.kind == "Bot" || self.comment.user.login.ends_with("[bot]");
        if self.action != "created" || self.issue.pull_request.is_none() || by_bot {
            return None;
        }
        let body = self.comment.body.as_deref().filter(|b| !b.contains(MARK))?;
        let parsed = command::parse_comment(body)?;
        Some(CommentCommand {
            repo: self.repository.full_name.parse().ok()?,
            number: self.issue.number,
            comment_id: self.comment.id,
            login: self.comment.user.login.clone(),
            text: body.lines().next().unwrap_or_default().trim().to_owned(),
            parsed,
        })
    }
}

/// The conversation of a pull request: `acme/api#12`.
pub fn conversation(repo: &RepoName, number: u64) -> String {
    format!("{repo}#{number}")
}

fn parse_conversation(conversation: &str) -> Option<(RepoName, u64)> {
    let (repo, number) = conversation.rsplit_once('#')?;
    Some((repo.parse().ok()?, number.parse().ok()?))
}

/// Who did something on a pull request: a GitHub login is all three.
pub fn origin(repo: &RepoName, number: u64, message: Option<u64>, login: &str) -> Origin {
    Origin {
        platform: Platform::PullRequest,
        conversation: conversation(repo, number),
        message: message.map(|id| id.to_string()),
        link: None,
        actor: Actor {
            id: login.to_owned(),
            name: login.to_owned(),
            login: Some(login.to_owned()),
        },
    }
}

impl Hoist {
    /// Acts on a stored `issue_comment` delivery (the inbox drops one
    /// that does not parse). Errors are the store's (the delivery is
    /// tried again); everything GitHub or the commenter gets wrong is
    /// answered on the pull request.
    pub async fn handle_pr_comment(&self, event: &CommentEvent) -> anyhow::Result<()> {
        let Some(request) = event.command() else {
            return Ok(());
        };
        let Some(github) = self.github.clone() else {
            tracing::warn!(repo = %request.repo, "a pull request comment, but forge.kind is not github");
            return Ok(());
        };
        let origin = origin(
            &request.repo,
            request.number,
            Some(request.comment_id),
            &request.login,
        );
        let request_key = format!("github:comment:{}:{}", request.repo, request.comment_id);
        let mut inbound = Inbound::typed(origin, request.text.clone(), request_key);
        self.heard(&inbound).await?;
        match self.comment_command(&github, &request, &mut inbound).await {
            Ok(command) => self.handle_command(inbound, command).await?,
            Err(refusal) => self.conclude(&inbound, refusal).await?,
        };
        Ok(())
    }

    /// The command to run, with what the pull request implies filled in,
    /// or the answer that stops it.
    async fn comment_command(
        &self,
        github: &GitHubForge,
        request: &CommentCommand,
        inbound: &mut Inbound,
    ) -> Result<Command, Outcome> {
        let repo = &request.repo;
        let permission = github.permission(repo, &request.login).await.map_err(|e| {
            Outcome::new(
                "error",
                format!("Nothing was done: I couldn't check your permission on {repo}: {e}."),
            )
        })?;
        if permission < NEEDED {
            return Err(Outcome::new(
                "refused",
                format!(
                    "Nothing was done: commands on pull requests need {} permission on {repo}, and {} has {}.",
                    NEEDED.as_str(),
                    request.login,
                    permission.as_str()
                ),
            ));
        }
        let Some(app) = self.config.app_for_repo(repo) else {
            return Err(Outcome::new(
                "invalid",
                format!(
                    "No app in hoist.toml deploys {repo}: an operator adds one under [apps] with `repo = \"{repo}\"`."
                ),
            ));
        };
        inbound.implied.app = Some(app.to_owned());
        inbound.implied.pull_request = Some(request.number);
        let command = request
            .parsed
            .clone()
            .map_err(|e| Outcome::new("invalid", e.to_string()))?;
        if let Command::Deploy(deploy) | Command::Noop(deploy) = &command
            && deploys_the_head(deploy, app)
        {
            inbound.implied.git_ref = Some(self.head_to_deploy(github, request, app).await?);
        }
        Ok(command)
    }

    /// The pull request's head as a ref to deploy: its branch, or for a
    /// fork (where the branch name means nothing here) its sha, and only
    /// when the app allows forks.
    async fn head_to_deploy(
        &self,
        github: &GitHubForge,
        request: &CommentCommand,
        app: &str,
    ) -> Result<String, Outcome> {
        let repo = &request.repo;
        let pull = github
            .pull_request(repo, request.number)
            .await
            .map_err(|e| Outcome::new("error", format!("Nothing was deployed: {e}.")))?;
        if !pull.from_fork(repo) {
            return Ok(pull.head_ref);
        }
        let allowed = self.config.app(app).is_some_and(|app| app.allow_forks);
        if !allowed {
            let from = pull
                .head_repo
                .map_or_else(|| "a deleted fork".to_owned(), |fork| fork.to_string());
            return Err(Outcome::new(
                "refused",
                format!(
                    "Nothing was deployed: pull request #{} comes from {from}, and forks are not deployed: their code would run with the environment's secrets. \
                     Deploy a reviewed commit of {repo} by name, or an operator sets `allow_forks = true` under [apps.{app}].",
                    request.number
                ),
            ));
        }
        Ok(pull.head_sha.to_string())
    }
}

/// Whether a deploy command on a pull request means its head: no ref
/// named, and the pull request's own app (or none) named.
fn deploys_the_head(request: &DeployRequest, app: &str) -> bool {
    request.git_ref.is_none() && request.app.as_deref().is_none_or(|named| named == app)
}

/// Delivers replies on pull requests: a comment per answer, one comment
/// per deployment edited in place, and reactions on the command.
pub struct PrCommentAdapter {
    github: Arc<GitHubForge>,
}

impl PrCommentAdapter {
    pub fn new(github: Arc<GitHubForge>) -> Self {
        Self { github }
    }

    /// Reacts to the command's comment, when the reply has one (an
    /// auto-deploy has none).
    async fn react(
        &self,
        repo: &RepoName,
        command_comment: Option<u64>,
        reaction: Reaction,
    ) -> Result<(), DeliveryError> {
        let Some(comment) = command_comment else {
            return Ok(());
        };
        self.github
            .add_reaction(repo, comment, reaction_name(reaction))
            .await
            .map_err(refusal)
    }
}

#[async_trait::async_trait]
impl ChatAdapter for PrCommentAdapter {
    fn platform(&self) -> Platform {
        Platform::PullRequest
    }

    /// Every step but the last is idempotent (reactions, edits), so a
    /// retry after a failure part-way posts no comment twice.
    async fn deliver(
        &self,
        reply: &Reply,
        card_message: Option<&str>,
    ) -> Result<Option<String>, DeliveryError> {
        let (repo, number) = parse_conversation(&reply.origin.conversation).ok_or_else(|| {
            DeliveryError::Failed(format!(
                "`{}` is not a pull request conversation",
                reply.origin.conversation
            ))
        })?;
        let command_comment = reply
            .origin
            .message
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok());
        if let Some(reaction) = reply.reaction {
            self.react(&repo, command_comment, reaction).await?;
        }
        let Some(card) = &reply.card else {
            if !reply.text.is_empty() {
                self.github
                    .create_comment(&repo, number, &marked(&reply.text))
                    .await
                    .map_err(refusal)?;
            }
            return Ok(None);
        };
        // The end's reaction first: it is idempotent, and a retry after
        // a comment was posted must not post it again.
        if let Some(ending) = card.ending() {
            self.react(&repo, command_comment, ending).await?;
        }
        let body = marked(&card_comment(card, &reply.text));
        let edit = card_message
            .filter(|_| !card.first)
            .and_then(|id| id.parse::<u64>().ok());
        let post_card = || async {
            let posted = self
                .github
                .create_comment(&repo, number, &body)
                .await
                .map_err(refusal)?;
            Ok(Some(posted.to_string()))
        };
        let Some(comment) = edit else {
            return post_card().await;
        };
        match self.github.update_comment(&repo, comment, &body).await {
            Ok(()) => Ok(None),
            // Someone deleted hoist's comment: post it anew, and edit
            // that one from now on.
            Err(ForgeError::NotFound { .. }) => post_card().await,
            Err(error) => Err(refusal(error)),
        }
    }
}

fn marked(text: &str) -> String {
    format!("{text}\n\n{MARK}")
}

fn reaction_name(reaction: Reaction) -> &'static str {
    match reaction {
        Reaction::Eyes => "eyes",
        Reaction::Rocket => "rocket",
        Reaction::Confused => "confused",
    }
}

fn refusal(error: ForgeError) -> DeliveryError {
    match error {
        ForgeError::RateLimited { retry_after } => DeliveryError::RetryAfter(retry_after),
        other => DeliveryError::Failed(other.to_string()),
    }
}

/// A deployment's comment: a headline with the state, the facts, the log,
/// and the latest news in full.
fn card_comment(card: &DeploymentCard, latest: &str) -> String {
    let mark = match card.status {
        None | Some(DeploymentState::Pending | DeploymentState::Queued) => "⏳",
        Some(DeploymentState::InProgress) => "🚧",
        Some(DeploymentState::Success) => "✅",
        Some(DeploymentState::Failure | DeploymentState::Error) => "❌",
        Some(DeploymentState::Inactive) => "⚪",
    };
    let log = card
        .log_url
        .as_deref()
        .map(|url| format!(" · [log]({url})"))
        .unwrap_or_default();
    format!(
        "{mark} **{}** `{}` (`{}`) to **{}**: **{}**\n\nRequested by {}{log}\n\n{latest}",
        card.app, card.git_ref, card.short_sha, card.environment, card.state, card.who
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str =
        include_str!("../../tests/fixtures/github/issue_comment.created.issue.json");

    /// The published fixture is on a plain issue; GitHub marks a pull
    /// request's with `issue.pull_request`.
    fn on_pull_request(body: &str) -> serde_json::Value {
        let mut event: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        event["issue"]["pull_request"] = serde_json::json!({"url": "https://api.github.com/repos/Codertocat/Hello-World/pulls/1"});
        event["comment"]["body"] = serde_json::json!(body);
        event
    }

    fn command_in(event: &serde_json::Value) -> Option<CommentCommand> {
        CommentEvent::parse(&event.to_string()).unwrap().command()
    }

    #[test]
    fn a_comment_on_a_pull_request_is_a_command() {
        let found = command_in(&on_pull_request(".deploy to staging\nthanks!")).unwrap();
        assert_eq!(found.text, ".deploy to staging");
        assert_eq!(found.repo.to_string(), "Codertocat/Hello-World");
        assert!(matches!(found.parsed, Ok(Command::Deploy(_))));
    }

    #[test]
    fn quotes_code_issues_edits_and_bots_are_not_commands() {
        let fixture: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
        assert_eq!(command_in(&fixture), None, "a plain issue");
        let own = format!("Deploying api main to staging\n.deploy to staging\n\n{MARK}");
        assert_eq!(
            command_in(&on_pull_request(&own)),
            None,
            "hoist's own comment"
        );
        for quoted in [
            "> .deploy to staging",
            "```\n.deploy to staging\n```",
            "    .deploy to staging",
            "please .deploy",
        ] {
            assert_eq!(command_in(&on_pull_request(quoted)), None, "{quoted}");
        }
        let mut edited = on_pull_request(".deploy to staging");
        edited["action"] = serde_json::json!("edited");
        assert_eq!(command_in(&edited), None);
        let mut by_bot = on_pull_request(".deploy to staging");
        by_bot["comment"]["user"]["type"] = serde_json::json!("Bot");
        assert_eq!(command_in(&by_bot), None);
    }

    #[test]
    fn conversations_name_the_pull_request() {
        let repo: RepoName = "acme/api".parse().unwrap();
        assert_eq!(
            parse_conversation(&conversation(&repo, 12)),
            Some((repo, 12))
        );
        assert_eq!(parse_conversation("C0DEPLOYS"), None);
    }
}
