//! docs/endpoints.md#providers: custom OAuth providers over RC's settings API, row by row: defaults, types, enums, masking, 2FA,
//! permissions, the public service configurations, and secrets sealed at rest.

use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use crate::common::{json_of, spawn, spawn_with, Auth, Server, TestServer, ADMIN_PASSWORD};

pub const PREFIX: &str = "Accounts_OAuth_Custom-";

/// The password 2FA method with the admin's password.
pub fn with_2fa(rb: RequestBuilder) -> RequestBuilder {
    rb.header("x-2fa-code", ADMIN_PASSWORD)
        .header("x-2fa-method", "password")
}

pub async fn post_2fa(s: &Server, path: &str, a: &Auth, body: Value) -> (u16, Value) {
    json_of(
        with_2fa(s.authed(Method::POST, path, a))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

pub async fn add(s: &Server, a: &Auth, name: &str) {
    let (st, v) = post_2fa(
        s,
        "/api/v1/settings.addCustomOAuth",
        a,
        json!({"name": name}),
    )
    .await;
    assert_eq!((st, v), (200, json!({"success": true})), "add {name}");
}

pub async fn set(s: &Server, a: &Auth, key: &str, value: Value) -> (u16, Value) {
    post_2fa(
        s,
        &format!("/api/v1/settings/{key}"),
        a,
        json!({"value": value}),
    )
    .await
}

pub async fn get_value(s: &Server, a: &Auth, key: &str) -> Value {
    let (st, v) = s.get(&format!("/api/v1/settings/{key}"), a).await;
    assert_eq!(st, 200, "{key}: {v}");
    assert_eq!(v["_id"], key);
    assert_eq!(v["success"], true);
    v["value"].clone()
}

async fn user(s: &Server, a: &Auth, name: &str) -> Auth {
    crate::common::steps::create_user(s, a, name).await;
    s.login(name, "pw").await
}

#[tokio::test]
async fn add_normalizes_the_name_and_applies_rcs_defaults() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "My IdP").await;
    let k = |suffix: &str| format!("{PREFIX}Myidp{suffix}");
    let defaults = [
        ("", json!(false)),
        ("-url", json!("")),
        ("-token_path", json!("/oauth/token")),
        ("-token_sent_via", json!("payload")),
        ("-identity_token_sent_via", json!("default")),
        ("-identity_path", json!("/me")),
        ("-authorize_path", json!("/oauth/authorize")),
        ("-scope", json!("openid")),
        ("-access_token_param", json!("access_token")),
        ("-id", json!("")),
        ("-secret", json!("")),
        ("-login_style", json!("popup")),
        ("-button_label_text", json!("")),
        ("-button_label_color", json!("#FFFFFF")),
        ("-button_color", json!("#1d74f5")),
        ("-key_field", json!("username")),
        ("-username_field", json!("")),
        ("-email_field", json!("")),
        ("-name_field", json!("")),
        ("-avatar_field", json!("")),
        ("-roles_claim", json!("roles")),
        ("-groups_claim", json!("groups")),
        ("-channels_admin", json!("rocket.cat")),
        ("-map_channels", json!(false)),
        ("-merge_roles", json!(false)),
        ("-roles_to_sync", json!("")),
        ("-merge_users", json!(false)),
        ("-merge_users_distinct_services", json!(false)),
        ("-show_button", json!(true)),
        (
            "-groups_channel_map",
            json!("{\n\t\"rocket-admin\": \"admin\",\n\t\"tech-support\": \"support\"\n}"),
        ),
    ];
    for (suffix, want) in defaults {
        assert_eq!(get_value(&s, &a, &k(suffix)).await, want, "{suffix}");
    }
    // Setting ids are case-sensitive, and other spellings normalize to the same provider.
    let (st, v) = s.get(&format!("/api/v1/settings/{PREFIX}myidp"), &a).await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-setting-not-found"))
    );
    assert_eq!(
        set(&s, &a, &k("-scope"), json!("openid email")).await.0,
        200
    );
    add(&s, &a, "my-idp!").await;
    assert_eq!(
        get_value(&s, &a, &k("-scope")).await,
        "openid email",
        "adding again keeps values"
    );
    add(&s, &a, "Key Cloak_2").await;
    assert_eq!(
        get_value(&s, &a, &format!("{PREFIX}Keycloak_2-url")).await,
        ""
    );
    s.running.as_ref().unwrap().state.store.verify().unwrap();
}

