//! `providers` values: [`Provider`] with its credentials (secrets sealed by the caller). Version 2 added
//! `merge_users_with_password` (a version-1 record, 0.1.0, reads as false: such merges stay refused); version 3
//! added the catalogue `preset` and its `options` (older records read as custom providers without options).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::provider::{
    Credential, IdentityTokenSentVia, KeyField, LoginStyle, TokenSentVia,
};
use crate::model::Provider;
use crate::store::codec::{Body, Record};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderV1 {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub url: String,
    pub token_path: String,
    pub token_sent_via: TokenSentViaV1,
    pub identity_token_sent_via: IdentityTokenSentViaV1,
    pub identity_path: String,
    pub authorize_path: String,
    pub scope: String,
    pub access_token_param: String,
    pub login_style: LoginStyleV1,
    pub button_label_text: String,
    pub button_label_color: String,
    pub button_color: String,
    pub key_field: KeyFieldV1,
    pub username_field: String,
    pub email_field: String,
    pub name_field: String,
    pub avatar_field: String,
    pub roles_claim: String,
    pub groups_claim: String,
    pub channels_admin: String,
    pub map_channels: bool,
    pub merge_roles: bool,
    pub roles_to_sync: String,
    pub merge_users: bool,
    pub merge_users_distinct_services: bool,
    pub show_button: bool,
    pub groups_channel_map: String,
    pub credentials: Vec<CredentialV1>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Version 1's fields in place (bincode writes a nested struct's fields inline), then the new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderV2 {
    pub base: ProviderV1,
    pub merge_users_with_password: bool,
}

