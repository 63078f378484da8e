//! Federated sign-in's decisions (docs/endpoints.md#federation): which local user an upstream identity signs in
//! as. The callback handler (`upstream::callback`) does the HTTP (code exchange, identity document, cookies,
//! pages) and hands the mapped [`Identity`] here.
//!
//! The rules, in order: an existing sign-in link through the provider signs in its user; else, when the provider
//! merges users (`-merge_users`), the local user matched by `-key_field` is linked, if [`merge_refusal`] lets it;
//! else a new user is created. A merge hands the local account to whoever controls the upstream one, so it is
//! refused rather than guessed: an email must be one the upstream verified, and admins, deactivated accounts
//! and (without `-merge_users_with_password`) accounts with a password are never merged.

use crate::clock::Clock;
use crate::crypto;
use crate::error::{Error, Field, Result, Rule};
use crate::model::catalogue;
use crate::model::link::Link;
use crate::model::provider::{KeyField, Provider};
use crate::model::user::{normalize_email, Email};
use crate::model::{Role, User};
use crate::store::Store;

/// An upstream account as its identity document describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub account_id: String,
    pub username: Option<String>,
    pub email: Option<String>,
    /// The upstream vouches for `email` (OIDC's `email_verified`); the only ground for merging by email.
    pub email_verified: bool,
    pub name: Option<String>,
    pub avatar: Option<String>,
}

/// Which local user an identity signs in as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A sign-in link through this provider exists: its (active) user.
    Linked { link: Link, user: User },
    /// No link; the local user matched by `-key_field` may be merged: link it.
    Merge(User),
    /// A matching local account that may not be merged, and the rule that forbids it.
    Refuse(Rule),
    /// No link and no match (or merging is off): a new user.
    Create,
}

/// Decides, reading only, which user `ident` signs in as through provider `p`. A link whose user is gone or
/// deactivated is `Unauthorized`.
pub async fn decide(store: &Store, p: &Provider, ident: &Identity) -> Result<Decision> {
    if let Some(link) = store
        .sign_in_link(&p.service_key(), &ident.account_id)
        .await?
    {
        let user = store
            .get_user(&link.user_id)
            .await?
            .filter(|u| u.active)
            .ok_or(Error::Unauthorized)?;
        return Ok(Decision::Linked { link, user });
    }
    Ok(match merge_candidate(store, p, ident).await? {
        Some(u) => match merge_refusal(p, ident, &u) {
            Some(why) => Decision::Refuse(why),
            None => Decision::Merge(u),
        },
        None => Decision::Create,
    })
}

/// Signs `ident` in: [`decide`], then carry it out. The upstream tokens (`sealed`) go on the link; a refusal is
/// `NotAllowed` with its reason, and nothing is left behind by a failure.
pub async fn sign_in(
    store: &Store,
    clock: &Clock,
    p: &Provider,
    ident: &Identity,
    sealed: Vec<u8>,
) -> Result<User> {
    let (user, created) = match decide(store, p, ident).await? {
        Decision::Linked { link, user } => {
            store
                .update_link(&link.id, |l| {
                    l.upstream = Some(sealed.clone());
                    Ok(())
                })
                .await?;
            return Ok(user);
        }
        Decision::Refuse(why) => return Err(Error::NotAllowed(why)),
        Decision::Merge(u) => (u, false),
        Decision::Create => (
            create_user(store, clock, &p.service_key(), ident).await?,
            true,
        ),
    };
    let link = Link {
        id: crypto::uuid_v4(),
        user_id: user.id.clone(),
        provider: p.service_key(),
        provider_type: catalogue::link_type(p).into(),
        email: ident.email.clone(),
        allow_sign_in: true,
        allow_connected_accounts: true,
        account_id: ident.account_id.clone(),
        created_at: store.next_link_time(&user.id, clock.now_ms()).await?,
        upstream: Some(sealed),
    };
    if let Err(e) = store.create_link(&link).await {
        if created {
            // Nothing may be left behind by a failed sign-in.
            let _ = store.delete_user(&user.id).await;
        }
        return Err(e);
    }
    Ok(user)
}

