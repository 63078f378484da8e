//! The authorization server's metadata: one document served at both well-known locations, RFC 8414's
//! `/.well-known/oauth-authorization-server` and OpenID Connect Discovery 1.0's `/.well-known/openid-configuration`
//! (certified servers answer the same document at both, so a client finds the same facts whichever it asks).
//! For an issuer with a path (`https://host/auth`) the documents are also at the locations the two specs derive
//! from it (RFC 8414 §3.1: `/.well-known/oauth-authorization-server/auth`; Discovery §4:
//! `/auth/.well-known/openid-configuration`): `api::router` mounts them.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::model::app::DEFAULT_SCOPES;
use crate::state::AppState;

/// What `client_auth::authenticate` accepts, for every endpoint that calls it.
const CLIENT_AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// The ID token's own claims (OIDC Core §2), listed in `claims_supported` before the user's (`core::claims`).
const TOKEN_CLAIMS: [&str; 9] = [
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "amr",
    "azp",
    "sid",
];

/// RFC 8414 §2 and OpenID Connect Discovery §3 metadata. The fields are in sorted order, the order this answer
/// has always been written in. Boolean capabilities whose defaults would claim support Latchkey lacks
/// (`request_uri_parameter_supported` defaults to true) are stated explicitly.
#[derive(Serialize, ToSchema)]
pub struct Metadata {
    authorization_endpoint: String,
    authorization_response_iss_parameter_supported: bool,
    claims_parameter_supported: bool,
    claims_supported: Vec<&'static str>,
    code_challenge_methods_supported: [&'static str; 1],
    end_session_endpoint: String,
    grant_types_supported: [&'static str; 3],
    id_token_signing_alg_values_supported: Vec<&'static str>,
    introspection_endpoint: String,
    introspection_endpoint_auth_methods_supported: [&'static str; 3],
    issuer: String,
    jwks_uri: String,
    request_parameter_supported: bool,
    request_uri_parameter_supported: bool,
    response_modes_supported: [&'static str; 1],
    response_types_supported: [&'static str; 1],
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    scopes_supported: Vec<&'static str>,
    subject_types_supported: [&'static str; 2],
    token_endpoint: String,
    token_endpoint_auth_methods_supported: [&'static str; 3],
    userinfo_endpoint: String,
}

/// Both well-known locations' handler: the document rendered once per server (it is what every relying party
/// fetches first, and it never changes while the server runs).
pub async fn metadata(State(s): State<AppState>) -> Response {
    let body = s.metadata.get_or_init(|| {
        serde_json::to_vec(&document(&s))
            .expect("the metadata serializes")
            .into()
    });
    let json = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, json)], body.clone()).into_response()
}

fn document(s: &AppState) -> Metadata {
    let iss = &*s.issuer;
    Metadata {
        issuer: iss.to_owned(),
        authorization_endpoint: format!("{iss}/oauth/authorize"),
        token_endpoint: format!("{iss}/oauth/token"),
        introspection_endpoint: format!("{iss}/oauth/introspect"),
        revocation_endpoint: format!("{iss}/oauth/revoke"),
        userinfo_endpoint: format!("{iss}/oauth/userinfo"),
        end_session_endpoint: format!("{iss}/oauth/logout"),
        jwks_uri: format!("{iss}/.well-known/jwks.json"),
        response_types_supported: ["code"],
        response_modes_supported: ["query"],
        grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
        code_challenge_methods_supported: ["S256"],
        // All three endpoints authenticate through `client_auth::authenticate`: `none` is a public client.
        token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        authorization_response_iss_parameter_supported: true,
        // The default scopes, the OpenID Connect claim scopes an app may list besides them (OIDC Core §5.4), and
        // the API scope (README "API access with OAuth tokens").
        scopes_supported: DEFAULT_SCOPES
            .split(' ')
            .chain(["address", "phone", crate::model::app::API_SCOPE])
            .collect(),
        subject_types_supported: ["public", "pairwise"],
        // The algorithms that have keys (`[keys] algorithms`), RS256 first.
        id_token_signing_alg_values_supported: s
            .keys
            .policy()
            .algs
            .iter()
            .map(|a| a.as_str())
            .collect(),
        claims_supported: {
            let mut all = crate::core::claims::supported();
            all.splice(1..1, TOKEN_CLAIMS);
            all
        },
        claims_parameter_supported: false,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
    }
}
