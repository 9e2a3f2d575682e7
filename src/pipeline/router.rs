//! The router: owns what is known about each stream (its compiled schema, output settings and
//! key template) and decides, per record, which file it belongs to: the stream, and the
//! partition its key template renders from the record. It never touches files.

/// Stream lookups happen per record: a fast, non-cryptographic hasher.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::config::{Config, Output};
use crate::error::InputErrorKind;
use crate::keys::{FieldPath, FileContext, RunContext};
use crate::schema::{SchemaOptions, StreamSchema};

/// What a stream's files are made from. A new SCHEMA makes a new spec; open files keep the one
/// they were opened with, so a file's encoder, key and manifest entry always agree.
#[derive(Clone)]
pub struct StreamSpec<'a> {
    pub name: String,
    /// What the file set keys the stream's open files by: the name, or a name of its own for
    /// the stream's dead-letter files.
    pub group: String,
    /// Files of records that broke their schema (`invalid_records: dead_letter`).
    pub rejected: bool,
    /// Key template, format and compression (the defaults or the stream's override).
    pub output: &'a Output,
    pub extension: String,
    pub schema: Arc<StreamSchema>,
    /// `{stream_run_id}`: one per stream per run, kept across SCHEMA changes.
    pub run_id: String,
    pub partition_date_field: Option<FieldPath>,
    /// The stream's first bookmark property: its range per file goes into the manifest.
    pub cursor_field: Option<FieldPath>,
    /// FNV-1a of the schema text, for the manifest.
    pub schema_hash: String,
    /// Whether keys read the record, decided once: then each record renders its partition.
    pub partitioned: bool,
    /// Whether keys hold `{table_version}`: records of each version get their own files.
    pub versioned: bool,
    /// `incompatible_schema: new_table`: the name the stream's Delta table folder is rendered
    /// for once its schema moved to a new table (`orders_v2`); `None`: the stream's own.
    pub table: Option<String>,
    /// `table_format: iceberg`: the table schema's fields, whose ids the Parquet files carry.
    pub field_ids: Option<Arc<serde_json::Value>>,
}

impl StreamSpec<'_> {
    /// What a key of one of this stream's files is rendered from.
    pub fn file_context<'s>(
        &'s self,
        record: Option<&'s str>,
        cursor: Option<&'s str>,
        table_version: Option<&'s str>,
    ) -> FileContext<'s> {
        FileContext {
            stream: self.table.as_deref().unwrap_or(&self.name),
            extension: &self.extension,
            format: self.output.format.extension(),
            compression: self.output.compression.name(),
            stream_run_id: &self.run_id,
            record,
            partition_date_field: self.partition_date_field.as_ref(),
            cursor,
            table_version,
        }
    }
}

/// Where one record goes.
pub struct Route<'r, 'a> {
    pub spec: &'r Arc<StreamSpec<'a>>,
    /// The record-dependent part of its file's key ("" when keys do not depend on records).
    pub partition: &'r str,
    /// Its cursor value, when validation read it.
    pub cursor: Option<crate::json::Field>,
}

pub struct Router<'a> {
    config: &'a Config,
    run: RunContext,
    options: SchemaOptions,
    streams: HashMap<String, Arc<StreamSpec<'a>>>,
    /// Dead-letter specs by stream, made at the stream's first rejected record.
    rejects: HashMap<String, Arc<StreamSpec<'a>>>,
    /// Reused per record for the partition part of the key.
    partition: String,
    /// Null array elements counted by schemas a newer SCHEMA replaced: stream -> field -> n.
    null_items: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
}

impl<'a> Router<'a> {
    pub fn new(config: &'a Config, run: RunContext) -> Router<'a> {
        let options = SchemaOptions {
            validate_records: config.validate_records,
            validate_formats: config.validate_formats,
            flatten_max_depth: config.csv.max_depth,
        };
        Router {
            config,
            run,
            options,
            streams: HashMap::default(),
            rejects: HashMap::default(),
            partition: String::new(),
            null_items: Default::default(),
        }
    }

    /// Null elements of arrays whose items the tap declared non-null, per stream and field
    /// (they loaded as null; see `schema::exact`).
    pub fn null_items(&self) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> {
        let mut all = self.null_items.clone();
        for (name, spec) in &self.streams {
            Self::count_null_items(&mut all, name, &spec.schema);
        }
        all
    }

    fn count_null_items(
        into: &mut std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>>,
        name: &str,
        schema: &StreamSchema,
    ) {
        for (field, n) in schema.exact.iter().flat_map(|e| e.null_items()) {
            *into.entry(name.to_string()).or_default().entry(field.to_string()).or_default() += n;
        }
    }

    pub fn stream(&self, name: &str) -> Option<&Arc<StreamSpec<'a>>> {
        self.streams.get(name)
    }