/// The local user `-merge_users` matches by `-key_field`, if merging is on and one matches.
async fn merge_candidate(store: &Store, p: &Provider, ident: &Identity) -> Result<Option<User>> {
    if !p.merge_users {
        return Ok(None);
    }
    match p.key_field {
        KeyField::Username => match &ident.username {
            Some(u) => store.user_by_username(u).await,
            None => Ok(None),
        },
        KeyField::Email => match ident.email.as_deref().map(normalize_email) {
            Some(Ok(e)) => store.user_by_email(&e).await,
            _ => Ok(None),
        },
    }
}

/// Why the upstream account may not take over local user `u`, or `None` when it may. A username is only as
/// trustworthy as the upstream's namespace, which is why both key fields stop at admins and at accounts with a
/// password.
pub fn merge_refusal(p: &Provider, ident: &Identity, u: &User) -> Option<Rule> {
    if p.key_field == KeyField::Email && !ident.email_verified {
        Some(Rule::MergeUnverifiedEmail)
    } else if u.is_admin() {
        Some(Rule::MergeAdmin)
    } else if !u.active {
        Some(Rule::MergeDeactivated)
    } else if u.password_hash.is_some() && !p.merge_users_with_password {
        Some(Rule::MergePassword)
    } else {
        None
    }
}

