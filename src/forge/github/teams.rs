//! Team membership: whether a person is in a GitHub team, for deploy.yml's
//! `allowed_users` entries that name one (`acme/releasers`).
//!
//! Not a [`Forge`](crate::forge::Forge) operation: the local forge has no
//! teams.

use http::StatusCode;
use percent_encoding::utf8_percent_encode;
use serde::Deserialize;

use super::GitHubForge;
use super::client::{Call, expect_success};
use crate::forge::ForgeError;

/// `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`
#[derive(Deserialize)]
struct WireMembership {
    /// `active`, or `pending` (invited, not yet accepted).
    state: String,
}

impl GitHubForge {
    /// Whether `login` is an active member of `team`, written
    /// `org/team-slug` (GitHub counts the members of child teams too).
    /// A pending member (invited, not yet joined) is not one; neither is
    /// anyone when the team does not exist or is secret and hoist is not
    /// in it: GitHub answers 404 for those as for a non-member.
    ///
    /// Needs the organization permission `members: read` (a GitHub App's,
    /// a fine-grained token's) or `read:org` (a classic token); without
    /// it GitHub's 403 is [`ForgeError::Unauthorized`].
    pub async fn team_member(&self, team: &str, login: &str) -> Result<bool, ForgeError> {
        let Some((org, slug)) = team
            .split_once('/')
            .filter(|(org, slug)| !org.is_empty() && !slug.is_empty() && !slug.contains('/'))
        else {
            return Err(ForgeError::Rejected {
                message: format!("`{team}` is not a team: write it as org/team-slug"),
            });
        };
        if login.is_empty() {
            return Ok(false);
        }
        let path = format!(
            "/orgs/{}/teams/{}/memberships/{}",
            utf8_percent_encode(org, super::QUERY),
            utf8_percent_encode(slug, super::QUERY),
            utf8_percent_encode(login, super::QUERY),
        );
        // With an ETag: asking again about an unchanged membership costs
        // no rate limit, and every answer is still GitHub's of the moment.
        let answer = self.client.get_cached_in_org(org, &Call::get(path)).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        expect_success(&answer)?;
        let membership: WireMembership = answer.json("a team membership")?;
        Ok(membership.state == "active")
    }
}
