//! `lock`, `unlock` and `locks`: environment locks from chat.
//!
//! The semantics live in [`crate::policy::lock`]; this is the
//! conversation: which app and environment a command means (checked
//! against deploy.yml before anything is claimed), the claim in the store,
//! and the answers. Taking and releasing a lock is said to the whole
//! conversation; `locks` to the asker.

use jiff::{SignedDuration, Timestamp};

use crate::app::Hoist;
use crate::chat::{Inbound, Reply};
use crate::policy::{Lock, LockKind, LockScope, utc_clock};
use crate::store::TakeLock;

use super::Outcome;
use super::target::named_app;

/// A lock command's words, as parsed.
pub(super) struct LockRequest<'a> {
    pub environment: Option<&'a str>,
    pub app: Option<&'a str>,
    pub global: bool,
    pub duration_secs: Option<u64>,
    pub reason: Option<&'a str>,
}

impl Hoist {
    pub(super) async fn lock_command(
        &self,
        inbound: &Inbound,
        request: &LockRequest<'_>,
    ) -> Outcome {
        let scope = match self.lock_scope(inbound, request).await {
            Ok(scope) => scope,
            Err(outcome) => return outcome,
        };
        let now = Timestamp::now();
        let until = request
            .duration_secs
            .and_then(|secs| i64::try_from(secs).ok())
            .map(|secs| now + SignedDuration::from_secs(secs));
        let lock = Lock {
            scope: scope.clone(),
            kind: LockKind::Sticky,
            holder: inbound.origin.actor.clone(),
            reason: request.reason.map(str::to_owned),
            origin: inbound.origin.clone(),
            since: now,
            until,
            deployment: None,
        };
        let taken = match self.store.take_lock(&lock, now).await {
            Ok(taken) => taken,
            Err(error) => {
                return Outcome::new("error", format!("Nothing was locked: {error:#}."));
            }
        };
        let ends = match until {
            Some(until) => format!(" until {}", utc_clock(until)),
            None => String::new(),
        };
        let why = request
            .reason
            .map(|reason| format!(": {reason}"))
            .unwrap_or_default();
        let unlock = unlock_text(&scope);
        match taken {
            TakeLock::Taken => Outcome::new(
                "locked",
                format!(
                    "{} locked {scope}{ends}{why}. Only they can deploy there until `{unlock}`.",
                    inbound.origin.actor.name
                ),
            ),
            TakeLock::Renewed => Outcome::new(
                "locked",
                format!(
                    "{} still holds the lock on {scope}{ends}{why}.",
                    inbound.origin.actor.name
                ),
            ),
            TakeLock::Held(held) => Outcome::new(
                "refused",
                format!("Not locked: {scope} is already {}.", held.describe(now)),
            ),
        }
    }

    pub(super) async fn unlock_command(
        &self,
        inbound: &Inbound,
        environment: Option<&str>,
        app: Option<&str>,
        global: bool,
    ) -> Outcome {
        let request = LockRequest {
            environment,
            app,
            global,
            duration_secs: None,
            reason: None,
        };
        let scope = match self.lock_scope(inbound, &request).await {
            Ok(scope) => scope,
            Err(outcome) => return outcome,
        };
        let now = Timestamp::now();
        match self.store.release_lock(&scope, now).await {
            Ok(Some(released)) => {
                // Auto-deploys that waited for it go now.
                self.waiting_wakeup.notify_one();
                let whose = if released.is_held_by(&inbound.origin.actor) {
                    String::new()
                } else {
                    format!(" (it was {})", released.describe(now))
                };
                Outcome::new(
                    "unlocked",
                    format!("{} unlocked {scope}{whose}.", inbound.origin.actor.name),
                )
            }
            Ok(None) => Outcome::new("answered", format!("{scope} was not locked.")),
            Err(error) => Outcome::new("error", format!("Nothing was unlocked: {error:#}.")),
        }
    }

