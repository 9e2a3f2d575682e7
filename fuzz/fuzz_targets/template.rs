//! Key templates: arbitrary template text is parsed; whatever parses renders, for arbitrary
//! stream names and records, into a key that passes the key safety check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use target_s3::template::{FileContext, KeyTemplate, ParseOptions, RunContext, check_key};

fuzz_target!(|input: (&str, &str, &str)| {
    let (template, stream, record) = input;
    let options = ParseOptions { allow_overwrite: true, ..Default::default() };
    let Ok(t) = KeyTemplate::parse("p", template, &options) else { return };
    let run = RunContext { now: chrono::Utc::now().with_timezone(&chrono_tz::Tz::UTC), run_id: "r".into() };
    let file = FileContext {
        stream,
        extension: "jsonl",
        format: "jsonl",
        compression: "none",
        stream_run_id: "s",
        part: 1,
        record: Some(record),
        partition_date_field: None,
        cursor: Some(record),
        table_version: Some(stream),
    };
    let key = t.render(&run, &file);
    if let Some(root) = t.version_root() {
        let _ = root.render(&run, &file);
    }
    let mut partition = String::new();
    t.partition(record, None, &run, &mut partition);
    // literal text comes from the user; values from data must never make a key unsafe
    if check_key(&t.render(&run, &FileContext { stream: "s", record: Some("{}"), cursor: None, table_version: Some("1"), ..file })).is_ok() {
        assert!(check_key(&key).is_ok() || key.len() > 1024, "unsafe key {key:?} from data");
    }
});
