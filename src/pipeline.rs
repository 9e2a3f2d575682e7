//! The run: read line -> decode -> validate -> route to the stream's open file -> encode ->
//! (writer thread) compress -> store -> durable event -> release STATE.
//!
//! This thread owns all per-stream state, so the per-record path takes no lock and makes no
//! syscall; it talks to the reader and writer threads only in large blocks and chunks.

/// Stream and partition lookups happen per record: a fast, non-cryptographic hasher.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select, unbounded};
use serde_json::value::RawValue;

use crate::ack::AckTracker;
use crate::config::{Compression, Config, Output};
use crate::destination::{Event, FileId, ObjectMeta, Storage};
use crate::encode::{Encoder, RecordMetadata};
use crate::error::{Error, InputError, InputErrorKind, StorageError};
use crate::keys::{FieldPath, FileContext, RunContext};
use crate::keys::{KeyRegistry, ObjectKey};
use crate::schema::{SchemaOptions, StreamSchema};
use crate::singer::{self, Message};
use crate::writer::{self, Command, Progress};

/// Largest chunk of encoded bytes handed to the writer at once. Large enough that compression
/// runs on big buffers, small enough that many open streams stay within a few MiB each.
const MAX_CHUNK: usize = 512 * 1024;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub records: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Runs the whole pipeline over `input`, printing released STATE values to `state_out`.
/// On error nothing newer than what was already printed is printed, and files not yet
/// complete are discarded.
/// `signals` delivers SIGTERM / SIGINT / SIGUSR1: the first stops reading, finishes the files
/// already written to and prints the STATE they cover; a second one aborts.
pub fn run(
    config: &Config,
    storage: Arc<dyn Storage>,
    input: Box<dyn Read + Send>,
    state_out: &mut dyn Write,
    signals: &Receiver<i32>,
) -> Result<Summary, Error> {
    let (block_tx, block_rx) = bounded(2);
    let (block_recycle_tx, block_recycle_rx) = bounded(2);
    let reader = singer::spawn_reader(input, block_tx, block_recycle_rx);

    let (command_tx, command_rx) = bounded(8);
    let (event_tx, event_rx) = unbounded();
    let (chunk_recycle_tx, chunk_recycle_rx) = bounded(16);
    tracing::info!(destination = %storage.describe(), run_id = %config.run_id, "starting");
    let writer = writer::spawn(storage.clone(), command_rx, event_tx.clone(), chunk_recycle_tx);

    let mut pipeline = Pipeline::new(config, storage.clone(), command_tx, chunk_recycle_rx, state_out);
    let result = match pipeline.consume(&block_rx, &block_recycle_tx, &event_rx, signals) {
        Ok(()) => pipeline.finish(&event_rx, signals),
        Err(e @ Error::Input(_)) => {
            // Bad input stops the run, but files closed before it are complete: let them land
            // and print the STATE they cover, so a rerun starts as late as honestly possible.
            pipeline.settle(&event_rx);
            Err(e)
        }
        Err(e) => Err(e),
    };
    // Hanging up makes the writer abort whatever is still open (only after an error).
    drop(pipeline.commands.take());
    drop(event_tx);
    let _ = writer.join();
    // After a second signal the user wants out now: in-flight uploads get a short grace.
    let grace = if matches!(result, Err(Error::Interrupted(_))) { 5 } else { 120 };
    storage.shutdown(Duration::from_secs(grace));
    match result {
        Ok(()) if pipeline.stopped_by_signal => Ok(pipeline.summary), // the reader may wait on stdin
        Ok(()) => {
            let _ = reader.join();
            Ok(pipeline.summary)
        }
        // The reader may be blocked reading stdin; it ends when the process does.
        Err(e) => Err(e),
    }
}

struct Stream<'a> {
    name: String,
    /// Key template, format and compression (the defaults or the stream's override).
    output: &'a Output,
    extension: String,
    /// Whether keys read the record, decided once: then each record renders its partition.
    partitioned: bool,
    /// Whether keys hold `{table_version}`: records of each version get their own files.
    versioned: bool,
    schema: Arc<StreamSchema>,
    /// `{stream_run_id}`: one per stream per run.
    run_id: String,
    partition_date_field: Option<FieldPath>,
    /// The stream's first bookmark property: its range per file goes into the manifest.
    cursor_field: Option<FieldPath>,
    /// FNV-1a of the schema text, for the manifest.
    schema_hash: String,
    /// Open files by partition (the record-dependent part of the key; "" when keys do not
    /// depend on records).
    files: HashMap<String, OpenFile>,
}

