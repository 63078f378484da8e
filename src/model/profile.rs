//! A user's OpenID Connect claims beyond the account's own fields: the optional standard claims of OIDC Core §5.1
//! and custom claims (one JSON object per user). `sub`, `name`, `preferred_username`, `email`, `email_verified`
//! and `updated_at` come from the user's own fields, so a profile can hold none of them.
//!
//! The wire shape (RC's `users.*`, `[[users]]`) is one JSON object holding both, e.g.
//! `{"given_name": "Jane", "address": {"locality": "Lyon"}, "department": "Ops"}`: a standard name is checked
//! against its §5.1 type, any other name is a custom claim.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Field, Result};

/// Names a custom claim may not take: the JWT and OIDC protocol claims (RFC 7519 §4.1, OIDC Core §2, §3.1.3.6)
/// and the claims made from the user's own fields. Letting a custom claim shadow one would let a user's record
/// forge a token's meaning.
pub const RESERVED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "sid",
    "name",
    "preferred_username",
    "email",
    "email_verified",
    "updated_at",
];

/// The string-valued standard claims a profile may hold (OIDC Core §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StandardClaim {
    GivenName,
    FamilyName,
    MiddleName,
    Nickname,
    Picture,
    Website,
    Gender,
    Birthdate,
    Zoneinfo,
    Locale,
    PhoneNumber,
}

impl StandardClaim {
    pub const ALL: [StandardClaim; 11] = [
        Self::GivenName,
        Self::FamilyName,
        Self::MiddleName,
        Self::Nickname,
        Self::Picture,
        Self::Website,
        Self::Gender,
        Self::Birthdate,
        Self::Zoneinfo,
        Self::Locale,
        Self::PhoneNumber,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GivenName => "given_name",
            Self::FamilyName => "family_name",
            Self::MiddleName => "middle_name",
            Self::Nickname => "nickname",
            Self::Picture => "picture",
            Self::Website => "website",
            Self::Gender => "gender",
            Self::Birthdate => "birthdate",
            Self::Zoneinfo => "zoneinfo",
            Self::Locale => "locale",
            Self::PhoneNumber => "phone_number",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Checks a value against the claim's §5.1 type; the error names the claim.
    fn check(self, v: &str) -> Result<()> {
        let ok = match self {
            Self::Picture | Self::Website => is_web_url(v),
            Self::Birthdate => is_birthdate(v),
            Self::Zoneinfo => is_token(v, 64, |c| c.is_ascii_alphanumeric() || "/_+-".contains(c)),
            Self::Locale => is_token(v, 35, |c| c.is_ascii_alphanumeric() || "-_".contains(c)),
            Self::PhoneNumber => is_e164(v),
            _ => is_text(v, MAX_TEXT, false),
        };
        if ok {
            Ok(())
        } else {
            Err(invalid(format!("{} has an invalid value", self.as_str())))
        }
    }
}

/// The members of the `address` claim (OIDC Core §5.1.1).
pub const ADDRESS_MEMBERS: [&str; 6] = [
    "formatted",
    "street_address",
    "locality",
    "region",
    "postal_code",
    "country",
];

/// Bounds: a standard text claim (in characters), a URL (in bytes), all custom claims as canonical JSON (bytes).
const MAX_TEXT: usize = 256;
const MAX_URL: usize = 2048;
pub const MAX_CUSTOM_BYTES: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Profile {
    pub standard: BTreeMap<StandardClaim, String>,
    /// Only with a `phone_number`.
    pub phone_number_verified: Option<bool>,
    /// `address` by member name (one of [`ADDRESS_MEMBERS`]); empty: no address.
    pub address: BTreeMap<String, String>,
    /// Custom claims by name: none is [`RESERVED`] or standard, none is null.
    pub custom: Map<String, Value>,
}

impl Profile {
    /// Parses and validates the wire object (standard and custom claims together).
    pub fn parse(v: &Value) -> Result<Self> {
        let Value::Object(o) = v else {
            return Err(invalid("must be an object"));
        };
        let mut p = Profile::default();
        for (k, v) in o {
            if RESERVED.contains(&k.as_str()) {
                return Err(invalid(format!(
                    "{k} cannot be set: it is a protocol claim or comes from the user's own fields"
                )));
            }
            if let Some(c) = StandardClaim::parse(k) {
                let s = v
                    .as_str()
                    .ok_or_else(|| invalid(format!("{k} must be a string")))?;
                c.check(s)?;
                p.standard.insert(c, s.to_owned());
            } else if k == "phone_number_verified" {
                let b = v
                    .as_bool()
                    .ok_or_else(|| invalid(format!("{k} must be a boolean")))?;
                p.phone_number_verified = Some(b);
            } else if k == "address" {
                p.address = parse_address(v)?;
            } else {
                check_custom_name(k)?;
                if v.is_null() {
                    return Err(invalid(format!("{k} must not be null")));
                }
                p.custom.insert(k.clone(), v.clone());
            }
        }
        if p.phone_number_verified.is_some()
            && !p.standard.contains_key(&StandardClaim::PhoneNumber)
        {
            return Err(invalid("phone_number_verified needs a phone_number"));
        }
        if custom_json(&p.custom).map_or(0, |j| j.len()) > MAX_CUSTOM_BYTES {
            return Err(invalid(format!(
                "custom claims must be at most {MAX_CUSTOM_BYTES} bytes of JSON"
            )));
        }
        Ok(p)
    }