#[tokio::test]
async fn add_and_remove_need_a_name() {
    let s = spawn().await;
    let a = s.admin().await;
    for path in ["settings.addCustomOAuth", "settings.removeCustomOAuth"] {
        for body in [json!({}), json!({"name": "  "}), json!({"name": null})] {
            let (st, v) = post_2fa(&s, &format!("/api/v1/{path}"), &a, body).await;
            assert_eq!(
                (st, v),
                (
                    400,
                    json!({"success": false, "error": "The parameter \"name\" is required [error-name-param-not-provided]", "errorType": "error-name-param-not-provided"})
                ),
                "{path}"
            );
        }
        let (st, v) = post_2fa(&s, &format!("/api/v1/{path}"), &a, json!({"name": 7})).await;
        assert_eq!((st, v["errorType"].as_str()), (400, Some("invalid-params")));
    }
    let (st, v) = post_2fa(
        &s,
        "/api/v1/settings.addCustomOAuth",
        &a,
        json!({"name": "!!!"}),
    )
    .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-name-param-not-provided"))
    );
    let long = "a".repeat(65);
    let (st, v) = post_2fa(
        &s,
        "/api/v1/settings.addCustomOAuth",
        &a,
        json!({"name": long}),
    )
    .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-invalid-name"))
    );
    let r = with_2fa(s.authed(Method::POST, "/api/v1/settings.addCustomOAuth", &a))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("invalid-params")));
}

#[tokio::test]
async fn settings_check_types_and_enums_and_mask_the_secret() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "Myidp").await;
    let k = |suffix: &str| format!("{PREFIX}Myidp{suffix}");
    let ok = [
        ("", json!(true)),
        ("-url", json!("https://idp.example.com")),
        ("-token_sent_via", json!("header")),
        ("-identity_token_sent_via", json!("payload")),
        ("-login_style", json!("")),
        ("-login_style", json!("redirect")),
        ("-key_field", json!("email")),
        ("-merge_users", json!(true)),
        ("-groups_channel_map", json!("{}")),
        ("-id", json!("client-1")),
    ];
    for (suffix, value) in ok {
        let (st, v) = set(&s, &a, &k(suffix), value.clone()).await;
        assert_eq!((st, v), (200, json!({"success": true})), "{suffix}");
        assert_eq!(get_value(&s, &a, &k(suffix)).await, value, "{suffix}");
    }
    let bad = [
        ("", json!("true")),
        ("", json!(1)),
        ("-url", json!(true)),
        ("-url", json!("javascript:alert(1)")),
        ("-token_sent_via", json!("query")),
        ("-identity_token_sent_via", json!("")),
        ("-login_style", json!("iframe")),
        ("-key_field", json!("id")),
        ("-show_button", json!(null)),
        ("-scope", json!(["openid"])),
        ("-secret", json!(false)),
    ];
    for (suffix, value) in bad {
        let before = get_value(&s, &a, &k(suffix)).await;
        let (st, v) = set(&s, &a, &k(suffix), value.clone()).await;
        assert_eq!(st, 400, "{suffix} = {value}");
        assert_eq!(
            v["errorType"], "error-setting-validation-failed",
            "{suffix}: {v}"
        );
        assert_eq!(
            v["error"],
            "Invalid setting value [error-setting-validation-failed]"
        );
        assert_eq!(get_value(&s, &a, &k(suffix)).await, before, "unchanged");
    }
    for key in [
        format!("{PREFIX}Other-url"),
        format!("{PREFIX}Myidp-nope"),
        "Site_Name".to_owned(),
    ] {
        let (st, v) = set(&s, &a, &key, json!("x")).await;
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some("error-setting-not-found")),
            "{key}"
        );
        let (st, v) = s.get(&format!("/api/v1/settings/{key}"), &a).await;
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some("error-setting-not-found")),
            "{key}"
        );
    }
    let (st, v) = post_2fa(
        &s,
        &format!("/api/v1/settings/{}", k("-url")),
        &a,
        json!({}),
    )
    .await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("invalid-params")));

    // The secret: masked on read, the mask written back keeps it, "" clears it.
    let state = &s.running.as_ref().unwrap().state;
    let secret_of = async || {
        let p = latchkey::core::provider::get(&state.store, "myidp")
            .await
            .unwrap();
        latchkey::core::provider::client_secret(&state.sealer, &p).unwrap()
    };
    assert_eq!(
        set(&s, &a, &k("-secret"), json!("s3cr3t-upstream")).await.0,
        200
    );
    assert_eq!(get_value(&s, &a, &k("-secret")).await, "********");
    assert_eq!(secret_of().await.as_deref(), Some("s3cr3t-upstream"));
    assert_eq!(set(&s, &a, &k("-secret"), json!("********")).await.0, 200);
    assert_eq!(secret_of().await.as_deref(), Some("s3cr3t-upstream"));
    assert_eq!(set(&s, &a, &k("-secret"), json!("")).await.0, 200);
    assert_eq!(get_value(&s, &a, &k("-secret")).await, "");
    assert_eq!(secret_of().await, None);
    state.store.verify().unwrap();
}

