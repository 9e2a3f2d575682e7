//! Helpers shared by the end-to-end tests: they run the real binary on real input and look at
//! what a user would look at (files, stdout STATE lines, exit code, stderr).
#![allow(dead_code)]

pub mod proxy;
pub mod typed;

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

/// Every data file under `root` (relative paths, sorted), hidden temporary files included so
/// tests can assert there are none; the run manifests under `_manifests/` are left out.
pub fn files(root: &Path) -> Vec<PathBuf> {
    all_files(root).into_iter().filter(|p| !p.starts_with("_manifests")).collect()
}

/// Every file under `root`, manifests included.
pub fn all_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
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

/// Undoes the `%XX` escaping of rendered key values (README "What is safe in a key"): the
/// mapping is reversible, so a folder gives back the exact stream name or value.
pub fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).expect("an escape is two hex digits"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("escapes hold UTF-8")
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

/// The JSON Schema text of `stream`'s last SCHEMA message in `input`, as sent.
pub fn schema_in(input: &str, stream: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        stream: Option<String>,
        #[serde(borrow, default)]
        schema: Option<&'a serde_json::value::RawValue>,
    }
    input
        .lines()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .rfind(|l| l.kind == "SCHEMA" && l.stream.as_deref() == Some(stream))
        .and_then(|l| l.schema)
        .unwrap_or_else(|| panic!("no SCHEMA for {stream}"))
        .get()
        .to_string()
}

/// A JSON object's members in document order (`serde_json::Value` sorts them); None for
/// anything that is not an object.
pub fn members(json: &str) -> Option<Vec<(String, &serde_json::value::RawValue)>> {
    use serde::de::{Deserializer, MapAccess, Visitor};
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(String, &'de serde_json::value::RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    serde_json::Deserializer::from_str(json).deserialize_map(Members).ok()
}

/// The CSV columns the README promises for a JSON Schema (given as text; default
/// `flattening_max_depth`): `properties` in order, objects with declared properties flattened
/// into `parent__child` columns, everything else (scalars, arrays, free-form objects) one column.
pub fn csv_columns(schema: &str) -> Vec<String> {
    fn properties(schema: &str) -> Vec<(String, &serde_json::value::RawValue)> {
        let member = members(schema).unwrap_or_default().into_iter().find(|(k, _)| k == "properties");
        member.and_then(|(_, p)| members(p.get())).unwrap_or_default()
    }
    fn walk(schema: &str, prefix: &str, depth: usize, out: &mut Vec<String>) {
        for (name, property) in properties(schema) {
            let column = format!("{prefix}{name}");
            if depth < 10 && !properties(property.get()).is_empty() {
                walk(property.get(), &format!("{column}__"), depth + 1, out);
            } else {
                out.push(column);
            }
        }
    }
    let mut out = Vec::new();
    walk(schema, "", 0, &mut out);
    assert!(!out.is_empty(), "a schema without properties: {schema}");
    out
}

/// The cell the README promises in `column` (a `parent__child` path) for a record given as
/// its raw JSON text: empty for a missing or null value, the text of a string, and the tap's
/// own JSON text (byte for byte) for numbers, booleans, arrays and objects.
pub fn csv_cell(record: &str, column: &str) -> String {
    use serde_json::value::RawValue;
    let mut value: &RawValue = serde_json::from_str(record).unwrap();
    for name in column.split("__") {
        let Ok(object) = serde_json::from_str::<std::collections::HashMap<String, &RawValue>>(value.get()) else {
            return String::new(); // the parent is null
        };
        match object.get(name) {
            Some(v) => value = v,
            None => return String::new(),
        }
    }
    match serde_json::from_str::<serde_json::Value>(value.get()).unwrap() {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s,
        _ => value.get().to_string(),
    }
}

/// Asserts that `body` (one file, decompressed) holds exactly `stream`'s records of `input`,
/// in order, each once: JSONL byte for byte, JSON as an array of equal values, CSV as the
/// schema's header and every cell of every row (no property of a record left without a column).
pub fn assert_holds_records(format: &str, body: &[u8], input: &str, stream: &str, what: &str) {
    let want = records_of(input, stream);
    match format {
        "jsonl" => {
            let want: String = want.iter().map(|r| format!("{r}\n")).collect();
            assert_eq!(std::str::from_utf8(body).unwrap(), want, "{what}: JSONL bytes differ from the tap's records");
        }
        "json" => {
            let got: Vec<serde_json::Value> = serde_json::from_slice(body).expect("a JSON array of records");
            let want: Vec<serde_json::Value> = want.iter().map(|r| serde_json::from_str(r).unwrap()).collect();
            assert_eq!(got, want, "{what}: JSON records differ");
        }
        "csv" => {
            let columns = csv_columns(&schema_in(input, stream));
            let mut reader = csv::Reader::from_reader(body);
            let header: Vec<&str> = reader.headers().unwrap().iter().collect();
            assert_eq!(header, columns, "{what}: CSV header");
            let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
            assert_eq!(rows.len(), want.len(), "{what}: CSV rows");
            for (i, (row, record)) in rows.iter().zip(&want).enumerate() {
                let cells: Vec<&str> = row.iter().collect();
                let expected: Vec<String> = columns.iter().map(|c| csv_cell(record, c)).collect();
                assert_eq!(cells, expected, "{what}: CSV row {i} differs from record {record}");
                let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(record).unwrap();
                for name in fields.keys() {
                    assert!(
                        columns.iter().any(|c| c == name || c.starts_with(&format!("{name}__"))),
                        "{what}: property {name:?} of record {i} has no column"
                    );
                }
            }
        }
        other => panic!("no reader for format {other}"),
    }
}

pub fn sample() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sample_streams/sample.singer")).unwrap()
}

