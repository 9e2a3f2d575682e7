//! The Singer SDK's `_sdc_*` metadata: the values one record gets, and the JSON splice that
//! adds them to a record.

pub use crate::schema::METADATA_COLUMNS;

/// Values of the `_sdc_*` columns for one record. JSON values are raw JSON text.
pub struct RecordMetadata<'a> {
    /// The RECORD message's `time_extracted` (JSON), if any.
    pub extracted_at: Option<&'a str>,
    /// When the record's input block was read (RFC 3339).
    pub received_at: &'a str,
    /// When the record's file was opened (RFC 3339).
    pub batched_at: &'a str,
    /// The record's input line number: unique and increasing within a run.
    pub sequence: u64,
    /// The RECORD message's `version` (JSON), if any.
    pub table_version: Option<&'a str>,
}

impl RecordMetadata<'_> {
    /// Each column's value as JSON text; `_sdc_deleted_at` is null unless the record has one.
    pub fn json_values(&self) -> [String; 6] {
        [
            self.extracted_at.unwrap_or("null").to_string(),
            format!("{:?}", self.received_at),
            format!("{:?}", self.batched_at),
            self.sequence.to_string(),
            self.table_version.unwrap_or("null").to_string(),
            "null".to_string(),
        ]
    }
}

/// Appends the record with the metadata members spliced in before its closing brace; members
/// the record already has (a tap sending `_sdc_deleted_at`) keep the tap's value.
pub(super) fn push_with_metadata(buf: &mut Vec<u8>, record: &str, meta: &RecordMetadata<'_>) {
    let body = record.trim_end().strip_suffix('}').unwrap_or(record);
    buf.extend_from_slice(body.as_bytes());
    let mut empty = body.trim_end().ends_with('{');
    for (name, value) in METADATA_COLUMNS.iter().zip(meta.json_values()) {
        if record.contains(&format!("\"{name}\"")) {
            continue;
        }
        if !empty {
            buf.push(b',');
        }
        empty = false;
        buf.extend_from_slice(format!("\"{name}\":{value}").as_bytes());
    }
    buf.push(b'}');
}
