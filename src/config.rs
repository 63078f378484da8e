//! Configuration: built-in defaults < config file < environment < flags, into one validated [`Config`].
//! Every key is documented, with its default and env name, in `config/latchkey.toml`. Unknown keys are an error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::crypto::jose::SigningAlg;
use crate::crypto::Argon2Params;
use crate::model::provider::Setting;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub listen: String,
    /// Public base URL; empty means `http://<bound address>`.
    pub issuer: String,
    pub data_dir: PathBuf,
    pub log: String,
    /// sled page cache in MiB. 8 by default: it holds the hot records (apps, users, sessions, recent tokens) and
    /// keeps 300,000 live tokens under 100 MiB of RSS (64: 158–168 MiB); pages beyond it are read from the log
    /// file (docs/benchmarks.md, Memory).
    pub cache_mb: u64,
    /// Seeds a demo user and client and skips consent for it.
    pub dev: bool,
    /// base64url of 32 bytes; empty: `master.key` in the data dir.
    pub master_key: String,
    pub store: StoreConfig,
    pub admin: AdminConfig,
    pub argon2: Argon2Params,
    pub limits: Limits,
    pub login: LoginConfig,
    pub tokens: TokenConfig,
    pub keys: KeysConfig,
    pub stack: StackConfig,
    pub two_factor: TwoFactorConfig,
    pub apps: AppsConfig,
    pub clients: Vec<DeclaredClient>,
    pub users: Vec<DeclaredUser>,
    pub providers: Vec<DeclaredProvider>,
}

/// Where the records live: sled in `data_dir` (the default) or a PostgreSQL database (docs/postgres.md).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `postgres://user:password@host:port/db` (`?sslmode=require` for TLS); empty: sled in `data_dir`.
    pub url: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub username: String,
    /// Empty: a random password is generated and printed once at first start.
    pub password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub body_bytes: usize,
    pub header_bytes: usize,
    /// Seconds a client may take to send a request's header block; then the connection is closed (slowloris).
    pub header_read_timeout_secs: u64,
    pub request_timeout_secs: u64,
    /// Argon2 worker threads; 0 = one per core.
    pub argon2_threads: usize,
    /// Jobs that may wait for an argon2 worker before callers get "busy".
    pub argon2_queue: usize,
    /// Seconds a graceful shutdown waits for in-flight requests.
    pub shutdown_grace_secs: u64,
    /// Seconds a new connection may stay silent before its first byte; then it is closed.
    pub first_byte_timeout_secs: u64,
    /// Seconds a connection may stay open without a request in flight (HTTP/1.1 keep-alive and HTTP/2 alike);
    /// also the HTTP/2 keep-alive ping interval.
    pub idle_timeout_secs: u64,
    /// Open connections at most; at the cap the oldest idle one is closed for a new one, or the new one is.
    pub max_connections: usize,
    /// Largest upstream answer (token, identity) federated sign-in reads, in bytes.
    pub upstream_body_bytes: usize,
    /// Milliseconds between two sweeps of expired records (the crash harness makes it short).
    pub sweep_interval_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    pub token_ttl_days: u64,
    pub max_failures_per_user: u32,
    pub max_failures_per_ip: u32,
    pub window_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenConfig {
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    pub code_ttl_secs: u64,
    pub client_failures_per_minute: u32,
    pub id_token_ttl_secs: u64,
}

/// The signing keys of ID tokens and JWT access tokens (docs/oidc.md#signing-keys).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// JWS algorithms that always have a key (RS256 always does, listed or not).
    pub algorithms: Vec<String>,
    /// A signing key older than this gets a successor; 0: never rotate automatically.
    pub rotate_after_days: u64,
    /// How long a new key is published in the JWKS before it signs.
    pub publish_ahead_secs: u64,
    /// How often each node reloads the keys from the store and rotates what is due.
    pub refresh_interval_ms: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StackConfig {
    pub project_id: String,
    pub server_key: String,
    pub admin_key: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwoFactorConfig {
    /// Users without TOTP give their password as the second factor on RC's *2FA* routes. Unset: off under
    /// `--dev`, on otherwise (see [`Config::password_fallback`]).
    pub enforce_password_fallback: Option<bool>,
}

/// Rules for the OAuth apps that may be registered.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppsConfig {
    /// `http` redirect URIs on any host (not only loopback). Unset: on under `--dev`, off otherwise.
    pub allow_http_redirect_uris: Option<bool>,
}

