//! The one integration-test binary: every module starts real servers on 127.0.0.1:0 and speaks HTTP.

mod apps;
mod authz;
mod backup;
mod browser;
mod common;
mod compat;
mod crash;
mod dev;
mod federation;
mod hostile;
mod links;
mod locoia;
mod oauth_flow;
mod oidc_keys;
mod openapi;
mod ops;
mod private_dir;
mod process;
mod providers;
mod throttles;
mod token_model;
mod two_factor;
mod upgrade;
mod users;
