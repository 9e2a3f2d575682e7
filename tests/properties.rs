//! The key guarantees as properties of the whole run, over generated inputs: random stream
//! names (unicode, `/`, spaces, dots, `%`, `_`), random record values for `{record.*}` macros,
//! random templates and overrides from the accepted set, small roll limits. For every input the
//! run writes every record exactly once into a real folder (so no key was written twice: an
//! overwritten file would lose its records), every file is under the prefix, no folder a value
//! rendered is hidden from Hive-convention readers, and the manifest lists each file once.
//! `PROPTEST_CASES=1000 cargo test --test properties` searches longer.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use target_s3::config::RawConfig;
use target_s3::destination::LocalFolder;

/// Characters that broke keys before: separators, escapes, dots, unicode, Hive's `=`.
const ALPHABET: &[char] = &['a', 'B', '0', '_', '.', '/', ' ', '%', '=', '~', '-', '用', 'é', '\\', '😀', ':', '*'];

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ALPHABET), 0..7).prop_map(String::from_iter)
}

/// A record field: a string, null, a number, or missing.
fn field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => text().prop_map(|t| Some(json!(t))),
        1 => Just(Some(Value::Null)),
        1 => (0i64..3).prop_map(|n| Some(json!(n))),
        1 => Just(None),
    ]
}

/// Folders of a key template, each made of macros that read the stream, the record or the run.
const FOLDERS: &[&str] = &[
    "{stream}",
    "{stream_id}",
    "dt={record.a}",
    "{record.a}-{record.b}",
    "{record.b}",
    "x",
    "{iso_date}",
    "{namespace}",
    "{record.a}",
    "k={record.b}/{record.a}",
];
const FILE_NAMES: &[&str] = &[
    "{run_id}-{part}.{extension}",
    "{uuid}.{extension}",
    "{stream}-{timestamp}-{run_id}-{part}.{extension}",
    "{part}-{run_id}",
    "{record.a}{part}{run_id}",
];

fn template() -> impl Strategy<Value = String> {
    (prop::collection::vec(prop::sample::select(FOLDERS), 0..4), prop::sample::select(FILE_NAMES)).prop_map(
        |(folders, file)| {
            let mut parts: Vec<&str> = folders;
            parts.push(file);
            parts.join("/")
        },
    )
}

#[derive(Debug, Clone)]
struct Case {
    streams: Vec<String>,
    /// (stream index, a, b) per record, in input order.
    records: Vec<(usize, Option<Value>, Option<Value>)>,
    template: String,
    /// An override template for the first stream (exact name) or for all (`*`).
    override_template: Option<(bool, String)>,
    prefix: &'static str,
    max_records: u64,
    max_open: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::btree_set(text(), 1..4),
        prop::collection::vec((0usize..4, field(), field()), 1..40),
        template(),
        prop::option::of((any::<bool>(), template())),
        prop::sample::select(&["", "p", "p/q"][..]),
        1u64..4,
        1u64..4,
    )
        .prop_map(|(streams, records, template, override_template, prefix, max_records, max_open)| {
            let streams: Vec<String> = streams.into_iter().collect();
            let n = streams.len();
            let records = records.into_iter().map(|(s, a, b)| (s % n, a, b)).collect();
            Case { streams, records, template, override_template, prefix, max_records, max_open }
        })
}

fn input(case: &Case) -> (String, BTreeSet<String>) {
    let mut out = String::new();
    let mut expected = BTreeSet::new();
    for s in &case.streams {
        let schema = json!({"type": "SCHEMA", "stream": s, "schema": {"properties": {"id": {"type": "integer"}}}, "key_properties": ["id"]});
        out.push_str(&format!("{schema}\n"));
    }
    for (id, (s, a, b)) in case.records.iter().enumerate() {
        let mut record = serde_json::Map::new();
        record.insert("id".into(), json!(id));
        if let Some(a) = a {
            record.insert("a".into(), a.clone());
        }
        if let Some(b) = b {
            record.insert("b".into(), b.clone());
        }
        let record = Value::Object(record);
        expected.insert(record.to_string());
        out.push_str(&format!("{}\n", json!({"type": "RECORD", "stream": case.streams[*s], "record": record})));
        if id % 7 == 6 {
            out.push_str(&format!("{}\n", json!({"type": "STATE", "value": {"at": id}})));
        }
    }
    (out, expected)
}

