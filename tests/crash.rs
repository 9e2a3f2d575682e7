//! Crash consistency: target-s3 is killed with SIGKILL at random moments of a long multi-stream
//! run. After every kill, each STATE it had printed must be covered by objects in the bucket;
//! a rerun from the last printed STATE must then leave every record in the bucket (duplicates
//! are allowed by at-least-once delivery; they are counted and reported).
//!
//! A kill proves something only when it hits a running process that has printed a STATE: each
//! kill waits for the first STATE line, lands at a random moment of the rest of the run (whose
//! length a first, unkilled run measures), and counts as effective only when the process died
//! of the SIGKILL. The test fails unless more than 60% of the kills were effective.
//!
//! `CRASH_ITERATIONS` sets the number of kills (default 10 in the test suite; 50 or more for a
//! manual run: `CRASH_ITERATIONS=50 cargo test --test crash -- --nocapture`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const STREAMS: [&str; 3] = ["alpha", "beta", "gamma"];
const RECORDS: usize = 40_000;
/// How long a run may take to print its first STATE before the test gives up on it.
const FIRST_STATE_TIMEOUT: Duration = Duration::from_secs(60);
const SIGKILL: i32 = 9;

/// The exact text of record `n`, as the tap sends it (and as JSONL objects must hold it).
fn record_text(n: u64) -> String {
    format!(r#"{{"n":{n},"t":"some text for record {n}"}}"#)
}

/// Records carry their global index `n`; STATE values say how many records came before them.
fn input() -> Vec<String> {
    let mut lines: Vec<String> = STREAMS
        .iter()
        .map(|s| format!(r#"{{"type":"SCHEMA","stream":"{s}","schema":{{"properties":{{"n":{{"type":"integer"}},"t":{{"type":"string"}}}}}},"key_properties":["n"]}}"#))
        .collect();
    for n in 0..RECORDS {
        let s = STREAMS[(n * 7 + n / 13) % 3];
        lines.push(format!(r#"{{"type":"RECORD","stream":"{s}","record":{}}}"#, record_text(n as u64)));
        if n % 500 == 499 {
            lines.push(format!(r#"{{"type":"STATE","value":{{"done":{}}}}}"#, n + 1));
        }
    }
    lines
}

/// How many times each record index is in the bucket. Every line of every object must be one
/// whole record, byte for byte as the input sent it.
fn present(s3: &S3Server, bucket: &str) -> BTreeMap<u64, u32> {
    let mut seen = BTreeMap::new();
    for (key, _) in s3.list(bucket) {
        for line in String::from_utf8(s3.get(bucket, &key)).unwrap().lines() {
            let v: Value = serde_json::from_str(line).expect("objects hold whole records");
            let n = v["n"].as_u64().unwrap();
            assert_eq!(line, record_text(n), "{key} holds a record that is not the input's");
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    seen
}

/// What one run of the target printed and how it ended.
struct Outcome {
    /// Every STATE line it printed, in order.
    printed: Vec<String>,
    /// It died of the SIGKILL (so it was running when the kill came).
    killed: bool,
    /// From its first STATE line to its end.
    after_first_state: Duration,
}

/// Runs the target on `input`; once it has printed its first STATE, waits `kill_after` and
/// sends SIGKILL (or, with `None`, lets it finish).
fn run_until_killed(config: &Path, input: &Path, log: &Path, kill_after: Option<Duration>) -> Outcome {
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "--input", input.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = match lines.recv_timeout(FIRST_STATE_TIMEOUT) {
        Ok(line) => line,
        Err(e) => {
            let _ = child.kill();
            let status = child.wait().unwrap();
            panic!(
                "no STATE line within {FIRST_STATE_TIMEOUT:?} ({e:?}, {status}); stderr:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    };
    let first_at = Instant::now();
    if let Some(delay) = kill_after {
        // only picks the kill's moment: whether it hit a running process is read from the exit status
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; does nothing if the process has already exited
    }
    let status = child.wait().unwrap();
    let after_first_state = first_at.elapsed();
    let mut printed = vec![first];
    printed.extend(lines.iter()); // ends when the reader has seen the end of stdout
    if kill_after.is_none() {
        assert!(status.success(), "{status}: {}", std::fs::read_to_string(log).unwrap_or_default());
    }
    Outcome { printed, killed: status.signal() == Some(SIGKILL), after_first_state }
}

#[test]
fn sigkill_never_breaks_printed_state() {
    let iterations: u64 = std::env::var("CRASH_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let s3 = s3();
    let lines = input();
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("input.singer");
    std::fs::write(&input_path, lines.join("\n") + "\n").unwrap();
    let cfg = dir.path().join("c.json");
    let log = dir.path().join("stderr.log");
    let config_for = |bucket: &str| {
        let config =
            s3.config(bucket, json!({"max_records_per_file": 1000, "max_retries": 1, "write_manifest": false}));
        std::fs::write(&cfg, config.to_string()).unwrap();
        config
    };

    // An unkilled run measures how long a run goes on after its first STATE: the kills land
    // at random moments of that window.
    config_for(&s3.bucket("crash-measure"));
    let whole = run_until_killed(&cfg, &input_path, &log, None);
    assert_eq!(whole.printed.last().map(String::as_str), Some(r#"{"done":40000}"#), "{:?}", whole.printed);
    let mut window = whole.after_first_state * 3 / 4;
    eprintln!("an unkilled run goes on {:?} after its first STATE", whole.after_first_state);

    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let (mut total_duplicates, mut effective) = (0, 0);
    for iteration in 0..iterations {
        let bucket = s3.bucket(&format!("crash{iteration}"));
        let config = config_for(&bucket);
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = Duration::from_micros(rng % (window.as_micros() as u64).max(1));
        let outcome = run_until_killed(&cfg, &input_path, &log, Some(delay));
        let printed = &outcome.printed;
        if outcome.killed {
            effective += 1;
        } else {
            // it finished before the kill: aim earlier from now on
            window = window.min(outcome.after_first_state * 3 / 4);
        }

        // every printed STATE is a STATE of the input, in input order, covered by objects that exist
        let dones: Vec<u64> = printed
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["done"].as_u64().expect("a STATE of the input"))
            .collect();
        assert!(dones.windows(2).all(|w| w[0] < w[1]), "iteration {iteration}: STATEs out of order: {dones:?}");
        let done = *dones.last().unwrap();
        let seen = present(s3, &bucket);
        for n in 0..done {
            assert!(seen.contains_key(&n), "iteration {iteration}: STATE said {done} but record {n} is missing");
        }

        // a rerun from the last printed STATE completes the data
        let state = printed.last().unwrap();
        let resume_at = lines.iter().position(|l| l.ends_with(&format!(r#""value":{state}}}"#))).unwrap() + 1;
        let rest: Vec<&str> = lines[..STREAMS.len()].iter().chain(&lines[resume_at..]).map(String::as_str).collect();
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
            "iteration {iteration}: kill {delay:?} after the first STATE {}, {} STATE lines (done={done}), {duplicates} duplicates after rerun",
            if outcome.killed { "hit the running process" } else { "came after it had exited (not counted)" },
            printed.len()
        );
    }
    eprintln!(
        "{effective} of {iterations} kills hit a running process after its first STATE; no record lost; \
         {total_duplicates} duplicates in total (at-least-once)"
    );
    assert!(
        effective * 5 > iterations * 3,
        "only {effective} of {iterations} kills hit a running process that had printed a STATE (need more than 60%)"
    );
}
