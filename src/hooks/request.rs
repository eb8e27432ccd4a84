//! What a deploy hook call asks for: its JSON body's fields and its
//! `Idempotency-Key`, each checked, and the refusal worded for the CI job
//! that sent it.
//!
//! Read by hand rather than with `deny_unknown_fields`: each refusal then
//! names the field at fault (`payload must be a JSON object`) instead of
//! serde's position in the text.

use serde_json::{Map, Value};

use crate::command;

/// The fields a body may have.
const FIELDS: &str = "ref, imageTag, payload and environment";
/// An `imageTag`'s length, and its characters: `[A-Za-z0-9_.-]`.
const MAX_IMAGE_TAG: usize = 128;
/// An `Idempotency-Key`'s length: printable ASCII.
const MAX_IDEMPOTENCY_KEY: usize = 100;

/// A call's body, checked. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookBody {
    /// The branch, tag or sha; `None` deploys the default branch.
    pub git_ref: Option<String>,
    /// Where the call says it deploys: must be the hook's environment.
    pub environment: Option<String>,
    /// Added to the deployment's payload: the body's `payload`, and
    /// `imageTag`.
    pub payload: Map<String, Value>,
}

impl HookBody {
    /// Reads a body; an empty one (or only whitespace) is `{}`.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let fields = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => fields,
            Ok(_) => return Err("the body must be a JSON object".into()),
            Err(error) => return Err(format!("the body is not JSON: {error}")),
        };
        let mut read = Self::default();
        let mut image_tag = None;
        for (name, value) in fields {
            // A CI template that fills a field with nothing: not given.
            if value.is_null() {
                continue;
            }
            match name.as_str() {
                "ref" => read.git_ref = Some(git_ref(value)?),
                "environment" => read.environment = Some(string("environment", value)?),
                "imageTag" => image_tag = Some(checked_image_tag(value)?),
                "payload" => read.payload = payload(value)?,
                other => {
                    return Err(format!("unknown field `{other}`: the fields are {FIELDS}"));
                }
            }
        }
        if let Some(tag) = image_tag {
            if read.payload.contains_key("imageTag") {
                return Err("imageTag is given twice, as a field and in payload: give one".into());
            }
            read.payload.insert("imageTag".into(), Value::String(tag));
        }
        Ok(read)
    }
}

fn string(field: &str, value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err(format!("{field} must be a string")),
    }
}

/// A ref as chat accepts one: git's ref-name rules.
fn git_ref(value: Value) -> Result<String, String> {
    let git_ref = string("ref", value)?;
    command::check_ref(&git_ref).map_err(|error| format!("ref `{git_ref}`: {}", error.message))?;
    Ok(git_ref)
}

fn checked_image_tag(value: Value) -> Result<String, String> {
    let tag = string("imageTag", value)?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if tag.is_empty() || tag.len() > MAX_IMAGE_TAG || !tag.chars().all(allowed) {
        return Err(format!(
            "imageTag must be 1 to {MAX_IMAGE_TAG} characters of A-Z, a-z, 0-9, `_`, `.` and `-`"
        ));
    }
    Ok(tag)
}

fn payload(value: Value) -> Result<Map<String, Value>, String> {
    let Value::Object(payload) = value else {
        return Err("payload must be a JSON object".into());
    };
    if payload.contains_key("hoist") {
        return Err("payload.hoist is hoist's own key: use another name".into());
    }
    Ok(payload)
}

/// The `Idempotency-Key` header's value, checked: 1 to 100 printable
/// ASCII characters. `None` when it is not sent.
pub fn idempotency_key(value: Option<&[u8]>) -> Result<Option<String>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let printable = value.iter().all(|b| (0x20..=0x7e).contains(b));
    match std::str::from_utf8(value) {
        Ok(key) if printable && !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY => {
            Ok(Some(key.to_owned()))
        }
        _ => Err(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(body: &str) -> Result<HookBody, String> {
        HookBody::parse(body.as_bytes())
    }

    #[test]
    fn an_empty_body_asks_for_the_defaults() {
        assert_eq!(parse(""), Ok(HookBody::default()));
        assert_eq!(parse(" \n"), Ok(HookBody::default()));
        assert_eq!(parse("{}"), Ok(HookBody::default()));
        assert_eq!(parse(r#"{"ref": null}"#), Ok(HookBody::default()));
    }

    #[test]
    fn every_field_is_read() {
        let body = parse(
            r#"{"ref": "release/1.2", "imageTag": "1.2.0-rc.1", "environment": "staging",
                "payload": {"replicas": 3}}"#,
        )
        .expect("a good body");
        assert_eq!(body.git_ref.as_deref(), Some("release/1.2"));
        assert_eq!(body.environment.as_deref(), Some("staging"));
        assert_eq!(
            Value::Object(body.payload),
            json!({"replicas": 3, "imageTag": "1.2.0-rc.1"})
        );
    }

    #[test]
    fn each_refusal_names_its_fault() {
        let refused = |body: &str, needle: &str| {
            let error = parse(body).expect_err(body);
            assert!(error.contains(needle), "{body}: {error}");
        };
        refused("{", "the body is not JSON");
        refused("[1]", "must be a JSON object");
        refused(r#"{"image": "x"}"#, "unknown field `image`");
        refused(r#"{"ref": 7}"#, "ref must be a string");
        refused(
            r#"{"ref": "a..b"}"#,
            "ref `a..b`: a ref cannot contain `..`",
        );
        refused(r#"{"imageTag": ""}"#, "imageTag must be 1 to 128");
        refused(r#"{"imageTag": "a b"}"#, "imageTag must be");
        refused(
            &format!(r#"{{"imageTag": "{}"}}"#, "a".repeat(129)),
            "imageTag",
        );
        refused(r#"{"payload": [1]}"#, "payload must be a JSON object");
        refused(
            r#"{"payload": {"hoist": {}}}"#,
            "payload.hoist is hoist's own",
        );
        refused(
            r#"{"imageTag": "1", "payload": {"imageTag": "2"}}"#,
            "imageTag is given twice",
        );
        refused(r#"{"environment": ["x"]}"#, "environment must be a string");
    }

    #[test]
    fn an_idempotency_key_is_short_printable_ascii() {
        assert_eq!(idempotency_key(None), Ok(None));
        assert_eq!(
            idempotency_key(Some(b"run 42/attempt-1")),
            Ok(Some("run 42/attempt-1".into()))
        );
        let long = "k".repeat(101);
        for bad in [&b""[..], b"tab\there", "é".as_bytes(), long.as_bytes()] {
            assert!(idempotency_key(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
