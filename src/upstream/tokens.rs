//! The upstream token set as it is sealed on a link (docs/storage.md#records: `Link.upstream`): what a token
//! endpoint answered, kept so that Stack's connected accounts can hand out the access token and refresh it.
//!
//! Two formats, told apart by the associated data they are sealed under, so neither can be read as the other:
//! version 2 (written) carries the obtained-at time and the absolute expiry a refresh decision needs; version 1
//! (written before connected accounts) kept the raw answer's `expires_in` without the time it was obtained, so its
//! expiry is unknown and it reads as expired when it had one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Millis;
use crate::core::connected::TokenSet;
use crate::crypto::Sealer;

const AAD_V1: &[u8] = b"latchkey-upstream-tokens-v1";
const AAD_V2: &[u8] = b"latchkey-upstream-tokens-v2";

/// Version 2's sealed JSON.
#[derive(Serialize, Deserialize)]
struct SealedV2 {
    access_token: String,
    refresh_token: Option<String>,
    scope: Option<String>,
    obtained_at: Millis,
    expires_at: Option<Millis>,
}

/// Version 1's sealed JSON: the token endpoint's fields as it sent them (`expires_in` a number or a string).
#[derive(Deserialize)]
struct SealedV1 {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<Value>,
    scope: Option<String>,
}

/// Seals `t` for storage on a link.
pub fn seal(sealer: &Sealer, t: &TokenSet) -> Vec<u8> {
    let v2 = SealedV2 {
        access_token: t.access_token.clone(),
        refresh_token: t.refresh_token.clone(),
        scope: t.scope.clone(),
        obtained_at: t.obtained_at,
        expires_at: t.expires_at,
    };
    sealer.seal(&serde_json::to_vec(&v2).expect("serializable"), AAD_V2)
}

/// Opens a link's sealed token set of either version; `None` when it does not open or holds no access token.
pub fn open(sealer: &Sealer, sealed: &[u8]) -> Option<TokenSet> {
    if let Some(json) = sealer.open(sealed, AAD_V2) {
        let v: SealedV2 = serde_json::from_slice(&json).ok()?;
        return Some(TokenSet {
            access_token: v.access_token,
            refresh_token: v.refresh_token,
            scope: v.scope,
            obtained_at: v.obtained_at,
            expires_at: v.expires_at,
        });
    }
    let v: SealedV1 = serde_json::from_slice(&sealer.open(sealed, AAD_V1)?).ok()?;
    Some(TokenSet {
        access_token: v.access_token?,
        refresh_token: v.refresh_token,
        scope: v.scope,
        obtained_at: 0,
        // Obtained at an unknown time: a token that expires at all is taken as expired.
        expires_at: v.expires_in.filter(|e| !e.is_null()).map(|_| 0),
    })
}

/// The token set a token endpoint answered at `now` (`access_token` required). `previous` fills what a refresh
/// answer may leave out (RFC 6749 §6: the refresh token stays when no new one is issued; an absent `scope` is
/// the one granted before); a first answer without `scope` was granted what was asked (`requested`, §5.1).
pub fn from_response(
    v: &Value,
    now: Millis,
    previous: Option<&TokenSet>,
    requested: &str,
) -> Option<TokenSet> {
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Some(TokenSet {
        access_token: text("access_token")?,
        refresh_token: text("refresh_token").or_else(|| previous?.refresh_token.clone()),
        scope: text("scope")
            .or_else(|| previous.and_then(|p| p.scope.clone()))
            .or_else(|| (!requested.is_empty()).then(|| requested.to_owned())),
        obtained_at: now,
        expires_at: expires_in.map(|s| now.saturating_add(s.max(0).saturating_mul(1000))),
    })
}

/// The token set of a sign-in's code exchange, sealed for its link; `None` when the answer has no access token
/// (the callback refuses such an answer before it gets here).
pub fn seal_response(
    sealer: &Sealer,
    now: Millis,
    tokens: &Value,
    requested: &str,
) -> Option<Vec<u8>> {
    from_response(tokens, now, None, requested).map(|t| seal(sealer, &t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sealer() -> Sealer {
        Sealer::new([7; 32])
    }

    #[test]
    fn a_code_exchange_answer_round_trips_with_its_expiry() {
        let v = json!({"access_token": "a1", "refresh_token": "r1", "expires_in": 3600, "token_type": "Bearer"});
        let sealed = seal_response(&sealer(), 1_000, &v, "openid email").unwrap();
        let t = open(&sealer(), &sealed).unwrap();
        assert_eq!(
            t,
            TokenSet {
                access_token: "a1".into(),
                refresh_token: Some("r1".into()),
                scope: Some("openid email".into()),
                obtained_at: 1_000,
                expires_at: Some(3_601_000),
            }
        );
        assert!(!String::from_utf8_lossy(&sealed).contains("a1"));
    }

    #[test]
    fn a_refresh_answer_keeps_what_it_leaves_out() {
        let before = from_response(
            &json!({"access_token": "a1", "refresh_token": "r1", "scope": "read"}),
            0,
            None,
            "x",
        )
        .unwrap();
        let after = from_response(
            &json!({"access_token": "a2", "expires_in": "60"}),
            5,
            Some(&before),
            "",
        )
        .unwrap();
        assert_eq!(after.refresh_token.as_deref(), Some("r1"));
        assert_eq!(after.scope.as_deref(), Some("read"));
        assert_eq!(after.expires_at, Some(60_005));
        assert!(from_response(&json!({"token_type": "Bearer"}), 0, None, "").is_none());
    }

    #[test]
    fn the_format_sealed_before_reads_with_an_unknown_expiry() {
        let old = |v: Value| sealer().seal(v.to_string().as_bytes(), AAD_V1);
        let t = open(
            &sealer(),
            &old(json!({"access_token": "a", "refresh_token": "r", "expires_in": 3600, "scope": null})),
        )
        .unwrap();
        assert_eq!(
            (t.refresh_token.as_deref(), t.expires_at),
            (Some("r"), Some(0))
        );
        let t = open(
            &sealer(),
            &old(json!({"access_token": "a", "refresh_token": null, "expires_in": null, "scope": "s"})),
        )
        .unwrap();
        assert_eq!((t.expires_at, t.scope.as_deref()), (None, Some("s")));
        assert!(open(&sealer(), b"garbage").is_none());
    }
}
