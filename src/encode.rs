//! Encoders turn records into a file's uncompressed bytes. One encoder per open file; it owns
//! the buffer that is handed to the writer thread in large chunks.

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::config::{Config, CsvOptions, Format};
use crate::schema::{ColumnPlan, Slot, StreamSchema};

pub enum Encoder {
    /// The record's bytes exactly as the tap sent them, one per line.
    /// (With `flattening_enabled`, the record flattened first.)
    Jsonl {
        buf: Vec<u8>,
        flat: Option<Box<Flattener>>,
    },
    /// The same bytes as JSONL, as the elements of one JSON array.
    Json {
        buf: Vec<u8>,
        empty: bool,
        flat: Option<Box<Flattener>>,
    },
    Csv(Box<CsvEncoder>),
    #[cfg(feature = "parquet")]
    Parquet(Box<crate::parquet::ParquetEncoder>),
    #[cfg(feature = "avro")]
    Avro(Box<crate::avro::AvroEncoder>),
}

/// The Singer SDK's `_sdc_*` columns, added to every record when `add_record_metadata` is on.
pub const METADATA_COLUMNS: [&str; 6] = [
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_deleted_at",
];

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
fn push_with_metadata(buf: &mut Vec<u8>, record: &str, meta: &RecordMetadata<'_>) {
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

/// Appends one JSON record: flattened when `flat` is set, with its `_sdc_*` members when given.
fn push_json(
    buf: &mut Vec<u8>,
    flat: &mut Option<Box<Flattener>>,
    record: &str,
    meta: Option<&RecordMetadata<'_>>,
) -> Result<(), String> {
    let record = match flat {
        Some(flat) => flat.flatten(record)?,
        None => record,
    };
    match meta {
        None => buf.extend_from_slice(record.as_bytes()),
        Some(meta) => push_with_metadata(buf, record, meta),
    }
    Ok(())
}

impl Encoder {
    /// `metadata`: the file gets the `_sdc_*` columns (CSV header included).
    pub fn new(
        format: Format,
        #[cfg_attr(not(feature = "avro"), allow(unused_variables))] stream: &str,
        schema: &StreamSchema,
        config: &Config,
        capacity: usize,
        metadata: bool,
    ) -> Result<Encoder, String> {
        #[cfg(any(feature = "parquet", feature = "avro"))]
        let binary = &config.binary;
        #[cfg(any(feature = "parquet", feature = "avro"))]
        let typed = || crate::typed::columns(&schema.text, binary.nested_as_json, metadata);
        Ok(match format {
            Format::Jsonl => {
                Encoder::Jsonl { buf: Vec::with_capacity(capacity), flat: Flattener::new(schema, config, metadata) }
            }
            Format::Json => Encoder::Json {
                buf: Vec::with_capacity(capacity),
                empty: true,
                flat: Flattener::new(schema, config, metadata),
            },
            Format::Csv => {
                Encoder::Csv(Box::new(CsvEncoder::new(schema.columns.clone(), &config.csv, capacity, metadata)))
            }
            #[cfg(feature = "parquet")]
            Format::Parquet => Encoder::Parquet(Box::new(crate::parquet::ParquetEncoder::new(
                typed(),
                binary.parquet_codec,
                binary.row_group_size,
                binary.unparseable,
            )?)),
            #[cfg(feature = "avro")]
            Format::Avro => Encoder::Avro(Box::new(crate::avro::AvroEncoder::new(
                stream,
                typed(),
                binary.avro_codec,
                binary.unparseable,
            )?)),
            #[allow(unreachable_patterns)]
            other => return Err(format!("this build of target-s3 has no {} support", other.extension())),
        })
    }

    /// What would otherwise fail only when the stream's first file opens, checked when its
    /// SCHEMA arrives so the error names the SCHEMA line: an Avro schema nested deeper than
    /// Avro readers parse.
    pub fn check_schema(
        format: Format,
        #[cfg_attr(not(feature = "avro"), allow(unused_variables))] stream: &str,
        #[cfg_attr(not(feature = "avro"), allow(unused_variables))] schema: &StreamSchema,
        #[cfg_attr(not(feature = "avro"), allow(unused_variables))] config: &Config,
    ) -> Result<(), String> {
        match format {
            #[cfg(feature = "avro")]
            Format::Avro => crate::avro::check(
                stream,
                &crate::typed::columns(&schema.text, config.binary.nested_as_json, config.add_record_metadata),
            ),
            _ => Ok(()),
        }
    }

    /// Appends one record (with its `_sdc_*` metadata when given). An error names what could
    /// not be written.
    pub fn encode(&mut self, record: &RawValue, meta: Option<&RecordMetadata<'_>>) -> Result<(), String> {
        match self {
            Encoder::Jsonl { buf, flat } => {
                push_json(buf, flat, record.get(), meta)?;
                buf.push(b'\n');
                Ok(())
            }
            Encoder::Json { buf, empty, flat } => {
                buf.extend_from_slice(if *empty { b"[\n" } else { b",\n" });
                *empty = false;
                push_json(buf, flat, record.get(), meta)
            }
            Encoder::Csv(csv) => csv.encode(record.get(), meta),
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => p.encode(record.get(), meta.map(RecordMetadata::json_values).as_ref()),
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => a.encode(record.get(), meta.map(RecordMetadata::json_values).as_ref()),
        }
    }

    /// Bytes buffered and not yet taken.
    pub fn pending(&self) -> usize {
        match self {
            Encoder::Jsonl { buf, .. } | Encoder::Json { buf, .. } => buf.len(),
            Encoder::Csv(csv) => csv.writer.get_ref().len(),
            #[cfg(feature = "parquet")]
            Encoder::Parquet(_) => 0, // batches go to the writer thread instead
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => a.pending(),
        }
    }

    /// Parquet: the file's writer, to run on the writer thread (taken once, at open).
    pub fn take_parquet_writer(&mut self) -> Option<Box<crate::writer::ParquetWriter>> {
        match self {
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => p.take_writer(),
            _ => None,
        }
    }

    /// Parquet: a batch of rows ready for the writer thread.
    pub fn take_batch(&mut self) -> Option<crate::writer::Batch> {
        match self {
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => p.take_batch(),
            _ => None,
        }
    }

    /// Values written as null under `unparseable_values: null`, and the first one's message.
    pub fn unparseable(&self) -> (u64, Option<&str>) {
        match self {
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => (p.top.nulled, p.top.first_nulled.as_deref()),
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => (a.top.nulled, a.top.first_nulled.as_deref()),
            _ => (0, None),
        }
    }

    /// Takes the buffered bytes, leaving `replacement` (a recycled buffer, emptied here) in place.
    pub fn take(&mut self, mut replacement: Vec<u8>) -> Vec<u8> {
        replacement.clear();
        match self {
            Encoder::Jsonl { buf, .. } | Encoder::Json { buf, .. } => std::mem::replace(buf, replacement),
            Encoder::Csv(csv) => {
                // A csv::Writer only gives its buffer back by value: swap in a fresh one.
                let fresh = csv.builder.from_writer(replacement);
                let old = std::mem::replace(&mut csv.writer, fresh);
                old.into_inner().unwrap_or_else(|e| e.into_inner().get_ref().clone())
            }
            #[cfg(feature = "parquet")]
            Encoder::Parquet(_) => replacement,
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => a.take(replacement),
        }
    }

    /// Ends the file: whatever must follow the last record (the JSON array's `]`, the Parquet
    /// footer, the last Avro block).
    pub fn finish(&mut self) -> Result<(), String> {
        match self {
            Encoder::Json { buf, empty, .. } => {
                buf.extend_from_slice(if *empty { b"[]\n" } else { b"\n]\n" });
                Ok(())
            }
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => p.finish(),
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => a.finish(),
            _ => Ok(()),
        }
    }

    /// The first record key outside the schema seen by this encoder, if any (CSV only: those
    /// values have no column).
    pub fn take_unknown_key(&mut self) -> Option<String> {
        match self {
            Encoder::Csv(csv) => csv.unknown.take(),
            Encoder::Jsonl { flat: Some(flat), .. } | Encoder::Json { flat: Some(flat), .. } => flat.unknown.take(),
            _ => None,
        }
    }
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
    unknown: Option<String>,
    warned_unknown: bool,
}

impl Flattener {
    /// `metadata`: the `_sdc_*` members are columns too, so a tap's own `_sdc_deleted_at`
    /// survives flattening (the metadata splice then keeps it).
    fn new(schema: &StreamSchema, config: &Config, metadata: bool) -> Option<Box<Flattener>> {
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
                unknown: None,
                warned_unknown: false,
            })
        })
    }

    fn flatten(&mut self, record: &str) -> Result<&str, String> {
        let unknown = self.columns.locate(record, &mut self.slots).map_err(|e| e.to_string())?;
        if let Some(key) = unknown
            && !self.warned_unknown
        {
            self.warned_unknown = true;
            self.unknown = Some(key);
        }
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

pub struct CsvEncoder {
    builder: csv::WriterBuilder,
    writer: csv::Writer<Vec<u8>>,
    columns: Arc<ColumnPlan>,
    slots: Vec<Slot>,
    unescaped: String,
    unknown: Option<String>,
    warned_unknown: bool,
    /// The `_sdc_*` columns (the schema's own, then the rest after the schema's columns):
    /// (column, metadata index). A record's own value wins (a tap's `_sdc_deleted_at`), as in
    /// JSONL and Parquet.
    metadata: Vec<(usize, usize)>,
}

impl CsvEncoder {
    fn new(columns: Arc<ColumnPlan>, opts: &CsvOptions, capacity: usize, metadata: bool) -> CsvEncoder {
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
            unknown: None,
            warned_unknown: false,
            metadata,
        }
    }

    fn encode(&mut self, record: &str, meta: Option<&RecordMetadata<'_>>) -> Result<(), String> {
        let unknown = self.columns.locate(record, &mut self.slots).map_err(|e| e.to_string())?;
        if let Some(key) = unknown
            && !self.warned_unknown
        {
            self.warned_unknown = true;
            self.unknown = Some(key);
        }
        let values = meta.filter(|_| !self.metadata.is_empty()).map(RecordMetadata::json_values);
        for (column, slot) in self.slots.iter().enumerate() {
            let cell: &[u8] = match slot {
                None => match &values {
                    // A metadata column the record does not fill itself: the target's value.
                    Some(values) => match self.metadata.iter().find(|(c, _)| *c == column) {
                        Some((_, m)) => match values[*m].as_str() {
                            "null" => b"",
                            v if v.starts_with('"') && !v.contains('\\') => &v.as_bytes()[1..v.len() - 1],
                            v if v.starts_with('"') => {
                                self.unescaped.clear();
                                self.unescaped.push_str(&serde_json::from_str::<String>(v).map_err(|e| e.to_string())?);
                                self.unescaped.as_bytes()
                            }
                            v => v.as_bytes(),
                        },
                        None => b"",
                    },
                    None => b"",
                },
                Some((start, len)) => {
                    let raw = &record[*start..*start + *len];
                    match raw.as_bytes()[0] {
                        b'n' => b"",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{SchemaOptions, StreamSchema};

    fn csv_of(schema: &str, records: &[&str], opts: CsvOptions) -> String {
        let s = StreamSchema::compile(
            schema,
            vec![],
            SchemaOptions { validate_records: false, validate_formats: false, flatten_max_depth: opts.max_depth },
        )
        .unwrap();
        let mut enc = Encoder::Csv(Box::new(CsvEncoder::new(s.columns.clone(), &opts, 1024, false)));
        for r in records {
            enc.encode(&serde_json::from_str::<Box<RawValue>>(r).unwrap(), None).unwrap();
        }
        String::from_utf8(enc.take(Vec::new())).unwrap()
    }

    const OPTS: CsvOptions = CsvOptions { delimiter: b',', quote: b'"', header: true, max_depth: 10 };

    #[test]
    fn csv_rows_never_shift() {
        let schema = r#"{"properties":{"id":{"type":"integer"},"o":{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}}},"l":{"type":"array"},"s":{"type":"string"}}}"#;
        let out = csv_of(
            schema,
            &[
                r#"{"id":1,"o":{"a":"x,y","b":2.50},"l":[1,"a"],"s":"say \"hi\"\nnow"}"#,
                r#"{"id":2,"o":null,"s":"é"}"#,
                r#"{"s":"only"}"#,
            ],
            OPTS,
        );
        assert_eq!(
            out,
            "id,o__a,o__b,l,s\n1,\"x,y\",2.50,\"[1,\"\"a\"\"]\",\"say \"\"hi\"\"\nnow\"\n2,,,,é\n,,,,only\n"
        );
    }

    #[test]
    fn csv_options() {
        let schema = r#"{"properties":{"a":{"type":"string"},"b":{"type":"string"}}}"#;
        let out = csv_of(
            schema,
            &[r#"{"a":"x;y","b":"z"}"#],
            CsvOptions { delimiter: b';', quote: b'\'', header: false, max_depth: 10 },
        );
        assert_eq!(out, "'x;y';z\n");
    }

    #[test]
    fn csv_metadata_columns_keep_the_taps_values() {
        let schema = r#"{"properties":{"id":{"type":"integer"},"_sdc_sequence":{"type":"integer"}}}"#;
        let opts = SchemaOptions { validate_records: false, validate_formats: false, flatten_max_depth: 10 };
        let s = StreamSchema::compile(schema, vec![], opts).unwrap();
        let mut enc = Encoder::Csv(Box::new(CsvEncoder::new(s.columns.clone(), &OPTS, 1024, true)));
        let meta = RecordMetadata {
            extracted_at: Some(r#""2026-11-22T03:00:00Z""#),
            received_at: "2026-11-22T03:00:01Z",
            batched_at: "2026-11-22T03:00:02Z",
            sequence: 7,
            table_version: Some("3"),
        };
        for record in [r#"{"id":1,"_sdc_deleted_at":"2026-11-22T04:00:00Z","_sdc_sequence":99}"#, r#"{"id":2}"#] {
            enc.encode(&serde_json::from_str::<Box<RawValue>>(record).unwrap(), Some(&meta)).unwrap();
        }
        assert_eq!(enc.take_unknown_key(), None, "`_sdc_deleted_at` has its column");
        let out = String::from_utf8(enc.take(Vec::new())).unwrap();
        assert_eq!(
            out,
            "id,_sdc_sequence,_sdc_extracted_at,_sdc_received_at,_sdc_batched_at,_sdc_table_version,_sdc_deleted_at\n\
             1,99,2026-11-22T03:00:00Z,2026-11-22T03:00:01Z,2026-11-22T03:00:02Z,3,2026-11-22T04:00:00Z\n\
             2,7,2026-11-22T03:00:00Z,2026-11-22T03:00:01Z,2026-11-22T03:00:02Z,3,\n"
        );
    }

    #[test]
    fn json_array_holds_the_same_bytes() {
        let mut enc = Encoder::Json { buf: Vec::new(), empty: true, flat: None };
        for rec in [r#"{"a":1.50}"#, r#"{"b":"x"}"#] {
            enc.encode(&serde_json::from_str::<Box<RawValue>>(rec).unwrap(), None).unwrap();
        }
        enc.finish().unwrap();
        let out = String::from_utf8(enc.take(Vec::new())).unwrap();
        assert_eq!(out, "[\n{\"a\":1.50},\n{\"b\":\"x\"}\n]\n");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().len(), 2);
    }

    #[test]
    fn metadata_is_spliced_into_the_record() {
        let meta = RecordMetadata {
            extracted_at: Some(r#""2026-11-22T03:00:00Z""#),
            received_at: "2026-11-22T03:00:01Z",
            batched_at: "2026-11-22T03:00:02Z",
            sequence: 7,
            table_version: None,
        };
        let mut buf = Vec::new();
        push_with_metadata(&mut buf, r#"{"a":1,"_sdc_deleted_at":"x"}"#, &meta);
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(v["_sdc_deleted_at"], "x", "the tap's value is kept");
        assert_eq!(v["_sdc_sequence"], 7);
        assert_eq!(v["_sdc_extracted_at"], "2026-11-22T03:00:00Z");
        assert!(v["_sdc_table_version"].is_null());
        buf.clear();
        push_with_metadata(&mut buf, "{ }", &meta);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&buf).unwrap().as_object().unwrap().len(), 6);
    }

    #[test]
    fn jsonl_is_byte_identical() {
        let mut enc = Encoder::Jsonl { buf: Vec::new(), flat: None };
        let rec = r#"{"b":1.50,"a":"2020-01-01T00:00:00","u":"\u00e9"}"#;
        enc.encode(&serde_json::from_str::<Box<RawValue>>(rec).unwrap(), None).unwrap();
        assert_eq!(enc.take(Vec::new()), format!("{rec}\n").into_bytes());
    }
}