#[tokio::test]
async fn two_factor_guards_the_writes() {
    let s = spawn().await;
    let a = s.admin().await;
    let url = "/api/v1/settings.addCustomOAuth";
    let body = json!({"name": "Myidp"});
    let (st, v) = s.post(url, &a, body.clone()).await;
    assert_eq!(
        (st, v),
        (
            400,
            json!({"success": false, "error": "TOTP Required [totp-required]", "errorType": "totp-required",
                   "details": {"method": "password", "availableMethods": []}})
        )
    );
    // Only the code, without the method: RC reads neither.
    let r = s
        .authed(Method::POST, url, &a)
        .header("x-2fa-code", ADMIN_PASSWORD)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await.1["errorType"], "totp-required");
    let r = s
        .authed(Method::POST, url, &a)
        .header("x-2fa-code", "wrong")
        .header("x-2fa-method", "password")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (st, v) = json_of(r).await;
    assert_eq!((st, v["errorType"].as_str()), (400, Some("totp-invalid")));
    assert_eq!(v["error"], "TOTP Invalid [totp-invalid]");
    let (st, _) = s.get(&format!("/api/v1/settings/{PREFIX}Myidp"), &a).await;
    assert_eq!(st, 400, "nothing was added");
    // RC clients send the SHA-256 hex of the password.
    let digest = latchkey::crypto::sha256_hex(ADMIN_PASSWORD.as_bytes());
    let r = s
        .authed(Method::POST, url, &a)
        .header("x-2fa-code", digest.to_uppercase())
        .header("x-2fa-method", "password")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await, (200, json!({"success": true})));
    for (path, body) in [
        (
            format!("/api/v1/settings/{PREFIX}Myidp"),
            json!({"value": true}),
        ),
        ("/api/v1/settings.refreshOAuthServices".into(), json!({})),
        (
            "/api/v1/settings.removeCustomOAuth".into(),
            json!({"name": "Myidp"}),
        ),
    ] {
        let (st, v) = s.post(&path, &a, body.clone()).await;
        assert_eq!(
            (st, v["errorType"].as_str()),
            (400, Some("totp-required")),
            "{path}"
        );
        let (st, v) = post_2fa(&s, &path, &a, body).await;
        assert_eq!((st, v), (200, json!({"success": true})), "{path}");
    }
}

#[tokio::test]
async fn without_password_fallback_users_without_totp_pass() {
    let s = spawn_with(|c| c.two_factor.enforce_password_fallback = Some(false)).await;
    let a = s.admin().await;
    let (st, v) = s
        .post(
            "/api/v1/settings.addCustomOAuth",
            &a,
            json!({"name": "Myidp"}),
        )
        .await;
    assert_eq!((st, v), (200, json!({"success": true})));
}

