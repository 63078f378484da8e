//! Connected accounts (docs/endpoints.md#connected-accounts): a live upstream access token for a user's link that
//! allows connected accounts, refreshed with the stored refresh token when it has expired. Free of Stack's wire
//! format; the upstream side (the sealed token format and the refresh grant's HTTP) comes in through [`Upstream`],
//! since `core` cannot import `upstream`.
//!
//! Concurrency: refreshes of one link are serialized by that link's own lock ([`RefreshLocks`], no global lock),
//! and whoever takes it reads the link again first, so concurrent requests for an expired token cause one refresh
//! at the upstream and all get its token. The new set is stored by compare-and-swap on the sealed value the
//! refresh started from: a set written meanwhile (a new sign-in) is newer and is kept.

use std::future::Future;
use std::sync::Arc;

use dashmap::DashMap;

use crate::clock::{Clock, Millis};
use crate::error::{Entity, Error};
use crate::model::{Link, Provider};
use crate::store::Store;

/// A token is handed out only while it has at least this long to live (Stack's margin: five minutes).
pub const FRESH_MARGIN_MS: Millis = 5 * 60 * 1000;

/// The upstream tokens of a link, as the token endpoint granted them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// The granted scope, as the upstream wrote it (space- or comma-separated); `None` when unknown.
    pub scope: Option<String>,
    /// When the set was obtained (0: unknown, for sets stored before this was kept).
    pub obtained_at: Millis,
    /// When the access token expires; `None` when the upstream gave no lifetime (it lives until revoked).
    pub expires_at: Option<Millis>,
}

impl TokenSet {
    /// Whether the access token still has [`FRESH_MARGIN_MS`] to live at `now`.
    pub fn is_fresh(&self, now: Millis) -> bool {
        self.expires_at
            .is_none_or(|at| at > now.saturating_add(FRESH_MARGIN_MS))
    }

    /// Whether every scope of `requested` was granted. Nothing requested is always covered; a set whose scope is
    /// unknown covers nothing more.
    pub fn covers(&self, requested: &str) -> bool {
        let granted: Vec<&str> = scopes(self.scope.as_deref().unwrap_or_default()).collect();
        scopes(requested).all(|s| granted.contains(&s))
    }
}

/// The scopes of a scope string: separated by spaces (RFC 6749) or commas (GitHub's).
fn scopes(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// Why a refresh at the upstream failed; in every case nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// The upstream refused the refresh token (`invalid_grant` and the like): the user must connect again.
    Rejected,
    /// The upstream refused the provider's client credentials (`invalid_client`): a configuration error.
    InvalidClient,
    /// Unreachable, too slow, a server error, or an answer that is too large or not a token response.
    Unavailable(String),
}

/// Why no access token is handed out.
#[derive(Debug)]
pub enum Refusal {
    /// The provider does not exist or is disabled.
    ProviderNotEnabled,
    /// The user has no link through the provider that allows connected accounts.
    NotConnected,
    /// The link holds no usable token with the requested scope: no tokens at all, scopes beyond those granted,
    /// or an expired token without a refresh token.
    MissingScope,
    /// The refresh at the upstream failed.
    Refresh(RefreshError),
    /// Storage (or the user is unknown: `NotFound(User)`).
    Domain(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Domain(e)
    }
}

/// What this use case needs from the upstream side: the sealed token format (`upstream::tokens`) and the refresh
/// grant at the provider's token endpoint (`upstream::refresh`).
pub trait Upstream {
    fn open(&self, sealed: &[u8]) -> Option<TokenSet>;
    fn seal(&self, tokens: &TokenSet) -> Vec<u8>;
    /// Refreshes `current` (which has a refresh token) at `provider`'s token endpoint; the answer merged with
    /// `current` as RFC 6749 §6 says.
    fn refresh(
        &self,
        provider: &Provider,
        current: &TokenSet,
    ) -> impl Future<Output = Result<TokenSet, RefreshError>> + Send;
}

