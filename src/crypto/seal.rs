//! Sealing secrets at rest: XChaCha20-Poly1305 under the master key.
//!
//! Upstream client secrets and TOTP seeds must be usable by the server (so they cannot be hashed), yet a copy of
//! the data dir alone must not reveal them. They are encrypted under a master key that lives outside the store
//! (`LATCHKEY_MASTER_KEY`, the `master_key` config key, or `master.key` beside the store). The associated data
//! binds each sealed value to its owner (e.g. the provider id), so a sealed blob copied onto another record does
//! not open. The 24-byte nonce is random: XChaCha's extended nonce makes random nonces safe without a counter.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::secret::{b64url, b64url_decode, random_bytes};

/// Nonce length of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// Name of the key file created in the data dir when no key is configured.
pub const KEY_FILE: &str = "master.key";

/// Seals and opens values under one master key, and derives the server's other secrets from it. Holds only the
/// expanded cipher and a derivation root (never the key itself); never prints either.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
    /// HMAC-SHA256(master key, "latchkey derive"): the root [`Sealer::derive`] keys its HMAC with.
    derive_root: [u8; 32],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

impl Sealer {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&key.into()),
            derive_root: hmac(&key, b"latchkey derive"),
        }
    }

    /// A 32-byte secret for one `purpose` (e.g. `pairwise-subject`), derived from the master key: stable while
    /// the key is, different per purpose, and revealing neither the key nor another purpose's secret.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        hmac(&self.derive_root, purpose.as_bytes())
    }

    /// `nonce ‖ ciphertext ‖ tag`, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<NONCE_LEN>();
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// The plaintext, or `None` when the value was sealed under another key or `aad`, or was altered.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
    }
}

fn hmac(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Parses a configured key: base64url (padding tolerated) of exactly 32 bytes.
pub fn parse_key(text: &str) -> Result<[u8; 32], String> {
    let trimmed = text.trim().trim_end_matches('=');
    b64url_decode(trimmed)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| "must be base64url of exactly 32 bytes".to_owned())
}

/// The master key: `configured` (from `LATCHKEY_MASTER_KEY` or `master_key`) when non-empty, else the key file
/// in `data_dir`, created with mode 0600 on first start. The error names what to fix and never contains the key.
pub fn load_master_key(configured: &str, data_dir: &Path) -> Result<[u8; 32], String> {
    if !configured.trim().is_empty() {
        return parse_key(configured).map_err(|e| format!("master_key (LATCHKEY_MASTER_KEY) {e}"));
    }
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            warn_if_readable_by_others(&path);
            parse_key(&text).map_err(|e| format!("key file {} {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(&path),
        Err(e) => Err(format!("cannot read key file {}: {e}", path.display())),
    }
}

fn create_key_file(path: &Path) -> Result<[u8; 32], String> {
    let key = random_bytes::<32>();
    write_new_key_file(path, &key)?;
    Ok(key)
}

/// The text of `master.key` in `data_dir` (checked to hold a valid key), or `None` when there is no such file.
/// For backups: a data dir's sealed secrets are useless without the key they were sealed with.
pub fn read_key_file(data_dir: &Path) -> Result<Option<String>, String> {
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            parse_key(&text).map_err(|e| format!("key file {} {e}", path.display()))?;
            Ok(Some(text.trim().to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read key file {}: {e}", path.display())),
    }
}

/// Writes `master.key` (mode 0600, never over an existing file) into `data_dir` from its text, e.g. on restore.
pub fn install_key_file(data_dir: &Path, text: &str) -> Result<(), String> {
    let key = parse_key(text).map_err(|e| format!("master key in the backup {e}"))?;
    write_new_key_file(&data_dir.join(KEY_FILE), &key)
}

fn write_new_key_file(path: &Path, key: &[u8; 32]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let fail = |e: std::io::Error| format!("cannot create key file {}: {e}", path.display());
    // `create_new`: never overwrite a key that appeared meanwhile; mode 0600 from the first byte on disk.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(format!("{}\n", b64url(key)).as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(fail)
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "master key file is readable by group or others; chmod 600 it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sealer() -> Sealer {
        Sealer::new([7u8; 32])
    }

    #[test]
    fn derived_secrets_are_stable_per_key_and_purpose() {
        let a = sealer().derive("pairwise-subject");
        assert_eq!(a, sealer().derive("pairwise-subject"));
        assert_ne!(a, sealer().derive("other"));
        assert_ne!(a, Sealer::new([8u8; 32]).derive("pairwise-subject"));
        assert_ne!(a, [7u8; 32]);
    }

    #[test]
    fn seals_with_a_fresh_nonce_and_opens() {
        let s = sealer();
        let a = s.seal(b"upstream secret", b"provider-1");
        let b = s.seal(b"upstream secret", b"provider-1");
        assert_ne!(a, b, "nonces are random");
        assert_eq!(a.len(), NONCE_LEN + 15 + TAG_LEN);
        assert_eq!(s.open(&a, b"provider-1").unwrap(), b"upstream secret");
        assert!(!a.windows(15).any(|w| w == b"upstream secret"));
    }

    #[test]
    fn wrong_aad_key_or_truncation_is_rejected() {
        let s = sealer();
        let sealed = s.seal(b"x", b"provider-1");
        assert!(s.open(&sealed, b"provider-2").is_none());
        assert!(Sealer::new([8u8; 32])
            .open(&sealed, b"provider-1")
            .is_none());
        assert!(s.open(&sealed[..sealed.len() - 1], b"provider-1").is_none());
        assert!(s.open(&[], b"provider-1").is_none());
        assert!(s.open(&[0u8; NONCE_LEN + TAG_LEN], b"").is_none());
    }

    #[test]
    fn key_parsing() {
        let key = [0xabu8; 32];
        assert_eq!(parse_key(&b64url(&key)).unwrap(), key);
        assert_eq!(parse_key(&format!(" {}=\n", b64url(&key))).unwrap(), key);
        assert!(parse_key("short").is_err());
        assert!(parse_key(&b64url(&[1u8; 31])).is_err());
        assert!(parse_key("not base64url!").is_err());
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_master_key("", dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_master_key("", dir.path()).unwrap(), k1, "reused");
        let configured = [3u8; 32];
        assert_eq!(
            load_master_key(&b64url(&configured), dir.path()).unwrap(),
            configured
        );
        let e = load_master_key("bad", dir.path()).unwrap_err();
        assert!(e.contains("LATCHKEY_MASTER_KEY"), "{e}");
        std::fs::write(dir.path().join(KEY_FILE), "garbage").unwrap();
        assert!(load_master_key("", dir.path())
            .unwrap_err()
            .contains(KEY_FILE));
    }

    proptest! {
        #[test]
        fn round_trip(msg in proptest::collection::vec(any::<u8>(), 0..300), aad in proptest::collection::vec(any::<u8>(), 0..40)) {
            let s = sealer();
            let sealed = s.seal(&msg, &aad);
            prop_assert_eq!(s.open(&sealed, &aad), Some(msg));
        }

        #[test]
        fn any_flipped_bit_is_rejected(msg in proptest::collection::vec(any::<u8>(), 0..64), pos in any::<proptest::sample::Index>(), bit in 0u8..8) {
            let s = sealer();
            let mut sealed = s.seal(&msg, b"aad");
            let i = pos.index(sealed.len());
            sealed[i] ^= 1 << bit;
            prop_assert!(s.open(&sealed, b"aad").is_none());
        }
    }
}
