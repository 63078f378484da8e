//! Point lookups on the hot paths, in stores of 10^3, 10^5 and 10^6 records of each kind with the default 64 MiB
//! cache: `app_by_client_id` and `client_app` (the same behind the decoded-app cache the token endpoint uses),
//! `access_token` (introspection and userinfo: SHA-256 of the value, the record, its app's revocation epoch),
//! `login_token` (every authenticated API call, hashing included), `user_by_username` (login), `link_by_account`
//! (federated sign-in: the link of an upstream account) and `links_of_user` (Stack's list, a prefix scan). Hits are random existing keys; misses are keys of the same shape that were never
//! stored, which is what a probing attacker costs us.
//!
//! Each size is populated once (bulk, see `Store::bulk_load_for_bench`) and shared by all its benches. Keys are pure
//! functions of `(kind, index)`, so hit and miss pools are derived without keeping the records.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use latchkey::crypto::{self, ids::ID_ALPHABET};
use latchkey::model::user::Email;
use latchkey::model::{App, ClientType, Link, Provider, Role, User, UserRef};
use latchkey::store::{BenchRecords, Lineage, LoginToken, Store, Subject, TokenKind, TokenRecord};

const SIZES: [u64; 3] = [1_000, 100_000, 1_000_000];
/// Keys per hit or miss pool: large enough that a 10^6 store's working set does not fit the cache.
const POOL: u64 = 1 << 16;
const CACHE_BYTES: u64 = 64 << 20;

/// Key domains, so different kinds of key never coincide.
const APP_ID: u64 = 1;
const CLIENT_ID: u64 = 2;
const USER_ID: u64 = 3;
const USERNAME: u64 = 4;
const TOKEN: u64 = 5;
const SAMPLE: u64 = 6;
const ACCESS: u64 = 7;
const LINK_ID: u64 = 8;
const ACCOUNT: u64 = 9;
/// The provider every bench link belongs to.
const PROVIDER: &str = "benchidp";

/// splitmix64: a cheap, well-mixed, deterministic hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A 17-character `Random.id`-shaped id (mixed case, like real client ids), unique per `(domain, i)` in practice.
fn id(domain: u64, i: u64) -> String {
    let mut x = (u128::from(mix(mix(domain) ^ i)) << 64) | u128::from(mix(i ^ (domain << 56)));
    (0..17)
        .map(|_| {
            let c = ID_ALPHABET[(x % ID_ALPHABET.len() as u128) as usize];
            x /= ID_ALPHABET.len() as u128;
            char::from(c)
        })
        .collect()
}

/// A 43-character base64url token, the shape `crypto::random_token` produces.
fn token(i: u64) -> String {
    URL_SAFE_NO_PAD.encode(crypto::sha256(
        &[TOKEN.to_be_bytes(), i.to_be_bytes()].concat(),
    ))
}

fn app(i: u64) -> App {
    App {
        id: id(APP_ID, i),
        name: format!("Bench app {i}"),
        active: true,
        client_id: id(CLIENT_ID, i),
        redirect_uris: vec![format!("https://app{i}.example.com/oauth/callback")],
        client_type: ClientType::Confidential,
        grant_types: App::default_grants(),
        scopes: App::default_scopes(),
        skip_consent: false,
        token_epoch: 0,
        // The length of a real argon2id PHC string with the default parameters.
        secret_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1${}", "x".repeat(66))),
        created_at: i as i64,
        updated_at: i as i64,
        created_by: UserRef {
            id: id(USER_ID, 0),
            username: id(USERNAME, 0),
        },
        oidc: Default::default(),
    }
}

fn user(i: u64) -> User {
    let username = id(USERNAME, i);
    User {
        id: id(USER_ID, i),
        emails: vec![Email {
            address: format!("{}@example.com", username.to_lowercase()),
            verified: true,
        }],
        name: format!("Bench User {i}"),
        username,
        roles: vec![if i == 0 { Role::Admin } else { Role::User }],
        active: true,
        password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1${}", "x".repeat(66))),
        created_at: i as i64,
        updated_at: i as i64,
        two_factor: None,
        profile: Default::default(),
    }
}

/// The value of the `i`th client_credentials access token.
fn access(i: u64) -> String {
    URL_SAFE_NO_PAD.encode(crypto::sha256(
        &[ACCESS.to_be_bytes(), i.to_be_bytes()].concat(),
    ))
}

fn access_token(i: u64, n: u64) -> ([u8; 32], TokenRecord) {
    let record = TokenRecord {
        kind: TokenKind::Access,
        lineage: Lineage::Epoch(0),
        client_id: id(CLIENT_ID, mix(i) % n),
        subject: Subject::Client,
        scope: "email openid profile".into(),
        issued_at: i as i64,
        expires_at: i64::MAX,
        rotated: false,
        sibling: None,
    };
    (crypto::sha256(access(i).as_bytes()), record)
}

/// User `i`'s sign-in link to the bench provider.
fn link(i: u64) -> Link {
    Link {
        id: id(LINK_ID, i),
        user_id: id(USER_ID, i),
        provider: PROVIDER.into(),
        provider_type: "custom".into(),
        email: None,
        allow_sign_in: true,
        allow_connected_accounts: true,
        account_id: id(ACCOUNT, i),
        created_at: i as i64,
        upstream: None,
    }
}

