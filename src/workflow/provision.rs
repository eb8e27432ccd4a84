//! Integration actions (deploy.yml's `actions`): a deployment the rules
//! let through is held, provisioning, while each action's integration
//! does its pre-deploy work. Each is sent a signed `start` webhook
//! through the outbox and reports back (`report_action`). When every one
//! has succeeded the deployment is created as its requester asked, the
//! rules judged again, with the secrets they handed over kept sealed for
//! hoist's runner. A failure, a timeout or a cancel ends it, and the
//! other integrations are sent `cancel`; removing a transient
//! environment sends `cleanup`.

use jiff::Timestamp;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::actions::event::About;
use crate::actions::report::Answer;
use crate::actions::{Call, Event, Report, Secret};
use crate::app::Hoist;
use crate::chat::Inbound;
use crate::command::DeployRequest;
use crate::domain::{Platform, RepoName, Sha};
use crate::policy::{self, Action};
use crate::store::{
    ActionReport, ActionState, HoldRecord, HoldState, NewHold, ReportOutcome, RunSecrets,
};

use super::Outcome;
use super::deploy::{Asked, Granted, KeptRequest, internal};

/// A held deployment: what the store keeps to create it later as it was
/// asked, and whom to tell.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HeldRequest {
    #[serde(flatten)]
    kept: KeptRequest,
    repo: RepoName,
    git_ref: String,
    /// The environment as rendered.
    environment: String,
    /// Who approved it, for a request that waited for approvals first.
    approvers: Vec<String>,
    /// The actions as deploy.yml had them when it was held.
    actions: Vec<Action>,
}

impl HeldRequest {
    fn read(record: &HoldRecord) -> anyhow::Result<Self> {
        Ok(serde_json::from_value(record.body.clone())?)
    }

    fn action(&self, name: &str) -> Option<&Action> {
        self.actions.iter().find(|action| action.name == name)
    }

    fn about<'a>(&'a self, hold: i64, public_url: &'a str) -> About<'a> {
        About {
            hold,
            app: self.kept.request.app.as_deref().unwrap_or_default(),
            repo: &self.repo,
            environment: &self.environment,
            git_ref: &self.git_ref,
            sha: self.kept.sha.as_str(),
            public_url,
        }
    }

    /// Where its later news is said: where it was asked, to everyone.
    fn inbound(&self, suffix: &str) -> Inbound {
        self.kept.inbound(suffix, true)
    }
}

/// `branch-db and cache-warm`.
fn names<'a>(actions: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = actions.map(|name| format!("`{name}`")).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The AEAD context of one action's sealed secrets.
fn action_context(hold: i64, action: &str) -> Vec<u8> {
    format!("hold:{hold}:{action}").into_bytes()
}

impl Hoist {
    /// Holds a deployment the rules let through until its actions are
    /// done: sends each its `start` webhook, and says what it waits for.
    pub(super) async fn hold_for_actions(
        &self,
        inbound: &Inbound,
        request: &DeployRequest,
        asked: &Asked<'_>,
        what: &str,
        environment: &str,
    ) -> Result<Outcome, Outcome> {
        let actions = asked.target.actions.clone();
        // A secret missing from hoist's environment would fail every
        // webhook and every report: said now, before anything is held.
        if let Some(error) = actions.iter().find_map(|action| action.secret().err()) {
            return Err(Outcome::new("refused", format!("Not deployed: {error}.")));
        }
        let now = Timestamp::now();
        let deadlines = actions
            .iter()
            .map(|action| Ok((action.name.clone(), now.checked_add(action.timeout())?)))
            .collect::<Result<Vec<_>, jiff::Error>>()
            .map_err(internal)?;
        let held = HeldRequest {
            kept: KeptRequest::new(inbound, request, asked, what),
            repo: asked.repo.clone(),
            git_ref: asked.git_ref.to_owned(),
            environment: environment.to_owned(),
            approvers: asked.approved_by.to_vec(),
            actions,
        };
        let hold = NewHold {
            request_key: inbound.request_key.clone(),
            app: asked.app.to_owned(),
            environment: environment.to_owned(),
            created_at: now,
            body: serde_json::to_value(&held).map_err(internal)?,
            actions: deadlines.clone(),
        };
        let id = self.store.hold_deployment(&hold).await.map_err(internal)?;
        for action in &held.actions {
            self.send_action_event(id, &held, action, Event::Start)
                .await
                .map_err(internal)?;
        }
        let until = deadlines
            .iter()
            .map(|(_, deadline)| *deadline)
            .max()
            .unwrap_or(now);
        let app = asked.app;
        Ok(Outcome::new(
            "provisioning",
            format!(
                "Held {what}, waiting for {} (until {} at the latest). It deploys when they report done; `deploy:cancel {app} in {environment}` calls it off.",
                names(held.actions.iter().map(|action| action.name.as_str())),
                policy::utc_clock(until)
            ),
        ))
    }

