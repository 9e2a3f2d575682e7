//! Schema compilation, record validation, column planning, the CSV/JSON encoders (flattened or not) and the typed
//! column rules and value parsers of Parquet/Avro on arbitrary schemas and records: errors are
//! fine, panics are not.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use target_s3::config::{Config, Format, RawConfig};
use target_s3::formats::{Encoder, RecordMetadata};
use target_s3::schema::{SchemaOptions, StreamSchema};
use target_s3::schema::typed;

/// (flattening off, flattening on), built once.
fn configs() -> &'static (Config, Config) {
    static CONFIGS: OnceLock<(Config, Config)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let raw = RawConfig { flattening_max_depth: 3, ..RawConfig::default() };
        let flat = RawConfig { flattening_enabled: true, ..raw.clone() };
        (raw.validate().unwrap(), flat.validate().unwrap())
    })
}

fuzz_target!(|input: (&str, &str)| {
    let (schema_text, record) = input;
    let opts = SchemaOptions { validate_records: true, validate_formats: true, flatten_max_depth: 3 };
    let columns = typed::columns(schema_text, false, true);
    let Ok(schema) = StreamSchema::compile(schema_text, vec!["id".into()], opts) else { return };
    let Ok(record) = serde_json::from_str::<&RawValue>(record) else { return };
    let raw = record.get();
    // The validator reads the record as a tape (src/json/tape): any JSON must parse and check
    // without a panic, twice in a row in one thread's reused buffers.
    let _ = schema.check(raw);
    let _ = schema.check(raw);
    let _ = (typed::int(raw), typed::float(raw), typed::timestamp(raw), typed::date(raw), typed::decimal(raw, 2));
    let mut slots = vec![None; columns.len()];
    let _ = typed::members(raw, &typed::FieldIndex::new(columns.iter().map(|f| f.name.as_str())), &mut slots, &mut Default::default());
    let meta = RecordMetadata { extracted_at: None, received_at: "r", batched_at: "b", sequence: 1, table_version: None };
    let (plain, flat) = configs();
    for config in [plain, flat] {
        for (format, with_meta) in [(Format::Csv, false), (Format::Csv, true), (Format::Json, true), (Format::Jsonl, true)] {
            let Ok(mut encoder) = Encoder::new(format, "s", &schema, config, 1024, with_meta, None) else { return };
            let _ = encoder.encode(raw, with_meta.then_some(&meta));
            let _ = encoder.finish();
            let _ = encoder.take(Vec::new());
        }
    }
});
