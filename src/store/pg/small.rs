//! The small key-value records: signing keys, RC-wide settings, `meta` values and revoked JWT ids.

use super::{db_err, rec, Pg, Prepared};
use crate::error::Result;
use crate::model::provider::SettingValue;
use crate::model::SigningKey;
use crate::store::codec;
use crate::store::record::revoked_jti::RevokedJti;

impl Pg {
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKey>> {
        let rows = self
            .client()
            .await?
            .all("SELECT rec FROM signing_keys ORDER BY signs_from, kid", &[])
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| rec(r, "rec")).collect()
    }

    pub async fn put_signing_key(&self, key: &SigningKey) -> Result<()> {
        self.client()
            .await?
            .exec(
                "INSERT INTO signing_keys (kid, signs_from, rec) VALUES ($1, $2, $3)
                 ON CONFLICT (kid) DO UPDATE SET signs_from = EXCLUDED.signs_from, rec = EXCLUDED.rec",
                &[&key.kid, &key.signs_from, &codec::encode(key)],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub async fn delete_signing_key(&self, kid: &str) -> Result<bool> {
        let n = self
            .client()
            .await?
            .exec("DELETE FROM signing_keys WHERE kid = $1", &[&kid])
            .await
            .map_err(db_err)?;
        Ok(n > 0)
    }

    pub async fn get_setting(&self, id: &str) -> Result<Option<SettingValue>> {
        let row = self
            .client()
            .await?
            .opt("SELECT rec FROM settings WHERE id = $1", &[&id])
            .await
            .map_err(db_err)?;
        row.map(|r| rec(&r, "rec")).transpose()
    }

    pub async fn put_setting(&self, id: &str, value: &SettingValue) -> Result<()> {
        self.client()
            .await?
            .exec(
                "INSERT INTO settings (id, rec) VALUES ($1, $2)
                 ON CONFLICT (id) DO UPDATE SET rec = EXCLUDED.rec",
                &[&id, &codec::encode(value)],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub async fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let row = self
            .client()
            .await?
            .opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn meta_put(&self, key: &str, value: &[u8]) -> Result<()> {
        self.client()
            .await?
            .exec(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub async fn revoke_jti(&self, jti: &str, r: &RevokedJti) -> Result<()> {
        self.client()
            .await?
            .exec(
                "INSERT INTO revoked_jti (jti, expires_at, rec) VALUES ($1, $2, $3)
                 ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at, rec = EXCLUDED.rec",
                &[&jti, &r.expires_at, &codec::encode(r)],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub async fn jti_revoked(&self, jti: &str) -> Result<bool> {
        let row = self
            .client()
            .await?
            .opt("SELECT 1 FROM revoked_jti WHERE jti = $1", &[&jti])
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }
}
