//! Checks of `RawConfig -> Config` (validate.rs) and of the S3 options (s3.rs).

use serde_json::{Value, json};

use super::*;
use crate::error::ConfigError;

fn raw(v: Value) -> Result<RawConfig, ConfigError> {
    RawConfig::from_map(v.as_object().unwrap().clone())
}

/// Validates with an empty environment (no job variables, no AWS variables, no HOME).
fn checked(v: Value) -> Result<Config, String> {
    raw(v).map_err(|e| e.to_string())?.validate_with(&|_| None).map_err(|e| e.to_string())
}

fn s3_of(v: Value, env: &dyn Fn(&str) -> Option<String>) -> Result<S3Options, String> {
    match raw(v).map_err(|e| e.to_string())?.validate_with(env).map_err(|e| e.to_string())?.destination {
        Destination::S3(o) => Ok(*o),
        Destination::Local { .. } => panic!("not an S3 destination"),
    }
}

fn err(v: Value) -> String {
    checked(v).unwrap_err()
}

#[test]
fn s3_destination_checks() {
    let c = checked(json!({"s3_bucket": "my-bucket", "path_prefix": "p"})).unwrap();
    assert!(matches!(c.destination, Destination::S3(ref o) if o.bucket == "my-bucket"));
    assert!(err(json!({"bucket": "My_Bucket"})).contains("setting `bucket`"));
    assert!(err(json!({"bucket": "ab"})).contains("3 to 63"));
    assert!(err(json!({"bucket": "abc", "part_size": 1024})).contains("part_size"));
    let e = err(json!({"bucket": "abc", "part_size": 5242880, "max_bytes_per_file": 60000000000u64}));
    assert!(e.contains("max_bytes_per_file") && e.contains("10,000"), "{e}");
    assert!(err(json!({"bucket": "abc", "aws_access_key_id": "AK"})).contains("aws_secret_access_key"));
    assert!(err(json!({"bucket": "abc", "server_side_encryption": "rot13"})).contains("AES256"));
    assert!(err(json!({"bucket": "abc", "kms_key_id": "k"})).contains("aws:kms"));
    assert!(err(json!({"bucket": "abc", "max_retries": 4294967296u64})).contains("0 to 100"));
    assert!(err(json!({"bucket": "abc", "role_duration_seconds": 10})).contains("900 to 43200"));
    let e = err(json!({"region": "eu-west-1"}));
    assert!(e.starts_with("setting `bucket`: is not set, but S3 settings are (region)"), "{e}");
    let c = checked(json!({"bucket": "abc", "object_tags": {"team": "data eng", "a=b": "1"}})).unwrap();
    let Destination::S3(o) = c.destination else { panic!() };
    assert_eq!(o.objects.tagging.as_deref(), Some("a%3Db=1&team=data%20eng"));
}

/// `max_bytes_per_file: 0` means no limit of the user's own; on S3 a file still closes where
/// one multipart upload can hold it, and a set value may not pass that size.
#[test]
fn zero_bytes_means_no_limit_within_what_s3_can_hold() {
    let c = checked(json!({"bucket": "abc", "max_bytes_per_file": 0})).unwrap();
    assert_eq!(c.limits.max_bytes, Some(8 * 1024 * 1024 * PLANNED_PARTS));
    let c = checked(json!({"bucket": "abc", "max_bytes_per_file": 0, "part_size": 16777216})).unwrap();
    assert_eq!(c.limits.max_bytes, Some(16 * 1024 * 1024 * PLANNED_PARTS));
    let c = checked(json!({"max_bytes_per_file": 0})).unwrap();
    assert_eq!(c.limits.max_bytes, None);
    let most = 8 * 1024 * 1024 * PLANNED_PARTS;
    assert!(checked(json!({"bucket": "abc", "max_bytes_per_file": most})).is_ok());
    let e = err(json!({"bucket": "abc", "max_bytes_per_file": most + 1}));
    assert!(e.starts_with("setting `max_bytes_per_file`: must be at most part_size x 7500"), "{e}");
    let e = err(json!({"bucket": "abc", "max_bytes_per_file": 0, "key_template": "{stream}/{cursor}-{run_id}-{part}"}));
    assert!(e.contains("cursor macros"), "{e}");
}

