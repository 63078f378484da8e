//! Public identifiers (client ids, user ids) and UUIDs.
//!
//! Ids use the Meteor/Rocket.Chat `Random.id` format — 17 characters from an alphabet without
//! look-alikes (no `0`, `1`, `I`, `O`, `l`, `U`, `V`) — so they stay readable when copied by
//! hand and interoperate with systems that already validate that format.

use super::secret;

/// The 55-character `Random.id` alphabet.
pub const ID_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz";

/// Length of an id: 17 × log2(55) ≈ 98 bits of entropy.
pub const ID_LEN: usize = 17;

/// Largest multiple of the alphabet size that fits in a byte; bytes at or above it are
/// rejected so that `byte % 55` is exactly uniform.
const ACCEPT_BELOW: u8 = (256 / ID_ALPHABET.len() * ID_ALPHABET.len()) as u8;

/// Membership table so `is_id` is a branch-free lookup per byte.
const IN_ALPHABET: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < ID_ALPHABET.len() {
        table[ID_ALPHABET[i] as usize] = true;
        i += 1;
    }
    table
};

/// A new random id: 17 characters, each uniform over [`ID_ALPHABET`].
pub fn random_id() -> String {
    let mut id = String::with_capacity(ID_LEN);
    // 220/256 of bytes are accepted, so one 32-byte batch almost always suffices.
    let mut pool = [0u8; 32];
    while id.len() < ID_LEN {
        secret::fill(&mut pool);
        for &b in &pool {
            if b < ACCEPT_BELOW {
                id.push(ID_ALPHABET[usize::from(b) % ID_ALPHABET.len()] as char);
                if id.len() == ID_LEN {
                    break;
                }
            }
        }
    }
    id
}

/// Whether `s` has the shape of an id from [`random_id`]: exactly 17 alphabet characters.
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| IN_ALPHABET[usize::from(b)])
}

/// A random (version 4) UUID, lowercase and hyphenated, drawn from the same CSPRNG as tokens.
pub fn uuid_v4() -> String {
    uuid::Builder::from_random_bytes(secret::random_bytes::<16>())
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alphabet_is_meteor_random_id() {
        assert_eq!(ID_ALPHABET.len(), 55);
        assert_eq!(ACCEPT_BELOW, 220);
        let mut sorted = ID_ALPHABET.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ID_ALPHABET.len(), "alphabet has duplicates");
        for c in b"01IOUVl" {
            assert!(!ID_ALPHABET.contains(c));
        }
    }

    #[test]
    fn id_shape() {
        let id = random_id();
        assert_eq!(id.len(), 17);
        assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)));
        assert!(is_id(&id));
        assert_ne!(random_id(), random_id());
    }

    #[test]
    fn ids_cover_alphabet_roughly_uniformly() {
        let mut counts = [0u32; 256];
        for _ in 0..2_000 {
            for b in random_id().bytes() {
                counts[usize::from(b)] += 1;
            }
        }
        // 34 000 draws over 55 symbols: expected ≈ 618 each.
        for &c in ID_ALPHABET {
            let n = counts[usize::from(c)];
            assert!((450..800).contains(&n), "{} drawn {n} times", c as char);
        }
    }

    #[test]
    fn is_id_rejects_examples() {
        assert!(is_id("23456789ABCDEFGHJ"));
        assert!(!is_id(""));
        assert!(!is_id("23456789ABCDEFGH"));
        assert!(!is_id("23456789ABCDEFGHJK"));
        assert!(!is_id("03456789ABCDEFGHJ"));
        assert!(!is_id("2345678-ABCDEFGHJ"));
        // Multi-byte chars must not pass by byte length coincidence.
        assert!(!is_id("23456789ABCDEFGé"));
    }

    #[test]
    fn uuid_shape() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        let parsed = uuid::Uuid::parse_str(&u).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(u, u.to_lowercase());
        assert_ne!(uuid_v4(), uuid_v4());
    }

    proptest! {
        #[test]
        fn random_ids_are_ids(_seed in any::<u8>()) {
            prop_assert!(is_id(&random_id()));
        }

        #[test]
        fn foreign_char_is_rejected(
            idx in 0usize..ID_LEN,
            c in any::<char>().prop_filter("outside alphabet", |c| !c.is_ascii() || !ID_ALPHABET.contains(&(*c as u8))),
        ) {
            let mut chars: Vec<char> = random_id().chars().collect();
            chars[idx] = c;
            let s: String = chars.into_iter().collect();
            prop_assert!(!is_id(&s));
        }

        #[test]
        fn wrong_length_is_rejected(s in "[23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz]{0,40}") {
            prop_assert_eq!(is_id(&s), s.len() == ID_LEN);
        }
    }
}
