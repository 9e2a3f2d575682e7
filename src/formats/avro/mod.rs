//! `format: avro`: object container files written by the apache-avro crate, with the Avro
//! schema derived from the stream's JSON Schema ([`crate::schema::typed`], same rules as Parquet).
//! One `Value` tree per file is filled in place from each record's raw JSON text, so strings,
//! lists and unions reuse their allocations from record to record.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use apache_avro::types::Value;
use apache_avro::{Codec, DeflateSettings, Schema, Writer, ZstandardSettings};
use serde_json::json;

use crate::config::AvroCodec;
use crate::schema::typed::{self, Field, FieldIndex, Outcome, Problem, Rows, Type, Unparseable};

/// The block codec for `avro_codec`.
fn codec(codec: AvroCodec) -> Codec {
    match codec {
        // Level 1: 2.5x faster than the default 6 here, and the files are still deflate.
        AvroCodec::Deflate => Codec::Deflate(DeflateSettings::new(miniz_oxide::deflate::CompressionLevel::BestSpeed)),
        AvroCodec::Snappy => Codec::Snappy,
        AvroCodec::Zstd => Codec::Zstandard(ZstandardSettings::new(3)),
        AvroCodec::None => Codec::Null,
    }
}

/// Avro names allow `[A-Za-z_][A-Za-z0-9_]*`; other characters become `_`.
pub fn avro_name(name: &str) -> String {
    let mut out: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.is_empty() || out.as_bytes()[0].is_ascii_digit() {
        out.insert(0, '_');
    }
    out
}

/// The Avro schema (JSON) of a stream's columns: a record named after the stream.
pub fn avro_schema(stream: &str, fields: &[Field]) -> serde_json::Value {
    record_schema(&avro_name(stream), fields)
}

/// How deep an Avro schema's JSON may nest. Every Avro file carries its schema as JSON, and
/// readers built on serde_json (apache-avro's own `Reader` among them) refuse more than 127
/// levels, so a deeper schema would give files that cannot be read. Each nullable object costs
/// four levels (field, union, record, fields), so about 30 nested objects reach it.
const MAX_SCHEMA_DEPTH: usize = 127;

/// Refuses columns whose Avro schema nests deeper than readers parse ([`MAX_SCHEMA_DEPTH`]),
/// naming the deepest property and the way out, before any file is written.
pub fn check(stream: &str, fields: &[Field]) -> Result<(), String> {
    let depth = json_depth(&avro_schema(stream, fields));
    if depth <= MAX_SCHEMA_DEPTH {
        return Ok(());
    }
    let (levels, path) = deepest(fields);
    Err(format!(
        "Avro: property `{path}` is {levels} levels deep, and the stream's Avro schema nests {depth} deep, more than \
         Avro readers parse ({MAX_SCHEMA_DEPTH}); set `nested_as_json: true` (nested objects as JSON text) or use `format: parquet`"
    ))
}

/// Nesting depth of a JSON value (a scalar is 0).
fn json_depth(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        serde_json::Value::Object(members) => 1 + members.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The deepest field: how many structs and lists down, and its dotted path.
fn deepest(fields: &[Field]) -> (usize, String) {
    fn walk(ty: &Type) -> (usize, String) {
        match ty {
            Type::Struct(fields) => {
                let (levels, path) = deepest(fields);
                (levels, path)
            }
            Type::List(item) => {
                let (levels, path) = walk(&item.ty);
                (levels + 1, format!("[]{path}"))
            }
            _ => (0, String::new()),
        }
    }
    fields
        .iter()
        .map(|f| {
            let (levels, rest) = walk(&f.ty);
            let sep = if rest.is_empty() || rest.starts_with('[') { "" } else { "." };
            (levels + 1, format!("{}{sep}{rest}", f.name))
        })
        .max_by_key(|(levels, _)| *levels)
        .unwrap_or_default()
}

/// The fields' Avro names: sanitised, and distinct even when two property names sanitise alike.
fn avro_names(fields: &[Field]) -> Vec<String> {
    let mut taken: Vec<String> = Vec::new();
    for f in fields {
        let mut name = avro_name(&f.name);
        while taken.contains(&name) {
            name.push('_');
        }
        taken.push(name);
    }
    taken
}

fn record_schema(name: &str, fields: &[Field]) -> serde_json::Value {
    let fields: Vec<serde_json::Value> = fields
        .iter()
        .zip(avro_names(fields))
        .map(|(f, field_name)| {
            let ty = field_type(&format!("{name}_{field_name}"), f);
            let mut field = json!({"name": field_name, "type": ty});
            if f.nullable {
                field["default"] = serde_json::Value::Null;
            }
            if field_name != f.name {
                // Avro names allow only [A-Za-z0-9_]: readers find the tap's own name in
                // `original_name` (machine-readable) and `doc`.
                field["doc"] = json!(format!("property `{}`", f.name));
                field["original_name"] = json!(f.name);
            }
            field
        })
        .collect();
    json!({"type": "record", "name": name, "fields": fields})
}

fn field_type(name: &str, field: &Field) -> serde_json::Value {
    let ty = match &field.ty {
        Type::Int => json!("long"),
        Type::Float => json!("double"),
        Type::Decimal { scale } => json!({"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": scale}),
        Type::Bool => json!("boolean"),
        Type::Text | Type::Json | Type::Numeric => json!("string"),
        Type::Timestamp => json!({"type": "long", "logicalType": "timestamp-micros"}),
        Type::Date => json!({"type": "int", "logicalType": "date"}),
        Type::Struct(fields) => record_schema(name, fields),
        Type::List(item) => json!({"type": "array", "items": field_type(&format!("{name}_item"), item)}),
    };
    if field.nullable { json!(["null", ty]) } else { ty }
}

/// Parsed schemas live for the run: the crate's writer borrows its schema, and a stream's
/// files all share one. Bounded by the number of distinct SCHEMA messages.
fn parsed(schema: &serde_json::Value) -> Result<&'static Schema, String> {
    static SCHEMAS: OnceLock<Mutex<HashMap<String, &'static Schema>>> = OnceLock::new();
    let text = schema.to_string();
    let mut cache = SCHEMAS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(schema) = cache.get(&text) {
        return Ok(schema);
    }
    let parsed: &'static Schema = Box::leak(Box::new(Schema::parse_str(&text).map_err(|e| e.to_string())?));
    cache.insert(text, parsed);
    Ok(parsed)
}

