//! Users, their roles and what each role may do (Rocket.Chat's permission names).

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "lowercase")]
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
            other => Err(Error::invalid("roles", format!("unknown role {other:?}"))),
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub address: String,
    pub verified: bool,
}

/// Who created a record, as Rocket.Chat embeds it (`_createdBy: {_id, username}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct UserRef {
    pub id: String,
    pub username: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl User {
    pub fn can(&self, p: Permission) -> bool {
        self.roles.iter().any(|r| r.permits(p))
    }

    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
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
            "username",
            format!("{u} is not a valid username"),
        ))
    }
}

/// A pragmatic address check (one `@`, non-empty local part, a dotted domain); normalizes to lowercase.
pub fn normalize_email(e: &str) -> Result<String> {
    let e = e.trim();
    let bad = || Error::invalid("email", format!("Invalid email {e}"));
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
        return Err(Error::invalid("password", "must be 1 to 1024 bytes"));
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
