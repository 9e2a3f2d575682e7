//! Typed columns for the binary formats (Parquet, Avro), derived from the stream's JSON Schema
//! and never from the data, so every file of a stream has the same schema until the SCHEMA
//! changes. Also the value parsers both formats share: they read the record's raw JSON text
//! (no `serde_json::Value` per record) and say precisely why a value does not fit its column.
//!
//! Type rules (README "Parquet and Avro"):
//! `integer` -> int64; `number` -> float64, or decimal(38, k) when `multipleOf` is 10^-k and
//! the values fit 38 digits, or the number's exact text when they cannot; `boolean`; `string` ->
//! text, `format: date-time` -> timestamp (µs, UTC), `format: date` -> date; `object` with
//! `properties` -> struct (JSON text when `nested_as_json` or no properties); `array` -> list of
//! its `items` (Postgres taps' recursive array definitions: a list of their element type);
//! `["null", T]` and `anyOf`/`oneOf` with null -> nullable T; a local `$ref` -> the type it
//! points to; anything else (several types, no type, a recursive or unresolvable `$ref`) ->
//! JSON text.
//! A column is non-nullable only when its type excludes null and its parent lists it in
//! `required`.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::METADATA_COLUMNS;
use crate::json::Key;

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
    /// A number no decimal(38, k) holds and a float would round: its exact text.
    Numeric,
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
            Type::Numeric => "a number",
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
        Ok(schema) => {
            let mut ctx =
                Ctx { root: &schema, root_text: schema_text, nested_as_json, refs: vec![""], budget: MAX_FIELDS };
            struct_fields(schema_text, &schema, &mut ctx)
        }
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

/// Most fields (all levels) one stream's columns may have; past it, values are JSON text. Only
/// `$ref`s get there in practice (definitions referring to each other many times over, which
/// would otherwise expand exponentially); it is several times the widest database tables.
const MAX_FIELDS: usize = 10_000;
/// Deepest `$ref` expansion; deeper, the value is JSON text (and Avro refuses far less deep).
const MAX_REF_DEPTH: usize = 64;

/// What resolving a schema needs besides the schema at hand.
struct Ctx<'a> {
    /// The stream's whole schema, which local `$ref`s point into.
    root: &'a Value,
    /// Its text, for the order of properties in referenced definitions.
    root_text: &'a str,
    nested_as_json: bool,
    /// The `$ref` targets (JSON pointers) being expanded, the root (`""`) first: a reference
    /// back into one of them is recursion, and that value is written as JSON text.
    refs: Vec<&'a str>,
    /// Fields still allowed ([`MAX_FIELDS`]).
    budget: usize,
}

impl<'a> Ctx<'a> {
    /// The schema a local `$ref` (`#/definitions/x`, `#/$defs/x`, `#`) points to: its pointer,
    /// text and value. `None` for references into other documents and for pointers to nothing.
    fn target(&self, reference: &'a str) -> Option<(&'a str, &'a str, &'a Value)> {
        let pointer = reference.strip_prefix('#')?;
        if pointer.contains('%') {
            return None; // percent-encoded pointers: rare enough to write as JSON text
        }
        let value = self.root.pointer(pointer)?;
        let mut text = self.root_text;
        for segment in pointer.split('/').skip(1) {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            text = if text.trim_start().starts_with('[') {
                let index: usize = segment.parse().ok()?;
                serde_json::from_str::<Vec<&RawValue>>(text).ok()?.get(index)?.get()
            } else {
                crate::json::member(text, &segment)?.get()
            };
        }
        Some((pointer, text, value))
    }
}

