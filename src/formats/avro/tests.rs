//! Avro files read back with apache-avro.

use super::*;
use crate::schema::typed;
use apache_avro::Reader;
use apache_avro::types::Value;

/// A file of `records` as the pipeline writes it: blocks from the encoder through the file's
/// container writer (the writer thread's part).
fn write_with(schema: &str, records: &[&str], policy: Unparseable, codec: AvroCodec) -> Result<(Vec<u8>, u64), String> {
    let mut enc =
        AvroEncoder::new("my-stream", typed::columns(schema, false, false), codec, policy, block_bytes(None))?;
    let mut blocks = enc.take_writer().unwrap();
    let mut out = Vec::new();
    for r in records {
        enc.encode(r, None)?;
        if let Some(rows) = enc.take_batch() {
            blocks.write(rows).unwrap();
            out.extend(blocks.take_output());
        }
    }
    enc.finish()?;
    if let Some(rows) = enc.take_batch() {
        blocks.write(rows).unwrap();
    }
    out.extend(blocks.finish().unwrap());
    Ok((out, enc.top.nulled))
}

fn write(schema: &str, records: &[&str], policy: Unparseable) -> Result<(Vec<u8>, u64), String> {
    write_with(schema, records, policy, AvroCodec::Deflate)
}

#[test]
fn values_round_trip() {
    let schema = r#"{"properties":{"id":{"type":"integer"},"bad name":{"type":"string"},"o":{"type":["null","object"],"properties":{"a":{"type":"string"},"l":{"type":"array","items":{"type":["null","integer"]}}}},"price":{"type":"number","multipleOf":0.01},"at":{"type":"string","format":"date-time"}}}"#;
    let records = [
        r#"{"id":1,"bad name":"x","o":{"a":"x","l":[1,null,3]},"price":"12.30","at":"2026-01-01T00:00:00Z"}"#,
        r#"{"id":2,"o":null}"#,
        r#"{"id":3,"o":{"l":[],"a":"é"}}"#,
    ];
    let (bytes, _) = write(schema, &records, Unparseable::Fail).unwrap();
    let reader = Reader::new(&bytes[..]).unwrap();
    let rows: Vec<Value> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 3);
    let Value::Record(first) = &rows[0] else { panic!() };
    assert_eq!(first[0], ("id".to_string(), Value::Union(1, Box::new(Value::Long(1)))));
    assert_eq!(first[1].0, "bad_name");
    assert_eq!(first[4].1, Value::Union(1, Box::new(Value::TimestampMicros(1_767_225_600_000_000))));
    let Value::Union(1, price) = &first[3].1 else { panic!("{:?}", first[3]) };
    let Value::Decimal(price) = &**price else { panic!() };
    let bytes: Vec<u8> = price.try_into().unwrap();
    assert_eq!(i128::from_be_bytes(bytes.try_into().unwrap()), 1230);
    let Value::Record(third) = &rows[2] else { panic!() };
    let Value::Union(1, o) = &third[2].1 else { panic!() };
    let Value::Record(o) = &**o else { panic!() };
    assert_eq!(o[0].1, Value::Union(1, Box::new(Value::String("é".into()))));
    assert_eq!(o[1].1, Value::Union(1, Box::new(Value::Array(vec![]))), "the previous list is not carried over");
    let Value::Record(second) = &rows[1] else { panic!() };
    assert_eq!(second[2].1, Value::Union(0, Box::new(Value::Null)));
}

