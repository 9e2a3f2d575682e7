//! The writer thread: compresses each file's chunks and hands the bytes to storage. It runs
//! beside the thread that decodes and encodes, so compression (the most expensive step) uses
//! the second core. For Parquet, "compression" is arrow-rs's page encoding: the pipeline sends
//! record batches and this thread runs the `ArrowWriter`. Commands arrive through a bounded channel: when storage is slow the
//! pipeline waits, and so does the reading of the input.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};
use flate2::write::GzEncoder;

use crate::config::Compression;
use crate::destination::{Completion, Event, FileId, ObjectMeta, ObjectSink, Storage};
use crate::error::StorageError;
use crate::keys::ObjectKey;

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

/// The Parquet writer of one file, built by the pipeline and run here.
#[cfg(feature = "parquet")]
pub type ParquetWriter = parquet::arrow::ArrowWriter<Vec<u8>>;
#[cfg(not(feature = "parquet"))]
pub enum ParquetWriter {}

/// Rows for a Parquet file.
#[cfg(feature = "parquet")]
pub type Batch = arrow_array::RecordBatch;
#[cfg(not(feature = "parquet"))]
pub enum Batch {}

pub enum Command {
    Open {
        id: FileId,
        key: ObjectKey,
        meta: ObjectMeta,
        compression: Compression,
        /// Parquet files: the writer that encodes their batches (`compression` is then unused).
        parquet: Option<Box<ParquetWriter>>,
        progress: Arc<Progress>,
    },
    /// Rows for a Parquet file.
    Batch { id: FileId, batch: Batch },
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
pub fn spawn(
    storage: Arc<dyn Storage>,
    commands: Receiver<Command>,
    events: Sender<Event>,
    recycle: Sender<Vec<u8>>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("compress-write".into())
        .spawn(move || {
            let mut open: HashMap<FileId, ObjectWriter> = HashMap::new();
            let mut failed = false;
            for command in commands {
                if failed {
                    continue; // drain until the pipeline hangs up, so it never blocks on us
                }
                let result = match command {
                    Command::Open { id, key, meta, compression, parquet, progress } => storage
                        .create(&key, &meta)
                        .and_then(|sink| ObjectWriter::new(key, sink, compression, parquet, progress))
                        .map(|writer| {
                            open.insert(id, writer);
                        }),
                    Command::Write { id, mut data } => {
                        let r = match open.get_mut(&id) {
                            Some(w) => w.write(&data),
                            None => Ok(()),
                        };
                        data.clear();
                        let _ = recycle.try_send(data);
                        r
                    }
                    Command::Batch { id, batch } => match open.get_mut(&id) {
                        Some(w) => w.write_batch(batch),
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
                };
                if let Err(e) = result {
                    failed = true;
                    for (_, w) in open.drain() {
                        w.abort();
                    }
                    let _ = events.send(Event::Failed(e));
                }
            }
            for (_, w) in open.drain() {
                w.abort();
            }
        })
        .expect("spawning the writer thread")
}

/// A compressor writing into a buffer that is passed on whole, so each chunk reaches storage
/// in one write.
enum Compressor {
    None,
    Gzip(GzEncoder<Vec<u8>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    #[cfg_attr(not(feature = "parquet"), allow(dead_code))]
    Parquet(Box<ParquetWriter>),
}

impl Compressor {
    fn new(compression: Compression) -> std::io::Result<Compressor> {
        let buf = || Vec::with_capacity(512 * 1024);
        Ok(match compression {
            Compression::None => Compressor::None,
            Compression::Gzip { level } => Compressor::Gzip(GzEncoder::new(buf(), flate2::Compression::new(level))),
            Compression::Zstd { level } => Compressor::Zstd(zstd::stream::write::Encoder::new(buf(), level)?),
        })
    }

    /// Compresses `data`; the compressed bytes so far are left in the output buffer.
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Compressor::None | Compressor::Parquet(_) => Ok(()),
            Compressor::Gzip(gz) => gz.write_all(data),
            Compressor::Zstd(z) => z.write_all(data),
        }
    }

    fn output(&mut self) -> Option<&mut Vec<u8>> {
        match self {
            Compressor::None => None,
            Compressor::Gzip(gz) => Some(gz.get_mut()),
            Compressor::Zstd(z) => Some(z.get_mut()),
            #[cfg(feature = "parquet")]
            Compressor::Parquet(p) => Some(p.inner_mut()),
            #[cfg(not(feature = "parquet"))]
            Compressor::Parquet(never) => match **never {},
        }
    }

    /// Ends the stream, returning the last compressed bytes.
    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Compressor::None => Ok(Vec::new()),
            Compressor::Gzip(gz) => gz.finish(),
            Compressor::Zstd(z) => z.finish(),
            #[cfg(feature = "parquet")]
            Compressor::Parquet(mut p) => {
                p.finish().map_err(std::io::Error::other)?;
                Ok(std::mem::take(p.inner_mut()))
            }
            #[cfg(not(feature = "parquet"))]
            Compressor::Parquet(never) => match *never {},
        }
    }
}

