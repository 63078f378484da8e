//! Parsing of untrusted OAuth input: form bodies and query strings (duplicates rejected, RFC 6749 §3.1/§3.2) and
//! HTTP Basic client credentials (RFC 6749 §2.3.1: id and secret are form-urlencoded before base64).

use base64::Engine;

use crate::web::form::form_decode;
pub use crate::web::form::{ParamError, Params};

/// Client credentials from an `Authorization: Basic` header.
#[derive(Debug, PartialEq, Eq)]
pub struct BasicCredentials {
    pub client_id: String,
    pub secret: String,
}

/// Parses `Basic base64(urlencode(id):urlencode(secret))`. `None` when the header is not Basic at all;
/// `Err` when it is Basic but malformed.
pub fn parse_basic(header: &str) -> Option<Result<BasicCredentials, ParamError>> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bad = || Err(ParamError("malformed Basic credentials".into()));
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(rest.trim()) else {
        return Some(bad());
    };
    let Ok(raw) = String::from_utf8(raw) else {
        return Some(bad());
    };
    let Some((id, secret)) = raw.split_once(':') else {
        return Some(bad());
    };
    match (form_decode(id.as_bytes()), form_decode(secret.as_bytes())) {
        (Some(client_id), Some(secret)) if !client_id.is_empty() => {
            Some(Ok(BasicCredentials { client_id, secret }))
        }
        _ => Some(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("Basic {}", b64("my%20client:s%3Acret+x"));
        let c = parse_basic(&h).unwrap().unwrap();
        assert_eq!(c.client_id, "my client");
        assert_eq!(c.secret, "s:cret x");
        assert!(parse_basic("Bearer abc").is_none());
        assert!(parse_basic("Basic !!!").unwrap().is_err());
        assert!(parse_basic(&format!("Basic {}", b64("nocolon")))
            .unwrap()
            .is_err());
        assert!(parse_basic(&format!("Basic {}", b64("a:%zz")))
            .unwrap()
            .is_err());
    }

    proptest! {
        #[test]
        fn basic_round_trips(id in "\\PC{1,20}", secret in "\\PC{0,40}") {
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let h = format!("Basic {}", b64(&format!("{}:{}", enc(&id), enc(&secret))));
            let c = parse_basic(&h).unwrap().unwrap();
            prop_assert_eq!(c.client_id, id);
            prop_assert_eq!(c.secret, secret);
        }

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), h in "\\PC{0,80}") {
            let _ = Params::parse(&bytes);
            let _ = parse_basic(&h);
        }
    }
}
