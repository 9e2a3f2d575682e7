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
