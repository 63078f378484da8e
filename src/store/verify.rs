//! `Store::verify`: every index against its records and every record against its indexes. Run at start, after
//! restore, and by the model-based tests after every random run.

use super::link::{
    account_key, id_of_provider_key, id_of_user_key, provider_key, signin_key, user_key,
};
use super::{codec, db_err, session::LoginToken, Store};
use crate::error::{Error, Result};
use crate::model::provider::normalize_name;
use crate::model::{App, Link, Provider, User};

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
        // A login token whose user is gone is dead (authentication checks the user) and swept; it is what a crash
        // between deleting a user and removing its tokens leaves, so it is not corruption.

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

        self.verify_links(&mut bad)?;
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

impl Store {
    /// Links: each record under its id, in `links_by_user` and `links_by_provider`, and (when it signs in) in
    /// both sign-in indexes; its user and provider exist; and every index entry points back at a link that puts
    /// it there, so no index holds extra entries. The sign-in indexes being keyed by the invariants, a link
    /// missing from one (because another link holds its key) is how a broken invariant shows.
    fn verify_links(&self, bad: &mut dyn FnMut(String)) -> Result<()> {
        let t = &self.t;
        let has = |tree: &sled::Tree, key: &[u8], want: Option<&[u8]>| -> Result<bool> {
            Ok(match (tree.get(key).map_err(db_err)?, want) {
                (Some(v), Some(w)) => v.as_ref() == w,
                (found, None) => found.is_some(),
                (None, Some(_)) => false,
            })
        };
        let link_of = |id: &[u8]| -> Result<Option<Link>> {
            match t.links.get(id).map_err(db_err)? {
                Some(v) => codec::decode(&v).map(Some),
                None => Ok(None),
            }
        };
        for kv in t.links.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let l: Link = codec::decode(&v)?;
            let id = l.id.as_bytes();
            if id != k.as_ref() {
                bad(format!("link {} stored under another key", l.id));
            }
            if !has(&t.links_by_user, &user_key(&l), None)? {
                bad(format!("link {} missing from links_by_user", l.id));
            }
            if !has(&t.links_by_provider, &provider_key(&l), None)? {
                bad(format!("link {} missing from links_by_provider", l.id));
            }
            if l.allow_sign_in
                && !(has(
                    &t.links_by_account,
                    &account_key(&l.provider, &l.account_id),
                    Some(id),
                )? && has(
                    &t.signin_by_user_provider,
                    &signin_key(&l.user_id, &l.provider),
                    Some(id),
                )?)
            {
                bad(format!(
                    "sign-in link {} missing from a sign-in index",
                    l.id
                ));
            }
            if !t.users.contains_key(l.user_id.as_bytes()).map_err(db_err)? {
                bad(format!("link {} of missing user {}", l.id, l.user_id));
            }
            if !t
                .providers
                .contains_key(l.provider.as_bytes())
                .map_err(db_err)?
            {
                bad(format!("link {} of missing provider {}", l.id, l.provider));
            }
        }
        for (index, by_user) in [(&t.links_by_user, true), (&t.links_by_provider, false)] {
            for k in index.iter().keys() {
                let k = k.map_err(db_err)?;
                let id = if by_user {
                    id_of_user_key(&k)
                } else {
                    id_of_provider_key(&k)
                };
                let back = match id.map(link_of).transpose()?.flatten() {
                    Some(l) if by_user => user_key(&l) == k.as_ref(),
                    Some(l) => provider_key(&l) == k.as_ref(),
                    None => false,
                };
                if !back {
                    bad(format!(
                        "{} entry {} is dangling",
                        String::from_utf8_lossy(&index.name()),
                        String::from_utf8_lossy(&k)
                    ));
                }
            }
        }
        for kv in t.links_by_account.iter() {
            let (k, id) = kv.map_err(db_err)?;
            match link_of(&id)? {
                Some(l)
                    if l.allow_sign_in && account_key(&l.provider, &l.account_id) == k.as_ref() => {
                }
                _ => bad(format!(
                    "links_by_account entry {} is dangling",
                    String::from_utf8_lossy(&k)
                )),
            }
        }
        for kv in t.signin_by_user_provider.iter() {
            let (k, id) = kv.map_err(db_err)?;
            match link_of(&id)? {
                Some(l) if l.allow_sign_in && signin_key(&l.user_id, &l.provider) == k.as_ref() => {
                }
                _ => bad(format!(
                    "signin_by_user_provider entry {} is dangling",
                    String::from_utf8_lossy(&k)
                )),
            }
        }
        Ok(())
    }
}