impl Stream<'_> {
    /// What a key of one of this stream's files is rendered from.
    fn file_context<'s>(
        &'s self,
        record: Option<&'s str>,
        cursor: Option<&'s str>,
        table_version: Option<&'s str>,
    ) -> FileContext<'s> {
        FileContext {
            stream: &self.name,
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

struct OpenFile {
    id: FileId,
    /// The object's key; for keys decided at close (cursor macros), a provisional name.
    key: ObjectKey,
    /// Kept only when the key is decided at close (cursor macros) and may need record fields.
    first_record: Option<String>,
    /// When the file opened, for `_sdc_batched_at` (empty unless add_record_metadata is on).
    batched_at: String,
    cursor: CursorRange,
    /// Record sequence number of the last write, to close the least recently written file.
    last_write: u64,
    encoder: Encoder,
    /// The `version` of the file's records (text), for `{table_version}`.
    table_version: Option<String>,
    records: u64,
    opened_at: Instant,
    /// Uncompressed bytes handed to the writer so far.
    sent: u64,
    progress: Arc<Progress>,
}

impl OpenFile {
    /// The file's size after compression, estimated from what the writer has done so far and
    /// the compression ratio it saw: the writer runs behind, and waiting for it would cost the
    /// pipeline its overlap. Exact without compression.
    fn estimated_size(&self) -> u64 {
        let consumed = self.progress.consumed.load(Ordering::Relaxed);
        // Written, or encoded and held back (a Parquet row group in progress).
        let written = self.progress.written.load(Ordering::Relaxed) + self.progress.held.load(Ordering::Relaxed);
        let behind = self.sent.saturating_sub(consumed) + self.encoder.pending() as u64;
        let ratio = if consumed > 0 { written as f64 / consumed as f64 } else { 1.0 };
        written + (behind as f64 * ratio) as u64
    }
}

struct Pipeline<'a> {
    config: &'a Config,
    run: RunContext,
    schema_options: SchemaOptions,
    chunk_size: usize,
    streams: HashMap<String, Stream<'a>>,
    open_files: usize,
    /// Reused per record for the partition part of the key.
    partition: String,
    /// When the current input block arrived, for `_sdc_received_at`.
    received_at: String,
    commands: Option<Sender<Command>>,
    chunk_recycle: Receiver<Vec<u8>>,
    ack: AckTracker,
    next_file: FileId,
    /// Files closed and handed to storage but not yet reported durable.
    closing: usize,
    stopped_by_signal: bool,
    /// ACTIVATE_VERSION per stream, for the manifest.
    versions: std::collections::BTreeMap<String, String>,
    /// `hard_delete`: (input line, stream, version) of ACTIVATE_VERSIONs whose older versions
    /// are deleted once the files before that line are durable.
    deletions: Vec<(u64, String, String)>,
    /// `hard_delete`: versions each stream activated in this run, with their input lines.
    activations: HashMap<String, Vec<(u64, i128)>>,
    /// `hard_delete`: the input line at which each of this run's data files opened, so a
    /// deletion never reaches a file written after its ACTIVATE_VERSION.
    opened_at: HashMap<ObjectKey, u64>,
    /// Every key of the run: no key is written twice, `{part}` counts per rendered key.
    keys: KeyRegistry,
    storage: Arc<dyn Storage>,
    /// What the manifest will say about files in flight, and about files written.
    in_flight: HashMap<FileId, ManifestEntry>,
    written: Vec<ManifestEntry>,
    line: u64,
    summary: Summary,
    state_out: &'a mut dyn Write,
}

