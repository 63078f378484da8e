//! `/openapi.json` against the server's real answers: for representative endpoints of every dialect, the body the
//! running server sends validates against the schema the document declares for that route and status, and has no
//! property the schema does not declare. The document is generated from the types the handlers serialize, so this
//! fails when a handler writes a field (or a status) outside its type.

use std::collections::BTreeSet;

use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

use crate::common::steps::create_user;
use crate::common::{json_of, spawn_with, Auth, Server, ADMIN_PASSWORD};

const PROJECT: &str = "proj";
const SERVER_KEY: &str = "ssk_openapi";

/// The schema `doc` declares for the JSON answer of `method path` with `status`.
fn declared<'a>(doc: &'a Value, method: &Method, path: &str, status: u16) -> &'a Value {
    let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
    let schema = &op["responses"][status.to_string()]["content"]["application/json"]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path}: no JSON schema for {status}"
    );
    schema
}

/// `#/components/schemas/X` → the schema X.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The property names a schema declares, through `allOf`; `None` for a free-form object.
fn property_names(doc: &Value, schema: &Value) -> Option<BTreeSet<String>> {
    let schema = resolve(doc, schema);
    let own = schema["properties"].as_object().map(|p| p.keys().cloned());
    let parts = schema["allOf"].as_array().into_iter().flatten();
    let mut names: Option<BTreeSet<String>> = own.map(Iterator::collect);
    for part in parts {
        if let Some(n) = property_names(doc, part) {
            names.get_or_insert_with(BTreeSet::new).extend(n);
        }
    }
    names
}

fn is_type(v: &Value, ty: &str) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "null" => v.is_null(),
        _ => panic!("unknown type {ty}"),
    }
}

/// The subset of JSON Schema utoipa writes: `$ref`, `allOf`, `oneOf`, `type`, `required`, `properties`, `items`,
/// `enum`. An object may carry only the properties its schema declares (unless it declares none).
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    for part in schema["allOf"].as_array().into_iter().flatten() {
        check_part(doc, part, v, at)?;
    }
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let matching = alternatives
            .iter()
            .filter(|s| check(doc, s, v, at).is_ok())
            .count();
        if matching != 1 {
            return Err(format!("{at}: {v} matches {matching} of oneOf"));
        }
    }
    check_part(doc, schema, v, at)?;
    if let (Some(obj), Some(names)) = (v.as_object(), property_names(doc, schema)) {
        if let Some(k) = obj.keys().find(|k| !names.contains(*k)) {
            return Err(format!("{at}: undocumented property {k:?}"));
        }
    }
    Ok(())
}

/// One schema's own keywords, without the check for undocumented properties (an `allOf` part sees only some).
fn check_part(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| is_type(v, t)) {
        return Err(format!("{at}: {v} is not {types:?}"));
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(v) {
            return Err(format!("{at}: {v} is not one of {allowed:?}"));
        }
    }
    for r in schema["required"].as_array().into_iter().flatten() {
        let r = r.as_str().unwrap();
        if v.get(r).is_none() {
            return Err(format!("{at}: missing required {r:?}"));
        }
    }
    if let (Some(props), Some(obj)) = (schema["properties"].as_object(), v.as_object()) {
        for (k, val) in obj {
            if let Some(s) = props.get(k) {
                check(doc, s, val, &format!("{at}.{k}"))?;
            }
        }
    }
    if let Some(items) = schema.get("items") {
        for (i, x) in v.as_array().into_iter().flatten().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Sends `rb` (a request to `method path`, the documented path template) and checks the answer against the
/// document; returns it.
async fn conforms(doc: &Value, method: Method, path: &str, rb: RequestBuilder) -> (u16, Value) {
    let (status, body) = json_of(rb.send().await.unwrap()).await;
    let schema = declared(doc, &method, path, status);
    if let Err(e) = check(doc, schema, &body, "body") {
        panic!("{method} {path} {status}: {e}\n{body:#}");
    }
    (status, body)
}

fn with_2fa(rb: RequestBuilder) -> RequestBuilder {
    rb.header("x-2fa-method", "password")
        .header("x-2fa-code", ADMIN_PASSWORD)
}

struct Case<'a> {
    s: &'a Server,
    doc: &'a Value,
}

