//! Custom OAuth providers: `providers` (service key → Provider). The service key is the normalized name in
//! lowercase, so "one provider per normalized name" is the tree's own uniqueness.

use sled::transaction::ConflictableTransactionError;

use super::{abort, codec, db_err, decode_or_abort, txn_result, Sled};
use crate::error::{Entity, Error, Result};
use crate::model::Provider;

impl Sled {
    pub async fn add_provider(&self, p: &Provider) -> Result<Provider> {
        let key = p.service_key();
        let bytes = codec::encode(p);
        let r = self.t.providers.transaction(|providers| {
            if let Some(existing) = providers.get(key.as_bytes())? {
                return decode_or_abort::<Provider>(&existing);
            }
            providers.insert(key.as_bytes(), bytes.as_slice())?;
            Ok(p.clone())
        });
        let stored = txn_result(r)?;
        self.durable().await?;
        Ok(stored)
    }

    pub fn get_provider(&self, key: &str) -> Result<Option<Provider>> {
        match self.t.providers.get(key.as_bytes()).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    pub fn list_providers(&self) -> Result<Vec<Provider>> {
        let mut all = self
            .t
            .providers
            .iter()
            .values()
            .map(|v| codec::decode::<Provider>(&v.map_err(db_err)?))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(all)
    }

    pub async fn update_provider(
        &self,
        key: &str,
        change: impl Fn(&mut Provider) -> Result<()>,
    ) -> Result<Provider> {
        let r = self.t.providers.transaction(|providers| {
            let Some(bytes) = providers.get(key.as_bytes())? else {
                return abort(Error::NotFound(Entity::Provider));
            };
            let mut p: Provider = decode_or_abort(&bytes)?;
            let (id, name) = (p.id.clone(), p.name.clone());
            change(&mut p).map_err(ConflictableTransactionError::Abort)?;
            if p.id != id || p.name != name {
                return abort(Error::internal(
                    "an update may not change a provider's id or name",
                ));
            }
            providers.insert(key.as_bytes(), codec::encode(&p))?;
            Ok(p)
        });
        let p = txn_result(r)?;
        self.durable().await?;
        Ok(p)
    }

    pub async fn remove_provider(&self, key: &str) -> Result<Option<Provider>> {
        self.remove_links_of_provider(key)?;
        let removed = match self.t.providers.remove(key.as_bytes()).map_err(db_err)? {
            Some(b) => Some(codec::decode::<Provider>(&b)?),
            None => None,
        };
        self.remove_links_of_provider(key)?;
        self.durable().await?;
        Ok(removed)
    }

    /// Removes every user ↔ provider link of the provider with service key `key` (and their index entries), one
    /// transaction per link. Not flushed: the caller flushes. Runs even when the provider record is already gone,
    /// so a removal interrupted part-way is finished by the next one.
    pub(crate) fn remove_links_of_provider(&self, key: &str) -> Result<()> {
        self.remove_provider_links(key).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use crate::model::provider::{Setting, SettingValue};
    use crate::model::Provider;
    use crate::store::codec;
    use crate::store::testing::temp_store;
    use proptest::prelude::*;

    #[tokio::test]
    async fn add_is_idempotent_update_and_remove() {
        let (_d, s) = temp_store();
        let p = Provider::new("id1".into(), "Myidp".into(), 1);
        assert_eq!(s.add_provider(&p).await.unwrap().id, "id1");
        let again = Provider::new("id2".into(), "Myidp".into(), 2);
        assert_eq!(
            s.add_provider(&again).await.unwrap().id,
            "id1",
            "the first one stays"
        );
        let u = s
            .update_provider("myidp", |p| {
                p.set(Setting::Enabled, SettingValue::Bool(true))
            })
            .await
            .unwrap();
        assert!(u.enabled);
        assert!(s.get_provider("myidp").await.unwrap().unwrap().enabled);
        assert!(s
            .update_provider("myidp", |p| {
                p.id = "other".into();
                Ok(())
            })
            .await
            .is_err());
        s.verify().unwrap();
        assert_eq!(s.list_providers().await.unwrap().len(), 1);
        assert_eq!(s.remove_provider("myidp").await.unwrap().unwrap().id, "id1");
        assert!(s.remove_provider("myidp").await.unwrap().is_none());
        assert!(s.get_provider("myidp").await.unwrap().is_none());
        s.verify().unwrap();
    }

    proptest! {
        #[test]
        fn provider_records_round_trip(name in "[A-Z][a-z0-9_]{0,20}", secret in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)), enabled in any::<bool>()) {
            let mut p = Provider::new("x".into(), name, 5);
            p.enabled = enabled;
            p.set(Setting::Id, SettingValue::Str("client".into())).unwrap();
            p.set_sealed_secret(secret);
            prop_assert_eq!(codec::decode::<Provider>(&codec::encode(&p)).unwrap(), p);
        }
    }
}