impl<'a> Pipeline<'a> {
    fn new(
        config: &'a Config,
        storage: Arc<dyn Storage>,
        commands: Sender<Command>,
        chunk_recycle: Receiver<Vec<u8>>,
        state_out: &'a mut dyn Write,
    ) -> Pipeline<'a> {
        let chunk_size = match config.limits.max_bytes {
            Some(max) => (max as usize / 4).clamp(64 * 1024, MAX_CHUNK),
            None => MAX_CHUNK,
        };
        Pipeline {
            run: RunContext { now: chrono::Utc::now().with_timezone(&config.timezone), run_id: config.run_id.clone() },
            schema_options: SchemaOptions {
                validate_records: config.validate_records,
                validate_formats: config.validate_formats,
                flatten_max_depth: config.csv.max_depth,
            },
            chunk_size,
            config,
            streams: HashMap::default(),
            open_files: 0,
            partition: String::new(),
            received_at: String::new(),
            commands: Some(commands),
            chunk_recycle,
            ack: AckTracker::default(),
            next_file: 0,
            closing: 0,
            stopped_by_signal: false,
            versions: Default::default(),
            deletions: Vec::new(),
            activations: HashMap::default(),
            opened_at: HashMap::default(),
            keys: KeyRegistry::new(config.allow_overwrite),
            storage,
            in_flight: HashMap::default(),
            written: Vec::new(),
            line: 0,
            summary: Summary::default(),
            state_out,
        }
    }

    /// Reads until end of input, reacting to durable files and file age on the way.
    fn consume(
        &mut self,
        blocks: &Receiver<std::io::Result<singer::Block>>,
        recycle: &Sender<Vec<u8>>,
        events: &Receiver<Event>,
        signals: &Receiver<i32>,
    ) -> Result<(), Error> {
        let ticker = match self.config.limits.max_age {
            Some(age) => crossbeam_channel::tick((age / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))),
            None => crossbeam_channel::never(),
        };
        loop {
            select! {
                recv(blocks) -> block => match block {
                    Ok(Ok(block)) => {
                        if self.config.add_record_metadata {
                            self.received_at = chrono::Utc::now().to_rfc3339();
                        }
                        for line in block.lines() {
                            self.line(line)?;
                        }
                        let _ = recycle.try_send(block.into_bytes());
                        while let Ok(event) = events.try_recv() {
                            self.event(event)?;
                        }
                        self.release_state()?;
                    }
                    Ok(Err(e)) => return Err(Error::Read(e)),
                    Err(_) => return Ok(()), // end of input
                },
                recv(events) -> event => {
                    if let Ok(event) = event {
                        self.event(event)?;
                        self.release_state()?;
                    }
                },
                recv(ticker) -> _ => {
                    self.close_aged()?;
                }
                recv(signals) -> signal => {
                    tracing::warn!(
                        signal = signal.unwrap_or_default(),
                        "stopping: finishing the files already written to; send the signal again to abort"
                    );
                    self.stopped_by_signal = true;
                    return Ok(());
                }
            }
        }
    }

    /// End of input: close every file, wait until all are durable, print the last STATE.
    fn finish(&mut self, events: &Receiver<Event>, signals: &Receiver<i32>) -> Result<(), Error> {
        self.close_where(|_| true)?;
        self.wait_for_files(events, signals)?;
        if self.config.dry_run {
            self.written.sort_by(|a, b| a.key.cmp(&b.key));
            for entry in &self.written {
                writeln!(self.state_out, "{}\t{}", entry.records, entry.key).map_err(Error::Stdout)?;
            }
            return Ok(());
        }
        // Markers and the manifest only once every data object is durable, and before the
        // final STATE: their presence means the run's data is complete.
        if self.config.write_success_marker {
            let mut folders: Vec<String> = self
                .written
                .iter()
                .filter_map(|e| e.key.rsplit_once('/').map(|(f, _)| format!("{f}/_SUCCESS")))
                .collect();
            folders.sort();
            folders.dedup();
            for key in folders {
                let key = self.keys.claim_exact(key)?;
                self.write_extra(key, Vec::new(), "text/plain")?;
            }
        }
        if let Some(template) = &self.config.manifest_key {
            let extension = self.config.output.extension();
            let file = FileContext {
                stream: "",
                extension: &extension,
                format: self.config.output.format.extension(),
                compression: self.config.output.compression.name(),
                stream_run_id: "",
                record: None,
                partition_date_field: None,
                cursor: None,
                table_version: None,
            };
            let key = self.keys.claim(template.render(&self.run, &file))?;
            let manifest = serde_json::json!({
                "run_id": self.run.run_id,
                "started_at": self.run.now.to_rfc3339(),
                "finished_at": chrono::Utc::now().with_timezone(&self.config.timezone).to_rfc3339(),
                "format": self.config.output.format.extension(),
                "compression": self.config.output.compression.name(),
                "variables": self.config.variables,
                "records": self.summary.records,
                "table_versions": self.versions,
                "objects": self.written,
            });
            let body = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
            self.write_extra(key, body, "application/json")?;
        }
        self.wait_for_files(events, signals)?;
        self.release_state()?;
        let s = self.summary;
        tracing::info!(records = s.records, files = s.files, bytes = s.bytes, "finished");
        Ok(())
    }

    fn wait_for_files(&mut self, events: &Receiver<Event>, signals: &Receiver<i32>) -> Result<(), Error> {
        while self.ack.unfinished_files() > 0 {
            select! {
                recv(events) -> event => match event {
                    Ok(event) => self.event(event)?,
                    Err(_) => break,
                },
                recv(signals) -> signal => return Err(Error::Interrupted(signal.unwrap_or_default())),
            }
        }
        Ok(())
    }

    /// Writes a small object that is not data (manifest, `_SUCCESS`). It holds back every STATE
    /// until it is durable.
    fn write_extra(&mut self, key: ObjectKey, body: Vec<u8>, content_type: &'static str) -> Result<(), Error> {
        let id = self.next_file;
        self.next_file += 1;
        self.ack.file_opened(id, 0);
        let meta = ObjectMeta { content_type, content_encoding: None, key_at_close: false };
        let progress = Arc::new(Progress::default());
        send(&self.commands, Command::Open { id, key, meta, compression: Compression::None, parquet: None, progress })?;
        if !body.is_empty() {
            send(&self.commands, Command::Write { id, data: body })?;
        }
        send(&self.commands, Command::Close { id, key: None })?;
        self.closing += 1;
        Ok(())
    }

    /// Waits for the files already closed, then releases the STATE they cover. Open files
    /// are not closed: they hold records from around the failure and will be discarded.
    fn settle(&mut self, events: &Receiver<Event>) {
        while self.closing > 0 {
            let Ok(event) = events.recv() else { return };
            if self.event(event).is_err() {
                return;
            }
        }
        let _ = self.release_state();
    }

    fn input_error(&self, stream: Option<&str>, kind: InputErrorKind) -> Error {
        Error::Input(InputError { line: self.line, stream: stream.map(str::to_string), kind })
    }

    fn line(&mut self, line: Result<&str, usize>) -> Result<(), Error> {
        self.line += 1;
        let mut line = line.map_err(|at| self.input_error(None, InputErrorKind::Utf8(at)))?;
        if self.line == 1 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.as_bytes().first().is_none_or(u8::is_ascii_whitespace) && line.trim().is_empty() {
            return Ok(()); // blank lines carry nothing
        }
        let message = singer::decode(line).map_err(|e| self.input_error(e.stream.as_deref(), e.kind))?;
        match message {
            Message::Record { stream, record, time_extracted, version } => {
                self.record(&stream, record, time_extracted, version)
            }
            Message::Schema { stream, schema, key_properties, bookmark_properties } => {
                self.schema(&stream, schema, key_properties, bookmark_properties)
            }
            Message::State { value } => {
                self.ack.state(self.line, value.get());
                Ok(())
            }
            Message::ActivateVersion { stream, version } => {
                // Recorded in the manifest. In folder mode the version's files are complete
                // now, and with hard_delete older versions go once they are durable.
                let version = version.map(|v| v.get().to_string()).unwrap_or_default();
                tracing::info!(%stream, %version, line = self.line, "ACTIVATE_VERSION");
                if self.config.version_folders {
                    self.close_stream(&stream)?;
                    if self.config.hard_delete && self.streams.contains_key(stream.as_ref()) {
                        match crate::typed::text(&version).parse::<i128>() {
                            Ok(number) => {
                                self.deletions.push((self.line, stream.to_string(), version.clone()));
                                self.activations.entry(stream.to_string()).or_default().push((self.line, number));
                            }
                            Err(_) => {
                                tracing::warn!(%stream, %version, "hard_delete: the version is not a number; nothing deleted")
                            }
                        }
                    }
                }
                self.versions.insert(stream.into_owned(), version);
                Ok(())
            }
            Message::Batch { stream, encoding, manifest } => self.batch(&stream, &encoding, &manifest),
        }
    }

    /// A BATCH message: its files' records are loaded exactly like RECORD messages of the
    /// stream, at the BATCH line's position.
    fn batch(&mut self, stream: &str, encoding: &singer::BatchEncoding, manifest: &[String]) -> Result<(), Error> {
        let bad = |this: &Self, message: String| this.input_error(Some(stream), InputErrorKind::Batch(message));
        if encoding.format != "jsonl" {
            return Err(bad(self, format!("encoding format {:?} is not supported (jsonl is)", encoding.format)));
        }
        let gzip = match encoding.compression.as_deref() {
            None | Some("none") => false,
            Some("gzip") => true,
            Some(other) => return Err(bad(self, format!("compression {other:?} is not supported (gzip, none are)"))),
        };
        for url in manifest {
            let file: Box<dyn std::io::Read> = if let Some(path) = url.strip_prefix("file://") {
                Box::new(std::fs::File::open(path).map_err(|e| bad(self, format!("{url}: {e}")))?)
            } else if let Some((bucket, key)) = url.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
                let body = self.storage.fetch(bucket, key).map_err(|e| bad(self, format!("{url}: {e}")))?;
                Box::new(std::io::Cursor::new(body))
            } else {
                return Err(bad(self, format!("{url}: only file:// and s3://bucket/key batch files are supported")));
            };
            let reader: Box<dyn std::io::Read> =
                if gzip { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { file };
            for (n, line) in std::io::BufRead::lines(std::io::BufReader::new(reader)).enumerate() {
                let line = line.map_err(|e| bad(self, format!("{url}: {e}")))?;
                if line.trim().is_empty() {
                    continue;
                }
                let record: &RawValue = serde_json::from_str(&line)
                    .map_err(|e| bad(self, format!("{url} line {}: malformed JSON: {e}", n + 1)))?;
                self.record(stream, record, None, None)?;
            }
        }
        Ok(())
    }

    fn schema(
        &mut self,
        name: &str,
        schema: &RawValue,
        key_properties: Vec<String>,
        bookmark_properties: Vec<String>,
    ) -> Result<(), Error> {
        if let Some(stream) = self.streams.get(name)
            && *stream.schema.text == *schema.get()
            && stream.schema.key_properties == key_properties
        {
            return Ok(()); // taps resend identical schemas; nothing to recompile
        }
        let compiled = StreamSchema::compile(schema.get(), key_properties, self.schema_options)
            .map_err(|kind| self.input_error(Some(name), kind))?;
        let compiled = Arc::new(compiled);
        let partition_date_field = self
            .config
            .partition_date_field
            .clone()
            .or_else(|| bookmark_properties.first().map(|b| b.split('.').map(str::to_string).collect()));
        let cursor_field = bookmark_properties.first().map(|b| b.split('.').map(str::to_string).collect());
        let schema_hash = format!("{:016x}", crate::keys::fnv1a(schema.get().as_bytes()));
        // Parquet and Avro files carry typed columns: any change of the schema may change a type.
        let columns_changed = self.streams.get(name).is_some_and(|s| {
            s.schema.columns != compiled.columns || (s.output.format.is_binary() && s.schema.text != compiled.text)
        });
        if columns_changed {
            self.close_stream(name)?; // a file has one header / one set of columns
        }
        match self.streams.get_mut(name) {
            Some(stream) => {
                stream.schema = compiled;
                stream.partition_date_field = partition_date_field;
                stream.cursor_field = cursor_field;
                stream.schema_hash = schema_hash;
            }
            None => {
                let output = self.config.output_for(name);
                let stream = Stream {
                    name: name.to_string(),
                    output,
                    extension: output.extension(),
                    partitioned: output.key.is_partitioned(),
                    versioned: output.key.uses_table_version(),
                    schema: compiled,
                    run_id: uuid::Uuid::now_v7().to_string(),
                    partition_date_field,
                    cursor_field,
                    schema_hash,
                    files: HashMap::default(),
                };
                self.streams.insert(name.to_string(), stream);
            }
        }
        Ok(())
    }

    fn record(
        &mut self,
        name: &str,
        record: &RawValue,
        time_extracted: Option<&RawValue>,
        version: Option<&RawValue>,
    ) -> Result<(), Error> {
        let Some(stream) = self.streams.get(name) else {
            return Err(self.input_error(Some(name), InputErrorKind::RecordBeforeSchema));
        };
        let value = match stream.schema.check(record) {
            Ok(value) => value,
            Err(kind) => return Err(self.input_error(Some(name), kind)),
        };
        let mut partition = std::mem::take(&mut self.partition);
        if stream.partitioned {
            stream.output.key.partition(record.get(), stream.partition_date_field.as_ref(), &self.run, &mut partition);
        } else {
            partition.clear(); // (the buffer may hold another stream's partition)
        }
        if stream.versioned {
            partition.push('\u{0}');
            partition.push_str(version.map_or("", RawValue::get));
        }
        if !stream.files.contains_key(partition.as_str()) {
            if self.open_files >= self.config.max_open_files {
                self.close_least_recent()?;
            }
            self.open_file(name, &partition, record, version)?;
        }
        self.summary.records += 1;
        let sequence = self.summary.records;
        let stream = self.streams.get_mut(name).expect("checked above");
        let file = stream.files.get_mut(partition.as_str()).expect("opened above");
        file.last_write = sequence;
        match (&value, &stream.cursor_field) {
            (Some(value), Some(field)) => file.cursor.update(field.iter().try_fold(value, |v, k| v.get(k))),
            // Without validation there is no parsed record; the cursor is read only when the
            // key needs it.
            (None, Some(field)) if file.first_record.is_some() => {
                let cursor = crate::json::find_field(record.get(), field)
                    .and_then(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).ok());
                file.cursor.update(cursor.as_ref());
            }
            _ => {}
        }
        let meta = self.config.add_record_metadata.then(|| RecordMetadata {
            extracted_at: time_extracted.map(RawValue::get),
            received_at: &self.received_at,
            batched_at: &file.batched_at,
            sequence: self.line,
            table_version: version.map(RawValue::get),
        });
        if let Err(message) = file.encoder.encode(record, meta.as_ref()) {
            self.partition = partition;
            return Err(self.input_error(Some(name), InputErrorKind::Encode(message)));
        }
        if let Some(key) = file.encoder.take_unknown_key() {
            tracing::warn!(stream = %name, property = %key, "records have properties that are not in the schema; CSV has no column for them");
        }
        file.records += 1;
        if let Some(batch) = file.encoder.take_batch() {
            file.sent += batch_size(&batch);
            send(&self.commands, Command::Batch { id: file.id, batch })?;
        }
        if file.encoder.pending() >= self.chunk_size {
            let data = file.encoder.take(self.chunk_recycle.try_recv().unwrap_or_default());
            file.sent += data.len() as u64;
            send(&self.commands, Command::Write { id: file.id, data })?;
        }
        let limits = &self.config.limits;
        let full = limits.max_records.is_some_and(|max| file.records >= max)
            || limits.max_bytes.is_some_and(|max| file.estimated_size() >= max);
        if full {
            self.close_file(name, &partition)?;
        }
        self.partition = partition;
        Ok(())
    }

    /// Opens the file of `partition` in stream `name`; `record` is its first record.
    fn open_file(
        &mut self,
        name: &str,
        partition: &str,
        record: &RawValue,
        version: Option<&RawValue>,
    ) -> Result<(), Error> {
        let stream = self.streams.get_mut(name).expect("caller checked");
        let id = self.next_file;
        self.next_file += 1;
        let output = stream.output;
        let table_version = version.map(|v| crate::typed::text(v.get()).into_owned());
        let file_context = stream.file_context(Some(record.get()), None, table_version.as_deref());
        let rendered = output.key.render(&self.run, &file_context);
        let key_at_close = output.key.uses_cursor();
        // A key decided at close is claimed then; until then the store only needs a name for
        // its temporary file.
        let key = if key_at_close {
            match ObjectKey::new(rendered.with_part(0)) {
                Ok(key) => key,
                Err(e) => return Err(self.input_error(Some(name), InputErrorKind::Key(e))),
            }
        } else {
            match self.keys.claim(rendered) {
                Ok(key) => key,
                Err(e) => return Err(self.input_error(Some(name), InputErrorKind::Key(e))),
            }
        };
        if self.config.hard_delete {
            self.opened_at.insert(key.clone(), self.line);
        }
        let progress = Arc::new(Progress::default());
        let metadata = self.config.add_record_metadata;
        let mut encoder =
            match Encoder::new(output.format, name, &stream.schema, self.config, self.chunk_size, metadata) {
                Ok(encoder) => encoder,
                Err(message) => return Err(self.input_error(Some(name), InputErrorKind::Encode(message))),
            };
        let batched_at = if metadata { chrono::Utc::now().to_rfc3339() } else { String::new() };
        self.ack.file_opened(id, self.line);
        tracing::debug!(stream = %name, %key, "opening file");
        let meta = ObjectMeta {
            content_type: output.format.content_type(),
            content_encoding: output.compression.content_encoding(),
            key_at_close,
        };
        let compression = output.compression;
        let parquet = encoder.take_parquet_writer();
        let open = Command::Open { id, key: key.clone(), meta, compression, parquet, progress: progress.clone() };
        send(&self.commands, open)?;
        let cursor = CursorRange::default();
        let file = OpenFile {
            id,
            key,
            first_record: key_at_close.then(|| record.get().to_string()),
            batched_at,
            cursor,
            last_write: 0,
            encoder,
            table_version,
            records: 0,
            opened_at: Instant::now(),
            sent: 0,
            progress,
        };
        stream.files.insert(partition.to_string(), file);
        self.open_files += 1;
        Ok(())
    }

    /// Closes one file: the rest of its bytes go to the writer, which makes it durable and
    /// reports back.
    fn close_file(&mut self, name: &str, partition: &str) -> Result<(), Error> {
        let Some(mut file) = self.streams.get_mut(name).and_then(|s| s.files.remove(partition)) else {
            return Ok(());
        };
        self.open_files -= 1;
        if let Err(message) = file.encoder.finish() {
            return Err(self.input_error(Some(name), InputErrorKind::Encode(message)));
        }
        let (unparseable, first) = file.encoder.unparseable();
        if let Some(first) = first {
            tracing::warn!(stream = %name, values = unparseable, first = %first, "values that do not fit their column were written as null (unparseable_values: null)");
        }
        if let Some(batch) = file.encoder.take_batch() {
            file.sent += batch_size(&batch);
            send(&self.commands, Command::Batch { id: file.id, batch })?;
        }
        let data = file.encoder.take(Vec::new());
        if !data.is_empty() {
            send(&self.commands, Command::Write { id: file.id, data })?;
        }
        let stream = &self.streams[name];
        let mut final_key = None;
        if let Some(first_record) = &file.first_record {
            let cursor = file.cursor.max.as_ref().map(Cursor::to_json);
            let file_context =
                stream.file_context(Some(first_record), cursor.as_deref(), file.table_version.as_deref());
            let rendered = stream.output.key.render(&self.run, &file_context);
            let key = match self.keys.claim(rendered) {
                Ok(key) => key,
                Err(e) => return Err(self.input_error(Some(name), InputErrorKind::Key(e))),
            };
            if self.config.hard_delete {
                self.opened_at.insert(key.clone(), self.line);
            }
            file.key = key.clone();
            final_key = Some(key);
        }
        send(&self.commands, Command::Close { id: file.id, key: final_key })?;
        self.closing += 1;
        tracing::debug!(stream = %name, records = file.records, "closing file");
        self.in_flight.insert(
            file.id,
            ManifestEntry {
                key: file.key.to_string(),
                stream: name.to_string(),
                records: file.records,
                bytes: 0,
                crc32: String::new(),
                min_cursor: file.cursor.min.take().map(Cursor::into_value),
                max_cursor: file.cursor.max.take().map(Cursor::into_value),
                schema_hash: stream.schema_hash.clone(),
                unparseable_values: unparseable,
            },
        );
        Ok(())
    }

    fn close_stream(&mut self, name: &str) -> Result<(), Error> {
        let partitions: Vec<String> =
            self.streams.get(name).map(|s| s.files.keys().cloned().collect()).unwrap_or_default();
        for partition in partitions {
            self.close_file(name, &partition)?;
        }
        Ok(())
    }

    /// Closes every open file `pred` selects.
    fn close_where(&mut self, pred: impl Fn(&OpenFile) -> bool) -> Result<(), Error> {
        let chosen: Vec<(String, String)> = self
            .streams
            .values()
            .flat_map(|s| s.files.iter().filter(|(_, f)| pred(f)).map(|(p, _)| (s.name.clone(), p.clone())))
            .collect();
        for (name, partition) in chosen {
            self.close_file(&name, &partition)?;
        }
        Ok(())
    }

    /// Makes room under `max_open_files` by closing the least recently written file.
    fn close_least_recent(&mut self) -> Result<(), Error> {
        let oldest = self.streams.values().flat_map(|s| s.files.values().map(|f| f.last_write)).min();
        match oldest {
            Some(oldest) => self.close_where(|f| f.last_write == oldest),
            None => Ok(()),
        }
    }

    fn close_aged(&mut self) -> Result<(), Error> {
        match self.config.limits.max_age {
            Some(max_age) => self.close_where(|f| f.opened_at.elapsed() >= max_age),
            None => Ok(()),
        }
    }

    fn event(&mut self, event: Event) -> Result<(), Error> {
        match event {
            Event::Durable { id, key, bytes, crc32 } => {
                tracing::info!(%key, bytes, "file written");
                self.ack.file_durable(id);
                self.closing -= 1;
                if let Some(mut entry) = self.in_flight.remove(&id) {
                    // Counters as the Singer SDK writes them, for Meltano and job runners.
                    let tags = serde_json::json!({"stream": entry.stream});
                    let counters = [
                        ("record_count", entry.records),
                        ("file_count", 1),
                        ("bytes_written", bytes),
                        ("unparseable_values", entry.unparseable_values),
                    ];
                    for (metric, value) in counters.into_iter().filter(|(m, v)| *v > 0 || *m != "unparseable_values") {
                        let metric =
                            serde_json::json!({"type": "counter", "metric": metric, "value": value, "tags": tags});
                        tracing::info!(target: "target_s3::metrics", "METRIC: {metric}");
                    }
                    self.summary.files += 1;
                    self.summary.bytes += bytes;
                    entry.bytes = bytes;
                    entry.crc32 = format!("{crc32:08x}");
                    self.written.push(entry);
                }
                Ok(())
            }
            Event::Failed(e) => Err(Error::Storage(e)),
        }
    }

    fn release_state(&mut self) -> Result<(), Error> {
        if self.config.dry_run {
            return Ok(()); // nothing was written, so nothing may be acknowledged
        }
        while let Some(at) = self.deletions.iter().position(|(line, ..)| self.ack.covered(*line)) {
            let (line, stream, version) = self.deletions.remove(at);
            self.delete_older_versions(&stream, &version, line)?;
        }
        if let Some(state) = self.ack.release() {
            let out = &mut self.state_out;
            writeln!(out, "{state}").and_then(|()| out.flush()).map_err(Error::Stdout)?;
        }
        Ok(())
    }
}

