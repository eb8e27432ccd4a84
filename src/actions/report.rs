//! What an integration reports with `PATCH /v1/deployments/{id}/actions/{action}`:
//! `{"status": "succeeded", "outcomes": [{"kind": "resource-secrets",
//! "secrets": [{"name": "DATABASE_URL", "value": "…"}]}]}`, or
//! `{"status": "failed", "reason": "…"}`. Read strictly: a mistake is
//! answered with what is wrong, and changes nothing.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// The most secrets one report may hand a deployment.
const MAX_SECRETS: usize = 50;
/// The longest secret value (a certificate fits; a file does not).
const MAX_SECRET_BYTES: usize = 16 * 1024;
/// The longest failure reason shown in chat.
const MAX_REASON_CHARS: usize = 300;

/// What hoist answers an integration's report: the HTTP status follows
/// from it (200, 400, 401, 404, 409, 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Recorded (or recorded before): what happens next.
    Done(String),
    /// The body is not a report: what is wrong.
    BadRequest(String),
    /// No bearer token, or not the action's secret.
    Unauthorized,
    /// No held deployment has this id and action.
    NotFound,
    /// The held deployment is over: why.
    Conflict(String),
    /// hoist's own trouble; its log has the details.
    Internal,
}

/// A report, checked.
#[derive(Debug)]
pub enum Report {
    Succeeded { secrets: Vec<Secret> },
    Failed { reason: String },
}

/// One secret for the deployment's run: an environment variable.
#[derive(Clone, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    #[serde(with = "exposed")]
    pub value: SecretString,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}=[REDACTED])", self.name)
    }
}

/// A secret's value in the sealed plaintext, and only there.
mod exposed {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &SecretString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.expose_secret())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
        String::deserialize(d).map(SecretString::from)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    status: String,
    #[serde(default)]
    outcomes: Vec<Outcome>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outcome {
    kind: String,
    #[serde(default)]
    secrets: Vec<Secret>,
}

