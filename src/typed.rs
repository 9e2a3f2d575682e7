//! Typed columns for the binary formats (Parquet, Avro), derived from the stream's JSON Schema
//! and never from the data, so every file of a stream has the same schema until the SCHEMA
//! changes. Also the value parsers both formats share: they read the record's raw JSON text
//! (no `serde_json::Value` per record) and say precisely why a value does not fit its column.
//!
//! Type rules (README "Parquet and Avro"):
//! `integer` -> int64; `number` -> float64, or decimal(38, k) when `multipleOf` is 10^-k;
//! `boolean`; `string` -> text, `format: date-time` -> timestamp (µs, UTC), `format: date` ->
//! date; `object` with `properties` -> struct (JSON text when `nested_as_json` or no properties);
//! `array` -> list of its `items`; `["null", T]` and `anyOf`/`oneOf` with null -> nullable T;
//! anything else (several types, no type) -> JSON text.
//! A column is non-nullable only when its type excludes null and its parent lists it in
//! `required`.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::encode::METADATA_COLUMNS;
use crate::schema::Key;

#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: Type,
    pub nullable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Int,
    Float,
    /// Precision 38; `scale` digits after the point.
    Decimal {
        scale: u8,
    },
    Bool,
    Text,
    /// Any JSON value, kept as its JSON text.
    Json,
    /// Microseconds since the epoch, UTC.
    Timestamp,
    /// Days since the epoch.
    Date,
    Struct(Vec<Field>),
    List(Box<Field>),
}

impl Type {
    /// What a value of this column must be, for error messages.
    pub fn expected(&self) -> &'static str {
        match self {
            Type::Int => "a 64-bit integer",
            Type::Float => "a number",
            Type::Decimal { .. } => "a decimal with at most the schema's places (multipleOf) and 38 digits",
            Type::Bool => "a boolean",
            Type::Text | Type::Json => "text",
            Type::Timestamp => "a date-time",
            Type::Date => "a date (YYYY-MM-DD)",
            Type::Struct(_) => "an object",
            Type::List(_) => "an array",
        }
    }
}

/// The columns of a stream: the schema's properties in the order the schema lists them, then
/// the `_sdc_*` metadata columns when `metadata` is on (those the schema lacks).
pub fn columns(schema_text: &str, nested_as_json: bool, metadata: bool) -> Vec<Field> {
    let mut fields = match serde_json::from_str::<Value>(schema_text) {
        Ok(schema) => struct_fields(schema_text, &schema, nested_as_json),
        Err(_) => Vec::new(),
    };
    if metadata {
        for name in METADATA_COLUMNS {
            if fields.iter().any(|f| f.name == name) {
                continue;
            }
            let ty = match name {
                "_sdc_sequence" | "_sdc_table_version" => Type::Int,
                _ => Type::Timestamp,
            };
            fields.push(Field { name: name.to_string(), ty, nullable: true });
        }
    }
    fields
}