pub struct AvroEncoder {
    writer: Writer<'static, Vec<u8>>,
    root: Vec<Column>,
    /// The record being filled: `Value::Record`, one entry per column, reused.
    value: Value,
    pub top: Rows,
}

impl AvroEncoder {
    pub fn new(
        stream: &str,
        fields: Vec<Field>,
        avro_codec: AvroCodec,
        policy: Unparseable,
    ) -> Result<AvroEncoder, String> {
        check(stream, &fields)?;
        let schema = parsed(&avro_schema(stream, &fields))?;
        let writer = Writer::builder()
            .schema(schema)
            .writer(Vec::new())
            .codec(codec(avro_codec))
            .block_size(256 * 1024)
            .build()
            .map_err(|e| e.to_string())?;
        let root: Vec<Column> =
            fields.iter().zip(avro_names(&fields)).map(|(f, name)| Column::new(f, f.name.clone(), name)).collect();
        let value = Value::Record(root.iter().map(|c| (c.name.clone(), c.blank())).collect());
        Ok(AvroEncoder { writer, top: Rows::new(&fields, policy), root, value })
    }

    pub fn encode(&mut self, record: &str, metadata: Option<&[String; 6]>) -> Result<(), String> {
        let Value::Record(values) = &mut self.value else { unreachable!("built as a record") };
        let root = &mut self.root;
        self.top.each(record, metadata, |i, raw, outcome| root[i].set(&mut values[i].1, raw, outcome))?;
        // The values follow the schema by construction; debug builds (the tests) check it anyway.
        let appended = if cfg!(debug_assertions) {
            self.writer.append_value_ref(&self.value)
        } else {
            self.writer.unvalidated_append_value_ref(&self.value)
        };
        appended.map(|_| ()).map_err(|e| e.to_string())
    }

    pub fn pending(&self) -> usize {
        self.writer.get_ref().len()
    }

    pub fn take(&mut self, replacement: Vec<u8>) -> Vec<u8> {
        std::mem::replace(self.writer.get_mut(), replacement)
    }

    /// Writes the last block (and the header, for a file without records).
    pub fn finish(&mut self) -> Result<(), String> {
        self.writer.flush().map(|_| ()).map_err(|e| e.to_string())
    }
}

struct Column {
    /// The Avro field name.
    name: String,
    path: String,
    nullable: bool,
    expected: &'static str,
    kind: Kind,
}

enum Kind {
    Int,
    Float,
    Decimal(u8),
    Numeric,
    Bool,
    Text,
    Json,
    Timestamp,
    Date,
    Struct { children: Vec<Column>, index: FieldIndex, slots: Vec<Option<(usize, usize)>> },
    List { item: Box<Column>, elements: Vec<(usize, usize)> },
}

impl Column {
    fn new(field: &Field, path: String, name: String) -> Column {
        let kind = match &field.ty {
            Type::Int => Kind::Int,
            Type::Float => Kind::Float,
            Type::Decimal { scale } => Kind::Decimal(*scale),
            Type::Numeric => Kind::Numeric,
            Type::Bool => Kind::Bool,
            Type::Text => Kind::Text,
            Type::Json => Kind::Json,
            Type::Timestamp => Kind::Timestamp,
            Type::Date => Kind::Date,
            Type::Struct(fields) => Kind::Struct {
                children: fields
                    .iter()
                    .zip(avro_names(fields))
                    .map(|(f, name)| Column::new(f, format!("{path}.{}", f.name), name))
                    .collect(),
                index: FieldIndex::new(fields.iter().map(|f| f.name.as_str())),
                slots: vec![None; fields.len()],
            },
            Type::List(item) => Kind::List {
                item: Box::new(Column::new(item, format!("{path}[]"), "item".into())),
                elements: Vec::new(),
            },
        };
        Column { name, path, nullable: field.nullable, expected: field.ty.expected(), kind }
    }

