//! Provider use cases: add/remove custom providers by RC name, read and write RC settings by key (a custom
//! provider's `Accounts_OAuth_Custom-*`, or a built-in service's key, which creates its preset's provider on first
//! write), replace Locoia's `custom_auth`, and open the sealed sign-in secret for the upstream client. Secrets are sealed here, before the
//! store sees them, with the provider id as associated data.

use crate::clock::Clock;
use crate::crypto::Sealer;
use crate::error::{Entity, Error, Field, Result};
use crate::model::builtin_setting::{self, BuiltinSetting, Place, Target};
use crate::model::provider::{
    self, service_key, validate_credentials, Credential, CredentialInput, Setting, SettingValue,
    MASK,
};
use crate::model::Provider;
use crate::store::Store;

/// What writing a provider touches: the store, the clock, and the sealer its secrets are sealed with.
#[derive(Clone, Copy)]
pub struct Providers<'a> {
    pub store: &'a Store,
    pub clock: &'a Clock,
    pub sealer: &'a Sealer,
}

/// Adds a provider with RC's defaults; adding an existing name changes nothing (RC's `settingsRegistry.add`
/// keeps stored values). Returns the stored provider.
pub async fn add(store: &Store, clock: &Clock, raw_name: &str) -> Result<Provider> {
    let name = provider::validate_name(raw_name)?;
    let fresh = Provider::new(crate::crypto::random_id(), name, clock.now_ms());
    store.add_provider(&fresh).await
}

/// Removes the provider named `raw_name` (RC-normalized) and its links. Removing an unknown name succeeds, as
/// in RC.
pub async fn remove(store: &Store, raw_name: &str) -> Result<Option<Provider>> {
    let name = provider::validate_name(raw_name)?;
    let key = service_key(&name);
    // A built-in service's provider is not a custom one, whatever its name.
    match store.get_provider(&key).await? {
        Some(p) if p.preset.is_none() => store.remove_provider(&key).await,
        _ => Ok(None),
    }
}

/// The provider with this service key (Locoia's connector id).
pub async fn get(store: &Store, key: &str) -> Result<Provider> {
    store
        .get_provider(key)
        .await?
        .ok_or(Error::NotFound(Entity::Provider))
}

/// Every provider, oldest first.
pub async fn list(store: &Store) -> Result<Vec<Provider>> {
    store.list_providers().await
}

/// The providers users can sign in with (RC's service configurations).
pub async fn enabled(store: &Store) -> Result<Vec<Provider>> {
    Ok(list(store)
        .await?
        .into_iter()
        .filter(|p| p.enabled)
        .collect())
}

/// Resolves an RC custom-provider key to its provider; `NotFound("setting")` for anything that is not one.
async fn by_key(store: &Store, key: &str) -> Result<(Provider, Setting)> {
    let (name, setting) = Setting::parse_key(key).ok_or(Error::NotFound(Entity::Setting))?;
    match store.get_provider(&service_key(name)).await? {
        // Setting ids are case-sensitive in RC: `Accounts_OAuth_Custom-myidp` is not `…-Myidp`; and a built-in
        // service's provider has no custom keys.
        Some(p) if p.name == name && p.preset.is_none() => Ok((p, setting)),
        _ => Err(Error::NotFound(Entity::Setting)),
    }
}

/// The value of an RC setting (a custom provider's or a built-in one), secrets masked.
pub async fn setting(store: &Store, key: &str) -> Result<SettingValue> {
    if let Some(b) = builtin_setting::find(key) {
        return builtin_value(store, b).await;
    }
    let (p, s) = by_key(store, key).await?;
    Ok(p.get(s))
}

/// Writes an RC setting after checking its type and enum. Writing the mask back to a secret keeps the secret,
/// so a read-modify-write client cannot wipe it by accident.
pub async fn set_setting(ctx: Providers<'_>, key: &str, value: SettingValue) -> Result<()> {
    if let Some(b) = builtin_setting::find(key) {
        return set_builtin(ctx, b, value).await;
    }
    let (p, s) = by_key(ctx.store, key).await?;
    Provider::check(s, &value)?;
    write(ctx, &p, s == Setting::Secret, value, |q, v| q.set(s, v)).await
}

/// A built-in key's value: RC's default until its preset's provider (or the RC-wide setting) is written.
async fn builtin_value(store: &Store, b: &BuiltinSetting) -> Result<SettingValue> {
    match b.target {
        Target::Global => Ok(store
            .get_setting(b.key)
            .await?
            .unwrap_or_else(|| b.initial.value())),
        Target::Provider { preset, .. } => Ok(match preset_of(store, preset).await? {
            Some(p) => b.read(&p),
            None => b.initial.value(),
        }),
    }
}