    /// A SCHEMA message. Returns whether the stream's open files must close first: a file has
    /// one header / one set of columns.
    pub fn schema(
        &mut self,
        name: &str,
        schema: &RawValue,
        key_properties: Vec<String>,
        bookmark_properties: Vec<String>,
    ) -> Result<bool, InputErrorKind> {
        let previous = self.streams.get(name);
        if let Some(stream) = previous
            && *stream.schema.text == *schema.get()
            && stream.schema.key_properties == key_properties
        {
            return Ok(false); // taps resend identical schemas; nothing to recompile
        }
        let mut compiled = StreamSchema::compile(schema.get(), key_properties, self.options)?;
        compiled.stream = name.into();
        compiled.cursor = bookmark_properties.first().map(|b| b.split('.').map(str::to_string).collect());
        if let Some(overrides) =
            self.config.schema_overrides.get(name).or_else(|| self.config.schema_overrides.get("*"))
        {
            compiled.overrides = overrides.iter().map(|(f, o)| (f.clone(), *o)).collect();
            let mut fields = crate::schema::typed::columns(schema.get(), false, false);
            for unknown in crate::schema::typed::apply_overrides(&mut fields, &compiled.overrides) {
                tracing::warn!(
                    stream = name,
                    field = unknown,
                    "schema_overrides names a field the stream's SCHEMA does not have (only top-level properties can be overridden)"
                );
            }
        }
        let compiled = Arc::new(compiled);
        let output = self.config.output_for(name);
        // A schema the format cannot write (Avro nested deeper than its readers go) fails here,
        // at the SCHEMA line, not at the first record.
        crate::formats::Encoder::check_schema(output.format, name, &compiled, self.config)
            .map_err(InputErrorKind::SchemaUnwritable)?;
        let columns_changed = previous.is_some_and(|s| self.columns_change(output, &s.schema, &compiled));
        let bookmark = compiled.cursor.clone();
        let spec = StreamSpec {
            name: name.to_string(),
            group: name.to_string(),
            rejected: false,
            output,
            extension: output.extension(),
            schema: compiled,
            run_id: previous.map_or_else(|| uuid::Uuid::now_v7().to_string(), |s| s.run_id.clone()),
            partition_date_field: self.config.partition_date_field.clone().or_else(|| bookmark.clone()),
            cursor_field: bookmark,
            schema_hash: format!("{:016x}", crate::keys::fnv1a(schema.get().as_bytes())),
            partitioned: output.key.is_partitioned(),
            versioned: output.key.uses_table_version(),
            table: None,
            field_ids: None,
        };
        if let Some(old) = self.streams.insert(name.to_string(), Arc::new(spec)) {
            Self::count_null_items(&mut self.null_items, name, &old.schema);
        }
        Ok(columns_changed)
    }

    /// The spec of a stream's dead-letter files (`invalid_records: dead_letter`): JSONL lines
    /// naming the input line, the stream and why, with the record as it came.
    pub fn rejects(&mut self, name: &str) -> Option<&Arc<StreamSpec<'a>>> {
        let output = self.config.dead_letter.as_ref()?;
        if !self.rejects.contains_key(name) {
            let data = self.streams.get(name)?;
            let options = SchemaOptions { validate_records: false, ..self.options };
            let schema = StreamSchema::compile(r#"{"properties":{}}"#, Vec::new(), options).ok()?;
            let spec = StreamSpec {
                name: name.to_string(),
                group: format!("\u{0}rejected\u{0}{name}"),
                rejected: true,
                output,
                extension: output.extension(),
                schema: Arc::new(schema),
                run_id: data.run_id.clone(),
                partition_date_field: None,
                cursor_field: None,
                schema_hash: data.schema_hash.clone(),
                partitioned: false,
                versioned: false,
                table: None,
                field_ids: None,
            };
            self.rejects.insert(name.to_string(), Arc::new(spec));
        }
        self.rejects.get(name)
    }

