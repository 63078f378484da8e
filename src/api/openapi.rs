//! The OpenAPI 3.1 document served at `/openapi.json`. Every answer's schema is derived from the type its handler
//! really serializes (`RcUser`, `Success<RcApp>`, `TokenResponse`, …), and a JSON request body validated against a
//! schema is documented from that schema ([`documented!`]), so the document follows the code. Tests check that
//! every routed JSON endpoint is documented (below) and that real answers match their schemas
//! (`tests/it/openapi.rs`). The RC routes of `users.rs` and `apps.rs` are documented here; the others next to their
//! handlers.
#![allow(dead_code)] // the functions below exist only to carry `#[utoipa::path]`

use utoipa::OpenApi;

use crate::api::rc::apps::{
    AppIdBody, ApplicationAnswer, CreateAppBody, OauthAppAnswer, OauthAppsAnswer, RcApp,
    UpdateAppBody,
};
use crate::api::rc::error::RcFailure;
use crate::api::rc::users::{
    CreateUserBody, DeleteUserBody, LoginAnswer, LoginBody, LoginFailure, LogoutAnswer, RcUser,
    UpdateUserBody, UserAnswer,
};
use crate::api::rc::{Empty, Success};

/// Declares `$name`, a request body for `/openapi.json` whose schema is `$schema`: the schema a handler checks
/// its body against (an RC [`Shape`](crate::api::rc::schema::Shape), Stack's field table), so the document
/// cannot drift from what is validated. Use it as `request_body(content = inline($name))`.
macro_rules! documented {
    ($name:ident, $schema:expr) => {
        #[doc = concat!("A request body, documented as `", stringify!($schema), "`.")]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema.into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use documented;

#[utoipa::path(post, path = "/api/v1/login", tag = "rc", request_body(content = inline(LoginBody),
    description = "`{\"user\"|\"username\",\"password\",\"code\"?}`; RC's 2FA form `{\"totp\":{\"login\":{…},\"code\"}}` is accepted too"),
    responses((status = 200, body = LoginAnswer), (status = 400, body = RcFailure), (status = 401, body = LoginFailure), (status = 429, body = RcFailure)))]
fn login() {}

#[utoipa::path(post, path = "/api/v1/logout", tag = "rc", security(("rc" = [])),
    responses((status = 200, body = LogoutAnswer), (status = 401, body = RcFailure)))]
fn logout() {}

#[utoipa::path(get, path = "/api/v1/me", tag = "rc", security(("rc" = [])),
    responses((status = 200, body = Success<RcUser>), (status = 401, body = RcFailure)))]
fn me() {}

#[utoipa::path(post, path = "/api/v1/users.create", tag = "rc", security(("rc" = [])), request_body(content = inline(CreateUserBody)),
    responses((status = 200, body = Success<UserAnswer>), (status = 400, body = RcFailure), (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
fn users_create() {}

#[utoipa::path(get, path = "/api/v1/users.info", tag = "rc", security(("rc" = [])),
    params(("userId" = Option<String>, Query), ("username" = Option<String>, Query)),
    responses((status = 200, body = Success<UserAnswer>), (status = 400, body = RcFailure), (status = 401, body = RcFailure)))]
fn users_info() {}

#[utoipa::path(post, path = "/api/v1/users.delete", tag = "rc", security(("rc" = [])), request_body(content = inline(DeleteUserBody)),
    responses((status = 200, body = Success<Empty>), (status = 400, body = RcFailure), (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
fn users_delete() {}

#[utoipa::path(post, path = "/api/v1/users.update", tag = "rc", security(("rc" = [])), request_body(content = inline(UpdateUserBody)),
    responses((status = 200, body = Success<UserAnswer>), (status = 400, body = RcFailure), (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
fn users_update() {}

#[utoipa::path(post, path = "/api/v1/oauth-apps.create", tag = "rc", security(("rc" = [])), request_body(content = inline(CreateAppBody)),
    responses((status = 200, body = Success<ApplicationAnswer>), (status = 400, body = RcFailure), (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
fn oauth_apps_create() {}

#[utoipa::path(get, path = "/api/v1/oauth-apps.list", tag = "rc", security(("rc" = [])),
    responses((status = 200, body = Success<OauthAppsAnswer>), (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
fn oauth_apps_list() {}

#[utoipa::path(get, path = "/api/v1/oauth-apps.get", tag = "rc", security(("rc" = [])),
    params(("_id" = Option<String>, Query), ("clientId" = Option<String>, Query), ("appId" = Option<String>, Query, description = "alias of _id")),
    responses((status = 200, body = Success<OauthAppAnswer>), (status = 400, body = RcFailure), (status = 401, body = RcFailure)))]
fn oauth_apps_get() {}

#[utoipa::path(post, path = "/api/v1/oauth-apps.update", tag = "rc", security(("rc" = [])), request_body(content = inline(UpdateAppBody)),
    responses((status = 200, body = Success<RcApp>), (status = 400, body = RcFailure), (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
fn oauth_apps_update() {}

#[utoipa::path(post, path = "/api/v1/oauth-apps.delete", tag = "rc", security(("rc" = [])), request_body(content = inline(AppIdBody)),
    responses((status = 200, body = bool, content_type = "application/json", description = "the bare JSON `true`"), (status = 400, body = RcFailure), (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
fn oauth_apps_delete() {}

#[utoipa::path(post, path = "/api/v1/oauth-apps.regenerateSecret", tag = "rc", security(("rc" = [])), request_body(content = inline(AppIdBody)),
    responses((status = 200, body = Success<ApplicationAnswer>), (status = 400, body = RcFailure), (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
fn oauth_apps_regenerate_secret() {}

#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = String, content_type = "text/plain"), (status = 503, description = "the store's database does not answer, or the check after start found corruption (the body names it)", body = String, content_type = "text/plain")))]
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
    paths(login, logout, me, users_create, users_info, users_delete, users_update, oauth_apps_create, oauth_apps_list,
          oauth_apps_get, oauth_apps_update, oauth_apps_delete, oauth_apps_regenerate_secret, healthz, metrics),
    modifiers(&RcAuth)
)]
struct ApiDoc;

/// The routes that are not JSON APIs and so are not in the document: the pages and browser redirects (sign-in,
/// consent, RP-initiated logout, federation) and the document itself. Every other route must be documented
/// (tested below).
pub const UNDOCUMENTED: &[&str] = &[
    "/openapi.json",
    "/login",
    "/logout",
    "/dev/callback",
    "/oauth/authorize",
    "/oauth/logout",
    "/login/{service}",
    "/_oauth/{service}",
];

pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api::rc::settings::SettingsDoc::openapi());
    doc.merge(crate::api::rc::two_factor::TwoFactorDoc::openapi());
    doc.merge(crate::api::locoia::custom_auth::LocoiaDoc::openapi());
    doc.merge(crate::api::stack::links::StackDoc::openapi());
    doc.merge(crate::api::stack::connected::ConnectedDoc::openapi());
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
