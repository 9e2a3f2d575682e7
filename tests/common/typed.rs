//! Reading Parquet and Avro files back with the same crates target-s3 writes them with, into
//! canonical JSON rows, and the rows the input says they must hold (README "Parquet and Avro").

use std::collections::HashMap;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use target_s3::schema::typed::{Field, Type};

use super::files;

/// The stream's schema text as sent (re-serialising would sort its properties).
pub fn schema_of(input: &str, stream: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        r#type: String,
        stream: String,
        schema: Option<Box<RawValue>>,
    }
    input
        .lines()
        .filter_map(|l| serde_json::from_str::<Message>(l).ok())
        .find(|m| m.r#type == "SCHEMA" && m.stream == stream)
        .and_then(|m| m.schema)
        .unwrap()
        .get()
        .to_string()
}

pub fn micros(s: &str) -> i64 {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return t.timestamp_micros();
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
        .unwrap_or_else(|_| panic!("test input {s}"));
    naive.and_utc().timestamp_micros()
}

pub fn days(s: &str) -> i64 {
    (NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
}

/// A decimal number's text with exactly `scale` places, from the input's exact text (`1.5`,
/// `-0.0001`, `12`), as arrow-rs prints Decimal128 values.
pub fn decimal_text(raw: &str, scale: usize) -> String {
    let (sign, digits) = match raw.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", raw),
    };
    assert!(!digits.contains(['e', 'E']), "test input {raw}: write decimals without an exponent");
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    assert!(frac.len() <= scale, "{raw} has more than {scale} places");
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let all_zero = whole == "0" && frac.is_empty();
    let sign = if all_zero { "" } else { sign };
    if scale == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{frac:0<scale$}") }
}

/// The canonical form of an input value (its raw JSON text) in a column of `field`'s type.
pub fn expected(raw: Option<&str>, field: &Field) -> Value {
    let Some(raw) = raw.filter(|r| *r != "null") else { return Value::Null };
    let value: Value = serde_json::from_str(raw).unwrap();
    match &field.ty {
        Type::Int => json!(value.as_i64().unwrap()),
        Type::Float => json!(value.as_f64().unwrap()),
        Type::Decimal { scale } => json!(decimal_text(raw, *scale as usize)),
        Type::Numeric => json!(raw),
        Type::Timestamp => json!(micros(value.as_str().unwrap())),
        Type::Date => json!(days(value.as_str().unwrap())),
        Type::Bool | Type::Text | Type::Json => value,
        Type::Struct(fields) => {
            let members: HashMap<String, Box<RawValue>> = serde_json::from_str(raw).unwrap();
            Value::Object(
                fields.iter().map(|f| (f.name.clone(), expected(members.get(&f.name).map(|r| r.get()), f))).collect(),
            )
        }
        Type::List(item) => {
            let elements: Vec<Box<RawValue>> = serde_json::from_str(raw).unwrap();
            Value::Array(elements.iter().map(|v| expected(Some(v.get()), item)).collect())
        }
    }
}

/// The canonical form of row `i` of an Arrow array of `field`'s type.
pub fn from_arrow(array: &dyn Array, i: usize, field: &Field) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match &field.ty {
        Type::Int => json!(array.as_primitive::<Int64Type>().value(i)),
        Type::Float => json!(array.as_primitive::<Float64Type>().value(i)),
        Type::Decimal { .. } => {
            json!(array.as_primitive::<arrow_array::types::Decimal128Type>().value_as_string(i))
        }
        Type::Timestamp => json!(array.as_primitive::<TimestampMicrosecondType>().value(i)),
        Type::Date => json!(array.as_primitive::<Date32Type>().value(i)),
        Type::Bool => json!(array.as_boolean().value(i)),
        Type::Text | Type::Numeric => json!(array.as_string::<i32>().value(i)),
        Type::Json => serde_json::from_str(array.as_string::<i32>().value(i)).unwrap(),
        Type::Struct(fields) => {
            let s = array.as_struct();
            Value::Object(
                fields.iter().enumerate().map(|(c, f)| (f.name.clone(), from_arrow(s.column(c), i, f))).collect(),
            )
        }
        Type::List(item) => {
            let values = array.as_list::<i32>().value(i);
            Value::Array((0..values.len()).map(|j| from_arrow(&values, j, item)).collect())
        }
    }
}