impl Pipeline<'_> {
    /// `hard_delete` for the ACTIVATE_VERSION of `version` on input line `line`, once every
    /// file before that line is durable. Deletes, in the stream's own version folders (the
    /// stream is named before `{table_version}`, checked at start-up), the objects of versions
    /// numbered below the activated one or activated earlier in this run, and never an object
    /// this run opened after the ACTIVATE_VERSION line. Nothing else is touched.
    fn delete_older_versions(&mut self, name: &str, version: &str, line: u64) -> Result<(), Error> {
        let Some(stream) = self.streams.get(name) else { return Ok(()) };
        let Some(root) = stream.output.key.version_root() else { return Ok(()) };
        let Ok(active) = crate::typed::text(version).parse::<i128>() else { return Ok(()) };
        let superseded: Vec<i128> = self
            .activations
            .get(name)
            .map(|a| a.iter().filter(|(at, v)| *at < line && *v != active).map(|(_, v)| *v).collect())
            .unwrap_or_default();
        let root = root.render(&self.run, &stream.file_context(None, None, None)).with_part(0);
        let older: Vec<ObjectKey> = self
            .storage
            .list(&root)
            .map_err(Error::Storage)?
            .into_iter()
            .filter(|key| {
                let rest = &key.as_str()[root.len()..];
                let Some((folder, _)) = rest.split_once('/') else { return false };
                let Ok(v) = folder.parse::<i128>() else { return false };
                let old = v < active || superseded.contains(&v);
                old && v != active && self.opened_at.get(key).is_none_or(|opened| *opened < line)
            })
            .collect();
        self.storage.delete(&older).map_err(Error::Storage)?;
        tracing::info!(stream = %name, version = active, objects = older.len(), under = %root, "hard_delete: deleted older versions");
        Ok(())
    }
}

