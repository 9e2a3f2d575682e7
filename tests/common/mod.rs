//! Helpers shared by the end-to-end tests: they run the real binary on real input and look at
//! what a user would look at (files, stdout STATE lines, exit code, stderr).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_target-s3");

pub struct Run {
    pub code: i32,
    pub stdout: Vec<String>,
    pub stderr: String,
}

/// Runs target-s3 with `config` (JSON) on `input` fed through stdin.
pub fn run(config: &serde_json::Value, input: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    run_args(&["--config", cfg.to_str().unwrap()], input)
}

pub fn run_args(args: &[&str], input: &str) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every file under `root` (relative paths, sorted), hidden temporary files included so tests
/// can assert there are none.
pub fn files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// File contents, gunzipped when the name ends in `.gz`.
pub fn read(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap();
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).unwrap();
        out
    } else {
        raw
    }
}

/// The raw record text of every RECORD line of `input` for `stream`, in order.
pub fn records_of(input: &str, stream: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        stream: Option<String>,
        #[serde(borrow, default)]
        record: Option<&'a serde_json::value::RawValue>,
    }
    input
        .lines()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .filter(|l| l.kind == "RECORD" && l.stream.as_deref() == Some(stream))
        .map(|l| l.record.unwrap().get().to_string())
        .collect()
}

/// The `value` of every STATE line of `input`, as compact JSON.
pub fn states_of(input: &str) -> Vec<serde_json::Value> {
    input
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "STATE")
        .map(|v| v["value"].clone())
        .collect()
}

pub fn sample() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sample_streams/sample.singer")).unwrap()
}
