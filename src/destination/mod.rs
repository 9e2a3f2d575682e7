//! Where finished bytes go. One small trait with a local-folder and (later) an S3
//! implementation; the writer thread drives it and never knows which one it has.

mod local;
#[cfg(feature = "s3")]
mod s3;

pub use local::LocalFolder;
#[cfg(feature = "s3")]
pub use s3::S3Store;
#[cfg(feature = "delta")]
pub use s3::credentials as s3_credentials;

use crossbeam_channel::Sender;

use crate::error::StorageError;
use crate::keys::ObjectKey;

pub use crate::ack::FileId;

/// Facts about an object that the store may record with it.
#[derive(Clone, Debug)]
pub struct ObjectMeta {
    pub content_type: &'static str,
    pub content_encoding: Option<&'static str>,
    /// The key is known only when the file is complete (cursor macros): the store gets the
    /// final key from the [`Completion`] and must not commit to one earlier.
    pub key_at_close: bool,
    /// The object may replace an existing one: `_SUCCESS` markers, which are empty and the same
    /// for every run. Data objects and manifests never do (unless `allow_overwrite`).
    pub overwrite: bool,
}

/// What the pipeline hears back about files.
#[derive(Debug)]
pub enum Event {
    /// The file is durably stored under its final key.
    Durable { id: FileId, key: ObjectKey, bytes: u64, crc32: u32 },
    /// A `hard_delete` is done: `keys` under `root` are gone.
    Deleted { id: FileId, stream: String, root: String, keys: Vec<ObjectKey> },
    /// Writing failed for good; the run must stop.
    Failed(StorageError),
}

/// Reports the end of one object's upload, from whichever thread or task finishes it.
pub struct Completion {
    pub id: FileId,
    /// The object's final key.
    pub key: ObjectKey,
    /// CRC32 of the object's bytes as stored, for the manifest.
    crc32: u32,
    events: Sender<Event>,
}

impl Completion {
    pub fn new(id: FileId, key: ObjectKey, crc32: u32, events: Sender<Event>) -> Completion {
        Completion { id, key, crc32, events }
    }

    pub fn done(self, result: Result<u64, StorageError>) {
        let event = match result {
            Ok(bytes) => Event::Durable { id: self.id, key: self.key, bytes, crc32: self.crc32 },
            Err(e) => Event::Failed(e),
        };
        // The pipeline may already be gone after a fatal error; nothing is left to tell.
        let _ = self.events.send(event);
    }
}

pub trait Storage: Send + Sync {
    /// Starts a new object. Nothing is visible under `key` until the sink finishes.
    fn create(&self, key: &ObjectKey, meta: &ObjectMeta) -> Result<Box<dyn ObjectSink>, StorageError>;
    /// Human-readable description for logs (never contains secrets).
    fn describe(&self) -> String;
    /// Keys of the objects whose keys start with `prefix` (for `hard_delete`).
    fn list(&self, _prefix: &str) -> Result<Vec<ObjectKey>, StorageError> {
        Ok(Vec::new())
    }
    /// Deletes objects (for `hard_delete`); a key that is already gone is not an error.
    fn delete(&self, _keys: &[ObjectKey]) -> Result<(), StorageError> {
        Ok(())
    }
    /// Waits, at most `deadline`, for background work (finishing or aborting uploads) before
    /// the process exits.
    fn shutdown(&self, _deadline: std::time::Duration) {}
}

pub trait ObjectSink: Send {
    /// Appends bytes (already compressed). Large writes are expected, not per-record ones.
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError>;
    /// Makes the object durable under its key and reports through `done`, now or later.
    fn finish(self: Box<Self>, done: Completion);
    /// Discards the object: nothing partial may remain visible.
    fn abort(self: Box<Self>);
}

/// `--dry-run`: accepts every object and forgets it, so a run shows the keys it would write.
pub struct DryRun;

impl Storage for DryRun {
    fn create(&self, _key: &ObjectKey, _meta: &ObjectMeta) -> Result<Box<dyn ObjectSink>, StorageError> {
        Ok(Box::new(DiscardSink(0)))
    }
    fn describe(&self) -> String {
        "dry run (nothing is written)".into()
    }
}

struct DiscardSink(u64);

impl ObjectSink for DiscardSink {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.0 += data.len() as u64;
        Ok(())
    }
    fn finish(self: Box<Self>, done: Completion) {
        done.done(Ok(self.0));
    }
    fn abort(self: Box<Self>) {}
}

impl ObjectMeta {
    /// The HTTP headers of a data object. With `content_encoding: none` (the default) a
    /// compressed object is what its name says: `x.jsonl.gz` is a gzip file to every client;
    /// with `auto` it is sent as the inner format with `Content-Encoding`, which HTTP clients
    /// undo on the fly.
    pub fn for_data(
        encoding: crate::config::settings::ContentEncoding,
        output: &crate::config::Output,
        key_at_close: bool,
    ) -> ObjectMeta {
        use crate::config::Compression;
        use crate::config::settings::ContentEncoding;
        let (content_type, content_encoding) = match (encoding, output.compression) {
            (_, Compression::None) => (output.format.content_type(), None),
            (ContentEncoding::Auto, c) => (output.format.content_type(), c.content_encoding()),
            (ContentEncoding::None, Compression::Gzip { .. }) => ("application/gzip", None),
            (ContentEncoding::None, Compression::Zstd { .. }) => ("application/zstd", None),
        };
        ObjectMeta { content_type, content_encoding, key_at_close, overwrite: false }
    }
}
