//! The parts of GitHub's API that pull request conversations need: a pull
//! request's head, a commenter's permission, comments and reactions.
//!
//! These are not [`Forge`](crate::forge::Forge) operations: the local
//! forge has no pull requests, and only the pull request adapter
//! (`chat::pr_comment`) calls them.

use http::StatusCode;
use percent_encoding::utf8_percent_encode;
use serde::Deserialize;
use serde_json::json;

use super::GitHubForge;
use super::client::{Call, expect_success};
use super::wire::bad_answer;
use crate::domain::{Permission, RepoName, Sha};
use crate::forge::ForgeError;

/// A pull request, as much as deploying it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: u64,
    /// The head branch's name, in the repository it lives in.
    pub head_ref: String,
    pub head_sha: Sha,
    /// Where the head branch lives; `None` when that fork was deleted.
    pub head_repo: Option<RepoName>,
}

impl PullRequest {
    /// The head lives in another repository (or in a deleted one): the
    /// code is not the team's, and its branch name means nothing in
    /// `base`.
    pub fn from_fork(&self, base: &RepoName) -> bool {
        self.head_repo.as_ref() != Some(base)
    }
}

#[derive(Deserialize)]
struct WirePull {
    number: u64,
    head: WireHead,
}

#[derive(Deserialize)]
struct WireHead {
    #[serde(rename = "ref")]
    git_ref: String,
    sha: String,
    repo: Option<WireRepo>,
}

#[derive(Deserialize)]
struct WireRepo {
    full_name: String,
}

#[derive(Deserialize)]
struct WirePermission {
    permission: String,
}

#[derive(Deserialize)]
struct WireComment {
    id: u64,
}

impl GitHubForge {
    /// Takes a repository's installation id from a webhook (GitHub App
    /// mode), saving the lookup.
    pub async fn use_installation(&self, repo: &RepoName, id: u64) -> Result<(), ForgeError> {
        self.client.use_installation(repo, id).await
    }

    pub async fn pull_request(
        &self,
        repo: &RepoName,
        number: u64,
    ) -> Result<PullRequest, ForgeError> {
        let answer = self
            .client
            .send(repo, &Call::get(format!("/repos/{repo}/pulls/{number}")))
            .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(ForgeError::NotFound {
                what: format!("pull request #{number} of {repo}"),
            });
        }
        expect_success(&answer)?;
        let pull: WirePull = answer.json("a pull request")?;
        Ok(PullRequest {
            number: pull.number,
            head_sha: Sha::new(&pull.head.sha)
                .ok_or_else(|| bad_answer("a pull request without a valid head sha"))?,
            head_ref: pull.head.git_ref,
            head_repo: pull.head.repo.and_then(|r| r.full_name.parse().ok()),
        })
    }

    /// `login`'s permission on `repo`; `None` for someone GitHub does not
    /// know there.
    pub async fn permission(&self, repo: &RepoName, login: &str) -> Result<Permission, ForgeError> {
        let path = format!(
            "/repos/{repo}/collaborators/{}/permission",
            utf8_percent_encode(login, super::QUERY)
        );
        let answer = self.client.send(repo, &Call::get(path)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(Permission::None);
        }
        expect_success(&answer)?;
        let wire: WirePermission = answer.json("a collaborator permission")?;
        Ok(Permission::parse(&wire.permission))
    }

    /// Posts a comment on an issue or pull request; returns its id.
    pub async fn create_comment(
        &self,
        repo: &RepoName,
        number: u64,
        body: &str,
    ) -> Result<u64, ForgeError> {
        let request = json!({ "body": body });
        let path = format!("/repos/{repo}/issues/{number}/comments");
        let answer = self.client.send(repo, &Call::post(path, &request)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(ForgeError::NotFound {
                what: format!("pull request #{number} of {repo}"),
            });
        }
        expect_success(&answer)?;
        Ok(answer.json::<WireComment>("a comment")?.id)
    }

    /// Replaces a comment's text.
    pub async fn update_comment(
        &self,
        repo: &RepoName,
        comment: u64,
        body: &str,
    ) -> Result<(), ForgeError> {
        let request = json!({ "body": body });
        let path = format!("/repos/{repo}/issues/comments/{comment}");
        let answer = self.client.send(repo, &Call::patch(path, &request)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(ForgeError::NotFound {
                what: format!("comment {comment} of {repo}"),
            });
        }
        expect_success(&answer)
    }

    /// Adds a reaction to a comment; adding one that is there already is
    /// a success (GitHub answers 200 instead of 201).
    pub async fn add_reaction(
        &self,
        repo: &RepoName,
        comment: u64,
        content: &str,
    ) -> Result<(), ForgeError> {
        let request = json!({ "content": content });
        let path = format!("/repos/{repo}/issues/comments/{comment}/reactions");
        let answer = self.client.send(repo, &Call::post(path, &request)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(ForgeError::NotFound {
                what: format!("comment {comment} of {repo}"),
            });
        }
        expect_success(&answer)
    }
}
