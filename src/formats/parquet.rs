//! `format: parquet`: records go straight from their raw JSON text into Arrow builders typed by
//! the stream's JSON Schema ([`crate::schema::typed`]), every few thousand rows into a record batch.
//! The batches go to the writer thread, which runs arrow-rs's `ArrowWriter` (page encoding,
//! compression, row groups) on the second core and passes finished row groups on, so memory is
//! bounded by a row group, not by the file.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field as ArrowField, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::{PageWriter, RowBatch};
use crate::config::ParquetCodec;
use crate::schema::typed::{self, Field, FieldIndex, Outcome, Problem, Rows, Type, Unparseable};

/// The page codec for `parquet_compression` (`lz4` is LZ4_RAW, the non-deprecated one).
fn compression(codec: ParquetCodec) -> Compression {
    match codec {
        ParquetCodec::Snappy => Compression::SNAPPY,
        ParquetCodec::Zstd => Compression::ZSTD(ZstdLevel::default()),
        ParquetCodec::Gzip => Compression::GZIP(GzipLevel::default()),
        ParquetCodec::Lz4 => Compression::LZ4_RAW,
        ParquetCodec::None => Compression::UNCOMPRESSED,
    }
}

/// Rows gathered in the builders before they become a record batch: big enough to amortise
/// finishing the arrays, small enough to keep the builders' memory low.
const BATCH_ROWS: usize = 4096;
/// A row group is also cut when its encoded pages reach this size, whatever `row_group_size` says.
const MAX_ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;

/// The Arrow schema of a stream's columns.
pub fn arrow_schema(fields: &[Field]) -> Schema {
    arrow_schema_with_ids(fields, None)
}

/// The Arrow schema of a stream's columns, each with the field id its Iceberg table gave its
/// name (`ids`: the table schema's `fields`, as Iceberg's metadata JSON holds them), which the
/// Parquet writer stores in the file: Iceberg readers find a column by its id, so a column
/// another engine renames later still reads.
pub fn arrow_schema_with_ids(fields: &[Field], ids: Option<&serde_json::Value>) -> Schema {
    Schema::new(fields.iter().map(|f| arrow_field(f, iceberg_field(ids, &f.name))).collect::<Vec<_>>())
}

/// Marks (in the Iceberg fields given for the file) a text column an Iceberg table partitions
/// by its value: the pipeline puts an empty text and a null in the same partition folder, and
/// the table keeps one partition value per file, so an empty text cannot be written as itself.
pub const EMPTY_IS_NULL: &str = "target-s3.empty-text-partition";

/// What an empty text in such a column is not.
const NON_EMPTY_PARTITION: &str = "a non-empty text: the Iceberg table is partitioned by this field, and an empty text shares the null partition (one partition value per data file)";

/// The Iceberg field named `name` among `fields`.
fn iceberg_field<'v>(fields: Option<&'v serde_json::Value>, name: &str) -> Option<&'v serde_json::Value> {
    fields?.as_array()?.iter().find(|f| f["name"] == name)
}

/// `iceberg`: the column's Iceberg field (`{"id", "type", ...}`), when the file carries ids.
fn arrow_field(field: &Field, iceberg: Option<&serde_json::Value>) -> ArrowField {
    let arrow = ArrowField::new(&field.name, data_type(&field.ty, iceberg.map(|f| &f["type"])), field.nullable);
    match iceberg.and_then(|f| f["id"].as_i64()) {
        Some(id) => arrow.with_metadata([("PARQUET:field_id".to_string(), id.to_string())].into()),
        None => arrow,
    }
}

fn data_type(ty: &Type, iceberg: Option<&serde_json::Value>) -> DataType {
    match ty {
        Type::Int => DataType::Int64,
        Type::Float => DataType::Float64,
        Type::Decimal { scale } => DataType::Decimal128(38, *scale as i8),
        Type::Bool => DataType::Boolean,
        Type::Text | Type::Json | Type::Numeric => DataType::Utf8,
        Type::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::Date => DataType::Date32,
        Type::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| arrow_field(f, iceberg_field(iceberg.map(|t| &t["fields"]), &f.name)))
                .collect::<Fields>(),
        ),
        Type::List(item) => {
            let element = iceberg.map(|t| serde_json::json!({"id": t["element-id"], "type": t["element"]}));
            DataType::List(Arc::new(arrow_field(item, element.as_ref())))
        }
    }
}

