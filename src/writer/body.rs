//! A file's body on the writer thread: how encoded bytes become stored bytes. Compression (gzip
//! on zlib-rs, zstd) or none for the text formats; a typed format's [`PageWriter`] for Parquet.
//! One trait, so the writer thread never asks which it has.

use std::io::Write;

use flate2::write::GzEncoder;

use crate::config::Compression;
use crate::formats::{PageWriter, RowBatch};

pub trait Body: Send {
    /// Takes encoded bytes; what is ready for storage is taken with [`Body::take_output`].
    fn write(&mut self, data: &[u8]) -> std::io::Result<()>;
    /// The stored bytes ready so far, leaving `spare` (empty) to collect the next ones, so
    /// buffers are reused; `None`: the bytes written pass through unchanged (no compression).
    fn take_output(&mut self, spare: Vec<u8>) -> Option<Vec<u8>>;
    /// Rows of a typed file. Only page writers take them.
    fn write_rows(&mut self, _rows: RowBatch) -> std::io::Result<()> {
        Err(std::io::Error::other("rows for a file that is not of a typed format"))
    }
    /// Bytes encoded and held back (a Parquet row group in progress).
    fn held(&self) -> u64 {
        0
    }
    /// Ends the body, returning its last stored bytes.
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>>;
}

/// The body for a file: its typed format's page writer, else its compression.
pub fn new(compression: Compression, pages: Option<Box<dyn PageWriter>>) -> std::io::Result<Box<dyn Body>> {
    if let Some(pages) = pages {
        return Ok(Box::new(Pages(pages)));
    }
    // Compressed bytes collect in a buffer that is passed on whole: each chunk reaches storage
    // in one write.
    let buf = || Vec::with_capacity(512 * 1024);
    Ok(match compression {
        Compression::None => Box::new(Plain),
        Compression::Gzip { level } => Box::new(Gzip(GzEncoder::new(buf(), flate2::Compression::new(level)))),
        Compression::Zstd { level } => Box::new(Zstd(zstd::stream::write::Encoder::new(buf(), level)?)),
    })
}

struct Plain;

impl Body for Plain {
    fn write(&mut self, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }
    fn take_output(&mut self, _: Vec<u8>) -> Option<Vec<u8>> {
        None
    }
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>> {
        Ok(Vec::new())
    }
}

struct Gzip(GzEncoder<Vec<u8>>);

impl Body for Gzip {
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.write_all(data)
    }
    fn take_output(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        Some(std::mem::replace(self.0.get_mut(), spare))
    }
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>> {
        self.0.finish()
    }
}

struct Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>);

impl Body for Zstd {
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.write_all(data)
    }
    fn take_output(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        Some(std::mem::replace(self.0.get_mut(), spare))
    }
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>> {
        self.0.finish()
    }
}

/// A typed format's pages: finished row groups are the output.
struct Pages(Box<dyn PageWriter>);

impl Body for Pages {
    fn write(&mut self, _: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("bytes for a file of a typed format"))
    }
    fn take_output(&mut self, _: Vec<u8>) -> Option<Vec<u8>> {
        Some(self.0.take_output())
    }
    fn write_rows(&mut self, rows: RowBatch) -> std::io::Result<()> {
        self.0.write(rows)
    }
    fn held(&self) -> u64 {
        self.0.held()
    }
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>> {
        self.0.finish()
    }
}
