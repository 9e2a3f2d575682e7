//! The rooms of the pipeline, driven without threads: the file set's roll rules against a
//! command channel (what the writer thread would receive), and the finisher's manifest.

use crossbeam_channel::{Receiver, unbounded};
use serde_json::json;
use serde_json::value::RawValue;

use super::files::{FileSet, RecordContext, is_full};
use super::finish::Finisher;
use super::router::Router;
use crate::ack::AckTracker;
use crate::config::{Config, Limits, RawConfig};
use crate::keys::RunContext;
use crate::writer::Command;

fn config(extra: serde_json::Value) -> Config {
    let mut c = json!({"compression": "none", "run_id": "r", "local_path": "/nonexistent"});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    RawConfig::from_map(c.as_object().unwrap().clone()).unwrap().validate().unwrap()
}

fn run_context() -> RunContext {
    RunContext { now: chrono::Utc::now().with_timezone(&chrono_tz::Tz::UTC), run_id: "r".into() }
}

const SCHEMA: &str = r#"{"properties":{"id":{"type":"integer"},"day":{"type":"string"}}}"#;

fn raw(text: &str) -> Box<RawValue> {
    serde_json::from_str(text).unwrap()
}

/// What the writer thread would have been told, in order: `open KEY`, `close`.
fn commands(rx: &Receiver<Command>) -> Vec<String> {
    rx.try_iter()
        .filter_map(|c| match c {
            Command::Open { key, .. } => Some(format!("open {key}")),
            Command::Close { .. } => Some("close".to_string()),
            _ => None,
        })
        .collect()
}

/// Writes `records` of stream `s` through a router and a file set; returns the commands and the
/// number of files the file set reported closed.
fn write(config: &Config, records: &[&str]) -> (Vec<String>, usize) {
    let (tx, rx) = unbounded();
    let (_recycle_tx, recycle_rx) = unbounded();
    let mut router = Router::new(config, run_context());
    let mut files = FileSet::new(config, run_context(), tx, recycle_rx);
    let mut ack = AckTracker::default();
    router.schema("s", &raw(SCHEMA), vec![], vec![]).unwrap();
    let mut closed = 0;
    for (line, record) in records.iter().enumerate() {
        let record = raw(record);
        let route = router.route("s", record.get(), None, None).unwrap();
        let context = RecordContext { line: line as u64 + 2, time_extracted: None, version: None, received_at: "" };
        files.write(route.spec, route.partition, record.get(), route.cursor.as_ref(), &context, &mut ack).unwrap();
        closed += files.take_closed().count();
    }
    files.close_all().unwrap();
    closed += files.take_closed().count();
    (commands(&rx), closed)
}

#[test]
fn files_roll_at_max_records_and_keys_count_up() {
    let c = config(json!({"max_records_per_file": 2, "key_template": "{stream}/{run_id}-{part}.{extension}"}));
    let (cmds, closed) = write(&c, &[r#"{"id":1}"#, r#"{"id":2}"#, r#"{"id":3}"#, r#"{"id":4}"#, r#"{"id":5}"#]);
    assert_eq!(
        cmds,
        ["open s/r-00000.jsonl", "close", "open s/r-00001.jsonl", "close", "open s/r-00002.jsonl", "close"]
    );
    assert_eq!(closed, 3);
}

#[test]
fn past_max_open_files_the_least_recently_written_file_closes() {
    let c = config(json!({
        "max_open_files": 2, "max_records_per_file": 0,
        "key_template": "{stream}/{record.day}/{run_id}-{part}.{extension}",
    }));
    let day = |d: &str| format!(r#"{{"id":1,"day":"{d}"}}"#);
    let records: Vec<String> = ["a", "b", "a", "c", "a", "b"].iter().map(|d| day(d)).collect();
    let records: Vec<&str> = records.iter().map(String::as_str).collect();
    let (cmds, closed) = write(&c, &records);
    // a, b open; c evicts b (a was written later); b comes back as its next part and evicts c.
    // A file reaches the writer only when it closes (small files hold their records).
    let mut cmds = cmds;
    let tail = cmds.split_off(4);
    assert_eq!(cmds, ["open s/b/r-00000.jsonl", "close", "open s/c/r-00000.jsonl", "close"]);
    let mut tail: Vec<String> = tail.chunks(2).map(|c| c.join(" ")).collect();
    tail.sort();
    assert_eq!(tail, ["open s/a/r-00000.jsonl close", "open s/b/r-00001.jsonl close"], "the rest at the end");
    assert_eq!(closed, 4);
}

#[test]
fn a_file_is_full_at_either_limit() {
    let limits = |records, bytes| Limits { max_records: records, max_bytes: bytes, max_age: None };
    assert!(!is_full(&limits(None, None), u64::MAX, || u64::MAX), "no limits: never full");
    assert!(is_full(&limits(Some(10), None), 10, || 0));
    assert!(!is_full(&limits(Some(10), None), 9, || u64::MAX));
    assert!(is_full(&limits(None, Some(100)), 1, || 100));
    assert!(!is_full(&limits(None, Some(100)), 1, || 99));
}

#[test]
fn the_manifest_lists_durable_files_and_never_deleted_ones() {
    let c = config(json!({}));
    let mut finisher = Finisher::new(&c);
    let (tx, _rx) = unbounded();
    let (_recycle_tx, recycle_rx) = unbounded();
    let mut files = FileSet::new(&c, run_context(), tx, recycle_rx);
    let mut router = Router::new(&c, run_context());
    router.schema("s", &raw(SCHEMA), vec![], vec![]).unwrap();
    let mut ack = AckTracker::default();
    for line in [2, 3] {
        let record = raw(r#"{"id":1}"#);
        let route = router.route("s", record.get(), None, None).unwrap();
        let context = RecordContext { line, time_extracted: None, version: None, received_at: "" };
        files.write(route.spec, route.partition, record.get(), route.cursor.as_ref(), &context, &mut ack).unwrap();
    }
    files.close_all().unwrap();
    let closed: Vec<_> = files.take_closed().collect();
    let key = closed[0].entry.key.clone();
    let id = closed[0].id;
    for c in closed {
        finisher.file_closed(c);
    }
    finisher.totals.records = 2;
    let (_, body) = finisher.manifest(&run_context(), &Default::default()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["objects"], json!([]), "nothing is durable yet");
    finisher.file_durable(id, &key, 18, 0xdead_beef);
    let (_, body) = finisher.manifest(&run_context(), &Default::default()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["records"], 2);
    let object = &manifest["objects"][0];
    assert_eq!(
        (object["key"].as_str(), object["records"].as_u64(), object["bytes"].as_u64()),
        (Some(key.as_str()), Some(2), Some(18))
    );
    assert_eq!(object["crc32"], "deadbeef");
    finisher.deleted(&[key]);
    let (_, body) = finisher.manifest(&run_context(), &Default::default()).unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["objects"], json!([]));
}
