//! Signing keys: `signing_keys` (kid → [`SigningKey`], the private key sealed). A handful of records, read whole
//! by the key ring's refresh; no index.

use super::verify::Findings;
use super::{codec, db_err, Sled};
use crate::error::Result;
use crate::model::SigningKey;

impl Sled {
    pub fn list_signing_keys(&self) -> Result<Vec<SigningKey>> {
        let mut all = self
            .t
            .signing_keys
            .iter()
            .values()
            .map(|v| codec::decode::<SigningKey>(&v.map_err(db_err)?))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| (a.signs_from, &a.kid).cmp(&(b.signs_from, &b.kid)));
        Ok(all)
    }

    pub async fn put_signing_key(&self, key: &SigningKey) -> Result<()> {
        self.t
            .signing_keys
            .insert(key.kid.as_bytes(), codec::encode(key))
            .map_err(db_err)?;
        self.durable().await
    }

    pub async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        let removed = self.t.signing_keys.remove(kid.as_bytes()).map_err(db_err)?;
        self.durable().await?;
        Ok(removed.is_some())
    }
}

impl Sled {
    /// Each key decodes, is stored under its kid, and its kid is its public key's thumbprint (what relying
    /// parties match tokens to keys by). Anything else is corruption: no crash can leave it.
    pub(super) fn check_signing_keys(&self, f: &mut Findings) -> Result<()> {
        for kv in self.t.signing_keys.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let key: SigningKey = codec::decode(&v)?;
            if key.kid.as_bytes() != k.as_ref() {
                f.corrupt(format!("signing key {} stored under another key", key.kid));
            }
            if key.public.thumbprint() != key.kid {
                f.corrupt(format!(
                    "signing key {} is not named by its thumbprint",
                    key.kid
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::model::oidc::SigningAlg;
    use crate::model::signing_key::PublicKey;
    use crate::model::SigningKey;
    use crate::store::testing::temp_store;

    fn key(x: u8, signs_from: i64) -> SigningKey {
        let public = PublicKey::Ed25519 { x: vec![x; 32] };
        SigningKey {
            kid: public.thumbprint(),
            alg: SigningAlg::EdDsa,
            private_sealed: vec![1; 40],
            public,
            created_at: 0,
            signs_from,
        }
    }

    #[tokio::test]
    async fn put_list_delete_and_survive_a_reopen() {
        let (d, s) = temp_store();
        let (a, b) = (key(1, 1), key(2, 2));
        s.put_signing_key(&b).await.unwrap();
        s.put_signing_key(&a).await.unwrap();
        assert_eq!(s.list_signing_keys().await.unwrap(), [a.clone(), b.clone()]);
        s.verify().unwrap();
        assert!(s.delete_signing_key(&a.kid).await.unwrap());
        assert!(!s.delete_signing_key(&a.kid).await.unwrap());
        s.close().unwrap();
        drop(s);
        let s = crate::store::Store::open(d.path(), 8 << 20).unwrap();
        assert_eq!(
            s.list_signing_keys().await.unwrap(),
            std::slice::from_ref(&b)
        );
        let mut renamed = b;
        renamed.kid = "not-its-thumbprint".into();
        s.put_signing_key(&renamed).await.unwrap();
        assert!(s.verify().is_err());
    }

    #[tokio::test]
    async fn backup_and_restore_carry_the_keys_byte_for_byte() {
        let (_d, s) = temp_store();
        let k = key(3, 5);
        s.put_signing_key(&k).await.unwrap();
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("b.jsonl");
        s.export(std::fs::File::create(&file).unwrap(), 0, None)
            .await
            .unwrap();
        let target = out.path().join("restored");
        crate::store::backup::restore(&file, &target, 8 << 20, None).unwrap();
        let restored = crate::store::Store::open(&target, 8 << 20).unwrap();
        assert_eq!(restored.list_signing_keys().await.unwrap(), [k]);
    }
}
