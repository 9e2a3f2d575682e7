//! The Avro files of a snapshot: a manifest naming the data files a commit adds, and the
//! manifest list naming every manifest of the table at that snapshot (the parent's, then ours:
//! a fast append). The Avro schemas are Iceberg's own v2 schemas with their field ids
//! (`schemas/`, as pyiceberg writes them), which readers resolve fields by.

use apache_avro::types::Value;
use apache_avro::{Codec, DeflateSettings, Reader, Schema, Writer};

use super::partition::{self, Datum, SpecField};

const MANIFEST_ENTRY: &str = include_str!("schemas/manifest_entry.json");
const MANIFEST_FILE: &str = include_str!("schemas/manifest_file.json");

/// A data file a commit adds.
pub struct DataFile {
    /// Its absolute URI (`file:///...`, `s3://bucket/...`).
    pub path: String,
    pub records: u64,
    pub bytes: u64,
    /// Its partition tuple, in spec order.
    pub partition: Vec<Option<Datum>>,
    pub stats: super::stats::Stats,
}

/// An Iceberg map (an Avro array of key-value records), or null when empty.
fn map<V>(entries: &[(i32, V)], value: impl Fn(&V) -> Value) -> Value {
    if entries.is_empty() {
        return null();
    }
    let items = entries
        .iter()
        .map(|(k, v)| Value::Record(vec![("key".into(), Value::Int(*k)), ("value".into(), value(v))]))
        .collect();
    Value::Union(1, Box::new(Value::Array(items)))
}

/// The manifest a snapshot adds, as the manifest list names it.
pub struct Added {
    pub path: String,
    pub length: u64,
    pub files: u64,
    pub records: u64,
    pub spec_id: i64,
    /// Each partition field's summary over the manifest's files.
    pub partitions: Vec<Value>,
}

/// The partition spec the manifest's files are written for.
pub struct Spec<'a> {
    pub id: i64,
    pub fields: &'a [SpecField],
    /// The spec's fields as the table metadata holds them (the manifest's `partition-spec`).
    pub json: &'a serde_json::Value,
}

/// The empty partition tuple of Iceberg's manifest entry schema, replaced by the spec's.
const EMPTY_TUPLE: &str = r#"{"type":"record","fields":[],"name":"r102"}"#;

fn schema(json: &str) -> Schema {
    Schema::parse_str(json).expect("Iceberg's manifest schemas parse, with any partition tuple")
}

fn long(n: u64) -> Value {
    Value::Long(i64::try_from(n).unwrap_or(i64::MAX))
}

fn null() -> Value {
    Value::Union(0, Box::new(Value::Null))
}

/// A writer of `schema` whose header is written here, with the schema's own JSON: apache-avro
/// would write its parsed form, which drops the `logicalType: map` of Iceberg's map arrays
/// (pyiceberg then refuses the file).
fn writer<'a>(json: &str, schema: &'a Schema, metadata: &[(&str, String)]) -> Result<Writer<'a, Vec<u8>>, String> {
    let marker: [u8; 16] = *uuid::Uuid::new_v4().as_bytes();
    let codec = Codec::Deflate(DeflateSettings::default());
    let mut entries: std::collections::HashMap<String, Value> =
        metadata.iter().map(|(k, v)| (k.to_string(), Value::Bytes(v.as_bytes().to_vec()))).collect();
    entries.insert("avro.schema".into(), Value::Bytes(json.as_bytes().to_vec()));
    entries.insert("avro.codec".into(), Value::Bytes(b"deflate".to_vec()));
    let map = Schema::parse_str(r#"{"type": "map", "values": "bytes"}"#).expect("a fixed schema");
    let mut header = b"Obj\x01".to_vec();
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&map).build().map_err(|e| e.to_string())?;
    header.extend(datum.write_value_to_vec(Value::Map(entries)).map_err(|e| e.to_string())?);
    header.extend(marker);
    Writer::builder()
        .schema(schema)
        .writer(header)
        .codec(codec)
        .marker(marker)
        .has_header(true)
        .build()
        .map_err(|e| e.to_string())
}

