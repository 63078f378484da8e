//! Signing keys: which key signs, which are published, when a new one is made and when an old one goes
//! (docs/oidc.md#signing-keys), and the in-memory [`KeyRing`] requests sign and verify with.
//!
//! The rotation model, per algorithm: keys are ordered by `signs_from` (then kid, so every node agrees); the one
//! that signs at `now` is the last with `signs_from <= now`. A key is superseded when the next one starts signing,
//! and stays published until every token it may have signed has expired ([`KeyPolicy::retain_ms`] after that);
//! then it is pruned. A new key is published [`KeyPolicy::publish_ahead_ms`] before it signs, so relying parties
//! that cache the JWKS know it before they meet it; only an algorithm without any signing key (an empty store, an
//! algorithm just enabled) gets a key that signs at once. [`ensure`] applies all of it and is idempotent: it runs
//! at start and then on every node periodically, each node reloading its ring from the shared store.
//!
//! Signing never touches the store nor takes a lock: the ring is an immutable snapshot behind an `ArcSwap`,
//! replaced whole by the refresh.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use serde::de::DeserializeOwned;

use crate::clock::{Clock, Millis};
use crate::config::Config;
use crate::crypto::jose::{self, JoseError, Signer, SigningAlg, VerifyingKey};
use crate::crypto::{sha256, Sealer};
use crate::error::{Error, Result};
use crate::model::SigningKey;
use crate::store::Store;

/// Added to the longest token lifetime before a superseded key is pruned: relying parties' clock skew.
const RETIRE_MARGIN_MS: Millis = 10 * 60_000;

/// When keys are made and pruned; derived from the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The algorithms that always have a signing key, RS256 first.
    pub algs: Vec<SigningAlg>,
    /// A signing key this old gets a successor; `None`: never automatically.
    pub rotate_after_ms: Option<Millis>,
    /// How long a new key is published before it signs.
    pub publish_ahead_ms: Millis,
    /// How long a superseded key stays published: the longest life of a token it may have signed (access and ID
    /// tokens), plus a margin for skew and for a ring that switches keys up to one refresh late.
    pub retain_ms: Millis,
    /// How often the ring is refreshed (and `ensure` run).
    pub refresh_ms: Millis,
}

impl KeyPolicy {
    pub fn from_config(c: &Config) -> Self {
        let ttl_secs = c.tokens.access_ttl_secs.max(c.tokens.id_token_ttl_secs);
        let refresh_ms = c.keys.refresh_interval_ms as Millis;
        Self {
            algs: c.keys.algs(),
            rotate_after_ms: match c.keys.rotate_after_days {
                0 => None,
                d => Some(d as Millis * 86_400_000),
            },
            publish_ahead_ms: c.keys.publish_ahead_secs as Millis * 1000,
            retain_ms: ttl_secs as Millis * 1000 + RETIRE_MARGIN_MS + refresh_ms,
            refresh_ms,
        }
    }

    /// The JWKS `Cache-Control: max-age`, in seconds: well below `publish_ahead` (a quarter of it, at most an
    /// hour), so a cache fetches the JWKS again before a key published since its last fetch signs.
    pub fn jwks_max_age_secs(&self) -> u64 {
        (self.publish_ahead_ms / 4000).clamp(0, 3600) as u64
    }
}

/// Where a key is in its life at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published, not signing yet.
    Next,
    /// The key its algorithm signs with.
    Signing,
    /// Superseded; published until `retires_at`.
    Retiring,
    /// Superseded for longer than any token it signed lives: to be pruned.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Signing => "signing",
            KeyState::Retiring => "retiring",
            KeyState::Retired => "retired",
        }
    }
}

/// A key and where it is at some instant.
#[derive(Clone, Debug)]
pub struct KeyStatus {
    pub key: SigningKey,
    pub state: KeyState,
    /// When it stops being published (known once a successor is scheduled).
    pub retires_at: Option<Millis>,
}

/// Every key with its state at `now`, RS256's first, each algorithm's in signing order.
pub fn statuses(mut keys: Vec<SigningKey>, policy: &KeyPolicy, now: Millis) -> Vec<KeyStatus> {
    keys.sort_by(|a, b| (a.alg, a.signs_from, &a.kid).cmp(&(b.alg, b.signs_from, &b.kid)));
    let successors: Vec<Option<Millis>> = (0..keys.len())
        .map(|i| {
            keys.get(i + 1)
                .filter(|next| next.alg == keys[i].alg)
                .map(|next| next.signs_from)
        })
        .collect();
    keys.into_iter()
        .zip(successors)
        .map(|(key, superseded_at)| {
            let retires_at = superseded_at.map(|t| t + policy.retain_ms);
            let state = match (superseded_at, retires_at) {
                _ if key.signs_from > now => KeyState::Next,
                (Some(_), Some(r)) if r <= now => KeyState::Retired,
                (Some(s), _) if s <= now => KeyState::Retiring,
                _ => KeyState::Signing,
            };
            KeyStatus {
                key,
                state,
                retires_at,
            }
        })
        .collect()
}

