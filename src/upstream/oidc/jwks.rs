//! The issuer's JWKS (RFC 7517) as verification keys: signature keys of the asymmetric families only. A key this
//! version cannot use (an encryption key, a symmetric `oct` key, an unknown `kty` or `alg`) is skipped, not fatal,
//! so that one exotic key does not lock every user out.

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::id_token::{Key, ALLOWED};

/// The usable keys of the JWKS `doc`; an error when it is not a JWKS at all.
pub fn parse(doc: &Value) -> Result<Vec<Key>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "the JWKS has no keys array".to_owned())?;
    Ok(keys.iter().filter_map(key).collect())
}

fn key(v: &Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(v.clone()).ok()?;
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return None;
    }
    let alg = match jwk.common.key_algorithm {
        Some(a) => Some(
            a.to_string()
                .parse::<Algorithm>()
                .ok()
                .filter(|a| ALLOWED.contains(a))?,
        ),
        None => None,
    };
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key: DecodingKey::from_jwk(&jwk).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_asymmetric_signature_keys_are_kept() {
        let rsa = json!({"kty": "RSA", "kid": "r", "alg": "RS256", "use": "sig", "n": "AQAB", "e": "AQAB"});
        let enc = json!({"kty": "RSA", "kid": "e", "use": "enc", "n": "AQAB", "e": "AQAB"});
        let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
        let hs = json!({"kty": "RSA", "kid": "x", "alg": "HS256", "n": "AQAB", "e": "AQAB"});
        let odd = json!({"kty": "XYZ", "kid": "?"});
        let keys = parse(&json!({"keys": [rsa, enc, oct, hs, odd]})).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("r"));
        assert_eq!(keys[0].alg, Some(Algorithm::RS256));
        assert!(parse(&json!({"nokeys": []})).is_err());
    }
}