/// The fields of an object schema, in the order of its `properties` text.
fn struct_fields<'a>(text: &'a str, schema: &'a Value, ctx: &mut Ctx<'a>) -> Vec<Field> {
    let required: Vec<&str> = match schema.get("required") {
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let Ok(Some(props)) = crate::json::properties_of(text) else { return Vec::new() };
    let Some(values) = schema.get("properties").and_then(Value::as_object) else { return Vec::new() };
    props
        .into_iter()
        .map(|(name, raw)| {
            let (ty, nullable) = match values.get(&name) {
                Some(sub) => resolve(raw.get(), sub, ctx),
                None => (Type::Json, true),
            };
            let nullable = nullable || !required.contains(&name.as_str());
            Field { name, ty, nullable }
        })
        .collect()
}

/// The declared types of a schema (`type` as a string or a list); `None` without `type`.
fn types_of(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(vec![t.as_str()]),
        Some(Value::Array(ts)) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// A property schema's type and whether it admits null.
fn resolve<'a>(text: &'a str, schema: &'a Value, ctx: &mut Ctx<'a>) -> (Type, bool) {
    if ctx.budget == 0 {
        return (Type::Json, true);
    }
    ctx.budget -= 1;
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return match ctx.target(reference) {
            Some((pointer, text, target)) if !ctx.refs.contains(&pointer) && ctx.refs.len() <= MAX_REF_DEPTH => {
                ctx.refs.push(pointer);
                let resolved = resolve(text, target, ctx);
                ctx.refs.pop();
                resolved
            }
            // recursive, too deep, or not in this document: the value as it is, JSON text
            _ => (Type::Json, true),
        };
    }
    let Some(types) = types_of(schema) else {
        // `anyOf`/`oneOf` of one type and null is a nullable type.
        let alternatives = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(Value::as_array);
        if let Some(alternatives) = alternatives {
            let is_null = |a: &&Value| a.get("type").and_then(Value::as_str) == Some("null");
            let others: Vec<&Value> = alternatives.iter().filter(|a| !is_null(a)).collect();
            if let [only] = others.as_slice() {
                let nullable = others.len() < alternatives.len();
                // The alternative's own text keeps its properties' order.
                let key = if schema.get("anyOf").is_some() { "anyOf" } else { "oneOf" };
                let texts: Vec<&RawValue> = crate::json::member(text, key)
                    .and_then(|raw| serde_json::from_str(raw.get()).ok())
                    .unwrap_or_default();
                let position = alternatives.iter().position(|a| std::ptr::eq(a, *only)).unwrap_or(0);
                let text = texts.get(position).map_or("{}", |raw| raw.get());
                let (ty, n) = resolve(text, only, ctx);
                return (ty, n || nullable);
            }
        }
        return (Type::Json, true);
    };
    let nullable = types.is_empty() || types.contains(&"null");
    let mut non_null: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    non_null.sort_unstable();
    (type_of(&non_null, text, schema, ctx), nullable)
}

/// The column type of a schema whose non-null types are `non_null` (sorted).
fn type_of<'a>(non_null: &[&str], text: &'a str, schema: &'a Value, ctx: &mut Ctx<'a>) -> Type {
    match non_null {
        ["integer"] => Type::Int,
        ["integer", "number"] | ["number"] => number_type(schema),
        ["boolean"] => Type::Bool,
        ["string"] => match schema.get("format").and_then(Value::as_str) {
            Some("date-time") => Type::Timestamp,
            Some("date") => Type::Date,
            _ => Type::Text,
        },
        ["object"] => match schema.get("properties").and_then(Value::as_object) {
            Some(p) if !p.is_empty() && !ctx.nested_as_json => Type::Struct(struct_fields(text, schema, ctx)),
            _ => Type::Json,
        },
        ["array"] => {
            let item = match schema.get("items") {
                Some(items @ Value::Object(_)) => {
                    let items_text = crate::json::member(text, "items").map_or("{}", |raw| raw.get());
                    let (ty, nullable) = match recursive_array(items, ctx) {
                        // Arrays of any dimension: JSON text when asked to (2-D data fits).
                        Some(_) if ctx.nested_as_json => return Type::Json,
                        Some((element, target_text, target, nullable)) => {
                            (type_of(&[element], target_text, target, ctx), nullable)
                        }
                        None => resolve(items_text, items, ctx),
                    };
                    Field { name: "item".into(), ty, nullable }
                }
                _ => Field { name: "item".into(), ty: Type::Json, nullable: true },
            };
            Type::List(Box::new(item))
        }
        _ => Type::Json,
    }
}

