//! The records of authorization codes, access and refresh tokens and grant families as they cross the store
//! boundary: what the OAuth flows hand to a [`Store`](super::Store) step and what its lookups answer. How the sled
//! backend keeps and indexes them is in `sled/token.rs`; their on-disk forms are in `record/token.rs`.

use crate::clock::Millis;
use crate::model::oidc::Amr;

pub type FamilyId = [u8; 16];
pub type Digest = [u8; 32];

/// What the resource owner approved, carried from the code to the tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    /// The user who approved (a code is only ever made for a signed-in user).
    pub owner_id: String,
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    pub redirect_uri: String,
    /// Whether `redirect_uri` was sent at authorize (then it is required at the token endpoint).
    pub redirect_uri_sent: bool,
    /// PKCE challenge as encoded by oxide-auth's Pkce extension; `None` when no challenge was made.
    pub pkce: Option<String>,
    /// When the user signed in (the session's start, or the fresh sign-in `prompt=login`/`max_age` demanded).
    pub auth_time: Millis,
    /// The request's OIDC `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// How the user signed in (the session's `amr`).
    pub amr: Vec<Amr>,
    /// The sign-in session's id (the ID token's `sid`); `None` for codes made before it was recorded.
    pub sid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRecord {
    pub grant: GrantRecord,
    pub expires_at: Millis,
    /// The family the first redemption created; set once.
    pub redeemed: Option<FamilyId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// Whom a grant's tokens act for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The user who approved the code the grant came from.
    User(String),
    /// The client itself (client_credentials).
    Client,
}

impl Subject {
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Subject::User(id) => Some(id),
            Subject::Client => None,
        }
    }
}

/// What, besides its own expiry, keeps a token live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lineage {
    /// A code grant's token: live while its family is not revoked.
    Family(FamilyId),
    /// A client_credentials token: no family (it is one plain insert, the hot path), live while its app exists, is
    /// active and is still in this `token_epoch`.
    Epoch(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub kind: TokenKind,
    pub lineage: Lineage,
    pub client_id: String,
    pub subject: Subject,
    pub scope: String,
    pub issued_at: Millis,
    pub expires_at: Millis,
    /// Refresh tokens: already exchanged; presenting it again is reuse and revokes the family.
    pub rotated: bool,
    /// Refresh tokens: the access token issued with it, which rotating it removes (`None` for an access token and
    /// for a refresh token written before records named it). The record is where this link lives, so a backup
    /// carries it to either backend; PostgreSQL's `tokens.sibling` column is derived from it.
    pub sibling: Option<Digest>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRecord {
    pub client_id: String,
    pub subject: Subject,
    pub revoked: bool,
    pub created_at: Millis,
    /// The code's sign-in, kept so that a refresh can issue an ID token with the original `auth_time`, `amr` and
    /// `sid` (OIDC Core §12.2). `auth_time` is `None` for families started before it was recorded.
    pub auth_time: Option<Millis>,
    pub amr: Vec<Amr>,
    pub sid: Option<String>,
}

/// A token to store: its digest and lifetime.
#[derive(Clone, Copy, Debug)]
pub struct NewToken {
    pub digest: Digest,
    pub expires_at: Millis,
}

/// The tokens a verified redemption starts its family with.
#[derive(Clone, Copy, Debug)]
pub struct FirstTokens {
    pub access: NewToken,
    pub refresh: Option<NewToken>,
}

/// The outcome of redeeming a code.
#[derive(Debug)]
pub enum Redeemed {
    /// Used up by this redemption (and its family started, when it came with tokens).
    Ok,
    Unknown,
    /// Issued to another client: nothing was changed, so its own client can still redeem it.
    OtherClient,
    Expired,
    /// Already redeemed: the family it produced has now been revoked.
    Replayed,
}

/// The outcome of rotating a refresh token.
#[derive(Debug)]
pub enum Rotated {
    Ok,
    /// Unknown, expired, revoked, of another client, or not a refresh token.
    Invalid,
    /// Already rotated: the whole family has now been revoked.
    Replayed,
}

impl FamilyRecord {
    /// The family a code's first redemption starts at `now`, carrying the code's sign-in for later ID tokens.
    pub fn started_by(grant: &GrantRecord, now: Millis) -> Self {
        Self {
            client_id: grant.client_id.clone(),
            subject: Subject::User(grant.owner_id.clone()),
            revoked: false,
            created_at: now,
            auth_time: Some(grant.auth_time),
            amr: grant.amr.clone(),
            sid: grant.sid.clone(),
        }
    }
}

impl TokenRecord {
    /// The first tokens of `family`, started by redeeming the code of `grant` at `now`: the access token and,
    /// when asked for, its refresh token (naming the access token as its sibling).
    pub fn first_of(
        grant: &GrantRecord,
        family: FamilyId,
        now: Millis,
        first: &FirstTokens,
    ) -> (Self, Option<Self>) {
        let access = Self {
            kind: TokenKind::Access,
            lineage: Lineage::Family(family),
            client_id: grant.client_id.clone(),
            subject: Subject::User(grant.owner_id.clone()),
            scope: grant.scope.clone(),
            issued_at: now,
            expires_at: first.access.expires_at,
            rotated: false,
            sibling: None,
        };
        let refresh = first.refresh.map(|r| Self {
            kind: TokenKind::Refresh,
            expires_at: r.expires_at,
            sibling: Some(first.access.digest),
            ..access.clone()
        });
        (access, refresh)
    }

    /// The tokens that rotating this refresh token at `now` issues: an access token for `scope` (which may
    /// narrow it) and, when asked for, a refresh token that keeps this one's scope and names that access token.
    pub fn successors(
        &self,
        scope: &str,
        now: Millis,
        access: NewToken,
        refresh: Option<NewToken>,
    ) -> (Self, Option<Self>) {
        let next = Self {
            kind: TokenKind::Access,
            scope: scope.to_owned(),
            issued_at: now,
            expires_at: access.expires_at,
            rotated: false,
            sibling: None,
            ..self.clone()
        };
        let refresh = refresh.map(|r| Self {
            kind: TokenKind::Refresh,
            scope: self.scope.clone(),
            expires_at: r.expires_at,
            sibling: Some(access.digest),
            ..next.clone()
        });
        (next, refresh)
    }
}
