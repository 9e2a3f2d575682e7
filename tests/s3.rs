//! End to end against a real S3-compatible server over HTTP (moto, started by
//! `scripts/servers.py`): the bytes in the bucket, the STATE lines, the exit code.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::*;
use serde_json::{Value, json};

#[test]
fn every_format_and_compression_round_trips() {
    let s3 = s3();
    let input = sample();
    // the CSV columns the cell-by-cell comparison expects, pinned for one stream
    assert_eq!(
        csv_columns(&schema_in(&input, "users")),
        [
            "id",
            "name",
            "email",
            "address__city",
            "address__country",
            "address__geo__lat",
            "address__geo__lon",
            "tags",
            "active",
            "updated_at"
        ]
    );
    for (format, compression, ext) in [
        ("jsonl", "gzip", ".jsonl.gz"),
        ("jsonl", "none", ".jsonl"),
        ("csv", "gzip", ".csv.gz"),
        ("csv", "none", ".csv"),
    ] {
        let bucket = s3.bucket(&format!("rt-{format}-{compression}"));
        let config = s3.config(&bucket, json!({"format": format, "compression": compression, "prefix": "exports/"}));
        let run = run(&config, &input);
        assert_eq!(run.code, 0, "{format}/{compression}: {}", run.stderr);
        let objects = s3.list(&bucket);
        assert_eq!(objects.len(), 2, "{objects:?}");
        let streams: Vec<&str> = objects.iter().map(|(k, _)| k.split('/').nth(1).unwrap()).collect();
        assert_eq!(streams, ["orders", "users"], "one object per stream: {objects:?}");
        for ((key, _), stream) in objects.iter().zip(streams) {
            assert!(key.starts_with("exports/") && key.ends_with(ext), "{key}");
            // JSONL byte for byte; CSV: the schema's header and every cell of every row
            assert_holds_records(format, &s3.get(&bucket, key), &input, stream, key);
        }
        assert_eq!(
            serde_json::from_str::<Value>(run.stdout.last().unwrap()).unwrap(),
            states_of(&input).pop().unwrap()
        );
        // the manifest lists exactly the data objects, with their counts and sizes
        let all = s3.list_all(&bucket);
        let manifests: Vec<&(String, i64)> = all.iter().filter(|(k, _)| k.starts_with("exports/_manifests/")).collect();
        assert_eq!(manifests.len(), 1, "{all:?}");
        let manifest: Value = serde_json::from_slice(&s3.get(&bucket, &manifests[0].0)).unwrap();
        let mut listed: Vec<(String, i64)> = manifest["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["key"].as_str().unwrap().to_string(), o["bytes"].as_i64().unwrap()))
            .collect();
        listed.sort();
        assert_eq!(listed, objects);
        let records: u64 = manifest["objects"].as_array().unwrap().iter().map(|o| o["records"].as_u64().unwrap()).sum();
        assert_eq!(records, 120);
    }
}

/// Deterministic records of about 300 bytes; `n` of them.
fn big_input(n: usize) -> String {
    let mut s = String::from(
        r#"{"type":"SCHEMA","stream":"events","key_properties":["id"],"schema":{"properties":{"id":{"type":"integer"},"payload":{"type":"string"}}}}"#,
    );
    s.push('\n');
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..n {
        // xorshift letters: text that gzip shrinks only to about 60%, like real data
        let payload: String = (0..280)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (b'a' + (x % 26) as u8) as char
            })
            .collect();
        s.push_str(&format!(
            "{{\"type\":\"RECORD\",\"stream\":\"events\",\"record\":{{\"id\":{i},\"payload\":\"{payload}\"}}}}\n"
        ));
        if i % 10_000 == 9_999 {
            s.push_str(&format!("{{\"type\":\"STATE\",\"value\":{{\"events\":{i}}}}}\n"));
        }
    }
    s
}

