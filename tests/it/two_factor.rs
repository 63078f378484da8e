//! docs/endpoints.md#users (2FA): TOTP enrolment, the *2FA* check with TOTP and backup codes, bounded wrong attempts. The server
//! runs on a manual clock, so codes are computed for a pinned time and the failure window ends without sleeping.

use latchkey::clock::Clock;
use latchkey::core::two_factor::code_at;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{
    browser, hidden_inputs, json_of, page_text, spawn, spawn_with, Auth, Server, TestServer,
    ADMIN_PASSWORD,
};
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

const PW: &str = "password";

/// Adds provider `name` (a 2FA route) with the TOTP or backup code `code`.
async fn add_with_totp(s: &Server, a: &Auth, name: &str, code: &str) -> (u16, Value) {
    with_code(s, a, ADD, json!({"name": name}), code, "totp").await
}

/// Disables TOTP for `a` with `code`.
async fn disable_totp(s: &Server, a: &Auth, code: impl Into<Value>) -> (u16, Value) {
    s.post(
        "/api/v1/users.2fa.disableTOTP",
        a,
        json!({ "code": code.into() }),
    )
    .await
}

/// Enables TOTP for the admin `a` (the password as the current second factor); returns the base32 seed and the
/// backup codes. The confirming code's step is used up.
async fn enroll(s: &Server, a: &Auth, clock: &Clock) -> (String, Vec<String>) {
    let (st, v) = with_code(s, a, ENABLE, json!({}), ADMIN_PASSWORD, PW).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["success"], true);
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "160-bit seed in base32");
    assert_eq!(
        v["url"],
        format!("otpauth://totp/Latchkey:admin?secret={secret}&issuer=Latchkey")
    );
    let (st, v) = with_code(
        s,
        a,
        CONFIRM,
        json!({"code": code(&secret, clock)}),
        ADMIN_PASSWORD,
        PW,
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
const ENABLE: &str = "/api/v1/users.2fa.enableTOTP";
const CONFIRM: &str = "/api/v1/users.2fa.validateTempToken";

#[tokio::test]
async fn totp_replaces_the_password_on_2fa_routes() {
    let clock = Clock::manual(T0_MS);
    let s = TestServer::new().clock(clock.clone()).start().await;
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
    // The code that confirmed the enrolment is used up: its step passes no route.
    let (st, v) = add_with_totp(&s, &a, "A", &code(&secret, &clock)).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    clock.advance(30_000);
    let (st, v) = add_with_totp(&s, &a, "A", &code(&secret, &clock)).await;
    assert_eq!((st, v), (200, json!({"success": true})));
    // A code passes once: the same code again fails, as does one of an older step.
    let (st, v) = add_with_totp(&s, &a, "B", &code(&secret, &clock)).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    let older = code_at(&secret, (T0_MS / 1000) as u64).unwrap();
    if older != code(&secret, &clock) {
        let (st, v) = add_with_totp(&s, &a, "B", &older).await;
        assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    }
    // The next step is accepted early (clock skew); two steps away is not.
    let next = code_at(&secret, (clock.now_ms() / 1000 + 30) as u64).unwrap();
    let (st, _) = add_with_totp(&s, &a, "B", &next).await;
    assert_eq!(st, 200);
    clock.advance(90_000);
    let old = code_at(&secret, (T0_MS / 1000) as u64).unwrap();
    if old != code(&secret, &clock) {
        let (st, v) = add_with_totp(&s, &a, "C", &old).await;
        assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    }
    // A backup code works once.
    let (st, _) = add_with_totp(&s, &a, "D", &backup[0]).await;
    assert_eq!(st, 200);
    let (st, v) = add_with_totp(&s, &a, "E", &backup[0]).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));

    // Enabling again is refused (a stolen session must not swap the seed); disabling needs a code.
    let (st, v) = with_code(&s, &a, ENABLE, json!({}), ADMIN_PASSWORD, PW).await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-2fa-already-enabled"))
    );
    let (st, v) = disable_totp(&s, &a, "000000").await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    let (st, v) = s.post("/api/v1/users.2fa.disableTOTP", &a, json!({})).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("invalid-params")));
    clock.advance(30_000);
    let (st, v) = disable_totp(&s, &a, code(&secret, &clock)).await;
    assert_eq!((st, v), (200, json!({"success": true})));
    // Back to the password fallback.
    let (st, _) = post_2fa(&s, ADD, &a, json!({"name": "F"})).await;
    assert_eq!(st, 200);
    let (st, v) = disable_totp(&s, &a, "123456").await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-2fa-not-enabled"))
    );
    s.running.as_ref().unwrap().state.store.verify().unwrap();
}

