//! Reading deploy.yml into the typed model.
//!
//! The YAML is read with serde_yaml_ng (a maintained fork of the archived
//! serde_yaml with the same API). Every check that can fail runs inside a
//! serde visitor for the value it checks, so the parser stamps the error
//! with that value's line and column: an unknown key points at the key, a
//! bad template at its string.

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};

use super::action::ActionsSeed;
use super::approval::{self, Approvals};
use super::freeze::{self, FreezeWindow, Moment};
use super::model::{AutoDeployOn, DeployConfig, Outdated, Payload, Target};
use super::template::Template;
use crate::domain::Permission;
use crate::suggest;

/// The settings a target may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Environment,
    Description,
    Task,
    Payload,
    AutoMerge,
    RequiredContexts,
    ProductionEnvironment,
    TransientEnvironment,
    AutoDeployOn,
    AllowedUsers,
    Freeze,
    FreezeOverride,
    After,
    DeploymentLock,
    Outdated,
    DefaultBranchRollback,
    MinPermission,
    Approvals,
    ForceSkipsChecks,
    Actions,
}

const TARGET_KEYS: [(&str, Key); 20] = [
    ("environment", Key::Environment),
    ("description", Key::Description),
    ("task", Key::Task),
    ("payload", Key::Payload),
    ("auto_merge", Key::AutoMerge),
    ("required_contexts", Key::RequiredContexts),
    ("production_environment", Key::ProductionEnvironment),
    ("transient_environment", Key::TransientEnvironment),
    ("auto_deploy_on", Key::AutoDeployOn),
    ("allowed_users", Key::AllowedUsers),
    ("freeze", Key::Freeze),
    ("freeze_override", Key::FreezeOverride),
    ("after", Key::After),
    ("deployment_lock", Key::DeploymentLock),
    ("outdated", Key::Outdated),
    ("default_branch_rollback", Key::DefaultBranchRollback),
    ("min_permission", Key::MinPermission),
    ("approvals", Key::Approvals),
    ("force_skips_checks", Key::ForceSkipsChecks),
    ("actions", Key::Actions),
];

fn key_names() -> impl Iterator<Item = &'static str> {
    TARGET_KEYS.iter().map(|(name, _)| *name)
}

/// A `DeserializeSeed` that reads a string and hands it to the type's
/// `Visitor::visit_str`, where the check runs (and the parser stamps any
/// error with the string's position).
macro_rules! str_seed {
    ($seed:ty => $value:ty) => {
        impl<'de> DeserializeSeed<'de> for $seed {
            type Value = $value;

            fn deserialize<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<$value, D::Error> {
                deserializer.deserialize_str(self)
            }
        }
    };
}

/// The whole document: a mapping of target names to targets.
pub(super) struct ConfigSeed;

impl<'de> DeserializeSeed<'de> for ConfigSeed {
    type Value = DeployConfig;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<DeployConfig, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ConfigSeed {
    type Value = DeployConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of target names to targets (`staging:`, `production:`)")
    }

    fn visit_unit<E: de::Error>(self) -> Result<DeployConfig, E> {
        Err(E::custom("the file defines no targets"))
    }

    /// A file of nothing but comments.
    fn visit_none<E: de::Error>(self) -> Result<DeployConfig, E> {
        Err(E::custom("the file defines no targets"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DeployConfig, A::Error> {
        let mut targets: Vec<Target> = Vec::new();
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key_seed(TargetName { seen: &mut seen })? {
            targets.push(map.next_value_seed(TargetSeed { name })?);
        }
        if targets.is_empty() {
            return Err(A::Error::custom("the file defines no targets"));
        }
        check_order(&targets).map_err(A::Error::custom)?;
        Ok(DeployConfig { targets })
    }
}

/// A target's name: a non-empty string, unique without case.
struct TargetName<'a> {
    seen: &'a mut HashSet<String>,
}

str_seed!(TargetName<'_> => String);

impl Visitor<'_> for TargetName<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a target name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<String, E> {
        let name = name.trim();
        if name.is_empty() {
            return Err(E::custom("a target name may not be empty"));
        }
        if name.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(E::custom(format!(
                "target name `{name}` may not contain spaces or `/` (it is typed in commands)"
            )));
        }
        if !self.seen.insert(name.to_lowercase()) {
            return Err(E::custom(format!("target `{name}` is defined twice")));
        }
        Ok(name.to_owned())
    }
}

