//! OAuth providers over RC's settings API: `settings.addCustomOAuth`, `settings.removeCustomOAuth`,
//! `settings.refreshOAuthServices`, `settings/:_id` (the `Accounts_OAuth_Custom-*` keys and RC's built-in OAuth
//! keys, `model::builtin_setting`) and the public service configurations (`settings.oauth`,
//! `service.configurations`), which never carry the secret: a custom provider in RC's custom shape, a built-in
//! service in the shape RC gives it (`super::builtin`).

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::builtin::{self, Configuration, LoginService};
use super::error::RcFailure;
use super::{success, two_factor, Caller, Empty, InMethod, RcBody, RcError, Success};
use crate::core::provider;
use crate::error::{Error, Field};
use crate::model::provider::SettingValue;
use crate::model::{Permission, Provider};
use crate::state::AppState;

/// RC's service configuration of a custom provider (`ServiceConfiguration` document), without the secret.
#[derive(Serialize, ToSchema)]
pub struct ServiceConfiguration {
    #[serde(rename = "_id")]
    id: String,
    /// The lowercase service key.
    service: String,
    /// Always true.
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
    #[serde(rename = "accessTokenParam")]
    access_token_param: String,
    #[serde(rename = "buttonLabelText")]
    button_label_text: String,
    #[serde(rename = "buttonLabelColor")]
    button_label_color: String,
    #[serde(rename = "loginStyle")]
    login_style: &'static str,
    #[serde(rename = "buttonColor")]
    button_color: String,
    #[serde(rename = "tokenSentVia")]
    token_sent_via: &'static str,
    #[serde(rename = "identityTokenSentVia")]
    identity_token_sent_via: &'static str,
    #[serde(rename = "keyField")]
    key_field: &'static str,
    #[serde(rename = "usernameField")]
    username_field: String,
    #[serde(rename = "emailField")]
    email_field: String,
    #[serde(rename = "nameField")]
    name_field: String,
    #[serde(rename = "avatarField")]
    avatar_field: String,
    #[serde(rename = "rolesClaim")]
    roles_claim: String,
    #[serde(rename = "groupsClaim")]
    groups_claim: String,
    #[serde(rename = "channelsMap")]
    channels_map: String,
    #[serde(rename = "channelsAdmin")]
    channels_admin: String,
    #[serde(rename = "mergeUsers")]
    merge_users: bool,
    #[serde(rename = "mergeUsersDistinctServices")]
    merge_users_distinct_services: bool,
    #[serde(rename = "mapChannels")]
    map_channels: bool,
    #[serde(rename = "mergeRoles")]
    merge_roles: bool,
    #[serde(rename = "rolesToSync")]
    roles_to_sync: String,
    #[serde(rename = "showButton")]
    show_button: bool,
}

