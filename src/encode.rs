//! Encoders turn records into a file's uncompressed bytes. One encoder per open file; it owns
//! the buffer that is handed to the writer thread in large chunks.

use std::sync::Arc;

use serde_json::value::RawValue;

use crate::config::{CsvOptions, Format};
use crate::schema::{ColumnPlan, Slot};

pub enum Encoder {
    /// The record's bytes exactly as the tap sent them, one per line.
    Jsonl {
        buf: Vec<u8>,
    },
    /// The same bytes as JSONL, as the elements of one JSON array.
    Json {
        buf: Vec<u8>,
        empty: bool,
    },
    Csv(Box<CsvEncoder>),
}

impl Encoder {
    pub fn new(format: Format, columns: &Arc<ColumnPlan>, csv: &CsvOptions, capacity: usize) -> Encoder {
        match format {
            Format::Jsonl => Encoder::Jsonl { buf: Vec::with_capacity(capacity) },
            Format::Json => Encoder::Json { buf: Vec::with_capacity(capacity), empty: true },
            Format::Csv => Encoder::Csv(Box::new(CsvEncoder::new(columns.clone(), csv, capacity))),
        }
    }

    /// Appends one record. An error names what could not be written.
    pub fn encode(&mut self, record: &RawValue) -> Result<(), String> {
        match self {
            Encoder::Jsonl { buf } => {
                buf.extend_from_slice(record.get().as_bytes());
                buf.push(b'\n');
                Ok(())
            }
            Encoder::Json { buf, empty } => {
                buf.push(if *empty { b'[' } else { b',' });
                *empty = false;
                buf.push(b'\n');
                buf.extend_from_slice(record.get().as_bytes());
                Ok(())
            }
            Encoder::Csv(csv) => csv.encode(record.get()),
        }
    }

    /// Bytes buffered and not yet taken.
    pub fn pending(&self) -> usize {
        match self {
            Encoder::Jsonl { buf } | Encoder::Json { buf, .. } => buf.len(),
            Encoder::Csv(csv) => csv.writer.get_ref().len(),
        }
    }

    /// Takes the buffered bytes, leaving `replacement` (a recycled buffer, emptied here) in place.
    pub fn take(&mut self, mut replacement: Vec<u8>) -> Vec<u8> {
        replacement.clear();
        match self {
            Encoder::Jsonl { buf } | Encoder::Json { buf, .. } => std::mem::replace(buf, replacement),
            Encoder::Csv(csv) => {
                // A csv::Writer only gives its buffer back by value: swap in a fresh one.
                let fresh = csv.builder.from_writer(replacement);
                let old = std::mem::replace(&mut csv.writer, fresh);
                old.into_inner().unwrap_or_else(|e| e.into_inner().get_ref().clone())
            }
        }
    }

    /// Ends the file: whatever must follow the last record (the JSON array's `]`).
    pub fn finish(&mut self) {
        if let Encoder::Json { buf, empty } = self {
            buf.extend_from_slice(if *empty { b"[]\n" } else { b"\n]\n" });
        }
    }

    /// The first record key outside the schema seen by this encoder, if any (CSV only: those
    /// values have no column).
    pub fn take_unknown_key(&mut self) -> Option<String> {
        match self {
            Encoder::Csv(csv) => csv.unknown.take(),
            Encoder::Jsonl { .. } | Encoder::Json { .. } => None,
        }
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
}

impl CsvEncoder {
    fn new(columns: Arc<ColumnPlan>, opts: &CsvOptions, capacity: usize) -> CsvEncoder {
        let mut builder = csv::WriterBuilder::new();
        builder.delimiter(opts.delimiter).quote(opts.quote).buffer_capacity(16 * 1024);
        let mut writer = builder.from_writer(Vec::with_capacity(capacity));
        if opts.header {
            // Writing into a Vec cannot fail.
            let _ = writer.write_record(&columns.names);
        }
        CsvEncoder {
            builder,
            slots: vec![None; columns.names.len()],
            writer,
            columns,
            unescaped: String::new(),
            unknown: None,
            warned_unknown: false,
        }
    }

    fn encode(&mut self, record: &str) -> Result<(), String> {
        let unknown = self.columns.locate(record, &mut self.slots).map_err(|e| e.to_string())?;
        if let Some(key) = unknown
            && !self.warned_unknown
        {
            self.warned_unknown = true;
            self.unknown = Some(key);
        }
        for slot in &self.slots {
            let cell: &[u8] = match slot {
                None => b"",
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
        let mut enc = Encoder::new(Format::Csv, &s.columns, &opts, 1024);
        for r in records {
            enc.encode(&serde_json::from_str::<Box<RawValue>>(r).unwrap()).unwrap();
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
    fn json_array_holds_the_same_bytes() {
        let mut enc = Encoder::Json { buf: Vec::new(), empty: true };
        for rec in [r#"{"a":1.50}"#, r#"{"b":"x"}"#] {
            enc.encode(&serde_json::from_str::<Box<RawValue>>(rec).unwrap()).unwrap();
        }
        enc.finish();
        let out = String::from_utf8(enc.take(Vec::new())).unwrap();
        assert_eq!(out, "[\n{\"a\":1.50},\n{\"b\":\"x\"}\n]\n");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap().as_array().unwrap().len(), 2);
    }

    #[test]
    fn jsonl_is_byte_identical() {
        let mut enc = Encoder::Jsonl { buf: Vec::new() };
        let rec = r#"{"b":1.50,"a":"2020-01-01T00:00:00","u":"\u00e9"}"#;
        enc.encode(&serde_json::from_str::<Box<RawValue>>(rec).unwrap()).unwrap();
        assert_eq!(enc.take(Vec::new()), format!("{rec}\n").into_bytes());
    }
}
