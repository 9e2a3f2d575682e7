//! `incompatible_schema: new_table`: which version of its Delta table a stream's files go to.
//! Version 1 is the stream's own table; version n the table `table_path` renders for the name
//! `<stream>_v<n>`, created by target-s3 for that stream (its `targetS3.stream` property says
//! so, so a real stream named `orders_v2` is never taken for a version of `orders`). At a
//! stream's first SCHEMA of a run the newest version there is is looked up; every SCHEMA the
//! current version cannot take (columns or partitioning) moves the stream to the next one.

use deltalake_core::kernel::StructType;

use super::{Error, InputErrorKind, Run};
use crate::error::TableError;

/// Versions probed past the last one found before the lookup stops: a version that got no
/// records was never created, so numbers can have small gaps.
const PROBE_MISSES: u32 = 3;

/// Where a stream's files go.
pub(super) struct TableVersion {
    /// 1: the stream's own table; n: the table of `<stream>_v<n>`.
    number: u32,
    /// The table's columns with every SCHEMA of this run added; `None` before the first.
    columns: Option<StructType>,
    /// The table's partition columns (for a version not created yet: `partition_by`'s).
    partitioned_by: Vec<String>,
    /// Whether the version's table exists (or records were written to it in this run).
    written: bool,
    /// Records the run had read when the stream moved here: none since, and the version can
    /// be reused rather than leave a gap.
    records_at: u64,
    /// The first version number held by another stream's table: the stream cannot move there.
    taken: Option<u32>,
}

/// The name a stream's table folder is rendered for at version `number`.
pub(super) fn versioned_name(stream: &str, number: u32) -> String {
    if number == 1 { stream.to_string() } else { format!("{stream}_v{number}") }
}

impl Run<'_, '_> {
    /// The versioned name of the table `stream`'s records go to from now on (`None`: its own),
    /// for a SCHEMA with `columns`.
    pub(super) fn table_version(&mut self, stream: &str, columns: StructType) -> Result<Option<String>, Error> {
        let records = self.finisher.totals.records;
        let Some(delta) = self.delta.as_mut() else { return Ok(None) };
        let partitions: Vec<String> = delta.tables.partitions().iter().map(|p| p.column.clone()).collect();
        if !delta.versions.contains_key(stream) {
            let (mut number, mut misses, mut found, mut taken) = (1, 0, None, None);
            while misses < PROBE_MISSES {
                let folder = delta.tables.folder_of(&versioned_name(stream, number), &self.run);
                match delta.tables.table_info(&folder)? {
                    Some(info) if number == 1 || info.stream.as_deref() == Some(stream) => {
                        found = Some((number, info));
                        misses = 0;
                    }
                    Some(_) => {
                        taken = Some(number);
                        break;
                    }
                    None => misses += 1,
                }
                number += 1;
            }
            let version = match found {
                Some((number, info)) => TableVersion {
                    number,
                    columns: Some(info.columns),
                    partitioned_by: info.partition_columns,
                    written: true,
                    records_at: records,
                    taken,
                },
                None => TableVersion {
                    number: 1,
                    columns: None,
                    partitioned_by: partitions.clone(),
                    written: false,
                    records_at: records,
                    taken,
                },
            };
            delta.versions.insert(stream.to_string(), version);
        }
        let version = delta.versions.get_mut(stream).expect("inserted above");
        let fits = match &version.columns {
            None => Ok(Some(columns.clone())),
            Some(_) if version.partitioned_by != partitions => Err(format!(
                "the table is partitioned by {:?}, partition_by gives {partitions:?}",
                version.partitioned_by
            )),
            Some(table) => crate::table::evolve(table, &columns, delta.tables.is_iceberg()),
        };
        match fits {
            Ok(Some(evolved)) => version.columns = Some(evolved),
            Ok(None) => {}
            Err(why) => {
                // A version no record went to was never created: take its number again.
                if version.written || records != version.records_at {
                    version.number += 1;
                }
                if version.taken.is_some_and(|t| t <= version.number) {
                    let name = versioned_name(stream, version.number);
                    let message = format!(
                        "{why}, and the table of its next version, {name:?}, belongs to another stream: rename one of them, or set incompatible_schema to fail"
                    );
                    return Err(self.input_error(Some(stream), InputErrorKind::SchemaNotTable(message)));
                }
                version.columns = Some(columns);
                version.partitioned_by = partitions;
                version.written = false;
                version.records_at = records;
                let folder = delta.tables.folder_of(&versioned_name(stream, version.number), &self.run);
                tracing::warn!(stream, table = %folder, reason = %why, "the stream's schema does not fit its table: writing to a new table");
            }
        }
        Ok((version.number > 1).then(|| versioned_name(stream, version.number)))
    }
}

