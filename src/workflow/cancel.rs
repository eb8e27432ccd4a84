//! Calling off a deployment that nothing has started yet (the Cancel
//! button on its message).

use jiff::Timestamp;

use crate::app::Hoist;
use crate::chat::Reply;
use crate::domain::{DeploymentId, DeploymentState, Origin};
use crate::forge::NewStatus;
use crate::store::{AuditEntry, DeploymentKey};

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
                "Too late to cancel deployment #{} of {}: it is already {}.",
                key.id,
                record.app,
                crate::relay::state_word(state)
            )));
        }
        let status = NewStatus {
            state: DeploymentState::Error,
            description: Some(format!(
                "Cancelled by {} before it started",
                origin.actor.name
            )),
            log_url: None,
            environment_url: None,
        };
        if let Err(error) = self.forge.create_status(&key.repo, key.id, &status).await {
            return Ok(Err(format!("Nothing was cancelled: {error}.")));
        }
        Ok(Ok(format!(
            "Cancelled deployment #{} of {} {} to {}.",
            key.id, record.app, record.git_ref, record.environment
        )))
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
