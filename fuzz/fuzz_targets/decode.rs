//! The Singer message decoder on arbitrary lines: it must return a message or an error, never
//! panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = target_s3::singer::decode(line);
    }
});
