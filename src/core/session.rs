//! Password sign-in and Rocket.Chat login tokens (`X-User-Id` + `X-Auth-Token`).

use std::net::IpAddr;

use super::throttle::{SharedThrottle, Throttle};
use crate::clock::Clock;
use crate::crypto::{self, ct_eq, Hasher};
use crate::error::{Error, Result};
use crate::model::app::grants_api;
use crate::model::oidc::Amr;
use crate::model::User;
use crate::store::{LoginToken, Store, TokenKind, TokenRecord};

/// What signing in with a password touches: the store, the clock, the argon2 pool, the per-user and per-IP
/// failure windows and the hash verified for unknown names.
#[derive(Clone, Copy)]
pub struct SignIn<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub hasher: &'a Hasher,
    /// Shared by every node (counted in the database on PostgreSQL); per IP stays per node.
    pub user_throttle: &'a SharedThrottle,
    pub ip_throttle: &'a Throttle,
    /// A real argon2 hash of a random secret, verified against when a name is unknown so that the answer takes as
    /// long as for a known user (no user enumeration by timing).
    pub dummy_hash: &'a str,
}

/// What issuing a login token touches: the store, the clock and the token lifetime (`login.token_ttl_days`).
#[derive(Clone, Copy)]
pub struct LoginTokens<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub ttl_days: u64,
}

/// Checks a password with the argon2 pool, under the per-user and per-IP limits. Each attempt is counted before the
/// check and given back when it succeeds, so simultaneous guesses cannot outrun the limit. A user is counted once
/// whether named by username or email (the key is their id); an unknown name is keyed by itself, lowercased.
/// Unknown users cost the same argon2 work as known ones.
pub async fn check_password(
    ctx: SignIn<'_>,
    ident: &str,
    password: &str,
    ip: IpAddr,
) -> Result<User> {
    // Declared passwords are checked against their stored hashes just after a start: read the hash once they are.
    ctx.hasher.settled().await;
    let now = ctx.clock.now_ms();
    let user = if ident.contains('@') {
        ctx.store.user_by_email(ident).await?
    } else {
        ctx.store.user_by_username(ident).await?
    };
    let user_key = user
        .as_ref()
        .map_or_else(|| ident.to_lowercase(), |u| u.id.clone());
    let ip_key = ip.to_string();
    ctx.ip_throttle.reserve(&ip_key, now)?;
    if let Err(e) = ctx.user_throttle.reserve(&user_key, now).await {
        ctx.ip_throttle.give_back(&ip_key);
        return Err(e);
    }
    let phc = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| ctx.dummy_hash.to_owned());
    let ok = ctx.hasher.verify(password.to_owned(), phc).await;
    match (user, ok) {
        (Some(u), Ok(true)) if u.password_hash.is_some() && u.active => {
            ctx.user_throttle.reset(&user_key).await;
            ctx.ip_throttle.give_back(&ip_key);
            Ok(u)
        }
        (_, Err(e)) => {
            // Not checked (e.g. the argon2 queue is full): the attempt does not count.
            ctx.user_throttle.give_back(&user_key).await;
            ctx.ip_throttle.give_back(&ip_key);
            Err(e.into())
        }
        _ => Err(Error::Unauthorized),
    }
}

/// How a password sign-in of `user` authenticated, once its second factor passed (`two_factor::check` with
/// `Fallback::Never` demands a TOTP or backup code exactly when the user has TOTP on).
pub fn password_amr(user: &User) -> Vec<Amr> {
    if user.totp_active() {
        vec![Amr::Pwd, Amr::Otp]
    } else {
        vec![Amr::Pwd]
    }
}

