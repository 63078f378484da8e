//! JOSE: the algorithms Latchkey signs JWTs with (ID tokens, JWT access tokens).

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
}
