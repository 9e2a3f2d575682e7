//! CSV files: columns from the stream's schema (never from the first record), so a row never
//! shifts; nested objects flattened to `parent__child`.

use std::sync::Arc;

use super::metadata::{METADATA_COLUMNS, RecordMetadata};
use crate::config::CsvOptions;
use crate::json::Dropped;
use crate::schema::{ColumnPlan, Slot};

pub struct CsvEncoder {
    pub(super) builder: csv::WriterBuilder,
    pub(super) writer: csv::Writer<Vec<u8>>,
    columns: Arc<ColumnPlan>,
    slots: Vec<Slot>,
    unescaped: String,
    /// Properties outside the schema, which have no column.
    pub(super) dropped: Dropped,
    /// What a null or missing value is written as (`csv_null_value`).
    null_value: String,
    /// The `_sdc_*` columns (the schema's own, then the rest after the schema's columns):
    /// (column, metadata index). A record's own value wins (a tap's `_sdc_deleted_at`), as in
    /// JSONL and Parquet.
    metadata: Vec<(usize, usize)>,
}

impl CsvEncoder {
    pub(super) fn new(columns: Arc<ColumnPlan>, opts: &CsvOptions, capacity: usize, metadata: bool) -> CsvEncoder {
        let (columns, metadata) = if metadata {
            let columns = Arc::new(columns.with_columns(&METADATA_COLUMNS));
            // Declared `_sdc_*` columns too: a record without the member gets the target's value,
            // as in JSONL and Parquet.
            let extra = (0..columns.names.len())
                .filter_map(|c| METADATA_COLUMNS.iter().position(|m| *m == columns.names[c]).map(|m| (c, m)))
                .collect();
            (columns, extra)
        } else {
            (columns, Vec::new())
        };
        let mut builder = csv::WriterBuilder::new();
        builder.delimiter(opts.delimiter).quote(opts.quote).buffer_capacity(16 * 1024);
        let mut writer = builder.from_writer(Vec::with_capacity(capacity));
        if opts.header {
            // Writing into a Vec cannot fail.
            let _ = writer.write_record(columns.names.iter());
        }
        CsvEncoder {
            builder,
            slots: vec![None; columns.names.len()],
            writer,
            columns,
            unescaped: String::new(),
            dropped: Dropped::default(),
            null_value: opts.null_value.clone(),
            metadata,
        }
    }

    pub(super) fn encode(&mut self, record: &str, meta: Option<&RecordMetadata<'_>>) -> Result<(), String> {
        self.columns.locate(record, &mut self.slots, &mut self.dropped).map_err(|e| e.to_string())?;
        let values = meta.filter(|_| !self.metadata.is_empty()).map(RecordMetadata::json_values);
        for (column, slot) in self.slots.iter().enumerate() {
            let cell: &[u8] = match slot {
                None => match &values {
                    // A metadata column the record does not fill itself: the target's value.
                    Some(values) => match self.metadata.iter().find(|(c, _)| *c == column) {
                        Some((_, m)) => match values[*m].as_str() {
                            "null" => self.null_value.as_bytes(),
                            v if v.starts_with('"') && !v.contains('\\') => &v.as_bytes()[1..v.len() - 1],
                            v if v.starts_with('"') => {
                                self.unescaped.clear();
                                self.unescaped.push_str(&serde_json::from_str::<String>(v).map_err(|e| e.to_string())?);
                                self.unescaped.as_bytes()
                            }
                            v => v.as_bytes(),
                        },
                        None => self.null_value.as_bytes(),
                    },
                    None => self.null_value.as_bytes(),
                },
                Some((start, len)) => {
                    let raw = &record[*start..*start + *len];
                    match raw.as_bytes()[0] {
                        b'n' => self.null_value.as_bytes(),
                        b'"' if !raw.contains('\\') => &raw.as_bytes()[1..raw.len() - 1],
                        b'"' => {
                            self.unescaped.clear();
                            let s: String = serde_json::from_str(raw).map_err(|e| e.to_string())?;
                            self.unescaped.push_str(&s);
                            self.unescaped.as_bytes()
                        }
                        // numbers and booleans as the tap wrote them; arrays and objects as JSON
                        _ => raw.as_bytes(),
                    }
                }
            };
            self.writer.write_field(cell).map_err(|e| e.to_string())?;
        }
        self.writer.write_record(None::<&[u8]>).map_err(|e| e.to_string())
    }
}
