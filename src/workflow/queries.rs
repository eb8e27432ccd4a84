//! `where can I deploy app` and `deploys app [in env]`: answers that read
//! and change nothing.

use jiff::Timestamp;

use crate::app::Hoist;
use crate::domain::DeploymentState;
use crate::forge::{Deployment, DeploymentFilter};
use crate::policy::ago;

use super::Outcome;
use super::target::list_or_none;

/// How many deployments `deploys` lists.
const RECENT_DEPLOYMENTS: usize = 10;

impl Hoist {
    pub(super) async fn where_can_i_deploy(&self, app: &str) -> Outcome {
        let rules = match self.app_rules(app).await {
            Ok(rules) => rules,
            Err(outcome) => return outcome,
        };
        let now = Timestamp::now();
        let locks = match self.store.locks(now).await {
            Ok(locks) => locks,
            Err(error) => {
                return Outcome::new("error", format!("I couldn't read the locks: {error:#}."));
            }
        };
        // Each target with what stops it now: a lock (who, why), a freeze.
        let names: Vec<String> = rules
            .rules
            .targets()
            .iter()
            .map(|target| {
                let environment = target.name.to_ascii_lowercase();
                let mut notes: Vec<String> = locks
                    .iter()
                    .filter(|lock| lock.scope.covers(&rules.name, &environment))
                    .map(|lock| lock.describe(now))
                    .collect();
                notes.extend(target.freeze.iter().filter_map(|window| {
                    let end = window.ends_after(now)?;
                    Some(format!(
                        "frozen until {}",
                        end.strftime("%a %Y-%m-%d %H:%M %Z")
                    ))
                }));
                match notes.is_empty() {
                    true => target.name.clone(),
                    false => format!("{} ({})", target.name, notes.join("; ")),
                }
            })
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let default = rules.environment_name(self, None);
        Outcome::new(
            "answered",
            format!(
                "{} ({}) can be deployed to: {}. Without `to env` it goes to {default}.",
                rules.name,
                rules.app.repo,
                list_or_none(&names)
            ),
        )
    }

    pub(super) async fn recent_deployments(&self, app: &str, environment: Option<&str>) -> Outcome {
        let app_config = match self.known_app(app) {
            Ok(app_config) => app_config,
            Err(outcome) => return outcome,
        };
        let environment = environment.map(|name| self.config.resolve_alias(name));
        let filter = DeploymentFilter {
            environment: environment.clone(),
            limit: RECENT_DEPLOYMENTS,
            ..DeploymentFilter::default()
        };
        let deployments = match self.forge.list_deployments(&app_config.repo, &filter).await {
            Ok(list) => list,
            Err(error) => {
                return Outcome::new(
                    "error",
                    format!(
                        "I couldn't list the deployments of {}: {error}.",
                        app_config.repo
                    ),
                );
            }
        };
        let scope = environment
            .map(|env| format!(" in {env}"))
            .unwrap_or_default();
        if deployments.is_empty() {
            return Outcome::new(
                "answered",
                format!("No deployments of {}{scope} yet.", app.to_ascii_lowercase()),
            );
        }
        let now = Timestamp::now();
        let lines: Vec<String> = deployments
            .iter()
            .map(|d| {
                let line = format!(
                    "#{} {} {} ({}) to {} by {}, {}",
                    d.id,
                    d.state.map_or("created", |s| s.as_str()),
                    d.git_ref,
                    d.sha.short(),
                    d.environment,
                    d.creator,
                    ago(now, d.created_at)
                );
                match timing(d, now) {
                    Some(timing) => format!("{line}, {timing}"),
                    None => line,
                }
            })
            .collect();
        Outcome::new(
            "answered",
            format!(
                "Recent deployments of {}{scope}:\n{}",
                app.to_ascii_lowercase(),
                lines.join("\n")
            ),
        )
    }
}

