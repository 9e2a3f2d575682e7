//! `workers`: records checked on worker threads, ahead of the decode thread, change nothing a
//! user can see. Generated inputs (streams whose SCHEMA changes mid-input so that earlier
//! verdicts no longer hold, records that break their schema, STATEs, dead-letter or not, a
//! malformed line), read in small blocks (debug builds' `TARGET_S3_DEBUG_BLOCK_BYTES`) so they
//! cross many block boundaries, handed to the writer in small chunks (`TARGET_S3_DEBUG_CHUNK_BYTES`:
//! gzip files of many members, compressed on as many threads as workers), with 2 to 8 workers:
//! the bytes of every file, the STATE lines, the exit code and the error line are those of a
//! run with one worker (which compresses on the writer thread alone).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::json;

#[derive(Debug, Clone)]
enum Line {
    /// A record of stream 0..3 with this value for `v` (an integer; text breaks schema 0).
    Record(u8, bool),
    /// Stream n's SCHEMA flips between `v` integer (0) and `v` string (1).
    Schema(u8),
    State,
    /// Not JSON: stops the run.
    Malformed,
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        200 => (0u8..3, proptest::bool::weighted(0.05)).prop_map(|(s, t)| Line::Record(s, t)),
        10 => (0u8..3).prop_map(Line::Schema),
        30 => Just(Line::State),
    ]
}

fn schema(stream: u8, text: bool) -> String {
    let v = if text { "string" } else { "integer" };
    json!({"type": "SCHEMA", "stream": format!("s{stream}"), "key_properties": ["id"], "bookmark_properties": ["id"],
           "schema": {"type": "object", "properties": {"id": {"type": "integer"}, "v": {"type": v}, "pad": {"type": "string"},
               // Null elements load and are counted (the manifest's `null_items`).
               "tags": {"type": "array", "items": {"type": "integer"}}}}})
    .to_string()
}

