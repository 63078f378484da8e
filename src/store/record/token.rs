//! `codes`, `tokens` and `families` values: [`CodeRecord`], [`TokenRecord`], [`FamilyRecord`]. Tokens are
//! written in the compact layout of version 3 (one per live token, so its bytes are RSS and disk per token), in
//! which a refresh token names its sibling (the access token issued with it); the layout of versions 1 and 2 still
//! reads, with no sibling. Codes and families gained the sign-in's context in version 3 (a code
//! its `nonce`, `amr` and `sid`; a family the code's `auth_time`, `amr` and `sid`); their versions 1 and 2 read with
//! none of it (no nonce, no methods, no session id, an unknown `auth_time`). The conversions are field by field,
//! so a change of the domain shape (typed owners, an optional family) is a change of the conversions here, not of
//! the bytes.

use serde::{Deserialize, Serialize};

use super::session::{amr_names, amr_values};
use crate::error::Result;
use crate::store::codec::{Body, Record};
use crate::store::token::{
    CodeRecord, FamilyRecord, GrantRecord, Lineage, Subject, TokenKind, TokenRecord,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRecordV1 {
    pub grant: GrantRecordV1,
    pub expires_at: i64,
    /// The family the first redemption created.
    pub redeemed: Option<[u8; 16]>,
}

/// Version 1's fields in place, then the sign-in's context (`amr` by RFC 8176 name, as a login token keeps it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRecordV3 {
    pub base: CodeRecordV1,
    pub nonce: Option<String>,
    pub amr: Vec<String>,
    pub sid: Option<String>,
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
    /// The user; empty for a client_credentials token.
    pub owner_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub rotated: bool,
    /// client_credentials tokens: the app's `token_epoch` at issue.
    pub epoch: Option<u64>,
}

