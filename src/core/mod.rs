//! Use cases over the store, free of any wire format: each wire adapter (`api::*`, `oauth`, `web`) calls these.

pub mod app;
pub mod bootstrap;
pub mod federation;
pub mod link;
pub mod provider;
pub mod session;
pub mod stack_keys;
#[cfg(test)]
pub(crate) mod testing;
pub mod throttle;
pub mod two_factor;
pub mod user;