/// What `ensure` needs: the store, the master key's sealer and the policy.
pub struct Keys<'a> {
    pub store: &'a Store,
    pub sealer: &'a Sealer,
    pub policy: &'a KeyPolicy,
}

/// What [`ensure`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub created: Vec<String>,
    pub pruned: Vec<String>,
}

/// Brings the keys in line with the policy at `now` (see the module doc): a signing key for every algorithm, a
/// successor for one older than `rotate_after`, retired keys pruned. Idempotent. An algorithm with no key signing
/// now gets one that signs at once, even when a successor is scheduled (made by `keys rotate` before the first
/// start): it takes over when its time comes.
pub async fn ensure(ctx: &Keys<'_>, now: Millis) -> Result<Changes> {
    let mut changes = Changes::default();
    let all = statuses(ctx.store.list_signing_keys().await?, ctx.policy, now);
    for status in all.iter().filter(|s| s.state == KeyState::Retired) {
        ctx.store.delete_signing_key(&status.key.kid).await?;
        changes.pruned.push(status.key.kid.clone());
    }
    for &alg in &ctx.policy.algs {
        let of_alg = || {
            all.iter()
                .filter(move |s| s.key.alg == alg && s.state != KeyState::Retired)
        };
        let signing = of_alg().find(|s| s.state == KeyState::Signing);
        let scheduled = of_alg().any(|s| s.state == KeyState::Next);
        let signs_from = match (signing, ctx.policy.rotate_after_ms) {
            (None, _) => now,
            (Some(s), Some(after)) if !scheduled && s.key.signs_from + after <= now => {
                now + ctx.policy.publish_ahead_ms
            }
            _ => continue,
        };
        // Another node deciding the same at once: only the first stores its key, the others adopt it.
        let seen: Vec<String> = of_alg().map(|s| s.key.kid.clone()).collect();
        let key = generate(ctx, alg, now, signs_from).await?;
        if ctx
            .store
            .put_signing_key_unless_changed(&key, &seen)
            .await?
        {
            log_created(&key);
            changes.created.push(key.kid);
        }
    }
    Ok(changes)
}

/// Schedules a successor for `alg`'s signing key: it signs `publish_ahead` from `now`, or at once when `at_once`
/// (a compromised key; the old key stays published while its tokens live). Without `at_once`, an already
/// scheduled successor is returned instead of a second one. The key is stored only if `alg`'s keys are still
/// what this call read (as a node's [`ensure`] stores), so a rotation racing a node's start or another rotation
/// never leaves two; the loser reads again.
pub async fn rotate(
    ctx: &Keys<'_>,
    alg: SigningAlg,
    now: Millis,
    at_once: bool,
) -> Result<SigningKey> {
    loop {
        let keys = ctx.store.list_signing_keys().await?;
        let seen: Vec<String> = keys
            .iter()
            .filter(|k| k.alg == alg)
            .map(|k| k.kid.clone())
            .collect();
        if !at_once {
            if let Some(next) = statuses(keys, ctx.policy, now)
                .into_iter()
                .find(|s| s.key.alg == alg && s.state == KeyState::Next)
            {
                return Ok(next.key);
            }
        }
        let signs_from = if at_once {
            now
        } else {
            now + ctx.policy.publish_ahead_ms
        };
        let key = generate(ctx, alg, now, signs_from).await?;
        if ctx
            .store
            .put_signing_key_unless_changed(&key, &seen)
            .await?
        {
            log_created(&key);
            return Ok(key);
        }
    }
}

/// Generates a key (off the async workers: RSA generation is slow) and seals its private part.
async fn generate(
    ctx: &Keys<'_>,
    alg: SigningAlg,
    now: Millis,
    signs_from: Millis,
) -> Result<SigningKey> {
    let der = tokio::task::spawn_blocking(move || jose::generate(alg))
        .await
        .map_err(Error::internal)?;
    let public = jose::public_key(alg, &der).map_err(Error::internal)?;
    let kid = public.thumbprint();
    let key = SigningKey {
        private_sealed: ctx.sealer.seal(&der, &SigningKey::seal_aad(&kid)),
        kid,
        alg,
        public,
        created_at: now,
        signs_from,
    };
    Ok(key)
}

