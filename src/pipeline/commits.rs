//! `table_format: delta`: when the durable data files are committed to their tables, and which.
//! A Delta commit adds whole files, so it may only take files that hold nothing from after the
//! STATE it carries: the commit interval closes the open files at a STATE line, and the ack
//! tracker picks the newest STATE whose files are all durable and closed by it.

use std::collections::HashMap;
use std::sync::Arc;

use super::files::Closed;
use super::router::Router;
use super::{Error, FileId, InputErrorKind, Run};
use crate::config::Config;
use crate::config::settings::IncompatibleSchema;
use crate::table::{CommitError, Tables};

/// Table versions one commit round may move its streams on to before it gives up.
const MAX_MOVES: usize = 16;

/// The run's Delta state.
pub(super) struct Delta {
    pub tables: Tables,
    /// Where each data file was closed (input line), the columns it was written with and its
    /// records' digest,
    /// until it is committed.
    pub closed_at: HashMap<FileId, (u64, Arc<arrow_schema::Schema>, u64)>,
    /// The commit interval passed while records followed the last STATE: close the files at
    /// the next STATE, so they hold nothing from after the STATE they are committed with.
    pub flush_at_state: bool,
    pub records_since_state: bool,
    /// `incompatible_schema: new_table`: each stream's table version and its columns so far.
    pub versions: HashMap<String, super::versions::TableVersion>,
}

impl Delta {
    pub fn open(config: &Config) -> Result<Option<Delta>, Error> {
        if config.table.is_none() || config.dry_run {
            return Ok(None);
        }
        let tables = Tables::open(config)?;
        tables.check_store()?;
        Ok(Some(Delta {
            tables,
            closed_at: HashMap::new(),
            flush_at_state: false,
            records_since_state: false,
            versions: HashMap::new(),
        }))
    }
}

/// Which durable files a Delta commit takes, and when.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Commit {
    /// Once `commit_interval_seconds` passed: the files a waiting STATE covers.
    WhenDue,
    /// Now: the files a waiting STATE covers.
    Covered,
    /// Now: every durable file (end of input).
    All,
}

impl Commit {
    /// The commit at the end of the run. Stopped by a signal, the input was cut anywhere:
    /// only what a STATE covers, so a rerun from the printed STATE adds nothing twice. At end
    /// of input, everything.
    pub fn at_end(stopped_by_signal: bool) -> Commit {
        if stopped_by_signal { Commit::Covered } else { Commit::All }
    }
}

/// A file was closed at input line `line`: remember where, and the columns it was written with.
pub(super) fn file_closed(delta: &mut Option<Delta>, router: &Router<'_>, line: u64, closed: &Closed) {
    if let Some(delta) = delta.as_mut() {
        let schema = Arc::new(router.arrow_schema(&closed.schema));
        delta.closed_at.insert(closed.id, (line, schema, closed.digest));
    }
}

impl Run<'_, '_> {
    /// A data file of a table is durable: it waits for its commit (holding STATE back until
    /// then). Returns false for other objects (dead-letter files, manifests, markers).
    pub(super) fn table_file_durable(
        &mut self,
        id: FileId,
        key: &crate::keys::ObjectKey,
        bytes: u64,
    ) -> Result<bool, Error> {
        let Some(delta) = self.delta.as_mut() else { return Ok(false) };
        let Some(entry) = self.finisher.in_flight(id).filter(|e| !e.rejected) else { return Ok(false) };
        let Some((_, schema, digest)) = delta.closed_at.get(&id) else { return Ok(false) };
        let counted = (entry.records, *digest);
        delta.tables.add(id, key.as_str(), bytes, counted, &entry.stream, schema.clone())?;
        Ok(true)
    }

