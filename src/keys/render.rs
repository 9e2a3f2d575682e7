//! Rendering a parsed template into the key of one file: once per file (never per record),
//! and the record-dependent part (the partition) once per record of a partitioned stream.

use std::fmt::Write;

use chrono::DateTime;
use chrono_tz::Tz;

use super::escape::{fnv1a, push_escaped, push_escaped_ascii, push_escaped_path, push_null};
use super::macros::{FieldPath, Macro, MacroStyle};
use super::template::ValueEscaping;
use super::template::{KeyTemplate, Segment};
use crate::json::{find_field, parse_date_time};

/// Values that are fixed for the whole run.
#[derive(Clone, Debug)]
pub struct RunContext {
    pub now: DateTime<Tz>,
    pub run_id: String,
}

/// Values that change per file.
pub struct FileContext<'a> {
    pub stream: &'a str,
    /// The stream's output: its `extension` (`jsonl.gz`), `format` and `compression` names.
    pub extension: &'a str,
    pub format: &'a str,
    pub compression: &'a str,
    pub stream_run_id: &'a str,
    /// The file's first record, for record macros.
    pub record: Option<&'a str>,
    /// Field giving the partition date, if the stream has one.
    pub partition_date_field: Option<&'a FieldPath>,
    /// The file's largest cursor value as JSON text, once the file is complete.
    pub cursor: Option<&'a str>,
    /// The `version` of the file's records (raw JSON), if they have one.
    pub table_version: Option<&'a str>,
}

/// Stands for `{part}` in a rendered key until the run's [`crate::keys::KeyRegistry`]
/// picks the number: files are counted per rendered key, so two files can only share a key
/// when their templates have neither `{part}` nor `{uuid}`. Rendered values never hold control
/// characters, so the marker cannot come from data.
pub const PART_MARK: char = '\u{1}';

/// A key as rendered, with `{part}` still open (see [`PART_MARK`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RenderedKey(String);

impl RenderedKey {
    /// The key of the file numbered `part` among files with this rendered key.
    pub fn with_part(&self, part: u64) -> String {
        if !self.has_part() {
            return self.0.clone();
        }
        let number = format!("{part:05}");
        self.0.replace(PART_MARK, &number)
    }

    pub fn has_part(&self) -> bool {
        self.0.contains(PART_MARK)
    }

    /// The rendered text as it stands (for keys without `{part}`, the key).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl KeyTemplate {
    /// Renders the record-dependent part of the key into `out` (cleared first): records with
    /// equal partitions share a file. Per record, so it allocates only when `out` must grow.
    pub fn partition(
        &self,
        record: &str,
        partition_date_field: Option<&FieldPath>,
        run: &RunContext,
        out: &mut String,
    ) {
        out.clear();
        for segment in &self.segments {
            if let Segment::Macro { kind: kind @ (Macro::Record(_) | Macro::PartitionDate(_)), format } = segment {
                // The separator goes first, so no value is escaped as if it started a folder:
                // the partition only groups records; keys are rendered in their own context.
                out.push('\u{0}');
                render_record_macro(kind, format.as_deref(), record, partition_date_field, run, self.values, out);
            }
        }
    }

    /// Renders the key of one file, `{part}` left open for the run's key registry. Only called
    /// when a file opens (or closes, for cursor keys), so it may allocate.
    pub fn render(&self, run: &RunContext, file: &FileContext<'_>) -> RenderedKey {
        RenderedKey(self.render_segments(&self.segments, run, file, false))
    }

    /// The shape of this stream's keys below a `{table_version}` folder: the text after the
    /// version with everything that varies between files and runs as a wildcard. `hard_delete`
    /// deletes only objects of this shape, so a folder that merely looks like a version (another
    /// template's `{year}`) or holds another stream's files is never touched.
    pub fn version_shape(&self, run: &RunContext, file: &FileContext<'_>) -> KeyShape {
        KeyShape(self.render_segments(self.after_version(), run, file, true))
    }

