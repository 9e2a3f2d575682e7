//! `table_format: delta` and `iceberg`: every stream one Delta Lake or Apache Iceberg table.
//!
//! The pipeline writes a table's data files exactly as `format: parquet` files, into the table's
//! folder, where they are invisible to every reader until the table's log (Delta) or metadata
//! (Iceberg) names them. Here the
//! durable ones wait; [`Tables::commit`] adds them to their tables in one commit round (one
//! commit per table, all carrying the Singer STATE the round covers, an application transaction
//! `txn` and the list of the round's tables), and only then does the pipeline acknowledge them,
//! so a STATE is printed only once the tables hold every record before it. A round checks every
//! table's schema before it writes anything, then commits the tables concurrently; a round cut
//! short (a kill, a failed request) is not complete, and `--table-state` only trusts complete
//! rounds. This module decides what goes into a commit and when, for both formats (`log.rs`
//! is what a round asks of a table); `delta.rs` (delta-rs doing the Delta protocol) and
//! `iceberg/` (metadata, manifests and catalog written here) each commit in their own way.

mod delta;
mod guard;
#[cfg(feature = "iceberg")]
pub mod iceberg;
mod log;
mod partition;
mod plan;
mod schema;
mod state;
mod store;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_schema::Schema;
use deltalake_core::kernel::StructType;

use crate::ack::FileId;
use crate::config::{Config, TableOptions};
use crate::error::TableError;
use log::{Format, Log};
use store::TableStore;

pub use partition::check as check_partitions;
pub use plan::CommitError;

pub use schema::{evolve_with as evolve, to_delta};
pub use state::table_state;

/// Commit attempts of one table while other writers keep winning the race for its next log
/// version. Each attempt first checks whether the table already holds this commit (a write
/// whose answer was lost), so delta-rs's own retries, which cannot know, are off.
const COMMIT_ATTEMPTS: usize = 100;

/// The key under which every commit's `commitInfo` carries target-s3's part.
const COMMIT_INFO_KEY: &str = "targetS3";

/// The table property naming the stream a table was created for (a stream's table versions).
const STREAM_PROPERTY: &str = "targetS3.stream";

/// Commits `--table-state` reads back per table, newest first.
const HISTORY_DEPTH: usize = 1000;

/// An existing table, as `incompatible_schema: new_table` weighs it.
pub struct TableInfo {
    pub columns: StructType,
    pub partition_columns: Vec<String>,
    /// The stream target-s3 created it for (`None`: created by something else).
    pub stream: Option<String>,
}

pub struct Tables {
    runtime: tokio::runtime::Runtime,
    store: TableStore,
    options: TableOptions,
    format: Format,
    run_id: String,
    /// By table folder (the key of its files without the file name).
    tables: BTreeMap<String, Table>,
    last_commit: Instant,
    last_txn: i64,
    /// Table folders found to be a table or to hold only target-s3's data files.
    clean: std::collections::HashSet<String>,
    /// Table folders whose owning stream was checked.
    owners: HashSet<String>,
    /// Iceberg: by table folder, the field ids (and names) this run's files were written with,
    /// each of which must still be in the table when they are committed.
    #[cfg_attr(not(feature = "iceberg"), allow(dead_code))]
    written_ids: HashMap<String, Vec<(i64, String)>>,
}

struct Table {
    stream: String,
    log: Option<Log>,
    files: Vec<Pending>,
}

