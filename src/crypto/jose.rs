//! JOSE: the algorithms and keys Latchkey signs JWTs with (ID tokens, JWT access tokens), their public JWKs and
//! RFC 7638 thumbprints (the `kid`), signing, and verification of the JWTs Latchkey itself issued.
//!
//! Signing is ring's over keys parsed once per ring; verification is jsonwebtoken's (over ring); key generation is ring's for ES256 and Ed25519 and the `rsa`
//! crate's for RSA-2048 (ring cannot generate RSA keys), exported as PKCS#1 DER, the form ring signs with. A
//! private key is only ever DER bytes here: the store keeps them sealed, and nothing prints them.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
    ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::digest::sha256;
use super::secret::b64url;

/// A JWS algorithm Latchkey signs ID tokens (and JWT access tokens) with. RS256 is the default every relying
/// party accepts (OIDC Core §15.1 makes it mandatory to implement); ES256 and EdDSA are offered per client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum SigningAlg {
    #[default]
    Rs256,
    Es256,
    EdDsa,
}

impl SigningAlg {
    /// Every algorithm, RS256 first (the order discovery lists them in).
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

    /// The JWS `alg` name (RFC 7518 §3.1, RFC 8037 §3.1).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The inverse of [`SigningAlg::as_str`] (exact, case-sensitive as JWS names are).
    pub fn from_name(s: &str) -> Option<Self> {
        SigningAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }

    fn jwt(self) -> Algorithm {
        match self {
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::EdDsa => Algorithm::EdDSA,
        }
    }
}

/// Why a key or a token was refused. Says nothing about key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error("the private key does not parse as a {0} key")]
    BadKey(&'static str),
    #[error("token refused: {0}")]
    Refused(&'static str),
}

/// The public half of a signing key, as its JWK carries it (raw big-endian bytes; base64url only on the wire).
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// RS256: modulus and public exponent.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// ES256: the P-256 point's coordinates.
    Ec { x: Vec<u8>, y: Vec<u8> },
    /// EdDSA: the Ed25519 public key.
    Ed25519 { x: Vec<u8> },
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.thumbprint())
    }
}

impl PublicKey {
    /// The members RFC 7638 §3.2 hashes, in its lexicographic order, as (name, value) pairs.
    fn required_members(&self) -> Vec<(&'static str, String)> {
        match self {
            PublicKey::Rsa { n, e } => {
                vec![("e", b64url(e)), ("kty", "RSA".into()), ("n", b64url(n))]
            }
            PublicKey::Ec { x, y } => vec![
                ("crv", "P-256".into()),
                ("kty", "EC".into()),
                ("x", b64url(x)),
                ("y", b64url(y)),
            ],
            PublicKey::Ed25519 { x } => vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", b64url(x)),
            ],
        }
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): Latchkey's `kid`, so a kid names exactly one key.
    pub fn thumbprint(&self) -> String {
        let members: Vec<String> = self
            .required_members()
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":\"{v}\""))
            .collect();
        b64url(&sha256(format!("{{{}}}", members.join(",")).as_bytes()))
    }

    /// The public JWK (RFC 7517) for a JWKS: the thumbprint's members plus `use`, `alg` and `kid`.
    pub fn jwk(&self, alg: SigningAlg, kid: &str) -> serde_json::Value {
        let mut jwk = serde_json::Map::new();
        for (k, v) in self.required_members() {
            jwk.insert(k.into(), v.into());
        }
        jwk.insert("use".into(), "sig".into());
        jwk.insert("alg".into(), alg.as_str().into());
        jwk.insert("kid".into(), kid.into());
        jwk.into()
    }

    fn decoding_key(&self) -> Result<DecodingKey, JoseError> {
        let bad = |_| JoseError::BadKey("public");
        Ok(match self {
            PublicKey::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            PublicKey::Ec { x, y } => {
                DecodingKey::from_ec_components(&b64url(x), &b64url(y)).map_err(bad)?
            }
            PublicKey::Ed25519 { x } => DecodingKey::from_ed_components(&b64url(x)).map_err(bad)?,
        })
    }
}

