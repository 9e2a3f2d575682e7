//! The writer thread: turns each file's encoded chunks into stored bytes through its [`body`]
//! (compression, or a typed format's page encoding) and hands them to storage. It runs beside
//! the thread that decodes and encodes, so compression (the most expensive step) uses the second
//! core. It also runs `hard_delete`'s listing and deletion, so the decode thread never waits on
//! storage. Commands arrive through a bounded channel: when storage is slow the pipeline waits,
//! and so does the reading of the input.

mod body;
/// Public for `examples/parts.rs` (the benchmark's limit: the compressor timed alone).
pub mod gzip;
mod pool;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::config::Compression;
use crate::destination::{Completion, Event, FileId, ObjectMeta, ObjectSink, Storage};
use crate::error::StorageError;
use crate::formats::{PageWriter, RowBatch};
use crate::keys::ObjectKey;
use body::Body;
use pool::{InOrder, Pool};

/// How far the writer got with one file, read by the pipeline to roll files by their size
/// after compression without waiting for the writer.
#[derive(Default, Debug)]
pub struct Progress {
    /// Uncompressed bytes the writer has compressed.
    pub consumed: AtomicU64,
    /// Bytes passed to storage (after compression).
    pub written: AtomicU64,
    /// Encoded bytes held back on this thread (a Parquet row group in progress).
    pub held: AtomicU64,
}

pub enum Command {
    Open {
        id: FileId,
        key: ObjectKey,
        meta: ObjectMeta,
        compression: Compression,
        /// Typed files: the page writer that encodes their rows (`compression` is then unused).
        pages: Option<Box<dyn PageWriter>>,
        progress: Arc<Progress>,
    },
    /// Rows for a typed file (Parquet row batches, Avro blocks).
    Rows { id: FileId, rows: RowBatch },
    /// Uncompressed bytes for a file; the buffer goes back through the recycle channel.
    Write { id: FileId, data: Vec<u8> },
    /// Ends a file; `key` replaces the key given at open (keys with cursor macros).
    Close { id: FileId, key: Option<ObjectKey> },
    /// `hard_delete`: lists `root` and deletes the objects `delete` selects; reported as
    /// [`Event::Deleted`]. Storage I/O, so it runs here and never on the decode thread.
    Delete { id: FileId, stream: String, root: String, delete: Box<dyn Fn(&ObjectKey) -> bool + Send> },
}

