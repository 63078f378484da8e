//! A login token (Rocket.Chat's `authToken`) as it crosses the store boundary. How the sled backend keeps and
//! indexes it is in `sled/session.rs`; its on-disk form is in `record/session.rs`.

use crate::clock::Millis;
use crate::model::oidc::Amr;

/// A signed-in session: whose it is, how they signed in and when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginToken {
    pub user_id: String,
    /// When the user signed in: the `auth_time` of what the session approves.
    pub created_at: Millis,
    pub expires_at: Millis,
    /// How the user proved who they are (the ID token's `amr`).
    pub amr: Vec<Amr>,
}