/// A new private key for `alg` (RS256: PKCS#1 DER of RSA-2048; ES256 and EdDSA: PKCS#8 DER). RSA generation
/// takes a large fraction of a second: call it off the async workers.
pub fn generate(alg: SigningAlg) -> Vec<u8> {
    let rng = SystemRandom::new();
    match alg {
        SigningAlg::Rs256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey as _;
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
                .expect("RSA-2048 generation from the OS RNG");
            key.to_pkcs1_der()
                .expect("PKCS#1 encoding of a fresh key")
                .as_bytes()
                .to_vec()
        }
        SigningAlg::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("P-256 generation from the OS RNG")
            .as_ref()
            .to_vec(),
        SigningAlg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
            .expect("Ed25519 generation from the OS RNG")
            .as_ref()
            .to_vec(),
    }
}

/// The public half of the private key `der` (as [`generate`] makes it), checked to parse for `alg`.
pub fn public_key(alg: SigningAlg, der: &[u8]) -> Result<PublicKey, JoseError> {
    let bad = |_| JoseError::BadKey(alg.as_str());
    Ok(match alg {
        SigningAlg::Rs256 => {
            let pair = RsaKeyPair::from_der(der).map_err(bad)?;
            let public = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
            PublicKey::Rsa {
                n: public.n,
                e: public.e,
            }
        }
        SigningAlg::Es256 => {
            let pair = EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
                &SystemRandom::new(),
            )
            .map_err(bad)?;
            // The uncompressed point: 0x04 ‖ x ‖ y, 32 bytes each.
            let point = pair.public_key().as_ref();
            PublicKey::Ec {
                x: point[1..33].to_vec(),
                y: point[33..65].to_vec(),
            }
        }
        SigningAlg::EdDsa => PublicKey::Ed25519 {
            x: Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(bad)?
                .public_key()
                .as_ref()
                .to_vec(),
        },
    })
}

/// Signs JWTs with one key. Built once per key (the ring reloads it); signing takes no lock.
pub struct Signer {
    kid: String,
    alg: SigningAlg,
    key: KeyPair,
    rng: SystemRandom,
}

/// A private key parsed once, when the ring is loaded: parsing is most of the cost of a signature (an Ed25519
/// key derives its public point, an RSA key checks its primes), so a signer that parsed per call, as
/// jsonwebtoken's `encode` does, signs at half the rate.
enum KeyPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A JWS protected header as Latchkey writes it.
#[derive(Serialize)]
struct JwsHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'a str,
}

impl Signer {
    /// A signer for the private key `der` of `alg` named `kid`; refuses a key that does not parse, so that
    /// [`Signer::sign`] cannot fail on it later.
    pub fn new(kid: String, alg: SigningAlg, der: &[u8]) -> Result<Self, JoseError> {
        let bad = |_| JoseError::BadKey(alg.as_str());
        let rng = SystemRandom::new();
        let key = match alg {
            SigningAlg::Rs256 => KeyPair::Rsa(RsaKeyPair::from_der(der).map_err(bad)?),
            SigningAlg::Es256 => KeyPair::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(bad)?,
            ),
            SigningAlg::EdDsa => {
                KeyPair::Ed(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(bad)?)
            }
        };
        Ok(Self { kid, alg, key, rng })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The compact JWS of `claims`, with `alg`, `kid` and `typ` (`JWT`, `at+jwt`, …) in its header.
    pub fn sign(&self, typ: &str, claims: &impl Serialize) -> String {
        let header = JwsHeader {
            alg: self.alg.as_str(),
            kid: &self.kid,
            typ,
        };
        let header = serde_json::to_vec(&header).expect("a header serializes");
        let claims = serde_json::to_vec(claims).expect("claims serialize to JSON");
        let mut out = b64url(&header);
        out.push('.');
        out.push_str(&b64url(&claims));
        let signature = match &self.key {
            KeyPair::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig)
                    .expect("RSA signing fails only when the RNG does");
                sig
            }
            KeyPair::Ec(k) => k
                .sign(&self.rng, out.as_bytes())
                .expect("ECDSA signing fails only when the RNG does")
                .as_ref()
                .to_vec(),
            KeyPair::Ed(k) => k.sign(out.as_bytes()).as_ref().to_vec(),
        };
        out.push('.');
        out.push_str(&b64url(&signature));
        out
    }
}

/// A published key a token may be verified against.
pub struct VerifyingKey {
    kid: String,
    alg: SigningAlg,
    key: DecodingKey,
}

