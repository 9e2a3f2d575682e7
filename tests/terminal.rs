//! Started by hand in a terminal without `--config`, target-s3 says on stderr what it will do
//! with what is typed and how to end it; a pipe or a config gets no such line. The terminal is a
//! real pseudo-terminal from util-linux `script` (the test is skipped, saying so, without it).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_target-s3");
const HINT: &str = "no --config: reading Singer messages from this terminal";

/// Runs `target-s3 ARGS` in `dir` with stdin, stdout and stderr on a pseudo-terminal that
/// receives `typed` and then end-of-input. Returns the exit status and everything the terminal
/// showed, or None when `script` is not installed.
fn in_terminal(dir: &Path, args: &str, typed: &str) -> Option<(bool, String)> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` (a pseudo-terminal) is not installed");
        return None;
    }
    let command = format!("'{}' {args}", BIN.replace('\'', r"'\''"));
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `script` passes this to the terminal, then ends the input (Ctrl-D) when its stdin closes.
    child.stdin.take().unwrap().write_all(typed.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Some((out.status.success(), String::from_utf8_lossy(&out.stdout).replace('\r', "")))
}

#[test]
fn a_bare_start_in_a_terminal_says_what_it_does_and_how_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let Some((ok, shown)) = in_terminal(dir.path(), "", "") else { return };
    assert!(ok, "ends cleanly at Ctrl-D: {shown}");
    let hint: Vec<&str> = shown.lines().filter(|l| l.contains(HINT)).collect();
    assert_eq!(hint.len(), 1, "one hint line: {shown}");
    for part in ["target-s3: ", "the local folder `output`", "Ctrl-D ends the input", "Ctrl-C aborts"] {
        assert!(hint[0].contains(part), "the hint names {part:?}: {}", hint[0]);
    }
}

#[test]
fn what_is_typed_after_the_hint_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let typed = concat!(
        r#"{"type":"SCHEMA","stream":"typed","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#,
        "\n",
        r#"{"type":"RECORD","stream":"typed","record":{"id":7}}"#,
        "\n",
        r#"{"type":"STATE","value":{"done":true}}"#,
        "\n"
    );
    let Some((ok, shown)) = in_terminal(dir.path(), "", typed) else { return };
    assert!(ok, "{shown}");
    assert!(shown.contains(HINT), "{shown}");
    assert!(shown.lines().any(|l| l == r#"{"done":true}"#), "the STATE is printed: {shown}");
    let files: Vec<_> = walk(&dir.path().join("output/typed"));
    assert_eq!(files.len(), 1, "one file in output/typed: {files:?}");
}

#[test]
fn a_config_or_a_pipe_gets_no_hint() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"local_path": "elsewhere"}"#).unwrap();
    if let Some((ok, shown)) = in_terminal(dir.path(), "--config config.json", "") {
        assert!(ok && !shown.contains(HINT), "a config: no hint: {shown}");
    }
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains(HINT), "a pipe: no hint: {stderr}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