/// An app declared in the config file, upserted at start (its `client_id` is kept).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeclaredClient {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub redirect_uri: String,
    pub client_type: String,
    pub grant_types: Vec<String>,
    pub scopes: String,
    pub skip_consent: bool,
    /// OpenID Connect settings (docs/config.md); empty or unset keeps the current value (the default when new).
    pub id_token_signed_response_alg: String,
    pub access_token_format: String,
    pub post_logout_redirect_uris: Vec<String>,
    pub subject_type: String,
    pub id_token_claims: Option<bool>,
    pub extra_claims: Vec<String>,
}

/// A user declared in the config file, upserted at start.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeclaredUser {
    pub username: String,
    pub password: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    /// OpenID Connect claims, standard and custom together (`[users.claims]`); empty keeps the current ones.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// A sign-in provider declared in the config file (`[[providers]]`), upserted at start like `[[clients]]`
/// (docs/config.md#providers): a catalogue preset, or a Rocket.Chat custom provider described by its fields.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeclaredProvider {
    /// The service key (`/login/<service>`), normalized as Rocket.Chat does; empty: the preset id.
    pub service: String,
    /// A catalogue preset id (`github`, …); empty: a custom provider.
    pub preset: String,
    pub client_id: String,
    /// Sealed under the master key when applied; never logged. Empty keeps the stored one.
    pub client_secret: String,
    /// The upstream's base URL: a preset's host override (self-hosted, tests), a custom provider's `-url`.
    pub url: String,
    /// Empty: the preset's default scopes (a custom provider keeps its `-scope`).
    pub scope: String,
    /// The preset's non-secret options (`tenant` for Microsoft).
    pub options: std::collections::BTreeMap<String, String>,
    /// Unset: enabled.
    pub enabled: Option<bool>,
    pub merge_users: bool,
    /// `username` or `email`; empty keeps the current one (`username` when new).
    pub key_field: String,
    /// A custom provider's Rocket.Chat settings; empty keeps the current value (RC's default when new).
    pub authorize_path: String,
    pub token_path: String,
    pub identity_path: String,
    pub token_sent_via: String,
    pub identity_token_sent_via: String,
    pub username_field: String,
    pub email_field: String,
    pub name_field: String,
    pub avatar_field: String,
}

/// Everything but the secret, so a logged config cannot leak it.
impl std::fmt::Debug for DeclaredProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclaredProvider")
            .field("service", &self.service)
            .field("preset", &self.preset)
            .field("client_id", &self.client_id)
            .field("url", &self.url)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

impl DeclaredProvider {
    /// The name the provider is stored under: `service`, else the preset id.
    pub fn name(&self) -> &str {
        if self.service.is_empty() {
            &self.preset
        } else {
            &self.service
        }
    }

    /// The service key it is stored under (`github_enterprise`, `myidp`).
    pub fn service_key(&self) -> String {
        use crate::model::provider::{normalize_name, service_key};
        service_key(&normalize_name(self.name()))
    }

