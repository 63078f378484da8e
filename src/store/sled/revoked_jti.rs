//! Revoked unstored tokens: `revoked_jti` (jti → [`RevokedJti`]). A client_credentials JWT access token is never
//! stored, so revoking one (RFC 7009) records its `jti` here until it expires; the sweeper prunes the rest. Small:
//! only explicitly revoked, still unexpired tokens are in it.

use super::verify::Findings;
use super::{codec, db_err, Sled};
use crate::clock::Millis;
use crate::error::Result;
use crate::store::record::revoked_jti::RevokedJti;

impl Sled {
    pub async fn revoke_jti(&self, jti: &str, rec: &RevokedJti) -> Result<()> {
        self.t
            .revoked_jti
            .insert(jti.as_bytes(), codec::encode(rec))
            .map_err(db_err)?;
        self.durable().await
    }

    pub fn jti_revoked(&self, jti: &str) -> Result<bool> {
        self.t
            .revoked_jti
            .contains_key(jti.as_bytes())
            .map_err(db_err)
    }

    /// Forgets the entries whose token has expired by `now` (it is refused by its `exp` from then on).
    pub(super) fn sweep_revoked_jti(&self, now: Millis) -> Result<usize> {
        let mut n = 0;
        for kv in self.t.revoked_jti.iter() {
            let (k, v) = kv.map_err(db_err)?;
            if codec::decode::<RevokedJti>(&v)?.expires_at <= now {
                self.t.revoked_jti.remove(k).map_err(db_err)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Each entry decodes (nothing indexes it, so there is nothing else to agree with).
    pub(super) fn check_revoked_jti(&self, _: &mut Findings) -> Result<()> {
        for kv in self.t.revoked_jti.iter() {
            let (_, v) = kv.map_err(db_err)?;
            codec::decode::<RevokedJti>(&v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::temp_store;

    #[tokio::test]
    async fn a_revoked_jti_survives_a_reopen_until_the_sweeper_forgets_it_at_its_expiry() {
        let (d, s) = temp_store();
        assert!(!s.jti_revoked("j1").await.unwrap());
        s.revoke_jti("j1", "c1", 1_000).await.unwrap();
        s.revoke_jti("j2", "c1", 2_000).await.unwrap();
        s.verify().unwrap();
        s.close().unwrap();
        drop(s);
        let s = crate::store::Store::open(d.path(), 8 << 20).unwrap();
        assert!(s.jti_revoked("j1").await.unwrap());
        assert_eq!(s.sweep(1_000).await.unwrap(), 1);
        assert!(!s.jti_revoked("j1").await.unwrap());
        assert!(s.jti_revoked("j2").await.unwrap());
    }

    #[tokio::test]
    async fn backup_and_restore_carry_the_revoked_jtis() {
        let (_d, s) = temp_store();
        s.revoke_jti("j1", "c1", 5).await.unwrap();
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("b.jsonl");
        let info = s
            .export(std::fs::File::create(&file).unwrap(), 0, None)
            .await
            .unwrap();
        assert_eq!(info.trees["revoked_jti"], 1);
        let target = out.path().join("restored");
        crate::store::backup::restore(&file, &target, 8 << 20, None).unwrap();
        let restored = crate::store::Store::open(&target, 8 << 20).unwrap();
        assert!(restored.jti_revoked("j1").await.unwrap());
    }
}
