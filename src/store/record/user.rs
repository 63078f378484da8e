//! `users` values: [`User`] with its emails, roles, second-factor state and OpenID Connect profile. Version 2
//! added `TwoFactor::last_totp_step` (a version-1 record reads as 0: no code accepted yet); version 3 the profile
//! (an older record reads with an empty one).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::profile::{custom_json, Profile, StandardClaim};
use crate::model::user::{Email, PasswordDigest, TwoFactor};
use crate::model::{Role, User};
use crate::store::codec::{Body, Record};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserV1 {
    pub id: String,
    pub username: String,
    pub name: String,
    pub emails: Vec<EmailV1>,
    pub roles: Vec<RoleV1>,
    pub active: bool,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub two_factor: Option<TwoFactorV1>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserV2 {
    pub id: String,
    pub username: String,
    pub name: String,
    pub emails: Vec<EmailV1>,
    pub roles: Vec<RoleV1>,
    pub active: bool,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub two_factor: Option<TwoFactorV2>,
}

/// Version 2's fields in place (bincode writes a nested struct's fields inline), then the profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserV3 {
    pub base: UserV2,
    pub profile: ProfileV3,
}

/// An empty profile is four zero bytes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProfileV3 {
    /// Standard string claims by their OIDC name, in name order.
    pub standard: Vec<(String, String)>,
    pub phone_number_verified: Option<bool>,
    /// `address` members by name.
    pub address: Vec<(String, String)>,
    /// The custom claims as canonical JSON text (a JSON value has no bincode layout); `None`: none.
    pub custom: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailV1 {
    pub address: String,
    pub verified: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum RoleV1 {
    Admin,
    User,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoFactorV1 {
    pub totp_secret: Option<Vec<u8>>,
    pub totp_enabled: bool,
    pub backup_codes: Vec<[u8; 32]>,
    pub password_digest: Option<PasswordDigestV1>,
}

/// Version 1's fields in place (bincode writes a nested struct's fields inline), then the new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoFactorV2 {
    pub base: TwoFactorV1,
    pub last_totp_step: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordDigestV1 {
    pub phc: String,
    pub for_password: [u8; 32],
}

impl Record for User {
    const VERSION: u8 = 3;
    type Disk = UserV3;

    fn upgrade(body: Body<'_>) -> Result<UserV3> {
        match body.version() {
            1 => body.read::<UserV1>().map(|u| UserV2::from(u).into()),
            2 => body.read::<UserV2>().map(Into::into),
            3 => {
                let u: UserV3 = body.read()?;
                match &u.profile.custom {
                    Some(j) if serde_json::from_str::<serde_json::Map<_, _>>(j).is_err() => Err(
                        Error::internal("corrupt record: custom claims are not a JSON object"),
                    ),
                    _ => Ok(u),
                }
            }
            _ => body.unknown(),
        }
    }
}

impl From<UserV2> for UserV3 {
    fn from(base: UserV2) -> Self {
        Self {
            base,
            profile: ProfileV3::default(),
        }
    }
}

impl From<User> for UserV3 {
    fn from(u: User) -> Self {
        let profile = u.profile.clone().into();
        Self {
            base: u.into(),
            profile,
        }
    }
}

impl From<UserV3> for User {
    fn from(u: UserV3) -> Self {
        Self {
            profile: u.profile.into(),
            ..u.base.into()
        }
    }
}

impl From<Profile> for ProfileV3 {
    fn from(p: Profile) -> Self {
        Self {
            standard: p
                .standard
                .into_iter()
                .map(|(c, v)| (c.as_str().to_owned(), v))
                .collect(),
            phone_number_verified: p.phone_number_verified,
            address: p.address.into_iter().collect(),
            custom: custom_json(&p.custom),
        }
    }
}

/// `upgrade` has checked that the custom claims parse.
impl From<ProfileV3> for Profile {
    fn from(p: ProfileV3) -> Self {
        Self {
            standard: p
                .standard
                .into_iter()
                .filter_map(|(k, v)| Some((StandardClaim::parse(&k)?, v)))
                .collect(),
            phone_number_verified: p.phone_number_verified,
            address: p.address.into_iter().collect(),
            custom: p
                .custom
                .and_then(|j| serde_json::from_str(&j).ok())
                .unwrap_or_default(),
        }
    }
}

impl From<UserV1> for UserV2 {
    fn from(u: UserV1) -> Self {
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            emails: u.emails,
            roles: u.roles,
            active: u.active,
            password_hash: u.password_hash,
            created_at: u.created_at,
            updated_at: u.updated_at,
            two_factor: u.two_factor.map(Into::into),
        }
    }
}

impl From<TwoFactorV1> for TwoFactorV2 {
    fn from(base: TwoFactorV1) -> Self {
        Self {
            base,
            last_totp_step: 0,
        }
    }
}

/// The base layout of a user; its profile is [`UserV3`]'s.
impl From<User> for UserV2 {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            emails: u.emails.into_iter().map(Into::into).collect(),
            roles: u.roles.into_iter().map(Into::into).collect(),
            active: u.active,
            password_hash: u.password_hash,
            created_at: u.created_at,
            updated_at: u.updated_at,
            two_factor: u.two_factor.map(Into::into),
        }
    }
}