#[test]
fn a_large_file_streams_as_multipart_and_arrives_intact() {
    let s3 = s3();
    let bucket = s3.bucket("multipart");
    let input = big_input(60_000); // ~19 MiB of records: more than 3 parts of 5 MiB
    let config =
        s3.config(&bucket, json!({"compression": "none", "part_size": 5 * 1024 * 1024, "upload_concurrency": 2}));
    let run = run(&config, &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let objects = s3.list(&bucket);
    assert_eq!(objects.len(), 1, "{objects:?}");
    let (key, size) = &objects[0];
    assert!(*size > 15 * 1024 * 1024, "{size}");
    let head = runtime().block_on(s3.client.head_object().bucket(&bucket).key(key).send()).unwrap();
    let etag = head.e_tag().unwrap();
    assert!(etag.trim_matches('"').ends_with("-4"), "a 4-part multipart upload has an ETag ending in -4: {etag}");
    let want: String = records_of(&input, "events").iter().map(|r| format!("{r}\n")).collect();
    assert!(s3.get(&bucket, key) == want.as_bytes(), "content differs");
    assert_eq!(s3.multipart_uploads(&bucket), 0);
    assert_eq!(run.stdout.last().map(String::as_str), Some(r#"{"events":59999}"#));
}

#[test]
fn gzip_multipart_rolls_by_compressed_bytes() {
    let s3 = s3();
    let bucket = s3.bucket("gzroll");
    let input = big_input(40_000);
    let config = s3.config(&bucket, json!({"max_bytes_per_file": 2 * 1024 * 1024, "compression_level": 1}));
    let run = run(&config, &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let objects = s3.list(&bucket);
    assert!(objects.len() >= 2, "{objects:?}");
    for (_, size) in &objects[..objects.len() - 1] {
        // rolled on compressed size: close to the limit, never wildly over it
        assert!(*size >= 1024 * 1024 && *size <= 3 * 1024 * 1024, "{objects:?}");
    }
    let mut got = Vec::new();
    for (key, _) in &objects {
        got.extend(s3.get(&bucket, key));
    }
    let want: String = records_of(&input, "events").iter().map(|r| format!("{r}\n")).collect();
    let mut got_lines: Vec<&str> = std::str::from_utf8(&got).unwrap().lines().collect();
    let mut want_lines: Vec<&str> = want.lines().collect();
    got_lines.sort();
    want_lines.sort();
    assert!(got_lines == want_lines, "records differ");
}

#[test]
fn object_options_reach_the_server() {
    let s3 = s3();
    let bucket = s3.bucket("options");
    // through the proxy, which keeps each request's headers
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    let config = s3.config(
        &bucket,
        json!({
            "endpoint_url": proxy.endpoint,
            "server_side_encryption": "AES256",
            "acl": "bucket-owner-full-control",
            "storage_class": "STANDARD_IA",
            "object_tags": {"team": "data eng", "source": "tap-x"},
            "object_metadata": {"pipeline": "nightly"},
            "format": "csv",
        }),
    );
    let r = run(&config, &sample());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let objects = s3.list(&bucket);
    assert_eq!(objects.len(), 2, "{objects:?}");
    for (key, _) in &objects {
        let head = runtime().block_on(s3.client.head_object().bucket(&bucket).key(key).send()).unwrap();
        assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("AES256"), "{key}");
        assert_eq!(head.storage_class().map(|s| s.as_str()), Some("STANDARD_IA"), "{key}");
        assert_eq!(head.content_type(), Some("application/gzip"), "{key}: a .csv.gz object is a gzip file");
        assert_eq!(head.content_encoding(), None, "{key}");
        assert_eq!(head.metadata().and_then(|m| m.get("pipeline")).map(String::as_str), Some("nightly"), "{key}");
        let tags = runtime().block_on(s3.client.get_object_tagging().bucket(&bucket).key(key).send()).unwrap();
        let mut tags: Vec<(String, String)> =
            tags.tag_set().iter().map(|t| (t.key().to_string(), t.value().to_string())).collect();
        tags.sort();
        assert_eq!(tags, vec![("source".into(), "tap-x".into()), ("team".into(), "data eng".into())], "{key}");
    }
    // moto grants the bucket owner FULL_CONTROL with or without the canned ACL, so the ACL is
    // checked on the wire: every upload (the data objects and the manifest) asks for it
    let uploads: Vec<String> =
        proxy.request_heads().into_iter().filter(|h| h.starts_with("PUT /")).map(|h| h.to_ascii_lowercase()).collect();
    assert_eq!(uploads.len(), s3.list_all(&bucket).len(), "one PutObject per object: {uploads:#?}");
    assert!(uploads.iter().all(|h| h.contains("\r\nx-amz-acl: bucket-owner-full-control\r\n")), "{uploads:#?}");

    let bucket = s3.bucket("kms");
    let config = s3.config(
        &bucket,
        json!({"server_side_encryption": "aws:kms", "kms_key_id": "alias/target-s3-test", "bucket_key_enabled": true}),
    );
    let r = run(&config, &sample());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let objects = s3.list(&bucket);
    assert_eq!(objects.len(), 2, "{objects:?}");
    for (key, _) in &objects {
        let head = runtime().block_on(s3.client.head_object().bucket(&bucket).key(key).send()).unwrap();
        assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"), "{key}");
        assert_eq!(head.ssekms_key_id(), Some("alias/target-s3-test"), "{key}");
        assert_eq!(head.bucket_key_enabled(), Some(true), "{key}");
        assert_eq!(head.content_type(), Some("application/gzip"), "{key}");
    }
}

/// Runs a load that must fail and checks the user-visible contract: exit 1, one clear error
/// line, no STATE, nothing left in the bucket.
fn assert_load_fails(config: &Value, needle: &str, s3: &S3Server, bucket: Option<&str>) {
    let started = Instant::now();
    let r = run(config, &sample());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("target-s3: error: ") && last.contains(needle), "{needle:?} not in {last:?}");
    assert!(r.stdout.is_empty(), "no STATE: {:?}", r.stdout);
    assert!(started.elapsed() < Duration::from_secs(60), "failing took {:?}", started.elapsed());
    if let Some(bucket) = bucket {
        assert!(s3.list_all(bucket).is_empty());
        assert_eq!(s3.multipart_uploads(bucket), 0);
    }
    for secret in ["wrong-secret", "testing-secret-value"] {
        assert!(!r.stderr.contains(secret), "a secret leaked into stderr");
    }
}

#[test]
fn missing_bucket_and_unreachable_endpoint_fail_clearly() {
    let s3 = s3();
    assert_load_fails(
        &s3.config("no-such-bucket-here", json!({})),
        "bucket \"no-such-bucket-here\" does not exist",
        s3,
        None,
    );
    let dead = TcpListenerGuard::new();
    let config = s3.config("some-bucket", json!({"endpoint_url": dead.endpoint, "max_retries": 0}));
    assert_load_fails(&config, "cannot reach", s3, None);
}

/// A port with nothing listening on it.
struct TcpListenerGuard {
    endpoint: String,
}

impl TcpListenerGuard {
    fn new() -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", l.local_addr().unwrap());
        drop(l);
        TcpListenerGuard { endpoint }
    }
}

#[test]
fn wrong_secret_key_fails_clearly_with_auth() {
    let s3 = s3_auth();
    let bucket = s3.bucket("badsecret");
    let mut config = s3.config(&bucket, json!({}));
    config["aws_secret_access_key"] = json!("wrong-secret");
    assert_load_fails(&config, "secret key does not match", s3, Some(&bucket));
}

#[test]
fn assume_role_with_external_id() {
    let s3 = s3_auth();
    let role = s3.role_arn.clone().expect("auth server has a role");
    let external_id = s3.external_id.clone().unwrap();
    let bucket = s3.bucket("role");
    let config = s3.config(&bucket, json!({"role_arn": role, "external_id": external_id, "role_session_name": "test"}));
    let r = run(&config, &sample());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.last().map(|l| serde_json::from_str::<Value>(l).unwrap()),
        states_of(&sample()).pop(),
        "the final STATE"
    );
    let objects = s3.list(&bucket);
    let streams: Vec<&str> = objects.iter().map(|(k, _)| k.split('/').next().unwrap()).collect();
    assert_eq!(streams, ["orders", "users"], "{objects:?}");
    for ((key, _), stream) in objects.iter().zip(streams) {
        assert_holds_records("jsonl", &s3.get(&bucket, key), &sample(), stream, key);
    }

    let bucket = s3.bucket("badrole");
    let config = s3.config(&bucket, json!({"aws_role_arn": role, "aws_external_id": "testing-secret-value"}));
    assert_load_fails(&config, "credentials", s3, Some(&bucket));
}

