//! BATCH messages (the Singer SDK's batch extension): their files are read on a thread of their
//! own and arrive as blocks of whole lines, like the input itself. A file that never ends (a
//! FIFO, a stalled mount, an S3 endpoint that never answers) therefore never blocks the decode
//! thread, which keeps handling durable files and signals while it waits.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use crossbeam_channel::{Receiver, bounded};

use super::message::BatchEncoding;
use super::reader::Block;

/// Bytes of lines per block handed over.
const BLOCK_SIZE: usize = 1 << 20;

/// Opens `s3://bucket/key` BATCH files (the S3 destination, with its credentials).
pub trait Opener: Send + Sync {
    fn open(&self, bucket: &str, key: &str) -> Result<Box<dyn Read + Send>, String>;
}

/// Lines of one BATCH file.
pub struct BatchBlock {
    pub url: Arc<str>,
    /// The file's line number of the block's first line (from 1).
    pub first_line: u64,
    pub lines: Block,
}

/// Reads the files of one BATCH message in order. Errors name the file (and are the last item);
/// the channel closes when every file was read.
pub fn spawn(
    encoding: BatchEncoding,
    urls: Vec<String>,
    s3: Option<Arc<dyn Opener>>,
    max_line: usize,
) -> Receiver<Result<BatchBlock, String>> {
    let (tx, rx) = bounded(2);
    let spawned = std::thread::Builder::new().name("read-batch".into()).spawn(move || {
        let gzip = match check(&encoding) {
            Ok(gzip) => gzip,
            Err(message) => {
                let _ = tx.send(Err(message));
                return;
            }
        };
        for url in urls {
            let url: Arc<str> = url.into();
            let result = open(&url, s3.as_deref()).and_then(|file| {
                let file: Box<dyn Read> = if gzip { Box::new(flate2::read::MultiGzDecoder::new(file)) } else { file };
                let file = BufReader::with_capacity(256 * 1024, file);
                read_lines(&url, file, max_line, |block| tx.send(Ok(block)).is_ok())
            });
            if let Err(message) = result {
                let _ = tx.send(Err(message));
                return;
            }
        }
    });
    if let Err(e) = spawned {
        let (tx, rx) = bounded(1);
        let _ = tx.send(Err(format!("cannot start the BATCH reader: {e}")));
        return rx;
    }
    rx
}

/// Whether the files are gzip; refuses encodings we cannot read.
fn check(encoding: &BatchEncoding) -> Result<bool, String> {
    if encoding.format != "jsonl" {
        return Err(format!("encoding format {:?} is not supported (jsonl is)", encoding.format));
    }
    match encoding.compression.as_deref() {
        None | Some("none") => Ok(false),
        Some("gzip") => Ok(true),
        Some(other) => Err(format!("compression {other:?} is not supported (gzip, none are)")),
    }
}

fn open(url: &str, s3: Option<&dyn Opener>) -> Result<Box<dyn Read + Send>, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::File::open(path)
            .map(|f| Box::new(f) as Box<dyn Read + Send>)
            .map_err(|e| format!("{url}: {e}"));
    }
    let Some((bucket, key)) = url.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) else {
        return Err(format!("{url}: only file:// and s3://bucket/key batch files are supported"));
    };
    match s3 {
        Some(s3) => s3.open(bucket, key).map_err(|e| format!("{url}: {e}")),
        None => Err(format!(
            "{url}: s3:// batch files are read with the S3 destination's credentials; this run writes to a local folder"
        )),
    }
}

