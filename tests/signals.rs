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
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn first_signal_finishes_files_and_prints_their_state() {
    for sig in ["TERM", "INT", "USR1"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut child = spawn(&json!({"local_path": out, "log_level": "debug", "compression": "none"}), dir.path());
        let (seen_rx, log) = watch_stderr(&mut child, "opening file");
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{SCHEMA}").unwrap();
        for i in 0..100 {
            writeln!(stdin, r#"{{"type":"RECORD","stream":"s","record":{{"id":{i}}}}}"#).unwrap();
        }
        writeln!(stdin, r#"{{"type":"STATE","value":{{"upto":99}}}}"#).unwrap();
        stdin.flush().unwrap();
        // wait until it is reading records (stdin stays open), then a little for the rest
        seen_rx.recv_timeout(Duration::from_secs(20)).expect("target started reading");
        std::thread::sleep(Duration::from_millis(300));
        signal(&child, sig);
        let (code, stdout, _) = wait(&mut child, Duration::from_secs(20));
        let stderr = log.join().unwrap();
        assert_eq!(code, 0, "SIG{sig}: {stderr}");
        assert_eq!(stdout, [r#"{"upto":99}"#], "SIG{sig}");
        let files = files(&out);
        assert_eq!(files.len(), 1);
        assert_eq!(read(&out.join(&files[0])).iter().filter(|b| **b == b'\n').count(), 100);
        drop(stdin);
    }
}

#[test]
fn second_signal_aborts_without_state() {
    let s3 = s3();
    let bucket = s3.bucket("signal2");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    proxy.inject(&[Fault::Hang(Duration::from_secs(60))], Some("PUT /"));
    let dir = tempfile::tempdir().unwrap();
    let config = s3.config(
        &bucket,
        json!({"endpoint_url": proxy.endpoint, "request_timeout_seconds": 120, "write_manifest": false, "log_level": "debug"}),
    );
    let mut child = spawn(&config, dir.path());
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{SCHEMA}").unwrap();
    writeln!(stdin, r#"{{"type":"RECORD","stream":"s","record":{{"id":1}}}}"#).unwrap();
    writeln!(stdin, r#"{{"type":"STATE","value":{{"upto":1}}}}"#).unwrap();
    stdin.flush().unwrap();
    let (seen_rx, log) = watch_stderr(&mut child, "opening file");
    seen_rx.recv_timeout(Duration::from_secs(20)).expect("target started reading");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "TERM"); // starts the upload, which hangs
    let waiting = Instant::now();
    while proxy.faulted() == 0 {
        assert!(waiting.elapsed() < Duration::from_secs(20), "the upload never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    signal(&child, "TERM");
    let (code, stdout, _) = wait(&mut child, Duration::from_secs(30));
    let stderr = log.join().unwrap();
    assert_ne!(code, 0, "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(stderr.lines().last().unwrap().contains("stopped by a second signal"), "{stderr}");
    assert!(stdout.is_empty(), "no STATE: {stdout:?}");
    assert!(s3.list_all(&bucket).is_empty());
    drop(stdin);
}
