//! `signing_keys` values: [`SigningKey`], the private key only as the sealed bytes. One layout so far, version 1.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::oidc::SigningAlg;
use crate::model::signing_key::PublicKey;
use crate::model::SigningKey;
use crate::store::codec::{Body, Record};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKeyV1 {
    pub kid: String,
    pub alg: SigningAlgV1,
    pub private_sealed: Vec<u8>,
    pub public: PublicKeyV1,
    pub created_at: i64,
    pub signs_from: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SigningAlgV1 {
    Rs256,
    Es256,
    EdDsa,
}

/// Raw big-endian components, as [`PublicKey`] holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PublicKeyV1 {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { x: Vec<u8>, y: Vec<u8> },
    Ed25519 { x: Vec<u8> },
}

impl Record for SigningKey {
    const VERSION: u8 = 1;
    type Disk = SigningKeyV1;

    fn upgrade(body: Body<'_>) -> Result<SigningKeyV1> {
        match body.version() {
            1 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<SigningKey> for SigningKeyV1 {
    fn from(k: SigningKey) -> Self {
        Self {
            kid: k.kid,
            alg: match k.alg {
                SigningAlg::Rs256 => SigningAlgV1::Rs256,
                SigningAlg::Es256 => SigningAlgV1::Es256,
                SigningAlg::EdDsa => SigningAlgV1::EdDsa,
            },
            private_sealed: k.private_sealed,
            public: match k.public {
                PublicKey::Rsa { n, e } => PublicKeyV1::Rsa { n, e },
                PublicKey::Ec { x, y } => PublicKeyV1::Ec { x, y },
                PublicKey::Ed25519 { x } => PublicKeyV1::Ed25519 { x },
            },
            created_at: k.created_at,
            signs_from: k.signs_from,
        }
    }
}

impl From<SigningKeyV1> for SigningKey {
    fn from(k: SigningKeyV1) -> Self {
        Self {
            kid: k.kid,
            alg: match k.alg {
                SigningAlgV1::Rs256 => SigningAlg::Rs256,
                SigningAlgV1::Es256 => SigningAlg::Es256,
                SigningAlgV1::EdDsa => SigningAlg::EdDsa,
            },
            private_sealed: k.private_sealed,
            public: match k.public {
                PublicKeyV1::Rsa { n, e } => PublicKey::Rsa { n, e },
                PublicKeyV1::Ec { x, y } => PublicKey::Ec { x, y },
                PublicKeyV1::Ed25519 { x } => PublicKey::Ed25519 { x },
            },
            created_at: k.created_at,
            signs_from: k.signs_from,
        }
    }
}
