//! Client authentication for the token, introspection and revocation endpoints: `client_secret_basic`,
//! `client_secret_post`, or `none` for public clients. Runs before any oxide-auth flow, asynchronously, so the
//! argon2 check happens on the hashing pool (and almost always hits the verification cache).

use std::sync::Arc;

use axum::http::HeaderMap;

use super::error::OAuthError;
use super::params::{parse_basic, Params};
use crate::model::{App, ClientType};
use crate::state::AppState;

/// An authenticated (or, for public clients, identified) client.
pub struct ClientAuth {
    pub app: Arc<App>,
    /// The secret that authenticated it; handed to oxide-auth's flows as the client's passphrase.
    pub secret: Option<String>,
    pub used_basic: bool,
}

/// Authenticates the client of this request. `client_id`/`client_secret` are removed from `params` so flows see
/// exactly one identity.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &mut Params,
) -> Result<ClientAuth, OAuthError> {
    let basic = match headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|h| h.to_str())
    {
        None => None,
        Some(Err(_)) => return Err(OAuthError::invalid_client(true)),
        Some(Ok(h)) => match parse_basic(h) {
            None => {
                return Err(OAuthError::invalid_request(
                    "unsupported Authorization scheme for client authentication",
                ))
            }
            Some(Err(_)) => return Err(OAuthError::invalid_client(true)),
            Some(Ok(c)) => Some(c),
        },
    };
    let body_id = params.remove("client_id");
    let body_secret = params.remove("client_secret");
    let used_basic = basic.is_some();
    let (client_id, secret) = match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use exactly one client authentication method",
            ))
        }
        (Some(b), Some(id), None) if id != b.client_id => {
            return Err(OAuthError::invalid_request(
                "client_id does not match the Basic credentials",
            ))
        }
        (Some(b), _, None) => (b.client_id, Some(b.secret)),
        (None, Some(id), secret) => (id, secret),
        (None, None, _) => return Err(OAuthError::invalid_client(false)),
    };

    let now = state.clock.now_ms();
    state
        .client_throttle
        .check(&client_id, now)
        .map_err(OAuthError::from)?;
    let fail = || {
        state.client_throttle.fail(&client_id, now);
        OAuthError::invalid_client(used_basic)
    };
    let app = match state.store.client_app(&client_id) {
        Ok(Some(app)) if app.active => app,
        Ok(_) => return Err(fail()),
        Err(e) => return Err(e.into()),
    };
    match (app.client_type, &secret, &app.secret_hash) {
        (ClientType::Public, None, _) => Ok(ClientAuth {
            app,
            secret: None,
            used_basic,
        }),
        (ClientType::Confidential, Some(s), Some(phc)) => {
            match state.verifier.verify(&client_id, s, phc).await {
                Ok(true) => Ok(ClientAuth {
                    secret: secret.clone(),
                    app,
                    used_basic,
                }),
                Ok(false) => Err(fail()),
                Err(e) => Err(crate::error::Error::from(e).into()),
            }
        }
        _ => Err(fail()),
    }
}
