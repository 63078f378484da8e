//! Stack Auth's `oauth-providers` API over Latchkey's user ↔ provider links (docs/endpoints.md#links):
//!
//! - `POST /api/v1/oauth-providers` (server, admin) → 201 and the link;
//! - `GET /api/v1/oauth-providers?user_id=` → `{"items":[…],"is_paginated":false}` in creation order;
//! - `GET`, `PATCH`, `DELETE /api/v1/oauth-providers/{user_id}/{provider_id}` where `{provider_id}` is the link id.
//!
//! Bodies are checked like Stack's yup schemas (unknown keys are errors, so a client sending `account_id` gets a
//! `SCHEMA_ERROR`); a client sees its own links only, and without `account_id` (Stack's client read schema).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::{OpenApi, ToSchema};

use super::schema::schema;
use super::{check_body, AccessType, Field, KnownErrorBody, StackAuth, StackBody, StackError, Ty};
use crate::api::openapi::documented;
use crate::core::link::{self as core_link, LinkChange, NewLink};
use crate::error::{Entity, Error};
use crate::model::link::{validate_account_id, validate_email};
use crate::model::Link;
use crate::state::AppState;

const SERVER_OR_ADMIN: &[AccessType] = &[AccessType::Server, AccessType::Admin];

/// Stack's `oauthProviderCrudServerCreateSchema`.
const CREATE: &[Field] = &[
    ("user_id", Ty::Str, true),
    ("provider_config_id", Ty::Str, true),
    ("email", Ty::Str, false),
    ("allow_sign_in", Ty::Bool, true),
    ("allow_connected_accounts", Ty::Bool, true),
    ("account_id", Ty::Str, true),
];
/// Stack's `oauthProviderCrudClientUpdateSchema`.
const CLIENT_UPDATE: &[Field] = &[
    ("allow_sign_in", Ty::Bool, false),
    ("allow_connected_accounts", Ty::Bool, false),
];
/// Stack's `oauthProviderCrudServerUpdateSchema`.
const SERVER_UPDATE: &[Field] = &[
    ("allow_sign_in", Ty::Bool, false),
    ("allow_connected_accounts", Ty::Bool, false),
    ("email", Ty::Str, false),
    ("account_id", Ty::Str, false),
];

documented!(CreateLinkBody, schema(CREATE));
// Clients may send only `allow_sign_in` and `allow_connected_accounts` (`CLIENT_UPDATE`).
documented!(UpdateLinkBody, schema(SERVER_UPDATE));

/// A link as Stack renders it. `email` is omitted when unknown (Stack sends `undefined`), `account_id` for clients.
#[derive(Serialize, ToSchema)]
pub struct LinkView {
    /// The link id (UUID): the `{provider_id}` of the paths.
    id: String,
    user_id: String,
    /// The provider's service key.
    provider_config_id: String,
    /// `custom` for RC custom providers.
    #[serde(rename = "type")]
    provider_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    allow_sign_in: bool,
    allow_connected_accounts: bool,
    /// Omitted in the client view.
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
}

fn view(l: &Link, access: AccessType) -> LinkView {
    LinkView {
        id: l.id.clone(),
        user_id: l.user_id.clone(),
        provider_config_id: l.provider.clone(),
        provider_type: l.provider_type.clone(),
        email: l.email.clone(),
        allow_sign_in: l.allow_sign_in,
        allow_connected_accounts: l.allow_connected_accounts,
        account_id: (access != AccessType::Client).then(|| l.account_id.clone()),
    }
}

