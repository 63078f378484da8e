//! `/api/v1/oauth-apps.*`: RC's OAuth-app admin API, plus Latchkey's client fields.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::schema::{bool_of, str_of, strs_of, Shape, Ty};
use super::{success, Caller, InMethod, RcBody, RcError};
use crate::api::openapi::documented;
use crate::clock::rfc3339;
use crate::core::app;
use crate::model::app::{AppInput, OidcInput};
use crate::model::{App, Permission};
use crate::state::AppState;

const LATCHKEY_FIELDS: &[(&str, Ty)] = &[
    ("clientType", Ty::Str),
    ("grantTypes", Ty::StrArray),
    ("scopes", Ty::Str),
    ("skipConsent", Ty::Bool),
    ("idTokenSignedResponseAlg", Ty::Str),
    ("accessTokenFormat", Ty::Str),
    ("postLogoutRedirectUris", Ty::StrArray),
    ("subjectType", Ty::Str),
    ("idTokenClaims", Ty::Bool),
    ("extraClaims", Ty::StrArray),
];

/// `oauth-apps.create`'s body schema.
pub const CREATE: Shape = Shape {
    required: &[
        ("name", Ty::Str),
        ("active", Ty::Bool),
        ("redirectUri", Ty::Str),
    ],
    optional: LATCHKEY_FIELDS,
};

/// `oauth-apps.update`'s body schema.
pub const UPDATE: Shape = Shape {
    required: &[
        ("appId", Ty::Str),
        ("name", Ty::Str),
        ("active", Ty::Bool),
        ("redirectUri", Ty::Str),
    ],
    optional: LATCHKEY_FIELDS,
};

/// `oauth-apps.delete` / `.regenerateSecret`: just the app id.
pub const BY_ID: Shape = Shape {
    required: &[("appId", Ty::Str)],
    optional: &[],
};

documented!(CreateAppBody, CREATE.schema());
documented!(UpdateAppBody, UPDATE.schema());
documented!(AppIdBody, BY_ID.schema());

/// An OAuth app as RC renders it, plus Latchkey's fields.
#[derive(Serialize, ToSchema)]
pub struct RcApp {
    #[serde(rename = "_id")]
    id: String,
    name: String,
    active: bool,
    #[serde(rename = "clientId")]
    client_id: String,
    /// Shown once: by `create` and `regenerateSecret` only.
    #[serde(rename = "clientSecret", skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    /// The redirect URIs, comma-joined.
    #[serde(rename = "redirectUri")]
    redirect_uri: String,
    #[serde(rename = "_createdAt")]
    created_at: String,
    #[serde(rename = "_createdBy")]
    created_by: CreatedBy,
    #[serde(rename = "_updatedAt")]
    updated_at: String,
    #[serde(rename = "clientType")]
    #[schema(example = "confidential")]
    client_type: &'static str,
    #[serde(rename = "grantTypes")]
    grant_types: Vec<&'static str>,
    /// The allowed scopes, space-separated.
    scopes: String,
    #[serde(rename = "skipConsent")]
    skip_consent: bool,
    /// The JWS algorithm of the app's ID tokens: `RS256` (default), `ES256` or `EdDSA`.
    #[serde(rename = "idTokenSignedResponseAlg")]
    #[schema(example = "RS256")]
    id_token_signed_response_alg: &'static str,
    /// `opaque` (default) or `jwt` (RFC 9068).
    #[serde(rename = "accessTokenFormat")]
    #[schema(example = "opaque")]
    access_token_format: &'static str,
    /// Where RP-initiated logout may return to (exact match).
    #[serde(rename = "postLogoutRedirectUris")]
    post_logout_redirect_uris: Vec<String>,
    /// `public` (default: `sub` is the user id) or `pairwise` (per sector: the one host of the redirect URIs).
    #[serde(rename = "subjectType")]
    #[schema(example = "public")]
    subject_type: &'static str,
    /// Whether the scope's claims also go in the ID token (default true).
    #[serde(rename = "idTokenClaims")]
    id_token_claims: bool,
    /// The users' custom claims the app receives (ID token, userinfo, JWT access tokens).
    #[serde(rename = "extraClaims")]
    extra_claims: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedBy {
    #[serde(rename = "_id")]
    id: String,
    username: String,
}

/// The RC app document (`clientSecret` only where it is shown once).
pub fn rc_app(a: &App, secret: Option<&str>) -> RcApp {
    RcApp {
        id: a.id.clone(),
        name: a.name.clone(),
        active: a.active,
        client_id: a.client_id.clone(),
        client_secret: secret.map(str::to_owned),
        redirect_uri: a.redirect_uri_joined(),
        created_at: rfc3339(a.created_at),
        created_by: CreatedBy {
            id: a.created_by.id.clone(),
            username: a.created_by.username.clone(),
        },
        updated_at: rfc3339(a.updated_at),
        client_type: a.client_type.as_str(),
        grant_types: a.grant_types.iter().map(|g| g.as_str()).collect(),
        scopes: a.scopes.join(" "),
        skip_consent: a.skip_consent,
        id_token_signed_response_alg: a.oidc.id_token_signed_response_alg.as_str(),
        access_token_format: a.oidc.access_token_format.as_str(),
        post_logout_redirect_uris: a.oidc.post_logout_redirect_uris.clone(),
        subject_type: a.oidc.subject_type.as_str(),
        id_token_claims: a.oidc.id_token_claims,
        extra_claims: a.oidc.extra_claims.clone(),
    }
}

/// `create`'s and `regenerateSecret`'s answer (in [`Success`]).
#[derive(Serialize, ToSchema)]
pub struct ApplicationAnswer {
    application: RcApp,
}

/// `get`'s answer (in [`Success`]).
#[derive(Serialize, ToSchema)]
pub struct OauthAppAnswer {
    #[serde(rename = "oauthApp")]
    oauth_app: RcApp,
}

/// `list`'s answer (in [`Success`]).
#[derive(Serialize, ToSchema)]
pub struct OauthAppsAnswer {
    #[serde(rename = "oauthApps")]
    oauth_apps: Vec<RcApp>,
}

/// The app fields of a body that passed [`CREATE`] or [`UPDATE`].
pub fn input(o: &serde_json::Map<String, Value>) -> AppInput {
    AppInput {
        name: str_of(o, "name").unwrap_or_default().to_owned(),
        active: bool_of(o, "active").unwrap_or(false),
        redirect_uri: str_of(o, "redirectUri").unwrap_or_default().to_owned(),
        client_type: str_of(o, "clientType").map(str::to_owned),
        grant_types: strs_of(o, "grantTypes"),
        scopes: str_of(o, "scopes").map(str::to_owned),
        skip_consent: bool_of(o, "skipConsent"),
        oidc: OidcInput {
            id_token_signed_response_alg: str_of(o, "idTokenSignedResponseAlg").map(str::to_owned),
            access_token_format: str_of(o, "accessTokenFormat").map(str::to_owned),
            post_logout_redirect_uris: strs_of(o, "postLogoutRedirectUris"),
            subject_type: str_of(o, "subjectType").map(str::to_owned),
            id_token_claims: bool_of(o, "idTokenClaims"),
            extra_claims: strs_of(o, "extraClaims"),
        },
    }
}

pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::ManageOauthApps)?;
    let o = CREATE.check(&body).map_err(RcError::InvalidParams)?;
    let created = app::create(s.apps(), input(o), &caller.user)
        .await
        .in_method("addOAuthApp")?;
    Ok(success(ApplicationAnswer {
        application: rc_app(&created.app, created.secret.as_deref()),
    }))
}

