//! `links` values: [`Link`]. One layout so far, read under version bytes 1 and 2.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::Link;
use crate::store::codec::{Body, Record};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkV1 {
    pub id: String,
    pub user_id: String,
    pub provider: String,
    pub provider_type: String,
    pub email: Option<String>,
    pub allow_sign_in: bool,
    pub allow_connected_accounts: bool,
    pub account_id: String,
    pub created_at: i64,
    pub upstream: Option<Vec<u8>>,
}

impl Record for Link {
    const VERSION: u8 = 2;
    type Disk = LinkV1;

    fn upgrade(body: Body<'_>) -> Result<LinkV1> {
        match body.version() {
            1 | 2 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<Link> for LinkV1 {
    fn from(l: Link) -> Self {
        Self {
            id: l.id,
            user_id: l.user_id,
            provider: l.provider,
            provider_type: l.provider_type,
            email: l.email,
            allow_sign_in: l.allow_sign_in,
            allow_connected_accounts: l.allow_connected_accounts,
            account_id: l.account_id,
            created_at: l.created_at,
            upstream: l.upstream,
        }
    }
}

impl From<LinkV1> for Link {
    fn from(l: LinkV1) -> Self {
        Self {
            id: l.id,
            user_id: l.user_id,
            provider: l.provider,
            provider_type: l.provider_type,
            email: l.email,
            allow_sign_in: l.allow_sign_in,
            allow_connected_accounts: l.allow_connected_accounts,
            account_id: l.account_id,
            created_at: l.created_at,
            upstream: l.upstream,
        }
    }
}
