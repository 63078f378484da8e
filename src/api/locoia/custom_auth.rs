//! `PUT`/`GET /v1/connectors/{connector_id}/custom_auth`: a provider's named client credentials. The first entry
//! is the one sign-in uses (RC's `-id`/`-secret`); secrets are sealed on the way in and never come back out.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{OpenApi, ToSchema};

use super::{Admin, LocoiaError, LocoiaErrorBody, LocoiaJson};
use crate::core::provider;
use crate::core::two_factor::{self, Fallback};
use crate::model::provider::{Credential, CredentialInput};
use crate::model::{Provider, User};
use crate::state::AppState;

/// The body's part at `path` is not what the route takes.
fn bad(path: String, why: &str) -> LocoiaError {
    LocoiaError::InvalidRequest(format!("{path} {why}"))
}

fn string_field(o: &Map<String, Value>, i: usize, k: &str) -> Result<String, LocoiaError> {
    match o.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(bad(format!("oauth2[{i}].{k}"), "is required")),
        Some(_) => Err(bad(format!("oauth2[{i}].{k}"), "must be a string")),
    }
}

/// Parses `{"oauth2":[{"client_id","client_secret","name","scopes"?}]}`; other keys are ignored.
fn parse(body: &Value) -> Result<Vec<CredentialInput>, LocoiaError> {
    let list = match body.get("oauth2") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => return Err(bad("oauth2".into(), "is required")),
        Some(_) => return Err(bad("oauth2".into(), "must be an array")),
    };
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            let Value::Object(o) = entry else {
                return Err(bad(format!("oauth2[{i}]"), "must be an object"));
            };
            let scopes = match o.get("scopes") {
                None | Some(Value::Null) => None,
                Some(Value::Array(a)) => Some(
                    a.iter()
                        .map(|s| s.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            bad(format!("oauth2[{i}].scopes"), "must be an array of strings")
                        })?,
                ),
                Some(_) => {
                    return Err(bad(
                        format!("oauth2[{i}].scopes"),
                        "must be an array of strings",
                    ))
                }
            };
            Ok(CredentialInput {
                client_id: string_field(o, i, "client_id")?,
                client_secret: string_field(o, i, "client_secret")?,
                name: string_field(o, i, "name")?,
                scopes,
            })
        })
        .collect()
}

/// The list as Locoia shows it: never a secret.
fn render(p: &Provider) -> CustomAuth {
    let view = |c: &Credential| CredentialView {
        client_id: c.client_id.clone(),
        name: c.name.clone(),
        scopes: c.scopes.clone(),
    };
    CustomAuth {
        oauth2: p.credentials.iter().map(view).collect(),
    }
}

/// The second factor the same change needs through RC's settings API (`x-2fa-code` + `x-2fa-method`).
async fn require_2fa(s: &AppState, user: &User, headers: &HeaderMap) -> Result<(), LocoiaError> {
    let code = crate::api::rc::two_factor::header_code(headers);
    two_factor::check(s.factors(), user, code, Fallback::Configured)
        .await
        .map_err(LocoiaError::TwoFactor)
}

/// Replaces the connector's credentials. `scopes` omitted → the provider's `-scope` applies. Needs the 2FA
/// headers, as the same change through RC's settings API does; the body is checked first, so a bad body uses no
/// code.
#[utoipa::path(put, path = "/v1/connectors/{connector_id}/custom_auth", tag = "locoia", security(("bearer" = [])),
    params(("connector_id" = String, Path, description = "the provider's service key, e.g. `myidp`"),
           ("x-2fa-code" = Option<String>, Header, description = "the password, or a TOTP or backup code"),
           ("x-2fa-method" = Option<String>, Header, description = "password | totp")),
    request_body = CustomAuthRequest,
    responses((status = 200, body = CustomAuth), (status = 400, body = LocoiaErrorBody),
              (status = 401, body = LocoiaErrorBody), (status = 403, body = LocoiaErrorBody),
              (status = 404, body = LocoiaErrorBody), (status = 413, body = LocoiaErrorBody)))]
pub async fn put(
    State(s): State<AppState>,
    Admin(user): Admin,
    Path(connector_id): Path<String>,
    headers: HeaderMap,
    LocoiaJson(body): LocoiaJson,
) -> Result<Response, LocoiaError> {
    provider::get(&s.store, &connector_id).await?;
    let list = parse(&body)?;
    require_2fa(&s, &user, &headers).await?;
    let p = provider::put_custom_auth(s.providers(), &connector_id, list).await?;
    Ok(Json(render(&p)).into_response())
}

/// The connector's credentials, without secrets.
#[utoipa::path(get, path = "/v1/connectors/{connector_id}/custom_auth", tag = "locoia", security(("bearer" = [])),
    params(("connector_id" = String, Path)),
    responses((status = 200, body = CustomAuth), (status = 401, body = LocoiaErrorBody),
              (status = 403, body = LocoiaErrorBody), (status = 404, body = LocoiaErrorBody)))]
pub async fn get(
    State(s): State<AppState>,
    _admin: Admin,
    Path(connector_id): Path<String>,
) -> Result<Response, LocoiaError> {
    let p = provider::get(&s.store, &connector_id).await?;
    Ok(Json(render(&p)).into_response())
}

/// The body of `PUT`. [`parse`] reads it by hand, for Locoia's messages (`oauth2[0].name is required`); this type
/// documents what it reads. Other keys are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CustomAuthRequest {
    oauth2: Vec<CredentialIn>,
}

/// One credential of [`CustomAuthRequest`].
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CredentialIn {
    client_id: String,
    client_secret: String,
    name: String,
    scopes: Option<Vec<String>>,
}

/// The connector's credentials, as both routes answer them: never a secret.
#[derive(Serialize, ToSchema)]
pub struct CustomAuth {
    oauth2: Vec<CredentialView>,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialView {
    client_id: String,
    name: String,
    /// Present when set on this credential.
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a login authToken or a Latchkey access token"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(paths(put, get), modifiers(&BearerAuth))]
pub struct LocoiaDoc;
