//! OAuth app use cases: registration with a secret shown once, updates, secret rotation, deletion.

use crate::clock::Clock;
use crate::crypto::{self, Hasher, Verifier};
use crate::error::{Entity, Error, Field, Result};
use crate::model::app::AppInput;
use crate::model::redirect::HttpRedirects;
use crate::model::{App, ClientType, User};
use crate::store::Store;

/// What the app use cases touch: the store, the clock, the argon2 pool behind the client-secret verification cache
/// (forgotten on every change of a secret), and the configured redirect-URI policy.
#[derive(Clone, Copy)]
pub struct Apps<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub verifier: &'a Verifier,
    pub redirects: HttpRedirects,
}

impl Apps<'_> {
    fn hasher(&self) -> &Hasher {
        self.verifier.hasher()
    }
}

/// A freshly created or re-keyed app with its plaintext secret (public clients have none).
pub struct WithSecret {
    pub app: App,
    pub secret: Option<String>,
}

pub async fn create(ctx: Apps<'_>, input: AppInput, by: &User) -> Result<WithSecret> {
    create_with_id(ctx, input, by, crypto::random_id(), None).await
}

/// Creates an app with a chosen `client_id` and optionally a chosen secret (declared `[[clients]]`, `--dev`).
pub async fn create_with_id(
    ctx: Apps<'_>,
    input: AppInput,
    by: &User,
    client_id: String,
    secret: Option<String>,
) -> Result<WithSecret> {
    let f = input.validate(ctx.redirects)?;
    let client_type = f.client_type.unwrap_or_default();
    let grant_types = f.grant_types.clone().unwrap_or_else(App::default_grants);
    crate::model::app::AppFields::check_combination(client_type, &grant_types)?;
    let app_oidc = crate::model::app::OidcSettings::default().patched(f.oidc);
    app_oidc.check_with(&f.redirect_uris)?;
    let (secret, secret_hash) = match client_type {
        ClientType::Public => (None, None),
        ClientType::Confidential => {
            let s = secret.unwrap_or_else(crypto::random_token);
            let h = ctx.hasher().hash(s.clone()).await?;
            (Some(s), Some(h))
        }
    };
    let now = ctx.clock.now_ms();
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
        oidc: app_oidc,
    };
    ctx.store.create_app(&app).await?;
    Ok(WithSecret { app, secret })
}

/// Finds an app by exactly one of its `_id` or `clientId`.
pub async fn find(store: &Store, id: Option<&str>, client_id: Option<&str>) -> Result<App> {
    let found = match (id, client_id) {
        (Some(id), None) => store.get_app(id).await?,
        (None, Some(c)) => store.app_by_client_id(c).await?,
        _ => {
            return Err(Error::invalid(
                Field::AppId,
                "exactly one of _id and clientId is required",
            ))
        }
    };
    found.ok_or(Error::NotFound(Entity::App))
}

pub async fn update(ctx: Apps<'_>, id: &str, input: AppInput) -> Result<App> {
    let f = input.validate(ctx.redirects)?;
    let now = ctx.clock.now_ms();
    let before = ctx
        .store
        .get_app(id)
        .await?
        .ok_or(Error::NotFound(Entity::App))?;
    // Switching to confidential needs a secret: one is generated and must be fetched with regenerateSecret.
    let needs_secret =
        f.client_type == Some(ClientType::Confidential) && before.secret_hash.is_none();
    let new_hash = if needs_secret {
        Some(ctx.hasher().hash(crypto::random_token()).await?)
    } else {
        None
    };
    let app = ctx
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
        ctx.verifier.forget(&app.client_id);
    }
    if !app.active && before.active {
        // Deactivation revokes at once; a reactivated app starts with no live tokens.
        ctx.store.revoke_client_tokens(&app.client_id).await?;
    }
    Ok(app)
}

/// [`update`] when `input` would change `app` (anything but its update time), else `app` as it is, without a write:
/// start-up sets each declared client so, and an unchanged config costs a restart nothing.
pub async fn update_if_changed(ctx: Apps<'_>, app: &App, input: AppInput) -> Result<App> {
    let mut probe = app.clone();
    probe.apply(input.clone().validate(ctx.redirects)?, app.updated_at)?;
    // `update` gives a new confidential client a secret and takes a public one's away.
    let secret_changes = match probe.client_type {
        ClientType::Public => app.secret_hash.is_some(),
        ClientType::Confidential => app.secret_hash.is_none(),
    };
    if probe == *app && !secret_changes {
        return Ok(app.clone());
    }
    update(ctx, &app.id, input).await
}