/// A user of version 2's layout, with an empty profile.
impl From<UserV2> for User {
    fn from(u: UserV2) -> Self {
        Self {
            id: u.id,
            username: u.username,
            name: u.name,
            emails: u.emails.into_iter().map(Into::into).collect(),
            roles: u.roles.into_iter().map(Into::into).collect(),
            active: u.active,
            password_hash: u.password_hash,
            created_at: u.created_at,
            updated_at: u.updated_at,
            two_factor: u.two_factor.map(Into::into),
            profile: Profile::default(),
        }
    }
}

impl From<Email> for EmailV1 {
    fn from(e: Email) -> Self {
        Self {
            address: e.address,
            verified: e.verified,
        }
    }
}

impl From<EmailV1> for Email {
    fn from(e: EmailV1) -> Self {
        Self {
            address: e.address,
            verified: e.verified,
        }
    }
}

impl From<Role> for RoleV1 {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => Self::Admin,
            Role::User => Self::User,
        }
    }
}

impl From<RoleV1> for Role {
    fn from(r: RoleV1) -> Self {
        match r {
            RoleV1::Admin => Self::Admin,
            RoleV1::User => Self::User,
        }
    }
}

impl From<TwoFactor> for TwoFactorV2 {
    fn from(t: TwoFactor) -> Self {
        Self {
            base: TwoFactorV1 {
                totp_secret: t.totp_secret,
                totp_enabled: t.totp_enabled,
                backup_codes: t.backup_codes,
                password_digest: t.password_digest.map(Into::into),
            },
            last_totp_step: t.last_totp_step,
        }
    }
}

impl From<TwoFactorV2> for TwoFactor {
    fn from(t: TwoFactorV2) -> Self {
        Self {
            totp_secret: t.base.totp_secret,
            totp_enabled: t.base.totp_enabled,
            backup_codes: t.base.backup_codes,
            password_digest: t.base.password_digest.map(Into::into),
            last_totp_step: t.last_totp_step,
        }
    }
}

impl From<PasswordDigest> for PasswordDigestV1 {
    fn from(d: PasswordDigest) -> Self {
        Self {
            phc: d.phc,
            for_password: d.for_password,
        }
    }
}

impl From<PasswordDigestV1> for PasswordDigest {
    fn from(d: PasswordDigestV1) -> Self {
        Self {
            phc: d.phc,
            for_password: d.for_password,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec;

    /// A user record written before `last_totp_step` existed (record version 1) still decodes, as 0.
    #[test]
    fn a_version_1_user_record_still_decodes() {
        let digest = PasswordDigestV1 {
            phc: "$argon2id$x".into(),
            for_password: [7; 32],
        };
        let old = UserV1 {
            id: "u1".into(),
            username: "jane".into(),
            name: "Jane".into(),
            emails: vec![EmailV1 {
                address: "jane@example.com".into(),
                verified: true,
            }],
            roles: vec![RoleV1::User],
            active: true,
            password_hash: Some("$argon2id$y".into()),
            created_at: 1,
            updated_at: 2,
            two_factor: Some(TwoFactorV1 {
                totp_secret: Some(vec![1, 2, 3]),
                totp_enabled: true,
                backup_codes: vec![[9; 32]],
                password_digest: Some(digest.clone()),
            }),
        };
        let user: User = codec::decode(&codec::encode_as(1, &old)).unwrap();
        assert_eq!(
            user.two_factor,
            Some(TwoFactor {
                totp_secret: Some(vec![1, 2, 3]),
                totp_enabled: true,
                backup_codes: vec![[9; 32]],
                password_digest: Some(digest.into()),
                last_totp_step: 0,
            })
        );
        assert_eq!((user.username.as_str(), user.updated_at), ("jane", 2));
        // Today's records carry the step.
        let mut now = user.clone();
        now.two_factor.as_mut().unwrap().last_totp_step = 59_999_999;
        let bytes = codec::encode(&now);
        assert_eq!(bytes[0], User::VERSION);
        assert_eq!(codec::decode::<User>(&bytes).unwrap(), now);
    }
}
