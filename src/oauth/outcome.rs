//! What a flow decided and how it is committed. oxide-auth's primitives (`primitives.rs`) compute an [`Outcome`]
//! without touching the store; the handler then commits it in one atomic, durable store call and answers from what
//! the store says, so a concurrent redemption or rotation loses exactly as it would inside one transaction.

use super::error::OAuthError;
use crate::clock::Millis;
use crate::error::Error;
use crate::state::AppState;
use crate::store::token::{Digest, FirstTokens, NewToken};
use crate::store::{CodeRecord, FamilyId, Redeemed, Rotated, TokenRecord};

/// Tokens just computed (plaintext, for the response) and their sorted scope.
pub struct Issued {
    pub access: String,
    pub refresh: Option<String>,
    pub scope: String,
}

/// A flow's one result.
pub enum Outcome {
    /// Refused before anything needed writing (or the flow broke: then a server error).
    Refused(OAuthError),
    /// The authorization endpoint's new code, to store before redirecting with it.
    Code { digest: Digest, record: CodeRecord },
    /// A code presented by its client. The attempt uses it up whatever `verdict` says; the store has the last word
    /// (unknown, expired, replayed), and a verified redemption starts `family` with the verdict's tokens.
    Redeem {
        digest: Digest,
        family: FamilyId,
        now: Millis,
        /// `None` until the flow got past PKCE and oxide-auth's checks (or refused).
        verdict: Option<Result<(Issued, FirstTokens), OAuthError>>,
    },
    /// A refresh token to rotate into `access` (+ `refresh`), the access token carrying `scope`.
    Rotate {
        old: Digest,
        scope: String,
        now: Millis,
        access: NewToken,
        refresh: Option<NewToken>,
        issued: Issued,
    },
    /// A client_credentials token to store.
    Client {
        digest: Digest,
        record: TokenRecord,
        issued: Issued,
    },
    /// A client_credentials JWT access token: self-contained (its app's epoch is in it), so nothing is written.
    Signed(Issued),
}

impl Outcome {
    /// The token endpoint's commit: one store call, durable when it returns; answers with the tokens or the
    /// precise refusal.
    pub async fn commit_tokens(self, s: &AppState, client_id: &str) -> Result<Issued, OAuthError> {
        match self {
            Outcome::Refused(e) => Err(e),
            Outcome::Redeem {
                digest,
                family,
                now,
                verdict,
            } => {
                let verdict = verdict.unwrap_or_else(|| Err(OAuthError::server_error()));
                let tokens = verdict.as_ref().ok().map(|(_, t)| *t);
                let redeemed = s
                    .store
                    .redeem_code(&digest, client_id, now, family, tokens)
                    .await;
                match redeemed.map_err(|e| store_error(e, "redeeming an authorization code"))? {
                    Redeemed::Ok => verdict.map(|(issued, _)| issued),
                    Redeemed::Unknown => {
                        Err(OAuthError::invalid_grant("unknown authorization code"))
                    }
                    Redeemed::OtherClient => Err(OAuthError::invalid_grant(
                        "the authorization code was issued to another client",
                    )),
                    Redeemed::Expired => Err(OAuthError::invalid_grant(
                        "the authorization code has expired",
                    )),
                    Redeemed::Replayed => Err(OAuthError::invalid_grant(
                        "the authorization code was already used; its tokens are revoked",
                    )),
                }
            }
            Outcome::Rotate {
                old,
                scope,
                now,
                access,
                refresh,
                issued,
            } => {
                let rotated = s
                    .store
                    .rotate_refresh(&old, client_id, &scope, now, access, refresh)
                    .await;
                match rotated.map_err(|e| store_error(e, "rotating a refresh token"))? {
                    Rotated::Ok => Ok(issued),
                    Rotated::Replayed => Err(OAuthError::invalid_grant(
                        "the refresh token was already used; its grant is revoked",
                    )),
                    Rotated::Invalid => Err(OAuthError::invalid_grant("invalid refresh token")),
                }
            }
            Outcome::Client {
                digest,
                record,
                issued,
            } => {
                s.store
                    .put_client_token(&digest, &record)
                    .await
                    .map_err(|e| store_error(e, "issuing a client token"))?;
                Ok(issued)
            }
            Outcome::Signed(issued) => Ok(issued),
            Outcome::Code { .. } => Err(OAuthError::server_error()),
        }
    }
}

/// A store failure as the token endpoint answers it: a grant whose client or user vanished meanwhile is
/// `invalid_grant`; anything else is logged and answered as the domain error.
fn store_error(e: Error, doing: &str) -> OAuthError {
    match e {
        Error::NotFound(what) => {
            OAuthError::invalid_grant(format!("the {what} of this grant no longer exists"))
        }
        e => {
            tracing::error!(error = %e, "{doing} failed");
            e.into()
        }
    }
}
