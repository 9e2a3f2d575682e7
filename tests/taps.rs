//! Schemas as real taps send them, end to end through the binary with default settings.
//!
//! tests/data/postgres.singer is one incremental sync of a Postgres table by
//! pipelinewise-tap-postgres 1.8.x, in the tap's exact shapes: draft-4 boolean bounds without
//! `$schema` on every `numeric` column (`multipleOf` 10^-scale, bounds ±10^(precision-scale),
//! numeric without precision capped at (100, 38): `multipleOf: 1e-38`, bounds of 63 digits),
//! arrays as `$ref`s to the tap's recursive `sdc_recursive_*_array` definitions, `date` and
//! both timestamps as `format: date-time` (values with `+00:00`), `time` as `format: time`,
//! json/jsonb as `["null", "object", "array"]`, hstore as an object without properties, money,
//! enums and uuid as strings; values as the tap's simplejson writes Python `Decimal`s (exact
//! text, `0E-10` included); SCHEMA, STATE, ACTIVATE_VERSION, RECORDs with `version` and
//! `time_extracted`, and STATEs with the tap's bookmark.

mod common;

use common::typed::*;
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use target_s3::schema::typed::columns;

const STREAM: &str = "public-orders";

fn postgres() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/postgres.singer")).unwrap()
}

/// The one data file of a run into `dir`.
fn only_file(dir: &std::path::Path) -> std::path::PathBuf {
    let found = files(dir);
    assert_eq!(found.len(), 1, "{found:?}");
    dir.join(&found[0])
}

/// What a CSV cell holds for a value's raw JSON text: strings unescaped, null and absent empty,
/// anything else as the tap wrote it.
fn cell(raw: Option<&str>) -> String {
    match raw {
        None | Some("null") => String::new(),
        Some(r) if r.starts_with('"') => serde_json::from_str(r).unwrap(),
        Some(r) => r.to_string(),
    }
}

#[test]
fn postgres_stream_loads_in_every_format_with_default_settings() {
    let input = postgres();
    let records = records_of(&input, STREAM);
    let schema = schema_of(&input, STREAM);
    let names: Vec<String> = columns(&schema, false, false).into_iter().map(|f| f.name).collect();
    for format in ["jsonl", "json", "csv", "parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let r = run(&json!({"local_path": dir.path(), "format": format}), &input);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        let last_state = serde_json::from_str::<Value>(r.stdout.last().unwrap()).unwrap();
        assert_eq!(last_state, states_of(&input).pop().unwrap(), "{format}");
        let path = only_file(dir.path());
        match format {
            "jsonl" => {
                let text = String::from_utf8(read(&path)).unwrap();
                assert_eq!(text.lines().collect::<Vec<_>>(), records, "the tap's bytes");
            }
            "json" => {
                let got: Vec<Box<RawValue>> = serde_json::from_slice(&read(&path)).unwrap();
                assert_eq!(got.iter().map(|r| r.get()).collect::<Vec<_>>(), records);
            }
            "csv" => {
                let bytes = read(&path);
                let mut csv = csv::Reader::from_reader(&bytes[..]);
                assert_eq!(csv.headers().unwrap().iter().collect::<Vec<_>>(), names);
                let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
                assert_eq!(rows.len(), records.len());
                for (row, record) in rows.iter().zip(&records) {
                    let members: std::collections::HashMap<String, Box<RawValue>> =
                        serde_json::from_str(record).unwrap();
                    for (name, got) in names.iter().zip(row.iter()) {
                        assert_eq!(got, cell(members.get(name).map(|r| r.get())), "csv {name} in {record}");
                    }
                }
            }
            _ => {
                let fields = columns(&schema, false, false);
                let got = if format == "parquet" {
                    parquet_rows(dir.path(), "public-orders", &fields).0
                } else {
                    avro_rows(dir.path(), "public-orders", &fields)
                };
                let want = expected_rows(&input, STREAM, &fields);
                assert_eq!(got.len(), want.len());
                for (i, (got, want)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(got, want, "{format} record {i}");
                }
                // The values that used to be rounded or quoted, spelled out.
                assert_eq!(got[0]["ratio"], "0.33333333333333333333", "{format}: unscaled numeric, exact");
                assert_eq!(got[1]["ratio"], "12345678901234567890123456789.123456789", "{format}");
                assert_eq!(got[0]["big"], "1234567890123456789012345678901234.5678", "{format}: numeric(38,4)");
                assert_eq!(got[0]["amount"], "1234.50", "{format}");
                assert_eq!(got[0]["scores"], json!([2, -7, null, 2147483647]), "{format}: int[] holds integers");
                assert_eq!(got[0]["tags"], json!(["a1", "b \"2\"", null]), "{format}: text[] holds the strings");
                assert_eq!(got[0]["prices"], json!(["1.50", null, "-99999999.99"]), "{format}: numeric(10,2)[]");
                assert_eq!(got[0]["flags"], json!([true, false, null]), "{format}");
                assert_eq!(got[0]["birthday"], json!(micros("1990-05-17T00:00:00Z")), "{format}: date");
            }
        }
    }
}

