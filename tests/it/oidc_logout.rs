//! OpenID Connect RP-Initiated Logout 1.0 at `/oauth/logout` (docs/oidc.md#logout), and `id_token_hint` at the
//! authorization endpoint. ID tokens are minted here with the server's key ring, as the token endpoint signs them.

use std::sync::Arc;

use latchkey::core::claims;
use latchkey::crypto::jose::{self, Signer, SigningAlg};
use latchkey::state::AppState;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

use crate::common::steps::{create_user, make_app, TestApp};
use crate::common::{hidden_inputs, query_of, spawn, Auth, Server};
use crate::oauth_flow::authorize_url;

const BYE: &str = "https://rp.example/bye";

fn state(s: &Server) -> &AppState {
    &s.running.as_ref().unwrap().state
}

/// An app that registers [`BYE`] as its post-logout redirect URI.
async fn rp(s: &Server) -> TestApp {
    make_app(
        s,
        json!({"postLogoutRedirectUris": [BYE], "skipConsent": true}),
    )
    .await
}

/// A signed-in browser session: a login token, and a cookie-keeping client that sends it as the session cookie.
struct Session {
    auth: Auth,
    browser: Client,
}

impl Session {
    async fn start(s: &Server, user: &str, password: &str) -> Self {
        let auth = s.login(user, password).await;
        let jar = reqwest::cookie::Jar::default();
        let name = latchkey::web::session::cookie_name(&state(s).issuer);
        jar.add_cookie_str(
            &format!("{name}={}; Path=/", auth.token),
            &s.url.parse().unwrap(),
        );
        let browser = Client::builder()
            .cookie_provider(Arc::new(jar))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { auth, browser }
    }

    fn sid(&self) -> String {
        latchkey::core::session::session_id(&self.auth.token)
    }

    /// Whether its login token is still stored.
    async fn lives(&self, s: &Server) -> bool {
        let digest = latchkey::crypto::sha256(self.auth.token.as_bytes());
        state(s).store.login_token(&digest).await.unwrap().is_some()
    }

    async fn get(&self, s: &Server, query: &[(&str, &str)]) -> Response {
        let url = format!("{}/oauth/logout", s.url);
        self.browser.get(url).query(query).send().await.unwrap()
    }
}

/// An ID token for `app`'s view of `user_id`, as the token endpoint issues it, `exp` `ttl_secs` from now
/// (negative: expired); `extra` adds or overrides claims.
async fn id_token(s: &Server, app: &TestApp, user_id: &str, ttl_secs: i64, extra: Value) -> String {
    let st = state(s);
    let ring = st.keys.load();
    sign(
        s,
        app,
        user_id,
        ttl_secs,
        extra,
        ring.signer(SigningAlg::Rs256).unwrap(),
    )
    .await
}

/// [`id_token`] signed by `signer` (a key of the ring, or a stranger's).
async fn sign(
    s: &Server,
    app: &TestApp,
    user_id: &str,
    ttl_secs: i64,
    extra: Value,
    signer: &Signer,
) -> String {
    let st = state(s);
    let registered = st.store.client_app(&app.client_id).await.unwrap().unwrap();
    let now = st.clock.now_ms() / 1000;
    let mut c = json!({
        "iss": &*st.issuer,
        "sub": claims::subject(&registered, user_id, &claims::pairwise_key(&st.sealer)),
        "aud": app.client_id,
        "iat": now + ttl_secs.min(0) - 60,
        "exp": now + ttl_secs,
    });
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    signer.sign("JWT", &c)
}

/// The `Location` of a 303.
fn location(r: &Response) -> String {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a redirect");
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// Whether the answer clears the session cookie.
fn clears_cookie(r: &Response) -> bool {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("Max-Age=0"))
}

