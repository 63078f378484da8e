//! Client authentication throttles that nobody can turn against the real client: wrong secrets are limited per
//! client and source address, and a full window still lets the right secret through (from the verification cache,
//! without argon2). Sources are told apart by binding the test client to another loopback address (127.0.0.2).

use std::net::{IpAddr, Ipv4Addr};

use serde_json::json;

use crate::common::{spawn_with, Server};
use crate::oauth_flow::make_app;

async fn token(http: &reqwest::Client, s: &Server, id: &str, secret: &str) -> u16 {
    http.post(format!("{}/oauth/token", s.url))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn client_from(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
        .build()
        .unwrap()
}

/// Before: 21 anonymous wrong secrets made the real client's right secret 429 for a minute.
#[tokio::test]
async fn wrong_secrets_cannot_lock_the_real_client_out() {
    let s = spawn_with(|c| c.tokens.client_failures_per_minute = 20).await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let secret = app.secret.clone().unwrap();
    let (here, elsewhere) = (client_from(1), client_from(2));
    assert_eq!(token(&here, &s, &app.client_id, &secret).await, 200);

    // From another source: that source's window fills; the real client's does not.
    let mut statuses = Vec::new();
    for i in 0..25 {
        statuses.push(token(&elsewhere, &s, &app.client_id, &format!("guess-{i}")).await);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 5);
    assert_eq!(token(&here, &s, &app.client_id, &secret).await, 200);

    // From the client's own source: wrong secrets are refused past the window, the right one still passes.
    for i in 0..25 {
        token(&here, &s, &app.client_id, &format!("guess-{i}")).await;
    }
    assert_eq!(token(&here, &s, &app.client_id, "guess-x").await, 429);
    assert_eq!(token(&here, &s, &app.client_id, &secret).await, 200);
    assert_eq!(token(&elsewhere, &s, &app.client_id, &secret).await, 200);
}

/// 40 simultaneous wrong secrets from one source: each is counted before it is checked, so at most the limit are
/// checked (401) and the rest are refused unchecked (429).
#[tokio::test]
async fn simultaneous_wrong_secrets_stay_within_the_limit() {
    let s = spawn_with(|c| {
        c.tokens.client_failures_per_minute = 5;
        c.argon2 = latchkey::crypto::Argon2Params::default();
    })
    .await;
    let app = make_app(&s, json!({"grantTypes": ["client_credentials"]})).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let rb = s
                .http
                .post(format!("{}/oauth/token", s.url))
                .basic_auth(&app.client_id, Some(format!("guess-{i}")))
                .form(&[("grant_type", "client_credentials")]);
            tokio::spawn(async move { rb.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!((checked, statuses.len() - checked), (5, 35), "{statuses:?}");
}
