//! RFC 8414 authorization-server metadata.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::model::app::DEFAULT_SCOPES;
use crate::state::AppState;

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
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": DEFAULT_SCOPES.split(' ').collect::<Vec<_>>(),
    }))
}
