//! `table_format: delta` end to end, on the local folder: what the Delta log says after a run
//! (read here as the protocol defines it: JSON commit files, then the Parquet files they add),
//! which STATE is printed and when, and what a failed run leaves. Readers that did not write
//! the tables (the Python `deltalake` package, polars, DuckDB) and the kill loop are in
//! scripts/delta_readers.py.
#![cfg(feature = "delta")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{run, run_args};
use serde_json::{Value, json};

fn schema(stream: &str, extra: Option<(&str, Value)>) -> String {
    let mut properties = json!({
        "id": {"type": "integer"},
        "name": {"type": ["null", "string"]},
        "at": {"type": ["null", "string"], "format": "date-time"},
    });
    if let Some((name, ty)) = extra {
        properties[name] = ty;
    }
    json!({"type": "SCHEMA", "stream": stream, "schema": {"type": "object", "properties": properties}, "key_properties": ["id"]})
        .to_string()
}

fn record(stream: &str, record: Value) -> String {
    json!({"type": "RECORD", "stream": stream, "record": record}).to_string()
}

fn state(value: Value) -> String {
    json!({"type": "STATE", "value": value}).to_string()
}

fn lines(lines: &[String]) -> String {
    lines.join("\n") + "\n"
}

fn config(root: &Path, extra: Value) -> Value {
    let mut c = json!({"local_path": root, "table_format": "delta", "log_level": "warn"});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

/// `--table-state` with `config` (written into `dir`).
fn table_state(config: &Value, dir: &Path) -> common::Run {
    let path = dir.join("table-state.json");
    std::fs::write(&path, config.to_string()).unwrap();
    run_args(&["--config", path.to_str().unwrap(), "--table-state"], "")
}

/// A SCHEMA line of [`schema`] with `id` as text instead of an integer.
fn text_ids(schema: String) -> String {
    schema.replace(r#""id":{"type":"integer"}"#, r#""id":{"type":"string"}"#)
}

/// One table's log, version by version: each commit's actions.
fn log(table: &Path) -> BTreeMap<u64, Vec<Value>> {
    let mut versions = BTreeMap::new();
    for entry in std::fs::read_dir(table.join("_delta_log")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(version) = name.strip_suffix(".json").and_then(|v| v.parse::<u64>().ok()) {
            let text = std::fs::read_to_string(&path).unwrap();
            versions.insert(version, text.lines().map(|l| serde_json::from_str(l).unwrap()).collect());
        }
    }
    versions
}

/// The table as a reader sees it: the files every commit added (no commit here removes any).
fn added_files(table: &Path) -> Vec<(PathBuf, u64)> {
    log(table)
        .values()
        .flatten()
        .filter_map(|a| a.get("add"))
        .map(|add| {
            let stats: Value = serde_json::from_str(add["stats"].as_str().unwrap()).unwrap();
            // The protocol's path is a URI reference: percent-decoded once, it is the file's path.
            (table.join(common::unescape(add["path"].as_str().unwrap())), stats["numRecords"].as_u64().unwrap())
        })
        .collect()
}

/// Every row of the table's files, as JSON objects (via arrow-rs's Parquet reader).
fn rows(table: &Path) -> Vec<Value> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut out = Vec::new();
    for (file, records) in added_files(table) {
        let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap()).unwrap();
        let mut n = 0;
        for batch in reader.build().unwrap() {
            let batch = batch.unwrap();
            n += batch.num_rows() as u64;
            for row in 0..batch.num_rows() {
                let mut object = serde_json::Map::new();
                for (i, field) in batch.schema().fields().iter().enumerate() {
                    let column = batch.column(i);
                    let value = if column.is_null(row) {
                        Value::Null
                    } else if let Some(a) = column.as_any().downcast_ref::<arrow_array::Int64Array>() {
                        json!(a.value(row))
                    } else if let Some(a) = column.as_any().downcast_ref::<arrow_array::StringArray>() {
                        json!(a.value(row))
                    } else if let Some(a) = column.as_any().downcast_ref::<arrow_array::BooleanArray>() {
                        json!(a.value(row))
                    } else {
                        json!("other")
                    };
                    object.insert(field.name().clone(), value);
                }
                out.push(Value::Object(object));
            }
        }
        assert_eq!(n, records, "numRecords of {} matches its rows", file.display());
    }
    out
}

fn commit_info(actions: &[Value]) -> &Value {
    &actions.iter().find_map(|a| a.get("commitInfo")).expect("every commit has commitInfo")["targetS3"]
}