/// Runs the case through the library into a real folder; `None` when the config is refused
/// (the generator also makes templates the start-up check rightly rejects).
fn load(case: &Case, root: &std::path::Path) -> Option<(Result<(), String>, String)> {
    let mut config = json!({
        "local_path": root, "prefix": case.prefix, "key_template": case.template, "compression": "none",
        "max_records_per_file": case.max_records, "max_open_files": case.max_open, "run_id": "run",
    });
    if let Some((exact, t)) = &case.override_template {
        let pattern = if *exact { case.streams[0].clone() } else { "*".to_string() };
        config["stream_overrides"] = json!({ pattern: {"key_template": t} });
    }
    let raw = RawConfig::from_map(config.as_object().unwrap().clone()).ok()?;
    let config = raw.validate().ok()?;
    let (signals_tx, signals) = crossbeam_channel::unbounded::<i32>();
    let storage = Arc::new(LocalFolder::new(root.to_path_buf(), false));
    let (text, _) = input(case);
    let mut state = Vec::new();
    let result =
        target_s3::pipeline::run(&config, storage, None, Box::new(std::io::Cursor::new(text)), &mut state, &signals)
            .map(|_| ())
            .map_err(|e| e.to_string());
    drop(signals_tx);
    Some((result, String::from_utf8(state).unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_record_lands_once_under_the_prefix_visible_to_readers(case in case()) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let loaded = load(&case, &root);
        prop_assume!(loaded.is_some(), "the start-up check refused the template");
        let (result, state) = loaded.unwrap();
        prop_assert!(result.is_ok(), "{:?}", result);
        let (_, expected) = input(&case);
        let files = common::all_files(&root);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut data_keys = BTreeSet::new();
        for file in &files {
            let key = file.to_str().unwrap().to_string();
            if key.starts_with(&format!("{}_manifests/", if case.prefix.is_empty() { String::new() } else { format!("{}/", case.prefix) })) {
                continue;
            }
            // Under the prefix; no temporary file left; no folder a value rendered is hidden.
            prop_assert!(case.prefix.is_empty() || key.starts_with(&format!("{}/", case.prefix)), "{key} outside the prefix");
            for segment in key.split('/') {
                prop_assert!(!segment.starts_with('_') && !segment.starts_with('.'), "hidden segment in {key}");
            }
            for line in String::from_utf8(std::fs::read(root.join(file)).unwrap()).unwrap().lines() {
                *seen.entry(line.to_string()).or_default() += 1;
            }
            data_keys.insert(key);
        }
        prop_assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), expected.clone(), "records lost or invented");
        prop_assert!(seen.values().all(|n| *n == 1), "a record was written twice: {:?}", seen);
        // The manifest lists every data file once.
        let manifest_file = files.iter().find(|f| f.to_str().unwrap().contains("_manifests/")).expect("a manifest");
        let manifest: Value = serde_json::from_slice(&std::fs::read(root.join(manifest_file)).unwrap()).unwrap();
        let listed: Vec<String> = manifest["objects"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap().to_string()).collect();
        let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
        prop_assert_eq!(listed.len(), listed_set.len(), "manifest lists a key twice");
        prop_assert_eq!(listed_set, data_keys);
        // The last STATE is printed: everything before it is in those files.
        if case.records.len() >= 7 {
            let last = state.lines().last().unwrap_or_default();
            prop_assert!(last.starts_with("{\"at\":"), "{state}");
        }
    }
}
