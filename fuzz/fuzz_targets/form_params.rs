//! `oauth::params::Params::parse`: OAuth form bodies and query strings (token, introspect, revoke, authorize).
//! Never panics; whatever it accepts re-encodes (`to_query`) to the same parameters.
#![no_main]

use latchkey::oauth::params::Params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Params::parse(data) {
        let again = Params::parse(p.to_query().as_bytes()).expect("re-encoded parameters parse");
        assert_eq!(again, p, "round trip through to_query");
    }
});
