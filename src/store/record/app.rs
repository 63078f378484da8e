//! `apps` values: [`App`]. One layout so far, read under version bytes 1 and 2.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{App, ClientType, GrantType, UserRef};
use crate::store::codec::{Body, Record};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppV1 {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub client_type: ClientTypeV1,
    pub grant_types: Vec<GrantTypeV1>,
    pub scopes: Vec<String>,
    pub skip_consent: bool,
    pub token_epoch: u64,
    pub secret_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: UserRefV1,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ClientTypeV1 {
    Confidential,
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum GrantTypeV1 {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRefV1 {
    pub id: String,
    pub username: String,
}

impl Record for App {
    const VERSION: u8 = 2;
    type Disk = AppV1;

    fn upgrade(body: Body<'_>) -> Result<AppV1> {
        match body.version() {
            1 | 2 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<App> for AppV1 {
    fn from(a: App) -> Self {
        Self {
            id: a.id,
            name: a.name,
            active: a.active,
            client_id: a.client_id,
            redirect_uris: a.redirect_uris,
            client_type: a.client_type.into(),
            grant_types: a.grant_types.into_iter().map(Into::into).collect(),
            scopes: a.scopes,
            skip_consent: a.skip_consent,
            token_epoch: a.token_epoch,
            secret_hash: a.secret_hash,
            created_at: a.created_at,
            updated_at: a.updated_at,
            created_by: a.created_by.into(),
        }
    }
}

impl From<AppV1> for App {
    fn from(a: AppV1) -> Self {
        Self {
            id: a.id,
            name: a.name,
            active: a.active,
            client_id: a.client_id,
            redirect_uris: a.redirect_uris,
            client_type: a.client_type.into(),
            grant_types: a.grant_types.into_iter().map(Into::into).collect(),
            scopes: a.scopes,
            skip_consent: a.skip_consent,
            token_epoch: a.token_epoch,
            secret_hash: a.secret_hash,
            created_at: a.created_at,
            updated_at: a.updated_at,
            created_by: a.created_by.into(),
        }
    }
}

impl From<ClientType> for ClientTypeV1 {
    fn from(c: ClientType) -> Self {
        match c {
            ClientType::Confidential => Self::Confidential,
            ClientType::Public => Self::Public,
        }
    }
}

impl From<ClientTypeV1> for ClientType {
    fn from(c: ClientTypeV1) -> Self {
        match c {
            ClientTypeV1::Confidential => Self::Confidential,
            ClientTypeV1::Public => Self::Public,
        }
    }
}

impl From<GrantType> for GrantTypeV1 {
    fn from(g: GrantType) -> Self {
        match g {
            GrantType::AuthorizationCode => Self::AuthorizationCode,
            GrantType::RefreshToken => Self::RefreshToken,
            GrantType::ClientCredentials => Self::ClientCredentials,
        }
    }
}

impl From<GrantTypeV1> for GrantType {
    fn from(g: GrantTypeV1) -> Self {
        match g {
            GrantTypeV1::AuthorizationCode => Self::AuthorizationCode,
            GrantTypeV1::RefreshToken => Self::RefreshToken,
            GrantTypeV1::ClientCredentials => Self::ClientCredentials,
        }
    }
}

impl From<UserRef> for UserRefV1 {
    fn from(u: UserRef) -> Self {
        Self {
            id: u.id,
            username: u.username,
        }
    }
}

impl From<UserRefV1> for UserRef {
    fn from(u: UserRefV1) -> Self {
        Self {
            id: u.id,
            username: u.username,
        }
    }
}
