//! `revoked_jti` values: [`RevokedJti`], a revoked JWT access token the store never kept (client_credentials), kept
//! until the token expires. One layout so far, version 1.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::Result;
use crate::store::codec::{Body, Record};

/// A revoked, unstored JWT access token, keyed by its `jti`: whose it was, and until when it must stay refused
/// (its `exp`; after that it is dead anyway and the sweeper forgets it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedJti {
    pub client_id: String,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokedJtiV1 {
    pub client_id: String,
    pub expires_at: i64,
}

impl Record for RevokedJti {
    const VERSION: u8 = 1;
    type Disk = RevokedJtiV1;

    fn upgrade(body: Body<'_>) -> Result<RevokedJtiV1> {
        match body.version() {
            1 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<RevokedJti> for RevokedJtiV1 {
    fn from(r: RevokedJti) -> Self {
        Self {
            client_id: r.client_id,
            expires_at: r.expires_at,
        }
    }
}

impl From<RevokedJtiV1> for RevokedJti {
    fn from(r: RevokedJtiV1) -> Self {
        Self {
            client_id: r.client_id,
            expires_at: r.expires_at,
        }
    }
}