    /// The wire object [`Profile::parse`] reads: every claim the profile holds, none null.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut o = self.custom.clone();
        for (c, v) in &self.standard {
            o.insert(c.as_str().to_owned(), Value::from(v.as_str()));
        }
        if let Some(b) = self.phone_number_verified {
            o.insert("phone_number_verified".into(), Value::Bool(b));
        }
        if !self.address.is_empty() {
            let a = self
                .address
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())));
            o.insert("address".into(), Value::Object(a.collect()));
        }
        o
    }
}

/// The custom claims as canonical JSON text (keys sorted, no spaces), `None` when there are none: how the store
/// keeps them, since a JSON value has no bincode layout.
pub fn custom_json(custom: &Map<String, Value>) -> Option<String> {
    (!custom.is_empty()).then(|| Value::Object(custom.clone()).to_string())
}

fn invalid(reason: impl std::fmt::Display) -> Error {
    Error::invalid(Field::Claims, reason)
}

fn parse_address(v: &Value) -> Result<BTreeMap<String, String>> {
    let Value::Object(o) = v else {
        return Err(invalid("address must be an object"));
    };
    let mut out = BTreeMap::new();
    for (k, v) in o {
        if !ADDRESS_MEMBERS.contains(&k.as_str()) {
            return Err(invalid(format!("address has no member {k:?}")));
        }
        match v.as_str() {
            Some(s) if is_text(s, 2 * MAX_TEXT, true) => out.insert(k.clone(), s.to_owned()),
            _ => return Err(invalid(format!("address.{k} has an invalid value"))),
        };
    }
    if out.is_empty() {
        return Err(invalid("address must have at least one member"));
    }
    Ok(out)
}

/// Whether `k` can name a custom claim: 1 to 128 characters of letters, digits and `_ . : / -` (room for
/// collision-resistant URI-style names), neither [`RESERVED`] nor a standard claim's name.
pub fn is_custom_name(k: &str) -> bool {
    is_token(k, 128, |c| c.is_ascii_alphanumeric() || "_.:/-".contains(c))
        && !RESERVED.contains(&k)
        && StandardClaim::parse(k).is_none()
        && !matches!(k, "address" | "phone_number_verified")
}

fn check_custom_name(k: &str) -> Result<()> {
    if is_custom_name(k) {
        Ok(())
    } else {
        Err(invalid(format!("{k:?} is not a valid claim name")))
    }
}

/// Non-empty text without control characters; line breaks only where `lines` (a formatted address has them).
fn is_text(v: &str, max_chars: usize, lines: bool) -> bool {
    !v.trim().is_empty()
        && v.chars().count() <= max_chars
        && !v
            .chars()
            .any(|c| c.is_control() && !(lines && matches!(c, '\n' | '\r')))
}

fn is_token(v: &str, max: usize, allowed: impl Fn(char) -> bool) -> bool {
    !v.is_empty() && v.len() <= max && v.chars().all(allowed)
}

/// An absolute `https` or `http` URL with a host.
fn is_web_url(v: &str) -> bool {
    v.len() <= MAX_URL
        && url::Url::parse(v).is_ok_and(|u| {
            matches!(u.scheme(), "https" | "http") && u.host_str().is_some_and(|h| !h.is_empty())
        })
}