/// What a batch counts as "sent" for the file-size estimate (the writer counts the same).
#[cfg(feature = "parquet")]
fn batch_size(batch: &crate::writer::Batch) -> u64 {
    batch.get_array_memory_size() as u64
}

#[cfg(not(feature = "parquet"))]
fn batch_size(batch: &crate::writer::Batch) -> u64 {
    match *batch {}
}

fn send(commands: &Option<Sender<Command>>, command: Command) -> Result<(), Error> {
    let stopped = || Error::Storage(StorageError::WriterStopped);
    commands.as_ref().ok_or_else(stopped)?.send(command).map_err(|_| stopped())
}

/// One object of the run, as the manifest lists it.
#[derive(serde::Serialize)]
struct ManifestEntry {
    key: String,
    stream: String,
    records: u64,
    bytes: u64,
    /// CRC32 of the stored bytes, hex.
    crc32: String,
    min_cursor: Option<serde_json::Value>,
    max_cursor: Option<serde_json::Value>,
    schema_hash: String,
    /// Values written as null because they did not fit their column (`unparseable_values: null`).
    #[serde(skip_serializing_if = "is_zero")]
    unparseable_values: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A bookmark value: strings compare as text (ISO date-times sort correctly), numbers as numbers.
enum Cursor {
    Text(String),
    Number(f64, serde_json::Number),
}

impl Cursor {
    fn to_json(&self) -> String {
        match self {
            Cursor::Text(s) => serde_json::Value::String(s.clone()).to_string(),
            Cursor::Number(_, n) => n.to_string(),
        }
    }