/// The fields of an object schema, in the order of its `properties` text.
fn struct_fields(text: &str, schema: &Value, nested_as_json: bool) -> Vec<Field> {
    let required: Vec<&str> = match schema.get("required") {
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let Ok(Some(props)) = crate::schema::properties_of(text) else { return Vec::new() };
    props
        .into_iter()
        .map(|(name, raw)| {
            let sub: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
            let (ty, nullable) = resolve(raw.get(), &sub, nested_as_json);
            let nullable = nullable || !required.contains(&name.as_str());
            Field { name, ty, nullable }
        })
        .collect()
}

/// A property schema's type and whether it admits null.
fn resolve(text: &str, schema: &Value, nested_as_json: bool) -> (Type, bool) {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => {
            // `anyOf`/`oneOf` of one type and null is a nullable type.
            let alternatives = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Value::as_array);
            if let Some(alternatives) = alternatives {
                let is_null = |a: &&Value| a.get("type").and_then(Value::as_str) == Some("null");
                let others: Vec<&Value> = alternatives.iter().filter(|a| !is_null(a)).collect();
                if let [only] = others.as_slice() {
                    let nullable = others.len() < alternatives.len();
                    // The alternative's own text keeps its properties' order.
                    let key = if schema.get("anyOf").is_some() { "anyOf" } else { "oneOf" };
                    let texts: Vec<&RawValue> = crate::schema::member(text, key)
                        .and_then(|raw| serde_json::from_str(raw.get()).ok())
                        .unwrap_or_default();
                    let position = alternatives.iter().position(|a| std::ptr::eq(a, *only)).unwrap_or(0);
                    let text = texts.get(position).map_or("{}", |raw| raw.get());
                    let (ty, n) = resolve(text, only, nested_as_json);
                    return (ty, n || nullable);
                }
            }
            return (Type::Json, true);
        }
    };
    let nullable = types.is_empty() || types.contains(&"null");
    let mut non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    non_null.sort_unstable();
    let ty = match non_null.as_slice() {
        ["integer"] => Type::Int,
        ["integer", "number"] | ["number"] => number_type(schema),
        ["boolean"] => Type::Bool,
        ["string"] => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Type::Timestamp,
            Some("date") => Type::Date,
            _ => Type::Text,
        },
        ["object"] => match schema.get("properties").and_then(Value::as_object) {
            Some(p) if !p.is_empty() && !nested_as_json => Type::Struct(struct_fields(text, schema, nested_as_json)),
            _ => Type::Json,
        },
        ["array"] => {
            let item = match schema.get("items") {
                Some(items @ Value::Object(_)) => {
                    let text = crate::schema::member(text, "items").map_or("{}", |raw| raw.get());
                    let (ty, nullable) = resolve(text, items, nested_as_json);
                    Field { name: "item".into(), ty, nullable }
                }
                _ => Field { name: "item".into(), ty: Type::Json, nullable: true },
            };
            Type::List(Box::new(item))
        }
        _ => Type::Json,
    };
    (ty, nullable)
}

/// `multipleOf: 0.01` (a power of ten below one) asks for exact decimals with that many places.
fn number_type(schema: &Value) -> Type {
    let Some(step) = schema.get("multipleOf").and_then(Value::as_f64) else { return Type::Float };
    (0u8..=18)
        .find(|k| (step * 10f64.powi(i32::from(*k)) - 1.0).abs() < 1e-9)
        .map_or(Type::Float, |scale| Type::Decimal { scale })
}

/// A value that does not fit its column: what, where, and what was expected.
#[derive(Debug)]
pub struct Problem {
    pub path: String,
    pub value: String,
    pub expected: &'static str,
}

impl Problem {
    pub fn new(path: &str, raw: &str, expected: &'static str) -> Problem {
        let mut value: String = raw.chars().take(80).collect();
        if value.len() < raw.len() {
            value.push_str("...");
        }
        Problem { path: path.to_string(), value, expected }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field `{}`: {} is not {}", self.path, self.value, self.expected)
    }
}

/// What to do with a value that does not fit its column (`unparseable_values`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unparseable {
    Fail,
    Null,
}

/// What happened to the values of one record.
pub struct Outcome {
    pub policy: Unparseable,
    /// Values written as null, and the first of them.
    pub nulled: u64,
    pub first: Option<String>,
}

impl Outcome {
    pub fn new(policy: Unparseable) -> Outcome {
        Outcome { policy, nulled: 0, first: None }
    }

    /// A value does not fit: an error, or (policy `null`, nullable column) a counted null.
    pub fn refuse(&mut self, problem: Problem, nullable: bool) -> Result<(), Problem> {
        if self.policy == Unparseable::Null && nullable {
            self.nulled += 1;
            if self.first.is_none() {
                self.first = Some(problem.to_string());
            }
            Ok(())
        } else {
            Err(problem)
        }
    }
}

