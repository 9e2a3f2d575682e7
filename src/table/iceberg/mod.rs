//! `table_format: iceberg`: a stream's table as an Apache Iceberg v2 table, written here on the
//! table layer's round logic (which files a round takes, the STATE it carries, reruns of cut
//! rounds, `--table-state`): the table metadata JSON, the Avro manifests (`manifest.rs`) and
//! the catalog row that makes a new metadata file current (`catalog.rs`). One commit is one
//! `append` snapshot; its summary and a table property carry target-s3's record of the round
//! (the property survives snapshot expiry and other engines' rewrites). The metadata is kept
//! as JSON and changed in place, so fields of other writers (statistics, sort orders, refs)
//! pass through untouched.

pub mod catalog;
mod commit;
mod manifest;
mod partition;
mod postgres;
pub mod rest;
pub mod schema;
pub mod sql;
mod stats;

use std::sync::Arc;

use deltalake_core::kernel::StructType;
use serde_json::{Value, json};

use super::store::TableStore;
pub use catalog::Catalog;
use catalog::{Current, Place};

/// A durable data file a round adds to the table.
pub struct NewFile<'a> {
    /// Its key in the store.
    pub key: String,
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
    namespace: String,
    name: String,
    /// The table's folder (key in the store) and its URI.
    folder: String,
    location: String,
    /// The current metadata file's URI and content, once loaded.
    current: Option<Current>,
    /// `partition_by`.
    partitions: Vec<crate::config::Partition>,
    /// `iceberg_expire_snapshots`.
    expire: bool,
}

/// Opens the catalog the options name.
pub async fn open(options: &crate::config::IcebergOptions) -> Result<Catalog, String> {
    use crate::config::IcebergCatalog;
    Ok(match &options.catalog {
        IcebergCatalog::Sql(path) => Catalog::Sql(sql::Sql::open(path, &options.catalog_name)?),
        IcebergCatalog::Postgres(uri) => {
            Catalog::Postgres(postgres::Postgres::open(&uri.0, &options.catalog_name).await?)
        }
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
        (namespace, partitions, expire): (&str, &[crate::config::Partition], bool),
        store: &TableStore,
        folder: &str,
    ) -> IcebergTable {
        IcebergTable {
            catalog,
            partitions: partitions.to_vec(),
            expire,
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
        Ok(found.is_some_and(|(_, m)| same_place(m["location"].as_str().unwrap_or_default(), &self.location)))
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
        if !same_place(location, &self.location) {
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

    fn fields(&self) -> &[Value] {
        self.schema_of(self.metadata())["fields"].as_array().map_or(&[], |f| f)
    }

    /// The table's columns (loaded).
    pub fn columns(&self) -> Result<StructType, String> {
        schema::to_columns(self.fields())
    }

    /// The partition fields of the default partition spec (loaded).
    pub fn partition_columns(&self) -> Vec<String> {
        partition::spec(self.metadata(), self.fields()).1.into_iter().map(|f| f.name).collect()
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

    /// Whether the table holds the commit whose round record is `record` (this run's, this txn).
    pub fn holds(&self, record: &Value) -> bool {
        let pipeline_id = record["pipelineId"].as_str().unwrap_or_default();
        self.rounds(pipeline_id)
            .iter()
            .any(|(_, r)| r["txnVersion"] == record["txnVersion"] && r["runId"] == record["runId"])
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
                "schema.name-mapping.default": schema::name_mapping(&fields, None).to_string(),
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

    fn schema_of<'m>(&self, metadata: &'m Value) -> &'m Value {
        let id = &metadata["current-schema-id"];
        metadata["schemas"].as_array().and_then(|s| s.iter().find(|s| &s["schema-id"] == id)).unwrap_or(&Value::Null)
    }
}

/// Whether two locations name one folder: Hadoop-based writers (Spark, Trino) name S3 `s3a://`
/// or `s3n://`, and some keep a trailing `/`.
fn same_place(a: &str, b: &str) -> bool {
    crate::table::store::s3_scheme(a).trim_end_matches('/') == crate::table::store::s3_scheme(b).trim_end_matches('/')
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
    fn hadoop_s3_schemes_name_the_same_folder() {
        assert!(super::same_place("s3a://b/lake/t/", "s3://b/lake/t"));
        assert!(super::same_place("s3n://b/lake/t", "s3://b/lake/t"));
        assert!(!super::same_place("s3://b/lake/t2", "s3://b/lake/t"));
    }

    #[test]
    fn table_names_are_the_folders_last_name_in_lowercase() {
        assert_eq!(super::table_name("lake/tables/Orders-2024"), "orders_2024");
        assert_eq!(super::table_name("orders"), "orders");
    }
}
