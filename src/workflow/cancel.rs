//! Calling off a deployment: the Cancel button on its message, and
//! `deploy:cancel app in env`. One that has not started gets `error`; one
//! hoist's runner is running is stopped (its command and everything it
//! started are killed) and gets `failure`; one something else runs is too
//! late to stop from here.

use jiff::Timestamp;

use crate::app::Hoist;
use crate::chat::{Inbound, Reply};
use crate::config::FALLBACK_ENVIRONMENT;
use crate::domain::{DeploymentId, DeploymentState, Origin};
use crate::forge::{DeploymentFilter, NewStatus};
use crate::store::{AuditEntry, DeploymentKey, RunCancel};

use super::Outcome;
use super::target::named_app;

impl Hoist {
    /// Cancels the deployment shown by card `card_key` for the person in
    /// `origin`, if it has not started: it gets an `error` status saying
    /// who cancelled it (GitHub has no cancelled state, and a runner that
    /// looks finds it finished). The answer goes to that person alone;
    /// everyone sees the status on the deployment's message.
    pub async fn cancel(&self, card_key: &str, origin: &Origin) -> anyhow::Result<()> {
        let answer = match self.try_cancel(card_key, origin).await? {
            Ok(answer) | Err(answer) => answer,
        };
        self.store
            .append_audit(&AuditEntry {
                at: Timestamp::now(),
                platform: origin.platform,
                actor: origin.actor.name.clone(),
                command: format!("cancel {card_key}"),
                outcome: "cancel".into(),
                detail: answer.clone(),
            })
            .await?;
        let reply = Reply::text(origin.clone(), answer, true);
        self.reply(&reply, None).await
    }

    /// `Ok(Ok(..))` cancelled, `Ok(Err(..))` refused, both with the answer.
    async fn try_cancel(
        &self,
        card_key: &str,
        origin: &Origin,
    ) -> anyhow::Result<Result<String, String>> {
        let Some(key) = parse_card_key(card_key).filter(|key| key.forge == self.forge.kind())
        else {
            return Ok(Err("That button is not for a deployment I know.".into()));
        };
        let Some(record) = self.store.deployment(&key).await? else {
            return Ok(Err("That button is not for a deployment I know.".into()));
        };
        let what = format!(
            "deployment #{} of {} {} to {}",
            key.id, record.app, record.git_ref, record.environment
        );
        self.cancel_deployment(&key, &what, &origin.actor.name)
            .await
    }

    /// `deploy:cancel [app] [in env]`: stops the run going there (or the
    /// next one queued), else calls off the newest deployment not yet
    /// started.
    pub(super) async fn cancel_command(
        &self,
        inbound: &Inbound,
        app: Option<&str>,
        environment: Option<&str>,
    ) -> Outcome {
        let name = match named_app(inbound, app, "deploy:cancel app in env") {
            Ok(name) => name,
            Err(outcome) => return outcome,
        };
        let app = match self.known_app(name) {
            Ok(app) => app,
            Err(outcome) => return outcome,
        };
        let environment = match environment {
            Some(typed) => self.config.resolve_alias(typed),
            None => app
                .default_environment
                .as_deref()
                .map(|name| self.config.resolve_alias(name))
                .unwrap_or_else(|| FALLBACK_ENVIRONMENT.to_owned()),
        };
        // One held for its integration actions has nothing running yet.
        match self
            .cancel_held(name, &environment, &inbound.origin.actor.name)
            .await
        {
            Ok(Some(cancelled)) => return cancelled,
            Ok(None) => {}
            Err(error) => {
                return Outcome::new("error", format!("Nothing was cancelled: {error:#}."));
            }
        }
        let key = match self.deployment_to_cancel(&app.repo, &environment).await {
            Ok(Some(key)) => key,
            Ok(None) => {
                return Outcome::new(
                    "refused",
                    format!(
                        "Nothing to cancel: no deployment of {name} to {environment} is queued or running."
                    ),
                );
            }
            Err(error) => {
                return Outcome::new("error", format!("Nothing was cancelled: {error:#}."));
            }
        };
        let what = format!("deployment #{} of {name} to {environment}", key.id);
        match self
            .cancel_deployment(&key, &what, &inbound.origin.actor.name)
            .await
        {
            Ok(Ok(answer)) => Outcome::new("cancelled", answer),
            Ok(Err(answer)) => Outcome::new("refused", answer),
            Err(error) => Outcome::new("error", format!("Nothing was cancelled: {error:#}.")),
        }
    }

