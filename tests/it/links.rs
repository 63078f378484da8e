//! docs/endpoints.md#links: Stack Auth's `oauth-providers` API over user ↔ provider links: every endpoint under every access type,
//! every known error with its status and `X-Stack-Known-Error` header, the client's own-user rule, the sign-in
//! invariants under a 16-way race, and the cascades from user deletion and provider removal.

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::common::steps::create_user;
use crate::common::{browser, query_of, spawn, spawn_with, Auth, Server, TestServer};
use crate::oauth_flow::{authorize_url, make_app, redeem, sign_in, TestApp};
use crate::providers::{add, post_2fa, set, PREFIX};

mod errors;
mod lifecycle;

const PROJECT: &str = "6b3c2a1e-0d4f-4a5b-8c7d-9e0f1a2b3c4d";
const SERVER_KEY: &str = "test-server-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const ADMIN_KEY: &str = "test-admin-key-bbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const URL: &str = "/api/v1/oauth-providers";

/// How a request authenticates to the Stack dialect.
#[derive(Clone, Copy)]
enum As<'a> {
    /// Client access with an optional user session (`X-Stack-Access-Token`).
    Client(Option<&'a str>),
    /// Client access with the session in `Authorization: Bearer`.
    ClientBearer(&'a str),
    Server,
    /// Server access that also carries a user session (for `me`).
    ServerWithUser(&'a str),
    Admin,
}

fn stack_req(url: &str, http: &reqwest::Client, m: Method, path: &str, who: As) -> RequestBuilder {
    let rb = http
        .request(m, format!("{url}{path}"))
        .header("X-Stack-Project-Id", PROJECT);
    let client = |rb: RequestBuilder| rb.header("X-Stack-Access-Type", "client");
    let server = |rb: RequestBuilder| {
        rb.header("X-Stack-Access-Type", "server")
            .header("X-Stack-Secret-Server-Key", SERVER_KEY)
    };
    match who {
        As::Client(None) => client(rb),
        As::Client(Some(t)) => client(rb).header("X-Stack-Access-Token", t),
        As::ClientBearer(t) => client(rb).bearer_auth(t),
        As::Server => server(rb),
        As::ServerWithUser(t) => server(rb).header("X-Stack-Access-Token", t),
        As::Admin => rb
            .header("X-Stack-Access-Type", "admin")
            .header("X-Stack-Super-Secret-Admin-Key", ADMIN_KEY),
    }
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    /// `Null` when the body is not JSON.
    json: Value,
}

async fn send(rb: RequestBuilder) -> Reply {
    let r = rb.send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        json,
    }
}

impl Reply {
    /// A Stack known error: status, header and body code agree; `error` is the message.
    #[track_caller]
    fn known(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status, self.json["code"].as_str()),
            (status, Some(code)),
            "{}",
            self.text
        );
        assert_eq!(self.headers["x-stack-known-error"], code);
        assert!(self.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        assert!(
            self.json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{}",
            self.text
        );
        self
    }

    /// A Stack `StatusError`: plain text, no known-error header.
    #[track_caller]
    fn status_error(&self, status: u16, text: &str) {
        assert_eq!((self.status, self.text.as_str()), (status, text));
        assert!(self.headers.get("x-stack-known-error").is_none());
        assert!(self.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
    }
}

/// A server with the Stack project configured, provider `myidp` (enabled) and `off` (disabled), and users jane
/// and bob with Latchkey access tokens.
struct Env {
    s: Server,
    admin: Auth,
    jane: String,
    jane_token: String,
    bob: String,
    bob_token: String,
}

impl Env {
    async fn call(&self, m: Method, path: &str, who: As<'_>, body: Option<Value>) -> Reply {
        let mut rb = stack_req(&self.s.url, &self.s.http, m, path, who);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        send(rb).await
    }

    async fn create(&self, who: As<'_>, body: Value) -> Reply {
        self.call(Method::POST, URL, who, Some(body)).await
    }

    /// A link made by the server; returns its id.
    async fn link(&self, user: &str, account: &str, sign_in: bool) -> String {
        let r = self
            .create(As::Server, new_link(user, account, sign_in))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json["id"].as_str().unwrap().to_owned()
    }

    async fn list(&self, who: As<'_>, query: &str) -> Reply {
        self.call(Method::GET, &format!("{URL}{query}"), who, None)
            .await
    }
}

fn new_link(user: &str, account: &str, sign_in: bool) -> Value {
    json!({
        "user_id": user, "provider_config_id": "myidp", "email": "Jane@Example.com",
        "allow_sign_in": sign_in, "allow_connected_accounts": true, "account_id": account,
    })
}

/// A Latchkey access token of `user`, through the real authorize page and token endpoint.
async fn access_token(s: &Server, app: &TestApp, user: &str) -> String {
    let r = sign_in(s, &browser(), &authorize_url(s, app, &[]), user, "pw").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
    let (st, v) = redeem(s, app, &code).await;
    assert_eq!(st, 200, "{v}");
    v["access_token"].as_str().unwrap().to_owned()
}

async fn env() -> Env {
    let s = spawn_with(|c| {
        c.stack.project_id = PROJECT.into();
        c.stack.server_key = SERVER_KEY.into();
        c.stack.admin_key = ADMIN_KEY.into();
    })
    .await;
    let admin = s.admin().await;
    add(&s, &admin, "Myidp").await;
    assert_eq!(
        set(&s, &admin, &format!("{PREFIX}Myidp"), json!(true))
            .await
            .0,
        200
    );
    add(&s, &admin, "Off").await;
    // Stack user sessions are access tokens granted `latchkey:api`.
    let app = make_app(
        &s,
        json!({"grantTypes": ["authorization_code"], "skipConsent": true,
               "scopes": "openid profile latchkey:api"}),
    )
    .await;
    let jane = create_user(&s, &admin, "jane").await;
    let bob = create_user(&s, &admin, "bob").await;
    let jane_token = access_token(&s, &app, "jane").await;
    let bob_token = access_token(&s, &app, "bob").await;
    Env {
        s,
        admin,
        jane,
        jane_token,
        bob,
        bob_token,
    }
}

fn state(s: &Server) -> &latchkey::state::AppState {
    &s.running.as_ref().unwrap().state
}

#[tokio::test]
async fn server_and_admin_run_every_endpoint() {
    let e = env().await;
    for who in [As::Server, As::Admin] {
        let r = e.create(who, new_link(&e.jane, "acc-1", true)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.json["id"].as_str().unwrap().to_owned();
        assert!(
            uuid::Uuid::parse_str(&id).unwrap().get_version_num() == 4,
            "{id}"
        );
        let want = json!({
            "id": id, "user_id": e.jane, "provider_config_id": "myidp", "type": "custom",
            "email": "Jane@Example.com", "allow_sign_in": true, "allow_connected_accounts": true,
            "account_id": "acc-1",
        });
        assert_eq!(r.json, want);

        let r = e.list(who, &format!("?user_id={}", e.jane)).await;
        assert_eq!(
            (r.status, &r.json),
            (200, &json!({"items": [want], "is_paginated": false}))
        );
        let one = format!("{URL}/{}/{id}", e.jane);
        let r = e.call(Method::GET, &one, who, None).await;
        assert_eq!((r.status, &r.json), (200, &want));

        let r = e
            .call(
                Method::PATCH,
                &one,
                who,
                Some(json!({"email": "j@example.org", "account_id": "acc-2", "allow_connected_accounts": false})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            (
                &r.json["email"],
                &r.json["account_id"],
                &r.json["allow_connected_accounts"],
                &r.json["allow_sign_in"]
            ),
            (
                &json!("j@example.org"),
                &json!("acc-2"),
                &json!(false),
                &json!(true)
            )
        );
        let st = state(&e.s);
        assert_eq!(
            st.store
                .sign_in_link("myidp", "acc-2")
                .await
                .unwrap()
                .unwrap()
                .id,
            id
        );
        assert!(st
            .store
            .sign_in_link("myidp", "acc-1")
            .await
            .unwrap()
            .is_none());
        let r = e.call(Method::PATCH, &one, who, Some(json!({}))).await;
        assert_eq!(
            (r.status, &r.json["account_id"]),
            (200, &json!("acc-2")),
            "an empty PATCH changes nothing"
        );

        let r = e.call(Method::DELETE, &one, who, None).await;
        assert_eq!((r.status, &r.json), (200, &json!({"success": true})));
        let gone = format!("OAuth provider {id} for user {} not found", e.jane);
        e.call(Method::GET, &one, who, None)
            .await
            .status_error(404, &gone);
        e.call(Method::DELETE, &one, who, None)
            .await
            .status_error(404, &gone);
    }
    // A link without an email leaves `email` out, as Stack does.
    let mut body = new_link(&e.bob, "b", false);
    body.as_object_mut().unwrap().remove("email");
    let r = e.create(As::Admin, body).await;
    assert_eq!(r.status, 201);
    assert!(r.json.get("email").is_none(), "{}", r.text);
    state(&e.s).store.verify().unwrap();
}

#[tokio::test]
async fn clients_work_on_their_own_links_without_account_ids() {
    let e = env().await;
    let id = e.link(&e.jane, "acc-j", true).await;
    let bobs = e.link(&e.bob, "acc-b", false).await;
    let jane = As::Client(Some(&e.jane_token));
    let view = json!({
        "id": id, "user_id": e.jane, "provider_config_id": "myidp", "type": "custom",
        "email": "Jane@Example.com", "allow_sign_in": true, "allow_connected_accounts": true,
    });

    for who in [jane, As::ClientBearer(&e.jane_token)] {
        for q in ["?user_id=me".to_owned(), format!("?user_id={}", e.jane)] {
            let r = e.list(who, &q).await;
            assert_eq!(
                (r.status, &r.json),
                (200, &json!({"items": [view], "is_paginated": false}))
            );
        }
        let r = e
            .call(Method::GET, &format!("{URL}/me/{id}"), who, None)
            .await;
        assert_eq!((r.status, &r.json), (200, &view));
    }
    let mine = format!("{URL}/{}/{id}", e.jane);
    let r = e
        .call(
            Method::PATCH,
            &mine,
            jane,
            Some(json!({"allow_sign_in": false, "allow_connected_accounts": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.json["allow_sign_in"], r.json.get("account_id")),
        (&json!(false), None)
    );
    for body in [json!({"account_id": "x"}), json!({"email": "a@b.co"})] {
        let r = e.call(Method::PATCH, &mine, jane, Some(body)).await;
        r.known(400, "SCHEMA_ERROR");
        assert!(
            r.json["error"]
                .as_str()
                .unwrap()
                .contains("unknown properties"),
            "{}",
            r.text
        );
    }
    e.create(jane, new_link("me", "x", false))
        .await
        .known(401, "INSUFFICIENT_ACCESS_TYPE");

    // Another user's links: 403 as Stack's plain StatusError, whatever the verb.
    let theirs = format!("{URL}/{}/{bobs}", e.bob);
    e.list(jane, &format!("?user_id={}", e.bob))
        .await
        .status_error(
            403,
            "Client can only list OAuth providers for their own user.",
        );
    e.list(jane, "").await.status_error(
        403,
        "Client can only list OAuth providers for their own user.",
    );
    e.call(Method::GET, &theirs, jane, None).await.status_error(
        403,
        "Client can only read OAuth providers for their own user.",
    );
    e.call(
        Method::PATCH,
        &theirs,
        jane,
        Some(json!({"allow_sign_in": true})),
    )
    .await
    .status_error(
        403,
        "Client can only update OAuth providers for their own user.",
    );
    e.call(Method::DELETE, &theirs, jane, None)
        .await
        .status_error(
            403,
            "Client can only delete OAuth providers for their own user.",
        );
    assert!(
        !state(&e.s)
            .store
            .get_link(&bobs)
            .await
            .unwrap()
            .unwrap()
            .allow_sign_in,
        "nothing changed"
    );

    // A client without a session has no own user.
    for (m, path) in [
        (Method::GET, format!("{URL}?user_id=me")),
        (Method::GET, mine.clone()),
        (Method::DELETE, mine.clone()),
    ] {
        e.call(m, &path, As::Client(None), None)
            .await
            .known(400, "CANNOT_GET_OWN_USER_WITHOUT_USER");
    }
    // A publishable client key is ignored: still no session.
    let r = send(
        stack_req(
            &e.s.url,
            &e.s.http,
            Method::GET,
            &format!("{URL}?user_id=me"),
            As::Client(None),
        )
        .header("X-Stack-Publishable-Client-Key", "pck_whatever"),
    )
    .await;
    r.known(400, "CANNOT_GET_OWN_USER_WITHOUT_USER");

    let r = e
        .call(Method::DELETE, &format!("{URL}/me/{id}"), jane, None)
        .await;
    assert_eq!((r.status, &r.json), (200, &json!({"success": true})));
    let r = e.list(As::Client(Some(&e.bob_token)), "?user_id=me").await;
    assert_eq!(
        r.json["items"].as_array().unwrap().len(),
        1,
        "bob's link stays"
    );
}

#[tokio::test]
async fn me_is_the_session_user_for_server_access_too() {
    let e = env().await;
    e.create(As::Server, new_link("me", "a", true))
        .await
        .known(400, "CANNOT_GET_OWN_USER_WITHOUT_USER");
    let r = e
        .create(As::ServerWithUser(&e.bob_token), new_link("me", "a", true))
        .await;
    assert_eq!((r.status, &r.json["user_id"]), (201, &json!(e.bob)));
    let r = e
        .list(As::ServerWithUser(&e.bob_token), "?user_id=me")
        .await;
    assert_eq!(
        r.json["items"][0]["account_id"], "a",
        "server view keeps account_id"
    );
}

#[tokio::test]
async fn lists_come_in_creation_order() {
    let e = env().await;
    let mut ids = Vec::new();
    for (user, account) in [
        (&e.jane, "j1"),
        (&e.bob, "b1"),
        (&e.jane, "j2"),
        (&e.jane, "j3"),
        (&e.bob, "b2"),
    ] {
        ids.push(e.link(user, account, false).await);
    }
    let ids_of = |r: Reply| -> Vec<String> {
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids_of(e.list(As::Server, &format!("?user_id={}", e.jane)).await),
        [ids[0].clone(), ids[2].clone(), ids[3].clone()]
    );
    assert_eq!(
        ids_of(e.list(As::Admin, "").await),
        ids,
        "server/admin without user_id: every link"
    );
    assert_eq!(
        ids_of(e.list(As::Client(Some(&e.bob_token)), "?user_id=me").await),
        [ids[1].clone(), ids[4].clone()]
    );
}

#[tokio::test]
async fn the_openapi_document_covers_the_links_api() {
    let s = spawn().await;
    let (st, doc) =
        crate::common::json_of(s.req(Method::GET, "/openapi.json").send().await.unwrap()).await;
    assert_eq!(st, 200);
    for (path, method) in [
        ("/api/v1/oauth-providers", "post"),
        ("/api/v1/oauth-providers", "get"),
        ("/api/v1/oauth-providers/{user_id}/{provider_id}", "get"),
        ("/api/v1/oauth-providers/{user_id}/{provider_id}", "patch"),
        ("/api/v1/oauth-providers/{user_id}/{provider_id}", "delete"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
    assert!(doc["components"]["securitySchemes"]["stack_server_key"].is_object());
    assert!(doc["components"]["schemas"]["LinkView"].is_object());
}
