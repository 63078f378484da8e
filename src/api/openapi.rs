//! The OpenAPI 3.1 document served at `/openapi.json`. Handlers parse JSON by hand (to answer in each dialect's
//! own error format), so their shapes are declared here with utoipa; a test checks that every routed JSON
//! endpoint is documented.
#![allow(dead_code)] // the functions below exist only to carry `#[utoipa::path]`

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// RC error body.
#[derive(Serialize, ToSchema)]
pub struct RcErrorBody {
    success: bool,
    error: String,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    details: Option<serde_json::Value>,
}

#[derive(Serialize, ToSchema)]
pub struct LoginRequest {
    /// Username or email (`username` is accepted too).
    user: Option<String>,
    username: Option<String>,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Email {
    address: String,
    verified: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RcUser {
    #[serde(rename = "_id")]
    id: String,
    username: String,
    name: String,
    emails: Vec<Email>,
    roles: Vec<String>,
    active: bool,
}

#[derive(Serialize, ToSchema)]
pub struct LoginData {
    #[serde(rename = "userId")]
    user_id: String,
    #[serde(rename = "authToken")]
    auth_token: String,
    me: RcUser,
}

#[derive(Serialize, ToSchema)]
pub struct LoginResponse {
    status: String,
    data: LoginData,
}

#[derive(Serialize, ToSchema)]
pub struct CreateUserRequest {
    username: String,
    email: String,
    password: String,
    name: Option<String>,
    roles: Option<Vec<String>>,
    active: Option<bool>,
    verified: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UserResponse {
    user: RcUser,
    success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct UserIdRequest {
    #[serde(rename = "userId")]
    user_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct Success {
    success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedBy {
    #[serde(rename = "_id")]
    id: String,
    username: String,
}

/// An OAuth app as RC renders it, plus Latchkey's fields. `clientSecret` only on create/regenerateSecret.
#[derive(Serialize, ToSchema)]
pub struct OauthApp {
    #[serde(rename = "_id")]
    id: String,
    name: String,
    active: bool,
    #[serde(rename = "clientId")]
    client_id: String,
    #[serde(rename = "clientSecret")]
    client_secret: Option<String>,
    /// Comma-joined redirect URIs.
    #[serde(rename = "redirectUri")]
    redirect_uri: String,
    #[serde(rename = "_createdAt")]
    created_at: String,
    #[serde(rename = "_updatedAt")]
    updated_at: String,
    #[serde(rename = "_createdBy")]
    created_by: CreatedBy,
    /// `confidential` or `public`.
    #[serde(rename = "clientType")]
    client_type: String,
    #[serde(rename = "grantTypes")]
    grant_types: Vec<String>,
    /// Space-separated allowed scopes.
    scopes: String,
    #[serde(rename = "skipConsent")]
    skip_consent: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CreateAppRequest {
    name: String,
    active: bool,
    /// One or more URIs separated by commas or newlines.
    #[serde(rename = "redirectUri")]
    redirect_uri: String,
    #[serde(rename = "clientType")]
    client_type: Option<String>,
    #[serde(rename = "grantTypes")]
    grant_types: Option<Vec<String>>,
    scopes: Option<String>,
    #[serde(rename = "skipConsent")]
    skip_consent: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct UpdateAppRequest {
    #[serde(rename = "appId")]
    app_id: String,
    name: String,
    active: bool,
    #[serde(rename = "redirectUri")]
    redirect_uri: String,
    #[serde(rename = "clientType")]
    client_type: Option<String>,
    #[serde(rename = "grantTypes")]
    grant_types: Option<Vec<String>>,
    scopes: Option<String>,
    #[serde(rename = "skipConsent")]
    skip_consent: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct AppIdRequest {
    #[serde(rename = "appId")]
    app_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApplicationResponse {
    application: OauthApp,
    success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OauthAppResponse {
    #[serde(rename = "oauthApp")]
    oauth_app: OauthApp,
    success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct OauthAppsResponse {
    #[serde(rename = "oauthApps")]
    oauth_apps: Vec<OauthApp>,
    success: bool,
}

#[utoipa::path(post, path = "/api/v1/login", tag = "rc", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 400, body = RcErrorBody), (status = 401, description = "bad credentials"), (status = 429, body = RcErrorBody)))]
fn login() {}

#[utoipa::path(post, path = "/api/v1/logout", tag = "rc", security(("rc" = [])),
    responses((status = 200, description = "logged out"), (status = 401, body = RcErrorBody)))]
fn logout() {}

#[utoipa::path(get, path = "/api/v1/me", tag = "rc", security(("rc" = [])),
    responses((status = 200, body = RcUser), (status = 401, body = RcErrorBody)))]
fn me() {}

#[utoipa::path(post, path = "/api/v1/users.create", tag = "rc", security(("rc" = [])), request_body = CreateUserRequest,
    responses((status = 200, body = UserResponse), (status = 400, body = RcErrorBody), (status = 401, body = RcErrorBody), (status = 403, body = RcErrorBody)))]
fn users_create() {}

#[utoipa::path(get, path = "/api/v1/users.info", tag = "rc", security(("rc" = [])),
    params(("userId" = Option<String>, Query), ("username" = Option<String>, Query)),
    responses((status = 200, body = UserResponse), (status = 400, body = RcErrorBody), (status = 401, body = RcErrorBody)))]
fn users_info() {}

#[utoipa::path(post, path = "/api/v1/users.delete", tag = "rc", security(("rc" = [])), request_body = UserIdRequest,
    responses((status = 200, body = Success), (status = 400, body = RcErrorBody), (status = 401, body = RcErrorBody), (status = 403, body = RcErrorBody)))]
fn users_delete() {}

#[utoipa::path(post, path = "/api/v1/oauth-apps.create", tag = "rc", security(("rc" = [])), request_body = CreateAppRequest,
    responses((status = 200, body = ApplicationResponse), (status = 400, body = RcErrorBody), (status = 401, body = RcErrorBody), (status = 403, body = RcErrorBody)))]
