//! Parquet and Avro end to end: the binary writes them, the same crates read them back, and
//! every value is compared with the input (tests/data/typed.singer: nested objects, lists of
//! objects, nulls, unicode and escapes, date-times with and without offsets, dates, big
//! integers, decimals, JSON-typed and oddly named fields; and the sample streams).
//! scripts/typed_readers.py repeats this with pyarrow and fastavro.

mod common;

use common::typed::*;
use common::*;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Value, json};
use target_s3::schema::typed::columns;

fn typed_input() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/typed.singer")).unwrap()
}

#[test]
fn every_value_round_trips_through_parquet_and_avro() {
    for (input, streams) in [(typed_input(), vec!["typed"]), (sample(), vec!["users", "orders"])] {
        for format in ["parquet", "avro"] {
            let dir = tempfile::tempdir().unwrap();
            let config = json!({"local_path": dir.path(), "format": format, "max_records_per_file": 2});
            let run = run(&config, &input);
            assert_eq!(run.code, 0, "{format}: {}", run.stderr);
            assert_eq!(
                serde_json::from_str::<Value>(run.stdout.last().unwrap()).unwrap(),
                states_of(&input).pop().unwrap()
            );
            for stream in streams.iter().copied() {
                let fields = columns(&schema_of(&input, stream), false, false);
                let want = expected_rows(&input, stream, &fields);
                let got = if format == "parquet" {
                    let (rows, schemas) = parquet_rows(dir.path(), stream, &fields);
                    assert!(schemas.len() >= 2, "several files");
                    assert!(schemas.iter().all(|s| s == &schemas[0]), "every file of a stream has one schema");
                    rows
                } else {
                    avro_rows(dir.path(), stream, &fields)
                };
                assert_eq!(got.len(), want.len(), "{format} {stream}");
                for (i, (got, want)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(got, want, "{format} {stream} record {i}");
                }
                let ext = format!(".{format}");
                assert!(files(dir.path()).iter().all(|p| p.to_str().unwrap().ends_with(&ext)), "never .{format}.gz");
            }
        }
    }
}

/// The Singer SDK's standard target test streams that must load (fetched once by
/// scripts/sdk_streams.py from PyPI).
fn sdk_streams() -> Vec<std::path::PathBuf> {
    let out = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sdk_streams.py"))
        .arg("--fetch")
        .output()
        .unwrap();
    assert!(out.status.success(), "fetching the SDK test streams: {}", String::from_utf8_lossy(&out.stderr));
    let dir = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let must_fail =
        ["invalid_schema", "record_before_schema", "record_missing_key_property", "record_missing_required_property"];
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "singer"))
        .filter(|p| !must_fail.contains(&p.file_stem().unwrap().to_str().unwrap()))
        .collect();
    paths.sort();
    paths
}

/// Each RECORD of `input` with its stream, its text and the text of the schema in force for it.
fn records_with_schemas(input: &str) -> Vec<(String, String, String)> {
    #[derive(serde::Deserialize)]
    struct Message {
        r#type: String,
        stream: Option<String>,
        schema: Option<Box<serde_json::value::RawValue>>,
        record: Option<Box<serde_json::value::RawValue>>,
    }
    let mut schemas = std::collections::HashMap::new();
    let mut out = Vec::new();
    for m in input.lines().filter_map(|l| serde_json::from_str::<Message>(l).ok()) {
        match (m.r#type.as_str(), m.stream) {
            ("SCHEMA", Some(s)) => {
                schemas.insert(s, m.schema.unwrap().get().to_string());
            }
            ("RECORD", Some(s)) => {
                let schema = schemas[&s].clone();
                out.push((s, m.record.unwrap().get().to_string(), schema));
            }
            _ => {}
        }
    }
    out
}

