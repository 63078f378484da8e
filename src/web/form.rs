//! Strict parsing of untrusted form bodies and query strings: names unique (RFC 6749 §3.1/§3.2 for the OAuth
//! endpoints), escapes and UTF-8 checked. Every form a page or an OAuth endpoint reads goes through [`Params`].

use std::collections::BTreeMap;

/// Parameters with unique names. Empty values count as absent (RFC 6749 §3.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

/// Why the input was refused; rendered as `invalid_request`.
#[derive(Debug, PartialEq, Eq)]
pub struct ParamError(pub String);

/// Most parameters any OAuth request legitimately carries; a flood beyond this is refused before more work.
const MAX_PARAMS: usize = 64;

impl Params {
    /// Strict `application/x-www-form-urlencoded`: a malformed `%` escape or a name or value that is not UTF-8
    /// is refused (not replaced, as a lenient form parser would), so what the client meant is never guessed.
    pub fn parse(input: &[u8]) -> Result<Self, ParamError> {
        let mut map = BTreeMap::new();
        let pairs = input.split(|&b| b == b'&').filter(|p| !p.is_empty());
        for (n, pair) in pairs.enumerate() {
            if n >= MAX_PARAMS {
                return Err(ParamError("too many parameters".into()));
            }
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let malformed =
                || ParamError("a parameter is not valid percent-encoded UTF-8".to_owned());
            let k = form_decode(k).ok_or_else(malformed)?;
            let v = form_decode(v).ok_or_else(malformed)?;
            if map.contains_key(&k) {
                return Err(ParamError(format!("parameter {k} was sent more than once")));
            }
            map.insert(k, v);
        }
        map.retain(|_, v: &mut String| !v.is_empty());
        Ok(Params(map))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn contains(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub fn remove(&mut self, k: &str) -> Option<String> {
        self.0.remove(k)
    }

    pub fn insert(&mut self, k: &str, v: String) {
        self.0.insert(k.to_owned(), v);
    }

    /// Re-encodes as a query string (stable order), e.g. to carry a pending request through the login page.
    pub fn to_query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(self.0.iter())
            .finish()
    }
}

/// Decodes one form-urlencoded name or value: `+` is a space, `%` must be followed by two hex digits, and the
/// result must be UTF-8; `None` otherwise.
pub(crate) fn form_decode(raw: &[u8]) -> Option<String> {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(*raw.get(i + 1)?)?;
                let lo = hex(*raw.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicates_are_rejected_and_empty_values_dropped() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
    }

    #[test]
    fn malformed_escapes_and_invalid_utf8_are_refused() {
        for bad in [
            &b"a=%zz"[..],
            b"a=%4",
            b"a=%",
            b"a=%+1",
            b"a=%FF%FE",
            b"a=\xff",
            b"%C3=1",
        ] {
            assert!(Params::parse(bad).is_err(), "{bad:?}");
        }
        let p = Params::parse(b"a=%C3%A9+x&&b%20c=%2B").unwrap();
        assert_eq!(p.get("a"), Some("\u{e9} x"));
        assert_eq!(p.get("b c"), Some("+"));
    }

    proptest! {
        #[test]
        fn params_round_trip(map in proptest::collection::btree_map("[a-z_]{1,8}", "\\PC{1,12}", 0..8)) {
            let p = Params(map.clone());
            prop_assert_eq!(Params::parse(p.to_query().as_bytes()).unwrap(), p);
        }
    }
}