#[tokio::test]
async fn permissions_and_authentication() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "Myidp").await;
    let u = user(&s, &a, "jane").await;
    let key = format!("{PREFIX}Myidp-url");
    let forbidden = json!({
        "success": false,
        "error": "User does not have the permissions required for this action [error-unauthorized]",
        "errorType": "error-unauthorized",
    });
    let posts = [
        (
            "/api/v1/settings.addCustomOAuth".to_owned(),
            json!({"name": "X"}),
        ),
        (
            "/api/v1/settings.removeCustomOAuth".to_owned(),
            json!({"name": "Myidp"}),
        ),
        (
            "/api/v1/settings.refreshOAuthServices".to_owned(),
            json!({}),
        ),
        (
            format!("/api/v1/settings/{key}"),
            json!({"value": "https://evil.example"}),
        ),
    ];
    for (path, body) in &posts {
        // Even with a right second factor: the permission comes first.
        let r = s
            .authed(Method::POST, path, &u)
            .header("x-2fa-code", "pw")
            .header("x-2fa-method", "password")
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(json_of(r).await, (403, forbidden.clone()), "{path}");
        let r = s.req(Method::POST, path).json(body).send().await.unwrap();
        let (st, v) = json_of(r).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (401, Some("You must be logged in to do this."))
        );
    }
    assert_eq!(
        s.get(&format!("/api/v1/settings/{key}"), &u).await,
        (403, forbidden)
    );
    let r = s
        .req(Method::GET, &format!("/api/v1/settings/{key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await.0, 401);
    assert_eq!(get_value(&s, &a, &key).await, "", "nothing changed");
}

#[tokio::test]
async fn public_service_configurations_list_enabled_providers_without_secrets() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "Myidp").await;
    add(&s, &a, "Hidden").await;
    let k = |suffix: &str| format!("{PREFIX}Myidp{suffix}");
    for (suffix, value) in [
        ("-url", json!("https://idp.example.com")),
        ("-id", json!("client-1")),
        ("-secret", json!("very-secret-value")),
        ("-button_label_text", json!("Sign in with My IdP")),
        ("", json!(true)),
    ] {
        assert_eq!(set(&s, &a, &k(suffix), value).await.0, 200);
    }
    for (path, field) in [
        ("/api/v1/settings.oauth", "services"),
        ("/api/v1/service.configurations", "configurations"),
    ] {
        let r = s.req(Method::GET, path).send().await.unwrap();
        let (st, v) = json_of(r).await;
        assert_eq!(st, 200, "{path} needs no login");
        assert_eq!(v["success"], true);
        let list = v[field].as_array().unwrap();
        assert_eq!(list.len(), 1, "only enabled providers: {v}");
        let c = &list[0];
        assert_eq!(c["service"], "myidp");
        assert_eq!(c["custom"], true);
        assert_eq!(c["clientId"], "client-1");
        assert_eq!(c["serverURL"], "https://idp.example.com");
        assert_eq!(c["tokenPath"], "/oauth/token");
        assert_eq!(c["identityPath"], "/me");
        assert_eq!(c["authorizePath"], "/oauth/authorize");
        assert_eq!(c["scope"], "openid");
        assert_eq!(c["loginStyle"], "popup");
        assert_eq!(c["tokenSentVia"], "payload");
        assert_eq!(c["identityTokenSentVia"], "default");
        assert_eq!(c["keyField"], "username");
        assert_eq!(c["mergeUsers"], false);
        assert_eq!(c["showButton"], true);
        assert_eq!(c["buttonLabelText"], "Sign in with My IdP");
        assert_eq!(c["buttonLabelColor"], "#FFFFFF");
        assert_eq!(c["buttonColor"], "#1d74f5");
        assert_eq!(c["_id"].as_str().unwrap().len(), 17);
        for f in ["usernameField", "emailField", "nameField", "avatarField"] {
            assert_eq!(c[f], "", "{f}");
        }
        assert!(c.get("secret").is_none());
        assert!(!v.to_string().contains("very-secret-value"));
    }
}

