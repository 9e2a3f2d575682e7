//! Faults injected between target-s3 and a real S3 server: transient ones must not change the
//! result (same objects, same bytes, same STATE lines); permanent ones must fail the run quickly
//! and cleanly (no STATE, no visible object, no unfinished multipart upload).

mod common;

use std::time::{Duration, Instant};

use common::proxy::{Fault, Proxy};
use common::*;
use serde_json::{Value, json};

/// Two streams: `big` grows past several 5 MiB parts (multipart), `small` stays one PutObject.
fn input() -> String {
    let mut s = String::new();
    s.push_str(r#"{"type":"SCHEMA","stream":"big","schema":{"properties":{"id":{"type":"integer"},"pad":{"type":"string"}}},"key_properties":["id"]}"#);
    s.push('\n');
    s.push_str(r#"{"type":"SCHEMA","stream":"small","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#);
    s.push('\n');
    let pad = "x".repeat(500);
    for i in 0..30_000 {
        s.push_str(&format!(
            "{{\"type\":\"RECORD\",\"stream\":\"big\",\"record\":{{\"id\":{i},\"pad\":\"{pad}\"}}}}\n"
        ));
        if i % 1000 == 0 {
            s.push_str(&format!("{{\"type\":\"RECORD\",\"stream\":\"small\",\"record\":{{\"id\":{i}}}}}\n"));
        }
        if i % 5000 == 4999 {
            s.push_str(&format!("{{\"type\":\"STATE\",\"value\":{{\"upto\":{i}}}}}\n"));
        }
    }
    s
}

fn config(s3: &S3Server, bucket: &str, endpoint: &str, extra: Value) -> Value {
    let mut c = s3.config(
        bucket,
        json!({"endpoint_url": endpoint, "compression": "none", "part_size": 5 * 1024 * 1024,
               "max_records_per_file": 0, "run_id": "fixed", "max_retries": 4, "request_timeout_seconds": 2,
               "write_manifest": false}),
    );
    c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c
}

fn contents(s3: &S3Server, bucket: &str) -> Vec<(String, Vec<u8>)> {
    s3.list(bucket).into_iter().map(|(k, _)| (k.clone(), s3.get(bucket, &k))).collect()
}

#[test]
fn transient_faults_change_nothing() {
    let s3 = s3();
    let input = input();
    let clean_bucket = s3.bucket("clean");
    let clean = run(&config(s3, &clean_bucket, &s3.endpoint, json!({})), &input);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let want = contents(s3, &clean_bucket);
    assert_eq!(want.len(), 2);

    let bucket = s3.bucket("faulty");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    // throttling on the first requests, then a reset in the middle of a part, a part answered
    // after the client gave up waiting, and a part whose answer is cut short
    proxy.inject(&[Fault::SlowDown, Fault::SlowDown, Fault::InternalError], None);
    let r = run(&config(s3, &bucket, &proxy.endpoint, json!({})), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(proxy.faults_left(), 0, "every injected fault was hit");
    let bucket2 = s3.bucket("faulty-parts");
    proxy.inject(
        &[Fault::ResetMidBody, Fault::Delay(Duration::from_secs(4)), Fault::TruncateResponse],
        Some("partNumber="),
    );
    let r2 = run(&config(s3, &bucket2, &proxy.endpoint, json!({})), &input);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert_eq!(proxy.faults_left(), 0, "the completion's answer was lost");
    assert_eq!(proxy.faults_left(), 0, "every injected part fault was hit");
    for (b, r) in [(&bucket, &r), (&bucket2, &r2)] {
        let got = contents(s3, b);
        assert_eq!(got.len(), want.len());
        for ((k1, v1), (k2, v2)) in got.iter().zip(&want) {
            assert_eq!(k1.split('/').next(), k2.split('/').next());
            assert!(v1 == v2, "object {k1} differs from the clean run's {k2} (duplicated or lost part?)");
        }
        assert_eq!(r.stdout, clean.stdout, "the same STATE lines as a clean run");
        assert_eq!(s3.multipart_uploads(b), 0);
    }
}

/// A PutObject (or CompleteMultipartUpload) that succeeded but whose answer was lost is retried;
/// the retry finds the object already there (If-None-Match: * answers 412). That is this
/// upload's own object, recognised by its write id: the run goes on as if nothing happened,
/// for data objects and the manifest alike.
#[test]
fn a_lost_answer_to_a_successful_upload_is_not_a_conflict() {
    let s3 = s3();
    let input = input();
    let clean_bucket = s3.bucket("clean-cut");
    let clean = run(&config(s3, &clean_bucket, &s3.endpoint, json!({"write_manifest": true})), &input);
    assert_eq!(clean.code, 0, "{}", clean.stderr);
    let bucket = s3.bucket("cut-answers");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    // The small stream's object and the manifest are PutObjects.
    proxy.inject(&[Fault::LoseResponse, Fault::LoseResponse], Some("x-id=PutObject"));
    let r = run(&config(s3, &bucket, &proxy.endpoint, json!({"write_manifest": true})), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(proxy.faults_left(), 0, "both answers were cut");
    proxy.inject(&[Fault::LoseResponse], Some("?uploadId="));
    let bucket2 = s3.bucket("cut-complete");
    let r2 = run(&config(s3, &bucket2, &proxy.endpoint, json!({"write_manifest": true})), &input);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert_eq!(proxy.faults_left(), 0, "the completion's answer was lost");
    for (b, r) in [(&bucket, &r), (&bucket2, &r2)] {
        assert_eq!(r.stdout, clean.stdout, "the same STATE lines as a clean run");
        let keys: Vec<String> = s3.list_all(b).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), 3, "two data objects and the manifest: {keys:?}");
        let want = contents(s3, &clean_bucket);
        let got = contents(s3, b);
        assert_eq!(got.len(), want.len());
        for ((k1, v1), (k2, v2)) in got.iter().zip(&want) {
            assert_eq!(k1.split('/').next(), k2.split('/').next());
            assert!(v1 == v2, "object {k1} differs from the clean run's {k2}");
        }
    }
}

fn assert_fails_cleanly(s3: &S3Server, bucket: &str, r: &Run, started: Instant) {
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(90), "took {:?}", started.elapsed());
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("target-s3: error: ") && last.contains("InternalError"), "{last}");
    assert!(r.stdout.is_empty(), "no STATE: {:?}", r.stdout);
    // Other streams' files may have completed (they are whole, and no STATE covers them yet);
    // the failing file itself must not be visible.
    let visible = s3.list_all(bucket);
    assert!(visible.iter().all(|(k, _)| !k.starts_with("big/")), "no partial object: {visible:?}");
    for (key, _) in &visible {
        for line in String::from_utf8(s3.get(bucket, key)).unwrap().lines() {
            serde_json::from_str::<Value>(line).expect("visible objects hold whole records");
        }
    }
    assert_eq!(s3.multipart_uploads(bucket), 0, "no unfinished multipart upload");
}

#[test]
fn every_request_failing_ends_the_run_cleanly() {
    let s3 = s3();
    let bucket = s3.bucket("perm");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    proxy.fail_always(Some(Fault::InternalError));
    let started = Instant::now();
    let r = run(&config(s3, &bucket, &proxy.endpoint, json!({"max_retries": 2})), &input());
    assert_fails_cleanly(s3, &bucket, &r, started);
}

#[test]
fn failing_parts_abort_the_multipart_upload() {
    let s3 = s3();
    let bucket = s3.bucket("parts");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    proxy.inject(&[Fault::InternalError; 200], Some("partNumber="));
    let started = Instant::now();
    let r = run(&config(s3, &bucket, &proxy.endpoint, json!({"max_retries": 1})), &input());
    assert_fails_cleanly(s3, &bucket, &r, started);
}