#[test]
fn object_tags_follow_s3_rules_at_start_up() {
    for (tags, needle) in [
        (json!({"a&b": "1"}), "key \"a&b\": '&' is not allowed"),
        (json!({"team": "r&d"}), "the value of \"team\": '&' is not allowed"),
        (json!({"team": "a\"b"}), "'\"' is not allowed"),
        (json!({"": "x"}), "1 to 128 characters"),
        (json!({"k": "v".repeat(257)}), "longer than 256"),
        (json!({"aws:cost": "x"}), "reserved"),
        (Value::Object((0..11).map(|i| (format!("k{i}"), json!("v"))).collect()), "at most 10 tags"),
    ] {
        let e = err(json!({"bucket": "abc", "object_tags": tags}));
        assert!(e.starts_with("setting `object_tags`: ") && e.contains(needle), "{needle}: {e}");
    }
    let c = checked(json!({"bucket": "abc", "object_tags": {"Zoë": "ä/b:c@d+e=f.g_h-i j"}})).unwrap();
    let Destination::S3(o) = c.destination else { panic!() };
    assert_eq!(o.objects.tagging.as_deref(), Some("Zo%C3%AB=%C3%A4%2Fb%3Ac%40d%2Be%3Df.g_h-i%20j"));
    let c = checked(json!({"bucket": "abc", "object_tags": {}})).unwrap();
    let Destination::S3(o) = c.destination else { panic!() };
    assert_eq!(o.objects.tagging, None);
}

#[test]
fn object_metadata_is_checked_and_non_ascii_encoded() {
    for (metadata, needle) in [
        (json!({"my key": "x"}), "key \"my key\": ' ' is not allowed in a metadata key"),
        (json!({"a:b": "x"}), "':' is not allowed"),
        (json!({"Zoë": "x"}), "'ë' is not allowed"),
        (json!({"": "x"}), "a key is empty"),
        (json!({"Team": "a", "team": "b"}), "the same to S3"),
        (json!({"k": "v".repeat(2048)}), "2 KB"),
    ] {
        let e = err(json!({"bucket": "abc", "object_metadata": metadata}));
        assert!(e.starts_with("setting `object_metadata`: ") && e.contains(needle), "{needle}: {e}");
    }
    let c = checked(json!({"bucket": "abc", "object_metadata": {
        "owner": "Zoë", "plain": "nightly run #4", "lines": "a\nb", "padded": " x ", "empty": ""
    }}))
    .unwrap();
    let Destination::S3(o) = c.destination else { panic!() };
    let m = o.objects.metadata.unwrap();
    assert_eq!(m["owner"], "=?UTF-8?B?Wm/Dqw==?=");
    assert_eq!(m["plain"], "nightly run #4");
    assert_eq!(m["lines"], "=?UTF-8?B?YQpi?=");
    assert_eq!(m["padded"], "=?UTF-8?B?IHgg?=");
    assert_eq!(m["empty"], "");
}

