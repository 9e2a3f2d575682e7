//! Hostile and broken input: every case has a defined outcome (loaded, or one clear error naming
//! the line), never a crash, a hang or a silent drop. docs/guarantees.md and docs/formats.md list them.

mod common;

use common::*;
use serde_json::{Value, json};

const SCHEMA: &str = r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"},"v":{}}},"key_properties":["id"]}"#;

fn cfg(dir: &std::path::Path) -> Value {
    json!({"local_path": dir, "log_level": "warn", "compression": "none", "write_manifest": false})
}

fn fails_at(input: &[u8], line: u64, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let r = run_bytes(&cfg(dir.path()), input);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(last.contains(&format!("line {line}")) && last.contains(what), "{last}");
    assert!(r.stdout.is_empty());
    // Records before the bad line are kept (as if the input had ended there), nothing else,
    // and no temporary file.
    for file in all_files(dir.path()) {
        assert!(!file.file_name().unwrap().to_str().unwrap().starts_with('.'), "{file:?}");
        let text = String::from_utf8(read(&dir.path().join(&file))).unwrap();
        assert!(text.lines().all(|l| l == r#"{"id":1,"v":"ok"}"#), "{file:?}: {text}");
    }
}

#[test]
fn a_50_mib_record_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let big = "é".repeat(25 * 1024 * 1024);
    let input = format!("{SCHEMA}\n{{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{{\"id\":1,\"v\":\"{big}\"}}}}\n");
    let r = run_bytes(&cfg(dir.path()), input.as_bytes());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let f = files(dir.path());
    assert_eq!(read(&dir.path().join(&f[0])).len(), 50 * 1024 * 1024 + "{\"id\":1,\"v\":\"\"}\n".len());
}

#[test]
fn deep_nesting_is_a_clear_error() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let input = format!("{SCHEMA}\n{{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{{\"id\":1,\"v\":{deep}}}}}\n");
    fails_at(input.as_bytes(), 2, "deeper than 127 levels");
}

#[test]
fn invalid_utf8_nul_and_truncation_name_the_line() {
    let rec = |v: &str| format!("{{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{{\"id\":1,\"v\":\"{v}\"}}}}");
    let mut bad_utf8 = format!("{SCHEMA}\n{}\n", rec("ok")).into_bytes();
    bad_utf8.extend_from_slice(b"{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{\"id\":2,\"v\":\"\xff\xfe\"}}\n");
    fails_at(&bad_utf8, 3, "invalid UTF-8");
    fails_at(format!("{SCHEMA}\n{}\n", rec("a\u{0}b")).as_bytes(), 2, "control character");
    fails_at(format!("{SCHEMA}\n{}\n{{\"type\":\"REC", rec("ok")).as_bytes(), 3, "malformed JSON");
}

#[test]
fn escaped_nul_and_a_last_line_without_newline_are_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!(
        "{SCHEMA}\n{}\n{}",
        r#"{"type":"RECORD","stream":"s","record":{"id":1,"v":"a\u0000b"}}"#,
        r#"{"type":"RECORD","stream":"s","record":{"id":2}}"#
    );
    let r = run_bytes(&cfg(dir.path()), input.as_bytes());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let f = files(dir.path());
    assert_eq!(read(&dir.path().join(&f[0])), b"{\"id\":1,\"v\":\"a\\u0000b\"}\n{\"id\":2}\n");
}

