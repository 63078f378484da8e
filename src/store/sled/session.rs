//! Login tokens (Rocket.Chat's `authToken`): `login_tokens` (sha256(token) → LoginToken) and
//! `login_tokens_by_user` (user id ‖ sha256 → ∅) so deleting a user finds its tokens by prefix.

use sled::Transactional;

use super::{abort, codec, db_err, txn_result, Sled};
use crate::clock::Millis;
use crate::error::{Entity, Error, Field, Result};
use crate::store::LoginToken;

pub(super) fn by_user_key(user_id: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(user_id.len() + 1 + 32);
    k.extend_from_slice(user_id.as_bytes());
    k.push(0);
    k.extend_from_slice(digest);
    k
}

fn user_prefix(user_id: &str) -> Vec<u8> {
    let mut k = user_id.as_bytes().to_vec();
    k.push(0);
    k
}

impl Sled {
    pub async fn create_login_token(&self, digest: [u8; 32], token: &LoginToken) -> Result<()> {
        let bytes = codec::encode(token);
        let t = &self.t;
        let r = (&t.users, &t.login_tokens, &t.login_tokens_by_user).transaction(
            |(users, tokens, by_user)| {
                if users.get(token.user_id.as_bytes())?.is_none() {
                    return abort(Error::NotFound(Entity::User));
                }
                // Postmortem: re-creating a stored digest for another user orphaned the first owner's index entry.
                if tokens.get(&digest[..])?.is_some() {
                    return abort(Error::Conflict {
                        field: Field::LoginToken,
                        value: "(digest)".into(),
                    });
                }
                tokens.insert(&digest[..], bytes.as_slice())?;
                by_user.insert(by_user_key(&token.user_id, &digest), &[][..])?;
                Ok(())
            },
        );
        txn_result(r)?;
        self.durable().await
    }

    pub fn login_token(&self, digest: &[u8; 32]) -> Result<Option<LoginToken>> {
        match self.t.login_tokens.get(digest).map_err(db_err)? {
            Some(b) => codec::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    pub async fn delete_login_token(&self, digest: &[u8; 32]) -> Result<()> {
        self.remove_login_token(digest)?;
        self.durable().await
    }

    fn remove_login_token(&self, digest: &[u8; 32]) -> Result<()> {
        let t = &self.t;
        let r = (&t.login_tokens, &t.login_tokens_by_user).transaction(|(tokens, by_user)| {
            if let Some(b) = tokens.remove(&digest[..])? {
                let tok: LoginToken = super::decode_or_abort(&b)?;
                by_user.remove(by_user_key(&tok.user_id, digest))?;
            }
            Ok(())
        });
        txn_result(r)
    }

    /// Removes every login token of a user (not flushed: the caller flushes), each with its index entry in one
    /// transaction, so a crash part-way leaves no dangling entry.
    pub(crate) fn delete_login_tokens_of(&self, user_id: &str) -> Result<()> {
        let prefix = user_prefix(user_id);
        for key in self.t.login_tokens_by_user.scan_prefix(&prefix).keys() {
            let key = key.map_err(db_err)?;
            let digest: [u8; 32] = key[prefix.len()..]
                .try_into()
                .map_err(|_| Error::internal("bad login token index key"))?;
            self.remove_login_token(&digest)?;
        }
        Ok(())
    }

    /// Removes expired login tokens and those of deleted users; returns how many.
    pub(crate) fn sweep_login_tokens(&self, now: Millis) -> Result<usize> {
        let mut n = 0;
        for kv in self.t.login_tokens.iter() {
            let (k, v) = kv.map_err(db_err)?;
            let tok: LoginToken = codec::decode(&v)?;
            let orphan = self
                .t
                .users
                .get(tok.user_id.as_bytes())
                .map_err(db_err)?
                .is_none();
            if tok.expires_at <= now || orphan {
                if let Ok(d) = <[u8; 32]>::try_from(k.as_ref()) {
                    self.remove_login_token(&d)?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_store;

    #[tokio::test]
    async fn tokens_die_with_their_user_and_when_expired() {
        let (_d, s) = temp_store();
        s.create_user(&crate::store::sled::user::tests::user("u1", "a", false))
            .await
            .unwrap();
        s.create_user(&crate::store::sled::user::tests::user("u2", "b", false))
            .await
            .unwrap();
        let tok = |u: &str, exp| LoginToken {
            user_id: u.into(),
            created_at: 0,
            expires_at: exp,
            amr: Vec::new(),
        };
        s.create_login_token([1; 32], &tok("u1", 100))
            .await
            .unwrap();
        s.create_login_token([2; 32], &tok("u1", 10)).await.unwrap();
        s.create_login_token([3; 32], &tok("u2", 100))
            .await
            .unwrap();
        assert!(s
            .create_login_token([4; 32], &tok("ghost", 100))
            .await
            .is_err());
        assert_eq!(s.sweep_login_tokens(50).unwrap(), 1);
        assert!(s.login_token(&[2; 32]).await.unwrap().is_none());
        s.delete_user("u1").await.unwrap();
        assert!(s.login_token(&[1; 32]).await.unwrap().is_none());
        assert!(s.login_token(&[3; 32]).await.unwrap().is_some());
        s.verify().unwrap();
    }

    /// Regression (model test): a digest already stored for one user was re-created for another, leaving the
    /// first user's index entry dangling (and `verify` failing at the next start).
    #[tokio::test]
    async fn a_login_token_digest_is_created_once() {
        let (_d, s) = temp_store();
        for (id, name) in [("u1", "a"), ("u2", "b")] {
            s.create_user(&crate::store::sled::user::tests::user(id, name, false))
                .await
                .unwrap();
        }
        let tok = |u: &str| LoginToken {
            user_id: u.into(),
            created_at: 0,
            expires_at: 100,
            amr: Vec::new(),
        };
        s.create_login_token([7; 32], &tok("u1")).await.unwrap();
        for owner in ["u1", "u2"] {
            let r = s.create_login_token([7; 32], &tok(owner)).await;
            assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}");
        }
        assert_eq!(
            s.login_token(&[7; 32]).await.unwrap().unwrap().user_id,
            "u1"
        );
        s.verify().unwrap();
    }
}