fn login_token(i: u64, n: u64) -> ([u8; 32], LoginToken) {
    let record = LoginToken {
        user_id: id(USER_ID, mix(i) % n),
        created_at: i as i64,
        expires_at: i as i64 + 90 * 86_400_000,
        amr: Vec::new(),
    };
    (crypto::sha256(token(i).as_bytes()), record)
}

/// A store with `n` apps, `n` users, `n` login tokens (owned by random users), `n` access tokens (of random apps)
/// and one sign-in link per user, loaded in one call so that each tree is written in key order.
fn populate(dir: &Path, n: u64) -> Store {
    let store = Store::open(dir, CACHE_BYTES).expect("open bench store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(store.add_provider(&Provider::new("p-bench".into(), "Benchidp".into(), 0)))
        .expect("add the bench provider");
    let apps: Vec<App> = (0..n).map(app).collect();
    let users: Vec<User> = (0..n).map(user).collect();
    let login_tokens: Vec<_> = (0..n).map(|i| login_token(i, n)).collect();
    let access_tokens: Vec<_> = (0..n).map(|i| access_token(i, n)).collect();
    let links: Vec<Link> = (0..n).map(link).collect();
    store
        .bulk_load_for_bench(&BenchRecords {
            apps: &apps,
            users: &users,
            login_tokens: &login_tokens,
            access_tokens: &access_tokens,
            links: &links,
        })
        .expect("bulk load");
    store
}

/// `POOL` random indexes of stored records, and as many indexes just past the stored ones (never stored).
fn indexes(n: u64) -> (Vec<u64>, Vec<u64>) {
    let hits = (0..POOL).map(|k| mix(SAMPLE ^ (k << 8)) % n).collect();
    let misses = (n..n + POOL).collect();
    (hits, misses)
}

/// Benches `lookup` over cycling pools of hit and miss keys, after checking that every key answers as expected.
fn bench_lookup<K>(
    c: &mut Criterion,
    name: &str,
    n: u64,
    (hits, misses): (Vec<K>, Vec<K>),
    lookup: impl Fn(&K) -> bool,
) {
    let mut g = c.benchmark_group(name);
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (case, keys, found) in [("hit", hits, true), ("miss", misses, false)] {
        assert!(
            keys.iter().all(|k| lookup(k) == found),
            "{name}: a {case} key answered wrongly"
        );
        g.bench_with_input(BenchmarkId::new(case, n), &keys, |b, keys| {
            let mut i = 0;
            b.iter(|| {
                let k = &keys[i % keys.len()];
                i += 1;
                black_box(lookup(black_box(k)))
            })
        });
    }
    g.finish();
}

/// Runs a store read to completion by polling it once: the embedded store answers without waiting, so this
/// measures the lookup plus the cost of its `async` state machine and nothing of a runtime.
fn ready<T>(read: impl std::future::Future<Output = T>) -> T {
    let mut read = std::pin::pin!(read);
    match read
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("an embedded store read completes when called"),
    }
}

fn lookups(c: &mut Criterion) {
    for n in SIZES {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = populate(dir.path(), n);
        let (hits, misses) = indexes(n);
        let keys = |f: fn(u64) -> String| {
            let k = |v: &[u64]| v.iter().map(|&i| f(i)).collect::<Vec<_>>();
            (k(&hits), k(&misses))
        };
        bench_lookup(c, "app_by_client_id", n, keys(|i| id(CLIENT_ID, i)), |k| {
            ready(store.app_by_client_id(k)).unwrap().is_some()
        });
        // What the token, introspection and revocation endpoints call: the same lookup behind the decoded-app
        // cache (hits are cached by the check pass before measuring; misses are never cached).
        bench_lookup(c, "client_app_cached", n, keys(|i| id(CLIENT_ID, i)), |k| {
            ready(store.client_app(k)).unwrap().is_some()
        });
        bench_lookup(c, "access_token", n, keys(access), |k| {
            ready(store.active_token(&crypto::sha256(k.as_bytes()), 0))
                .unwrap()
                .is_some()
        });
        bench_lookup(c, "login_token", n, keys(token), |k| {
            ready(store.login_token(&crypto::sha256(k.as_bytes())))
                .unwrap()
                .is_some()
        });
        bench_lookup(c, "user_by_username", n, keys(|i| id(USERNAME, i)), |k| {
            ready(store.user_by_username(k)).unwrap().is_some()
        });
        bench_lookup(c, "link_by_account", n, keys(|i| id(ACCOUNT, i)), |k| {
            ready(store.sign_in_link(PROVIDER, k)).unwrap().is_some()
        });
        bench_lookup(c, "links_of_user", n, keys(|i| id(USER_ID, i)), |k| {
            !ready(store.links_of_user(k)).unwrap().is_empty()
        });
        drop(store);
        drop(dir);
    }
}

criterion_group!(benches, lookups);
criterion_main!(benches);
