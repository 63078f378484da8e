//! Login tokens: `login_tokens` keyed by digest, bound to their user by a foreign key, so a token can neither be
//! made for a missing user nor outlive its user.

use super::{conflict_on, db_err, is_fk_violation, rec, Pg, Prepared};
use crate::error::{Entity, Error, Field, Result};
use crate::store::{codec, LoginToken};

impl Pg {
    /// As sled decides: an unknown user is `NotFound` before a taken digest is a conflict (the insert happens
    /// only when the user exists; a user deleted meanwhile trips the foreign key, also `NotFound`).
    pub async fn create_login_token(&self, digest: [u8; 32], token: &LoginToken) -> Result<()> {
        let inserted = self
            .client()
            .await?
            .exec(
                "INSERT INTO login_tokens (digest, user_id, expires_at, rec) \
                 SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $2)",
                &[
                    &&digest[..],
                    &token.user_id,
                    &token.expires_at,
                    &codec::encode(token),
                ],
            )
            .await
            .map_err(|e| {
                if is_fk_violation(&e) {
                    return Error::NotFound(Entity::User);
                }
                conflict_on(e, &[("login_tokens_pkey", Field::LoginToken, "(digest)")]).into()
            })?;
        if inserted == 0 {
            return Err(Error::NotFound(Entity::User));
        }
        Ok(())
    }

    pub async fn login_token(&self, digest: &[u8; 32]) -> Result<Option<LoginToken>> {
        let row = self
            .client()
            .await?
            .opt(
                "SELECT rec FROM login_tokens WHERE digest = $1",
                &[&&digest[..]],
            )
            .await
            .map_err(db_err)?;
        row.map(|r| rec(&r, "rec")).transpose()
    }

    pub async fn delete_login_token(&self, digest: &[u8; 32]) -> Result<()> {
        self.client()
            .await?
            .exec(
                "DELETE FROM login_tokens WHERE digest = $1",
                &[&&digest[..]],
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
