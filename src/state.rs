//! The state every handler shares. Cloning is one atomic increment: axum clones the state several times per
//! request (middleware, handler service, extractors), so it must be cheap on a hot path.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Config;
use crate::core::app::Apps;
use crate::core::bootstrap::Setup;
use crate::core::connected::{Connected, RefreshLocks};
use crate::core::keys::{Keys, SharedKeyRing};
use crate::core::provider::Providers;
use crate::core::session::{LoginTokens, SignIn};
use crate::core::throttle::{SharedThrottle, Throttle};
use crate::core::two_factor::Factors;
use crate::core::user::Users;
use crate::crypto::{Hasher, Sealer, Verifier};
use crate::store::Store;

/// A client's failures over all sources may be this many times its per-source limit.
const CLIENT_SOURCES: u32 = 10;

#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;

    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

pub struct AppStateInner {
    pub store: Store,
    pub config: Arc<Config>,
    pub clock: Clock,
    /// argon2 pool + the client-secret verification cache (README "Secrets").
    pub verifier: Arc<Verifier>,
    /// Failed logins per user (id, or the lowercased name when unknown; shared by every node) and per IP.
    pub login_user_throttle: Arc<SharedThrottle>,
    pub login_ip_throttle: Arc<Throttle>,
    /// Failed client authentications at the OAuth endpoints per client id and source address, and per client id
    /// over all sources (`oauth::client_auth` says how a full window still lets the right secret through).
    pub client_throttle: Arc<Throttle>,
    pub client_global_throttle: Arc<Throttle>,
    /// The issuer URL without a trailing slash.
    pub issuer: Arc<str>,
    /// A real argon2 hash of a random secret, verified against when a username is unknown so that the answer
    /// takes as long as for a known user (no user enumeration by timing).
    pub dummy_hash: Arc<str>,
    /// Seals upstream secrets and TOTP seeds under the master key (docs/config.md, docs/endpoints.md#providers).
    pub sealer: Arc<Sealer>,
    /// Wrong second-factor codes per user, so a stolen session cannot brute-force TOTP or the password (shared by
    /// every node).
    pub two_factor_throttle: Arc<SharedThrottle>,
    /// The client for upstream providers (federated sign-in): pooled, with connect and request timeouts.
    pub http: UpstreamHttp,
    /// The signing keys: `keys.load().signer(alg)` signs an ID token or JWT access token without a lock
    /// (docs/oidc.md#signing-keys).
    pub keys: Arc<SharedKeyRing>,
    /// The metadata document (`oauth::metadata`), rendered on first request: it depends only on the issuer and the
    /// config, which a running server never changes.
    pub metadata: std::sync::OnceLock<axum::body::Bytes>,
    /// OpenID Connect upstreams' discovery documents and JWKS by URL, with when they were fetched
    /// (`upstream::oidc` decides their freshness). Sharded, so sign-ins at different issuers never wait on each
    /// other.
    pub oidc_documents: dashmap::DashMap<String, (crate::clock::Millis, Arc<serde_json::Value>)>,
    /// Sign in with Apple's client-secret JWTs by service key, with the digest of the settings each was built
    /// from and its expiry in seconds (`upstream::apple`).
    pub apple_client_secrets: dashmap::DashMap<String, ([u8; 32], i64, String)>,
    /// Serializes the refreshes of each connected account's upstream token (`core::connected`).
    pub refresh_locks: RefreshLocks,
}

