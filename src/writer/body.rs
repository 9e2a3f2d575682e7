//! A file's body on the writer thread: how encoded bytes become stored bytes. Compression (gzip
//! members on libdeflate, see [`super::gzip`]; zstd) or none for the text formats; a typed format's [`PageWriter`] for Parquet
//! and Avro.
//! One trait, so the writer thread never asks which it has.

use std::io::Write;

use super::gzip::{GzipMembers, Members};
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
    /// The compression of `data` as a job for the pool (gzip's members); `Err(data)` when the
    /// body compresses in order only (zstd's one stream) or not at all.
    fn job(&mut self, data: Vec<u8>) -> Result<Members, Vec<u8>> {
        Err(data)
    }
}

/// The body for a file: its typed format's page writer, else its compression. `name` is the
/// object's file name: gzip records it without `.gz` in its header (FNAME), as `gzip` does and
/// as readers such as singer-io's tap-s3-csv require.
pub fn new(compression: Compression, pages: Option<Box<dyn PageWriter>>, name: &str) -> std::io::Result<Box<dyn Body>> {
    if let Some(pages) = pages {
        return Ok(Box::new(Pages(pages)));
    }
    // Compressed bytes collect in a buffer that is passed on whole: each chunk reaches storage
    // in one write.
    let buf = Vec::new;
    Ok(match compression {
        Compression::None => Box::new(Plain),
        Compression::Gzip { level } => {
            let inner = name.strip_suffix(".gz").unwrap_or(name);
            Box::new(Gzip(GzipMembers::new(level, inner)))
        }
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

struct Gzip(GzipMembers);

impl Body for Gzip {
    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.write(data)
    }
    fn take_output(&mut self, spare: Vec<u8>) -> Option<Vec<u8>> {
        Some(std::mem::replace(&mut self.0.out, spare))
    }
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>> {
        self.0.finish()
    }
    fn job(&mut self, data: Vec<u8>) -> Result<Members, Vec<u8>> {
        Ok(self.0.job(data))
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

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// Writes `chunks` through a body and collects what it hands to storage, as the writer does.
    fn stored(mut body: Box<dyn Body>, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            body.write(chunk).unwrap();
            match body.take_output(Vec::new()) {
                None => out.extend_from_slice(chunk),
                Some(ready) => out.extend(ready),
            }
        }
        out.extend(body.finish().unwrap());
        out
    }

    const CHUNKS: [&[u8]; 3] = [b"{\"a\":1}\n", b"{\"a\":2}\n", b"{\"a\":3}\n"];

    #[test]
    fn compressed_bodies_end_as_whole_streams() {
        let plain = stored(new(Compression::None, None, "x.jsonl").unwrap(), &CHUNKS);
        assert_eq!(plain, CHUNKS.concat());
        let gz = stored(new(Compression::Gzip { level: 6 }, None, "a-00000.csv.gz").unwrap(), &CHUNKS);
        // One member per chunk (see `gzip.rs`): read as one stream, as every reader does.
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, CHUNKS.concat());
        let mut first = flate2::read::GzDecoder::new(&gz[..]);
        std::io::copy(&mut first, &mut std::io::sink()).unwrap();
        assert_eq!(first.header().and_then(|h| h.filename()), Some(&b"a-00000.csv"[..]), "FNAME without .gz");
        let zst = stored(new(Compression::Zstd { level: 3 }, None, "x.jsonl.zst").unwrap(), &CHUNKS);
        assert_eq!(zstd::decode_all(&zst[..]).unwrap(), CHUNKS.concat());
    }

    /// A page writer that "encodes" rows of text by joining them.
    struct Joined(Vec<u8>, u64);
    impl PageWriter for Joined {
        fn write(&mut self, rows: RowBatch) -> std::io::Result<()> {
            let text: String = rows.take().ok_or_else(|| std::io::Error::other("rows of another format"))?;
            self.1 += text.len() as u64;
            self.0.extend(text.bytes());
            Ok(())
        }
        fn take_output(&mut self) -> Vec<u8> {
            std::mem::take(&mut self.0)
        }
        fn held(&self) -> u64 {
            self.1
        }
        fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>> {
            Ok(b"<footer>".to_vec())
        }
    }

    #[test]
    fn typed_bodies_take_rows_and_end_with_their_footer() {
        let mut body = new(Compression::Gzip { level: 6 }, Some(Box::new(Joined(Vec::new(), 0))), "x.parquet").unwrap();
        assert!(body.write(b"bytes").is_err(), "a typed body takes rows, not bytes");
        body.write_rows(RowBatch::new(3, "abc".to_string())).unwrap();
        assert_eq!(body.held(), 3);
        assert_eq!(body.take_output(Vec::new()), Some(b"abc".to_vec()));
        assert!(body.write_rows(RowBatch::new(1, 7u8)).is_err(), "rows of another format");
        assert_eq!(body.finish().unwrap(), b"<footer>");
        assert!(new(Compression::None, None, "x").unwrap().write_rows(RowBatch::new(1, 1u8)).is_err());
    }
}