/// Splits a file into blocks of whole lines; `send` returns false when nobody listens anymore.
/// A line over `max_line` bytes (a file that never ends a line, such as `/dev/zero`) is an error
/// naming it, before it takes the machine's memory.
fn read_lines(
    url: &Arc<str>,
    mut file: impl BufRead,
    max_line: usize,
    mut send: impl FnMut(BatchBlock) -> bool,
) -> Result<(), String> {
    let mut buf = Vec::with_capacity(BLOCK_SIZE);
    let (mut first_line, mut lines) = (1u64, 0u64);
    loop {
        let n = read_line(&mut file, &mut buf, max_line).map_err(|e| match e {
            Some(e) => format!("{url}: {e}"),
            None => format!("{url} line {}: longer than max_line_bytes ({max_line} bytes)", first_line + lines),
        })?;
        if n > 0 {
            lines += 1;
        }
        if (n == 0 && !buf.is_empty()) || buf.len() >= BLOCK_SIZE {
            let block = BatchBlock { url: url.clone(), first_line, lines: Block::new(std::mem::take(&mut buf)) };
            if !send(block) {
                return Ok(());
            }
            first_line += lines;
            lines = 0;
            buf.reserve(BLOCK_SIZE);
        }
        if n == 0 {
            return Ok(());
        }
    }
}

/// `read_until(b'\n')` with a bound: `Err(None)` when the line passes `max` bytes.
fn read_line(file: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> Result<usize, Option<std::io::Error>> {
    let start = buf.len();
    loop {
        let available = match file.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Some(e)),
        };
        if available.is_empty() {
            return Ok(buf.len() - start);
        }
        let (n, ends) = match memchr::memchr(b'\n', available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        // Refused before it is held: the buffer never grows past the cap plus one read.
        if buf.len() - start + n > max.saturating_add(1) {
            return Err(None);
        }
        super::grow(buf, n, start.saturating_add(max).saturating_add(BLOCK_SIZE));
        buf.extend_from_slice(&available[..n]);
        file.consume(n);
        if ends {
            return Ok(buf.len() - start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_whole_lines_and_know_their_line_numbers() {
        let text: String = (0..100_000).map(|i| format!("{{\"id\":{i}}}\n")).collect();
        let url: Arc<str> = "file:///x".into();
        let mut got = Vec::new();
        read_lines(&url, std::io::Cursor::new(text.as_bytes()), usize::MAX, |b| {
            got.push((b.first_line, b.lines.lines().map(|l| l.unwrap().to_string()).collect::<Vec<_>>()));
            true
        })
        .unwrap();
        assert!(got.len() > 1, "more than one block");
        let mut expected_line = 1;
        for (first, lines) in &got {
            assert_eq!(*first, expected_line);
            assert_eq!(lines[0], format!("{{\"id\":{}}}", first - 1));
            expected_line += lines.len() as u64;
        }
        assert_eq!(expected_line, 100_001);
    }

    #[test]
    fn a_last_line_without_newline_is_read() {
        let url: Arc<str> = "file:///x".into();
        let mut got = Vec::new();
        read_lines(&url, std::io::Cursor::new(&b"{\"a\":1}\n{\"a\":2}"[..]), usize::MAX, |b| {
            got.extend(b.lines.lines().map(|l| l.unwrap().to_string()));
            true
        })
        .unwrap();
        assert_eq!(got, ["{\"a\":1}", "{\"a\":2}"]);
    }

    #[test]
    fn encodings_and_urls_we_cannot_read_are_named() {
        let enc = |format: &str, compression: Option<&str>| BatchEncoding {
            format: format.into(),
            compression: compression.map(str::to_string),
        };
        assert!(check(&enc("parquet", None)).unwrap_err().contains("parquet"));
        assert!(check(&enc("jsonl", Some("zstd"))).unwrap_err().contains("zstd"));
        assert!(check(&enc("jsonl", Some("gzip"))).unwrap());
        assert!(open("http://x/y", None).err().unwrap().contains("only file://"));
        assert!(open("s3://b/k", None).err().unwrap().contains("local folder"));
        assert!(open("file:///no/such/file", None).err().unwrap().contains("/no/such/file"));
    }

    #[test]
    fn a_file_without_line_ends_stops_at_the_limit() {
        let url: Arc<str> = "file:///dev/zero".into();
        let zeros = std::io::BufReader::new(std::io::repeat(0).take(10 << 20));
        let e = read_lines(&url, zeros, 1 << 20, |_| true).unwrap_err();
        assert!(e.contains("/dev/zero line 1") && e.contains("max_line_bytes"), "{e}");
    }
}
