//! OpenID Connect vocabulary shared by the key ring, the clients' settings and the sign-in session: the signing
//! algorithms Latchkey offers and the authentication methods it records (`amr`, RFC 8176).

use crate::error::{Error, Field, Result};

pub use crate::crypto::jose::SigningAlg;

/// Parses a JWS `alg` name a client or the config chose; `field` names the setting it came from, for the error.
pub fn parse_alg(s: &str, field: Field) -> Result<SigningAlg> {
    SigningAlg::from_name(s)
        .ok_or_else(|| Error::invalid(field, "must be one of RS256, ES256, EdDSA"))
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
            assert_eq!(parse_alg(a.as_str(), Field::Name).unwrap(), a);
        }
        assert!(parse_alg("HS256", Field::Name).is_err());
        assert!(parse_alg("none", Field::Name).is_err());
        for a in [Amr::Pwd, Amr::Otp, Amr::Fed] {
            assert_eq!(Amr::parse(a.as_str()), Some(a));
        }
    }
}
