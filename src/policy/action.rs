//! A target's `actions`: external integrations that do work before a
//! deployment (branch a database, check readiness) and hold it until they
//! report that work done, after Vercel's deployment integration actions.
//!
//! Here are what an action is and the serde seeds that read `actions:`
//! from deploy.yml. As everywhere in `load.rs`, each value is checked
//! inside the visitor that reads it, so a diagnostic carries the line and
//! column of the key or string at fault.
//!
//! A repository's deploy.yml is written by whoever can push to it, so it
//! never holds a secret itself: `secret: env:NAME` names a variable of
//! hoist's environment, and never one of hoist's own (`HOIST_*`).

use std::collections::HashSet;
use std::fmt;

use jiff::SignedDuration;
use secrecy::SecretString;
use serde::de::{self, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// How long an action may hold a deployment when deploy.yml says not.
const DEFAULT_TIMEOUT: SignedDuration = SignedDuration::from_mins(10);

/// The longest `timeout` deploy.yml may give: a deployment held for
/// longer than a day is surely forgotten.
const MAX_TIMEOUT_SECS: u64 = 24 * 3600;

/// An action's name is part of hoist's URL, so it is kept to DNS-label
/// characters: `[a-z0-9][a-z0-9-]{0,62}`.
const MAX_NAME_LEN: usize = 63;

const MAX_RESOURCE_CHARS: usize = 100;

/// Where hoist's own configuration and secrets live
/// (`HOIST_<SECTION>__<KEY>`): an action's secret may not point there, or
/// a deploy.yml could make hoist sign with, or accept, its GitHub token.
const RESERVED_ENV_PREFIX: &str = "HOIST_";

/// One entry of a target's `actions`. Kept with a held deployment, so
/// it is serialized as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// Unique within its target; named in webhooks and in hoist's URL.
    pub name: String,
    /// Where hoist sends the action's webhooks (http:// or https://).
    pub url: String,
    /// The variable of hoist's environment holding the shared secret,
    /// without `env:`.
    pub secret_env: String,
    /// How long the action may hold the deployment.
    pub timeout_secs: u64,
    /// The integration's resource id; `None`: `<app>-<environment>`.
    pub resource: Option<String>,
}

impl Action {
    pub fn timeout(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::try_from(self.timeout_secs).unwrap_or(i64::MAX))
    }

    /// The resource the webhooks name: deploy.yml's `resource`, else
    /// `<app>-<environment>` (`api-staging`).
    pub fn resource_id(&self, app: &str, environment: &str) -> String {
        self.resource
            .clone()
            .unwrap_or_else(|| format!("{app}-{environment}"))
    }

    /// The shared secret, read from hoist's environment now (not at load:
    /// deploy.yml is read where the variable may not be set, as by `hoist
    /// check`). An empty value counts as unset: an empty HMAC key signs
    /// nothing worth checking.
    pub fn secret(&self) -> Result<SecretString, String> {
        match std::env::var(&self.secret_env) {
            Ok(value) if !value.is_empty() => Ok(SecretString::from(value)),
            _ => Err(format!(
                "the secret of action `{}` is not set: hoist's environment has no {}",
                self.name, self.secret_env
            )),
        }
    }
}

/// `actions:`, a list of actions whose names are unique.
pub(super) struct ActionsSeed;

impl<'de> DeserializeSeed<'de> for ActionsSeed {
    type Value = Vec<Action>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<Action>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ActionsSeed {
    type Value = Vec<Action>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of actions (`- { name: branch-db, url: https://…, secret: env:NAME }`)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Action>, A::Error> {
        let mut names = HashSet::new();
        let mut actions = Vec::new();
        while let Some(action) = seq.next_element_seed(ActionSeed { names: &mut names })? {
            actions.push(action);
        }
        Ok(actions)
    }
}

/// The keys an action may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Name,
    Url,
    Secret,
    Timeout,
    Resource,
}

const FIELDS: [(&str, Field); 5] = [
    ("name", Field::Name),
    ("url", Field::Url),
    ("secret", Field::Secret),
    ("timeout", Field::Timeout),
    ("resource", Field::Resource),
];

/// One action; `names` are those of the target's actions before it.
struct ActionSeed<'a> {
    names: &'a mut HashSet<String>,
}

impl<'de> DeserializeSeed<'de> for ActionSeed<'_> {
    type Value = Action;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Action, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ActionSeed<'_> {
    type Value = Action;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an action: a mapping with `name`, `url` and `secret`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Action, A::Error> {
        let (mut name, mut url, mut secret_env, mut timeout_secs, mut resource) =
            (None, None, None, None, None);
        let mut seen = HashSet::new();
        while let Some(field) = map.next_key_seed(checked("an action's key", |key| {
            field_named(key, &mut seen)
        }))? {
            match field {
                Field::Name => {
                    let names = &mut *self.names;
                    name = Some(map.next_value_seed(checked("an action name", |text| {
                        new_name(text, names)
                    }))?);
                }
                Field::Url => url = Some(map.next_value_seed(checked("a URL", webhook_url))?),
                Field::Secret => {
                    secret_env = Some(map.next_value_seed(checked("`env:NAME`", secret_env_name))?);
                }
                Field::Timeout => {
                    timeout_secs = Some(map.next_value_seed(checked("a duration", timeout))?);
                }
                Field::Resource => {
                    resource = Some(map.next_value_seed(checked("a resource id", resource_id))?);
                }
            }
        }
        let missing = |message: &str| A::Error::custom(message);
        Ok(Action {
            name: name.ok_or_else(|| missing("an action needs `name`"))?,
            url: url.ok_or_else(|| missing("an action needs `url`: where hoist sends its webhooks"))?,
            secret_env: secret_env.ok_or_else(|| {
                missing("an action needs `secret`: `env:NAME`, the variable of hoist's environment holding the shared secret")
            })?,
            timeout_secs: timeout_secs.unwrap_or(DEFAULT_TIMEOUT.as_secs().unsigned_abs()),
            resource,
        })
    }
}