    /// The deployment `deploy:cancel` means: the runner's job in that
    /// environment, else the newest deployment there with no final status.
    async fn deployment_to_cancel(
        &self,
        repo: &crate::domain::RepoName,
        environment: &str,
    ) -> anyhow::Result<Option<DeploymentKey>> {
        if let Some(runner) = &self.runner
            && let Some(job) = runner.open_run(repo, environment).await?
        {
            return Ok(Some(job.key));
        }
        let newest = DeploymentFilter {
            environment: Some(environment.to_owned()),
            limit: 1,
            ..DeploymentFilter::default()
        };
        let deployments = self.forge.list_deployments(repo, &newest).await?;
        Ok(deployments
            .into_iter()
            .find(|deployment| !deployment.state.is_some_and(DeploymentState::is_final))
            .map(|deployment| DeploymentKey {
                forge: self.forge.kind().to_owned(),
                repo: repo.clone(),
                id: deployment.id,
            }))
    }

    /// Stops or calls off `key` (`what` names it in the answer) for `by`.
    async fn cancel_deployment(
        &self,
        key: &DeploymentKey,
        what: &str,
        by: &str,
    ) -> anyhow::Result<Result<String, String>> {
        if let Some(runner) = &self.runner {
            match runner.cancel(key, by).await? {
                RunCancel::Requested => {
                    return Ok(Ok(format!(
                        "Stopping {what}: its command and everything it started are being killed."
                    )));
                }
                // Not started: said with a status below, as for any other.
                RunCancel::Dequeued | RunCancel::Finished | RunCancel::Unknown => {}
            }
        }
        let statuses = match self.forge.deployment_statuses(&key.repo, key.id).await {
            Ok(statuses) => statuses,
            Err(error) => return Ok(Err(format!("Nothing was cancelled: {error}."))),
        };
        let started = statuses
            .iter()
            .map(|(status, _)| status.state)
            .find(|state| !matches!(state, DeploymentState::Pending | DeploymentState::Queued));
        if let Some(state) = started {
            return Ok(Err(format!(
                "Too late to cancel {what}: it is already {}.",
                crate::relay::state_word(state)
            )));
        }
        let status = NewStatus {
            state: DeploymentState::Error,
            description: Some(format!("Cancelled by {by} before it started")),
            log_url: None,
            environment_url: None,
        };
        if let Err(error) = self.forge.create_status(&key.repo, key.id, &status).await {
            return Ok(Err(format!("Nothing was cancelled: {error}.")));
        }
        Ok(Ok(format!("Cancelled {what}.")))
    }
}

/// `forge/owner/repo/id`, as [`crate::relay::card_key`] writes it.
fn parse_card_key(card_key: &str) -> Option<DeploymentKey> {
    let mut parts = card_key.split('/');
    let (forge, owner, repo, id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(DeploymentKey {
        forge: forge.to_owned(),
        repo: crate::domain::RepoName::new(owner, repo)?,
        id: DeploymentId(id.parse().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_keys_read_back() {
        let key = DeploymentKey {
            forge: "github".into(),
            repo: "acme/api".parse().unwrap(),
            id: DeploymentId(1001),
        };
        assert_eq!(parse_card_key(&crate::relay::card_key(&key)), Some(key));
        for bad in [
            "",
            "github/acme/api",
            "github/acme/api/x",
            "github/acme/api/1/2",
            "github/../api/1",
        ] {
            assert_eq!(parse_card_key(bad), None, "{bad}");
        }
    }
}
