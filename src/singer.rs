//! Singer input: a reader thread that hands over large blocks of whole lines, and the decoder of
//! one line into a [`Message`] that borrows from the line (the record stays raw bytes).

use std::borrow::Cow;
use std::io::Read;

use crossbeam_channel::{Receiver, Sender};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::InputErrorKind;

/// Bytes read from the input per block. Large blocks keep the channel hand-off and the read
/// syscall far off the per-record path.
const BLOCK_SIZE: usize = 1 << 20;

/// Reads `input` on its own thread and sends blocks that end at a line boundary (the last block
/// may end without a newline). Used blocks come back through `recycle` so steady state
/// allocates nothing. The channel closes at end of input.
pub fn spawn_reader(
    mut input: Box<dyn Read + Send>,
    blocks: Sender<std::io::Result<Block>>,
    recycle: Receiver<Vec<u8>>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("read-input".into())
        .spawn(move || {
            let mut buf: Vec<u8> = Vec::with_capacity(BLOCK_SIZE);
            loop {
                if buf.capacity() - buf.len() < BLOCK_SIZE / 4 {
                    buf.reserve(BLOCK_SIZE);
                }
                let start = buf.len();
                buf.resize(buf.capacity(), 0);
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
                    continue; // a line longer than what we have: read more
                };
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

/// Whole lines of input. UTF-8 is checked here, on the reader thread, once per block; a block
/// that fails stays bytes so the pipeline can name the offending line.
pub enum Block {
    Text(String),
    Bytes(Vec<u8>),
}

impl Block {
    fn new(bytes: Vec<u8>) -> Block {
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

/// The Singer envelope, decoded flat: every field optional so that a missing one becomes a
/// precise error instead of serde's generic one, and the payloads stay raw.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stream: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    record: Option<&'a RawValue>,
    #[serde(borrow, default)]
    schema: Option<&'a RawValue>,
    #[serde(default)]
    key_properties: Option<Vec<String>>,
    #[serde(default)]
    bookmark_properties: Option<Vec<String>>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    version: Option<&'a RawValue>,
    #[serde(borrow, default)]
    time_extracted: Option<&'a RawValue>,
    /// BATCH: `{"format": "jsonl", "compression": "gzip" | "none"}`.
    #[serde(default)]
    encoding: Option<BatchEncoding>,
    /// BATCH: file URLs holding the records.
    #[serde(default)]
    manifest: Option<Vec<String>>,
}

/// How the files of a BATCH message are encoded (Singer SDK batch extension).
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct BatchEncoding {
    pub format: String,
    #[serde(default)]
    pub compression: Option<String>,
}

#[derive(Debug)]
pub enum Message<'a> {
    Schema {
        stream: Cow<'a, str>,
        schema: &'a RawValue,
        key_properties: Vec<String>,
        bookmark_properties: Vec<String>,
    },
    Record {
        stream: Cow<'a, str>,
        record: &'a RawValue,
        time_extracted: Option<&'a RawValue>,
        version: Option<&'a RawValue>,
    },
    State {
        value: &'a RawValue,
    },
    ActivateVersion {
        stream: Cow<'a, str>,
        version: Option<&'a RawValue>,
    },
    Batch {
        stream: Cow<'a, str>,
        encoding: BatchEncoding,
        manifest: Vec<String>,
    },
}

/// A decode failure, with the stream name when the line got far enough to have one.
pub struct DecodeError {
    pub stream: Option<String>,
    pub kind: InputErrorKind,
}

impl From<InputErrorKind> for DecodeError {
    fn from(kind: InputErrorKind) -> Self {
        DecodeError { stream: None, kind }
    }
}

pub fn decode(line: &str) -> Result<Message<'_>, DecodeError> {
    let env: Envelope<'_> = serde_json::from_str(line).map_err(InputErrorKind::Json)?;
    let kind = env.kind.ok_or(InputErrorKind::NoType)?;
    let with_stream = |stream: &str, kind: InputErrorKind| DecodeError { stream: Some(stream.to_string()), kind };
    match kind.as_ref() {
        "RECORD" => {
            let stream = stream_of("RECORD", env.stream)?;
            let record =
                env.record.ok_or_else(|| with_stream(&stream, InputErrorKind::MissingField("RECORD", "record")))?;
            Ok(Message::Record { stream, record, time_extracted: env.time_extracted, version: env.version })
        }
        "SCHEMA" => {
            let stream = stream_of("SCHEMA", env.stream)?;
            let schema =
                env.schema.ok_or_else(|| with_stream(&stream, InputErrorKind::MissingField("SCHEMA", "schema")))?;
            Ok(Message::Schema {
                stream,
                schema,
                key_properties: env.key_properties.unwrap_or_default(),
                bookmark_properties: env.bookmark_properties.unwrap_or_default(),
            })
        }
        "STATE" => {
            let value = env.value.ok_or(InputErrorKind::MissingField("STATE", "value"))?;
            Ok(Message::State { value })
        }
        "ACTIVATE_VERSION" => {
            Ok(Message::ActivateVersion { stream: stream_of("ACTIVATE_VERSION", env.stream)?, version: env.version })
        }
        "BATCH" => {
            let stream = stream_of("BATCH", env.stream)?;
            let encoding =
                env.encoding.ok_or_else(|| with_stream(&stream, InputErrorKind::MissingField("BATCH", "encoding")))?;
            let manifest =
                env.manifest.ok_or_else(|| with_stream(&stream, InputErrorKind::MissingField("BATCH", "manifest")))?;
            Ok(Message::Batch { stream, encoding, manifest })
        }
        other => Err(InputErrorKind::UnknownType(other.to_string()).into()),
    }
}

fn stream_of<'a>(message: &'static str, stream: Option<Cow<'a, str>>) -> Result<Cow<'a, str>, DecodeError> {
    stream.ok_or(DecodeError { stream: None, kind: InputErrorKind::MissingField(message, "stream") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_stays_raw() {
        let line = r#"{"type":"RECORD","stream":"s","record":{"b":1.50,"a":"x"},"time_extracted":"t"}"#;
        match decode(line).ok().unwrap() {
            Message::Record { stream, record, .. } => {
                assert_eq!(stream, "s");
                assert_eq!(record.get(), r#"{"b":1.50,"a":"x"}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_are_specific() {
        let kind = |l: &str| decode(l).err().unwrap().kind.to_string();
        assert!(kind("{not json").starts_with("malformed JSON"));
        assert_eq!(kind(r#"{"stream":"s"}"#), "message has no \"type\"");
        assert!(kind(r#"{"type":"NOPE"}"#).contains("unknown message type \"NOPE\""));
        assert_eq!(kind(r#"{"type":"RECORD","record":{}}"#), "RECORD message has no \"stream\"");
        let e = decode(r#"{"type":"SCHEMA","stream":"s"}"#).err().unwrap();
        assert_eq!((e.stream.as_deref(), e.kind.to_string().as_str()), (Some("s"), "SCHEMA message has no \"schema\""));
    }

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
        let h = spawn_reader(Box::new(std::io::Cursor::new(text.clone().into_bytes())), tx, rrx);
        let mut all = Vec::new();
        for block in rx {
            let block = block.unwrap().into_bytes();
            assert_eq!(block.last(), Some(&b'\n'));
            all.extend_from_slice(&block);
        }
        h.join().unwrap();
        assert_eq!(all, text.as_bytes());
    }
}