#[tokio::test]
async fn remove_deletes_every_setting_and_unknown_names_succeed() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "Myidp").await;
    assert_eq!(
        set(&s, &a, &format!("{PREFIX}Myidp"), json!(true)).await.0,
        200
    );
    let (st, v) = post_2fa(
        &s,
        "/api/v1/settings.removeCustomOAuth",
        &a,
        json!({"name": "my idp"}),
    )
    .await;
    assert_eq!((st, v), (200, json!({"success": true})));
    let (st, v) = s
        .get(&format!("/api/v1/settings/{PREFIX}Myidp-url"), &a)
        .await;
    assert_eq!(
        (st, v["errorType"].as_str()),
        (400, Some("error-setting-not-found"))
    );
    let r = s
        .req(Method::GET, "/api/v1/settings.oauth")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await.1["services"], json!([]));
    let (st, _) = post_2fa(
        &s,
        "/api/v1/settings.removeCustomOAuth",
        &a,
        json!({"name": "Never"}),
    )
    .await;
    assert_eq!(st, 200);
    // A new provider under the old name starts from the defaults.
    add(&s, &a, "Myidp").await;
    assert_eq!(get_value(&s, &a, &format!("{PREFIX}Myidp")).await, false);
}

#[tokio::test]
async fn no_upstream_secret_or_totp_seed_is_stored_in_plaintext() {
    let s = spawn().await;
    let a = s.admin().await;
    add(&s, &a, "Myidp").await;
    let rc_secret = "RC-SECRET-8f2d6c0e9a7b4d1f";
    let locoia_secret = "LOCOIA-SECRET-3b9e1a7c5d2f";
    assert_eq!(
        set(&s, &a, &format!("{PREFIX}Myidp-secret"), json!(rc_secret))
            .await
            .0,
        200
    );
    let r = with_2fa(s.req(Method::PUT, "/v1/connectors/myidp/custom_auth"))
        .bearer_auth(&a.token)
        .json(&json!({"oauth2": [
            {"client_id": "c1", "client_secret": rc_secret, "name": "main"},
            {"client_id": "c2", "client_secret": locoia_secret, "name": "backup"},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (st, v) = post_2fa(&s, "/api/v1/users.2fa.enableTOTP", &a, json!({})).await;
    assert_eq!(st, 200, "{v}");
    let seed_b32 = v["secret"].as_str().unwrap().to_owned();
    let seed = base32_decode(&seed_b32);
    let dir = s.stop().await;
    let files = crate::common::files_under(dir.path());
    assert!(files.iter().any(|f| f.ends_with("master.key")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        for needle in [
            rc_secret.as_bytes(),
            locoia_secret.as_bytes(),
            seed_b32.as_bytes(),
            &seed,
        ] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a secret in plaintext",
                f.display()
            );
        }
    }
}

/// RFC 4648 base32 without padding.
pub fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buf, mut bits, mut out) = (0u32, 0, Vec::new());
    for c in s.bytes() {
        buf = (buf << 5) | ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

#[tokio::test]
async fn a_data_dir_refuses_another_master_key() {
    let s = spawn().await;
    let dir = s.stop().await;
    let refused = TestServer::new()
        .data_dir(dir)
        .config(|c| c.master_key = latchkey::crypto::secret::b64url(&[9u8; 32]))
        .try_start()
        .await
        .err()
        .expect("a different key is refused");
    let e = refused.error;
    assert!(e.to_string().contains("master key does not match"), "{e}");
    let e = TestServer::new()
        .data_dir(refused.dir)
        .config(|c| c.master_key = "not-a-key".into())
        .try_start()
        .await
        .err()
        .unwrap()
        .error;
    assert!(e.to_string().contains("LATCHKEY_MASTER_KEY"), "{e}");
}

#[tokio::test]
async fn the_openapi_document_covers_the_new_endpoints() {
    let s = spawn().await;
    let r = s.req(Method::GET, "/openapi.json").send().await.unwrap();
    let (st, doc) = json_of(r).await;
    assert_eq!(st, 200);
    for (path, method) in [
        ("/api/v1/settings.addCustomOAuth", "post"),
        ("/api/v1/settings.removeCustomOAuth", "post"),
        ("/api/v1/settings.refreshOAuthServices", "post"),
        ("/api/v1/settings/{_id}", "get"),
        ("/api/v1/settings/{_id}", "post"),
        ("/api/v1/settings.oauth", "get"),
        ("/api/v1/service.configurations", "get"),
        ("/api/v1/users.2fa.enableTOTP", "post"),
        ("/api/v1/users.2fa.validateTempToken", "post"),
        ("/api/v1/users.2fa.disableTOTP", "post"),
        ("/v1/connectors/{connector_id}/custom_auth", "put"),
        ("/v1/connectors/{connector_id}/custom_auth", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ServiceConfiguration"].is_object());
}
