//! Credential primitives: identifiers, random secrets, digests and password hashing.
//!
//! Everything random comes from one per-thread ChaCha20 CSPRNG seeded from the OS, so ids,
//! tokens and salts share a single audited source. Password hashing (argon2id) runs on a
//! dedicated thread pool so that its memory-hard work never stalls the async runtime.

pub mod digest;
pub mod ids;
pub mod jose;
pub mod password;
pub mod seal;
pub mod secret;

pub use digest::{ct_eq, sha256, sha256_hex};
pub use ids::{is_id, random_id, uuid_v4};
pub use password::{Argon2Params, HashError, Hasher, Hold, Verifier};
pub use seal::Sealer;
pub use secret::{random_bytes, random_token};