#[tokio::test]
async fn enrolment_errors() {
    let clock = Clock::manual(T0_MS);
    let s = TestServer::new().clock(clock.clone()).start().await;
    let a = s.admin().await;
    let confirm = |code: String| {
        let (s, a) = (&s, &a);
        async move { with_code(s, a, CONFIRM, json!({"code": code}), ADMIN_PASSWORD, PW).await }
    };
    let (st, v) = confirm("123456".into()).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("invalid-totp")));
    let (st, v) = with_code(&s, &a, ENABLE, json!({}), ADMIN_PASSWORD, PW).await;
    assert_eq!(st, 200);
    let first = v["secret"].as_str().unwrap().to_owned();
    let (st, v) = confirm("12345".into()).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    // A second enable before confirming replaces the pending seed: codes of the first stop working.
    let (_, v) = with_code(&s, &a, ENABLE, json!({}), ADMIN_PASSWORD, PW).await;
    let second = v["secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    if code(&first, &clock) != code(&second, &clock) {
        let (st, _) = confirm(code(&first, &clock)).await;
        assert_eq!(st, 400);
    }
    let (st, _) = confirm(code(&second, &clock)).await;
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

/// A session alone (stolen, or left open) must not enrol a TOTP of its own and lock the user out: enrolment asks
/// for the password, even with the password fallback off (RC's `requireSecondFactor`).
#[tokio::test]
async fn enrolment_needs_the_password_even_without_the_fallback() {
    for fallback in [true, false] {
        let clock = Clock::manual(T0_MS);
        let s = TestServer::new()
            .clock(clock.clone())
            .config(|c| c.two_factor.enforce_password_fallback = Some(fallback))
            .start()
            .await;
        let a = s.admin().await;
        let (st, v) = s.post(ENABLE, &a, json!({})).await;
        assert_eq!(
            (st, v["errorType"].as_str(), &v["details"]),
            (
                400,
                Some("totp-required"),
                &json!({"method": "password", "availableMethods": []})
            ),
            "fallback {fallback}"
        );
        let (st, v) = with_code(&s, &a, ENABLE, json!({}), "guess", PW).await;
        assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
        let (st, v) = with_code(&s, &a, ENABLE, json!({}), ADMIN_PASSWORD, PW).await;
        assert_eq!(st, 200);
        let secret = v["secret"].as_str().unwrap().to_owned();
        // Confirming asks again: a session that watched the seed go by cannot turn it on.
        let (st, v) = s
            .post(CONFIRM, &a, json!({"code": code(&secret, &clock)}))
            .await;
        assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-required")));
        let digest = latchkey::crypto::sha256_hex(ADMIN_PASSWORD.as_bytes());
        let (st, v) = with_code(
            &s,
            &a,
            CONFIRM,
            json!({"code": code(&secret, &clock)}),
            &digest,
            PW,
        )
        .await;
        assert_eq!(st, 200, "{v}");
        // From now on removing it takes a code of the enrolled seed.
        clock.advance(30_000);
        let (st, v) = disable_totp(&s, &a, ADMIN_PASSWORD).await;
        assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    }
}

#[tokio::test]
async fn wrong_codes_are_bounded_per_user() {
    let clock = Clock::manual(T0_MS);
    let s = TestServer::new().clock(clock.clone()).start().await;
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

/// 40 simultaneous wrong passwords on a *2FA* route: each is counted before argon2 runs, so at most the limit (5)
/// reach the argon2 pool. The pool here holds one job and a queue of 8, so more than 9 checks at once would
/// come back 503 `error-server-busy` (before the fix all 40 were checked and most of them did).
#[tokio::test]
async fn simultaneous_2fa_guesses_stay_within_the_limit() {
    let s = spawn_with(|c| {
        c.argon2 = latchkey::crypto::Argon2Params::default();
        c.limits.argon2_threads = 1;
        c.limits.argon2_queue = 8;
    })
    .await;
    let a = s.admin().await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let rb = s
                .authed(Method::POST, ADD, &a)
                .header("x-2fa-code", format!("guess-{i}"))
                .header("x-2fa-method", PW)
                .json(&json!({"name": "A"}));
            tokio::spawn(async move { json_of(rb.send().await.unwrap()).await })
        })
        .collect();
    let mut kinds = std::collections::BTreeMap::new();
    for t in tasks {
        let (st, v) = t.await.unwrap();
        *kinds
            .entry((st, v["errorType"].as_str().unwrap_or("").to_owned()))
            .or_insert(0) += 1;
    }
    let invalid = (400, "totp-invalid".to_owned());
    let max = (400, "totp-max-attempts".to_owned());
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!((kinds[&invalid], kinds[&max]), (4, 36), "{kinds:?}");
}

