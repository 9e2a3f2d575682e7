//! End to end on the local-folder destination: the real binary, real input, real files.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const SCHEMA: &str = r#"{"type":"SCHEMA","stream":"users","key_properties":["id"],"schema":{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"name":{"type":["null","string"]},"address":{"type":["null","object"],"properties":{"city":{"type":"string"},"zip":{"type":"string"}}},"tags":{"type":"array","items":{"type":"string"}}}}}"#;

fn cfg(dir: &std::path::Path, extra: Value) -> Value {
    let mut c = json!({"local_path": dir, "log_level": "warn"});
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

#[test]
fn jsonl_gzip_files_hold_exactly_the_input_records() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample();
    let run = run(&cfg(dir.path(), json!({"max_records_per_file": 25})), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = files(dir.path());
    assert!(files.iter().all(|f| f.to_str().unwrap().ends_with(".jsonl.gz")), "{files:?}");
    for stream in ["users", "orders"] {
        let mine: Vec<_> = files.iter().filter(|f| f.starts_with(stream)).collect();
        assert_eq!(mine.len(), 3, "60 records at 25 per file: {mine:?}");
        let mut got = String::new();
        for f in &mine {
            got.push_str(std::str::from_utf8(&read(&dir.path().join(f))).unwrap());
        }
        let want: String = records_of(&input, stream).iter().map(|r| format!("{r}\n")).collect();
        assert_eq!(got, want, "stream {stream}: bytes differ from the tap's records");
    }
    let last_state = states_of(&input).pop().unwrap();
    let printed: Vec<Value> = run.stdout.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(printed.last(), Some(&last_state));
    assert!(
        printed.iter().all(|s| s.get("bookmarks").is_some()),
        "stdout holds bare state values only: {:?}",
        run.stdout
    );
}

#[test]
fn default_keys_are_unique_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("{SCHEMA}\n{{\"type\":\"RECORD\",\"stream\":\"users\",\"record\":{{\"id\":1}}}}\n");
    assert_eq!(run(&cfg(dir.path(), json!({})), &input).code, 0);
    assert_eq!(run(&cfg(dir.path(), json!({})), &input).code, 0);
    let files = files(dir.path());
    assert_eq!(files.len(), 2, "the second run must not overwrite the first: {files:?}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert!(files[0].starts_with(format!("users/{today}")), "{files:?}");
}

#[test]
fn csv_header_from_schema_and_cells_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        SCHEMA,
        r#"{"type":"RECORD","stream":"users","record":{"id":1,"name":"O'Brien, \"Pat\"","address":{"city":"Zürich","zip":"8001"},"tags":["a","b"]}}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":2,"name":null,"address":null}}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":3,"address":{"zip":"x\ny"}}}"#,
        r#"{"type":"STATE","value":{"bookmarks":{"users":3}}}"#,
    ]
    .join("\n");
    let run = run(&cfg(dir.path(), json!({"format": "csv", "compression": "none"})), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = files(dir.path());
    assert_eq!(files.len(), 1);
    assert!(files[0].to_str().unwrap().ends_with(".csv"));
    let bytes = read(&dir.path().join(&files[0]));
    let mut reader = csv::Reader::from_reader(&bytes[..]);
    assert_eq!(reader.headers().unwrap(), vec!["id", "name", "address__city", "address__zip", "tags"]);
    let rows: Vec<Vec<String>> = reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    assert_eq!(
        rows,
        vec![
            vec!["1", "O'Brien, \"Pat\"", "Zürich", "8001", r#"["a","b"]"#],
            vec!["2", "", "", "", ""],
            vec!["3", "", "", "x\ny", ""],
        ]
    );
    assert_eq!(run.stdout, vec![r#"{"bookmarks":{"users":3}}"#]);
}

#[test]
fn csv_semicolon_no_header_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("{SCHEMA}\n{}\n", r#"{"type":"RECORD","stream":"users","record":{"id":7,"name":"a;b"}}"#);
    let c = cfg(dir.path(), json!({"format": "csv", "delimiter": "semicolon", "header": false}));
    let run = run(&c, &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = files(dir.path());
    assert!(files[0].to_str().unwrap().ends_with(".csv.gz"));
    assert_eq!(read(&dir.path().join(&files[0])), b"7;\"a;b\";;;\n");
}

#[test]
fn changed_schema_starts_a_new_csv_file_with_its_own_header() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"a":{"type":"integer"}}},"key_properties":[]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"a":1}}"#,
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"a":{"type":"integer"}}},"key_properties":[]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"a":2}}"#,
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"a":{"type":"integer"},"b":{"type":"string"}}},"key_properties":[]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"a":3,"b":"x"}}"#,
    ]
    .join("\n");
    let run = run(&cfg(dir.path(), json!({"format": "csv", "compression": "none"})), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let contents: Vec<String> =
        files(dir.path()).iter().map(|f| String::from_utf8(read(&dir.path().join(f))).unwrap()).collect();
    assert_eq!(contents, vec!["a\n1\n2\n", "a,b\n3,x\n"], "an identical SCHEMA keeps the file, a changed one rolls it");
}

