//! JSONL and JSON files: the tap's record bytes as they came (or flattened like CSV columns with
//! `flattening_enabled`), with the `_sdc_*` members spliced in when asked.

use std::sync::Arc;

use super::metadata::{METADATA_COLUMNS, RecordMetadata, push_with_metadata};
use crate::config::Config;
use crate::json::Dropped;
use crate::schema::{ColumnPlan, Slot, StreamSchema};

/// Appends one JSON record: flattened when `flat` is set, with its `_sdc_*` members when given.
pub(super) fn push_json(
    buf: &mut Vec<u8>,
    flat: &mut Option<Box<Flattener>>,
    record: &str,
    meta: Option<&RecordMetadata<'_>>,
) -> Result<(), String> {
    let record = match flat {
        Some(flat) => flat.flatten(record)?,
        None => record,
    };
    // A record bigger than the room left grows the buffer once, to what it needs (plus a
    // little for the separator and metadata), instead of doubling its way there: a 100 MB
    // record then costs 100 MB here, not up to twice that while it is copied.
    if buf.capacity() - buf.len() < record.len() + 2 {
        buf.reserve(record.len() + if meta.is_some() { 512 } else { 2 });
    }
    match meta {
        None => buf.extend_from_slice(record.as_bytes()),
        Some(meta) => push_with_metadata(buf, record, meta),
    }
    Ok(())
}

/// `flattening_enabled` for JSONL and JSON: nested objects with declared properties become
/// `parent__child` members (down to `flattening_max_depth`), in schema order, from the same
/// column plan as CSV. Values are copied as raw JSON text; absent members stay absent.
pub struct Flattener {
    columns: Arc<ColumnPlan>,
    /// `"name":` per column, JSON-escaped once.
    names: Vec<String>,
    slots: Vec<Slot>,
    out: String,
    /// Properties outside the schema, which have no column.
    pub(super) dropped: Dropped,
}

impl Flattener {
    /// `metadata`: the `_sdc_*` members are columns too, so a tap's own `_sdc_deleted_at`
    /// survives flattening (the metadata splice then keeps it).
    pub(super) fn new(schema: &StreamSchema, config: &Config, metadata: bool) -> Option<Box<Flattener>> {
        config.flattening_enabled.then(|| {
            let columns = match metadata {
                true => Arc::new(schema.columns.with_columns(&METADATA_COLUMNS)),
                false => schema.columns.clone(),
            };
            Box::new(Flattener {
                names: columns.names.iter().map(|n| format!("{}:", serde_json::Value::from(n.as_str()))).collect(),
                slots: vec![None; columns.names.len()],
                columns,
                out: String::new(),
                dropped: Dropped::default(),
            })
        })
    }

    pub(super) fn flatten(&mut self, record: &str) -> Result<&str, String> {
        self.columns.locate(record, &mut self.slots, &mut self.dropped).map_err(|e| e.to_string())?;
        self.out.clear();
        self.out.push('{');
        for (name, slot) in self.names.iter().zip(&self.slots) {
            if let Some((start, len)) = slot {
                if self.out.len() > 1 {
                    self.out.push(',');
                }
                self.out.push_str(name);
                self.out.push_str(&record[*start..*start + *len]);
            }
        }
        self.out.push('}');
        Ok(&self.out)
    }
}
