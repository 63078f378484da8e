//! The authorization request as OpenID Connect defines it (docs/endpoints.md#oauth): `nonce`, `prompt`,
//! `max_age`, `login_hint`, the unsupported parameters' errors, and the sign-in context (`auth_time`, `amr`,
//! `sid`) a code and its grant family carry.

use latchkey::clock::Clock;
use latchkey::model::oidc::Amr;
use latchkey::store::Lineage;
use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::common::steps::{make_app, submit_sign_in, TestApp, REDIRECT};
use crate::common::{browser, hidden_inputs, query_of, Server, TestServer};
use crate::oauth_flow::{authorize_url, consent, redeem, sign_in};

const T0: i64 = 1_800_000_000_000;

async fn start(clock: &Clock) -> Server {
    TestServer::new().clock(clock.clone()).start().await
}

fn location(r: &reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a redirect");
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The query of an error redirect to the client: `error`, with `state` and `iss`.
fn client_error(s: &Server, r: &reqwest::Response) -> String {
    let loc = location(r);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q["state"], "xyz-state", "{loc}");
    assert_eq!(q["iss"], s.url, "{loc}");
    assert!(!q.contains_key("code"), "{loc}");
    q["error"].clone()
}

/// The code in a redirect to the client.
fn code_of(r: &reqwest::Response) -> String {
    let loc = location(r);
    query_of(&loc)
        .get("code")
        .unwrap_or_else(|| panic!("no code in {loc}"))
        .clone()
}

/// A browser signed in as admin (through a first authorization request of a skip-consent `app`).
async fn signed_in_browser(s: &Server, app: &TestApp) -> Client {
    let b = browser();
    let r = sign_in(
        s,
        &b,
        &authorize_url(s, app, &[]),
        "admin",
        "admin-password",
    )
    .await;
    code_of(&r);
    b
}

async fn trusted_app(s: &Server) -> TestApp {
    make_app(s, json!({"skipConsent": true})).await
}

/// The stored code behind `code`.
async fn stored_code(s: &Server, code: &str) -> latchkey::store::CodeRecord {
    let store = &s.running.as_ref().unwrap().state.store;
    store
        .peek_code(&latchkey::crypto::sha256(code.as_bytes()))
        .await
        .unwrap()
        .expect("the code is stored")
}

/// How many codes the store holds (its backup's `codes` lines), to show an error wrote none.
async fn codes(s: &Server) -> usize {
    let store = &s.running.as_ref().unwrap().state.store;
    let mut backup = Vec::new();
    store.export(&mut backup, 0, None).await.unwrap();
    String::from_utf8(backup)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"tree\":\"codes\""))
        .count()
}

