//! A login token (Rocket.Chat's `authToken`) as it crosses the store boundary. How the sled backend keeps and
//! indexes it is in `sled/session.rs`; its on-disk form is in `record/session.rs`.

use crate::clock::Millis;

/// A signed-in session: whose it is and when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginToken {
    pub user_id: String,
    pub created_at: Millis,
    pub expires_at: Millis,
}