#[test]
fn base64_matches_rfc_4648() {
    for (plain, encoded) in
        [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
    {
        assert_eq!(s3::base64(plain.as_bytes()), encoded);
    }
}

#[test]
fn urls_are_shown_without_credentials() {
    assert_eq!(redact_url("http://user:pa55@host:9000/x"), "http://***@host:9000/x");
    assert_eq!(redact_url("https://u:p/a?s#s@minio.local"), "https://***@minio.local");
    assert_eq!(redact_url("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
    assert_eq!(redact_url("user:secret@host"), "***@host");
    let e = err(json!({"bucket": "abc", "endpoint_url": "ftp://user:hunter2@host"}));
    assert!(e.contains("must start with http:// or https://") && !e.contains("hunter2"), "{e}");
    let e = err(json!({"bucket": "abc", "endpoint_url": "http://user:hunter2@"}));
    assert!(e.contains("has no host") && !e.contains("hunter2"), "{e}");
    let o = s3_of(json!({"bucket": "abc", "endpoint_url": "http://user:hunter2@127.0.0.1:9"}), &|_| None).unwrap();
    assert_eq!(o.endpoint_display, "http://***@127.0.0.1:9");
    assert_eq!(o.endpoint_url.as_deref(), Some("http://user:hunter2@127.0.0.1:9"));
    let shown = format!("{o:?} {:?}", raw(json!({"endpoint_url": "http://u:hunter2@h"})).unwrap());
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn secrets_never_debug_print() {
    let c =
        raw(json!({"bucket": "abc", "aws_access_key_id": "AKIDSECRET", "aws_secret_access_key": "shh-very-secret"}))
            .unwrap();
    let shown = format!("{c:?} {:?}", c.validate_with(&|_| None).unwrap());
    assert!(!shown.contains("shh-very-secret") && !shown.contains("AKIDSECRET"), "{shown}");
}

/// The endpoint shown is the one used: the setting, else the AWS variables the SDK reads.
#[test]
fn endpoint_comes_from_the_setting_then_the_environment() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    };
    let o = s3_of(json!({"bucket": "abc"}), &env(&[])).unwrap();
    assert_eq!((o.endpoint_url, o.endpoint_display.as_str(), o.region), (None, "AWS S3", None));
    let both = env(&[("AWS_ENDPOINT_URL", "http://all:9000"), ("AWS_ENDPOINT_URL_S3", "http://s3:9000")]);
    let o = s3_of(json!({"bucket": "abc"}), &both).unwrap();
    assert_eq!(o.endpoint_url.as_deref(), Some("http://s3:9000"));
    let o = s3_of(json!({"bucket": "abc", "endpoint_url": "http://mine:1"}), &both).unwrap();
    assert_eq!(o.endpoint_display, "http://mine:1");
    let o = s3_of(json!({"bucket": "abc"}), &env(&[("AWS_ENDPOINT_URL", "http://k:s3cr3t@all:9000")])).unwrap();
    assert_eq!(o.endpoint_display, "http://***@all:9000");
    let ignored = env(&[("AWS_ENDPOINT_URL", "http://all:9000"), ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")]);
    assert_eq!(s3_of(json!({"bucket": "abc"}), &ignored).unwrap().endpoint_url, None);
    let e = s3_of(json!({"bucket": "abc"}), &env(&[("AWS_ENDPOINT_URL", "minio:9000")])).unwrap_err();
    assert!(e.starts_with("environment variable AWS_ENDPOINT_URL: must start with http"), "{e}");
}

/// With an endpoint and no region anywhere the SDK looks, the region is us-east-1 at once
/// (the SDK would ask the EC2 metadata service first); a region from the environment or the
/// profile is left to the SDK.
#[test]
fn region_defaults_only_when_nothing_else_gives_one() {
    let dir = tempfile::tempdir().unwrap();
    let aws = dir.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    std::fs::write(
        aws.join("config"),
        "[default]\noutput = json\n\n[profile eu]\nregion = eu-west-1\n[profile store]\nendpoint_url = http://u:pw@store:9000\n",
    )
    .unwrap();
    std::fs::write(aws.join("credentials"), "[creds]\naws_access_key_id = x\nregion = ap-south-1\n").unwrap();
    let home = dir.path().to_str().unwrap().to_string();
    let env = |vars: Vec<(&'static str, String)>| {
        let mut vars = vars;
        vars.push(("HOME", home.clone()));
        move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    };
    let with_endpoint = json!({"bucket": "abc", "endpoint_url": "http://127.0.0.1:9000"});
    let region = |config: &Value, vars: Vec<(&'static str, String)>| s3_of(config.clone(), &env(vars)).unwrap().region;
    assert_eq!(region(&with_endpoint, vec![]).as_deref(), Some("us-east-1"));
    assert_eq!(region(&with_endpoint, vec![("AWS_REGION", "eu-central-1".into())]), None);
    assert_eq!(region(&with_endpoint, vec![("AWS_DEFAULT_REGION", "eu-central-1".into())]), None);
    assert_eq!(region(&with_endpoint, vec![("AWS_PROFILE", "eu".into())]), None);
    assert_eq!(region(&with_endpoint, vec![("AWS_PROFILE", "creds".into())]), None);
    let mut profile = with_endpoint.clone();
    profile["aws_profile"] = json!("eu");
    assert_eq!(region(&profile, vec![]), None);
    profile["region"] = json!("sa-east-1");
    assert_eq!(region(&profile, vec![]).as_deref(), Some("sa-east-1"));
    // AWS S3 itself: the SDK's chain (on EC2, the instance's region) decides
    assert_eq!(region(&json!({"bucket": "abc"}), vec![]), None);
    // an endpoint from the environment or the profile counts as an endpoint
    assert_eq!(
        region(&json!({"bucket": "abc"}), vec![("AWS_ENDPOINT_URL", "http://x:1".into())]).as_deref(),
        Some("us-east-1")
    );
    let o = s3_of(json!({"bucket": "abc", "aws_profile": "store"}), &env(vec![])).unwrap();
    assert_eq!((o.region.as_deref(), o.endpoint_display.as_str()), (Some("us-east-1"), "http://***@store:9000"));
    assert_eq!(o.endpoint_url, None, "the SDK reads the profile's endpoint itself");
}

#[test]
fn stream_overrides_by_name_then_glob() {
    let c = checked(json!({"stream_overrides": {
        "public-*": {"format": "csv"},
        "public-users": {"compression": "zstd"},
        "x?": {"key_template": "{stream}/{uuid}"}
    }}))
    .unwrap();
    assert_eq!(c.output_for("public-users").compression, Compression::Zstd { level: 3 });
    assert_eq!(c.output_for("public-users").format, Format::Jsonl);
    assert_eq!(c.output_for("public-orders").format, Format::Csv);
    assert_eq!(c.output_for("other").format, Format::Jsonl);
    assert!(glob_match("x?", "xy") && !glob_match("x?", "xyz") && glob_match("*", "") && glob_match("a*b*c", "aXbYbc"));
    let e = err(json!({"stream_overrides": {"s": {"compression_level": 42}}}));
    assert_eq!(e, "setting `stream_overrides`: \"s\": `compression_level` gzip levels are 0 to 9, got 42");
}

#[test]
fn levels_and_formats() {
    assert_eq!(checked(json!({})).unwrap().output.compression, Compression::Gzip { level: 6 });
    let c = checked(json!({"format": "parquet", "compression": "zstd", "compression_level": 99})).unwrap();
    assert_eq!((c.output.format, c.output.compression), (Format::Parquet, Compression::None));
    assert!(err(json!({"compression": "zstd", "compression_level": 0})).contains("zstd levels are 1 to 19"));
    let e = err(json!({"compression_level": 18446744073709551615u64}));
    assert!(e.contains("gzip levels are 0 to 9, got 18446744073709551615"), "{e}");
    let c = checked(json!({"parquet_compression": "lz4", "avro_codec": "zstd", "unparseable_values": "null"})).unwrap();
    assert_eq!((c.binary.parquet_codec, c.binary.avro_codec), (ParquetCodec::Lz4, AvroCodec::Zstd));
    assert_eq!(c.binary.unparseable, crate::schema::typed::Unparseable::Null);
}

#[test]
fn csv_delimiter_by_name() {
    let c = checked(json!({"delimiter": "tab", "quote_character": "'"})).unwrap();
    assert_eq!((c.csv.delimiter, c.csv.quote), (b'\t', b'\''));
    assert!(checked(json!({"delimiter": ";;"})).is_err());
    assert!(err(json!({"delimiter": "'", "quote_character": "'"})).contains("must differ"));
}

#[test]
fn nulls_unset_and_later_files_win() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    std::fs::write(&a, r#"{"format": "csv", "prefix": "x"}"#).unwrap();
    std::fs::write(&b, r#"{"format": "jsonl", "prefix": null}"#).unwrap();
    let map = merge_sources(&[Source::File(a), Source::File(b)]).unwrap();
    let c = RawConfig::from_merged(map).unwrap();
    assert_eq!((c.format, c.prefix.as_str()), (Format::Jsonl, ""));
}
