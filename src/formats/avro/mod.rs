//! `format: avro`: object container files, with the Avro schema derived from the stream's JSON
//! Schema ([`crate::schema::typed`], same rules as Parquet). Records are encoded on the decode
//! thread straight from their JSON text ([`datum`]); blocks are compressed and framed on the
//! writer thread ([`container`]). apache-avro parses the schema (and reads files in the tests).

mod container;
mod datum;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use apache_avro::Schema;
use serde_json::json;

use crate::config::AvroCodec;
use crate::formats::{PageWriter, RowBatch};
use crate::schema::typed::{Field, Rows, Type, Unparseable};
use container::{Block, Blocks};
use datum::Column;

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
    let mut names = Names::default();
    let name = names.claim(avro_name(stream));
    record_schema(&name, fields, &mut names)
}

/// The names of a schema's record types, each given once. A record is named after its path
/// (`<stream>_<field>_<field>`), and two paths can spell one name (`shipping_address` beside
/// `shipping.address`, `arr_item` beside the items of `arr`): a file whose schema defines a
/// name twice is one no reader opens. Nor may a name be a primitive type's (`string`).
#[derive(Default)]
struct Names(std::collections::HashSet<String>);

impl Names {
    /// `name`, or `name` with `_` added until it is free.
    fn claim(&mut self, mut name: String) -> String {
        const PRIMITIVES: [&str; 8] = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];
        if PRIMITIVES.contains(&name.as_str()) {
            name.push('_');
        }
        while !self.0.insert(name.clone()) {
            name.push('_');
        }
        name
    }
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

fn record_schema(name: &str, fields: &[Field], names: &mut Names) -> serde_json::Value {
    let fields: Vec<serde_json::Value> = fields
        .iter()
        .zip(avro_names(fields))
        .map(|(f, field_name)| {
            let ty = field_type(&format!("{name}_{field_name}"), f, names);
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

fn field_type(name: &str, field: &Field, names: &mut Names) -> serde_json::Value {
    let ty = match &field.ty {
        Type::Int => json!("long"),
        Type::Float => json!("double"),
        Type::Decimal { scale } => json!({"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": scale}),
        Type::Bool => json!("boolean"),
        Type::Text | Type::Json | Type::Numeric => json!("string"),
        Type::Timestamp => json!({"type": "long", "logicalType": "timestamp-micros"}),
        Type::Date => json!({"type": "int", "logicalType": "date"}),
        Type::Struct(fields) => {
            let name = names.claim(name.to_string());
            record_schema(&name, fields, names)
        }
        Type::List(item) => json!({"type": "array", "items": field_type(&format!("{name}_item"), item, names)}),
    };
    if field.nullable { json!(["null", ty]) } else { ty }
}

/// The schema's text as it goes into each file's header: apache-avro's serialization of the
/// parsed schema (what its writer put there before), which also proves the schema valid.
/// Computed once per distinct schema; bounded by the number of distinct SCHEMA messages.
fn header_json(schema: &serde_json::Value) -> Result<Arc<str>, String> {
    static SCHEMAS: OnceLock<Mutex<HashMap<String, Arc<str>>>> = OnceLock::new();
    let text = schema.to_string();
    let mut cache = SCHEMAS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(json) = cache.get(&text) {
        return Ok(json.clone());
    }
    let parsed = Schema::parse_str(&text).map_err(|e| e.to_string())?;
    let json: Arc<str> = serde_json::to_string(&parsed).map_err(|e| e.to_string())?.into();
    cache.insert(text, json.clone());
    Ok(json)
}

/// The size at which a block of records is handed to the writer thread (before compression),
/// as apache-avro's writer did: big enough for the codec, small enough to keep memory flat.
/// Smaller under a small `max_bytes_per_file` (see [`block_bytes`]).
const BLOCK_BYTES: usize = 256 * 1024;

/// The block size for files of at most `max_bytes`: a quarter of it (at least 16 KiB), so the
/// writer has compressed some blocks, and the file-size estimate knows the ratio, well before
/// the file is full.
pub fn block_bytes(max_bytes: Option<u64>) -> usize {
    max_bytes.map_or(BLOCK_BYTES, |max| (max / 4).clamp(16 * 1024, BLOCK_BYTES as u64) as usize)
}

/// A file being filled on the decode thread: records are encoded into the block in progress,
/// full blocks leave through [`AvroEncoder::take_batch`] for the file's [`Blocks`] on the
/// writer thread.
pub struct AvroEncoder {
    root: Vec<Column>,
    block: Block,
    /// See [`block_bytes`].
    block_bytes: usize,
    ready: Option<Block>,
    /// The file's container writer, until the writer thread takes it.
    blocks: Option<Blocks>,
    pub top: Rows,
}

impl AvroEncoder {
    pub fn new(
        stream: &str,
        fields: Vec<Field>,
        avro_codec: AvroCodec,
        policy: Unparseable,
        block_bytes: usize,
    ) -> Result<AvroEncoder, String> {
        check(stream, &fields)?;
        let json = header_json(&avro_schema(stream, &fields))?;
        let root: Vec<Column> = fields.iter().map(|f| Column::new(f, f.name.clone())).collect();
        Ok(AvroEncoder {
            top: Rows::new(&fields, policy),
            root,
            block: Block { records: 0, data: Vec::with_capacity(block_bytes + block_bytes / 4) },
            block_bytes,
            ready: None,
            blocks: Some(Blocks::new(&json, avro_codec)),
        })
    }

    pub fn encode(&mut self, record: &str, metadata: Option<&[String; 6]>) -> Result<(), String> {
        let (root, data) = (&mut self.root, &mut self.block.data);
        let start = data.len();
        if let Err(e) = self.top.each(record, metadata, |i, raw, outcome| root[i].write(data, raw, outcome)) {
            data.truncate(start);
            return Err(e);
        }
        self.block.records += 1;
        if self.block.data.len() >= self.block_bytes {
            self.flush_block();
        }
        Ok(())
    }

    fn flush_block(&mut self) {
        if self.block.records > 0 {
            debug_assert!(self.ready.is_none(), "the pipeline takes each block after encode");
            let fresh = Block { records: 0, data: Vec::with_capacity(self.block.data.capacity()) };
            self.ready = Some(std::mem::replace(&mut self.block, fresh));
        }
    }

    /// Bytes of the block being filled.
    pub fn in_block(&self) -> usize {
        self.block.data.len()
    }

    /// The file's container writer, for the writer thread (once, at open).
    pub fn take_writer(&mut self) -> Option<Box<dyn PageWriter>> {
        self.blocks.take().map(|b| Box::new(b) as Box<dyn PageWriter>)
    }

    /// A full block of records, when one is ready.
    pub fn take_batch(&mut self) -> Option<RowBatch> {
        self.ready.take().map(|block| RowBatch::new(block.data.len() as u64, block))
    }

    /// The last records become a block (the writer thread ends the file).
    pub fn finish(&mut self) -> Result<(), String> {
        self.flush_block();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
