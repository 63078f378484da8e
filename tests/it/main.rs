//! The one integration-test binary: every module starts real servers on 127.0.0.1:0 and speaks HTTP.

mod apps;
mod common;
mod ops;
mod process;
mod users;
