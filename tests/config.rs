//! The configuration and the command line as a user meets them, through the real binary:
//! every bad setting is exit 2 with one line naming it (never a panic, never a secret), the
//! `--log-level` flag is checked like the setting, object tags and metadata are checked before
//! anything is read, and the S3 options (metadata encoding, "no limit" file size, endpoint and
//! region from the environment) reach a real server as documented.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const INPUT: &str = concat!(
    r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#,
    "\n",
    r#"{"type":"RECORD","stream":"s","record":{"id":1}}"#,
    "\n",
    r#"{"type":"STATE","value":{"s":1}}"#,
    "\n"
);

/// Runs the binary with `args` in an environment holding only `vars` (plus PATH, and HOME set
/// to an empty folder), so no AWS profile or variable of the machine takes part.
fn run_in(args: &[&str], vars: &[(&str, &str)], home: &Path) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default()).env("HOME", home);
    cmd.envs(vars.iter().copied()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Exit 2, nothing on stdout, and stderr is the one error line, which names `setting`.
fn assert_config_error(r: &Run, setting: &str, needle: &str) {
    assert_eq!(r.code, 2, "{setting}: {}", r.stderr);
    assert!(r.stdout.is_empty(), "{:?}", r.stdout);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", r.stderr);
    assert!(lines[0].starts_with("target-s3: error: ") && lines[0].contains(setting), "{setting}: {}", lines[0]);
    assert!(lines[0].contains(needle), "{needle:?} not in {}", lines[0]);
}

#[test]
fn every_kind_of_bad_setting_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let huge: Value = serde_json::from_str("123456789012345678901234567890").unwrap();
    let cases = [
        (json!({"max_records_per_file": "many"}), "setting `max_records_per_file`", "must be an integer"),
        (json!({"max_records_per_file": -1}), "setting `max_records_per_file`", "non-negative"),
        (json!({"part_size": huge}), "setting `part_size`", "whole number"),
        (json!({"validate_records": "yes"}), "setting `validate_records`", "true or false"),
        (json!({"prefix": 7}), "setting `prefix`", "must be a string, got 7"),
        (json!({"object_tags": "team=data"}), "setting `object_tags`", "JSON object"),
        (json!({"format": "xml"}), "setting `format`", "must be one of jsonl, json, csv, parquet, avro, got \"xml\""),
        (json!({"compression": "GZIP"}), "setting `compression`", "none, gzip, zstd"),
        (json!({"log_level": "bogus"}), "setting `log_level`", "error, warn, info, debug, trace"),
        (json!({"log_format": 1}), "setting `log_format`", "must be a string"),
        (json!({"stream_overrides": {"s": {"format": "xml"}}}), "setting `stream_overrides`", "\"s\": `format`"),
        (json!({"template_variables": {"a": 1}}), "setting `template_variables.a`", "expected a string"),
        (json!({"compression_level": 10}), "setting `compression_level`", "0 to 9"),
        (json!({"bucket": "abc", "max_retries": 4294967296u64}), "setting `max_retries`", "0 to 100"),
        (json!({"bukcet": "abc"}), "setting `bukcet`", "did you mean `bucket`"),
        (json!({"bucket": "abc", "object_tags": {"a&b": "1"}}), "setting `object_tags`", "key \"a&b\": '&'"),
        (json!({"bucket": "abc", "object_tags": {"team": "r&d"}}), "setting `object_tags`", "value of \"team\""),
        (json!({"bucket": "abc", "object_metadata": {"my key": "v"}}), "setting `object_metadata`", "\"my key\""),
    ];
    for (config, setting, needle) in cases {
        let mut config = config;
        config["local_path"] = json!(out);
        let r = run(&config, INPUT);
        assert_config_error(&r, setting, needle);
        assert!(!out.exists(), "nothing is written for {config}");
    }
}

