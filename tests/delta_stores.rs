//! Delta tables on stores that behave differently: a store that ignores conditional writes
//! (`If-None-Match: *`, which every Delta commit relies on to lose no commit when writers race)
//! is refused before anything is written, unless `single_writer` says only one writer commits.
#![cfg(feature = "delta")]

mod common;

use common::proxy::Proxy;
use serde_json::json;

const INPUT: &str = concat!(
    r#"{"type":"SCHEMA","stream":"orders","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}"#,
    "\n",
    r#"{"type":"RECORD","stream":"orders","record":{"id":1}}"#,
    "\n",
    r#"{"type":"STATE","value":{"n":1}}"#,
    "\n",
);

#[test]
fn a_store_that_ignores_conditional_writes_is_refused_unless_single_writer() {
    let s3 = common::s3();
    let bucket = s3.bucket("conditional");
    let proxy = Proxy::start(s3.endpoint.trim_start_matches("http://"));
    proxy.strip_header("if-none-match");
    let config = |extra: serde_json::Value| {
        let mut c =
            s3.config(&bucket, json!({"endpoint_url": proxy.endpoint, "table_format": "delta", "prefix": "lake"}));
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    };
    let refused = common::run(&config(json!({})), INPUT);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let last = refused.stderr.lines().last().unwrap();
    assert!(last.contains("ignores conditional writes") && last.contains("single_writer"), "{last}");
    assert!(refused.stdout.is_empty());
    assert!(s3.list_all(&bucket).is_empty(), "nothing written, the probe removed: {:?}", s3.list_all(&bucket));

    let allowed = common::run(&config(json!({"single_writer": true})), INPUT);
    assert_eq!(allowed.code, 0, "{}", allowed.stderr);
    assert_eq!(allowed.stdout, [r#"{"n":1}"#]);
    assert!(allowed.stderr.contains("single_writer is true"), "{}", allowed.stderr);
    assert!(s3.list_all(&bucket).iter().any(|(k, _)| k.starts_with("lake/orders/_delta_log/")));

    // The same server without the proxy honours them: no refusal, no warning.
    let bucket = s3.bucket("honoured");
    let direct = common::run(&s3.config(&bucket, json!({"table_format": "delta", "prefix": "lake"})), INPUT);
    assert_eq!(direct.code, 0, "{}", direct.stderr);
    assert!(!direct.stderr.contains("conditional"), "{}", direct.stderr);
    assert!(!s3.list_all(&bucket).iter().any(|(k, _)| k.contains("_target_s3_probe")));
}

/// Switching a prefix from files to `table_format: delta` must not wrap a table around the old
/// files (a VACUUM would then delete them): a folder that is no table but holds objects
/// target-s3 did not write as table data is refused at the stream's SCHEMA line; data files a
/// failed first run left behind (`part-*.parquet`) are not foreign.
#[test]
fn a_folder_with_foreign_files_never_becomes_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    std::fs::create_dir_all(root.join("orders/2024_01_01")).unwrap();
    std::fs::write(root.join("orders/2024_01_01/orders-1.jsonl.gz"), b"old data").unwrap();
    let config = json!({"local_path": root, "table_format": "delta"});
    let refused = common::run(&config, INPUT);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let last = refused.stderr.lines().last().unwrap();
    assert!(last.contains("is not a Delta table but holds") && last.contains("orders-1.jsonl.gz"), "{last}");
    assert!(!root.join("orders/_delta_log").exists());
    assert_eq!(std::fs::read(root.join("orders/2024_01_01/orders-1.jsonl.gz")).unwrap(), b"old data");

    // Only an orphaned data file of a failed first run: the table is created.
    std::fs::remove_dir_all(root.join("orders")).unwrap();
    std::fs::create_dir_all(root.join("orders")).unwrap();
    std::fs::write(root.join("orders/part-00000-0193b6f0c9a27b3c8e3a0f6b2d1c4e5f.parquet"), b"orphan").unwrap();
    let created = common::run(&config, INPUT);
    assert_eq!(created.code, 0, "{}", created.stderr);
    assert!(root.join("orders/_delta_log").exists());
}