#[tokio::test]
async fn prompt_none_answers_by_redirect_never_with_a_page() {
    let clock = Clock::manual(T0);
    let s = start(&clock).await;
    let trusted = trusted_app(&s).await;
    let asking = make_app(&s, json!({})).await;
    let b = browser();
    let r = b
        .get(authorize_url(&s, &trusted, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(client_error(&s, &r), "login_required");

    let b = signed_in_browser(&s, &trusted).await;
    let r = b
        .get(authorize_url(&s, &trusted, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    code_of(&r);
    let r = b
        .get(authorize_url(&s, &asking, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert_eq!(client_error(&s, &r), "consent_required");
    for bad in ["none login", "none consent", "bogus"] {
        let r = b
            .get(authorize_url(&s, &trusted, &[("prompt", bad)]))
            .send()
            .await
            .unwrap();
        assert_eq!(client_error(&s, &r), "invalid_request", "{bad}");
    }
    // POST works as GET does.
    let r = browser()
        .post(format!("{}/oauth/authorize", s.url))
        .form(&[
            ("response_type", "code"),
            ("client_id", trusted.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("state", "xyz-state"),
            (
                "code_challenge",
                &crate::common::s256(crate::common::steps::VERIFIER),
            ),
            ("code_challenge_method", "S256"),
            ("prompt", "none"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(client_error(&s, &r), "login_required");
}

#[tokio::test]
async fn max_age_accepts_a_recent_sign_in_and_demands_a_fresh_one_after() {
    let clock = Clock::manual(T0);
    let s = start(&clock).await;
    let app = trusted_app(&s).await;
    let b = signed_in_browser(&s, &app).await;
    clock.advance(120_000);
    let recent = b
        .get(authorize_url(&s, &app, &[("max_age", "300")]))
        .send()
        .await
        .unwrap();
    assert_eq!(stored_code(&s, &code_of(&recent)).await.grant.auth_time, T0);

    let too_old = authorize_url(&s, &app, &[("max_age", "60")]);
    let r = b
        .get(authorize_url(
            &s,
            &app,
            &[("max_age", "60"), ("prompt", "none")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(client_error(&s, &r), "login_required");
    let r = b
        .get(authorize_url(&s, &app, &[("max_age", "soon")]))
        .send()
        .await
        .unwrap();
    assert_eq!(client_error(&s, &r), "invalid_request");
    let r = sign_in(&s, &b, &too_old, "admin", "admin-password").await;
    let code = code_of(&r);
    assert_eq!(
        stored_code(&s, &code).await.grant.auth_time,
        T0 + 120_000,
        "auth_time is the fresh sign-in's"
    );
}

/// `prompt=login` (and `max_age=0`, and `select_account`) shows the sign-in page to a signed-in browser once:
/// the sign-in it makes satisfies the request (no loop), and the code carries its time.
#[tokio::test]
async fn prompt_login_forces_one_fresh_sign_in() {
    let clock = Clock::manual(T0);
    let s = start(&clock).await;
    let app = trusted_app(&s).await;
    let b = signed_in_browser(&s, &app).await;
    for demand in [
        ("prompt", "login"),
        ("max_age", "0"),
        ("prompt", "select_account"),
    ] {
        clock.advance(60_000);
        let r = sign_in(
            &s,
            &b,
            &authorize_url(&s, &app, &[demand]),
            "admin",
            "admin-password",
        )
        .await;
        let code = code_of(&r);
        assert_eq!(
            stored_code(&s, &code).await.grant.auth_time,
            clock.now_ms(),
            "{demand:?}"
        );
    }
}

#[tokio::test]
async fn a_forged_or_stale_freshness_parameter_is_refused() {
    let clock = Clock::manual(T0);
    let s = start(&clock).await;
    let app = trusted_app(&s).await;
    let b = signed_in_browser(&s, &app).await;
    let before = codes(&s).await;
    let forged = authorize_url(
        &s,
        &app,
        &[("prompt", "login"), ("signed_in_after", "AAAA")],
    );
    let r = b.get(&forged).send().await.unwrap();
    assert_eq!(client_error(&s, &r), "invalid_request");

    // A genuine one, from the sign-in page's return URL, goes stale.
    let page = b
        .get(authorize_url(&s, &app, &[("prompt", "login")]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let return_to = hidden_inputs(&page)
        .into_iter()
        .find(|(k, _)| k == "return_to")
        .unwrap()
        .1;
    assert!(return_to.contains("signed_in_after="), "{return_to}");
    clock.advance(31 * 60_000);
    let r = submit_sign_in(&s, &b, &page, "admin", "admin-password").await;
    assert_eq!(location(&r), return_to);
    let r = b.get(format!("{}{return_to}", s.url)).send().await.unwrap();
    assert_eq!(client_error(&s, &r), "invalid_request");
    assert_eq!(codes(&s).await, before, "nothing written");
}

#[tokio::test]
async fn prompt_consent_asks_even_a_trusted_app() {
    let clock = Clock::manual(T0);
    let s = start(&clock).await;
    let app = trusted_app(&s).await;
    let b = signed_in_browser(&s, &app).await;
    let page = b
        .get(authorize_url(&s, &app, &[("prompt", "consent")]))
        .send()
        .await
        .unwrap();
    let loc = consent(&s, &b, page, "allow").await;
    assert!(query_of(&loc).contains_key("code"), "{loc}");
}

#[tokio::test]
async fn login_hint_prefills_the_sign_in_form() {
    let s = start(&Clock::manual(T0)).await;
    let app = trusted_app(&s).await;
    let page = browser()
        .get(authorize_url(&s, &app, &[("login_hint", "jane<x>")]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("value=\"jane&#60;x&#62;\""), "{page}");
}

/// Unsupported parameters and response types are answered by redirect once the client and redirect URI are
/// known good (an error page before), and change nothing.
#[tokio::test]
async fn unsupported_parameters_redirect_with_their_errors() {
    let s = start(&Clock::manual(T0)).await;
    let app = trusted_app(&s).await;
    let b = browser();
    let before = codes(&s).await;
    for (param, value, error) in [
        (
            "request",
            "eyJhbGciOiJub25lIn0.e30.",
            "request_not_supported",
        ),
        (
            "request_uri",
            "https://rp.example/req",
            "request_uri_not_supported",
        ),
        ("registration", "{}", "registration_not_supported"),
        ("response_mode", "fragment", "invalid_request"),
        ("nonce", &"n".repeat(256), "invalid_request"),
    ] {
        let r = b
            .get(authorize_url(&s, &app, &[(param, value)]))
            .send()
            .await
            .unwrap();
        assert_eq!(client_error(&s, &r), error, "{param}");
    }
    let url = authorize_url(&s, &app, &[]).replace("response_type=code", "response_type=token");
    let r = b.get(&url).send().await.unwrap();
    assert_eq!(client_error(&s, &r), "unsupported_response_type");
    let unknown = authorize_url(&s, &app, &[("request", "x")]).replace(&app.client_id, "nobody");
    assert_eq!(b.get(&unknown).send().await.unwrap().status(), 400);
    assert_eq!(codes(&s).await, before, "nothing written");
}

/// The code carries the nonce, the session's `amr` and `sid`; its redemption's family the sign-in (not the nonce),
/// so a refresh can report the original `auth_time`.
#[tokio::test]
async fn the_code_and_its_family_carry_the_sign_in() {
    let clock = Clock::manual(T0);
    let s = start(&clock).await;
    let app = trusted_app(&s).await;
    let b = signed_in_browser(&s, &app).await;
    clock.advance(1_000);
    let r = b
        .get(authorize_url(
            &s,
            &app,
            &[
                ("nonce", "n-0S6_WzA2Mj"),
                ("scope", "openid offline_access"),
            ],
        ))
        .send()
        .await
        .unwrap();
    let code = code_of(&r);
    let grant = stored_code(&s, &code).await.grant;
    assert_eq!(grant.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(
        (grant.auth_time, grant.amr.as_slice()),
        (T0, [Amr::Pwd].as_slice())
    );
    let sid = grant.sid.clone().expect("a session id");
    assert_eq!(sid.len(), 22);
    // The same session, the same sid.
    let r = b.get(authorize_url(&s, &app, &[])).send().await.unwrap();
    assert_eq!(
        stored_code(&s, &code_of(&r)).await.grant.sid,
        Some(sid.clone())
    );

    let (st, v) = redeem(&s, &app, &code).await;
    assert_eq!(st, 200, "{v}");
    let store = &s.running.as_ref().unwrap().state.store;
    let refresh = v["refresh_token"].as_str().unwrap();
    let rec = store
        .token_record(&latchkey::crypto::sha256(refresh.as_bytes()))
        .await
        .unwrap()
        .unwrap();
    let Lineage::Family(id) = rec.lineage else {
        panic!("a code's token has a family")
    };
    let family = store.family(&id).await.unwrap().unwrap();
    assert_eq!(family.auth_time, Some(T0));
    assert_eq!(family.amr, [Amr::Pwd]);
    assert_eq!(family.sid, Some(sid));
}

/// RC's `/api/v1/login` records a password sign-in as such.
#[tokio::test]
async fn an_api_login_records_a_password_sign_in() {
    let s = start(&Clock::manual(T0)).await;
    let auth = s.admin().await;
    let store = &s.running.as_ref().unwrap().state.store;
    let rec = store
        .login_token(&latchkey::crypto::sha256(auth.token.as_bytes()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.amr, [Amr::Pwd]);
}