/// The provider of built-in preset `preset`, if one was created; a custom provider that holds the service key
/// (`Accounts_OAuth_Custom-Google`) is a conflict, since both would be `/login/google`.
async fn preset_of(store: &Store, preset: &str) -> Result<Option<Provider>> {
    match store.get_provider(preset).await? {
        Some(p) if p.preset.as_deref() != Some(preset) => Err(Error::Conflict {
            field: Field::Provider,
            value: preset.to_owned(),
        }),
        found => Ok(found),
    }
}

/// Writes a built-in key: an RC-wide one to the settings tree, a provider one to its preset's provider, which
/// the first write creates with RC's defaults (as RC's settings always exist).
async fn set_builtin(ctx: Providers<'_>, b: &BuiltinSetting, value: SettingValue) -> Result<()> {
    b.check(&value)?;
    let Target::Provider { preset, place } = b.target else {
        return ctx.store.put_setting(b.key, &value).await;
    };
    let p = match preset_of(ctx.store, preset).await? {
        Some(p) => p,
        None => {
            let fresh = builtin_setting::preset_provider(
                crate::crypto::random_id(),
                preset,
                ctx.clock.now_ms(),
            );
            // Adding keeps a provider created meanwhile; it must still be this preset's.
            let p = ctx.store.add_provider(&fresh).await?;
            if p.preset.as_deref() != Some(preset) {
                return Err(Error::Conflict {
                    field: Field::Provider,
                    value: preset.to_owned(),
                });
            }
            p
        }
    };
    let secret = place == Place::Field(Setting::Secret);
    write(ctx, &p, secret, value, |q, v| b.write(q, v)).await
}

/// Writes `value` to provider `p` (read before): a secret sealed under its id (the mask keeps it, `""` clears
/// it), anything else through `set`. Fails when the provider was removed and re-added meanwhile: the old id
/// sealed the secret, and the caller addressed the old one.
async fn write(
    ctx: Providers<'_>,
    p: &Provider,
    secret: bool,
    value: SettingValue,
    set: impl Fn(&mut Provider, SettingValue) -> Result<()>,
) -> Result<()> {
    let now = ctx.clock.now_ms();
    let id = p.id.clone();
    let sealed = match (&value, secret) {
        (SettingValue::Str(v), true) if v == MASK => return Ok(()),
        (SettingValue::Str(v), true) if v.is_empty() => Some(None),
        (SettingValue::Str(v), true) => Some(Some(ctx.sealer.seal(v.as_bytes(), id.as_bytes()))),
        _ => None,
    };
    ctx.store
        .update_provider(&p.service_key(), |q| {
            if q.id != id {
                return Err(Error::NotFound(Entity::Setting));
            }
            match &sealed {
                Some(secret) => q.set_sealed_secret(secret.clone()),
                None => set(q, value.clone())?,
            }
            q.updated_at = now;
            Ok(())
        })
        .await
        .map(drop)
}

/// Replaces Locoia's `custom_auth` list; its first entry becomes RC's `-id`/`-secret`.
pub async fn put_custom_auth(
    ctx: Providers<'_>,
    key: &str,
    list: Vec<CredentialInput>,
) -> Result<Provider> {
    validate_credentials(&list)?;
    let p = get(ctx.store, key).await?;
    let credentials: Vec<Credential> = list
        .into_iter()
        .map(|c| Credential {
            sealed_secret: (!c.client_secret.is_empty())
                .then(|| ctx.sealer.seal(c.client_secret.as_bytes(), p.id.as_bytes())),
            name: c.name,
            client_id: c.client_id,
            scopes: c.scopes,
        })
        .collect();
    let now = ctx.clock.now_ms();
    ctx.store
        .update_provider(key, |q| {
            if q.id != p.id {
                return Err(Error::NotFound(Entity::Provider));
            }
            q.credentials = credentials.clone();
            q.updated_at = now;
            Ok(())
        })
        .await
}

/// The plaintext sign-in secret for the upstream token request (`None` when none is set). Never log it.
pub fn client_secret(sealer: &Sealer, p: &Provider) -> Result<Option<String>> {
    open_secret(sealer, p, p.sealed_secret())
}

