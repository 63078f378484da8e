//! RC settings of custom providers (`POST /api/v1/settings/:_id`): the key (`Setting::parse_key`), the provider
//! name rules and the value check/set of `model::provider`. Input: `key \0 JSON value`. Never panics, and a
//! value that `set` accepts reads back unchanged through `get` (RC's read-after-write).
#![no_main]

use latchkey::model::provider::{normalize_name, validate_name, Setting, SettingValue};
use latchkey::model::Provider;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, value) = text.split_once('\0').unwrap_or((text, "null"));
    let n = normalize_name(key);
    assert_eq!(normalize_name(&n), n, "normalization is idempotent");
    let _ = validate_name(key);
    let Some((name, setting)) = Setting::parse_key(key) else {
        return;
    };
    assert_eq!(setting.key(name), key, "parse_key inverts key");
    let value = match serde_json::from_str::<Value>(value) {
        Ok(Value::Bool(b)) => SettingValue::Bool(b),
        Ok(Value::String(s)) => SettingValue::Str(s),
        _ => return,
    };
    let checked = Provider::check(setting, &value).is_ok();
    let mut p = Provider::new("AAAAAAAAAAAAAAAAA".into(), "Myidp".into(), 0);
    match p.set(setting, value.clone()) {
        Ok(()) => {
            assert!(checked, "set accepted what check refused");
            assert_eq!(p.get(setting), value, "read after write");
        }
        Err(_) => assert!(
            !checked || setting.is_secret(),
            "check passed but set failed"
        ),
    }
});