/// The top level of a typed file's records, shared by Parquet and Avro: finds each column's
/// raw value (or its `_sdc_*` metadata value), applies the `unparseable_values` policy and
/// keeps its count.
pub struct Rows {
    index: FieldIndex,
    slots: Vec<Option<(usize, usize)>>,
    /// Columns filled from the `_sdc_*` metadata: (column, metadata index).
    metadata: Vec<(usize, usize)>,
    policy: Unparseable,
    /// Values written as null under `unparseable_values: null`, and the first one's message.
    pub nulled: u64,
    pub first_nulled: Option<String>,
}

impl Rows {
    pub fn new(fields: &[Field], policy: Unparseable) -> Rows {
        let metadata = fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| METADATA_COLUMNS.iter().position(|m| *m == f.name).map(|m| (i, m)))
            .collect();
        Rows {
            index: FieldIndex::new(fields),
            slots: vec![None; fields.len()],
            metadata,
            policy,
            nulled: 0,
            first_nulled: None,
        }
    }

    /// Calls `column(i, raw, outcome)` for every column of `record`, in order: `raw` is the
    /// value's JSON text, the metadata value for an `_sdc_*` column the record lacks, or `None`.
    pub fn each<'r>(
        &mut self,
        record: &'r str,
        metadata: Option<&'r [String; 6]>,
        mut column: impl FnMut(usize, Option<&'r str>, &mut Outcome) -> Result<(), Problem>,
    ) -> Result<(), String> {
        members(record, &self.index, &mut self.slots).map_err(|e| e.to_string())?;
        let mut outcome = Outcome::new(self.policy);
        for (i, slot) in self.slots.iter().enumerate() {
            let raw = match slot {
                Some((start, len)) => Some(&record[*start..*start + *len]),
                None => metadata.and_then(|m| self.metadata.iter().find(|(c, _)| *c == i).map(|(_, k)| m[*k].as_str())),
            };
            column(i, raw, &mut outcome).map_err(|p| p.to_string())?;
        }
        self.nulled += outcome.nulled;
        if self.first_nulled.is_none() {
            self.first_nulled = outcome.first;
        }
        Ok(())
    }
}

/// A null (or absent) value where the schema requires one.
pub fn required(path: &str, raw: Option<&str>) -> Problem {
    Problem::new(path, raw.unwrap_or("a missing value"), "allowed: the schema requires a value")
}

/// The text a string value stands for (borrowed unless it has escapes); a non-string value's
/// JSON text.
pub fn text(raw: &str) -> Cow<'_, str> {
    let b = raw.as_bytes();
    if b.first() == Some(&b'"') {
        if !raw.contains('\\') {
            return Cow::Borrowed(&raw[1..raw.len() - 1]);
        }
        if let Ok(s) = serde_json::from_str::<String>(raw) {
            return Cow::Owned(s);
        }
    }
    Cow::Borrowed(raw)
}

/// A number's text: the JSON number itself, or the contents of a string holding one.
fn number_text(raw: &str) -> &str {
    raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')).unwrap_or(raw).trim()
}