pub async fn regenerate_secret(ctx: Apps<'_>, id: &str) -> Result<WithSecret> {
    let app = ctx
        .store
        .get_app(id)
        .await?
        .ok_or(Error::NotFound(Entity::App))?;
    if app.client_type == ClientType::Public {
        return Err(Error::invalid(
            Field::ClientType,
            "public clients have no secret",
        ));
    }
    let secret = crypto::random_token();
    let hash = ctx.hasher().hash(secret.clone()).await?;
    let now = ctx.clock.now_ms();
    let app = ctx
        .store
        .update_app(id, |a| {
            a.secret_hash = Some(hash.clone());
            a.updated_at = now;
            Ok(())
        })
        .await?;
    ctx.verifier.forget(&app.client_id);
    Ok(WithSecret {
        app,
        secret: Some(secret),
    })
}

pub async fn delete(ctx: Apps<'_>, id: &str) -> Result<App> {
    let app = ctx.store.delete_app(id).await?;
    ctx.verifier.forget(&app.client_id);
    ctx.store.revoke_client_tokens(&app.client_id).await?;
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::World;

    fn input(client_type: &str, redirect: &str) -> AppInput {
        AppInput {
            name: "App".into(),
            active: true,
            redirect_uri: redirect.into(),
            client_type: Some(client_type.into()),
            grant_types: None,
            scopes: None,
            skip_consent: None,
            oidc: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_confidential_app_gets_a_secret_shown_once_and_a_public_one_none() {
        let w = World::new().await;
        let owner = w.user("root", &["admin"]).await;
        let conf = create(
            w.apps(),
            input("confidential", "https://app.example/cb"),
            &owner,
        )
        .await
        .unwrap();
        let secret = conf.secret.unwrap();
        let stored = find(&w.store, None, Some(&conf.app.client_id))
            .await
            .unwrap();
        let phc = stored.secret_hash.unwrap();
        assert!(w
            .verifier
            .hasher()
            .verify(secret, phc.clone())
            .await
            .unwrap());
        let public = create(w.apps(), input("public", "https://app.example/cb"), &owner)
            .await
            .unwrap();
        assert!(public.secret.is_none() && public.app.secret_hash.is_none());
        let res = regenerate_secret(w.apps(), &public.app.id).await;
        assert!(
            matches!(res, Err(Error::Invalid { .. })),
            "public clients have no secret"
        );
        let rotated = regenerate_secret(w.apps(), &conf.app.id).await.unwrap();
        assert_ne!(rotated.app.secret_hash.unwrap(), phc);
    }

    #[tokio::test]
    async fn http_redirects_need_a_loopback_host_unless_the_config_allows_any() {
        let w = World::new().await;
        let owner = w.user("root", &["admin"]).await;
        let res = create(w.apps(), input("public", "http://app.example/cb"), &owner).await;
        assert!(matches!(res, Err(Error::Invalid { .. })), "{:?}", res.err());
        create(
            w.apps(),
            input("public", "http://127.0.0.1:8080/cb"),
            &owner,
        )
        .await
        .unwrap();
        let any = Apps {
            redirects: HttpRedirects::AnyHost,
            ..w.apps()
        };
        create(any, input("public", "http://app.example/cb"), &owner)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_app_is_found_by_exactly_one_of_its_ids() {
        let w = World::new().await;
        let owner = w.user("root", &["admin"]).await;
        let a = create(w.apps(), input("public", "https://app.example/cb"), &owner)
            .await
            .unwrap()
            .app;
        assert_eq!(find(&w.store, Some(&a.id), None).await.unwrap().id, a.id);
        let both = find(&w.store, Some(&a.id), Some(&a.client_id)).await;
        assert!(matches!(both, Err(Error::Invalid { .. })));
        delete(w.apps(), &a.id).await.unwrap();
        assert!(matches!(
            find(&w.store, Some(&a.id), None).await,
            Err(Error::NotFound(Entity::App))
        ));
    }
}