/// Postgres taps describe an `int[]` (and every other array) column as
/// `{"type": ["null", "array"], "items": {"$ref": "#/definitions/sdc_recursive_integer_array"}}`
/// with the definition `{"type": ["null", "integer", "array"], "items": {"$ref": <itself>}}`:
/// Postgres arrays may have any number of dimensions. For such `items` this gives the element
/// type (`integer`), the definition (whose `format`, `multipleOf` and bounds type the element)
/// and whether elements may be null; the column becomes a list of that type. An element that is
/// itself an array does not fit such a list and is refused like any value that does not fit.
fn recursive_array<'a>(items: &'a Value, ctx: &Ctx<'a>) -> Option<(&'static str, &'a str, &'a Value, bool)> {
    let reference = items.get("$ref")?.as_str()?;
    let (pointer, text, target) = ctx.target(reference)?;
    let types = types_of(target)?;
    let mut others = types.iter().filter(|t| **t != "null" && **t != "array");
    let element = *others.next()?;
    if others.next().is_some() || !types.contains(&"array") {
        return None;
    }
    let inner = target.get("items")?.get("$ref")?.as_str()?;
    if ctx.target(inner)?.0 != pointer {
        return None;
    }
    let element = ["boolean", "integer", "number", "object", "string"].into_iter().find(|t| *t == element)?;
    Some((element, text, target, types.contains(&"null")))
}

/// `number` columns. `multipleOf: 10^-k` (`0.01`) asks for exact decimals with k places:
/// decimal(38, k) when it holds every value the schema allows (`minimum`/`maximum`, draft-4 or
/// later style) or, without both bounds, when it leaves at least 20 integer digits (k <= 18).
/// Otherwise (Postgres `numeric` without precision: `multipleOf: 1e-38`, bounds 10^62) no
/// decimal(38, k) holds the values, and a float would round them: the exact text of the number.
/// Any other `number` is a float.
fn number_type(schema: &Value) -> Type {
    let Some(step) = schema.get("multipleOf").and_then(Value::as_f64) else { return Type::Float };
    if !(step > 0.0 && step <= 1.0) {
        return Type::Float;
    }
    // k such that `step` is the double nearest to 10^-k (how a JSON parser reads `0.01`, `1e-2`).
    let guess = (-step.log10()).round() as i32;
    let Some(scale) = (guess - 1..=guess + 1).find(|k| *k >= 0 && format!("1e-{k}").parse::<f64>() == Ok(step)) else {
        return Type::Float;
    };
    if scale > 38 {
        return Type::Numeric;
    }
    let scale = scale as u8;
    // |values| below 10^(38-k) fit; parsed like the bounds are, so 10^n compares equal to 10^n.
    let room: f64 = format!("1e{}", 38 - scale).parse().expect("a float literal");
    let fits = match (bound(schema, "maximum", "exclusiveMaximum"), bound(schema, "minimum", "exclusiveMinimum")) {
        (Some(max), Some(min)) => [max, min].iter().all(|(limit, exclusive)| {
            let limit = limit.abs();
            limit < room || (*exclusive && limit <= room)
        }),
        _ => scale <= 18,
    };
    if fits { Type::Decimal { scale } } else { Type::Numeric }
}

/// A bound and whether it is exclusive, in either draft's style (`maximum: X,
/// exclusiveMaximum: true` or `exclusiveMaximum: X`); the tighter one when both are given.
fn bound(schema: &Value, inclusive: &str, exclusive: &str) -> Option<(f64, bool)> {
    let at = schema.get(inclusive).and_then(Value::as_f64);
    match schema.get(exclusive) {
        Some(Value::Bool(true)) => at.map(|v| (v, true)),
        Some(Value::Number(n)) => {
            let ex = n.as_f64()?;
            Some(match at {
                Some(v) if v.abs() < ex.abs() => (v, false),
                _ => (ex, true),
            })
        }
        _ => at.map(|v| (v, false)),
    }
}

/// What an array element of a list column must be when it is itself an array.
pub const NOT_NESTED: &str = "an element of a one-dimensional array (a list column's elements cannot be arrays; \
     `nested_as_json: true` writes Postgres array columns, of any dimension, as JSON text)";

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