pub fn int(raw: &str) -> Option<i64> {
    let t = number_text(raw);
    t.parse::<i64>().ok().or_else(|| {
        // `1.0` and `1e3` are integers too; anything with a fraction is not.
        let f = t.parse::<f64>().ok()?;
        (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
    })
}

pub fn float(raw: &str) -> Option<f64> {
    let t = number_text(raw);
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

pub fn boolean(raw: &str) -> Option<bool> {
    match raw {
        "true" | "\"true\"" => Some(true),
        "false" | "\"false\"" => Some(false),
        _ => None,
    }
}

/// The number as an integer count of 10^-scale, exactly: a value with more places than the
/// scale, or beyond 38 digits, does not fit (no silent rounding).
pub fn decimal(raw: &str, scale: u8) -> Option<i128> {
    let t = number_text(raw);
    let (negative, t) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut digits: i128 = 0;
    let mut places: i32 = 0;
    for (i, c) in whole.bytes().chain(fraction.bytes()).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        if i >= whole.len() {
            places += 1;
        }
        digits = digits.checked_mul(10)?.checked_add(i128::from(c - b'0'))?;
    }
    // value = digits * 10^(exponent - places); want value * 10^scale.
    let shift = exponent - places + i32::from(scale);
    let mut value = digits;
    if shift >= 0 {
        value = value.checked_mul(10i128.checked_pow(shift as u32)?)?;
    } else {
        let divisor = 10i128.checked_pow((-shift) as u32)?;
        if value % divisor != 0 {
            return None;
        }
        value /= divisor;
    }
    if value.unsigned_abs() >= 10u128.pow(38) {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// Microseconds since the epoch (UTC). Offsets are honoured; a date-time without one is UTC;
/// a bare date is midnight.
pub fn timestamp(raw: &str) -> Option<i64> {
    let s = raw.strip_prefix('"')?.strip_suffix('"')?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros())
}

/// Days since the epoch; a date-time's UTC date is accepted too.
pub fn date(raw: &str) -> Option<i32> {
    let s = raw.strip_prefix('"')?.strip_suffix('"')?;
    let day = match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) => d,
        Err(_) => DateTime::from_timestamp_micros(timestamp(raw)?)?.date_naive(),
    };
    Some((day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32)
}

/// Where an object's members sit in the record text, by field index: byte ranges relative to
/// the start of `raw`, reset first. Members that are not fields are skipped (as JSONL keeps
/// them, JSON columns keep them; typed columns have no place for them).
pub fn members(raw: &str, index: &FieldIndex, slots: &mut [Option<(usize, usize)>]) -> Result<(), serde_json::Error> {
    slots.fill(None);
    let mut de = serde_json::Deserializer::from_str(raw);
    Members { index, base: raw.as_ptr() as usize, slots }.deserialize(&mut de)?;
    de.end()
}

/// Byte ranges of an array's elements, relative to the start of `raw`, appended to `out`.
pub fn elements(raw: &str, out: &mut Vec<(usize, usize)>) -> Result<(), serde_json::Error> {
    out.clear();
    let mut de = serde_json::Deserializer::from_str(raw);
    Elements { base: raw.as_ptr() as usize, out }.deserialize(&mut de)?;
    de.end()
}

/// Field name -> index, for matching members without allocating.
#[derive(Debug, Default)]
pub struct FieldIndex(HashMap<String, usize, foldhash::fast::RandomState>);

impl FieldIndex {
    pub fn new(fields: &[Field]) -> FieldIndex {
        FieldIndex(fields.iter().enumerate().map(|(i, f)| (f.name.clone(), i)).collect())
    }
}

struct Members<'a> {
    index: &'a FieldIndex,
    base: usize,
    slots: &'a mut [Option<(usize, usize)>],
}

impl<'de> DeserializeSeed<'de> for Members<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Members<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            if let Some(i) = self.index.0.get(key.0.as_ref()) {
                let text = value.get();
                self.slots[*i] = Some((text.as_ptr() as usize - self.base, text.len()));
            }
        }
        Ok(())
    }
}

