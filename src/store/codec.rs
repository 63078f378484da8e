//! The on-disk envelope: `[version byte][bincode 2 (serde) body]`. The only place that knows bincode, so a future
//! record version is decoded (and migrated) here.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Version of every record layout written today.
pub const VERSION: u8 = 1;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VERSION];
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .expect("writing to a Vec cannot fail");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    match bytes.split_first() {
        Some((&VERSION, body)) => {
            let (value, used) = bincode::serde::decode_from_slice(body, config())
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