/// A durable data file not yet in its table.
struct Pending {
    id: FileId,
    /// Inside the table: its partition folders and file name.
    path: String,
    partition_values: HashMap<String, Option<String>>,
    bytes: u64,
    records: u64,
    /// The sum of its records' hashes: a rerun's records told from a cut round's.
    digest: u64,
    /// The columns its records were written with.
    schema: Arc<Schema>,
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
        let format = match &options.iceberg {
            None => Format::Delta,
            #[cfg(feature = "iceberg")]
            Some(i) => Format::Iceberg {
                catalog: Arc::new(runtime.block_on(iceberg::open(i)).map_err(|e| TableError::new("", e))?),
                namespace: i.namespace.clone(),
                partitions: options.partitions.clone(),
                expire: i.expire_snapshots,
            },
            #[cfg(not(feature = "iceberg"))]
            Some(_) => unreachable!("refused at start-up without the iceberg feature"),
        };
        Ok(Tables {
            runtime,
            store,
            options,
            format,
            run_id: config.run_id.clone(),
            tables: BTreeMap::new(),
            last_commit: Instant::now(),
            last_txn: 0,
            clean: Default::default(),
            owners: HashSet::new(),
            written_ids: HashMap::new(),
        })
    }

    /// A data file of `stream` is durable under `key`: it waits for the next commit.
    pub fn add(
        &mut self,
        id: FileId,
        key: &str,
        bytes: u64,
        (records, digest): (u64, u64),
        stream: &str,
        schema: Arc<Schema>,
    ) -> Result<(), TableError> {
        let partitions = &self.options.partitions;
        let located = partition::locate(key, partitions, &schema).map_err(|e| {
            TableError::new(partition::split(key, partitions.len()).0, format!("stream {stream:?}: {e}"))
        })?;
        let folder = located.folder;
        check_folder(folder, stream).map_err(|e| TableError::new(folder, e))?;
        let table = self.tables.entry(folder.to_string()).or_insert_with(|| Table {
            stream: stream.to_string(),
            log: None,
            files: Vec::new(),
        });
        if table.stream != stream {
            return Err(TableError::new(
                folder,
                format!(
                    "streams {:?} and {stream:?} both map to this table (table_path makes their names alike, or incompatible_schema: new_table moved one to a version named like the other); rename one, or use {{stream_id}} in table_path",
                    table.stream
                ),
            ));
        }
        table.files.push(Pending {
            id,
            path: located.path.to_string(),
            partition_values: located.values,
            bytes,
            records,
            digest,
            schema,
        });
        Ok(())
    }

    /// Files durable but not committed yet (they still hold STATE back).
    pub fn pending(&self) -> Vec<FileId> {
        self.tables.values().flat_map(|t| t.files.iter().map(|f| f.id)).collect()
    }

    pub fn partitions(&self) -> &[crate::config::Partition] {
        &self.options.partitions
    }

    /// What the table in `folder` is, `None` if there is no table there yet.
    pub fn table_info(&self, folder: &str) -> Result<Option<TableInfo>, TableError> {
        let error = |e: &dyn std::fmt::Display| TableError::new(folder, e.to_string());
        self.runtime.block_on(async {
            let mut log = self.format.open(&self.store, folder)?;
            if !log.exists(&self.store).await.map_err(|e| error(&e))? {
                return Ok(None);
            }
            log.load(&self.store).await.map_err(|e| error(&e))?;
            Ok(Some(TableInfo {
                columns: log.columns().map_err(|e| error(&e))?,
                partition_columns: log.partition_columns(),
                stream: log.stream(),
            }))
        })
    }

    /// `table_format: iceberg`: the table of `stream` in `folder` created or evolved to hold
    /// `columns` before a data file carries them, and its schema's fields (their field ids go
    /// into the files). `None` for Delta, whose files need no ids.
    pub fn prepare(
        &mut self,
        folder: &str,
        stream: &str,
        columns: &StructType,
    ) -> Result<Option<serde_json::Value>, CommitError> {
        #[cfg(feature = "iceberg")]
        if let Log::Iceberg(mut table) = self.format.open(&self.store, folder)? {
            let fields = self.runtime.block_on(table.prepare(&self.store, stream, columns));
            if let Ok(fields) = &fields {
                let ids = self.written_ids.entry(folder.to_string()).or_default();
                for id in iceberg::schema::ids(fields.as_array().map_or(&[][..], |f| f)) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            return fields.map(Some).map_err(|e| match e {
                iceberg::Prepared::Unfit(message) => CommitError::Unfit {
                    stream: stream.to_string(),
                    folder: folder.to_string(),
                    error: TableError::new(folder, message),
                },
                iceberg::Prepared::Failed(message) => CommitError::Failed(TableError::new(folder, message)),
            });
        }
        let _ = (folder, stream, columns);
        Ok(None)
    }

    pub fn is_iceberg(&self) -> bool {
        self.options.iceberg.is_some()
    }

    pub fn incompatible_schema(&self) -> crate::config::settings::IncompatibleSchema {
        self.options.incompatible_schema
    }

    /// The folder of `stream`'s table (`prefix` + `table_path`, which has no record macros).
    pub fn folder_of(&self, stream: &str, run: &crate::keys::RunContext) -> String {
        let file = crate::keys::FileContext {
            stream,
            extension: "parquet",
            format: "parquet",
            compression: "none",
            stream_run_id: "",
            record: None,
            partition_date_field: None,
            cursor: None,
            table_version: None,
        };
        self.options.table_path.render(run, &file).with_part(0).trim_end_matches('/').to_string()
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

    /// Commits the waiting files `ids` in one round, each table's commit carrying `state` (the
    /// STATE printed once they are all in). Returns the files now in their tables. Every
    /// table's schema is worked out (and refused if it cannot take the files) before anything
    /// is written; the commits then run concurrently.
    pub fn commit(&mut self, state: Option<&str>, ids: &[FileId]) -> Result<Vec<FileId>, CommitError> {
        let now = chrono::Utc::now().timestamp_millis();
        let state: serde_json::Value = state.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let wanted: HashSet<FileId> = ids.iter().copied().collect();
        let Tables { runtime, store, options, format, run_id, tables, last_txn, written_ids, .. } = self;
        // Every table planned before any file is taken from it: a refusal leaves them waiting.
        let new_table = options.incompatible_schema == crate::config::settings::IncompatibleSchema::NewTable;
        let mut plans = runtime.block_on(async {
            let unfit = |table: &Table, folder: &str, refusal: plan::Refusal| match refusal {
                plan::Refusal::Unfit(error) if new_table => {
                    CommitError::Unfit { stream: table.stream.clone(), folder: folder.to_string(), error }
                }
                plan::Refusal::Unfit(e) | plan::Refusal::Other(e) => e.into(),
            };
            let mut plans = HashMap::new();
            for (folder, table) in tables.iter_mut() {
                let files: Vec<&Pending> = table.files.iter().filter(|f| wanted.contains(&f.id)).collect();
                if !files.is_empty() {
                    let planned = plan::plan(store, format, folder, &mut table.log, &files, &options.partitions).await;
                    plans.insert(folder.clone(), planned.map_err(|r| unfit(table, folder, r))?);
                }
            }
            // The tables this round creates are created now, empty, before any table of the
            // round commits data: if another writer created one meanwhile in a shape these
            // files cannot join (a race for a table version), nothing is committed yet.
            for (folder, table) in tables.iter_mut() {
                let Some(columns) = plans.get(folder) else { continue };
                if table.log.as_ref().is_some_and(Log::is_loaded) {
                    continue;
                }
                if !plan::create(store, &mut table.log, folder, &table.stream, columns, options).await? {
                    let files: Vec<&Pending> = table.files.iter().filter(|f| wanted.contains(&f.id)).collect();
                    let planned = plan::plan(store, format, folder, &mut table.log, &files, &options.partitions).await;
                    plans.insert(folder.clone(), planned.map_err(|r| unfit(table, folder, r))?);
                }
            }
            Ok::<_, CommitError>(plans)
        })?;
        let mut round: Vec<(&String, &mut Table, Vec<Pending>, StructType)> = Vec::new();
        for (folder, table) in tables.iter_mut() {
            let (now, later): (Vec<Pending>, Vec<Pending>) =
                std::mem::take(&mut table.files).into_iter().partition(|f| wanted.contains(&f.id));
            table.files = later;
            if let Some(columns) = plans.remove(folder) {
                round.push((folder, table, now, columns));
            }
        }
        let folders: Vec<&str> = round.iter().map(|(f, ..)| f.as_str()).collect();
        let result = runtime.block_on(async {
            // Comparable across tables and runs of one pipeline (`--table-state` takes the
            // newest): above every version this pipeline committed to these tables, whatever
            // the clock says now.
            let mut txn = now.max(*last_txn + 1);
            let mut held = HashMap::new();
            for (folder, table, ..) in round.iter() {
                if let Some(log) = table.log.as_ref().filter(|l| l.is_loaded()) {
                    let version =
                        log.held(&options.pipeline_id).await.map_err(|e| TableError::new(folder, e.to_string()))?;
                    txn = txn.max(version.unwrap_or(0) + 1);
                    held.insert(folder.as_str(), version.unwrap_or(0));
                }
            }
            *last_txn = txn;
            let counted = |files: &[Pending]| {
                files.iter().fold((0u64, 0u64), |(n, d), f| (n + f.records, d.wrapping_add(f.digest)))
            };
            let records: HashMap<&str, (u64, u64)> =
                round.iter().map(|(f, _, files, _)| (f.as_str(), counted(files))).collect();
            let repeated =
                guard::repeated_round(store, &options.pipeline_id, &folders, &state, &held, &records).await?;
            let info = serde_json::json!({
                "pipelineId": options.pipeline_id,
                "txnVersion": txn,
                "runId": run_id,
                "state": state,
                "round": folders,
            });
            let (store, pipeline_id) = (&*store, options.pipeline_id.as_str());
            #[cfg(feature = "iceberg")]
            let written_ids = &*written_ids;
            #[cfg(not(feature = "iceberg"))]
            let _ = written_ids;
            let commits = round.iter_mut().map(|(folder, table, files, columns)| {
                let mut info = info.clone();
                info["stream"] = serde_json::Value::from(table.stream.clone());
                let (records, digest) = counted(files);
                info["records"] = serde_json::Value::from(records);
                info["digest"] = serde_json::Value::from(digest);
                let job = delta::Commit {
                    folder,
                    pipeline_id: &options.pipeline_id,
                    partition_columns: options.partitions.iter().map(|p| p.column.clone()).collect(),
                    txn,
                    info,
                    columns: columns.clone(),
                    now,
                };
                // A table that already holds this round (a rerun of a round cut short) gets
                // only the round's txn: its records are not added a second time.
                let again = repeated.contains(folder.as_str());
                async move {
                    let added: &[Pending] = if again { &[] } else { files };
                    if again {
                        tracing::warn!(table = %folder, files = files.len(), "the table already holds this round's records (a rerun of a round cut short): committing only the round's txn, not the records again (their files stay unreferenced; Delta's VACUUM or Iceberg's orphan file removal deletes them)");
                    }
                    let version = match table.log.as_mut().expect("planned and created") {
                        Log::Delta(d) => job.run_delta(d, added).await?,
                        #[cfg(feature = "iceberg")]
                        Log::Iceberg(t) => {
                            let files: Vec<iceberg::NewFile> = added
                                .iter()
                                .map(|f| iceberg::NewFile {
                                    key: format!("{folder}/{}", f.path),
                                    path: t.file_uri(&f.path),
                                    records: f.records,
                                    bytes: f.bytes,
                                    values: &f.partition_values,
                                })
                                .collect();
                            let written = written_ids.get(*folder).map_or(&[][..], Vec::as_slice);
                            t.append(store, (&files, written), &job.columns, (pipeline_id, job.txn), &job.info)
                                .await
                                .map_err(|e| job.error(e))?
                        }
                    };
                    // The round's STATE where log cleanup cannot remove it (see state.rs).
                    store.put_state(folder, pipeline_id, &job.info).await.map_err(|e| job.error(e))?;
                    let records: u64 = files.iter().map(|f| f.records).sum();
                    tracing::info!(table = %folder, version, files = files.len(), records, "committed");
                    Ok::<_, TableError>(())
                }
            });
            // Every commit runs to its end (one that failed does not cut the others off between
            // their commit and their round record), then the first failure is the run's.
            let results = futures::future::join_all(commits).await;
            let committed = results.iter().filter(|r| r.is_ok()).count();
            match results.into_iter().find_map(Result::err) {
                Some(mut e) if committed > 0 => {
                    e.message += &format!("; {committed} other table(s) of this commit round committed, so no STATE is printed: a rerun of the same input completes the round without adding their records again");
                    Err(e)
                }
                Some(e) => Err(e),
                None => Ok(()),
            }
        });
        result?;
        self.last_commit = Instant::now();
        Ok(round.into_iter().flat_map(|(_, _, files, _)| files.into_iter().map(|f| f.id)).collect())
    }

    /// Moves every file waiting for the table in `from` to the table in `to` (same paths inside
    /// the table), for a stream that moved on to another table version. The files were never
    /// committed, so no reader saw them where they were.
    /// Returns each moved file's old and new key.
    pub fn relocate(&mut self, from: &str, to: &str) -> Result<Vec<(String, String)>, TableError> {
        let Some(mut table) = self.tables.remove(from) else { return Ok(Vec::new()) };
        let files = std::mem::take(&mut table.files);
        let mut moved = Vec::with_capacity(files.len());
        self.runtime.block_on(async {
            for file in &files {
                let (old, new) = (format!("{from}/{}", file.path), format!("{to}/{}", file.path));
                self.store.rename(&old, &new).await.map_err(|e| TableError::new(to, format!("moving {old}: {e}")))?;
                moved.push((old, new));
            }
            Ok::<_, TableError>(())
        })?;
        let target = self.tables.entry(to.to_string()).or_insert_with(|| Table {
            stream: table.stream.clone(),
            log: None,
            files: Vec::new(),
        });
        if target.stream != table.stream {
            return Err(TableError::new(
                to,
                format!("streams {:?} and {:?} both map to this table; rename one", target.stream, table.stream),
            ));
        }
        target.files.extend(files);
        Ok(moved)
    }
}

/// Why a commit stops when the table holds a newer txn of this pipeline that is not its own:
/// another run of the same pipeline commits to the table at the same time. Skipping the
/// commit as "already in" would print a STATE for records no table holds; committing it
/// would put the pipeline's transactions out of order.
fn concurrent_run(pipeline_id: &str, held: Option<i64>, txn: i64) -> String {
    format!(
        "another run with pipeline_id {pipeline_id:?} committed to this table while this run was loading (its txn {} is past this round's {txn}): nothing of this round was committed to this table and no STATE is printed for it; give each writer that runs at the same time its own pipeline_id, or keep runs of one pipeline from overlapping, then rerun from the last printed STATE",
        held.unwrap_or_default()
    )
}

/// Refuses a table folder that Delta readers cannot all open: delta-rs (and Hadoop paths)
/// decode `%` escapes in a table's location, so a folder named `a%20b` would be read as `a b`
/// and its log and its files would part; polars 2.1 cannot open a local table whose folder name
/// is not ASCII.
pub fn check_folder(folder: &str, stream: &str) -> Result<(), String> {
    if folder.contains('%') || !folder.is_ascii() {
        return Err(format!(
            "stream {stream:?} gives the table folder {folder:?}, which needs escaping or is not ASCII: table folders are plain ASCII, as every reader opens them (Delta readers decode `%` in a location; polars cannot open a local Delta table under a non-ASCII folder); use `{{stream_id}}` in table_path, or rename the stream (e.g. with the tap's stream_maps)"
        ));
    }
    Ok(())
}
