//! The public service configurations of RC's built-in services, in the shapes Rocket.Chat gives them
//! (`server/lib/oauth/updateOAuthServices.ts`, `settings.oauth` in `app/api/server/v1/settings.ts`): the client
//! id under the service's own name (`appId` for Facebook, `consumerKey` for Twitter), LinkedIn's `clientConfig`,
//! Nextcloud's button; never `custom: true`, never a secret, never a server URL (RC clients read those from the
//! public settings).

use serde::Serialize;
use utoipa::ToSchema;

use super::settings::ServiceConfiguration;
use crate::model::builtin_setting::is_rc_builtin;
use crate::model::Provider;

/// A built-in service's configuration document (RC's `meteor_accounts_loginServiceConfiguration`, without the
/// secret).
#[derive(Serialize, ToSchema)]
pub struct BuiltinConfiguration {
    #[serde(rename = "_id")]
    id: String,
    /// RC's service name (the preset id).
    service: String,
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// Facebook's client id.
    #[serde(rename = "appId", skip_serializing_if = "Option::is_none")]
    app_id: Option<String>,
    /// Twitter's consumer key.
    #[serde(rename = "consumerKey", skip_serializing_if = "Option::is_none")]
    consumer_key: Option<String>,
    /// LinkedIn's requested permissions.
    #[serde(rename = "clientConfig", skip_serializing_if = "Option::is_none")]
    client_config: Option<ClientConfig>,
    /// Nextcloud's button.
    #[serde(rename = "buttonLabelText", skip_serializing_if = "Option::is_none")]
    button_label_text: Option<String>,
    #[serde(rename = "buttonLabelColor", skip_serializing_if = "Option::is_none")]
    button_label_color: Option<String>,
    #[serde(rename = "buttonColor", skip_serializing_if = "Option::is_none")]
    button_color: Option<String>,
}

/// LinkedIn's `clientConfig`.
#[derive(Serialize, ToSchema)]
pub struct ClientConfig {
    #[serde(rename = "requestPermissions")]
    request_permissions: [&'static str; 3],
}

/// How `settings.oauth` lists a built-in service other than WordPress.
#[derive(Serialize, ToSchema)]
pub struct BuiltinLogin {
    #[serde(rename = "_id")]
    id: String,
    /// RC's service name.
    name: String,
    #[serde(rename = "clientId")]
    client_id: String,
    #[serde(rename = "buttonLabelText")]
    button_label_text: String,
    #[serde(rename = "buttonColor")]
    button_color: String,
    #[serde(rename = "buttonLabelColor")]
    button_label_color: String,
    /// Always false.
    custom: bool,
}

/// One entry of `service.configurations`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Configuration {
    Custom(Box<ServiceConfiguration>),
    Builtin(Box<BuiltinConfiguration>),
}

/// One entry of `settings.oauth`: custom providers and WordPress as stored, other built-ins summarized.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LoginService {
    Custom(Box<ServiceConfiguration>),
    Builtin(BuiltinConfiguration),
    Summary(BuiltinLogin),
}

/// The configuration of `p` when it follows one of RC's built-in services.
pub fn configuration(p: &Provider) -> Option<BuiltinConfiguration> {
    let service = p.preset.clone().filter(|s| is_rc_builtin(s))?;
    let id = Some(p.client_id().to_owned());
    let button = service == "nextcloud";
    Some(BuiltinConfiguration {
        id: p.id.clone(),
        client_id: id
            .clone()
            .filter(|_| !matches!(service.as_str(), "facebook" | "twitter")),
        app_id: id.clone().filter(|_| service == "facebook"),
        consumer_key: id.filter(|_| service == "twitter"),
        client_config: (service == "linkedin").then_some(ClientConfig {
            request_permissions: ["openid", "email", "profile"],
        }),
        button_label_text: button.then(|| p.button_label_text.clone()),
        button_label_color: button.then(|| p.button_label_color.clone()),
        button_color: button.then(|| p.button_color.clone()),
        service,
    })
}

/// `settings.oauth`'s entry for a built-in service: WordPress as stored, the others summarized as RC does.
pub fn login_service(c: BuiltinConfiguration) -> LoginService {
    if c.service == "wordpress" {
        return LoginService::Builtin(c);
    }
    LoginService::Summary(BuiltinLogin {
        id: c.id,
        name: c.service,
        client_id: c
            .app_id
            .or(c.client_id)
            .or(c.consumer_key)
            .unwrap_or_default(),
        button_label_text: c.button_label_text.unwrap_or_default(),
        button_color: c.button_color.unwrap_or_default(),
        button_label_color: c.button_label_color.unwrap_or_default(),
        custom: false,
    })
}