/// A string value handed to `check` inside its visitor, so the parser
/// stamps a refusal with the string's position.
struct Checked<F> {
    expecting: &'static str,
    check: F,
}

fn checked<T, F: FnOnce(&str) -> Result<T, String>>(
    expecting: &'static str,
    check: F,
) -> Checked<F> {
    Checked { expecting, check }
}

impl<'de, T, F: FnOnce(&str) -> Result<T, String>> DeserializeSeed<'de> for Checked<F> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for Checked<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        (self.check)(text).map_err(E::custom)
    }
}

/// A known key, once.
fn field_named(key: &str, seen: &mut HashSet<Field>) -> Result<Field, String> {
    let Some(&(_, field)) = FIELDS.iter().find(|(name, _)| *name == key) else {
        return Err(format!(
            "unknown key `{key}` in an action (name, url, secret, timeout, resource)"
        ));
    };
    if !seen.insert(field) {
        return Err(format!("`{key}` is set twice"));
    }
    Ok(field)
}

/// `[a-z0-9][a-z0-9-]{0,62}`, not among `names` (which it joins).
fn new_name(name: &str, names: &mut HashSet<String>) -> Result<String, String> {
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let valid = starts_well
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(format!(
            "action name `{name}` must be lowercase letters, digits and `-`, starting with a letter or digit, at most {MAX_NAME_LEN} characters (it is part of hoist's URL)"
        ));
    }
    if !names.insert(name.to_owned()) {
        return Err(format!("action `{name}` is defined twice in this target"));
    }
    Ok(name.to_owned())
}

/// An absolute http:// or https:// URL with a host. The URL is not
/// echoed when it carries a user or password: that part is a secret.
fn webhook_url(url: &str) -> Result<String, String> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Err(format!(
            "`{url}` must be an absolute `http://` or `https://` URL"
        ));
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{url}` must not contain spaces or control characters"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(
            "the URL must not carry a user or password (the shared secret goes in `secret`)".into(),
        );
    }
    if !has_host(authority) {
        return Err(format!(
            "`{url}` has no valid host (write it as `https://db.example.com/hoist`)"
        ));
    }
    Ok(url.to_owned())
}

/// Whether `authority` (`host`, `host:port`, `[::1]:port`) names a host,
/// with a valid port if it has one.
fn has_host(authority: &str) -> bool {
    // The last `:` starts a port unless it is inside an IPv6 address.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let port_ok = port.is_none_or(|port| port.parse::<u16>().is_ok_and(|port| port > 0));
    let host_ok = match host.strip_prefix('[') {
        Some(ipv6) => ipv6
            .strip_suffix(']')
            .is_some_and(|ipv6| ipv6.parse::<std::net::Ipv6Addr>().is_ok()),
        None => {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '.')
        }
    };
    port_ok && host_ok
}

/// `env:NAME` with NAME = `[A-Z_][A-Z0-9_]*`, not hoist's own. Nothing
/// else is echoed: a value that is not `env:NAME` may be the secret itself.
fn secret_env_name(text: &str) -> Result<String, String> {
    let Some(name) = text.strip_prefix("env:") else {
        return Err("must be `env:NAME`: a secret must not be written in the repository".into());
    };
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_');
    let valid = starts_well
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(
            "after `env:` comes the name of a variable: capital letters, digits and `_`, not starting with a digit"
                .into(),
        );
    }
    if name.starts_with(RESERVED_ENV_PREFIX) {
        return Err(format!(
            "`{name}` is hoist's own: variables starting with {RESERVED_ENV_PREFIX} hold hoist's configuration and secrets, which deploy.yml may not point at"
        ));
    }
    Ok(name.to_owned())
}

/// A duration as `approvals.expire_after` takes it, at most a day.
fn timeout(text: &str) -> Result<u64, String> {
    let secs = super::load::duration_secs(text)?;
    if secs > MAX_TIMEOUT_SECS {
        return Err(format!(
            "`{text}` is too long: an action may hold a deployment for 24h at most"
        ));
    }
    Ok(secs)
}

/// 1 to 100 printable characters.
fn resource_id(text: &str) -> Result<String, String> {
    let count = text.chars().count();
    if count == 0 || count > MAX_RESOURCE_CHARS || text.chars().any(char::is_control) {
        return Err(format!(
            "a resource id must be 1 to {MAX_RESOURCE_CHARS} printable characters"
        ));
    }
    Ok(text.to_owned())
}
