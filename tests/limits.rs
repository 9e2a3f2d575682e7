//! The documented limits hold on every path: a line's memory stays near `max_line_bytes` on
//! stdin, `--input` and BATCH files; the nesting limit holds for every message whatever the
//! validation setting; a member named twice is read one way everywhere; dead-letter entries
//! never share the data's key template.

mod common;

use std::process::{Command, Stdio};

use proptest::prelude::*;
use serde_json::json;

const SCHEMA: &str = r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"c":{"type":["string","null"]},"n":{"type":["array","object","null"]}}},"key_properties":[]}"#;

/// Runs the binary under an address-space limit (KiB), input from `stdin_file` or nothing.
fn run_limited(limit_kib: u64, args: &[&str], stdin_file: Option<&std::path::Path>) -> common::Run {
    let mut script = format!("ulimit -v {limit_kib}; exec \"$0\"");
    for (i, _) in args.iter().enumerate() {
        script.push_str(&format!(" \"${}\"", i + 1));
    }
    let stdin = match stdin_file {
        Some(path) => Stdio::from(std::fs::File::open(path).unwrap()),
        None => Stdio::null(),
    };
    let out = Command::new("bash").arg("-c").arg(script).arg(common::BIN).args(args).stdin(stdin).output().unwrap();
    common::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A line past the default 256 MiB cap, on each input path, under a 1 GB address space (the
/// process itself reserves several hundred MB of it): one clean error line naming the line,
/// never an allocation abort. Before, a BATCH file's line buffer doubled to 512 MiB on its way
/// to the cap and aborted under 1.5 GB.
#[test]
fn a_line_over_the_cap_fails_cleanly_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, json!({"local_path": dir.path().join("out")}).to_string()).unwrap();
    let big = dir.path().join("big.singer");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        writeln!(f, "{SCHEMA}").unwrap();
        write!(f, r#"{{"type":"RECORD","stream":"s","record":{{"c":""#).unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..300 {
            f.write_all(&chunk).unwrap();
        }
        writeln!(f, r#""}}}}"#).unwrap();
    }
    let batch = dir.path().join("batch.singer");
    let manifest = json!({"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl", "compression": "none"}, "manifest": ["file:///dev/zero"]});
    std::fs::write(&batch, format!("{SCHEMA}\n{manifest}\n")).unwrap();
    let config = config.to_str().unwrap();
    let cases = [
        (
            "stdin",
            run_limited(1_000_000, &["--config", config], Some(&big)),
            "input line 2 is longer than max_line_bytes",
        ),
        (
            "--input",
            run_limited(1_000_000, &["--config", config, "--input", big.to_str().unwrap()], None),
            "input line 2 is longer than max_line_bytes",
        ),
        (
            "BATCH",
            run_limited(1_000_000, &["--config", config, "--input", batch.to_str().unwrap()], None),
            "file:///dev/zero line 1: longer than max_line_bytes",
        ),
    ];
    for (path, run, needle) in cases {
        assert_eq!(run.code, 1, "{path}: {}", run.stderr);
        let last = run.stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("target-s3: error: ") && last.contains(needle), "{path}: {last}");
    }
}