#[test]
fn special_stream_names_become_safe_keys() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        r#"{"type":"SCHEMA","stream":"test:SpecialChars!in?attributes","schema":{"properties":{"a":{"type":"integer"}}},"key_properties":[]}"#,
        r#"{"type":"RECORD","stream":"test:SpecialChars!in?attributes","record":{"a":1}}"#,
        r#"{"type":"SCHEMA","stream":"../../escape","schema":{"properties":{"a":{"type":"integer"}}},"key_properties":[]}"#,
        r#"{"type":"RECORD","stream":"../../escape","record":{"a":1}}"#,
    ]
    .join("\n");
    let run =
        run(&cfg(dir.path(), json!({"key_template": "{stream}/{part}-{run_id}.{extension}", "run_id": "r"})), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<String> = files(dir.path()).iter().map(|f| f.to_str().unwrap().to_string()).collect();
    assert_eq!(
        names,
        vec!["%2E.%2F..%2Fescape/00000-r.jsonl.gz", "test%3ASpecialChars%21in%3Fattributes/00000-r.jsonl.gz"]
    );
    let streams: Vec<String> = names.iter().map(|n| unescape(n.split('/').next().unwrap())).collect();
    assert_eq!(streams, ["../../escape", "test:SpecialChars!in?attributes"], "the folder gives back the name");
}

/// Runs one bad input and checks: exit code, a one-line error naming line (and stream), and
/// no STATE printed for the data that was not written.
fn assert_fails(input: &str, code: i32, needles: &[&str]) -> (Run, tempfile::TempDir) {
    assert_fails_keeping(input, code, needles, &[], 0)
}