/// The plaintext secret of the `custom_auth` entry named `name`.
pub fn credential_secret(sealer: &Sealer, p: &Provider, name: &str) -> Result<Option<String>> {
    let c = p
        .credentials
        .iter()
        .find(|c| c.name == name)
        .ok_or(Error::NotFound(Entity::Credential))?;
    open_secret(sealer, p, c.sealed_secret.as_deref())
}

fn open_secret(sealer: &Sealer, p: &Provider, sealed: Option<&[u8]>) -> Result<Option<String>> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = sealer.open(sealed, p.id.as_bytes()).ok_or_else(|| {
        Error::internal(format!("the secret of provider {} does not open", p.name))
    })?;
    String::from_utf8(plain)
        .map(Some)
        .map_err(|_| Error::internal("a sealed secret is not UTF-8"))
}

/// The `meta` key of a value sealed under the master key at first start; opening it proves the key is the right one.
pub const KEY_CHECK: &str = "master_key_check";

/// Whether `sealer` opens the master-key check value `sealed` (read from `meta`, or from a backup).
pub fn key_check_opens(sealed: &[u8], sealer: &Sealer) -> bool {
    sealer.open(sealed, KEY_CHECK.as_bytes()).is_some()
}

/// Refuses to start with a master key other than the one the store's secrets were sealed with (they would all
/// fail to open later, one request at a time); records a check value on first start, if absent, so of nodes
/// starting together on one empty database with different keys only the first one's is recorded.
pub async fn check_master_key(store: &Store, sealer: &Sealer) -> Result<(), String> {
    let sealed = match store.meta_get(KEY_CHECK).await.map_err(|e| e.to_string())? {
        Some(sealed) => sealed,
        None => match store
            .meta_put_if_absent(KEY_CHECK, &sealer.seal(b"latchkey", KEY_CHECK.as_bytes()))
            .await
            .map_err(|e| e.to_string())?
        {
            None => return Ok(()),
            Some(theirs) => theirs,
        },
    };
    if key_check_opens(&sealed, sealer) {
        return Ok(());
    }
    let sealed_in = if store.is_postgres() {
        "the PostgreSQL store ([store] url)".to_owned()
    } else {
        store.dir().display().to_string()
    };
    Err(format!(
        "the master key does not match the one the secrets in {sealed_in} were sealed with: set \
         LATCHKEY_MASTER_KEY (or master_key) to that key{}",
        if store.is_postgres() {
            " on every node"
        } else {
            ", or put its master.key file back"
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing::World;

    #[tokio::test]
    async fn adding_a_provider_twice_keeps_the_first() {
        let w = World::new().await;
        let first = add(&w.store, &w.clock, "My IdP").await.unwrap();
        assert_eq!(first.name, "Myidp", "RC normalizes the name");
        assert!(!first.enabled, "a new provider starts disabled");
        let again = add(&w.store, &w.clock, "My IdP").await.unwrap();
        assert_eq!(again.id, first.id);
        assert_eq!(list(&w.store).await.unwrap().len(), 1);
        assert!(enabled(&w.store).await.unwrap().is_empty());
        assert_eq!(
            remove(&w.store, "My IdP").await.unwrap().unwrap().id,
            first.id
        );
        assert!(matches!(
            get(&w.store, "myidp").await,
            Err(Error::NotFound(Entity::Provider))
        ));
        assert!(
            remove(&w.store, "My IdP").await.unwrap().is_none(),
            "removing twice succeeds"
        );
    }

    #[tokio::test]
    async fn a_secret_is_sealed_masked_on_read_and_kept_when_the_mask_is_written_back() {
        let w = World::new().await;
        let p = add(&w.store, &w.clock, "Idp").await.unwrap();
        let key = "Accounts_OAuth_Custom-Idp-secret";
        set_setting(w.providers(), key, SettingValue::Str("s3cret".into()))
            .await
            .unwrap();
        assert_eq!(
            setting(&w.store, key).await.unwrap(),
            SettingValue::Str(MASK.into())
        );
        set_setting(w.providers(), key, SettingValue::Str(MASK.into()))
            .await
            .unwrap();
        let p = get(&w.store, &p.service_key()).await.unwrap();
        assert_eq!(
            client_secret(&w.sealer, &p).unwrap().as_deref(),
            Some("s3cret")
        );
        let other = Sealer::new([8; 32]);
        assert!(
            client_secret(&other, &p).is_err(),
            "opens only under its master key"
        );
        let unknown = setting(&w.store, "Accounts_OAuth_Custom-Nope-secret").await;
        assert!(matches!(unknown, Err(Error::NotFound(Entity::Setting))));
    }
}
