//! Cost of minting and checking credentials.
//!
//! The numbers that matter: ids and tokens are effectively free, a cold argon2id hash/verify
//! with the default parameters is the per-core ceiling on login and client-credential
//! throughput, and the cached client-secret check (`verify_cached`) is what the token
//! endpoint pays on the hot path.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use latchkey::crypto::{random_id, random_token, sha256, Argon2Params, Hasher, Verifier};

fn ids_and_tokens(c: &mut Criterion) {
    let mut g = c.benchmark_group("random_id");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("client_id", |b| b.iter(random_id));
    g.finish();

    // Client secrets and access tokens come from the same generator; both names are kept so
    // results line up with the operations they stand for.
    let mut g = c.benchmark_group("random_token");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("client_secret", |b| b.iter(random_token));
    g.bench_function("access_token", |b| b.iter(random_token));
    g.finish();

    let token = random_token();
    let mut g = c.benchmark_group("sha256");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("token_digest", |b| {
        b.iter(|| sha256(black_box(token.as_bytes())))
    });
    g.finish();
}

fn argon2_cold(c: &mut Criterion) {
    let hasher = Hasher::new(Argon2Params::default(), 1, 4);
    let phc = hasher.hash_blocking("client-secret".into()).unwrap();

    let mut g = c.benchmark_group("argon2id");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("hash_cold", |b| {
        b.iter(|| hasher.hash_blocking("client-secret".into()).unwrap())
    });
    g.bench_function("verify_cold", |b| {
        b.iter(|| {
            assert!(hasher
                .verify_blocking("client-secret".into(), phc.clone())
                .unwrap())
        })
    });
    g.finish();
}

fn verify_cached(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let verifier = Verifier::new(Arc::new(Hasher::new(Argon2Params::default(), 1, 4)));
    let phc = verifier
        .hasher()
        .hash_blocking("client-secret".into())
        .unwrap();
    // Warm the cache with the one argon2 verification the hot path avoids afterwards.
    assert!(rt
        .block_on(verifier.verify("client", "client-secret", &phc))
        .unwrap());

    let mut g = c.benchmark_group("verify_cached");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    g.bench_function("client_secret", |b| {
        b.iter(|| {
            let ok = rt
                .block_on(verifier.verify("client", black_box("client-secret"), &phc))
                .unwrap();
            assert!(ok);
        })
    });
    g.finish();
}

criterion_group!(benches, ids_and_tokens, argon2_cold, verify_cached);
criterion_main!(benches);
