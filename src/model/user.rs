//! Users, their roles and what each role may do (Rocket.Chat's permission names).

use crate::clock::Millis;
use crate::error::{Error, Field, Result};

pub use super::profile::Profile;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(Error::invalid(
                Field::Roles,
                format!("unknown role {other:?}"),
            )),
        }
    }

    pub fn permits(self, p: Permission) -> bool {
        match self {
            Role::Admin => true,
            Role::User => {
                let _ = p;
                false
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    ManageOauthApps,
    AddOauthService,
    ViewPrivilegedSetting,
    EditPrivilegedSetting,
    CreateUser,
    DeleteUser,
    /// RC's `view-full-other-user-info`: another user's emails, roles, dates and claims in `users.info`.
    ViewFullOtherUserInfo,
    /// RC's `edit-other-user-info`: `users.update`.
    EditOtherUserInfo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    pub address: String,
    pub verified: bool,
}

/// Who created a record, as Rocket.Chat embeds it (`_createdBy: {_id, username}`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct UserRef {
    pub id: String,
    pub username: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub name: String,
    pub emails: Vec<Email>,
    pub roles: Vec<Role>,
    pub active: bool,
    /// argon2id PHC string; `None` for users that only sign in through an upstream provider.
    pub password_hash: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Second-factor state; `None` until the user (or a password check on a *2FA* route) first touches it.
    pub two_factor: Option<TwoFactor>,
    /// The optional OpenID Connect claims: standard (given name, address, …) and custom.
    pub profile: Profile,
}

/// Rocket.Chat's `services.totp`, plus the verifier that lets the `password` 2FA method accept the SHA-256
/// digest of the password that RC clients send.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TwoFactor {
    /// The TOTP seed, sealed under the master key (associated data `totp:` ‖ user id), never stored in clear.
    pub totp_secret: Option<Vec<u8>>,
    /// False while the seed awaits confirmation (`users.2fa.validateTempToken`); true: *2FA* routes need TOTP.
    pub totp_enabled: bool,
    /// SHA-256 of each unused backup code (random, so a fast digest suffices); each works once.
    pub backup_codes: Vec<[u8; 32]>,
    pub password_digest: Option<PasswordDigest>,
    /// The RFC 6238 time step of the last accepted TOTP code (0: none): a code of this step or an older one is a
    /// replay.
    pub last_totp_step: u64,
}

/// argon2id of the lowercase SHA-256 hex of the password. Only the plaintext password can make it, so it is
/// made when the password is set or first presented in clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordDigest {
    pub phc: String,
    /// SHA-256 of the `password_hash` it was made with: a changed password voids it without anyone having to
    /// remember to clear it.
    pub for_password: [u8; 32],
}

impl TwoFactor {
    pub fn totp_active(&self) -> bool {
        self.totp_enabled && self.totp_secret.is_some()
    }
}

impl User {
    pub fn can(&self, p: Permission) -> bool {
        self.roles.iter().any(|r| r.permits(p))
    }

    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// Whether *2FA* routes ask this user for a TOTP code (rather than the password fallback).
    pub fn totp_active(&self) -> bool {
        self.two_factor.as_ref().is_some_and(TwoFactor::totp_active)
    }

    pub fn primary_email(&self) -> Option<&str> {
        self.emails.first().map(|e| e.address.as_str())
    }

    pub fn as_ref(&self) -> UserRef {
        UserRef {
            id: self.id.clone(),
            username: self.username.clone(),
        }
    }
}

/// Rocket.Chat's default `UTF8_User_Names_Validation`: letters, digits, `-`, `.`, `_`.
pub fn validate_username(u: &str) -> Result<()> {
    let ok = !u.is_empty()
        && u.len() <= 64
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            Field::Username,
            format!("{u} is not a valid username"),
        ))
    }
}

/// A pragmatic address check (one `@`, non-empty local part, a dotted domain); normalizes to lowercase.
pub fn normalize_email(e: &str) -> Result<String> {
    let e = e.trim();
    let bad = || Error::invalid(Field::Email, format!("Invalid email {e}"));
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && e.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e.to_ascii_lowercase())
    } else {
        Err(bad())
    }
}

pub fn validate_password(p: &str) -> Result<()> {
    if p.is_empty() || p.len() > 1024 {
        return Err(Error::invalid(Field::Password, "must be 1 to 1024 bytes"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_rc_default_rule() {
        assert!(validate_username("jane.doe-1_x").is_ok());
        assert!(validate_username("jane doe").is_err());
        assert!(validate_username("").is_err());
        assert!(validate_username("ünï").is_err());
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(
            normalize_email(" Jane@Example.COM ").unwrap(),
            "jane@example.com"
        );
        for bad in [
            "jane",
            "@example.com",
            "jane@example",
            "a@b@c.d",
            "jane@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_admins_hold_permissions() {
        assert!(Role::Admin.permits(Permission::ManageOauthApps));
        assert!(!Role::User.permits(Permission::ManageOauthApps));
    }
}
