//! RFC 9068 JWT access tokens, for the clients whose `accessTokenFormat` is `jwt` (docs/oidc.md#jwt-access-tokens):
//! their claims, signing them, and verifying one this server issued (introspection, revocation).
//!
//! Which tokens the store keeps decides how one is found live. A code-flow or refresh token is stored exactly like
//! an opaque one (by the SHA-256 of the JWT string: the family write happens anyway), so lookup, bearer
//! authentication, revocation and family revocation work unchanged. A client_credentials token is not stored at
//! all (its issuance writes nothing, the point of the format): it carries its app's `token_epoch` in the private
//! claim `token_epoch` instead, and is live while it verifies, its app is active in that epoch, and its `jti` is not
//! in the store's revoked set (RFC 7009 adds it there until the token's `exp`).

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::core::claims;
use crate::crypto::{self, jose::SigningAlg};
use crate::error::Result;
use crate::model::oidc::Amr;
use crate::model::App;
use crate::state::AppState;
use crate::store::Store;

/// The JWS `typ` of a JWT access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";

/// The claims of a JWT access token (RFC 9068 §2.2). `aud` is the issuer: with no resource indicators, Latchkey's
/// own APIs (userinfo, the admin APIs) are the one resource it knows, and RFC 9068 §3 asks for a default resource
/// rather than none; the client is in `client_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub exp: i64,
    pub aud: String,
    /// The user's subject for this client (public or pairwise), or the client id for client_credentials.
    pub sub: String,
    pub client_id: String,
    pub iat: i64,
    pub jti: String,
    pub scope: String,
    /// When the user signed in (RFC 9068 §2.2.1), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// The app's `token_epoch` at issuance: present exactly on the unstored (client_credentials) tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_epoch: Option<u64>,
}

/// For whom a token is minted.
pub enum Holder<'a> {
    /// A user's grant (code flow, refresh): stored.
    User {
        id: &'a str,
        auth_time: Option<Millis>,
        amr: &'a [Amr],
    },
    /// The client itself (client_credentials): not stored.
    Client,
}

/// Whether `token` has the shape of a JWS (opaque tokens are base64url, without dots).
pub fn is_jwt(token: &str) -> bool {
    token.contains('.')
}

/// A JWT access token of `app` for `holder`, granted `scope`, expiring at `expires_at`. Signed with the current
/// key of the client's `id_token_signed_response_alg`, so a relying party verifies its ID and access tokens with
/// the same algorithm; RS256's when that algorithm has no key now. `None` when no key can sign (logged).
pub fn sign(
    s: &AppState,
    app: &App,
    holder: Holder<'_>,
    scope: &str,
    expires_at: Millis,
) -> Option<String> {
    let ring = s.keys.load();
    let Some(signer) = ring
        .signer(app.oidc.id_token_signed_response_alg)
        .or_else(|| ring.signer(SigningAlg::Rs256))
    else {
        tracing::error!(client_id = %app.client_id, "no signing key for a JWT access token");
        return None;
    };
    let (sub, auth_time, amr, token_epoch) = match holder {
        Holder::User { id, auth_time, amr } => (
            claims::subject(app, id, &claims::pairwise_key(&s.sealer)),
            auth_time.map(|t| t / 1000),
            amr.iter().map(|a| a.as_str().to_owned()).collect(),
            None,
        ),
        Holder::Client => (
            app.client_id.clone(),
            None,
            Vec::new(),
            Some(app.token_epoch),
        ),
    };
    let claims = AccessClaims {
        iss: s.issuer.to_string(),
        exp: expires_at / 1000,
        aud: s.issuer.to_string(),
        sub,
        client_id: app.client_id.clone(),
        iat: s.clock.now_ms() / 1000,
        jti: crypto::random_token(),
        scope: scope.to_owned(),
        auth_time,
        amr,
        token_epoch,
    };
    Some(signer.sign(TYP, &claims))
}

/// The claims of `token` when it is a JWT access token this server issued, as far as the token itself can say:
/// `typ` at+jwt (RFC 9068 §4 also allows `application/at+jwt`), signed by a key still published (by its `kid`),
/// our `iss`, unexpired at `now`. Whether it is still live is the store's to say ([`unstored_live`], or the
/// stored record).
pub fn verify(s: &AppState, token: &str, now: Millis) -> Option<AccessClaims> {
    let typ = jsonwebtoken::decode_header(token).ok()?.typ?;
    let typ = typ.to_ascii_lowercase();
    if typ != TYP && typ != format!("application/{TYP}") {
        return None;
    }
    let c: AccessClaims = s.keys.load().verify(token, &SigningAlg::ALL).ok()?;
    (c.iss == *s.issuer && c.exp.saturating_mul(1000) > now).then_some(c)
}

/// Whether the verified unstored token `c` of `app` is live: `app` active and still in the token's epoch (a
/// deactivation or re-keying moves it), and its `jti` not revoked.
pub async fn unstored_live(store: &Store, app: &App, c: &AccessClaims) -> Result<bool> {
    if !app.active || c.token_epoch != Some(app.token_epoch) || c.client_id != app.client_id {
        return Ok(false);
    }
    Ok(!store.jti_revoked(&c.jti).await?)
}
