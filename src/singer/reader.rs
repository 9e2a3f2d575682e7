//! The input reader: a thread that hands over large blocks of whole lines, UTF-8 checked once
//! per block, so reading never happens on the decode thread and costs no syscall per record.

use std::io::Read;

use crossbeam_channel::{Receiver, Sender};
/// Bytes read from the input per block. Large blocks keep the channel hand-off and the read
/// syscall far off the per-record path.
const BLOCK_SIZE: usize = 1 << 20;

/// Reads `input` on its own thread and sends blocks that end at a line boundary (the last block
/// may end without a newline). Used blocks come back through `recycle` so steady state
/// allocates nothing. The channel closes at end of input.
/// A line longer than `max_line` bytes stops the reading with an error naming it, before it
/// can take the memory of the machine (`max_line_bytes`).
pub fn spawn_reader(
    mut input: Box<dyn Read + Send>,
    blocks: Sender<std::io::Result<Block>>,
    recycle: Receiver<Vec<u8>>,
    max_line: usize,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("read-input".into())
        .spawn(move || {
            let read_size = read_size();
            let mut buf: Vec<u8> = Vec::with_capacity(BLOCK_SIZE);
            // Lines handed over so far, to name a line that is too long.
            let mut lines: u64 = 0;
            loop {
                if buf.capacity() - buf.len() < BLOCK_SIZE / 4 {
                    super::grow(&mut buf, BLOCK_SIZE, max_line.saturating_add(2 * BLOCK_SIZE));
                }
                let start = buf.len();
                // One read block at a time: zeroing the whole capacity would touch every page of
                // a buffer grown for a long line.
                buf.resize(buf.capacity().min(start + read_size), 0);
                let n = match input.read(&mut buf[start..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        buf.truncate(start);
                        continue;
                    }
                    Err(e) => {
                        let _ = blocks.send(Err(e));
                        return;
                    }
                };
                buf.truncate(start + n);
                if n == 0 {
                    if !buf.is_empty() {
                        let _ = blocks.send(Ok(Block::new(buf)));
                    }
                    return;
                }
                // Hand over everything up to the last newline; keep the partial line.
                let Some(last_newline) = memchr::memrchr(b'\n', &buf[start..]).map(|i| start + i) else {
                    if buf.len() > max_line {
                        let message = format!(
                            "input line {} is longer than max_line_bytes ({max_line} bytes); raise the setting if such records are expected",
                            lines + 1
                        );
                        let _ = blocks.send(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message)));
                        return;
                    }
                    continue; // a line longer than what we have: read more
                };
                lines += memchr::memchr_iter(b'\n', &buf[..=last_newline]).count() as u64;
                let mut next = recycle.try_recv().unwrap_or_else(|_| Vec::with_capacity(BLOCK_SIZE));
                next.clear();
                next.extend_from_slice(&buf[last_newline + 1..]);
                buf.truncate(last_newline + 1);
                if blocks.send(Ok(Block::new(std::mem::replace(&mut buf, next)))).is_err() {
                    return; // the pipeline stopped
                }
            }
        })
        .expect("spawning the input thread")
}

/// Bytes read at a time (at most a block). Debug builds read `TARGET_S3_DEBUG_BLOCK_BYTES` if
/// set, for the tests: small inputs then cross many block boundaries.
fn read_size() -> usize {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var("TARGET_S3_DEBUG_BLOCK_BYTES").ok().and_then(|v| v.parse::<usize>().ok()) {
        return n.clamp(1, BLOCK_SIZE);
    }
    BLOCK_SIZE
}

/// Whole lines of input. UTF-8 is checked here, on the reader thread, once per block; a block
/// that fails stays bytes so the pipeline can name the offending line.
pub enum Block {
    Text(String),
    Bytes(Vec<u8>),
}

impl Block {
    pub(super) fn new(bytes: Vec<u8>) -> Block {
        match String::from_utf8(bytes) {
            Ok(text) => Block::Text(text),
            Err(e) => Block::Bytes(e.into_bytes()),
        }
    }

    /// Iterates the lines, without their terminator (`\n` or `\r\n`); a line that is not
    /// UTF-8 comes back as the position of its first bad byte.
    pub fn lines(&self) -> Box<dyn Iterator<Item = Result<&str, usize>> + '_> {
        match self {
            Block::Text(text) => {
                let text = text.strip_suffix('\n').unwrap_or(text);
                Box::new(text.split('\n').map(|l| Ok(l.strip_suffix('\r').unwrap_or(l))))
            }
            Block::Bytes(bytes) => {
                let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
                Box::new(bytes.split(|&b| b == b'\n').map(|l| {
                    let l = l.strip_suffix(b"\r").unwrap_or(l);
                    std::str::from_utf8(l).map_err(|e| e.valid_up_to())
                }))
            }
        }
    }

    /// The buffer, for reuse by the reader.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Block::Text(text) => text.into_bytes(),
            Block::Bytes(bytes) => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_crlf_and_keep_blank() {
        let block = Block::new(b"a\r\n\nb".to_vec());
        assert_eq!(block.lines().collect::<Vec<_>>(), vec![Ok("a"), Ok(""), Ok("b")]);
        let block = Block::new(b"ok\nb\xffd\n".to_vec());
        assert_eq!(block.lines().collect::<Vec<_>>(), vec![Ok("ok"), Err(1)]);
    }

    #[test]
    fn reader_hands_over_whole_lines() {
        let text: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        let (tx, rx) = crossbeam_channel::bounded(2);
        let (_rtx, rrx) = crossbeam_channel::bounded(2);
        let h = spawn_reader(Box::new(std::io::Cursor::new(text.clone().into_bytes())), tx, rrx, usize::MAX);
        let mut all = Vec::new();
        for block in rx {
            let block = block.unwrap().into_bytes();
            assert_eq!(block.last(), Some(&b'\n'));
            all.extend_from_slice(&block);
        }
        h.join().unwrap();
        assert_eq!(all, text.as_bytes());
    }

    #[test]
    fn a_line_longer_than_the_limit_is_named() {
        let text = format!("{{\"a\":1}}\n{{\"b\":2}}\n{}\n", "x".repeat(5 << 20));
        let (tx, rx) = crossbeam_channel::bounded(2);
        let (_rtx, rrx) = crossbeam_channel::bounded(2);
        let h = spawn_reader(Box::new(std::io::Cursor::new(text.into_bytes())), tx, rrx, 1 << 20);
        let mut last = None;
        for block in rx {
            last = Some(block);
        }
        h.join().unwrap();
        let e = last.unwrap().err().unwrap().to_string();
        assert!(e.contains("input line 3") && e.contains("max_line_bytes"), "{e}");
    }
}
