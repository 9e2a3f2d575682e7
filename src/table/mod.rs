//! `table_format: delta`: every stream one Delta Lake table.
//!
//! The pipeline writes a table's data files exactly as `format: parquet` files, into the table's
//! folder, where they are invisible to every Delta reader until the log names them. Here the
//! durable ones wait; [`Tables::commit`] adds them to their tables (one commit per table, with
//! the Singer STATE it covers and an application transaction, `txn`), and only then does the
//! pipeline acknowledge them, so a STATE is printed only once the tables hold every record
//! before it. The Delta protocol itself (log, conflict checks and retries, checkpoints) is
//! delta-rs's: this module decides what goes into a commit and when.

mod schema;
mod store;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use arrow_schema::Schema;
use deltalake_core::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake_core::kernel::{Action, Add, StructType, Transaction};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::{DeltaOperation, SaveMode};
use deltalake_core::{DeltaTable, DeltaTableError, TableProperty};
use futures::StreamExt;

use crate::ack::FileId;
use crate::config::{Config, TableOptions};
use crate::error::TableError;
use store::TableStore;

/// Commit attempts of one table when another writer keeps winning the race for its versions
/// with a change delta-rs cannot rebase over (a schema change); plain appends never conflict.
const COMMIT_ATTEMPTS: usize = 5;

/// The key under which every commit's `commitInfo` carries target-s3's part.
const COMMIT_INFO_KEY: &str = "targetS3";

pub struct Tables {
    runtime: tokio::runtime::Runtime,
    store: TableStore,
    options: TableOptions,
    run_id: String,
    /// By table folder (the key of its files without the file name).
    tables: BTreeMap<String, Table>,
    /// The table folder of each stream seen, to refuse two streams in one table.
    by_stream: HashMap<String, String>,
    last_commit: Instant,
    last_txn: i64,
}

struct Table {
    stream: String,
    delta: Option<DeltaTable>,
    files: Vec<Pending>,
}

/// A durable data file not yet in its table.
struct Pending {
    id: FileId,
    name: String,
    bytes: u64,
    records: u64,
}

impl Tables {
    pub fn open(config: &Config) -> Result<Tables, TableError> {
        let options = config.table.clone().expect("table_format is delta");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("delta-io")
            .enable_all()
            .build()
            .map_err(|e| TableError::new("", format!("cannot start the I/O runtime: {e}")))?;
        let store = TableStore::open(&config.destination, &runtime)?;
        Ok(Tables {
            runtime,
            store,
            options,
            run_id: config.run_id.clone(),
            tables: BTreeMap::new(),
            by_stream: HashMap::new(),
            last_commit: Instant::now(),
            last_txn: 0,
        })
    }

    /// A data file of `stream` is durable under `key`: it waits for the next commit.
    pub fn add(&mut self, id: FileId, key: &str, bytes: u64, records: u64, stream: &str) -> Result<(), TableError> {
        let (folder, name) = key.rsplit_once('/').unwrap_or(("", key));
        if folder.contains('%') || !folder.is_ascii() {
            // delta-rs (and Hadoop paths) decode `%` escapes in a table's location, so a
            // folder named `a%20b` would be read as `a b`: its log and its files would part.
            // polars 2.1 cannot open a local table whose folder name is not ASCII.
            return Err(TableError::new(
                folder,
                format!(
                    "stream {stream:?} gives a table folder that needs escaping or is not ASCII, which Delta readers cannot all open; use `{{stream_id}}` in table_path, or rename the stream (e.g. with the tap's stream_maps)"
                ),
            ));
        }
        if let Some(known) = self.by_stream.get(stream)
            && known != folder
        {
            return Err(TableError::new(folder, format!("stream {stream:?} moved from table `{known}`")));
        }
        let table = self.tables.entry(folder.to_string()).or_insert_with(|| Table {
            stream: stream.to_string(),
            delta: None,
            files: Vec::new(),
        });
        if table.stream != stream {
            return Err(TableError::new(
                folder,
                format!(
                    "streams {:?} and {stream:?} both map to this table (table_path makes their names alike); rename one, or use {{stream_id}} in table_path",
                    table.stream
                ),
            ));
        }
        self.by_stream.insert(stream.to_string(), folder.to_string());
        table.files.push(Pending { id, name: name.to_string(), bytes, records });
        Ok(())
    }

