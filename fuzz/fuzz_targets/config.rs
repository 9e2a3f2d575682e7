//! Configuration: any JSON object (the fuzzer's bytes, when they parse) is either refused with a
//! configuration error or becomes a checked `Config`; nothing panics, and no error message
//! quotes a secret setting's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use target_s3::config::RawConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let secret = map.get("aws_secret_access_key").map(|v| v.to_string());
    let result = RawConfig::from_map(map).and_then(|raw| raw.validate().map(|_| ()));
    if let (Err(e), Some(secret)) = (result, secret) {
        let secret = secret.trim_matches('"');
        if secret.len() >= 6 {
            assert!(!e.to_string().contains(secret), "a secret was echoed: {e}");
        }
    }
});
