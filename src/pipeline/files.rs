//! The open files: one per stream and partition, each with its encoder, its key and its size
//! so far. This room decides when a file rolls (records, bytes after compression, age, the
//! open-file limit and the memory budget), claims every key in the run's registry, and hands
//! bytes to the writer thread in large chunks. It never waits for storage.
//!
//! An open file is cheap until it is big: it holds only its encoded records, and the writer
//! (compressor state, output buffer, temporary file or upload) is started when the file has a
//! chunk to hand over or closes. So a stream can keep hundreds of partitions open, bounded by
//! `max_open_bytes` rather than by a count.

/// Lookups happen per record: a fast, non-cryptographic hasher.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use serde_json::value::RawValue;

use super::cursor::{Cursor, CursorRange};
use super::finish::{Deletion, ManifestEntry};
use super::open_file::OpenFile;
use super::partitions::Partitions;
use super::router::StreamSpec;
use crate::ack::{AckTracker, FileId};
use crate::config::{Compression, Config, Limits};
use crate::destination::ObjectMeta;
use crate::error::{Error, InputErrorKind, StorageError};
use crate::formats::{Encoder, RecordMetadata};
use crate::json::Field;
use crate::keys::{KeyRegistry, ObjectKey, RunContext};
use crate::writer::{Command, Progress};

/// Largest chunk of encoded bytes handed to the writer at once. Large enough that compression
/// runs on big buffers, small enough that many open streams stay within a few MiB each.
const MAX_CHUNK: usize = 512 * 1024;

/// An encoder's first buffer: small, so a small file costs little; it grows to a chunk.
const FIRST_BUFFER: usize = 8 * 1024;

/// Why a file operation stopped the run: a problem with the data (named with its input line
/// by the caller), or the writer being gone.
#[derive(Debug)]
pub enum Fault {
    Input { stream: String, kind: InputErrorKind },
    Fatal(Error),
}

fn input(stream: &str) -> impl FnOnce(InputErrorKind) -> Fault + '_ {
    move |kind| Fault::Input { stream: stream.to_string(), kind }
}

/// A record's context beyond its own text, for `_sdc_*` metadata and `{table_version}`.
pub struct RecordContext<'r> {
    pub line: u64,
    pub time_extracted: Option<&'r RawValue>,
    pub version: Option<&'r RawValue>,
    /// When the input block arrived (`_sdc_received_at`; empty unless add_record_metadata).
    pub received_at: &'r str,
}

/// Whether a file is full: its records or its estimated size reached the limits.
pub fn is_full(limits: &Limits, records: u64, estimated_size: impl FnOnce() -> u64) -> bool {
    limits.max_records.is_some_and(|max| records >= max) || limits.max_bytes.is_some_and(|max| estimated_size() >= max)
}

/// A file that was closed and handed to the writer: what the manifest will say about it.
pub struct Closed {
    pub id: FileId,
    pub entry: ManifestEntry,
    /// The input line at which it opened (hard_delete never reaches files opened after an
    /// ACTIVATE_VERSION).
    pub opened_line: u64,
    /// The schema its records were written with (a Delta commit declares each file's columns).
    #[cfg_attr(not(feature = "delta"), allow(dead_code))]
    pub schema: Arc<crate::schema::StreamSchema>,
    /// Delta: the sum of its records' hashes (seed fixed for every run), for `repeated_round`.
    #[cfg_attr(not(feature = "delta"), allow(dead_code))]
    pub digest: u64,
}
const RECORD_HASH: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x7461_7267_6574_7333);

pub struct FileSet<'a> {
    config: &'a Config,
    run: RunContext,
    chunk_size: usize,
    /// Open files by stream, then partition: lookups by `&str`, no key built per record.
    open: HashMap<String, Partitions<OpenFile<'a>>>,
    count: usize,
    keys: KeyRegistry,
    next_id: FileId,
    commands: Option<Sender<Command>>,
    chunk_recycle: Receiver<Vec<u8>>,
    /// Records written so far (the least-recently-written order).
    sequence: u64,
    closed: Vec<Closed>,
    /// Warnings given once per stream or field.
    notices: super::notices::Notices,
    /// Memory the open files hold together (see [`OpenFile::memory`]).
    memory: u64,
    /// Per stream, the compression ratio its last closed file showed: a new file's size is
    /// estimated with it until the writer has compressed some of the new file.
    ratios: HashMap<String, f64>,
    /// Files closed before their limits because too many were open (`max_open_files`) or they
    /// held too much memory together (`max_open_bytes`).
    pub early_closes: u64,
}

