//! SPEC §3 (2FA): TOTP enrolment, the *2FA* check with TOTP and backup codes, bounded wrong attempts. The server
//! runs on a manual clock, so codes are computed for a pinned time and the failure window ends without sleeping.

use latchkey::clock::Clock;
use latchkey::core::two_factor::code_at;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{json_of, spawn, spawn_with_clock, Auth, Server, ADMIN_PASSWORD};
use crate::providers::post_2fa;

/// 2027-01-15T08:00:00Z, in the middle of a 30 s step.
const T0_MS: i64 = 1_800_000_015_000;

fn code(secret: &str, clock: &Clock) -> String {
    code_at(secret, (clock.now_ms() / 1000) as u64).unwrap()
}

async fn with_code(
    s: &Server,
    a: &Auth,
    path: &str,
    body: Value,
    code: &str,
    method: &str,
) -> (u16, Value) {
    json_of(
        s.authed(Method::POST, path, a)
            .header("x-2fa-code", code)
            .header("x-2fa-method", method)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Enables TOTP for `a`; returns the base32 seed and the backup codes.
async fn enroll(s: &Server, a: &Auth, clock: &Clock) -> (String, Vec<String>) {
    let (st, v) = s.post("/api/v1/users.2fa.enableTOTP", a, json!({})).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "160-bit seed in base32");
    assert_eq!(
        v["url"],
        format!("otpauth://totp/Latchkey:admin?secret={secret}&issuer=Latchkey")
    );
    let (st, v) = s
        .post(
            "/api/v1/users.2fa.validateTempToken",
            a,
            json!({"code": code(&secret, clock)}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let codes: Vec<String> = v["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 12);
    (secret, codes)
}

const ADD: &str = "/api/v1/settings.addCustomOAuth";

#[tokio::test]
async fn totp_replaces_the_password_on_2fa_routes() {
    let clock = Clock::manual(T0_MS);
    let s = spawn_with_clock(clock.clone(), |_| {}).await;
    let a = s.admin().await;
    let (secret, backup) = enroll(&s, &a, &clock).await;

    let (st, v) = s.post(ADD, &a, json!({"name": "A"})).await;
    assert_eq!(
        (st, &v["details"]),
        (
            400,
            &json!({"method": "totp", "availableMethods": ["totp"]})
        )
    );
    assert_eq!(v["errorType"], "totp-required");
    // The password no longer passes: RC uses the user's active method whatever x-2fa-method says.
    let (st, v) = with_code(
        &s,
        &a,
        ADD,
        json!({"name": "A"}),
        ADMIN_PASSWORD,
        "password",
    )
    .await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    assert_eq!(v["details"]["method"], "totp");
    let (st, v) = with_code(
        &s,
        &a,
        ADD,
        json!({"name": "A"}),
        &code(&secret, &clock),
        "totp",
    )
    .await;
    assert_eq!((st, v), (200, json!({"success": true})));
    // The neighbouring step is accepted (clock skew), two steps away is not.
    clock.advance(30_000);
    let (st, _) = with_code(
        &s,
        &a,
        ADD,
        json!({"name": "B"}),
        &code_at(&secret, (T0_MS / 1000) as u64).unwrap(),
        "totp",
    )
    .await;
    assert_eq!(st, 200);
    clock.advance(60_000);
    let old = code_at(&secret, (T0_MS / 1000) as u64).unwrap();
    if old != code(&secret, &clock) {
        let (st, v) = with_code(&s, &a, ADD, json!({"name": "C"}), &old, "totp").await;
        assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    }
    // A backup code works once.
    let (st, _) = with_code(&s, &a, ADD, json!({"name": "D"}), &backup[0], "totp").await;
    assert_eq!(st, 200);
    let (st, v) = with_code(&s, &a, ADD, json!({"name": "E"}), &backup[0], "totp").await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));

    // Enabling again is refused (a stolen session must not swap the seed); disabling needs a code.
    let (st, v) = s.post("/api/v1/users.2fa.enableTOTP", &a, json!({})).await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-2fa-already-enabled"))
    );
    let (st, v) = s
        .post(
            "/api/v1/users.2fa.disableTOTP",
            &a,
            json!({"code": "000000"}),
        )
        .await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    let (st, v) = s.post("/api/v1/users.2fa.disableTOTP", &a, json!({})).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("invalid-params")));
    let (st, v) = s
        .post(
            "/api/v1/users.2fa.disableTOTP",
            &a,
            json!({"code": code(&secret, &clock)}),
        )
        .await;
    assert_eq!((st, v), (200, json!({"success": true})));
    // Back to the password fallback.
    let (st, _) = post_2fa(&s, ADD, &a, json!({"name": "F"})).await;
    assert_eq!(st, 200);
    let (st, v) = s
        .post(
            "/api/v1/users.2fa.disableTOTP",
            &a,
            json!({"code": "123456"}),
        )
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-2fa-not-enabled"))
    );
    s.running.as_ref().unwrap().state.store.verify().unwrap();
}

