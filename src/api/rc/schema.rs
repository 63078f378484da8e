//! A tiny ajv look-alike for RC's `validateParams`: same keyword order (type, required, additionalProperties,
//! property types) and the same messages, so clients that match on RC's `invalid-params` reasons keep working.
//! The same shapes are the request bodies `/openapi.json` documents ([`Shape::schema`]).

use serde_json::{Map, Value};
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Schema, Type};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    StrArray,
    /// Any JSON object (its members are checked by the domain, e.g. a user's claims).
    Object,
}

impl Ty {
    /// ajv's message for a value of the wrong type. Rocket.Chat joins ajv's `error.message`s, which name the
    /// expected type only (`must be string`), not the property: clients match on exactly that text.
    pub fn check(self, v: &Value) -> Result<(), String> {
        let reason = match self {
            Ty::Str if !v.is_string() => "must be string",
            Ty::Bool if !v.is_boolean() => "must be boolean",
            Ty::Object if !v.is_object() => "must be object",
            Ty::StrArray => match v.as_array() {
                None => "must be array",
                Some(a) if !a.iter().all(Value::is_string) => "must be string",
                Some(_) => return Ok(()),
            },
            _ => return Ok(()),
        };
        Err(reason.into())
    }

    /// The JSON Schema of a value that passes [`Ty::check`].
    fn schema(self) -> Schema {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        match self {
            Ty::Str => string().into(),
            Ty::Bool => ObjectBuilder::new().schema_type(Type::Boolean).into(),
            Ty::StrArray => ArrayBuilder::new().items(string()).into(),
            Ty::Object => ObjectBuilder::new().schema_type(Type::Object).into(),
        }
    }
}

/// One object schema: required and optional properties; anything else is rejected.
pub struct Shape {
    pub required: &'static [(&'static str, Ty)],
    pub optional: &'static [(&'static str, Ty)],
}

impl Shape {
    /// `Ok(object)` or the ajv reason (`must have required property 'name'`).
    pub fn check<'a>(&self, v: &'a Value) -> Result<&'a Map<String, Value>, String> {
        let Value::Object(obj) = v else {
            return Err("must be object".into());
        };
        for (k, _) in self.required {
            if !obj.contains_key(*k) {
                return Err(format!("must have required property '{k}'"));
            }
        }
        for k in obj.keys() {
            if !self
                .required
                .iter()
                .chain(self.optional)
                .any(|(n, _)| n == k)
            {
                return Err("must NOT have additional properties".into());
            }
        }
        for (k, ty) in self.required.iter().chain(self.optional) {
            if let Some(val) = obj.get(*k) {
                ty.check(val)?;
            }
        }
        Ok(obj)
    }

    /// The JSON Schema of the objects [`Shape::check`] accepts.
    pub fn schema(&self) -> Schema {
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for (k, ty) in self.required.iter().chain(self.optional) {
            o = o.property(*k, ty.schema());
        }
        for (k, _) in self.required {
            o = o.required(*k);
        }
        o.into()
    }
}

pub fn str_of<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    o.get(k).and_then(Value::as_str)
}

pub fn bool_of(o: &Map<String, Value>, k: &str) -> Option<bool> {
    o.get(k).and_then(Value::as_bool)
}

pub fn strs_of(o: &Map<String, Value>, k: &str) -> Option<Vec<String>> {
    o.get(k).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: Shape = Shape {
        required: &[("name", Ty::Str), ("active", Ty::Bool)],
        optional: &[("tags", Ty::StrArray), ("meta", Ty::Object)],
    };

    #[test]
    fn ajv_order_and_messages() {
        assert_eq!(S.check(&json!([])).unwrap_err(), "must be object");
        assert_eq!(
            S.check(&json!({"active": 1})).unwrap_err(),
            "must have required property 'name'"
        );
        assert_eq!(
            S.check(&json!({"name": "a", "active": true, "x": 1}))
                .unwrap_err(),
            "must NOT have additional properties"
        );
        assert_eq!(
            S.check(&json!({"name": 1, "active": true})).unwrap_err(),
            "must be string"
        );
        assert_eq!(
            S.check(&json!({"name": "a", "active": "yes"})).unwrap_err(),
            "must be boolean"
        );
        assert!(S
            .check(&json!({"name": "a", "active": true, "tags": ["x"]}))
            .is_ok());
        assert_eq!(
            S.check(&json!({"name": "a", "active": true, "tags": "x"}))
                .unwrap_err(),
            "must be array"
        );
        assert_eq!(
            S.check(&json!({"name": "a", "active": true, "tags": [1]}))
                .unwrap_err(),
            "must be string"
        );
        assert_eq!(
            S.check(&json!({"name": "a", "active": true, "meta": []}))
                .unwrap_err(),
            "must be object"
        );
        assert!(S
            .check(&json!({"name": "a", "active": true, "meta": {"x": [1]}}))
            .is_ok());
    }

    #[test]
    fn the_documented_schema_is_the_checked_shape() {
        let doc = serde_json::to_value(S.schema()).unwrap();
        assert_eq!(doc["required"], json!(["name", "active"]));
        assert_eq!(doc["additionalProperties"], json!(false));
        assert_eq!(doc["properties"]["name"]["type"], "string");
        assert_eq!(doc["properties"]["active"]["type"], "boolean");
        assert_eq!(doc["properties"]["tags"]["items"]["type"], "string");
        assert_eq!(doc["properties"]["meta"]["type"], "object");
    }
}
