//! RC JSON bodies: `serde_json` into a `Value` (as `RcBody` does), then the ajv-like `Shape` checks of
//! `oauth-apps.create` / `.update` / `.delete` and, for bodies that pass, the app input validation the handler
//! runs next (`AppInput::validate` + the client-type/grant-type combination). Never panics.
#![no_main]

use latchkey::api::rc::apps::{input, BY_ID, CREATE, UPDATE};
use latchkey::model::app::AppFields;
use latchkey::model::redirect::HttpRedirects;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = BY_ID.check(&body);
    for shape in [&CREATE, &UPDATE] {
        if let Ok(obj) = shape.check(&body) {
            // Both redirect policies: the strict default and the one local setups turn on.
            for http in [HttpRedirects::LoopbackOnly, HttpRedirects::AnyHost] {
                let Ok(f) = input(obj).validate(http) else {
                    continue;
                };
                assert!(!f.name.is_empty() && !f.redirect_uris.is_empty());
                let ct = f.client_type.unwrap_or_default();
                if let Some(g) = &f.grant_types {
                    let _ = AppFields::check_combination(ct, g);
                }
            }
        }
    }
});
