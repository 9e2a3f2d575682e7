//! `table_format: iceberg`: a stream's table as an Apache Iceberg v2 table, written here on the
//! table layer's round logic (which files a round takes, the STATE it carries, reruns of cut
//! rounds, `--table-state`): the table metadata JSON, the Avro manifests (`manifest.rs`) and
//! the catalog row that makes a new metadata file current (`catalog.rs`). One commit is one
//! `append` snapshot; its summary and a table property carry target-s3's record of the round
//! (the property survives snapshot expiry and other engines' rewrites). The metadata is kept
//! as JSON and changed in place, so fields of other writers (statistics, sort orders, refs)
//! pass through untouched.

pub mod catalog;
mod manifest;
mod partition;
pub mod rest;
pub mod schema;
pub mod sql;

use std::sync::Arc;
use std::time::Duration;

use deltalake_core::kernel::StructType;
use serde_json::{Value, json};

use super::store::TableStore;
pub use catalog::Catalog;
use catalog::{Changes, Current, Place};
use manifest::DataFile;

/// A durable data file a round adds to the table.
pub struct NewFile<'a> {
    /// Its absolute URI.
    pub path: String,
    pub records: u64,
    pub bytes: u64,
    /// Its partition folders' values, by partition column.
    pub values: &'a std::collections::HashMap<String, Option<String>>,
}

/// The snapshot summary key and table property prefix of target-s3's round record.
const RECORD_KEY: &str = "target-s3";
/// The table property naming the stream a table was created for.
const STREAM_PROPERTY: &str = "target-s3.stream";
/// Catalog swaps tried while other writers keep committing first.
const COMMIT_ATTEMPTS: usize = 100;

/// Where a stream's table is in the catalog and in the store.
pub struct IcebergTable {
    catalog: Arc<Catalog>,
    pub namespace: String,
    pub name: String,
    /// The table's folder (key in the store) and its URI.
    folder: String,
    location: String,
    /// The current metadata file's URI and content, once loaded.
    current: Option<Current>,
    /// `partition_by`.
    partitions: Vec<crate::config::Partition>,
}

/// Opens the catalog the options name.
pub async fn open(options: &crate::config::IcebergOptions) -> Result<Catalog, String> {
    use crate::config::IcebergCatalog;
    Ok(match &options.catalog {
        IcebergCatalog::Sql(path) => Catalog::Sql(sql::Sql::open(path, &options.catalog_name)?),
        IcebergCatalog::Rest { uri, warehouse, token, credential, scope } => {
            let options = rest::Options {
                uri,
                warehouse: warehouse.as_deref(),
                token: token.as_ref().map(|t| t.0.as_str()),
                credential: credential.as_ref().map(|c| c.0.as_str()),
                scope,
            };
            Catalog::Rest(rest::Rest::open(&options).await.map_err(|e| format!("the Iceberg REST catalog {uri}: {e}"))?)
        }
    })
}

/// Why a stream's table could not be prepared for its SCHEMA.
pub enum Prepared {
    /// The table cannot take the stream's columns (a type changed).
    Unfit(String),
    Failed(String),
}

impl From<String> for Prepared {
    fn from(message: String) -> Prepared {
        Prepared::Failed(message)
    }
}

/// A commit's outcome: the table's new sequence number.
pub type Version = i64;

impl IcebergTable {
    pub fn new(
        catalog: Arc<Catalog>,
        (namespace, partitions): (&str, &[crate::config::Partition]),
        store: &TableStore,
        folder: &str,
    ) -> IcebergTable {
        IcebergTable {
            catalog,
            partitions: partitions.to_vec(),
            namespace: namespace.to_string(),
            name: table_name(folder),
            folder: folder.to_string(),
            location: store.literal_uri(folder),
            current: None,
        }
    }

    /// The URI of the data file at `path` inside the table's folder (as the key has it).
    pub fn file_uri(&self, path: &str) -> String {
        format!("{}/{path}", self.location)
    }

    /// `namespace.name`, as readers name it.
    pub fn identifier(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }

