//! `login_tokens` values: [`LoginToken`]. Version 3 added `amr`; versions 1 and 2 share one layout and read with
//! `amr` = [pwd]: before federated sign-in recorded itself, the only session a record could stand for that needs an
//! `amr` at all is a password one (a second factor is not claimed when it is not known to have been used).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::oidc::Amr;
use crate::store::codec::{Body, Record};
use crate::store::LoginToken;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginTokenV1 {
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Version 1's fields in place, then the authentication methods by their RFC 8176 names (names, not an enum, so a
/// new method needs no new version; a name this version does not know is dropped on read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginTokenV3 {
    pub base: LoginTokenV1,
    pub amr: Vec<String>,
}

impl Record for LoginToken {
    const VERSION: u8 = 3;
    type Disk = LoginTokenV3;

    fn upgrade(body: Body<'_>) -> Result<LoginTokenV3> {
        match body.version() {
            1 | 2 => body.read::<LoginTokenV1>().map(Into::into),
            3 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<LoginTokenV1> for LoginTokenV3 {
    fn from(base: LoginTokenV1) -> Self {
        Self {
            base,
            amr: amr_names(&[Amr::Pwd]),
        }
    }
}

/// The on-disk form of an `amr` list.
pub fn amr_names(amr: &[Amr]) -> Vec<String> {
    amr.iter().map(|a| a.as_str().to_owned()).collect()
}

/// An `amr` list read back; names this version does not know are dropped.
pub fn amr_values(names: &[String]) -> Vec<Amr> {
    names.iter().filter_map(|n| Amr::parse(n)).collect()
}

impl From<LoginToken> for LoginTokenV3 {
    fn from(t: LoginToken) -> Self {
        Self {
            base: LoginTokenV1 {
                user_id: t.user_id,
                created_at: t.created_at,
                expires_at: t.expires_at,
            },
            amr: amr_names(&t.amr),
        }
    }
}

impl From<LoginTokenV3> for LoginToken {
    fn from(t: LoginTokenV3) -> Self {
        Self {
            user_id: t.base.user_id,
            created_at: t.base.created_at,
            expires_at: t.base.expires_at,
            amr: amr_values(&t.amr),
        }
    }
}