struct Elements<'a> {
    base: usize,
    out: &'a mut Vec<(usize, usize)>,
}

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<&'de RawValue>()? {
            let text = value.get();
            self.out.push((text.as_ptr() as usize - self.base, text.len()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_the_schema() {
        let schema = r#"{"type":"object","required":["id"],"properties":{
            "id":{"type":"integer"},
            "price":{"type":["null","number"],"multipleOf":0.01},
            "ratio":{"type":"number"},
            "ok":{"type":"boolean"},
            "at":{"type":["string","null"],"format":"date-time"},
            "day":{"anyOf":[{"type":"string","format":"date"},{"type":"null"}]},
            "o":{"type":"object","properties":{"a":{"type":"string"}}},
            "free":{"type":"object"},
            "tags":{"type":"array","items":{"type":"string"}},
            "lines":{"type":"array","items":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"integer"}}}},
            "mixed":{"type":["string","integer"]},
            "any":{}
        }}"#;
        let cols = columns(schema, false, false);
        let got: Vec<(&str, &Type, bool)> = cols.iter().map(|f| (f.name.as_str(), &f.ty, f.nullable)).collect();
        assert_eq!(
            got,
            vec![
                ("id", &Type::Int, false),
                ("price", &Type::Decimal { scale: 2 }, true),
                ("ratio", &Type::Float, true),
                ("ok", &Type::Bool, true),
                ("at", &Type::Timestamp, true),
                ("day", &Type::Date, true),
                ("o", &Type::Struct(vec![Field { name: "a".into(), ty: Type::Text, nullable: true }]), true),
                ("free", &Type::Json, true),
                ("tags", &Type::List(Box::new(Field { name: "item".into(), ty: Type::Text, nullable: false })), true),
                (
                    "lines",
                    &Type::List(Box::new(Field {
                        name: "item".into(),
                        ty: Type::Struct(vec![
                            Field { name: "z".into(), ty: Type::Text, nullable: true },
                            Field { name: "a".into(), ty: Type::Int, nullable: true },
                        ]),
                        nullable: false
                    })),
                    true
                ),
                ("mixed", &Type::Json, true),
                ("any", &Type::Json, true),
            ]
        );
        assert_eq!(columns(schema, true, false)[6].ty, Type::Json, "nested_as_json");
        let with_meta = columns(schema, false, true);
        assert_eq!(with_meta.len(), 12 + METADATA_COLUMNS.len());
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(decimal("12.34", 2), Some(1234));
        assert_eq!(decimal("-0.5", 2), Some(-50));
        assert_eq!(decimal("\"7\"", 3), Some(7000));
        assert_eq!(decimal("1.5e2", 2), Some(15000));
        assert_eq!(decimal("12.345", 2), None, "no silent rounding");
        assert_eq!(decimal("12.340", 2), Some(1234));
        assert_eq!(decimal("abc", 2), None);
        assert_eq!(decimal("1e40", 0), None);
    }

    #[test]
    fn scalars_parse_from_raw_text() {
        assert_eq!(int("9007199254740993"), Some(9007199254740993), "beyond f64, exact");
        assert_eq!(int("2.0"), Some(2));
        assert_eq!(int("2.5"), None);
        assert_eq!(int("\"42\""), Some(42));
        assert_eq!(int("123456789012345678901234"), None);
        assert_eq!(float("1.25"), Some(1.25));
        assert_eq!(boolean("true"), Some(true));
        assert_eq!(boolean("1"), None);
        assert_eq!(timestamp("\"2026-01-02T03:04:05.123456Z\""), Some(1_767_323_045_123_456));
        assert_eq!(timestamp("\"2026-01-02T05:04:05.123456+02:00\""), Some(1_767_323_045_123_456));
        assert_eq!(timestamp("\"2026-01-02T03:04:05.123456\""), Some(1_767_323_045_123_456), "no offset is UTC");
        assert_eq!(timestamp("\"2026-01-02 03:04:05.123456\""), Some(1_767_323_045_123_456));
        assert_eq!(timestamp("\"yesterday\""), None);
        assert_eq!(date("\"1970-01-11\""), Some(10));
        assert_eq!(date("\"1969-12-31\""), Some(-1));
        assert_eq!(text(r#""a\"b""#), "a\"b");
        assert_eq!(text(r#""plain""#), "plain");
        assert_eq!(text("12"), "12");
    }

    #[test]
    fn members_and_elements_are_located() {
        let fields = columns(r#"{"properties":{"a":{},"b":{}}}"#, false, false);
        let index = FieldIndex::new(&fields);
        let raw = r#"{"b": [1, {"x":2}], "zz": 1, "a":"s"}"#;
        let mut slots = vec![None; 2];
        members(raw, &index, &mut slots).unwrap();
        let (s, l) = slots[0].unwrap();
        assert_eq!(&raw[s..s + l], "\"s\"");
        let (s, l) = slots[1].unwrap();
        let list = &raw[s..s + l];
        let mut out = Vec::new();
        elements(list, &mut out).unwrap();
        let got: Vec<&str> = out.iter().map(|(s, l)| &list[*s..*s + *l]).collect();
        assert_eq!(got, vec!["1", r#"{"x":2}"#]);
    }
}
