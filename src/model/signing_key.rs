//! A signing key of the JWKS: what the store keeps of it and when it signs. The rules of its life (which key
//! signs, when it is published and pruned) are `core::keys`'; the JOSE work is `crypto::jose`'.

use crate::clock::Millis;
pub use crate::crypto::jose::PublicKey;
use crate::crypto::jose::SigningAlg;

/// One key pair. Its `kid` is the RFC 7638 thumbprint of `public`, so a kid names one key on every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// The private key's DER, sealed under the master key with [`SigningKey::seal_aad`]; never logged.
    pub private_sealed: Vec<u8>,
    pub public: PublicKey,
    /// When the key was made: it is published in the JWKS from then on.
    pub created_at: Millis,
    /// When it starts signing (a new key is published ahead of it, so caches learn it first).
    pub signs_from: Millis,
}

impl SigningKey {
    /// The associated data the private key is sealed with (`jwk:` ‖ kid): a sealed key copied onto another
    /// record does not open.
    pub fn seal_aad(kid: &str) -> Vec<u8> {
        [b"jwk:".as_slice(), kid.as_bytes()].concat()
    }
}
