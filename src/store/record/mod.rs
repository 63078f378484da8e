//! On-disk records: the layout of every value the store keeps, one type per version, separate from the domain
//! types so that changing a domain type can never silently change (or break the reading of) the bytes on disk.
//!
//! Each domain type the store keeps implements [`Record`](super::codec::Record) here: its newest on-disk type
//! (`Disk`), `From` both ways between that and the domain type, and `upgrade`, which reads a body of every version
//! byte the type has ever been written with into the newest on-disk type. `codec::encode` always writes the newest
//! version; `codec::decode` upgrades on read (old records are rewritten in the newest layout the next time they are
//! written, never in bulk). A backup carries the records' bytes as they are, so a restored old record is upgraded
//! the same way.
//!
//! The rules:
//! - **Never change a `V` type once a release has written it**, nor a type it contains: not a field, not its
//!   order, not an enum's variants or their order (bincode writes fields in order and variants by index, and
//!   stores no names). On-disk types use plain types (`i64`, not `Millis`) for the same reason.
//! - **A new or changed field is a new version plus a conversion.** To add one to `App`: write `AppV3` (the next
//!   free version byte *of `App`*: versions count per record type) holding the new layout, `From<AppV1> for AppV3`
//!   giving the new field its value for old records, point `Record for App` at it (`VERSION = 3`,
//!   `Disk = AppV3`, the `From`s with the domain type, one more `upgrade` arm), and add a golden file
//!   (`golden.rs`). Other record types are untouched.
//! - A type is named for the version byte that introduced its layout. Bytes 1 (0.1.0) and 2 were once shared by
//!   every type: 2 was written for all of them when `User` and `Provider` gained a field, so every type reads
//!   both, and the types whose layout did not change then read both with their `V1` type and write 2 (the bytes
//!   today's data dirs hold).
//! - The golden files (`golden/*.bin`) are bytes earlier code wrote; a test decodes each to its value and checks
//!   that the value encodes to the newest file. Never regenerate a released one.

mod app;
mod link;
mod provider;
pub(super) mod revoked_jti;
mod session;
mod setting;
mod signing_key;
mod token;
mod user;

#[cfg(test)]
mod golden;
