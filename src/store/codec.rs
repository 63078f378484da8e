//! The on-disk envelope: `[version byte][bincode 2 (serde) body]`. The only place that knows bincode. What a body
//! holds is a record type's business: each domain type the store keeps implements [`Record`] in `record/`, which
//! names its on-disk types per version and upgrades an old body to the newest.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// A domain type the store keeps, and how it is laid out on disk (see `record/mod.rs` for the rules).
pub trait Record: Clone {
    /// The version byte [`encode`] writes: the newest layout of this type. Each type counts on its own.
    const VERSION: u8;
    /// The on-disk type of [`Self::VERSION`]; `From` both ways with the domain type.
    type Disk: Serialize + DeserializeOwned + From<Self> + Into<Self>;
    /// Reads a body of any version this type has had, upgraded to [`Self::Disk`].
    fn upgrade(body: Body<'_>) -> Result<Self::Disk>;
}

/// The body of one record and the version byte it was written with.
pub struct Body<'a> {
    version: u8,
    bytes: &'a [u8],
}

impl Body<'_> {
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Decodes the whole body as the on-disk type `D`, within the byte budget.
    pub fn read<D: DeserializeOwned>(&self) -> Result<D> {
        let (value, used) = bincode::serde::decode_from_slice(self.bytes, decode_config())
            .map_err(|e| Error::internal(format!("corrupt record: {e}")))?;
        if used != self.bytes.len() {
            return Err(Error::internal("corrupt record: trailing bytes"));
        }
        Ok(value)
    }

    /// The answer for a version byte the record type never wrote.
    pub fn unknown<D>(&self) -> Result<D> {
        Err(Error::internal(format!(
            "unknown record version {}",
            self.version
        )))
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

/// The envelope of `disk` under version byte `version`. Only [`encode`] (with the newest version) and the tests
/// (which make old layouts) write one.
pub(crate) fn encode_as<D: Serialize>(version: u8, disk: &D) -> Vec<u8> {
    let mut out = vec![version];
    bincode::serde::encode_into_std_write(disk, &mut out, config())
        .expect("writing to a Vec cannot fail");
    out
}

/// The newest layout of `value`.
pub fn encode<R: Record>(value: &R) -> Vec<u8> {
    encode_as(R::VERSION, &R::Disk::from(value.clone()))
}

/// A record of any version `R` has had, as today's domain value.
pub fn decode<R: Record>(bytes: &[u8]) -> Result<R> {
    match bytes.split_first() {
        Some((&version, bytes)) => R::upgrade(Body { version, bytes }).map(Into::into),
        None => Err(Error::internal("corrupt record: empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{App, ClientType, GrantType, Link, Provider, User, UserRef};
    use crate::store::token::{CodeRecord, FamilyRecord, TokenRecord};
    use crate::store::LoginToken;
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
                oidc: Default::default(),
            })
    }

    proptest! {
        #[test]
        fn app_round_trips(app in arb_app()) {
            let bytes = encode(&app);
            prop_assert_eq!(bytes[0], App::VERSION);
            prop_assert_eq!(decode::<App>(&bytes).unwrap(), app);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode::<App>(&bytes);
            let _ = decode::<User>(&bytes);
            let _ = decode::<Provider>(&bytes);
            let _ = decode::<Link>(&bytes);
            let _ = decode::<LoginToken>(&bytes);
            let _ = decode::<CodeRecord>(&bytes);
            let _ = decode::<TokenRecord>(&bytes);
            let _ = decode::<FamilyRecord>(&bytes);
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
        let mut huge = vec![0xfd];
        huge.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let body = Body {
            version: 2,
            bytes: &huge,
        };
        assert!(body.read::<String>().is_err());
        assert!(body.read::<Vec<u8>>().is_err());
        assert!(body.read::<Vec<String>>().is_err());
        let record = [&[2][..], &huge].concat();
        assert!(decode::<User>(&record).is_err());
        assert!(decode::<Provider>(&record).is_err());
    }

    #[test]
    fn rejects_unknown_versions_and_trailing_bytes() {
        let token = LoginToken {
            user_id: "u".into(),
            created_at: 1,
            expires_at: 2,
            amr: Vec::new(),
        };
        let mut bytes = encode(&token);
        assert_eq!(decode::<LoginToken>(&bytes).unwrap(), token);
        bytes.push(0);
        assert!(decode::<LoginToken>(&bytes).is_err());
        bytes.pop();
        for unknown in [0, LoginToken::VERSION + 1, 255] {
            bytes[0] = unknown;
            assert!(decode::<LoginToken>(&bytes).is_err(), "{unknown}");
        }
        assert!(decode::<LoginToken>(&[]).is_err());
    }
}
