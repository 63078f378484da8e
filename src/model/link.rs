//! User ↔ provider links: a Latchkey user tied to an account at an upstream provider (Stack Auth's
//! "OAuth providers" of a user, docs/endpoints.md#links).
//!
//! A link either lets the upstream account sign in as its user (`allow_sign_in`), or only records a connected
//! account, or both. Two rules make sign-in unambiguous, and the store enforces them atomically: an upstream
//! account (`provider`, `account_id`) signs in to at most one user, and a user has at most one sign-in link per
//! provider. Connected-only links are free: the same upstream account may be connected to many users.

use crate::clock::Millis;
use crate::error::{Error, Field, Result};

/// The type of every link to an RC custom provider (Stack's `type`).
pub const CUSTOM_TYPE: &str = "custom";
/// Upper bound on an upstream account id: it is part of an index key, so keep keys short.
pub const MAX_ACCOUNT_ID_LEN: usize = 512;
/// Longest email accepted on a link (RFC 5321's path limit).
pub const MAX_EMAIL_LEN: usize = 254;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// UUID v4 (`crate::crypto::uuid_v4`): Stack's `id`, the `{provider_id}` of the API paths.
    pub id: String,
    pub user_id: String,
    /// The provider's service key (`myidp`): Stack's `provider_config_id`.
    pub provider: String,
    /// Stack's `type`; [`CUSTOM_TYPE`] for RC custom providers.
    pub provider_type: String,
    /// The email the upstream reported, if any; informational (never used to find users).
    pub email: Option<String>,
    pub allow_sign_in: bool,
    pub allow_connected_accounts: bool,
    /// The upstream's stable id of the account (`sub`, `id`, ...).
    pub account_id: String,
    /// Orders a user's links ("creation order"); never changes.
    pub created_at: Millis,
    /// Upstream access/refresh tokens, sealed by the caller; opaque to the store and never sent on the wire.
    pub upstream: Option<Vec<u8>>,
}

impl Link {
    /// Checks what callers may choose. Ids, the user and the provider are checked against the store by the
    /// store itself.
    pub fn validate(&self) -> Result<()> {
        validate_account_id(&self.account_id)?;
        if let Some(e) = &self.email {
            validate_email(e)?;
        }
        if self.provider_type.is_empty() {
            return Err(Error::invalid(Field::ProviderType, "must not be empty"));
        }
        Ok(())
    }
}

/// A non-empty upstream account id of at most [`MAX_ACCOUNT_ID_LEN`] bytes.
pub fn validate_account_id(id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::invalid(Field::AccountId, "must not be empty"));
    }
    if id.len() > MAX_ACCOUNT_ID_LEN {
        return Err(Error::invalid(
            Field::AccountId,
            format!("must be at most {MAX_ACCOUNT_ID_LEN} bytes"),
        ));
    }
    Ok(())
}

/// An email as Stack's schema accepts it. Stored as given (Stack does not normalize link emails), so only the
/// shape is checked here.
pub fn validate_email(email: &str) -> Result<()> {
    if email.len() > MAX_EMAIL_LEN || crate::model::user::normalize_email(email).is_err() {
        return Err(Error::invalid(Field::Email, "must be a valid email"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> Link {
        Link {
            id: "00000000-0000-4000-8000-000000000000".into(),
            user_id: "u".into(),
            provider: "myidp".into(),
            provider_type: CUSTOM_TYPE.into(),
            email: Some("jane@example.com".into()),
            allow_sign_in: true,
            allow_connected_accounts: false,
            account_id: "123".into(),
            created_at: 1,
            upstream: None,
        }
    }

    #[test]
    fn validation() {
        assert!(link().validate().is_ok());
        let bad = |f: fn(&mut Link)| {
            let mut l = link();
            f(&mut l);
            l.validate().unwrap_err()
        };
        assert!(matches!(
            bad(|l| l.account_id.clear()),
            Error::Invalid {
                field: Field::AccountId,
                ..
            }
        ));
        assert!(matches!(
            bad(|l| l.account_id = "x".repeat(MAX_ACCOUNT_ID_LEN + 1)),
            Error::Invalid {
                field: Field::AccountId,
                ..
            }
        ));
        assert!(matches!(
            bad(|l| l.email = Some("not-an-email".into())),
            Error::Invalid {
                field: Field::Email,
                ..
            }
        ));
        let mut l = link();
        l.email = None;
        l.account_id = "x".repeat(MAX_ACCOUNT_ID_LEN);
        assert!(l.validate().is_ok());
    }

    #[test]
    fn emails_keep_their_case() {
        assert!(validate_email("Jane@Example.com").is_ok());
        assert!(validate_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }
}
