//! Stack Auth's own `oauth-providers` e2e suite (apps/e2e/tests/backend/endpoints/api/v1/oauth-providers.test.ts,
//! as of Stack's April 2026 source), ported case by case against a Latchkey whose providers come from
//! `[[providers]]` presets (`spotify`, as Stack's suite configures, and `github`). Each case asserts Stack's exact
//! answer: status, body (a link's shape with its `provider_config_id` and `type`, or Stack's plain-text
//! `StatusError` message) and, for plain-text refusals, no `X-Stack-Known-Error` header. Stack's
//! `Auth.fastSignUp()` becomes a Latchkey access token granted `latchkey:api`, which every request carries (as
//! Stack's helper does), so `me` resolves under client and server access alike.
//!
//! Not ported: "should still return the user when their OAuth provider is disabled" (Latchkey serves no Stack
//! `users` endpoint; its users are Rocket.Chat's).

use latchkey::config::DeclaredProvider;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::steps::create_user;
use crate::common::{browser, query_of, Server, TestServer};
use crate::oauth_flow::{authorize_url, make_app, redeem, sign_in};

const PROJECT: &str = "3f0c9b2e-5a4d-4e6f-8a7b-1c2d3e4f5a6b";
const SERVER_KEY: &str = "stack-suite-server-key-aaaaaaaaaaaaaaaaaaaa";
const URL: &str = "/api/v1/oauth-providers";
/// A well-formed link id no link has (Stack's suite uses this one).
const MISSING: &str = "e889e6de-8da5-47fd-87fd-a8db34b14ec4";

/// Client or server access.
#[derive(Clone, Copy, PartialEq)]
enum Access {
    Client,
    Server,
}

struct Reply {
    status: u16,
    json: Value,
    text: String,
    /// `X-Stack-Known-Error`.
    known: Option<String>,
    /// Whether the body is `text/plain`.
    plain: bool,
}

/// A Latchkey with `[[providers]]` spotify and github, and two signed-in users (Stack's `user1`, `user2`).
struct Suite {
    s: Server,
    users: Vec<(String, String)>,
}

async fn suite() -> Suite {
    suite_with(&["spotify", "github"]).await
}

async fn suite_with(presets: &[&str]) -> Suite {
    let providers: Vec<DeclaredProvider> = presets
        .iter()
        .map(|p| DeclaredProvider {
            preset: (*p).into(),
            client_id: "test_client_id".into(),
            client_secret: "test_client_secret".into(),
            ..Default::default()
        })
        .collect();
    let s = TestServer::new()
        .config(move |c| {
            c.stack.project_id = PROJECT.into();
            c.stack.server_key = SERVER_KEY.into();
            c.providers = providers;
        })
        .start()
        .await;
    let admin = s.admin().await;
    let app = make_app(
        &s,
        json!({"grantTypes": ["authorization_code"], "skipConsent": true,
               "scopes": "openid profile latchkey:api"}),
    )
    .await;
    let mut users = Vec::new();
    for name in ["user1", "user2"] {
        let id = create_user(&s, &admin, name).await;
        let r = sign_in(&s, &browser(), &authorize_url(&s, &app, &[]), name, "pw").await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let code = query_of(r.headers()["location"].to_str().unwrap())["code"].clone();
        let (st, v) = redeem(&s, &app, &code).await;
        assert_eq!(st, 200, "{v}");
        users.push((id, v["access_token"].as_str().unwrap().to_owned()));
    }
    Suite { s, users }
}

impl Suite {
    /// A request as user `n` (0 or 1) with `access`.
    async fn call(
        &self,
        n: usize,
        access: Access,
        m: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut rb = self
            .s
            .http
            .request(m, format!("{}{path}", self.s.url))
            .header("X-Stack-Project-Id", PROJECT)
            .header("X-Stack-Access-Token", &self.users[n].1);
        rb = match access {
            Access::Client => rb.header("X-Stack-Access-Type", "client"),
            Access::Server => rb
                .header("X-Stack-Access-Type", "server")
                .header("X-Stack-Secret-Server-Key", SERVER_KEY),
        };
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let header = |name| {
            r.headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        let known = header("x-stack-known-error");
        let plain = header("content-type").is_some_and(|c| c.starts_with("text/plain"));
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            json,
            text,
            known,
            plain,
        }
    }

    fn id(&self, n: usize) -> &str {
        &self.users[n].0
    }