    /// Whether a new SCHEMA changes what a file of `output`'s format writes, so open files must
    /// close: JSONL and JSON write the tap's records as they are (never); CSV and flattened JSON
    /// the set of flattened columns (an open file keeps its own column order, so a SCHEMA that
    /// only reorders its properties does not roll the file); Parquet and Avro the typed columns
    /// by name.
    fn columns_change(&self, output: &Output, old: &StreamSchema, new: &StreamSchema) -> bool {
        use crate::config::Format;
        let names = |s: &StreamSchema| s.columns.names.iter().cloned().collect::<std::collections::BTreeSet<_>>();
        let typed = |s: &StreamSchema| {
            let mut fields = s.typed_columns(self.config.binary.nested_as_json, self.config.add_record_metadata);
            fields.sort_by(|a, b| a.name.cmp(&b.name));
            fields
        };
        match output.format {
            Format::Jsonl | Format::Json if !self.config.flattening_enabled => false,
            Format::Jsonl | Format::Json | Format::Csv => names(old) != names(new),
            Format::Parquet | Format::Avro => typed(old) != typed(new),
        }
    }

    /// The Arrow columns of a stream's schema (a Delta table's columns).
    #[cfg(feature = "delta")]
    pub fn arrow_schema(&self, schema: &StreamSchema) -> arrow_schema::Schema {
        crate::formats::parquet::arrow_schema(&self.typed_columns(schema))
    }

    /// The typed columns of `schema`, as the Parquet and Avro files write them.
    #[cfg(feature = "delta")]
    pub fn typed_columns(&self, schema: &StreamSchema) -> Vec<crate::schema::typed::Field> {
        schema.typed_columns(self.config.binary.nested_as_json, self.config.add_record_metadata)
    }

    /// `incompatible_schema: new_table`: the stream's files go to the table of `table` from
    /// now on (its open files were closed by the SCHEMA that moved it).
    #[cfg(feature = "delta")]
    pub fn set_table(&mut self, name: &str, table: Option<String>, field_ids: Option<serde_json::Value>) {
        if let Some(spec) = self.streams.get_mut(name)
            && (spec.table != table || spec.field_ids.as_deref() != field_ids.as_ref())
        {
            let mut moved = StreamSpec::clone(spec);
            moved.table = table;
            moved.field_ids = field_ids.map(Arc::new);
            *spec = Arc::new(moved);
        }
    }

    /// Each stream's schema, for the workers that check records ahead.
    pub fn published(&self) -> super::workers::Published {
        self.streams.iter().map(|(name, s)| (name.clone(), s.schema.clone())).collect()
    }

    /// The current schema of `name`.
    #[cfg(feature = "delta")]
    pub fn schema_of(&self, name: &str) -> Option<&StreamSchema> {
        self.streams.get(name).map(|s| s.schema.as_ref())
    }

    /// Validates a record and finds its file's partition. Per record: no allocation unless the
    /// partition text grows.
    pub fn route(
        &mut self,
        name: &str,
        record: &str,
        version: Option<&RawValue>,
        verdict: Option<super::workers::Verdict>,
    ) -> Result<Route<'_, 'a>, InputErrorKind> {
        let Some(spec) = self.streams.get(name) else {
            return Err(InputErrorKind::RecordBeforeSchema);
        };
        // A worker's verdict if it was reached with the stream's schema as it is now; its null
        // elements count only then.
        let cursor = match verdict.and_then(|v| v.for_schema(&spec.schema)) {
            Some(checked) => {
                let checked = checked?;
                spec.schema.count(&checked.nulls);
                checked.cursor
            }
            None => spec.schema.check(record)?,
        };
        let partition = &mut self.partition;
        partition.clear();
        if spec.partitioned {
            spec.output.key.partition(record, spec.partition_date_field.as_ref(), &self.run, partition);
            // A Delta partition value is its folder's name, read back into the log: one too
            // long for a folder name (cut to a hash) could not be. Refused here, as a record
            // (`invalid_records: dead_letter` sets it aside), never after its file is written,
            // where it would stop every run.
            if let Some(table) = &self.config.table {
                // The partition's values, in `partition_by` order, each after a separator.
                let values = partition.split('\u{0}').skip(1);
                if let Some((p, _)) = table
                    .partitions
                    .iter()
                    .zip(values)
                    .find(|(p, v)| p.column.len() + 1 + v.len() > crate::keys::MAX_SEGMENT_BYTES)
                {
                    return Err(InputErrorKind::Invalid(format!(
                        "the value of partition column {:?} is too long for a folder name (`{}=...` over {} bytes once escaped): a Delta partition value is its folder's name",
                        p.column,
                        p.column,
                        crate::keys::MAX_SEGMENT_BYTES
                    )));
                }
            }
        }
        if spec.versioned {
            partition.push('\u{0}');
            partition.push_str(version.map_or("", RawValue::get));
        }
        Ok(Route { spec, partition, cursor })
    }
}