    /// Files durable but not committed yet (they still hold STATE back).
    pub fn pending(&self) -> Vec<FileId> {
        self.tables.values().flat_map(|t| t.files.iter().map(|f| f.id)).collect()
    }

    pub fn has_pending(&self) -> bool {
        self.tables.values().any(|t| !t.files.is_empty())
    }

    /// Whether `commit_interval_seconds` passed since the last commit.
    pub fn interval_passed(&self) -> bool {
        self.last_commit.elapsed() >= self.options.commit_interval
    }

    pub fn interval(&self) -> Duration {
        self.options.commit_interval
    }

    /// Commits every table's waiting files, each commit carrying `state` (the STATE that is
    /// printed once they are all in). `schema_of` gives a stream's current columns. Returns the
    /// files now in their tables. On error nothing after the failing table is committed.
    pub fn commit(
        &mut self,
        state: Option<&str>,
        ids: &[FileId],
        schema_of: &dyn Fn(&str) -> Option<Schema>,
    ) -> Result<Vec<FileId>, TableError> {
        let now = chrono::Utc::now().timestamp_millis();
        // Comparable across tables and runs of one pipeline: `--table-state` takes the newest.
        let txn = now.max(self.last_txn + 1);
        self.last_txn = txn;
        let state: serde_json::Value = state.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let mut done = Vec::new();
        for (folder, table) in self.tables.iter_mut() {
            let (files, later): (Vec<Pending>, Vec<Pending>) =
                std::mem::take(&mut table.files).into_iter().partition(|f| ids.contains(&f.id));
            table.files = files;
            if table.files.is_empty() {
                table.files = later;
                continue;
            }
            let arrow = schema_of(&table.stream)
                .ok_or_else(|| TableError::new(folder, format!("stream {:?} has no schema", table.stream)))?;
            let columns = schema::to_delta(&arrow).map_err(|e| TableError::new(folder, e))?;
            let info = serde_json::json!({
                "pipelineId": self.options.pipeline_id,
                "txnVersion": txn,
                "runId": self.run_id,
                "stream": table.stream,
                "state": state,
            });
            let job = Commit {
                store: &self.store,
                folder,
                pipeline_id: &self.options.pipeline_id,
                checkpoint_interval: self.options.checkpoint_interval,
                txn,
                info,
                columns,
                now,
            };
            let records: u64 = table.files.iter().map(|f| f.records).sum();
            let version = self.runtime.block_on(job.run(table))?;
            tracing::info!(table = %folder, version, files = table.files.len(), records, "committed");
            done.extend(table.files.drain(..).map(|f| f.id));
            table.files = later;
        }
        self.last_commit = Instant::now();
        Ok(done)
    }
}

/// One table's commit.
struct Commit<'a> {
    store: &'a TableStore,
    folder: &'a str,
    pipeline_id: &'a str,
    checkpoint_interval: u64,
    txn: i64,
    info: serde_json::Value,
    columns: StructType,
    now: i64,
}