/// As [`assert_fails`], when good records and STATE came before the bad line: they are kept
/// (`files` complete files) and the `states` before it printed.
fn assert_fails_keeping(
    input: &str,
    code: i32,
    needles: &[&str],
    states: &[&str],
    files: usize,
) -> (Run, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let run = run(&cfg(dir.path(), json!({})), input);
    assert_eq!(run.code, code, "stderr: {}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("target-s3: error: "), "{}", run.stderr);
    for n in needles {
        assert!(last.contains(n), "error line {last:?} should contain {n:?}");
    }
    assert_eq!(run.stdout, states, "only the STATE before the bad line may be printed");
    let kept = all_files(dir.path());
    assert_eq!(kept.len(), files, "only complete files of the records before the bad line: {kept:?}");
    assert!(kept.iter().all(|f| !f.to_str().unwrap().contains("/.")), "nothing partial may stay visible: {kept:?}");
    (run, dir)
}

#[test]
fn bad_input_stops_with_a_precise_error() {
    let rec = r#"{"type":"RECORD","stream":"users","record":{"id":1}}"#;
    let state = r#"{"type":"STATE","value":{"n":1}}"#;
    let kept = [r#"{"n":1}"#];
    assert_fails_keeping(
        &format!("{SCHEMA}\n{rec}\n{state}\n{{\"type\":\"RECORD\",\n"),
        1,
        &["line 4", "malformed JSON"],
        &kept,
        1,
    );
    assert_fails(&format!("{SCHEMA}\n{{\"stream\":\"users\"}}\n"), 1, &["line 2", "no \"type\""]);
    assert_fails(&format!("{SCHEMA}\n{{\"type\":\"NOPE\"}}\n"), 1, &["line 2", "unknown message type \"NOPE\""]);
    assert_fails(&format!("{rec}\n"), 1, &["line 1", "stream \"users\"", "RECORD before any SCHEMA"]);
    assert_fails(
        r#"{"type":"SCHEMA","stream":"x","schema":{"type":"object"},"key_properties":[]}"#,
        1,
        &["line 1", "stream \"x\"", "no \"properties\""],
    );
    assert_fails(r#"{"type":"SCHEMA","schema":{"properties":{}}}"#, 1, &["line 1", "SCHEMA message has no \"stream\""]);
    assert_fails(r#"{"type":"SCHEMA","stream":"x"}"#, 1, &["line 1", "SCHEMA message has no \"schema\""]);
    assert_fails_keeping(
        &format!("{SCHEMA}\n{rec}\n{state}\n{}\n", r#"{"type":"RECORD","stream":"users","record":{"name":"no id"}}"#),
        1,
        &["line 4", "stream \"users\"", "\"id\" is a required property"],
        &kept,
        1,
    );
    assert_fails(
        &format!("{SCHEMA}\n{}\n", r#"{"type":"RECORD","stream":"users","record":{"id":"seven"}}"#),
        1,
        &["line 2", "at /id", "\"seven\" is not of type \"integer\""],
    );
}

#[test]
fn validation_off_loads_records_that_break_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!(
        "{SCHEMA}\n{}\n{}\n",
        r#"{"type":"RECORD","stream":"users","record":{"id":"seven"}}"#,
        r#"{"type":"RECORD","stream":"users","record":{"no_id":true}}"#
    );
    let run = run(&cfg(dir.path(), json!({"validate_records": false, "compression": "none"})), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let f = files(dir.path());
    assert_eq!(read(&dir.path().join(&f[0])), b"{\"id\":\"seven\"}\n{\"no_id\":true}\n");
    let broken = format!("{SCHEMA}\n{}\n", r#"{"type":"RECORD","stream":"users","record":[1]}"#);
    let failed = common::run(&cfg(dir.path(), json!({"validate_records": false})), &broken);
    assert_eq!(failed.code, 1);
    assert!(
        failed
            .stderr
            .contains("line 2 (stream \"users\"): record does not match the schema: record is not a JSON object")
    );
}

#[test]
fn state_after_an_error_is_never_printed_but_earlier_covered_state_is() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        SCHEMA,
        r#"{"type":"RECORD","stream":"users","record":{"id":1}}"#,
        r#"{"type":"STATE","value":{"n":1}}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":2}}"#,
        r#"{"type":"STATE","value":{"n":2}}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":"bad"}}"#,
    ]
    .join("\n");
    let run = run(&cfg(dir.path(), json!({"max_records_per_file": 1, "compression": "none"})), &input);
    assert_eq!(run.code, 1);
    // Both files were durable before the bad line, so {"n":2} is honest; {"n":1} may come
    // first when the pipe delivered the input in two reads.
    assert_eq!(run.stdout.last().map(String::as_str), Some(r#"{"n":2}"#), "{:?}", run.stdout);
    assert!(run.stdout.iter().all(|l| l == r#"{"n":1}"# || l == r#"{"n":2}"#));
    let contents: Vec<Vec<u8>> = files(dir.path()).iter().map(|f| read(&dir.path().join(f))).collect();
    assert_eq!(contents, vec![b"{\"id\":1}\n".to_vec(), b"{\"id\":2}\n".to_vec()]);
}

#[test]
fn blank_lines_crlf_and_bom_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!(
        "\u{feff}{SCHEMA}\r\n\r\n{}\r\n   \n{}",
        r#"{"type":"RECORD","stream":"users","record":{"id":1}}"#, r#"{"type":"STATE","value":{"n":1}}"#
    );
    let run = run(&cfg(dir.path(), json!({"compression": "none"})), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, vec![r#"{"n":1}"#]);
    assert_eq!(read(&dir.path().join(&files(dir.path())[0])), b"{\"id\":1}\n");
}

/// ACTIVATE_VERSION in the default `metadata` mode changes nothing but the manifest: the
/// records of both versions stay in the stream's one file, each once and byte for byte, the
/// manifest names the version activated last, and the STATE after them is printed.
#[test]
fn activate_version_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let input = [
        SCHEMA,
        r#"{"type":"ACTIVATE_VERSION","stream":"users","version":1}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":1},"version":1}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":2,"name":"b"},"version":1}"#,
        r#"{"type":"ACTIVATE_VERSION","stream":"users","version":2}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":3},"version":2}"#,
        r#"{"type":"STATE","value":{"n":3}}"#,
    ]
    .join("\n");
    let run = run(&cfg(dir.path(), json!({"compression": "none"})), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, [r#"{"n":3}"#]);
    let files = files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(read(&dir.path().join(&files[0])), b"{\"id\":1}\n{\"id\":2,\"name\":\"b\"}\n{\"id\":3}\n");
    let manifest = all_files(dir.path()).into_iter().find(|p| p.starts_with("_manifests")).expect("a manifest");
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join(manifest)).unwrap()).unwrap();
    assert_eq!(manifest["table_versions"], json!({"users": "2"}));
    assert_eq!(manifest["records"], 3);
}

/// The STATE rule seen from outside: while the file holding an earlier record is open, the
/// STATE stays unprinted; it appears right after that file is written, and the file is there.
#[test]
fn state_waits_for_the_file_that_holds_earlier_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = spawn(&cfg(&out, json!({"max_records_per_file": 2, "max_batch_age_seconds": 0})), dir.path());
    let mut stdin = child.stdin.take().unwrap();
    let lines = watch_stdout(&mut child);
    // each STATE line comes with a listing of the files at the moment it was read
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines {
            let _ = tx.send((line, files(&out)));
        }
    });
    writeln!(stdin, "{SCHEMA}").unwrap();
    writeln!(stdin, r#"{{"type":"RECORD","stream":"users","record":{{"id":1}}}}"#).unwrap();
    writeln!(stdin, r#"{{"type":"STATE","value":{{"n":1}}}}"#).unwrap();
    stdin.flush().unwrap();
    assert!(rx.recv_timeout(Duration::from_millis(1500)).is_err(), "STATE printed while its record's file is open");
    writeln!(stdin, r#"{{"type":"RECORD","stream":"users","record":{{"id":2}}}}"#).unwrap(); // fills the file
    stdin.flush().unwrap();
    let (line, files_then) = rx.recv_timeout(Duration::from_secs(10)).expect("STATE after the file is written");
    assert_eq!(line, r#"{"n":1}"#);
    assert_eq!(files_then.len(), 1, "the file exists when the STATE is printed: {files_then:?}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// With a batch age, a STATE is released by time alone even while the tap is quiet.
#[test]
fn batch_age_closes_files_while_input_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = spawn(&cfg(&out, json!({"max_batch_age_seconds": 1})), dir.path());
    let mut stdin = child.stdin.take().unwrap();
    let lines = watch_stdout(&mut child);
    writeln!(stdin, "{SCHEMA}").unwrap();
    writeln!(stdin, r#"{{"type":"RECORD","stream":"users","record":{{"id":1}}}}"#).unwrap();
    writeln!(stdin, r#"{{"type":"STATE","value":{{"n":1}}}}"#).unwrap();
    stdin.flush().unwrap();
    let line = lines.recv_timeout(Duration::from_secs(20)).expect("STATE released by the batch age");
    assert_eq!(line, r#"{"n":1}"#);
    assert_eq!(files(&out).len(), 1, "the STATE came with its file written");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn config_errors_exit_2_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&cfg(dir.path(), json!({"key_template": "{stream}/{nope}"})), "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("setting `key_template`") && r.stderr.contains("{run_id}"), "{}", r.stderr);
    let r = run(&cfg(dir.path(), json!({"key_template": "{stream}.jsonl"})), "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("allow_overwrite"), "{}", r.stderr);
    let r = run(&cfg(dir.path(), json!({"compression": "lzma"})), "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("setting `compression`: must be one of none, gzip"), "{}", r.stderr);
    let r = run_args(&["--config", "/nonexistent/config.json"], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/nonexistent/config.json"), "{}", r.stderr);
}

#[test]
fn config_from_env_and_layered_files() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.json");
    std::fs::write(&base, json!({"local_path": dir.path().join("wrong"), "format": "csv"}).to_string()).unwrap();
    let out = Command::new(BIN)
        .args(["--config", base.to_str().unwrap(), "--config", "ENV"])
        .env("TARGET_S3_LOCAL_PATH", dir.path().join("right"))
        .env("TARGET_S3_COMPRESSION", "none")
        .env("TARGET_S3_HEADER", "false")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = out;
    let input = format!("{SCHEMA}\n{}\n", r#"{"type":"RECORD","stream":"users","record":{"id":1}}"#);
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f = files(&dir.path().join("right"));
    assert_eq!(f.len(), 1);
    assert_eq!(read(&dir.path().join("right").join(&f[0])), b"1,,,,\n");
}

#[test]
fn input_file_and_state_flag() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.singer");
    std::fs::write(&input, sample()).unwrap();
    let config = dir.path().join("c.json");
    std::fs::write(&config, cfg(&dir.path().join("out"), json!({})).to_string()).unwrap();
    let r = run_args(
        &[
            "--config",
            config.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--state",
            "/nonexistent/state.json",
        ],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(serde_json::from_str::<Value>(r.stdout.last().unwrap()).unwrap(), states_of(&sample()).pop().unwrap());
}

#[test]
fn version_and_about() {
    let r = run_args(&["--version"], "");
    assert_eq!(r.stdout, vec![format!("target-s3 v{}", env!("CARGO_PKG_VERSION"))]);
    let r = run_args(&["--about", "--format", "json"], "");
    assert_eq!(r.code, 0);
    let about: Value = serde_json::from_str(&r.stdout.join("\n")).unwrap();
    assert_eq!(about["name"], "target-s3");
    assert_eq!(about["settings"]["properties"]["compression"]["default"], "gzip");
    assert!(about["capabilities"].as_array().unwrap().contains(&json!("validate-records")));
    let r = run_args(&["--about", "--format", "markdown"], "");
    assert!(r.code == 0 && r.stdout.iter().any(|l| l.starts_with("| `key_template` |")));
    let r = run_args(&["--about"], "");
    assert!(r.code == 0 && r.stdout.iter().any(|l| l.contains("max_records_per_file")));
}

#[test]
fn manifest_lists_every_file_with_counts_sizes_and_checksums() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample();
    let run = run(
        &cfg(dir.path(), json!({"max_records_per_file": 25, "run_id": "r9", "write_success_marker": true})),
        &input,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = all_files(dir.path());
    let manifests: Vec<_> = all.iter().filter(|p| p.starts_with("_manifests")).collect();
    assert_eq!(manifests.len(), 1);
    assert!(manifests[0].to_str().unwrap().ends_with("-r9.json"));
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join(manifests[0])).unwrap()).unwrap();
    assert_eq!(manifest["run_id"], "r9");
    let objects = manifest["objects"].as_array().unwrap();
    let data: Vec<_> = files(dir.path()).into_iter().filter(|p| !p.ends_with("_SUCCESS")).collect();
    assert_eq!(objects.len(), data.len());
    for o in objects {
        let path = dir.path().join(o["key"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(o["bytes"].as_u64().unwrap(), bytes.len() as u64);
        assert_eq!(o["crc32"].as_str().unwrap(), format!("{:08x}", crc32fast::hash(&bytes)));
        let lines = read(&path).split(|b| *b == b'\n').filter(|l| !l.is_empty()).count() as u64;
        assert_eq!(o["records"].as_u64().unwrap(), lines);
    }
    let users: Vec<&Value> = objects.iter().filter(|o| o["stream"] == "users").collect();
    assert_eq!(users.len(), 3);
    assert!(users.iter().all(|o| o["min_cursor"].is_string() && o["max_cursor"].as_str() >= o["min_cursor"].as_str()));
    let markers: Vec<_> = all.iter().filter(|p| p.ends_with("_SUCCESS")).collect();
    assert_eq!(markers.len(), 2, "one per folder that got files: {markers:?}");
}

#[test]
fn dry_run_lists_keys_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.json");
    std::fs::write(
        &config,
        cfg(&dir.path().join("out"), json!({"max_records_per_file": 25, "run_id": "r"})).to_string(),
    )
    .unwrap();
    let r = run_args(&["--config", config.to_str().unwrap(), "--dry-run", "--log-level", "info"], &sample());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.len(), 6, "{:?}", r.stdout);
    let counts: Vec<u64> = r.stdout.iter().map(|l| l.split('\t').next().unwrap().parse().unwrap()).collect();
    assert_eq!(counts, [25, 25, 10, 25, 25, 10]);
    assert!(r.stdout[0].ends_with("-r-00000.jsonl.gz") && r.stdout[0].contains("\torders/"), "{:?}", r.stdout);
    assert!(!dir.path().join("out").exists(), "a dry run writes nothing");
    // ...and says so: no "file written" line, no byte counters (they would be made up).
    assert!(!r.stderr.contains("file written") && !r.stderr.contains("bytes_written"), "{}", r.stderr);
    assert!(r.stderr.contains("dry run: file not written"), "{}", r.stderr);
}

#[test]
fn zstd_files_decompress_to_the_records() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample();
    let run = run(&cfg(dir.path(), json!({"compression": "zstd", "compression_level": 5})), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = files(dir.path());
    let streams: Vec<&str> = files.iter().map(|f| f.iter().next().unwrap().to_str().unwrap()).collect();
    assert_eq!(streams, ["orders", "users"], "one file per stream: {files:?}");
    for f in &files {
        assert!(f.to_str().unwrap().ends_with(".jsonl.zst"), "{f:?}");
        let stream = f.iter().next().unwrap().to_str().unwrap();
        let got = zstd::stream::decode_all(&std::fs::read(dir.path().join(f)).unwrap()[..]).unwrap();
        let want: String = records_of(&input, stream).iter().map(|r| format!("{r}\n")).collect();
        assert_eq!(String::from_utf8(got).unwrap(), want, "{f:?}: every record once, byte for byte");
    }
    assert_eq!(
        run.stdout.last().map(|l| serde_json::from_str::<Value>(l).unwrap()),
        states_of(&input).pop(),
        "the final STATE"
    );
    let bad = common::run(&cfg(dir.path(), json!({"compression": "zstd", "compression_level": 40})), "");
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("zstd levels are 1 to 19"), "{}", bad.stderr);
}

#[test]
fn json_arrays_and_per_stream_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample();
    let overrides = json!({"stream_overrides": {
        "ord*": {"format": "csv", "compression": "none"},
        "users": {"format": "json", "key_template": "json/{stream}-{run_id}-{part}.{extension}"}
    }, "run_id": "r"});
    let run = run(&cfg(dir.path(), overrides), &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let files = files(dir.path());
    let names: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("json/users-r-00000.json.gz"), "{names:?}");
    assert!(names[1].starts_with("orders/") && names[1].ends_with(".csv"), "{names:?}");
    let users: Value = serde_json::from_slice(&read(&dir.path().join(&files[0]))).unwrap();
    let want: Vec<Value> = records_of(&input, "users").iter().map(|r| serde_json::from_str(r).unwrap()).collect();
    assert_eq!(users.as_array().unwrap(), &want);
    let csv = read(&dir.path().join(&files[1]));
    assert!(csv.starts_with(b"order_id,user_id,amount,currency,items,note,created_at\n"));
}

/// A SCHEMA re-sent with the same properties in another order changes no written column: the
/// file goes on (taps that build schemas from dictionaries do this), in every format; a new
/// property still rolls CSV and Parquet files.
#[test]
fn a_schema_that_only_reorders_properties_keeps_the_file() {
    let schema = |props: &str| {
        format!(r#"{{"type":"SCHEMA","stream":"s","schema":{{"properties":{{{props}}}}},"key_properties":[]}}"#)
    };
    let ab = schema(r#""a":{"type":"integer"},"b":{"type":"string"}"#);
    let ba = schema(r#""b":{"type":"string"},"a":{"type":"integer"}"#);
    let abc = schema(r#""a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"string"}"#);
    let mut lines = Vec::new();
    for i in 0..6 {
        lines.push(if i % 2 == 0 { ab.clone() } else { ba.clone() });
        lines.push(format!(r#"{{"type":"RECORD","stream":"s","record":{{"a":{i},"b":"x"}}}}"#));
    }
    let reordered = lines.join("\n");
    let grown = format!("{reordered}\n{abc}\n{}", r#"{"type":"RECORD","stream":"s","record":{"a":9,"b":"y","c":"z"}}"#);
    for format in ["jsonl", "csv", "parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let r = run(&cfg(dir.path(), json!({"format": format, "compression": "none"})), &reordered);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        assert_eq!(files(dir.path()).len(), 1, "{format}: one file for six records");
        let dir = tempfile::tempdir().unwrap();
        let r = run(&cfg(dir.path(), json!({"format": format, "compression": "none"})), &grown);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        let expected = if format == "jsonl" { 1 } else { 2 };
        assert_eq!(files(dir.path()).len(), expected, "{format}: a new column rolls typed and CSV files");
    }
}

/// The manifest names each object's own format and compression (streams may differ by
/// `stream_overrides`); `csv_null_value` tells nulls from empty strings.
#[test]
fn manifest_entries_carry_their_format_and_csv_nulls_can_be_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config = cfg(
        dir.path(),
        json!({"format": "csv", "compression": "none", "csv_null_value": "\\N",
               "stream_overrides": {"orders": {"format": "jsonl", "compression": "gzip"}}}),
    );
    let input = [
        r#"{"type":"SCHEMA","stream":"users","schema":{"properties":{"id":{"type":"integer"},"n":{"type":["null","string"]}}},"key_properties":["id"]}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":1,"n":null}}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":2,"n":""}}"#,
        r#"{"type":"RECORD","stream":"users","record":{"id":3}}"#,
        r#"{"type":"SCHEMA","stream":"orders","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#,
        r#"{"type":"RECORD","stream":"orders","record":{"id":1}}"#,
    ]
    .join("\n");
    let r = run(&config, &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let manifest = all_files(dir.path()).into_iter().find(|p| p.starts_with("_manifests")).unwrap();
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join(manifest)).unwrap()).unwrap();
    let mut kinds: Vec<(String, String, String)> = manifest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["stream"].as_str().unwrap().into(),
                o["format"].as_str().unwrap().into(),
                o["compression"].as_str().unwrap().into(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [("orders".into(), "jsonl".into(), "gzip".into()), ("users".into(), "csv".into(), "none".into())]
    );
    let users = files(dir.path()).into_iter().find(|p| p.starts_with("users")).unwrap();
    assert_eq!(String::from_utf8(read(&dir.path().join(users))).unwrap(), "id,n\n1,\\N\n2,\n3,\\N\n");
}

/// Files on disk: readable as the umask allows (0644 under 022, so Spark or a web server
/// running as another user can read them); a legal 249-byte file name works (the temporary
/// name is short and sits in the final folder); `max_open_files` beyond `ulimit -n` is a
/// configuration error, not a failure at the thousandth partition.
#[test]
fn files_on_disk_behave_like_any_tool_s() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let long = "x".repeat(249 - "-r-00000.jsonl".len());
    let cfg_path = dir.path().join("c.json");
    std::fs::write(
        &cfg_path,
        json!({"local_path": out, "compression": "none", "run_id": "r", "write_manifest": false,
               "key_template": format!("{{stream}}/{long}-{{run_id}}-{{part}}.{{extension}}")})
        .to_string(),
    )
    .unwrap();
    let sh = |script: &str| {
        std::process::Command::new("sh")
            .args(["-c", script, "sh", BIN, cfg_path.to_str().unwrap()])
            .stdin(std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/sample_streams/sample.singer")).unwrap())
            .output()
            .unwrap()
    };
    let r = sh("umask 022; exec \"$1\" --config \"$2\"");
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let written = files(&out);
    assert_eq!(written.len(), 2, "{written:?}");
    for f in &written {
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 249, "{name}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "{f:?}");
    }
    let limited = dir.path().join("limited.json");
    std::fs::write(&limited, json!({"local_path": out, "max_open_files": 5000}).to_string()).unwrap();
    let r = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 256; exec \"$1\" --config \"$2\" < /dev/null", "sh", BIN, limited.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2), "{}", String::from_utf8_lossy(&r.stderr));
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(stderr.contains("max_open_files") && stderr.contains("ulimit -n"), "{stderr}");
}
