//! Real taps' numbers and arrays through the typed formats, read back by arrow-rs and
//! apache-avro: every value exact, or counted and warned, or made exact by `schema_overrides`.

mod common;

use serde_json::{Value, json};
use target_s3::schema::typed::{Field, Type, columns};

/// What pipelinewise-tap-mysql and the Hub's tap-postgres send.
const INPUT: &str = concat!(
    r#"{"type":"SCHEMA","stream":"t","key_properties":["id"],"schema":{"type":"object","properties":{"#,
    r#""id":{"type":"integer"},"#,
    r#""big":{"type":["null","integer"],"minimum":0,"maximum":18446744073709551615},"#,
    r#""money":{"type":["null","number"],"exclusiveMaximum":true,"maximum":1e28,"multipleOf":1e-10,"exclusiveMinimum":true,"minimum":-1e28},"#,
    r#""plain":{"type":["null","number"]},"#,
    r#""ints":{"type":["array","null"],"items":{"type":"integer"}},"#,
    r#""exp":{"type":["null","integer"]}}}}"#,
    "\n",
    r#"{"type":"RECORD","stream":"t","record":{"id":1,"big":18446744073709551615,"money":-9999999999999999999999999999.9999999999,"plain":12345678901234567890.1234567891,"ints":[1,null,3],"exp":1e16}}"#,
    "\n",
    r#"{"type":"RECORD","stream":"t","record":{"id":2,"big":0,"money":0.1234567891,"plain":0.1,"ints":[null],"exp":12345678901234567e0}}"#,
    "\n",
    r#"{"type":"RECORD","stream":"t","record":{"id":3,"big":null,"money":null,"plain":1.5,"ints":null,"exp":null}}"#,
    "\n",
    r#"{"type":"STATE","value":{"done":true}}"#,
    "\n",
);

fn rows(format: &str, root: &std::path::Path, fields: &[Field]) -> Vec<Value> {
    rows_of(format, root, "t", fields)
}

fn rows_of(format: &str, root: &std::path::Path, stream: &str, fields: &[Field]) -> Vec<Value> {
    if format == "parquet" {
        common::typed::parquet_rows(root, stream, fields).0
    } else {
        common::typed::avro_rows(root, stream, fields)
    }
}

