//! ID token validation (OIDC Core §3.1.3.7), pure: the token, the issuer's keys and what this sign-in expects go
//! in, the claims or the one reason for refusal come out. Every check is Latchkey's own (jsonwebtoken's claim
//! checks are off) so that each refusal names what failed.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::crypto::{ct_eq, secret::b64url};

/// How far the issuer's clock may be from ours, for `exp` and `iat`.
pub const SKEW_SECS: i64 = 60;

/// The signature algorithms an upstream ID token may use: asymmetric only. `none` does not even parse, and HMAC
/// (whose key would be the client secret, or worse a public key used as one) is never accepted.
pub const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Why an ID token was refused, worded for the sign-in error page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the ID token is malformed")]
    Malformed,
    #[error("the ID token's algorithm {0} is not allowed")]
    Algorithm(String),
    #[error("the ID token is signed with a key the issuer does not publish")]
    UnknownKey,
    #[error("the ID token has a bad signature")]
    BadSignature,
    #[error("the ID token has the wrong issuer")]
    WrongIssuer,
    #[error("the ID token has the wrong audience")]
    WrongAudience,
    #[error("the ID token's authorized party (azp) is not this client")]
    WrongAzp,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token is issued in the future")]
    NotYetValid,
    #[error("the ID token's nonce does not match this sign-in (nonce mismatch)")]
    Nonce,
    #[error("the ID token's at_hash does not match the access token")]
    AtHash,
    #[error("the ID token has no subject (sub)")]
    NoSubject,
}

/// One verification key of the issuer's JWKS.
pub struct Key {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it names one: the key then verifies only that algorithm.
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

/// What this sign-in expects of its ID token.
pub struct Expected<'a> {
    /// The issuer, byte for byte (discovery's `issuer`, which equals the configured URL).
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sealed in this sign-in's pending cookie.
    pub nonce: &'a str,
    /// The access token of the same token response, for `at_hash`.
    pub access_token: &'a str,
    pub now_secs: i64,
}

/// The verified claims of `token`, or why it is refused. [`Rejection::UnknownKey`] tells the caller to refetch
/// the JWKS (once) and try again.
pub fn validate(
    token: &str,
    keys: &[Key],
    want: &Expected,
) -> Result<Map<String, Value>, Rejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
    if !ALLOWED.contains(&header.alg) {
        return Err(Rejection::Algorithm(format!("{:?}", header.alg)));
    }
    let key = pick(keys, header.kid.as_deref(), header.alg)?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Rejection::BadSignature,
            // A key of another family than the algorithm (an RSA key for an ES256 header).
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => Rejection::BadSignature,
            _ => Rejection::Malformed,
        })?
        .claims;
    check_claims(&claims, header.alg, want)?;
    Ok(claims)
}

/// The key the header names: by `kid`, else the one key that can verify `alg` when there is exactly one.
fn pick<'k>(keys: &'k [Key], kid: Option<&str>, alg: Algorithm) -> Result<&'k Key, Rejection> {
    let usable = |k: &&Key| k.alg.is_none_or(|a| a == alg);
    let mut found = keys.iter().filter(usable).filter(|k| match kid {
        Some(kid) => k.kid.as_deref() == Some(kid),
        None => true,
    });
    match (found.next(), found.next()) {
        (Some(k), None) => Ok(k),
        (Some(k), Some(_)) if kid.is_some() => Ok(k),
        _ => Err(Rejection::UnknownKey),
    }
}

