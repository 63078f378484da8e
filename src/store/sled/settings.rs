//! RC-wide settings: `settings` (RC setting id → [`SettingValue`]), for the built-in keys that belong to no
//! provider (the OAuth Proxy's). Only written keys are stored; a missing one reads as RC's default (the caller's).

use super::verify::Findings;
use super::{codec, db_err, Sled};
use crate::error::Result;
use crate::model::builtin_setting::{self, Target};
use crate::model::provider::SettingValue;

impl Sled {
    pub fn get_setting(&self, id: &str) -> Result<Option<SettingValue>> {
        match self.t.settings.get(id.as_bytes()).map_err(db_err)? {
            Some(v) => Ok(Some(codec::decode(&v)?)),
            None => Ok(None),
        }
    }

    pub async fn put_setting(&self, id: &str, value: &SettingValue) -> Result<()> {
        self.t
            .settings
            .insert(id.as_bytes(), codec::encode(value))
            .map_err(db_err)?;
        self.durable().await
    }

    /// Each entry decodes and is an RC-wide built-in key.
    pub(super) fn check_settings(&self, f: &mut Findings) -> Result<()> {
        for kv in self.t.settings.iter() {
            let (k, v) = kv.map_err(db_err)?;
            codec::decode::<SettingValue>(&v)?;
            let id = String::from_utf8_lossy(&k);
            if builtin_setting::find(&id).map(|b| b.target) != Some(Target::Global) {
                f.corrupt(format!("setting {id:?} is not an RC-wide setting"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::model::provider::SettingValue;
    use crate::store::testing::temp_store;

    #[tokio::test]
    async fn a_setting_survives_a_reopen_and_a_backup() {
        let (d, s) = temp_store();
        let key = crate::model::builtin_setting::PROXY_SERVICES;
        assert_eq!(s.get_setting(key).await.unwrap(), None);
        let v = SettingValue::Str("google, github".into());
        s.put_setting(key, &v).await.unwrap();
        s.verify().unwrap();
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("b.jsonl");
        let info = s
            .export(std::fs::File::create(&file).unwrap(), 0, None)
            .await
            .unwrap();
        assert_eq!(info.trees["settings"], 1);
        s.close().unwrap();
        drop(s);
        let s = crate::store::Store::open(d.path(), 8 << 20).unwrap();
        assert_eq!(s.get_setting(key).await.unwrap(), Some(v.clone()));
        let target = out.path().join("restored");
        crate::store::backup::restore(&file, &target, 8 << 20, None).unwrap();
        let restored = crate::store::Store::open(&target, 8 << 20).unwrap();
        assert_eq!(restored.get_setting(key).await.unwrap(), Some(v));
    }
}