/// The service configuration of `p`.
pub fn service_configuration(p: &Provider) -> ServiceConfiguration {
    ServiceConfiguration {
        id: p.id.clone(),
        service: p.service_key(),
        custom: true,
        client_id: p.client_id().to_owned(),
        server_url: p.url.clone(),
        token_path: p.token_path.clone(),
        identity_path: p.identity_path.clone(),
        authorize_path: p.authorize_path.clone(),
        scope: p.scope.clone(),
        access_token_param: p.access_token_param.clone(),
        button_label_text: p.button_label_text.clone(),
        button_label_color: p.button_label_color.clone(),
        login_style: p.login_style.as_str(),
        button_color: p.button_color.clone(),
        token_sent_via: p.token_sent_via.as_str(),
        identity_token_sent_via: p.identity_token_sent_via.as_str(),
        key_field: p.key_field.as_str(),
        username_field: p.username_field.clone(),
        email_field: p.email_field.clone(),
        name_field: p.name_field.clone(),
        avatar_field: p.avatar_field.clone(),
        roles_claim: p.roles_claim.clone(),
        groups_claim: p.groups_claim.clone(),
        channels_map: p.groups_channel_map.clone(),
        channels_admin: p.channels_admin.clone(),
        merge_users: p.merge_users,
        merge_users_distinct_services: p.merge_users_distinct_services,
        map_channels: p.map_channels,
        merge_roles: p.merge_roles,
        roles_to_sync: p.roles_to_sync.clone(),
        show_button: p.show_button,
    }
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
    responses((status = 200, body = Success<Empty>), (status = 400, body = RcFailure),
              (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
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
    Ok(success(Empty {}))
}

/// Removes a provider and its links; an unknown name succeeds, as in RC.
#[utoipa::path(post, path = "/api/v1/settings.removeCustomOAuth", tag = "rc", security(("rc" = [])),
    request_body = NameRequest,
    params(("x-2fa-code" = Option<String>, Header), ("x-2fa-method" = Option<String>, Header)),
    responses((status = 200, body = Success<Empty>), (status = 400, body = RcFailure),
              (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
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
        return Ok(success(Empty {}));
    }
    provider::remove(&s.store, &name)
        .await
        .in_method("removeOAuthService")?;
    Ok(success(Empty {}))
}

/// RC rebuilds its service configurations here; Latchkey derives them from the providers on every read, so
/// there is nothing to rebuild and this only checks the caller.
#[utoipa::path(post, path = "/api/v1/settings.refreshOAuthServices", tag = "rc", security(("rc" = [])),
    params(("x-2fa-code" = Option<String>, Header), ("x-2fa-method" = Option<String>, Header)),
    responses((status = 200, body = Success<Empty>), (status = 400, body = RcFailure),
              (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
pub async fn refresh_oauth_services(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, RcError> {
    caller.require(Permission::AddOauthService)?;
    two_factor::require(&s, &caller, &headers).await?;
    Ok(success(Empty {}))
}

/// A setting's value on the wire: a boolean or a string, as the setting's type.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SettingJson {
    Bool(bool),
    Str(String),
}

impl From<SettingValue> for SettingJson {
    fn from(v: SettingValue) -> Self {
        match v {
            SettingValue::Bool(b) => SettingJson::Bool(b),
            SettingValue::Str(s) => SettingJson::Str(s),
        }
    }
}

/// `settings/:_id`'s answer (in [`Success`]); a set secret reads `********`.
#[derive(Serialize, ToSchema)]
pub struct SettingAnswer {
    #[serde(rename = "_id")]
    id: String,
    value: SettingJson,
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
    params(("_id" = String, Path, description = "an `Accounts_OAuth_Custom-<Name>[-suffix]` key or a built-in OAuth key (`Accounts_OAuth_Google`, `API_Gitlab_URL`, `Accounts_OAuth_Proxy_services`, …)")),
    responses((status = 200, body = Success<SettingAnswer>), (status = 400, body = RcFailure),
              (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
pub async fn get_setting(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, RcError> {
    caller.require(Permission::ViewPrivilegedSetting)?;
    let value = provider::setting(&s.store, &id)
        .await
        .map_err(in_setting(&id))?;
    let value = value.into();
    Ok(success(SettingAnswer { id, value }))
}

/// Writes one provider setting, checked against RC's type and enum. Writing `********` to `-secret` keeps it.
#[utoipa::path(post, path = "/api/v1/settings/{_id}", tag = "rc", security(("rc" = [])),
    params(("_id" = String, Path), ("x-2fa-code" = Option<String>, Header), ("x-2fa-method" = Option<String>, Header)),
    request_body = SettingValueRequest,
    responses((status = 200, body = Success<Empty>), (status = 400, body = RcFailure),
              (status = 401, body = RcFailure), (status = 403, body = RcFailure)))]
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
            provider::setting(&s.store, &id)
                .await
                .map_err(in_setting(&id))?;
            return Err(in_setting(&id)(Error::invalid(
                Field::SettingValue,
                "must be a boolean or a string, as the setting's type",
            )));
        }
    };
    provider::set_setting(s.providers(), &id, value)
        .await
        .map_err(in_setting(&id))?;
    Ok(success(Empty {}))
}

/// The enabled providers, each as RC's `settings.oauth` shows it.
async fn login_services(s: &AppState) -> crate::error::Result<Vec<LoginService>> {
    Ok(provider::enabled(&s.store)
        .await?
        .iter()
        .map(|p| match builtin::configuration(p) {
            Some(c) => builtin::login_service(c),
            None => LoginService::Custom(Box::new(service_configuration(p))),
        })
        .collect())
}

/// The enabled providers as RC service configurations, for login pages; public, never the secret.
#[utoipa::path(get, path = "/api/v1/settings.oauth", tag = "rc",
    responses((status = 200, body = Success<ServicesAnswer>)))]
pub async fn settings_oauth(State(s): State<AppState>) -> Result<Response, RcError> {
    Ok(success(ServicesAnswer {
        services: login_services(&s).await?,
    }))
}

/// The stored service configurations under RC's `service.configurations` name.
#[utoipa::path(get, path = "/api/v1/service.configurations", tag = "rc",
    responses((status = 200, body = Success<ConfigurationsAnswer>)))]
pub async fn service_configurations(State(s): State<AppState>) -> Result<Response, RcError> {
    let configurations = provider::enabled(&s.store)
        .await?
        .iter()
        .map(|p| match builtin::configuration(p) {
            Some(c) => Configuration::Builtin(Box::new(c)),
            None => Configuration::Custom(Box::new(service_configuration(p))),
        })
        .collect();
    Ok(success(ConfigurationsAnswer { configurations }))
}

/// The body of `settings.addCustomOAuth` / `removeCustomOAuth`. RC reads it without a schema, so [`name_of`]
/// reads it by hand for RC's answers; this type documents what it reads.
#[derive(ToSchema)]
pub struct NameRequest {
    /// Any text; RC-normalized (`"My IdP"` → `Myidp`).
    #[allow(dead_code)]
    name: String,
}

/// The body of `POST settings/:_id`, read by hand in [`set_setting`] for RC's answers; this type documents it.
#[derive(ToSchema)]
pub struct SettingValueRequest {
    #[allow(dead_code)]
    value: SettingJson,
}

/// `settings.oauth`'s answer (in [`Success`]).
#[derive(Serialize, ToSchema)]
pub struct ServicesAnswer {
    services: Vec<LoginService>,
}

/// `service.configurations`' answer (in [`Success`]).
#[derive(Serialize, ToSchema)]
pub struct ConfigurationsAnswer {
    configurations: Vec<Configuration>,
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