pub struct ParquetEncoder {
    /// Built here, run by the writer thread ([`ParquetEncoder::take_writer`]).
    writer: Option<Box<ArrowWriter<Vec<u8>>>>,
    /// A finished batch waiting to be sent.
    ready: Option<RecordBatch>,
    schema: SchemaRef,
    root: Vec<Column>,
    pub top: Rows,
    rows: usize,
}

impl ParquetEncoder {
    pub fn new(
        fields: Vec<Field>,
        codec: ParquetCodec,
        row_group_size: usize,
        policy: Unparseable,
        field_ids: Option<&serde_json::Value>,
    ) -> Result<ParquetEncoder, String> {
        let schema = Arc::new(arrow_schema_with_ids(&fields, field_ids));
        let root = fields
            .iter()
            .zip(schema.fields())
            .map(|(f, a)| {
                let mut column = Column::new(f, a, f.name.clone());
                column.empty_is_null = iceberg_field(field_ids, &f.name).is_some_and(|i| i[EMPTY_IS_NULL] == true);
                column
            })
            .collect();
        let props = WriterProperties::builder()
            .set_compression(compression(codec))
            .set_max_row_group_row_count(Some(row_group_size))
            .set_max_row_group_bytes(Some(MAX_ROW_GROUP_BYTES))
            .set_created_by(concat!("target-s3 ", env!("CARGO_PKG_VERSION")).to_string())
            .build();
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(|e| e.to_string())?;
        Ok(ParquetEncoder {
            writer: Some(Box::new(writer)),
            ready: None,
            schema,
            top: Rows::new(&fields, policy),
            root,
            rows: 0,
        })
    }

    /// Appends one record. `metadata`: the `_sdc_*` values as JSON text, filling the metadata
    /// columns the record itself does not have.
    pub fn encode(&mut self, record: &str, metadata: Option<&[String; 6]>) -> Result<(), String> {
        let root = &mut self.root;
        self.top.each(record, metadata, |i, raw, outcome| root[i].append(raw, outcome))?;
        self.rows += 1;
        if self.rows >= BATCH_ROWS {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), String> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.root.iter_mut().map(Column::finish).collect();
        self.rows = 0;
        debug_assert!(self.ready.is_none(), "the pipeline takes each batch after encode");
        self.ready = Some(RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| e.to_string())?);
        Ok(())
    }

    /// The file's page writer (its `ArrowWriter`), for the writer thread (once, at open).
    pub fn take_writer(&mut self) -> Option<Box<dyn PageWriter>> {
        self.writer.take().map(|w| Box::new(Pages(w)) as Box<dyn PageWriter>)
    }

    /// A finished batch of rows, when one is ready.
    pub fn take_batch(&mut self) -> Option<RowBatch> {
        self.ready.take().map(|batch| RowBatch::new(batch.get_array_memory_size() as u64, batch))
    }

    /// The last rows become a batch (the writer thread writes the footer when the file closes).
    pub fn finish(&mut self) -> Result<(), String> {
        self.flush_batch()
    }
}

/// Parquet's page encoding and compression, run on the writer thread: row groups leave as soon
/// as they are complete, so memory is one row group in progress per open file.
struct Pages(Box<ArrowWriter<Vec<u8>>>);

impl PageWriter for Pages {
    fn write(&mut self, rows: RowBatch) -> std::io::Result<()> {
        let batch: RecordBatch = rows.take().ok_or_else(|| std::io::Error::other("rows of another format"))?;
        self.0.write(&batch).map_err(std::io::Error::other)
    }

    fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(self.0.inner_mut())
    }

    fn held(&self) -> u64 {
        self.0.in_progress_size() as u64
    }

    fn finish(mut self: Box<Self>) -> std::io::Result<Vec<u8>> {
        self.0.finish().map_err(std::io::Error::other)?;
        Ok(std::mem::take(self.0.inner_mut()))
    }
}

struct Column {
    path: String,
    nullable: bool,
    expected: &'static str,
    kind: Kind,
    /// See [`EMPTY_IS_NULL`].
    empty_is_null: bool,
}