impl Report {
    /// Reads a report's body; the error says what is wrong with it.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let wire: Wire = serde_json::from_slice(body).map_err(|error| shape_error(&error))?;
        match wire.status.as_str() {
            "succeeded" => {
                let mut secrets = Vec::new();
                for outcome in wire.outcomes {
                    if outcome.kind != "resource-secrets" {
                        return Err(format!(
                            "outcome kind `{}` is not one hoist knows: only `resource-secrets`",
                            outcome.kind.chars().take(40).collect::<String>()
                        ));
                    }
                    secrets.extend(outcome.secrets);
                }
                check_secrets(&secrets)?;
                Ok(Self::Succeeded { secrets })
            }
            "failed" => Ok(Self::Failed {
                reason: wire
                    .reason
                    .map(|reason| printable(&reason))
                    .filter(|reason| !reason.is_empty())
                    .unwrap_or_else(|| "no reason given".into()),
            }),
            other => Err(format!(
                "status `{}` is not `succeeded` or `failed`",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// What is wrong with a body, without echoing its values: serde's
/// "invalid type: string \"…\"" would repeat a secret.
fn shape_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    if message.starts_with("unknown field") || message.starts_with("missing field") {
        return format!("not a report: {message}");
    }
    format!(
        "not a report: the body is not {} at line {} column {}",
        match error.classify() {
            serde_json::error::Category::Data => "in the report's shape",
            _ => "JSON",
        },
        error.line(),
        error.column()
    )
}

/// Names a run can take as environment variables, none of hoist's own
/// (`HOIST_*`, which the run reads to know what it deploys), each once,
/// and not too many or too large.
fn check_secrets(secrets: &[Secret]) -> Result<(), String> {
    if secrets.len() > MAX_SECRETS {
        return Err(format!(
            "at most {MAX_SECRETS} secrets, not {}",
            secrets.len()
        ));
    }
    for (index, secret) in secrets.iter().enumerate() {
        let name = &secret.name;
        let well_formed = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.len() <= 100
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed {
            return Err(format!(
                "secret {} is not named as an environment variable (letters, digits and `_`, not starting with a digit)",
                index + 1
            ));
        }
        if name.to_ascii_uppercase().starts_with("HOIST_") {
            return Err(format!(
                "secret `{name}`: names starting with HOIST_ are hoist's own"
            ));
        }
        if secrets[..index].iter().any(|other| other.name == *name) {
            return Err(format!("secret `{name}` is given twice"));
        }
        if secret.value.expose_secret().len() > MAX_SECRET_BYTES {
            return Err(format!(
                "secret `{name}` is larger than {MAX_SECRET_BYTES} bytes"
            ));
        }
    }
    Ok(())
}

/// One line of at most [`MAX_REASON_CHARS`] printable characters.
fn printable(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(report: Report) -> Vec<(String, String)> {
        match report {
            Report::Succeeded { secrets } => secrets
                .into_iter()
                .map(|s| (s.name, s.value.expose_secret().to_owned()))
                .collect(),
            Report::Failed { reason } => panic!("failed: {reason}"),
        }
    }

    #[test]
    fn vercels_example_reads_as_its_secrets() {
        let body = br#"{"status":"succeeded","outcomes":[{"kind":"resource-secrets","secrets":[{"name":"TOP_SECRET","value":"****"}]}]}"#;
        assert_eq!(
            secrets(Report::parse(body).unwrap()),
            [("TOP_SECRET".to_owned(), "****".to_owned())]
        );
        assert!(secrets(Report::parse(br#"{"status":"succeeded"}"#).unwrap()).is_empty());
    }

    #[test]
    fn a_failure_keeps_one_short_printable_line() {
        let long = "x".repeat(400);
        let body = format!(r#"{{"status":"failed","reason":"branch\nlimit\u0007 {long}"}}"#);
        let Report::Failed { reason } = Report::parse(body.as_bytes()).unwrap() else {
            panic!("not a failure");
        };
        assert!(reason.starts_with("branch limit x"), "{reason}");
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
        let Report::Failed { reason } = Report::parse(br#"{"status":"failed"}"#).unwrap() else {
            panic!("not a failure");
        };
        assert_eq!(reason, "no reason given");
    }

    #[test]
    fn mistakes_are_named() {
        let cases: [(&[u8], &str); 9] = [
            (b"nope", "not a report"),
            (br#"{"status":"done"}"#, "status `done`"),
            (br#"{"status":"succeeded","extra":1}"#, "unknown field `extra`"),
            (br#"{"status":"succeeded","outcomes":[{"kind":"env"}]}"#, "outcome kind `env`"),
            (
                br#"{"status":"succeeded","outcomes":[{"kind":"resource-secrets","secrets":[{"name":"1X","value":"v"}]}]}"#,
                "secret 1 is not named",
            ),
            (
                br#"{"status":"succeeded","outcomes":[{"kind":"resource-secrets","secrets":[{"name":"HOIST_SHA","value":"v"}]}]}"#,
                "hoist's own",
            ),
            (
                br#"{"status":"succeeded","outcomes":[{"kind":"resource-secrets","secrets":[{"name":"A","value":"1"},{"name":"A","value":"2"}]}]}"#,
                "given twice",
            ),
            (br#"{"status":"succeeded","outcomes":[{"kind":"resource-secrets","secrets":[{"name":"A"}]}]}"#, "missing field `value`"),
            (
                br#"{"status":"succeeded","outcomes":[{"kind":"resource-secrets","secrets":[{"name":"A","value":["hunter2"]}]}]}"#,
                "not in the report's shape at line 1",
            ),
        ];
        for (body, expected) in cases {
            let error = Report::parse(body).unwrap_err();
            assert!(error.contains(expected), "{error} should say {expected}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn a_secret_never_shows_in_debug() {
        let Report::Succeeded { secrets } = Report::parse(
            br#"{"status":"succeeded","outcomes":[{"kind":"resource-secrets","secrets":[{"name":"DB","value":"hunter2-value"}]}]}"#,
        )
        .unwrap() else {
            panic!("not a success");
        };
        assert!(!format!("{secrets:?}").contains("hunter2"));
    }
}