fn check_claims(c: &Map<String, Value>, alg: Algorithm, want: &Expected) -> Result<(), Rejection> {
    if c.get("iss").and_then(Value::as_str) != Some(want.issuer) {
        return Err(Rejection::WrongIssuer);
    }
    let aud: Vec<&str> = match c.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !aud.contains(&want.client_id) {
        return Err(Rejection::WrongAudience);
    }
    match c.get("azp") {
        Some(azp) if azp.as_str() != Some(want.client_id) => return Err(Rejection::WrongAzp),
        None if aud.len() > 1 => return Err(Rejection::WrongAzp),
        _ => {}
    }
    let secs = |k: &str| c.get(k).and_then(Value::as_i64);
    match secs("exp") {
        Some(exp) if want.now_secs < exp + SKEW_SECS => {}
        _ => return Err(Rejection::Expired),
    }
    match secs("iat") {
        Some(iat) if iat <= want.now_secs + SKEW_SECS => {}
        _ => return Err(Rejection::NotYetValid),
    }
    let nonce = c.get("nonce").and_then(Value::as_str).unwrap_or("");
    if want.nonce.is_empty() || !ct_eq(nonce.as_bytes(), want.nonce.as_bytes()) {
        return Err(Rejection::Nonce);
    }
    if let Some(at_hash) = c.get("at_hash") {
        let expected = at_hash_of(alg, want.access_token);
        if !at_hash
            .as_str()
            .is_some_and(|h| ct_eq(h.as_bytes(), expected.as_bytes()))
        {
            return Err(Rejection::AtHash);
        }
    }
    match c.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() => Ok(()),
        _ => Err(Rejection::NoSubject),
    }
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the access token's hash under the algorithm's hash
/// (SHA-512 for EdDSA over Ed25519, as `oauth::id_token` makes it).
fn at_hash_of(alg: Algorithm, access: &str) -> String {
    let digest: Vec<u8> = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => Sha384::digest(access).to_vec(),
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::EdDSA => Sha512::digest(access).to_vec(),
        _ => Sha256::digest(access).to_vec(),
    };
    b64url(&digest[..digest.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::jose::{generate, public_key, PublicKey, Signer, SigningAlg};
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;
    const ISS: &str = "https://idp.example";

    fn key_of(alg: SigningAlg) -> (Signer, Key) {
        let der = generate(alg);
        let public = public_key(alg, &der).unwrap();
        let kid = public.thumbprint();
        let key = match &public {
            PublicKey::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            PublicKey::Ec { x, y } => {
                DecodingKey::from_ec_components(&b64url(x), &b64url(y)).unwrap()
            }
            PublicKey::Ed25519 { x } => DecodingKey::from_ed_components(&b64url(x)).unwrap(),
        };
        (
            Signer::new(kid.clone(), alg, &der).unwrap(),
            Key {
                kid: Some(kid),
                alg: None,
                key,
            },
        )
    }

    fn claims() -> Value {
        json!({"iss": ISS, "sub": "u1", "aud": "client", "exp": NOW + 300, "iat": NOW, "nonce": "n-1",
               "at_hash": at_hash_of(Algorithm::RS256, "access")})
    }

    fn want() -> Expected<'static> {
        Expected {
            issuer: ISS,
            client_id: "client",
            nonce: "n-1",
            access_token: "access",
            now_secs: NOW,
        }
    }

    /// `claims()` changed by `edit`, signed by a fresh RS256 key and validated against it.
    fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<Map<String, Value>, Rejection> {
        let (signer, key) = key_of(SigningAlg::Rs256);
        let mut c = claims().as_object().unwrap().clone();
        edit(&mut c);
        validate(&signer.sign("JWT", &c), &[key], &want())
    }

    #[test]
    fn a_good_token_of_every_algorithm_passes() {
        for alg in SigningAlg::ALL {
            let (signer, key) = key_of(alg);
            let mut c = claims();
            c["at_hash"] = at_hash_of(
                match alg {
                    SigningAlg::Rs256 => Algorithm::RS256,
                    SigningAlg::Es256 => Algorithm::ES256,
                    SigningAlg::EdDsa => Algorithm::EdDSA,
                },
                "access",
            )
            .into();
            let got = validate(&signer.sign("JWT", &c), &[key], &want()).unwrap();
            assert_eq!(got["sub"], "u1", "{alg:?}");
        }
        assert!(check(|c| {
            c.remove("at_hash");
        })
        .is_ok());
    }

    #[test]
    fn each_claim_rejection_names_what_failed() {
        type Edit = fn(&mut Map<String, Value>);
        let cases: Vec<(Rejection, Edit)> = vec![
            (Rejection::WrongIssuer, |c| {
                c.insert("iss".into(), json!("https://idp.example/"));
            }),
            (Rejection::WrongIssuer, |c| {
                c.remove("iss");
            }),
            (Rejection::WrongAudience, |c| {
                c.insert("aud".into(), json!("other"));
            }),
            (Rejection::WrongAudience, |c| {
                c.remove("aud");
            }),
            (Rejection::WrongAzp, |c| {
                c.insert("aud".into(), json!(["client", "other"]));
            }),
            (Rejection::WrongAzp, |c| {
                c.insert("azp".into(), json!("other"));
            }),
            (Rejection::Expired, |c| {
                c.insert("exp".into(), json!(NOW - SKEW_SECS));
            }),
            (Rejection::Expired, |c| {
                c.remove("exp");
            }),
            (Rejection::NotYetValid, |c| {
                c.insert("iat".into(), json!(NOW + SKEW_SECS + 1));
            }),
            (Rejection::Nonce, |c| {
                c.insert("nonce".into(), json!("n-2"));
            }),
            (Rejection::Nonce, |c| {
                c.remove("nonce");
            }),
            (Rejection::AtHash, |c| {
                c.insert("at_hash".into(), json!("AAAAAAAAAAAAAAAAAAAAAA"));
            }),
            (Rejection::NoSubject, |c| {
                c.remove("sub");
            }),
        ];
        for (want, edit) in cases {
            assert_eq!(check(edit).unwrap_err(), want);
        }
        // Within the skew, and several audiences with the right azp, pass.
        assert!(check(|c| {
            c.insert("exp".into(), json!(NOW - SKEW_SECS + 1));
        })
        .is_ok());
        assert!(check(|c| {
            c.insert("aud".into(), json!(["other", "client"]));
            c.insert("azp".into(), json!("client"));
        })
        .is_ok());
    }

    #[test]
    fn signature_key_and_algorithm_rejections() {
        let (signer, key) = key_of(SigningAlg::Es256);
        let keys = [key];
        let token = signer.sign("JWT", &claims());
        let mut bytes = token.clone().into_bytes();
        let last = bytes.len() - 3;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(
            validate(&tampered, &keys, &want()).unwrap_err(),
            Rejection::BadSignature
        );
        let (other, _) = key_of(SigningAlg::Es256);
        assert_eq!(
            validate(&other.sign("JWT", &claims()), &keys, &want()).unwrap_err(),
            Rejection::UnknownKey
        );
        assert_eq!(
            validate("not.a.jwt", &keys, &want()).unwrap_err(),
            Rejection::Malformed
        );
        // alg none does not parse; HS256 "signed" with the public key's bytes is refused before any key is used.
        let body = b64url(claims().to_string().as_bytes());
        let none = format!("{}.{body}.", b64url(br#"{"alg":"none"}"#));
        assert!(validate(&none, &keys, &want()).is_err());
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims(),
            &jsonwebtoken::EncodingKey::from_secret(b"public key bytes"),
        )
        .unwrap();
        assert_eq!(
            validate(&hs, &keys, &want()).unwrap_err(),
            Rejection::Algorithm("HS256".into())
        );
        // A key whose JWK says another algorithm does not verify this one.
        let (signer, mut key) = key_of(SigningAlg::Rs256);
        key.alg = Some(Algorithm::RS512);
        assert_eq!(
            validate(&signer.sign("JWT", &claims()), &[key], &want()).unwrap_err(),
            Rejection::UnknownKey
        );
    }
}