/// How long a deployment took, or has taken so far: `took 2m 10s` once it
/// ended (created to its final status), `running 40s so far` while in
/// progress and `waiting 40s` before that (created to now). `None` for
/// `inactive`, whose status says when it was superseded, not how long it
/// ran, and for an end the forge gave no time for.
fn timing(deployment: &Deployment, now: Timestamp) -> Option<String> {
    let since = |until: Timestamp| duration(deployment.created_at, until);
    match deployment.state {
        Some(DeploymentState::Inactive) => None,
        Some(DeploymentState::Success | DeploymentState::Failure | DeploymentState::Error) => {
            deployment.status_at.map(|at| format!("took {}", since(at)))
        }
        Some(DeploymentState::InProgress) => Some(format!("running {} so far", since(now))),
        Some(DeploymentState::Pending | DeploymentState::Queued) | None => {
            Some(format!("waiting {}", since(now)))
        }
    }
}

/// The time from `from` to `until` in at most two units: `45s`, `2m 10s`,
/// `1h 5m`, `2d 3h` (a zero second unit left out: `2m`). Never negative:
/// clocks that disagree give `0s`.
fn duration(from: Timestamp, until: Timestamp) -> String {
    let secs = until.duration_since(from).as_secs().max(0);
    let (big, big_unit, small, small_unit) = match secs {
        0..60 => return format!("{secs}s"),
        60..3600 => (secs / 60, "m", secs % 60, "s"),
        3600..86_400 => (secs / 3600, "h", secs % 3600 / 60, "m"),
        _ => (secs / 86_400, "d", secs % 86_400 / 3600, "h"),
    };
    match small {
        0 => format!("{big}{big_unit}"),
        _ => format!("{big}{big_unit} {small}{small_unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeploymentId, Sha};

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn durations_read_in_at_most_two_units() {
        let d = |secs: i64| duration(at(0), at(secs));
        assert_eq!(d(0), "0s");
        assert_eq!(d(45), "45s");
        assert_eq!(d(60), "1m");
        assert_eq!(d(130), "2m 10s");
        assert_eq!(d(3599), "59m 59s");
        assert_eq!(d(3600 + 5 * 60 + 59), "1h 5m");
        assert_eq!(d(2 * 3600), "2h");
        assert_eq!(d(2 * 86_400 + 3 * 3600 + 17), "2d 3h");
        assert_eq!(d(-30), "0s");
    }

    #[test]
    fn each_state_tells_how_long_it_took_or_has_taken() {
        let deployment = |state: Option<DeploymentState>, status_at: Option<i64>| Deployment {
            id: DeploymentId(1),
            git_ref: "main".into(),
            sha: Sha::new(&"a".repeat(40)).unwrap(),
            task: "deploy".into(),
            environment: "staging".into(),
            description: None,
            creator: "ada".into(),
            created_at: at(0),
            payload: serde_json::Value::Null,
            state,
            status_at: status_at.map(at),
            transient_environment: false,
            production_environment: false,
        };
        let now = at(1000);
        let timing = |state, status_at| timing(&deployment(state, status_at), now);
        use DeploymentState::*;
        assert_eq!(timing(Some(Success), Some(130)).unwrap(), "took 2m 10s");
        assert_eq!(timing(Some(Failure), Some(5)).unwrap(), "took 5s");
        assert_eq!(timing(Some(Error), Some(0)).unwrap(), "took 0s");
        assert_eq!(timing(Some(Success), None), None);
        assert_eq!(timing(Some(Inactive), Some(900)), None);
        assert_eq!(
            timing(Some(InProgress), Some(10)).unwrap(),
            "running 16m 40s so far"
        );
        assert_eq!(timing(Some(Queued), Some(10)).unwrap(), "waiting 16m 40s");
        assert_eq!(timing(Some(Pending), None).unwrap(), "waiting 16m 40s");
        assert_eq!(timing(None, None).unwrap(), "waiting 16m 40s");
    }
}
