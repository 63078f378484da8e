//! The on-disk envelope: `[version byte][bincode 2 (serde) body]`. The only place that knows bincode, so a future
//! record version is decoded (and migrated) here.

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};

/// Version of every record layout written today. 2: `TwoFactor::last_totp_step`, `Provider::merge_users_with_password`
/// (see [`added_in_v2`]).
pub const VERSION: u8 = 2;

thread_local! {
    /// The version of the record this thread is decoding (today's outside [`decode`]).
    static DECODING: Cell<u8> = const { Cell::new(VERSION) };
}

/// Sets [`DECODING`] for the life of one [`decode`], unwinding included.
struct Decoding(u8);

impl Decoding {
    fn enter(version: u8) -> Self {
        Self(DECODING.replace(version))
    }
}

impl Drop for Decoding {
    fn drop(&mut self) {
        DECODING.set(self.0);
    }
}

/// `deserialize_with` for a field added in record version 2: a version-1 record has no bytes for it, so it is not
/// read there and takes its default. bincode is not self-describing; this is how an old layout stays decodable.
pub fn added_in_v2<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> std::result::Result<T, D::Error> {
    if DECODING.get() < 2 {
        Ok(T::default())
    } else {
        T::deserialize(d)
    }
}

/// The most bytes one record may claim while it is decoded. bincode allocates a string or byte buffer by its length
/// prefix before reading it; with this budget a damaged prefix is an error, not a terabyte allocation (an abort).
/// Records are far smaller: every one comes from a request body of at most a few hundred KiB.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

fn decode_config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<MAX_RECORD_BYTES>,
> {
    config().with_limit::<MAX_RECORD_BYTES>()
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .expect("writing to a Vec cannot fail");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&v, body)) if (1..=VERSION).contains(&v) => {
            let _version = Decoding::enter(v);
            let (value, used) = bincode::serde::decode_from_slice(body, decode_config())
                .map_err(|e| Error::internal(format!("corrupt record: {e}")))?;
            if used != body.len() {
                return Err(Error::internal("corrupt record: trailing bytes"));
            }
            Ok(value)
        }
        Some((v, _)) => Err(Error::internal(format!("unknown record version {v}"))),
        None => Err(Error::internal("corrupt record: empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{App, ClientType, GrantType, User, UserRef};
    use proptest::prelude::*;

    fn arb_app() -> impl Strategy<Value = App> {
        (
            "[a-zA-Z0-9]{17}",
            "\\PC{0,40}",
            any::<bool>(),
            proptest::collection::vec("\\PC{0,30}", 0..4),
            any::<bool>(),
            proptest::option::of("\\PC{0,100}"),
            any::<i64>(),
        )
            .prop_map(|(id, name, active, uris, public, hash, t)| App {
                id: id.clone(),
                name,
                active,
                client_id: id,
                redirect_uris: uris.clone(),
                client_type: if public {
                    ClientType::Public
                } else {
                    ClientType::Confidential
                },
                grant_types: vec![GrantType::AuthorizationCode, GrantType::ClientCredentials],
                scopes: uris,
                skip_consent: !active,
                token_epoch: 0,
                secret_hash: hash,
                created_at: t,
                updated_at: t.wrapping_add(1),
                created_by: UserRef {
                    id: "u".into(),
                    username: "admin".into(),
                },
            })
    }

    proptest! {
        #[test]
        fn app_round_trips(app in arb_app()) {
            let bytes = encode(&app);
            prop_assert_eq!(bytes[0], VERSION);
            prop_assert_eq!(decode::<App>(&bytes).unwrap(), app);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode::<App>(&bytes);
            let _ = decode::<User>(&bytes);
        }
    }

    // Fuzz find (record_codec): a 30-byte record's 3.5 TB length prefix was allocated and aborted; decode has a budget.
    #[test]
    fn a_huge_length_prefix_is_an_error_not_an_allocation() {
        let crash = [
            0x01, 0x11, 0x4b, 0x77, 0x42, 0x38, 0x79, 0x65, 0x54, 0x4a, 0x6a, 0x74, 0x61, 0x69,
            0x6e, 0x48, 0x4d, 0x4c, 0x69, 0x00, 0x00, 0xfd, 0xf2, 0x84, 0x7b, 0x0a, 0x44, 0x03,
            0x00, 0x00,
        ];
        assert!(decode::<App>(&crash).is_err());
        // The same shape for every owned buffer: a u64 length prefix far beyond the record.
        let mut huge = vec![VERSION, 0xfd];
        huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(decode::<String>(&huge).is_err());
        assert!(decode::<Vec<u8>>(&huge).is_err());
        assert!(decode::<Vec<String>>(&huge).is_err());
        assert!(decode::<User>(&huge).is_err());
    }

    #[test]
    fn rejects_unknown_versions_and_trailing_bytes() {
        let mut bytes = encode(&42u32);
        assert!(decode::<u32>(&bytes).is_ok());
        bytes.push(0);
        assert!(decode::<u32>(&bytes).is_err());
        bytes[0] = 9;
        assert!(decode::<u32>(&bytes).is_err());
        assert!(decode::<u32>(&[]).is_err());
    }
}
