//! Custom OAuth providers over RC's settings API: `settings.addCustomOAuth`, `settings.removeCustomOAuth`,
//! `settings.refreshOAuthServices`, `settings/:_id` (only the `Accounts_OAuth_Custom-*` keys) and the public
//! service configurations (`settings.oauth`, `service.configurations`), which never carry the secret.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::{OpenApi, ToSchema};

use super::{success, two_factor, Caller, InMethod, RcBody, RcError};
use crate::core::provider;
use crate::error::{Error, Field};
use crate::model::provider::SettingValue;
use crate::model::{Permission, Provider};
use crate::state::AppState;

/// RC's service configuration of a custom provider (`ServiceConfiguration` document), without the secret.
pub fn service_configuration(p: &Provider) -> Value {
    json!({
        "_id": p.id,
        "service": p.service_key(),
        "custom": true,
        "clientId": p.client_id(),
        "serverURL": p.url,
        "tokenPath": p.token_path,
        "identityPath": p.identity_path,
        "authorizePath": p.authorize_path,
        "scope": p.scope,
        "accessTokenParam": p.access_token_param,
        "buttonLabelText": p.button_label_text,
        "buttonLabelColor": p.button_label_color,
        "loginStyle": p.login_style.as_str(),
        "buttonColor": p.button_color,
        "tokenSentVia": p.token_sent_via.as_str(),
        "identityTokenSentVia": p.identity_token_sent_via.as_str(),
        "keyField": p.key_field.as_str(),
        "usernameField": p.username_field,
        "emailField": p.email_field,
        "nameField": p.name_field,
        "avatarField": p.avatar_field,
        "rolesClaim": p.roles_claim,
        "groupsClaim": p.groups_claim,
        "channelsMap": p.groups_channel_map,
        "channelsAdmin": p.channels_admin,
        "mergeUsers": p.merge_users,
        "mergeUsersDistinctServices": p.merge_users_distinct_services,
        "mapChannels": p.map_channels,
        "mergeRoles": p.merge_roles,
        "rolesToSync": p.roles_to_sync,
        "showButton": p.show_button,
    })
}

/// Why a body has no usable `name`.
enum BadName {
    Missing,
    /// An ajv-style reason.
    Invalid(&'static str),
}

impl From<BadName> for RcError {
    fn from(b: BadName) -> Self {
        match b {
            BadName::Missing => RcError::NameRequired,
            BadName::Invalid(reason) => RcError::InvalidParams(reason.into()),
        }
    }
}

/// RC reads `bodyParams.name?.trim()` without a schema: missing or blank → `error-name-param-not-provided`.
fn name_of(body: &Value) -> Result<String, BadName> {
    let Value::Object(o) = body else {
        return Err(BadName::Invalid("must be object"));
    };
    match o.get("name") {
        None | Some(Value::Null) => Err(BadName::Missing),
        Some(Value::String(n)) if n.trim().is_empty() => Err(BadName::Missing),
        Some(Value::String(n)) => Ok(n.clone()),
        Some(_) => Err(BadName::Invalid("must be string")),
    }
}

/// Adds a provider with RC's default settings (disabled); an existing name is left as it is.
#[utoipa::path(post, path = "/api/v1/settings.addCustomOAuth", tag = "rc", security(("rc" = [])),
    request_body = NameRequest,
    params(("x-2fa-code" = Option<String>, Header), ("x-2fa-method" = Option<String>, Header, description = "totp | password")),
    responses((status = 200, body = crate::api::openapi::Success), (status = 400, body = crate::api::openapi::RcErrorBody),
              (status = 401, body = crate::api::openapi::RcErrorBody), (status = 403, body = crate::api::openapi::RcErrorBody)))]
pub async fn add_custom_oauth(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::AddOauthService)?;
    two_factor::require(&s, &caller, &headers).await?;
    let name = name_of(&body)?;
    if crate::model::provider::normalize_name(&name).is_empty() {
        return Err(RcError::NameRequired);
    }
    provider::add(&s.store, &s.clock, &name)
        .await
        .in_method("addOAuthService")?;
    Ok(success(json!({})))
}