#[test]
fn postgres_parquet_columns_have_the_documented_types() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&json!({"local_path": dir.path(), "format": "parquet"}), &postgres());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(only_file(dir.path())).unwrap()).unwrap();
    let kinds: Vec<String> =
        reader.schema().fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
    let ts = "Timestamp(µs, \"UTC\")";
    let want = [
        "id Int64".to_string(),
        "amount Decimal128(38, 2)".into(),
        "ratio Utf8".into(),
        "big Decimal128(38, 4)".into(),
        "score Float64".into(),
        "big_id Int64".into(),
        "active Boolean".into(),
        "name Utf8".into(),
        "status Utf8".into(),
        "balance Utf8".into(),
        "uid Utf8".into(),
        format!("created_at {ts}"),
        format!("updated_at {ts}"),
        format!("birthday {ts}"),
        "opens_at Utf8".into(),
        "doc Utf8".into(),
        "attrs Utf8".into(),
        "tags List(Utf8)".into(),
        "scores List(Int64)".into(),
        "prices List(Decimal128(38, 2))".into(),
        format!("seen_at List({ts})"),
        "flags List(Boolean)".into(),
        "docs List(Utf8)".into(),
    ];
    assert_eq!(kinds, want);
}

/// Postgres arrays may have any number of dimensions, and the tap's schema cannot say which.
#[test]
fn multi_dimensional_postgres_arrays_fail_naming_the_way_out_or_load_as_json() {
    let input = postgres();
    let schema_line = input.lines().next().unwrap();
    let record = r#"{"type": "RECORD", "stream": "public-orders", "record": {"id": 9, "scores": [[1, 2], [3, null]], "updated_at": "2024-03-05T00:00:00+00:00"}}"#;
    let two_d = format!("{schema_line}\n{record}\n");
    for format in ["parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let r = run(&json!({"local_path": dir.path(), "format": format}), &two_d);
        assert_eq!(r.code, 1, "{format}: {}", r.stderr);
        let last = r.stderr.lines().last().unwrap();
        assert!(
            last.starts_with(
                r#"target-s3: error: input line 2 (stream "public-orders"): cannot write record: field `scores[]`: [1, 2] is not an element of a one-dimensional array"#
            ) && last.contains("`nested_as_json: true`"),
            "{last}"
        );
        assert!(files(dir.path()).is_empty());
        let r = run(&json!({"local_path": dir.path(), "format": format, "nested_as_json": true}), &two_d);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        let fields = columns(&schema_of(&two_d, STREAM), true, false);
        let rows = if format == "parquet" {
            parquet_rows(dir.path(), STREAM, &fields).0
        } else {
            avro_rows(dir.path(), STREAM, &fields)
        };
        assert_eq!(rows[0]["scores"], json!([[1, 2], [3, null]]), "{format}: JSON text");
    }
}

