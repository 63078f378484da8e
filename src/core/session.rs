//! Password sign-in and Rocket.Chat login tokens (`X-User-Id` + `X-Auth-Token`).

use std::net::IpAddr;

use crate::clock::Millis;
use crate::crypto::{self, ct_eq};
use crate::error::{Error, Result};
use crate::model::app::grants_api;
use crate::model::User;
use crate::state::AppState;
use crate::store::LoginToken;

/// Checks a password with the argon2 pool, under the per-user and per-IP limits. Each attempt is counted before the
/// check and given back when it succeeds, so simultaneous guesses cannot outrun the limit. A user is counted once
/// whether named by username or email (the key is their id); an unknown name is keyed by itself, lowercased.
/// Unknown users cost the same argon2 work as known ones.
pub async fn check_password(
    state: &AppState,
    ident: &str,
    password: &str,
    ip: IpAddr,
) -> Result<User> {
    let now = state.clock.now_ms();
    let user = if ident.contains('@') {
        state.store.user_by_email(ident)?
    } else {
        state.store.user_by_username(ident)?
    };
    let user_key = user
        .as_ref()
        .map_or_else(|| ident.to_lowercase(), |u| u.id.clone());
    let ip_key = ip.to_string();
    state.login_ip_throttle.reserve(&ip_key, now)?;
    if let Err(e) = state.login_user_throttle.reserve(&user_key, now) {
        state.login_ip_throttle.give_back(&ip_key);
        return Err(e);
    }
    let phc = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| state.dummy_hash.to_string());
    let ok = state.hasher().verify(password.to_owned(), phc).await;
    match (user, ok) {
        (Some(u), Ok(true)) if u.password_hash.is_some() && u.active => {
            state.login_user_throttle.reset(&user_key);
            state.login_ip_throttle.give_back(&ip_key);
            Ok(u)
        }
        (_, Err(e)) => {
            // Not checked (e.g. the argon2 queue is full): the attempt does not count.
            state.login_user_throttle.give_back(&user_key);
            state.login_ip_throttle.give_back(&ip_key);
            Err(e.into())
        }
        _ => Err(Error::Unauthorized),
    }
}

/// Issues a login token for `user`; only its SHA-256 digest is stored.
pub async fn issue_login_token(state: &AppState, user: &User) -> Result<String> {
    let token = crypto::random_token();
    let now = state.clock.now_ms();
    let ttl = state.config.login.token_ttl_days as i64 * 86_400_000;
    let record = LoginToken {
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + ttl,
    };
    state
        .store
        .create_login_token(crypto::sha256(token.as_bytes()), &record)
        .await?;
    Ok(token)
}

/// Resolves `X-User-Id` + `X-Auth-Token` to an active user.
pub fn authenticate(state: &AppState, user_id: &str, token: &str) -> Result<User> {
    let digest = crypto::sha256(token.as_bytes());
    let record = state
        .store
        .login_token(&digest)?
        .ok_or(Error::Unauthorized)?;
    if !ct_eq(record.user_id.as_bytes(), user_id.as_bytes())
        || record.expires_at <= state.clock.now_ms()
    {
        return Err(Error::Unauthorized);
    }
    match state.store.get_user(user_id)? {
        Some(u) if u.active => Ok(u),
        _ => Err(Error::Unauthorized),
    }
}

/// Resolves a login token alone (the `Authorization: Bearer` form used by the Locoia API).
pub fn authenticate_token(state: &AppState, token: &str) -> Result<User> {
    signed_in(state, token).map(|(user, _)| user)
}

/// The user of a live login token and when they signed in (the token's creation): the browser session's
/// `auth_time`, which an authorization code carries (OIDC Core §2), not the moment the code is made.
pub fn signed_in(state: &AppState, token: &str) -> Result<(User, Millis)> {
    let digest = crypto::sha256(token.as_bytes());
    let record = state
        .store
        .login_token(&digest)?
        .ok_or(Error::Unauthorized)?;
    if record.expires_at <= state.clock.now_ms() {
        return Err(Error::Unauthorized);
    }
    match state.store.get_user(&record.user_id)? {
        Some(u) if u.active => Ok((u, record.created_at)),
        _ => Err(Error::Unauthorized),
    }
}

pub async fn logout(state: &AppState, token: &str) -> Result<()> {
    state
        .store
        .delete_login_token(&crypto::sha256(token.as_bytes()))
        .await
}

/// How an API caller proved who it is, which decides what it may do there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An RC login token (`X-Auth-Token`, or a bearer `authToken` on Locoia): a full session of its user.
    LoginToken,
    /// An OAuth access token of this server; `api` when its scope includes [`crate::model::app::API_SCOPE`].
    AccessToken { api: bool },
}

impl Credential {
    /// Whether it may act as its user on the admin APIs: a login token may, an access token only when granted
    /// `latchkey:api` (an app granted `openid`/`profile` may read its user, not administer the server with it).
    pub fn admits_api(self) -> bool {
        !matches!(self, Credential::AccessToken { api: false })
    }
}

/// Resolves an `Authorization: Bearer` access token issued by Latchkey's own authorization server to its user and
/// what the token may do (client_credentials tokens have no user and do not authenticate here).
pub fn authenticate_bearer(state: &AppState, token: &str) -> Result<(User, Credential)> {
    let (user, scope) =
        crate::oauth::userinfo::bearer_user(state, token).ok_or(Error::Unauthorized)?;
    let api = grants_api(&scope);
    Ok((user, Credential::AccessToken { api }))
}