#[test]
fn exact_numbers_and_postgres_arrays_round_trip() {
    let schema = r##"{"properties":{
        "ratio":{"type":["null","number"],"multipleOf":1e-38,"exclusiveMaximum":true,"maximum":1e62,"exclusiveMinimum":true,"minimum":-1e62},
        "tags":{"type":["null","array"],"items":{"$ref":"#/definitions/texts"}}},
      "definitions":{"texts":{"type":["null","string","array"],"items":{"$ref":"#/definitions/texts"}}}}"##;
    let (bytes, _) =
        write(schema, &[r#"{"ratio":0.33333333333333333333,"tags":["a1","b \"2\"",null]}"#], Unparseable::Fail)
            .unwrap();
    let rows: Vec<Value> = Reader::new(&bytes[..]).unwrap().collect::<Result<_, _>>().unwrap();
    let Value::Record(row) = &rows[0] else { panic!() };
    assert_eq!(row[0].1, Value::Union(1, Box::new(Value::String("0.33333333333333333333".into()))));
    let text = |s: &str| Value::Union(1, Box::new(Value::String(s.into())));
    let tags = Value::Array(vec![text("a1"), text("b \"2\""), Value::Union(0, Box::new(Value::Null))]);
    assert_eq!(row[1].1, Value::Union(1, Box::new(tags)), "the values, not their JSON text");
    let err = write(schema, &[r#"{"tags":[["a"]]}"#], Unparseable::Fail).unwrap_err();
    assert!(err.starts_with(r#"field `tags[]`: ["a"] is not an element of a one-dimensional array"#), "{err}");
    let (_, nulled) = write(schema, &[r#"{"tags":[["a"],"b"]}"#], Unparseable::Null).unwrap();
    assert_eq!(nulled, 1);
}

/// `levels` nested nullable objects, the innermost holding an integer `v`.
fn nested(levels: usize) -> (String, String) {
    let mut schema = r#"{"type":["null","object"],"properties":{"v":{"type":"integer"}}}"#.to_string();
    let mut record = r#"{"v":1}"#.to_string();
    for level in (1..levels).rev() {
        schema = format!(r#"{{"type":["null","object"],"properties":{{"l{level}":{schema}}}}}"#);
        record = format!(r#"{{"l{level}":{record}}}"#);
    }
    (format!(r#"{{"properties":{{"l0":{schema}}}}}"#), format!(r#"{{"l0":{record}}}"#))
}

/// The depth limit is exactly where the crate's own reader stops: the deepest schema `check`
/// accepts reads back, one level more is refused up front with the way out.
#[test]
fn schemas_too_deep_for_readers_are_refused_up_front() {
    // apache-avro's reader and writer recurse once per level: more than a test thread's
    // 2 MiB in a debug build at 30 levels (the pipeline runs on the main thread, 8 MiB).
    let test = std::thread::Builder::new().stack_size(64 << 20).spawn(too_deep).unwrap();
    test.join().unwrap();
}

fn too_deep() {
    let mut deepest = 0;
    for levels in 1..64 {
        let (schema, record) = nested(levels);
        let fields = typed::columns(&schema, false, false);
        match check("deep", &fields) {
            Ok(()) => {
                let (bytes, _) = write(&schema, &[&record], Unparseable::Fail).unwrap();
                assert_eq!(Reader::new(&bytes[..]).unwrap().count(), 1, "{levels} levels read back");
                deepest = levels;
            }
            Err(e) => {
                assert!(e.contains("`nested_as_json: true`") && e.contains("l0.l1.l2."), "{e}");
                assert_eq!(e, write(&schema, &[&record], Unparseable::Fail).unwrap_err());
                // What the check prevents: a file apache-avro's reader cannot open.
                let text = avro_schema("deep", &fields).to_string();
                assert!(Schema::parse_str(&text).is_err(), "{levels} levels parse after all");
                break;
            }
        }
    }
    assert!((25..40).contains(&deepest), "{deepest}");
    let (schema, _) = nested(deepest + 1);
    check("deep", &typed::columns(&schema, true, false)).unwrap();
}

#[test]
fn unparseable_values_fail_or_count() {
    let schema = r#"{"properties":{"n":{"type":"integer"}}}"#;
    let err = write(schema, &[r#"{"n":"many"}"#], Unparseable::Fail).unwrap_err();
    assert_eq!(err, "field `n`: \"many\" is not a 64-bit integer");
    let (_, nulled) = write(schema, &[r#"{"n":"many"}"#, r#"{"n":2}"#], Unparseable::Null).unwrap();
    assert_eq!(nulled, 1);
}

/// Every codec, files of no records, of one block and of many blocks, and a record that fails
/// in its middle (cut off again): apache-avro's reader reads back exactly the records written.
#[test]
fn every_codec_and_block_boundary_reads_back() {
    let schema = r#"{"properties":{"id":{"type":"integer"},"s":{"type":"string"},"o":{"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}}}},"n":{"type":"integer"}}}"#;
    let padding = "x".repeat(300);
    let records: Vec<String> =
        (0..3000).map(|i| format!(r#"{{"id":{i},"s":"{padding}","o":{{"a":[{i},2,3]}},"n":{}}}"#, i % 7)).collect();
    for codec in [AvroCodec::Deflate, AvroCodec::Snappy, AvroCodec::Zstd, AvroCodec::None] {
        for n in [0, 1, 3000] {
            let rows: Vec<&str> = records[..n].iter().map(String::as_str).collect();
            let (bytes, _) = write_with(schema, &rows, Unparseable::Fail, codec).unwrap();
            let back: Vec<Value> = Reader::new(&bytes[..]).unwrap().collect::<Result<_, _>>().unwrap();
            assert_eq!(back.len(), n, "{codec:?}");
            for (i, row) in back.iter().enumerate() {
                let Value::Record(fields) = row else { panic!() };
                assert_eq!(fields[0].1, Value::Union(1, Box::new(Value::Long(i as i64))), "{codec:?}");
                let Value::Union(1, o) = &fields[2].1 else { panic!() };
                let Value::Record(o) = &**o else { panic!() };
                let long = |n| Value::Union(1, Box::new(Value::Long(n)));
                assert_eq!(o[0].1, Value::Union(1, Box::new(Value::Array(vec![long(i as i64), long(2), long(3)]))));
                assert_eq!(fields[3].1, long((i % 7) as i64));
            }
        }
    }
    // A record failing at its last column leaves nothing of itself in the block.
    let mut enc = AvroEncoder::new(
        "s",
        typed::columns(schema, false, false),
        AvroCodec::None,
        Unparseable::Fail,
        block_bytes(None),
    )
    .unwrap();
    enc.encode(&records[0], None).unwrap();
    let before = enc.block.data.len();
    assert!(enc.encode(r#"{"id":1,"s":"x","o":{"a":[1]},"n":"many"}"#, None).is_err());
    assert_eq!(enc.block.data.len(), before);
    assert_eq!(enc.block.records, 1);
}

/// Record types named by their paths never clash (`shipping_address` beside `shipping.address`,
/// `arr_item` beside the items of `arr`), and a stream named after a primitive type does not
/// name its record so: apache-avro reads the files back.
#[test]
fn record_names_are_unique_and_never_primitive() {
    let schema = r#"{"properties":{
        "shipping_address":{"type":"object","properties":{"zip":{"type":"string"}}},
        "shipping":{"type":"object","properties":{"address":{"type":"object","properties":{"city":{"type":"string"}}}}},
        "arr":{"type":"array","items":{"type":"object","properties":{"r":{"type":"integer"}}}},
        "arr_item":{"type":"object","properties":{"s":{"type":"integer"}}}}}"#;
    let record =
        r#"{"shipping_address":{"zip":"1"},"shipping":{"address":{"city":"x"}},"arr":[{"r":1}],"arr_item":{"s":2}}"#;
    for stream in ["t", "string", "long"] {
        let fields = typed::columns(schema, false, false);
        let json = avro_schema(stream, &fields).to_string();
        Schema::parse_str(&json).unwrap_or_else(|e| panic!("{stream}: {e}: {json}"));
        let mut enc =
            AvroEncoder::new(stream, fields, AvroCodec::Deflate, Unparseable::Fail, block_bytes(None)).unwrap();
        let mut blocks = enc.take_writer().unwrap();
        enc.encode(record, None).unwrap();
        enc.finish().unwrap();
        blocks.write(enc.take_batch().unwrap()).unwrap();
        let bytes = blocks.finish().unwrap();
        assert_eq!(Reader::new(&bytes[..]).unwrap().count(), 1, "{stream}");
    }
    let names = avro_schema("t", &typed::columns(schema, false, false)).to_string();
    assert!(names.contains(r#""name":"t_shipping_address""#) && names.contains(r#""name":"t_shipping_address_""#));
    assert!(names.contains(r#""name":"string_""#) || !names.contains(r#""name":"string""#));
}
