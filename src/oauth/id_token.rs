//! The ID token (OIDC Core §2, §3.1.3.6, §12.2) the token endpoint adds when the granted scope has `openid`:
//! built from the sign-in the handler read before the flow (the code's grant, or the refresh token's family) and
//! the user as they are now, signed after the tokens were committed (docs/oidc.md#id-tokens).

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256, Sha512};

use super::error::OAuthError;
use crate::clock::Millis;
use crate::core::claims::{self, Audience};
use crate::crypto::jose::SigningAlg;
use crate::crypto::secret::b64url;
use crate::model::oidc::Amr;
use crate::model::{App, User};
use crate::state::AppState;
use crate::store::{FamilyRecord, GrantRecord, TokenRecord};

/// The sign-in an ID token asserts: who, when, how, and (code flow only) the request's `nonce`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    pub user_id: String,
    pub auth_time: Millis,
    pub nonce: Option<String>,
    pub amr: Vec<Amr>,
    pub sid: Option<String>,
}

impl SignIn {
    /// The sign-in behind an authorization code, with its request's `nonce`.
    pub fn of_code(grant: &GrantRecord) -> Self {
        Self {
            user_id: grant.owner_id.clone(),
            auth_time: grant.auth_time,
            nonce: grant.nonce.clone(),
            amr: grant.amr.clone(),
            sid: grant.sid.clone(),
        }
    }

    /// The sign-in a refresh token's family recorded at its redemption, never with a `nonce` (OIDC Core §12.2).
    /// A family started before `auth_time` was recorded falls back to its creation, the latest the sign-in can
    /// have been. `None` for a token without a user.
    pub fn of_family(token: &TokenRecord, family: &FamilyRecord) -> Option<Self> {
        Some(Self {
            user_id: token.subject.user_id()?.to_owned(),
            auth_time: family.auth_time.unwrap_or(family.created_at),
            nonce: None,
            amr: family.amr.clone(),
            sid: family.sid.clone(),
        })
    }
}

/// Whether `scope` (space-separated) asks for an ID token: it has `openid`.
pub fn requested(scope: &str) -> bool {
    scope.split(' ').any(|s| s == "openid")
}

/// The claims of an ID token, in the order OIDC Core §2 lists them, then the scope's claims.
#[derive(Debug, Serialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    azp: String,
    at_hash: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    amr: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// The scope's claims (`core::claims`, never a protocol claim's name: custom claims cannot take one).
    #[serde(flatten)]
    user: Map<String, Value>,
}

/// The signed ID token for `app` asserting `sign_in`, beside the access token `access` granted `scope`. Fails
/// with `invalid_grant` when the user is gone or deactivated, as the grant's other paths do. Signing runs on the
/// blocking pool: an RS256 signature takes about a millisecond, which would stall a worker's other connections;
/// it reads the key ring without a lock.
pub async fn issue(
    s: &AppState,
    app: &App,
    sign_in: SignIn,
    access: &str,
    scope: &str,
) -> Result<String, OAuthError> {
    let user = s
        .store
        .get_user(&sign_in.user_id)
        .await?
        .filter(|u| u.active)
        .ok_or_else(|| OAuthError::invalid_grant("the user of this grant no longer exists"))?;
    let alg = app.oidc.id_token_signed_response_alg;
    let claims = build(s, app, &user, sign_in, access, scope);
    let ring = std::sync::Arc::clone(&s.keys.load());
    let signed = tokio::task::spawn_blocking(move || {
        ring.signer(alg).map(|signer| signer.sign("JWT", &claims))
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "signing an ID token failed");
        OAuthError::server_error()
    })?;
    signed.ok_or_else(|| {
        tracing::error!(
            alg = alg.as_str(),
            client_id = %app.client_id,
            "no signing key for the client's ID token algorithm (see [keys] algorithms)"
        );
        OAuthError::server_error()
    })
}

/// The claims of the ID token (see [`issue`]), at the server's clock.
fn build(
    s: &AppState,
    app: &App,
    user: &User,
    sign_in: SignIn,
    access: &str,
    scope: &str,
) -> Claims {
    let iat = s.clock.now_ms() / 1000;
    let ttl = i64::try_from(s.config.tokens.id_token_ttl_secs).unwrap_or(i64::MAX);
    Claims {
        iss: s.issuer.to_string(),
        sub: claims::subject(app, &user.id, &claims::pairwise_key(&s.sealer)),
        aud: app.client_id.clone(),
        exp: iat.saturating_add(ttl),
        iat,
        auth_time: sign_in.auth_time / 1000,
        nonce: sign_in.nonce,
        azp: app.client_id.clone(),
        at_hash: at_hash(app.oidc.id_token_signed_response_alg, access),
        amr: sign_in.amr.iter().map(|a| a.as_str()).collect(),
        sid: sign_in.sid,
        user: claims::for_scope(user, scope, app, Audience::IdToken),
    }
}

/// `at_hash` (OIDC Core §3.1.3.6): base64url of the left half of the access token's hash under the hash of the
/// signing algorithm: SHA-256 for RS256 and ES256; SHA-512 for EdDSA over Ed25519 (the hash Ed25519 uses, as
/// OpenID's registry and the relying-party libraries, openid-client and the `openidconnect` crate, expect).
fn at_hash(alg: SigningAlg, access: &str) -> String {
    match alg {
        SigningAlg::Rs256 | SigningAlg::Es256 => b64url(&Sha256::digest(access)[..16]),
        SigningAlg::EdDsa => b64url(&Sha512::digest(access)[..32]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values computed independently (Python's hashlib and base64).
    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNy6c6TRm";
        assert_eq!(at_hash(SigningAlg::Rs256, token), "y8VU09jvgEBl0IyvBITfVA");
        assert_eq!(at_hash(SigningAlg::Es256, token), "y8VU09jvgEBl0IyvBITfVA");
        assert_eq!(
            at_hash(SigningAlg::EdDsa, token),
            "ao8mW4VsZhxbI5SW0y4sYL93VU6TEzi1wJC0K8PHED8"
        );
    }

    #[test]
    fn only_a_scope_with_openid_asks_for_an_id_token() {
        assert!(requested("openid"));
        assert!(requested("email openid profile"));
        assert!(!requested("profile email"));
        assert!(!requested("openidx"));
        assert!(!requested(""));
    }
}