impl Run<'_, '_> {
    /// A commit round found the table in `folder`, where `stream`'s files wait, made (by another
    /// writer, since the stream's SCHEMA was weighed) in a shape they cannot join: the loser of a
    /// race for a table version. With `incompatible_schema: new_table` the stream moves on to the
    /// next version that is free or that its columns can join, and its waiting files move there.
    pub(super) fn version_taken(&mut self, stream: &str, folder: &str, why: TableError) -> Result<(), Error> {
        let delta = self.delta.as_mut().expect("a table round");
        // Iceberg data files carry the field ids of the table they were written for: moved to
        // another table they would name other columns.
        if delta.tables.is_iceberg() {
            return Err(why.into());
        }
        let Some(version) = delta.versions.get_mut(stream) else { return Err(why.into()) };
        let partitions: Vec<String> = delta.tables.partitions().iter().map(|p| p.column.clone()).collect();
        let current = delta.tables.folder_of(&versioned_name(stream, version.number), &self.run);
        if current == folder {
            let columns = version.columns.clone();
            let mut number = version.number;
            let moved = loop {
                number += 1;
                if number > version.number + PROBE_MISSES * 4 {
                    return Err(why.into());
                }
                let next = delta.tables.folder_of(&versioned_name(stream, number), &self.run);
                let Some(info) = delta.tables.table_info(&next)? else { break (next, columns, false) };
                if info.stream.as_deref() != Some(stream) {
                    let message = format!(
                        "{}, and the table of its next version, {next:?}, belongs to another stream: rename one of them, or set incompatible_schema to fail",
                        why.message
                    );
                    return Err(self.input_error(Some(stream), InputErrorKind::SchemaNotTable(message)));
                }
                let fits = match &columns {
                    _ if info.partition_columns != partitions => None,
                    Some(ours) => {
                        let nested = delta.tables.is_iceberg();
                        crate::table::evolve(&info.columns, ours, nested).ok().map(|e| Some(e.unwrap_or(info.columns)))
                    }
                    None => Some(Some(info.columns)),
                };
                if let Some(columns) = fits {
                    break (next, columns, true);
                }
            };
            let (next, columns, exists) = moved;
            tracing::warn!(stream, from = %folder, to = %next, reason = %why.message, "another writer made the stream's table version in a shape this run's files cannot join: they move to the next version");
            crate::table::check_folder(&next, stream)
                .map_err(|e| self.input_error(Some(stream), InputErrorKind::SchemaNotTable(e)))?;
            let delta = self.delta.as_mut().expect("a table round");
            delta.tables.check_not_foreign(&next)?;
            let version = delta.versions.get_mut(stream).expect("looked up above");
            version.number = number;
            version.columns = columns;
            version.written = exists;
            self.router.set_table(stream, (number > 1).then(|| versioned_name(stream, number)), None);
        }
        let delta = self.delta.as_mut().expect("a table round");
        let to = delta.tables.folder_of(&versioned_name(stream, delta.versions[stream].number), &self.run);
        for (old, new) in delta.tables.relocate(folder, &to)? {
            self.finisher.moved(&old, &new);
        }
        Ok(())
    }
}