struct TargetSeed {
    name: String,
}

impl<'de> DeserializeSeed<'de> for TargetSeed {
    type Value = Target;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Target, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl TargetSeed {
    fn defaults(self) -> Target {
        Target {
            environment: Template::literal(&self.name),
            name: self.name,
            description: None,
            task: "deploy".into(),
            payload: Payload::Map(Vec::new()),
            auto_merge: false,
            required_contexts: None,
            production_environment: None,
            transient_environment: false,
            auto_deploy_on: None,
            allowed_users: None,
            freeze: Vec::new(),
            freeze_override: Vec::new(),
            after: Vec::new(),
            deployment_lock: false,
            outdated: Outdated::Allow,
            default_branch_rollback: false,
            min_permission: None,
            approvals: None,
            force_skips_checks: None,
            actions: Vec::new(),
        }
    }
}

impl<'de> Visitor<'de> for TargetSeed {
    type Value = Target;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the settings of target `{}` as a mapping", self.name)
    }

    /// `staging:` with nothing after it: every default.
    fn visit_unit<E: de::Error>(self) -> Result<Target, E> {
        Ok(self.defaults())
    }

    fn visit_none<E: de::Error>(self) -> Result<Target, E> {
        Ok(self.defaults())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Target, A::Error> {
        let mut target = self.defaults();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key_seed(TargetKey { seen: &mut seen })? {
            match key {
                Key::Environment => target.environment = map.next_value_seed(TemplateSeed)?,
                Key::Description => target.description = Some(map.next_value_seed(TemplateSeed)?),
                Key::Task => target.task = map.next_value_seed(TaskSeed)?,
                Key::Payload => target.payload = map.next_value_seed(PayloadSeed { top: true })?,
                Key::AutoMerge => target.auto_merge = map.next_value()?,
                Key::RequiredContexts => target.required_contexts = Some(map.next_value()?),
                Key::ProductionEnvironment => {
                    target.production_environment = Some(map.next_value()?);
                }
                Key::TransientEnvironment => target.transient_environment = map.next_value()?,
                Key::AutoDeployOn => {
                    target.auto_deploy_on = Some(map.next_value_seed(AutoDeploySeed)?);
                }
                Key::AllowedUsers => target.allowed_users = Some(map.next_value_seed(LoginsSeed)?),
                Key::Freeze => target.freeze = map.next_value_seed(FreezeListSeed)?,
                Key::FreezeOverride => target.freeze_override = map.next_value_seed(LoginsSeed)?,
                Key::After => target.after = map.next_value()?,
                Key::DeploymentLock => target.deployment_lock = map.next_value()?,
                Key::Outdated => target.outdated = map.next_value_seed(OutdatedSeed)?,
                Key::DefaultBranchRollback => target.default_branch_rollback = map.next_value()?,
                Key::MinPermission => {
                    target.min_permission = Some(map.next_value_seed(PermissionSeed)?);
                }
                Key::Approvals => target.approvals = Some(map.next_value_seed(ApprovalsSeed)?),
                Key::ForceSkipsChecks => target.force_skips_checks = Some(map.next_value()?),
                Key::Actions => target.actions = map.next_value_seed(ActionsSeed)?,
            }
        }
        Ok(target)
    }
}

/// A key inside a target: known, once.
struct TargetKey<'a> {
    seen: &'a mut HashSet<Key>,
}

str_seed!(TargetKey<'_> => Key);

impl Visitor<'_> for TargetKey<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a target setting")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        let Some(&(name, known)) = TARGET_KEYS.iter().find(|(name, _)| *name == key) else {
            if key == "deployments" {
                return Err(E::custom(
                    "the legacy `deployments` list is not supported: put its keys directly under the target",
                ));
            }
            let hint = suggest::nearest(key, key_names())
                .map(|near| format!("did you mean `{near}`?"))
                .unwrap_or_else(|| {
                    format!("known keys: {}", key_names().collect::<Vec<_>>().join(", "))
                });
            return Err(E::custom(format!("unknown key `{key}` ({hint})")));
        };
        if !self.seen.insert(known) {
            return Err(E::custom(format!("`{name}` is set twice")));
        }
        Ok(known)
    }
}

