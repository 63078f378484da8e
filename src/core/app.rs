//! OAuth app use cases: registration with a secret shown once, updates, secret rotation, deletion.

use crate::crypto;
use crate::error::{Error, Result};
use crate::model::app::AppInput;
use crate::model::{App, ClientType, User};
use crate::state::AppState;

/// A freshly created or re-keyed app with its plaintext secret (public clients have none).
pub struct WithSecret {
    pub app: App,
    pub secret: Option<String>,
}

pub async fn create(state: &AppState, input: AppInput, by: &User) -> Result<WithSecret> {
    create_with_id(state, input, by, crypto::random_id(), None).await
}

/// Creates an app with a chosen `client_id` and optionally a chosen secret (declared `[[clients]]`, `--dev`).
pub async fn create_with_id(
    state: &AppState,
    input: AppInput,
    by: &User,
    client_id: String,
    secret: Option<String>,
) -> Result<WithSecret> {
    let f = input.validate(state.config.http_redirects())?;
    let client_type = f.client_type.unwrap_or_default();
    let grant_types = f.grant_types.clone().unwrap_or_else(App::default_grants);
    crate::model::app::AppFields::check_combination(client_type, &grant_types)?;
    let (secret, secret_hash) = match client_type {
        ClientType::Public => (None, None),
        ClientType::Confidential => {
            let s = secret.unwrap_or_else(crypto::random_token);
            let h = state.hasher().hash(s.clone()).await?;
            (Some(s), Some(h))
        }
    };
    let now = state.clock.now_ms();
    let app = App {
        id: crypto::random_id(),
        name: f.name,
        active: f.active,
        client_id,
        redirect_uris: f.redirect_uris,
        client_type,
        grant_types,
        scopes: f.scopes.unwrap_or_else(App::default_scopes),
        skip_consent: f.skip_consent.unwrap_or(false),
        token_epoch: 0,
        secret_hash,
        created_at: now,
        updated_at: now,
        created_by: by.as_ref(),
    };
    state.store.create_app(&app).await?;
    Ok(WithSecret { app, secret })
}

/// Finds an app by exactly one of its `_id` or `clientId`.
pub fn find(state: &AppState, id: Option<&str>, client_id: Option<&str>) -> Result<App> {
    let found = match (id, client_id) {
        (Some(id), None) => state.store.get_app(id)?,
        (None, Some(c)) => state.store.app_by_client_id(c)?,
        _ => {
            return Err(Error::invalid(
                "appId",
                "exactly one of _id and clientId is required",
            ))
        }
    };
    found.ok_or(Error::NotFound("app"))
}

pub async fn update(state: &AppState, id: &str, input: AppInput) -> Result<App> {
    let f = input.validate(state.config.http_redirects())?;
    let now = state.clock.now_ms();
    let before = state.store.get_app(id)?.ok_or(Error::NotFound("app"))?;
    // Switching to confidential needs a secret: one is generated and must be fetched with regenerateSecret.
    let needs_secret =
        f.client_type == Some(ClientType::Confidential) && before.secret_hash.is_none();
    let new_hash = if needs_secret {
        Some(state.hasher().hash(crypto::random_token()).await?)
    } else {
        None
    };
    let app = state
        .store
        .update_app(id, |app| {
            app.apply(f.clone(), now)?;
            match app.client_type {
                ClientType::Public => app.secret_hash = None,
                ClientType::Confidential if app.secret_hash.is_none() => {
                    app.secret_hash = new_hash.clone()
                }
                ClientType::Confidential => {}
            }
            Ok(())
        })
        .await?;
    if !app.active || app.secret_hash != before.secret_hash {
        state.verifier.forget(&app.client_id);
    }
    if !app.active && before.active {
        // Deactivation revokes at once; a reactivated app starts with no live tokens.
        state.store.revoke_client_tokens(&app.client_id).await?;
    }
    Ok(app)
}

pub async fn regenerate_secret(state: &AppState, id: &str) -> Result<WithSecret> {
    let app = state.store.get_app(id)?.ok_or(Error::NotFound("app"))?;
    if app.client_type == ClientType::Public {
        return Err(Error::invalid(
            "clientType",
            "public clients have no secret",
        ));
    }
    let secret = crypto::random_token();
    let hash = state.hasher().hash(secret.clone()).await?;
    let now = state.clock.now_ms();
    let app = state
        .store
        .update_app(id, |a| {
            a.secret_hash = Some(hash.clone());
            a.updated_at = now;
            Ok(())
        })
        .await?;
    state.verifier.forget(&app.client_id);
    Ok(WithSecret {
        app,
        secret: Some(secret),
    })
}

pub async fn delete(state: &AppState, id: &str) -> Result<App> {
    let app = state.store.delete_app(id).await?;
    state.verifier.forget(&app.client_id);
    state.store.revoke_client_tokens(&app.client_id).await?;
    Ok(app)
}