pub async fn list(State(s): State<AppState>, caller: Caller) -> Result<Response, RcError> {
    caller.require(Permission::ManageOauthApps)?;
    let apps = s.store.list_apps().await?;
    Ok(success(OauthAppsAnswer {
        oauth_apps: apps.iter().map(|a| rc_app(a, None)).collect(),
    }))
}

/// Any signed-in user may read one app (RC hides the secret from non-managers; Latchkey never stores it).
pub async fn get(
    State(s): State<AppState>,
    _caller: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, RcError> {
    let id = q.get("_id").or(q.get("appId"));
    let client_id = q.get("clientId");
    let given = usize::from(q.contains_key("_id"))
        + usize::from(q.contains_key("appId"))
        + usize::from(client_id.is_some());
    if given != 1 {
        return Err(RcError::InvalidParams(
            "must match exactly one schema in oneOf".into(),
        ));
    }
    match app::find(
        &s.store,
        id.map(String::as_str),
        client_id.map(String::as_str),
    )
    .await
    {
        Ok(a) => Ok(success(OauthAppAnswer {
            oauth_app: rc_app(&a, None),
        })),
        Err(crate::error::Error::NotFound(_)) => Err(RcError::Plain("OAuth app not found.")),
        Err(e) => Err(e.into()),
    }
}

pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::ManageOauthApps)?;
    let o = UPDATE.check(&body).map_err(RcError::InvalidParams)?;
    let id = str_of(o, "appId").unwrap_or_default();
    let a = app::update(s.apps(), id, input(o))
        .await
        .in_method("updateOAuthApp")?;
    Ok(success(rc_app(&a, None)))
}

/// Answers the bare JSON `true`, as RC does.
pub async fn delete(
    State(s): State<AppState>,
    caller: Caller,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::ManageOauthApps)?;
    let o = BY_ID.check(&body).map_err(RcError::InvalidParams)?;
    app::delete(s.apps(), str_of(o, "appId").unwrap_or_default())
        .await
        .in_method("deleteOAuthApp")?;
    Ok(Json(true).into_response())
}

/// Latchkey extension: a new secret, shown once; the old one stops working at once.
pub async fn regenerate_secret(
    State(s): State<AppState>,
    caller: Caller,
    RcBody(body): RcBody,
) -> Result<Response, RcError> {
    caller.require(Permission::ManageOauthApps)?;
    let o = BY_ID.check(&body).map_err(RcError::InvalidParams)?;
    let r = app::regenerate_secret(s.apps(), str_of(o, "appId").unwrap_or_default())
        .await
        .in_method("regenerateOAuthAppSecret")?;
    Ok(success(ApplicationAnswer {
        application: rc_app(&r.app, r.secret.as_deref()),
    }))
}