#[test]
fn dead_letter_files_never_share_the_data_template() {
    let run = common::run(
        &json!({"invalid_records": "dead_letter", "key_template": "{stream}/{run_id}-{part}.{extension}",
                "dead_letter_key_template": "{stream}/{run_id}-{part}.{extension}"}),
        "",
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("setting `dead_letter_key_template`"), "{}", run.stderr);
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

#[derive(Debug, Clone)]
struct Case {
    /// Nesting of the STATE value and of the record's `n` (levels, counting the record itself).
    state_depth: usize,
    record_depth: usize,
    duplicate: bool,
    validate: bool,
    path: u8,
}

fn case() -> impl Strategy<Value = Case> {
    (120usize..136, 120usize..136, any::<bool>(), any::<bool>(), 0u8..3).prop_map(
        |(state_depth, record_depth, duplicate, validate, path)| Case {
            state_depth,
            record_depth,
            duplicate,
            validate,
            path,
        },
    )
}

/// One record and one STATE; the record as its text (n nested so the record is `depth` deep).
fn record_text(case: &Case) -> String {
    let n = nested(case.record_depth - 1);
    if case.duplicate {
        format!(r#"{{"c":"first","n":{n},"c":"second"}}"#)
    } else {
        format!(r#"{{"c":"first","n":{n}}}"#)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Either the load is the same in every format (the first of two equal member names, in
    /// the key and the column), or there is one clean error line.
    #[test]
    fn loads_agree_or_fail_cleanly(case in case()) {
        let dir = tempfile::tempdir().unwrap();
        let record = record_text(&case);
        let state = format!(r#"{{"type":"STATE","value":{}}}"#, nested(case.state_depth));
        let mut outcomes = Vec::new();
        for format in ["jsonl", "parquet"] {
            let root = dir.path().join(format);
            let batch_file = dir.path().join(format!("{format}.jsonl"));
            std::fs::write(&batch_file, format!("{record}\n")).unwrap();
            let body = match case.path {
                2 => json!({"type": "BATCH", "stream": "s", "encoding": {"format": "jsonl", "compression": "none"},
                            "manifest": [format!("file://{}", batch_file.display())]}).to_string(),
                _ => format!(r#"{{"type":"RECORD","stream":"s","record":{record}}}"#),
            };
            let input = format!("{SCHEMA}\n{body}\n{state}\n");
            let config = json!({"local_path": root, "format": format, "compression": "none", "validate_records": case.validate,
                                "nested_as_json": true, "key_template": "c={record.c}/{stream}-{run_id}-{part}.{extension}"});
            let run = if case.path == 1 {
                let file = dir.path().join(format!("{format}.singer"));
                std::fs::write(&file, &input).unwrap();
                let cfg = dir.path().join(format!("{format}.json"));
                std::fs::write(&cfg, config.to_string()).unwrap();
                common::run_args(&["--config", cfg.to_str().unwrap(), "--input", file.to_str().unwrap()], "")
            } else {
                common::run(&config, &input)
            };
            let too_deep = case.state_depth > 127 || case.record_depth > 127;
            let refused_duplicate = case.duplicate && case.validate;
            if too_deep || refused_duplicate {
                prop_assert_eq!(run.code, 1, "{:?} {}: {}", case, format, run.stderr);
                let last = run.stderr.lines().last().unwrap_or_default();
                prop_assert!(last.starts_with("target-s3: error: input line "), "{}", last);
                // The nesting limit is named as such, validation on or off (never a schema
                // violation that dead letters would take).
                if case.record_depth > 127 {
                    prop_assert!(last.contains("deeper than 127 levels"), "{}", last);
                }
                outcomes.push(None);
                continue;
            }
            prop_assert_eq!(run.code, 0, "{:?} {}: {}", case, format, run.stderr);
            let files = common::files(&root);
            prop_assert_eq!(files.len(), 1);
            let folder = files[0].iter().next().unwrap().to_str().unwrap().to_string();
            let column = if format == "parquet" {
                let fields = target_s3::schema::typed::columns(
                    r#"{"properties":{"c":{"type":["string","null"]},"n":{"type":["array","object","null"]}}}"#, true, false);
                let rows = common::typed::parquet_rows(&root, &folder, &fields).0;
                rows[0]["c"].as_str().unwrap().to_string()
            } else {
                // JSONL keeps the tap's record as it came: the key read its first `c`.
                let text = String::from_utf8(std::fs::read(root.join(&files[0])).unwrap()).unwrap();
                prop_assert_eq!(text.trim_end(), record.as_str());
                "first".to_string()
            };
            outcomes.push(Some((folder, column)));
        }
        prop_assert_eq!(&outcomes[0], &outcomes[1]);
        if let Some((folder, column)) = &outcomes[0] {
            prop_assert_eq!(folder.as_str(), "c=first");
            prop_assert_eq!(column.as_str(), "first");
        }
    }
}