/// ISO 8601 `YYYY-MM-DD`, `0000-MM-DD` (year withheld) or `YYYY` (§5.1).
fn is_birthdate(v: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match v.split('-').collect::<Vec<_>>()[..] {
        [y] => y.len() == 4 && digits(y),
        [y, m, d] => {
            let n = |s: &str| s.parse::<u32>().unwrap_or(0);
            y.len() == 4
                && digits(y)
                && m.len() == 2
                && d.len() == 2
                && digits(m)
                && digits(d)
                && (1..=12).contains(&n(m))
                && (1..=31).contains(&n(d))
        }
        _ => false,
    }
}

/// E.164 (`+` and 1 to 15 digits), with an optional RFC 3966 extension (`;ext=1234`), as §5.1 recommends.
fn is_e164(v: &str) -> bool {
    let (number, ext) = match v.split_once(";ext=") {
        Some((n, e)) => (n, Some(e)),
        None => (v, None),
    };
    let digits = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit())
    };
    number.strip_prefix('+').is_some_and(|n| digits(n, 15)) && ext.is_none_or(|e| digits(e, 10))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn standard_and_custom_claims_parse_and_round_trip() {
        let wire = json!({
            "given_name": "Jane", "family_name": "Doe", "picture": "https://img.example/j.png",
            "birthdate": "0000-04-01", "zoneinfo": "Europe/Paris", "locale": "fr-FR",
            "phone_number": "+33123456789;ext=12", "phone_number_verified": true,
            "address": {"locality": "Lyon", "country": "FR", "formatted": "1 rue X\n69000 Lyon"},
            "department": "Ops", "https://example.com/groups": ["a", "b"], "level": 3,
        });
        let p = Profile::parse(&wire).unwrap();
        assert_eq!(p.standard[&StandardClaim::GivenName], "Jane");
        assert_eq!(p.custom["level"], json!(3));
        assert_eq!(Value::Object(p.to_json()), wire);
        assert_eq!(
            custom_json(&p.custom).unwrap(),
            r#"{"department":"Ops","https://example.com/groups":["a","b"],"level":3}"#
        );
        assert_eq!(Profile::parse(&json!({})).unwrap(), Profile::default());
    }

    #[test]
    fn invalid_claims_are_refused() {
        for bad in [
            json!([]),
            json!({"sub": "x"}),
            json!({"email": "a@b.c"}),
            json!({"nonce": "n"}),
            json!({"updated_at": 1}),
            json!({"given_name": 1}),
            json!({"given_name": ""}),
            json!({"given_name": "Ja\nne"}),
            json!({"picture": "javascript:alert(1)"}),
            json!({"website": "example.com"}),
            json!({"birthdate": "1990-13-01"}),
            json!({"birthdate": "90-01-01"}),
            json!({"phone_number": "0123 456"}),
            json!({"phone_number_verified": true}),
            json!({"address": {}}),
            json!({"address": {"city": "Lyon"}}),
            json!({"address": "Lyon"}),
            json!({"bad name": 1}),
            json!({"dept": null}),
            json!({"blob": "x".repeat(MAX_CUSTOM_BYTES)}),
        ] {
            let e = Profile::parse(&bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Invalid {
                        field: Field::Claims,
                        ..
                    }
                ),
                "{bad}: {e:?}"
            );
        }
    }

    proptest! {
        /// Whatever parses prints back to the same object, and that object parses to the same profile.
        #[test]
        fn parsing_is_the_inverse_of_printing(
            given in proptest::option::of("[a-zA-Z ]{1,20}"),
            phone in proptest::option::of("\\+[0-9]{1,15}"),
            custom in proptest::collection::btree_map("[a-z][a-z0-9_]{0,10}", any::<i64>(), 0..5),
        ) {
            let mut o = Map::new();
            if let Some(g) = given.filter(|g| !g.trim().is_empty()) {
                o.insert("given_name".into(), json!(g));
            }
            if let Some(p) = phone {
                o.insert("phone_number".into(), json!(p));
            }
            for (k, v) in custom {
                if is_custom_name(&k) {
                    o.insert(k, json!(v));
                }
            }
            let p = Profile::parse(&Value::Object(o.clone())).unwrap();
            prop_assert_eq!(p.to_json(), o);
        }
    }
}
