//! Cost of signing an ID token: `Signer::sign` (jsonwebtoken over ring: header + claims to JSON, base64url,
//! signature) per algorithm, on the claims of a typical ID token. Beside it, ring signing the same bytes with a
//! key parsed once: the difference is what jsonwebtoken's parsing of the key on every call costs.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use latchkey::crypto::jose::{generate, public_key, Signer, SigningAlg};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use serde_json::json;

fn id_token_claims() -> serde_json::Value {
    json!({
        "iss": "https://auth.example.com",
        "sub": "k3Zy8JqfT2mWbXc9A",
        "aud": "Xb2c9LmQpR7sT4vW1",
        "exp": 1_767_229_200,
        "iat": 1_767_225_600,
        "auth_time": 1_767_225_590,
        "nonce": "n-0S6_WzA2Mj",
        "azp": "Xb2c9LmQpR7sT4vW1",
        "at_hash": "77QmUPtjPfzWtF2AnpK9RQ",
        "sid": "08a5019c-17e1-4977-8f42-65a12843ea02",
        "amr": ["pwd", "otp"],
        "name": "Jane Doe",
        "preferred_username": "jane.doe",
        "email": "jane@example.com",
        "email_verified": true,
    })
}

fn sign(c: &mut Criterion) {
    let claims = id_token_claims();
    let mut g = c.benchmark_group("id_token_sign");
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    for alg in SigningAlg::ALL {
        let der = generate(alg);
        let kid = public_key(alg, &der).unwrap().thumbprint();
        let signer = Signer::new(kid, alg, &der).unwrap();
        g.bench_function(alg.as_str(), |b| {
            b.iter(|| signer.sign("JWT", black_box(&claims)))
        });
        let message = signer.sign("JWT", &claims);
        let message = message.rsplit_once('.').unwrap().0.as_bytes().to_vec();
        let rng = SystemRandom::new();
        let name = format!("{}_ring_preparsed_key", alg.as_str());
        match alg {
            SigningAlg::Rs256 => {
                let key = RsaKeyPair::from_der(&der).unwrap();
                let mut sig = vec![0; key.public().modulus_len()];
                g.bench_function(&name, |b| {
                    b.iter(|| {
                        key.sign(
                            &signature::RSA_PKCS1_SHA256,
                            &rng,
                            black_box(&message),
                            &mut sig,
                        )
                        .unwrap()
                    })
                });
            }
            SigningAlg::Es256 => {
                let key = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &der,
                    &rng,
                )
                .unwrap();
                g.bench_function(&name, |b| {
                    b.iter(|| key.sign(&rng, black_box(&message)).unwrap())
                });
            }
            SigningAlg::EdDsa => {
                let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
                g.bench_function(&name, |b| b.iter(|| key.sign(black_box(&message))));
            }
        }
    }
    g.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