struct TemplateSeed;

str_seed!(TemplateSeed => Template);

impl Visitor<'_> for TemplateSeed {
    type Value = Template;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Template, E> {
        Template::parse(text).map_err(E::custom)
    }
}

struct TaskSeed;

str_seed!(TaskSeed => String);

impl Visitor<'_> for TaskSeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a task name such as `deploy`")
    }

    fn visit_str<E: de::Error>(self, task: &str) -> Result<String, E> {
        let valid = !task.is_empty()
            && task
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:.".contains(c));
        if valid {
            Ok(task.to_owned())
        } else {
            Err(E::custom(format!(
                "task `{task}` must be letters, digits, `-`, `_`, `:` or `.` (for example `deploy` or `deploy:migrations`)"
            )))
        }
    }
}

struct AutoDeploySeed;

str_seed!(AutoDeploySeed => AutoDeployOn);

impl Visitor<'_> for AutoDeploySeed {
    type Value = AutoDeployOn;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`pr` or a ref such as `refs/heads/main`")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<AutoDeployOn, E> {
        if value == "pr" {
            return Ok(AutoDeployOn::PullRequest);
        }
        let star_inside =
            value.trim_end_matches('*').contains('*') || value.matches('*').count() > 1;
        if !value.starts_with("refs/") || star_inside {
            return Err(E::custom(format!(
                "`{value}` must be `pr` or a full ref (`refs/heads/main`), optionally ending in `*` (`refs/tags/*`)"
            )));
        }
        Ok(AutoDeployOn::Ref(value.to_owned()))
    }
}

/// A `payload` value; at the top it must be a mapping (asked of the
/// parser with `deserialize_map`, which refuses anything else).
struct PayloadSeed {
    top: bool,
}