    fn place(&self) -> Place<'_> {
        Place { folder: &self.folder, location: &self.location }
    }

    /// Whether the catalog has this table: its name, at this folder (a table of the name
    /// elsewhere is another folder's, refused when this folder's stream loads it).
    pub async fn exists(&self, store: &TableStore) -> Result<bool, String> {
        let found = self.catalog.load(store, &self.namespace, &self.name).await?;
        Ok(found.is_some_and(|(_, m)| m["location"].as_str().map(|l| l.trim_end_matches('/')) == Some(&self.location)))
    }

    pub fn is_loaded(&self) -> bool {
        self.current.is_some()
    }

    /// Reads the table's current metadata (false when the catalog has no such table). A table
    /// of that name elsewhere (another `table_path` giving the same name) is refused.
    pub async fn load(&mut self, store: &TableStore) -> Result<bool, String> {
        let Some(current) = self.catalog.load(store, &self.namespace, &self.name).await? else {
            self.current = None;
            return Ok(false);
        };
        self.take(current).map(|()| true)
    }

    /// Makes `current` the table's metadata, if it is this table's.
    fn take(&mut self, (uri, metadata): Current) -> Result<(), String> {
        let location = metadata["location"].as_str().unwrap_or_default().trim_end_matches('/');
        if location != self.location {
            return Err(format!(
                "the catalog's table {} is at {location}, but table_path gives {} for this stream: two table folders map to one table name (the folder's last name, lowercased); rename one, or set iceberg_namespace per pipeline",
                self.identifier(),
                self.location
            ));
        }
        self.current = Some((uri, metadata));
        Ok(())
    }

    fn metadata(&self) -> &Value {
        &self.current.as_ref().expect("loaded").1
    }

    fn current_schema(&self) -> &Value {
        let metadata = self.metadata();
        let id = &metadata["current-schema-id"];
        metadata["schemas"].as_array().and_then(|s| s.iter().find(|s| &s["schema-id"] == id)).unwrap_or(&Value::Null)
    }

    fn fields(&self) -> &[Value] {
        self.current_schema()["fields"].as_array().map_or(&[], |f| f)
    }

    /// The table's columns (loaded).
    pub fn columns(&self) -> Result<StructType, String> {
        schema::to_columns(self.fields())
    }

    /// The source columns of the default partition spec (loaded).
    pub fn partition_columns(&self) -> Vec<String> {
        let metadata = self.metadata();
        let id = &metadata["default-spec-id"];
        let spec = metadata["partition-specs"].as_array().and_then(|s| s.iter().find(|s| &s["spec-id"] == id));
        spec.and_then(|s| s["fields"].as_array())
            .map(|f| f.iter().map(|f| f["name"].as_str().unwrap_or_default().to_string()).collect())
            .unwrap_or_default()
    }

    /// The stream target-s3 created the table for.
    pub fn stream(&self) -> Option<String> {
        self.metadata()["properties"][STREAM_PROPERTY].as_str().map(str::to_string)
    }

    /// Whether target-s3 can append to the table (loaded): format version 2, no partition spec
    /// target-s3 would have to fill.
    pub fn writable(&self) -> Result<(), String> {
        let version = self.metadata()["format-version"].as_i64().unwrap_or(0);
        if version != 2 {
            return Err(format!(
                "the table {} is Iceberg format version {version}; target-s3 appends to format version 2 tables only: nothing in this round was committed; point table_path at a new table",
                self.identifier()
            ));
        }
        // Each partition field must be one target-s3 fills as the table does: a field of
        // `partition_by` with the same transform.
        let (_, _, spec) = partition::spec(self.metadata(), self.fields());
        for field in spec.as_array().into_iter().flatten() {
            let name = field["name"].as_str().unwrap_or_default();
            let ours = self
                .partitions
                .iter()
                .find(|p| p.column == name)
                .map(|p| p.granularity.map_or("identity", |g| g.as_str()));
            if ours != field["transform"].as_str() {
                return Err(format!(
                    "the table {} partitions by {name:?} with the transform {}, which partition_by does not give: nothing in this round was committed; point table_path at a new table",
                    self.identifier(),
                    field["transform"]
                ));
            }
        }
        Ok(())
    }

    /// The newest txn of `pipeline_id` the table holds (loaded).
    pub fn held(&self, pipeline_id: &str) -> Option<i64> {
        let record = self.metadata()["properties"][format!("{RECORD_KEY}.{pipeline_id}")].as_str()?;
        serde_json::from_str::<Value>(record).ok()?["txnVersion"].as_i64()
    }

    /// Every round record of `pipeline_id` the table holds: its snapshots' and its property's.
    pub fn rounds(&self, pipeline_id: &str) -> Vec<(i64, Value)> {
        let metadata = self.metadata();
        let summaries = metadata["snapshots"].as_array().into_iter().flatten().map(|s| &s["summary"][RECORD_KEY]);
        let property = std::iter::once(&metadata["properties"][format!("{RECORD_KEY}.{pipeline_id}")]);
        summaries
            .chain(property)
            .filter_map(|text| serde_json::from_str::<Value>(text.as_str()?).ok())
            .filter(|r| r["pipelineId"] == pipeline_id)
            .filter_map(|r| Some((r["txnVersion"].as_i64()?, r)))
            .collect()
    }

    /// Creates the table, empty, with `columns`: true, or false when another writer registered
    /// it first (it is then loaded).
    pub async fn create(&mut self, store: &TableStore, stream: &str, columns: &StructType) -> Result<bool, String> {
        let mut ids = schema::Ids { last: 0 };
        let fields = schema::new_fields(columns, &mut ids)?;
        let spec = partition::new_spec(&self.partitions, &fields)?;
        let now = chrono::Utc::now().timestamp_millis();
        let metadata = json!({
            "format-version": 2,
            "table-uuid": uuid::Uuid::new_v4().to_string(),
            "location": self.location,
            "last-sequence-number": 0,
            "last-updated-ms": now,
            "last-column-id": ids.last,
            "current-schema-id": 0,
            "schemas": [{"type": "struct", "schema-id": 0, "fields": fields}],
            "default-spec-id": 0,
            "partition-specs": [spec],
            "last-partition-id": 999 + self.partitions.len() as i64,
            "default-sort-order-id": 0,
            "sort-orders": [{"order-id": 0, "fields": []}],
            "properties": {
                STREAM_PROPERTY: stream,
                "write.format.default": "parquet",
                "schema.name-mapping.default": schema::name_mapping(&fields).to_string(),
            },
            "current-snapshot-id": -1,
            "refs": {},
            "snapshots": [],
            "snapshot-log": [],
            "metadata-log": [],
        });
        match self.catalog.create(store, (&self.namespace, &self.name), &self.place(), metadata).await? {
            Some(current) => self.take(current).map(|()| true),
            None => self.load(store).await.map(|_| false),
        }
    }

    /// Appends `files` in one snapshot whose summary (and the table property of the pipeline)
    /// carries `record`, evolving the schema to `columns` first when they add columns. Another
    /// writer's commit in between: reloaded and tried again; a table that already holds `txn`
    /// (an earlier attempt whose answer was lost) is not committed to again.
    pub async fn append(
        &mut self,
        store: &TableStore,
        new_files: &[NewFile<'_>],
        columns: &StructType,
        (pipeline_id, txn): (&str, i64),
        record: &Value,
    ) -> Result<Version, String> {
        let mut files: Vec<DataFile> = Vec::with_capacity(new_files.len());
        let snapshot_id =
            i64::from_ne_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes")) & i64::MAX;
        let mut manifest: Option<manifest::Added> = None;
        for attempt in 1..=COMMIT_ATTEMPTS {
            if !self.load(store).await? {
                return Err(format!("the table {} is no longer in the catalog", self.identifier()));
            }
            if self.held(pipeline_id) >= Some(txn) {
                tracing::warn!(table = %self.identifier(), "the table already holds this commit (an answer lost on the way back)");
                return Ok(self.metadata()["last-sequence-number"].as_i64().unwrap_or(0));
            }
            let base = self.current.clone().expect("loaded");
            let mut changes = Changes { schema: self.evolve(&base.1, columns)?, ..Changes::default() };
            let schema = changes.schema.as_ref().map_or_else(|| self.schema_of(&base.1).clone(), |(s, _)| s.clone());
            let schema_id = schema["schema-id"].as_i64().unwrap_or(0);
            let added = match &manifest {
                Some(added) => added,
                None => {
                    // The files' partition tuples, typed as the table's spec has them.
                    let (spec_id, spec, spec_json) = partition::spec(&base.1, self.fields());
                    for f in new_files {
                        let mut tuple = Vec::with_capacity(spec.len());
                        for field in &spec {
                            let granularity =
                                self.partitions.iter().find(|p| p.column == field.name).and_then(|p| p.granularity);
                            let text = f.values.get(&field.name).and_then(Option::as_deref);
                            tuple.push(partition::datum(field, granularity, text)?);
                        }
                        files.push(DataFile {
                            path: f.path.clone(),
                            records: f.records,
                            bytes: f.bytes,
                            partition: tuple,
                        });
                    }
                    let spec = manifest::Spec { id: spec_id, fields: &spec, json: &spec_json };
                    let body = manifest::manifest(&files, snapshot_id, (&schema.to_string(), schema_id), &spec)?;
                    let length = body.len() as u64;
                    let name = format!("metadata/{}-m0.avro", uuid::Uuid::new_v4());
                    let path = catalog::put(store, &self.place(), &name, body).await?;
                    let records = files.iter().map(|f| f.records).sum();
                    let partitions = (0..spec.fields.len())
                        .map(|i| partition::summary(files.iter().map(|f| &f.partition[i])))
                        .collect();
                    manifest.insert(manifest::Added {
                        path,
                        length,
                        files: files.len() as u64,
                        records,
                        spec_id,
                        partitions,
                    })
                }
            };
            let metadata = &base.1;
            let parent = metadata["current-snapshot-id"].as_i64().filter(|id| *id >= 0);
            let parent_snapshot = parent.and_then(|id| {
                metadata["snapshots"].as_array().and_then(|s| s.iter().find(|s| s["snapshot-id"] == id)).cloned()
            });
            let parent_list = match parent_snapshot.as_ref().and_then(|s| s["manifest-list"].as_str()) {
                Some(uri) => {
                    let key = store
                        .key_of(uri)
                        .ok_or_else(|| format!("the manifest list {uri} is outside the destination"))?;
                    Some(store.get(&key).await.map_err(|e| format!("reading {uri}: {e}"))?)
                }
                None => None,
            };
            let sequence = metadata["last-sequence-number"].as_i64().unwrap_or(0) + 1;
            let list = manifest::manifest_list(parent_list.as_deref(), added, snapshot_id, parent, sequence)?;
            let name = format!("metadata/snap-{snapshot_id}-{attempt}-{}.avro", uuid::Uuid::new_v4());
            let list_uri = catalog::put(store, &self.place(), &name, list).await?;
            let now = chrono::Utc::now().timestamp_millis().max(metadata["last-updated-ms"].as_i64().unwrap_or(0) + 1);
            let mut snapshot = json!({
                "snapshot-id": snapshot_id,
                "sequence-number": sequence,
                "timestamp-ms": now,
                "manifest-list": list_uri,
                "summary": summary(parent_snapshot.as_ref(), &files, record),
                "schema-id": schema_id,
            });
            if let Some(parent) = parent {
                snapshot["parent-snapshot-id"] = Value::from(parent);
            }
            changes.snapshot = Some(snapshot);
            changes.properties.push((format!("{RECORD_KEY}.{pipeline_id}"), record.to_string()));
            match self.commit(store, &base, &changes).await {
                Ok(Some(current)) => {
                    self.take(current)?;
                    return Ok(sequence);
                }
                Ok(None) => {}
                // The outcome is unknown (a lost answer, a timeout): the table says whether it is in.
                Err(e) => {
                    if self.load(store).await.is_ok() && self.held(pipeline_id) >= Some(txn) {
                        tracing::warn!(table = %self.identifier(), error = %e, "the commit is in the table despite the error (its answer was lost)");
                        return Ok(sequence);
                    }
                    return Err(e);
                }
            }
            tracing::debug!(table = %self.identifier(), attempt, "another writer committed first; retrying");
            let jitter = u64::from(uuid::Uuid::new_v4().as_fields().0 % 20);
            tokio::time::sleep(Duration::from_millis(jitter + 5 * attempt.min(40) as u64)).await;
        }
        Err(format!("{COMMIT_ATTEMPTS} attempts lost the race for the table's next metadata to other writers"))
    }

    /// The new schema (and `last-column-id`) that adds the columns of `columns` the table
    /// (`metadata`) lacks, with new field ids, and makes optional the required fields they leave
    /// empty; `None` when the table's schema holds them already. The name mapping goes with it.
    fn evolve(&self, metadata: &Value, columns: &StructType) -> Result<Option<(Value, i64)>, String> {
        let fields = self.schema_of(metadata)["fields"].as_array().cloned().unwrap_or_default();
        let mut ids =
            schema::Ids { last: metadata["last-column-id"].as_i64().unwrap_or(0).max(schema::max_id(&fields)) };
        let Some(fields) = schema::evolve(&fields, columns, &mut ids)? else { return Ok(None) };
        tracing::info!(table = %self.identifier(), "schema evolved: new optional columns");
        let schema_id = metadata["schemas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["schema-id"].as_i64())
            .max()
            .unwrap_or(0)
            + 1;
        Ok(Some((json!({"type": "struct", "schema-id": schema_id, "fields": fields}), ids.last)))
    }

    /// Commits `changes` (with the name mapping of a new schema) on top of `base`: the new
    /// metadata, or `None` when another writer committed first.
    async fn commit(&self, store: &TableStore, base: &Current, changes: &Changes) -> Result<Option<Current>, String> {
        let mut changes = changes.clone();
        if let Some((schema, _)) = &changes.schema {
            let mapping = schema::name_mapping(schema["fields"].as_array().map_or(&[][..], |f| f));
            changes.properties.push(("schema.name-mapping.default".to_string(), mapping.to_string()));
        }
        self.catalog.commit(store, (&self.namespace, &self.name), &self.place(), base, &changes).await
    }

    /// The current schema's fields as the stream's Parquet files take them: ids, and the text
    /// columns an identity partition takes its values from marked (see
    /// [`crate::formats::parquet::EMPTY_IS_NULL`]).
    fn file_fields(&self) -> Value {
        let (_, _, spec) = partition::spec(self.metadata(), self.fields());
        let identity: Vec<&Value> = spec
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["transform"] == "identity")
            .map(|f| &f["source-id"])
            .collect();
        let mut fields = self.fields().to_vec();
        for field in &mut fields {
            if field["type"] == "string" && identity.contains(&&field["id"]) {
                field[crate::formats::parquet::EMPTY_IS_NULL] = Value::Bool(true);
            }
        }
        Value::Array(fields)
    }

    /// The table of a stream whose SCHEMA has `columns`, as its data files must name their
    /// columns: created (empty) or evolved now, before a file carries a new column, so every
    /// column has its field id. Returns the table's current schema fields (ids and all).
    pub async fn prepare(&mut self, store: &TableStore, stream: &str, columns: &StructType) -> Result<Value, Prepared> {
        for attempt in 1..=COMMIT_ATTEMPTS {
            if !self.load(store).await? && self.create(store, stream, columns).await? {
                return Ok(self.file_fields());
            }
            self.writable()?;
            let merged = super::schema::evolve(&self.columns()?, columns)
                .map_err(|e| Prepared::Unfit(format!("{e} (Iceberg table {})", self.identifier())))?;
            let base = self.current.clone().expect("loaded");
            let Some(schema) = merged.map(|m| self.evolve(&base.1, &m)).transpose()?.flatten() else {
                return Ok(self.file_fields());
            };
            let changes = Changes { schema: Some(schema), ..Changes::default() };
            if let Some(current) = self.commit(store, &base, &changes).await? {
                self.take(current)?;
                return Ok(self.file_fields());
            }
            tracing::debug!(table = %self.identifier(), attempt, "another writer changed the table first; retrying");
            tokio::time::sleep(Duration::from_millis(5 * attempt.min(40) as u64)).await;
        }
        Err(Prepared::Failed(format!(
            "{COMMIT_ATTEMPTS} attempts lost the race for the table's next metadata to other writers"
        )))
    }

    fn schema_of<'m>(&self, metadata: &'m Value) -> &'m Value {
        let id = &metadata["current-schema-id"];
        metadata["schemas"].as_array().and_then(|s| s.iter().find(|s| &s["schema-id"] == id)).unwrap_or(&Value::Null)
    }
}