impl AppState {
    pub async fn new(
        store: Store,
        config: Config,
        clock: Clock,
        issuer: String,
        sealer: Arc<Sealer>,
        keys: Arc<SharedKeyRing>,
    ) -> Self {
        let hasher = Arc::new(Hasher::new(
            config.argon2,
            config.argon2_threads(),
            config.limits.argon2_queue,
        ));
        let dummy_hash = hasher.dummy_phc();
        let window_ms = config.login.window_secs as i64 * 1000;
        Self(Arc::new(AppStateInner {
            login_user_throttle: Arc::new(SharedThrottle::new(
                "login_user",
                config.login.max_failures_per_user,
                window_ms,
                &store,
            )),
            two_factor_throttle: Arc::new(SharedThrottle::new(
                "two_factor",
                crate::core::two_factor::MAX_FAILURES,
                crate::core::two_factor::FAILURE_WINDOW_MS,
                &store,
            )),
            store,
            login_ip_throttle: Arc::new(Throttle::new(config.login.max_failures_per_ip, window_ms)),
            client_throttle: Arc::new(Throttle::new(
                config.tokens.client_failures_per_minute,
                60_000,
            )),
            client_global_throttle: Arc::new(Throttle::new(
                config
                    .tokens
                    .client_failures_per_minute
                    .saturating_mul(CLIENT_SOURCES),
                60_000,
            )),
            verifier: Arc::new(Verifier::new(hasher)),
            config: Arc::new(config),
            clock,
            issuer: issuer.trim_end_matches('/').into(),
            dummy_hash: dummy_hash.into(),
            sealer,
            http: UpstreamHttp::default(),
            metadata: std::sync::OnceLock::new(),
            oidc_documents: dashmap::DashMap::new(),
            apple_client_secrets: dashmap::DashMap::new(),
            refresh_locks: RefreshLocks::default(),
            keys,
        }))
    }

    pub fn hasher(&self) -> &Arc<Hasher> {
        self.verifier.hasher()
    }

    // The narrow contexts of the `core` use cases: each hands a use case only the handles it touches.

    pub fn users(&self) -> Users<'_> {
        Users {
            store: &self.store,
            clock: &self.clock,
            hasher: self.hasher(),
        }
    }

    pub fn apps(&self) -> Apps<'_> {
        Apps {
            store: &self.store,
            clock: &self.clock,
            verifier: &self.verifier,
            redirects: self.config.http_redirects(),
        }
    }

    pub fn sign_in(&self) -> SignIn<'_> {
        SignIn {
            store: &self.store,
            clock: &self.clock,
            hasher: self.hasher(),
            user_throttle: &self.login_user_throttle,
            ip_throttle: &self.login_ip_throttle,
            dummy_hash: &self.dummy_hash,
        }
    }

    pub fn login_tokens(&self) -> LoginTokens<'_> {
        LoginTokens {
            store: &self.store,
            clock: &self.clock,
            ttl_days: self.config.login.token_ttl_days,
        }
    }

    pub fn factors(&self) -> Factors<'_> {
        Factors {
            store: &self.store,
            clock: &self.clock,
            hasher: self.hasher(),
            sealer: &self.sealer,
            throttle: &self.two_factor_throttle,
            password_fallback: self.config.password_fallback(),
        }
    }

    pub fn providers(&self) -> Providers<'_> {
        Providers {
            store: &self.store,
            clock: &self.clock,
            sealer: &self.sealer,
        }
    }

    pub fn connected(&self) -> Connected<'_> {
        Connected {
            store: &self.store,
            clock: &self.clock,
            locks: &self.refresh_locks,
        }
    }

    pub fn signing_keys(&self) -> Keys<'_> {
        Keys {
            store: &self.store,
            sealer: &self.sealer,
            policy: self.keys.policy(),
        }
    }

    pub fn setup(&self) -> Setup<'_> {
        Setup {
            config: &self.config,
            issuer: &self.issuer,
            users: self.users(),
            apps: self.apps(),
            providers: self.providers(),
        }
    }
}

/// The client for upstream providers, built at its first use: a server without federated sign-in never loads the
/// TLS root store (webpki's roots parsed into rustls) nor the client's connection pool.
#[derive(Default)]
pub struct UpstreamHttp(std::sync::OnceLock<reqwest::Client>);

impl std::ops::Deref for UpstreamHttp {
    type Target = reqwest::Client;

    fn deref(&self) -> &reqwest::Client {
        self.0.get_or_init(http_client)
    }
}

/// The client for upstream providers (federated sign-in): 5 s to connect, no redirects followed; the callback
/// bounds the whole exchange with `upstream::deadline`.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static HTTP client configuration")
}
