//! Crash consistency: target-s3 is killed with SIGKILL at random moments of a long multi-stream
//! run. After every kill, each STATE it had printed must be covered by objects in the bucket;
//! a rerun from the last printed STATE must then leave every record in the bucket (duplicates
//! are allowed by at-least-once delivery; they are counted and reported).
//!
//! `CRASH_ITERATIONS` sets the number of kills (default 10 in the test suite; 50 or more for a
//! manual run: `CRASH_ITERATIONS=50 cargo test --test crash -- --nocapture`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const STREAMS: [&str; 3] = ["alpha", "beta", "gamma"];
const RECORDS: usize = 40_000;

/// Records carry their global index `n`; STATE values say how many records came before them.
fn input() -> Vec<String> {
    let mut lines: Vec<String> = STREAMS
        .iter()
        .map(|s| format!(r#"{{"type":"SCHEMA","stream":"{s}","schema":{{"properties":{{"n":{{"type":"integer"}},"t":{{"type":"string"}}}}}},"key_properties":["n"]}}"#))
        .collect();
    for n in 0..RECORDS {
        let s = STREAMS[(n * 7 + n / 13) % 3];
        lines
            .push(format!(r#"{{"type":"RECORD","stream":"{s}","record":{{"n":{n},"t":"some text for record {n}"}}}}"#));
        if n % 500 == 499 {
            lines.push(format!(r#"{{"type":"STATE","value":{{"done":{}}}}}"#, n + 1));
        }
    }
    lines
}

/// How many times each record index is in the bucket.
fn present(s3: &S3Server, bucket: &str) -> BTreeMap<u64, u32> {
    let mut seen = BTreeMap::new();
    for (key, _) in s3.list(bucket) {
        for line in String::from_utf8(s3.get(bucket, &key)).unwrap().lines() {
            let v: Value = serde_json::from_str(line).expect("objects hold whole records");
            *seen.entry(v["n"].as_u64().unwrap()).or_insert(0) += 1;
        }
    }
    seen
}

#[test]
fn sigkill_never_breaks_printed_state() {
    let iterations: u64 = std::env::var("CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let s3 = s3();
    let lines = input();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut total_duplicates = 0;
    for iteration in 0..iterations {
        let bucket = s3.bucket(&format!("crash{iteration}"));
        let config =
            s3.config(&bucket, json!({"max_records_per_file": 1000, "max_retries": 1, "write_manifest": false}));
        let cfg = dir.path().join("c.json");
        std::fs::write(&cfg, config.to_string()).unwrap();
        let input_path = dir.path().join("input.singer");
        std::fs::write(&input_path, lines.join("\n") + "\n").unwrap();

        let mut child = Command::new(BIN)
            .args(["--config", cfg.to_str().unwrap(), "--input", input_path.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader =
            std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>());
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(30 + rng % 1500));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let printed = reader.join().unwrap();

        // every printed STATE is covered by objects that exist
        let done = printed.last().map_or(0, |l| serde_json::from_str::<Value>(l).unwrap()["done"].as_u64().unwrap());
        let seen = present(s3, &bucket);
        for n in 0..done {
            assert!(seen.contains_key(&n), "iteration {iteration}: STATE said {done} but record {n} is missing");
        }

        // a rerun from the last printed STATE completes the data
        let resume_at = match printed.last() {
            Some(state) => lines.iter().position(|l| l.contains(state.as_str())).unwrap() + 1,
            None => 0,
        };
        let rest: Vec<&str> =
            lines[..STREAMS.len()].iter().chain(&lines[resume_at.max(STREAMS.len())..]).map(String::as_str).collect();
        let rerun = run(&config, &(rest.join("\n") + "\n"));
        assert_eq!(rerun.code, 0, "iteration {iteration}: rerun failed: {}", rerun.stderr);
        let seen = present(s3, &bucket);
        let missing: Vec<u64> = (0..RECORDS as u64).filter(|n| !seen.contains_key(n)).collect();
        assert!(
            missing.is_empty(),
            "iteration {iteration}: {} records lost, first {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        let duplicates: u32 = seen.values().map(|c| c - 1).sum();
        total_duplicates += duplicates;
        eprintln!(
            "iteration {iteration}: killed after {} STATE lines (done={done}), {duplicates} duplicates after rerun",
            printed.len()
        );
    }
    eprintln!("{iterations} kills: no record lost; {total_duplicates} duplicates in total (at-least-once)");
}