#[test]
fn schema_errors_name_line_stream_and_place() {
    let cases = [
        (
            r#"{"$schema":"http://json-schema.org/draft-07/schema#","properties":{"amount":{"type":"number","exclusiveMaximum":true,"maximum":10}}}"#,
            r#"SCHEMA is not a valid JSON Schema: at /properties/amount/exclusiveMaximum: true is not of type "number" (a draft-4 boolean bound, but `$schema` names a later draft: declare draft-04 or drop `$schema`)"#,
        ),
        (
            r##"{"properties":{"tags":{"type":"array","items":{"$ref":"#/definitions/nope"}}}}"##,
            "SCHEMA is not a valid JSON Schema: $ref: Pointer '/definitions/nope' does not exist",
        ),
    ];
    for (schema, error) in cases {
        let input = format!(
            "{}\n{}\n",
            r#"{"type":"STATE","value":{"a":1}}"#,
            json!({"type": "SCHEMA", "stream": "s", "schema": serde_json::from_str::<Value>(schema).unwrap(), "key_properties": []})
        );
        let dir = tempfile::tempdir().unwrap();
        let r = run(&json!({"local_path": dir.path()}), &input);
        assert_eq!(r.code, 1);
        assert_eq!(
            r.stderr.lines().last().unwrap(),
            format!(r#"target-s3: error: input line 2 (stream "s"): {error}"#)
        );
    }
    // Declared draft 4 is honoured as draft 4.
    let input = format!(
        "{}\n{}\n{}\n",
        r#"{"type":"SCHEMA","stream":"s","schema":{"$schema":"http://json-schema.org/draft-04/schema#","properties":{"n":{"type":"number","exclusiveMinimum":true,"minimum":0}}},"key_properties":[]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"n":1}}"#,
        r#"{"type":"RECORD","stream":"s","record":{"n":0}}"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let r = run(&json!({"local_path": dir.path()}), &input);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .lines()
            .last()
            .unwrap()
            .contains("input line 3 (stream \"s\"): record does not match the schema: at /n: 0")
    );
}

#[test]
fn flattened_names_are_unique_in_csv_and_flattened_json() {
    let input = [
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"},"a__b":{"type":"string"},"a":{"type":"object","properties":{"b":{"type":"string"}}}}},"key_properties":["id"]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"id":1,"a__b":"top","a":{"b":"nested"}}}"#,
    ]
    .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let r = run(&json!({"local_path": dir.path(), "format": "csv", "compression": "none"}), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(only_file(dir.path())).unwrap(), "id,a__b,a__b_2\n1,top,nested\n");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"local_path": dir.path(), "flattening_enabled": true, "compression": "none"});
    let r = run(&config, &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(only_file(dir.path())).unwrap(),
        "{\"id\":1,\"a__b\":\"top\",\"a__b_2\":\"nested\"}\n"
    );
}

/// A tap's own `_sdc_deleted_at` (log-based replication marks deletes with it, undeclared) is
/// kept by every format when `add_record_metadata` is on.
#[test]
fn a_taps_sdc_deleted_at_is_kept_by_every_format() {
    let input = [
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"},"o":{"type":"object","properties":{"x":{"type":"integer"}}}}},"key_properties":["id"]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"id":1,"o":{"x":2},"_sdc_deleted_at":"2026-11-22T04:00:00+00:00"}}"#,
        r#"{"type":"RECORD","stream":"s","record":{"id":2}}"#,
    ]
    .join("\n");
    let deleted = ["2026-11-22T04:00:00+00:00", ""];
    let base = json!({"add_record_metadata": true, "compression": "none"});
    let with = |extra: Value, dir: &std::path::Path| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c["local_path"] = json!(dir);
        c
    };
    // CSV
    let dir = tempfile::tempdir().unwrap();
    let r = run(&with(json!({"format": "csv"}), dir.path()), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("no column"), "{}", r.stderr);
    let bytes = std::fs::read(only_file(dir.path())).unwrap();
    let mut csv = csv::Reader::from_reader(&bytes[..]);
    let column = csv.headers().unwrap().iter().position(|h| h == "_sdc_deleted_at").unwrap();
    let got: Vec<String> = csv.records().map(|r| r.unwrap()[column].to_string()).collect();
    assert_eq!(got, deleted);
    // JSONL, as sent and flattened
    for flattening in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let r = run(&with(json!({"flattening_enabled": flattening}), dir.path()), &input);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let text = std::fs::read_to_string(only_file(dir.path())).unwrap();
        let got: Vec<Value> =
            text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["_sdc_deleted_at"].clone()).collect();
        assert_eq!(got, [json!(deleted[0]), Value::Null], "flattening {flattening}");
    }
    // Parquet
    let dir = tempfile::tempdir().unwrap();
    let r = run(&with(json!({"format": "parquet"}), dir.path()), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fields = columns(&schema_of(&input, "s"), false, true);
    let rows = parquet_rows(dir.path(), "s", &fields).0;
    assert_eq!(rows[0]["_sdc_deleted_at"], json!(micros(deleted[0])));
    assert!(rows[1]["_sdc_deleted_at"].is_null());
}

