//! Schema compilation, column planning and the CSV/JSON encoders on arbitrary schemas and
//! records: errors are fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use target_s3::config::{CsvOptions, Format};
use target_s3::encode::{Encoder, RecordMetadata};
use target_s3::schema::{SchemaOptions, StreamSchema};

fuzz_target!(|input: (&str, &str)| {
    let (schema, record) = input;
    let opts = SchemaOptions { validate_records: true, validate_formats: true, flatten_max_depth: 3 };
    let Ok(schema) = StreamSchema::compile(schema, vec!["id".into()], opts) else { return };
    let Ok(record) = serde_json::from_str::<&RawValue>(record) else { return };
    let _ = schema.check(record);
    let csv = CsvOptions { delimiter: b',', quote: b'"', header: true, max_depth: 3 };
    let meta = RecordMetadata { extracted_at: None, received_at: "r", batched_at: "b", sequence: 1, table_version: None };
    for (format, with_meta) in [(Format::Csv, false), (Format::Csv, true), (Format::Json, true), (Format::Jsonl, true)] {
        let mut encoder = Encoder::new(format, &schema.columns, &csv, 1024, with_meta);
        let _ = encoder.encode(record, with_meta.then_some(&meta));
        encoder.finish();
        let _ = encoder.take(Vec::new());
    }
});