#[test]
fn secrets_never_reach_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let secrets = ["SECRETKEY-do-not-print-1", "SESSIONTOKEN-do-not-print-2", "EXTERNALID-do-not-print-3"];
    let config = json!({
        "bucket": "some-bucket", "endpoint_url": format!("http://{dead}"), "force_path_style": true,
        "aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": secrets[0], "aws_session_token": secrets[1],
        "role_arn": "arn:aws:iam::123456789012:role/x", "external_id": secrets[2],
        "max_retries": 0, "log_level": "trace", "local_path": dir.path(),
    });
    let r = run(&config, &format!("{SCHEMA}\n{}\n", r#"{"type":"RECORD","stream":"s","record":{"id":1}}"#));
    assert_eq!(r.code, 1);
    let about = run_args(&["--about", "--format", "json"], "");
    // and a successful run against a real server, assuming a role, at the most verbose level
    let s3 = s3();
    let bucket = s3.bucket("secrets");
    let mut ok_config =
        s3.config(&bucket, json!({"log_level": "trace", "role_arn": "arn:aws:iam::123456789012:role/x"}));
    ok_config["aws_secret_access_key"] = json!(secrets[0]);
    ok_config["aws_session_token"] = json!(secrets[1]);
    ok_config["external_id"] = json!(secrets[2]);
    let ok = run(&ok_config, &format!("{SCHEMA}\n{}\n", r#"{"type":"RECORD","stream":"s","record":{"id":1}}"#));
    assert_eq!(ok.code, 0, "{}", ok.stderr.lines().last().unwrap_or_default());
    assert!(ok.stderr.contains("DEBUG"), "verbose logging was on");
    for output in [&r.stderr, &r.stdout.join("\n"), &about.stdout.join("\n"), &ok.stderr] {
        for secret in secrets {
            assert!(!output.contains(secret), "secret {secret} leaked");
        }
    }
}

#[test]
fn a_local_path_that_cannot_be_a_folder_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let r = run(
        &cfg(&blocker.join("out")),
        &format!("{SCHEMA}\n{}\n", r#"{"type":"RECORD","stream":"s","record":{"id":1}}"#),
    );
    assert_eq!(r.code, 1);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains("cannot create folder") && last.contains("file/out"), "{last}");
    assert!(r.stdout.is_empty());
}

/// A file system that fills up: a clear error, no STATE, no file under its final name.
#[test]
fn disk_full_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount.to_str().unwrap()])
        .status()
        .expect("mount");
    assert!(status.success(), "this test needs to mount a 1 MiB tmpfs (root)");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mount.clone());
    let mut input = format!("{SCHEMA}\n");
    let pad = "y".repeat(1000);
    for i in 0..5000 {
        input
            .push_str(&format!("{{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{{\"id\":{i},\"v\":\"{pad}\"}}}}\n"));
        if i == 10 {
            input.push_str("{\"type\":\"STATE\",\"value\":{\"n\":10}}\n");
        }
    }
    let r = run(&cfg(&mount), &input);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains("No space left on device"), "{last}");
    assert!(r.stdout.is_empty(), "no STATE: {:?}", r.stdout);
    assert!(all_files(&mount).is_empty(), "no file left: {:?}", all_files(&mount));
}

/// A bug (a panic) on any thread still ends the run like every failure: one `target-s3: error:`
/// line, exit 1 (not 101, not an abort), no STATE. Debug builds inject one on request.
#[test]
fn a_panic_on_any_thread_is_one_error_line_and_exit_1() {
    for thread in ["decode", "writer", "compress"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.json");
        // gzip on 2 workers: its members are compressed on the pool's threads ("compress").
        let config = serde_json::json!({"local_path": dir.path().join("out"), "compression": "gzip", "workers": 2});
        std::fs::write(&cfg, config.to_string()).unwrap();
        let out = std::process::Command::new(common::BIN)
            .args([
                "--config",
                cfg.to_str().unwrap(),
                "--input",
                concat!(env!("CARGO_MANIFEST_DIR"), "/sample_streams/sample.singer"),
            ])
            .env("TARGET_S3_DEBUG_PANIC", thread)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{thread}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap();
        assert!(
            last.starts_with("target-s3: error: internal error") && last.contains("injected"),
            "{thread}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{thread}: no STATE");
        let left = common::files(&dir.path().join("out"));
        if thread == "compress" {
            // Mid-file, as after SIGKILL: the hook ends the process at once (nothing printed past
            // the bug), so a file being written stays as its hidden temporary file, never an object.
            assert!(left.iter().all(|p| p.file_name().unwrap().to_str().unwrap().starts_with(".t3-")), "{left:?}");
        } else {
            assert!(left.iter().all(|p| !p.to_str().unwrap().contains(".tmp")), "{thread}: {left:?}");
        }
    }
}

/// A record naming one member twice is refused while validating (naming the line and the
/// member): it would be checked on one value and written with both.
#[test]
fn duplicate_member_names_are_refused_while_validating() {
    let input = [
        r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"k":{"type":"string","enum":["b"]}}},"key_properties":[]}"#,
        r#"{"type":"RECORD","stream":"s","record":{"k":"a","k":"b"}}"#,
    ]
    .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let r = common::run(&serde_json::json!({"local_path": dir.path()}), &input);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains("line 2") && last.contains("\"s\"") && last.contains("\"k\" appears twice"), "{last}");
    // Placed in the record, not as a "line 1" that reads as the input's first line.
    assert!(last.contains("(column 17 of the record)") && !last.contains("line 1"), "{last}");
    assert!(common::files(dir.path()).is_empty());
}