/// A number's exact text (a JSON number, or a string holding one), for [`Type::Numeric`].
pub fn numeric(raw: &str) -> Option<&str> {
    let t = number_text(raw);
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    (i == b.len()).then_some(t)
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

    fn types(schema: &str, nested_as_json: bool) -> Vec<(String, Type, bool)> {
        columns(schema, nested_as_json, false).into_iter().map(|f| (f.name, f.ty, f.nullable)).collect()
    }

    fn list(ty: Type, nullable: bool) -> Type {
        Type::List(Box::new(Field { name: "item".into(), ty, nullable }))
    }

    /// The shapes pipelinewise-tap-postgres sends for `numeric(p, s)`: `multipleOf` 10^-s, draft-4
    /// bounds ±10^(p-s); without precision it caps at (100, 38).
    #[test]
    fn numbers_are_decimals_when_they_fit_and_exact_text_otherwise() {
        let pg = |p: i32, s: i32| {
            let max = format!("1{}", "0".repeat((p - s) as usize));
            format!(
                r#"{{"type":["null","number"],"exclusiveMaximum":true,"maximum":{max},"multipleOf":1e-{s},"exclusiveMinimum":true,"minimum":-{max}}}"#
            )
        };
        let schema = format!(
            r#"{{"properties":{{"n10_2":{},"n38_4":{},"n38_0":{},"n40_2":{},"unscaled":{},"n":{{"type":["number"],"multipleOf":1e-20}},
            "n_bounded":{{"type":"number","multipleOf":1e-20,"minimum":0,"maximum":1000}},
            "n_draft6":{{"type":"number","multipleOf":0.001,"exclusiveMaximum":1e35,"exclusiveMinimum":-1e35}},
            "n_inclusive":{{"type":"number","multipleOf":0.01,"maximum":1e36,"minimum":-1e36}},
            "tiny":{{"type":"number","multipleOf":1e-40}},"quarter":{{"type":"number","multipleOf":0.25}},
            "whole":{{"type":"number","multipleOf":1}},"huge":{{"type":"number","multipleOf":1e300}},
            "float":{{"type":"number"}}}}}}"#,
            pg(10, 2),
            pg(38, 4),
            pg(38, 0),
            pg(40, 2),
            pg(100, 38),
        );
        let got: Vec<(String, Type)> = types(&schema, false).into_iter().map(|(n, t, _)| (n, t)).collect();
        let want = [
            ("n10_2", Type::Decimal { scale: 2 }),
            ("n38_4", Type::Decimal { scale: 4 }),
            ("n38_0", Type::Decimal { scale: 0 }),
            ("n40_2", Type::Numeric),
            ("unscaled", Type::Numeric),
            ("n", Type::Numeric),
            ("n_bounded", Type::Decimal { scale: 20 }),
            ("n_draft6", Type::Decimal { scale: 3 }),
            ("n_inclusive", Type::Numeric),
            ("tiny", Type::Numeric),
            ("quarter", Type::Float),
            ("whole", Type::Decimal { scale: 0 }),
            ("huge", Type::Float),
            ("float", Type::Float),
        ];
        assert_eq!(got, want.map(|(n, t)| (n.to_string(), t)));
    }

    #[test]
    fn exact_numbers_keep_their_text() {
        assert_eq!(numeric("0.33333333333333333333"), Some("0.33333333333333333333"));
        assert_eq!(
            numeric("-12345678901234567890123456789.123456789"),
            Some("-12345678901234567890123456789.123456789")
        );
        assert_eq!(numeric("0E-10"), Some("0E-10"));
        assert_eq!(numeric("\"12.30\""), Some("12.30"), "a string holding a number");
        for bad in ["", "-", "1.", ".5", "1e", "1e+", "--1", "0x10", "\"soon\"", "1.5.2", "true", "[1]"] {
            assert_eq!(numeric(bad), None, "{bad}");
        }
    }

    const PG_ARRAYS: &str = r##"{"type":"object","properties":{
        "tags":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_string_array"}},
        "scores":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_integer_array"}},
        "seen":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_timestamp_array"}},
        "docs":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_object_array"}},
        "prices":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_decimal_10_2_array"}},
        "direct":{"$ref":"#/definitions/sdc_recursive_integer_array"}},
      "definitions":{
        "sdc_recursive_integer_array":{"type":["null","integer","array"],"items":{"$ref":"#/definitions/sdc_recursive_integer_array"}},
        "sdc_recursive_string_array":{"type":["null","string","array"],"items":{"$ref":"#/definitions/sdc_recursive_string_array"}},
        "sdc_recursive_timestamp_array":{"type":["null","string","array"],"format":"date-time","items":{"$ref":"#/definitions/sdc_recursive_timestamp_array"}},
        "sdc_recursive_object_array":{"type":["null","object","array"],"items":{"$ref":"#/definitions/sdc_recursive_object_array"}},
        "sdc_recursive_decimal_10_2_array":{"type":["null","number","array"],"multipleOf":0.01,"exclusiveMaximum":true,"maximum":100000000,"exclusiveMinimum":true,"minimum":-100000000,"items":{"$ref":"#/definitions/sdc_recursive_decimal_10_2_array"}}}}"##;

    #[test]
    fn postgres_arrays_are_lists_of_their_element_type() {
        let got = types(PG_ARRAYS, false);
        let want = vec![
            ("tags".to_string(), list(Type::Text, true), true),
            ("scores".to_string(), list(Type::Int, true), true),
            ("seen".to_string(), list(Type::Timestamp, true), true),
            ("docs".to_string(), list(Type::Json, true), true),
            ("prices".to_string(), list(Type::Decimal { scale: 2 }, true), true),
            ("direct".to_string(), Type::Json, true),
        ];
        assert_eq!(got, want);
        // nested_as_json: arrays of any dimension, as JSON text
        assert!(types(PG_ARRAYS, true).iter().all(|(_, t, _)| *t == Type::Json));
    }

    #[test]
    fn references_resolve_and_recursion_stops() {
        let schema = r##"{"properties":{
            "home":{"$ref":"#/definitions/address"},
            "node":{"$ref":"#/definitions/node"},
            "self":{"$ref":"#"},
            "loop":{"$ref":"#/definitions/a"},
            "missing":{"$ref":"#/definitions/nope"},
            "remote":{"$ref":"http://example.com/s.json#/x"},
            "escaped":{"$ref":"#/definitions/a~1b"},
            "items":{"type":"array","items":{"$ref":"#/definitions/address"}}},
          "definitions":{
            "address":{"type":["null","object"],"properties":{"zip":{"type":"string"},"city":{"type":"string"}}},
            "node":{"type":"object","properties":{"v":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/definitions/node"}}}},
            "a":{"$ref":"#/definitions/b"},"b":{"$ref":"#/definitions/a"},
            "a/b":{"type":"boolean"}}}"##;
        let address = Type::Struct(vec![
            Field { name: "zip".into(), ty: Type::Text, nullable: true },
            Field { name: "city".into(), ty: Type::Text, nullable: true },
        ]);
        let node = Type::Struct(vec![
            Field { name: "v".into(), ty: Type::Int, nullable: true },
            Field { name: "children".into(), ty: list(Type::Json, true), nullable: true },
        ]);
        let got = types(schema, false);
        let want = vec![
            ("home".to_string(), address.clone(), true),
            ("node".to_string(), node, true),
            ("self".to_string(), Type::Json, true),
            ("loop".to_string(), Type::Json, true),
            ("missing".to_string(), Type::Json, true),
            ("remote".to_string(), Type::Json, true),
            ("escaped".to_string(), Type::Bool, true),
            ("items".to_string(), list(address, true), true),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn exponential_references_stay_bounded() {
        // Each level refers to the next ten times: 10^8 fields if expanded naively.
        let mut defs = Vec::new();
        for level in 0..8 {
            let props: Vec<String> =
                (0..10).map(|i| format!(r##""p{i}":{{"$ref":"#/definitions/d{}"}}"##, level + 1)).collect();
            defs.push(format!(r#""d{level}":{{"type":"object","properties":{{{}}}}}"#, props.join(",")));
        }
        defs.push(r#""d8":{"type":"integer"}"#.to_string());
        let schema = format!(
            r##"{{"properties":{{"root":{{"$ref":"#/definitions/d0"}}}},"definitions":{{{}}}}}"##,
            defs.join(",")
        );
        fn count(ty: &Type) -> usize {
            match ty {
                Type::Struct(fields) => fields.iter().map(|f| 1 + count(&f.ty)).sum(),
                Type::List(item) => 1 + count(&item.ty),
                _ => 0,
            }
        }
        let fields = columns(&schema, false, false);
        let total: usize = fields.iter().map(|f| 1 + count(&f.ty)).sum();
        assert!(total <= MAX_FIELDS + 1, "{total}");
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