fn log_created(key: &SigningKey) {
    tracing::info!(kid = %key.kid, alg = key.alg.as_str(), signs_from = key.signs_from, "signing key created");
}

/// The keys as requests use them at one instant: the signer per algorithm, every published key for
/// verification, and the JWKS document, rendered once.
pub struct KeyRing {
    signers: Vec<Signer>,
    verifying: Vec<VerifyingKey>,
    /// Shared, so that every answer hands out the one rendering without copying it.
    jwks: Arc<[u8]>,
    etag: String,
}

impl KeyRing {
    /// The ring of `keys` at `now`. Fails when a private key does not open under `sealer` (another master key).
    pub fn build(
        keys: Vec<SigningKey>,
        sealer: &Sealer,
        policy: &KeyPolicy,
        now: Millis,
    ) -> Result<Self> {
        let mut published: Vec<KeyStatus> = statuses(keys, policy, now)
            .into_iter()
            .filter(|s| s.state != KeyState::Retired)
            .collect();
        // Per algorithm (RS256 first), the signing key first: a naive client that takes a JWKS's first key of
        // its algorithm gets the one that signs.
        published.sort_by_key(|s| (s.key.alg, s.state != KeyState::Signing, s.key.signs_from));
        let mut signers = Vec::new();
        let mut verifying = Vec::new();
        let mut jwks = Vec::new();
        for s in &published {
            let k = &s.key;
            if s.state == KeyState::Signing {
                let der = sealer
                    .open(&k.private_sealed, &SigningKey::seal_aad(&k.kid))
                    .ok_or_else(|| {
                        Error::Internal(format!(
                            "signing key {} does not open under this master key",
                            k.kid
                        ))
                    })?;
                signers.push(Signer::new(k.kid.clone(), k.alg, &der).map_err(Error::internal)?);
            }
            verifying
                .push(VerifyingKey::new(k.kid.clone(), k.alg, &k.public).map_err(Error::internal)?);
            jwks.push(k.public.jwk(k.alg, &k.kid));
        }
        let jwks: Arc<[u8]> = serde_json::to_vec(&serde_json::json!({ "keys": jwks }))
            .expect("a JSON value serializes")
            .into();
        let etag = format!(
            "\"{}\"",
            crate::crypto::secret::b64url(&sha256(&jwks)[..12])
        );
        Ok(Self {
            signers,
            verifying,
            jwks,
            etag,
        })
    }

    /// The key `alg` signs with now; `None` when the algorithm has no key (not in `[keys] algorithms`).
    pub fn signer(&self, alg: SigningAlg) -> Option<&Signer> {
        self.signers.iter().find(|s| s.alg() == alg)
    }

    /// The JWKS document (`{"keys":[…]}`) of every published key, RS256 first.
    pub fn jwks(&self) -> &Arc<[u8]> {
        &self.jwks
    }

    /// A strong validator of [`KeyRing::jwks`], quoted for the `ETag` header.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// The claims of a JWT this server issued with a key still published (signature only; see
    /// [`jose::verify`]).
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        allowed: &[SigningAlg],
    ) -> std::result::Result<T, JoseError> {
        jose::verify(token, &self.verifying, allowed)
    }
}

/// The current [`KeyRing`], shared by every request, and the policy it follows: reading it is a lock-free load;
/// [`SharedKeyRing::refresh`] swaps in a new one.
pub struct SharedKeyRing {
    ring: ArcSwap<KeyRing>,
    policy: KeyPolicy,
}

impl SharedKeyRing {
    /// Runs [`ensure`] and builds the first ring (at start, before the server answers). The ring is built at the
    /// time `ensure` ended, not began: a node that lost the race to give an algorithm its first key adopts the
    /// winner's, which signs from the winner's start, later than this node's.
    pub async fn start(ctx: &Keys<'_>, clock: &Clock) -> Result<Self> {
        ensure(ctx, clock.now_ms()).await?;
        let ring = KeyRing::build(
            ctx.store.list_signing_keys().await?,
            ctx.sealer,
            ctx.policy,
            clock.now_ms(),
        )?;
        Ok(Self {
            ring: ArcSwap::from_pointee(ring),
            policy: ctx.policy.clone(),
        })
    }