    fn render_segments(&self, segments: &[Segment], run: &RunContext, file: &FileContext<'_>, shape: bool) -> String {
        let mut key = String::with_capacity(96);
        for segment in segments {
            let (kind, format) = match segment {
                Segment::Literal(text) => {
                    key.push_str(text);
                    continue;
                }
                Segment::Fixed(value) => {
                    push_escaped(&mut key, value);
                    continue;
                }
                Segment::Macro { kind, format } => (kind, format.as_deref()),
            };
            let t = &run.now;
            if shape && !matches!(kind, Macro::Stream | Macro::Namespace) {
                // As many folders as the macro's format makes (its `/` are literal).
                let folders = match (kind, format) {
                    (Macro::Now | Macro::Record(_) | Macro::Cursor(None), Some(f)) => {
                        let mut sample = String::new();
                        let _ = write!(sample, "{}", t.naive_utc().format(f));
                        sample.matches('/').count()
                    }
                    (Macro::PartitionDate(f) | Macro::Cursor(Some(f)), _) => f.matches('/').count(),
                    _ => 0,
                };
                key.push(SHAPE_ANY);
                for _ in 0..folders {
                    key.push('/');
                    key.push(SHAPE_ANY);
                }
                continue;
            }
            // Writing to a String cannot fail.
            let _ = match kind {
                Macro::Stream => {
                    push_escaped(&mut key, file.stream);
                    Ok(())
                }
                Macro::StreamId => write!(key, "{:016x}", fnv1a(file.stream.as_bytes())),
                Macro::Namespace => {
                    push_escaped(&mut key, file.stream.rsplit_once('-').map(|(ns, _)| ns).unwrap_or(""));
                    Ok(())
                }
                Macro::Year => write!(key, "{}", t.format("%Y")),
                Macro::Month => write!(key, "{}", t.format("%m")),
                Macro::Day => write!(key, "{}", t.format("%d")),
                Macro::Hour => write!(key, "{}", t.format("%H")),
                Macro::Minute => write!(key, "{}", t.format("%M")),
                Macro::Second => write!(key, "{}", t.format("%S")),
                Macro::Date if self.style == MacroStyle::Hotglue => write!(key, "{}", t.format("%Y%m")),
                Macro::Date => write!(key, "{}", t.format("%Y_%m_%d")),
                Macro::FullDate => write!(key, "{}", t.format("%Y%m%d")),
                Macro::IsoDate => write!(key, "{}", t.format("%Y-%m-%d")),
                Macro::DateTime => write!(key, "{}", t.format("%Y_%m_%d_%H_%M_%S")),
                Macro::IsoDateTime => {
                    // `:` and `+` are escaped like any value's (Windows file names, Hadoop paths).
                    let text = if t.timezone() == Tz::UTC {
                        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                    } else {
                        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
                    };
                    push_escaped(&mut key, &text);
                    Ok(())
                }
                Macro::Epoch => write!(key, "{}", t.timestamp()),
                Macro::EpochMs => write!(key, "{}", t.timestamp_millis()),
                Macro::Now => {
                    // The pattern was checked at parse time, so formatting cannot panic.
                    let mut rendered = String::new();
                    match write!(rendered, "{}", t.format(format.unwrap_or("%Y-%m-%d"))) {
                        Ok(()) => push_escaped_path(&mut key, &rendered, push_escaped),
                        Err(_) => push_null(&mut key), // checked at parse time; never panics
                    }
                    Ok(())
                }
                Macro::Part => {
                    key.push(PART_MARK);
                    Ok(())
                }
                Macro::Uuid => write!(key, "{}", uuid::Uuid::new_v4()),
                Macro::RunId => {
                    push_escaped(&mut key, &run.run_id);
                    Ok(())
                }
                Macro::StreamRunId => {
                    push_escaped(&mut key, file.stream_run_id);
                    Ok(())
                }
                Macro::Extension => write!(key, "{}", file.extension),
                Macro::Format => write!(key, "{}", file.format),
                Macro::Compression => write!(key, "{}", file.compression),
                Macro::TableVersion => {
                    push_escaped(&mut key, file.table_version.unwrap_or("none"));
                    Ok(())
                }
                Macro::JobVar(_) => Ok(()), // resolved to a fixed value at parse time
                Macro::Cursor(fixed) => {
                    match file.cursor {
                        Some(raw) => push_value(&mut key, raw, fixed.or(format), ValueEscaping::Hive),
                        None => push_null(&mut key),
                    }
                    Ok(())
                }
                Macro::Record(_) | Macro::PartitionDate(_) => {
                    let record = file.record.unwrap_or("{}");
                    render_record_macro(kind, format, record, file.partition_date_field, run, self.values, &mut key);
                    Ok(())
                }
            };
        }
        key
    }
}