impl Case<'_> {
    /// An RC route as `auth` (none: anonymous), with a JSON body for POST.
    async fn rc(
        &self,
        method: Method,
        path: &str,
        auth: Option<&Auth>,
        body: Value,
    ) -> (u16, Value) {
        let mut rb = match auth {
            Some(a) => self.s.authed(method.clone(), path, a),
            None => self.s.req(method.clone(), path),
        };
        if method == Method::POST {
            rb = with_2fa(rb).json(&body);
        }
        let template = path.split('?').next().unwrap();
        let template = match template.strip_prefix("/api/v1/settings/") {
            Some(_) => "/api/v1/settings/{_id}",
            None => template,
        };
        conforms(self.doc, method, template, rb).await
    }
}

#[tokio::test]
async fn real_answers_match_the_openapi_document() {
    let s = spawn_with(|c| {
        c.stack.project_id = PROJECT.into();
        c.stack.server_key = SERVER_KEY.into();
    })
    .await;
    let (st, doc) = json_of(s.req(Method::GET, "/openapi.json").send().await.unwrap()).await;
    assert_eq!(st, 200);
    let c = Case { s: &s, doc: &doc };
    let admin = s.admin().await;
    let (get, post) = (Method::GET, Method::POST);

    // RC: sessions and users, successes and each error shape.
    let login = json!({"user": "admin", "password": ADMIN_PASSWORD});
    assert_eq!(
        c.rc(post.clone(), "/api/v1/login", None, login).await.0,
        200
    );
    let bad = json!({"user": "admin", "password": "wrong"});
    assert_eq!(c.rc(post.clone(), "/api/v1/login", None, bad).await.0, 401);
    assert_eq!(
        c.rc(get.clone(), "/api/v1/me", Some(&admin), json!({}))
            .await
            .0,
        200
    );
    assert_eq!(
        c.rc(get.clone(), "/api/v1/me", None, json!({})).await.0,
        401
    );
    let jane_id = create_user(&s, &admin, "jane").await;
    let jane = s.login("jane", "pw").await;
    let new_user =
        json!({"username": "bob", "email": "bob@example.com", "password": "pw", "name": "Bob"});
    let created = c
        .rc(post.clone(), "/api/v1/users.create", Some(&admin), new_user)
        .await;
    assert_eq!(created.0, 200, "{}", created.1);
    let no_email = json!({"username": "carl", "password": "pw"});
    assert_eq!(
        c.rc(
            post.clone(),
            "/api/v1/users.create",
            Some(&admin),
            no_email.clone()
        )
        .await
        .0,
        400
    );
    assert_eq!(
        c.rc(post.clone(), "/api/v1/users.create", Some(&jane), no_email)
            .await
            .0,
        403
    );
    let full = format!("/api/v1/users.info?userId={jane_id}");
    let public = format!("/api/v1/users.info?userId={}", admin.user_id);
    assert_eq!(
        c.rc(get.clone(), &full, Some(&admin), json!({})).await.0,
        200
    );
    let (_, v) = c.rc(get.clone(), &public, Some(&jane), json!({})).await;
    assert!(v["user"].get("emails").is_none(), "{v}");
    let claims =
        json!({"userId": jane_id, "data": {"claims": {"given_name": "Jane", "team": "ops"}}});
    let (st, v) = c
        .rc(post.clone(), "/api/v1/users.update", Some(&admin), claims)
        .await;
    assert_eq!(
        (st, &v["user"]["claims"]["team"]),
        (200, &json!("ops")),
        "{v}"
    );
    let bad = json!({"userId": jane_id, "data": {"claims": {"sub": "x"}}});
    assert_eq!(
        c.rc(post.clone(), "/api/v1/users.update", Some(&admin), bad)
            .await
            .0,
        400
    );

    // RC: apps, from creation to deletion (the bare `true`).
    let app = json!({"name": "A", "active": true, "redirectUri": "https://a.example/cb", "grantTypes": ["client_credentials"]});
    let (st, v) = c
        .rc(post.clone(), "/api/v1/oauth-apps.create", Some(&admin), app)
        .await;
    assert_eq!(st, 200, "{v}");
    let (app_id, client_id) = (
        v["application"]["_id"].as_str().unwrap().to_owned(),
        v["application"]["clientId"].as_str().unwrap().to_owned(),
    );
    let secret = v["application"]["clientSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        c.rc(
            get.clone(),
            "/api/v1/oauth-apps.list",
            Some(&admin),
            json!({})
        )
        .await
        .0,
        200
    );
    let one = format!("/api/v1/oauth-apps.get?_id={app_id}");
    assert_eq!(
        c.rc(get.clone(), &one, Some(&admin), json!({})).await.0,
        200
    );
    assert_eq!(
        c.rc(
            get.clone(),
            "/api/v1/oauth-apps.get?_id=nope",
            Some(&admin),
            json!({})
        )
        .await
        .0,
        400
    );
    let update = json!({"appId": app_id, "name": "B", "active": true, "redirectUri": "https://a.example/cb", "grantTypes": ["client_credentials"]});
    assert_eq!(
        c.rc(
            post.clone(),
            "/api/v1/oauth-apps.update",
            Some(&admin),
            update
        )
        .await
        .0,
        200
    );

    // OAuth: token, introspection (live and not), revocation, metadata, an RFC 6749 error.
    let form = |path: &str, fields: &[(&str, &str)]| {
        s.req(Method::POST, path)
            .basic_auth(&client_id, Some(&secret))
            .form(fields)
    };
    let (st, v) = conforms(
        &doc,
        post.clone(),
        "/oauth/token",
        form("/oauth/token", &[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_owned();
    let bad_grant = form("/oauth/token", &[("grant_type", "password")]);
    assert_eq!(
        conforms(&doc, post.clone(), "/oauth/token", bad_grant)
            .await
            .0,
        400
    );
    let (_, v) = conforms(
        &doc,
        post.clone(),
        "/oauth/introspect",
        form("/oauth/introspect", &[("token", &token)]),
    )
    .await;
    assert_eq!(v["active"], true, "{v}");
    let (_, v) = conforms(
        &doc,
        post.clone(),
        "/oauth/introspect",
        form("/oauth/introspect", &[("token", "nope")]),
    )
    .await;
    assert_eq!(v, json!({"active": false}));
    let meta = s.req(get.clone(), "/.well-known/oauth-authorization-server");
    assert_eq!(
        conforms(
            &doc,
            get.clone(),
            "/.well-known/oauth-authorization-server",
            meta
        )
        .await
        .0,
        200
    );

    // RC: a provider through the settings API, and the public service configurations.
    let name = json!({"name": "Myidp"});
    assert_eq!(
        c.rc(
            post.clone(),
            "/api/v1/settings.addCustomOAuth",
            Some(&admin),
            name
        )
        .await
        .0,
        200
    );
    let key = "/api/v1/settings/Accounts_OAuth_Custom-Myidp";
    assert_eq!(
        c.rc(post.clone(), key, Some(&admin), json!({"value": true}))
            .await
            .0,
        200
    );
    assert_eq!(c.rc(get.clone(), key, Some(&admin), json!({})).await.0, 200);
    let (_, v) = c
        .rc(get.clone(), "/api/v1/settings.oauth", None, json!({}))
        .await;
    assert_eq!(v["services"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        c.rc(
            get.clone(),
            "/api/v1/service.configurations",
            None,
            json!({})
        )
        .await
        .0,
        200
    );
    let (st, v) = c
        .rc(
            post.clone(),
            "/api/v1/users.2fa.enableTOTP",
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    // Locoia: the connector's credentials (scopes present and absent), and an error.
    let locoia = |m: Method, path: &str| s.req(m, path).bearer_auth(&admin.token);
    let creds = json!({"oauth2": [{"client_id": "c1", "client_secret": "s1", "name": "one", "scopes": ["openid"]},
                                  {"client_id": "c2", "client_secret": "s2", "name": "two"}]});
    let template = "/v1/connectors/{connector_id}/custom_auth";
    let put = with_2fa(locoia(Method::PUT, "/v1/connectors/myidp/custom_auth")).json(&creds);
    assert_eq!(conforms(&doc, Method::PUT, template, put).await.0, 200);
    assert_eq!(
        conforms(
            &doc,
            get.clone(),
            template,
            locoia(get.clone(), "/v1/connectors/myidp/custom_auth")
        )
        .await
        .0,
        200
    );
    assert_eq!(
        conforms(
            &doc,
            get.clone(),
            template,
            locoia(get.clone(), "/v1/connectors/nope/custom_auth")
        )
        .await
        .0,
        404
    );

    // Stack: a link's life, and a known error.
    let stack = |m: Method, path: &str| {
        s.req(m, path)
            .header("X-Stack-Project-Id", PROJECT)
            .header("X-Stack-Access-Type", "server")
            .header("X-Stack-Secret-Server-Key", SERVER_KEY)
    };
    let link = json!({"user_id": jane_id, "provider_config_id": "myidp", "allow_sign_in": true,
                      "allow_connected_accounts": true, "account_id": "upstream-1"});
    let (list, one) = (
        "/api/v1/oauth-providers",
        "/api/v1/oauth-providers/{user_id}/{provider_id}",
    );
    let (st, v) = conforms(
        &doc,
        post.clone(),
        list,
        stack(post.clone(), list).json(&link),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let at = format!("{list}/{jane_id}/{}", v["id"].as_str().unwrap());
    assert_eq!(
        conforms(
            &doc,
            post.clone(),
            list,
            stack(post.clone(), list).json(&json!({}))
        )
        .await
        .0,
        400
    );
    let (_, v) = conforms(
        &doc,
        get.clone(),
        list,
        stack(get.clone(), &format!("{list}?user_id={jane_id}")),
    )
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        conforms(&doc, get.clone(), one, stack(get.clone(), &at))
            .await
            .0,
        200
    );
    let patch = stack(Method::PATCH, &at).json(&json!({"email": "jane@example.com"}));
    assert_eq!(conforms(&doc, Method::PATCH, one, patch).await.0, 200);
    assert_eq!(
        conforms(&doc, Method::DELETE, one, stack(Method::DELETE, &at))
            .await
            .0,
        200
    );

    let revoke = form("/oauth/revoke", &[("token", &token)]);
    assert_eq!(
        conforms(&doc, post.clone(), "/oauth/revoke", revoke)
            .await
            .0,
        200
    );

    // The last RC steps: a new secret, then deletion, the bare JSON `true`.
    let by_id = json!({"appId": app_id});
    assert_eq!(
        c.rc(
            post.clone(),
            "/api/v1/oauth-apps.regenerateSecret",
            Some(&admin),
            by_id.clone()
        )
        .await
        .0,
        200
    );
    let (st, v) = c
        .rc(
            post.clone(),
            "/api/v1/oauth-apps.delete",
            Some(&admin),
            by_id,
        )
        .await;
    assert_eq!((st, v), (200, json!(true)));
    let revoke = form("/oauth/revoke", &[("token", &token)]);
    assert_eq!(
        conforms(&doc, post.clone(), "/oauth/revoke", revoke)
            .await
            .0,
        401
    );
}
