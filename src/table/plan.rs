//! Planning a commit round: every table's columns after the round, worked out (and refused if
//! its files cannot join it) before any table of the round commits. A table that another writer
//! created or changed since the stream's SCHEMA was weighed, in a shape these files cannot join,
//! is told apart from other refusals: under `incompatible_schema: new_table` the stream moves on
//! to its next table version (the loser of a version race), rather than stop.

use deltalake_core::TableProperty;
use deltalake_core::kernel::{StructField, StructType};
use deltalake_core::operations::create::CreateBuilder;
use deltalake_core::protocol::SaveMode;

use super::log::{Format, Log};
use super::store::TableStore;
use super::{Pending, partition, schema};
use crate::error::TableError;

/// Why a round cannot commit as it is.
pub enum CommitError {
    /// The table in `folder` (made by another writer since the SCHEMA) has columns or partitions
    /// the waiting files of `stream` cannot join. Nothing of the round was committed, and the
    /// files still wait: moved to another table, they can be committed.
    Unfit {
        stream: String,
        folder: String,
        error: TableError,
    },
    Failed(TableError),
}

impl From<TableError> for CommitError {
    fn from(e: TableError) -> CommitError {
        CommitError::Failed(e)
    }
}

impl CommitError {
    pub fn into_table_error(self) -> TableError {
        match self {
            CommitError::Unfit { error, .. } | CommitError::Failed(error) => error,
        }
    }
}

/// A refusal while planning: `Unfit` when the files cannot join the table's shape.
pub(super) enum Refusal {
    Unfit(TableError),
    Other(TableError),
}

/// A table's columns after a commit of `files`: its current schema (loaded, or `None` for a
/// table that does not exist yet) evolved by each file's columns in the order they were
/// written. Fails, before anything is written, when a file's columns cannot join the table.
pub(super) async fn plan(
    store: &TableStore,
    format: &Format,
    folder: &str,
    log: &mut Option<Log>,
    files: &[&Pending],
    partitions: &[crate::config::Partition],
) -> Result<StructType, Refusal> {
    let other = |e: &dyn std::fmt::Display| Refusal::Other(TableError::new(folder, e.to_string()));
    let unfit = |message: String| Refusal::Unfit(TableError::new(folder, message));
    if log.is_none() {
        *log = Some(format.open(store, folder).map_err(Refusal::Other)?);
    }
    let log = log.as_mut().expect("set above");
    let mut columns: Option<StructType> = None;
    if log.exists(store).await.map_err(|e| other(&e))? {
        log.load(store).await.map_err(|e| other(&e))?;
        log.writable(folder).map_err(Refusal::Other)?;
        let partitioned_by = log.partition_columns();
        if !partitioned_by.iter().eq(partitions.iter().map(|p| &p.column)) {
            return Err(unfit(format!(
                "the table is partitioned by {partitioned_by:?}, but partition_by gives {:?}; a table's partition columns cannot change (point table_path at a new table)",
                partitions.iter().map(|p| p.column.as_str()).collect::<Vec<_>>()
            )));
        }
        columns = Some(log.columns().map_err(|e| other(&e))?);
    }
    for file in files {
        let next = schema::to_delta(&file.schema).map_err(|e| Refusal::Other(TableError::new(folder, e)))?;
        columns = Some(match columns {
            None => next,
            Some(current) => {
                let nested = !matches!(format, Format::Delta);
                schema::evolve_with(&current, &next, nested).map_err(unfit)?.unwrap_or(current)
            }
        });
    }
    let columns = columns.ok_or_else(|| Refusal::Other(TableError::new(folder, "no files to commit".into())))?;
    // The partition columns cut to a granularity are in no file; a table that has a column of
    // that name must have it with that type.
    let mut derived = Vec::new();
    // Iceberg partitions by transforms of the field itself: no column of their own.
    let cut = if matches!(format, Format::Delta) { partitions } else { &[] };
    for column in partition::derived_columns(cut) {
        match columns.field(column.name()) {
            None => derived.push(column),
            Some(have) if have.data_type() == column.data_type() => {}
            Some(have) => {
                return Err(unfit(format!(
                    "the table's column {:?} is {}, but partition_by makes it {}; a table keeps its columns' types (point table_path at a new table)",
                    column.name(),
                    have.data_type(),
                    column.data_type()
                )));
            }
        }
    }
    // Partition columns are nullable whatever the stream says: an empty value is null in a
    // partition (Hive's and Delta's rule), and the table must be able to hold it.
    let nullable = |f: &StructField| {
        if partitions.iter().any(|p| &p.column == f.name()) && !f.is_nullable() {
            StructField::new(f.name(), f.data_type().clone(), true)
        } else {
            f.clone()
        }
    };
    StructType::try_new(columns.fields().map(nullable).chain(derived)).map_err(|e| other(&e))
}

/// Creates the table in `folder`, empty, with the round's `columns`: true, or false when
/// another writer created it first (then it is loaded, to be planned again).
pub(super) async fn create(
    store: &TableStore,
    log: &mut Option<Log>,
    folder: &str,
    stream: &str,
    columns: &StructType,
    options: &crate::config::TableOptions,
) -> Result<bool, TableError> {
    let error = |e: &dyn std::fmt::Display| TableError::new(folder, e.to_string());
    #[cfg_attr(not(feature = "iceberg"), allow(clippy::infallible_destructuring_match))]
    let table = match log.as_mut().expect("planned") {
        Log::Delta(d) => d,
        #[cfg(feature = "iceberg")]
        Log::Iceberg(t) => return t.create(store, stream, columns).await.map_err(|e| error(&e)),
    };
    #[cfg(not(feature = "iceberg"))]
    let _ = store;
    let created = CreateBuilder::new()
        .with_log_store(table.log_store())
        .with_columns(columns.fields().cloned())
        .with_partition_columns(options.partitions.iter().map(|p| p.column.clone()))
        .with_raise_if_key_not_exists(false)
        .with_configuration([(super::STREAM_PROPERTY, Some(stream.to_string()))])
        .with_configuration_property(TableProperty::CheckpointInterval, Some(options.checkpoint_interval.to_string()))
        .with_save_mode(SaveMode::ErrorIfExists)
        .await;
    match created {
        Ok(t) => {
            **table = t;
            Ok(true)
        }
        Err(e) if table.log_store().is_delta_table_location().await.unwrap_or(false) => {
            tracing::debug!(table = %folder, error = %e, "the table was created meanwhile");
            Ok(false)
        }
        Err(e) => Err(error(&e)),
    }
}