/// Removes a provider and its links; an unknown name succeeds, as in RC.
#[utoipa::path(post, path = "/api/v1/settings.removeCustomOAuth", tag = "rc", security(("rc" = [])),
    request_body = NameRequest,
    params(("x-2fa-code" = Option<String>, Header), ("x-2fa-method" = Option<String>, Header)),
    responses((status = 200, body = crate::api::openapi::Success), (status = 400, body = crate::api::openapi::RcErrorBody),
              (status = 401, body = crate::api::openapi::RcErrorBody), (status = 403, body = crate::api::openapi::RcErrorBody)))]
pub async fn remove_custom_oauth(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::AddOauthService)?;
    two_factor::require(&s, &caller, &headers).await?;
    let name = name_of(&body)?;
    if crate::model::provider::normalize_name(&name).is_empty() {
        return Ok(success(json!({})));
    }
    provider::remove(&s.store, &name)
        .await
        .in_method("removeOAuthService")?;
    Ok(success(json!({})))
}

/// RC rebuilds its service configurations here; Latchkey derives them from the providers on every read, so
/// there is nothing to rebuild and this only checks the caller.
#[utoipa::path(post, path = "/api/v1/settings.refreshOAuthServices", tag = "rc", security(("rc" = [])),
    params(("x-2fa-code" = Option<String>, Header), ("x-2fa-method" = Option<String>, Header)),
    responses((status = 200, body = crate::api::openapi::Success), (status = 400, body = crate::api::openapi::RcErrorBody),
              (status = 401, body = crate::api::openapi::RcErrorBody), (status = 403, body = crate::api::openapi::RcErrorBody)))]
pub async fn refresh_oauth_services(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, RcError> {
    caller.require(Permission::AddOauthService)?;
    two_factor::require(&s, &caller, &headers).await?;
    Ok(success(json!({})))
}

fn to_json(v: SettingValue) -> Value {
    match v {
        SettingValue::Bool(b) => Value::Bool(b),
        SettingValue::Str(s) => Value::String(s),
    }
}

/// Names the setting in the error, as `settings/:_id` answers.
fn in_setting(id: &str) -> impl Fn(Error) -> RcError + '_ {
    move |err| RcError::Setting {
        id: id.to_owned(),
        err,
    }
}

/// One provider setting; a set secret reads as `********`.
#[utoipa::path(get, path = "/api/v1/settings/{_id}", tag = "rc", security(("rc" = [])),
    params(("_id" = String, Path, description = "an `Accounts_OAuth_Custom-<Name>[-suffix]` key")),
    responses((status = 200, body = SettingResponse), (status = 400, body = crate::api::openapi::RcErrorBody),
              (status = 401, body = crate::api::openapi::RcErrorBody), (status = 403, body = crate::api::openapi::RcErrorBody)))]
pub async fn get_setting(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, RcError> {
    caller.require(Permission::ViewPrivilegedSetting)?;
    let value = provider::setting(&s.store, &id).map_err(in_setting(&id))?;
    Ok(success(json!({"_id": id, "value": to_json(value)})))
}

/// Writes one provider setting, checked against RC's type and enum. Writing `********` to `-secret` keeps it.
#[utoipa::path(post, path = "/api/v1/settings/{_id}", tag = "rc", security(("rc" = [])),
    params(("_id" = String, Path), ("x-2fa-code" = Option<String>, Header), ("x-2fa-method" = Option<String>, Header)),
    request_body = SettingValueRequest,
    responses((status = 200, body = crate::api::openapi::Success), (status = 400, body = crate::api::openapi::RcErrorBody),
              (status = 401, body = crate::api::openapi::RcErrorBody), (status = 403, body = crate::api::openapi::RcErrorBody)))]
