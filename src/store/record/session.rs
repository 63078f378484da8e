//! `login_tokens` values: [`LoginToken`]. One layout so far, read under version bytes 1 and 2.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::codec::{Body, Record};
use crate::store::LoginToken;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginTokenV1 {
    pub user_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Record for LoginToken {
    const VERSION: u8 = 2;
    type Disk = LoginTokenV1;

    fn upgrade(body: Body<'_>) -> Result<LoginTokenV1> {
        match body.version() {
            1 | 2 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<LoginToken> for LoginTokenV1 {
    fn from(t: LoginToken) -> Self {
        Self {
            user_id: t.user_id,
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}

impl From<LoginTokenV1> for LoginToken {
    fn from(t: LoginTokenV1) -> Self {
        Self {
            user_id: t.user_id,
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}
