//! Creating, finding and deleting users.

use crate::clock::Clock;
use crate::crypto::{self, Hasher};
use crate::error::{Entity, Error, Field, Result};
use crate::model::user::{normalize_email, validate_password, validate_username, Email, Profile};
use crate::model::{Role, User};
use crate::store::Store;

/// What creating a user touches: the store, the clock and the argon2 pool.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub hasher: &'a Hasher,
}

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
    /// The OpenID Connect claims, standard and custom together (see [`Profile::parse`]).
    pub claims: Option<serde_json::Value>,
}

/// What a caller may change on a user; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    /// Replaces the whole profile; `{}` clears it.
    pub claims: Option<serde_json::Value>,
}

pub async fn create(ctx: Users<'_>, input: NewUser) -> Result<User> {
    validate_username(&input.username)?;
    let email = normalize_email(&input.email)?;
    validate_password(&input.password)?;
    let profile = input
        .claims
        .as_ref()
        .map(Profile::parse)
        .transpose()?
        .unwrap_or_default();
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
    check_name(&name)?;
    // Cheap uniqueness pre-checks so a taken name does not cost an argon2 hash; the transaction re-checks.
    if ctx.store.user_by_username(&input.username).await?.is_some() {
        return Err(Error::Conflict {
            field: Field::Username,
            value: input.username,
        });
    }
    if ctx.store.user_by_email(&email).await?.is_some() {
        return Err(Error::Conflict {
            field: Field::Email,
            value: email,
        });
    }
    let hash = ctx.hasher.hash(input.password.clone()).await?;
    let two_factor =
        super::two_factor::for_new_password(ctx.hasher, &input.password, &hash).await?;
    let now = ctx.clock.now_ms();
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
        profile,
    };
    ctx.store.create_user(&user).await?;
    Ok(user)
}

fn check_name(name: &str) -> Result<()> {
    if name.chars().count() > 200 {
        return Err(Error::invalid(
            Field::Name,
            "must be at most 200 characters",
        ));
    }
    Ok(())
}

/// Changes a user's name or OpenID Connect claims (validated before anything is written).
pub async fn update(ctx: Users<'_>, id: &str, changes: UserChanges) -> Result<User> {
    let name = changes.name.map(|n| n.trim().to_owned());
    if let Some(n) = &name {
        if n.is_empty() {
            return Err(Error::invalid(Field::Name, "must not be empty"));
        }
        check_name(n)?;
    }
    let profile = changes.claims.as_ref().map(Profile::parse).transpose()?;
    let now = ctx.clock.now_ms();
    ctx.store
        .update_user(id, |u| {
            if let Some(n) = &name {
                u.name = n.clone();
            }
            if let Some(p) = &profile {
                u.profile = p.clone();
            }
            u.updated_at = now;
            Ok(())
        })
        .await
}

/// Finds a user by id or by username (exactly one given).
pub async fn find(store: &Store, id: Option<&str>, username: Option<&str>) -> Result<User> {
    let found = match (id, username) {
        (Some(id), _) => store.get_user(id).await?,
        (None, Some(name)) => store.user_by_username(name).await?,
        (None, None) => {
            return Err(Error::invalid(
                Field::UserId,
                "userId or username is required",
            ))
        }
    };
    found.ok_or(Error::NotFound(Entity::User))
}

/// Deletes the user with its sessions and its provider links (the store removes those with the user), and
/// revokes every token issued to it at once.
pub async fn delete(store: &Store, id: &str) -> Result<User> {
    let user = store.delete_user(id).await?;
    store.revoke_user_tokens(id).await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::World;

    fn new_user(name: &str, email: &str) -> NewUser {
        NewUser {
            username: name.into(),
            email: email.into(),
            password: "password1".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn taken_usernames_and_emails_are_refused() {
        let w = World::new().await;
        let jane = create(w.users(), new_user("jane", "Jane@Example.com"))
            .await
            .unwrap();
        assert_eq!(jane.roles, vec![Role::User], "plain user by default");
        assert_eq!(jane.name, "jane", "named after the username by default");
        assert_eq!(jane.emails[0].address, "jane@example.com");
        let name = create(w.users(), new_user("jane", "other@example.com")).await;
        assert!(
            matches!(
                name,
                Err(Error::Conflict {
                    field: Field::Username,
                    ..
                })
            ),
            "{name:?}"
        );
        let email = create(w.users(), new_user("janet", "JANE@example.com")).await;
        assert!(
            matches!(
                email,
                Err(Error::Conflict {
                    field: Field::Email,
                    ..
                })
            ),
            "{email:?}"
        );
        assert_eq!(w.store.list_users().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn claims_are_set_on_create_and_replaced_on_update() {
        let w = World::new().await;
        let input = NewUser {
            claims: Some(serde_json::json!({"given_name": "Jane", "team": "ops"})),
            ..new_user("jane", "jane@example.com")
        };
        let jane = create(w.users(), input).await.unwrap();
        assert_eq!(jane.profile.custom["team"], "ops");
        let bad = NewUser {
            claims: Some(serde_json::json!({"sub": "x"})),
            ..new_user("john", "john@example.com")
        };
        let e = create(w.users(), bad).await.unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: Field::Claims,
                    ..
                }
            ),
            "{e:?}"
        );
        let changes = UserChanges {
            name: Some(" Jane D ".into()),
            claims: Some(serde_json::json!({"nickname": "jd"})),
        };
        let after = update(w.users(), &jane.id, changes).await.unwrap();
        assert_eq!(after.name, "Jane D");
        assert_eq!(
            serde_json::Value::Object(after.profile.to_json()),
            serde_json::json!({"nickname": "jd"})
        );
        assert_eq!(w.store.get_user(&jane.id).await.unwrap().unwrap(), after);
    }

    #[tokio::test]
    async fn the_last_admin_cannot_be_deleted() {
        let w = World::new().await;
        let root = w.user("root", &["admin"]).await;
        let res = delete(&w.store, &root.id).await;
        assert!(matches!(res, Err(Error::NotAllowed(_))), "{res:?}");
        let second = w.user("second", &["admin", "user"]).await;
        delete(&w.store, &root.id).await.unwrap();
        assert!(matches!(
            find(&w.store, Some(&root.id), None).await,
            Err(Error::NotFound(Entity::User))
        ));
        assert_eq!(
            find(&w.store, None, Some("second")).await.unwrap().id,
            second.id
        );
    }

    #[tokio::test]
    async fn deleting_a_user_ends_its_sessions() {
        let w = World::new().await;
        w.user("root", &["admin"]).await;
        let jane = w.user("jane", &["user"]).await;
        let token = crate::core::session::issue_login_token(w.login_tokens(), &jane, Vec::new())
            .await
            .unwrap();
        delete(&w.store, &jane.id).await.unwrap();
        let after = crate::core::session::authenticate(&w.store, &w.clock, &jane.id, &token).await;
        assert!(matches!(after, Err(Error::Unauthorized)));
    }
}