    /// A placeholder of the right shape; nullable columns are unions with null first.
    fn blank(&self) -> Value {
        let inner = match &self.kind {
            Kind::Struct { children, .. } => {
                Value::Record(children.iter().map(|c| (c.name.clone(), c.blank())).collect())
            }
            Kind::List { .. } => Value::Array(Vec::new()),
            _ => Value::Null,
        };
        if self.nullable { Value::Union(0, Box::new(inner)) } else { inner }
    }

    /// Fills `target` (shaped by [`Column::blank`]) from the value whose JSON text is `raw`.
    fn set(&mut self, target: &mut Value, raw: Option<&str>, outcome: &mut Outcome) -> Result<(), Problem> {
        let raw = match raw {
            None | Some("null") if self.nullable => {
                set_null(target);
                return Ok(());
            }
            None | Some("null") => return Err(typed::required(&self.path, raw)),
            Some(raw) => raw,
        };
        let fits = match &mut *target {
            Value::Union(index, inner) if self.nullable => {
                *index = 1;
                self.fill(inner, raw, outcome)?
            }
            other => self.fill(other, raw, outcome)?,
        };
        if !fits {
            outcome.refuse(Problem::new(&self.path, raw, self.expected), self.nullable)?;
            set_null(target);
        }
        Ok(())
    }

    /// Writes the non-null value into `slot`; false when it does not fit the column.
    fn fill(&mut self, slot: &mut Value, raw: &str, outcome: &mut Outcome) -> Result<bool, Problem> {
        let blank = match (&self.kind, &*slot) {
            (Kind::Struct { .. }, Value::Record(_)) => None,
            (Kind::Struct { .. }, _) => Some(self.non_null_blank()),
            _ => None,
        };
        let value = match &mut self.kind {
            Kind::Int => typed::int(raw).map(Value::Long),
            Kind::Float => typed::float_exact(raw).map(|(v, exact)| {
                if !exact {
                    outcome.lossy.note(&self.path, raw);
                }
                Value::Double(v)
            }),
            Kind::Decimal(scale) => typed::decimal(raw, *scale).map(|v| Value::Decimal(v.to_be_bytes().into())),
            Kind::Bool => typed::boolean(raw).map(Value::Boolean),
            Kind::Timestamp => typed::timestamp(raw).map(Value::TimestampMicros),
            Kind::Date => typed::date(raw).map(Value::Date),
            Kind::Text => {
                set_string(slot, &typed::text(raw));
                return Ok(true);
            }
            Kind::Json => {
                set_string(slot, raw);
                return Ok(true);
            }
            Kind::Numeric => match typed::numeric(raw) {
                Some(text) => {
                    set_string(slot, text);
                    return Ok(true);
                }
                None => return Ok(false),
            },
            Kind::Struct { children, index, slots } => {
                if typed::members(raw, index, slots, &mut crate::json::Dropped::default()).is_err() {
                    return Ok(false);
                }
                if let Some(blank) = blank {
                    *slot = blank;
                }
                let Value::Record(values) = slot else { unreachable!("set above") };
                for (i, child) in children.iter_mut().enumerate() {
                    child.set(&mut values[i].1, slots[i].map(|(s, l)| &raw[s..s + l]), outcome)?;
                }
                return Ok(true);
            }
            Kind::List { item, elements } => {
                if typed::elements(raw, elements).is_err() {
                    return Ok(false);
                }
                if !matches!(slot, Value::Array(_)) {
                    *slot = Value::Array(Vec::new());
                }
                let Value::Array(items) = slot else { unreachable!("set above") };
                items.truncate(elements.len());
                for (i, (s, l)) in elements.iter().enumerate() {
                    if i == items.len() {
                        items.push(item.blank());
                    }
                    let element = &raw[*s..*s + *l];
                    if element.starts_with('[') && !matches!(item.kind, Kind::List { .. } | Kind::Json) {
                        // A multi-dimensional Postgres array in a one-dimensional column.
                        outcome.refuse(Problem::new(&item.path, element, typed::NOT_NESTED), item.nullable)?;
                        set_null(&mut items[i]);
                        continue;
                    }
                    item.set(&mut items[i], Some(element), outcome)?;
                }
                return Ok(true);
            }
        };
        match value {
            Some(v) => {
                *slot = v;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn non_null_blank(&self) -> Value {
        match self.blank() {
            Value::Union(_, inner) => *inner,
            other => other,
        }
    }
}

/// Reuses the slot's string buffer when it has one.
fn set_string(slot: &mut Value, text: &str) {
    match slot {
        Value::String(s) => {
            s.clear();
            s.push_str(text);
        }
        other => *other = Value::String(text.to_string()),
    }
}

fn set_null(target: &mut Value) {
    match target {
        // The crate encodes the union's payload against the chosen branch: it must be null too.
        Value::Union(index, inner) => {
            *index = 0;
            **inner = Value::Null;
        }
        other => *other = Value::Null,
    }
}

#[cfg(test)]
mod tests;