/// A local S3-compatible server started once per test binary by `scripts/servers.py start s3`
/// (or reused: it answers with the running server's settings).
pub struct S3Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub role_arn: Option<String>,
    /// SeaweedFS: a KMS key its built-in KMS knows.
    pub kms_key_id: Option<String>,
    pub external_id: Option<String>,
    pub client: aws_sdk_s3::Client,
}

fn start_server(port: u16, auth: bool) -> S3Server {
    start_kind(port, auth, "moto")
}

fn start_kind(port: u16, auth: bool, kind: &str) -> S3Server {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/servers.py");
    let mut cmd = Command::new("python3");
    cmd.args([script, "start", "s3", &port.to_string(), "--kind", kind]).stderr(Stdio::inherit());
    if auth {
        cmd.arg("--auth");
    }
    let out = cmd.output().expect("running python3 scripts/servers.py");
    assert!(out.status.success(), "the S3 server did not start (scripts/servers.py start s3 {port} --kind {kind})");
    let env: std::collections::HashMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let endpoint = env["S3_ENDPOINT"].clone();
    let client = client(&endpoint, &env["S3_ACCESS_KEY"], &env["S3_SECRET_KEY"]);
    S3Server {
        endpoint,
        access_key: env["S3_ACCESS_KEY"].clone(),
        secret_key: env["S3_SECRET_KEY"].clone(),
        role_arn: env.get("S3_ROLE_ARN").cloned(),
        kms_key_id: env.get("S3_KMS_KEY_ID").cloned(),
        external_id: env.get("S3_EXTERNAL_ID").cloned(),
        client,
    }
}

/// The plain server (any credentials accepted). Port from S3_TEST_PORT, default 9310.
pub fn s3() -> &'static S3Server {
    static SERVER: std::sync::OnceLock<S3Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| start_server(port("S3_TEST_PORT", 9310), false))
}

/// A second implementation that verifies signatures and checksums (SeaweedFS), on
/// S3_TEST_WEED_PORT (9340; it also uses the next four ports and those 10000 above).
pub fn s3_weed() -> &'static S3Server {
    static SERVER: std::sync::OnceLock<S3Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| start_kind(port("S3_TEST_WEED_PORT", 9340), false, "seaweedfs"))
}