    /// `locks [app]`: who holds what, why, since when, and where.
    pub(super) async fn list_locks(&self, app: Option<&str>) -> Outcome {
        if let Some(app) = app
            && let Err(outcome) = self.known_app(app)
        {
            return outcome;
        }
        let now = Timestamp::now();
        let locks = match self.store.locks(now).await {
            Ok(locks) => locks,
            Err(error) => {
                return Outcome::new("error", format!("I couldn't read the locks: {error:#}."));
            }
        };
        let shown: Vec<String> = locks
            .iter()
            .filter(|lock| match (&lock.scope, app) {
                (LockScope::Environment { app: locked, .. }, Some(app)) => {
                    locked.eq_ignore_ascii_case(app)
                }
                _ => true,
            })
            .map(|lock| {
                format!(
                    "{}: {}, taken in {}",
                    lock.scope,
                    lock.describe(now),
                    lock.origin.conversation
                )
            })
            .collect();
        let scope = app.map(|app| format!(" of {app}")).unwrap_or_default();
        match shown.as_slice() {
            [] => Outcome::new(
                "answered",
                format!("No locks{scope}: every environment takes deployments."),
            ),
            lines => Outcome::new("answered", format!("Locks{scope}:\n{}", lines.join("\n"))),
        }
    }

    /// The scope a lock or unlock command means: the global one, or an
    /// environment of deploy.yml's (checked, so a typo locks nothing).
    async fn lock_scope(
        &self,
        inbound: &Inbound,
        request: &LockRequest<'_>,
    ) -> Result<LockScope, Outcome> {
        if request.global {
            return Ok(LockScope::Global);
        }
        let app = named_app(inbound, request.app, "lock production for api")?;
        let rules = self.app_rules(app).await?;
        let environment = rules.environment_name(self, request.environment);
        let target = rules.target(&environment)?;
        Ok(LockScope::Environment {
            app: rules.name.clone(),
            environment: target.name.to_ascii_lowercase(),
        })
    }
}

impl Hoist {
    /// Reminds the holders of locks held longer than
    /// `locks.remind_after_secs`, each where the lock was taken (to the
    /// holder alone where the platform can). Returns how many.
    pub async fn remind_long_held_locks(&self) -> anyhow::Result<usize> {
        let after = self.config.locks.remind_after_secs;
        if after == 0 {
            return Ok(0);
        }
        let now = Timestamp::now();
        let held_since = now - SignedDuration::from_secs(i64::try_from(after).unwrap_or(i64::MAX));
        let locks = self.store.locks_to_remind(held_since, now).await?;
        for lock in &locks {
            let text = format!(
                "{}, you still hold the lock on {}: {}. `{}` when you are done, so others can deploy.",
                lock.holder.name,
                lock.scope,
                lock.describe(now),
                unlock_text(&lock.scope)
            );
            let reply = Reply::text(lock.origin.clone(), text, true);
            let dedupe = format!("remind:{}:{}", lock.scope.key(), now.as_second());
            self.reply(&reply, Some(&dedupe)).await?;
        }
        Ok(locks.len())
    }

    /// A pull request closed: the locks taken in its conversation go
    /// (`locks.release_on_close`), said there.
    pub async fn release_locks_of_pull_request(
        &self,
        origin: &crate::domain::Origin,
    ) -> anyhow::Result<()> {
        if !self.config.locks.release_on_close {
            return Ok(());
        }
        let now = Timestamp::now();
        for lock in self.store.locks(now).await? {
            // A deployment's own lock goes with the deployment, not the
            // pull request.
            if lock.kind != LockKind::Sticky
                || lock.origin.platform != origin.platform
                || lock.origin.conversation != origin.conversation
            {
                continue;
            }
            self.store.release_lock(&lock.scope, now).await?;
            let text = format!(
                "The pull request closed, so its lock on {} ({}) was released.",
                lock.scope,
                lock.describe(now)
            );
            let reply = Reply::text(origin.clone(), text, false);
            let dedupe = format!(
                "closed-unlock:{}:{}",
                lock.scope.key(),
                lock.since.as_millisecond()
            );
            self.reply(&reply, Some(&dedupe)).await?;
            self.waiting_wakeup.notify_one();
        }
        Ok(())
    }
}

/// The command that releases `scope`.
fn unlock_text(scope: &LockScope) -> String {
    match scope {
        LockScope::Global => "unlock --global".to_owned(),
        LockScope::Environment { app, environment } => format!("unlock {environment} for {app}"),
    }
}