impl VerifyingKey {
    pub fn new(kid: String, alg: SigningAlg, public: &PublicKey) -> Result<Self, JoseError> {
        Ok(Self {
            kid,
            alg,
            key: public.decoding_key()?,
        })
    }
}

/// The claims of `token` when it is a JWS by one of `keys` (found by the header's `kid`, with that key's own
/// `alg`, which must be in `allowed`). Checks the signature only: `exp`, `aud` and `iss` are the caller's to check
/// with its clock and context (an `id_token_hint` may have expired). `alg: none`, HMAC and unknown kids are
/// refused.
pub fn verify<T: DeserializeOwned>(
    token: &str,
    keys: &[VerifyingKey],
    allowed: &[SigningAlg],
) -> Result<T, JoseError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| JoseError::Refused("malformed header"))?;
    let kid = header.kid.ok_or(JoseError::Refused("no kid"))?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(JoseError::Refused("unknown kid"))?;
    if header.alg != key.alg.jwt() || !allowed.contains(&key.alg) {
        return Err(JoseError::Refused("algorithm not allowed"));
    }
    let mut validation = Validation::new(key.alg.jwt());
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode(token, &key.key, &validation)
        .map(|d| d.claims)
        .map_err(|_| JoseError::Refused("bad signature or claims"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::secret::b64url_decode;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Claims {
        sub: String,
        exp: i64,
    }

    fn claims() -> Claims {
        Claims {
            sub: "u1".into(),
            exp: 1,
        }
    }

    fn key(alg: SigningAlg) -> (Signer, VerifyingKey) {
        let der = generate(alg);
        let public = public_key(alg, &der).unwrap();
        let kid = public.thumbprint();
        (
            Signer::new(kid.clone(), alg, &der).unwrap(),
            VerifyingKey::new(kid, alg, &public).unwrap(),
        )
    }

    #[test]
    fn round_trips_per_algorithm_with_kid_and_typ_in_the_header() {
        for alg in SigningAlg::ALL {
            let (signer, verifying) = key(alg);
            let token = signer.sign("JWT", &claims());
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(signer.kid()));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            assert_eq!(header.alg, alg.jwt());
            let back: Claims = verify(&token, &[verifying], &SigningAlg::ALL).unwrap();
            assert_eq!(back, claims(), "{alg:?}");
        }
    }

    #[test]
    fn thumbprint_of_rfc_7638_example() {
        let n = b64url_decode(
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjB\
             ZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8K\
             JZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xB\
             niIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        )
        .unwrap();
        let key = PublicKey::Rsa {
            n,
            e: vec![1, 0, 1],
        };
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        let jwk = key.jwk(SigningAlg::Rs256, "k");
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(jwk["use"], "sig");
    }

    #[test]
    fn tampered_signature_wrong_kid_and_disallowed_alg_are_refused() {
        let (signer, verifying) = key(SigningAlg::EdDsa);
        let keys = [verifying];
        let token = signer.sign("JWT", &claims());
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(verify::<Claims>(&tampered, &keys, &SigningAlg::ALL).is_err());
        let (other, _) = key(SigningAlg::EdDsa);
        assert_eq!(
            verify::<Claims>(&other.sign("JWT", &claims()), &keys, &SigningAlg::ALL).unwrap_err(),
            JoseError::Refused("unknown kid")
        );
        assert!(verify::<Claims>(&token, &keys, &[SigningAlg::Rs256]).is_err());
    }

    #[test]
    fn alg_none_and_hmac_are_refused() {
        let (signer, verifying) = key(SigningAlg::Es256);
        let keys = [verifying];
        let body = b64url(br#"{"sub":"u1","exp":1}"#);
        let none = format!(
            "{}.{body}.",
            b64url(format!(r#"{{"alg":"none","kid":"{}"}}"#, signer.kid()).as_bytes())
        );
        assert!(verify::<Claims>(&none, &keys, &SigningAlg::ALL).is_err());
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some(signer.kid().to_owned());
        let hs = jsonwebtoken::encode(
            &header,
            &claims(),
            &jsonwebtoken::EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(
            verify::<Claims>(&hs, &keys, &SigningAlg::ALL).unwrap_err(),
            JoseError::Refused("algorithm not allowed")
        );
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        let der = generate(SigningAlg::EdDsa);
        assert!(public_key(SigningAlg::Es256, &der).is_err());
        assert!(Signer::new("k".into(), SigningAlg::Rs256, &der).is_err());
    }
}