/// The server that checks signatures and IAM (moto auth mode), on S3_TEST_AUTH_PORT (9311).
pub fn s3_auth() -> &'static S3Server {
    static SERVER: std::sync::OnceLock<S3Server> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| start_server(port("S3_TEST_AUTH_PORT", 9311), true))
}

fn port(var: &str, default: u16) -> u16 {
    std::env::var(var).ok().and_then(|p| p.parse().ok()).unwrap_or(default)
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap())
}

pub fn client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let creds = aws_sdk_s3::config::Credentials::new(key, secret, None, None, "test");
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(creds)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl S3Server {
    /// A fresh bucket for one test.
    pub fn bucket(&self, name: &str) -> String {
        let bucket = format!("{}-{}", name.replace('_', "-"), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        runtime().block_on(self.client.create_bucket().bucket(&bucket).send()).unwrap();
        bucket
    }

    /// A target-s3 config writing to `bucket` on this server.
    pub fn config(&self, bucket: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({
            "bucket": bucket,
            "endpoint_url": self.endpoint,
            "force_path_style": true,
            "region": "us-east-1",
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "max_retries": 1,
            "log_level": "warn",
        });
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    }

    /// Keys and sizes of the data objects in the bucket (manifests left out), sorted by key.
    pub fn list(&self, bucket: &str) -> Vec<(String, i64)> {
        self.list_all(bucket).into_iter().filter(|(k, _)| !k.contains("_manifests/")).collect()
    }

    /// Keys and sizes of every object in the bucket, sorted by key.
    pub fn list_all(&self, bucket: &str) -> Vec<(String, i64)> {
        let out = runtime().block_on(self.client.list_objects_v2().bucket(bucket).send()).unwrap();
        let mut v: Vec<_> =
            out.contents().iter().map(|o| (o.key().unwrap().to_string(), o.size().unwrap_or_default())).collect();
        v.sort();
        v
    }

    /// An object's bytes, gunzipped when the key ends in `.gz`, zstd-decoded for `.zst`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = runtime().block_on(self.client.get_object().bucket(bucket).key(key).send()).unwrap();
        let raw = runtime().block_on(out.body.collect()).unwrap().into_bytes().to_vec();
        if key.ends_with(".gz") {
            let mut v = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut v).unwrap();
            v
        } else if key.ends_with(".zst") {
            zstd::stream::decode_all(&raw[..]).unwrap()
        } else {
            raw
        }
    }

    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        let body = aws_sdk_s3::primitives::ByteStream::from(body.to_vec());
        runtime().block_on(self.client.put_object().bucket(bucket).key(key).body(body).send()).unwrap();
    }

    pub fn multipart_uploads(&self, bucket: &str) -> usize {
        let out = runtime().block_on(self.client.list_multipart_uploads().bucket(bucket).send()).unwrap();
        out.uploads().len()
    }
}

/// Runs target-s3 on raw input bytes (which may be invalid UTF-8).
pub fn run_bytes(config: &serde_json::Value, input: &[u8]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let file = dir.path().join("input.singer");
    std::fs::write(&file, input).unwrap();
    run_args(&["--config", cfg.to_str().unwrap(), "--input", file.to_str().unwrap()], "")
}

/// Starts target-s3 with `config` (written into `dir`) and every standard stream piped, for
/// tests that talk to it while it runs.
pub fn spawn(config: &serde_json::Value, dir: &Path) -> std::process::Child {
    let cfg = dir.join("spawn-config.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    Command::new(BIN)
        .args(["--config", cfg.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the child's stderr on a thread: the receiver fires each time a line contains
/// `needle`; joining the handle gives the whole log.
pub fn watch_stderr(
    child: &mut std::process::Child,
    needle: &'static str,
) -> (std::sync::mpsc::Receiver<()>, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(needle) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (rx, handle)
}

/// Sends each stdout line of the child, as it is printed, through the returned receiver.
pub fn watch_stdout(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}