async fn login(s: &Server, body: Value) -> (u16, Value) {
    json_of(
        s.req(Method::POST, "/api/v1/login")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// RC's login with TOTP on: the password alone is 401 `totp-required` (RC's login error shape), a code of the
/// seed or a backup code signs in, each TOTP step once, and wrong codes count against the 2FA window.
#[tokio::test]
async fn sign_in_asks_for_the_code() {
    let clock = Clock::manual(T0_MS);
    let s = TestServer::new().clock(clock.clone()).start().await;
    let a = s.admin().await;
    let (secret, backup) = enroll(&s, &a, &clock).await;
    let details = json!({"method": "totp", "codeGenerated": false, "availableMethods": ["totp"]});

    let (st, v) = login(&s, json!({"user": "admin", "password": ADMIN_PASSWORD})).await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"status": "error", "error": "totp-required", "message": "TOTP Required", "details": details})
        )
    );
    // A wrong password is still just Unauthorized: the code is not looked at.
    let (st, v) = login(
        &s,
        json!({"user": "admin", "password": "x", "code": "000000"}),
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (401, Some("Unauthorized")));

    clock.advance(30_000);
    let now = code(&secret, &clock);
    let (st, v) = login(
        &s,
        json!({"user": "admin", "password": ADMIN_PASSWORD, "code": now}),
    )
    .await;
    assert_eq!((st, v["status"].as_str()), (200, Some("success")), "{v}");
    let (st, v) = login(
        &s,
        json!({"user": "admin", "password": ADMIN_PASSWORD, "code": now}),
    )
    .await;
    assert_eq!(
        (st, v),
        (
            401,
            json!({"status": "error", "error": "totp-invalid", "message": "TOTP Invalid", "details": details})
        ),
        "a code signs in once"
    );
    // RC's `totp` form, with the Meteor user object, and a backup code.
    let body = json!({"totp": {"login": {"user": {"username": "admin"}, "password": ADMIN_PASSWORD}, "code": backup[0]}});
    let (st, _) = login(&s, body.clone()).await;
    assert_eq!(st, 200);
    let (st, v) = login(&s, body).await;
    assert_eq!((st, v["error"].as_str()), (401, Some("totp-invalid")));
    // The header form too.
    clock.advance(30_000);
    let r = s
        .req(Method::POST, "/api/v1/login")
        .header("x-2fa-code", code(&secret, &clock))
        .header("x-2fa-method", "totp")
        .json(&json!({"user": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Wrong codes use up the user's 2FA window (5), after which even a right code waits.
    for i in 1..=5 {
        let (st, v) = login(
            &s,
            json!({"user": "admin", "password": ADMIN_PASSWORD, "code": "000000"}),
        )
        .await;
        let want = if i < 5 {
            "totp-invalid"
        } else {
            "totp-max-attempts"
        };
        assert_eq!((st, v["error"].as_str()), (401, Some(want)), "attempt {i}");
    }
    clock.advance(30_000);
    let (st, v) = login(
        &s,
        json!({"user": "admin", "password": ADMIN_PASSWORD, "code": code(&secret, &clock)}),
    )
    .await;
    assert_eq!((st, v["error"].as_str()), (401, Some("totp-max-attempts")));
    let (st, v) = login(
        &s,
        json!({"totp": {"login": {"user": "admin"}, "code": "1"}}),
    )
    .await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("invalid-params")));
}

/// The sign-in page with TOTP on: the password leads to a code step whose form carries a sealed pending sign-in
/// (never the password) bound to the browser's CSRF token; only a right code starts the session.
#[tokio::test]
async fn the_sign_in_page_asks_for_the_code() {
    let clock = Clock::manual(T0_MS);
    let s = TestServer::new().clock(clock.clone()).start().await;
    let a = s.admin().await;
    let (secret, _) = enroll(&s, &a, &clock).await;
    let b = browser();
    let page = page_text(&b, format!("{}/login", s.url)).await;
    let csrf = hidden_inputs(&page)
        .into_iter()
        .find(|(n, _)| n == "csrf")
        .unwrap()
        .1;
    let r = b
        .post(format!("{}/login", s.url))
        .form(&[
            ("csrf", csrf.as_str()),
            ("return_to", "/login"),
            ("username", "admin"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a code step, not a session");
    assert!(r.headers().get("set-cookie").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("name=\"code\""), "{page}");
    assert!(
        !page.contains(ADMIN_PASSWORD),
        "the password is never echoed"
    );
    let fields: std::collections::HashMap<_, _> = hidden_inputs(&page).into_iter().collect();
    let pending = fields["pending"].clone();
    assert_eq!(fields["csrf"], csrf);

    let step = |code: String, pending: String, csrf: String| {
        let (b, url) = (b.clone(), s.url.clone());
        async move {
            b.post(format!("{url}/login"))
                .form(&[
                    ("csrf", csrf),
                    ("return_to", "/login".into()),
                    ("pending", pending),
                    ("code", code),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = step("000000".into(), pending.clone(), csrf.clone()).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Wrong code"));
    // A forged or foreign pending state goes back to the password.
    let r = step(code(&secret, &clock), "AAAA".into(), csrf.clone()).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/login?error="));
    clock.advance(30_000);
    let r = step(code(&secret, &clock), pending.clone(), csrf.clone()).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let page = page_text(&b, format!("{}/login", s.url)).await;
    assert!(page.contains("You are signed in as"), "{page}");
    // The pending state dies with its deadline.
    clock.advance(5 * 60 * 1000);
    let r = step(code(&secret, &clock), pending, csrf).await;
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .contains("expired"));
}