/// One lock per link being refreshed, dropped when no refresh of it is waiting; a sharded map, so links never
/// wait for each other.
#[derive(Default)]
pub struct RefreshLocks(DashMap<String, Arc<tokio::sync::Mutex<()>>>);

impl RefreshLocks {
    /// Waits for `link_id`'s lock.
    async fn hold(&self, link_id: &str) -> Held<'_> {
        let lock = self.0.entry(link_id.to_owned()).or_default().clone();
        Held {
            guard: Some(lock.lock_owned().await),
            locks: self,
            link_id: link_id.to_owned(),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// One link's refresh lock, held.
struct Held<'a> {
    locks: &'a RefreshLocks,
    link_id: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Held<'_> {
    /// Unlocks, and forgets the lock unless another request waits for it (the map's own handle is the last). A
    /// waiter dropped before it got the lock leaves the entry to the next holder, which removes it.
    fn drop(&mut self) {
        drop(self.guard.take());
        self.locks
            .0
            .remove_if(&self.link_id, |_, l| Arc::strong_count(l) == 1);
    }
}

/// What connected accounts reach: the store, the clock and the refresh locks.
#[derive(Clone, Copy)]
pub struct Connected<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub locks: &'a RefreshLocks,
}

/// A live access token of user `user_id`'s connected account at provider `key` with at least the scopes of
/// `scope` (space- or comma-separated, may be empty), refreshing it when it is about to expire.
pub async fn access_token(
    cx: Connected<'_>,
    up: &impl Upstream,
    user_id: &str,
    key: &str,
    scope: &str,
) -> Result<String, Refusal> {
    let provider = match cx.store.get_provider(key).await? {
        Some(p) if p.enabled => p,
        _ => return Err(Refusal::ProviderNotEnabled),
    };
    if cx.store.get_user(user_id).await?.is_none() {
        return Err(Error::NotFound(Entity::User).into());
    }
    let link = connected_link(cx.store, user_id, key).await?;
    let tokens = usable(up, &link, scope)?;
    if tokens.is_fresh(cx.clock.now_ms()) {
        return Ok(tokens.access_token);
    }
    let _serial = cx.locks.hold(&link.id).await;
    refresh_link(cx, up, &provider, &link.id, scope).await
}

/// The link's token set if it covers `scope`.
fn usable(up: &impl Upstream, link: &Link, scope: &str) -> Result<TokenSet, Refusal> {
    link.upstream
        .as_deref()
        .and_then(|sealed| up.open(sealed))
        .filter(|t| t.covers(scope))
        .ok_or(Refusal::MissingScope)
}

/// Under the link's lock: reads the link again (a request that held the lock before may have refreshed it),
/// refreshes if still needed, and stores the new set by compare-and-swap.
async fn refresh_link(
    cx: Connected<'_>,
    up: &impl Upstream,
    provider: &Provider,
    link_id: &str,
    scope: &str,
) -> Result<String, Refusal> {
    let link = cx
        .store
        .get_link(link_id)
        .await?
        .filter(|l| l.allow_connected_accounts)
        .ok_or(Refusal::NotConnected)?;
    let current = usable(up, &link, scope)?;
    if current.is_fresh(cx.clock.now_ms()) {
        return Ok(current.access_token);
    }
    if current.refresh_token.is_none() {
        return Err(Refusal::MissingScope);
    }
    let fresh = up
        .refresh(provider, &current)
        .await
        .map_err(Refusal::Refresh)?;
    let before = link.upstream;
    let sealed = up.seal(&fresh);
    cx.store
        .update_link(link_id, |l| {
            if l.upstream == before {
                l.upstream = Some(sealed.clone());
            }
            Ok(())
        })
        .await
        .map_err(|e| match e {
            Error::NotFound(Entity::Link) => Refusal::NotConnected,
            e => e.into(),
        })?;
    Ok(fresh.access_token)
}