impl<'de> DeserializeSeed<'de> for PayloadSeed {
    type Value = Payload;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Payload, D::Error> {
        if self.top {
            deserializer.deserialize_map(self)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for PayloadSeed {
    type Value = Payload;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.top {
            f.write_str("a mapping of keys to values")
        } else {
            f.write_str("a JSON-like value")
        }
    }

    /// `payload:` with nothing after it is an empty mapping.
    fn visit_unit<E: de::Error>(self) -> Result<Payload, E> {
        Ok(if self.top {
            Payload::Map(Vec::new())
        } else {
            Payload::Null
        })
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Payload, E> {
        Ok(Payload::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Payload, E> {
        Ok(Payload::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Payload, E> {
        Ok(Payload::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Payload, E> {
        let number = serde_json::Number::from_f64(n)
            .ok_or_else(|| E::custom(format!("{n} cannot be sent as JSON")))?;
        Ok(Payload::Number(number))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Payload, E> {
        let template = Template::parse(text).map_err(E::custom)?;
        Ok(Payload::String(template))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(PayloadSeed { top: false })? {
            items.push(item);
        }
        Ok(Payload::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
        let mut entries: Vec<(String, Payload)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(seen, _)| *seen == key) {
                return Err(A::Error::custom(format!(
                    "payload key `{key}` is set twice"
                )));
            }
            let value = map.next_value_seed(PayloadSeed { top: false })?;
            entries.push((key, value));
        }
        Ok(Payload::Map(entries))
    }
}

/// A list of GitHub logins.
struct LoginsSeed;

impl<'de> DeserializeSeed<'de> for LoginsSeed {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LoginsSeed {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of GitHub logins and teams (`[octocat, acme/sre]`)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut logins = Vec::new();
        while let Some(login) = seq.next_element_seed(LoginSeed)? {
            logins.push(login);
        }
        Ok(logins)
    }
}

struct LoginSeed;

str_seed!(LoginSeed => String);

impl Visitor<'_> for LoginSeed {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a GitHub login or a team (`org/team-slug`)")
    }

    fn visit_str<E: de::Error>(self, entry: &str) -> Result<String, E> {
        // GitHub's rule: letters, digits and single hyphens, 39 at most.
        let is_login = |login: &str| {
            !login.is_empty()
                && login.len() <= 39
                && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !login.starts_with('-')
        };
        // A team's slug: GitHub makes it of letters, digits, `-` and `_`.
        let is_slug = |slug: &str| {
            !slug.is_empty()
                && slug.len() <= 100
                && slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        let valid = match entry.split_once('/') {
            Some((org, slug)) => is_login(org) && is_slug(slug),
            None => is_login(entry),
        };
        if valid {
            Ok(entry.to_owned())
        } else {
            Err(E::custom(format!(
                "`{entry}` is not a GitHub login or a team (`org/team-slug`)"
            )))
        }
    }
}

/// `freeze:`, a list of windows.
struct FreezeListSeed;

impl<'de> DeserializeSeed<'de> for FreezeListSeed {
    type Value = Vec<FreezeWindow>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FreezeListSeed {
    type Value = Vec<FreezeWindow>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of windows (`- { from: \"Fri 16:00\", to: \"Mon 08:00\", timezone: Europe/Berlin }`)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut windows = Vec::new();
        while let Some(window) = seq.next_element_seed(FreezeWindowSeed)? {
            windows.push(window);
        }
        Ok(windows)
    }
}

/// One window: `from`, `to`, `timezone` (all required) and `reason`.
struct FreezeWindowSeed;

impl<'de> DeserializeSeed<'de> for FreezeWindowSeed {
    type Value = FreezeWindow;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<FreezeWindow, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FreezeWindowSeed {
    type Value = FreezeWindow;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a window with `from`, `to` and `timezone`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FreezeWindow, A::Error> {
        let (mut from, mut to, mut zone, mut reason) = (None, None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "from" if from.is_none() => from = Some(map.next_value_seed(MomentSeed)?),
                "to" if to.is_none() => to = Some(map.next_value_seed(MomentSeed)?),
                "timezone" if zone.is_none() => zone = Some(map.next_value_seed(TimeZoneSeed)?),
                "reason" if reason.is_none() => reason = Some(map.next_value::<String>()?),
                "from" | "to" | "timezone" | "reason" => {
                    return Err(A::Error::custom(format!("`{key}` is set twice")));
                }
                other => {
                    return Err(A::Error::custom(format!(
                        "unknown key `{other}` in a freeze window (from, to, timezone, reason)"
                    )));
                }
            }
        }
        let missing = |name: &str| A::Error::custom(format!("a freeze window needs `{name}`"));
        let (from, to) = (
            from.ok_or_else(|| missing("from"))?,
            to.ok_or_else(|| missing("to"))?,
        );
        let (timezone, timezone_name) = zone.ok_or_else(|| missing("timezone"))?;
        Ok(FreezeWindow {
            span: freeze::span(from, to).map_err(A::Error::custom)?,
            timezone,
            timezone_name,
            reason,
        })
    }
}

struct MomentSeed;

str_seed!(MomentSeed => Moment);

impl Visitor<'_> for MomentSeed {
    type Value = Moment;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a day and time (`Fri 16:00`) or a date (`2026-12-24`)")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Moment, E> {
        Moment::parse(text).map_err(E::custom)
    }
}

struct TimeZoneSeed;

str_seed!(TimeZoneSeed => (jiff::tz::TimeZone, String));

impl Visitor<'_> for TimeZoneSeed {
    type Value = (jiff::tz::TimeZone, String);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a time zone such as `Europe/Berlin`")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        jiff::tz::TimeZone::get(name)
            .map(|zone| (zone, name.to_owned()))
            .map_err(|_| {
                E::custom(format!(
                    "unknown time zone `{name}` (use an IANA name such as `Europe/Berlin` or `UTC`)"
                ))
            })
    }
}

/// Every `after` names another target of the file.
fn check_order(targets: &[Target]) -> Result<(), String> {
    let names: Vec<&str> = targets.iter().map(|target| target.name.as_str()).collect();
    for target in targets {
        for before in &target.after {
            if before.eq_ignore_ascii_case(&target.name) {
                return Err(format!(
                    "{}.after: a target cannot come after itself",
                    target.name
                ));
            }
            if !names.iter().any(|name| name.eq_ignore_ascii_case(before)) {
                let hint = suggest::nearest(before, names.iter().copied())
                    .map(|near| format!(" (did you mean `{near}`?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "{}.after: `{before}` is not a target of this file{hint}",
                    target.name
                ));
            }
        }
    }
    Ok(())
}

struct OutdatedSeed;

str_seed!(OutdatedSeed => Outdated);

impl Visitor<'_> for OutdatedSeed {
    type Value = Outdated;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`allow`, `warn` or `refuse`")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Outdated, E> {
        match value {
            "allow" => Ok(Outdated::Allow),
            "warn" => Ok(Outdated::Warn),
            "refuse" => Ok(Outdated::Refuse),
            other => Err(E::custom(format!(
                "`{other}` is not `allow`, `warn` or `refuse`"
            ))),
        }
    }
}

struct PermissionSeed;

str_seed!(PermissionSeed => Permission);

impl Visitor<'_> for PermissionSeed {
    type Value = Permission;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`read`, `write` or `admin`")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Permission, E> {
        match value {
            "read" => Ok(Permission::Read),
            "write" | "maintain" => Ok(Permission::Write),
            "admin" => Ok(Permission::Admin),
            other => Err(E::custom(format!(
                "`{other}` is not `read`, `write` or `admin`"
            ))),
        }
    }
}