#[test]
fn connection_check_reports_each_step() {
    let s3 = s3();
    let bucket = s3.bucket("check");
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(&good, s3.config(&bucket, json!({"prefix": "probe"})).to_string()).unwrap();
    let r = run_args(&["--config", good.to_str().unwrap(), "--check"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.iter().any(|l| l.starts_with("ok") && l.contains("s3:PutObject") && l.contains("probe/")),
        "{:?}",
        r.stdout
    );
    assert!(r.stdout.iter().any(|l| l.starts_with("ok") && l.contains("s3:DeleteObject")));
    assert!(s3.list_all(&bucket).is_empty(), "the probe object is deleted");

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, s3.config("no-such-bucket-check", json!({})).to_string()).unwrap();
    let r = run_args(&["--config", bad.to_str().unwrap(), "--check"], "");
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.iter().any(|l| l.starts_with("FAILED") && l.contains("s3:ListBucket") && l.contains("does not exist")),
        "{:?}",
        r.stdout
    );
}

/// The server goes away in the middle of a run: the target fails, and every STATE it printed
/// before is covered by objects that exist and are complete. Until the outage each round's
/// STATE is awaited (so exactly those are acknowledged); the outage comes right after the next
/// round is sent, while its file may be in flight, and nothing after it may be acknowledged.
#[test]
fn server_gone_mid_run_keeps_printed_state_honest() {
    const OUTAGE_ROUND: usize = 20;
    let s3 = s3();
    let bucket = s3.bucket("gone");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    let dir = tempfile::tempdir().unwrap();
    let config = s3.config(
        &bucket,
        json!({"endpoint_url": proxy.endpoint, "max_records_per_file": 10, "compression": "none", "max_retries": 1}),
    );
    let mut child = spawn(&config, dir.path());
    let mut stdin = child.stdin.take().unwrap();
    let rx = watch_stdout(&mut child);
    let (_, log) = watch_stderr(&mut child, "target-s3: error:");
    writeln!(stdin, r#"{{"type":"SCHEMA","stream":"n","schema":{{"properties":{{"id":{{"type":"integer"}}}}}},"key_properties":["id"]}}"#).unwrap();
    let mut id = 0;
    // one round: a file's worth of records (it closes at 10) and the STATE after them
    let mut round = |stdin: &mut std::process::ChildStdin| {
        for _ in 0..10 {
            id += 1;
            let _ = writeln!(stdin, r#"{{"type":"RECORD","stream":"n","record":{{"id":{id}}}}}"#);
        }
        let _ = writeln!(stdin, r#"{{"type":"STATE","value":{{"upto":{id}}}}}"#);
        let _ = stdin.flush();
        id
    };
    let mut printed = Vec::new();
    for r in 0..OUTAGE_ROUND {
        let upto = round(&mut stdin);
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("round {r}: no STATE for the uploaded file within 30 s ({e})"));
        assert_eq!(line, format!(r#"{{"upto":{upto}}}"#), "round {r}");
        printed.push(line);
    }
    let in_flight = round(&mut stdin);
    proxy.set_down(true);
    for _ in OUTAGE_ROUND + 1..40 {
        round(&mut stdin);
    }
    drop(stdin);
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "failing took {:?}", started.elapsed());
    let stderr = log.join().unwrap();
    printed.extend(rx.try_iter());
    assert!(!status.success(), "a run that lost its server must fail: {stderr}");
    assert!(stderr.lines().last().unwrap_or_default().starts_with("target-s3: error: "), "{stderr}");
    // after the outage, at most the STATE of the file that may have made it before it
    let after: Vec<&String> = printed[OUTAGE_ROUND..].iter().collect();
    let in_flight_state = format!(r#"{{"upto":{in_flight}}}"#);
    assert!(after.is_empty() || after == [&in_flight_state], "STATE printed past the outage: {after:?}");
    let mut present = std::collections::BTreeSet::new();
    for (key, _) in s3.list(&bucket) {
        for line in String::from_utf8(s3.get(&bucket, &key)).unwrap().lines() {
            let v: Value = serde_json::from_str(line).expect("every object holds whole records");
            assert_eq!(line, format!(r#"{{"id":{}}}"#, v["id"]), "{key}");
            present.insert(v["id"].as_i64().unwrap());
        }
    }
    let last: Value = serde_json::from_str(printed.last().unwrap()).unwrap();
    let upto = last["upto"].as_i64().unwrap();
    for i in 1..=upto {
        assert!(present.contains(&i), "STATE said {upto} but record {i} is not in the bucket");
    }
    assert_eq!(s3.multipart_uploads(&bucket), 0);
}

#[test]
fn cursor_keys_on_s3_are_single_requests() {
    let s3 = s3();
    let bucket = s3.bucket("cursor");
    let template = "{stream}/{cursor_year}/{cursor_month}/{cursor_day}/{run_id}-{part}.{extension}";
    let r = run(&s3.config(&bucket, json!({"key_template": template})), &sample());
    assert_eq!(r.code, 2, "the default max_bytes_per_file is larger than a part");
    assert!(r.stderr.contains("max_bytes_per_file") && r.stderr.contains("cursor"), "{}", r.stderr);
    let config = s3.config(&bucket, json!({"key_template": template, "max_bytes_per_file": 5_000_000, "run_id": "r"}));
    let r = run(&config, &sample());
    assert_eq!(r.code, 0, "{}", r.stderr);
    let keys: Vec<String> = s3.list(&bucket).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["orders/2026/11/20/r-00000.jsonl.gz", "users/2026/11/20/r-00000.jsonl.gz"]);
}

#[test]
fn parquet_and_avro_round_trip_through_s3() {
    let s3 = s3();
    let input = sample();
    for (format, content_type) in [("parquet", "application/vnd.apache.parquet"), ("avro", "application/avro")] {
        let bucket = s3.bucket(&format!("rt-{format}"));
        // `compression: gzip` is ignored: these formats compress inside the file.
        let config = s3.config(&bucket, json!({"format": format, "compression": "gzip", "max_records_per_file": 25}));
        let run = run(&config, &input);
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        assert_eq!(
            serde_json::from_str::<Value>(run.stdout.last().unwrap()).unwrap(),
            states_of(&input).pop().unwrap()
        );
        for stream in ["users", "orders"] {
            let keys: Vec<String> =
                s3.list(&bucket).into_iter().map(|(k, _)| k).filter(|k| k.starts_with(&format!("{stream}/"))).collect();
            assert_eq!(keys.len(), 3, "60 records at 25 per file: {keys:?}");
            let mut ids = Vec::new();
            for key in &keys {
                assert!(key.ends_with(&format!(".{format}")), "{key}");
                let head = runtime().block_on(s3.client.head_object().bucket(&bucket).key(key).send()).unwrap();
                assert_eq!(head.content_type(), Some(content_type));
                assert_eq!(head.content_encoding(), None);
                let body = bytes::Bytes::from(s3.get(&bucket, key));
                let id_column = if stream == "users" { "id" } else { "order_id" };
                if format == "parquet" {
                    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(body)
                        .unwrap()
                        .build()
                        .unwrap();
                    for batch in reader {
                        let batch = batch.unwrap();
                        let column = batch.column_by_name(id_column).unwrap();
                        let values = arrow_cast_to_json(column.as_ref());
                        ids.extend(values);
                    }
                } else {
                    for value in apache_avro::Reader::new(&body[..]).unwrap() {
                        let apache_avro::types::Value::Record(fields) = value.unwrap() else { panic!() };
                        let (_, id) = fields.into_iter().find(|(n, _)| n == id_column).unwrap();
                        let id = match id {
                            apache_avro::types::Value::Union(_, v) => *v,
                            plain => plain,
                        };
                        ids.push(match id {
                            apache_avro::types::Value::Long(n) => json!(n),
                            apache_avro::types::Value::String(s) => json!(s),
                            other => panic!("{other:?}"),
                        });
                    }
                }
            }
            let want: Vec<Value> = records_of(&input, stream)
                .iter()
                .map(|r| {
                    let id_column = if stream == "users" { "id" } else { "order_id" };
                    serde_json::from_str::<Value>(r).unwrap()[id_column].clone()
                })
                .collect();
            assert_eq!(ids, want, "{format} {stream}: every record once, in order");
        }
    }
}

/// The values of an Int64 or Utf8 Arrow column as JSON.
fn arrow_cast_to_json(array: &dyn arrow_array::Array) -> Vec<Value> {
    use arrow_array::cast::AsArray;
    match array.data_type() {
        arrow_schema::DataType::Int64 => {
            array.as_primitive::<arrow_array::types::Int64Type>().iter().map(|v| json!(v)).collect()
        }
        _ => array.as_string::<i32>().iter().map(|v| json!(v)).collect(),
    }
}

#[test]
fn hard_delete_removes_older_versions_from_the_bucket() {
    let s3 = s3();
    let bucket = s3.bucket("hard-delete");
    let sync = |version: u64, ids: &[i64]| {
        let mut lines = vec![
            r#"{"type":"SCHEMA","stream":"users","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#
                .to_string(),
        ];
        for id in ids {
            lines.push(format!(r#"{{"type":"RECORD","stream":"users","record":{{"id":{id}}},"version":{version}}}"#));
        }
        lines.push(format!(r#"{{"type":"ACTIVATE_VERSION","stream":"users","version":{version}}}"#));
        lines.join("\n") + "\n"
    };
    let config = s3.config(
        &bucket,
        json!({"activate_version_mode": "folder", "hard_delete": true, "prefix": "lake", "compression": "none"}),
    );
    // an unrelated object next to the version folders is never touched
    runtime()
        .block_on(
            s3.client.put_object().bucket(&bucket).key("lake/users/README.txt").body(b"keep".to_vec().into()).send(),
        )
        .unwrap();
    assert_eq!(run(&config, &sync(100, &[1, 2])).code, 0);
    let r = run(&config, &sync(101, &[3]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let keys: Vec<String> = s3.list(&bucket).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.contains(&"lake/users/README.txt".to_string()), "{keys:?}");
    let data: Vec<&String> = keys.iter().filter(|k| k.starts_with("lake/users/101/")).collect();
    assert_eq!(data.len(), 1, "{keys:?}");
    assert_eq!(String::from_utf8(s3.get(&bucket, data[0])).unwrap(), "{\"id\":3}\n");
}

#[test]
fn batch_files_on_s3_load_like_records() {
    let s3 = s3();
    let bucket = s3.bucket("batch-s3");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 1..=3 {
        writeln!(gz, r#"{{"id":{i}}}"#).unwrap();
    }
    let body = gz.finish().unwrap();
    runtime()
        .block_on(s3.client.put_object().bucket(&bucket).key("batches/users-0001.json.gz").body(body.into()).send())
        .unwrap();
    let schema = r#"{"type":"SCHEMA","stream":"users","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#;
    let batch = json!({"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl", "compression": "gzip"},
                       "manifest": [format!("s3://{bucket}/batches/users-0001.json.gz")]});
    let input = format!("{schema}\n{batch}\n{}\n", r#"{"type":"STATE","value":{"users":3}}"#);
    let config = s3.config(&bucket, json!({"compression": "none", "prefix": "out"}));
    let r = run(&config, &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, [r#"{"users":3}"#]);
    let keys: Vec<String> = s3.list(&bucket).into_iter().map(|(k, _)| k).filter(|k| k.starts_with("out/")).collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(String::from_utf8(s3.get(&bucket, &keys[0])).unwrap(), "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n");

    // a batch file that is not there: one line naming the URL, no STATE
    let missing = json!({"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl"},
                         "manifest": [format!("s3://{bucket}/batches/nope.json")]});
    let r = run(&config, &format!("{schema}\n{missing}\n{}\n", r#"{"type":"STATE","value":{"users":4}}"#));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains("line 2 (stream \"users\")") && last.contains("nope.json"), "{last}");
}

/// A hotglue-style job: job variables in the environment, hotglue's own config keys, and the
/// runner's exact shell pipeline; the state file ends with the final state and holds nothing else.
#[test]
fn hotglue_job_pipeline() {
    let s3 = s3();
    let bucket = s3.bucket("hotglue");
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "bucket": bucket, "path_prefix": "{tenant}/{flow_id}/{job_id}",
        "aws_access_key_id": s3.access_key, "aws_secret_access_key": s3.secret_key,
        "endpoint_url": s3.endpoint, "region": "us-east-1", "force_path_style": true,
        "max_records_per_file": 25,
    });
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.path().join("data.singer"), sample()).unwrap();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cat data.singer | {BIN} --config config.json > target-state.json"))
        .current_dir(dir.path())
        .env("TENANT", "acme")
        .env("FLOW", "fl-7")
        .env("JOB_ID", "job-42")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let keys: Vec<String> = s3.list(&bucket).into_iter().map(|(k, _)| k).collect();
    assert!(keys.iter().all(|k| k.starts_with("acme/fl-7/job-42/")), "{keys:?}");
    for stream in ["orders", "users"] {
        // 60 records at 25 per file; the part number orders them
        let mine: Vec<&String> =
            keys.iter().filter(|k| k.starts_with(&format!("acme/fl-7/job-42/{stream}/"))).collect();
        assert_eq!(mine.len(), 3, "{keys:?}");
        let body: Vec<u8> = mine.iter().flat_map(|k| s3.get(&bucket, k)).collect();
        assert_holds_records("jsonl", &body, &sample(), stream, stream);
    }
    assert_eq!(keys.len(), 6, "{keys:?}");
    let state = std::fs::read_to_string(dir.path().join("target-state.json")).unwrap();
    let lines: Vec<Value> = state.lines().map(|l| serde_json::from_str(l).expect("only state values")).collect();
    assert_eq!(lines.last(), states_of(&sample()).last(), "the last line is the final state");
}

/// A bucket policy that denies uploads: the run fails naming the IAM action and the resource,
/// prints no STATE and leaves nothing behind; `--check` names the denied step.
#[test]
fn a_denied_upload_names_the_iam_action() {
    let s3 = s3_auth();
    let bucket = s3.bucket("denied");
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
        "Action": "s3:PutObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
    runtime().block_on(s3.client.put_bucket_policy().bucket(&bucket).policy(policy.to_string()).send()).unwrap();
    let config = s3.config(&bucket, json!({}));
    let r = run(&config, &sample());
    assert_eq!(r.code, 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains("access denied") && last.contains("s3:PutObject"), "{last}");
    assert!(r.stdout.is_empty());
    assert!(s3.list_all(&bucket).is_empty());
    assert_eq!(s3.multipart_uploads(&bucket), 0);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let check = run_args(&["--config", path.to_str().unwrap(), "--check"], "");
    assert_eq!(check.code, 1);
    let denied = check.stdout.iter().find(|l| !l.starts_with("ok")).expect("a failed step");
    assert!(denied.contains("s3:PutObject") && denied.contains("access denied"), "{denied}");
}

/// `content_encoding`: by default a compressed object is what its name says (a gzip file, which
/// an HTTP client downloads as such); `auto` sends the inner format with `Content-Encoding`, which
/// HTTP clients undo on the fly. The gzip header names the file without `.gz` either way.
#[test]
fn compressed_objects_are_what_their_names_say_unless_asked() {
    let s3 = s3();
    for (setting, compression, content_type, encoding) in [
        ("none", "gzip", "application/gzip", None),
        ("none", "zstd", "application/zstd", None),
        ("auto", "gzip", "text/csv", Some("gzip")),
        ("auto", "zstd", "text/csv", Some("zstd")),
        ("none", "none", "text/csv", None),
    ] {
        let bucket = s3.bucket("encoding");
        let config = s3.config(
            &bucket,
            json!({"format": "csv", "compression": compression, "content_encoding": setting, "write_manifest": false}),
        );
        let r = run(&config, &sample());
        assert_eq!(r.code, 0, "{}", r.stderr);
        for (key, _) in s3.list(&bucket) {
            let head = runtime().block_on(s3.client.head_object().bucket(&bucket).key(&key).send()).unwrap();
            assert_eq!(head.content_type(), Some(content_type), "{setting} {compression} {key}");
            assert_eq!(head.content_encoding(), encoding, "{setting} {compression} {key}");
            if compression == "gzip" {
                let out = runtime().block_on(s3.client.get_object().bucket(&bucket).key(&key).send()).unwrap();
                let raw = runtime().block_on(out.body.collect()).unwrap().into_bytes();
                let decoder = flate2::read::GzDecoder::new(&raw[..]);
                let name = key.rsplit('/').next().unwrap().trim_end_matches(".gz");
                assert_eq!(decoder.header().and_then(|h| h.filename()), Some(name.as_bytes()), "FNAME of {key}");
            }
        }
    }
}
