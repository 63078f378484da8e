//! OAuth apps: `apps` (id → App) and `apps_by_client` (client_id → id), plus the decoded-app cache of the hot
//! paths.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use sled::Transactional;

use super::{abort, codec, db_err, decode_or_abort, txn_result, Sled};
use crate::error::{Entity, Error, Field, Result};
use crate::model::App;

/// Decoded apps by client id for client authentication and client-token checks: one sharded map read instead of
/// two sled reads and a decode per request. Every app write bumps `generation` and drops the entry *after* writing
/// sled; a reader caches what it read only if no app write happened since it started reading, checked under the
/// entry's shard lock, so a stale app can never be cached.
#[derive(Default)]
pub(super) struct AppCache {
    apps: DashMap<String, Arc<App>>,
    generation: AtomicU64,
}

impl AppCache {
    fn invalidate(&self, client_id: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.apps.remove(client_id);
    }
}

impl Sled {
    pub async fn create_app(&self, app: &App) -> Result<()> {
        let bytes = codec::encode(app);
        let r = (&self.t.apps, &self.t.apps_by_client).transaction(|(apps, by_client)| {
            if by_client.get(app.client_id.as_bytes())?.is_some() {
                return abort(Error::Conflict {
                    field: Field::ClientId,
                    value: app.client_id.clone(),
                });
            }
            if apps.get(app.id.as_bytes())?.is_some() {
                return abort(Error::Conflict {
                    field: Field::Id,
                    value: app.id.clone(),
                });
            }
            apps.insert(app.id.as_bytes(), bytes.as_slice())?;
            by_client.insert(app.client_id.as_bytes(), app.id.as_bytes())?;
            Ok(())
        });
        txn_result(r)?;
        self.app_cache.invalidate(&app.client_id);
        self.durable().await
    }