/// An error page: 400 (or `status`), no redirect, the session cookie untouched; returns the text.
async fn error_page(r: Response, status: StatusCode) -> String {
    assert_eq!(r.status(), status);
    assert!(r.headers().get("location").is_none());
    assert!(!clears_cookie(&r));
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_hint_of_the_session_signs_out_at_once_and_goes_back_with_state() {
    let s = spawn().await;
    let app = rp(&s).await;
    let session = Session::start(&s, "admin", crate::common::ADMIN_PASSWORD).await;
    let uid = session.auth.user_id.clone();

    // The hint names this session (sid), and expired hints count too: the relying party's session outlives them.
    let expired = id_token(&s, &app, &uid, -7200, json!({"sid": session.sid()})).await;
    let r = session
        .get(
            &s,
            &[
                ("id_token_hint", expired.as_str()),
                ("post_logout_redirect_uri", BYE),
                ("state", "st 1"),
                ("logout_hint", "admin"),
                ("ui_locales", "de en"),
            ],
        )
        .await;
    assert!(clears_cookie(&r));
    let back = location(&r);
    assert!(back.starts_with(&format!("{BYE}?")), "{back}");
    assert_eq!(query_of(&back)["state"], "st 1");
    assert!(!session.lives(&s).await, "the login token is deleted");
    let r = session
        .browser
        .get(authorize_url(&s, &app, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the cookie no longer signs in");
    assert!(r.text().await.unwrap().contains("name=\"password\""));

    // Signed out already: nothing to confirm, still back to the relying party (without state: the URI as is).
    let hint = id_token(&s, &app, &uid, 3600, json!({})).await;
    let r = session
        .get(
            &s,
            &[
                ("id_token_hint", hint.as_str()),
                ("post_logout_redirect_uri", BYE),
            ],
        )
        .await;
    assert_eq!(location(&r), BYE);

    // A hint without sid names the session by its user; without a redirect URI the end is a page.
    let session = Session::start(&s, "admin", crate::common::ADMIN_PASSWORD).await;
    let r = session.get(&s, &[("id_token_hint", hint.as_str())]).await;
    assert_eq!(r.status(), 200);
    assert!(clears_cookie(&r));
    assert!(r.text().await.unwrap().contains("You are signed out"));
    assert!(!session.lives(&s).await);
}

#[tokio::test]
async fn without_a_proof_the_user_confirms_and_only_the_confirmed_post_signs_out() {
    let s = spawn().await;
    let app = rp(&s).await;
    let admin = s.admin().await;
    let bob = create_user(&s, &admin, "bob").await;
    let session = Session::start(&s, "admin", crate::common::ADMIN_PASSWORD).await;
    let uid = session.auth.user_id.clone();
    let other_sid = id_token(&s, &app, &uid, 3600, json!({"sid": "another-session"})).await;
    let bobs = id_token(&s, &app, &bob, 3600, json!({})).await;
    let asks = [
        vec![
            ("client_id", app.client_id.as_str()),
            ("post_logout_redirect_uri", BYE),
            ("state", "s2"),
        ],
        vec![],
        vec![("id_token_hint", other_sid.as_str())],
        vec![
            ("id_token_hint", bobs.as_str()),
            ("post_logout_redirect_uri", BYE),
        ],
    ];
    for ask in &asks {
        let r = session.get(&s, ask).await;
        assert_eq!(r.status(), 200, "{ask:?}");
        assert!(!clears_cookie(&r), "{ask:?}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("Sign out?") && page.contains("admin"),
            "{page}"
        );
        assert!(
            session.lives(&s).await,
            "{ask:?}: nothing ends before the user confirms"
        );
    }

    // The confirmation page for the first request: its form, posted without or with a wrong CSRF token, is refused.
    let page = session.get(&s, &asks[0]).await.text().await.unwrap();
    assert!(page.contains("Test App"), "names the app");
    let form = hidden_inputs(&page);
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(field("state").as_deref(), Some("s2"));
    let post = |fields: Vec<(String, String)>| {
        session
            .browser
            .post(format!("{}/oauth/logout", s.url))
            .form(&fields)
            .send()
    };
    let without: Vec<_> = form.iter().filter(|(k, _)| k != "csrf").cloned().collect();
    let wrong: Vec<_> = form
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if k == "csrf" {
                    "x".repeat(43)
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    for mut fields in [without, wrong] {
        fields.push(("decision".into(), "logout".into()));
        error_page(post(fields).await.unwrap(), StatusCode::FORBIDDEN).await;
        assert!(session.lives(&s).await);
    }
    let mut fields = form.clone();
    fields.push(("decision".into(), "logout".into()));
    let r = post(fields).await.unwrap();
    assert!(clears_cookie(&r));
    let back = location(&r);
    assert_eq!(query_of(&back)["state"], "s2", "{back}");
    assert!(back.starts_with(BYE));
    assert!(!session.lives(&s).await, "the confirmed post signs out");
}

#[tokio::test]
async fn bad_requests_get_an_error_page_and_change_nothing() {
    let s = spawn().await;
    let app = rp(&s).await;
    let other = make_app(
        &s,
        json!({"name": "Other", "postLogoutRedirectUris": ["https://other.example/bye"]}),
    )
    .await;
    let session = Session::start(&s, "admin", crate::common::ADMIN_PASSWORD).await;
    let uid = session.auth.user_id.clone();
    let good_token = id_token(&s, &app, &uid, 3600, json!({"sid": session.sid()})).await;
    let good = good_token.as_str();

    // Not this server's: another key, another issuer, no JWT at all.
    let stranger = {
        let der = jose::generate(SigningAlg::Es256);
        let kid = jose::public_key(SigningAlg::Es256, &der)
            .unwrap()
            .thumbprint();
        let signer = Signer::new(kid, SigningAlg::Es256, &der).unwrap();
        sign(&s, &app, &uid, 3600, json!({"sid": session.sid()}), &signer).await
    };
    let foreign_iss = id_token(
        &s,
        &app,
        &uid,
        3600,
        json!({"sid": session.sid(), "iss": "https://evil.example"}),
    )
    .await;
    let tampered = {
        let (head, sig) = good.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        format!("{head}.{flipped}{}", &sig[1..])
    };
    for hint in [stranger.as_str(), &foreign_iss, "not-a-jwt", &tampered] {
        let r = session
            .get(
                &s,
                &[("id_token_hint", hint), ("post_logout_redirect_uri", BYE)],
            )
            .await;
        let page = error_page(r, StatusCode::BAD_REQUEST).await;
        assert!(
            page.contains("not an ID token issued by this server"),
            "{page}"
        );
    }

    let cases: [(Vec<(&str, &str)>, &str); 6] = [
        // Unregistered: never a redirect, however close to a registered one.
        (
            vec![
                ("id_token_hint", good),
                ("post_logout_redirect_uri", "https://rp.example/bye/"),
            ],
            "not registered",
        ),
        (
            vec![
                ("id_token_hint", good),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
            "not registered",
        ),
        (
            vec![
                ("client_id", &app.client_id),
                ("post_logout_redirect_uri", "https://other.example/bye"),
            ],
            "not registered",
        ),
        // A redirect needs a client.
        (
            vec![("post_logout_redirect_uri", BYE)],
            "needs the client_id",
        ),
        // client_id and the hint's audience disagree.
        (
            vec![("id_token_hint", good), ("client_id", &other.client_id)],
            "not the audience",
        ),
        (vec![("client_id", "nobody")], "unknown"),
    ];
    for (query, says) in &cases {
        let page = error_page(session.get(&s, query).await, StatusCode::BAD_REQUEST).await;
        assert!(page.contains(says), "{query:?}: {page}");
    }
    let repeated = format!("{}/oauth/logout?state=a&state=b", s.url);
    error_page(
        session.browser.get(repeated).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(
        session.lives(&s).await,
        "the session lives through every bad request"
    );
}

#[tokio::test]
async fn a_relying_party_may_post_the_request_as_a_form() {
    let s = spawn().await;
    let app = rp(&s).await;
    let session = Session::start(&s, "admin", crate::common::ADMIN_PASSWORD).await;
    let hint = id_token(
        &s,
        &app,
        &session.auth.user_id,
        3600,
        json!({"sid": session.sid()}),
    )
    .await;
    let form = [
        ("id_token_hint", hint.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "p"),
    ];
    let url = format!("{}/oauth/logout", s.url);

    // Cross-site, the browser withholds the SameSite=Lax session cookie: no session is visible, so the user is
    // asked on this site (where the cookie is sent) instead of being told they are signed out.
    let r = s.http.post(&url).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign out?"));
    assert!(session.lives(&s).await);

    let r = session.browser.post(&url).form(&form).send().await.unwrap();
    assert!(clears_cookie(&r));
    assert_eq!(location(&r), format!("{BYE}?state=p"));
    assert!(!session.lives(&s).await);
    let r = session
        .browser
        .post(format!("{url}?state=q"))
        .form(&form)
        .send()
        .await
        .unwrap();
    error_page(r, StatusCode::BAD_REQUEST).await;
}

/// `id_token_hint` at the authorization endpoint: verified like at logout; under `prompt=none` it must name the
/// signed-in user.
#[tokio::test]
async fn the_authorization_endpoint_checks_the_hint() {
    let s = spawn().await;
    let app = rp(&s).await;
    let other = make_app(&s, json!({"name": "Other"})).await;
    let admin = s.admin().await;
    let bob = create_user(&s, &admin, "bob").await;
    let session = Session::start(&s, "admin", crate::common::ADMIN_PASSWORD).await;
    let uid = session.auth.user_id.clone();
    let mine = id_token(&s, &app, &uid, -60, json!({})).await;
    let bobs = id_token(&s, &app, &bob, 3600, json!({})).await;
    let others = id_token(&s, &other, &uid, 3600, json!({})).await;
    let authorize = |extra: &[(&str, &str)]| {
        let url = authorize_url(&s, &app, extra);
        session.browser.get(url).send()
    };
    let outcome = |r: &Response| {
        let q = query_of(&location(r));
        assert_eq!(q["state"], "xyz-state");
        q.get("error").cloned().unwrap_or_else(|| {
            assert!(q.contains_key("code"));
            "code".into()
        })
    };

    let r = authorize(&[("prompt", "none"), ("id_token_hint", &mine)])
        .await
        .unwrap();
    assert_eq!(outcome(&r), "code", "an expired hint of the signed-in user");
    let r = authorize(&[("prompt", "none"), ("id_token_hint", &bobs)])
        .await
        .unwrap();
    assert_eq!(outcome(&r), "login_required");
    let r = authorize(&[("id_token_hint", &bobs)]).await.unwrap();
    assert_eq!(
        outcome(&r),
        "code",
        "without prompt=none the hint does not choose the user"
    );
    for bad in [others.as_str(), "not-a-jwt"] {
        let r = authorize(&[("id_token_hint", bad)]).await.unwrap();
        assert_eq!(outcome(&r), "invalid_request", "{bad}");
    }
}