    /// Queues one webhook for an action, once per hold, action and event.
    async fn send_action_event(
        &self,
        id: i64,
        held: &HeldRequest,
        action: &Action,
        event: Event,
    ) -> anyhow::Result<()> {
        let call = Call::new(
            event,
            action,
            &held.about(id, &self.config.server.public_url),
        );
        let dedupe = format!("action:{id}:{}:{}", action.name, event.as_str());
        self.store
            .enqueue_reply(
                Platform::Integration,
                &Call::conversation(id, &action.name),
                &serde_json::to_value(&call)?,
                Some(&dedupe),
            )
            .await?;
        self.outbox_wakeup.notify_one();
        Ok(())
    }

    /// Sends `event` to each of a hold's actions that `to` picks.
    async fn tell_actions(
        &self,
        record: &HoldRecord,
        held: &HeldRequest,
        event: Event,
        to: impl Fn(ActionState) -> bool,
    ) -> anyhow::Result<()> {
        for state in &record.actions {
            if let Some(action) = held.action(&state.name).filter(|_| to(state.state)) {
                self.send_action_event(record.id, held, action, event)
                    .await?;
            }
        }
        Ok(())
    }

    /// An integration's report on an action (`PATCH
    /// /v1/deployments/{id}/actions/{action}`), authenticated by the
    /// action's secret as a bearer token.
    pub async fn report_action(
        &self,
        id: i64,
        action: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Answer {
        match self.try_report_action(id, action, bearer, body).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    hold = id,
                    action,
                    "cannot record an action's report"
                );
                Answer::Internal
            }
        }
    }

    async fn try_report_action(
        &self,
        id: i64,
        name: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> anyhow::Result<Answer> {
        let Some(record) = self.store.hold(id).await? else {
            return Ok(Answer::NotFound);
        };
        let held = HeldRequest::read(&record)?;
        let Some(action) = held.action(name) else {
            return Ok(Answer::NotFound);
        };
        // The secret as hoist's environment has it now; compared in
        // constant time so a wrong guess tells nothing of the right one.
        let Ok(secret) = action.secret() else {
            return Ok(Answer::Unauthorized);
        };
        let matches = bearer.is_some_and(|bearer| {
            bool::from(bearer.as_bytes().ct_eq(secret.expose_secret().as_bytes()))
        });
        if !matches {
            return Ok(Answer::Unauthorized);
        }
        let report = match Report::parse(body) {
            Ok(report) => report,
            Err(problem) => return Ok(Answer::BadRequest(problem)),
        };
        let stored = match &report {
            Report::Succeeded { secrets } if secrets.is_empty() => {
                ActionReport::Succeeded { sealed: None }
            }
            Report::Succeeded { secrets } => ActionReport::Succeeded {
                sealed: Some(
                    self.seal
                        .seal(&serde_json::to_vec(secrets)?, &action_context(id, name)),
                ),
            },
            Report::Failed { reason } => ActionReport::Failed {
                reason: reason.clone(),
            },
        };
        let what = &held.kept.what;
        Ok(
            match self
                .store
                .report_action(id, name, &stored, Timestamp::now())
                .await?
            {
                ReportOutcome::Unknown => Answer::NotFound,
                ReportOutcome::Repeated(_) => {
                    Answer::Done(format!("`{name}` had reported this already."))
                }
                ReportOutcome::Closed(record) => Answer::Conflict(format!(
                    "deployment {id} is no longer waiting for `{name}` ({}).",
                    match record.state {
                        HoldState::Provisioning => "its time ran out",
                        HoldState::Ready | HoldState::Deployed => "it went ahead",
                        HoldState::Failed => "it failed",
                        HoldState::TimedOut => "it timed out",
                        HoldState::Cancelled => "it was cancelled",
                    }
                )),
                ReportOutcome::Recorded(record) => {
                    let waiting = names(record.pending().map(|action| action.name.as_str()));
                    let news = Outcome::new(
                        "provisioning",
                        format!("`{name}` is done for {what}; still waiting for {waiting}."),
                    );
                    self.conclude(&held.inbound(&format!("reported:{name}")), news)
                        .await?;
                    Answer::Done(format!("Recorded; still waiting for {waiting}."))
                }
                ReportOutcome::Failed(record) => {
                    self.tell_actions(&record, &held, Event::Cancel, |state| {
                        state != ActionState::Failed
                    })
                    .await?;
                    let reason = match &report {
                        Report::Failed { reason } => reason.as_str(),
                        Report::Succeeded { .. } => "no reason given",
                    };
                    let news = Outcome::new(
                        "provision_failed",
                        format!("Not deployed: `{name}` failed for {what}: {reason}."),
                    );
                    self.conclude(&held.inbound("failed"), news).await?;
                    Answer::Done("Recorded; the deployment will not go ahead.".into())
                }
                ReportOutcome::Ready(record) => {
                    self.deploy_provisioned(&record, &held).await?;
                    Answer::Done("Recorded; every action is done, so it deploys now.".into())
                }
            },
        )
    }

    /// Creates a held deployment whose actions all succeeded, as its
    /// requester asked, with the secrets they handed over.
    async fn deploy_provisioned(
        &self,
        record: &HoldRecord,
        held: &HeldRequest,
    ) -> anyhow::Result<()> {
        let mut secrets: Vec<Secret> = Vec::new();
        for action in &record.actions {
            if let Some(sealed) = &action.sealed {
                let plain = self
                    .seal
                    .open(sealed, &action_context(record.id, &action.name))?;
                secrets.extend(serde_json::from_slice::<Vec<Secret>>(&plain)?);
            }
        }
        let granted = Granted {
            request: None,
            sha: held.kept.sha.clone(),
            approvers: held.approvers.clone(),
            secrets: Some(secrets),
        };
        // Deployed as it was asked: typed or automatic.
        let inbound = held.kept.inbound("provisioned", held.kept.automatic);
        let outcome = self
            .deploy_granted(&inbound, &held.kept.request, &granted)
            .await;
        let settled = match outcome.kind {
            "deployed" => HoldState::Deployed,
            _ => HoldState::Failed,
        };
        self.store.settle_hold(record.id, settled).await?;
        self.conclude(&inbound, outcome).await.map(drop)
    }

    /// `deploy:cancel` while a deployment is held: it is called off and
    /// its integrations are told to stop. `None`: nothing is held there.
    pub(super) async fn cancel_held(
        &self,
        app: &str,
        environment: &str,
        by: &str,
    ) -> anyhow::Result<Option<Outcome>> {
        let held = self
            .store
            .provisioning_holds(app, Some(environment))
            .await?;
        for record in held.iter().rev() {
            let Some(ended) = self.store.end_hold(record.id, HoldState::Cancelled).await? else {
                continue;
            };
            let request = HeldRequest::read(&ended)?;
            self.tell_actions(&ended, &request, Event::Cancel, |_| true)
                .await?;
            return Ok(Some(Outcome::new(
                "provision_cancelled",
                format!(
                    "{by} cancelled {} while it waited for {}; nothing was deployed, and its integrations were told to stop.",
                    request.kept.what,
                    names(ended.pending().map(|action| action.name.as_str()))
                ),
            )));
        }
        Ok(None)
    }

    /// Ends the held deployments whose actions ran out of time, each said
    /// where it was asked; the integrations are told to stop. Returns
    /// how many.
    pub async fn expire_held_deployments(&self) -> anyhow::Result<usize> {
        let now = Timestamp::now();
        let expired = self.store.expire_holds(now).await?;
        for record in &expired {
            let held = HeldRequest::read(record)?;
            self.tell_actions(record, &held, Event::Cancel, |_| true)
                .await?;
            let late = record
                .pending()
                .filter(|action| action.deadline <= now)
                .map(|action| action.name.as_str());
            let news = Outcome::new(
                "provision_failed",
                format!(
                    "Not deployed: {} did not report in time for {}; the integrations were told to stop.",
                    names(late),
                    held.kept.what
                ),
            );
            self.conclude(&held.inbound("timed-out"), news).await?;
        }
        Ok(expired.len())
    }

    /// A transient environment was removed: the integrations whose
    /// actions prepared deployments there are sent `cleanup`, once.
    pub(super) async fn clean_up_actions(
        &self,
        app: &str,
        environment: &str,
    ) -> anyhow::Result<()> {
        for record in self.store.take_holds_to_clean(app, environment).await? {
            let held = HeldRequest::read(&record)?;
            self.tell_actions(&record, &held, Event::Cleanup, |_| true)
                .await?;
        }
        Ok(())
    }

    /// Keeps the secrets a deployment's actions handed over for hoist's
    /// runner, sealed and bound to this request, commit and environment.
    pub(super) async fn keep_run_secrets(
        &self,
        inbound: &Inbound,
        repo: &RepoName,
        sha: &Sha,
        environment: &str,
        secrets: &[Secret],
    ) -> Result<(), Outcome> {
        let plain = serde_json::to_vec(secrets).map_err(internal)?;
        let kept = RunSecrets {
            request_key: inbound.request_key.clone(),
            repo: repo.clone(),
            sha: sha.clone(),
            environment: environment.to_owned(),
            sealed: self
                .seal
                .seal(&plain, &crate::actions::run_context(&inbound.request_key)),
        };
        self.store.put_run_secrets(&kept).await.map_err(internal)
    }

    /// Forgets a request's run secrets (its deployment was not created).
    pub(super) async fn forget_run_secrets(&self, request_key: &str) {
        if let Err(error) = self.store.drop_run_secrets(request_key).await {
            tracing::error!(
                error = format!("{error:#}"),
                "cannot forget the secrets of a deployment that was not created"
            );
        }
    }
}