/// An append snapshot's summary: what it added, the table's totals where the parent kept them,
/// and target-s3's round record.
fn summary(parent: Option<&Value>, files: &[DataFile], record: &Value) -> Value {
    let (records, bytes): (u64, u64) = files.iter().fold((0, 0), |(r, b), f| (r + f.records, b + f.bytes));
    let mut summary = json!({
        "operation": "append",
        "added-data-files": files.len().to_string(),
        "added-records": records.to_string(),
        "added-files-size": bytes.to_string(),
        RECORD_KEY: record.to_string(),
    });
    for (total, added) in
        [("total-data-files", files.len() as u64), ("total-records", records), ("total-files-size", bytes)]
    {
        let before = match parent {
            None => Some(0),
            Some(p) => p["summary"][total].as_str().and_then(|t| t.parse::<u64>().ok()),
        };
        if let Some(before) = before {
            summary[total] = Value::from((before + added).to_string());
        }
    }
    if parent.is_none() {
        for total in ["total-delete-files", "total-position-deletes", "total-equality-deletes"] {
            summary[total] = Value::from("0");
        }
    }
    summary
}

/// The catalog's name for the table in `folder`: its last folder name, lowercased, every
/// character outside `[a-z0-9_]` as `_` (the names every catalog and engine accepts unquoted).
pub fn table_name(folder: &str) -> String {
    let last = folder.trim_end_matches('/').rsplit('/').next().unwrap_or(folder);
    let name: String = last
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_ascii_lowercase() } else { '_' })
        .collect();
    if name.is_empty() { "_".to_string() } else { name }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_names_are_the_folders_last_name_in_lowercase() {
        assert_eq!(super::table_name("lake/tables/Orders-2024"), "orders_2024");
        assert_eq!(super::table_name("orders"), "orders");
    }
}
