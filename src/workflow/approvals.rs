//! Approvals: a deployment to a target with deploy.yml's `approvals`
//! waits in the store, numbered, until enough of the people named
//! approve (`approve #7`, a button), one rejects, or it expires. Then it
//! deploys as its requester asked, the rules judged again at that time.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::app::Hoist;
use crate::chat::Inbound;
use crate::command::DeployRequest;
use crate::domain::{Origin, Platform};
use crate::policy::{self, Approvals, Verdict};
use crate::store::{ApprovalRecord, ApprovalState, NewApproval, Vote, VoteOutcome};

use super::Outcome;
use super::deploy::{Asked, Granted, KeptRequest};

/// A deploy request waiting for approvals: what the store keeps to
/// deploy it later as it was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AwaitingApproval {
    #[serde(flatten)]
    kept: KeptRequest,
    /// The rule when it was asked: later votes are counted against it.
    rule: Approvals,
}

/// An approve or reject command, as the workflow reads it.
pub(super) struct VoteRequest<'a> {
    pub number: Option<u64>,
    pub verdict: Verdict,
    pub reason: Option<&'a str>,
}

/// Where `approve` with no number looks: one conversation.
fn conversation_key(origin: &Origin) -> String {
    format!("{}:{}", origin.platform.as_str(), origin.conversation)
}

/// `approve #7` as the person's platform writes it.
fn typed(platform: Platform, text: &str) -> String {
    match platform {
        Platform::PullRequest => format!(".{text}"),
        _ => text.to_owned(),
    }
}

impl Hoist {
    /// Keeps the deployment waiting for its approvals and says so, with
    /// its number and the buttons that approve or reject it.
    pub(super) async fn ask_for_approvals(
        &self,
        inbound: &Inbound,
        request: &DeployRequest,
        asked: &Asked<'_>,
        what: &str,
    ) -> Result<Outcome, Outcome> {
        let Some(rule) = asked.target.approvals.clone() else {
            return Err(super::deploy::internal("approvals without a rule"));
        };
        let now = Timestamp::now();
        let expires_at = now
            .checked_add(rule.expire_after())
            .map_err(super::deploy::internal)?;
        let waiting = AwaitingApproval {
            kept: KeptRequest::new(inbound, request, asked, what),
            rule: rule.clone(),
        };
        let body = serde_json::to_value(&waiting).map_err(super::deploy::internal)?;
        let number = self
            .store
            .ask_approval(&NewApproval {
                request_key: inbound.request_key.clone(),
                conversation: conversation_key(&inbound.origin),
                required: rule.required,
                created_at: now,
                expires_at,
                body,
            })
            .await
            .map_err(super::deploy::internal)?;
        let platform = inbound.origin.platform;
        let buttons = match platform {
            Platform::Slack | Platform::Discord => " (or the buttons below)",
            _ => "",
        };
        Ok(Outcome {
            approval: Some(number),
            ..Outcome::new(
                "queued",
                format!(
                    "Deployment request #{number}: {what} waits for {} until {}. Approve it with `{}`, or reject it with `{}`{buttons}.",
                    rule.describe(),
                    policy::utc_clock(expires_at),
                    typed(platform, &format!("approve #{number}")),
                    typed(platform, &format!("reject #{number} reason")),
                ),
            )
        })
    }

