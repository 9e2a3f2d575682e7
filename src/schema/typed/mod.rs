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

#[cfg(test)]
mod tests;
mod values;

use serde_json::Value;
use serde_json::value::RawValue;

use super::METADATA_COLUMNS;
pub use crate::json::{
    FieldIndex, boolean, date, decimal, elements, float, float_exact, int, members, numeric, text, timestamp,
};
pub use values::{Lossy, NOT_NESTED, Outcome, Problem, Rows, Unparseable, required};

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

/// A column type set by the loader's `schema_overrides` for one field, whatever the tap's
/// schema says: how users keep every digit of a `number` the tap declares without scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Override {
    /// `decimal(P,S)`: written as decimal(38, S); values with more than P digits or S places
    /// do not fit (see `unparseable_values`).
    Decimal { precision: u8, scale: u8 },
    /// `numeric`: the number's exact text, as a string column.
    Numeric,
    /// `double`: a 64-bit float (rounding counted as `lossy_values`).
    Double,
    /// `bigint`: a 64-bit integer.
    Bigint,
}

impl Override {
    pub const HELP: &str = "decimal(P,S) with 1 <= P <= 38 and 0 <= S <= P, numeric (the exact text), double or bigint";

    pub fn parse(text: &str) -> Option<Override> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "numeric" | "text" => return Some(Override::Numeric),
            "double" | "float" | "float64" => return Some(Override::Double),
            "bigint" | "int64" | "long" => return Some(Override::Bigint),
            _ => {}
        }
        let inner = t.strip_prefix("decimal(").or_else(|| t.strip_prefix("numeric("))?.strip_suffix(')')?;
        let (p, s) = inner.split_once(',')?;
        let (precision, scale): (u8, u8) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
        (1..=38).contains(&precision).then_some(())?;
        (scale <= precision).then_some(Override::Decimal { precision, scale })
    }

    fn ty(self) -> Type {
        match self {
            Override::Decimal { scale, .. } => Type::Decimal { scale },
            Override::Numeric => Type::Numeric,
            Override::Double => Type::Float,
            Override::Bigint => Type::Int,
        }
    }
}

/// Applies a stream's `schema_overrides` to its top-level columns; names that are not columns
/// are returned (for a warning).
pub fn apply_overrides<'o>(fields: &mut [Field], overrides: &'o [(String, Override)]) -> Vec<&'o str> {
    let mut unknown = Vec::new();
    for (name, o) in overrides {
        match fields.iter_mut().find(|f| f.name == *name) {
            Some(field) => field.ty = o.ty(),
            None => unknown.push(name.as_str()),
        }
    }
    unknown
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
        local_ref(self.root, self.root_text, reference)
    }
}

/// The schema a local `$ref` (`#/definitions/x`, `#/$defs/x`, `#`) points to in `root`: its
/// pointer, its text in `root_text` (which keeps the order of its properties) and its value.
/// `None` for references into other documents, percent-encoded pointers (rare enough to treat
/// as unresolvable) and pointers to nothing.
pub(crate) fn local_ref<'a>(
    root: &'a Value,
    root_text: &'a str,
    reference: &'a str,
) -> Option<(&'a str, &'a str, &'a Value)> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.contains('%') {
        return None;
    }
    let value = root.pointer(pointer)?;
    let mut text = root_text;
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
        ["integer"] => integer_type(text),
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
                    let ty = match recursive_array(items, ctx) {
                        // Arrays of any dimension: JSON text when asked to (2-D data fits).
                        Some(_) if ctx.nested_as_json => return Type::Json,
                        Some((element, target_text, target, _)) => type_of(&[element], target_text, target, ctx),
                        None => resolve(items_text, items, ctx).0,
                    };
                    // Elements are always nullable: database arrays hold NULL elements whatever
                    // the tap declares (validation lets them through and counts them).
                    Field { name: "item".into(), ty, nullable: true }
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

/// `integer` columns: int64, unless the schema's bounds go past it (MySQL `BIGINT UNSIGNED`:
/// `maximum: 18446744073709551615`): then decimal(38, 0) holds every value in range exactly,
/// and past 38 digits the number's exact text.
fn integer_type(text: &str) -> Type {
    use crate::json::Exact;
    let limit = |k: &str| crate::json::member(text, k).map(|raw| raw.get().trim().to_string());
    let limits: Vec<String> =
        ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].into_iter().filter_map(limit).collect();
    let (low, high) = (Exact::parse("-9223372036854775808"), Exact::parse("9223372036854775807"));
    let (Some(low), Some(high)) = (low, high) else { return Type::Int };
    let wide = |t: &String| Exact::parse(t).is_some_and(|e| e < low || e > high);
    if !limits.iter().any(wide) {
        return Type::Int;
    }
    let room = Exact::parse("1e38").expect("a number");
    let negative_room = Exact::parse("-1e38").expect("a number");
    let fits = |t: &String| Exact::parse(t).is_some_and(|e| e < room && e > negative_room);
    if limits.iter().filter(|t| Exact::parse(t).is_some()).all(fits) {
        Type::Decimal { scale: 0 }
    } else {
        Type::Numeric
    }
}

/// `number` columns. `multipleOf: 10^-k` (`0.01`) asks for exact decimals with k places:
/// decimal(38, k) when it holds every value the schema allows (`minimum`/`maximum`, draft-4 or
/// later style) or, without both bounds, when it leaves at least 20 integer digits (k <= 18).
/// Otherwise (Postgres `numeric` without precision: `multipleOf: 1e-38`, bounds 10^62) no
/// decimal(38, k) holds the values, and a float would round them: the exact text of the number.
/// Any other `number` is a float.
fn number_type(schema: &Value) -> Type {
    // A tap that names the SQL type (`x-sql-datatype: numeric(38,10)`) says how many places.
    if let Some(Override::Decimal { scale, .. }) =
        schema.get("x-sql-datatype").and_then(Value::as_str).and_then(Override::parse)
    {
        return Type::Decimal { scale };
    }
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
