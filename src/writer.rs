//! The writer thread: compresses each file's chunks and hands the bytes to storage. It runs
//! beside the thread that decodes and encodes, so compression (the most expensive step) uses
//! the second core. Commands arrive through a bounded channel: when storage is slow the
//! pipeline waits, and so does the reading of the input.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Sender};
use flate2::write::GzEncoder;

use crate::config::Compression;
use crate::error::StorageError;
use crate::storage::{Completion, Event, FileId, ObjectMeta, ObjectSink, Storage};

/// How far the writer got with one file, read by the pipeline to roll files by their size
/// after compression without waiting for the writer.
#[derive(Default, Debug)]
pub struct Progress {
    /// Uncompressed bytes the writer has compressed.
    pub consumed: AtomicU64,
    /// Bytes passed to storage (after compression).
    pub written: AtomicU64,
}

pub enum Command {
    Open {
        id: FileId,
        key: String,
        meta: ObjectMeta,
        progress: Arc<Progress>,
    },
    /// Uncompressed bytes for a file; the buffer goes back through the recycle channel.
    Write {
        id: FileId,
        data: Vec<u8>,
    },
    Close {
        id: FileId,
    },
}

/// Starts the writer thread. It stops when the command channel closes; files still open then
/// are aborted (the pipeline closes every file it wants kept before it hangs up).
pub fn spawn(
    storage: Arc<dyn Storage>,
    compression: Compression,
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
                    Command::Open { id, key, meta, progress } => storage.create(&key, &meta).map(|sink| {
                        open.insert(id, ObjectWriter::new(key, sink, compression, progress));
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
                    Command::Close { id } => match open.remove(&id) {
                        Some(w) => w.finish(id, events.clone()),
                        None => Ok(()),
                    },
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

/// One open file on the writer thread: its compressor and its sink. The compressor writes
/// into a buffer that is passed on whole, so each chunk reaches storage in one write and the
/// sink stays ours to finish or abort.
struct ObjectWriter {
    key: String,
    sink: Box<dyn ObjectSink>,
    gzip: Option<GzEncoder<Vec<u8>>>,
    progress: Arc<Progress>,
}

impl ObjectWriter {
    fn new(key: String, sink: Box<dyn ObjectSink>, compression: Compression, progress: Arc<Progress>) -> ObjectWriter {
        let gzip = match compression {
            Compression::None => None,
            Compression::Gzip { level } => {
                Some(GzEncoder::new(Vec::with_capacity(512 * 1024), flate2::Compression::new(level)))
            }
        };
        ObjectWriter { key, sink, gzip, progress }
    }

    fn compress_error(&self, source: std::io::Error) -> StorageError {
        StorageError::Compress { key: self.key.clone(), source }
    }

    fn pass_on(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        self.sink.write(bytes)?;
        self.progress.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.compress(data)?;
        self.progress.consumed.fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn compress(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let Some(gz) = self.gzip.as_mut() else {
            return self.pass_on(data);
        };
        if let Err(e) = gz.write_all(data) {
            return Err(self.compress_error(e));
        }
        let compressed = std::mem::take(gz.get_mut());
        let r = self.pass_on(&compressed);
        let mut compressed = compressed;
        compressed.clear();
        if let Some(gz) = self.gzip.as_mut() {
            *gz.get_mut() = compressed;
        }
        r
    }

    fn finish(mut self, id: FileId, events: Sender<Event>) -> Result<(), StorageError> {
        if let Some(gz) = self.gzip.take() {
            let result = match gz.finish() {
                Ok(tail) => self.pass_on(&tail),
                Err(e) => Err(self.compress_error(e)),
            };
            if let Err(e) = result {
                self.abort();
                return Err(e);
            }
        }
        self.sink.finish(Completion::new(id, self.key, events));
        Ok(())
    }

    fn abort(self) {
        self.sink.abort();
    }
}