#[test]
fn tables_hold_every_record_once_and_carry_the_state_they_cover() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"pipeline_id": "pipe-1"}));
    let first = lines(&[
        schema("users", None),
        record("users", json!({"id": 1, "name": "a"})),
        record("users", json!({"id": 2, "name": "b"})),
        state(json!({"bookmarks": {"users": 2}})),
        schema("orders", None),
        record("orders", json!({"id": 10})),
        state(json!({"bookmarks": {"users": 2, "orders": 10}})),
    ]);
    let r = run(&cfg, &first);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, [json!({"bookmarks": {"users": 2, "orders": 10}}).to_string()]);
    for (table, ids) in [("users", vec![1, 2]), ("orders", vec![10])] {
        let path = dir.path().join(table);
        let versions = log(&path);
        // Created (empty) before any table of the round commits data, then one data commit.
        assert_eq!(versions.keys().copied().collect::<Vec<_>>(), [0, 1], "{table}: created, then one commit");
        assert!(versions[&0].iter().all(|a| a.get("add").is_none()), "{table}: created empty");
        let ours = commit_info(&versions[&1]);
        assert_eq!(ours["state"], json!({"bookmarks": {"users": 2, "orders": 10}}), "{table}: the STATE printed");
        assert_eq!(ours["pipelineId"], "pipe-1");
        let txn = versions[&1].iter().find_map(|a| a.get("txn")).expect("a txn action");
        assert_eq!(txn["appId"], "pipe-1");
        assert_eq!(txn["version"], ours["txnVersion"]);
        let got: Vec<i64> = rows(&path).iter().map(|r| r["id"].as_i64().unwrap()).collect();
        assert_eq!(got, ids, "{table}: every record once");
    }

    // A second run: the stream gains a nullable column, the table's schema follows.
    let second = lines(&[
        schema("users", Some(("email", json!({"type": ["null", "string"]})))),
        record("users", json!({"id": 3, "name": "c", "email": "c@x"})),
        state(json!({"bookmarks": {"users": 3, "orders": 10}})),
    ]);
    let r = run(&cfg, &second);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let users = dir.path().join("users");
    let versions = log(&users);
    assert_eq!(versions.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    let metadata = versions[&2].iter().find_map(|a| a.get("metaData")).expect("the schema evolved in commit 2");
    let schema: Value = serde_json::from_str(metadata["schemaString"].as_str().unwrap()).unwrap();
    let names: Vec<&str> = schema["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    // Schema order (json! sorts the properties), new columns last.
    assert_eq!(names, ["at", "id", "name", "email"]);
    let rows = rows(&users);
    assert_eq!(rows.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(rows[2]["email"], "c@x");

    // The lake knows where to resume: the newest STATE committed by this pipeline.
    let r = table_state(&cfg, dir.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, [json!({"bookmarks": {"users": 3, "orders": 10}}).to_string()]);
    // Another pipeline id committed nothing here.
    let other = config(dir.path(), json!({"pipeline_id": "someone-else"}));
    let r = table_state(&other, dir.path());
    assert_eq!(r.stdout, ["{}"]);
}

#[test]
fn a_failed_run_leaves_the_tables_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({}));
    let ok = lines(&[schema("users", None), record("users", json!({"id": 1})), state(json!({"s": 1}))]);
    assert_eq!(run(&cfg, &ok).code, 0);
    let users = dir.path().join("users");
    let first = log(&users);

    // Bad input after records and a STATE: what that STATE covers is committed with it and the
    // STATE printed; nothing after it.
    let bad = lines(&[
        schema("users", None),
        record("users", json!({"id": 2})),
        state(json!({"s": 2})),
        r#"{"type":"RECORD","stream":"users","record":{"id":3}"#.to_string(),
    ]);
    let r = run(&cfg, &bad);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 4"), "{}", r.stderr);
    assert_eq!(r.stdout, [r#"{"s":2}"#], "{}", r.stderr);
    let mut ids: Vec<i64> = rows(&users).iter().map(|r| r["id"].as_i64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [1, 2]);
    assert_eq!(log(&users).len(), first.len() + 1, "one commit, with the STATE");
    // Records after the last STATE: not committed (a rerun from it sends them again), no
    // newer STATE.
    let before = log(&users);
    let after_state = lines(&[
        schema("users", None),
        record("users", json!({"id": 4})),
        r#"{"type":"RECORD","stream":"users","record":{"id":5}"#.to_string(),
    ]);
    let r = run(&cfg, &after_state);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty(), "no STATE for records the table does not hold: {:?}", r.stdout);
    assert_eq!(log(&users), before, "the table is unchanged");

    // A type change is refused before it reaches the table.
    let retyped = lines(&[
        schema("users", None).replace(r#""id":{"type":"integer"}"#, r#""id":{"type":"string"}"#),
        record("users", json!({"id": "x"})),
        state(json!({"s": 3})),
    ]);
    let r = run(&cfg, &retyped);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(r#"column "id" changed type"#), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().filter(|l| l.contains("error")).count(), 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(log(&users), before, "the table is unchanged");
    assert_eq!(rows(&users).len(), 2);
}

#[test]
fn states_are_committed_every_interval_while_input_flows() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"commit_interval_seconds": 1}));
    let mut child = common::spawn(&cfg, dir.path());
    let stdout = common::watch_stdout(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let first = lines(&[schema("users", None), record("users", json!({"id": 1})), state(json!({"s": 1}))]);
    stdin.write_all(first.as_bytes()).unwrap();
    stdin.flush().unwrap();
    // The file is far from any size or age limit: only the commit interval closes it.
    let line = stdout.recv_timeout(Duration::from_secs(20)).expect("the STATE comes within the interval");
    assert_eq!(line, r#"{"s":1}"#);
    let users = dir.path().join("users");
    assert_eq!(log(&users).len(), 2, "created and committed before the STATE was printed");
    assert_eq!(rows(&users).len(), 1);
    stdin.write_all(lines(&[record("users", json!({"id": 2})), state(json!({"s": 2}))]).as_bytes()).unwrap();
    drop(stdin);
    assert_eq!(stdout.recv_timeout(Duration::from_secs(20)).unwrap(), r#"{"s":2}"#);
    assert!(child.wait().unwrap().success());
    assert_eq!(log(&users).len(), 3);
    assert_eq!(rows(&users).len(), 2);
}

#[test]
fn checkpoints_are_written_every_interval_of_commits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"checkpoint_interval": 2}));
    for i in 0..3 {
        let input = lines(&[schema("s", None), record("s", json!({"id": i})), state(json!({"s": i}))]);
        assert_eq!(run(&cfg, &input).code, 0);
    }
    let log_dir = dir.path().join("s/_delta_log");
    assert!(log_dir.join("00000000000000000001.checkpoint.parquet").exists(), "{:?}", std::fs::read_dir(&log_dir));
    assert_eq!(rows(&dir.path().join("s")).len(), 3);
}