    /// The custom-only fields that are set: their key here, the Rocket.Chat setting, the value.
    pub fn custom_fields(&self) -> impl Iterator<Item = (&'static str, Setting, &str)> {
        [
            (
                "authorize_path",
                Setting::AuthorizePath,
                &self.authorize_path,
            ),
            ("token_path", Setting::TokenPath, &self.token_path),
            ("identity_path", Setting::IdentityPath, &self.identity_path),
            (
                "token_sent_via",
                Setting::TokenSentVia,
                &self.token_sent_via,
            ),
            (
                "identity_token_sent_via",
                Setting::IdentityTokenSentVia,
                &self.identity_token_sent_via,
            ),
            (
                "username_field",
                Setting::UsernameField,
                &self.username_field,
            ),
            ("email_field", Setting::EmailField, &self.email_field),
            ("name_field", Setting::NameField, &self.name_field),
            ("avatar_field", Setting::AvatarField, &self.avatar_field),
        ]
        .into_iter()
        .filter(|(_, _, v)| !v.is_empty())
        .map(|(k, s, v)| (k, s, v.as_str()))
    }

    /// What can be checked without the store: a name, a known preset with declared options, no custom-only
    /// field on a preset, a client id.
    fn validate(&self) -> Result<(), String> {
        let at = format!("providers[{:?}]", self.name());
        crate::model::provider::validate_name(self.name())
            .map_err(|e| format!("{at}: service or preset: {e}"))?;
        if !self.preset.is_empty() {
            crate::model::catalogue::check(&self.preset, &self.options)
                .map_err(|e| format!("{at}: {e}"))?;
            if let Some((k, ..)) = self.custom_fields().next() {
                return Err(format!("{at}: {k} is for custom providers (no preset)"));
            }
        } else if !self.options.is_empty() {
            return Err(format!("{at}: options need a preset"));
        }
        if self.client_id.trim().is_empty() {
            return Err(format!("{at}: client_id is required"));
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            issuer: String::new(),
            data_dir: "./data".into(),
            log: "info".into(),
            cache_mb: 8,
            dev: false,
            master_key: String::new(),
            store: StoreConfig::default(),
            admin: AdminConfig::default(),
            argon2: Argon2Params::default(),
            limits: Limits::default(),
            login: LoginConfig::default(),
            tokens: TokenConfig::default(),
            keys: KeysConfig::default(),
            stack: StackConfig::default(),
            two_factor: TwoFactorConfig::default(),
            apps: AppsConfig::default(),
            clients: Vec::new(),
            users: Vec::new(),
            providers: Vec::new(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            username: "admin".into(),
            password: String::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 64 * 1024,
            header_bytes: 16 * 1024,
            header_read_timeout_secs: 10,
            request_timeout_secs: 10,
            argon2_threads: 0,
            argon2_queue: 256,
            shutdown_grace_secs: 10,
            first_byte_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 1024,
            upstream_body_bytes: 1 << 20,
            sweep_interval_ms: 60_000,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            token_ttl_days: 90,
            max_failures_per_user: 10,
            max_failures_per_ip: 50,
            window_secs: 300,
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            access_ttl_secs: 3600,
            refresh_ttl_secs: 30 * 24 * 3600,
            code_ttl_secs: 600,
            client_failures_per_minute: 20,
            id_token_ttl_secs: 3600,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            algorithms: SigningAlg::ALL.iter().map(|a| a.as_str().into()).collect(),
            rotate_after_days: 90,
            publish_ahead_secs: 86_400,
            refresh_interval_ms: 60_000,
        }
    }
}

impl KeysConfig {
    /// The algorithms that have a key: RS256 first, then those listed (checked by `Config::validate`).
    pub fn algs(&self) -> Vec<SigningAlg> {
        let mut algs = vec![SigningAlg::Rs256];
        for a in self
            .algorithms
            .iter()
            .filter_map(|a| SigningAlg::from_name(a))
        {
            if !algs.contains(&a) {
                algs.push(a);
            }
        }
        algs
    }
}

/// Command-line values that override everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub issuer: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub dev: bool,
}

/// The longest lifetime (tokens, login tokens, throttle windows): ten years, in seconds. Its milliseconds added to
/// any plausible now stay far inside i64.
pub const MAX_TTL_SECS: u64 = 10 * 365 * 86_400;
/// The longest timeout: one hour.
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// The config file used when none is named: present in a checkout, optional elsewhere.
pub const DEFAULT_CONFIG_PATH: &str = "config/latchkey.toml";

