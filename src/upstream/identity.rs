//! Mapping an upstream identity document to an account: the account id is the first of `sub`, `id`, `_id`, `ID`,
//! `userid`, `user_id`; username/email/name/avatar come from the provider's `-*_field` paths (dotted paths reach
//! into nested objects), else from the usual claims. `email_verified` is true only when the upstream says so, as a
//! boolean or as the strings `"true"`/`"false"` (Apple sends strings).

use serde_json::Value;

pub use crate::core::federation::Identity;
use crate::model::provider::Provider;

const ID_CLAIMS: [&str; 6] = ["sub", "id", "_id", "ID", "userid", "user_id"];

/// Follows `a.b.c` through nested objects (and array indexes such as `emails.0.address`).
pub fn lookup<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |cur, key| match cur {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Strings as they are; numbers as their decimal text (many upstreams use numeric ids).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn field(v: &Value, configured: &str, defaults: &[&str]) -> Option<String> {
    if !configured.trim().is_empty() {
        return lookup(v, configured.trim()).and_then(text);
    }
    defaults.iter().find_map(|k| v.get(*k).and_then(text))
}

/// `email_verified` as OIDC sends it (`true`) or as Apple does (`"true"`); anything else is not verified.
fn verified(v: &Value) -> bool {
    match v.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Maps the identity, or says what is missing.
pub fn map(v: &Value, p: &Provider) -> Result<Identity, String> {
    if !v.is_object() {
        return Err("the identity response is not a JSON object".into());
    }
    let account_id = ID_CLAIMS
        .iter()
        .find_map(|k| v.get(*k).and_then(text))
        .ok_or_else(|| {
            format!(
                "the identity has no account id (none of {})",
                ID_CLAIMS.join(", ")
            )
        })?;
    Ok(Identity {
        account_id,
        username: field(v, &p.username_field, &["preferred_username", "username"]),
        email: field(v, &p.email_field, &["email"]),
        email_verified: verified(v),
        name: field(v, &p.name_field, &["name"]),
        avatar: field(v, &p.avatar_field, &["picture", "avatar_url"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn provider() -> Provider {
        Provider::new("p1".into(), "Idp".into(), 0)
    }

    #[test]
    fn id_claims_in_order_and_numbers_as_text() {
        let p = provider();
        assert_eq!(
            map(&json!({"id": 42, "sub": "s"}), &p).unwrap().account_id,
            "s"
        );
        assert_eq!(map(&json!({"ID": 42}), &p).unwrap().account_id, "42");
        assert_eq!(
            map(&json!({"user_id": "auth0|1"}), &p).unwrap().account_id,
            "auth0|1"
        );
        assert!(map(&json!({"name": "x"}), &p)
            .unwrap_err()
            .contains("no account id"));
        assert!(map(&json!("text"), &p).is_err());
    }

    #[test]
    fn configured_dotted_paths_win_over_defaults() {
        let mut p = provider();
        let doc = json!({"sub": "1", "preferred_username": "def", "profile": {"login": "jane", "mails": [{"v": "j@x.io"}]}});
        assert_eq!(map(&doc, &p).unwrap().username.as_deref(), Some("def"));
        p.username_field = "profile.login".into();
        p.email_field = "profile.mails.0.v".into();
        let id = map(&doc, &p).unwrap();
        assert_eq!(id.username.as_deref(), Some("jane"));
        assert_eq!(id.email.as_deref(), Some("j@x.io"));
    }

    #[test]
    fn email_verified_is_a_boolean_or_apples_string_and_false_otherwise() {
        let p = provider();
        let verified = |doc: Value| map(&doc, &p).unwrap().email_verified;
        assert!(verified(json!({"sub": "1", "email_verified": true})));
        assert!(verified(json!({"sub": "1", "email_verified": "true"})));
        assert!(!verified(json!({"sub": "1", "email_verified": false})));
        assert!(!verified(json!({"sub": "1", "email_verified": "false"})));
        assert!(!verified(json!({"sub": "1", "email_verified": 1})));
        assert!(!verified(json!({"sub": "1", "email_verified": "yes"})));
        assert!(!verified(json!({"sub": "1"})));
    }

    proptest! {
        #[test]
        fn lookup_finds_what_was_nested(keys in proptest::collection::vec("[a-z]{1,6}", 1..5), leaf in "[a-z0-9]{1,10}") {
            let mut v = Value::String(leaf.clone());
            for k in keys.iter().rev() {
                v = json!({ k.clone(): v });
            }
            prop_assert_eq!(lookup(&v, &keys.join(".")), Some(&Value::String(leaf)));
        }
    }
}
