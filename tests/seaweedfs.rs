//! The same loads against a second S3 implementation, SeaweedFS, which (unlike moto) verifies
//! signatures and the CRC32 checksums the SDK sends, single-part and multipart.

mod common;

use common::*;
use serde_json::json;

#[test]
fn round_trips_multipart_and_kms_on_seaweedfs() {
    let s3 = s3_weed();
    let input = sample();
    for (format, compression, ext) in
        [("jsonl", "gzip", ".jsonl.gz"), ("csv", "zstd", ".csv.zst"), ("json", "none", ".json")]
    {
        let bucket = s3.bucket(&format!("weed-{format}"));
        let r = run(&s3.config(&bucket, json!({"format": format, "compression": compression})), &input);
        assert_eq!(r.code, 0, "{format}: {}", r.stderr);
        assert_eq!(
            r.stdout.last().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()),
            states_of(&input).pop(),
            "{format}: final STATE"
        );
        let objects = s3.list(&bucket);
        let streams: Vec<&str> = objects.iter().map(|(k, _)| k.split('/').next().unwrap()).collect();
        assert_eq!(streams, ["orders", "users"], "one object per stream: {objects:?}");
        for ((key, _), stream) in objects.iter().zip(streams) {
            assert!(key.ends_with(ext), "{key}");
            // read back (gunzipped, zstd-decoded) and compared record by record, cell by cell
            assert_holds_records(format, &s3.get(&bucket, key), &input, stream, key);
        }
    }

    // multipart with checksums, checked by the server
    let bucket = s3.bucket("weed-multipart");
    let mut big = String::from(
        r#"{"type":"SCHEMA","stream":"e","schema":{"properties":{"id":{"type":"integer"},"p":{"type":"string"}}},"key_properties":["id"]}"#,
    );
    big.push('\n');
    let pad = "z".repeat(400);
    for i in 0..40_000 {
        big.push_str(&format!("{{\"type\":\"RECORD\",\"stream\":\"e\",\"record\":{{\"id\":{i},\"p\":\"{pad}\"}}}}\n"));
    }
    let r = run(&s3.config(&bucket, json!({"compression": "none", "part_size": 5 * 1024 * 1024})), &big);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let objects = s3.list(&bucket);
    assert_eq!(objects.len(), 1);
    let want: String = records_of(&big, "e").iter().map(|r| format!("{r}\n")).collect();
    assert!(s3.get(&bucket, &objects[0].0) == want.as_bytes(), "multipart object differs from the records");
    assert_eq!(s3.multipart_uploads(&bucket), 0);

    // SSE-KMS with the key SeaweedFS's built-in KMS knows
    let bucket = s3.bucket("weed-kms");
    let key_id = s3.kms_key_id.clone().expect("servers.py names a KMS key for seaweedfs");
    let r = run(&s3.config(&bucket, json!({"server_side_encryption": "aws:kms", "kms_key_id": key_id})), &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let objects = s3.list(&bucket);
    assert_eq!(objects.len(), 2, "{objects:?}");
    for (key, _) in objects {
        let head = runtime().block_on(s3.client.head_object().bucket(&bucket).key(&key).send()).unwrap();
        assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"), "{key}");
        // an encrypted object reads back as the records
        let stream = key.split('/').next().unwrap();
        assert_holds_records("jsonl", &s3.get(&bucket, &key), &input, stream, &key);
    }
}
