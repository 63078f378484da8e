//! RFC 8414 authorization-server metadata.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::model::app::DEFAULT_SCOPES;
use crate::state::AppState;

/// What `client_auth::authenticate` accepts, for every endpoint that calls it.
const CLIENT_AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

pub async fn metadata(State(s): State<AppState>) -> Json<Value> {
    let iss = &*s.issuer;
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "userinfo_endpoint": format!("{iss}/oauth/userinfo"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        // All three endpoints authenticate through `client_auth::authenticate`: `none` is a public client.
        "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "authorization_response_iss_parameter_supported": true,
        // The default scopes, and the API scope an app may list (README "API access with OAuth tokens").
        "scopes_supported": DEFAULT_SCOPES.split(' ').chain([crate::model::app::API_SCOPE]).collect::<Vec<_>>(),
    }))
}