/// A local user for a first-time upstream account: its username (made unique with a numeric suffix), email (when
/// no other user has it; unverified here) and name; no password (it signs in through the provider).
async fn create_user(
    store: &Store,
    clock: &Clock,
    service: &str,
    ident: &Identity,
) -> Result<User> {
    let base: String = ident
        .username
        .clone()
        .or_else(|| {
            ident
                .email
                .as_deref()
                .and_then(|e| e.split('@').next())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("{service}-{}", ident.account_id))
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .take(48)
        .collect();
    let base = if base.is_empty() {
        format!("{service}-user")
    } else {
        base
    };
    let email = match ident.email.as_deref().map(normalize_email) {
        Some(Ok(e)) if store.user_by_email(&e).await?.is_none() => Some(e),
        _ => None,
    };
    let now = clock.now_ms();
    for n in 0..50 {
        let username = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{}", n + 1)
        };
        if store.user_by_username(&username).await?.is_some() {
            continue;
        }
        let user = User {
            id: crypto::random_id(),
            username: username.clone(),
            name: ident.name.clone().unwrap_or_else(|| username.clone()),
            emails: email
                .iter()
                .map(|e| Email {
                    address: e.clone(),
                    verified: false,
                })
                .collect(),
            roles: vec![Role::User],
            active: true,
            password_hash: None,
            created_at: now,
            updated_at: now,
            two_factor: None,
            profile: Default::default(),
        };
        match store.create_user(&user).await {
            Ok(()) => return Ok(user),
            Err(Error::Conflict {
                field: Field::Username,
                ..
            }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict {
        field: Field::Username,
        value: base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::World;

    fn ident(
        account: &str,
        username: Option<&str>,
        email: Option<&str>,
        verified: bool,
    ) -> Identity {
        Identity {
            account_id: account.into(),
            username: username.map(str::to_owned),
            email: email.map(str::to_owned),
            email_verified: verified,
            name: None,
            avatar: None,
        }
    }

    /// A user without a password (one who signs in through a provider).
    async fn passwordless(w: &World, name: &str) -> User {
        let mut u = w.user(name, &["user"]).await;
        w.store
            .update_user(&u.id, |u| {
                u.password_hash = None;
                Ok(())
            })
            .await
            .unwrap();
        u.password_hash = None;
        u
    }

    fn by_email(p: &mut Provider) {
        p.merge_users = true;
        p.key_field = KeyField::Email;
    }

    #[tokio::test]
    async fn a_first_sign_in_creates_a_user_and_the_next_one_follows_its_link() {
        let w = World::new().await;
        let p = w.provider(true, |_| {}).await;
        w.user("jane", &["user"]).await;
        let id = ident("42", Some("jane"), Some("jane@example.com"), true);
        assert_eq!(decide(&w.store, &p, &id).await.unwrap(), Decision::Create);
        let created = sign_in(&w.store, &w.clock, &p, &id, vec![1]).await.unwrap();
        // Merging is off: the taken name gets a suffix, the taken email is left out, no password is set.
        assert_eq!(created.username, "jane-2");
        assert!(created.emails.is_empty());
        assert!(created.password_hash.is_none());
        match decide(&w.store, &p, &id).await.unwrap() {
            Decision::Linked { user, link } => {
                assert_eq!(user.id, created.id);
                assert_eq!(link.upstream, Some(vec![1]));
            }
            other => panic!("{other:?}"),
        }
        let again = sign_in(&w.store, &w.clock, &p, &id, vec![2]).await.unwrap();
        assert_eq!(again.id, created.id);
        assert_eq!(w.store.list_users().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn an_email_merges_only_when_the_upstream_verified_it() {
        let w = World::new().await;
        let p = w.provider(true, by_email).await;
        let jane = passwordless(&w, "jane").await;
        let unverified = ident("42", None, Some("Jane@Example.com"), false);
        assert_eq!(
            decide(&w.store, &p, &unverified).await.unwrap(),
            Decision::Refuse(Rule::MergeUnverifiedEmail)
        );
        let users = w.store.list_users().await.unwrap().len();
        let refused = sign_in(&w.store, &w.clock, &p, &unverified, vec![]).await;
        assert!(matches!(refused, Err(Error::NotAllowed(_))), "{refused:?}");
        assert_eq!(
            w.store.list_users().await.unwrap().len(),
            users,
            "a refusal writes nothing"
        );
        assert!(w.store.links_of_user(&jane.id).await.unwrap().is_empty());

        let verified = ident("42", None, Some("jane@example.com"), true);
        assert_eq!(
            decide(&w.store, &p, &verified).await.unwrap(),
            Decision::Merge(jane.clone())
        );
        let merged = sign_in(&w.store, &w.clock, &p, &verified, vec![])
            .await
            .unwrap();
        assert_eq!(merged.id, jane.id);
        assert_eq!(w.store.links_of_user(&jane.id).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn admins_and_deactivated_accounts_are_never_merged() {
        let w = World::new().await;
        let p = w
            .provider(true, |p| {
                p.merge_users = true;
                p.merge_users_with_password = true;
            })
            .await;
        w.user("root", &["admin"]).await;
        let by_name = |n: &str| ident("1", Some(n), None, true);
        assert_eq!(
            decide(&w.store, &p, &by_name("root")).await.unwrap(),
            Decision::Refuse(Rule::MergeAdmin)
        );
        let gone = w.user("gone", &["user"]).await;
        w.store
            .update_user(&gone.id, |u| {
                u.active = false;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            decide(&w.store, &p, &by_name("gone")).await.unwrap(),
            Decision::Refuse(Rule::MergeDeactivated)
        );
    }

    #[tokio::test]
    async fn an_account_with_a_password_merges_only_when_the_provider_allows_it() {
        let w = World::new().await;
        let strict = w.provider(true, |p| p.merge_users = true).await;
        let jane = w.user("jane", &["user"]).await;
        let id = ident("1", Some("jane"), None, false);
        assert_eq!(
            decide(&w.store, &strict, &id).await.unwrap(),
            Decision::Refuse(Rule::MergePassword)
        );
        let mut lenient = strict.clone();
        lenient.merge_users_with_password = true;
        // By username, the upstream's email verification does not matter.
        assert_eq!(
            decide(&w.store, &lenient, &id).await.unwrap(),
            Decision::Merge(jane)
        );
    }

    #[tokio::test]
    async fn a_link_to_a_deactivated_user_does_not_sign_in() {
        let w = World::new().await;
        let p = w.provider(true, |_| {}).await;
        let id = ident("7", Some("bob"), None, false);
        let bob = sign_in(&w.store, &w.clock, &p, &id, vec![]).await.unwrap();
        w.store
            .update_user(&bob.id, |u| {
                u.active = false;
                Ok(())
            })
            .await
            .unwrap();
        assert!(matches!(
            decide(&w.store, &p, &id).await,
            Err(Error::Unauthorized)
        ));
    }

    #[tokio::test]
    async fn a_link_through_a_preset_has_its_stack_type() {
        let w = World::new().await;
        let p = w.provider(true, |p| p.preset = Some("github".into())).await;
        let user = sign_in(
            &w.store,
            &w.clock,
            &p,
            &ident("9", Some("octo"), None, false),
            vec![],
        )
        .await
        .unwrap();
        let links = w.store.links_of_user(&user.id).await.unwrap();
        assert_eq!(links[0].provider_type, "github");
    }
}
