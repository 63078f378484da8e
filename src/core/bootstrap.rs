//! First-start setup: the admin user, declared `[[users]]`, `[[clients]]` and `[[providers]]`, the Stack project
//! keys, and the `--dev` demo.

use crate::config::Config;
use crate::core::app::{self, Apps};
use crate::core::provider::{self, Providers};
use crate::core::user::{self, Users};
use crate::crypto::{HashError, Hold};
use crate::error::{Entity, Error, Field, Result};
use crate::model::app::{AppInput, OidcInput};
use crate::model::provider::{Setting, SettingValue};
use crate::model::{Provider, User};

/// What start-up touches: the config it applies, the issuer the `--dev` lines name, and the user, app and
/// provider use cases' contexts (the store is theirs).
#[derive(Clone, Copy)]
pub struct Setup<'a> {
    pub config: &'a Config,
    pub issuer: &'a str,
    pub users: Users<'a>,
    pub apps: Apps<'a>,
    pub providers: Providers<'a>,
}

/// The `--dev` demo client's id (stable, so its authorize URL can be bookmarked).
pub const DEV_CLIENT_ID: &str = "latchkey-demo";

/// The `--dev` demo credentials: fixed, so a developer's scripts keep working across restarts.
pub const DEV_USER: &str = "demo";
pub const DEV_PASSWORD: &str = "demo";
pub const DEV_SECRET: &str = "demo-secret";
/// A fixed PKCE verifier so the printed authorize URL and token curl fit together.
pub const DEV_VERIFIER: &str = "latchkey-dev-verifier-0123456789-abcdefghijklmnop";

/// What start-up created and must tell the operator once (on stdout).
#[derive(Default, Debug)]
pub struct Announcements {
    pub lines: Vec<String>,
}

