//! Object keys end to end: the patterns users bring from other loaders produce exactly the
//! documented keys; record-field partitions put every record in its folder.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

fn load(extra: Value, input: &str, env: &[(&str, &str)]) -> (Run, tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = json!({"local_path": dir.path().join("out"), "log_level": "warn", "run_id": "r1", "compression": "none", "write_manifest": false});
    config.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["--config", cfg.to_str().unwrap()]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for var in ["TENANT", "TAP", "JOB_ID", "FLOW", "FLOW_ID"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let keys = files(&dir.path().join("out")).iter().map(|p| p.to_str().unwrap().to_string()).collect();
    (run, dir, keys)
}

const INPUT: &str = concat!(
    r#"{"type":"SCHEMA","stream":"ads","schema":{"properties":{"id":{"type":"integer"},"day":{"type":"string"}}},"key_properties":["id"],"bookmark_properties":["day"]}"#,
    "\n",
    r#"{"type":"RECORD","stream":"ads","record":{"id":1,"day":"2026-10-01"}}"#,
    "\n",
    r#"{"type":"RECORD","stream":"ads","record":{"id":2,"day":"2026-10-02T10:00:00Z"}}"#,
    "\n",
    r#"{"type":"RECORD","stream":"ads","record":{"id":3,"day":"2026-10-01T23:00:00"}}"#,
    "\n",
    r#"{"type":"RECORD","stream":"ads","record":{"id":4,"day":"2026-10-03"}}"#,
    "\n",
    r#"{"type":"RECORD","stream":"ads","record":{"id":5}}"#,
    "\n",
    r#"{"type":"STATE","value":{"ads":5}}"#,
    "\n"
);

fn today(fmt: &str) -> String {
    chrono::Utc::now().format(fmt).to_string()
}

#[test]
fn hevo_default_path_as_prefix() {
    let (run, _dir, keys) =
        load(json!({"prefix": "${YEAR}/${MONTH}/${DAY}/${JOB_ID}"}), INPUT, &[("JOB_ID", "job-77")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let date = today("%Y/%m/%d");
    let iso = today("%Y-%m-%d");
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].starts_with(&format!("{date}/job-77/ads/{iso}/ads-")) && keys[0].ends_with("-r1-00000.jsonl"),
        "{keys:?}"
    );
}

#[test]
fn improvado_pattern_refused_then_accepted() {
    let (run, _dir, keys) = load(json!({"key_template": "{{filename}}-{{YYYY}}-{{MM}}-{{DD}}"}), INPUT, &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("can give two files the same key") && run.stderr.contains("allow_overwrite"),
        "{}",
        run.stderr
    );
    assert!(keys.is_empty());

    let (run, dir, keys) =
        load(json!({"key_template": "{{filename}}-{{YYYY}}-{{MM}}-{{DD}}", "allow_overwrite": true}), INPUT, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let null = "ads-__HIVE_DEFAULT_PARTITION__-__HIVE_DEFAULT_PARTITION__-__HIVE_DEFAULT_PARTITION__";
    assert_eq!(keys, ["ads-2026-10-01", "ads-2026-10-02", "ads-2026-10-03", null]);
    let ids = |k: &str| -> Vec<i64> {
        String::from_utf8(read(&dir.path().join("out").join(k)))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids("ads-2026-10-01"), [1, 3]);
    assert_eq!(ids(null), [5]);

    let (run, _dir, keys) =
        load(json!({"key_template": "{{filename}}-{{YYYY}}-{{MM}}-{{DD}}-{run_id}-{part}.{extension}"}), INPUT, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(keys[0], "ads-2026-10-01-r1-00000.jsonl");
}

#[test]
fn seed_bucket_key_pattern() {
    let template = "{stream_name}/{date}/{stream_run_id}.{extension}";
    let (run, _dir, _) = load(json!({"key_template": template}), INPUT, &[]);
    assert_eq!(run.code, 2, "no {{part}}: a second file of the stream would overwrite the first");
    let (run, _dir, keys) =
        load(json!({"key_template": template, "allow_overwrite": true, "max_records_per_file": 0}), INPUT, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(keys.len(), 1);
    let (folder, file) = keys[0].rsplit_once('/').unwrap();
    assert_eq!(folder, format!("ads/{}", today("%Y_%m_%d")));
    let id = file.strip_suffix(".jsonl").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{file}");
}

#[test]
fn hotglue_path_prefix_from_job_environment() {
    let (run, _dir, keys) = load(
        json!({"path_prefix": "{tenant}/{tap}/{full_date}", "macro_style": "hotglue", "key_template": "{stream}-{date}-{run_id}-{part}.{extension}"}),
        INPUT,
        &[("TENANT", "acme"), ("TAP", "tap-facebook"), ("JOB_ID", "j1")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(keys, [format!("acme/tap-facebook/{}/ads-{}-r1-00000.jsonl", today("%Y%m%d"), today("%Y%m"))]);
    let (run, _dir, _) = load(json!({"path_prefix": "{tenant}/{tap}"}), INPUT, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("`tenant`") && run.stderr.contains("$TENANT"), "{}", run.stderr);
}

#[test]
fn template_variables_fill_folder_parameters() {
    let (run, _dir, keys) = load(
        json!({"prefix": "{{workspace_title}}/{{report_type}}", "template_variables": {"workspace_title": "Main WS", "report_type": "daily"}}),
        INPUT,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(keys[0].starts_with("Main%20WS/daily/ads/"), "{keys:?}");
    let (run, _dir, _) = load(json!({"template_variables": {"stream": "x"}}), INPUT, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("built-in"), "{}", run.stderr);
}

/// Three days land in three Hive folders with the right records, also with one open file.
#[test]
fn record_field_partitions_hive_style() {
    for max_open in [100, 1] {
        let (run, dir, keys) = load(
            json!({"key_template": "{stream}/dt={record.day:%Y-%m-%d}/{run_id}-{part}.{extension}", "max_open_files": max_open}),
            INPUT,
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let mut by_day: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
        for k in &keys {
            let day = k.split('/').nth(1).unwrap().to_string();
            for l in String::from_utf8(read(&dir.path().join("out").join(k))).unwrap().lines() {
                by_day
                    .entry(day.clone())
                    .or_default()
                    .push(serde_json::from_str::<Value>(l).unwrap()["id"].as_i64().unwrap());
            }
        }
        let expected: std::collections::BTreeMap<String, Vec<i64>> = [
            ("dt=2026-10-01", vec![1, 3]),
            ("dt=2026-10-02", vec![2]),
            ("dt=2026-10-03", vec![4]),
            ("dt=__HIVE_DEFAULT_PARTITION__", vec![5]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(by_day, expected, "max_open_files {max_open}: {keys:?}");
        if max_open == 1 {
            assert_eq!(keys.len(), 5, "day 1 was closed and reopened as part 1: {keys:?}");
            assert!(keys.contains(&"ads/dt=2026-10-01/r1-00001.jsonl".to_string()), "{keys:?}");
        }
        assert_eq!(run.stdout, [r#"{"ads":5}"#]);
    }
}

/// Cursor macros name each file by the largest bookmark value inside it, with and without
/// validation (the key is decided when the file closes).
#[test]
fn cursor_macros_name_files_by_their_largest_bookmark() {
    for validate in [true, false] {
        let (run, dir, keys) = load(
            json!({"key_template": "{stream}/{cursor_singular_date_time}-{run_id}-{part}.{extension}", "max_records_per_file": 2, "validate_records": validate}),
            INPUT,
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(
            keys,
            // {part} counts per rendered key: these keys already differ by their cursor.
            [
                "ads/%5F_HIVE_DEFAULT_PARTITION__-r1-00000.jsonl",
                "ads/2026-10-02-10-00-00-r1-00000.jsonl",
                "ads/2026-10-03-00-00-00-r1-00000.jsonl",
            ],
            "validate_records {validate}"
        );
        assert!(all_files(&dir.path().join("out")).iter().all(|p| !p.to_str().unwrap().contains(".tmp")));
    }
}

#[test]
fn a_partitioned_stream_does_not_split_an_unpartitioned_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "local_path": dir.path(), "compression": "none", "log_level": "warn",
        "stream_overrides": {"a": {"key_template": "{stream}/x={record.x}/{run_id}-{part}.jsonl"}},
    });
    let schema = |s: &str| {
        format!(
            r#"{{"type":"SCHEMA","stream":"{s}","schema":{{"properties":{{"x":{{"type":"integer"}}}}}},"key_properties":[]}}"#
        )
    };
    let rec = |s: &str, x: i64| format!(r#"{{"type":"RECORD","stream":"{s}","record":{{"x":{x}}}}}"#);
    let input = [schema("a"), schema("b"), rec("a", 1), rec("b", 1), rec("a", 2), rec("b", 2)].join("\n") + "\n";
    let r = run(&config, &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let found = files(dir.path());
    let b: Vec<_> = found.iter().filter(|p| p.starts_with("b")).collect();
    assert_eq!(b.len(), 1, "stream b has one file: {found:?}");
    let body = std::fs::read_to_string(dir.path().join(b[0])).unwrap();
    assert_eq!(body, "{\"x\":1}\n{\"x\":2}\n", "and it holds both records");
    assert_eq!(found.iter().filter(|p| p.starts_with("a")).count(), 2, "{found:?}");
}

/// Unsorted data: records of 270 daily partitions in random order keep every partition open
/// (an open file holds only its records until it is big), so each partition gets one file with
/// the default settings; a tight memory budget closes files early, warned about once and
/// counted in the manifest, and still loses nothing.
#[test]
fn unsorted_partitions_stay_open_within_the_memory_budget() {
    let mut input = String::from(
        r#"{"type":"SCHEMA","stream":"ev","schema":{"properties":{"id":{"type":"integer"},"day":{"type":"string","format":"date-time"},"p":{"type":"string"}}},"key_properties":["id"]}"#,
    );
    input.push('\n');
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let day = 1 + x % 270;
        let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Days::new(day - 1);
        input.push_str(&format!(
            r#"{{"type":"RECORD","stream":"ev","record":{{"id":{i},"day":"{date}T10:00:00Z","p":"{}"}}}}"#,
            "x".repeat(100)
        ));
        input.push('\n');
    }
    let template = "{stream}/dt={record.day:%Y-%m-%d}/{run_id}-{part}.{extension}";
    let (run, dir, keys) =
        load(json!({"key_template": template, "compression": "gzip", "write_manifest": true}), &input, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(keys.len(), 270, "one file per partition with the defaults");
    assert!(!run.stderr.contains("closing files early"), "{}", run.stderr);
    // A budget of 1 MiB: files close early, the run says so once and counts it; nothing is lost.
    let (run, dir2, keys) = load(
        json!({"key_template": template, "compression": "gzip", "write_manifest": true, "max_open_bytes": 1048576, "log_level": "warn"}),
        &input,
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr.matches("closing files early").count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("max_open_bytes"), "{}", run.stderr);
    assert!(keys.len() > 270, "smaller files: {}", keys.len());
    let manifest = all_files(&dir2.path().join("out")).into_iter().find(|p| p.starts_with("_manifests")).unwrap();
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir2.path().join("out").join(manifest)).unwrap()).unwrap();
    assert!(manifest["early_closes"].as_u64().unwrap() > 0, "{manifest}");
    let records: u64 = manifest["objects"].as_array().unwrap().iter().map(|o| o["records"].as_u64().unwrap()).sum();
    assert_eq!(records, 20_000);
    drop(dir);
}