/// One open file on the writer thread: its compressor and its sink, which stays ours to
/// finish or abort.
struct ObjectWriter {
    key: ObjectKey,
    sink: Box<dyn ObjectSink>,
    compressor: Option<Compressor>,
    progress: Arc<Progress>,
    crc: crc32fast::Hasher,
}

impl ObjectWriter {
    fn new(
        key: ObjectKey,
        sink: Box<dyn ObjectSink>,
        compression: Compression,
        parquet: Option<Box<ParquetWriter>>,
        progress: Arc<Progress>,
    ) -> Result<ObjectWriter, StorageError> {
        let compressor = match parquet {
            Some(writer) => Ok(Compressor::Parquet(writer)),
            None => Compressor::new(compression),
        };
        match compressor {
            Ok(c) => Ok(ObjectWriter { key, sink, compressor: Some(c), progress, crc: crc32fast::Hasher::new() }),
            Err(source) => {
                sink.abort();
                Err(StorageError::Compress { key: key.to_string(), source })
            }
        }
    }

    fn compress_error(&self, source: std::io::Error) -> StorageError {
        StorageError::Compress { key: self.key.to_string(), source }
    }

    fn pass_on(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.sink.write(bytes)?;
        self.crc.update(bytes);
        self.progress.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let compressor = self.compressor.as_mut().expect("present until finish");
        if let Err(e) = compressor.write(data) {
            return Err(self.compress_error(e));
        }
        match compressor.output() {
            None => self.pass_on(data)?,
            Some(out) => {
                let compressed = std::mem::take(out);
                let result = self.pass_on(&compressed);
                let mut compressed = compressed;
                compressed.clear();
                if let Some(out) = self.compressor.as_mut().and_then(Compressor::output) {
                    *out = compressed;
                }
                result?
            }
        }
        self.progress.consumed.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Encodes a batch of a Parquet file; finished row groups go on to storage.
    #[cfg(feature = "parquet")]
    fn write_batch(&mut self, batch: Batch) -> Result<(), StorageError> {
        let Some(Compressor::Parquet(writer)) = self.compressor.as_mut() else { return Ok(()) };
        if let Err(e) = writer.write(&batch) {
            return Err(self.compress_error(std::io::Error::other(e)));
        }
        let held = writer.in_progress_size() as u64;
        let finished = std::mem::take(writer.inner_mut());
        self.progress.held.store(held, Ordering::Relaxed);
        if !finished.is_empty() {
            self.pass_on(&finished)?;
        }
        self.progress.consumed.fetch_add(batch.get_array_memory_size() as u64, Ordering::Relaxed);
        Ok(())
    }

    #[cfg(not(feature = "parquet"))]
    fn write_batch(&mut self, batch: Batch) -> Result<(), StorageError> {
        match batch {}
    }

    fn finish(mut self, id: FileId, key: Option<ObjectKey>, events: Sender<Event>) -> Result<(), StorageError> {
        let compressor = self.compressor.take().expect("present until finish");
        let result = match compressor.finish() {
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
