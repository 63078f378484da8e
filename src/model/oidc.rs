//! OpenID Connect vocabulary shared by the key ring, the clients' settings and the sign-in session: the signing
//! algorithms Latchkey offers and the authentication methods it records (`amr`, RFC 8176).

use crate::error::{Error, Field, Result};

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

    /// Parses a JWS `alg` name; `field` names the setting it came from, for the error.
    pub fn parse(s: &str, field: Field) -> Result<Self> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| Error::invalid(field, "must be one of RS256, ES256, EdDSA"))
    }
}

/// How the user authenticated in a sign-in session (RFC 8176 values), reported as the ID token's `amr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Amr {
    /// A password.
    Pwd,
    /// A one-time password (TOTP or a backup code) as a second factor.
    Otp,
    /// Federated sign-in through an upstream provider. RFC 8176 registers no value for it; `fed` is the one in
    /// wide use.
    Fed,
}

impl Amr {
    pub fn as_str(self) -> &'static str {
        match self {
            Amr::Pwd => "pwd",
            Amr::Otp => "otp",
            Amr::Fed => "fed",
        }
    }

    /// The inverse of [`Amr::as_str`]; `None` for a value this version does not know.
    pub fn parse(s: &str) -> Option<Self> {
        [Amr::Pwd, Amr::Otp, Amr::Fed]
            .into_iter()
            .find(|a| a.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(a.as_str(), Field::Name).unwrap(), a);
        }
        assert!(SigningAlg::parse("HS256", Field::Name).is_err());
        assert!(SigningAlg::parse("none", Field::Name).is_err());
        for a in [Amr::Pwd, Amr::Otp, Amr::Fed] {
            assert_eq!(Amr::parse(a.as_str()), Some(a));
        }
    }
}