/// The user's link through `key` that allows connected accounts: one holding tokens first, then the sign-in
/// link, then the oldest.
async fn connected_link(store: &Store, user_id: &str, key: &str) -> Result<Link, Refusal> {
    let mut links: Vec<Link> = store
        .links_of_user(user_id)
        .await?
        .into_iter()
        .filter(|l| l.provider == key && l.allow_connected_accounts)
        .collect();
    // Stable: among equals, creation order stays.
    links.sort_by_key(|l| (l.upstream.is_none(), !l.allow_sign_in));
    links.into_iter().next().ok_or(Refusal::NotConnected)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::core::link::{create, NewLink};
    use crate::core::testing::World;

    /// An upstream whose sealed form is the access token itself, expiring at `expires` unless it ends in `!`,
    /// and whose refresh answers `fresh-<n>` after a pause, counting the refreshes.
    struct Fake {
        refreshes: AtomicUsize,
        fail: Option<RefreshError>,
    }

    /// `World`'s clock starts here.
    const T0: Millis = 1_700_000_000_000;

    impl Upstream for Fake {
        fn open(&self, sealed: &[u8]) -> Option<TokenSet> {
            let text = String::from_utf8(sealed.to_vec()).ok()?;
            let (access, rest) = text.split_once('|')?;
            let (refresh, expires) = rest.split_once('|')?;
            Some(TokenSet {
                access_token: access.into(),
                refresh_token: (!refresh.is_empty()).then(|| refresh.into()),
                scope: Some("read write".into()),
                obtained_at: 0,
                expires_at: Some(expires.parse().ok()?),
            })
        }

        fn seal(&self, t: &TokenSet) -> Vec<u8> {
            let refresh = t.refresh_token.as_deref().unwrap_or_default();
            format!("{}|{refresh}|{}", t.access_token, t.expires_at.unwrap_or(0)).into_bytes()
        }

        async fn refresh(
            &self,
            _: &Provider,
            current: &TokenSet,
        ) -> Result<TokenSet, RefreshError> {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            if let Some(e) = &self.fail {
                return Err(e.clone());
            }
            let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(TokenSet {
                access_token: format!("fresh-{n}"),
                expires_at: Some(T0 + 3_600_000),
                ..current.clone()
            })
        }
    }

    async fn world(sealed: Option<&str>, connected: bool) -> (World, String, String) {
        let w = World::new().await;
        w.provider(true, |_| {}).await;
        let jane = w.user("jane", &["user"]).await;
        let link = create(
            &w.store,
            &w.clock,
            NewLink {
                user_id: jane.id.clone(),
                provider: "idp".into(),
                email: None,
                allow_sign_in: true,
                allow_connected_accounts: connected,
                account_id: "a1".into(),
            },
        )
        .await
        .unwrap();
        let value = sealed.map(|s| s.as_bytes().to_vec());
        w.store
            .update_link(&link.id, |l| {
                l.upstream = value.clone();
                Ok(())
            })
            .await
            .unwrap();
        (w, jane.id, link.id)
    }

    fn fake() -> Fake {
        Fake {
            refreshes: AtomicUsize::new(0),
            fail: None,
        }
    }

    #[tokio::test]
    async fn a_fresh_token_is_handed_out_as_is() {
        let (w, jane, _) = world(Some(&format!("a1|r1|{}", T0 + 3_600_000)), true).await;
        let locks = RefreshLocks::default();
        let cx = Connected {
            store: &w.store,
            clock: &w.clock,
            locks: &locks,
        };
        let up = fake();
        assert_eq!(
            access_token(cx, &up, &jane, "idp", "read").await.unwrap(),
            "a1"
        );
        assert_eq!(access_token(cx, &up, &jane, "idp", "").await.unwrap(), "a1");
        assert_eq!(up.refreshes.load(Ordering::SeqCst), 0);
        assert!(matches!(
            access_token(cx, &up, &jane, "idp", "read admin").await,
            Err(Refusal::MissingScope)
        ));
        // Within the margin it is as good as expired.
        w.clock.advance(3_600_000 - FRESH_MARGIN_MS);
        assert_eq!(
            access_token(cx, &up, &jane, "idp", "read").await.unwrap(),
            "fresh-1"
        );
    }

    #[tokio::test]
    async fn concurrent_requests_for_an_expired_token_refresh_once() {
        let (w, jane, link) = world(Some(&format!("a1|r1|{T0}")), true).await;
        let locks = RefreshLocks::default();
        let cx = Connected {
            store: &w.store,
            clock: &w.clock,
            locks: &locks,
        };
        let up = fake();
        let call = || access_token(cx, &up, &jane, "idp", "write");
        let (a, b, c) = tokio::join!(call(), call(), call());
        for got in [a, b, c] {
            assert_eq!(got.unwrap(), "fresh-1");
        }
        assert_eq!(up.refreshes.load(Ordering::SeqCst), 1);
        assert_eq!(locks.len(), 0, "no lock outlives its refreshes");
        let stored = w.store.get_link(&link).await.unwrap().unwrap().upstream;
        assert_eq!(
            stored,
            Some(format!("fresh-1|r1|{}", T0 + 3_600_000).into_bytes())
        );
    }

    #[tokio::test]
    async fn refusals_change_nothing() {
        let expired = format!("a1|r1|{T0}");
        let (w, jane, link) = world(Some(&expired), true).await;
        let locks = RefreshLocks::default();
        let cx = Connected {
            store: &w.store,
            clock: &w.clock,
            locks: &locks,
        };
        let failing = Fake {
            refreshes: AtomicUsize::new(0),
            fail: Some(RefreshError::Rejected),
        };
        assert!(matches!(
            access_token(cx, &failing, &jane, "idp", "").await,
            Err(Refusal::Refresh(RefreshError::Rejected))
        ));
        let stored = w.store.get_link(&link).await.unwrap().unwrap().upstream;
        assert_eq!(stored, Some(expired.into_bytes()));
        assert!(matches!(
            access_token(cx, &fake(), &jane, "nope", "").await,
            Err(Refusal::ProviderNotEnabled)
        ));
        assert!(matches!(
            access_token(cx, &fake(), "ghost", "idp", "").await,
            Err(Refusal::Domain(Error::NotFound(Entity::User)))
        ));

        let (w, jane, _) = world(Some(&format!("a1||{T0}")), true).await;
        let cx = Connected {
            store: &w.store,
            clock: &w.clock,
            locks: &locks,
        };
        assert!(
            matches!(
                access_token(cx, &fake(), &jane, "idp", "").await,
                Err(Refusal::MissingScope)
            ),
            "expired without a refresh token"
        );
        let (w, jane, _) = world(None, true).await;
        let cx = Connected {
            store: &w.store,
            clock: &w.clock,
            locks: &locks,
        };
        assert!(matches!(
            access_token(cx, &fake(), &jane, "idp", "").await,
            Err(Refusal::MissingScope)
        ));
        let (w, jane, _) = world(Some(&format!("a1|r1|{}", T0 * 2)), false).await;
        let cx = Connected {
            store: &w.store,
            clock: &w.clock,
            locks: &locks,
        };
        assert!(matches!(
            access_token(cx, &fake(), &jane, "idp", "").await,
            Err(Refusal::NotConnected)
        ));
    }

    #[test]
    fn scopes_split_on_spaces_and_commas() {
        let t = TokenSet {
            access_token: "a".into(),
            refresh_token: None,
            scope: Some("repo,gist user".into()),
            obtained_at: 0,
            expires_at: None,
        };
        assert!(t.covers("gist  repo") && t.covers("user,repo") && t.covers(""));
        assert!(!t.covers("admin"));
        assert!(t.is_fresh(i64::MAX), "no lifetime: fresh until revoked");
    }
}
