//! A world for the use-case tests: a store in a temp dir, a manual clock, a fast argon2 pool, a sealer and the
//! throttles, handing out the same narrow contexts `AppState` does.

use std::sync::Arc;

use super::app::Apps;
use super::provider::{self, Providers};
use super::session::{LoginTokens, SignIn};
use super::throttle::{SharedThrottle, Throttle};
use super::two_factor::Factors;
use super::user::{self, NewUser, Users};
use crate::clock::Clock;
use crate::crypto::{Argon2Params, Hasher, Sealer, Verifier};
use crate::model::redirect::HttpRedirects;
use crate::model::{Provider, User};
use crate::store::Store;

/// Cheap argon2, so the tests stay fast; the rules do not depend on the cost.
const FAST: Argon2Params = Argon2Params {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

pub struct World {
    _dir: tempfile::TempDir,
    pub store: Store,
    pub clock: Clock,
    pub verifier: Verifier,
    pub sealer: Sealer,
    pub login_throttle: Throttle,
    pub login_user_throttle: SharedThrottle,
    pub two_factor_throttle: SharedThrottle,
    pub dummy_hash: String,
}

impl World {
    pub async fn new() -> Self {
        let (dir, store) = crate::store::testing::temp_store();
        let hasher = Arc::new(Hasher::new(FAST, 1, 16));
        let dummy_hash = hasher.hash("dummy".into()).await.unwrap();
        let login_user_throttle = SharedThrottle::new("login_user", 5, 60_000, &store);
        let two_factor_throttle = SharedThrottle::new("two_factor", 5, 60_000, &store);
        World {
            _dir: dir,
            store,
            clock: Clock::manual(1_700_000_000_000),
            verifier: Verifier::new(hasher),
            sealer: Sealer::new([7; 32]),
            login_throttle: Throttle::new(5, 60_000),
            login_user_throttle,
            two_factor_throttle,
            dummy_hash,
        }
    }

    pub fn users(&self) -> Users<'_> {
        Users {
            store: &self.store,
            clock: &self.clock,
            hasher: self.verifier.hasher(),
        }
    }

    pub fn apps(&self) -> Apps<'_> {
        Apps {
            store: &self.store,
            clock: &self.clock,
            verifier: &self.verifier,
            redirects: HttpRedirects::LoopbackOnly,
        }
    }

    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            store: &self.store,
            clock: &self.clock,
            hasher: self.verifier.hasher(),
            user_throttle: &self.login_user_throttle,
            ip_throttle: &self.login_throttle,
            dummy_hash: &self.dummy_hash,
        }
    }

    pub fn login_tokens(&self) -> LoginTokens<'_> {
        LoginTokens {
            store: &self.store,
            clock: &self.clock,
            ttl_days: 1,
        }
    }

    pub fn factors(&self) -> Factors<'_> {
        Factors {
            store: &self.store,
            clock: &self.clock,
            hasher: self.verifier.hasher(),
            sealer: &self.sealer,
            throttle: &self.two_factor_throttle,
            password_fallback: true,
        }
    }

    pub fn providers(&self) -> Providers<'_> {
        Providers {
            store: &self.store,
            clock: &self.clock,
            sealer: &self.sealer,
        }
    }

    /// A user `name` with password `"password1"`, email `<name>@example.com` and `roles`.
    pub async fn user(&self, name: &str, roles: &[&str]) -> User {
        user::create(
            self.users(),
            NewUser {
                username: name.into(),
                email: format!("{name}@example.com"),
                password: "password1".into(),
                roles: Some(roles.iter().map(|r| r.to_string()).collect()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
    }

    /// Provider `Idp` (service key `idp`), enabled or not, with `edit` applied.
    pub async fn provider(&self, enabled: bool, edit: impl Fn(&mut Provider)) -> Provider {
        let p = provider::add(&self.store, &self.clock, "Idp")
            .await
            .unwrap();
        self.store
            .update_provider(&p.service_key(), |p| {
                p.enabled = enabled;
                edit(p);
                Ok(())
            })
            .await
            .unwrap()
    }
}