    /// The ring now.
    pub fn load(&self) -> Guard<Arc<KeyRing>> {
        self.ring.load()
    }

    pub fn policy(&self) -> &KeyPolicy {
        &self.policy
    }

    /// Rotates what is due and reloads the ring from the store (other nodes' keys included). On an error the old
    /// ring stays.
    pub async fn refresh(&self, ctx: &Keys<'_>, now: Millis) -> Result<()> {
        let changes = ensure(ctx, now).await?;
        for kid in &changes.pruned {
            tracing::info!(%kid, "signing key retired");
        }
        let ring = KeyRing::build(
            ctx.store.list_signing_keys().await?,
            ctx.sealer,
            ctx.policy,
            now,
        )?;
        self.ring.store(Arc::new(ring));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::World;

    const HOUR: Millis = 3_600_000;
    const DAY: Millis = 24 * HOUR;

    fn policy(algs: &[SigningAlg]) -> KeyPolicy {
        KeyPolicy {
            algs: algs.to_vec(),
            rotate_after_ms: Some(90 * DAY),
            publish_ahead_ms: DAY,
            retain_ms: 2 * HOUR,
            refresh_ms: 60_000,
        }
    }

    fn keys<'a>(w: &'a World, p: &'a KeyPolicy) -> Keys<'a> {
        Keys {
            store: &w.store,
            sealer: &w.sealer,
            policy: p,
        }
    }

    async fn states(w: &World, p: &KeyPolicy) -> Vec<(String, KeyState)> {
        let now = w.clock.now_ms();
        statuses(w.store.list_signing_keys().await.unwrap(), p, now)
            .into_iter()
            .map(|s| (s.key.kid, s.state))
            .collect()
    }

    #[tokio::test]
    async fn an_empty_store_gets_a_key_per_algorithm_that_signs_at_once_and_ensure_is_idempotent() {
        let w = World::new().await;
        let p = policy(&SigningAlg::ALL);
        let now = w.clock.now_ms();
        let made = ensure(&keys(&w, &p), now).await.unwrap();
        assert_eq!(made.created.len(), 3);
        assert_eq!(
            ensure(&keys(&w, &p), now).await.unwrap(),
            Changes::default()
        );
        let ring = KeyRing::build(
            w.store.list_signing_keys().await.unwrap(),
            &w.sealer,
            &p,
            now,
        )
        .unwrap();
        for alg in SigningAlg::ALL {
            let signer = ring.signer(alg).unwrap();
            let token = signer.sign("JWT", &serde_json::json!({"sub": "u"}));
            let claims: serde_json::Value = ring.verify(&token, &[alg]).unwrap();
            assert_eq!(claims["sub"], "u");
        }
        let jwks: serde_json::Value = serde_json::from_slice(ring.jwks()).unwrap();
        let algs: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["alg"].as_str().unwrap())
            .collect();
        assert_eq!(algs, ["RS256", "ES256", "EdDSA"]);
        assert!(!String::from_utf8_lossy(ring.jwks()).contains("\"d\""));
    }

    #[tokio::test]
    async fn rotation_publishes_ahead_keeps_the_old_key_while_its_tokens_live_then_prunes_it() {
        let w = World::new().await;
        let p = policy(&[SigningAlg::EdDsa]);
        let ctx = keys(&w, &p);
        ensure(&ctx, w.clock.now_ms()).await.unwrap();
        let old = states(&w, &p).await[0].0.clone();
        w.clock.advance(90 * DAY - 1);
        assert!(ensure(&ctx, w.clock.now_ms())
            .await
            .unwrap()
            .created
            .is_empty());
        w.clock.advance(1);
        let new = ensure(&ctx, w.clock.now_ms()).await.unwrap().created;
        assert_eq!(new.len(), 1, "rotate_after reached: a successor");
        let new = new[0].clone();
        assert_eq!(
            states(&w, &p).await,
            [
                (old.clone(), KeyState::Signing),
                (new.clone(), KeyState::Next)
            ]
        );
        assert!(
            ensure(&ctx, w.clock.now_ms())
                .await
                .unwrap()
                .created
                .is_empty(),
            "one successor"
        );
        w.clock.advance(DAY);
        assert_eq!(
            states(&w, &p).await,
            [
                (old.clone(), KeyState::Retiring),
                (new.clone(), KeyState::Signing)
            ]
        );
        w.clock.advance(2 * HOUR - 1);
        assert_eq!(
            ensure(&ctx, w.clock.now_ms()).await.unwrap(),
            Changes::default()
        );
        w.clock.advance(1);
        assert_eq!(ensure(&ctx, w.clock.now_ms()).await.unwrap().pruned, [old]);
        assert_eq!(states(&w, &p).await, [(new, KeyState::Signing)]);
    }