#[test]
fn sdk_test_streams_round_trip_through_parquet_and_avro() {
    let mut compared = 0;
    for path in sdk_streams() {
        let input = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for format in ["parquet", "avro"] {
            let dir = tempfile::tempdir().unwrap();
            let r = run(&json!({"local_path": dir.path(), "format": format, "max_records_per_file": 3}), &input);
            assert_eq!(r.code, 0, "{name} {format}: {}", r.stderr);
            let records = records_with_schemas(&input);
            let mut streams: Vec<&String> = records.iter().map(|(s, ..)| s).collect();
            streams.dedup();
            for stream in streams {
                // Keys start with the stream name, escaped reversibly (docs/reference/macros.md).
                let mine: Vec<&(String, String, String)> = records.iter().filter(|(s, ..)| s == stream).collect();
                let mut got = Vec::new();
                let of_stream =
                    |p: &&std::path::PathBuf| unescape(p.iter().next().unwrap().to_str().unwrap()) == **stream;
                for file in files(dir.path()).iter().filter(of_stream) {
                    let bytes = std::fs::read(dir.path().join(file)).unwrap();
                    if format == "parquet" {
                        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
                            .unwrap()
                            .build()
                            .unwrap();
                        for batch in reader {
                            let batch = batch.unwrap();
                            for i in 0..batch.num_rows() {
                                let (_, _, schema) = mine[got.len()];
                                let fields = columns(schema, false, false);
                                got.push(Value::Object(
                                    fields
                                        .iter()
                                        .map(|f| {
                                            (f.name.clone(), from_arrow(batch.column_by_name(&f.name).unwrap(), i, f))
                                        })
                                        .collect(),
                                ));
                            }
                        }
                    } else {
                        for value in apache_avro::Reader::new(&bytes[..]).unwrap() {
                            let apache_avro::types::Value::Record(values) = value.unwrap() else { panic!() };
                            let (_, _, schema) = mine[got.len()];
                            let fields = columns(schema, false, false);
                            got.push(Value::Object(
                                fields
                                    .iter()
                                    .zip(&values)
                                    .map(|(f, (_, v))| (f.name.clone(), from_avro(v, f)))
                                    .collect(),
                            ));
                        }
                    }
                }
                assert_eq!(got.len(), mine.len(), "{name} {format} {stream}: one row per record");
                for (i, ((_, record, schema), got)) in mine.iter().zip(&got).enumerate() {
                    let fields = columns(schema, false, false);
                    let want = expected_row(record, &fields);
                    assert_eq!(got, &want, "{name} {format} {stream} record {i}");
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 100, "only {compared} records compared");
}

#[test]
fn parquet_columns_have_the_documented_types() {
    let dir = tempfile::tempdir().unwrap();
    let run =
        run(&json!({"local_path": dir.path(), "format": "parquet", "parquet_compression": "zstd"}), &typed_input());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = dir.path().join(&files(dir.path())[0]);
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
    let schema = reader.schema().clone();
    let kinds: Vec<String> =
        schema.fields().iter().map(|f| format!("{} {} {}", f.name(), f.data_type(), f.is_nullable())).collect();
    let want = [
        "id Int64 false",
        "big Int64 true",
        "price Decimal128(38, 2) true",
        "ratio Float64 true",
        "ok Boolean true",
        "name Utf8 true",
        "at Timestamp(µs, \"UTC\") true",
        "day Date32 true",
        "address Struct(\"city\": Utf8, \"geo\": Struct(\"lat\": Float64, \"lon\": Float64)) true",
        "lines List(Struct(\"sku\": Utf8, \"qty\": Int64)) true",
        "tags List(Utf8) true",
        "free Utf8 true",
        "mixed Utf8 true",
        "odd name-with.dots Utf8 true",
    ];
    assert_eq!(kinds, want);
    let codec = reader.metadata().row_group(0).column(0).compression();
    assert!(matches!(codec, parquet::basic::Compression::ZSTD(_)), "{codec:?}");
}

const SCHEMA: &str = r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"},"at":{"type":["null","string"],"format":"date-time"}}},"key_properties":["id"]}"#;

#[test]
fn an_unparseable_value_fails_naming_line_field_and_value() {
    for format in ["parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let input = format!(
            "{SCHEMA}\n{}\n{}\n{}\n",
            r#"{"type":"RECORD","stream":"s","record":{"id":1,"at":"2026-01-01T00:00:00Z"}}"#,
            r#"{"type":"STATE","value":{"n":1}}"#,
            r#"{"type":"RECORD","stream":"s","record":{"id":2,"at":"next tuesday"}}"#,
        );
        let run = run(&json!({"local_path": dir.path(), "format": format}), &input);
        assert_eq!(run.code, 1, "{format}");
        let last = run.stderr.lines().last().unwrap();
        assert_eq!(
            last,
            r#"target-s3: error: input line 4 (stream "s"): cannot write record: field `at`: "next tuesday" is not a date-time (`unparseable_values: null` writes values that do not fit their column as null; `schema_overrides` changes a column's type)"#,
            "{format}"
        );
        if format == "parquet" {
            // The bad record's file held part of it (its `id` column): dropped, with the record
            // before it, so the STATE that needs that record is not printed.
            assert!(run.stdout.is_empty(), "the STATE's records were in the file that was not written");
            assert!(files(dir.path()).is_empty(), "no partial object: {:?}", files(dir.path()));
            continue;
        }
        // Avro cuts the bad record off its block: the file keeps the record before it, whole,
        // and nothing of the bad one (its `id` was written before `at` failed); the STATE prints.
        assert_eq!(run.stdout, vec![r#"{"n":1}"#.to_string()], "{format}");
        let fields = columns(&schema_of(&input, "s"), false, false);
        assert_eq!(avro_rows(dir.path(), "s", &fields), vec![json!({"id": 1, "at": 1_767_225_600_000_000i64})]);
    }
}

#[test]
fn unparseable_values_null_writes_counts_and_warns() {
    for format in ["parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let input = format!(
            "{SCHEMA}\n{}\n{}\n{}\n",
            r#"{"type":"RECORD","stream":"s","record":{"id":1,"at":"soon"}}"#,
            r#"{"type":"RECORD","stream":"s","record":{"id":2,"at":"2026-01-01T00:00:00Z"}}"#,
            r#"{"type":"STATE","value":{"n":2}}"#,
        );
        let run = run(&json!({"local_path": dir.path(), "format": format, "unparseable_values": "null"}), &input);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, vec![r#"{"n":2}"#]);
        assert!(
            run.stderr.contains(
                r#"METRIC: {"metric":"unparseable_values","tags":{"stream":"s"},"type":"counter","value":1}"#
            ),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("field `at`: \\\"soon\\\" is not a date-time")
                || run.stderr.contains("field `at`: \"soon\" is not a date-time"),
            "{}",
            run.stderr
        );
        let fields = columns(&schema_of(&input, "s"), false, false);
        let rows = if format == "parquet" {
            parquet_rows(dir.path(), "s", &fields).0
        } else {
            avro_rows(dir.path(), "s", &fields)
        };
        assert_eq!(rows, vec![json!({"id": 1, "at": null}), json!({"id": 2, "at": 1_767_225_600_000_000i64})]);
        let manifest = all_files(dir.path()).into_iter().find(|p| p.starts_with("_manifests")).unwrap();
        let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join(manifest)).unwrap()).unwrap();
        assert_eq!(manifest["objects"][0]["unparseable_values"], 1, "{manifest}");
    }
}

#[test]
fn a_changed_schema_starts_a_new_parquet_file() {
    let dir = tempfile::tempdir().unwrap();
    let second = SCHEMA.replace(r#""at":"#, r#""extra":{"type":"boolean"},"at":"#);
    let input = format!(
        "{SCHEMA}\n{}\n{second}\n{}\n",
        r#"{"type":"RECORD","stream":"s","record":{"id":1}}"#,
        r#"{"type":"RECORD","stream":"s","record":{"id":2,"extra":true}}"#,
    );
    let run = run(&json!({"local_path": dir.path(), "format": "parquet"}), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let found = files(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    let columns: Vec<usize> = found
        .iter()
        .map(|p| {
            let file = std::fs::File::open(dir.path().join(p)).unwrap();
            ParquetRecordBatchReaderBuilder::try_new(file).unwrap().schema().fields().len()
        })
        .collect();
    let mut sorted = columns.clone();
    sorted.sort();
    assert_eq!(sorted, vec![2, 3]);
}

#[test]
fn record_metadata_becomes_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!(
        "{SCHEMA}\n{}\n",
        r#"{"type":"RECORD","stream":"s","record":{"id":1},"time_extracted":"2026-11-22T03:00:00Z","version":7}"#
    );
    let run = run(&json!({"local_path": dir.path(), "format": "parquet", "add_record_metadata": true}), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let fields = columns(&schema_of(&input, "s"), false, true);
    let rows = parquet_rows(dir.path(), "s", &fields).0;
    assert_eq!(rows[0]["_sdc_extracted_at"], json!(micros("2026-11-22T03:00:00Z")));
    assert_eq!(rows[0]["_sdc_table_version"], 7);
    assert_eq!(rows[0]["_sdc_sequence"], 2);
    assert!(rows[0]["_sdc_received_at"].is_i64() && rows[0]["_sdc_deleted_at"].is_null());
}

#[test]
fn parquet_files_roll_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::from(
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"},"text":{"type":"string"}}},"key_properties":["id"]}"#,
    );
    input.push('\n');
    for i in 0..60_000 {
        // a different text per record, so dictionary encoding cannot shrink it away
        input.push_str(&format!(
            r#"{{"type":"RECORD","stream":"s","record":{{"id":{i},"text":"row {i} {:x}"}}}}"#,
            (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ));
        input.push('\n');
    }
    let limit = 256 * 1024;
    let config = json!({"local_path": dir.path(), "format": "parquet", "row_group_size": 2000,
                        "max_bytes_per_file": limit, "parquet_compression": "none"});
    let r = run(&config, &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sizes: Vec<u64> =
        files(dir.path()).iter().map(|p| std::fs::metadata(dir.path().join(p)).unwrap().len()).collect();
    assert!(sizes.len() >= 3, "{sizes:?}");
    // a file closes once its estimate reaches the limit: at most about one batch beyond it
    assert!(sizes.iter().all(|s| *s < 2 * limit), "{sizes:?}");
    let fields = columns(&schema_of(&input, "s"), false, false);
    assert_eq!(parquet_rows(dir.path(), "s", &fields).0.len(), 60_000);
}

/// Properties a record has beyond its schema have no column in CSV, Parquet or Avro: never
/// dropped in silence. One warning per stream, a `dropped_properties` METRIC per file and a
/// count per object in the manifest, in every such format; JSONL keeps them.
#[test]
fn properties_outside_the_schema_are_counted_in_every_format() {
    let input = [
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"id":1,"extra":"x"}}"#,
        r#"{"type":"RECORD","stream":"s","record":{"id":2,"extra":"y","more":1}}"#,
        r#"{"type":"RECORD","stream":"s","record":{"id":3}}"#,
    ]
    .join("\n");
    for (format, dropped) in [("csv", 3), ("parquet", 3), ("avro", 3), ("jsonl", 0)] {
        let dir = tempfile::tempdir().unwrap();
        let config =
            json!({"local_path": dir.path(), "format": format, "compression": "none", "max_records_per_file": 2});
        let r = run(&config, &input);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        let warnings = r.stderr.lines().filter(|l| l.contains("not in the schema")).count();
        assert_eq!(warnings, usize::from(dropped > 0), "{format}: one warning per stream\n{}", r.stderr);
        let metric: u64 = r
            .stderr
            .lines()
            .filter_map(|l| l.split_once("METRIC: ").map(|(_, m)| serde_json::from_str::<Value>(m).unwrap()))
            .filter(|m| m["metric"] == "dropped_properties")
            .map(|m| m["value"].as_u64().unwrap())
            .sum();
        assert_eq!(metric, dropped, "{format}: METRIC lines");
        let manifest = all_files(dir.path()).into_iter().find(|p| p.starts_with("_manifests")).unwrap();
        let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join(manifest)).unwrap()).unwrap();
        let counted: u64 =
            manifest["objects"].as_array().unwrap().iter().map(|o| o["dropped_properties"].as_u64().unwrap_or(0)).sum();
        assert_eq!(counted, dropped, "{format}: manifest");
    }
}

/// The memory budget counts what a file really holds: an Avro file's rows are in its blocks,
/// handed over chunk by chunk, so two long streams stay one file each within a small budget.
#[test]
fn typed_files_stay_within_the_memory_budget_without_closing_early() {
    let mut input = String::new();
    for s in ["a", "b"] {
        input.push_str(&format!(
            r#"{{"type":"SCHEMA","stream":"{s}","schema":{{"properties":{{"id":{{"type":"integer"}},"p":{{"type":"string"}}}}}},"key_properties":["id"]}}"#
        ));
        input.push('\n');
    }
    for i in 0..30_000 {
        for s in ["a", "b"] {
            input.push_str(&format!(
                r#"{{"type":"RECORD","stream":"{s}","record":{{"id":{i},"p":"{}"}}}}"#,
                "z".repeat(100)
            ));
            input.push('\n');
        }
    }
    for format in ["avro", "parquet"] {
        let dir = tempfile::tempdir().unwrap();
        let config =
            json!({"local_path": dir.path(), "format": format, "max_open_bytes": 4 * 1024 * 1024, "log_level": "warn"});
        let r = run(&config, &input);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        assert!(!r.stderr.contains("closing files early"), "{format}: {}", r.stderr);
        assert_eq!(files(dir.path()).len(), 2, "{format}: one file per stream");
    }
}