/// The canonical form of an Avro value of `field`'s type.
pub fn from_avro(value: &apache_avro::types::Value, field: &Field) -> Value {
    use apache_avro::types::Value as A;
    match (value, &field.ty) {
        (A::Union(_, inner), _) => from_avro(inner, field),
        (A::Null, _) => Value::Null,
        (A::Long(v), _) => json!(v),
        (A::Double(v), _) => json!(v),
        (A::Boolean(v), _) => json!(v),
        (A::TimestampMicros(v), _) => json!(v),
        (A::Date(v), _) => json!(v),
        (A::Decimal(d), Type::Decimal { scale }) => {
            let bytes: Vec<u8> = d.try_into().unwrap();
            let mut padded = if bytes[0] & 0x80 != 0 { [0xff; 16] } else { [0; 16] };
            padded[16 - bytes.len()..].copy_from_slice(&bytes);
            let n = i128::from_be_bytes(padded);
            let scale = *scale as u32;
            let sign = if n < 0 { "-" } else { "" };
            let (whole, frac) = (n.abs() / 10i128.pow(scale), n.abs() % 10i128.pow(scale));
            if scale == 0 {
                json!(format!("{sign}{whole}"))
            } else {
                json!(format!("{sign}{whole}.{frac:0width$}", width = scale as usize))
            }
        }
        (A::String(s), Type::Json) => serde_json::from_str(s).unwrap(),
        (A::String(s), _) => json!(s),
        (A::Record(values), Type::Struct(fields)) => {
            Value::Object(fields.iter().zip(values).map(|(f, (_, v))| (f.name.clone(), from_avro(v, f))).collect())
        }
        (A::Array(items), Type::List(item)) => Value::Array(items.iter().map(|v| from_avro(v, item)).collect()),
        (other, _) => panic!("unexpected Avro value {other:?} for {field:?}"),
    }
}

/// Rows of every `.parquet` file of `stream` under `root`, canonical; and each file's schema.
pub fn parquet_rows(root: &Path, stream: &str, fields: &[Field]) -> (Vec<Value>, Vec<arrow_schema::SchemaRef>) {
    let mut rows = Vec::new();
    let mut schemas = Vec::new();
    for path in files(root).iter().filter(|p| p.starts_with(stream)) {
        let bytes = bytes::Bytes::from(std::fs::read(root.join(path)).unwrap());
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        schemas.push(builder.schema().clone());
        let reader = builder.build().unwrap();
        for batch in reader {
            let batch: RecordBatch = batch.unwrap();
            for i in 0..batch.num_rows() {
                rows.push(Value::Object(
                    fields
                        .iter()
                        .enumerate()
                        .map(|(c, f)| (f.name.clone(), from_arrow(batch.column(c), i, f)))
                        .collect(),
                ));
            }
        }
    }
    (rows, schemas)
}

pub fn avro_rows(root: &Path, stream: &str, fields: &[Field]) -> Vec<Value> {
    let mut rows = Vec::new();
    for path in files(root).iter().filter(|p| p.starts_with(stream)) {
        let bytes = std::fs::read(root.join(path)).unwrap();
        for value in apache_avro::Reader::new(&bytes[..]).unwrap() {
            let apache_avro::types::Value::Record(values) = value.unwrap() else { panic!("not a record") };
            rows.push(Value::Object(
                fields.iter().zip(&values).map(|(f, (_, v))| (f.name.clone(), from_avro(v, f))).collect(),
            ));
        }
    }
    rows
}

/// One record's canonical row: each field's value from the record's raw text.
pub fn expected_row(record: &str, fields: &[Field]) -> Value {
    let members: HashMap<String, Box<RawValue>> = serde_json::from_str(record).unwrap();
    Value::Object(fields.iter().map(|f| (f.name.clone(), expected(members.get(&f.name).map(|r| r.get()), f))).collect())
}

pub fn expected_rows(input: &str, stream: &str, fields: &[Field]) -> Vec<Value> {
    super::records_of(input, stream).iter().map(|r| expected_row(r, fields)).collect()
}
