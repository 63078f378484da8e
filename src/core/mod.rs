//! Use cases over the store, free of any wire format: each wire adapter (`api::*`, `oauth`, `upstream`, `web`)
//! calls these. A use case takes only what it touches (`&Store`, `&Clock`, or a small context of a family such as
//! [`user::Users`] or [`two_factor::Factors`]), never the whole `AppState`, which builds the contexts; so `core`
//! imports nothing above the store and its use cases are tested on a temp store with a manual clock.

pub mod app;
pub mod bootstrap;
pub mod claims;
pub mod connected;
pub mod federation;
pub mod keys;
pub mod link;
pub mod provider;
pub mod session;
pub mod stack_keys;
#[cfg(test)]
pub(crate) mod testing;
pub mod throttle;
pub mod token_policy;
pub mod two_factor;
pub mod user;
