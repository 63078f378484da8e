//! Creating, finding and deleting users.

use crate::crypto;
use crate::error::{Error, Result};
use crate::model::user::{normalize_email, validate_password, validate_username, Email};
use crate::model::{Role, User};
use crate::state::AppState;

/// What a caller may set when creating a user.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: String,
    pub name: Option<String>,
    pub roles: Option<Vec<String>>,
    pub active: Option<bool>,
    pub verified: Option<bool>,
}

pub async fn create(state: &AppState, input: NewUser) -> Result<User> {
    validate_username(&input.username)?;
    let email = normalize_email(&input.email)?;
    validate_password(&input.password)?;
    let roles = match input.roles {
        Some(r) if !r.is_empty() => {
            let mut roles = r
                .iter()
                .map(|s| Role::parse(s))
                .collect::<Result<Vec<_>>>()?;
            roles.sort();
            roles.dedup();
            roles
        }
        _ => vec![Role::User],
    };
    let name = input
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| input.username.clone());
    if name.chars().count() > 200 {
        return Err(Error::invalid("name", "must be at most 200 characters"));
    }
    // Cheap uniqueness pre-checks so a taken name does not cost an argon2 hash; the transaction re-checks.
    if state.store.user_by_username(&input.username)?.is_some() {
        return Err(Error::Conflict {
            field: "username",
            value: input.username,
        });
    }
    if state.store.user_by_email(&email)?.is_some() {
        return Err(Error::Conflict {
            field: "email",
            value: email,
        });
    }
    let hash = state.hasher().hash(input.password.clone()).await?;
    let two_factor = super::two_factor::for_new_password(state, &input.password, &hash).await?;
    let now = state.clock.now_ms();
    let user = User {
        id: crypto::random_id(),
        username: input.username,
        name,
        emails: vec![Email {
            address: email,
            verified: input.verified.unwrap_or(false),
        }],
        roles,
        active: input.active.unwrap_or(true),
        password_hash: Some(hash),
        created_at: now,
        updated_at: now,
        two_factor: Some(two_factor),
    };
    state.store.create_user(&user).await?;
    Ok(user)
}

/// Finds a user by id or by username (exactly one given).
pub fn find(state: &AppState, id: Option<&str>, username: Option<&str>) -> Result<User> {
    let found = match (id, username) {
        (Some(id), _) => state.store.get_user(id)?,
        (None, Some(name)) => state.store.user_by_username(name)?,
        (None, None) => return Err(Error::invalid("userId", "userId or username is required")),
    };
    found.ok_or(Error::NotFound("user"))
}

/// Deletes the user with its sessions and its provider links (the store removes those with the user), and
/// revokes every token issued to it at once.
pub async fn delete(state: &AppState, id: &str) -> Result<User> {
    let user = state.store.delete_user(id).await?;
    state.store.revoke_user_tokens(id).await?;
    Ok(user)
}
