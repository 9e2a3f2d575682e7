//! A table as the round logic sees it, whatever its format: whether it exists, its columns and
//! partition columns, the stream it was made for, whether target-s3 can write it, and the newest
//! round of a pipeline it holds. Creating a table and committing to it are each format's own
//! (`plan::create`, `delta.rs`, `iceberg/`).

use deltalake_core::DeltaTable;
use deltalake_core::kernel::StructType;
use futures::StreamExt;

use super::store::TableStore;
use super::{COMMIT_INFO_KEY, HISTORY_DEPTH, STREAM_PROPERTY, guard};
use crate::error::TableError;

/// Which table format the tables are, and what it needs to find them.
#[derive(Clone)]
pub enum Format {
    Delta,
    #[cfg(feature = "iceberg")]
    Iceberg {
        catalog: std::sync::Arc<super::iceberg::Catalog>,
        namespace: String,
        partitions: Vec<crate::config::Partition>,
        expire: bool,
    },
}

pub enum Log {
    Delta(Box<DeltaTable>),
    #[cfg(feature = "iceberg")]
    Iceberg(super::iceberg::IcebergTable),
}

impl Format {
    /// The (unloaded) table in `folder`.
    pub fn open(&self, store: &TableStore, folder: &str) -> Result<Log, TableError> {
        match self {
            Format::Delta => store
                .builder(folder)
                .and_then(|b| b.build())
                .map(|d| Log::Delta(Box::new(d)))
                .map_err(|e| TableError::new(folder, e.to_string())),
            #[cfg(feature = "iceberg")]
            Format::Iceberg { catalog, namespace, partitions, expire } => Ok(Log::Iceberg(
                super::iceberg::IcebergTable::new(catalog.clone(), (namespace, partitions, *expire), store, folder),
            )),
        }
    }

    /// Folders inside a table folder the format writes before the table exists (an Iceberg
    /// table's first metadata, written before the catalog names it): not foreign objects.
    pub fn written_before_table(&self) -> &'static [&'static str] {
        match self {
            Format::Delta => &[],
            #[cfg(feature = "iceberg")]
            Format::Iceberg { .. } => &["metadata", "_target_s3_state"],
        }
    }

    /// Folder names inside a table folder that are never tables of their own.
    pub fn inner_folders(&self) -> &'static [&'static str] {
        match self {
            Format::Delta => &["_delta_log"],
            #[cfg(feature = "iceberg")]
            Format::Iceberg { .. } => &["metadata"],
        }
    }
}

impl Log {
    /// Whether the table exists (a Delta log in its folder, a table in the Iceberg catalog).
    #[cfg_attr(not(feature = "iceberg"), allow(unused_variables))]
    pub async fn exists(&self, store: &TableStore) -> Result<bool, String> {
        match self {
            Log::Delta(d) => d.log_store().is_delta_table_location().await.map_err(|e| e.to_string()),
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => t.exists(store).await,
        }
    }

    pub fn is_loaded(&self) -> bool {
        match self {
            Log::Delta(d) => d.version().is_some(),
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => t.is_loaded(),
        }
    }

    /// Reads the table's newest state (it exists).
    #[cfg_attr(not(feature = "iceberg"), allow(unused_variables))]
    pub async fn load(&mut self, store: &TableStore) -> Result<(), String> {
        match self {
            Log::Delta(d) => {
                if d.version().is_none() { d.load().await } else { d.update_state().await }.map_err(|e| e.to_string())
            }
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => t.load(store).await.map(|_| ()),
        }
    }

    /// The table's columns (loaded).
    pub fn columns(&self) -> Result<StructType, String> {
        match self {
            Log::Delta(d) => d.snapshot().map(|s| s.schema().as_ref().clone()).map_err(|e| e.to_string()),
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => t.columns(),
        }
    }

    pub fn partition_columns(&self) -> Vec<String> {
        match self {
            Log::Delta(d) => d.snapshot().map(|s| s.metadata().partition_columns().to_vec()).unwrap_or_default(),
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => t.partition_columns(),
        }
    }

    /// The stream target-s3 created the table for (`None`: made by something else).
    pub fn stream(&self) -> Option<String> {
        match self {
            Log::Delta(d) => d.snapshot().ok()?.metadata().configuration().get(STREAM_PROPERTY).cloned(),
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => t.stream(),
        }
    }

    /// Whether target-s3 can append to the table (loaded), decided before a round commits.
    pub fn writable(&self, folder: &str) -> Result<(), TableError> {
        match self {
            Log::Delta(d) => guard::writable(folder, d.snapshot().map_err(|e| TableError::new(folder, e.to_string()))?),
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => t.writable().map_err(|e| TableError::new(folder, e)),
        }
    }

    /// The newest txn of `pipeline_id` the table holds (loaded).
    pub async fn held(&self, pipeline_id: &str) -> Result<Option<i64>, String> {
        match self {
            Log::Delta(d) => {
                let snapshot = d.snapshot().map_err(|e| e.to_string())?;
                snapshot.transaction_version(d.log_store().as_ref(), pipeline_id).await.map_err(|e| e.to_string())
            }
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => Ok(t.held(pipeline_id)),
        }
    }

    /// The round records of `pipeline_id` the table's own history holds (loaded), with their
    /// txn: Delta commits' `commitInfo` (newest [`HISTORY_DEPTH`]), Iceberg snapshot summaries.
    pub async fn rounds(&self, pipeline_id: &str) -> Result<Vec<(i64, serde_json::Value)>, String> {
        match self {
            Log::Delta(d) => {
                let mut found = Vec::new();
                let mut history = d.history(Some(HISTORY_DEPTH));
                while let Some(commit) = history.next().await {
                    let commit = commit.map_err(|e| e.to_string())?;
                    let Some(ours) = commit.info.get(COMMIT_INFO_KEY) else { continue };
                    if let Some(txn) = ours["txnVersion"].as_i64().filter(|_| ours["pipelineId"] == pipeline_id) {
                        found.push((txn, ours.clone()));
                    }
                }
                Ok(found)
            }
            #[cfg(feature = "iceberg")]
            Log::Iceberg(t) => Ok(t.rounds(pipeline_id)),
        }
    }
}
