//! File formats: an [`Encoder`] turns records into a file's bytes, one encoder per open file,
//! owning the buffer that is handed to the writer thread in large chunks. [`json`] (JSONL and
//! JSON), [`csv`], [`parquet`] and [`avro`] are the formats; [`metadata`] the `_sdc_*` columns.
//! Parquet's page encoding and Avro's block compression run on the writer thread through
//! [`PageWriter`]; formats know nothing of threads or storage.

#[cfg(feature = "avro")]
pub mod avro;
mod csv;
/// Raw deflate on libdeflate, for Avro's blocks and the writer's gzip members.
pub mod deflate;
mod json;
pub mod metadata;
#[cfg(feature = "parquet")]
pub mod parquet;

use std::any::Any;

use crate::config::{Config, Format};
use crate::json::Dropped;
use crate::schema::StreamSchema;
use csv::CsvEncoder;
use json::{Flattener, push_json};
pub use metadata::{METADATA_COLUMNS, RecordMetadata};

/// Rows of a typed file on their way from the decode thread (which fills them from records) to
/// the writer thread (which encodes them into pages, or compresses Avro's blocks). Opaque to everyone but the format that
/// made them.
pub struct RowBatch {
    /// In-memory size, for the file-size estimate.
    pub size: u64,
    rows: Box<dyn Any + Send>,
}

impl RowBatch {
    pub fn new<T: Any + Send>(size: u64, rows: T) -> RowBatch {
        RowBatch { size, rows: Box::new(rows) }
    }

    /// The rows, when they are of the type the caller made.
    pub fn take<T: Any>(self) -> Option<T> {
        self.rows.downcast().ok().map(|b| *b)
    }
}

