//! The Stack Auth project of this instance (docs/endpoints.md#links): one project id and two keys, the secret server key and the
//! super secret admin key.
//!
//! Each comes from the config/env (`[stack]`, `LATCHKEY_STACK_*`) or, when unset there, is generated at first start
//! and kept in the `meta` tree. Keys are kept only as SHA-256 digests: a generated key is 256 random bits, so a
//! fast digest is as strong as a slow hash and keeps the per-request check at microseconds (an operator who sets
//! a key in the config should likewise choose a long random one). The plaintext of a generated key is printed
//! once, at generation, and never again.

use crate::config::StackConfig;
use crate::crypto::{ct_eq, random_token, sha256, uuid_v4};
use crate::error::{Error, Result};
use crate::store::Store;

const PROJECT_ID: &str = "stack_project_id";
const SERVER_KEY: &str = "stack_server_key_sha256";
const ADMIN_KEY: &str = "stack_admin_key_sha256";

/// Which key a request presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `X-Stack-Secret-Server-Key`.
    Server,
    /// `X-Stack-Super-Secret-Admin-Key`.
    Admin,
}

impl Key {
    fn meta_key(self) -> &'static str {
        match self {
            Key::Server => SERVER_KEY,
            Key::Admin => ADMIN_KEY,
        }
    }

    fn configured(self, config: &StackConfig) -> &str {
        match self {
            Key::Server => &config.server_key,
            Key::Admin => &config.admin_key,
        }
    }
}

/// The project id requests must name: the configured one, else the generated one.
pub async fn project_id(store: &Store, config: &StackConfig) -> Result<Option<String>> {
    let configured = &config.project_id;
    if !configured.is_empty() {
        return Ok(Some(configured.clone()));
    }
    store
        .meta_get(PROJECT_ID)
        .await?
        .map(|v| String::from_utf8(v).map_err(|_| Error::internal("stack project id is not UTF-8")))
        .transpose()
}

/// Whether `presented` is the key of this kind, compared in constant time on digests.
pub async fn key_matches(
    store: &Store,
    config: &StackConfig,
    key: Key,
    presented: &str,
) -> Result<bool> {
    let configured = key.configured(config);
    let want = if configured.is_empty() {
        match store.meta_get(key.meta_key()).await? {
            Some(digest) => digest,
            None => return Ok(false),
        }
    } else {
        sha256(configured.as_bytes()).to_vec()
    };
    Ok(ct_eq(&sha256(presented.as_bytes()), &want))
}

/// Generates what the config leaves unset and is not stored yet; returns the lines to print once. Each value is
/// stored only if absent, so of nodes starting together on one database the first one's is kept and printed, and
/// the others adopt it.
pub async fn ensure(store: &Store, cfg: &StackConfig) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    if cfg.project_id.is_empty() && store.meta_get(PROJECT_ID).await?.is_none() {
        let id = uuid_v4();
        if store
            .meta_put_if_absent(PROJECT_ID, id.as_bytes())
            .await?
            .is_none()
        {
            lines.push(format!(
                "stack: project id {id} (set LATCHKEY_STACK_PROJECT_ID to choose it)"
            ));
        }
    }
    for (key, label, env) in [
        (
            Key::Server,
            "secret server key",
            "LATCHKEY_STACK_SERVER_KEY",
        ),
        (
            Key::Admin,
            "super secret admin key",
            "LATCHKEY_STACK_ADMIN_KEY",
        ),
    ] {
        if key.configured(cfg).is_empty() && store.meta_get(key.meta_key()).await?.is_none() {
            let secret = random_token();
            let stored = store
                .meta_put_if_absent(key.meta_key(), &sha256(secret.as_bytes()))
                .await?
                .is_none();
            if stored {
                lines.push(format!(
                    "stack: {label} {secret} (shown once; set {env} to choose it)"
                ));
            }
        }
    }
    Ok(lines)
}