fn str_of(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn bool_of(o: &Map<String, Value>, k: &str) -> Option<bool> {
    o.get(k).and_then(Value::as_bool)
}

/// The field-level rules of Stack's schema that are Latchkey's model rules (email shape, non-empty account id).
fn field_problems(email: Option<&str>, account_id: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |r: crate::error::Result<()>| {
        if let Err(Error::Invalid { field, reason }) = r {
            out.push(format!("body.{} {reason}", super::field_name(field)));
        }
    };
    if let Some(e) = email {
        note(validate_email(e));
    }
    if let Some(a) = account_id {
        note(validate_account_id(a));
    }
    out
}

/// The `{provider_id}` of a one-link path: a link id (a UUID, as Latchkey's links API names links), or a provider
/// config id, as Stack's current API names a user's account through a provider (`/oauth-providers/me/github`).
enum LinkRef<'a> {
    Id(&'a str),
    Provider(&'a str),
}

impl<'a> LinkRef<'a> {
    fn parse(segment: &'a str) -> Self {
        if segment.len() == 36 && uuid::Uuid::try_parse(segment).is_ok() {
            LinkRef::Id(segment)
        } else {
            LinkRef::Provider(segment)
        }
    }
}

/// The link a path names, for user `user_id`. With `live`, a link Stack no longer shows (its provider removed or
/// disabled, and its provider config id not one of Stack's standard types) is not found, as Stack answers it;
/// deleting it still works.
async fn find(
    s: &AppState,
    user_id: &str,
    r: &LinkRef<'_>,
    live: bool,
) -> Result<Link, StackError> {
    let link = match *r {
        LinkRef::Id(id) => core_link::get(&s.store, user_id, id)
            .await
            .map_err(link_error(user_id, id))?,
        LinkRef::Provider(key) => core_link::get_by_provider(&s.store, user_id, key)
            .await
            .map_err(|e| match e {
                Error::NotFound(Entity::Link) => StackError::NoLinkForProvider,
                other => other.into(),
            })?,
    };
    if live && !core_link::shown(&s.store, &link.provider).await? {
        return Err(StackError::ProviderNotConfigured(link.provider));
    }
    Ok(link)
}

/// Names the link and its user in Stack's 404 text.
fn link_error(user_id: &str, link_id: &str) -> impl Fn(Error) -> StackError {
    let (user_id, link_id) = (user_id.to_owned(), link_id.to_owned());
    move |e| match e {
        Error::NotFound(Entity::Link) => StackError::LinkNotFound {
            user_id: user_id.clone(),
            link_id: link_id.clone(),
        },
        other => other.into(),
    }
}

/// Creates a link for a user (`user_id` may be `me` with a user session).
#[utoipa::path(post, path = "/api/v1/oauth-providers", tag = "stack",
    security(("stack_project" = [], "stack_access_type" = [], "stack_server_key" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_admin_key" = [])),
    request_body(content = inline(CreateLinkBody)),
    responses((status = 201, body = LinkView), (status = 400, body = KnownErrorBody),
              (status = 401, body = KnownErrorBody), (status = 404, description = "an unknown user: the known error USER_NOT_FOUND (JSON); an unconfigured provider or a missing link: Stack's text (text/plain)", content((KnownErrorBody = "application/json"), (String = "text/plain"))),
              (status = 413, description = "body over the limit (text/plain)")))]
pub async fn create(
    State(s): State<AppState>,
    auth: StackAuth,
    StackBody(body): StackBody,
) -> Result<Response, StackError> {
    auth.require(SERVER_OR_ADMIN)?;
    let o = check_body(body.as_ref(), CREATE).map_err(|p| auth.schema_error(&p))?;
    let user_id = auth.resolve_user(&str_of(o, "user_id").unwrap_or_default())?;
    let (email, account_id) = (
        str_of(o, "email"),
        str_of(o, "account_id").unwrap_or_default(),
    );
    let problems = field_problems(email.as_deref(), Some(&account_id));
    if !problems.is_empty() {
        return Err(auth.schema_error(&problems));
    }
    let provider = str_of(o, "provider_config_id").unwrap_or_default();
    let link = core_link::create(
        &s.store,
        &s.clock,
        NewLink {
            user_id,
            provider: provider.clone(),
            email,
            allow_sign_in: bool_of(o, "allow_sign_in").unwrap_or_default(),
            allow_connected_accounts: bool_of(o, "allow_connected_accounts").unwrap_or_default(),
            account_id,
        },
    )
    .await
    .map_err(|e| match e {
        Error::NotFound(Entity::Provider) => StackError::ProviderNotConfigured(provider.clone()),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(view(&link, auth.access))).into_response())
}

/// The links of one user (a client: its own, `user_id` required), or of everyone (server/admin without
/// `user_id`), in creation order.
#[utoipa::path(get, path = "/api/v1/oauth-providers", tag = "stack",
    security(("stack_project" = [], "stack_access_type" = [], "stack_access_token" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_server_key" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_admin_key" = [])),
    params(("user_id" = Option<String>, Query, description = "a user id or `me`; required for clients")),
    responses((status = 200, body = LinkList), (status = 400, body = KnownErrorBody),
              (status = 401, body = KnownErrorBody), (status = 403, description = "a client naming another user (text/plain)"),
              (status = 404, description = "an unknown user: the known error USER_NOT_FOUND (JSON); an unconfigured provider or a missing link: Stack's text (text/plain)", content((KnownErrorBody = "application/json"), (String = "text/plain")))))]