    #[tokio::test]
    async fn manual_rotation_schedules_once_or_signs_at_once() {
        let w = World::new().await;
        let p = policy(&[SigningAlg::Es256]);
        let ctx = keys(&w, &p);
        let now = w.clock.now_ms();
        ensure(&ctx, now).await.unwrap();
        let next = rotate(&ctx, SigningAlg::Es256, now, false).await.unwrap();
        assert_eq!(next.signs_from, now + DAY);
        assert_eq!(
            rotate(&ctx, SigningAlg::Es256, now, false)
                .await
                .unwrap()
                .kid,
            next.kid
        );
        let now = now + 1;
        let urgent = rotate(&ctx, SigningAlg::Es256, now, true).await.unwrap();
        let ring = KeyRing::build(
            w.store.list_signing_keys().await.unwrap(),
            &w.sealer,
            &p,
            now,
        )
        .unwrap();
        assert_eq!(ring.signer(SigningAlg::Es256).unwrap().kid(), urgent.kid);
        assert!(ring.signer(SigningAlg::Rs256).is_none());
    }

    #[tokio::test]
    async fn a_key_sealed_under_another_master_key_stops_the_ring() {
        let w = World::new().await;
        let p = policy(&[SigningAlg::EdDsa]);
        ensure(&keys(&w, &p), 0).await.unwrap();
        let other = Sealer::new([9; 32]);
        let e = KeyRing::build(w.store.list_signing_keys().await.unwrap(), &other, &p, 0)
            .err()
            .unwrap();
        assert!(
            matches!(&e, Error::Internal(m) if m.contains("master key")),
            "{e:?}"
        );
    }

    #[test]
    fn jwks_max_age_stays_below_publish_ahead() {
        let mut p = policy(&[]);
        assert_eq!(p.jwks_max_age_secs(), 3600);
        p.publish_ahead_ms = 60_000;
        assert_eq!(p.jwks_max_age_secs(), 15);
        p.publish_ahead_ms = 0;
        assert_eq!(p.jwks_max_age_secs(), 0);
    }
}

/// On PostgreSQL (gated by `LATCHKEY_TEST_PG_URL`, like `store::pg_test`): rotations racing across nodes.
#[cfg(test)]
mod pg_tests {
    /// `latchkey keys rotate` racing nodes that decide the same (a start, a due rotation): of ten rotations at once on
    /// one database, one schedules a successor and the others return it, so the algorithm never gets two.
    #[test]
    fn concurrent_rotations_schedule_one_successor() {
        use crate::core::keys::{self, KeyPolicy, KeyState, Keys};
        use crate::crypto::jose::SigningAlg;
        use crate::store::Store;
        let policy = || KeyPolicy {
            algs: vec![SigningAlg::EdDsa],
            rotate_after_ms: None,
            publish_ahead_ms: 86_400_000,
            retain_ms: 7_200_000,
            refresh_ms: 60_000,
        };
        let now = 1_000_000;
        /// `keys rotate` on `s` (its kid), or with `rotate` false the keys' first ensuring.
        async fn run(s: Store, p: KeyPolicy, now: i64, rotate: bool) -> String {
            let sealer = crate::crypto::seal::Sealer::new([7; 32]);
            let ctx = Keys {
                store: &s,
                sealer: &sealer,
                policy: &p,
            };
            if !rotate {
                keys::ensure(&ctx, now).await.unwrap();
                return String::new();
            }
            keys::rotate(&ctx, SigningAlg::EdDsa, now, false)
                .await
                .unwrap()
                .kid
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let Some((_d, s)) = crate::store::pg_test::pg_store().await else {
                return;
            };
            run(s.clone(), policy(), now, false).await;
            let rotations: Vec<_> = (0..10)
                .map(|_| tokio::spawn(run(s.clone(), policy(), now, true)))
                .collect();
            let mut kids = std::collections::BTreeSet::new();
            for r in rotations {
                kids.insert(r.await.unwrap());
            }
            assert_eq!(kids.len(), 1, "every rotation returns the one successor");
            let next = keys::statuses(s.list_signing_keys().await.unwrap(), &policy(), now)
                .into_iter()
                .filter(|k| k.state == KeyState::Next)
                .count();
            assert_eq!(next, 1);
        });
    }
}
