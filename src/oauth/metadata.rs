//! RFC 8414 authorization-server metadata.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::model::app::DEFAULT_SCOPES;
use crate::state::AppState;

/// What `client_auth::authenticate` accepts, for every endpoint that calls it.
const CLIENT_AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// RFC 8414 §2 metadata. The fields are in sorted order, the order this answer has always been written in.
#[derive(Serialize, ToSchema)]
pub struct Metadata {
    authorization_endpoint: String,
    authorization_response_iss_parameter_supported: bool,
    code_challenge_methods_supported: [&'static str; 1],
    grant_types_supported: [&'static str; 3],
    introspection_endpoint: String,
    introspection_endpoint_auth_methods_supported: [&'static str; 3],
    issuer: String,
    response_modes_supported: [&'static str; 1],
    response_types_supported: [&'static str; 1],
    revocation_endpoint: String,
    revocation_endpoint_auth_methods_supported: [&'static str; 3],
    scopes_supported: Vec<&'static str>,
    token_endpoint: String,
    token_endpoint_auth_methods_supported: [&'static str; 3],
    userinfo_endpoint: String,
}

pub async fn metadata(State(s): State<AppState>) -> Json<Metadata> {
    let iss = &*s.issuer;
    Json(Metadata {
        issuer: iss.to_owned(),
        authorization_endpoint: format!("{iss}/oauth/authorize"),
        token_endpoint: format!("{iss}/oauth/token"),
        introspection_endpoint: format!("{iss}/oauth/introspect"),
        revocation_endpoint: format!("{iss}/oauth/revoke"),
        userinfo_endpoint: format!("{iss}/oauth/userinfo"),
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
    })
}