#[test]
fn defaults_load_every_value_exactly_or_counted() {
    for format in ["parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let run = common::run(
            &json!({"local_path": root, "format": format, "manifest_key_template": "m-{run_id}.json", "run_id": "r"}),
            INPUT,
        );
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        assert_eq!(run.stdout, [r#"{"done":true}"#]);
        let schema = common::typed::schema_of(INPUT, "t");
        let fields = columns(&schema, false, false);
        let ty = |name: &str| fields.iter().find(|f| f.name == name).unwrap().ty.clone();
        assert_eq!(ty("big"), Type::Decimal { scale: 0 }, "BIGINT UNSIGNED holds every value in range");
        assert_eq!(ty("money"), Type::Decimal { scale: 10 });
        let got = rows(format, &root, &fields);
        assert_eq!(got[0]["big"], json!("18446744073709551615"), "{format}");
        assert_eq!(got[0]["money"], json!("-9999999999999999999999999999.9999999999"), "{format}");
        assert_eq!(got[0]["ints"], json!([1, null, 3]), "{format}");
        assert_eq!(got[1]["ints"], json!([null]), "{format}");
        assert_eq!(got[0]["exp"], json!(10_000_000_000_000_000i64), "{format}");
        assert_eq!(got[1]["exp"], json!(12_345_678_901_234_567i64), "{format}");
        assert_eq!(got[1]["plain"], json!(0.1));
        // The one rounded value is counted per field and warned about, naming the fix.
        assert!(run.stderr.contains("schema_overrides"), "{format}: {}", run.stderr);
        assert!(run.stderr.contains("null_items") && run.stderr.contains("ints"), "{}", run.stderr);
        let metric =
            run.stderr.lines().find(|l| l.contains(r#""metric":"lossy_values""#)).expect("a lossy_values METRIC");
        assert!(metric.contains(r#""value":1"#) && metric.contains(r#""field":"plain""#), "{metric}");
        let manifest: Value = serde_json::from_slice(&std::fs::read(root.join("m-r.json")).unwrap()).unwrap();
        assert_eq!(manifest["objects"][0]["lossy_values"], json!({"plain": 1}), "{format}");
        assert_eq!(manifest["null_items"], json!({"t": {"ints": 2}}), "{format}");
    }
}

#[test]
fn schema_overrides_keep_every_digit() {
    for format in ["parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let config = json!({"local_path": root, "format": format,
            "schema_overrides": {"t": {"plain": "decimal(38,10)", "money": "numeric"}}});
        let run = common::run(&config, INPUT);
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        assert!(!run.stderr.contains("lossy_values"), "{}", run.stderr);
        let mut fields = columns(&common::typed::schema_of(INPUT, "t"), false, false);
        for f in &mut fields {
            match f.name.as_str() {
                "plain" => f.ty = Type::Decimal { scale: 10 },
                "money" => f.ty = Type::Numeric,
                _ => {}
            }
        }
        let got = rows(format, &root, &fields);
        assert_eq!(got[0]["plain"], json!("12345678901234567890.1234567891"), "{format}");
        assert_eq!(got[1]["plain"], json!("0.1000000000"), "{format}");
        assert_eq!(got[0]["money"], json!("-9999999999999999999999999999.9999999999"), "{format}");
    }
    // A type that does not exist is refused at start-up, naming the setting.
    let run = common::run(&json!({"schema_overrides": {"t": {"plain": "decimal(40,2)"}}}), INPUT);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("schema_overrides") && run.stderr.contains("decimal(P,S)"), "{}", run.stderr);
}

/// Parquet and Avro name the same field for the same bad value, and the error names the
/// setting that loads it; Avro fields renamed for Avro's rules keep the tap's name in
/// `original_name`.
#[test]
fn typed_formats_agree_on_errors_and_keep_original_names() {
    let input = concat!(
        r#"{"type":"SCHEMA","stream":"m","key_properties":[],"schema":{"properties":{"unit price":{"type":["null","number"]},"made":{"type":["null","string"],"format":"date"}}}}"#,
        "\n",
        r#"{"type":"RECORD","stream":"m","record":{"unit price":1.5,"made":"soon"}}"#,
        "\n",
    );
    let mut lines = Vec::new();
    for format in ["parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let run = common::run(&json!({"local_path": dir.path(), "format": format}), input);
        assert_eq!(run.code, 1);
        let last = run.stderr.lines().last().unwrap().to_string();
        assert!(last.contains("field `made`: \"soon\" is not a date"), "{last}");
        assert!(last.contains("unparseable_values: null"), "{last}");
        lines.push(last);
        let loaded =
            common::run(&json!({"local_path": dir.path(), "format": format, "unparseable_values": "null"}), input);
        assert_eq!(loaded.code, 0, "{}", loaded.stderr);
        if format == "avro" {
            let file = common::files(dir.path()).pop().unwrap();
            let bytes = std::fs::read(dir.path().join(file)).unwrap();
            let header = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_string();
            assert!(header.contains(r#""original_name":"unit price""#), "{header}");
        }
    }
    assert_eq!(lines[0], lines[1], "the same message from both formats");
}

/// What real taps send that their own schemas do not foresee: MySQL zero dates load as null in
/// typed columns (counted as unparseable_values, warned), pipelinewise-tap-postgres's JSON
/// columns (`["null","object","array"]`) hold scalars too, and PostgreSQL's seconds in old
/// offsets (`+05:53:28`) are date-times.
#[test]
fn real_tap_values_load_with_defaults() {
    let input = concat!(
        r#"{"type":"SCHEMA","stream":"m","key_properties":[],"schema":{"properties":{"id":{"type":["null","integer"]},"d":{"type":["null","string"],"format":"date-time"},"j":{"type":["null","object","array"]},"t":{"type":["null","string"],"format":"date-time"}}}}"#,
        "\n",
        r#"{"type":"RECORD","stream":"m","record":{"id":1,"d":"0000-00-00","j":"just a string","t":"0001-01-01T05:53:28.000000+05:53:28"}}"#,
        "\n",
        r#"{"type":"RECORD","stream":"m","record":{"id":2,"d":"2024-00-00 12:00:00","j":false,"t":null}}"#,
        "\n",
        r#"{"type":"RECORD","stream":"m","record":{"id":3,"d":"2024-02-29T00:00:00+00:00","j":{"a":[1]},"t":null}}"#,
        "\n",
    );
    for format in ["jsonl", "parquet", "avro"] {
        let dir = tempfile::tempdir().unwrap();
        let run = common::run(&json!({"local_path": dir.path(), "format": format}), input);
        assert_eq!(run.code, 0, "{format}: {}", run.stderr);
        if format == "jsonl" {
            continue;
        }
        assert!(run.stderr.contains("zero dates"), "{}", run.stderr);
        let metric = run.stderr.lines().find(|l| l.contains(r#""metric":"unparseable_values""#)).expect("counted");
        assert!(metric.contains(r#""value":2"#), "{metric}");
        let fields = columns(&common::typed::schema_of(input, "m"), false, false);
        let got = rows_of(format, dir.path(), "m", &fields);
        let got: Vec<(Value, Value, Value)> =
            got.iter().map(|r| (r["d"].clone(), r["j"].clone(), r["t"].clone())).collect();
        assert_eq!(got[0], (Value::Null, json!("just a string"), json!(-62135596800000000i64)), "{format}");
        assert_eq!(got[1].0, Value::Null);
        assert_eq!(got[1].1, json!(false));
        assert_eq!(got[2].0, json!(1709164800000000i64));
    }
}

/// The manifest's cursor range keeps a bookmark's digits (a 20-digit id, a NUMERIC bookmark)
/// and orders neighbours past 2^53 and 2^64 exactly: integers from the parsed record, numbers
/// with a fraction or exponent from the record's text, on any number of workers.
#[test]
fn manifest_cursor_ranges_are_exact() {
    let schema = r#"{"type":"SCHEMA","stream":"c","key_properties":["id"],"bookmark_properties":["id"],"schema":{"properties":{"id":{"type":"number"}}}}"#;
    for (ids, min, max) in [
        (
            ["18446744073709551616", "18446744073709551617", "9007199254740993", "9007199254740992"],
            "9007199254740992",
            "18446744073709551617",
        ),
        (
            ["0.30000000000000000001", "0.3", "12345678901234567890.1234567891", "1E1"],
            "0.3",
            "12345678901234567890.1234567891",
        ),
        (["-2", "-1.00000000000000000000001", "-1", "-18446744073709551617"], "-18446744073709551617", "-1"),
    ] {
        for workers in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let mut input = format!("{schema}\n");
            for id in ids {
                input.push_str(&format!("{{\"type\":\"RECORD\",\"stream\":\"c\",\"record\":{{\"id\":{id}}}}}\n"));
            }
            let run = common::run(&json!({"local_path": dir.path(), "workers": workers}), &input);
            assert_eq!(run.code, 0, "{}", run.stderr);
            let manifest = common::all_files(dir.path()).into_iter().find(|p| p.starts_with("_manifests")).unwrap();
            let text = std::fs::read_to_string(dir.path().join(manifest)).unwrap();
            assert!(text.contains(&format!(r#""min_cursor": {min},"#)), "{workers}: {text}");
            assert!(text.contains(&format!(r#""max_cursor": {max},"#)), "{workers}: {text}");
        }
    }
}