pub async fn list(
    State(s): State<AppState>,
    auth: StackAuth,
    RawQuery(query): RawQuery,
) -> Result<Response, StackError> {
    let named = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "user_id")
        .map(|(_, v)| v.into_owned());
    let user_id = named.map(|u| auth.resolve_user(&u)).transpose()?;
    auth.own(user_id.as_deref(), "list")?;
    // Links Stack no longer shows are left out, as Stack does.
    let mut enabled: HashMap<String, bool> = HashMap::new();
    let mut items: Vec<LinkView> = Vec::new();
    for l in core_link::list(&s.store, user_id.as_deref()).await? {
        let live = match enabled.get(&l.provider) {
            Some(v) => *v,
            None => {
                let v = core_link::shown(&s.store, &l.provider).await?;
                enabled.insert(l.provider.clone(), v);
                v
            }
        };
        if live {
            items.push(view(&l, auth.access));
        }
    }
    // Through a `Value` (sorted keys), the bytes this answer has always had.
    let list = json!(LinkList {
        is_paginated: false,
        items
    });
    Ok(Json(list).into_response())
}

/// Resolves and checks the path of a one-link route; `extra` holds the body's schema problems.
fn target(
    auth: &StackAuth,
    user_id: &str,
    extra: Vec<String>,
    verb: &str,
) -> Result<String, StackError> {
    let user_id = auth.resolve_user(user_id)?;
    if !extra.is_empty() {
        return Err(auth.schema_error(&extra));
    }
    auth.own(Some(&user_id), verb)?;
    Ok(user_id)
}

/// One link of a user.
#[utoipa::path(get, path = "/api/v1/oauth-providers/{user_id}/{provider_id}", tag = "stack",
    security(("stack_project" = [], "stack_access_type" = [], "stack_access_token" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_server_key" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_admin_key" = [])),
    params(("user_id" = String, Path, description = "a user id or `me`"),
           ("provider_id" = String, Path, description = "the link id (UUID), or a provider config id (the user's link through it)")),
    responses((status = 200, body = LinkView), (status = 400, body = KnownErrorBody),
              (status = 401, body = KnownErrorBody), (status = 403, description = "a client naming another user (text/plain)"),
              (status = 404, description = "an unknown user: the known error USER_NOT_FOUND (JSON); an unconfigured provider or a missing link: Stack's text (text/plain)", content((KnownErrorBody = "application/json"), (String = "text/plain")))))]
pub async fn read(
    State(s): State<AppState>,
    auth: StackAuth,
    Path((user_id, link_id)): Path<(String, String)>,
) -> Result<Response, StackError> {
    let user_id = target(&auth, &user_id, Vec::new(), "read")?;
    let link = find(&s, &user_id, &LinkRef::parse(&link_id), true).await?;
    Ok(Json(view(&link, auth.access)).into_response())
}

/// Changes a link: clients may set `allow_sign_in` and `allow_connected_accounts`; server and admin also `email`
/// and `account_id`. The sign-in rules are re-checked atomically.
#[utoipa::path(patch, path = "/api/v1/oauth-providers/{user_id}/{provider_id}", tag = "stack",
    security(("stack_project" = [], "stack_access_type" = [], "stack_access_token" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_server_key" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_admin_key" = [])),
    params(("user_id" = String, Path, description = "a user id or `me`"),
           ("provider_id" = String, Path, description = "the link id (UUID), or a provider config id (the user's link through it)")),
    request_body(content = inline(UpdateLinkBody), description = "server and admin; clients may send only `allow_sign_in` and `allow_connected_accounts`"),
    responses((status = 200, body = LinkView), (status = 400, body = KnownErrorBody),
              (status = 401, body = KnownErrorBody), (status = 403, description = "a client naming another user (text/plain)"),
              (status = 404, description = "an unknown user: the known error USER_NOT_FOUND (JSON); an unconfigured provider or a missing link: Stack's text (text/plain)", content((KnownErrorBody = "application/json"), (String = "text/plain")))))]