    fn into_value(self) -> serde_json::Value {
        match self {
            Cursor::Text(s) => serde_json::Value::String(s),
            Cursor::Number(_, n) => serde_json::Value::Number(n),
        }
    }
}

/// Smallest and largest cursor value seen in one file.
#[derive(Default)]
struct CursorRange {
    min: Option<Cursor>,
    max: Option<Cursor>,
}

impl CursorRange {
    /// Per record: reuses its strings, so it allocates only when a value grows longer.
    fn update(&mut self, value: Option<&serde_json::Value>) {
        use std::cmp::Ordering::{Greater, Less};
        let ordering = |slot: &Option<Cursor>, v: &serde_json::Value| -> Option<std::cmp::Ordering> {
            match (slot, v) {
                (None, _) => None,
                (Some(Cursor::Text(s)), serde_json::Value::String(t)) => Some(t.as_str().cmp(s.as_str())),
                (Some(Cursor::Number(f, _)), serde_json::Value::Number(n)) => n.as_f64()?.partial_cmp(f),
                _ => Some(std::cmp::Ordering::Equal), // mixed types: keep the first
            }
        };
        let Some(v) = value else { return };
        let set = |slot: &mut Option<Cursor>| match (slot.as_mut(), v) {
            (Some(Cursor::Text(s)), serde_json::Value::String(t)) => {
                s.clear();
                s.push_str(t);
            }
            (_, serde_json::Value::String(t)) => *slot = Some(Cursor::Text(t.clone())),
            (_, serde_json::Value::Number(n)) => *slot = n.as_f64().map(|f| Cursor::Number(f, n.clone())),
            _ => {}
        };
        match ordering(&self.min, v) {
            None | Some(Less) => set(&mut self.min),
            _ => {}
        }
        match ordering(&self.max, v) {
            None | Some(Greater) => set(&mut self.max),
            _ => {}
        }
    }
}
