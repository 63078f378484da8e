//! Client authentication for the token, introspection and revocation endpoints: `client_secret_basic`,
//! `client_secret_post`, or `none` for public clients. Runs before any oxide-auth flow, asynchronously, so the
//! argon2 check happens on the hashing pool (and almost always hits the verification cache).

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;

use super::error::OAuthError;
use super::params::{parse_basic, Params};
use crate::error::Error;
use crate::model::{App, ClientType};
use crate::state::AppState;

/// An authenticated (or, for public clients, identified) client.
pub struct ClientAuth {
    pub app: Arc<App>,
    /// The secret that authenticated it; handed to oxide-auth's flows as the client's passphrase.
    pub secret: Option<String>,
    pub used_basic: bool,
}

/// Authenticates the client of this request from `peer`. `client_id`/`client_secret` are removed from `params` so
/// flows see exactly one identity.
///
/// Wrong credentials are limited per client and source address (`tokens.client_failures_per_minute`), and per
/// client over all sources (ten times that), each attempt counted before it is checked. A full window never
/// refuses the right secret: it is then checked against the verification cache alone (the secret argon2 already
/// accepted, compared in constant time), and anything else is 429 without argon2 work. So guesses from
/// elsewhere cannot lock the real client out, and past the window a guess costs no argon2 and succeeds only if
/// it is the secret itself (256 random bits when Latchkey generated it).
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    params: &mut Params,
    peer: IpAddr,
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

    // Right after a start, declared secrets are still being checked against their stored hashes: wait, so the hash
    // read next is the one the config declares.
    state.hasher().settled().await;
    let app = match state.store.client_app(&client_id).await {
        Ok(Some(app)) if app.active => Some(app),
        Ok(_) => None,
        Err(e) => return Err(e.into()),
    };
    // The hot path: a public client, or the secret the verification cache already knows (constant-time HMAC, no
    // argon2), passes without touching the throttles, which only need to see attempts that could be guesses.
    // Counting every request would put all of one client's traffic on one throttle entry's lock.
    if let Some(app) = &app {
        let known = match (app.client_type, &secret, &app.secret_hash) {
            (ClientType::Public, None, _) => true,
            (ClientType::Confidential, Some(s), Some(phc)) => {
                state.verifier.is_known(&client_id, s, phc)
            }
            _ => false,
        };
        if known {
            return Ok(ClientAuth {
                app: app.clone(),
                secret,
                used_basic,
            });
        }
    }
    let limited = reserve(state, &client_id, peer);
    let right = match (&app, &secret) {
        (None, _) => Ok(false),
        (Some(app), secret) => match (app.client_type, secret, &app.secret_hash) {
            (ClientType::Public, None, _) => Ok(true),
            // A full window: only the secret the cache already knows, no argon2.
            (ClientType::Confidential, Some(s), Some(phc)) if limited.is_err() => {
                Ok(state.verifier.is_known(&client_id, s, phc))
            }
            (ClientType::Confidential, Some(s), Some(phc)) => {
                state.verifier.verify(&client_id, s, phc).await
            }
            _ => Ok(false),
        },
    };
    match (right, app) {
        (Ok(true), Some(app)) => {
            give_back(state, &client_id, peer, &limited);
            Ok(ClientAuth {
                app,
                secret,
                used_basic,
            })
        }
        (Err(e), _) => {
            give_back(state, &client_id, peer, &limited);
            Err(crate::error::Error::from(e).into())
        }
        // Wrong: counted (its reservation stays), or refused outright when the window was full.
        _ => Err(match limited {
            Ok(()) => OAuthError::invalid_client(used_basic),
            Err(e) => e.into(),
        }),
    }
}

/// The window key of one client at one source address.
fn source_key(client_id: &str, peer: IpAddr) -> String {
    format!("{client_id}\n{peer}")
}

/// Counts this attempt in the client's window at `peer` and in the client's window over every source; `Err` (and
/// nothing counted) when either is full.
fn reserve(state: &AppState, client_id: &str, peer: IpAddr) -> Result<(), Error> {
    let now = state.clock.now_ms();
    let source = source_key(client_id, peer);
    state.client_throttle.reserve(&source, now)?;
    if let Err(e) = state.client_global_throttle.reserve(client_id, now) {
        state.client_throttle.give_back(&source);
        return Err(e);
    }
    Ok(())
}

/// Gives back what [`reserve`] counted, for an attempt that succeeded or was never checked.
fn give_back(state: &AppState, client_id: &str, peer: IpAddr, reserved: &Result<(), Error>) {
    if reserved.is_ok() {
        state
            .client_throttle
            .give_back(&source_key(client_id, peer));
        state.client_global_throttle.give_back(client_id);
    }
}