/// `approvals:`: `required` (default 1), `from` (needed), `expire_after`
/// (a duration as `lock` takes it, default one hour).
struct ApprovalsSeed;

impl<'de> DeserializeSeed<'de> for ApprovalsSeed {
    type Value = Approvals;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Approvals, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ApprovalsSeed {
    type Value = Approvals;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a mapping with `from` (who may approve) and optionally `required` and `expire_after`",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Approvals, A::Error> {
        let (mut required, mut from, mut expire) = (None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "required" if required.is_none() => required = Some(map.next_value::<u32>()?),
                "from" if from.is_none() => from = Some(map.next_value_seed(LoginsSeed)?),
                "expire_after" if expire.is_none() => {
                    expire = Some(map.next_value_seed(DurationSeed)?);
                }
                "required" | "from" | "expire_after" => {
                    return Err(A::Error::custom(format!("`{key}` is set twice")));
                }
                other => {
                    return Err(A::Error::custom(format!(
                        "unknown key `{other}` in approvals (required, from, expire_after)"
                    )));
                }
            }
        }
        let from = from.ok_or_else(|| {
            A::Error::custom("approvals needs `from`: the logins or teams who may approve")
        })?;
        let required = required.unwrap_or(1);
        if required == 0 {
            return Err(A::Error::custom(
                "approvals.required must be at least 1 (remove `approvals` for none)",
            ));
        }
        // The requester never approves their own, so only named people
        // other than them count: more required than named could never pass.
        let has_team = from.iter().any(|entry| super::principal::is_team(entry));
        if !has_team && usize::try_from(required).unwrap_or(usize::MAX) > from.len() {
            return Err(A::Error::custom(format!(
                "approvals.required is {required} but `from` names only {}: it could never be met",
                from.len()
            )));
        }
        Ok(Approvals {
            required,
            from,
            expire_after_secs: expire.unwrap_or(approval::DEFAULT_EXPIRY.as_secs().unsigned_abs()),
        })
    }
}

/// A duration such as `30m` or `1h30m`, read as `lock for` reads one.
struct DurationSeed;

str_seed!(DurationSeed => u64);

impl Visitor<'_> for DurationSeed {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration such as `30m`, `1h` or `1h30m`")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<u64, E> {
        duration_secs(text).map_err(E::custom)
    }
}

/// The seconds of a duration such as `30m`, or why it is not one.
pub(super) fn duration_secs(text: &str) -> Result<u64, String> {
    crate::command::duration::parse(text).map_err(|error| {
        format!(
            "`{text}` is not a duration: {} (write `30m`, `1h` or `1h30m`)",
            error.message
        )
    })
}
