//! Domain types and their validation. No IO: the store persists these, the wire adapters translate them.

pub mod app;
pub mod link;
pub mod provider;
mod provider_setting;
pub mod redirect;
pub mod user;

pub use app::{App, ClientType, GrantType};
pub use link::Link;
pub use provider::Provider;
pub use user::{Permission, Role, User, UserRef};