pub async fn update(
    State(s): State<AppState>,
    auth: StackAuth,
    Path((user_id, link_id)): Path<(String, String)>,
    StackBody(body): StackBody,
) -> Result<Response, StackError> {
    let fields = if auth.access == AccessType::Client {
        CLIENT_UPDATE
    } else {
        SERVER_UPDATE
    };
    let checked = check_body(body.as_ref(), fields);
    let extra = match &checked {
        Ok(o) => field_problems(
            o.get("email").and_then(Value::as_str),
            o.get("account_id").and_then(Value::as_str),
        ),
        Err(p) => p.clone(),
    };
    let user_id = target(&auth, &user_id, extra, "update")?;
    let o = checked.map_err(|p| auth.schema_error(&p))?;
    let link = find(&s, &user_id, &LinkRef::parse(&link_id), true).await?;
    let change = LinkChange {
        allow_sign_in: bool_of(o, "allow_sign_in"),
        allow_connected_accounts: bool_of(o, "allow_connected_accounts"),
        email: str_of(o, "email"),
        account_id: str_of(o, "account_id"),
    };
    let link = core_link::update(&s.store, &user_id, &link.id, change)
        .await
        .map_err(link_error(&user_id, &link.id))?;
    Ok(Json(view(&link, auth.access)).into_response())
}

/// Deletes a link.
#[utoipa::path(delete, path = "/api/v1/oauth-providers/{user_id}/{provider_id}", tag = "stack",
    security(("stack_project" = [], "stack_access_type" = [], "stack_access_token" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_server_key" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_admin_key" = [])),
    params(("user_id" = String, Path, description = "a user id or `me`"),
           ("provider_id" = String, Path, description = "the link id (UUID), or a provider config id (the user's link through it)")),
    responses((status = 200, body = StackSuccess), (status = 400, body = KnownErrorBody),
              (status = 401, body = KnownErrorBody), (status = 403, description = "a client naming another user (text/plain)"),
              (status = 404, description = "an unknown user: the known error USER_NOT_FOUND (JSON); an unconfigured provider or a missing link: Stack's text (text/plain)", content((KnownErrorBody = "application/json"), (String = "text/plain")))))]
pub async fn delete(
    State(s): State<AppState>,
    auth: StackAuth,
    Path((user_id, link_id)): Path<(String, String)>,
) -> Result<Response, StackError> {
    let user_id = target(&auth, &user_id, Vec::new(), "delete")?;
    let link = find(&s, &user_id, &LinkRef::parse(&link_id), false).await?;
    core_link::delete(&s.store, &user_id, &link.id)
        .await
        .map_err(link_error(&user_id, &link.id))?;
    Ok(Json(StackSuccess { success: true }).into_response())
}

/// `GET /api/v1/oauth-providers`' answer.
#[derive(Serialize, ToSchema)]
pub struct LinkList {
    items: Vec<LinkView>,
    /// Always false: the whole list comes at once.
    is_paginated: bool,
}

/// `DELETE`'s answer.
#[derive(Serialize, ToSchema)]
pub struct StackSuccess {
    success: bool,
}

struct StackHeaders;

impl utoipa::Modify for StackHeaders {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let c = doc.components.get_or_insert_with(Default::default);
        for (name, header, what) in [
            ("stack_project", "X-Stack-Project-Id", "the configured Stack project id"),
            ("stack_access_type", "X-Stack-Access-Type", "`client`, `server` or `admin`"),
            ("stack_server_key", "X-Stack-Secret-Server-Key", "server access"),
            ("stack_admin_key", "X-Stack-Super-Secret-Admin-Key", "admin access"),
            (
                "stack_access_token",
                "X-Stack-Access-Token",
                "a Latchkey access token (or `Authorization: Bearer`): the user session of `client` and of `me`",
            ),
        ] {
            c.add_security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(header, what))),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(paths(create, list, read, update, delete), modifiers(&StackHeaders))]
pub struct StackDoc;