/// Several `--config` files and `ENV`, later sources winning, spellings merged; a bad value
/// names the variable it came from.
#[test]
fn layered_sources_and_env_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(
        &a,
        json!({"local_path": out, "format": "csv", "prefix": "first", "bucket": "gone", "write_manifest": false})
            .to_string(),
    )
    .unwrap();
    std::fs::write(&b, json!({"path_prefix": "second", "s3_bucket": null, "compression": "none"}).to_string()).unwrap();
    let input = dir.path().join("in.singer");
    std::fs::write(&input, INPUT).unwrap();
    let args = ["--config", a.to_str().unwrap(), "--config", b.to_str().unwrap(), "--config", "ENV"];
    let r = run_in(
        &[&args[..], &["--input", input.to_str().unwrap()]].concat(),
        &[("TARGET_S3_FORMAT", "jsonl")],
        dir.path(),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let written = files(&out);
    assert_eq!(written.len(), 1, "{written:?}");
    assert!(written[0].starts_with("second/s/") && written[0].extension().unwrap() == "jsonl", "{written:?}");

    let r = run_in(&args, &[("TARGET_S3_MAX_RECORDS_PER_FILE", "lots")], dir.path());
    assert_config_error(&r, "TARGET_S3_MAX_RECORDS_PER_FILE", "expected a non-negative integer, got \"lots\"");
    let r = run_in(&args, &[("TARGET_S3_PREFIX", "x"), ("TARGET_S3_S3_KEY_PREFIX", "y")], dir.path());
    assert_config_error(&r, "TARGET_S3_S3_KEY_PREFIX", "keep one");
    let r = run_in(&args, &[("TARGET_S3_BUKET", "x")], dir.path());
    assert_config_error(&r, "TARGET_S3_BUKET", "did you mean TARGET_S3_BUCKET");
}

#[test]
fn log_level_flag_takes_only_levels() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, json!({"local_path": dir.path().join("out"), "log_level": "error"}).to_string()).unwrap();
    let r = run_args(&["--config", cfg.to_str().unwrap(), "--log-level", "bogus"], INPUT);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("must be one of error, warn, info, debug, trace, got \"bogus\""), "{}", r.stderr);
    assert!(r.stdout.is_empty() && !dir.path().join("out").exists());
    // a real level overrides the setting
    let r = run_args(&["--config", cfg.to_str().unwrap(), "--log-level", "debug"], INPUT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("DEBUG") || r.stderr.contains("INFO"), "{}", r.stderr);
}

/// A secret of the wrong type, or an endpoint with credentials, never shows up in any output.
#[test]
fn wrong_typed_secrets_and_credentials_in_urls_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let base = json!({"bucket": "abc", "local_path": dir.path().join("out")});
    let cases = [
        ("external_id", json!(987654321012u64)),
        ("aws_external_id", json!(987654321012u64)),
        ("aws_session_token", json!(987654321012u64)),
        ("aws_secret_access_key", json!(["987654321012"])),
        ("aws_access_key_id", json!({"id": "987654321012"})),
    ];
    for (name, value) in cases {
        let mut config = base.clone();
        config[name] = value;
        let r = run(&config, INPUT);
        assert_config_error(&r, name.trim_start_matches("aws_"), "not shown: the setting is secret");
        assert!(!r.stderr.contains("987654321012"), "{}", r.stderr);
    }
    for url in ["ftp://user:hunter2@example.com", "http://user:hunter2@", "user:hunter2@example.com"] {
        let mut config = base.clone();
        config["endpoint_url"] = json!(url);
        let r = run(&config, INPUT);
        assert_config_error(&r, "endpoint_url", "***@");
        assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    }
    let r =
        run_in(&["--config", "ENV"], &[("TARGET_S3_BUCKET", "abc"), ("AWS_ENDPOINT_URL", "s3:hunter2@x")], dir.path());
    assert_config_error(&r, "AWS_ENDPOINT_URL", "must start with http");
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
}

/// An unreachable endpoint with credentials in its URL: the error line and `--check` show it
/// without them.
#[test]
fn failing_endpoint_with_credentials_is_shown_redacted() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = json!({"bucket": "abc", "endpoint_url": format!("http://user:hunter2@{dead}"), "force_path_style": true,
                        "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "SECRETKEY-1", "max_retries": 0});
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let r = run_args(&["--config", cfg.to_str().unwrap(), "--log-level", "warn"], INPUT);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains(&format!("cannot reach http://***@{dead}")), "{last}");
    let check = run_args(&["--config", cfg.to_str().unwrap(), "--check"], "");
    assert_eq!(check.code, 1);
    let shown = format!("{}\n{}", check.stdout.join("\n"), check.stderr);
    assert!(shown.contains(&format!("destination: s3://abc on http://***@{dead} (region us-east-1)")), "{shown}");
    for output in [&r.stderr, &shown] {
        assert!(!output.contains("hunter2") && !output.contains("SECRETKEY-1"), "{output}");
    }
}

