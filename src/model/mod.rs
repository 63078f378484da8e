//! Domain types and their validation. No IO: the store persists these, the wire adapters translate them.
//! They derive no serde traits: the store writes its own on-disk record types (`store::record`) and each API
//! answers with its own response types, so changing a domain type can change neither a stored nor a wire format.

pub mod app;
pub mod builtin_setting;
pub mod catalogue;
pub mod link;
pub mod oidc;
pub mod profile;
pub mod provider;
mod provider_setting;
pub mod redirect;
pub mod signing_key;
pub mod user;

pub use app::{App, ClientType, GrantType};
pub use link::Link;
pub use provider::Provider;
pub use signing_key::SigningKey;
pub use user::{Permission, Role, User, UserRef};
