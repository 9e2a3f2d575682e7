//! Delta tables on stores that behave differently: a store that ignores conditional writes
//! (`If-None-Match: *`, which every Delta commit relies on to lose no commit when writers race)
//! is refused before anything is written, unless `single_writer` says only one writer commits.
#![cfg(feature = "delta")]

mod common;

use common::proxy::Proxy;
use serde_json::json;

const INPUT: &str = concat!(
    r#"{"type":"SCHEMA","stream":"orders","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#,
    "\n",
    r#"{"type":"RECORD","stream":"orders","record":{"id":1}}"#,
    "\n",
    r#"{"type":"STATE","value":{"n":1}}"#,
    "\n",
);

#[test]
fn a_store_that_ignores_conditional_writes_is_refused_unless_single_writer() {
    let s3 = common::s3();
    let bucket = s3.bucket("conditional");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    proxy.strip_header("if-none-match");
    let config = |extra: serde_json::Value| {
        let mut c =
            s3.config(&bucket, json!({"endpoint_url": proxy.endpoint, "table_format": "delta", "prefix": "lake"}));
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let refused = common::run(&config(json!({})), INPUT);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let last = refused.stderr.lines().last().unwrap();
    assert!(last.contains("ignores conditional writes") && last.contains("single_writer"), "{last}");
    assert!(refused.stdout.is_empty());
    assert!(s3.list_all(&bucket).is_empty(), "nothing written, the probe removed: {:?}", s3.list_all(&bucket));

    let allowed = common::run(&config(json!({"single_writer": true})), INPUT);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert_eq!(allowed.stdout, [r#"{"n":1}"#]);
    assert!(allowed.stderr.contains("single_writer is true"), "{}", allowed.stderr);
    assert!(s3.list_all(&bucket).iter().any(|(k, _)| k.starts_with("lake/orders/_delta_log/")));

    // The same server without the proxy honours them: no refusal, no warning.
    let bucket = s3.bucket("honoured");
    let direct = common::run(&s3.config(&bucket, json!({"table_format": "delta", "prefix": "lake"})), INPUT);
    assert_eq!(direct.code, 0, "{}", direct.stderr);
    assert!(!direct.stderr.contains("conditional"), "{}", direct.stderr);
    assert!(!s3.list_all(&bucket).iter().any(|(k, _)| k.contains("_target_s3_probe")));
}

/// Switching a prefix from files to `table_format: delta` must not wrap a table around the old
/// files (a VACUUM would then delete them): a folder that is no table but holds objects
/// target-s3 did not write as table data is refused at the stream's SCHEMA line; data files a
/// failed first run left behind (`part-*.parquet`) are not foreign.
#[test]
fn a_folder_with_foreign_files_never_becomes_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    std::fs::create_dir_all(root.join("orders/2024_01_01")).unwrap();
    std::fs::write(root.join("orders/2024_01_01/orders-1.jsonl.gz"), b"old data").unwrap();
    let config = json!({"local_path": root, "table_format": "delta"});
    let refused = common::run(&config, INPUT);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let last = refused.stderr.lines().last().unwrap();
    assert!(last.contains("is not a table yet but holds") && last.contains("orders-1.jsonl.gz"), "{last}");
    assert!(!root.join("orders/_delta_log").exists());
    assert_eq!(std::fs::read(root.join("orders/2024_01_01/orders-1.jsonl.gz")).unwrap(), b"old data");

    // Only an orphaned data file of a failed first run: the table is created.
    std::fs::remove_dir_all(root.join("orders")).unwrap();
    std::fs::create_dir_all(root.join("orders")).unwrap();
    std::fs::write(root.join("orders/part-00000-0193b6f0c9a27b3c8e3a0f6b2d1c4e5f.parquet"), b"orphan").unwrap();
    // and the temporary file of a run killed while writing one
    std::fs::write(root.join("orders/.t3-AbCdEf12.tmp"), b"half").unwrap();
    let created = common::run(&config, INPUT);
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(root.join("orders/_delta_log").exists());
}

fn table_state(config: &serde_json::Value, dir: &std::path::Path) -> common::Run {
    let path = dir.join("table-state.json");
    std::fs::write(&path, config.to_string()).unwrap();
    common::run_args(&["--config", path.to_str().unwrap(), "--table-state"], "")
}

/// Stream `orders`: the record with id `n`, then the STATE `{"n": n}`.
fn input(n: u64) -> String {
    tables_input(&["orders"], &[n], &json!({"n": n}))
}

/// For each stream (integer `id`), its SCHEMA and the records with `ids`, then one STATE.
fn tables_input<S: AsRef<str>>(streams: &[S], ids: &[u64], state: &serde_json::Value) -> String {
    let mut text = String::new();
    for stream in streams {
        let stream = stream.as_ref();
        text += &json!({"type": "SCHEMA", "stream": stream, "key_properties": ["id"],
                        "schema": {"properties": {"id": {"type": "integer"}}}})
        .to_string();
        text.push('\n');
        for id in ids {
            text += &json!({"type": "RECORD", "stream": stream, "record": {"id": id}}).to_string();
            text.push('\n');
        }
    }
    text + &json!({"type": "STATE", "value": state}).to_string() + "\n"
}

/// The keys of a table's log entries on S3, in version order.
fn log_keys(s3: &common::S3Server, bucket: &str, table: &str) -> Vec<String> {
    let mut keys: Vec<String> = s3
        .list_all(bucket)
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(&format!("{table}/_delta_log/")) && k.ends_with(".json"))
        .collect();
    keys.sort();
    keys
}

/// The data files a table on S3 holds, as a reader sees it: each `add` of its log (no commit
/// here removes any, none is in a checkpoint only) with the file's bytes.
fn committed(s3: &common::S3Server, bucket: &str, table: &str) -> Vec<(serde_json::Value, Vec<u8>)> {
    let mut files = Vec::new();
    for key in log_keys(s3, bucket, table) {
        let text = String::from_utf8(s3.get(bucket, &key)).unwrap();
        for line in text.lines().filter(|l| l.starts_with(r#"{"add""#)) {
            let add: serde_json::Value = serde_json::from_str::<serde_json::Value>(line).unwrap()["add"].clone();
            // The protocol's path is a URI reference: percent-decoded once, it is the file's key.
            let path = common::unescape(add["path"].as_str().unwrap());
            files.push((add, s3.get(bucket, &format!("{table}/{path}"))));
        }
    }
    files
}

/// `--table-state` finds the newest round after Delta's log cleanup removed the commit files
/// (their `commitInfo` with them; checkpoints keep the `txn`), and a pipeline's txn versions
/// only grow, whatever the clock says: a run starts above the newest version the table holds.
#[test]
fn table_state_survives_log_cleanup_and_txn_versions_only_grow() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let config =
        json!({"local_path": root, "table_format": "delta", "checkpoint_interval": 1, "pipeline_id": "orders-pipe"});
    for n in 1..=3 {
        let r = common::run(&config, &input(n));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    assert_eq!(table_state(&config, dir.path()).stdout, [r#"{"n":3}"#]);
    // Two round records per table and pipeline, however many commits.
    let records: Vec<_> = std::fs::read_dir(root.join("orders/_target_s3_state"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().to_str().unwrap().to_string())
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    // Log cleanup: every commit file goes, the checkpoints stay.
    let log = root.join("orders/_delta_log");
    for entry in std::fs::read_dir(&log).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") && !path.ends_with("_last_checkpoint") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let found = table_state(&config, dir.path());
    assert_eq!(found.code, 0, "{}", found.stderr);
    assert_eq!(found.stdout, [r#"{"n":3}"#]);

    // Another writer of the same pipeline committed a txn far above this clock (a clock a day
    // ahead, or the old clock-based versions): the next round goes above it.
    let version = std::fs::read_dir(&log)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".checkpoint.parquet")?.parse::<u64>().ok())
        .max()
        .unwrap();
    let ahead = 4_000_000_000_000i64;
    std::fs::write(
        log.join(format!("{:020}.json", version + 1)),
        format!(
            "{}\n{}\n",
            json!({"commitInfo": {"timestamp": 0, "operation": "WRITE"}}),
            json!({"txn": {"appId": "orders-pipe", "version": ahead}})
        ),
    )
    .unwrap();
    let r = common::run(&config, &input(4));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let newest = std::fs::read_to_string(log.join(format!("{:020}.json", version + 2))).unwrap();
    let txn =
        newest.lines().find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["txn"]["version"].as_i64());
    assert!(txn.unwrap() > ahead, "{newest}");
    assert_eq!(table_state(&config, dir.path()).stdout, [r#"{"n":4}"#]);

    // The pipeline's commits are there but no round record or commitInfo can be found: an
    // error, never `{}` (which would start a full sync).
    std::fs::remove_dir_all(root.join("orders/_target_s3_state")).unwrap();
    for entry in std::fs::read_dir(&log).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let kept: Vec<&str> = text.lines().filter(|l| !l.contains("commitInfo")).collect();
            std::fs::write(&path, kept.join("\n") + "\n").unwrap();
        }
    }
    let lost = table_state(&config, dir.path());
    assert_eq!(lost.code, 1, "{:?} {}", lost.stdout, lost.stderr);
    assert!(lost.stdout.is_empty());
    assert!(lost.stderr.contains("no complete commit round with a STATE was found"), "{}", lost.stderr);
}

/// A table another tool gave a CHECK constraint (which target-s3 does not evaluate) is refused
/// while the round is planned: no table of the round commits, and the error says why.
#[test]
fn a_table_we_cannot_write_commits_nothing_of_its_round() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let config = json!({"local_path": root, "table_format": "delta"});
    let input = two_tables;
    assert_eq!(common::run(&config, &input(1)).code, 0);
    // Another tool adds a CHECK constraint to table b (a metaData action in a new commit).
    let log = root.join("b/_delta_log");
    let first = std::fs::read_to_string(log.join(format!("{:020}.json", 0))).unwrap();
    let mut metadata: serde_json::Value = first
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|a| a.get("metaData").is_some())
        .unwrap();
    metadata["metaData"]["configuration"]["delta.constraints.positive"] = json!("id > 0");
    std::fs::write(
        log.join(format!("{:020}.json", 1)),
        format!("{}\n{}\n", json!({"commitInfo": {"timestamp": 0, "operation": "ADD CONSTRAINT"}}), metadata),
    )
    .unwrap();
    let a_before = std::fs::read_dir(root.join("a/_delta_log")).unwrap().count();
    let r = common::run(&config, &input(2));
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(
        last.contains("CHECK constraints (positive)") && last.contains("nothing in this round was committed"),
        "{last}"
    );
    assert!(r.stdout.is_empty());
    assert_eq!(std::fs::read_dir(root.join("a/_delta_log")).unwrap().count(), a_before, "table a unchanged");
}

/// A round cut short after some of its tables committed (here: table b's commit fails on the
/// store) fails the run with no STATE; the rerun of the same input adds the records to table a
/// only once: a already holds that round, and gets only the round's txn.
#[test]
fn a_rerun_never_adds_a_committed_round_again() {
    use common::proxy::Fault;
    let s3 = common::s3();
    let bucket = s3.bucket("rerun");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    let config = s3.config(&bucket, json!({"endpoint_url": proxy.endpoint, "table_format": "delta", "max_retries": 0}));
    let input = two_tables;
    assert_eq!(common::run(&config, &input(1)).code, 0);
    // b's next log entry cannot be written (held, then the connection drops): a commits
    // meanwhile, b does not.
    proxy.inject(&[Fault::Hang(std::time::Duration::from_secs(3)); 4], Some("b/_delta_log/00000000000000000002.json"));
    let failed = common::run(&config, &input(2));
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(failed.stdout.is_empty());
    let log_entries = |table: &str| log_keys(s3, &bucket, table).len();
    // Each table: its creation (0) and round 1; a also round 2.
    assert_eq!((log_entries("a"), log_entries("b")), (3, 2), "the round was cut short");
    let proxy_clean = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    let config = s3.config(&bucket, json!({"endpoint_url": proxy_clean.endpoint, "table_format": "delta"}));
    let rerun = common::run(&config, &input(2));
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    assert_eq!(rerun.stdout, [r#"{"n":2}"#]);
    assert!(rerun.stderr.contains("already holds this round"), "{}", rerun.stderr);
    // a: round 2 and then only the rerun's txn; b: round 2.
    assert_eq!((log_entries("a"), log_entries("b")), (4, 3));
    let adds = |table: &str| committed(s3, &bucket, table).len();
    assert_eq!((adds("a"), adds("b")), (2, 2), "each record once in each table");
    let path = tempfile::tempdir().unwrap();
    assert_eq!(table_state(&config, path.path()).stdout, [r#"{"n":2}"#]);
}

/// Left at its default, `pipeline_id` names the pipeline's destination, prefix and tables: a
/// pipeline that writes elsewhere in the same lake never reads this one's STATE; STATE
/// committed under the fixed default of earlier versions is still found.
#[test]
fn the_default_pipeline_id_is_the_pipelines_own() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let here = json!({"local_path": root, "table_format": "delta", "table_path": "sales/{stream}"});
    let there = json!({"local_path": root, "table_format": "delta", "table_path": "crm/{stream}"});
    assert_eq!(common::run(&here, &input(1)).code, 0);
    assert_eq!(common::run(&there, &input(7)).code, 0);
    let log = std::fs::read_to_string(root.join("sales/orders/_delta_log/00000000000000000001.json")).unwrap();
    let app = log
        .lines()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["txn"]["appId"].as_str().map(str::to_string));
    assert!(app.as_deref().is_some_and(|a| a.starts_with("target-s3-")), "{log}");
    assert_eq!(table_state(&here, dir.path()).stdout, [r#"{"n":1}"#]);
    assert_eq!(table_state(&there, dir.path()).stdout, [r#"{"n":7}"#]);
    // A lake written by an earlier version (appId "target-s3"): still found.
    let old = json!({"local_path": dir.path().join("old"), "table_format": "delta", "pipeline_id": "target-s3-legacy"});
    assert_eq!(common::run(&old, &input(3)).code, 0);
    let old_log = dir.path().join("old/orders/_delta_log/00000000000000000001.json");
    let text = std::fs::read_to_string(&old_log).unwrap().replace("target-s3-legacy", "target-s3");
    std::fs::write(&old_log, text).unwrap();
    std::fs::remove_dir_all(dir.path().join("old/orders/_target_s3_state")).unwrap();
    let default = json!({"local_path": dir.path().join("old"), "table_format": "delta"});
    let found = table_state(&default, dir.path());
    assert_eq!(found.stdout, [r#"{"n":3}"#], "{}", found.stderr);
}

/// One record with id `n` for each of streams a and b, then the STATE `{"n": n}`.
fn two_tables(n: u64) -> String {
    tables_input(&["a", "b"], &[n], &json!({"n": n}))
}

/// How one table of a round fails.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// Another tool added a CHECK constraint: refused while the round is planned.
    Constraint,
    /// The store denies writing its next log entry (403).
    Denied,
    /// The connection drops before its next log entry arrives.
    Dropped,
    /// Its next log entry is written, but the answer is lost: the commit's outcome is unknown.
    AnswerLost,
}

/// Failure injection as a property: rounds of 2-4 tables on moto behind a proxy; in each round
/// one random table fails in a random way (a constraint, a denied write, a dropped connection, a
/// lost answer), once or twice in a row, with or without retries; every failed run exits 1
/// without printing the STATE, and the rerun of the same input (what a tap does after a failed
/// run) completes it. Whatever failed where, every table ends holding every record once, and
/// `--table-state` gives the last STATE.
#[test]
fn failures_in_any_table_of_a_round_never_count_a_round_twice() {
    use common::proxy::Fault;
    let s3 = common::s3();
    let seed: u64 = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
    });
    let mut rng = seed | 1;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for case in 0..6 {
        let streams: Vec<String> = (0..2 + next(3)).map(|t| format!("t{t}")).collect();
        let bucket = s3.bucket(&format!("inject-{case}"));
        let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
        let retries = if next(2) == 0 { 0 } else { 2 };
        let config = s3.config(
            &bucket,
            json!({"endpoint_url": proxy.endpoint, "table_format": "delta", "max_retries": retries, "log_level": "warn"}),
        );
        let input = |n: u64| tables_input(&streams, &[n], &json!({"n": n}));
        let rounds = 2 + next(2);
        for n in 1..=rounds {
            let table = &streams[next(streams.len() as u64) as usize];
            let failure =
                [Failure::Constraint, Failure::Denied, Failure::Dropped, Failure::AnswerLost][next(4) as usize];
            let times = 1 + next(2);
            let what = format!(
                "seed {seed} case {case} round {n}: {failure:?} x{times} in {table} of {streams:?}, max_retries {retries}"
            );
            let mut completed = false;
            if n > 1 {
                for _ in 0..times {
                    let version = log_keys(s3, &bucket, table).len();
                    let entry = format!("{table}/_delta_log/{version:020}.json");
                    match failure {
                        Failure::Constraint => add_constraint(s3, &bucket, table, version, true),
                        Failure::Denied => proxy.inject(&[Fault::AccessDenied; 8], Some(&entry)),
                        Failure::Dropped => proxy.inject(&[Fault::ResetMidBody; 8], Some(&entry)),
                        Failure::AnswerLost => proxy.inject(&[Fault::LoseResponse], Some(&entry)),
                    }
                    let failed = common::run(&config, &input(n));
                    // Only a lost answer may end well: the retry finds the entry written.
                    proxy.clear();
                    if failed.code == 0 {
                        assert!(matches!(failure, Failure::AnswerLost), "{what}: {}", failed.stderr);
                        assert_eq!(failed.stdout, [format!("{{\"n\":{n}}}")], "{what}");
                        completed = true;
                        break;
                    }
                    assert_eq!(failed.code, 1, "{what}: {}", failed.stderr);
                    assert!(failed.stdout.is_empty(), "{what}: no STATE printed: {:?}", failed.stdout);
                    proxy.clear();
                    if matches!(failure, Failure::Constraint) {
                        add_constraint(s3, &bucket, table, version + 1, false);
                    }
                }
            }
            let mut log = String::new();
            if !completed {
                let done = common::run(&config, &input(n));
                log = done.stderr.clone();
                assert_eq!(done.code, 0, "{what}: {}", done.stderr);
                assert_eq!(done.stdout, [format!("{{\"n\":{n}}}")], "{what}");
            }
            for stream in &streams {
                let mut ids: Vec<i64> =
                    committed(s3, &bucket, stream).iter().flat_map(|(_, bytes)| parquet_ids(bytes)).collect();
                ids.sort();
                assert_eq!(
                    ids,
                    (1..=n as i64).collect::<Vec<_>>(),
                    "{what}: table {stream} holds every record once; the rerun's log: {log}"
                );
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let state = table_state(&config, dir.path());
        assert_eq!(state.stdout, [format!("{{\"n\":{rounds}}}")], "seed {seed} case {case}: {}", state.stderr);
    }
}

/// Writes log entry `version` of `table`: its metadata with a CHECK constraint (`on`), or
/// without (another tool dropping it).
fn add_constraint(s3: &common::S3Server, bucket: &str, table: &str, version: usize, on: bool) {
    let first = String::from_utf8(s3.get(bucket, &format!("{table}/_delta_log/{:020}.json", 0))).unwrap();
    let mut metadata: serde_json::Value = first
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|a| a.get("metaData").is_some())
        .unwrap();
    if on {
        metadata["metaData"]["configuration"]["delta.constraints.positive"] = json!("id > 0");
    }
    let body = format!("{}\n{}\n", json!({"commitInfo": {"timestamp": 0, "operation": "ADD CONSTRAINT"}}), metadata);
    s3.put(bucket, &format!("{table}/_delta_log/{version:020}.json"), body.as_bytes());
}

/// The `id` column of a Parquet data file.
fn parquet_ids(bytes: &[u8]) -> Vec<i64> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.to_vec())).unwrap().build().unwrap();
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name("id").unwrap();
        let column = column.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        ids.extend(column.values().iter().copied());
    }
    ids
}

/// `--table-state` after another pipeline committed 1,100 times to the same table (more than
/// the commits whose history it reads): this pipeline's round is still found.
#[test]
fn table_state_is_found_after_a_thousand_foreign_commits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let config =
        json!({"local_path": root, "table_format": "delta", "pipeline_id": "ours", "checkpoint_interval": 100000});
    assert_eq!(common::run(&config, &input(1)).code, 0);
    let log = root.join("orders/_delta_log");
    for version in 2..=1101u64 {
        std::fs::write(
            log.join(format!("{version:020}.json")),
            format!(
                "{}\n{}\n",
                json!({"commitInfo": {"timestamp": version, "operation": "WRITE", "other": {"state": {"n": 99}}}}),
                json!({"txn": {"appId": "theirs", "version": version}})
            ),
        )
        .unwrap();
    }
    let found = table_state(&config, dir.path());
    assert_eq!((found.code, found.stdout.clone()), (0, vec![r#"{"n":1}"#.to_string()]), "{}", found.stderr);
    let theirs = json!({"local_path": root, "table_format": "delta", "pipeline_id": "theirs"});
    let none = table_state(&theirs, dir.path());
    assert_eq!(none.code, 1, "their commits carry no STATE of ours: {:?} {}", none.stdout, none.stderr);
}

/// Writers that race to create the next version of a table, on moto, with shapes that cannot
/// share it, in rounds that also commit a second table and partition by values that need
/// escaping: every writer succeeds, the losers move on, every record is in exactly one table
/// once (the second table too: no round is cut short by the race).
#[test]
fn writers_racing_to_create_a_table_version_all_succeed() {
    use std::io::Write;
    let s3 = common::s3();
    let bucket = s3.bucket("version-race");
    let dir = tempfile::tempdir().unwrap();
    let schema = |stream: &str, id: &str| {
        json!({"type": "SCHEMA", "stream": stream, "key_properties": [],
               "schema": {"properties": {"id": {"type": id}, "country": {"type": "string"}}}})
        .to_string()
    };
    let record = |stream: &str, id: serde_json::Value| {
        json!({"type": "RECORD", "stream": stream, "record": {"id": id, "country": "a/b c"}}).to_string()
    };
    for attempt in 0..4 {
        let config = s3.config(
            &bucket,
            json!({"table_format": "delta", "incompatible_schema": "new_table", "prefix": format!("r{attempt}"),
                   "partition_by": ["country"], "log_level": "warn"}),
        );
        let seed = [schema("t", "integer"), record("t", json!(0)), r#"{"type":"STATE","value":{"w":"seed"}}"#.into()];
        assert_eq!(common::run(&config, &(seed.join("\n") + "\n")).code, 0);
        let shapes = [("boolean", json!(true)), ("string", json!("s")), ("number", json!(1.5))];
        let mut writers: Vec<_> = shapes
            .iter()
            .enumerate()
            .map(|(w, (ty, value))| {
                let mut config = config.clone();
                config["pipeline_id"] = json!(format!("w{w}"));
                let home = dir.path().join(format!("{attempt}-{w}"));
                std::fs::create_dir_all(&home).unwrap();
                let mut child = common::spawn(&config, &home);
                let mut stdin = child.stdin.take().unwrap();
                let lines =
                    [schema("t", ty), record("t", value.clone()), schema("u", "integer"), record("u", json!(w))];
                stdin.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
                (child, stdin, w)
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        for (_, stdin, w) in writers.iter_mut() {
            stdin.write_all(format!("{{\"type\":\"STATE\",\"value\":{{\"w\":{w}}}}}\n").as_bytes()).unwrap();
        }
        let outputs: Vec<_> = writers
            .into_iter()
            .map(|(child, stdin, w)| {
                drop(stdin);
                (w, child.wait_with_output().unwrap())
            })
            .collect();
        for (w, out) in &outputs {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "attempt {attempt} writer {w}: {stderr}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{{\"w\":{w}}}\n"));
            assert!(!stderr.contains("ERROR"), "{stderr}");
        }
        // Each writer's `t` record has an `id` of its own type: every type once across the
        // versions of `t` (the seed's integer too), each version of one type; `u` holds 0, 1, 2.
        let mut tables: Vec<String> = s3
            .list_all(&bucket)
            .into_iter()
            .filter_map(|(k, _)| {
                k.strip_prefix(&format!("r{attempt}/"))?.split_once("/_delta_log/").map(|(t, _)| t.to_string())
            })
            .collect();
        tables.sort();
        tables.dedup();
        let mut types = Vec::new();
        for table in &tables {
            let files = committed(s3, &bucket, &format!("r{attempt}/{table}"));
            assert!(files.iter().all(|(add, _)| add["partitionValues"]["country"] == "a/b c"), "{table}");
            if table == "u" {
                let mut ids: Vec<i64> = files.iter().flat_map(|(_, bytes)| parquet_ids(bytes)).collect();
                ids.sort();
                assert_eq!(ids, [0, 1, 2], "attempt {attempt}: table u holds each writer's record once");
                continue;
            }
            let mut here: Vec<String> = files.iter().flat_map(|(_, bytes)| id_types(bytes)).collect();
            here.dedup();
            assert!(here.len() <= 1, "attempt {attempt}: table {table} holds one shape: {here:?}");
            types.extend(files.iter().flat_map(|(_, bytes)| id_types(bytes)));
        }
        types.sort();
        assert_eq!(
            types,
            ["Boolean", "Float64", "Int64", "Utf8"],
            "attempt {attempt}: each record of t once in {tables:?}"
        );
        assert!(tables.len() >= 4, "attempt {attempt}: {tables:?}");
    }
}

/// The type of the `id` column of a Parquet file, once per row.
fn id_types(bytes: &[u8]) -> Vec<String> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.to_vec())).unwrap().build().unwrap();
    let mut types = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let column = batch.column_by_name("id").unwrap();
        types.extend(std::iter::repeat_n(column.data_type().to_string(), batch.num_rows()));
    }
    types
}

/// A round cut short, then rerun with the same STATE but other records (a tap whose STATE does
/// not move, whose source changed meanwhile: more rows, or as many but other ones): the table
/// that holds the cut round is given the rerun's records too. Some come twice; none is lost.
#[test]
fn a_rerun_with_other_records_loses_none() {
    use common::proxy::Fault;
    let s3 = common::s3();
    // A full-table tap: the same STATE every run.
    let input = |ids: &[u64]| tables_input(&["a", "b"], ids, &json!({"full": true}));
    for (case, rerun_ids) in [("more", vec![1, 2, 3]), ("other", vec![1, 5])] {
        let bucket = s3.bucket(&format!("rerun-{case}"));
        let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
        let config =
            s3.config(&bucket, json!({"endpoint_url": proxy.endpoint, "table_format": "delta", "max_retries": 0}));
        assert_eq!(common::run(&config, &input(&[1])).code, 0);
        proxy.inject(&[Fault::AccessDenied; 4], Some("b/_delta_log/00000000000000000002.json"));
        let failed = common::run(&config, &input(&[1, 2]));
        assert_eq!(failed.code, 1, "{}", failed.stderr);
        proxy.clear();
        let rerun = common::run(&config, &input(&rerun_ids));
        assert_eq!((rerun.code, rerun.stdout.clone()), (0, vec![r#"{"full":true}"#.to_string()]), "{}", rerun.stderr);
        let ids = |table: &str| -> Vec<i64> {
            let mut ids: Vec<i64> =
                committed(s3, &bucket, table).iter().flat_map(|(_, bytes)| parquet_ids(bytes)).collect();
            ids.sort();
            ids
        };
        // b holds round 1 and the rerun (a full-table tap sends every row each time); a also
        // holds the cut round: some records come twice, none is lost.
        let mut b: Vec<i64> = [1].into_iter().chain(rerun_ids.iter().map(|&i| i as i64)).collect();
        b.sort();
        assert_eq!(ids("b"), b, "{case}");
        let mut a = ids("a");
        a.dedup();
        let mut want: Vec<i64> = [1, 2].into_iter().chain(rerun_ids.iter().map(|&i| i as i64)).collect();
        want.sort();
        want.dedup();
        assert_eq!(a, want, "{case}: table a: no record lost");
    }
}