/// The manifest of `files`, added by `snapshot_id` (their sequence numbers inherited from the
/// snapshot's, as v2 writers leave them), for the table schema `table_schema` (its JSON).
pub fn manifest(
    files: &[DataFile],
    snapshot_id: i64,
    (table_schema, schema_id): (&str, i64),
    spec: &Spec<'_>,
) -> Result<Vec<u8>, String> {
    let json = MANIFEST_ENTRY.replace(EMPTY_TUPLE, &partition::avro_record(spec.fields).to_string());
    let schema = schema(&json);
    let metadata = [
        ("schema", table_schema.to_string()),
        ("schema-id", schema_id.to_string()),
        ("partition-spec", spec.json.to_string()),
        ("partition-spec-id", spec.id.to_string()),
        ("format-version", "2".to_string()),
        ("content", "data".to_string()),
    ];
    let mut writer = writer(&json, &schema, &metadata)?;
    for file in files {
        let data_file = Value::Record(vec![
            ("content".into(), Value::Int(0)),
            ("file_path".into(), Value::String(file.path.clone())),
            ("file_format".into(), Value::String("PARQUET".into())),
            ("partition".into(), partition::avro_tuple(spec.fields, &file.partition)),
            ("record_count".into(), long(file.records)),
            ("file_size_in_bytes".into(), long(file.bytes)),
            ("column_sizes".into(), map(&file.stats.sizes, |n| Value::Long(*n))),
            ("value_counts".into(), map(&file.stats.values, |n| Value::Long(*n))),
            ("null_value_counts".into(), map(&file.stats.nulls, |n| Value::Long(*n))),
            ("nan_value_counts".into(), null()),
            ("lower_bounds".into(), map(&file.stats.lower, |b| Value::Bytes(b.clone()))),
            ("upper_bounds".into(), map(&file.stats.upper, |b| Value::Bytes(b.clone()))),
            ("key_metadata".into(), null()),
            ("split_offsets".into(), null()),
            ("equality_ids".into(), null()),
            ("sort_order_id".into(), null()),
        ]);
        let entry = Value::Record(vec![
            ("status".into(), Value::Int(1)),
            ("snapshot_id".into(), Value::Union(1, Box::new(Value::Long(snapshot_id)))),
            ("sequence_number".into(), null()),
            ("file_sequence_number".into(), null()),
            ("data_file".into(), data_file),
        ]);
        writer.append_value(entry).map_err(|e| e.to_string())?;
    }
    writer.into_inner().map_err(|e| e.to_string())
}

/// The manifest list of a snapshot: the manifests of the parent snapshot's list (`parent`, its
/// bytes) and the one this snapshot added.
pub fn manifest_list(
    parent: Option<&[u8]>,
    added: &Added,
    snapshot_id: i64,
    parent_id: Option<i64>,
    sequence_number: i64,
) -> Result<Vec<u8>, String> {
    let schema = schema(MANIFEST_FILE);
    let metadata = [
        ("snapshot-id", snapshot_id.to_string()),
        ("parent-snapshot-id", parent_id.map_or_else(|| "null".to_string(), |p| p.to_string())),
        ("sequence-number", sequence_number.to_string()),
        ("format-version", "2".to_string()),
    ];
    let mut writer = writer(MANIFEST_FILE, &schema, &metadata)?;
    if let Some(bytes) = parent {
        let reader = Reader::builder(bytes)
            .reader_schema(&schema)
            .build()
            .map_err(|e| format!("reading the parent snapshot's manifest list: {e}"))?;
        for manifest in reader {
            let manifest = manifest.map_err(|e| format!("reading the parent snapshot's manifest list: {e}"))?;
            writer.append_value(manifest).map_err(|e| e.to_string())?;
        }
    }
    let files = i32::try_from(added.files).unwrap_or(i32::MAX);
    writer
        .append_value(Value::Record(vec![
            ("manifest_path".into(), Value::String(added.path.clone())),
            ("manifest_length".into(), long(added.length)),
            ("partition_spec_id".into(), Value::Int(i32::try_from(added.spec_id).unwrap_or(0))),
            ("content".into(), Value::Int(0)),
            ("sequence_number".into(), Value::Long(sequence_number)),
            ("min_sequence_number".into(), Value::Long(sequence_number)),
            ("added_snapshot_id".into(), Value::Long(snapshot_id)),
            ("added_files_count".into(), Value::Int(files)),
            ("existing_files_count".into(), Value::Int(0)),
            ("deleted_files_count".into(), Value::Int(0)),
            ("added_rows_count".into(), long(added.records)),
            ("existing_rows_count".into(), Value::Long(0)),
            ("deleted_rows_count".into(), Value::Long(0)),
            ("partitions".into(), Value::Union(1, Box::new(Value::Array(added.partitions.clone())))),
            ("key_metadata".into(), null()),
        ]))
        .map_err(|e| e.to_string())?;
    writer.into_inner().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_keeps_its_parents_manifests() {
        let file = DataFile {
            path: "file:///t/part-1.parquet".into(),
            records: 3,
            bytes: 100,
            partition: vec![],
            stats: super::super::stats::Stats {
                sizes: vec![(1, 10)],
                lower: vec![(1, vec![0; 8])],
                ..Default::default()
            },
        };
        let spec = Spec { id: 0, fields: &[], json: &serde_json::json!([]) };
        let m = manifest(&[file], 7, (r#"{"type":"struct","schema-id":0,"fields":[]}"#, 0), &spec).unwrap();
        assert!(m.starts_with(b"Obj\x01"));
        let added = |path: &str| Added {
            path: path.into(),
            length: m.len() as u64,
            files: 1,
            records: 3,
            spec_id: 0,
            partitions: Vec::new(),
        };
        let first = manifest_list(None, &added("m1"), 7, None, 1).unwrap();
        let second = manifest_list(Some(&first), &added("m2"), 8, Some(7), 2).unwrap();
        let paths: Vec<String> = Reader::new(&second[..])
            .unwrap()
            .map(|v| match v.unwrap() {
                Value::Record(fields) => match &fields[0].1 {
                    Value::String(s) => s.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(paths, ["m1", "m2"]);
    }
}
