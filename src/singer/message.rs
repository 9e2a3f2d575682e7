//! Decoding one line into a [`Message`] that borrows from the line: the record stays the tap's
//! raw bytes, the envelope is decoded flat so a missing field is a precise error.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::InputErrorKind;

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
        /// The record's JSON text, as the tap wrote it.
        record: &'a str,
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
            Ok(Message::Record {
                stream,
                record: record.get(),
                time_extracted: env.time_extracted,
                version: env.version,
            })
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
            if crate::json::too_deep(value.get()) {
                return Err(InputErrorKind::TooDeep("STATE value").into());
            }
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

/// A RECORD line as a worker decoded it: where its parts lie in the line, so the decode thread
/// takes the message back without parsing the line again (a parse reads the whole record to
/// find where it ends).
pub struct Located {
    /// The line's length, so a line changed since (a byte-order mark cut) is decoded anew.
    line: usize,
    stream: Place,
    record: (u32, u32),
    time_extracted: Option<(u32, u32)>,
    version: Option<(u32, u32)>,
}

enum Place {
    At((u32, u32)),
    /// A name with escapes, unescaped.
    Owned(Box<str>),
}

impl Located {
    /// Where the parts of `message`, decoded from `line`, lie; `None` for other messages.
    pub fn of(line: &str, message: &Message<'_>) -> Option<Located> {
        let Message::Record { stream, record, time_extracted, version } = message else { return None };
        let u32_len = u32::try_from(line.len()).ok()?;
        let at = |part: &str| {
            let start = part.as_ptr() as usize - line.as_ptr() as usize;
            debug_assert!(start + part.len() <= u32_len as usize);
            (start as u32, (start + part.len()) as u32)
        };
        let stream = match stream {
            Cow::Borrowed(name) => Place::At(at(name)),
            Cow::Owned(name) => Place::Owned(name.as_str().into()),
        };
        Some(Located {
            line: line.len(),
            stream,
            record: at(record),
            time_extracted: time_extracted.map(|v| at(v.get())),
            version: version.map(|v| at(v.get())),
        })
    }

    /// The message again, from the same `line`; `None` if the line is not the one decoded.
    pub fn message<'a>(&'a self, line: &'a str) -> Option<Message<'a>> {
        if line.len() != self.line {
            return None;
        }
        let slice = |(start, end): (u32, u32)| &line[start as usize..end as usize];
        // Short values (a time, a version): read again, which costs little.
        let raw = |place: Option<(u32, u32)>| place.map(|p| serde_json::from_str::<&RawValue>(slice(p))).transpose();
        let stream = match &self.stream {
            Place::At(place) => Cow::Borrowed(slice(*place)),
            Place::Owned(name) => Cow::Borrowed(&**name),
        };
        Some(Message::Record {
            stream,
            record: slice(self.record),
            time_extracted: raw(self.time_extracted).ok()?,
            version: raw(self.version).ok()?,
        })
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
                assert_eq!(record, r#"{"b":1.50,"a":"x"}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    /// What a worker located is what decoding the line gives, part for part.
    #[test]
    fn a_located_record_is_the_decoded_one() {
        for line in [
            r#"{"type":"RECORD","stream":"s","record":{"b":1.50,"a":"x"},"time_extracted":"t","version":7}"#,
            r#"{"version":"v1", "record" : [1, {"a":null}] ,"stream":"s\u0031","type":"RECORD"}"#,
            r#"  {"type":"RECORD","stream":"a\"b","record":"text"}  "#,
        ] {
            let message = decode(line).ok().unwrap();
            let located = Located::of(line, &message).unwrap();
            let again = located.message(line).unwrap();
            assert_eq!(format!("{again:?}"), format!("{message:?}"), "{line}");
            // Another line (a byte-order mark cut from the first) is decoded anew, not misread.
            assert!(located.message(&line[1..]).is_none());
        }
        let state = r#"{"type":"STATE","value":{}}"#;
        assert!(Located::of(state, &decode(state).ok().unwrap()).is_none());
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
}