/// Environment variables and the keys they set.
const ENV_KEYS: &[(&str, &str)] = &[
    ("LATCHKEY_LISTEN", "listen"),
    ("LATCHKEY_ISSUER", "issuer"),
    ("LATCHKEY_DATA_DIR", "data_dir"),
    ("LATCHKEY_LOG", "log"),
    ("LATCHKEY_MASTER_KEY", "master_key"),
    ("LATCHKEY_STORE_URL", "store__url"),
    ("LATCHKEY_ADMIN_USERNAME", "admin__username"),
    ("LATCHKEY_ADMIN_PASSWORD", "admin__password"),
    ("LATCHKEY_STACK_PROJECT_ID", "stack__project_id"),
    ("LATCHKEY_STACK_SERVER_KEY", "stack__server_key"),
    ("LATCHKEY_STACK_ADMIN_KEY", "stack__admin_key"),
];

impl Config {
    /// Layers defaults, the config file (`--config`, else `LATCHKEY_CONFIG`, else `config/latchkey.toml` if it
    /// exists), the environment and the flags, then validates.
    pub fn load(o: &Overrides) -> Result<Self, String> {
        let named = o
            .config
            .clone()
            .or_else(|| std::env::var_os("LATCHKEY_CONFIG").map(PathBuf::from));
        let file = match named {
            Some(p) if !p.exists() => {
                return Err(format!("config file {} does not exist", p.display()))
            }
            Some(p) => Some(p),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        };
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(f) = &file {
            fig = fig.merge(Toml::file_exact(f));
        }
        let env = Env::raw()
            .filter_map(|k| {
                ENV_KEYS
                    .iter()
                    .find(|(e, _)| k.as_str().eq_ignore_ascii_case(e))
                    .map(|(_, key)| (*key).into())
            })
            .split("__");
        fig = fig.merge(env);
        if let Some(v) = &o.listen {
            fig = fig.merge(("listen", v));
        }
        if let Some(v) = &o.issuer {
            fig = fig.merge(("issuer", v));
        }
        if let Some(v) = &o.data_dir {
            fig = fig.merge(("data_dir", v));
        }
        if o.dev {
            fig = fig.merge(("dev", true));
        }
        let cfg: Config = fig.extract().map_err(|e| {
            let src = file.as_deref().map(Path::display);
            match src {
                Some(f) => format!("invalid configuration (file {f}): {e}"),
                None => format!("invalid configuration: {e}"),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Whether users without TOTP must give their password on RC's *2FA* routes (`[two_factor]
    /// enforce_password_fallback`, by default on except under `--dev`).
    pub fn password_fallback(&self) -> bool {
        self.two_factor
            .enforce_password_fallback
            .unwrap_or(!self.dev)
    }

    /// Which `http` redirect URIs apps may register (`[apps] allow_http_redirect_uris`, by default `dev`).
    pub fn http_redirects(&self) -> crate::model::redirect::HttpRedirects {
        use crate::model::redirect::HttpRedirects;
        if self.apps.allow_http_redirect_uris.unwrap_or(self.dev) {
            HttpRedirects::AnyHost
        } else {
            HttpRedirects::LoopbackOnly
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.listen
            .parse::<SocketAddr>()
            .map_err(|e| format!("listen = {:?}: {e}", self.listen))?;
        let url = &self.store.url;
        if !url.is_empty() && !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            // The URL may hold a password: name the rule, not the value.
            return Err("store.url: must be a postgres:// or postgresql:// URL".into());
        }
        if !self.issuer.is_empty() {
            let u = url::Url::parse(&self.issuer)
                .map_err(|e| format!("issuer = {:?}: {e}", self.issuer))?;
            if !matches!(u.scheme(), "http" | "https")
                || u.query().is_some()
                || u.fragment().is_some()
            {
                return Err(format!(
                    "issuer = {:?}: must be an http(s) URL without query or fragment",
                    self.issuer
                ));
            }
        }
        for (key, value, min, max) in self.numeric_keys() {
            if !(min..=max).contains(&value) {
                return Err(format!("{key} = {value}: must be between {min} and {max}"));
            }
        }
        let a = &self.argon2;
        if a.memory_kib < 8 * a.parallelism {
            return Err(format!(
                "argon2.memory_kib = {}: must be at least 8 * argon2.parallelism ({})",
                a.memory_kib,
                8 * a.parallelism
            ));
        }
        if let Some(a) = self
            .keys
            .algorithms
            .iter()
            .find(|a| SigningAlg::from_name(a).is_none())
        {
            return Err(format!(
                "keys.algorithms: {a:?} is not one of RS256, ES256, EdDSA"
            ));
        }
        if self.admin.username.is_empty() {
            return Err("admin.username must not be empty".into());
        }
        for (i, p) in self.providers.iter().enumerate() {
            p.validate()?;
            let key = p.service_key();
            if self.providers[..i].iter().any(|o| o.service_key() == key) {
                return Err(format!("providers: {key:?} is declared twice"));
            }
        }
        Ok(())
    }

    /// Every numeric key with the range it must lie in. The upper bounds keep derived values from overflowing
    /// (a TTL becomes i64 milliseconds added to now; `cache_mb` is shifted into bytes; `header_bytes` becomes
    /// HTTP/2's u32 limit; timeouts become deadlines) and are far beyond any sensible setting; a lower bound of 1
    /// marks keys where zero is nonsense (it would refuse, or expire, everything).
    fn numeric_keys(&self) -> [(&'static str, u64, u64, u64); 28] {
        let (l, a, lg, t) = (&self.limits, &self.argon2, &self.login, &self.tokens);
        let n = |v: usize| v as u64;
        [
            ("cache_mb", self.cache_mb, 1, 1 << 20),
            ("argon2.memory_kib", a.memory_kib.into(), 8, 4 << 20),
            ("argon2.iterations", a.iterations.into(), 1, 64),
            ("argon2.parallelism", a.parallelism.into(), 1, 64),
            ("limits.body_bytes", n(l.body_bytes), 1, 64 << 20),
            ("limits.header_bytes", n(l.header_bytes), 1024, 1 << 20),
            (
                "limits.header_read_timeout_secs",
                l.header_read_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
            ),
            (
                "limits.request_timeout_secs",
                l.request_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
            ),
            ("limits.argon2_threads", n(l.argon2_threads), 0, 1024),
            ("limits.argon2_queue", n(l.argon2_queue), 1, 1 << 20),
            (
                "limits.shutdown_grace_secs",
                l.shutdown_grace_secs,
                0,
                MAX_TIMEOUT_SECS,
            ),
            (
                "limits.first_byte_timeout_secs",
                l.first_byte_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
            ),
            (
                "limits.idle_timeout_secs",
                l.idle_timeout_secs,
                1,
                MAX_TIMEOUT_SECS,
            ),
            ("limits.max_connections", n(l.max_connections), 1, 1 << 20),
            (
                "limits.sweep_interval_ms",
                l.sweep_interval_ms,
                1,
                MAX_TIMEOUT_SECS * 1000,
            ),
            (
                "limits.upstream_body_bytes",
                n(l.upstream_body_bytes),
                1024,
                64 << 20,
            ),
            (
                "login.token_ttl_days",
                lg.token_ttl_days,
                1,
                MAX_TTL_SECS / 86_400,
            ),
            (
                "login.max_failures_per_user",
                lg.max_failures_per_user.into(),
                1,
                1 << 20,
            ),
            (
                "login.max_failures_per_ip",
                lg.max_failures_per_ip.into(),
                1,
                1 << 20,
            ),
            ("login.window_secs", lg.window_secs, 1, MAX_TTL_SECS),
            ("tokens.access_ttl_secs", t.access_ttl_secs, 1, MAX_TTL_SECS),
            (
                "tokens.refresh_ttl_secs",
                t.refresh_ttl_secs,
                1,
                MAX_TTL_SECS,
            ),
            ("tokens.code_ttl_secs", t.code_ttl_secs, 1, 600),
            (
                "tokens.client_failures_per_minute",
                t.client_failures_per_minute.into(),
                1,
                1 << 20,
            ),
            (
                "tokens.id_token_ttl_secs",
                t.id_token_ttl_secs,
                1,
                MAX_TTL_SECS,
            ),
            (
                "keys.rotate_after_days",
                self.keys.rotate_after_days,
                0,
                MAX_TTL_SECS / 86_400,
            ),
            (
                "keys.publish_ahead_secs",
                self.keys.publish_ahead_secs,
                0,
                MAX_TTL_SECS,
            ),
            (
                "keys.refresh_interval_ms",
                self.keys.refresh_interval_ms,
                1,
                MAX_TIMEOUT_SECS * 1000,
            ),
        ]
    }

    /// Defaults for tests: a temp data dir, an ephemeral port, cheap argon2 so suites run fast.
    pub fn for_test(dir: &Path) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.to_owned(),
            cache_mb: 16,
            argon2: Argon2Params {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            admin: AdminConfig {
                username: "admin".into(),
                password: "admin-password".into(),
            },
            ..Self::default()
        }
    }

    pub fn argon2_threads(&self) -> usize {
        match self.limits.argon2_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_parses_and_matches_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::file_exact(&path))
            .extract()
            .unwrap();
        let d = Config::default();
        assert_eq!(cfg.listen, d.listen);
        assert_eq!(cfg.argon2, d.argon2);
        assert_eq!(cfg.limits.body_bytes, d.limits.body_bytes);
        assert_eq!(
            cfg.limits.header_read_timeout_secs,
            d.limits.header_read_timeout_secs
        );
        assert_eq!(cfg.tokens.access_ttl_secs, d.tokens.access_ttl_secs);
        assert_eq!(
            (
                cfg.limits.first_byte_timeout_secs,
                cfg.limits.idle_timeout_secs
            ),
            (d.limits.first_byte_timeout_secs, d.limits.idle_timeout_secs)
        );
        assert_eq!(cfg.limits.max_connections, d.limits.max_connections);
        assert_eq!(cfg.limits.upstream_body_bytes, d.limits.upstream_body_bytes);
    }

    #[test]
    fn http_redirects_on_any_host_follow_dev_unless_set() {
        use crate::model::redirect::HttpRedirects;
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[apps]\nallow_http_redirect_uris = false\n").unwrap();
        for (file, dev, want) in [
            (&shipped, false, HttpRedirects::LoopbackOnly),
            (&shipped, true, HttpRedirects::AnyHost),
            (&f, true, HttpRedirects::LoopbackOnly),
        ] {
            let cfg = Config::load(&Overrides {
                config: Some(file.clone()),
                dev,
                ..Default::default()
            })
            .unwrap();
            assert_eq!(cfg.http_redirects(), want, "{} dev={dev}", file.display());
        }
    }

    #[test]
    fn dev_turns_the_password_fallback_off_with_the_shipped_file_unless_set() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_PATH);
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[two_factor]\nenforce_password_fallback = true\n").unwrap();
        for (file, dev, want) in [
            (&shipped, false, true),
            (&shipped, true, false),
            (&f, true, true),
        ] {
            let cfg = Config::load(&Overrides {
                config: Some(file.clone()),
                dev,
                ..Default::default()
            })
            .unwrap();
            assert_eq!(
                cfg.password_fallback(),
                want,
                "{} dev={dev}",
                file.display()
            );
        }
    }

    #[test]
    fn unknown_keys_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\nlisten_typo = 1\n").unwrap();
        let e = Config::load(&Overrides {
            config: Some(f.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.contains("listen_typo"), "{e}");
        std::fs::write(&f, "[limits]\nbody = 1\n").unwrap();
        assert!(Config::load(&Overrides {
            config: Some(f),
            ..Default::default()
        })
        .is_err());
    }

    #[test]
    fn flags_beat_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:1\"\ndata_dir = \"/x\"\n").unwrap();
        let cfg = Config::load(&Overrides {
            config: Some(f),
            listen: Some("127.0.0.1:2".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(cfg.listen, "127.0.0.1:2");
        assert_eq!(cfg.data_dir, PathBuf::from("/x"));
    }

    #[test]
    fn numbers_that_would_overflow_or_mean_nothing_are_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        let load = |toml: &str| {
            std::fs::write(&f, toml).unwrap();
            Config::load(&Overrides {
                config: Some(f.clone()),
                ..Default::default()
            })
        };
        for (toml, key) in [
            (
                "[tokens]\naccess_ttl_secs = 10000000000000000\n",
                "tokens.access_ttl_secs",
            ),
            (
                "[tokens]\nrefresh_ttl_secs = 0\n",
                "tokens.refresh_ttl_secs",
            ),
            ("[tokens]\ncode_ttl_secs = 601\n", "tokens.code_ttl_secs"),
            (
                "[login]\ntoken_ttl_days = 100000000000000000\n",
                "login.token_ttl_days",
            ),
            ("[login]\nwindow_secs = 0\n", "login.window_secs"),
            ("cache_mb = 17592186044416\n", "cache_mb"),
            (
                "[limits]\nheader_bytes = 4294967296\n",
                "limits.header_bytes",
            ),
            ("[limits]\nmax_connections = 0\n", "limits.max_connections"),
            (
                "[limits]\nrequest_timeout_secs = 9223372036854775807\n",
                "limits.request_timeout_secs",
            ),
            (
                "[limits]\nupstream_body_bytes = 0\n",
                "limits.upstream_body_bytes",
            ),
            ("[argon2]\niterations = 4000000000\n", "argon2.iterations"),
        ] {
            let e = load(toml).unwrap_err();
            assert!(e.contains(key), "{toml}: {e}");
        }
        let ok = load("[tokens]\naccess_ttl_secs = 315360000\n").unwrap();
        assert_eq!(ok.tokens.access_ttl_secs, MAX_TTL_SECS);
        Config::default().validate().unwrap();
        Config::for_test(dir.path()).validate().unwrap();
    }

    #[test]
    fn a_missing_named_file_is_an_error() {
        let e = Config::load(&Overrides {
            config: Some("/nonexistent/x.toml".into()),
            ..Default::default()
        });
        assert!(e.unwrap_err().contains("does not exist"));
    }

    #[test]
    fn declared_providers_are_checked_and_their_secret_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let with = |p: DeclaredProvider| {
            let mut c = Config::for_test(dir.path());
            c.providers = vec![p];
            c.validate()
        };
        let github = DeclaredProvider {
            preset: "github".into(),
            client_id: "cid".into(),
            client_secret: "top-secret".into(),
            ..Default::default()
        };
        assert!(with(github.clone()).is_ok());
        assert!(!format!("{github:?}").contains("top-secret"));
        assert_eq!(github.service_key(), "github");
        let bad = |edit: fn(&mut DeclaredProvider)| {
            let mut p = github.clone();
            edit(&mut p);
            with(p).unwrap_err()
        };
        assert!(bad(|p| p.preset = "myspace".into()).contains("unknown preset"));
        assert!(bad(|p| p.token_path = "/t".into()).contains("token_path is for custom providers"));
        assert!(bad(|p| p.client_id.clear()).contains("client_id is required"));
        assert!(bad(|p| {
            p.options.insert("tenant".into(), "x".into());
        })
        .contains("no option"));
        let mut twice = Config::for_test(dir.path());
        let mut custom = github.clone();
        custom.preset.clear();
        custom.service = "GitHub".into();
        twice.providers = vec![github, custom];
        assert!(twice.validate().unwrap_err().contains("declared twice"));
    }
}