fn folder_matches(pattern: &str, text: &str) -> bool {
    // A wildcard is "one character, then any run": `?*` in glob terms.
    let mut p: Vec<Option<char>> = Vec::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        if c == SHAPE_ANY {
            p.push(Some(SHAPE_ONE));
            p.push(None);
        } else {
            p.push(Some(c));
        }
    }
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        match p.get(pi) {
            Some(Some(c)) if *c == SHAPE_ONE || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            Some(None) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(Option::is_none)
}

/// Any one character, inside [`folder_matches`].
const SHAPE_ONE: char = '\u{3}';

/// Stands for any text of one folder (at least one character, no `/`) in a [`KeyShape`].
const SHAPE_ANY: char = '\u{2}';

/// A key's shape: fixed text with wildcards (see [`KeyTemplate::version_shape`]).
#[derive(Clone, Debug)]
pub struct KeyShape(String);

impl KeyShape {
    /// Whether `text` has this shape. Folder by folder (a wildcard never spans a `/`), each
    /// a glob match (greedy, backtracking only to the last wildcard) where a wildcard is at
    /// least one character: linear in practice, whatever the key.
    pub fn matches(&self, text: &str) -> bool {
        let (mut pattern, mut text) = (self.0.split('/'), text.split('/'));
        loop {
            match (pattern.next(), text.next()) {
                (None, None) => return true,
                (Some(p), Some(t)) if folder_matches(p, t) => {}
                _ => return false,
            }
        }
    }
}

fn render_record_macro(
    kind: &Macro,
    format: Option<&str>,
    record: &str,
    partition_date_field: Option<&FieldPath>,
    run: &RunContext,
    escaping: ValueEscaping,
    out: &mut String,
) {
    match kind {
        Macro::Record(path) => match find_field(record, path) {
            Some(raw) => push_value(out, raw.get(), format, escaping),
            None => push_null(out),
        },
        Macro::PartitionDate(fmt) => match partition_date_field {
            None => {
                let _ = write!(out, "{}", run.now.format(fmt));
            }
            Some(path) => match find_field(record, path) {
                Some(raw) => push_value(out, raw.get(), Some(fmt), escaping),
                None => push_null(out),
            },
        },
        _ => {}
    }
}

/// A JSON number that is an integer, as an `i64`, read exactly in any notation (`1.0`, `1e16`,
/// `12345678901234567e0`), as the typed files write it.
fn canonical_integer(raw: &str) -> Option<i64> {
    if raw.starts_with('"') {
        return None;
    }
    crate::json::int(raw)
}

/// Writes a record value into a key: strings unquoted, dates through `format` (whose `/` make
/// folders on purpose), everything escaped by [`push_escaped`] (or its ASCII form for Delta
/// partition folders).
fn push_value(out: &mut String, raw: &str, format: Option<&str>, escaping: ValueEscaping) {
    let escape: fn(&mut String, &str) = match escaping {
        ValueEscaping::Hive => push_escaped,
        ValueEscaping::HiveAscii => push_escaped_ascii,
    };
    if raw == "null" {
        push_null(out);
        return;
    }
    let text: std::borrow::Cow<'_, str> = if raw.starts_with('"') {
        match serde_json::from_str::<String>(raw) {
            Ok(s) => s.into(),
            Err(_) => raw.into(),
        }
    } else {
        raw.into()
    };
    match format {
        // A Delta partition folder holds the value as the log writes it: an integer written
        // `1.0`, `1e3` or `-0` (integers to JSON Schema) as `1`, `1000`, `0`. A number no
        // 64-bit integer holds is in no integer column (`unparseable_values: null` writes it
        // as null, `fail` refuses the record): its folder is the null partition, never one the
        // log could not name.
        None if escaping == ValueEscaping::HiveAscii => match canonical_integer(raw) {
            Some(n) => {
                let _ = write!(out, "{n}");
            }
            None if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) => push_null(out),
            None => escape(out, &text),
        },
        None => escape(out, &text),
        Some(fmt) => match parse_date_time(&text) {
            Some(dt) => {
                let mut rendered = String::new();
                match write!(rendered, "{}", dt.format(fmt)) {
                    Ok(()) => push_escaped_path(out, &rendered, escape),
                    Err(_) => push_null(out), // checked at parse time; never panics
                }
            }
            None => push_null(out),
        },
    }
}
