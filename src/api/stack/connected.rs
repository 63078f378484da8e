//! Stack Auth's connected accounts (docs/endpoints.md#connected-accounts):
//! `POST /api/v1/connected-accounts/{user_id}/{provider_config_id}/access-token` with `{"scope"?}` → 201
//! `{"access_token"}`, a live upstream access token of the user's link through that provider
//! (`core::connected`). Clients reach their own user's accounts only; server and admin anyone's.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use super::schema::schema;
use super::{check_body, AccessType, Field, KnownErrorBody, StackAuth, StackBody, StackError, Ty};
use crate::api::openapi::documented;
use crate::core::connected::{self, RefreshError, Refusal};
use crate::error::Error;
use crate::state::AppState;
use crate::upstream::{for_log, refresh::Live};

/// Stack's `connectedAccountAccessTokenCreateSchema`.
const CREATE: &[Field] = &[("scope", Ty::Str, false)];

documented!(AccessTokenBody, schema(CREATE));

/// Stack's `connectedAccountAccessTokenReadSchema`.
#[derive(Serialize, ToSchema)]
pub struct AccessTokenView {
    /// The upstream provider's access token.
    access_token: String,
}

/// A live upstream access token of a user's connected account, refreshed when it has expired.
#[utoipa::path(post, path = "/api/v1/connected-accounts/{user_id}/{provider_id}/access-token", tag = "stack",
    security(("stack_project" = [], "stack_access_type" = [], "stack_access_token" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_server_key" = []),
             ("stack_project" = [], "stack_access_type" = [], "stack_admin_key" = [])),
    params(("user_id" = String, Path, description = "a user id or `me`"),
           ("provider_id" = String, Path, description = "the provider config id")),
    request_body(content = inline(AccessTokenBody), description = "`scope`: the scopes the token must have (space-separated)"),
    responses((status = 201, body = AccessTokenView), (status = 400, body = KnownErrorBody),
              (status = 401, body = KnownErrorBody), (status = 403, description = "a client naming another user (text/plain)"),
              (status = 404, description = "an unknown user: the known error USER_NOT_FOUND (JSON); an unconfigured provider or a missing link: Stack's text (text/plain)", content((KnownErrorBody = "application/json"), (String = "text/plain"))), (status = 503, body = KnownErrorBody)))]
pub async fn access_token(
    State(s): State<AppState>,
    auth: StackAuth,
    Path((user_id, provider_id)): Path<(String, String)>,
    StackBody(body): StackBody,
) -> Result<Response, StackError> {
    let checked = check_body(body.as_ref(), CREATE);
    let user_id = auth.resolve_user(&user_id)?;
    let o = checked.map_err(|p| auth.schema_error(&p))?;
    let own = auth.user.as_ref().is_some_and(|u| u.id == user_id);
    if auth.access == AccessType::Client && !own {
        return Err(StackError::Status(
            StatusCode::FORBIDDEN,
            "Client can only access its own connected accounts".into(),
        ));
    }
    let scope = o
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Its own task, so a caller that goes away (or the request timeout) cannot cut a refresh between the
    // upstream's answer and the store: the upstream may have rotated the refresh token already.
    let task = {
        let (s, provider_id) = (s.clone(), provider_id.clone());
        tokio::spawn(async move {
            connected::access_token(s.connected(), &Live(&s), &user_id, &provider_id, &scope).await
        })
    };
    let token = task
        .await
        .map_err(|_| StackError::Domain(Error::internal("the connected account task failed")))?
        .map_err(|r| refused(&provider_id, r))?;
    let mut r = (
        StatusCode::CREATED,
        Json(AccessTokenView {
            access_token: token,
        }),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// A refusal as Stack answers it; an upstream failure is logged with its reason (never a token).
fn refused(provider: &str, r: Refusal) -> StackError {
    if let Refusal::Refresh(e) = &r {
        let reason = match e {
            RefreshError::Rejected => "the refresh token was refused",
            RefreshError::InvalidClient => "the client credentials were refused",
            RefreshError::Unavailable(why) => why,
        };
        tracing::warn!(provider = %for_log(provider), reason = %for_log(reason), "connected account refresh failed");
    }
    match r {
        Refusal::ProviderNotEnabled => StackError::ProviderNotFoundOrNotEnabled,
        Refusal::NotConnected => StackError::ConnectionNotConnectedToUser,
        Refusal::MissingScope | Refusal::Refresh(RefreshError::Rejected) => {
            StackError::ConnectionDoesNotHaveRequiredScope
        }
        Refusal::Refresh(RefreshError::InvalidClient) => StackError::Status(
            StatusCode::BAD_REQUEST,
            "Invalid client credentials for this OAuth provider. Please ensure its configuration is correct."
                .into(),
        ),
        Refusal::Refresh(RefreshError::Unavailable(_)) => StackError::ProviderTemporarilyUnavailable,
        Refusal::Domain(e) => e.into(),
    }
}

#[derive(OpenApi)]
#[openapi(paths(access_token))]
pub struct ConnectedDoc;