    pub fn get_app(&self, id: &str) -> Result<Option<App>> {
        match self.t.apps.get(id.as_bytes()).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    pub fn app_by_client_id(&self, client_id: &str) -> Result<Option<App>> {
        match self
            .t
            .apps_by_client
            .get(client_id.as_bytes())
            .map_err(db_err)?
        {
            Some(id) => match self.t.apps.get(&id).map_err(db_err)? {
                Some(b) => codec::decode(&b).map(Some),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    pub fn client_app(&self, client_id: &str) -> Result<Option<Arc<App>>> {
        let cache = &self.app_cache;
        if let Some(app) = cache.apps.get(client_id) {
            return Ok(Some(app.clone()));
        }
        let seen = cache.generation.load(Ordering::Acquire);
        let Some(app) = self.app_by_client_id(client_id)?.map(Arc::new) else {
            return Ok(None);
        };
        if let dashmap::Entry::Vacant(slot) = cache.apps.entry(client_id.to_owned()) {
            if cache.generation.load(Ordering::Acquire) == seen {
                slot.insert(app.clone());
            }
        }
        Ok(Some(app))
    }

    pub fn list_apps(&self) -> Result<Vec<App>> {
        let mut apps = self
            .t
            .apps
            .iter()
            .values()
            .map(|v| codec::decode::<App>(&v.map_err(db_err)?))
            .collect::<Result<Vec<_>>>()?;
        apps.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(apps)
    }

    pub async fn update_app(
        &self,
        id: &str,
        change: impl Fn(&mut App) -> Result<()>,
    ) -> Result<App> {
        let r = self.t.apps.transaction(|apps| {
            let Some(bytes) = apps.get(id.as_bytes())? else {
                return abort(Error::NotFound(Entity::App));
            };
            let mut app: App = decode_or_abort(&bytes)?;
            let client_id = app.client_id.clone();
            change(&mut app).map_err(sled::transaction::ConflictableTransactionError::Abort)?;
            if app.client_id != client_id || app.id != id {
                return abort(Error::internal("an update may not change ids"));
            }
            apps.insert(id.as_bytes(), codec::encode(&app))?;
            Ok(app)
        });
        let app = txn_result(r)?;
        self.app_cache.invalidate(&app.client_id);
        self.durable().await?;
        Ok(app)
    }

    pub async fn delete_app(&self, id: &str) -> Result<App> {
        let r = (&self.t.apps, &self.t.apps_by_client).transaction(|(apps, by_client)| {
            let Some(bytes) = apps.remove(id.as_bytes())? else {
                return abort(Error::NotFound(Entity::App));
            };
            let app: App = decode_or_abort(&bytes)?;
            by_client.remove(app.client_id.as_bytes())?;
            Ok(app)
        });
        let app = txn_result(r)?;
        self.app_cache.invalidate(&app.client_id);
        self.durable().await?;
        Ok(app)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::model::{App, ClientType, UserRef};
    use crate::store::testing::temp_store;

    pub(crate) fn app(id: &str, client: &str) -> App {
        App {
            id: id.into(),
            name: format!("app {id}"),
            active: true,
            client_id: client.into(),
            redirect_uris: vec!["https://a.example/cb".into()],
            client_type: ClientType::Confidential,
            grant_types: App::default_grants(),
            scopes: App::default_scopes(),
            skip_consent: false,
            token_epoch: 0,
            secret_hash: Some("$argon2id$fake".into()),
            created_at: 1,
            updated_at: 1,
            created_by: UserRef::default(),
            oidc: Default::default(),
        }
    }

    #[tokio::test]
    async fn create_get_update_delete() {
        let (_d, s) = temp_store();
        s.create_app(&app("a1", "c1")).await.unwrap();
        assert_eq!(s.app_by_client_id("c1").await.unwrap().unwrap().id, "a1");
        assert!(
            s.create_app(&app("a2", "c1")).await.is_err(),
            "client id is unique"
        );
        let updated = s
            .update_app("a1", |a| {
                a.name = "renamed".into();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(updated.name, "renamed");
        assert_eq!(s.get_app("a1").await.unwrap().unwrap().name, "renamed");
        s.delete_app("a1").await.unwrap();
        assert!(s.get_app("a1").await.unwrap().is_none());
        assert!(s.app_by_client_id("c1").await.unwrap().is_none());
        assert!(s.delete_app("a1").await.is_err());
        s.verify().unwrap();
    }

    #[tokio::test]
    async fn cached_client_app_follows_every_write() {
        let (_d, s) = temp_store();
        assert!(s.client_app("c1").await.unwrap().is_none());
        s.create_app(&app("a1", "c1")).await.unwrap();
        assert!(s.client_app("c1").await.unwrap().unwrap().active);
        s.update_app("a1", |a| {
            a.active = false;
            Ok(())
        })
        .await
        .unwrap();
        assert!(
            !s.client_app("c1").await.unwrap().unwrap().active,
            "deactivation is seen at once"
        );
        s.delete_app("a1").await.unwrap();
        assert!(
            s.client_app("c1").await.unwrap().is_none(),
            "deletion is seen at once"
        );
        s.create_app(&app("a2", "c1")).await.unwrap();
        assert_eq!(s.client_app("c1").await.unwrap().unwrap().id, "a2");
    }

    /// Readers racing writers must never leave a stale app in the cache: after the last write, the cached lookup
    /// answers what sled holds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cache_is_never_stale_after_racing_reads() {
        let (_d, s) = temp_store();
        s.create_app(&app("a1", "c1")).await.unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (s, stop) = (s.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        crate::store::sled::Sled::client_app(&s, "c1").unwrap();
                    }
                })
            })
            .collect();
        for i in 0..300 {
            s.update_app("a1", |a| {
                a.name = format!("n{i}");
                Ok(())
            })
            .await
            .unwrap();
            assert_eq!(
                s.client_app("c1").await.unwrap().unwrap().name,
                format!("n{i}")
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        assert_eq!(s.client_app("c1").await.unwrap().unwrap().name, "n299");
    }
}
