//! Users: `users` (id → User), `users_by_name` (lowercase username → id), `users_by_email` (email → id), and the
//! `meta/admins` counter that keeps at least one admin without a scan.

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::link::LinkTx;
use super::{abort, codec, db_err, decode_or_abort, txn_result, Sled};
use crate::error::{Entity, Error, Field, Result, Rule};
use crate::model::User;

const ADMINS: &[u8] = b"admins";

fn admins(meta: &TransactionalTree) -> Result<u64, ConflictableTransactionError<Error>> {
    Ok(meta
        .get(ADMINS)?
        .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
        .unwrap_or(0))
}

impl Sled {
    pub async fn create_user(&self, user: &User) -> Result<()> {
        let bytes = codec::encode(user);
        let name_key = user.username.to_lowercase();
        let t = &self.t;
        let r = (&t.users, &t.users_by_name, &t.users_by_email, &t.meta).transaction(
            |(users, by_name, by_email, meta)| {
                if by_name.get(name_key.as_bytes())?.is_some() {
                    return abort(Error::Conflict {
                        field: Field::Username,
                        value: user.username.clone(),
                    });
                }
                for e in &user.emails {
                    if by_email.get(e.address.as_bytes())?.is_some() {
                        return abort(Error::Conflict {
                            field: Field::Email,
                            value: e.address.clone(),
                        });
                    }
                }
                if users.get(user.id.as_bytes())?.is_some() {
                    return abort(Error::Conflict {
                        field: Field::Id,
                        value: user.id.clone(),
                    });
                }
                users.insert(user.id.as_bytes(), bytes.as_slice())?;
                by_name.insert(name_key.as_bytes(), user.id.as_bytes())?;
                for e in &user.emails {
                    by_email.insert(e.address.as_bytes(), user.id.as_bytes())?;
                }
                if user.is_admin() {
                    meta.insert(ADMINS, &(admins(meta)? + 1).to_be_bytes())?;
                }
                Ok(())
            },
        );
        txn_result(r)?;
        self.durable().await
    }