/// Starts the writer thread. It stops when the command channel closes; files still open then
/// are aborted (the pipeline closes every file it wants kept before it hangs up).
/// `compressors`: threads compressing gzip members beside it (fewer than 2: none, the writer
/// compresses inline).
pub fn spawn(
    storage: Arc<dyn Storage>,
    commands: Receiver<Command>,
    events: Sender<Event>,
    recycle: Sender<Vec<u8>>,
    compressors: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("compress-write".into())
        .spawn(move || {
            let mut open: HashMap<FileId, ObjectWriter> = HashMap::new();
            // Started with the first gzip chunk: a run without gzip files has no pool threads.
            let mut pool: Option<Pool> = None;
            let mut compressing = InOrder::default();
            let depth = InOrder::depth(compressors);
            let mut failed = false;
            loop {
                // Chunks at the pool reach storage even while the input is idle.
                let command = match compressing.is_empty() {
                    true => commands.recv().ok(),
                    false => match commands.recv_timeout(IDLE) {
                        Ok(command) => Some(command),
                        Err(RecvTimeoutError::Timeout) => {
                            let passed = pass_on_compressed(&mut compressing, 0, &mut open, pool.as_ref(), &recycle);
                            if let Err(e) = passed {
                                fail(e, &mut failed, &mut compressing, &mut open, &events);
                            }
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => None,
                    },
                };
                let Some(command) = command else { break };
                if failed {
                    continue; // drain until the pipeline hangs up, so it never blocks on us
                }
                // A file closes only after its own chunks reached storage (and those queued
                // before them), hard_delete lists only after every chunk did; other commands need
                // not wait for the pool.
                let keep = match &command {
                    Command::Close { id, .. } => Some(compressing.queued_after(*id)),
                    Command::Delete { .. } => Some(0),
                    _ => None,
                };
                let settled = match keep {
                    Some(keep) => pass_on_compressed(&mut compressing, keep, &mut open, pool.as_ref(), &recycle),
                    None => Ok(()),
                };
                let result = settled.and_then(|()| match command {
                    // Debug builds only: the tests prove that a bug here still ends the run with
                    // one error line and exit 1.
                    #[cfg(debug_assertions)]
                    Command::Open { .. }
                        if std::env::var_os("TARGET_S3_DEBUG_PANIC").is_some_and(|v| v == "writer") =>
                    {
                        panic!("injected by TARGET_S3_DEBUG_PANIC")
                    }
                    Command::Open { id, key, meta, compression, pages, progress } => storage
                        .create(&key, &meta)
                        .and_then(|sink| ObjectWriter::new(key, sink, compression, pages, progress))
                        .map(|writer| {
                            open.insert(id, writer);
                        }),
                    Command::Write { id, data } => {
                        let pooled = compressors > 1;
                        let (data, r) = match open.get_mut(&id) {
                            Some(w) if pooled => match w.body().job(data) {
                                Ok(job) => {
                                    let pool = pool.get_or_insert_with(|| Pool::new(compressors));
                                    compressing.submit(pool, id, job.data.len() as u64, job);
                                    (Vec::new(), Ok(()))
                                }
                                Err(data) => {
                                    let r = w.write(&data);
                                    (data, r)
                                }
                            },
                            Some(w) => {
                                let r = w.write(&data);
                                (data, r)
                            }
                            None => (data, Ok(())),
                        };
                        give_back(&recycle, data);
                        r
                    }
                    Command::Rows { id, rows } => match open.get_mut(&id) {
                        Some(w) => w.write_rows(rows),
                        None => Ok(()),
                    },
                    Command::Close { id, key } => match open.remove(&id) {
                        Some(w) => w.finish(id, key, events.clone()),
                        None => Ok(()),
                    },
                    Command::Delete { id, stream, root, delete } => storage.list(&root).and_then(|keys| {
                        let doomed: Vec<ObjectKey> = keys.into_iter().filter(|k| delete(k)).collect();
                        storage.delete(&doomed)?;
                        let _ = events.send(Event::Deleted { id, stream, root, keys: doomed });
                        Ok(())
                    }),
                });
                // What the pool has done goes on now; the writer waits only past `depth` jobs.
                let result = result
                    .and_then(|()| pass_on_compressed(&mut compressing, depth, &mut open, pool.as_ref(), &recycle));
                if let Err(e) = result {
                    fail(e, &mut failed, &mut compressing, &mut open, &events);
                }
            }
            for (_, w) in open.drain() {
                w.abort();
            }
        })
        .expect("spawning the writer thread")
}

/// How long the writer waits for a command before it passes on what the pool still holds.
const IDLE: Duration = Duration::from_millis(20);

/// The writer's first error: every open file aborted, the pipeline told; later commands are
/// drained unanswered.
fn fail(
    e: StorageError,
    failed: &mut bool,
    compressing: &mut InOrder,
    open: &mut HashMap<FileId, ObjectWriter>,
    events: &Sender<Event>,
) {
    *failed = true;
    compressing.clear();
    for (_, w) in open.drain() {
        w.abort();
    }
    let _ = events.send(Event::Failed(e));
}

/// Passes on the pool's finished chunks in the order they were queued, waiting for the oldest
/// while more than `keep` are queued.
fn pass_on_compressed(
    compressing: &mut InOrder,
    keep: usize,
    open: &mut HashMap<FileId, ObjectWriter>,
    pool: Option<&Pool>,
    recycle: &Sender<Vec<u8>>,
) -> Result<(), StorageError> {
    while let Some((id, len, done)) = compressing.next(keep) {
        give_back(recycle, done.data);
        // A file closes only after its chunks are out, and leaves `open` only then (or when
        // everything is aborted, with the queue): a result without its file would be bytes lost.
        let Some(w) = open.get_mut(&id) else {
            let source = std::io::Error::other("compressed bytes for a file already closed (a bug; please report it)");
            return Err(StorageError::Compress { key: format!("file {id}"), source });
        };
        let members = done.members.map_err(|e| w.compress_error(e))?;
        w.pass_on(&members)?;
        w.progress.consumed.fetch_add(len, Ordering::Relaxed);
        if let Some(pool) = pool {
            pool.reuse(members);
        }
    }
    Ok(())
}

/// Hands a chunk's buffer back to the pipeline, emptied.
fn give_back(recycle: &Sender<Vec<u8>>, mut data: Vec<u8>) {
    if data.capacity() > 0 {
        data.clear();
        let _ = recycle.try_send(data);
    }
}

/// One open file on the writer thread: its body (compression or pages) and its sink, which
/// stays ours to finish or abort.
struct ObjectWriter {
    key: ObjectKey,
    sink: Box<dyn ObjectSink>,
    body: Option<Box<dyn Body>>,
    /// The emptied buffer the body collects its next output in (no allocation per chunk).
    spare: Vec<u8>,
    progress: Arc<Progress>,
    crc: crc32fast::Hasher,
}

impl ObjectWriter {
    fn new(
        key: ObjectKey,
        sink: Box<dyn ObjectSink>,
        compression: Compression,
        pages: Option<Box<dyn PageWriter>>,
        progress: Arc<Progress>,
    ) -> Result<ObjectWriter, StorageError> {
        match body::new(compression, pages, key.file_name()) {
            Ok(body) => Ok(ObjectWriter {
                key,
                sink,
                body: Some(body),
                spare: Vec::new(),
                progress,
                crc: crc32fast::Hasher::new(),
            }),
            Err(source) => {
                sink.abort();
                Err(StorageError::Compress { key: key.to_string(), source })
            }
        }
    }

    fn compress_error(&self, source: std::io::Error) -> StorageError {
        StorageError::Compress { key: self.key.to_string(), source }
    }

    fn body(&mut self) -> &mut dyn Body {
        self.body.as_deref_mut().expect("present until finish")
    }

    fn pass_on(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.sink.write(bytes)?;
        self.crc.update(bytes);
        self.progress.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Passes on what the body has ready; `input` when it passes bytes through.
    fn drain(&mut self, input: &[u8]) -> Result<(), StorageError> {
        let spare = std::mem::take(&mut self.spare);
        match self.body().take_output(spare) {
            None => self.pass_on(input),
            Some(mut ready) => {
                let result = if ready.is_empty() { Ok(()) } else { self.pass_on(&ready) };
                ready.clear();
                self.spare = ready;
                result
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        if let Err(e) = self.body().write(data) {
            return Err(self.compress_error(e));
        }
        self.drain(data)?;
        self.progress.consumed.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Rows of a typed file; finished row groups go on to storage.
    fn write_rows(&mut self, rows: RowBatch) -> Result<(), StorageError> {
        let size = rows.size;
        if let Err(e) = self.body().write_rows(rows) {
            return Err(self.compress_error(e));
        }
        let held = self.body().held();
        self.progress.held.store(held, Ordering::Relaxed);
        self.drain(&[])?;
        self.progress.consumed.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    fn finish(mut self, id: FileId, key: Option<ObjectKey>, events: Sender<Event>) -> Result<(), StorageError> {
        let body = self.body.take().expect("present until finish");
        let result = match body.finish() {
            Ok(tail) => self.pass_on(&tail),
            Err(e) => Err(self.compress_error(e)),
        };
        if let Err(e) = result {
            self.abort();
            return Err(e);
        }
        let crc = self.crc.clone().finalize();
        self.sink.finish(Completion::new(id, key.unwrap_or(self.key), crc, events));
        Ok(())
    }

    fn abort(self) {
        self.sink.abort();
    }
}