/// `levels` nested nullable objects; the innermost holds `v`.
fn deep(levels: usize) -> String {
    let mut schema = r#"{"type":["null","object"],"properties":{"v":{"type":"integer"}}}"#.to_string();
    let mut record = r#"{"v":7}"#.to_string();
    for level in (1..levels).rev() {
        schema = format!(r#"{{"type":["null","object"],"properties":{{"l{level}":{schema}}}}}"#);
        record = format!(r#"{{"l{level}":{record}}}"#);
    }
    format!(
        "{}\n{}\n",
        format_args!(
            r#"{{"type":"SCHEMA","stream":"deep","schema":{{"properties":{{"l0":{schema}}}}},"key_properties":[]}}"#
        ),
        format_args!(r#"{{"type":"RECORD","stream":"deep","record":{{"l0":{record}}}}}"#),
    )
}

#[test]
fn avro_refuses_schemas_too_deep_for_its_readers() {
    let input = deep(32);
    let dir = tempfile::tempdir().unwrap();
    let r = run(&json!({"local_path": dir.path(), "format": "avro"}), &input);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    // Refused at the SCHEMA line, before any record.
    assert!(
        last.starts_with(
            r#"target-s3: error: input line 1 (stream "deep"): SCHEMA cannot be written in this stream's format: Avro: property `l0.l1.l2."#
        ),
        "{last}"
    );
    assert!(
        last.contains("is 33 levels deep")
            && last.ends_with("set `nested_as_json: true` (nested objects as JSON text) or use `format: parquet`"),
        "{last}"
    );
    assert!(!last.contains("Failed to parse schema"), "{last}");
    assert!(files(dir.path()).is_empty());
    // The two ways out.
    for (format, nested_as_json) in [("avro", true), ("parquet", false)] {
        let dir = tempfile::tempdir().unwrap();
        let r = run(&json!({"local_path": dir.path(), "format": format, "nested_as_json": nested_as_json}), &input);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        let fields = columns(&schema_of(&input, "deep"), nested_as_json, false);
        let rows = if format == "parquet" {
            parquet_rows(dir.path(), "deep", &fields).0
        } else {
            avro_rows(dir.path(), "deep", &fields)
        };
        assert_eq!(rows, expected_rows(&input, "deep", &fields), "{format}");
    }
}

/// docs/formats.md: numbers sent as strings are read in numeric columns only without validation; with it,
/// the record breaks its schema.
#[test]
fn numbers_sent_as_strings_need_validate_records_off() {
    let input = [
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"price":{"type":"number","multipleOf":0.01},"n":{"type":"integer"}}},"key_properties":[]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"price":"12.30","n":"7"}}"#,
    ]
    .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let r = run(&json!({"local_path": dir.path(), "format": "parquet"}), &input.replace(r#","n":"7""#, ""));
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.lines().last().unwrap(),
        r#"target-s3: error: input line 2 (stream "s"): record does not match the schema: at /price: "12.30" is not of type "number" (`invalid_records: dead_letter` sets such records aside in dead-letter files and goes on)"#
    );
    let r = run(&json!({"local_path": dir.path(), "format": "parquet", "validate_records": false}), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fields = columns(&schema_of(&input, "s"), false, false);
    assert_eq!(parquet_rows(dir.path(), "s", &fields).0, vec![json!({"price": "12.30", "n": 7})]);
}