/// Every log line too; waits for destination/s3.rs to show `S3Options::endpoint_display`
/// (today its "starting destination=..." line shows the URL as given).
#[test]
fn no_log_line_shows_endpoint_credentials() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = json!({"bucket": "abc", "endpoint_url": format!("http://user:hunter2@{dead}"), "max_retries": 0,
                        "log_level": "trace"});
    let r = run(&config, INPUT);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
}

/// Non-ASCII metadata arrives as the RFC 2047 encoded word S3 itself uses, tags with `=` and
/// letters of any script arrive as they are, on both servers (SeaweedFS checks signatures).
#[test]
fn object_metadata_and_tags_reach_the_server_intact() {
    for s3 in [s3(), s3_weed()] {
        let bucket = s3.bucket("meta");
        let config = s3.config(
            &bucket,
            json!({"object_metadata": {"owner": "Zoë", "Plain": "nightly run #4"},
                   "object_tags": {"a=b": "c=d", "Zoë": "ä/b:c@d+e f"}, "write_manifest": false}),
        );
        let r = run(&config, INPUT);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let (key, _) = s3.list(&bucket).remove(0);
        let head = runtime().block_on(s3.client.head_object().bucket(&bucket).key(&key).send()).unwrap();
        let meta = head.metadata().unwrap();
        assert_eq!(meta["owner"], "=?UTF-8?B?Wm/Dqw==?=");
        assert_eq!(decode_rfc2047(&meta["owner"]), "Zoë");
        assert_eq!(meta["plain"], "nightly run #4");
        let tags = runtime().block_on(s3.client.get_object_tagging().bucket(&bucket).key(&key).send()).unwrap();
        let mut tags: Vec<(String, String)> =
            tags.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        tags.sort();
        assert_eq!(tags, [("Zoë".into(), "ä/b:c@d+e f".into()), ("a=b".into(), "c=d".into())]);
    }
}

/// `=?UTF-8?B?...?=` back to text (the reader's side of docs/s3.md "Encryption and object options").
fn decode_rfc2047(word: &str) -> String {
    let b64 = word.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).expect("an encoded word");
    let value = |c: u8| "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".bytes().position(|a| a == c);
    let bits: Vec<u8> = b64.bytes().filter_map(value).map(|v| v as u8).collect();
    let bytes: Vec<u8> = bits
        .chunks(4)
        .flat_map(|c| {
            let n = c.iter().enumerate().fold(0u32, |n, (i, v)| n | (u32::from(*v) << (18 - 6 * i)));
            (0..c.len() - 1).map(move |i| (n >> (16 - 8 * i)) as u8)
        })
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// `max_bytes_per_file: 0` loads on S3 (no limit of its own) instead of being refused.
#[test]
fn zero_max_bytes_loads_on_s3() {
    let s3 = s3();
    let bucket = s3.bucket("nolimit");
    let r = run(&s3.config(&bucket, json!({"max_bytes_per_file": 0})), INPUT);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, [r#"{"s":1}"#]);
    assert_eq!(s3.list(&bucket).len(), 1);
}

/// With an endpoint (the setting, or `AWS_ENDPOINT_URL`) and no region anywhere, the run asks
/// no EC2 metadata service, and `--check` names the endpoint really used.
#[test]
fn endpoint_without_region_asks_no_metadata_service() {
    let s3 = s3();
    let bucket = s3.bucket("noregion");
    let home = tempfile::tempdir().unwrap();
    let mut config = s3.config(&bucket, json!({"log_level": "debug"}));
    config.as_object_mut().unwrap().remove("region");
    let cfg = home.path().join("c.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let input = home.path().join("in.singer");
    std::fs::write(&input, INPUT).unwrap();
    let started = Instant::now();
    let r = run_in(&["--config", cfg.to_str().unwrap(), "--input", input.to_str().unwrap()], &[], home.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(!r.stderr.contains("IMDS") && !r.stderr.contains("169.254.169.254"), "{}", r.stderr);

    config.as_object_mut().unwrap().remove("endpoint_url");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let vars = [("AWS_ENDPOINT_URL", s3.endpoint.as_str())];
    let r = run_in(&["--config", cfg.to_str().unwrap(), "--check"], &vars, home.path());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let want = format!("ok      destination: s3://{bucket} on {} (region us-east-1)", s3.endpoint);
    assert_eq!(r.stdout[0], want, "{:?}", r.stdout);
    assert!(!r.stdout.join("\n").contains("AWS S3"), "{:?}", r.stdout);
    assert!(!r.stderr.contains("IMDS"), "{}", r.stderr);
}