pub async fn set_setting(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::EditPrivilegedSetting)?;
    two_factor::require(&s, &caller, &headers).await?;
    let Value::Object(o) = &body else {
        return Err(RcError::InvalidParams("must be object".into()));
    };
    let value = match o.get("value") {
        None => {
            return Err(RcError::InvalidParams(
                "must have required property 'value'".into(),
            ))
        }
        Some(Value::Bool(b)) => SettingValue::Bool(*b),
        Some(Value::String(v)) => SettingValue::Str(v.clone()),
        Some(_) => {
            // Numbers, null, arrays and objects fit no provider setting; say which type it needs.
            provider::setting(&s.store, &id).map_err(in_setting(&id))?;
            return Err(in_setting(&id)(Error::invalid(
                Field::SettingValue,
                "must be a boolean or a string, as the setting's type",
            )));
        }
    };
    provider::set_setting(s.providers(), &id, value)
        .await
        .map_err(in_setting(&id))?;
    Ok(success(json!({})))
}

fn enabled_configurations(s: &AppState) -> crate::error::Result<Vec<Value>> {
    Ok(provider::enabled(&s.store)?
        .iter()
        .map(service_configuration)
        .collect())
}

/// The enabled providers as RC service configurations, for login pages; public, never the secret.
#[utoipa::path(get, path = "/api/v1/settings.oauth", tag = "rc",
    responses((status = 200, body = ServicesResponse)))]
pub async fn settings_oauth(State(s): State<AppState>) -> Result<Response, RcError> {
    Ok(success(json!({"services": enabled_configurations(&s)?})))
}

/// The same configurations under RC's `service.configurations` name.
#[utoipa::path(get, path = "/api/v1/service.configurations", tag = "rc",
    responses((status = 200, body = ConfigurationsResponse)))]
pub async fn service_configurations(State(s): State<AppState>) -> Result<Response, RcError> {
    Ok(success(
        json!({"configurations": enabled_configurations(&s)?}),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct NameRequest {
    /// Any text; RC-normalized (`"My IdP"` → `Myidp`).
    name: String,
}

#[derive(Serialize, ToSchema)]
pub struct SettingValueRequest {
    /// A boolean or a string, as the setting's type.
    #[schema(value_type = Object)]
    value: Value,
}

#[derive(Serialize, ToSchema)]
pub struct SettingResponse {
    #[serde(rename = "_id")]
    id: String,
    #[schema(value_type = Object)]
    value: Value,
    success: bool,
}

/// A custom provider as RC's service configuration.
#[derive(Serialize, ToSchema)]
pub struct ServiceConfiguration {
    #[serde(rename = "_id")]
    id: String,
    /// The lowercase service key.
    service: String,
    custom: bool,
    #[serde(rename = "clientId")]
    client_id: String,
    #[serde(rename = "serverURL")]
    server_url: String,
    #[serde(rename = "tokenPath")]
    token_path: String,
    #[serde(rename = "identityPath")]
    identity_path: String,
    #[serde(rename = "authorizePath")]
    authorize_path: String,
    scope: String,
    #[serde(rename = "loginStyle")]
    login_style: String,
    #[serde(rename = "tokenSentVia")]
    token_sent_via: String,
    #[serde(rename = "identityTokenSentVia")]
    identity_token_sent_via: String,
    #[serde(rename = "keyField")]
    key_field: String,
    #[serde(rename = "usernameField")]
    username_field: String,
    #[serde(rename = "emailField")]
    email_field: String,
    #[serde(rename = "nameField")]
    name_field: String,
    #[serde(rename = "avatarField")]
    avatar_field: String,
    #[serde(rename = "mergeUsers")]
    merge_users: bool,
    #[serde(rename = "showButton")]
    show_button: bool,
    #[serde(rename = "buttonLabelText")]
    button_label_text: String,
    #[serde(rename = "buttonLabelColor")]
    button_label_color: String,
    #[serde(rename = "buttonColor")]
    button_color: String,
    /// RC's remaining fields (`accessTokenParam`, `rolesClaim`, `channelsMap`, ...) follow RC's names.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    rest: Map<String, Value>,
}

#[derive(Serialize, ToSchema)]
pub struct ServicesResponse {
    services: Vec<ServiceConfiguration>,
    success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ConfigurationsResponse {
    configurations: Vec<ServiceConfiguration>,
    success: bool,
}

#[derive(OpenApi)]
#[openapi(paths(
    add_custom_oauth,
    remove_custom_oauth,
    refresh_oauth_services,
    get_setting,
    set_setting,
    settings_oauth,
    service_configurations
))]
pub struct SettingsDoc;
