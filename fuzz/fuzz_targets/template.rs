//! Key templates: arbitrary template text (format patterns included) is parsed; whatever parses
//! renders without panicking, for arbitrary stream names and records, into a key that passes the
//! key safety check; and distinct values always render distinct text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use target_s3::keys::{FileContext, KeyTemplate, ParseOptions, RunContext, check_key, fit_segments, push_escaped};

fn escaped(value: &str) -> String {
    let mut out = String::from("x/");
    push_escaped(&mut out, value);
    out
}

fuzz_target!(|input: (&str, &str, &str, &str)| {
    let (template, stream, other, record) = input;
    // The mapping from values to key text is injective, whatever the two values are.
    if stream != other {
        assert_ne!(escaped(stream), escaped(other), "{stream:?} and {other:?} render alike");
    }
    let Ok(t) = KeyTemplate::parse("p", template, &ParseOptions::default()) else { return };
    let run = RunContext { now: chrono::Utc::now().with_timezone(&chrono_tz::Tz::Europe__Berlin), run_id: "r".into() };
    let file = FileContext {
        stream,
        extension: "jsonl",
        format: "jsonl",
        compression: "none",
        stream_run_id: "s",
        record: Some(record),
        partition_date_field: None,
        cursor: Some(record),
        table_version: Some(stream),
    };
    let key = fit_segments(t.render(&run, &file).with_part(1));
    if let Some(root) = t.version_root() {
        let _ = root.render(&run, &file);
    }
    let mut partition = String::new();
    t.partition(record, None, &run, &mut partition);
    // literal text comes from the user; values from data must never make a key unsafe
    let plain = FileContext { stream: "s", record: Some("{}"), cursor: None, table_version: Some("1"), ..file };
    if check_key(&fit_segments(t.render(&run, &plain).with_part(1))).is_ok() {
        assert!(check_key(&key).is_ok() || key.len() > 1024, "unsafe key {key:?} from data");
    }
});
