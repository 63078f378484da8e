//! `oauth::params::parse_basic`: the `Authorization: Basic` header of client authentication (RFC 6749 §2.3.1).
//! Never panics; accepted credentials re-encode (form-urlencode, base64) to the same credentials.
#![no_main]

use base64::Engine as _;
use latchkey::oauth::params::parse_basic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(Ok(c)) = parse_basic(header) {
        assert!(!c.client_id.is_empty());
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let again = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                enc(&c.client_id),
                enc(&c.secret)
            ))
        );
        assert_eq!(parse_basic(&again), Some(Ok(c)), "round trip");
    }
});