/// Version 2's fields in place, then the catalogue preset and its non-secret options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderV3 {
    pub base: ProviderV2,
    pub preset: Option<String>,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialV1 {
    pub name: String,
    pub client_id: String,
    pub sealed_secret: Option<Vec<u8>>,
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum TokenSentViaV1 {
    Header,
    Payload,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum IdentityTokenSentViaV1 {
    Default,
    Header,
    Payload,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LoginStyleV1 {
    Redirect,
    Popup,
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum KeyFieldV1 {
    Username,
    Email,
}

impl Record for Provider {
    const VERSION: u8 = 3;
    type Disk = ProviderV3;

    fn upgrade(body: Body<'_>) -> Result<ProviderV3> {
        match body.version() {
            1 => body
                .read::<ProviderV1>()
                .map(|v1| ProviderV2::from(v1).into()),
            2 => body.read::<ProviderV2>().map(Into::into),
            3 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<ProviderV1> for ProviderV2 {
    fn from(base: ProviderV1) -> Self {
        Self {
            base,
            merge_users_with_password: false,
        }
    }
}

impl From<ProviderV2> for ProviderV3 {
    fn from(base: ProviderV2) -> Self {
        Self {
            base,
            preset: None,
            options: BTreeMap::new(),
        }
    }
}

impl From<Provider> for ProviderV3 {
    fn from(p: Provider) -> Self {
        Self {
            base: ProviderV2 {
                base: ProviderV1 {
                    id: p.id,
                    name: p.name,
                    enabled: p.enabled,
                    url: p.url,
                    token_path: p.token_path,
                    token_sent_via: p.token_sent_via.into(),
                    identity_token_sent_via: p.identity_token_sent_via.into(),
                    identity_path: p.identity_path,
                    authorize_path: p.authorize_path,
                    scope: p.scope,
                    access_token_param: p.access_token_param,
                    login_style: p.login_style.into(),
                    button_label_text: p.button_label_text,
                    button_label_color: p.button_label_color,
                    button_color: p.button_color,
                    key_field: p.key_field.into(),
                    username_field: p.username_field,
                    email_field: p.email_field,
                    name_field: p.name_field,
                    avatar_field: p.avatar_field,
                    roles_claim: p.roles_claim,
                    groups_claim: p.groups_claim,
                    channels_admin: p.channels_admin,
                    map_channels: p.map_channels,
                    merge_roles: p.merge_roles,
                    roles_to_sync: p.roles_to_sync,
                    merge_users: p.merge_users,
                    merge_users_distinct_services: p.merge_users_distinct_services,
                    show_button: p.show_button,
                    groups_channel_map: p.groups_channel_map,
                    credentials: p.credentials.into_iter().map(Into::into).collect(),
                    created_at: p.created_at,
                    updated_at: p.updated_at,
                },
                merge_users_with_password: p.merge_users_with_password,
            },
            preset: p.preset,
            options: p.options,
        }
    }
}

impl From<ProviderV3> for Provider {
    fn from(v3: ProviderV3) -> Self {
        let p = v3.base;
        let b = p.base;
        Self {
            id: b.id,
            name: b.name,
            enabled: b.enabled,
            url: b.url,
            token_path: b.token_path,
            token_sent_via: b.token_sent_via.into(),
            identity_token_sent_via: b.identity_token_sent_via.into(),
            identity_path: b.identity_path,
            authorize_path: b.authorize_path,
            scope: b.scope,
            access_token_param: b.access_token_param,
            login_style: b.login_style.into(),
            button_label_text: b.button_label_text,
            button_label_color: b.button_label_color,
            button_color: b.button_color,
            key_field: b.key_field.into(),
            username_field: b.username_field,
            email_field: b.email_field,
            name_field: b.name_field,
            avatar_field: b.avatar_field,
            roles_claim: b.roles_claim,
            groups_claim: b.groups_claim,
            channels_admin: b.channels_admin,
            map_channels: b.map_channels,
            merge_roles: b.merge_roles,
            roles_to_sync: b.roles_to_sync,
            merge_users: b.merge_users,
            merge_users_distinct_services: b.merge_users_distinct_services,
            show_button: b.show_button,
            groups_channel_map: b.groups_channel_map,
            credentials: b.credentials.into_iter().map(Into::into).collect(),
            created_at: b.created_at,
            updated_at: b.updated_at,
            merge_users_with_password: p.merge_users_with_password,
            preset: v3.preset,
            options: v3.options,
        }
    }
}

impl From<Credential> for CredentialV1 {
    fn from(c: Credential) -> Self {
        Self {
            name: c.name,
            client_id: c.client_id,
            sealed_secret: c.sealed_secret,
            scopes: c.scopes,
        }
    }
}

impl From<CredentialV1> for Credential {
    fn from(c: CredentialV1) -> Self {
        Self {
            name: c.name,
            client_id: c.client_id,
            sealed_secret: c.sealed_secret,
            scopes: c.scopes,
        }
    }
}

impl From<TokenSentVia> for TokenSentViaV1 {
    fn from(v: TokenSentVia) -> Self {
        match v {
            TokenSentVia::Header => Self::Header,
            TokenSentVia::Payload => Self::Payload,
        }
    }
}

impl From<TokenSentViaV1> for TokenSentVia {
    fn from(v: TokenSentViaV1) -> Self {
        match v {
            TokenSentViaV1::Header => Self::Header,
            TokenSentViaV1::Payload => Self::Payload,
        }
    }
}

impl From<IdentityTokenSentVia> for IdentityTokenSentViaV1 {
    fn from(v: IdentityTokenSentVia) -> Self {
        match v {
            IdentityTokenSentVia::Default => Self::Default,
            IdentityTokenSentVia::Header => Self::Header,
            IdentityTokenSentVia::Payload => Self::Payload,
        }
    }
}

impl From<IdentityTokenSentViaV1> for IdentityTokenSentVia {
    fn from(v: IdentityTokenSentViaV1) -> Self {
        match v {
            IdentityTokenSentViaV1::Default => Self::Default,
            IdentityTokenSentViaV1::Header => Self::Header,
            IdentityTokenSentViaV1::Payload => Self::Payload,
        }
    }
}

impl From<LoginStyle> for LoginStyleV1 {
    fn from(v: LoginStyle) -> Self {
        match v {
            LoginStyle::Redirect => Self::Redirect,
            LoginStyle::Popup => Self::Popup,
            LoginStyle::Default => Self::Default,
        }
    }
}

impl From<LoginStyleV1> for LoginStyle {
    fn from(v: LoginStyleV1) -> Self {
        match v {
            LoginStyleV1::Redirect => Self::Redirect,
            LoginStyleV1::Popup => Self::Popup,
            LoginStyleV1::Default => Self::Default,
        }
    }
}

impl From<KeyField> for KeyFieldV1 {
    fn from(v: KeyField) -> Self {
        match v {
            KeyField::Username => Self::Username,
            KeyField::Email => Self::Email,
        }
    }
}

impl From<KeyFieldV1> for KeyField {
    fn from(v: KeyFieldV1) -> Self {
        match v {
            KeyFieldV1::Username => Self::Username,
            KeyFieldV1::Email => Self::Email,
        }
    }
}