/// The part of a typed format that runs on the writer thread (Parquet's page encoding and
/// compression, Avro's block compression), so it uses the second core.
pub trait PageWriter: Send {
    fn write(&mut self, rows: RowBatch) -> std::io::Result<()>;
    /// Bytes finished so far (complete row groups), taken.
    fn take_output(&mut self) -> Vec<u8>;
    /// Bytes encoded but held back (a row group in progress).
    fn held(&self) -> u64;
    /// The rest of the file (the footer).
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>>;
}

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
    Parquet(Box<parquet::ParquetEncoder>),
    #[cfg(feature = "avro")]
    Avro(Box<avro::AvroEncoder>),
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
        #[cfg_attr(not(feature = "parquet"), allow(unused_variables))] field_ids: Option<&serde_json::Value>,
    ) -> Result<Encoder, String> {
        #[cfg(any(feature = "parquet", feature = "avro"))]
        let binary = &config.binary;
        #[cfg(any(feature = "parquet", feature = "avro"))]
        let typed = || schema.typed_columns(binary.nested_as_json, metadata);
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
            Format::Parquet => Encoder::Parquet(Box::new(parquet::ParquetEncoder::new(
                typed(),
                binary.parquet_codec,
                binary.row_group_size,
                binary.unparseable,
                field_ids,
            )?)),
            #[cfg(feature = "avro")]
            Format::Avro => {
                let block = avro::block_bytes(config.limits.max_bytes);
                Encoder::Avro(Box::new(avro::AvroEncoder::new(
                    stream,
                    typed(),
                    binary.avro_codec,
                    binary.unparseable,
                    block,
                )?))
            }
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
            Format::Avro => {
                avro::check(stream, &schema.typed_columns(config.binary.nested_as_json, config.add_record_metadata))
            }
            _ => Ok(()),
        }
    }

    /// Appends one record (with its `_sdc_*` metadata when given). An error names what could
    /// not be written.
    pub fn encode(&mut self, record: &str, meta: Option<&RecordMetadata<'_>>) -> Result<(), String> {
        match self {
            Encoder::Jsonl { buf, flat } => {
                push_json(buf, flat, record, meta)?;
                buf.push(b'\n');
                Ok(())
            }
            Encoder::Json { buf, empty, flat } => {
                buf.extend_from_slice(if *empty { b"[\n" } else { b",\n" });
                *empty = false;
                push_json(buf, flat, record, meta)
            }
            Encoder::Csv(csv) => csv.encode(record, meta),
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => p.encode(record, meta.map(RecordMetadata::json_values).as_ref()),
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => a.encode(record, meta.map(RecordMetadata::json_values).as_ref()),
        }
    }

    /// Whether a record that failed to encode left nothing of itself in the file (Avro cuts it
    /// off its block), so the file can be kept with the records before it. Parquet's builders
    /// may hold some of its columns (nested ones too), which no cut undoes safely.
    pub fn undoes_failed_records(&self) -> bool {
        match self {
            #[cfg(feature = "avro")]
            Encoder::Avro(_) => true,
            _ => false,
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
            Encoder::Avro(_) => 0, // blocks go to the writer thread instead
        }
    }

    /// Encoded bytes kept back from the writer until a batch is full (an Avro block being
    /// filled), for the file-size estimate.
    pub fn in_progress(&self) -> usize {
        match self {
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => a.in_block(),
            _ => 0,
        }
    }

    /// Typed formats: the file's page writer, to run on the writer thread (taken once, at open).
    pub fn take_page_writer(&mut self) -> Option<Box<dyn PageWriter>> {
        match self {
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => p.take_writer(),
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => a.take_writer(),
            _ => None,
        }
    }

    /// Typed formats: a batch of rows ready for the writer thread.
    pub fn take_rows(&mut self) -> Option<RowBatch> {
        match self {
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => p.take_batch(),
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => a.take_batch(),
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
            Encoder::Avro(_) => replacement,
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

    /// Numbers this file's float columns rounded, per field (Parquet and Avro).
    pub fn lossy(&self) -> &crate::schema::typed::Lossy {
        static NONE: crate::schema::typed::Lossy = crate::schema::typed::Lossy(Vec::new());
        match self {
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => &p.top.lossy,
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => &a.top.lossy,
            _ => &NONE,
        }
    }

    /// Properties outside the schema this file had no place for (CSV, flattened JSON, Parquet
    /// and Avro; JSONL and JSON keep the tap's record as it is).
    pub fn dropped(&self) -> &Dropped {
        static NONE: Dropped = Dropped { count: 0, first: None };
        match self {
            Encoder::Csv(csv) => &csv.dropped,
            Encoder::Jsonl { flat: Some(flat), .. } | Encoder::Json { flat: Some(flat), .. } => &flat.dropped,
            #[cfg(feature = "parquet")]
            Encoder::Parquet(p) => &p.top.dropped,
            #[cfg(feature = "avro")]
            Encoder::Avro(a) => &a.top.dropped,
            _ => &NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::metadata::push_with_metadata;
    use super::*;
    use crate::config::CsvOptions;
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
            enc.encode(serde_json::from_str::<&serde_json::value::RawValue>(r).unwrap().get(), None).unwrap();
        }
        String::from_utf8(enc.take(Vec::new())).unwrap()
    }

    fn csv_opts() -> CsvOptions {
        CsvOptions { delimiter: b',', quote: b'"', header: true, max_depth: 10, null_value: String::new() }
    }

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
            csv_opts(),
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
            CsvOptions { delimiter: b';', quote: b'\'', header: false, max_depth: 10, null_value: String::new() },
        );
        assert_eq!(out, "'x;y';z\n");
    }

    #[test]
    fn csv_metadata_columns_keep_the_taps_values() {
        let schema = r#"{"properties":{"id":{"type":"integer"},"_sdc_sequence":{"type":"integer"}}}"#;
        let opts = SchemaOptions { validate_records: false, validate_formats: false, flatten_max_depth: 10 };
        let s = StreamSchema::compile(schema, vec![], opts).unwrap();
        let mut enc = Encoder::Csv(Box::new(CsvEncoder::new(s.columns.clone(), &csv_opts(), 1024, true)));
        let meta = RecordMetadata {
            extracted_at: Some(r#""2026-11-22T03:00:00Z""#),
            received_at: "2026-11-22T03:00:01Z",
            batched_at: "2026-11-22T03:00:02Z",
            sequence: 7,
            table_version: Some("3"),
        };
        for record in [r#"{"id":1,"_sdc_deleted_at":"2026-11-22T04:00:00Z","_sdc_sequence":99}"#, r#"{"id":2}"#] {
            enc.encode(serde_json::from_str::<&serde_json::value::RawValue>(record).unwrap().get(), Some(&meta))
                .unwrap();
        }
        assert_eq!(enc.dropped().count, 0, "`_sdc_deleted_at` has its column");
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
            enc.encode(serde_json::from_str::<&serde_json::value::RawValue>(rec).unwrap().get(), None).unwrap();
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
        enc.encode(serde_json::from_str::<&serde_json::value::RawValue>(rec).unwrap().get(), None).unwrap();
        assert_eq!(enc.take(Vec::new()), format!("{rec}\n").into_bytes());
    }
}
