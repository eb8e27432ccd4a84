//! `hoist hooks create | list | delete`: the operator's side of deploy
//! hooks, on the store alone (they work while `hoist serve` runs).

use jiff::Timestamp;

use super::token::IssuedToken;
use crate::config::Config;
use crate::store::{DeployHook, DeployHooks};

/// The longest environment name a hook takes.
const MAX_ENVIRONMENT: usize = 100;

/// A hook just made, with its token: shown this once.
#[derive(Debug)]
pub struct Created {
    pub hook: DeployHook,
    pub token: IssuedToken,
}

/// Makes a hook that deploys `app` (in hoist.toml) to `environment`.
pub async fn create(
    store: &dyn DeployHooks,
    config: &Config,
    app: &str,
    environment: &str,
    name: &str,
) -> anyhow::Result<Created> {
    check_name(name)?;
    let app = app.to_ascii_lowercase();
    if config.app(&app).is_none() {
        let known: Vec<&str> = config.app_names().collect();
        anyhow::bail!(
            "--app {app}: hoist.toml has no such app (apps: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    let environment = environment.to_ascii_lowercase();
    if environment.is_empty()
        || environment.len() > MAX_ENVIRONMENT
        || environment
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        anyhow::bail!(
            "--env `{environment}`: an environment is 1 to {MAX_ENVIRONMENT} characters without spaces"
        );
    }
    let token = IssuedToken::generate()?;
    let hook = DeployHook {
        id: token.id.clone(),
        name: name.to_owned(),
        app,
        environment,
        secret_sha256: token.secret_sha256(),
        created_at: Timestamp::now(),
        last_used_at: None,
    };
    if !store.create_hook(&hook).await? {
        anyhow::bail!(
            "a deploy hook called `{name}` exists already: pick another name, or delete it first (`hoist hooks delete {name}`)"
        );
    }
    Ok(Created { hook, token })
}

/// What `hoist hooks create` prints: the token, once, and the call that
/// uses it.
pub fn created_text(created: &Created, public_url: &str) -> String {
    let hook = &created.hook;
    let token = created.token.token();
    let url = format!("{}/api/v1/dh", public_url.trim_end_matches('/'));
    format!(
        "Created deploy hook `{name}`: it deploys {app} to {environment}.\n\
         Its token is shown this once (hoist keeps only its hash); store it as a CI secret:\n\
         \n\
         {token}\n\
         \n\
         A CI job deploys with:\n\
         \n\
         curl -X POST -H 'X-Deploy-Hook-Token: {token}' -H 'Content-Type: application/json' --data '{{\"imageTag\":\"1.2.0\"}}' {url}\n\
         \n\
         Add -H 'Idempotency-Key: <the CI run's id>' so a retried job deploys once.\n",
        name = hook.name,
        app = hook.app,
        environment = hook.environment,
    )
}

/// What `hoist hooks list` prints: never a token or its hash.
pub fn list_text(hooks: &[DeployHook]) -> String {
    if hooks.is_empty() {
        return "No deploy hooks: `hoist hooks create --app APP --env ENV --name NAME` makes one.\n"
            .into();
    }
    let when = |at: Timestamp| at.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
    let mut text = format!(
        "{:<24} {:<12} {:<12} {:<21} {}\n",
        "NAME", "APP", "ENVIRONMENT", "CREATED", "LAST USED"
    );
    for hook in hooks {
        text.push_str(&format!(
            "{:<24} {:<12} {:<12} {:<21} {}\n",
            hook.name,
            hook.app,
            hook.environment,
            when(hook.created_at),
            hook.last_used_at.map_or_else(|| "never".to_owned(), when)
        ));
    }
    text
}

/// Deletes the hook called `name`: its token stops working at once.
pub async fn delete(store: &dyn DeployHooks, name: &str) -> anyhow::Result<()> {
    if !store.delete_hook(name).await? {
        anyhow::bail!("no deploy hook is called `{name}` (`hoist hooks list` shows them)");
    }
    Ok(())
}

/// A hook's name: `[a-z0-9][a-z0-9._-]{0,62}`, so it reads the same in
/// the audit log, a URL and a shell.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if !first_ok || !rest_ok || name.len() > 63 {
        anyhow::bail!(
            "--name `{name}`: a hook's name is 1 to 63 of a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        for good in ["ci", "0", "ci-staging", "gh.actions_main", &"a".repeat(63)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-ci",
            ".ci",
            "CI",
            "ci staging",
            "ci/x",
            "é",
            &"a".repeat(64),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
