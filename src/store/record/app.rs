//! `apps` values: [`App`]. Version 3 added the OpenID Connect settings; a record of bytes 1 or 2 (one layout,
//! [`AppV1`]) reads with the defaults (RS256, opaque access tokens, public subjects, the scope's claims in the ID
//! token, no post-logout URIs, no extra claims).

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::app::{AccessTokenFormat, OidcSettings, SubjectType};
use crate::model::oidc::SigningAlg;
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

/// Version 1's fields in place (bincode writes a nested struct's fields inline), then the OIDC settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppV3 {
    pub base: AppV1,
    pub oidc: OidcV3,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OidcV3 {
    pub id_token_signed_response_alg: SigningAlgV3,
    pub access_token_format: AccessTokenFormatV3,
    pub post_logout_redirect_uris: Vec<String>,
    pub subject_type: SubjectTypeV3,
    pub id_token_claims: bool,
    pub extra_claims: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SigningAlgV3 {
    Rs256,
    Es256,
    EdDsa,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AccessTokenFormatV3 {
    Opaque,
    Jwt,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SubjectTypeV3 {
    Public,
    Pairwise,
}

impl Record for App {
    const VERSION: u8 = 3;
    type Disk = AppV3;

    fn upgrade(body: Body<'_>) -> Result<AppV3> {
        match body.version() {
            1 | 2 => body.read::<AppV1>().map(Into::into),
            3 => body.read(),
            _ => body.unknown(),
        }
    }
}

impl From<AppV1> for AppV3 {
    fn from(base: AppV1) -> Self {
        Self {
            base,
            oidc: OidcSettings::default().into(),
        }
    }
}

impl From<App> for AppV3 {
    fn from(a: App) -> Self {
        let oidc = a.oidc.clone().into();
        Self {
            base: a.into(),
            oidc,
        }
    }
}

impl From<AppV3> for App {
    fn from(a: AppV3) -> Self {
        Self {
            oidc: a.oidc.into(),
            ..a.base.into()
        }
    }
}

impl From<OidcSettings> for OidcV3 {
    fn from(o: OidcSettings) -> Self {
        Self {
            id_token_signed_response_alg: match o.id_token_signed_response_alg {
                SigningAlg::Rs256 => SigningAlgV3::Rs256,
                SigningAlg::Es256 => SigningAlgV3::Es256,
                SigningAlg::EdDsa => SigningAlgV3::EdDsa,
            },
            access_token_format: match o.access_token_format {
                AccessTokenFormat::Opaque => AccessTokenFormatV3::Opaque,
                AccessTokenFormat::Jwt => AccessTokenFormatV3::Jwt,
            },
            post_logout_redirect_uris: o.post_logout_redirect_uris,
            subject_type: match o.subject_type {
                SubjectType::Public => SubjectTypeV3::Public,
                SubjectType::Pairwise => SubjectTypeV3::Pairwise,
            },
            id_token_claims: o.id_token_claims,
            extra_claims: o.extra_claims,
        }
    }
}

impl From<OidcV3> for OidcSettings {
    fn from(o: OidcV3) -> Self {
        Self {
            id_token_signed_response_alg: match o.id_token_signed_response_alg {
                SigningAlgV3::Rs256 => SigningAlg::Rs256,
                SigningAlgV3::Es256 => SigningAlg::Es256,
                SigningAlgV3::EdDsa => SigningAlg::EdDsa,
            },
            access_token_format: match o.access_token_format {
                AccessTokenFormatV3::Opaque => AccessTokenFormat::Opaque,
                AccessTokenFormatV3::Jwt => AccessTokenFormat::Jwt,
            },
            post_logout_redirect_uris: o.post_logout_redirect_uris,
            subject_type: match o.subject_type {
                SubjectTypeV3::Public => SubjectType::Public,
                SubjectTypeV3::Pairwise => SubjectType::Pairwise,
            },
            id_token_claims: o.id_token_claims,
            extra_claims: o.extra_claims,
        }
    }
}

/// The base layout of an app; its OIDC settings are [`AppV3`]'s.
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

/// An app of the base layout, with the default OIDC settings.
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
            oidc: OidcSettings::default(),
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
