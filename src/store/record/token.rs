//! `codes`, `tokens` and `families` values: [`CodeRecord`], [`TokenRecord`], [`FamilyRecord`]. One layout each so
//! far, read under version bytes 1 and 2. The conversions are field by field, so a change of the domain shape
//! (typed owners, an optional family) is a change of the conversions here, not of the bytes.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::codec::{Body, Record};
use crate::store::token::{CodeRecord, FamilyRecord, GrantRecord, TokenKind, TokenRecord};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRecordV1 {
    pub grant: GrantRecordV1,
    pub expires_at: i64,
    /// The family the first redemption created.
    pub redeemed: Option<[u8; 16]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRecordV1 {
    /// User id; empty for client_credentials grants.
    pub owner_id: String,
    pub client_id: String,
    pub scope: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub pkce: Option<String>,
    pub auth_time: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecordV1 {
    pub kind: TokenKindV1,
    /// All zeros for a client_credentials token (it has no family).
    pub family: [u8; 16],
    pub client_id: String,
    /// The user; the client id for a client_credentials token.
    pub owner_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub rotated: bool,
    /// client_credentials tokens: the app's `token_epoch` at issue.
    pub epoch: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TokenKindV1 {
    Access,
    Refresh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyRecordV1 {
    pub client_id: String,
    pub owner_id: String,
    pub revoked: bool,
    pub created_at: i64,
}

impl Record for CodeRecord {
    const VERSION: u8 = 2;
    type Disk = CodeRecordV1;

    fn upgrade(body: Body<'_>) -> Result<CodeRecordV1> {
        match body.version() {
            1 | 2 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl Record for TokenRecord {
    const VERSION: u8 = 2;
    type Disk = TokenRecordV1;

    fn upgrade(body: Body<'_>) -> Result<TokenRecordV1> {
        match body.version() {
            1 | 2 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl Record for FamilyRecord {
    const VERSION: u8 = 2;
    type Disk = FamilyRecordV1;

    fn upgrade(body: Body<'_>) -> Result<FamilyRecordV1> {
        match body.version() {
            1 | 2 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<CodeRecord> for CodeRecordV1 {
    fn from(c: CodeRecord) -> Self {
        Self {
            grant: c.grant.into(),
            expires_at: c.expires_at,
            redeemed: c.redeemed,
        }
    }
}

impl From<CodeRecordV1> for CodeRecord {
    fn from(c: CodeRecordV1) -> Self {
        Self {
            grant: c.grant.into(),
            expires_at: c.expires_at,
            redeemed: c.redeemed,
        }
    }
}

impl From<GrantRecord> for GrantRecordV1 {
    fn from(g: GrantRecord) -> Self {
        Self {
            owner_id: g.owner_id,
            client_id: g.client_id,
            scope: g.scope,
            redirect_uri: g.redirect_uri,
            redirect_uri_sent: g.redirect_uri_sent,
            pkce: g.pkce,
            auth_time: g.auth_time,
        }
    }
}

impl From<GrantRecordV1> for GrantRecord {
    fn from(g: GrantRecordV1) -> Self {
        Self {
            owner_id: g.owner_id,
            client_id: g.client_id,
            scope: g.scope,
            redirect_uri: g.redirect_uri,
            redirect_uri_sent: g.redirect_uri_sent,
            pkce: g.pkce,
            auth_time: g.auth_time,
        }
    }
}

impl From<TokenRecord> for TokenRecordV1 {
    fn from(t: TokenRecord) -> Self {
        Self {
            kind: t.kind.into(),
            family: t.family,
            client_id: t.client_id,
            owner_id: t.owner_id,
            scope: t.scope,
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            rotated: t.rotated,
            epoch: t.epoch,
        }
    }
}

impl From<TokenRecordV1> for TokenRecord {
    fn from(t: TokenRecordV1) -> Self {
        Self {
            kind: t.kind.into(),
            family: t.family,
            client_id: t.client_id,
            owner_id: t.owner_id,
            scope: t.scope,
            issued_at: t.issued_at,
            expires_at: t.expires_at,
            rotated: t.rotated,
            epoch: t.epoch,
        }
    }
}

impl From<TokenKind> for TokenKindV1 {
    fn from(k: TokenKind) -> Self {
        match k {
            TokenKind::Access => Self::Access,
            TokenKind::Refresh => Self::Refresh,
        }
    }
}

impl From<TokenKindV1> for TokenKind {
    fn from(k: TokenKindV1) -> Self {
        match k {
            TokenKindV1::Access => Self::Access,
            TokenKindV1::Refresh => Self::Refresh,
        }
    }
}

impl From<FamilyRecord> for FamilyRecordV1 {
    fn from(f: FamilyRecord) -> Self {
        Self {
            client_id: f.client_id,
            owner_id: f.owner_id,
            revoked: f.revoked,
            created_at: f.created_at,
        }
    }
}

impl From<FamilyRecordV1> for FamilyRecord {
    fn from(f: FamilyRecordV1) -> Self {
        Self {
            client_id: f.client_id,
            owner_id: f.owner_id,
            revoked: f.revoked,
            created_at: f.created_at,
        }
    }
}