impl<'a> FileSet<'a> {
    pub fn new(
        config: &'a Config,
        run: RunContext,
        commands: Sender<Command>,
        chunk_recycle: Receiver<Vec<u8>>,
    ) -> FileSet<'a> {
        let chunk_size = match config.limits.max_bytes {
            Some(max) => (max as usize / 4).clamp(64 * 1024, MAX_CHUNK),
            None => MAX_CHUNK,
        };
        // Debug builds, for the tests: many chunks per file (gzip: members compressed at once).
        #[cfg(debug_assertions)]
        let chunk_size = crate::config::debug_size("TARGET_S3_DEBUG_CHUNK_BYTES", MAX_CHUNK).unwrap_or(chunk_size);
        FileSet {
            config,
            run,
            chunk_size,
            open: HashMap::default(),
            count: 0,
            keys: KeyRegistry::new(config.allow_overwrite),
            next_id: 0,
            commands: Some(commands),
            chunk_recycle,
            sequence: 0,
            closed: Vec::new(),
            notices: Default::default(),
            memory: 0,
            ratios: HashMap::default(),
            early_closes: 0,
        }
    }

    /// The run's key registry (the manifest and markers claim their keys here too).
    pub fn keys(&mut self) -> &mut KeyRegistry {
        &mut self.keys
    }

    /// Files closed since the last call, for the finisher.
    pub fn take_closed(&mut self) -> std::vec::Drain<'_, Closed> {
        self.closed.drain(..)
    }

    /// Writes one record into its file, opening the file (and closing the least recently
    /// written one past `max_open_files`) or rolling it as the limits say.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        spec: &Arc<StreamSpec<'a>>,
        partition: &str,
        record: &str,
        cursor: Option<&Field>,
        context: &RecordContext<'_>,
        ack: &mut AckTracker,
    ) -> Result<(), Fault> {
        let is_open = self.open.get(spec.group.as_str()).is_some_and(|files| files.contains_key(partition));
        if !is_open {
            if self.count >= self.config.max_open_files {
                self.close_least_recent("max_open_files")?;
            }
            self.open_file(spec, partition, record, context, ack)?;
        }
        self.sequence += 1;
        let sequence = self.sequence;
        let file = self.open.get_mut(spec.group.as_str()).and_then(|f| f.get_mut(partition)).expect("opened above");
        file.last_write = sequence;
        let meta = self.config.add_record_metadata.then(|| RecordMetadata {
            extracted_at: context.time_extracted.map(RawValue::get),
            received_at: context.received_at,
            batched_at: &file.batched_at,
            sequence: context.line,
            table_version: context.version.map(RawValue::get),
        });
        if let Err(message) = file.encoder.encode(record, meta.as_ref()) {
            // Avro undoes the failed record, so the file keeps the ones before (if any); other
            // files may hold part of it and are dropped (no STATE after their first record).
            if !file.encoder.undoes_failed_records() || file.records == 0 {
                self.discard(&spec.group, partition);
            }
            return Err(input(&spec.name)(InputErrorKind::Encode(message)));
        }
        file.records += 1;
        match &spec.cursor_field {
            // Validation read it (for the manifest's cursor range); off, it is read for keys only.
            Some(field) if spec.schema.validator.is_some() => file.cursor.update_found(cursor, record, field),
            Some(field) if file.first_record.is_some() => file.cursor.update_from_text(record, field),
            _ => {}
        }
        if self.config.table.is_some() {
            file.digest = file.digest.wrapping_add(std::hash::BuildHasher::hash_one(&RECORD_HASH, record));
        }
        if matches!(spec.output.format, crate::config::Format::Parquet | crate::config::Format::Avro) {
            // Rows wait in Arrow builders or Avro's block until a batch is full.
            file.unbatched += record.len() as u64;
        }
        if let Some(rows) = file.encoder.take_rows() {
            start(&self.commands, file)?;
            file.unbatched = 0;
            file.sent += rows.size;
            send(&self.commands, Command::Rows { id: file.id, rows })?;
        }
        if file.encoder.pending() >= self.chunk_size {
            start(&self.commands, file)?;
            let data = file.encoder.take(self.chunk_recycle.try_recv().unwrap_or_default());
            file.sent += data.len() as u64;
            send(&self.commands, Command::Write { id: file.id, data })?;
        }
        let memory = file.memory();
        self.memory = self.memory + memory - file.accounted;
        file.accounted = memory;
        if is_full(&self.config.limits, file.records, || file.estimated_size()) {
            self.close(&spec.group, partition)?;
        }
        while self.memory > self.config.max_open_bytes && self.count > 1 {
            self.close_least_recent("max_open_bytes")?;
        }
        Ok(())
    }

    /// Opens the file of `partition` in `spec`'s stream; `record` is its first record.
    fn open_file(
        &mut self,
        spec: &Arc<StreamSpec<'a>>,
        partition: &str,
        record: &str,
        context: &RecordContext<'_>,
        ack: &mut AckTracker,
    ) -> Result<(), Fault> {
        let id = self.next_id;
        self.next_id += 1;
        let output = spec.output;
        let table_version = context.version.map(|v| crate::schema::typed::text(v.get()).into_owned());
        let rendered = output.key.render(&self.run, &spec.file_context(Some(record), None, table_version.as_deref()));
        let key_at_close = output.key.uses_cursor();
        // A key decided at close is claimed then; until then the store only needs a name for
        // its temporary file.
        let key = if key_at_close { ObjectKey::new(rendered.with_part(0)) } else { self.keys.claim(rendered) }
            .map_err(|e| input(&spec.name)(InputErrorKind::Key(e)))?;
        let progress = Arc::new(Progress::default());
        let (metadata, ids) = (self.config.add_record_metadata, spec.field_ids.as_deref());
        let mut encoder =
            Encoder::new(output.format, &spec.name, &spec.schema, self.config, FIRST_BUFFER, metadata, ids)
                .map_err(|e| input(&spec.name)(InputErrorKind::Encode(e)))?;
        let batched_at = if metadata { chrono::Utc::now().to_rfc3339() } else { String::new() };
        ack.file_opened(id, context.line);
        tracing::debug!(stream = %spec.name, %key, "opening file");
        let meta = ObjectMeta::for_data(self.config.content_encoding, output, key_at_close);
        let pages = encoder.take_page_writer();
        let open = Command::Open {
            id,
            key: key.clone(),
            meta,
            compression: output.compression,
            pages,
            progress: progress.clone(),
        };
        let file = OpenFile {
            id,
            spec: spec.clone(),
            key,
            first_record: key_at_close.then(|| record.to_string()),
            batched_at,
            cursor: CursorRange::default(),
            last_write: 0,
            encoder,
            table_version,
            records: 0,
            digest: 0,
            opened_at: Instant::now(),
            opened_line: context.line,
            sent: 0,
            progress,
            pending_open: Some(open),
            unbatched: 0,
            accounted: 0,
            ratio_hint: self.ratios.get(spec.group.as_str()).copied().unwrap_or(1.0),
        };
        self.open.entry(spec.group.clone()).or_default().insert(partition.to_string(), file);
        self.count += 1;
        Ok(())
    }

    /// Closes one file: the rest of its bytes go to the writer, which makes it durable and
    /// reports back.
    fn close(&mut self, group: &str, partition: &str) -> Result<(), Fault> {
        let Some(mut file) = self.open.get_mut(group).and_then(|files| files.remove(partition)) else {
            return Ok(());
        };
        self.memory -= file.accounted;
        if let Some(ratio) = file.ratio() {
            self.ratios.insert(group.to_string(), ratio);
        }
        start(&self.commands, &mut file)?;
        let spec = file.spec.clone();
        let stream = spec.name.as_str();
        self.count -= 1;
        file.encoder.finish().map_err(|e| input(stream)(InputErrorKind::Encode(e)))?;
        let (unparseable, first) = file.encoder.unparseable();
        if let Some(first) = first {
            tracing::warn!(stream, values = unparseable, first = %first, "values that do not fit their column were written as null, counted as unparseable_values (MySQL zero dates always; other values with unparseable_values: null)");
        }
        let lossy = file.encoder.lossy().clone();
        self.notices.lossy(stream, &lossy);
        let dropped = file.encoder.dropped().clone();
        self.notices.dropped(stream, file.spec.output.format.extension(), &dropped);
        if let Some(rows) = file.encoder.take_rows() {
            file.sent += rows.size;
            send(&self.commands, Command::Rows { id: file.id, rows })?;
        }
        let data = file.encoder.take(Vec::new());
        if !data.is_empty() {
            send(&self.commands, Command::Write { id: file.id, data })?;
        }
        let mut final_key = None;
        if let Some(first_record) = &file.first_record {
            let cursor = file.cursor.max.as_ref().map(Cursor::to_json);
            let context = spec.file_context(Some(first_record), cursor.as_deref(), file.table_version.as_deref());
            let key = self
                .keys
                .claim(spec.output.key.render(&self.run, &context))
                .map_err(|e| input(stream)(InputErrorKind::Key(e)))?;
            file.key = key.clone();
            final_key = Some(key);
        }
        send(&self.commands, Command::Close { id: file.id, key: final_key })?;
        tracing::debug!(stream, records = file.records, "closing file");
        self.closed.push(Closed {
            id: file.id,
            opened_line: file.opened_line,
            schema: spec.schema.clone(),
            digest: file.digest,
            entry: ManifestEntry {
                key: file.key,
                stream: stream.to_string(),
                format: spec.output.format.extension(),
                compression: spec.output.compression.name(),
                records: file.records,
                bytes: 0,
                crc32: String::new(),
                min_cursor: file.cursor.min.take().map(Cursor::into_json),
                max_cursor: file.cursor.max.take().map(Cursor::into_json),
                schema_hash: spec.schema_hash.clone(),
                unparseable_values: unparseable,
                lossy_values: lossy.0.iter().map(|(f, n, _)| (f.clone(), *n)).collect(),
                dropped_properties: dropped.count,
                rejected: spec.rejected,
            },
        });
        Ok(())
    }

    /// Closes every open file `pred` selects.
    pub fn close_where(&mut self, pred: impl Fn(&str, &OpenFileView) -> bool) -> Result<(), Fault> {
        let chosen: Vec<(String, String)> = self
            .open
            .iter()
            .flat_map(|(stream, files)| {
                files
                    .iter()
                    .filter(|(_, f)| pred(stream, &OpenFileView { opened_at: f.opened_at, last_write: f.last_write }))
                    .map(|(partition, _)| (stream.clone(), partition.to_string()))
            })
            .collect();
        for (stream, partition) in chosen {
            self.close(&stream, &partition)?;
        }
        Ok(())
    }

    /// Closes a stream's data files (its dead-letter files stay open: their columns never
    /// change).
    pub fn close_stream(&mut self, name: &str) -> Result<(), Fault> {
        self.close_where(|group, _| group == name)
    }

    /// Forgets an open file that cannot be completed (the error that caused it is the run's).
    fn discard(&mut self, group: &str, partition: &str) {
        if let Some(file) = self.open.get_mut(group).and_then(|files| files.remove(partition)) {
            (self.memory, self.count) = (self.memory - file.accounted, self.count - 1);
        }
    }

    pub fn close_all(&mut self) -> Result<(), Fault> {
        self.close_where(|_, _| true)
    }

    /// Closes the files opened at least `max_age` ago.
    pub fn close_aged(&mut self) -> Result<(), Fault> {
        match self.config.limits.max_age {
            Some(max_age) => self.close_where(|_, f| f.opened_at.elapsed() >= max_age),
            None => Ok(()),
        }
    }

    /// Makes room under `max_open_files` or `max_open_bytes` (the `setting`) by closing the
    /// least recently written file, before its own limits: counted, and warned about once.
    fn close_least_recent(&mut self, setting: &'static str) -> Result<(), Fault> {
        let oldest = self.open.values().flat_map(|files| files.values().map(|f| f.last_write)).min();
        let Some(oldest) = oldest else { return Ok(()) };
        if self.early_closes == 0 {
            tracing::warn!(
                setting,
                "closing files early to stay within {setting}: unsorted data (records of many partitions in turn) then makes more, smaller files than the file limits ask for; raise {setting} to keep more partitions open (README: \"Unsorted data\")"
            );
        }
        self.early_closes += 1;
        self.close_where(|_, f| f.last_write == oldest)
    }

    /// Writes a small object that is not data (manifest, `_SUCCESS`); its key is claimed.
    /// `overwrite`: it may replace an existing object (the empty `_SUCCESS` markers).
    pub fn write_extra(
        &mut self,
        key: ObjectKey,
        body: Vec<u8>,
        content_type: &'static str,
        overwrite: bool,
    ) -> Result<FileId, Fault> {
        let id = self.next_id;
        self.next_id += 1;
        let meta = ObjectMeta { content_type, content_encoding: None, key_at_close: false, overwrite };
        let progress = Arc::new(Progress::default());
        send(&self.commands, Command::Open { id, key, meta, compression: Compression::None, pages: None, progress })?;
        if !body.is_empty() {
            send(&self.commands, Command::Write { id, data: body })?;
        }
        send(&self.commands, Command::Close { id, key: None })?;
        Ok(id)
    }

    /// Asks the writer thread to delete, under `root`, the objects `delete` selects (storage
    /// I/O never runs on this thread).
    pub fn request_deletion(&mut self, deletion: Deletion) -> Result<FileId, Fault> {
        let id = self.next_id;
        self.next_id += 1;
        let Deletion { stream, root, delete, .. } = deletion;
        send(&self.commands, Command::Delete { id, stream, root, delete })?;
        Ok(id)
    }

    /// Hangs up on the writer: it aborts whatever is still open (only after an error).
    pub fn hang_up(&mut self) {
        self.commands.take();
    }
}

/// What a close rule may look at.
pub struct OpenFileView {
    pub opened_at: Instant,
    pub last_write: u64,
}

/// Starts a file on the writer thread (its held `Open`), once.
fn start(commands: &Option<Sender<Command>>, file: &mut OpenFile<'_>) -> Result<(), Fault> {
    match file.pending_open.take() {
        Some(open) => send(commands, open),
        None => Ok(()),
    }
}

fn send(commands: &Option<Sender<Command>>, command: Command) -> Result<(), Fault> {
    let stopped = || Fault::Fatal(Error::Storage(StorageError::WriterStopped));
    commands.as_ref().ok_or_else(stopped)?.send(command).map_err(|_| stopped())
}
