//! `model::redirect`: what an app may register (`validate`, `parse_list`) and how a requested redirect URI
//! matches a registered one (`matches`). Input: `registered \0 requested`. Never panics, and:
//! - everything `parse_list` returns is valid on its own;
//! - a valid URI matches itself;
//! - a request that matches a valid registered URI is itself a valid redirect URI (matching cannot smuggle in
//!   what registration refuses).
#![no_main]

use latchkey::model::redirect::{matches, parse_list, validate, HttpRedirects};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (registered, requested) = text.split_once('\0').unwrap_or((text, ""));
    if let Ok(list) = parse_list(registered, HttpRedirects::LoopbackOnly) {
        for u in &list {
            assert!(validate(u).is_ok(), "{u:?} from parse_list");
        }
    }
    if validate(registered).is_ok() {
        assert!(
            matches(registered, registered),
            "{registered:?} matches itself"
        );
        if matches(registered, requested) {
            assert!(
                validate(requested).is_ok(),
                "{requested:?} matched {registered:?} but is not a valid redirect URI"
            );
        }
    }
});
