//! OpenID Connect Discovery 1.0 beside RFC 8414: one document at both well-known locations, with every field a
//! relying party looks for, and, for an issuer with a path, at the locations each spec derives from it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{json_of, spawn, spawn_with, Server};

async fn get(s: &Server, path: &str) -> (u16, Value) {
    json_of(s.req(Method::GET, path).send().await.unwrap()).await
}

#[tokio::test]
async fn discovery_states_what_the_provider_supports() {
    let s = spawn().await;
    let (st, d) = get(&s, "/.well-known/openid-configuration").await;
    assert_eq!(st, 200);
    let iss = &s.url;
    assert_eq!(d["issuer"], json!(iss));
    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/oauth/userinfo"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("introspection_endpoint", "/oauth/introspect"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("end_session_endpoint", "/oauth/logout"),
    ] {
        assert_eq!(d[field], json!(format!("{iss}{path}")), "{field}");
    }
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["response_modes_supported"], json!(["query"]));
    assert_eq!(d["subject_types_supported"], json!(["public", "pairwise"]));
    assert_eq!(
        d["id_token_signing_alg_values_supported"][0],
        json!("RS256"),
        "RS256 first: the one every relying party accepts"
    );
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    // Stated explicitly: request_uri_parameter_supported defaults to true (Discovery §3).
    for capability in [
        "request_parameter_supported",
        "request_uri_parameter_supported",
        "claims_parameter_supported",
    ] {
        assert_eq!(d[capability], false, "{capability}");
    }
    let scopes = d["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!("openid")), "{scopes:?}");
    let claims = d["claims_supported"].as_array().unwrap();
    for c in ["sub", "iss", "auth_time", "nonce", "email", "name"] {
        assert!(claims.contains(&json!(c)), "{c} in {claims:?}");
    }
    // Every client authentication method the endpoints accept, `none` (public clients) included.
    for endpoint in ["token", "introspection", "revocation"] {
        assert_eq!(
            d[format!("{endpoint}_endpoint_auth_methods_supported")],
            json!(["client_secret_basic", "client_secret_post", "none"]),
            "{endpoint}"
        );
    }
    // One set of facts: RFC 8414's document is the same document.
    let (_, m) = get(&s, "/.well-known/oauth-authorization-server").await;
    assert_eq!(m, d);
}

#[tokio::test]
async fn an_issuer_with_a_path_serves_its_documents_where_both_specs_look() {
    let issuer = "https://id.example.test/auth";
    let s = spawn_with(|c| c.issuer = issuer.into()).await;
    // RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
    let (st, m) = get(&s, "/.well-known/oauth-authorization-server/auth").await;
    assert_eq!(st, 200);
    assert_eq!(m["issuer"], issuer);
    assert_eq!(m["token_endpoint"], format!("{issuer}/oauth/token"));
    // OpenID Connect Discovery §4: appended to the issuer.
    let (st, d) = get(&s, "/auth/.well-known/openid-configuration").await;
    assert_eq!(st, 200);
    assert_eq!(d, m);
    // The endpoints answer under the issuer's path (a proxy passing the path through) and at the root (one
    // stripping it).
    for path in ["/auth/oauth/token", "/oauth/token"] {
        let r = s.req(Method::GET, path).send().await.unwrap();
        assert_eq!(r.status(), 400, "{path}: the token endpoint's GET answer");
    }
    let (st, _) = get(&s, "/.well-known/oauth-authorization-server/other").await;
    assert_eq!(st, 404);
}
