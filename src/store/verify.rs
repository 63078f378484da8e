//! `Store::verify`: every index against its records and every record against its indexes. Run at start, after
//! restore, and by the model-based tests after every random run.

use super::{codec, db_err, session::LoginToken, Store};
use crate::error::{Error, Result};
use crate::model::provider::normalize_name;
use crate::model::{App, Provider, User};

impl Store {
    /// Returns `Err(Internal)` listing the first problems found; `Ok` when every index agrees with the records.
    pub fn verify(&self) -> Result<()> {
        let mut problems: Vec<String> = Vec::new();
        let mut bad = |p: String| {
            if problems.len() < 20 {
                problems.push(p);
            }
        };
        let t = &self.t;

        for kv in t.apps.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let app: App = codec::decode(&v)?;
            if app.id.as_bytes() != k.as_ref() {
                bad(format!("app {} stored under another key", app.id));
            }
            if t.apps_by_client
                .get(app.client_id.as_bytes())
                .map_err(db_err)?
                .as_deref()
                != Some(k.as_ref())
            {
                bad(format!("app {} missing from apps_by_client", app.id));
            }
        }
        for kv in t.apps_by_client.iter() {
            let (client, id) = kv.map_err(db_err)?;
            match t.apps.get(&id).map_err(db_err)? {
                Some(v) if codec::decode::<App>(&v)?.client_id.as_bytes() == client.as_ref() => {}
                _ => bad(format!(
                    "apps_by_client entry {} is dangling",
                    String::from_utf8_lossy(&client)
                )),
            }
        }

        let mut admins = 0u64;
        for kv in t.users.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let user: User = codec::decode(&v)?;
            if user.id.as_bytes() != k.as_ref() {
                bad(format!("user {} stored under another key", user.id));
            }
            admins += u64::from(user.is_admin());
            if t.users_by_name
                .get(user.username.to_lowercase().as_bytes())
                .map_err(db_err)?
                .as_deref()
                != Some(k.as_ref())
            {
                bad(format!("user {} missing from users_by_name", user.id));
            }
            for e in &user.emails {
                if t.users_by_email
                    .get(e.address.as_bytes())
                    .map_err(db_err)?
                    .as_deref()
                    != Some(k.as_ref())
                {
                    bad(format!(
                        "user {} email missing from users_by_email",
                        user.id
                    ));
                }
            }
        }
        for kv in t.users_by_name.iter() {
            let (name, id) = kv.map_err(db_err)?;
            match t.users.get(&id).map_err(db_err)? {
                Some(v)
                    if codec::decode::<User>(&v)?
                        .username
                        .to_lowercase()
                        .as_bytes()
                        == name.as_ref() => {}
                _ => bad(format!(
                    "users_by_name entry {} is dangling",
                    String::from_utf8_lossy(&name)
                )),
            }
        }
        for kv in t.users_by_email.iter() {
            let (email, id) = kv.map_err(db_err)?;
            match t.users.get(&id).map_err(db_err)? {
                Some(v)
                    if codec::decode::<User>(&v)?
                        .emails
                        .iter()
                        .any(|e| e.address.as_bytes() == email.as_ref()) => {}
                _ => bad(format!(
                    "users_by_email entry {} is dangling",
                    String::from_utf8_lossy(&email)
                )),
            }
        }
        if admins != self.admin_count()? {
            bad(format!(
                "admin counter {} but {admins} admins",
                self.admin_count()?
            ));
        }

        let mut indexed = 0usize;
        for k in t.login_tokens_by_user.iter().keys() {
            let k = k.map_err(db_err)?;
            indexed += 1;
            let split = k.len().saturating_sub(33);
            let (user, digest) = (&k[..split], &k[split + 1..]);
            match t.login_tokens.get(digest).map_err(db_err)? {
                Some(v) if codec::decode::<LoginToken>(&v)?.user_id.as_bytes() == user => {}
                _ => bad("login_tokens_by_user entry is dangling".into()),
            }
        }
        if indexed != t.login_tokens.len() {
            bad(format!(
                "{} login tokens but {indexed} index entries",
                t.login_tokens.len()
            ));
        }
        for v in t.login_tokens.iter().values() {
            let tok: LoginToken = codec::decode(&v.map_err(db_err)?)?;
            if t.users
                .get(tok.user_id.as_bytes())
                .map_err(db_err)?
                .is_none()
            {
                bad(format!("login token of missing user {}", tok.user_id));
            }
        }

        let mut provider_ids = std::collections::HashSet::new();
        for kv in t.providers.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let p: Provider = codec::decode(&v)?;
            if p.name.is_empty() || normalize_name(&p.name) != p.name {
                bad(format!("provider name {:?} is not normalized", p.name));
            }
            if p.service_key().as_bytes() != k.as_ref() {
                bad(format!("provider {} stored under another key", p.name));
            }
            // The id is the associated data of the provider's sealed secrets: two providers must not share one.
            if p.id.is_empty() || !provider_ids.insert(p.id.clone()) {
                bad(format!("provider {} has an empty or duplicate id", p.name));
            }
        }

        self.verify_tokens(&mut bad)?;

        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Internal(format!(
                "store verification failed: {}",
                problems.join("; ")
            )))
        }
    }
}