fn input(lines: &[Line]) -> String {
    let mut text: String = (0..3).map(|s| schema(s, false) + "\n").collect();
    let mut as_text = [false; 3];
    for (n, line) in lines.iter().enumerate() {
        let one = match line {
            Line::Record(s, t) => {
                let v = if *t { json!(format!("t{n}")) } else { json!(n) };
                let tags = if n % 4 == 0 { json!([1, null]) } else { json!([n]) };
                let mut record = json!({"type": "RECORD", "stream": format!("s{s}"), "record": {"id": n, "v": v, "pad": "x".repeat(n % 90), "tags": tags}});
                if n % 3 == 0 {
                    record["time_extracted"] = json!(format!("2026-01-01T00:00:0{}Z", n % 10));
                    record["version"] = json!(n % 5);
                }
                // A stream name with an escape: decoded into a name of its own, not a slice.
                let text = record.to_string();
                if n % 7 == 0 {
                    text.replacen(&format!(r#""stream":"s{s}""#), &format!(r#""stream":"s\u003{s}""#), 1)
                } else {
                    text
                }
            }
            Line::Schema(s) => {
                as_text[*s as usize] = !as_text[*s as usize];
                schema(*s, as_text[*s as usize])
            }
            Line::State => json!({"type": "STATE", "value": {"at": n}}).to_string(),
            Line::Malformed => r#"{"type":"RECORD","stream":"s0","record":{"id":"#.to_string(),
        };
        text.push_str(&one);
        text.push('\n');
    }
    text
}

/// What a user sees of one run: exit code, STATE lines, last stderr line, every file's bytes.
type Seen = (i32, Vec<String>, String, BTreeMap<String, Vec<u8>>);

fn run(config: &serde_json::Value, input: &str, workers: usize, (block, chunk): (usize, usize), dir: &Path) -> Seen {
    let root = dir.join(format!("out-{workers}"));
    let mut config = config.clone();
    config["local_path"] = json!(root);
    config["workers"] = json!(workers);
    let path = dir.join(format!("config-{workers}.json"));
    std::fs::write(&path, config.to_string()).unwrap();
    let input_path = dir.join("input.singer");
    std::fs::write(&input_path, input).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_target-s3"))
        .args(["--config", path.to_str().unwrap(), "--input", input_path.to_str().unwrap()])
        .env("TARGET_S3_DEBUG_BLOCK_BYTES", block.to_string())
        .env("TARGET_S3_DEBUG_CHUNK_BYTES", chunk.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The run's manifest (its name and times are the clock's): every object with its records,
    // bytes, checksum and cursor range, compared as JSON.
    let files = common::all_files(&root).into_iter().map(|f| {
        let bytes = std::fs::read(root.join(&f)).unwrap();
        if f.starts_with("_manifests") {
            let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            for time in ["started_at", "finished_at"] {
                manifest.as_object_mut().unwrap().remove(time);
            }
            // An Avro file's checksum covers its random sync marker (compared without it below).
            for object in manifest["objects"].as_array_mut().unwrap() {
                if object["format"] == "avro" {
                    object.as_object_mut().unwrap().remove("crc32");
                }
            }
            return ("manifest".to_string(), manifest.to_string().into_bytes());
        }
        (f.display().to_string(), without_sync_marker(bytes))
    });
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect(),
        stderr.lines().last().unwrap_or_default().to_string(),
        files.collect(),
    )
}

/// An Avro file with its sync marker (16 random bytes per file, ending the header and every
/// block, so the file's last 16 bytes) zeroed: the rest must be the same from run to run.
fn without_sync_marker(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(b"Obj\x01") && bytes.len() >= 20 {
        let marker: [u8; 16] = bytes[bytes.len() - 16..].try_into().unwrap();
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(16).position(|w| w == marker) {
            bytes[at + i..at + i + 16].fill(0);
            at += i + 16;
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_number_of_workers_writes_what_one_does(
        mut lines in proptest::collection::vec(line(), 1..1500),
        malformed in proptest::option::weighted(0.2, 0usize..1500),
        workers in 2usize..=8,
        block in 64usize..4096,
        chunk in prop_oneof![Just(512 * 1024), 1usize..2048],
        format in prop_oneof![Just("jsonl"), Just("csv"), Just("parquet"), Just("avro")],
        compression in prop_oneof![Just("none"), Just("gzip")],
        dead_letter in any::<bool>(),
        max_records in 1u64..200,
        versioned in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut config = json!({
            "format": format,
            "compression": compression,
            "run_id": "fixed",
            "key_template": "{stream}/{run_id}-{part}.{extension}",
            "max_records_per_file": max_records,
            "log_level": "error",
            "write_manifest": true,
        });
        if versioned {
            // Records' `version`s (read back from where a worker found them) name their files.
            config["key_template"] = json!("{stream}/v{table_version}/{run_id}-{part}.{extension}");
        }
        if dead_letter {
            config["invalid_records"] = json!("dead_letter");
            config["dead_letter_key_template"] = json!("_rejected/{stream}/{run_id}-{part}.{extension}");
        }
        if let Some(at) = malformed {
            lines.insert(at.min(lines.len()), Line::Malformed);
        }
        let input = input(&lines);
        let one = run(&config, &input, 1, (block, chunk), dir.path());
        let many = run(&config, &input, workers, (block, chunk), dir.path());
        prop_assert!(one.0 == 0 || one.2.contains("input line"), "the reference run read the input: {}", one.2);
        prop_assert_eq!(&one.0, &many.0, "exit code");
        // Which STATEs are printed on the way depends on when files become durable (the
        // writer's timing, with one worker too); the last one, and their order, do not.
        prop_assert_eq!(one.1.last(), many.1.last(), "the last STATE line");
        let states: Vec<String> = input.lines().filter(|l| l.contains(r#""type": "STATE""#) || l.contains(r#""type":"STATE""#))
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["value"].to_string()).collect();
        let mut rest = states.iter();
        prop_assert!(many.1.iter().all(|s| rest.any(|x| x == s)), "STATE lines in input order, each once: {:?}", many.1);
        prop_assert_eq!(&one.2, &many.2, "last stderr line");
        prop_assert_eq!(one.3.keys().collect::<Vec<_>>(), many.3.keys().collect::<Vec<_>>(), "file names");
        for (name, bytes) in &one.3 {
            prop_assert!(bytes == &many.3[name], "file {} differs: {} vs {}", name, String::from_utf8_lossy(bytes), String::from_utf8_lossy(&many.3[name]));
        }
    }
}
