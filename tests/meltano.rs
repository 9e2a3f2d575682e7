//! Conventions of Meltano and hotglue-style job runners: SDK metrics on stderr, BATCH messages,
//! ACTIVATE_VERSION, a piped run whose state file ends with the final state, and meltano.yml
//! declaring exactly the settings the binary knows.

mod common;

use std::io::Write;

use common::*;
use serde_json::{Value, json};

const SCHEMA: &str = r#"{"type":"SCHEMA","stream":"users","schema":{"properties":{"id":{"type":"integer"},"name":{"type":"string"}}},"key_properties":["id"]}"#;

#[test]
fn batch_messages_load_like_records() {
    let dir = tempfile::tempdir().unwrap();
    let batch = dir.path().join("batch-0001.json.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&batch).unwrap(), flate2::Compression::default());
    for i in 1..=3 {
        writeln!(gz, r#"{{"id":{i},"name":"u{i}"}}"#).unwrap();
    }
    gz.finish().unwrap();
    let message = json!({"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl", "compression": "gzip"},
                         "manifest": [format!("file://{}", batch.display())]});
    let input = format!(
        "{SCHEMA}\n{}\n{message}\n{}\n",
        r#"{"type":"RECORD","stream":"users","record":{"id":0,"name":"u0"}}"#,
        r#"{"type":"STATE","value":{"users":3}}"#
    );
    let out = dir.path().join("out");
    let r = run(&json!({"local_path": out, "compression": "none", "log_level": "warn"}), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let f = files(&out);
    let ids: Vec<i64> = String::from_utf8(read(&out.join(&f[0])))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(r.stdout, [r#"{"users":3}"#]);

    // a record in a batch file is validated like any other
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"x\"}\n").unwrap();
    let message = json!({"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl"}, "manifest": [format!("file://{}", bad.display())]});
    let r = run(&json!({"local_path": out, "log_level": "warn"}), &format!("{SCHEMA}\n{message}\n"));
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 2 (stream \"users\")") && r.stderr.contains("integer"), "{}", r.stderr);
}

#[test]
fn metrics_versions_and_a_piped_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = format!(
        "{SCHEMA}\n{}\n{}\n{}\n{}\n",
        r#"{"type":"ACTIVATE_VERSION","stream":"users","version":1700000000}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":1,"name":"a"},"version":1700000000}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":2,"name":"b"},"version":1700000000}"#,
        r#"{"type":"STATE","value":{"bookmarks":{"users":2}}}"#
    );
    let r = run(&json!({"local_path": out, "log_level": "info", "run_id": "r"}), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let metric =
        r.stderr.lines().find(|l| l.contains("METRIC:") && l.contains("record_count")).expect("a record_count metric");
    let metric: Value = serde_json::from_str(&metric[metric.find("METRIC: ").unwrap() + 8..]).unwrap();
    assert_eq!(metric, json!({"type": "counter", "metric": "record_count", "value": 2, "tags": {"stream": "users"}}));
    // stdout is nothing but state: `> state.json` leaves the final state as the last line
    assert_eq!(r.stdout, [r#"{"bookmarks":{"users":2}}"#]);
    let manifest = all_files(&out).into_iter().find(|p| p.starts_with("_manifests")).unwrap();
    let manifest: Value = serde_json::from_slice(&std::fs::read(out.join(manifest)).unwrap()).unwrap();
    assert_eq!(manifest["table_versions"], json!({"users": "1700000000"}));
}

/// meltano.yml declares target-s3 with exactly the settings the binary documents, secrets as
/// `password`.
#[test]
fn meltano_yml_matches_the_settings_table() {
    let yml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/meltano.yml")).unwrap();
    let start = yml.find("# settings:start").expect("settings block");
    let end = yml.find("# settings:end").expect("settings block end");
    let block = &yml[start..end];
    let generated = target_s3::cli::meltano_settings_yaml();
    if std::env::var_os("UPDATE_MELTANO").is_some() {
        let line_end = start + yml[start..].find('\n').unwrap() + 1;
        let updated = format!("{}{}{}", &yml[..line_end], generated, &yml[end..]);
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/meltano.yml"), updated).unwrap();
        return;
    }
    assert!(
        block.contains(&generated),
        "meltano.yml settings are stale: run UPDATE_MELTANO=1 cargo test --test meltano"
    );
    for s in target_s3::settings::SETTINGS {
        assert!(block.contains(&format!("- name: {}\n", s.name)), "{} missing", s.name);
    }
}

#[test]
fn record_metadata_columns() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!(
        "{SCHEMA}\n{}\n{}\n",
        r#"{"type":"RECORD","stream":"users","record":{"id":1,"name":"a"},"time_extracted":"2026-11-22T03:00:00Z","version":5}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":2,"name":"b"}}"#
    );
    for format in ["jsonl", "csv"] {
        let out = dir.path().join(format);
        let config = json!({"local_path": out, "compression": "none", "log_level": "warn", "add_record_metadata": true, "format": format});
        let r = run(&config, &input);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let body = String::from_utf8(read(&out.join(&files(&out)[0]))).unwrap();
        if format == "jsonl" {
            let rows: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert_eq!(rows[0]["_sdc_extracted_at"], "2026-11-22T03:00:00Z");
            assert_eq!(rows[0]["_sdc_table_version"], 5);
            assert_eq!(rows[0]["_sdc_sequence"], 2, "the input line number");
            assert!(rows[1]["_sdc_extracted_at"].is_null() && rows[1]["_sdc_deleted_at"].is_null());
            assert!(rows[1]["_sdc_received_at"].as_str().unwrap().starts_with("20"));
            assert_eq!(rows[1]["name"], "b");
        } else {
            let mut reader = csv::Reader::from_reader(body.as_bytes());
            assert_eq!(
                reader.headers().unwrap(),
                vec![
                    "id",
                    "name",
                    "_sdc_extracted_at",
                    "_sdc_received_at",
                    "_sdc_batched_at",
                    "_sdc_sequence",
                    "_sdc_table_version",
                    "_sdc_deleted_at"
                ]
            );
            let first = reader.records().next().unwrap().unwrap();
            assert_eq!(&first[2], "2026-11-22T03:00:00Z");
            assert_eq!(&first[5], "2");
            assert_eq!(&first[6], "5");
        }
    }
}

#[test]
fn json_logging_makes_every_stderr_line_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"local_path": dir.path(), "log_format": "json", "log_level": "debug"});
    let ok = run(&config, &format!("{SCHEMA}\n{}\n", r#"{"type":"RECORD","stream":"users","record":{"id":1}}"#));
    let failed = run(&config, r#"{"type":"RECORD","stream":"nope","record":{}}"#);
    assert_eq!((ok.code, failed.code), (0, 1));
    for line in ok.stderr.lines().chain(failed.stderr.lines()) {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    let last: Value = serde_json::from_str(failed.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR");
    assert!(last["fields"]["message"].as_str().unwrap().contains("RECORD before any SCHEMA"));
}

#[test]
fn flattening_enabled_writes_flat_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let schema = r#"{"type":"SCHEMA","stream":"users","schema":{"properties":{"id":{"type":"integer"},"address":{"type":["null","object"],"properties":{"city":{"type":"string"},"geo":{"type":"object","properties":{"lat":{"type":"number"}}}}},"tags":{"type":"array"}}},"key_properties":["id"]}"#;
    let input = format!(
        "{schema}\n{}\n{}\n",
        r#"{"type":"RECORD","stream":"users","record":{"tags":["a"],"address":{"geo":{"lat":1.50},"city":"Zürich \"Z\""},"id":1}}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":2,"address":null}}"#,
    );
    for (depth, first) in [
        (10, r#"{"id":1,"address__city":"Zürich \"Z\"","address__geo__lat":1.50,"tags":["a"]}"#),
        (1, r#"{"id":1,"address__city":"Zürich \"Z\"","address__geo":{"lat":1.50},"tags":["a"]}"#),
    ] {
        let out = dir.path().join(format!("out{depth}"));
        let config = json!({"local_path": out, "compression": "none", "flattening_enabled": true, "flattening_max_depth": depth});
        let r = run(&config, &input);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let body = String::from_utf8(read(&out.join(&files(&out)[0]))).unwrap();
        assert_eq!(body, format!("{first}\n{{\"id\":2}}\n"), "schema order, raw values, absent stays absent");
    }
}

/// A full-table sync as the Singer SDK writes it: records carry `version`, ACTIVATE_VERSION
/// follows them.
fn full_table_sync(version: u64, ids: &[i64]) -> String {
    let mut lines = vec![SCHEMA.to_string()];
    for id in ids {
        lines.push(format!(
            r#"{{"type":"RECORD","stream":"users","record":{{"id":{id},"name":"n"}},"version":{version}}}"#
        ));
    }
    lines.push(format!(r#"{{"type":"ACTIVATE_VERSION","stream":"users","version":{version}}}"#));
    lines.push(format!(r#"{{"type":"STATE","value":{{"v":{version}}}}}"#));
    lines.join("\n") + "\n"
}

#[test]
fn version_folders_and_hard_delete() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config =
        json!({"local_path": out, "compression": "none", "activate_version_mode": "folder", "log_level": "warn"});
    let first = run(&config, &full_table_sync(1700000000000, &[1, 2]));
    assert_eq!(first.code, 0, "{}", first.stderr);
    let mut hard = config.clone();
    hard["hard_delete"] = json!(true);
    // A newer version in the same run as an older one, then the run after.
    let second =
        run(&hard, &format!("{}{}", full_table_sync(1700000000001, &[3]), full_table_sync(1700000000002, &[4, 5])));
    assert_eq!(second.code, 0, "{}", second.stderr);
    // Each STATE is printed once its files are durable (the first may or may not be covered
    // before the second arrives); the last one printed is the input's last.
    assert_eq!(second.stdout.last().map(String::as_str), Some(r#"{"v":1700000000002}"#), "{:?}", second.stdout);
    assert!(second.stdout.iter().all(|s| s == r#"{"v":1700000000001}"# || s == r#"{"v":1700000000002}"#));
    let found = files(&out);
    assert!(found.iter().all(|p| p.starts_with("users/1700000000002")), "older versions are gone: {found:?}");
    let ids: Vec<i64> = found
        .iter()
        .flat_map(|p| String::from_utf8(read(&out.join(p))).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .map(|l| serde_json::from_str::<Value>(&l).unwrap()["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [4, 5]);
    // without hard_delete every version stays, each in its folder
    let kept = run(&config, &full_table_sync(1700000000003, &[6]));
    assert_eq!(kept.code, 0);
    let folders: std::collections::BTreeSet<String> =
        files(&out).iter().map(|p| p.iter().nth(1).unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(folders.into_iter().collect::<Vec<_>>(), ["1700000000002", "1700000000003"]);
}

#[test]
fn version_settings_are_checked_at_start() {
    for (config, setting) in [
        (json!({"hard_delete": true}), "hard_delete"),
        (json!({"activate_version_mode": "folder", "key_template": "{stream}/{run_id}-{part}.jsonl"}), "key_template"),
        (
            json!({"activate_version_mode": "folder", "hard_delete": true, "key_template": "{stream}/{iso_date}/{table_version}/{run_id}-{part}.jsonl"}),
            "key_template",
        ),
    ] {
        let r = run(&config, "");
        assert_eq!(r.code, 2, "{config}");
        assert!(r.stderr.contains(&format!("`{setting}`")), "{config}: {}", r.stderr);
    }
}

/// The loader definition in the MeltanoHub format (`meltano-hub/loaders/target-s3--rust.yml`):
/// the same settings as the binary documents, for `meltano add loader target-s3 --from-ref`.
/// Regenerate with `UPDATE_MELTANO=1 cargo test --test meltano`; scripts/meltano_run.py adds it
/// to a fresh Meltano project and lists its settings with Meltano itself.
#[test]
fn hub_plugin_definition_matches_the_settings_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/meltano-hub/loaders/target-s3--rust.yml");
    let header = "\
# MeltanoHub-format definition of this loader, generated from the settings table by
# tests/meltano.rs (UPDATE_MELTANO=1 cargo test --test meltano). The Hub's own `target-s3`
# plugins are other projects: add this one by reference, e.g.
#   meltano add loader target-s3 --from-ref meltano-hub/loaders/target-s3--rust.yml
name: target-s3
variant: rust
namespace: target_s3
label: target-s3 (Rust)
description: Singer target that loads into Amazon S3, S3-compatible stores or a local folder (JSONL, JSON, CSV, Parquet, Avro, Delta Lake), printing STATE only once every record before it is durable.
pip_url: /path/to/your/clone/of/target-s3  # pip builds it with maturin; no release is on PyPI
executable: target-s3
capabilities:
- about
- validate-records
- schema-flattening
- structured-logging
- batch
- activate-version
settings_group_validation:
- []
settings:
";
    let generated = format!("{header}{}", target_s3::cli::meltano_settings_yaml());
    if std::env::var_os("UPDATE_MELTANO").is_some() {
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(path).expect("meltano-hub/loaders/target-s3--rust.yml");
    assert_eq!(on_disk, generated, "stale: run UPDATE_MELTANO=1 cargo test --test meltano");
}
