//! Job runners stop targets with SIGTERM (or SIGINT, SIGUSR1). The first signal finishes the
//! files already written to, prints the STATE they cover and exits 0; a second one aborts.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::proxy::{Fault, Proxy};
use common::*;
use serde_json::json;

const SCHEMA: &str =
    r#"{"type":"SCHEMA","stream":"s","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#;

fn signal(child: &Child, name: &str) {
    assert!(Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap().success());
}

fn wait(child: &mut Child, limit: Duration) -> (i32, Vec<String>, String) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            let mut err = String::new();
            BufReader::new(child.stdout.take().unwrap()).lines().for_each(|l| out.push_str(&(l.unwrap() + "\n")));
            if let Some(mut stderr) = child.stderr.take() {
                std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
            }
            return (status.code().unwrap_or(-1), out.lines().map(str::to_string).collect(), err);
        }
        assert!(started.elapsed() < limit, "did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20)); // paces the poll; the deadline decides
    }
}

/// A second stream after the STATE: its file opening (a debug line on stderr) shows that the
/// target has read every line before it, the STATE included, while the first file is still open.
const LATER: &str =
    r#"{"type":"SCHEMA","stream":"later","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#;
const LATER_OPENED: &str = "opening file stream=later ";

#[test]
fn first_signal_finishes_files_and_prints_their_state() {
    for sig in ["TERM", "INT", "USR1"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut child = spawn(&json!({"local_path": out, "log_level": "debug", "compression": "none"}), dir.path());
        let (later_opened, log) = watch_stderr(&mut child, LATER_OPENED);
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{SCHEMA}").unwrap();
        for i in 0..100 {
            writeln!(stdin, r#"{{"type":"RECORD","stream":"s","record":{{"id":{i}}}}}"#).unwrap();
        }
        writeln!(stdin, r#"{{"type":"STATE","value":{{"upto":99}}}}"#).unwrap();
        writeln!(stdin, "{LATER}").unwrap();
        writeln!(stdin, r#"{{"type":"RECORD","stream":"later","record":{{"id":100}}}}"#).unwrap();
        stdin.flush().unwrap();
        // stdin stays open: the target is waiting for more input when the signal comes
        if later_opened.recv_timeout(Duration::from_secs(20)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("SIG{sig}: the target did not read the input within 20 s: {}", log.join().unwrap());
        }
        signal(&child, sig);
        let (code, stdout, _) = wait(&mut child, Duration::from_secs(20));
        let stderr = log.join().unwrap();
        assert_eq!(code, 0, "SIG{sig}: {stderr}");
        assert_eq!(stdout, [r#"{"upto":99}"#], "SIG{sig}");
        let files = files(&out);
        let streams: Vec<&str> = files.iter().map(|f| f.iter().next().unwrap().to_str().unwrap()).collect();
        assert_eq!(streams, ["later", "s"], "SIG{sig}: both open files finished: {files:?}");
        let want: String = (0..100).map(|i| format!("{{\"id\":{i}}}\n")).collect();
        assert_eq!(String::from_utf8(read(&out.join(&files[1]))).unwrap(), want, "SIG{sig}");
        assert_eq!(read(&out.join(&files[0])), b"{\"id\":100}\n", "SIG{sig}");
        drop(stdin);
    }
}

#[test]
fn second_signal_aborts_without_state() {
    let s3 = s3();
    let bucket = s3.bucket("signal2");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    // both files' uploads hang, whichever starts first: the STATE can never be covered
    proxy.inject(&[Fault::Hang(Duration::from_secs(60)), Fault::Hang(Duration::from_secs(60))], Some("PUT /"));
    let dir = tempfile::tempdir().unwrap();
    let config = s3.config(
        &bucket,
        json!({"endpoint_url": proxy.endpoint, "request_timeout_seconds": 120, "write_manifest": false, "log_level": "debug"}),
    );
    let mut child = spawn(&config, dir.path());
    let (later_opened, log) = watch_stderr(&mut child, LATER_OPENED);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{SCHEMA}").unwrap();
    writeln!(stdin, r#"{{"type":"RECORD","stream":"s","record":{{"id":1}}}}"#).unwrap();
    writeln!(stdin, r#"{{"type":"STATE","value":{{"upto":1}}}}"#).unwrap();
    writeln!(stdin, "{LATER}").unwrap();
    writeln!(stdin, r#"{{"type":"RECORD","stream":"later","record":{{"id":2}}}}"#).unwrap();
    stdin.flush().unwrap();
    // the STATE has been read and waits for its file
    if later_opened.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the target did not read the input within 20 s: {}", log.join().unwrap());
    }
    signal(&child, "TERM"); // starts the uploads, which hang
    let waiting = Instant::now();
    while proxy.faulted() == 0 {
        assert!(waiting.elapsed() < Duration::from_secs(20), "the upload never started");
        std::thread::sleep(Duration::from_millis(20)); // paces the poll; the deadline decides
    }
    let started = Instant::now();
    signal(&child, "TERM");
    let (code, stdout, _) = wait(&mut child, Duration::from_secs(30));
    let stderr = log.join().unwrap();
    assert_eq!(code, 130, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15), "the abort took {:?}", started.elapsed());
    assert!(stderr.lines().last().unwrap().contains("stopped by a second signal"), "{stderr}");
    assert!(stdout.is_empty(), "no STATE: {stdout:?}");
    assert!(s3.list_all(&bucket).is_empty());
    drop(stdin);
}

/// A BATCH file that never ends (a FIFO no one writes, an S3 endpoint that never answers) is
/// read on its own thread: the first signal still stops the run at once, finishing the files
/// already written and printing the STATE before the BATCH.
#[test]
fn a_signal_stops_a_batch_read_that_never_ends() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("never.jsonl");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let s3 = s3();
    let bucket = s3.bucket("batch-hang");
    runtime()
        .block_on(s3.client.put_object().bucket(&bucket).key("b.jsonl").body(b"{\"id\":7}\n".to_vec().into()).send())
        .unwrap();
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    let hanging = s3.config(&bucket, json!({"endpoint_url": proxy.endpoint, "prefix": "out", "compression": "none", "log_level": "info", "request_timeout_seconds": 300, "max_retries": 0}));
    for (url, config) in [
        (
            format!("file://{}", fifo.display()),
            json!({"local_path": dir.path().join("out"), "compression": "none", "log_level": "info"}),
        ),
        (format!("s3://{bucket}/b.jsonl"), hanging.clone()),
    ] {
        if url.starts_with("s3://") {
            // The GetObject of the BATCH file hangs; uploads go through.
            proxy.inject(&[Fault::Hang(Duration::from_secs(600))], Some("GET /"));
        }
        let mut child = spawn(&config, dir.path());
        let (reading, log) = watch_stderr(&mut child, "reading BATCH files");
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{SCHEMA}").unwrap();
        writeln!(stdin, r#"{{"type":"RECORD","stream":"s","record":{{"id":1}}}}"#).unwrap();
        writeln!(stdin, r#"{{"type":"STATE","value":{{"before":"batch"}}}}"#).unwrap();
        writeln!(
            stdin,
            r#"{{"type":"BATCH","stream":"s","encoding":{{"format":"jsonl"}},"manifest":[{}]}}"#,
            json!(url)
        )
        .unwrap();
        stdin.flush().unwrap();
        reading.recv_timeout(Duration::from_secs(30)).expect("the BATCH read starts");
        let started = Instant::now();
        signal(&child, "TERM");
        let (code, stdout, _) = wait(&mut child, Duration::from_secs(30));
        let log = log.join().unwrap();
        assert_eq!(code, 0, "{url}: {log}");
        assert!(started.elapsed() < Duration::from_secs(20), "{url}: stopped at once");
        assert_eq!(stdout, [r#"{"before":"batch"}"#], "{url}: the STATE before the BATCH, covered by its file");
        drop(stdin);
    }
}

/// A job runner that stops tap and target together closes the input and sends one SIGTERM at
/// the same moment: whichever the target sees first, that signal is the first one (exit 0,
/// the STATE the durable files cover), never taken for a second (it was: exit 130 in 3 of 8).
#[test]
fn a_signal_as_the_input_ends_is_the_first_one() {
    let mut input = format!("{SCHEMA}\n");
    for i in 0..2_000 {
        input.push_str(&format!("{{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{{\"id\":{i}}}}}\n"));
        if i % 500 == 499 {
            input.push_str(&format!("{{\"type\":\"STATE\",\"value\":{{\"at\":{i}}}}}\n"));
        }
    }
    for attempt in 0..24 {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        let cfg = json!({"local_path": dir.path().join("out"), "max_records_per_file": 100});
        std::fs::write(&config, cfg.to_string()).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_target-s3"))
            .args(["--config", config.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        // From at once to a few milliseconds later: while it reads, and while it finishes.
        std::thread::sleep(Duration::from_micros(500 * (attempt % 8)));
        signal(&child, "TERM");
        let (code, _, stderr) = wait(&mut child, Duration::from_secs(60));
        assert_eq!(code, 0, "attempt {attempt}: {stderr}");
    }
}