#[test]
fn streams_that_name_one_table_and_settings_a_table_cannot_honour_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A table_path that drops the stream, or names files, is refused up front.
    for (extra, setting) in [
        (json!({"format": "csv"}), "`format`"),
        (json!({"table_path": "{stream}/{part}"}), "`table_path`"),
        (json!({"table_path": "all"}), "`table_path`"),
        (json!({"key_template": "{stream}/{uuid}.parquet"}), "`key_template`"),
        (json!({"activate_version_mode": "folder"}), "`activate_version_mode`"),
        (json!({"pipeline_id": " "}), "`pipeline_id`"),
    ] {
        let r = run(&config(dir.path(), extra.clone()), "");
        assert_eq!(r.code, 2, "{extra}: {}", r.stderr);
        assert!(r.stderr.contains(setting), "{extra}: {}", r.stderr);
    }
    // A name that needs escaping cannot be a Delta location (readers decode `%`): refused at
    // its SCHEMA line, with the way out; `{stream_id}` gives such streams plain folders.
    let odd = lines(&[schema("a b", None), record("a b", json!({"id": 1})), state(json!({"s": 1}))]);
    let r = run(&config(dir.path(), json!({})), &odd);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("line 1") && r.stderr.contains("{stream_id}") && r.stderr.contains(r#""a b""#),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    let by_id = config(dir.path(), json!({"table_path": "t/{stream_id}"}));
    let unicode = run(&config(dir.path(), json!({})), &odd.replace("a b", "用户"));
    assert_eq!(unicode.code, 1, "{}", unicode.stderr);
    assert!(unicode.stderr.contains("not ASCII"), "{}", unicode.stderr);
    let r = run(&by_id, &(odd.clone() + &odd.replace("a b", "a/b")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tables = std::fs::read_dir(dir.path().join("t")).unwrap().count();
    assert_eq!(tables, 2, "two streams, two tables");
    let plain = json!({"local_path": dir.path()});
    let r = table_state(&plain, dir.path());
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("table_format"), "{}", r.stderr);
}

#[test]
fn a_signal_commits_only_what_a_state_covers() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"log_level": "info"}));
    let mut child = common::spawn(&cfg, dir.path());
    let (read, log) = common::watch_stderr(&mut child, "starting");
    let stdout = common::watch_stdout(&mut child);
    let mut stdin = child.stdin.take().unwrap();
    let input = lines(&[
        schema("users", None),
        record("users", json!({"id": 1})),
        state(json!({"s": 1})),
        record("users", json!({"id": 2})),
    ]);
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.flush().unwrap();
    read.recv_timeout(Duration::from_secs(20)).unwrap();
    // Give the decode thread the lines (nothing is printed for them), then stop it.
    std::thread::sleep(Duration::from_millis(500));
    send_signal(child.id(), "TERM");
    let status = child.wait().unwrap();
    drop(stdin);
    let log = log.join().unwrap();
    assert!(status.success(), "{log}");
    // Records 1 and 2 share a file that crosses the STATE: committing it would put record 2,
    // which a rerun from {"s":1} sends again, into the table twice. So nothing is committed and
    // no STATE printed: the rerun starts from the previous STATE and adds each record once.
    let printed: Vec<String> = stdout.try_iter().collect();
    assert!(printed.is_empty(), "{printed:?}\n{log}");
    assert!(!dir.path().join("users/_delta_log").exists(), "{log}");
}

fn send_signal(pid: u32, name: &str) {
    assert!(
        std::process::Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().unwrap().success()
    );
}