#[tokio::test]
async fn enrolment_errors() {
    let clock = Clock::manual(T0_MS);
    let s = spawn_with_clock(clock.clone(), |_| {}).await;
    let a = s.admin().await;
    let (st, v) = s
        .post(
            "/api/v1/users.2fa.validateTempToken",
            &a,
            json!({"code": "123456"}),
        )
        .await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("invalid-totp")));
    let (st, v) = s.post("/api/v1/users.2fa.enableTOTP", &a, json!({})).await;
    assert_eq!(st, 200);
    let first = v["secret"].as_str().unwrap().to_owned();
    let (st, v) = s
        .post(
            "/api/v1/users.2fa.validateTempToken",
            &a,
            json!({"code": "12345"}),
        )
        .await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    // A second enable before confirming replaces the pending seed: codes of the first stop working.
    let (_, v) = s.post("/api/v1/users.2fa.enableTOTP", &a, json!({})).await;
    let second = v["secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    if code(&first, &clock) != code(&second, &clock) {
        let (st, _) = s
            .post(
                "/api/v1/users.2fa.validateTempToken",
                &a,
                json!({"code": code(&first, &clock)}),
            )
            .await;
        assert_eq!(st, 400);
    }
    let (st, _) = s
        .post(
            "/api/v1/users.2fa.validateTempToken",
            &a,
            json!({"code": code(&second, &clock)}),
        )
        .await;
    assert_eq!(st, 200);
    for path in [
        "/api/v1/users.2fa.enableTOTP",
        "/api/v1/users.2fa.validateTempToken",
        "/api/v1/users.2fa.disableTOTP",
    ] {
        let r = s
            .req(Method::POST, path)
            .json(&json!({"code": "1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(json_of(r).await.0, 401, "{path}");
    }
}

#[tokio::test]
async fn wrong_codes_are_bounded_per_user() {
    let clock = Clock::manual(T0_MS);
    let s = spawn_with_clock(clock.clone(), |_| {}).await;
    let a = s.admin().await;
    for i in 1..=5 {
        let (st, v) = with_code(&s, &a, ADD, json!({"name": "A"}), "wrong", "password").await;
        let want = if i < 5 {
            "totp-invalid"
        } else {
            "totp-max-attempts"
        };
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some(want)),
            "attempt {i}"
        );
    }
    let (st, v) = post_2fa(&s, ADD, &a, json!({"name": "A"})).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"success": false, "error": "TOTP Maximun Failed Attempts Reached [totp-max-attempts]",
                   "errorType": "totp-max-attempts", "details": {"method": "password", "availableMethods": []}})
        ),
        "even the right password waits for the window"
    );
    clock.advance(5 * 60 * 1000);
    let (st, _) = post_2fa(&s, ADD, &a, json!({"name": "A"})).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn users_created_later_pass_with_the_password_digest() {
    let s = spawn().await;
    let a = s.admin().await;
    let (st, _) = s
        .post(
            "/api/v1/users.create",
            &a,
            json!({"username": "ops", "email": "ops@example.com", "password": "ops-pw", "roles": ["admin"]}),
        )
        .await;
    assert_eq!(st, 200);
    let ops = s.login("ops", "ops-pw").await;
    let digest = latchkey::crypto::sha256_hex(b"ops-pw");
    let (st, v) = with_code(&s, &ops, ADD, json!({"name": "A"}), &digest, "password").await;
    assert_eq!((st, v), (200, json!({"success": true})));
    let (st, _) = with_code(&s, &ops, ADD, json!({"name": "B"}), "ops-pw", "password").await;
    assert_eq!(st, 200);
    let (st, _) = with_code(
        &s,
        &ops,
        ADD,
        json!({"name": "C"}),
        &latchkey::crypto::sha256_hex(b"nope"),
        "password",
    )
    .await;
    assert_eq!(st, 400);
}
