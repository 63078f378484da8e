//! Stack's request validation, as its yup schemas word it: one `SCHEMA_ERROR` listing every problem of the body
//! (missing, null, wrongly typed and unknown fields), and the JSON body extractor with Stack's answers to an
//! oversized (413) or unparsable (`BODY_PARSING_ERROR`) body. The field tables are also the request bodies
//! `/openapi.json` documents ([`schema`]).

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::{Map, Value};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, Type};

use super::StackError;
use crate::state::AppState;
use crate::wire::{read_body, BodyError};

/// The JSON type of a body field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
}

/// One body field: name, type, required.
pub type Field = (&'static str, Ty, bool);

/// yup's `printValue`, close enough for messages.
fn print_value(v: &Value) -> String {
    v.to_string()
}

/// Checks `body` (absent: `None`) against `fields` the way Stack's yup schemas do, collecting every problem:
/// `body must be defined`, `body.x must be defined`, `body.x cannot be null`, wrong types, and unknown keys.
pub fn check_body<'a>(
    body: Option<&'a Value>,
    fields: &[Field],
) -> Result<&'a Map<String, Value>, Vec<String>> {
    let body = match body {
        None => return Err(vec!["body must be defined".into()]),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(vec![format!(
                "body must be a `object` type, but the final value was: `{}`.",
                print_value(other)
            )])
        }
    };
    let mut problems = Vec::new();
    for &(name, ty, required) in fields {
        match body.get(name) {
            None if required => problems.push(format!("body.{name} must be defined")),
            None => {}
            Some(Value::Null) => problems.push(format!("body.{name} cannot be null")),
            Some(v) => {
                let (ok, ty_name) = match ty {
                    Ty::Str => (v.is_string(), "string"),
                    Ty::Bool => (v.is_boolean(), "boolean"),
                };
                if !ok {
                    problems.push(format!(
                        "body.{name} must be a `{ty_name}` type, but the final value was: `{}`.",
                        print_value(v)
                    ));
                }
            }
        }
    }
    let mut unknown: Vec<&str> = body
        .keys()
        .map(String::as_str)
        .filter(|k| !fields.iter().any(|(n, _, _)| n == k))
        .collect();
    unknown.sort_unstable();
    if !unknown.is_empty() {
        problems.push(format!(
            "body contains unknown properties: {}",
            unknown.join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(body)
    } else {
        Err(problems)
    }
}

/// The JSON Schema of the bodies [`check_body`] accepts with `fields`: an object of exactly those fields, none
/// of them null.
pub fn schema(fields: &[Field]) -> Schema {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for &(name, ty, required) in fields {
        let ty = match ty {
            Ty::Str => Type::String,
            Ty::Bool => Type::Boolean,
        };
        o = o.property(name, ObjectBuilder::new().schema_type(ty));
        if required {
            o = o.required(name);
        }
    }
    o.into()
}

/// A JSON body, or `None` when the request has none. Over the limit: 413 (a plain `StatusError`); not JSON:
/// `BODY_PARSING_ERROR`, as Stack answers both.
pub struct StackBody(pub Option<Value>);

impl FromRequest<AppState> for StackBody {
    type Rejection = StackError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, StackError> {
        let bytes = read_body(req, state).await.map_err(|e| match e {
            BodyError::TooLarge => {
                StackError::Status(StatusCode::PAYLOAD_TOO_LARGE, "Payload Too Large".into())
            }
            BodyError::Unreadable => StackError::BodyParsing("Request body could not be read"),
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(StackBody(None));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| StackError::BodyParsing("Request body cannot be parsed as UTF-8"))?;
        serde_json::from_str(text)
            .map(|v| StackBody(Some(v)))
            .map_err(|_| StackError::BodyParsing("Invalid JSON in request body"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_checks_collect_every_problem() {
        const F: &[Field] = &[("a", Ty::Str, true), ("b", Ty::Bool, false)];
        assert_eq!(check_body(None, F).unwrap_err(), ["body must be defined"]);
        assert_eq!(
            check_body(Some(&json!({"b": "yes", "z": 1, "y": 2})), F).unwrap_err(),
            [
                "body.a must be defined",
                "body.b must be a `boolean` type, but the final value was: `\"yes\"`.",
                "body contains unknown properties: y, z",
            ]
        );
        assert_eq!(
            check_body(Some(&json!({"a": null})), F).unwrap_err(),
            ["body.a cannot be null"]
        );
        assert!(check_body(Some(&json!({"a": "x"})), F).is_ok());
        assert!(check_body(Some(&json!([])), F).is_err());
    }

    #[test]
    fn the_documented_schema_is_the_checked_table() {
        const F: &[Field] = &[("a", Ty::Str, true), ("b", Ty::Bool, false)];
        let doc = serde_json::to_value(schema(F)).unwrap();
        assert_eq!(doc["required"], json!(["a"]));
        assert_eq!(doc["additionalProperties"], json!(false));
        assert_eq!(doc["properties"]["a"]["type"], "string");
        assert_eq!(doc["properties"]["b"]["type"], "boolean");
    }
}
