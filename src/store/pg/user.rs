//! Users: `users` (username unique by its lowercase key), `user_emails` (an address belongs to one user) and the
//! `admin_count` counter row, which keeps at least one admin under concurrent demotions: the conditional
//! decrement serializes on the row, so of two nodes demoting the last two admins one fails.

use deadpool_postgres::Transaction;

use super::{conflict_on, db_err, rec, with_tx, Pg, Prepared, TxResult};
use crate::error::{Entity, Error, Field, Result, Rule};
use crate::model::User;
use crate::store::codec;

/// Adds one admin to the counter row.
async fn add_admin(tx: &Transaction<'_>) -> TxResult<()> {
    tx.exec("UPDATE admin_count SET n = n + 1 WHERE id = 1", &[])
        .await?;
    Ok(())
}

/// Takes one admin from the counter row unless it is the last one (`rule` names why it may not go).
async fn remove_admin(tx: &Transaction<'_>, rule: Rule) -> TxResult<()> {
    let n = tx
        .exec(
            "UPDATE admin_count SET n = n - 1 WHERE id = 1 AND n > 1",
            &[],
        )
        .await?;
    if n == 0 {
        return Err(Error::NotAllowed(rule).into());
    }
    Ok(())
}

/// Indexes `user`'s emails; an address of another user is a conflict.
async fn insert_emails(tx: &Transaction<'_>, user: &User) -> TxResult<()> {
    for e in &user.emails {
        tx.exec(
            "INSERT INTO user_emails (address, user_id) VALUES ($1, $2)",
            &[&e.address, &user.id],
        )
        .await
        .map_err(|err| conflict_on(err, &[("user_emails_pkey", Field::Email, &e.address)]))?;
    }
    Ok(())
}

/// The first of `user`'s username, emails and id that is taken, in sled's order, as its conflict: the inserts
/// alone would report the id first. (A concurrent insert still meets the unique indexes.)
async fn taken(tx: &Transaction<'_>, user: &User) -> TxResult<Option<Error>> {
    let emails: Vec<&str> = user.emails.iter().map(|e| e.address.as_str()).collect();
    let row = tx
        .one(
            "SELECT EXISTS (SELECT 1 FROM users WHERE username_key = $1),
                    ARRAY(SELECT address FROM user_emails WHERE address = ANY($2)),
                    EXISTS (SELECT 1 FROM users WHERE id = $3)",
            &[&user.username.to_lowercase(), &emails, &user.id],
        )
        .await?;
    let conflict = |field, value: &str| {
        Some(Error::Conflict {
            field,
            value: value.to_owned(),
        })
    };
    let taken_emails: Vec<String> = row.get(1);
    Ok(if row.get(0) {
        conflict(Field::Username, &user.username)
    } else if let Some(e) = emails.iter().find(|e| taken_emails.iter().any(|t| t == *e)) {
        conflict(Field::Email, e)
    } else if row.get(2) {
        conflict(Field::Id, &user.id)
    } else {
        None
    })
}

impl Pg {
    pub async fn create_user(&self, user: &User) -> Result<()> {
        with_tx!(self, |tx| {
            if let Some(e) = taken(tx, user).await? {
                return Err(e.into());
            }
            tx.exec(
                "INSERT INTO users (id, username_key, is_admin, rec) VALUES ($1, $2, $3, $4)",
                &[
                    &user.id,
                    &user.username.to_lowercase(),
                    &user.is_admin(),
                    &codec::encode(user),
                ],
            )
            .await
            .map_err(|e| {
                conflict_on(
                    e,
                    &[
                        ("users_username_key_key", Field::Username, &user.username),
                        ("users_pkey", Field::Id, &user.id),
                    ],
                )
            })?;
            insert_emails(tx, user).await?;
            if user.is_admin() {
                add_admin(tx).await?;
            }
            Ok(())
        })
    }

    pub async fn get_user(&self, id: &str) -> Result<Option<User>> {
        self.user_where("id = $1", id).await
    }

    async fn user_where(&self, condition: &str, key: &str) -> Result<Option<User>> {
        let row = self
            .client()
            .await?
            .opt(&format!("SELECT rec FROM users WHERE {condition}"), &[&key])
            .await
            .map_err(db_err)?;
        row.map(|r| rec(&r, "rec")).transpose()
    }

    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        self.user_where("username_key = $1", &username.to_lowercase())
            .await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.user_where(
            "id = (SELECT user_id FROM user_emails WHERE address = $1)",
            &email.to_lowercase(),
        )
        .await
    }

    pub async fn has_users(&self) -> Result<bool> {
        let row = self
            .client()
            .await?
            .one("SELECT EXISTS (SELECT 1 FROM users)", &[])
            .await
            .map_err(db_err)?;
        Ok(row.get(0))
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = self
            .client()
            .await?
            .all("SELECT rec FROM users ORDER BY id", &[])
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| rec(r, "rec")).collect()
    }

    /// Locks the row, applies `change`, and rewrites the row, its emails and the admin count in one transaction.
    pub async fn update_user(
        &self,
        id: &str,
        change: impl Fn(&mut User) -> Result<()>,
    ) -> Result<User> {
        with_tx!(self, |tx| {
            let row = tx
                .opt("SELECT rec FROM users WHERE id = $1 FOR UPDATE", &[&id])
                .await?
                .ok_or(Error::NotFound(Entity::User))?;
            let old: User = rec(&row, "rec")?;
            let mut new = old.clone();
            change(&mut new)?;
            if new.id != id {
                return Err(Error::internal("an update may not change ids").into());
            }
            tx.exec(
                "UPDATE users SET username_key = $2, is_admin = $3, rec = $4 WHERE id = $1",
                &[
                    &id,
                    &new.username.to_lowercase(),
                    &new.is_admin(),
                    &codec::encode(&new),
                ],
            )
            .await
            .map_err(|e| {
                conflict_on(
                    e,
                    &[("users_username_key_key", Field::Username, &new.username)],
                )
            })?;
            tx.exec("DELETE FROM user_emails WHERE user_id = $1", &[&id])
                .await?;
            insert_emails(tx, &new).await?;
            match (old.is_admin(), new.is_admin()) {
                (true, false) => remove_admin(tx, Rule::LastAdminRole).await?,
                (false, true) => add_admin(tx).await?,
                _ => {}
            }
            Ok(new)
        })
    }

    /// Removes the user; its emails, links and login tokens go with it (`ON DELETE CASCADE`).
    pub async fn delete_user(&self, id: &str) -> Result<User> {
        with_tx!(self, |tx| {
            let row = tx
                .opt("DELETE FROM users WHERE id = $1 RETURNING rec", &[&id])
                .await?
                .ok_or(Error::NotFound(Entity::User))?;
            let user: User = rec(&row, "rec")?;
            if user.is_admin() {
                remove_admin(tx, Rule::LastAdminDeleted).await?;
            }
            Ok(user)
        })
    }
}

#[cfg(test)]
impl Pg {
    /// The admin counter row (the model tests compare it with their count).
    pub(crate) async fn admin_count(&self) -> Result<u64> {
        let row = self
            .client()
            .await?
            .one("SELECT n FROM admin_count WHERE id = 1", &[])
            .await
            .map_err(db_err)?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}