impl Commit<'_> {
    fn properties(&self) -> CommitProperties {
        CommitProperties::default()
            .with_metadata([(COMMIT_INFO_KEY.to_string(), self.info.clone())])
            .with_application_transaction(Transaction::new(self.pipeline_id, self.txn))
            .with_create_checkpoint(true)
    }

    fn adds(&self, files: &[Pending]) -> Vec<Action> {
        files
            .iter()
            .map(|f| {
                Action::Add(Add {
                    path: f.name.clone(),
                    partition_values: HashMap::new(),
                    size: f.bytes as i64,
                    modification_time: self.now,
                    data_change: true,
                    stats: Some(serde_json::json!({ "numRecords": f.records }).to_string()),
                    ..Default::default()
                })
            })
            .collect()
    }

    fn error(&self, e: impl std::fmt::Display) -> TableError {
        TableError::new(self.folder, e.to_string())
    }

    /// Creates the table with the files, or appends them (evolving the schema first when the
    /// stream gained nullable columns). Returns the table version written.
    async fn run(&self, table: &mut Table) -> Result<i64, TableError> {
        if table.delta.is_none() {
            let delta = self.store.builder(self.folder).and_then(|b| b.build()).map_err(|e| self.error(e))?;
            let exists = delta.log_store().is_delta_table_location().await.map_err(|e| self.error(e))?;
            if !exists {
                let created = CreateBuilder::new()
                    .with_log_store(delta.log_store())
                    .with_columns(self.columns.fields().cloned())
                    .with_configuration_property(
                        TableProperty::CheckpointInterval,
                        Some(self.checkpoint_interval.to_string()),
                    )
                    .with_save_mode(SaveMode::ErrorIfExists)
                    .with_actions(self.adds(&table.files))
                    .with_commit_properties(self.properties())
                    .await;
                match created {
                    Ok(t) => {
                        let version = t.version().unwrap_or_default() as i64;
                        table.delta = Some(t);
                        return Ok(version);
                    }
                    // Another writer created it first: append to theirs.
                    Err(e) if delta.log_store().is_delta_table_location().await.unwrap_or(false) => {
                        tracing::debug!(table = %self.folder, error = %e, "the table was created meanwhile");
                    }
                    Err(e) => return Err(self.error(e)),
                }
            }
            table.delta = Some(delta);
        }
        let delta = table.delta.as_mut().expect("loaded above");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                delta.update_state().await?;
                let snapshot = delta.snapshot()?;
                let current = snapshot.schema();
                let evolved = schema::evolve(&current, &self.columns).map_err(DeltaTableError::Generic)?;
                let mut actions = Vec::new();
                if let Some(evolved) = evolved {
                    use deltalake_core::kernel::MetadataExt;
                    tracing::info!(table = %self.folder, "schema evolved: new nullable columns");
                    actions.push(Action::Metadata(snapshot.metadata().clone().with_schema(&evolved)?));
                }
                actions.extend(self.adds(&table.files));
                let operation = DeltaOperation::Write { mode: SaveMode::Append, partition_by: None, predicate: None };
                let done = CommitBuilder::from(self.properties())
                    .with_actions(actions)
                    .build(Some(snapshot), delta.log_store(), operation)
                    .await?;
                Ok::<_, DeltaTableError>(done.version() as i64)
            }
            .await;
            match result {
                Ok(version) => return Ok(version),
                Err(DeltaTableError::Transaction {
                    source: TransactionError::CommitConflict(_) | TransactionError::MaxCommitAttempts(_),
                }) if attempt < COMMIT_ATTEMPTS => {
                    tracing::warn!(table = %self.folder, attempt, "commit conflict with another writer; retrying");
                }
                Err(e) => return Err(self.error(e)),
            }
        }
    }
}

/// `--table-state`: the newest STATE this pipeline committed to any of its tables, or `None`
/// when it committed none.
pub fn table_state(config: &Config) -> Result<Option<String>, TableError> {
    let tables = Tables::open(config)?;
    let (base, depth) = tables.options.table_path.fixed_folder();
    let pipeline_id = tables.options.pipeline_id.clone();
    tables.runtime.block_on(async {
        let mut folders = vec![base.trim_end_matches('/').to_string()];
        for _ in 0..depth {
            let mut next = Vec::new();
            for folder in &folders {
                let list = tables.store.folders(folder).await.map_err(|e| TableError::new(folder, e.to_string()))?;
                next.extend(list.into_iter().filter(|f| !f.ends_with("_delta_log")));
            }
            folders = next;
        }
        let mut newest: Option<(i64, serde_json::Value)> = None;
        for folder in folders {
            let Ok(builder) = tables.store.builder(&folder) else { continue };
            let Ok(mut delta) = builder.build() else { continue };
            if !delta.log_store().is_delta_table_location().await.unwrap_or(false) {
                continue;
            }
            delta.load().await.map_err(|e| TableError::new(&folder, e.to_string()))?;
            let Some(txn) = delta
                .snapshot()
                .map_err(|e| TableError::new(&folder, e.to_string()))?
                .transaction_version(delta.log_store().as_ref(), &pipeline_id)
                .await
                .map_err(|e| TableError::new(&folder, e.to_string()))?
            else {
                continue;
            };
            if newest.as_ref().is_some_and(|(t, _)| *t >= txn) {
                continue;
            }
            let mut history = delta.history(None);
            while let Some(commit) = history.next().await {
                let commit = commit.map_err(|e| TableError::new(&folder, e.to_string()))?;
                let Some(ours) = commit.info.get(COMMIT_INFO_KEY) else { continue };
                if ours["pipelineId"] == pipeline_id.as_str() && ours["txnVersion"] == txn {
                    newest = Some((txn, ours["state"].clone()));
                    break;
                }
            }
        }
        Ok(newest.map(|(_, state)| state).filter(|s| !s.is_null()).map(|s| s.to_string()))
    })
}
