//! `invalid_records: dead_letter`: records that break their schema go, with their input line,
//! stream and the validator's message, to dead-letter files, and the run goes on. Every valid
//! record is in the data files and every invalid one in the dead-letter files, nothing else,
//! nothing twice; both are durable before the STATE that covers them.

mod common;

use common::*;
use serde_json::{Value, json};

fn input() -> String {
    let mut lines = vec![
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"},"n":{"type":"string"}}},"key_properties":["id"]}"#.to_string(),
    ];
    for i in 0..10 {
        lines.push(match i {
            2 => r#"{"type":"RECORD","stream":"s","record":{"id":"two","n":"x"}}"#.to_string(),
            5 => r#"{"type":"RECORD","stream":"s","record":{"n":"no id"}}"#.to_string(),
            8 => r#"{"type":"RECORD","stream":"s","record":{"id":8,"n":8}}"#.to_string(),
            i => format!(r#"{{"type":"RECORD","stream":"s","record":{{"id":{i},"n":"ok"}}}}"#),
        });
        if i == 6 {
            lines.push(r#"{"type":"STATE","value":{"s":6}}"#.to_string());
        }
    }
    lines.push(r#"{"type":"STATE","value":{"s":9}}"#.to_string());
    lines.join("\n") + "\n"
}

fn lines_of(dir: &std::path::Path, rejected: bool) -> Vec<Value> {
    files(dir)
        .into_iter()
        .filter(|p| p.starts_with("_rejected") == rejected)
        .flat_map(|p| String::from_utf8(read(&dir.join(&p))).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect()
}

#[test]
fn invalid_records_go_to_dead_letter_files_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&json!({"local_path": dir.path(), "invalid_records": "dead_letter", "log_level": "info"}), &input());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.last().map(String::as_str), Some(r#"{"s":9}"#));
    let mut data: Vec<i64> = lines_of(dir.path(), false).iter().map(|v| v["id"].as_i64().unwrap()).collect();
    data.sort();
    assert_eq!(data, [0, 1, 3, 4, 6, 7, 9], "every valid record once");
    let rejected = lines_of(dir.path(), true);
    let lines: Vec<u64> = rejected.iter().map(|v| v["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, [4, 7, 11], "input lines of the invalid records");
    assert!(rejected.iter().all(|v| v["stream"] == "s"));
    assert_eq!(rejected[0]["record"], json!({"id": "two", "n": "x"}), "the record as it came");
    assert!(rejected[0]["error"].as_str().unwrap().contains("/id"), "{}", rejected[0]);
    assert!(rejected[1]["error"].as_str().unwrap().contains("key property \"id\""), "{}", rejected[1]);
    // Counted: METRIC lines and the manifest.
    let metric: u64 = r
        .stderr
        .lines()
        .filter_map(|l| l.split_once("METRIC: ").map(|(_, m)| serde_json::from_str::<Value>(m).unwrap()))
        .filter(|m| m["metric"] == "rejected_records")
        .map(|m| m["value"].as_u64().unwrap())
        .sum();
    assert_eq!(metric, 3);
    let manifest = all_files(dir.path()).into_iter().find(|p| p.starts_with("_manifests")).unwrap();
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join(manifest)).unwrap()).unwrap();
    assert_eq!((manifest["records"].as_u64(), manifest["rejected_records"].as_u64()), (Some(7), Some(3)));
    let rejected_objects: Vec<&Value> =
        manifest["objects"].as_array().unwrap().iter().filter(|o| o["rejected"] == true).collect();
    assert_eq!(rejected_objects.len(), 1);
    assert!(rejected_objects[0]["key"].as_str().unwrap().starts_with("_rejected/s/"));
}

#[test]
fn by_default_an_invalid_record_stops_the_run_and_dead_letter_needs_validation() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&json!({"local_path": dir.path()}), &input());
    assert_eq!(r.code, 1);
    assert!(r.stderr.lines().last().unwrap().contains("line 4"), "{}", r.stderr);
    let r =
        run(&json!({"local_path": dir.path(), "invalid_records": "dead_letter", "validate_records": false}), &input());
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid_records") && r.stderr.contains("validate_records"), "{}", r.stderr);
}