fn oauth_apps_create() {}

#[utoipa::path(get, path = "/api/v1/oauth-apps.list", tag = "rc", security(("rc" = [])),
    responses((status = 200, body = OauthAppsResponse), (status = 401, body = RcErrorBody), (status = 403, body = RcErrorBody)))]
fn oauth_apps_list() {}

#[utoipa::path(get, path = "/api/v1/oauth-apps.get", tag = "rc", security(("rc" = [])),
    params(("_id" = Option<String>, Query), ("clientId" = Option<String>, Query), ("appId" = Option<String>, Query, description = "alias of _id")),
    responses((status = 200, body = OauthAppResponse), (status = 400, body = RcErrorBody), (status = 401, body = RcErrorBody)))]
fn oauth_apps_get() {}

#[utoipa::path(post, path = "/api/v1/oauth-apps.update", tag = "rc", security(("rc" = [])), request_body = UpdateAppRequest,
    responses((status = 200, body = OauthApp), (status = 400, body = RcErrorBody), (status = 401, body = RcErrorBody), (status = 403, body = RcErrorBody)))]
fn oauth_apps_update() {}

#[utoipa::path(post, path = "/api/v1/oauth-apps.delete", tag = "rc", security(("rc" = [])), request_body = AppIdRequest,
    responses((status = 200, body = bool, description = "the bare JSON `true`"), (status = 400, body = RcErrorBody), (status = 401, body = RcErrorBody), (status = 403, body = RcErrorBody)))]
fn oauth_apps_delete() {}

#[utoipa::path(post, path = "/api/v1/oauth-apps.regenerateSecret", tag = "rc", security(("rc" = [])), request_body = AppIdRequest,
    responses((status = 200, body = ApplicationResponse), (status = 400, body = RcErrorBody), (status = 401, body = RcErrorBody), (status = 403, body = RcErrorBody)))]
fn oauth_apps_regenerate_secret() {}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = String, content_type = "text/plain")))]
fn healthz() {}

#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, body = String, content_type = "text/plain")))]
fn metrics() {}

struct RcAuth;

impl utoipa::Modify for RcAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "rc",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Auth-Token",
                "Rocket.Chat login token; send X-User-Id alongside",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Latchkey", description = "Self-hosted OAuth 2.0 authorization server: admin and OAuth APIs"),
    paths(login, logout, me, users_create, users_info, users_delete, oauth_apps_create, oauth_apps_list,
          oauth_apps_get, oauth_apps_update, oauth_apps_delete, oauth_apps_regenerate_secret, healthz, metrics),
    modifiers(&RcAuth)
)]
struct ApiDoc;

/// The routes that are not JSON APIs and so are not in the document: the pages and browser redirects (sign-in,
/// consent, federation) and the document itself. Every other route must be documented (tested below).
pub const UNDOCUMENTED: &[&str] = &[
    "/openapi.json",
    "/login",
    "/logout",
    "/dev/callback",
    "/oauth/authorize",
    "/login/{service}",
    "/_oauth/{service}",
];

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api::rc::settings::SettingsDoc::openapi());
    doc.merge(crate::api::rc::two_factor::TwoFactorDoc::openapi());
    doc.merge(crate::api::locoia::custom_auth::LocoiaDoc::openapi());
    doc.merge(crate::api::stack::links::StackDoc::openapi());
    doc.merge(crate::oauth::openapi::OAuthDoc::openapi());
    doc
}

#[cfg(test)]
mod tests {
    use super::UNDOCUMENTED;

    /// The routes come from the table the router is built from ([`crate::api::routes`]), so a new route fails
    /// here until it is documented (or, for a page, listed in [`UNDOCUMENTED`]); and the document names no route
    /// that is not served.
    #[test]
    fn every_routed_json_endpoint_is_documented_and_nothing_else() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let routes = crate::api::routes();
        let table = routes.table();
        let undocumented: Vec<String> = table
            .iter()
            .filter(|(_, path)| !UNDOCUMENTED.contains(path))
            .filter(|(method, path)| {
                paths
                    .get(*path)
                    .and_then(|p| p.get(method.as_str().to_ascii_lowercase()))
                    .is_none()
            })
            .map(|(method, path)| format!("{method} {path}"))
            .collect();
        assert!(
            undocumented.is_empty(),
            "not in /openapi.json: {undocumented:?}"
        );
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                let served = table
                    .iter()
                    .any(|(m, p)| p == path && m.as_str().eq_ignore_ascii_case(method));
                assert!(served, "documented but not routed: {method} {path}");
            }
        }
        for page in UNDOCUMENTED {
            assert!(table.iter().any(|(_, p)| p == page), "{page} is not routed");
            assert!(
                !paths.contains_key(*page),
                "{page} is documented; drop it from UNDOCUMENTED"
            );
        }
    }

    #[test]
    fn is_openapi_3_1_and_lists_the_rc_routes() {
        let doc = serde_json::to_value(super::document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for p in [
            "/api/v1/login",
            "/api/v1/oauth-apps.create",
            "/api/v1/oauth-apps.get",
            "/api/v1/users.delete",
        ] {
            assert!(doc["paths"].get(p).is_some(), "{p} undocumented");
        }
    }
}
