//! User ↔ provider link use cases (docs/endpoints.md#links), free of Stack's wire format. A link is always addressed through
//! its user: a link of another user is "not found", exactly like a missing one, so ids cannot be probed across
//! users.

use crate::crypto::uuid_v4;
use crate::error::{Entity, Error, Result};
use crate::model::link::{validate_account_id, validate_email, Link, CUSTOM_TYPE};
use crate::state::AppState;

/// What a caller chooses when creating a link.
#[derive(Clone, Debug)]
pub struct NewLink {
    pub user_id: String,
    /// The provider's service key.
    pub provider: String,
    pub email: Option<String>,
    pub allow_sign_in: bool,
    pub allow_connected_accounts: bool,
    pub account_id: String,
}

/// A partial update; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct LinkChange {
    pub allow_sign_in: Option<bool>,
    pub allow_connected_accounts: Option<bool>,
    pub email: Option<String>,
    pub account_id: Option<String>,
}

/// Creates a link of type `custom`. The store checks, atomically, that the provider exists and is enabled, that
/// the user exists, and the two sign-in rules.
pub async fn create(state: &AppState, input: NewLink) -> Result<Link> {
    let created_at = state
        .store
        .next_link_time(&input.user_id, state.clock.now_ms())?;
    let link = Link {
        id: uuid_v4(),
        user_id: input.user_id,
        provider: input.provider,
        provider_type: CUSTOM_TYPE.into(),
        email: input.email,
        allow_sign_in: input.allow_sign_in,
        allow_connected_accounts: input.allow_connected_accounts,
        account_id: input.account_id,
        created_at,
        upstream: None,
    };
    link.validate()?;
    state.store.create_link(&link).await?;
    Ok(link)
}

fn ensure_user(state: &AppState, user_id: &str) -> Result<()> {
    match state.store.get_user(user_id)? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound(Entity::User)),
    }
}

/// The links of `user_id` (`NotFound(Entity::User)` for an unknown user), or of everyone, in creation order.
pub fn list(state: &AppState, user_id: Option<&str>) -> Result<Vec<Link>> {
    match user_id {
        Some(u) => {
            ensure_user(state, u)?;
            state.store.links_of_user(u)
        }
        None => state.store.list_links(),
    }
}

/// Whether links through provider `key` are live: the provider exists and is enabled. Stack answers a link whose
/// provider is no longer configured as not found and leaves it out of lists; the link itself is kept, so
/// re-enabling the provider brings it back.
pub fn provider_enabled(state: &AppState, key: &str) -> Result<bool> {
    Ok(state.store.get_provider(key)?.is_some_and(|p| p.enabled))
}

/// The link of user `user_id` through provider `key` (Stack's current API names a user's account by its provider
/// config id): the sign-in link when there is one, else the oldest. `NotFound(Entity::User)`, else `NotFound(Entity::Link)`.
pub fn get_by_provider(state: &AppState, user_id: &str, key: &str) -> Result<Link> {
    ensure_user(state, user_id)?;
    let links = state.store.links_of_user(user_id)?;
    let mut through = links.into_iter().filter(|l| l.provider == key);
    let first = through.next().ok_or(Error::NotFound(Entity::Link))?;
    Ok(if first.allow_sign_in {
        first
    } else {
        through.find(|l| l.allow_sign_in).unwrap_or(first)
    })
}

/// The link `id` of user `user_id`: `NotFound(Entity::User)`, else `NotFound(Entity::Link)`.
pub fn get(state: &AppState, user_id: &str, id: &str) -> Result<Link> {
    ensure_user(state, user_id)?;
    match state.store.get_link(id)? {
        Some(l) if l.user_id == user_id => Ok(l),
        _ => Err(Error::NotFound(Entity::Link)),
    }
}

/// Applies `change` to the link `id` of user `user_id`; the sign-in rules are re-checked atomically.
pub async fn update(state: &AppState, user_id: &str, id: &str, change: LinkChange) -> Result<Link> {
    if let Some(a) = &change.account_id {
        validate_account_id(a)?;
    }
    if let Some(e) = &change.email {
        validate_email(e)?;
    }
    ensure_user(state, user_id)?;
    state
        .store
        .update_link(id, |l| {
            if l.user_id != user_id {
                return Err(Error::NotFound(Entity::Link));
            }
            if let Some(v) = change.allow_sign_in {
                l.allow_sign_in = v;
            }
            if let Some(v) = change.allow_connected_accounts {
                l.allow_connected_accounts = v;
            }
            if let Some(v) = &change.email {
                l.email = Some(v.clone());
            }
            if let Some(v) = &change.account_id {
                l.account_id = v.clone();
            }
            Ok(())
        })
        .await
}

/// Deletes the link `id` of user `user_id`.
pub async fn delete(state: &AppState, user_id: &str, id: &str) -> Result<Link> {
    // A link never changes user, so the one checked here is the one deleted (or it is gone: NotFound).
    get(state, user_id, id)?;
    state.store.delete_link(id).await
}