/// Issues a login token for `user`, who authenticated by `amr`; only its SHA-256 digest is stored.
pub async fn issue_login_token(ctx: LoginTokens<'_>, user: &User, amr: Vec<Amr>) -> Result<String> {
    let token = crypto::random_token();
    let now = ctx.clock.now_ms();
    let ttl = ctx.ttl_days as i64 * 86_400_000;
    let record = LoginToken {
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + ttl,
        amr,
    };
    ctx.store
        .create_login_token(crypto::sha256(token.as_bytes()), &record)
        .await?;
    Ok(token)
}

/// Resolves `X-User-Id` + `X-Auth-Token` to an active user.
pub async fn authenticate(
    store: &Store,
    clock: &Clock,
    user_id: &str,
    token: &str,
) -> Result<User> {
    let digest = crypto::sha256(token.as_bytes());
    let record = store
        .login_token(&digest)
        .await?
        .ok_or(Error::Unauthorized)?;
    if !ct_eq(record.user_id.as_bytes(), user_id.as_bytes()) || record.expires_at <= clock.now_ms()
    {
        return Err(Error::Unauthorized);
    }
    match store.get_user(user_id).await? {
        Some(u) if u.active => Ok(u),
        _ => Err(Error::Unauthorized),
    }
}

/// Resolves a login token alone (the `Authorization: Bearer` form used by the Locoia API).
pub async fn authenticate_token(store: &Store, clock: &Clock, token: &str) -> Result<User> {
    signed_in(store, clock, token).await.map(|(user, _)| user)
}

/// The user of a live login token and its record: when they signed in (the token's creation, the browser
/// session's `auth_time`, which an authorization code carries (OIDC Core §2), not the moment the code is made) and
/// how.
pub async fn signed_in(store: &Store, clock: &Clock, token: &str) -> Result<(User, LoginToken)> {
    let digest = crypto::sha256(token.as_bytes());
    let record = store
        .login_token(&digest)
        .await?
        .ok_or(Error::Unauthorized)?;
    if record.expires_at <= clock.now_ms() {
        return Err(Error::Unauthorized);
    }
    match store.get_user(&record.user_id).await? {
        Some(u) if u.active => Ok((u, record)),
        _ => Err(Error::Unauthorized),
    }
}

/// The session id of a login token (the ID token's `sid`): the first 16 bytes of SHA-256("sid" ‖ the token's
/// digest), base64url. Stable for the session, needs no storage, and neither reveals the token nor finds its
/// record (the store is keyed by the digest itself).
pub fn session_id(token: &str) -> String {
    let digest = crypto::sha256(token.as_bytes());
    let sid = crypto::sha256(&[b"sid".as_slice(), &digest].concat());
    crypto::secret::b64url(&sid[..16])
}