    /// Stack's create as user `n`: server access, `user_id: "me"`; the 201 answer.
    async fn create(
        &self,
        n: usize,
        provider: &str,
        account: &str,
        email: &str,
        sign_in: bool,
    ) -> Value {
        let r = self
            .call(
                n,
                Access::Server,
                Method::POST,
                URL,
                Some(json!({"user_id": "me",
                "provider_config_id": provider, "account_id": account, "email": email,
                "allow_sign_in": sign_in, "allow_connected_accounts": true})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json
    }
}

/// What Stack's snapshot shows for a link of user `user` through `provider` (its `type` is the preset's), with
/// `account_id` under server access only.
fn stack_view(link: &Value, user: &str, provider: &str, access: Access, fields: Value) -> Value {
    let mut v = json!({"id": link["id"], "user_id": user, "provider_config_id": provider, "type": provider,
        "allow_sign_in": true, "allow_connected_accounts": true});
    v.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    if access == Access::Client {
        v.as_object_mut().unwrap().remove("account_id");
    }
    v
}

/// A Stack refusal by `StatusError`: the status and exactly this `text/plain` message, no known-error header.
#[track_caller]
fn refused(r: &Reply, status: u16, text: &str) {
    assert_eq!((r.status, r.text.as_str()), (status, text));
    assert!(r.known.is_none(), "{:?}", r.known);
    assert!(r.plain, "text/plain");
}

/// Stack's answer for a link id no link of `user` has.
fn not_found(link: &str, user: &str) -> String {
    format!("OAuth provider {link} for user {user} not found")
}

/// Stack's answer when a user already signs in through the provider type.
const SIGN_IN_TYPE_TAKEN: &str =
    "The same provider type with sign-in enabled already exists for this user.";

#[tokio::test]
async fn create_read_list_with_the_presets_type() {
    let t = suite().await;
    for provider in ["spotify", "github"] {
        let link = t
            .create(
                0,
                provider,
                &format!("test_{provider}_user_123"),
                "test@example.com",
                true,
            )
            .await;
        let fields =
            json!({"account_id": format!("test_{provider}_user_123"), "email": "test@example.com"});
        let id = link["id"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(
            link,
            stack_view(&link, t.id(0), provider, Access::Server, fields.clone())
        );
        let r = t
            .call(
                0,
                Access::Client,
                Method::GET,
                &format!("{URL}/me/{id}"),
                None,
            )
            .await;
        assert_eq!(
            (r.status, r.json),
            (
                200,
                stack_view(&link, t.id(0), provider, Access::Client, fields)
            )
        );
    }
    let r = t
        .call(
            0,
            Access::Client,
            Method::GET,
            &format!("{URL}?user_id=me"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json["is_paginated"].clone()),
        (200, json!(false)),
        "{}",
        r.text
    );
    let types: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 2);
    assert!(
        types.contains(&"spotify") && types.contains(&"github"),
        "{types:?}"
    );
    assert!(
        r.json["items"][0].get("account_id").is_none(),
        "a client never sees account ids"
    );
}

#[tokio::test]
async fn update_on_client_and_server_toggle_and_account_id() {
    let t = suite().await;
    let link = t
        .create(
            0,
            "spotify",
            "test_spotify_user_123",
            "test@example.com",
            true,
        )
        .await;
    let one = format!("{URL}/me/{}", link["id"].as_str().unwrap());
    // On the client.
    let r = t
        .call(
            0,
            Access::Client,
            Method::PATCH,
            &one,
            Some(json!({"allow_sign_in": true, "allow_connected_accounts": false})),
        )
        .await;
    assert_eq!(
        (r.status, r.json),
        (
            200,
            stack_view(
                &link,
                t.id(0),
                "spotify",
                Access::Client,
                json!({"email": "test@example.com", "allow_connected_accounts": false})
            )
        )
    );
    let r = t.call(0, Access::Client, Method::GET, &one, None).await;
    assert_eq!(
        (
            r.json["allow_connected_accounts"].clone(),
            r.json["allow_sign_in"].clone()
        ),
        (json!(false), json!(true))
    );
    // On the server, with the email.
    let r = t
        .call(0, Access::Server, Method::PATCH, &one,
            Some(json!({"allow_sign_in": true, "allow_connected_accounts": true, "email": "updated@example.com"})))
        .await;
    assert_eq!(
        (r.status, r.json),
        (
            200,
            stack_view(
                &link,
                t.id(0),
                "spotify",
                Access::Server,
                json!({"account_id": "test_spotify_user_123", "email": "updated@example.com"})
            )
        )
    );
    let r = t.call(0, Access::Server, Method::GET, &one, None).await;
    assert_eq!(r.json["email"], "updated@example.com");
    // Toggling both capabilities from the client.
    for (sign_in, connected) in [(false, false), (true, false), (true, true)] {
        let r = t
            .call(
                0,
                Access::Client,
                Method::PATCH,
                &one,
                Some(json!({"allow_sign_in": sign_in, "allow_connected_accounts": connected})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            (
                r.json["allow_sign_in"].clone(),
                r.json["allow_connected_accounts"].clone()
            ),
            (json!(sign_in), json!(connected))
        );
        assert_eq!(r.json["type"], "spotify");
    }
    // The account id, read back.
    let r = t
        .call(
            0,
            Access::Server,
            Method::PATCH,
            &one,
            Some(json!({"account_id": "updated_spotify_user_456"})),
        )
        .await;
    let want = stack_view(
        &link,
        t.id(0),
        "spotify",
        Access::Server,
        json!({"account_id": "updated_spotify_user_456", "email": "updated@example.com"}),
    );
    assert_eq!((r.status, &r.json), (200, &want));
    let r = t.call(0, Access::Server, Method::GET, &one, None).await;
    assert_eq!((r.status, r.json), (200, want));
}

#[tokio::test]
async fn delete_then_404s_for_missing_links_and_an_empty_list() {
    let t = suite().await;
    let r = t
        .call(
            0,
            Access::Client,
            Method::GET,
            &format!("{URL}?user_id=me"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json),
        (200, json!({"is_paginated": false, "items": []}))
    );
    let link = t
        .create(
            0,
            "spotify",
            "test_spotify_user_123",
            "test@example.com",
            true,
        )
        .await;
    let id = link["id"].as_str().unwrap();
    let one = format!("{URL}/me/{id}");
    let r = t.call(0, Access::Client, Method::DELETE, &one, None).await;
    assert_eq!((r.status, r.json), (200, json!({"success": true})));
    refused(
        &t.call(0, Access::Client, Method::GET, &one, None).await,
        404,
        &not_found(id, t.id(0)),
    );
    let missing = format!("{URL}/me/{MISSING}");
    for m in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (m == Method::PATCH).then(|| json!({"allow_sign_in": true}));
        refused(
            &t.call(0, Access::Client, m, &missing, body).await,
            404,
            &not_found(MISSING, t.id(0)),
        );
    }
}

#[tokio::test]
async fn a_client_reaches_only_its_own_user_and_the_server_any() {
    let t = suite().await;
    let l1 = t
        .create(
            0,
            "spotify",
            "test_spotify_user_1",
            "test1@example.com",
            true,
        )
        .await;
    let l2 = t
        .create(
            1,
            "spotify",
            "test_spotify_user_2",
            "test2@example.com",
            true,
        )
        .await;
    let (u1, u2) = (t.id(0).to_owned(), t.id(1).to_owned());
    let (id1, id2) = (l1["id"].as_str().unwrap(), l2["id"].as_str().unwrap());
    let r = t
        .call(
            1,
            Access::Client,
            Method::GET,
            &format!("{URL}/{u2}/{id2}"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json),
        (
            200,
            stack_view(
                &l2,
                &u2,
                "spotify",
                Access::Client,
                json!({"email": "test2@example.com"})
            )
        )
    );
    for (m, verb) in [
        (Method::GET, "read"),
        (Method::PATCH, "update"),
        (Method::DELETE, "delete"),
    ] {
        let body = (m == Method::PATCH).then(|| json!({"allow_sign_in": false}));
        let r = t
            .call(1, Access::Client, m, &format!("{URL}/{u1}/{id2}"), body)
            .await;
        refused(
            &r,
            403,
            &format!("Client can only {verb} OAuth providers for their own user."),
        );
    }
    let r = t
        .call(
            1,
            Access::Client,
            Method::GET,
            &format!("{URL}?user_id={u1}"),
            None,
        )
        .await;
    refused(
        &r,
        403,
        "Client can only list OAuth providers for their own user.",
    );

    // The server lists everyone's links, or one user's, and updates any.
    let server_view = |l: &Value, u: &str, n: u8| {
        stack_view(
            l,
            u,
            "spotify",
            Access::Server,
            json!({"account_id": format!("test_spotify_user_{n}"), "email": format!("test{n}@example.com")}),
        )
    };
    let r = t.call(1, Access::Server, Method::GET, URL, None).await;
    let mut items = r.json["items"].as_array().unwrap().clone();
    items.sort_by_key(|l| l["account_id"].as_str().unwrap().to_owned());
    assert_eq!(
        (r.status, items),
        (
            200,
            vec![server_view(&l1, &u1, 1), server_view(&l2, &u2, 2)]
        )
    );
    let r = t
        .call(
            1,
            Access::Server,
            Method::GET,
            &format!("{URL}?user_id={u1}"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json),
        (
            200,
            json!({"is_paginated": false, "items": [server_view(&l1, &u1, 1)]})
        )
    );
    let r = t
        .call(
            1,
            Access::Server,
            Method::PATCH,
            &format!("{URL}/{u1}/{id1}"),
            Some(json!({"allow_sign_in": false})),
        )
        .await;
    let mut want = server_view(&l1, &u1, 1);
    want["allow_sign_in"] = json!(false);
    assert_eq!((r.status, r.json), (200, want));
    // A link is found only under its own user, whoever asks.
    for m in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (m == Method::PATCH).then(|| json!({"allow_sign_in": false}));
        refused(
            &t.call(1, Access::Server, m, &format!("{URL}/{u1}/{id2}"), body)
                .await,
            404,
            &not_found(id2, &u1),
        );
    }
    let r = t
        .call(
            0,
            Access::Server,
            Method::GET,
            &format!("{URL}/{u1}/{id1}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t
        .call(
            0,
            Access::Server,
            Method::GET,
            &format!("{URL}/{u2}/{id2}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn one_sign_in_link_per_provider_type() {
    let t = suite().await;
    t.create(
        0,
        "spotify",
        "spotify_user_123",
        "user123@example.com",
        true,
    )
    .await;
    let second = json!({"user_id": "me", "provider_config_id": "spotify", "account_id": "spotify_user_456",
        "email": "user456@example.com", "allow_sign_in": true, "allow_connected_accounts": true});
    let r = t
        .call(0, Access::Server, Method::POST, URL, Some(second))
        .await;
    refused(&r, 400, SIGN_IN_TYPE_TAKEN);
    let third = t
        .create(
            0,
            "spotify",
            "spotify_user_789",
            "user456@example.com",
            false,
        )
        .await;
    assert_eq!(third["type"], "spotify");
    let one = format!("{URL}/me/{}", third["id"].as_str().unwrap());
    let r = t
        .call(
            0,
            Access::Server,
            Method::PATCH,
            &one,
            Some(json!({"allow_sign_in": true})),
        )
        .await;
    refused(&r, 400, SIGN_IN_TYPE_TAKEN);
    let r = t
        .call(
            0,
            Access::Server,
            Method::GET,
            &format!("{URL}?user_id=me"),
            None,
        )
        .await;
    let first = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["account_id"] == "spotify_user_123")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .call(
            0,
            Access::Server,
            Method::PATCH,
            &format!("{URL}/me/{first}"),
            Some(json!({"allow_sign_in": false})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["allow_sign_in"].clone()),
        (200, json!(false))
    );
    let r = t
        .call(
            0,
            Access::Server,
            Method::PATCH,
            &one,
            Some(json!({"allow_sign_in": true})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["allow_sign_in"].clone()),
        (200, json!(true)),
        "{}",
        r.text
    );
}

/// Stack's "should handle provider not configured error": a project without spotify.
#[tokio::test]
async fn an_unconfigured_provider_is_a_plain_404() {
    let bare = suite_with(&[]).await;
    let r = bare
        .call(0, Access::Server, Method::POST, URL, Some(json!({"user_id": "me", "provider_config_id": "spotify",
            "account_id": "test_spotify_user_123", "email": "test@example.com", "allow_sign_in": true,
            "allow_connected_accounts": true})))
        .await;
    refused(
        &r,
        404,
        "OAuth provider spotify not found or not configured",
    );
}

/// Stack's "should still list and read OAuth providers after the provider is disabled on the project": a link
/// through a provider config id that is a Stack type keeps that type, and is listed, read and deleted as before.
#[tokio::test]
async fn a_link_outlives_its_disabled_provider() {
    let t = suite().await;
    let link = t
        .create(
            0,
            "spotify",
            "test_spotify_user_123",
            "test@example.com",
            true,
        )
        .await;
    let store = &t.s.running.as_ref().unwrap().state.store;
    store
        .update_provider("spotify", |p| {
            p.enabled = false;
            Ok(())
        })
        .await
        .unwrap();
    let want = stack_view(
        &link,
        t.id(0),
        "spotify",
        Access::Server,
        json!({"account_id": "test_spotify_user_123", "email": "test@example.com"}),
    );
    let r = t
        .call(
            0,
            Access::Server,
            Method::GET,
            &format!("{URL}?user_id=me"),
            None,
        )
        .await;
    assert_eq!(
        (r.status, r.json),
        (200, json!({"is_paginated": false, "items": [want.clone()]}))
    );
    let one = format!("{URL}/me/{}", link["id"].as_str().unwrap());
    let r = t.call(0, Access::Server, Method::GET, &one, None).await;
    assert_eq!((r.status, r.json), (200, want));
    let r = t.call(0, Access::Server, Method::DELETE, &one, None).await;
    assert_eq!((r.status, r.json), (200, json!({"success": true})));
    let r = t
        .call(
            0,
            Access::Server,
            Method::GET,
            &format!("{URL}?user_id=me"),
            None,
        )
        .await;
    assert_eq!(r.json["items"], json!([]));
}

/// An account id changes when nothing conflicts (a second, connected-only github link), and not onto an account the
/// user already links through the provider (Stack's plain-text 400). Stack has no rule about one
/// upstream account across connected accounts: its source and every version of its suite know no
/// `…_ALREADY_USED_FOR_CONNECTED_ACCOUNTS` error.
#[tokio::test]
async fn an_account_id_changes_when_nothing_conflicts() {
    let t = suite().await;
    t.create(0, "github", "github_account_1", "test1@example.com", true)
        .await;
    let second = json!({"user_id": "me", "provider_config_id": "github", "account_id": "github_account_2",
        "email": "test2@example.com", "allow_sign_in": false, "allow_connected_accounts": false});
    let r = t
        .call(0, Access::Server, Method::POST, URL, Some(second))
        .await;
    assert_eq!(
        (r.status, r.json["type"].clone()),
        (201, json!("github")),
        "{}",
        r.text
    );
    let one = format!("{URL}/me/{}", r.json["id"].as_str().unwrap());
    let r = t
        .call(
            0,
            Access::Server,
            Method::PATCH,
            &one,
            Some(json!({"account_id": "github_account_3"})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["account_id"].clone()),
        (200, json!("github_account_3"))
    );
    // Stack's third rule: not onto the account another of the user's github links has.
    let r = t
        .call(
            0,
            Access::Server,
            Method::PATCH,
            &one,
            Some(json!({"account_id": "github_account_1"})),
        )
        .await;
    refused(
        &r,
        400,
        "The same provider type with the same account ID already exists for this user.",
    );
}

/// README's Stack tour: a user signs in through the `spotify` preset; Stack's `oauth-providers` lists the link
/// with type `spotify`, and `connected-accounts` hands the backend the upstream access token.
#[tokio::test]
async fn a_preset_sign_in_is_a_connected_account_of_its_stack_type() {
    let (identity, _, account) = super::documented("spotify");
    let (_up, declared) =
        super::upstream_for("", crate::common::upstream::Spec::new("spotify", identity)).await;
    let s = TestServer::new()
        .config(move |c| {
            c.stack.project_id = PROJECT.into();
            c.stack.server_key = SERVER_KEY.into();
            c.providers = vec![declared];
        })
        .start()
        .await;
    let b = browser();
    let r = b
        .get(format!("{}/login/spotify?return_to=/login", s.url))
        .send()
        .await
        .unwrap();
    let r = b
        .get(r.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    let r = b
        .get(r.headers()["location"].to_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let store = &s.running.as_ref().unwrap().state.store;
    let user = store.list_links().await.unwrap()[0].user_id.clone();
    let server = |rb: reqwest::RequestBuilder| {
        rb.header("X-Stack-Project-Id", PROJECT)
            .header("X-Stack-Access-Type", "server")
            .header("X-Stack-Secret-Server-Key", SERVER_KEY)
    };
    let r = server(s.http.get(format!("{}{URL}?user_id={user}", s.url)))
        .send()
        .await
        .unwrap();
    let (st, v) = crate::common::json_of(r).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["items"][0]["type"].clone(),
            v["items"][0]["account_id"].clone()
        ),
        (json!("spotify"), json!(account))
    );
    let r = server(s.http.post(format!(
        "{}/api/v1/connected-accounts/{user}/spotify/access-token",
        s.url
    )))
    .json(&json!({}))
    .send()
    .await
    .unwrap();
    let (st, v) = crate::common::json_of(r).await;
    assert_eq!(
        (st, v),
        (
            201,
            json!({"access_token": crate::common::upstream::ACCESS_TOKEN})
        )
    );
}
