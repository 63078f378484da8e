//! Random bytes and opaque bearer tokens.
//!
//! A thread-local `ChaCha20Rng` seeded once from the OS keeps token generation cheap (no
//! syscall per token) while staying a CSPRNG; each thread has its own independent seed.

use std::cell::RefCell;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

thread_local! {
    static RNG: RefCell<ChaCha20Rng> = RefCell::new(ChaCha20Rng::from_entropy());
}

/// Fills `dest` from the thread's CSPRNG.
pub(crate) fn fill(dest: &mut [u8]) {
    RNG.with(|rng| rng.borrow_mut().fill_bytes(dest));
}

/// `N` cryptographically random bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// A fresh 256-bit secret as 43 base64url characters (no padding).
///
/// Used for client secrets, access/refresh tokens and login tokens: 32 bytes make guessing
/// hopeless, and base64url keeps them safe in URLs, headers and form bodies unescaped.
pub fn random_token() -> String {
    let bytes = random_bytes::<32>();
    b64url(&bytes)
}

/// base64url without padding (RFC 4648 §5), the encoding OAuth uses for opaque values.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` on any invalid input.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        let t = random_token();
        assert_eq!(t.len(), 43);
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(b64url_decode(&t).map(|v| v.len()), Some(32));
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(random_token(), random_token());
        assert_ne!(random_bytes::<16>(), random_bytes::<16>());
    }

    #[test]
    fn threads_have_independent_streams() {
        let here = random_bytes::<32>();
        let there = std::thread::spawn(random_bytes::<32>).join().unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn b64url_round_trip_and_rejects_garbage() {
        let data = [0xfbu8, 0xff, 0x00, 0x10];
        let enc = b64url(&data);
        assert_eq!(enc, "-_8AEA");
        assert_eq!(b64url_decode(&enc).as_deref(), Some(&data[..]));
        assert_eq!(b64url_decode("+/8AEA"), None);
        assert_eq!(b64url_decode("-_8AEA=="), None);
        assert_eq!(b64url_decode("a"), None);
    }
}