pub async fn logout(store: &Store, token: &str) -> Result<()> {
    store
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
pub async fn authenticate_bearer(
    store: &Store,
    clock: &Clock,
    token: &str,
) -> Result<(User, Credential)> {
    let (user, token) = bearer_user(store, clock, token)
        .await
        .ok_or(Error::Unauthorized)?;
    let api = grants_api(&token.scope);
    Ok((user, Credential::AccessToken { api }))
}

/// The active user behind a live access token, with the token's record (its scope, its client);
/// client_credentials tokens have no user.
pub async fn bearer_user(store: &Store, clock: &Clock, token: &str) -> Option<(User, TokenRecord)> {
    let rec = store
        .active_token(&crypto::sha256(token.as_bytes()), clock.now_ms())
        .await
        .ok()??;
    if rec.kind != TokenKind::Access {
        return None;
    }
    let user = store
        .get_user(rec.subject.user_id()?)
        .await
        .ok()?
        .filter(|u| u.active)?;
    Some((user, rec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::World;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[tokio::test]
    async fn a_password_signs_in_an_active_user_by_name_or_email() {
        let w = World::new().await;
        let jane = w.user("jane", &["user"]).await;
        let by_name = check_password(w.sign_in(), "jane", "password1", IP)
            .await
            .unwrap();
        assert_eq!(by_name.id, jane.id);
        let by_email = check_password(w.sign_in(), "jane@example.com", "password1", IP).await;
        assert_eq!(by_email.unwrap().id, jane.id);
        for (who, pw) in [("jane", "wrong"), ("nobody", "password1")] {
            let res = check_password(w.sign_in(), who, pw, IP).await;
            assert!(matches!(res, Err(Error::Unauthorized)), "{who}: {res:?}");
        }
        w.store
            .update_user(&jane.id, |u| {
                u.active = false;
                Ok(())
            })
            .await
            .unwrap();
        let inactive = check_password(w.sign_in(), "jane", "password1", IP).await;
        assert!(matches!(inactive, Err(Error::Unauthorized)));
    }

    #[tokio::test]
    async fn wrong_passwords_fill_the_window_and_then_even_the_right_one_waits() {
        let w = World::new().await;
        w.user("jane", &["user"]).await;
        for _ in 0..5 {
            let res = check_password(w.sign_in(), "jane", "wrong", IP).await;
            assert!(matches!(res, Err(Error::Unauthorized)));
        }
        let res = check_password(w.sign_in(), "jane", "password1", IP).await;
        assert!(matches!(res, Err(Error::RateLimited { .. })), "{res:?}");
        w.clock.advance(60_001);
        check_password(w.sign_in(), "jane", "password1", IP)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_login_token_lives_its_ttl_for_its_user_only_and_until_logout() {
        let w = World::new().await;
        let jane = w.user("jane", &["user"]).await;
        let bob = w.user("bob", &["user"]).await;
        let token = issue_login_token(w.login_tokens(), &jane, vec![Amr::Pwd])
            .await
            .unwrap();
        assert_eq!(
            authenticate(&w.store, &w.clock, &jane.id, &token)
                .await
                .unwrap()
                .id,
            jane.id
        );
        let (user, rec) = signed_in(&w.store, &w.clock, &token).await.unwrap();
        assert_eq!(
            (user.id.as_str(), rec.created_at),
            (jane.id.as_str(), w.clock.now_ms())
        );
        assert_eq!(rec.amr, [Amr::Pwd]);
        assert!(authenticate(&w.store, &w.clock, &bob.id, &token)
            .await
            .is_err());
        w.clock.advance(86_400_000);
        assert!(
            authenticate(&w.store, &w.clock, &jane.id, &token)
                .await
                .is_err(),
            "expired"
        );
        let other = issue_login_token(w.login_tokens(), &jane, vec![Amr::Fed])
            .await
            .unwrap();
        assert_ne!(session_id(&token), session_id(&other));
        assert_eq!(session_id(&token), session_id(&token));
        assert_eq!(session_id(&token).len(), 22);
        logout(&w.store, &other).await.unwrap();
        assert!(
            authenticate_token(&w.store, &w.clock, &other)
                .await
                .is_err(),
            "logged out"
        );
    }

    /// A password sign-in claims `otp` exactly when the user has TOTP on (then the code was demanded).
    #[tokio::test]
    async fn a_password_sign_in_claims_otp_only_with_totp_on() {
        let w = World::new().await;
        let mut jane = w.user("jane", &["user"]).await;
        assert_eq!(password_amr(&jane), [Amr::Pwd]);
        jane.two_factor = Some(crate::model::user::TwoFactor {
            totp_secret: Some(vec![1; 20]),
            totp_enabled: true,
            ..Default::default()
        });
        assert_eq!(password_amr(&jane), [Amr::Pwd, Amr::Otp]);
    }

    #[tokio::test]
    async fn an_unknown_bearer_token_is_nobody() {
        let w = World::new().await;
        assert!(bearer_user(&w.store, &w.clock, "nope").await.is_none());
        let res = authenticate_bearer(&w.store, &w.clock, "nope").await;
        assert!(matches!(res, Err(Error::Unauthorized)));
        assert!(Credential::LoginToken.admits_api());
        assert!(!Credential::AccessToken { api: false }.admits_api());
    }
}