    pub fn get_user(&self, id: &str) -> Result<Option<User>> {
        match self.t.users.get(id.as_bytes()).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    fn user_by_index(&self, index: &sled::Tree, key: &str) -> Result<Option<User>> {
        match index.get(key.as_bytes()).map_err(db_err)? {
            Some(id) => match self.t.users.get(&id).map_err(db_err)? {
                Some(b) => codec::decode(&b).map(Some),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    pub fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        self.user_by_index(&self.t.users_by_name, &username.to_lowercase())
    }

    pub fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.user_by_index(&self.t.users_by_email, &email.to_lowercase())
    }

    pub fn has_users(&self) -> Result<bool> {
        Ok(!self.t.users.is_empty())
    }

    pub fn list_users(&self) -> Result<Vec<User>> {
        self.t
            .users
            .iter()
            .values()
            .map(|v| codec::decode::<User>(&v.map_err(db_err)?))
            .collect()
    }

    pub async fn update_user(
        &self,
        id: &str,
        change: impl Fn(&mut User) -> Result<()>,
    ) -> Result<User> {
        let t = &self.t;
        let r = (&t.users, &t.users_by_name, &t.users_by_email, &t.meta).transaction(
            |(users, by_name, by_email, meta)| {
                let Some(bytes) = users.get(id.as_bytes())? else {
                    return abort(Error::NotFound(Entity::User));
                };
                let old: User = decode_or_abort(&bytes)?;
                let mut new = old.clone();
                change(&mut new).map_err(ConflictableTransactionError::Abort)?;
                // Postmortem: a `change` that rewrote `id` stored a mislabeled record, so `verify` failed and start-up refused.
                if new.id != id {
                    return abort(Error::internal("an update may not change ids"));
                }
                let (old_name, new_name) =
                    (old.username.to_lowercase(), new.username.to_lowercase());
                if old_name != new_name {
                    if by_name.get(new_name.as_bytes())?.is_some() {
                        return abort(Error::Conflict {
                            field: Field::Username,
                            value: new.username.clone(),
                        });
                    }
                    by_name.remove(old_name.as_bytes())?;
                    by_name.insert(new_name.as_bytes(), id.as_bytes())?;
                }
                for e in &old.emails {
                    by_email.remove(e.address.as_bytes())?;
                }
                for e in &new.emails {
                    if let Some(owner) = by_email.get(e.address.as_bytes())? {
                        if owner.as_ref() != id.as_bytes() {
                            return abort(Error::Conflict {
                                field: Field::Email,
                                value: e.address.clone(),
                            });
                        }
                    }
                    by_email.insert(e.address.as_bytes(), id.as_bytes())?;
                }
                match (old.is_admin(), new.is_admin()) {
                    (true, false) => {
                        let n = admins(meta)?;
                        if n <= 1 {
                            return abort(Error::NotAllowed(Rule::LastAdminRole));
                        }
                        meta.insert(ADMINS, &(n - 1).to_be_bytes())?;
                    }
                    (false, true) => {
                        meta.insert(ADMINS, &(admins(meta)? + 1).to_be_bytes())?;
                    }
                    _ => {}
                }
                users.insert(id.as_bytes(), codec::encode(&new))?;
                Ok(new)
            },
        );
        let user = txn_result(r)?;
        self.durable().await?;
        Ok(user)
    }

    pub async fn delete_user(&self, id: &str) -> Result<User> {
        // The links seen now go in the user's own transaction, so the user and its links vanish together.
        let link_ids = self.link_ids_of_user(id)?;
        let t = &self.t;
        let r = (
            &t.users,
            &t.users_by_name,
            &t.users_by_email,
            &t.meta,
            &t.links,
            &t.links_by_user,
            &t.links_by_provider,
            &t.links_by_account,
            &t.signin_by_user_provider,
        )
            .transaction(
                |(
                    users,
                    by_name,
                    by_email,
                    meta,
                    links,
                    by_user,
                    by_provider,
                    by_account,
                    signin,
                )| {
                    let Some(bytes) = users.remove(id.as_bytes())? else {
                        return abort(Error::NotFound(Entity::User));
                    };
                    let user: User = decode_or_abort(&bytes)?;
                    by_name.remove(user.username.to_lowercase().as_bytes())?;
                    for e in &user.emails {
                        by_email.remove(e.address.as_bytes())?;
                    }
                    if user.is_admin() {
                        let n = admins(meta)?;
                        if n <= 1 {
                            return abort(Error::NotAllowed(Rule::LastAdminDeleted));
                        }
                        meta.insert(ADMINS, &(n - 1).to_be_bytes())?;
                    }
                    let links = LinkTx {
                        links,
                        by_user,
                        by_provider,
                        by_account,
                        signin,
                    };
                    for link_id in &link_ids {
                        links.remove(link_id)?;
                    }
                    Ok(user)
                },
            );
        let user = txn_result(r)?;
        // After the user is gone no new login token or link can be created for it (those transactions read the
        // user), so one pass over each index catches the rest, including any created while we were deleting.
        self.remove_links_of_user(id)?;
        self.delete_login_tokens_of(id)?;
        self.durable().await?;
        Ok(user)
    }

    pub(crate) fn admin_count(&self) -> Result<u64> {
        Ok(self
            .t
            .meta
            .get(ADMINS)
            .map_err(db_err)?
            .map(|v| u64::from_be_bytes(v.as_ref().try_into().unwrap_or([0; 8])))
            .unwrap_or(0))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::error::{Error, Field};
    use crate::model::{user::Email, Role, User};
    use crate::store::testing::temp_store;

    pub(crate) fn user(id: &str, name: &str, admin: bool) -> User {
        User {
            id: id.into(),
            username: name.into(),
            name: name.into(),
            emails: vec![Email {
                address: format!("{name}@example.com").to_lowercase(),
                verified: false,
            }],
            roles: vec![if admin { Role::Admin } else { Role::User }],
            active: true,
            password_hash: None,
            created_at: 0,
            updated_at: 0,
            two_factor: None,
            profile: Default::default(),
        }
    }

    #[tokio::test]
    async fn usernames_and_emails_are_unique_case_insensitively() {
        let (_d, s) = temp_store();
        s.create_user(&user("u1", "Jane", false)).await.unwrap();
        let e = s.create_user(&user("u2", "jane", false)).await.unwrap_err();
        assert!(matches!(
            e,
            Error::Conflict {
                field: Field::Username,
                ..
            }
        ));
        assert_eq!(s.user_by_username("JANE").await.unwrap().unwrap().id, "u1");
        assert_eq!(
            s.user_by_email("jane@example.com")
                .await
                .unwrap()
                .unwrap()
                .id,
            "u1"
        );
        s.verify().unwrap();
    }

    #[tokio::test]
    async fn the_last_admin_stays() {
        let (_d, s) = temp_store();
        s.create_user(&user("a1", "root", true)).await.unwrap();
        assert!(matches!(
            s.delete_user("a1").await,
            Err(Error::NotAllowed(_))
        ));
        s.create_user(&user("a2", "root2", true)).await.unwrap();
        s.delete_user("a1").await.unwrap();
        assert_eq!(s.admin_count().unwrap(), 1);
        s.verify().unwrap();
    }

    /// Regression (model test): `update_user` used to store a user whose `id` the closure had changed.
    #[tokio::test]
    async fn an_update_cannot_change_the_user_id() {
        let (_d, s) = temp_store();
        s.create_user(&user("u1", "jane", false)).await.unwrap();
        let r = s
            .update_user("u1", |u| {
                u.id = "u2".into();
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
        assert_eq!(s.get_user("u1").await.unwrap().unwrap().id, "u1");
        assert!(s.get_user("u2").await.unwrap().is_none());
        s.verify().unwrap();
    }
}