/// Schema changes inside one run: each file joins its table with the columns it was written
/// with, and a round that cannot take them all writes nothing to any table.
#[test]
fn schema_changes_within_a_run_never_make_an_unreadable_table() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({}));
    let x = |ty: &str| schema("t", Some(("x", json!({"type": [ty, "null"]}))));
    // A column that changes type mid-run: refused, nothing committed, no STATE.
    let r = run(
        &cfg,
        &lines(&[
            x("string"),
            record("t", json!({"id": 1, "x": "hello"})),
            x("integer"),
            record("t", json!({"id": 2, "x": 5})),
            state(json!({"s": 1})),
        ]),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(r#"column "x" changed type"#), "{}", r.stderr);
    assert!(r.stdout.is_empty() && !dir.path().join("t/_delta_log").exists());

    // A nullable column dropped mid-run stays in the table with its values.
    let r = run(
        &cfg,
        &lines(&[
            x("string"),
            record("t", json!({"id": 1, "x": "kept"})),
            schema("t", None),
            record("t", json!({"id": 2})),
            state(json!({"s": 2})),
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = rows(&dir.path().join("t"));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["x"], "kept");

    // A required column added mid-run: older rows have no value for it.
    let dir = tempfile::tempdir().unwrap();
    let required = json!({"type": "SCHEMA", "stream": "t", "key_properties": ["id"], "schema": {
        "type": "object", "required": ["id", "r"],
        "properties": {"id": {"type": "integer"}, "r": {"type": "integer"}}}});
    let r = run(
        &config(dir.path(), json!({})),
        &lines(&[
            schema("t", None),
            record("t", json!({"id": 1})),
            required.to_string(),
            record("t", json!({"id": 2, "r": 1})),
        ]),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(r#"required column "r""#), "{}", r.stderr);
    assert!(!dir.path().join("t/_delta_log").exists());
}

#[test]
fn a_round_commits_every_table_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({}));
    let b = |ty: &str| schema("b", Some(("x", json!({"type": [ty, "null"]}))));
    let first = lines(&[
        schema("a", None),
        record("a", json!({"id": 1})),
        b("string"),
        record("b", json!({"id": 1, "x": "s"})),
        state(json!({"s": 1})),
    ]);
    assert_eq!(run(&cfg, &first).code, 0);
    // Table b cannot take the second run's files: table a (sorted first) is not committed either.
    let second = lines(&[
        schema("a", None),
        record("a", json!({"id": 2})),
        b("integer"),
        record("b", json!({"id": 2, "x": 2})),
        state(json!({"s": 2})),
    ]);
    let a_before = log(&dir.path().join("a"));
    let r = run(&cfg, &second);
    assert_eq!(r.code, 1);
    assert_eq!(log(&dir.path().join("a")), a_before, "table a unchanged");
    let state_now = || table_state(&cfg, dir.path()).stdout;
    assert_eq!(state_now(), [r#"{"s":1}"#]);

    // A round cut short (here: b's commit of a third run removed, as a kill between the two
    // commits would leave it): --table-state passes over it.
    let third = lines(&[
        schema("a", None),
        record("a", json!({"id": 3})),
        b("string"),
        record("b", json!({"id": 3})),
        state(json!({"s": 3})),
    ]);
    assert_eq!(run(&cfg, &third).code, 0);
    assert_eq!(state_now(), [r#"{"s":3}"#]);
    std::fs::remove_file(dir.path().join("b/_delta_log/00000000000000000002.json")).unwrap();
    assert_eq!(state_now(), [r#"{"s":1}"#], "the newest complete round");
}

#[test]
fn table_state_finds_tables_under_date_folders_and_odd_schemas_fail_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"table_path": "lake/{stream}/{now:%Y/%m}"}));
    let input = lines(&[schema("users", None), record("users", json!({"id": 1})), state(json!({"s": 1}))]);
    assert_eq!(run(&cfg, &input).code, 0);
    assert_eq!(table_state(&cfg, dir.path()).stdout, [r#"{"s":1}"#]);

    // Column names alike but for case cannot be a Delta schema: refused at the SCHEMA line.
    let twins = json!({"type": "SCHEMA", "stream": "t", "key_properties": [], "schema": {
        "type": "object", "properties": {"id": {"type": "integer"}, "ID": {"type": "integer"}}}});
    let r = run(&config(dir.path(), json!({})), &lines(&[twins.to_string()]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("line 1") && r.stderr.contains(r#""t""#), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
}

/// `partition_by`: each file in one `column=value` folder per partition column (values escaped
/// in ASCII, as delta-rs writes them), its `add` carrying the values the readers use, typed as
/// the protocol serializes them; the table's partitioning cannot change afterwards.
#[test]
fn partitioned_tables_name_each_file_by_its_partition_values() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"partition_by": ["name", "at:day"]}));
    let names =
        [json!("a/b"), json!("東京"), json!(""), Value::Null, json!("x%y"), json!("__HIVE_DEFAULT_PARTITION__")];
    let ats = [json!("2024-01-05T23:30:00-02:00"), json!("2024-01-05T01:00:00Z"), Value::Null];
    let mut input = vec![schema("users", None)];
    let mut id = 0;
    for name in &names {
        for at in &ats {
            id += 1;
            input.push(record("users", json!({"id": id, "name": name, "at": at})));
        }
    }
    input.push(state(json!({"done": true})));
    let r = run(&cfg, &lines(&input));
    assert_eq!((r.code, r.stdout.clone()), (0, vec![r#"{"done":true}"#.to_string()]), "{}", r.stderr);

    let users = dir.path().join("users");
    let log = log(&users);
    let metadata = log[&0].iter().find_map(|a| a.get("metaData")).unwrap();
    assert_eq!(metadata["partitionColumns"], json!(["name", "at_day"]));
    let table_schema: Value = serde_json::from_str(metadata["schemaString"].as_str().unwrap()).unwrap();
    let at_day = table_schema["fields"].as_array().unwrap().iter().find(|f| f["name"] == "at_day").unwrap();
    assert_eq!((&at_day["type"], &at_day["nullable"]), (&json!("date"), &json!(true)));

    let mut seen = Vec::new();
    for add in log.values().flatten().filter_map(|a| a.get("add")) {
        let path = common::unescape(add["path"].as_str().unwrap());
        assert!(path.is_ascii() && !path.contains('~'), "{path}");
        let values = &add["partitionValues"];
        let folder = |v: &Value| match v.as_str() {
            None => "__HIVE_DEFAULT_PARTITION__".to_string(),
            // The marker's own text has its two leading `_` escaped, so it is not null.
            Some(text) => text
                .bytes()
                .enumerate()
                .map(|(i, b)| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' => char::from(b).to_string(),
                    b'_' if text != "__HIVE_DEFAULT_PARTITION__" || i > 1 => "_".into(),
                    _ => format!("%{b:02X}"),
                })
                .collect(),
        };
        let want = format!("name={}/at_day={}/", folder(&values["name"]), folder(&values["at_day"]));
        assert!(path.starts_with(&want), "{path} is in the folders of its values {values}");
        let file = users.join(&path);
        for row in rows_of(&file) {
            let name = row["name"].as_str().filter(|n| !n.is_empty());
            assert_eq!(values["name"].as_str(), name, "row {row} is in the partition of its name");
            let day = row["at"].as_str().map(|at| at[..10].to_string());
            assert_eq!(values["at_day"].as_str().map(str::to_string), day, "row {row}: at_day is at's UTC date");
            seen.push(row["id"].as_i64().unwrap());
        }
    }
    seen.sort();
    assert_eq!(seen, (1..=id).collect::<Vec<_>>(), "every record once");

    // The table's partitioning cannot change: refused before anything is written.
    let before = log.clone();
    let other = config(dir.path(), json!({"partition_by": ["name"]}));
    let r = run(&other, &lines(&[schema("users", None), record("users", json!({"id": 99})), state(json!({"s": 2}))]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(r#"partitioned by ["name", "at_day"]"#), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(self::log(&users), before, "the table is unchanged");

    // A value too long for a folder: refused, nothing committed, no STATE.
    let long = "ü".repeat(50);
    let r = run(
        &cfg,
        &lines(&[schema("users", None), record("users", json!({"id": 98, "name": long})), state(json!({"s": 3}))]),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains(r#"line 2 (stream "users")"#) && last.contains("too long for a folder name"), "{last}");
    assert!(last.contains("invalid_records: dead_letter"), "{last}");
    assert!(r.stdout.is_empty());
    assert_eq!(self::log(&users), before, "the table is unchanged");
    // It is a record the run can set aside: with dead-letter files, the rest loads.
    let dead_letter = {
        let mut c = cfg.clone();
        c["invalid_records"] = json!("dead_letter");
        c
    };
    let r = run(
        &dead_letter,
        &lines(&[
            schema("users", None),
            record("users", json!({"id": 98, "name": "ü".repeat(50)})),
            record("users", json!({"id": 97, "name": "short"})),
            state(json!({"s": 3})),
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, [r#"{"s":3}"#]);
    let before = self::log(&users);

    // A stream without the field, or with a field that cannot partition, fails at its SCHEMA line.
    for (schema_line, says) in [
        (schema("users", None).replace(r#""name""#, r#""label""#), r#"no top-level field "name""#),
        (
            schema("users", None)
                .replace(r#""name":{"type":["null","string"]}"#, r#""name":{"type":["null","number"]}"#),
            "cannot partition",
        ),
    ] {
        let r = run(&cfg, &lines(&[state(json!({"s": 0})), schema_line, record("users", json!({"id": 100}))]));
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("line 2") && r.stderr.contains(says), "{}", r.stderr);
        assert_eq!(self::log(&users), before);
    }
    // Partitions are a table's: with plain files, key_template says where files go.
    let files = json!({"local_path": dir.path(), "partition_by": ["name"]});
    let r = run(&files, "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("setting `partition_by`") && r.stderr.contains("key_template"), "{}", r.stderr);
}

/// The rows of one data file as JSON (`at` as its UTC text).
fn rows_of(file: &Path) -> Vec<Value> {
    use arrow_array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap();
    let mut out = Vec::new();
    for batch in reader.build().unwrap() {
        let batch = batch.unwrap();
        let id = batch.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
        let name = batch.column_by_name("name").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let n = batch.column_by_name("n").map(|n| n.as_any().downcast_ref::<Int64Array>().unwrap().clone());
        let at = batch.column_by_name("at").unwrap();
        let at = at.as_any().downcast_ref::<TimestampMicrosecondArray>().unwrap();
        for row in 0..batch.num_rows() {
            let time = (!at.is_null(row)).then(|| {
                chrono::DateTime::from_timestamp_micros(at.value(row)).unwrap().format("%Y-%m-%dT%H:%M:%S").to_string()
            });
            let n = n.as_ref().and_then(|n| (!n.is_null(row)).then(|| n.value(row)));
            out.push(
                json!({"id": id.value(row), "name": (!name.is_null(row)).then(|| name.value(row)), "n": n, "at": time}),
            );
        }
    }
    out
}

mod partition_properties {
    //! `partition_by` as a property over generated inputs: partition values from the characters
    //! that broke keys before (separators, escapes, `~`, unicode, Hive's `=` and null marker),
    //! nulls, missing values, date-times in and out of UTC, STATEs anywhere, small files. For
    //! every input the table holds every record once, each in the file whose `add` carries its
    //! values, every path needs no encoding, and the last STATE printed is the last committed.
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    const ALPHABET: &[&str] =
        &["a", "B", "0", "_", ".", "/", " ", "%", "=", "~", "用", "😀", ":", "__HIVE_DEFAULT_PARTITION__"];
    const ATS: &[&str] = &["2024-01-05T23:30:00-02:00", "2024-01-05T01:00:00Z", "2024-02-29T12:00:00", "soon"];

    fn name() -> impl Strategy<Value = Value> {
        prop_oneof![
            5 => prop::collection::vec(prop::sample::select(ALPHABET), 0..4).prop_map(|p| json!(p.concat())),
            1 => Just(Value::Null),
        ]
    }

    /// An integer as JSON Schema counts them: `1.0`, `1e1` and `-0.0` are integers too.
    fn n() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => (-3i64..3).prop_map(|n| json!(n)),
            1 => prop::sample::select(&["1.0", "1e1", "-0.0", "20.0", "-1E0"][..]).prop_map(|t| serde_json::from_str(t).unwrap()),
            1 => Just(Value::Null),
        ]
    }

    fn at() -> impl Strategy<Value = Value> {
        prop_oneof![3 => prop::sample::select(ATS).prop_map(|a| json!(a)), 1 => Just(Value::Null)]
    }

    fn input(records: &[(Value, Value, Value, bool)]) -> String {
        let schema = json!({"type": "SCHEMA", "stream": "t", "key_properties": ["id"], "schema": {"type": "object", "required": ["id", "name"],
            "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "n": {"type": ["null", "integer"]},
                "at": {"type": ["null", "string"], "format": "date-time"}}}});
        let mut out = vec![schema.to_string()];
        for (id, (name, n, at, state_after)) in records.iter().enumerate() {
            out.push(record("t", json!({"id": id, "name": name, "n": n, "at": at})));
            if *state_after {
                out.push(state(json!({"at": id})));
            }
        }
        lines(&out)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn every_record_is_in_the_partition_of_its_values(
            records in prop::collection::vec((name().prop_map(|n| if n.is_null() { json!("") } else { n }), n(), at(), prop::bool::weighted(0.2)), 1..30),
            max_records in 1u64..5,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(dir.path(), json!({"partition_by": ["name", "n", "at:hour"], "max_records_per_file": max_records,
                "unparseable_values": "null", "run_id": "run"}));
            let config = target_s3::config::RawConfig::from_map(cfg.as_object().unwrap().clone()).unwrap().validate().unwrap();
            let (signals_tx, signals) = crossbeam_channel::unbounded::<i32>();
            let storage = Arc::new(target_s3::destination::LocalFolder::new(dir.path().to_path_buf(), false));
            let mut printed = Vec::new();
            let text = input(&records);
            let result = target_s3::pipeline::run(&config, storage, None, Box::new(std::io::Cursor::new(text)), &mut printed, &signals);
            drop(signals_tx);
            prop_assert!(result.is_ok(), "{:?}", result.err().map(|e| e.to_string()));

            let table = dir.path().join("t");
            let log = log(&table);
            let mut seen = Vec::new();
            for add in log.values().flatten().filter_map(|a| a.get("add")) {
                let raw = add["path"].as_str().unwrap();
                let path = common::unescape(raw);
                prop_assert!(path.is_ascii() && !path.contains('~'), "{path}");
                let values = &add["partitionValues"];
                // Each folder reads back as the log's value (polars takes values from folders).
                for segment in path.split('/').take(3) {
                    let (column, text) = segment.split_once('=').unwrap();
                    let want = values[column].as_str().unwrap_or("__HIVE_DEFAULT_PARTITION__");
                    let read = if text == "__HIVE_DEFAULT_PARTITION__" { text.to_string() } else { common::unescape(text) };
                    prop_assert_eq!(read, want, "folder {} of {}", segment, raw);
                }
                for row in rows_of(&table.join(&path)) {
                    let name = row["name"].as_str().filter(|n| !n.is_empty());
                    prop_assert_eq!(values["name"].as_str(), name, "row {} in {}", row, raw);
                    let n = row["n"].as_i64().map(|n| n.to_string());
                    prop_assert_eq!(values["n"].as_str().map(str::to_string), n, "row {} in {}", row, raw);
                    let hour = row["at"].as_str().map(|at| at[..13].to_string());
                    prop_assert_eq!(values["at_hour"].as_str().map(str::to_string), hour, "row {} in {}", row, raw);
                    seen.push(row["id"].as_i64().unwrap());
                }
            }
            seen.sort();
            prop_assert_eq!(seen, (0..records.len() as i64).collect::<Vec<_>>(), "every record once");
            // The last STATE printed is the one the last commit carries.
            let printed = String::from_utf8(printed).unwrap();
            if let Some(last) = printed.lines().last() {
                let committed = log.values().last().map(|actions| commit_info(actions)["state"].clone());
                prop_assert_eq!(Some(serde_json::from_str::<Value>(last).unwrap()), committed);
            }
        }
    }
}

/// What an attack on `partition_by` found, each now refused before the table changes or
/// written so every reader reads it.
#[test]
fn partition_columns_hold_what_every_reader_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let sch = |props: Value, required: Value| {
        json!({"type": "SCHEMA", "stream": "s", "key_properties": ["id"],
            "schema": {"type": "object", "properties": props, "required": required}})
        .to_string()
    };
    // A required text column may be empty: an empty value is null in a partition, so the
    // table's partition column is nullable (was: a null in a non-nullable column, unreadable).
    let cfg = config(&dir.path().join("a"), json!({"partition_by": ["c"]}));
    let input = lines(&[
        sch(json!({"id": {"type": "integer"}, "c": {"type": "string"}}), json!(["id", "c"])),
        record("s", json!({"id": 1, "c": "a"})),
        record("s", json!({"id": 2, "c": ""})),
        state(json!({"s": 1})),
    ]);
    for _ in 0..2 {
        let r = run(&cfg, &input);
        assert_eq!((r.code, r.stdout.len()), (0, 1), "{}", r.stderr);
    }
    let log_a = log(&dir.path().join("a/s"));
    let metadata = log_a[&0].iter().find_map(|a| a.get("metaData")).unwrap();
    let fields: Value = serde_json::from_str(metadata["schemaString"].as_str().unwrap()).unwrap();
    let c = fields["fields"].as_array().unwrap().iter().find(|f| f["name"] == "c").unwrap();
    assert_eq!(c["nullable"], json!(true));
    let nulls = log_a.values().flatten().filter_map(|a| a.get("add")).filter(|a| a["partitionValues"]["c"].is_null());
    assert_eq!(nulls.count(), 2);

    // A derived column whose name a table already has with another type: refused, unchanged.
    let b = dir.path().join("b");
    let first = lines(&[
        sch(json!({"id": {"type": "integer"}, "t_year": {"type": "boolean"}}), json!(["id"])),
        record("s", json!({"id": 1, "t_year": true})),
        state(json!({"s": 1})),
    ]);
    assert_eq!(run(&config(&b, json!({"partition_by": ["t_year"]})), &first).code, 0);
    let before = log(&b.join("s"));
    let second = lines(&[
        sch(json!({"id": {"type": "integer"}, "t": {"type": "string", "format": "date-time"}}), json!(["id"])),
        record("s", json!({"id": 2, "t": "2024-01-05T00:00:00Z"})),
        state(json!({"s": 2})),
    ]);
    let r = run(&config(&b, json!({"partition_by": ["t:year"]})), &second);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(r#"the table's column "t_year" is boolean"#), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert_eq!(log(&b.join("s")), before);

    // Fields whose folders would not read back as their values are refused at the SCHEMA line.
    for (props, partition, says) in [
        (json!({"d": {"type": "string", "format": "date"}}), "d", r#""d:day""#),
        (json!({"m": {"type": ["string", "integer"]}}), "m", "no single type"),
        (json!({"u": {}}), "u", "no single type"),
        (json!({"c": {"type": "string"}}), "c:day", "needs a date-time or date"),
    ] {
        let mut props = props;
        props["id"] = json!({"type": "integer"});
        let r = run(
            &config(&dir.path().join("c"), json!({"partition_by": [partition]})),
            &lines(&[sch(props, json!(["id"]))]),
        );
        assert_eq!(r.code, 1, "{partition}: {}", r.stderr);
        assert!(r.stderr.contains("line 1") && r.stderr.contains(says), "{partition}: {}", r.stderr);
    }

    // Years before 1000 are plain integers too (`%Y` wrote `0001`).
    let e = dir.path().join("e");
    let r = run(
        &config(&e, json!({"partition_by": ["t:year"]})),
        &lines(&[
            sch(json!({"id": {"type": "integer"}, "t": {"type": "string", "format": "date-time"}}), json!(["id"])),
            record("s", json!({"id": 1, "t": "0001-01-01T00:00:00Z"})),
            state(json!({"s": 1})),
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let add = log(&e.join("s")).values().flatten().find_map(|a| a.get("add").cloned()).unwrap();
    assert_eq!(add["partitionValues"]["t_year"], json!("1"));
    assert!(add["path"].as_str().unwrap().starts_with("t_year=1/"));

    // Unvalidated records with a value of another type: the run stops before committing it.
    let cfg = config(
        &dir.path().join("d"),
        json!({"partition_by": ["n"], "validate_records": false, "unparseable_values": "null"}),
    );
    let input = lines(&[
        sch(json!({"id": {"type": "integer"}, "n": {"type": ["null", "integer"]}}), json!(["id"])),
        record("s", json!({"id": 1, "n": "abc"})),
        state(json!({"s": 1})),
    ]);
    let r = run(&cfg, &input);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(r#"partition column "n": "abc" is not an integer value"#), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(!dir.path().join("d/s/_delta_log").exists(), "nothing committed");

    // Integers in exponent form partition as the integers they are; one no 64-bit integer holds
    // is null in its column (`unparseable_values: null`) and in its partition: the run goes on.
    let cfg = config(&dir.path().join("x"), json!({"partition_by": ["n"], "unparseable_values": "null"}));
    let big = [r#"{"id":2,"n":12345678901234567890}"#, r#"{"id":3,"n":12345678901234567e0}"#, r#"{"id":4,"n":1e16}"#];
    let mut text = lines(&[
        sch(json!({"id": {"type": "integer"}, "n": {"type": ["null", "integer"]}}), json!(["id"])),
        record("s", json!({"id": 1, "n": 1})),
    ]);
    for r in big {
        text += &format!("{{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{r}}}\n");
    }
    text += &lines(&[state(json!({"s": 2}))]);
    let r = run(&cfg, &text);
    assert_eq!((r.code, r.stdout.clone()), (0, vec![r#"{"s":2}"#.to_string()]), "{}", r.stderr);
    let mut values: Vec<Value> = log(&dir.path().join("x/s"))
        .values()
        .flatten()
        .filter_map(|a| a.get("add").map(|add| add["partitionValues"]["n"].clone()))
        .collect();
    values.sort_by_key(|v| v.to_string());
    assert_eq!(values, [json!("1"), json!("10000000000000000"), json!("12345678901234567"), Value::Null]);
}

/// `incompatible_schema: new_table`: a SCHEMA the table cannot take sends the stream to the
/// next version of its table (`users_v2`), within a run and across runs; every table keeps
/// only files it can read, and the STATE covers both.
#[test]
fn incompatible_schemas_go_to_a_new_table_version() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"incompatible_schema": "new_table"}));
    let as_text = text_ids;
    // Within one run: integer ids, then text ids.
    let r = run(
        &cfg,
        &lines(&[
            schema("users", None),
            record("users", json!({"id": 1})),
            as_text(schema("users", None)),
            record("users", json!({"id": "a"})),
            state(json!({"s": 1})),
        ]),
    );
    assert_eq!((r.code, r.stdout.clone()), (0, vec![r#"{"s":1}"#.to_string()]), "{}", r.stderr);
    let ids = |table: &str| -> Vec<Value> {
        let mut ids: Vec<Value> = rows(&dir.path().join(table)).into_iter().map(|r| r["id"].clone()).collect();
        ids.sort_by_key(|v| v.to_string());
        ids
    };
    assert_eq!(ids("users"), vec![json!(1)]);
    assert_eq!(ids("users_v2"), vec![json!("a")]);
    let v2_schema = |table: &str| {
        let log = log(&dir.path().join(table));
        let metadata = log[&0].iter().find_map(|a| a.get("metaData")).unwrap().clone();
        let fields: Value = serde_json::from_str(metadata["schemaString"].as_str().unwrap()).unwrap();
        fields["fields"].as_array().unwrap().iter().find(|f| f["name"] == "id").unwrap()["type"].clone()
    };
    assert_eq!((v2_schema("users"), v2_schema("users_v2")), (json!("long"), json!("string")));

    // A later run with text ids appends to the newest version; integer ids again start v3.
    let r = run(
        &cfg,
        &lines(&[as_text(schema("users", None)), record("users", json!({"id": "b"})), state(json!({"s": 2}))]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ids("users_v2"), vec![json!("a"), json!("b")]);
    let r = run(&cfg, &lines(&[schema("users", None), record("users", json!({"id": 3})), state(json!({"s": 3}))]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((ids("users"), ids("users_v3")), (vec![json!(1)], vec![json!(3)]));
    // The lake's state is the newest round's, wherever its tables are.
    let r = table_state(&cfg, dir.path());
    assert_eq!(r.stdout, vec![r#"{"s":3}"#.to_string()], "{}", r.stderr);

    // A real stream named like a version is not one: its table is its own, and `users` does
    // not take it for `users_v4`.
    let r =
        run(&cfg, &lines(&[schema("users_v4", None), record("users_v4", json!({"id": 40})), state(json!({"s": 31}))]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&cfg, &lines(&[schema("users", None), record("users", json!({"id": 4})), state(json!({"s": 32}))]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((ids("users_v3"), ids("users_v4")), (vec![json!(3), json!(4)], vec![json!(40)]));
    // Its next version would be that stream's table: refused at the SCHEMA line.
    let r = run(&cfg, &lines(&[as_text(schema("users", None)), record("users", json!({"id": "z"}))]));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("line 1") && r.stderr.contains(r#""users_v4", belongs to another stream"#),
        "{}",
        r.stderr
    );
    assert_eq!(ids("users_v4"), vec![json!(40)]);

    // A version that got no records leaves no gap: int, text (no records), int goes to one new
    // table, which the next run finds.
    let r = run(
        &cfg,
        &lines(&[
            schema("gaps", None),
            record("gaps", json!({"id": 1})),
            as_text(schema("gaps", None)),
            schema("gaps", None),
            record("gaps", json!({"id": 2})),
            state(json!({"s": 33})),
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&cfg, &lines(&[schema("gaps", None), record("gaps", json!({"id": 3})), state(json!({"s": 34}))]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((ids("gaps"), ids("gaps_v2")), (vec![json!(1)], vec![json!(2), json!(3)]));
    assert!(!dir.path().join("gaps_v3").exists());

    // The default policy refuses the same change and leaves every table as it was.
    let before = log(&dir.path().join("users"));
    let r = run(&config(dir.path(), json!({})), &lines(&[schema("users", None), state(json!({"s": 4}))]));
    assert_eq!(r.code, 0, "an unchanged schema is fine: {}", r.stderr);
    let r = run(
        &config(dir.path(), json!({})),
        &lines(&[as_text(schema("users", None)), record("users", json!({"id": "x"})), state(json!({"s": 5}))]),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(r#"column "id" changed type"#), "{}", r.stderr);
    assert_eq!(log(&dir.path().join("users")), before);
}

/// Two writers race for the next version of a table with shapes that cannot share it: the one
/// that commits second finds `users_v2` made meanwhile in the other shape, and moves on to
/// `users_v3` with its files (moved, not copied), rather than fail with advice to use the
/// setting it already uses. Every record once, in a table that can read it; its STATE printed.
#[test]
fn the_loser_of_a_version_race_moves_on_to_the_next_version() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"incompatible_schema": "new_table"}));
    let retyped =
        |ty: &str| schema("users", None).replace(r#""id":{"type":"integer"}"#, &format!(r#""id":{{"type":"{ty}"}}"#));
    let r = run(&cfg, &lines(&[schema("users", None), record("users", json!({"id": 1})), state(json!({"s": 1}))]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Writer B (text ids) weighs the table at its SCHEMA line: version 2 is free.
    let mut b = common::spawn(&cfg, dir.path());
    let (weighed, b_log) = common::watch_stderr(&mut b, "writing to a new table");
    let mut stdin = b.stdin.take().unwrap();
    let b_lines =
        lines(&[retyped("string"), record("users", json!({"id": "b1"})), record("users", json!({"id": "b2"}))]);
    stdin.write_all(b_lines.as_bytes()).unwrap();
    stdin.flush().unwrap();
    weighed.recv_timeout(Duration::from_secs(120)).expect("writer B chose a new table version");
    // Writer A (boolean ids) takes version 2 first.
    let a = run(&cfg, &lines(&[retyped("boolean"), record("users", json!({"id": true})), state(json!({"a": 1}))]));
    assert_eq!((a.code, a.stdout.clone()), (0, vec![r#"{"a":1}"#.to_string()]), "{}", a.stderr);
    stdin.write_all(lines(&[state(json!({"b": 1}))]).as_bytes()).unwrap();
    drop(stdin);
    let out = b.wait_with_output().unwrap();
    let b_log = b_log.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{b_log}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "{\"b\":1}\n", "{b_log}");
    assert!(b_log.contains("they move to the next version") && b_log.contains("users_v3"), "{b_log}");
    let ids =
        |table: &str| -> Vec<Value> { rows(&dir.path().join(table)).into_iter().map(|r| r["id"].clone()).collect() };
    assert_eq!(ids("users"), vec![json!(1)]);
    assert_eq!(ids("users_v2"), vec![json!(true)]);
    let mut v3 = ids("users_v3");
    v3.sort_by_key(|v| v.to_string());
    assert_eq!(v3, vec![json!("b1"), json!("b2")]);
    // B's data file was moved: users_v2 holds only files its log adds.
    let parquet_in_v2: Vec<_> = common::files(&dir.path().join("users_v2"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet") && !f.to_string_lossy().contains("_delta_log"))
        .collect();
    assert_eq!(parquet_in_v2.len(), added_files(&dir.path().join("users_v2")).len(), "{parquet_in_v2:?}");
    // Every run's manifest lists its objects where they are (B's data file where it moved).
    for manifest in std::fs::read_dir(dir.path().join("_manifests")).unwrap() {
        let manifest: Value = serde_json::from_slice(&std::fs::read(manifest.unwrap().path()).unwrap()).unwrap();
        for object in manifest["objects"].as_array().unwrap() {
            let key = object["key"].as_str().unwrap();
            assert!(dir.path().join(key).exists(), "{key} in {manifest}");
        }
    }
    // The lake's state: B's round is the newest.
    let r = table_state(&cfg, dir.path());
    assert_eq!(r.stdout, vec![r#"{"b":1}"#.to_string()], "{}", r.stderr);
}

/// A real stream named like a version of another stream's table (`users_v2`, made by
/// `incompatible_schema: new_table` for `users`) is refused in a later run, not written into
/// that table.
#[test]
fn a_stream_never_writes_into_another_streams_table_version() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({"incompatible_schema": "new_table"}));
    let as_text = text_ids;
    let r = run(
        &cfg,
        &lines(&[
            schema("users", None),
            record("users", json!({"id": 1})),
            as_text(schema("users", None)),
            record("users", json!({"id": "a"})),
            state(json!({"s": 1})),
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = log(&dir.path().join("users_v2"));
    for policy in ["new_table", "fail"] {
        let cfg = config(dir.path(), json!({"incompatible_schema": policy}));
        let r = run(
            &cfg,
            &lines(&[
                as_text(schema("users_v2", None)),
                record("users_v2", json!({"id": "x"})),
                state(json!({"s": 2})),
            ]),
        );
        assert_eq!(r.code, 1, "{policy}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        let last = r.stderr.lines().last().unwrap();
        assert!(last.contains(r#"created for stream "users""#) && last.contains("stream_maps"), "{last}");
        assert_eq!(log(&dir.path().join("users_v2")), before, "{policy}: users_v2 unchanged");
    }
}