enum Kind {
    Int(Int64Builder),
    Float(Float64Builder),
    Decimal(Decimal128Builder, u8),
    Numeric(StringBuilder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
    Json(StringBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Struct {
        fields: Fields,
        children: Vec<Column>,
        index: FieldIndex,
        slots: Vec<Option<(usize, usize)>>,
        validity: NullBufferBuilder,
    },
    List {
        field: Arc<ArrowField>,
        item: Box<Column>,
        offsets: Vec<i32>,
        validity: NullBufferBuilder,
        elements: Vec<(usize, usize)>,
    },
}

impl Column {
    /// `arrow`: the column's Arrow field (nested fields keep their ids).
    fn new(field: &Field, arrow: &ArrowField, path: String) -> Column {
        let kind = match &field.ty {
            Type::Int => Kind::Int(Int64Builder::new()),
            Type::Float => Kind::Float(Float64Builder::new()),
            Type::Decimal { scale } => {
                Kind::Decimal(Decimal128Builder::new().with_data_type(arrow.data_type().clone()), *scale)
            }
            Type::Numeric => Kind::Numeric(StringBuilder::new()),
            Type::Bool => Kind::Bool(BooleanBuilder::new()),
            Type::Text => Kind::Text(StringBuilder::new()),
            Type::Json => Kind::Json(StringBuilder::new()),
            Type::Timestamp => Kind::Timestamp(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
            Type::Date => Kind::Date(Date32Builder::new()),
            Type::Struct(fields) => Kind::Struct {
                fields: match arrow.data_type() {
                    DataType::Struct(arrow) => arrow.clone(),
                    _ => unreachable!("a struct column's Arrow type is a struct"),
                },
                children: match arrow.data_type() {
                    DataType::Struct(arrow) => fields
                        .iter()
                        .zip(arrow.iter())
                        .map(|(f, a)| Column::new(f, a, format!("{path}.{}", f.name)))
                        .collect(),
                    _ => unreachable!("a struct column's Arrow type is a struct"),
                },
                index: FieldIndex::new(fields.iter().map(|f| f.name.as_str())),
                slots: vec![None; fields.len()],
                validity: NullBufferBuilder::new(BATCH_ROWS),
            },
            Type::List(item) => {
                let DataType::List(element) = arrow.data_type() else {
                    unreachable!("a list column's Arrow type is a list")
                };
                Kind::List {
                    field: element.clone(),
                    item: Box::new(Column::new(item, element, format!("{path}[]"))),
                    offsets: vec![0],
                    validity: NullBufferBuilder::new(BATCH_ROWS),
                    elements: Vec::new(),
                }
            }
        };
        Column { path, nullable: field.nullable, expected: field.ty.expected(), kind, empty_is_null: false }
    }

    /// Appends the value whose JSON text is `raw` (`None`: the member is absent).
    fn append(&mut self, raw: Option<&str>, outcome: &mut Outcome) -> Result<(), Problem> {
        let raw = match raw {
            None | Some("null") => {
                if !self.nullable {
                    return Err(typed::required(&self.path, raw));
                }
                self.append_null();
                return Ok(());
            }
            Some(raw) => raw,
        };
        if self.empty_is_null && raw == "\"\"" {
            outcome.refuse(Problem::new(&self.path, raw, NON_EMPTY_PARTITION), self.nullable)?;
            self.append_null();
            return Ok(());
        }
        let fits = match &mut self.kind {
            Kind::Int(b) => typed::int(raw).map(|v| b.append_value(v)),
            Kind::Float(b) => typed::float_exact(raw).map(|(v, exact)| {
                if !exact {
                    outcome.lossy.note(&self.path, raw);
                }
                b.append_value(v)
            }),
            Kind::Decimal(b, scale) => typed::decimal(raw, *scale).map(|v| b.append_value(v)),
            Kind::Numeric(b) => typed::numeric(raw).map(|v| b.append_value(v)),
            Kind::Bool(b) => typed::boolean(raw).map(|v| b.append_value(v)),
            Kind::Text(b) => {
                b.append_value(typed::text(raw));
                Some(())
            }
            Kind::Json(b) => {
                b.append_value(raw);
                Some(())
            }
            Kind::Timestamp(b) => typed::timestamp(raw).map(|v| b.append_value(v)),
            Kind::Date(b) => typed::date(raw).map(|v| b.append_value(v)),
            Kind::Struct { children, index, slots, validity, .. } => {
                if typed::members(raw, index, slots, &mut crate::json::Dropped::default()).is_err() {
                    None
                } else {
                    for (i, child) in children.iter_mut().enumerate() {
                        let value = slots[i].map(|(s, l)| &raw[s..s + l]);
                        child.append(value, outcome)?;
                    }
                    validity.append_non_null();
                    Some(())
                }
            }
            Kind::List { item, offsets, validity, elements, .. } => {
                if typed::elements(raw, elements).is_err() {
                    None
                } else {
                    for (s, l) in elements.iter() {
                        let element = &raw[*s..*s + *l];
                        if element.starts_with('[') && !item.holds_arrays() {
                            // A multi-dimensional Postgres array in a one-dimensional column.
                            outcome.refuse(Problem::new(&item.path, element, typed::NOT_NESTED), item.nullable)?;
                            item.append_null();
                            continue;
                        }
                        item.append(Some(element), outcome)?;
                    }
                    let last = *offsets.last().expect("starts with 0");
                    offsets.push(last + elements.len() as i32);
                    validity.append_non_null();
                    Some(())
                }
            }
        };
        if fits.is_none() {
            outcome.refuse(Problem::new(&self.path, raw, self.expected), self.nullable)?;
            self.append_null();
        }
        Ok(())
    }

    /// Whether an array fits this column as one value (a list, or JSON text).
    fn holds_arrays(&self) -> bool {
        matches!(self.kind, Kind::List { .. } | Kind::Json(_))
    }

    fn append_null(&mut self) {
        match &mut self.kind {
            Kind::Int(b) => b.append_null(),
            Kind::Float(b) => b.append_null(),
            Kind::Decimal(b, _) => b.append_null(),
            Kind::Bool(b) => b.append_null(),
            Kind::Text(b) | Kind::Json(b) | Kind::Numeric(b) => b.append_null(),
            Kind::Timestamp(b) => b.append_null(),
            Kind::Date(b) => b.append_null(),
            Kind::Struct { children, validity, .. } => {
                // A null struct still has a (masked) slot in every child.
                children.iter_mut().for_each(Column::append_null);
                validity.append_null();
            }
            Kind::List { offsets, validity, .. } => {
                let last = *offsets.last().expect("starts with 0");
                offsets.push(last);
                validity.append_null();
            }
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match &mut self.kind {
            Kind::Int(b) => Arc::new(b.finish()),
            Kind::Float(b) => Arc::new(b.finish()),
            Kind::Decimal(b, _) => Arc::new(b.finish()),
            Kind::Bool(b) => Arc::new(b.finish()),
            Kind::Text(b) | Kind::Json(b) | Kind::Numeric(b) => Arc::new(b.finish()),
            Kind::Timestamp(b) => Arc::new(b.finish()),
            Kind::Date(b) => Arc::new(b.finish()),
            Kind::Struct { fields, children, validity, .. } => {
                let arrays = children.iter_mut().map(Column::finish).collect();
                Arc::new(StructArray::new(fields.clone(), arrays, validity.finish()))
            }
            Kind::List { field, item, offsets, validity, .. } => {
                let values = item.finish();
                let offsets = std::mem::replace(offsets, vec![0]);
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(ListArray::new(field.clone(), offsets, values, validity.finish()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    /// Encodes like the pipeline and writes like the writer thread.
    fn write(schema: &str, records: &[&str], policy: Unparseable) -> Result<(Vec<u8>, u64), String> {
        let mut enc = ParquetEncoder::new(typed::columns(schema, false, false), ParquetCodec::Snappy, 2, policy, None)?;
        let mut writer = enc.take_writer().unwrap();
        let mut out = Vec::new();
        for r in records {
            enc.encode(r, None)?;
            if let Some(batch) = enc.take_batch() {
                writer.write(batch).unwrap();
                out.extend(writer.take_output());
            }
        }
        enc.finish()?;
        if let Some(batch) = enc.take_batch() {
            writer.write(batch).unwrap();
        }
        out.extend(writer.finish().unwrap());
        Ok((out, enc.top.nulled))
    }

    fn read(bytes: Vec<u8>) -> Vec<RecordBatch> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).unwrap().build().unwrap();
        reader.collect::<Result<Vec<_>, _>>().unwrap()
    }

    #[test]
    fn nested_values_round_trip() {
        let schema = r#"{"properties":{"id":{"type":"integer"},"o":{"type":["null","object"],"properties":{"a":{"type":"string"},"l":{"type":"array","items":{"type":"integer"}}}},"at":{"type":"string","format":"date-time"}}}"#;
        let records = [
            r#"{"id":1,"o":{"a":"x","l":[1,2]},"at":"2026-01-01T00:00:00Z"}"#,
            r#"{"id":2,"o":null}"#,
            r#"{"id":3,"o":{"l":null,"a":"é"},"at":"2026-01-01T02:00:00+02:00"}"#,
        ];
        let (bytes, _) = write(schema, &records, Unparseable::Fail).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.clone())).unwrap();
        assert_eq!(builder.metadata().num_row_groups(), 2, "row_group_size 2 cuts row groups");
        let batches = read(bytes);
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 3);
        let at = batches[0].column(2).as_any().downcast_ref::<arrow_array::TimestampMicrosecondArray>().unwrap();
        assert_eq!(at.value(0), 1_767_225_600_000_000);
        let last = batches.last().unwrap();
        let at = last.column(2).as_any().downcast_ref::<arrow_array::TimestampMicrosecondArray>().unwrap();
        assert_eq!(at.value(last.num_rows() - 1), 1_767_225_600_000_000, "the offset is honoured");
    }

    #[test]
    fn exact_numbers_and_postgres_arrays_round_trip() {
        let schema = r##"{"properties":{
            "ratio":{"type":["null","number"],"multipleOf":1e-38,"exclusiveMaximum":true,"maximum":1e62,"exclusiveMinimum":true,"minimum":-1e62},
            "scores":{"type":["null","array"],"items":{"$ref":"#/definitions/ints"}}},
          "definitions":{"ints":{"type":["null","integer","array"],"items":{"$ref":"#/definitions/ints"}}}}"##;
        let records = [r#"{"ratio":0.33333333333333333333,"scores":[2,null,-7]}"#, r#"{"ratio":0E-10,"scores":[]}"#];
        let (bytes, _) = write(schema, &records, Unparseable::Fail).unwrap();
        let batch = &read(bytes)[0];
        assert_eq!(batch.schema().field(0).data_type(), &DataType::Utf8);
        let ratio = batch.column(0).as_any().downcast_ref::<arrow_array::StringArray>().unwrap();
        assert_eq!((ratio.value(0), ratio.value(1)), ("0.33333333333333333333", "0E-10"), "not rounded");
        let scores = batch.column(1).as_any().downcast_ref::<ListArray>().unwrap();
        let first = scores.value(0);
        let first = first.as_any().downcast_ref::<arrow_array::Int64Array>().unwrap();
        assert_eq!(first.iter().collect::<Vec<_>>(), vec![Some(2), None, Some(-7)]);
        // A two-dimensional array does not fit a list of integers: refused, or a counted null element.
        let nested = [r#"{"scores":[[1,2],[3]]}"#];
        let err = write(schema, &nested, Unparseable::Fail).unwrap_err();
        assert!(err.starts_with("field `scores[]`: [1,2] is not an element of a one-dimensional array"), "{err}");
        assert!(err.contains("nested_as_json"), "{err}");
        let (_, nulled) = write(schema, &nested, Unparseable::Null).unwrap();
        assert_eq!(nulled, 2);
    }

    #[test]
    fn unparseable_values_fail_or_count() {
        let schema = r#"{"properties":{"id":{"type":"integer"},"at":{"type":"string","format":"date-time"}}}"#;
        let records = [r#"{"id":1,"at":"soon"}"#];
        let err = write(schema, &records, Unparseable::Fail).unwrap_err();
        assert_eq!(err, "field `at`: \"soon\" is not a date-time");
        let (bytes, nulled) = write(schema, &records, Unparseable::Null).unwrap();
        assert_eq!(nulled, 1);
        let batch = &read(bytes)[0];
        assert_eq!(batch.num_rows(), 1);
        assert!(batch.column(1).is_null(0));
    }
}