    /// `approve` and `reject`: a vote on a waiting request; the last
    /// approval needed deploys it.
    pub(super) async fn vote_command(&self, inbound: &Inbound, vote: &VoteRequest<'_>) -> Outcome {
        match self.try_vote(inbound, vote).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    async fn try_vote(
        &self,
        inbound: &Inbound,
        vote: &VoteRequest<'_>,
    ) -> Result<Outcome, Outcome> {
        let now = Timestamp::now();
        let record = self.request_voted_on(inbound, vote.number, now).await?;
        let waiting = read_request(&record)?;
        let voter = &inbound.origin.actor;
        let teams = self
            .teams_of(voter, policy::teams(&waiting.rule.from))
            .await
            .map_err(|error| {
                Outcome::new(
                    "error",
                    format!("Nothing changed: I couldn't check your teams on GitHub: {error}."),
                )
            })?;
        let environment = waiting
            .kept
            .request
            .environment
            .as_deref()
            .unwrap_or_default();
        policy::may_vote(
            &waiting.rule,
            &waiting.kept.origin.actor,
            voter,
            &teams,
            vote.verdict,
            environment,
        )
        .map_err(|why| Outcome::new("refused", format!("Nothing changed: {why}")))?;
        let cast = Vote {
            voter: Vote::key(voter),
            name: voter.login.clone().unwrap_or_else(|| voter.name.clone()),
            verdict: vote.verdict,
            reason: vote.reason.map(str::to_owned),
            at: now,
        };
        let number = record.id;
        let what = &waiting.kept.what;
        match self
            .store
            .vote(number, &cast, now)
            .await
            .map_err(super::deploy::internal)?
        {
            VoteOutcome::Unknown => Err(no_such_request(number)),
            VoteOutcome::Closed(record) => Err(closed(&record, what)),
            VoteOutcome::AlreadyVoted(record) => Err(Outcome::new(
                "answered",
                format!(
                    "You voted on request #{number} already; {}",
                    still_needs(&record)
                ),
            )),
            VoteOutcome::Counted(record) => Ok(Outcome::new(
                "approved",
                format!(
                    "{} approved request #{number} ({what}); {}",
                    cast.name,
                    still_needs(&record)
                ),
            )),
            VoteOutcome::Rejected(_) => {
                let why = vote
                    .reason
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                let verb = match policy::same_person(&waiting.kept.origin.actor, voter) {
                    true => "withdrew",
                    false => "rejected",
                };
                Ok(Outcome::new(
                    "rejected",
                    format!(
                        "{} {verb} request #{number} ({what}){why}. Nothing was deployed.",
                        cast.name
                    ),
                ))
            }
            VoteOutcome::Approved(record) => {
                let approvers = record.approvers();
                self.deploy_approved(waiting.clone(), number, approvers.clone())
                    .await
                    .map_err(super::deploy::internal)?;
                Ok(Outcome::new(
                    "approved",
                    format!(
                        "{} approved request #{number}: approved by {}, so {what} deploys now.",
                        cast.name,
                        approvers.join(" and ")
                    ),
                ))
            }
        }
    }

    /// The request a vote names, or the one waiting in this conversation.
    async fn request_voted_on(
        &self,
        inbound: &Inbound,
        number: Option<u64>,
        now: Timestamp,
    ) -> Result<ApprovalRecord, Outcome> {
        if let Some(number) = number {
            let id = i64::try_from(number).map_err(|_| no_such_request(number))?;
            return self
                .store
                .approval(id)
                .await
                .map_err(super::deploy::internal)?
                .ok_or_else(|| no_such_request(id));
        }
        let here = conversation_key(&inbound.origin);
        let mut waiting = self
            .store
            .waiting_approvals(Some(&here), now)
            .await
            .map_err(super::deploy::internal)?;
        match waiting.len() {
            0 => Err(Outcome::new(
                "invalid",
                "No deployment request waits for approval here; name one with `approve #N`.",
            )),
            1 => Ok(waiting.remove(0)),
            _ => {
                let list = waiting
                    .iter()
                    .filter_map(|record| {
                        read_request(record)
                            .ok()
                            .map(|w| format!("#{} ({})", record.id, w.kept.what))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                Err(Outcome::new(
                    "invalid",
                    format!("Several requests wait here: {list}. Say which: `approve #N`."),
                ))
            }
        }
    }

    /// Deploys an approved request, answered where it was asked, as its
    /// requester asked it.
    async fn deploy_approved(
        &self,
        waiting: AwaitingApproval,
        number: i64,
        approvers: Vec<String>,
    ) -> anyhow::Result<()> {
        let inbound = waiting.kept.inbound("approved", waiting.kept.automatic);
        let granted = Granted {
            request: Some(number),
            sha: waiting.kept.sha.clone(),
            approvers,
            secrets: None,
        };
        let outcome = self
            .deploy_granted(&inbound, &waiting.kept.request, &granted)
            .await;
        self.conclude(&inbound, outcome).await.map(drop)
    }

    /// Ends the requests whose time ran out, each said where it was
    /// asked. Returns how many.
    pub async fn expire_approval_requests(&self) -> anyhow::Result<usize> {
        let now = Timestamp::now();
        let expired = self.store.expire_approvals(now).await?;
        for record in &expired {
            let Ok(waiting) = read_request(record) else {
                continue;
            };
            let inbound = waiting.kept.inbound("expired", true);
            let outcome = Outcome::new(
                "expired",
                format!(
                    "Deployment request #{} ({}) expired with {} of {} approvals. Nothing was deployed; ask again to start over.",
                    record.id,
                    waiting.kept.what,
                    record.approvers().len(),
                    record.required
                ),
            );
            self.conclude(&inbound, outcome).await?;
        }
        Ok(expired.len())
    }
}

fn read_request(record: &ApprovalRecord) -> Result<AwaitingApproval, Outcome> {
    serde_json::from_value(record.body.clone()).map_err(super::deploy::internal)
}

fn no_such_request(number: impl std::fmt::Display) -> Outcome {
    Outcome::new(
        "invalid",
        format!("There is no deployment request #{number}; nothing changed."),
    )
}

/// A vote on a request that is over.
fn closed(record: &ApprovalRecord, what: &str) -> Outcome {
    let number = record.id;
    let detail = match record.state {
        ApprovalState::Approved => format!(
            "Request #{number} ({what}) was approved already, by {}, and sent to deploy; nothing changed.",
            record.approvers().join(" and ")
        ),
        ApprovalState::Rejected => {
            let by = record
                .votes
                .iter()
                .find(|vote| vote.verdict == Verdict::Reject)
                .map(|vote| vote.name.as_str())
                .unwrap_or("someone");
            format!("Request #{number} ({what}) was rejected by {by}; nothing changed.")
        }
        ApprovalState::Expired | ApprovalState::Waiting => format!(
            "Request #{number} ({what}) expired at {} without enough approvals; nothing was deployed. Ask for the deployment again.",
            policy::utc_clock(record.expires_at)
        ),
    };
    Outcome::new("refused", detail)
}

/// `it needs 1 more approval.`
fn still_needs(record: &ApprovalRecord) -> String {
    let have = record.approvers().len();
    let need = usize::try_from(record.required)
        .unwrap_or(usize::MAX)
        .saturating_sub(have);
    match need {
        0 => "it has the approvals it needs.".to_owned(),
        1 => format!("{have} of {} approvals: it needs 1 more.", record.required),
        n => format!(
            "{have} of {} approvals: it needs {n} more.",
            record.required
        ),
    }
}
