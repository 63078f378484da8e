//! User ↔ provider link use cases (docs/endpoints.md#links), free of Stack's wire format. A link is always addressed through
//! its user: a link of another user is "not found", exactly like a missing one, so ids cannot be probed across
//! users.

use crate::clock::Clock;
use crate::crypto::uuid_v4;
use crate::error::{Entity, Error, Field, Result, Rule};
use crate::model::catalogue;
use crate::model::link::{validate_account_id, validate_email, Link, CUSTOM_TYPE};
use crate::store::Store;

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

/// Stack checks the user's one sign-in link per provider type before the upstream account's one sign-in user. The
/// store enforces both atomically but reports the first it meets, so when a request breaks both the type rule is
/// looked at here first, to answer what Stack answers (`Conflict { field: Field::Provider }`).
async fn check_sign_in_slot(store: &Store, user_id: &str, provider: &str, id: &str) -> Result<()> {
    match store.sign_in_link_of_user(user_id, provider).await? {
        Some(l) if l.id != id => Err(Error::Conflict {
            field: Field::Provider,
            value: provider.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Stack's third rule: a user links one upstream account through one provider at most once, whatever the links'
/// flags. Unlike the sign-in rules it guards no index, so a point-in-time look at the user's links suffices (two
/// racing requests can at worst leave a duplicate that nothing resolves through).
async fn check_not_linked(
    store: &Store,
    user_id: &str,
    provider: &str,
    account_id: &str,
    id: &str,
) -> Result<()> {
    let links = store.links_of_user(user_id).await?;
    if links
        .iter()
        .any(|l| l.id != id && l.provider == provider && l.account_id == account_id)
    {
        return Err(Error::NotAllowed(Rule::LinkRepeated));
    }
    Ok(())
}

/// Creates a link whose type is its provider's Stack type (`custom` for custom providers and Rocket.Chat-only
/// presets). The store checks, atomically, that the provider exists and is enabled, that the user exists, and the
/// two sign-in rules; here, in Stack's order, the fields are checked, then the provider, then Stack's rules.
pub async fn create(store: &Store, clock: &Clock, input: NewLink) -> Result<Link> {
    let provider = store.get_provider(&input.provider).await?;
    // Without a provider the link is refused below; the type is never seen.
    let provider_type = provider.as_ref().map_or(CUSTOM_TYPE, catalogue::link_type);
    let created_at = store.next_link_time(&input.user_id, clock.now_ms()).await?;
    let link = Link {
        id: uuid_v4(),
        user_id: input.user_id,
        provider: input.provider,
        provider_type: provider_type.into(),
        email: input.email,
        allow_sign_in: input.allow_sign_in,
        allow_connected_accounts: input.allow_connected_accounts,
        account_id: input.account_id,
        created_at,
        upstream: None,
    };
    link.validate()?;
    if !provider.is_some_and(|p| p.enabled) {
        return Err(Error::NotFound(Entity::Provider));
    }
    if link.allow_sign_in {
        check_sign_in_slot(store, &link.user_id, &link.provider, &link.id).await?;
    }
    check_not_linked(
        store,
        &link.user_id,
        &link.provider,
        &link.account_id,
        &link.id,
    )
    .await?;
    store.create_link(&link).await?;
    Ok(link)
}

async fn ensure_user(store: &Store, user_id: &str) -> Result<()> {
    match store.get_user(user_id).await? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound(Entity::User)),
    }
}

/// The links of `user_id` (`NotFound("user")` for an unknown user), or of everyone, in creation order.
pub async fn list(store: &Store, user_id: Option<&str>) -> Result<Vec<Link>> {
    match user_id {
        Some(u) => {
            ensure_user(store, u).await?;
            store.links_of_user(u).await
        }
        None => store.list_links().await,
    }
}

/// Whether Stack shows links through provider `key`: the provider exists and is enabled, or `key` is itself one of
/// Stack's standard types (Stack then reads the type from the provider config id, so such links outlive their
/// provider's configuration). Stack answers any other link whose provider is no longer configured as not found and
/// leaves it out of lists; the link itself is kept, so re-enabling the provider brings it back.
pub async fn shown(store: &Store, key: &str) -> Result<bool> {
    if catalogue::all().any(|p| p.stack_type == Some(key)) {
        return Ok(true);
    }
    Ok(store.get_provider(key).await?.is_some_and(|p| p.enabled))
}

/// The link of user `user_id` through provider `key` (Stack's current API names a user's account by its provider
/// config id): the sign-in link when there is one, else the oldest. `NotFound("user")`, else `NotFound("link")`.
pub async fn get_by_provider(store: &Store, user_id: &str, key: &str) -> Result<Link> {
    ensure_user(store, user_id).await?;
    let links = store.links_of_user(user_id).await?;
    let mut through = links.into_iter().filter(|l| l.provider == key);
    let first = through.next().ok_or(Error::NotFound(Entity::Link))?;
    Ok(if first.allow_sign_in {
        first
    } else {
        through.find(|l| l.allow_sign_in).unwrap_or(first)
    })
}

/// The link `id` of user `user_id`: `NotFound("user")`, else `NotFound("link")`.
pub async fn get(store: &Store, user_id: &str, id: &str) -> Result<Link> {
    ensure_user(store, user_id).await?;
    match store.get_link(id).await? {
        Some(l) if l.user_id == user_id => Ok(l),
        _ => Err(Error::NotFound(Entity::Link)),
    }
}

/// Applies `change` to the link `id` of user `user_id`; the sign-in rules are re-checked atomically, and, in
/// Stack's order before them, the type rule when sign-in is turned on and the one-link-per-account rule when the
/// account id is set.
pub async fn update(store: &Store, user_id: &str, id: &str, change: LinkChange) -> Result<Link> {
    if let Some(a) = &change.account_id {
        validate_account_id(a)?;
    }
    if let Some(e) = &change.email {
        validate_email(e)?;
    }
    ensure_user(store, user_id).await?;
    if change.allow_sign_in == Some(true) || change.account_id.is_some() {
        let current = get(store, user_id, id).await?;
        if change.allow_sign_in == Some(true) {
            check_sign_in_slot(store, user_id, &current.provider, id).await?;
        }
        if let Some(account_id) = &change.account_id {
            check_not_linked(store, user_id, &current.provider, account_id, id).await?;
        }
    }
    store
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
pub async fn delete(store: &Store, user_id: &str, id: &str) -> Result<Link> {
    // A link never changes user, so the one checked here is the one deleted (or it is gone: NotFound).
    get(store, user_id, id).await?;
    store.delete_link(id).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::World;

    fn new_link(user_id: &str, account: &str, sign_in: bool) -> NewLink {
        NewLink {
            user_id: user_id.into(),
            provider: "idp".into(),
            email: None,
            allow_sign_in: sign_in,
            allow_connected_accounts: true,
            account_id: account.into(),
        }
    }

    async fn world_with_provider(enabled: bool) -> World {
        let w = World::new().await;
        w.provider(enabled, |_| {}).await;
        w
    }

    #[tokio::test]
    async fn a_link_is_reached_only_through_its_own_user() {
        let w = world_with_provider(true).await;
        let jane = w.user("jane", &["user"]).await;
        let bob = w.user("bob", &["user"]).await;
        let link = create(&w.store, &w.clock, new_link(&jane.id, "a1", true))
            .await
            .unwrap();
        assert_eq!(get(&w.store, &jane.id, &link.id).await.unwrap(), link);
        assert!(matches!(
            get(&w.store, &bob.id, &link.id).await,
            Err(Error::NotFound(Entity::Link))
        ));
        assert!(matches!(
            get(&w.store, "ghost", &link.id).await,
            Err(Error::NotFound(Entity::User))
        ));
        let other = delete(&w.store, &bob.id, &link.id).await;
        assert!(
            matches!(other, Err(Error::NotFound(Entity::Link))),
            "bob cannot delete jane's link"
        );
        let change = LinkChange {
            allow_sign_in: Some(false),
            ..Default::default()
        };
        let res = update(&w.store, &bob.id, &link.id, change.clone()).await;
        assert!(matches!(res, Err(Error::NotFound(Entity::Link))));
        assert!(
            !update(&w.store, &jane.id, &link.id, change)
                .await
                .unwrap()
                .allow_sign_in
        );
        assert_eq!(list(&w.store, Some(&jane.id)).await.unwrap().len(), 1);
        delete(&w.store, &jane.id, &link.id).await.unwrap();
        assert!(list(&w.store, None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_upstream_account_signs_in_one_user() {
        let w = world_with_provider(true).await;
        let jane = w.user("jane", &["user"]).await;
        let bob = w.user("bob", &["user"]).await;
        create(&w.store, &w.clock, new_link(&jane.id, "a1", true))
            .await
            .unwrap();
        let taken = create(&w.store, &w.clock, new_link(&bob.id, "a1", true)).await;
        assert!(matches!(taken, Err(Error::Conflict { .. })), "{taken:?}");
        // Without sign-in, the same account may be connected to another user.
        create(&w.store, &w.clock, new_link(&bob.id, "a1", false))
            .await
            .unwrap();
        let first = get_by_provider(&w.store, &bob.id, "idp").await.unwrap();
        assert!(!first.allow_sign_in);
    }

    /// Stack's order: breaking both sign-in rules is the type rule's refusal, on create and on update.
    #[tokio::test]
    async fn a_second_sign_in_type_is_refused_before_a_taken_account() {
        let w = world_with_provider(true).await;
        let jane = w.user("jane", &["user"]).await;
        let bob = w.user("bob", &["user"]).await;
        create(&w.store, &w.clock, new_link(&jane.id, "a1", true))
            .await
            .unwrap();
        create(&w.store, &w.clock, new_link(&bob.id, "b1", true))
            .await
            .unwrap();
        let both = create(&w.store, &w.clock, new_link(&bob.id, "a1", true)).await;
        assert!(
            matches!(
                both,
                Err(Error::Conflict {
                    field: Field::Provider,
                    ..
                })
            ),
            "{both:?}"
        );
        let off = create(&w.store, &w.clock, new_link(&bob.id, "a1", false))
            .await
            .unwrap();
        let on = LinkChange {
            allow_sign_in: Some(true),
            ..Default::default()
        };
        let both = update(&w.store, &bob.id, &off.id, on).await;
        assert!(
            matches!(
                both,
                Err(Error::Conflict {
                    field: Field::Provider,
                    ..
                })
            ),
            "{both:?}"
        );
    }

    /// Stack's third rule, on create and on update; another user, or another provider, may link the account.
    #[tokio::test]
    async fn a_user_links_one_upstream_account_through_one_provider_once() {
        let w = world_with_provider(true).await;
        let jane = w.user("jane", &["user"]).await;
        let bob = w.user("bob", &["user"]).await;
        create(&w.store, &w.clock, new_link(&jane.id, "a1", false))
            .await
            .unwrap();
        let again = create(&w.store, &w.clock, new_link(&jane.id, "a1", false)).await;
        assert!(
            matches!(again, Err(Error::NotAllowed(Rule::LinkRepeated))),
            "{again:?}"
        );
        create(&w.store, &w.clock, new_link(&bob.id, "a1", false))
            .await
            .unwrap();
        let other = create(&w.store, &w.clock, new_link(&jane.id, "a2", false))
            .await
            .unwrap();
        let onto = LinkChange {
            account_id: Some("a1".into()),
            ..Default::default()
        };
        let moved = update(&w.store, &jane.id, &other.id, onto).await;
        assert!(
            matches!(moved, Err(Error::NotAllowed(Rule::LinkRepeated))),
            "{moved:?}"
        );
        let same = LinkChange {
            account_id: Some("a2".into()),
            ..Default::default()
        };
        update(&w.store, &jane.id, &other.id, same).await.unwrap();
    }

    /// Stack reads a link's type from its provider config id when the provider is no longer configured, so links
    /// through a key that is a Stack type stay shown; others are hidden until the provider is enabled again.
    #[tokio::test]
    async fn links_through_a_stack_type_key_outlive_their_provider() {
        let w = world_with_provider(false).await;
        crate::core::provider::add(&w.store, &w.clock, "Spotify")
            .await
            .unwrap();
        assert!(
            !w.store
                .get_provider("spotify")
                .await
                .unwrap()
                .unwrap()
                .enabled
        );
        assert!(shown(&w.store, "spotify").await.unwrap());
        assert!(shown(&w.store, "github").await.unwrap(), "never configured");
        assert!(!shown(&w.store, "idp").await.unwrap());
        w.store
            .update_provider("idp", |p| {
                p.enabled = true;
                Ok(())
            })
            .await
            .unwrap();
        assert!(shown(&w.store, "idp").await.unwrap());
    }

    #[tokio::test]
    async fn links_need_an_enabled_provider() {
        let w = world_with_provider(false).await;
        let jane = w.user("jane", &["user"]).await;
        assert!(!shown(&w.store, "idp").await.unwrap());
        let res = create(&w.store, &w.clock, new_link(&jane.id, "a1", true)).await;
        assert!(res.is_err(), "{res:?}");
        let empty = create(&w.store, &w.clock, new_link(&jane.id, "", true)).await;
        assert!(matches!(empty, Err(Error::Invalid { .. })));
    }

    #[tokio::test]
    async fn a_link_takes_its_presets_stack_type() {
        let w = World::new().await;
        let jane = w.user("jane", &["user"]).await;
        for (name, preset, want) in [
            ("Gitlab", Some("gitlab"), "gitlab"),
            ("Nextcloud", Some("nextcloud"), "custom"),
            ("Idp", None, "custom"),
        ] {
            crate::core::provider::add(&w.store, &w.clock, name)
                .await
                .unwrap();
            let key = name.to_ascii_lowercase();
            w.store
                .update_provider(&key, |p| {
                    p.enabled = true;
                    p.preset = preset.map(str::to_owned);
                    Ok(())
                })
                .await
                .unwrap();
            let input = NewLink {
                provider: key,
                ..new_link(&jane.id, "a1", false)
            };
            let link = create(&w.store, &w.clock, input).await.unwrap();
            assert_eq!(link.provider_type, want, "{name}");
        }
    }
}