    /// A SCHEMA arrived: its table folder must be one Delta readers open, its columns must make
    /// a Delta schema (no two names alike but for case) with the partition columns: found at
    /// its line rather than at the commit. With `incompatible_schema: new_table`, columns the
    /// stream's table cannot take move the stream to the next version of its table.
    pub(super) fn check_table_schema(&mut self, stream: &str) -> Result<(), Error> {
        let (Some(delta), Some(schema)) = (self.delta.as_ref(), self.router.schema_of(stream)) else { return Ok(()) };
        let typed = self.router.typed_columns(schema);
        if typed.is_empty() {
            let message = "the stream's schema has no properties: a table needs at least one column (declare the record's fields under `properties`)".to_string();
            return Err(self.input_error(Some(stream), InputErrorKind::SchemaNotTable(message)));
        }
        let columns = crate::table::to_delta(&crate::formats::parquet::arrow_schema(&typed))
            .and_then(|c| crate::table::check_partitions(delta.tables.partitions(), &typed).map(|_| c))
            .map_err(|e| self.input_error(Some(stream), InputErrorKind::SchemaNotTable(e)))?;
        let table = match delta.tables.incompatible_schema() {
            IncompatibleSchema::Fail => None,
            IncompatibleSchema::NewTable => self.table_version(stream, columns.clone())?,
        };
        let delta = self.delta.as_ref().expect("checked above");
        let folder = delta.tables.folder_of(table.as_deref().unwrap_or(stream), &self.run);
        crate::table::check_folder(&folder, stream)
            .map_err(|e| self.input_error(Some(stream), InputErrorKind::SchemaNotTable(e)))?;
        let tables = &mut self.delta.as_mut().expect("checked above").tables;
        tables.check_not_foreign(&folder)?;
        tables.check_owner(&folder, stream)?;
        let field_ids = match tables.prepare(&folder, stream, &columns) {
            Ok(ids) => ids,
            Err(CommitError::Unfit { error, .. }) => {
                return Err(self.input_error(Some(stream), InputErrorKind::SchemaNotTable(error.message)));
            }
            Err(CommitError::Failed(error)) => return Err(error.into()),
        };
        self.router.set_table(stream, table, field_ids);
        Ok(())
    }

    /// Commits the durable files to their tables when it is time: at the end of input
    /// ([`Commit::All`]: everything), or once `commit_interval_seconds` passed, the newest STATE whose
    /// records are all in durable files that hold nothing from after it, with those files. The
    /// commit carries that STATE; the files are acknowledged only after it, so the STATE printed
    /// next is never newer than what the tables hold, and the tables hold no record the STATE
    /// does not cover (a rerun from it adds no duplicates).
    pub(super) fn commit_tables(&mut self, when: Commit) -> Result<(), Error> {
        let Some(Delta { tables, closed_at, .. }) = self.delta.as_mut() else { return Ok(()) };
        if !tables.has_pending() || (when == Commit::WhenDue && !tables.interval_passed()) {
            return Ok(());
        }
        let pending = tables.pending();
        let (state, ids) = if when == Commit::All {
            let mut preview = self.ack.clone();
            for id in &pending {
                preview.file_durable(*id);
            }
            let state = preview.release().or_else(|| self.ack.last_released().map(str::to_string));
            (state, pending)
        } else {
            let durable =
                pending.iter().map(|id| (*id, closed_at.get(id).map_or(u64::MAX, |(line, ..)| *line))).collect();
            match self.ack.commit_point(&durable) {
                Some((state, ids)) => (Some(state), ids),
                None => return Ok(()),
            }
        };
        // A table another writer made meanwhile in a shape these files cannot join (a lost
        // race for a table version): the stream moves on, its files with it, and the round is
        // planned again. Each move takes a higher version, so this ends.
        let mut moves = 0;
        let committed = loop {
            let tables = &mut self.delta.as_mut().expect("checked above").tables;
            match tables.commit(state.as_deref(), &ids) {
                Ok(committed) => break committed,
                Err(CommitError::Unfit { stream, folder, error }) if moves < MAX_MOVES => {
                    moves += 1;
                    self.version_taken(&stream, &folder, error)?;
                }
                Err(e) => return Err(e.into_table_error().into()),
            }
        };
        let delta = self.delta.as_mut().expect("checked above");
        for id in committed {
            delta.closed_at.remove(&id);
            self.ack.file_durable(id);
        }
        Ok(())
    }

    /// Every `commit_interval_seconds` while a STATE waits: the open files are closed (now if
    /// no record came after the newest STATE, else at the next STATE), so their records can be
    /// committed and the STATE printed; they would otherwise wait for their size or age limits.
    /// Not again while closed files are still being written.
    pub(super) fn flush_tables(&mut self) -> Result<(), Error> {
        let Some(delta) = self.delta.as_mut() else { return Ok(()) };
        if !delta.tables.interval_passed() || !self.ack.has_pending_state() || delta.flush_at_state {
            return self.commit_tables(Commit::WhenDue);
        }
        if self.closing == 0 {
            if delta.records_since_state {
                delta.flush_at_state = true;
            } else {
                let closed = self.files.close_all();
                self.drain_closed(closed)?;
            }
        }
        self.commit_tables(Commit::WhenDue)
    }

    /// A STATE was read: close the files for a commit if the interval asked for it.
    pub(super) fn state_arrived(&mut self) -> Result<(), Error> {
        let Some(delta) = self.delta.as_mut() else { return Ok(()) };
        delta.records_since_state = false;
        if std::mem::take(&mut delta.flush_at_state) {
            let closed = self.files.close_all();
            self.drain_closed(closed)?;
        }
        Ok(())
    }
}