/// Creates the admin on an empty store. Returns the generated password when none was configured. Of nodes that
/// start together on one empty database, one creates it: the others' inserts find its username taken and adopt it.
pub async fn ensure_admin(ctx: Setup<'_>, out: &mut Announcements) -> Result<()> {
    if ctx.users.store.has_users().await? {
        return Ok(());
    }
    let cfg = &ctx.config.admin;
    let (password, generated) = if cfg.password.is_empty() {
        (crate::crypto::random_token(), true)
    } else {
        (cfg.password.clone(), false)
    };
    let created = user::create(
        ctx.users,
        user::NewUser {
            username: cfg.username.clone(),
            email: format!("{}@localhost.localdomain", cfg.username.to_lowercase()),
            password: password.clone(),
            name: Some("Administrator".into()),
            roles: Some(vec!["admin".into()]),
            ..Default::default()
        },
    )
    .await;
    let admin = match created {
        Ok(admin) => admin,
        Err(Error::Conflict { .. }) => {
            tracing::info!("the admin user was created by another node");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if generated {
        out.lines.push(format!(
            "created admin user {:?} with password {password} (shown once; set LATCHKEY_ADMIN_PASSWORD to choose it)",
            admin.username
        ));
    } else {
        out.lines
            .push(format!("created admin user {:?}", admin.username));
    }
    Ok(())
}

/// Upserts `[[users]]` from the config: created when missing; roles and claims set when they differ. The password
/// of a user found is left to [`settle_secrets`] (queued on `pending`).
pub async fn declared_users(ctx: Setup<'_>, pending: &mut Pending) -> Result<()> {
    for d in &ctx.config.users {
        let found = match ctx.users.store.user_by_username(&d.username).await? {
            None => {
                let created = user::create(
                    ctx.users,
                    user::NewUser {
                        username: d.username.clone(),
                        email: d.email.clone(),
                        password: d.password.clone(),
                        name: Some(d.name.clone()),
                        roles: Some(d.roles.clone()),
                        claims: declared_claims(d),
                        ..Default::default()
                    },
                )
                .await;
                adopt_on_conflict(created, ctx.users.store.user_by_username(&d.username)).await?
            }
            found => found,
        };
        let Some(u) = found else { continue };
        let roles = if d.roles.is_empty() {
            u.roles.clone()
        } else {
            d.roles
                .iter()
                .map(|r| crate::model::Role::parse(r))
                .collect::<Result<Vec<_>>>()?
        };
        let profile = declared_claims(d)
            .as_ref()
            .map(crate::model::user::Profile::parse)
            .transpose()?;
        if roles != u.roles || profile.as_ref().is_some_and(|p| *p != u.profile) {
            ctx.users
                .store
                .update_user(&u.id, |u| {
                    u.roles = roles.clone();
                    if let Some(p) = &profile {
                        u.profile = p.clone();
                    }
                    Ok(())
                })
                .await?;
        }
        pending.secrets.push(DeclaredSecret {
            whose: Whose::User { id: u.id.clone() },
            secret: d.password.clone(),
            stored: u.password_hash.clone(),
        });
    }
    Ok(())
}

/// The outcome of creating a declared record: `None` when this call created it; when it conflicted, the record
/// `find` reads, which another node starting at once created first and which the caller sets as declared, as a
/// later start would (the conflict itself when there is none: a genuine clash, e.g. a taken email).
async fn adopt_on_conflict<T, C>(
    created: Result<C>,
    find: impl std::future::Future<Output = Result<Option<T>>>,
) -> Result<Option<T>> {
    match created {
        Ok(_) => Ok(None),
        Err(e @ Error::Conflict { .. }) => find.await?.map(Some).ok_or(e),
        Err(e) => Err(e),
    }
}

/// A declared user's `claims`, `None` when it declares none.
fn declared_claims(d: &crate::config::DeclaredUser) -> Option<serde_json::Value> {
    (!d.claims.is_empty()).then(|| serde_json::Value::Object(d.claims.clone()))
}

/// Upserts `[[clients]]`: they keep their `client_id`; a new client's secret is hashed here, a found one's is left
/// to [`settle_secrets`] (queued on `pending`), and a found client is written only when its settings differ.
pub async fn declared_clients(ctx: Setup<'_>, owner: &User, pending: &mut Pending) -> Result<()> {
    for c in &ctx.config.clients {
        if c.client_id.is_empty() {
            return Err(Error::invalid(Field::ClientId, "is required"));
        }
        let input = AppInput {
            name: if c.name.is_empty() {
                c.client_id.clone()
            } else {
                c.name.clone()
            },
            active: true,
            redirect_uri: c.redirect_uri.clone(),
            client_type: Some(c.client_type.clone()).filter(|s| !s.is_empty()),
            grant_types: Some(c.grant_types.clone()).filter(|g| !g.is_empty()),
            scopes: Some(c.scopes.clone()).filter(|s| !s.is_empty()),
            skip_consent: Some(c.skip_consent),
            oidc: OidcInput {
                id_token_signed_response_alg: Some(c.id_token_signed_response_alg.clone())
                    .filter(|s| !s.is_empty()),
                access_token_format: Some(c.access_token_format.clone()).filter(|s| !s.is_empty()),
                post_logout_redirect_uris: Some(c.post_logout_redirect_uris.clone())
                    .filter(|u| !u.is_empty()),
                subject_type: Some(c.subject_type.clone()).filter(|s| !s.is_empty()),
                id_token_claims: c.id_token_claims,
                extra_claims: Some(c.extra_claims.clone()).filter(|e| !e.is_empty()),
            },
        };
        let secret = Some(c.client_secret.clone()).filter(|s| !s.is_empty());
        let found = match ctx.users.store.app_by_client_id(&c.client_id).await? {
            None => {
                let created = app::create_with_id(
                    ctx.apps,
                    input.clone(),
                    owner,
                    c.client_id.clone(),
                    secret.clone(),
                )
                .await;
                adopt_on_conflict(created, ctx.users.store.app_by_client_id(&c.client_id)).await?
            }
            found => found,
        };
        if let Some(existing) = found {
            let app = app::update_if_changed(ctx.apps, &existing, input).await?;
            if let Some(secret) = secret {
                pending.secrets.push(DeclaredSecret {
                    whose: Whose::Client {
                        id: app.id.clone(),
                        client_id: app.client_id.clone(),
                    },
                    secret,
                    stored: app.secret_hash.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The declared secrets of users and clients the store already held, to check once the server answers
/// ([`settle_secrets`]), and the hold on the argon2 pool that keeps every request's secret check waiting until then.
#[derive(Debug)]
pub struct Pending {
    hold: Hold,
    secrets: Vec<DeclaredSecret>,
}

/// A declared secret and the hash the store held for it when start-up read the record.
struct DeclaredSecret {
    whose: Whose,
    secret: String,
    stored: Option<String>,
}

impl std::fmt::Debug for DeclaredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeclaredSecret")
            .field("whose", &self.whose)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Whose {
    User { id: String },
    Client { id: String, client_id: String },
}

/// Checks each pending declared secret against the hash the store holds and re-hashes it when it no longer
/// matches (a secret changed in the config) or was made under other argon2 costs. Start-up runs it after the
/// server answers: a restart with unchanged secrets runs one argon2 verification per secret off the serving path
/// and writes nothing, instead of re-hashing and writing each secret before the first answer. Verifications by
/// requests wait for it (the hold), so none is checked against a hash the config has replaced. A record changed
/// by a request meanwhile (another secret set through the API) is left as it is.
pub async fn settle_secrets(ctx: Setup<'_>, pending: Pending) -> Result<()> {
    let Pending { hold, secrets } = pending;
    let hasher = ctx.apps.verifier.hasher();
    for d in secrets {
        let current = match &d.stored {
            Some(phc) if hasher.is_current(phc) => {
                let verified = unbusy(|| hasher.verify(d.secret.clone(), phc.clone())).await;
                match verified {
                    Ok(ok) => ok,
                    Err(HashError::Malformed) => false,
                    Err(e) => return Err(e.into()),
                }
            }
            _ => false,
        };
        if current {
            continue;
        }
        let hash = unbusy(|| hasher.hash(d.secret.clone())).await?;
        match &d.whose {
            Whose::User { id } => {
                ctx.users
                    .store
                    .update_user(id, |u| {
                        if u.password_hash == d.stored {
                            u.password_hash = Some(hash.clone());
                        }
                        Ok(())
                    })
                    .await?;
            }
            Whose::Client { id, client_id } => {
                ctx.apps
                    .store
                    .update_app(id, |a| {
                        if a.secret_hash == d.stored {
                            a.secret_hash = Some(hash.clone());
                        }
                        Ok(())
                    })
                    .await?;
                ctx.apps.verifier.forget(client_id);
            }
        }
    }
    drop(hold);
    Ok(())
}

/// Runs an argon2 job again while the pool's queue is full (requests' own hashes, e.g. apps created meanwhile, may
/// fill it): settling a declared secret must not give up and leave a replaced one valid.
async fn unbusy<T, F>(job: impl Fn() -> F) -> std::result::Result<T, HashError>
where
    F: std::future::Future<Output = std::result::Result<T, HashError>>,
{
    loop {
        match job().await {
            Err(HashError::Busy) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            done => return done,
        }
    }
}

/// Upserts `[[providers]]` (checked by `Config::validate`): added when missing, then set as declared; the client
/// secret is sealed under the provider's id before the store sees it. A preset provider gets its preset, options
/// and scope (empty: the preset's); a custom one the Rocket.Chat fields it declares.
pub async fn declared_providers(ctx: Setup<'_>) -> Result<()> {
    let pc = ctx.providers;
    for d in &ctx.config.providers {
        let p = provider::add(pc.store, pc.clock, d.name()).await?;
        if declared_already(pc, &p, d)? {
            continue;
        }
        let sealed = (!d.client_secret.is_empty())
            .then(|| pc.sealer.seal(d.client_secret.as_bytes(), p.id.as_bytes()));
        let now = pc.clock.now_ms();
        pc.store
            .update_provider(&p.service_key(), |q| {
                if q.id != p.id {
                    return Err(Error::NotFound(Entity::Provider));
                }
                declare(q, d)?;
                if let Some(s) = &sealed {
                    q.set_sealed_secret(Some(s.clone()));
                }
                q.updated_at = now;
                Ok(())
            })
            .await?;
    }
    Ok(())
}

/// Whether provider `p` already is what `[[providers]]` entry `d` declares, its sealed secret included (opened and
/// compared in constant time): a restart with an unchanged config then writes nothing.
fn declared_already(
    pc: Providers<'_>,
    p: &Provider,
    d: &crate::config::DeclaredProvider,
) -> Result<bool> {
    let mut probe = p.clone();
    declare(&mut probe, d)?;
    let secret_kept = d.client_secret.is_empty()
        || p.sealed_secret()
            .and_then(|sealed| pc.sealer.open(sealed, p.id.as_bytes()))
            .is_some_and(|plain| crate::crypto::ct_eq(&plain, d.client_secret.as_bytes()));
    Ok(probe == *p && secret_kept)
}

/// Sets what `[[providers]]` entry `d` declares on `q` (all but the secret).
fn declare(q: &mut Provider, d: &crate::config::DeclaredProvider) -> Result<()> {
    let str = |v: &str| SettingValue::Str(v.to_owned());
    q.preset = Some(d.preset.clone()).filter(|p| !p.is_empty());
    q.options = d.options.clone();
    q.enabled = d.enabled.unwrap_or(true);
    q.merge_users = d.merge_users;
    q.set(Setting::Id, str(&d.client_id))?;
    q.set(Setting::Url, str(&d.url))?;
    if q.preset.is_some() || !d.scope.is_empty() {
        q.set(Setting::Scope, str(&d.scope))?;
    }
    if !d.key_field.is_empty() {
        q.set(Setting::KeyField, str(&d.key_field))?;
    }
    for (_, setting, value) in d.custom_fields() {
        q.set(setting, str(value))?;
    }
    Ok(())
}

/// Runs every start-up step in order; what it leaves [`Pending`] is for [`settle_secrets`] once the server answers.
pub async fn run(ctx: Setup<'_>) -> Result<(Announcements, Pending)> {
    let mut out = Announcements::default();
    let mut pending = Pending {
        hold: ctx.apps.verifier.hasher().hold(),
        secrets: Vec::new(),
    };
    ensure_admin(ctx, &mut out).await?;
    declared_users(ctx, &mut pending).await?;
    let owner = ctx
        .users
        .store
        .user_by_username(&ctx.config.admin.username)
        .await?
        .or(ctx
            .users
            .store
            .list_users()
            .await?
            .into_iter()
            .find(User::is_admin))
        .ok_or(Error::NotFound(Entity::Admin))?;
    declared_clients(ctx, &owner, &mut pending).await?;
    declared_providers(ctx).await?;
    stack_keys(ctx, &mut out).await?;
    if ctx.config.dev {
        dev_demo(ctx, &owner, &mut out).await?;
    }
    Ok((out, pending))
}

/// The Stack project id and keys (docs/endpoints.md#links) that the config leaves unset: generated once, stored (keys as digests)
/// and announced once; later starts find them stored and print nothing.
pub async fn stack_keys(ctx: Setup<'_>, out: &mut Announcements) -> Result<()> {
    out.lines
        .extend(crate::core::stack_keys::ensure(ctx.users.store, &ctx.config.stack).await?);
    Ok(())
}

/// `--dev`: a demo user and a demo client (consent skipped), upserted at every start, and the lines that let a
/// developer run the whole code flow by pasting.
async fn dev_demo(ctx: Setup<'_>, owner: &User, out: &mut Announcements) -> Result<()> {
    if ctx.users.store.user_by_username(DEV_USER).await?.is_none() {
        user::create(
            ctx.users,
            user::NewUser {
                username: DEV_USER.into(),
                email: "demo@example.com".into(),
                password: DEV_PASSWORD.into(),
                name: Some("Demo User".into()),
                ..Default::default()
            },
        )
        .await?;
    }
    let iss = ctx.issuer;
    let redirect = format!("{iss}/dev/callback");
    let input = AppInput {
        name: "Latchkey demo client".into(),
        active: true,
        redirect_uri: redirect.clone(),
        client_type: Some("confidential".into()),
        grant_types: Some(vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
        ]),
        scopes: None,
        skip_consent: Some(true),
        oidc: OidcInput::default(),
    };
    match ctx.users.store.app_by_client_id(DEV_CLIENT_ID).await? {
        None => {
            app::create_with_id(
                ctx.apps,
                input,
                owner,
                DEV_CLIENT_ID.into(),
                Some(DEV_SECRET.into()),
            )
            .await?;
        }
        Some(existing) => {
            app::update_if_changed(ctx.apps, &existing, input).await?;
        }
    }
    let challenge = crate::crypto::secret::b64url(&crate::crypto::sha256(DEV_VERIFIER.as_bytes()));
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", DEV_CLIENT_ID)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile email offline_access")
        .append_pair("state", "dev")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    out.lines.push(format!(
        "dev: demo user {DEV_USER:?} password {DEV_PASSWORD:?}"
    ));
    out.lines.push(format!(
        "dev: demo client {DEV_CLIENT_ID:?} secret {DEV_SECRET:?} (consent skipped)"
    ));
    out.lines
        .push(format!("dev: open {iss}/oauth/authorize?{q}"));
    out.lines.push(format!(
        "dev: discovery {iss}/.well-known/openid-configuration"
    ));
    out.lines
        .push(format!("dev: then {}", dev_token_curl(iss, "CODE")));
    Ok(())
}

/// The token request that finishes the `--dev` flow.
pub fn dev_token_curl(issuer: &str, code: &str) -> String {
    format!(
        "curl -s -u {DEV_CLIENT_ID}:{DEV_SECRET} -d grant_type=authorization_code -d code={code} -d redirect_uri={issuer}/dev/callback -d code_verifier={DEV_VERIFIER} {issuer}/oauth/token"
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn unbusy_waits_out_a_full_queue_and_returns_anything_else() {
        let tries = AtomicU32::new(0);
        let done = unbusy(|| {
            let n = tries.fetch_add(1, Ordering::Relaxed);
            async move {
                if n < 3 {
                    Err(HashError::Busy)
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(done.unwrap(), 3);
        let malformed: std::result::Result<(), _> =
            unbusy(|| async { Err(HashError::Malformed) }).await;
        assert!(matches!(malformed, Err(HashError::Malformed)));
    }
}