/// Version 3, compact: the lineage is one enum (a client_credentials token no longer carries 16 zero bytes of
/// family, a family's token no absent epoch), and the expiry is the lifetime after `issued_at` (an hour is 5 bytes
/// of varint, an absolute time in milliseconds 9). A client token is 22 bytes plus its client id and scope (with
/// the version byte), against 42 in version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecordV3 {
    pub kind: TokenKindV3,
    pub lineage: LineageV3,
    pub client_id: String,
    /// The user; empty for a client_credentials token.
    pub owner_id: String,
    pub scope: String,
    pub issued_at: i64,
    /// `expires_at - issued_at`, in milliseconds.
    pub lifetime: i64,
    pub rotated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LineageV3 {
    Family([u8; 16]),
    /// client_credentials tokens: the app's `token_epoch` at issue.
    Epoch(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TokenKindV1 {
    Access,
    Refresh,
}

/// The kind, a refresh token with its sibling: the SHA-256 of the access token issued with it, which rotating it
/// removes. It is in the record (not only in an index) so that a backup carries it to either backend. A variant
/// rather than an `Option` beside the kind: no token pays a byte for a sibling it does not have.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TokenKindV3 {
    Access,
    /// A refresh token that names no sibling (written before records named it).
    Refresh,
    RefreshWith([u8; 32]),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyRecordV1 {
    pub client_id: String,
    pub owner_id: String,
    pub revoked: bool,
    pub created_at: i64,
}

/// Version 1's fields in place, then the redeemed code's sign-in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyRecordV3 {
    pub base: FamilyRecordV1,
    pub auth_time: Option<i64>,
    pub amr: Vec<String>,
    pub sid: Option<String>,
}

impl Record for CodeRecord {
    const VERSION: u8 = 3;
    type Disk = CodeRecordV3;

    fn upgrade(body: Body<'_>) -> Result<CodeRecordV3> {
        match body.version() {
            1 | 2 => body.read::<CodeRecordV1>().map(Into::into),
            3 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl Record for TokenRecord {
    const VERSION: u8 = 3;
    type Disk = TokenRecordV3;

    fn upgrade(body: Body<'_>) -> Result<TokenRecordV3> {
        match body.version() {
            1 | 2 => body.read::<TokenRecordV1>().map(Into::into),
            3 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl Record for FamilyRecord {
    const VERSION: u8 = 3;
    type Disk = FamilyRecordV3;

    fn upgrade(body: Body<'_>) -> Result<FamilyRecordV3> {
        match body.version() {
            1 | 2 => body.read::<FamilyRecordV1>().map(Into::into),
            3 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<CodeRecordV1> for CodeRecordV3 {
    fn from(base: CodeRecordV1) -> Self {
        Self {
            base,
            nonce: None,
            amr: Vec::new(),
            sid: None,
        }
    }
}

impl From<FamilyRecordV1> for FamilyRecordV3 {
    fn from(base: FamilyRecordV1) -> Self {
        Self {
            base,
            auth_time: None,
            amr: Vec::new(),
            sid: None,
        }
    }
}

impl From<CodeRecord> for CodeRecordV3 {
    fn from(c: CodeRecord) -> Self {
        let g = c.grant;
        Self {
            base: CodeRecordV1 {
                grant: GrantRecordV1 {
                    owner_id: g.owner_id,
                    client_id: g.client_id,
                    scope: g.scope,
                    redirect_uri: g.redirect_uri,
                    redirect_uri_sent: g.redirect_uri_sent,
                    pkce: g.pkce,
                    auth_time: g.auth_time,
                },
                expires_at: c.expires_at,
                redeemed: c.redeemed,
            },
            nonce: g.nonce,
            amr: amr_names(&g.amr),
            sid: g.sid,
        }
    }
}

impl From<CodeRecordV3> for CodeRecord {
    fn from(c: CodeRecordV3) -> Self {
        let g = c.base.grant;
        Self {
            grant: GrantRecord {
                owner_id: g.owner_id,
                client_id: g.client_id,
                scope: g.scope,
                redirect_uri: g.redirect_uri,
                redirect_uri_sent: g.redirect_uri_sent,
                pkce: g.pkce,
                auth_time: g.auth_time,
                nonce: c.nonce,
                amr: amr_values(&c.amr),
                sid: c.sid,
            },
            expires_at: c.base.expires_at,
            redeemed: c.base.redeemed,
        }
    }
}

/// The sentinels of the version-1 bytes meet the domain's types here and only here: an empty `owner_id`, or one
/// equal to the client id (as the flows before `Subject` also read it), is [`Subject::Client`]; `epoch: Some` is
/// [`Lineage::Epoch`] (its `family` then all zeros). Today's code writes a client subject as an empty `owner_id`.
fn subject(owner_id: String, client_id: &str) -> Subject {
    if owner_id.is_empty() || owner_id == client_id {
        Subject::Client
    } else {
        Subject::User(owner_id)
    }
}

fn owner_id(s: Subject) -> String {
    match s {
        Subject::User(id) => id,
        Subject::Client => String::new(),
    }
}

/// Version 1's sentinel `epoch: Some` is [`LineageV3::Epoch`] (its `family` then all zeros); its refresh tokens
/// name no sibling.
impl From<TokenRecordV1> for TokenRecordV3 {
    fn from(t: TokenRecordV1) -> Self {
        Self {
            kind: match t.kind {
                TokenKindV1::Access => TokenKindV3::Access,
                TokenKindV1::Refresh => TokenKindV3::Refresh,
            },
            lineage: match t.epoch {
                Some(epoch) => LineageV3::Epoch(epoch),
                None => LineageV3::Family(t.family),
            },
            client_id: t.client_id,
            owner_id: t.owner_id,
            scope: t.scope,
            issued_at: t.issued_at,
            lifetime: t.expires_at.saturating_sub(t.issued_at),
            rotated: t.rotated,
        }
    }
}

impl From<TokenRecord> for TokenRecordV3 {
    fn from(t: TokenRecord) -> Self {
        Self {
            kind: match t.kind {
                TokenKind::Access => TokenKindV3::Access,
                TokenKind::Refresh => match t.sibling {
                    Some(access) => TokenKindV3::RefreshWith(access),
                    None => TokenKindV3::Refresh,
                },
            },
            lineage: match t.lineage {
                Lineage::Family(f) => LineageV3::Family(f),
                Lineage::Epoch(e) => LineageV3::Epoch(e),
            },
            client_id: t.client_id,
            owner_id: owner_id(t.subject),
            scope: t.scope,
            issued_at: t.issued_at,
            lifetime: t.expires_at.saturating_sub(t.issued_at),
            rotated: t.rotated,
        }
    }
}

impl From<TokenRecordV3> for TokenRecord {
    fn from(t: TokenRecordV3) -> Self {
        let (kind, sibling) = match t.kind {
            TokenKindV3::Access => (TokenKind::Access, None),
            TokenKindV3::Refresh => (TokenKind::Refresh, None),
            TokenKindV3::RefreshWith(access) => (TokenKind::Refresh, Some(access)),
        };
        Self {
            kind,
            sibling,
            lineage: match t.lineage {
                LineageV3::Family(f) => Lineage::Family(f),
                LineageV3::Epoch(e) => Lineage::Epoch(e),
            },
            subject: subject(t.owner_id, &t.client_id),
            client_id: t.client_id,
            scope: t.scope,
            issued_at: t.issued_at,
            expires_at: t.issued_at.saturating_add(t.lifetime),
            rotated: t.rotated,
        }
    }
}

impl From<FamilyRecord> for FamilyRecordV3 {
    fn from(f: FamilyRecord) -> Self {
        Self {
            base: FamilyRecordV1 {
                client_id: f.client_id,
                owner_id: owner_id(f.subject),
                revoked: f.revoked,
                created_at: f.created_at,
            },
            auth_time: f.auth_time,
            amr: amr_names(&f.amr),
            sid: f.sid,
        }
    }
}

impl From<FamilyRecordV3> for FamilyRecord {
    fn from(f: FamilyRecordV3) -> Self {
        let b = f.base;
        Self {
            subject: subject(b.owner_id, &b.client_id),
            client_id: b.client_id,
            revoked: b.revoked,
            created_at: b.created_at,
            auth_time: f.auth_time,
            amr: amr_values(&f.amr),
            sid: f.sid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(family: [u8; 16], owner_id: &str, epoch: Option<u64>) -> TokenRecordV1 {
        TokenRecordV1 {
            kind: TokenKindV1::Access,
            family,
            client_id: "c1".into(),
            owner_id: owner_id.into(),
            scope: "s".into(),
            issued_at: 1,
            expires_at: 2,
            rotated: false,
            epoch,
        }
    }

    fn read(v: TokenRecordV1) -> TokenRecord {
        TokenRecordV3::from(v).into()
    }

    /// Both spellings of a client owner the earlier flows accepted (empty, or the client id) read as the client;
    /// a user id reads as the user.
    #[test]
    fn version_1_owners_read_as_subjects() {
        for owner in ["", "c1"] {
            let t = read(v1([0; 16], owner, Some(3)));
            assert_eq!((t.subject, t.lineage), (Subject::Client, Lineage::Epoch(3)));
        }
        let t = read(v1([5; 16], "u1", None));
        assert_eq!(t.subject, Subject::User("u1".into()));
        assert_eq!(t.lineage, Lineage::Family([5; 16]));
        assert_eq!((t.issued_at, t.expires_at), (1, 2));
    }

    /// A version-1 record read and written again is version 3 and reads back the same; the compact layout is
    /// what it claims: 20 bytes shorter for a client token of an hour at today's times.
    #[test]
    fn version_1_records_rewrite_compactly() {
        let mut old = v1([0; 16], "", Some(3));
        (old.issued_at, old.expires_at) = (1_767_225_600_000, 1_767_229_200_000);
        let t = read(old.clone());
        let v3 = crate::store::codec::encode(&t);
        assert_eq!(v3[0], 3);
        assert_eq!(crate::store::codec::decode::<TokenRecord>(&v3).unwrap(), t);
        let v1 = crate::store::codec::encode_as(2, &old);
        assert_eq!(crate::store::codec::decode::<TokenRecord>(&v1).unwrap(), t);
        assert_eq!((v1.len(), v3.len()), (42 + 3, 22 + 3));
    }

    /// A refresh token of version 1 or 2 reads with no sibling and is written again as it was; one of version 3
    /// keeps its sibling, which costs it the digest's 32 bytes and any other token nothing.
    #[test]
    fn a_refresh_token_names_its_sibling_from_version_3_on() {
        let old = TokenRecordV1 {
            kind: TokenKindV1::Refresh,
            ..v1([5; 16], "u1", None)
        };
        let t =
            crate::store::codec::decode::<TokenRecord>(&crate::store::codec::encode_as(2, &old));
        let t = t.unwrap();
        assert_eq!((t.kind, t.sibling), (TokenKind::Refresh, None));
        let without = crate::store::codec::encode(&t);
        let t = TokenRecord {
            sibling: Some([8; 32]),
            ..t
        };
        let with = crate::store::codec::encode(&t);
        assert_eq!(
            crate::store::codec::decode::<TokenRecord>(&with).unwrap(),
            t
        );
        assert_eq!(with.len(), without.len() + 32);
        let access = TokenRecord {
            kind: TokenKind::Access,
            sibling: None,
            ..t
        };
        assert_eq!(crate::store::codec::encode(&access).len(), without.len());
    }
}
