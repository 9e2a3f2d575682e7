//! Object key templates: parsed once at start-up, rendered once per file (never per record).
//!
//! Three spellings of one vocabulary are accepted so patterns pasted from other loaders work:
//! `{name}` / `{name:format}`, `${NAME}` (Hevo, Airbyte) and `{{ name }}` (Improvado), with macro
//! names matched case-insensitively. Values fixed for the run (job variables, user variables)
//! become literals at parse time. Macros that read the record (`{record.FIELD}`, Improvado's
//! partition date) split a stream into one open file per rendered partition.
//! Adding a macro is one entry in [`MACROS`] plus its arm in [`KeyTemplate::render`].

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::error::ConfigError;

/// A record field used in a key: a top-level property, or a dotted path into nested objects.
pub type FieldPath = Vec<String>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Macro {
    Stream,
    StreamId,
    Namespace,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Date,
    FullDate,
    IsoDate,
    DateTime,
    IsoDateTime,
    Epoch,
    EpochMs,
    Now,
    Part,
    Uuid,
    RunId,
    StreamRunId,
    Extension,
    Format,
    Compression,
    /// The RECORD message's `version` (ACTIVATE_VERSION full-table syncs).
    TableVersion,
    /// Improvado's `{{YYYY}}`/`{{MM}}`/`{{DD}}`: the record's partition date.
    PartitionDate(&'static str),
    /// The file's largest cursor value: raw (`{cursor}`), or through a strftime pattern.
    Cursor(Option<&'static str>),
    /// A job variable (`{tenant}`, `{job_id}`, ...) resolved from config or environment.
    JobVar(&'static str),
    Record(FieldPath),
}

/// How a macro may be followed by `:format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FormatSpec {
    None,
    /// A strftime pattern is required (`{now:%Y/%m}`).
    Strftime,
    /// A strftime pattern may follow (`{cursor}` or `{cursor:%Y}`).
    OptionalStrftime,
}

pub struct MacroSpec {
    pub names: &'static [&'static str],
    pub example: &'static str,
    pub description: &'static str,
    kind: Macro,
    format: FormatSpec,
}

const fn m(names: &'static [&'static str], kind: Macro, example: &'static str, description: &'static str) -> MacroSpec {
    MacroSpec { names, example, description, kind, format: FormatSpec::None }
}

/// Job variables: config key of the same name first, then these environment variables.
pub const JOB_VARIABLES: &[(&str, &[&str])] = &[
    ("job_id", &["JOB_ID"]),
    ("flow_id", &["FLOW", "FLOW_ID"]),
    ("tenant", &["TENANT"]),
    ("root_tenant_id", &["ROOT_TENANT_ID"]),
    ("tap", &["TAP"]),
    ("env_id", &["ENV_ID"]),
    ("connection_id", &["CONNECTOR_ID", "CONNECTION_ID"]),
    ("account", &["ACCOUNT"]),
    ("workspace_id", &["WORKSPACE_ID"]),
    ("data_source", &["DATA_SOURCE"]),
];

/// The macro vocabulary. The README's macro table is generated from this list.
pub static MACROS: &[MacroSpec] = &[
    m(
        &["stream", "stream_name", "filename"],
        Macro::Stream,
        "orders",
        "Stream name, escaped for keys (see \"What is safe in a key\": `public/users` becomes `public%2Fusers`, `用户` stays).",
    ),
    m(
        &["stream_id"],
        Macro::StreamId,
        "5c1e4b2a9d0f7e31",
        "Stable id of the stream name (16 hex digits, FNV-1a), the same in every run.",
    ),
    m(
        &["namespace"],
        Macro::Namespace,
        "public",
        "The schema part of a `schema-table` or `db-schema-table` stream name (up to its last `-`); the null value when there is none.",
    ),
    m(&["year"], Macro::Year, "2026", "Load year (one clock per run, in `timezone`)."),
    m(&["month"], Macro::Month, "11", "Load month, 2 digits."),
    m(&["day", "dd_today"], Macro::Day, "22", "Load day of month, 2 digits (Improvado's `{{DD_today}}`)."),
    m(&["hour", "h"], Macro::Hour, "03", "Load hour, 2 digits."),
    m(&["minute", "m"], Macro::Minute, "41", "Load minute, 2 digits."),
    m(&["second", "s"], Macro::Second, "07", "Load second, 2 digits."),
    m(
        &["date"],
        Macro::Date,
        "2026_11_22",
        "Load date as `%Y_%m_%d`; with `macro_style: hotglue`, hotglue's `{date}`: `%Y%m` (`202611`).",
    ),
    m(&["full_date"], Macro::FullDate, "20261122", "Load date as `%Y%m%d` (hotglue)."),
    m(&["iso_date"], Macro::IsoDate, "2026-11-22", "Load date as `%Y-%m-%d`."),
    m(&["date_time", "timestamp"], Macro::DateTime, "2026_11_22_03_41_07", "Load time as `%Y_%m_%d_%H_%M_%S`."),
    m(
        &["iso_date_time"],
        Macro::IsoDateTime,
        "2026-11-22T03%3A41%3A07Z",
        "Load time, ISO 8601 (`Z` or the zone's offset), escaped like a value (`:` is `%3A`).",
    ),
    m(&["epoch"], Macro::Epoch, "1795318867", "Load time in Unix seconds."),
    m(&["epoch_ms"], Macro::EpochMs, "1795318867000", "Load time in Unix milliseconds."),
    MacroSpec {
        names: &["now"],
        example: "2026/11/22",
        description: "Load time in any strftime pattern: `{now:%Y/%m/%d}`.",
        kind: Macro::Now,
        format: FormatSpec::Strftime,
    },
    m(
        &["yyyy"],
        Macro::PartitionDate("%Y"),
        "2026",
        "Partition year: from the record's `partition_date_field` (default: the stream's first bookmark property); the load date when the stream has none. Improvado's `{{YYYY}}`.",
    ),
    m(&["mm"], Macro::PartitionDate("%m"), "11", "Partition month (see `{yyyy}`)."),
    m(&["dd"], Macro::PartitionDate("%d"), "21", "Partition day (see `{yyyy}`)."),
    MacroSpec {
        names: &["cursor"],
        example: "2026-11-21T18%3A04%3A00Z",
        description: "The file's largest cursor value (the stream's first bookmark property), escaped; `{cursor:FORMAT}` formats it as a date. A key with cursor macros is decided when its file closes.",
        kind: Macro::Cursor(None),
        format: FormatSpec::OptionalStrftime,
    },
    m(&["cursor_year"], Macro::Cursor(Some("%Y")), "2026", "Year of the file's largest cursor value."),
    m(&["cursor_month"], Macro::Cursor(Some("%m")), "11", "Month of the file's largest cursor value."),
    m(&["cursor_day"], Macro::Cursor(Some("%d")), "21", "Day of the file's largest cursor value."),
    m(
        &["cursor_date_time"],
        Macro::Cursor(Some("%Y_%m_%d_%H_%M_%S")),
        "2026_11_21_18_04_00",
        "Largest cursor value as `%Y_%m_%d_%H_%M_%S`.",
    ),
    m(
        &["cursor_iso_date_time"],
        Macro::Cursor(Some("%Y-%m-%dT%H:%M:%SZ")),
        "2026-11-21T18%3A04%3A00Z",
        "Largest cursor value, ISO 8601 in UTC, escaped.",
    ),
    m(
        &["cursor_singular_date_time"],
        Macro::Cursor(Some("%Y-%m-%d-%H-%M-%S")),
        "2026-11-21-18-04-00",
        "Largest cursor value as `%Y-%m-%d-%H-%M-%S`.",
    ),
    m(
        &["part"],
        Macro::Part,
        "00000",
        "Number of the file among this run's files whose keys are otherwise the same, from `00000` (5 digits, more past 99999).",
    ),
    m(&["uuid"], Macro::Uuid, "0b6f3c1e-3f43-4f7e-9a55-2a4f1c9f0e7d", "A new random UUID per file."),
    m(
        &["run_id", "connection_run_id", "sync_id"],
        Macro::RunId,
        "019aa6d2-6c4e-7f32-b1a0-55e8c1d2a3f4",
        "This run's id (the `run_id` setting, else a UUIDv7 unique to the process).",
    ),
    m(&["stream_run_id"], Macro::StreamRunId, "019aa6d2-6c51-7a10-8e0b-3c2d1f0a9b8c", "A UUIDv7 per stream per run."),
    m(&["extension"], Macro::Extension, "jsonl.gz", "File extension for the format and compression."),
    m(&["format"], Macro::Format, "jsonl", "The `format` setting."),
    m(&["compression"], Macro::Compression, "gzip", "The `compression` setting."),
    m(
        &["table_version"],
        Macro::TableVersion,
        "1700000000",
        "The RECORD's `version` (full-table syncs with ACTIVATE_VERSION), `none` without one; records of different versions go to different files. See `activate_version_mode`.",
    ),
    m(&["job_id"], Macro::JobVar("job_id"), "8f3a", "`job_id` setting, else `$JOB_ID` (Hevo's `${JOB_ID}`)."),
    m(&["flow_id"], Macro::JobVar("flow_id"), "flow-7", "`flow_id` setting, else `$FLOW` or `$FLOW_ID`."),
    m(&["tenant"], Macro::JobVar("tenant"), "acme", "`tenant` setting, else `$TENANT`."),
    m(
        &["root_tenant_id"],
        Macro::JobVar("root_tenant_id"),
        "acme-root",
        "`root_tenant_id` setting, else `$ROOT_TENANT_ID`.",
    ),
    m(&["tap"], Macro::JobVar("tap"), "tap-github", "`tap` setting, else `$TAP`."),
    m(&["env_id"], Macro::JobVar("env_id"), "prod", "`env_id` setting, else `$ENV_ID`."),
    m(
        &["connection_id"],
        Macro::JobVar("connection_id"),
        "c-42",
        "`connection_id` setting, else `$CONNECTOR_ID` or `$CONNECTION_ID`.",
    ),
    m(&["account"], Macro::JobVar("account"), "123456789012", "`account` setting, else `$ACCOUNT`."),
    m(&["workspace_id"], Macro::JobVar("workspace_id"), "ws-1", "`workspace_id` setting, else `$WORKSPACE_ID`."),
    m(&["data_source"], Macro::JobVar("data_source"), "facebook_ads", "`data_source` setting, else `$DATA_SOURCE`."),
];

/// `{record.FIELD}` and `{record.FIELD:FORMAT}` are not in the table: any field name works.
pub const RECORD_MACRO_DOC: (&str, &str, &str) = (
    "`{record.FIELD}`, `{record.FIELD:FORMAT}`",
    "2026-11-21",
    "A record field (dotted path for nested objects), escaped; with a strftime FORMAT when the value is a date or date-time (a `/` in FORMAT makes folders). Splits the stream into one file per value; a missing, null, empty or unparsable value is Hive's null, `__HIVE_DEFAULT_PARTITION__`.",
);

/// What a user variable or macro name must not shadow.
pub fn is_builtin(name: &str) -> bool {
    lookup(name).is_some() || name.eq_ignore_ascii_case("record") || name.to_ascii_lowercase().starts_with("record.")
}

fn lookup(name: &str) -> Option<&'static MacroSpec> {
    MACROS.iter().find(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
}

fn valid_names() -> String {
    let mut names: Vec<String> = MACROS.iter().flat_map(|s| s.names.iter()).map(|n| format!("{{{n}}}")).collect();
    names.push("{record.FIELD}".into());
    names.join(", ")
}

/// What `{date}` means: ours (`%Y_%m_%d`) or hotglue's (`%Y%m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MacroStyle {
    #[default]
    Default,
    Hotglue,
}

/// Everything parsing needs beyond the template text.
pub struct ParseOptions<'a> {
    pub style: MacroStyle,
    /// Job variables and `template_variables`, already resolved, by lowercase name.
    pub variables: &'a BTreeMap<String, String>,
}

impl Default for ParseOptions<'_> {
    fn default() -> Self {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        ParseOptions { style: MacroStyle::Default, variables: &EMPTY }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// A value fixed for the run (job and template variables): data, so it is escaped like
    /// every other rendered value, but known at parse time.
    Fixed(String),
    Macro {
        kind: Macro,
        format: Option<String>,
    },
}

/// A parsed `prefix` + `key_template`.
#[derive(Clone, Debug)]
pub struct KeyTemplate {
    segments: Vec<Segment>,
    style: MacroStyle,
}

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

/// What a missing, null, empty or unformattable value renders as: Hive's null partition, which
/// Spark, Hive, Trino, Athena, pyarrow and DuckDB read back as null in `name=value` folders.
pub const NULL_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// Stands for `{part}` in a rendered key until the run's [`crate::key_registry::KeyRegistry`]
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

/// What makes the keys of a template differ, for the start-up uniqueness check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uniqueness {
    /// `{stream}`, `{stream_id}` or `{stream_run_id}`: streams never share a key.
    pub by_stream: bool,
    /// `{part}` or `{uuid}`: files of one stream in one run differ.
    pub within_run: bool,
    /// `{run_id}`, `{stream_run_id}`, `{uuid}` or a full instant: runs differ.
    pub across_runs: bool,
}

impl KeyTemplate {
    /// Parses `prefix` and `template`; the prefix is a folder (a `/` joins the two). Whether the
    /// keys are unique is the caller's question ([`KeyTemplate::uniqueness`]).
    pub fn parse(prefix: &str, template: &str, options: &ParseOptions<'_>) -> Result<KeyTemplate, ConfigError> {
        let mut segments = Vec::new();
        let prefix = prefix.trim_start_matches('/').trim_end_matches('/');
        if !prefix.is_empty() {
            segments.extend(parse_segments("prefix", prefix, options)?);
            segments.push(Segment::Literal("/".into()));
        }
        let template_segments = parse_segments("key_template", template, options)?;
        if template_segments.is_empty() {
            return Err(ConfigError::Invalid { setting: "key_template".into(), message: "must not be empty".into() });
        }
        segments.extend(template_segments);
        Ok(KeyTemplate { segments, style: options.style })
    }

    fn uses(&self, pred: impl Fn(&Macro) -> bool) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Macro { kind, .. } if pred(kind)))
    }

    /// Whether the key names the file's cursor range, so it is rendered when the file closes.
    pub fn uses_cursor(&self) -> bool {
        self.uses(|m| matches!(m, Macro::Cursor(_)))
    }

    /// Whether keys hold the records' table version (one open file per version).
    pub fn uses_table_version(&self) -> bool {
        self.uses(|m| matches!(m, Macro::TableVersion))
    }

    /// The key up to the `{table_version}` folder, when everything before it is fixed for the
    /// stream (prefix, stream name, job variables, literals) and a `/` follows the version:
    /// the folder whose version subfolders `hard_delete` may remove.
    pub fn version_root(&self) -> Option<KeyTemplate> {
        let at = self.segments.iter().position(|s| matches!(s, Segment::Macro { kind: Macro::TableVersion, .. }))?;
        let before = &self.segments[..at];
        let fixed = before.iter().all(|s| match s {
            Segment::Literal(_) | Segment::Fixed(_) => true,
            Segment::Macro { kind, .. } => matches!(kind, Macro::Stream | Macro::StreamId | Macro::Namespace),
        });
        // The stream must be named in the folder, or one stream's versions would share a folder
        // with another's and hard_delete would reach them.
        let names_stream =
            before.iter().any(|s| matches!(s, Segment::Macro { kind: Macro::Stream | Macro::StreamId, .. }));
        let folder_follows = matches!(self.segments.get(at + 1), Some(Segment::Literal(l)) if l.starts_with('/'));
        let folder_starts = match before.last() {
            None => true,
            Some(Segment::Literal(l)) => l.ends_with('/'),
            Some(_) => false,
        };
        if !fixed || !names_stream || !folder_follows || !folder_starts {
            return None;
        }
        Some(KeyTemplate { segments: self.segments[..at].to_vec(), style: self.style })
    }

    /// Whether keys depend on the record (one open file per partition).
    pub fn is_partitioned(&self) -> bool {
        self.uses(|m| matches!(m, Macro::Record(_) | Macro::PartitionDate(_)))
    }

    /// What makes this template's keys differ. `utc`: load times render in UTC, so a load time
    /// to the second (`{timestamp}`) names one instant; in a zone with daylight saving the same
    /// local time comes twice a year. `{iso_date_time}` carries its offset and epochs are
    /// zone-free, so they always count; partial times (`{second}`, `{hour}`) never do.
    pub fn uniqueness(&self, utc: bool) -> Uniqueness {
        Uniqueness {
            by_stream: self.uses(|m| matches!(m, Macro::Stream | Macro::StreamId | Macro::StreamRunId)),
            within_run: self.uses(|m| matches!(m, Macro::Part | Macro::Uuid)),
            across_runs: self.uses(|m| match m {
                Macro::RunId
                | Macro::StreamRunId
                | Macro::Uuid
                | Macro::Epoch
                | Macro::EpochMs
                | Macro::IsoDateTime => true,
                Macro::DateTime => utc,
                _ => false,
            }),
        }
    }

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
                render_record_macro(kind, format.as_deref(), record, partition_date_field, run, out);
            }
        }
    }

    /// Renders the key of one file, `{part}` left open for the run's key registry. Only called
    /// when a file opens (or closes, for cursor keys), so it may allocate.
    pub fn render(&self, run: &RunContext, file: &FileContext<'_>) -> RenderedKey {
        let mut key = String::with_capacity(96);
        for segment in &self.segments {
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
                        Ok(()) => push_escaped_path(&mut key, &rendered),
                        Err(_) => push_escaped(&mut key, NULL_VALUE), // checked at parse time; never panics
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
                        Some(raw) => push_value(&mut key, raw, fixed.or(format)),
                        None => push_escaped(&mut key, NULL_VALUE),
                    }
                    Ok(())
                }
                Macro::Record(_) | Macro::PartitionDate(_) => {
                    let record = file.record.unwrap_or("{}");
                    render_record_macro(kind, format, record, file.partition_date_field, run, &mut key);
                    Ok(())
                }
            };
        }
        RenderedKey(key)
    }
}

/// FNV-1a, 64 bit: a stable, dependency-free id for `{stream_id}`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn render_record_macro(
    kind: &Macro,
    format: Option<&str>,
    record: &str,
    partition_date_field: Option<&FieldPath>,
    run: &RunContext,
    out: &mut String,
) {
    match kind {
        Macro::Record(path) => match find_field(record, path) {
            Some(raw) => push_value(out, raw.get(), format),
            None => push_escaped(out, NULL_VALUE),
        },
        Macro::PartitionDate(fmt) => match partition_date_field {
            None => {
                let _ = write!(out, "{}", run.now.format(fmt));
            }
            Some(path) => match find_field(record, path) {
                Some(raw) => push_value(out, raw.get(), Some(fmt)),
                None => push_escaped(out, NULL_VALUE),
            },
        },
        _ => {}
    }
}

/// Writes a record value into a key: strings unquoted, dates through `format` (whose `/` make
/// folders on purpose), everything escaped by [`push_escaped`].
fn push_value(out: &mut String, raw: &str, format: Option<&str>) {
    if raw == "null" {
        push_escaped(out, NULL_VALUE);
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
        None => push_escaped(out, &text),
        Some(fmt) => match parse_date_time(&text) {
            Some(dt) => {
                let mut rendered = String::new();
                match write!(rendered, "{}", dt.format(fmt)) {
                    Ok(()) => push_escaped_path(out, &rendered),
                    Err(_) => push_escaped(out, NULL_VALUE), // checked at parse time; never panics
                }
            }
            None => push_escaped(out, NULL_VALUE),
        },
    }
}

/// Dates and date-times as taps write them: RFC 3339 with an offset (kept in its own offset's
/// calendar day would surprise; it is converted to UTC), without an offset (taken as UTC), or a
/// plain date.
pub fn parse_date_time(text: &str) -> Option<NaiveDateTime> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.with_timezone(&Utc).naive_utc());
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(text, f) {
            return Some(dt);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0))
}

/// Finds a (possibly nested) field of a record without building a value tree.
pub fn find_field<'a>(record: &'a str, path: &[String]) -> Option<&'a RawValue> {
    struct Find<'p> {
        key: &'p str,
    }
    impl<'de> Visitor<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<crate::schema::Key<'de>>()? {
                if found.is_none() && key.0 == self.key {
                    found = Some(map.next_value::<&'de RawValue>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let (first, rest) = path.split_first()?;
    let mut de = serde_json::Deserializer::from_str(record);
    let raw = serde::Deserializer::deserialize_map(&mut de, Find { key: first }).ok()??;
    if rest.is_empty() { Some(raw) } else { find_field(raw.get(), rest) }
}

/// Characters a rendered value keeps as they are: letters and digits of any script (S3 keys
/// and file names are UTF-8), `-`, `_` and `.`. Everything else is escaped.
fn is_kept(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Longest escaped value kept whole; longer ones are cut and end in `~` and a hash of the whole
/// value, so a segment stays well under the 255-byte file name limit of local file systems.
const MAX_VALUE_BYTES: usize = 200;

/// Appends a value (stream name, record field, variable) to a key so that distinct values give
/// distinct text and no value can move, hide or break the key:
/// * every character but letters, digits, `-`, `_` and `.` is written as `%XX` per UTF-8 byte
///   (Hive's escaping, which Spark and pyarrow undo when they read partition values), `%` and
///   `/` included, so the mapping is reversible and a value never makes a folder;
/// * a value that starts a path segment does not start it with `_` or `.` (escaped instead):
///   Hive-convention readers skip such folders, and `.`/`..` would climb out of the prefix;
/// * an empty value is [`NULL_VALUE`];
/// * an escaped value over [`MAX_VALUE_BYTES`] is cut at a character boundary and ends in
///   `~` and 16 hex digits of FNV-1a over the whole value (`~` is otherwise always escaped).
pub fn push_escaped(key: &mut String, value: &str) {
    let value = if value.is_empty() { NULL_VALUE } else { value };
    let segment_start = key.is_empty() || key.ends_with('/');
    let start = key.len();
    let mut cut = None;
    for (i, c) in value.char_indices() {
        if key.len() - start > MAX_VALUE_BYTES - 20 && cut.is_none() {
            cut = Some(key.len());
        }
        if is_kept(c) && !(i == 0 && segment_start && matches!(c, '_' | '.')) {
            key.push(c);
        } else {
            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                let _ = write!(key, "%{b:02X}");
            }
        }
    }
    if key.len() - start > MAX_VALUE_BYTES
        && let Some(cut) = cut
    {
        key.truncate(cut);
        let _ = write!(key, "~{:016x}", fnv1a(value.as_bytes()));
    }
}

/// Like [`push_escaped`] for each `/`-separated part: a format pattern may build folders.
fn push_escaped_path(key: &mut String, value: &str) {
    for (i, part) in value.split('/').enumerate() {
        if i > 0 {
            key.push('/');
        }
        push_escaped(key, part);
    }
}

/// Whether a strftime pattern renders: some directives parse but cannot be formatted (`%#z`,
/// and `%z` for record values, which have no zone), and chrono panics on those at render time.
fn renders(format: &str, zoned: bool) -> bool {
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return false;
    }
    let mut out = String::new();
    let sample = NaiveDate::from_ymd_opt(2026, 11, 22).and_then(|d| d.and_hms_micro_opt(3, 41, 7, 5)).expect("valid");
    if zoned {
        write!(out, "{}", Tz::Europe__Berlin.from_utc_datetime(&sample).format(format)).is_ok()
    } else {
        write!(out, "{}", sample.format(format)).is_ok()
    }
}

fn parse_segments(setting: &str, text: &str, options: &ParseOptions<'_>) -> Result<Vec<Segment>, ConfigError> {
    let err = |pos: usize, message: String| ConfigError::Invalid {
        setting: setting.into(),
        message: format!("{message} at position {pos} of {text:?}"),
    };
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut pos = 0;
    while !rest.is_empty() {
        let (open, close) = if rest.starts_with("{{") {
            ("{{", "}}")
        } else if rest.starts_with("${") {
            ("${", "}")
        } else if rest.starts_with('{') {
            ("{", "}")
        } else {
            let c = rest.chars().next().expect("rest is not empty");
            if c.is_control() || c == '\\' {
                return Err(err(pos, format!("character {c:?} is not allowed in a key")));
            }
            if c == '}' {
                return Err(err(pos, "`}` without a matching `{`".into()));
            }
            literal.push(c);
            rest = &rest[c.len_utf8()..];
            pos += c.len_utf8();
            continue;
        };
        let inner_start = open.len();
        let Some(end) = rest[inner_start..].find(close) else {
            return Err(err(pos, format!("unclosed `{open}`")));
        };
        let inner = rest[inner_start..inner_start + end].trim();
        let (name, format) = match inner.split_once(':') {
            Some((n, f)) => (n.trim(), Some(f.to_string())),
            None => (inner, None),
        };
        if let Some(f) = &format
            && !renders(f, name.eq_ignore_ascii_case("now"))
        {
            return Err(err(pos, format!("`{f}` is not a strftime format that can be rendered")));
        }
        let lower = name.to_ascii_lowercase();
        let segment = if let Some(field) = lower.strip_prefix("record.") {
            let path: FieldPath = name["record.".len()..].split('.').map(str::to_string).collect();
            if field.is_empty() || path.iter().any(String::is_empty) {
                return Err(err(
                    pos,
                    format!("`{open}{inner}{close}` needs a field name, e.g. `{{record.updated_at}}`"),
                ));
            }
            Segment::Macro { kind: Macro::Record(path), format }
        } else if let Some(spec) = lookup(name) {
            match (spec.format, &format) {
                (FormatSpec::None, Some(f)) => {
                    return Err(err(pos, format!("macro `{name}` takes no format (got `:{f}`)")));
                }
                (FormatSpec::Strftime, None) => {
                    return Err(err(
                        pos,
                        format!("macro `{name}` needs a strftime format, e.g. `{{{name}:%Y/%m/%d}}`"),
                    ));
                }
                (FormatSpec::Strftime | FormatSpec::OptionalStrftime, Some(_))
                | (FormatSpec::OptionalStrftime, None) => {}
                (FormatSpec::None, None) => {}
            }
            match &spec.kind {
                Macro::JobVar(var) => match options.variables.get(*var) {
                    Some(value) => Segment::Fixed(value.clone()),
                    None => {
                        let env = JOB_VARIABLES
                            .iter()
                            .find(|(n, _)| n == var)
                            .map(|(_, e)| e.join(" or $"))
                            .unwrap_or_default();
                        return Err(err(
                            pos,
                            format!("macro `{name}` has no value: set the `{var}` setting or ${env}"),
                        ));
                    }
                },
                kind => Segment::Macro { kind: kind.clone(), format },
            }
        } else if let Some(value) = options.variables.get(&lower) {
            if format.is_some() {
                return Err(err(pos, format!("template variable `{name}` takes no format")));
            }
            Segment::Fixed(value.clone())
        } else {
            return Err(err(
                pos,
                format!(
                    "unknown macro `{open}{inner}{close}`; valid macros: {} (and template_variables)",
                    valid_names()
                ),
            ));
        };
        match segment {
            Segment::Literal(text) => literal.push_str(&text),
            macro_segment => {
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(macro_segment);
            }
        }
        let consumed = inner_start + end + close.len();
        rest = &rest[consumed..];
        pos += consumed;
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    // Literal `.` / `..` folders would climb out of the prefix or local folder; an empty folder
    // name (`a//b`, a leading or trailing `/`) is not a key S3 readers or file systems agree on.
    let skeleton: String = segments
        .iter()
        .map(|s| match s {
            Segment::Literal(text) => text.as_str(),
            Segment::Fixed(_) | Segment::Macro { .. } => "x",
        })
        .collect();
    if skeleton.split('/').any(|part| part == "." || part == "..") {
        return Err(err(0, "`.` and `..` folders are not allowed".into()));
    }
    if skeleton.split('/').any(str::is_empty) {
        return Err(err(0, "a folder name is empty (`//`, or a `/` at the start or end)".into()));
    }
    Ok(segments)
}

/// Checks a rendered key before anything is written under it: relative, no `.`/`..` or empty
/// folder names, no control characters. Defence in depth: rendering already makes values safe.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("it is empty");
    }
    if key.starts_with('/') {
        return Err("it is an absolute path");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err("it contains a control character or backslash");
    }
    for part in key.split('/') {
        match part {
            "" => return Err("it contains an empty folder name"),
            "." | ".." => return Err("it contains a `.` or `..` folder"),
            _ => {}
        }
    }
    if key.len() > 1024 {
        return Err("it is longer than 1024 bytes (the S3 limit)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn run() -> RunContext {
        RunContext { now: Tz::UTC.with_ymd_and_hms(2026, 11, 22, 3, 41, 7).unwrap(), run_id: "run1".into() }
    }

    fn parse(prefix: &str, template: &str) -> KeyTemplate {
        KeyTemplate::parse(prefix, template, &ParseOptions::default()).unwrap()
    }

    fn render(prefix: &str, template: &str, stream: &str) -> String {
        parse(prefix, template).render(&run(), &file(stream, None)).with_part(3)
    }

    fn file<'a>(stream: &'a str, record: Option<&'a str>) -> FileContext<'a> {
        FileContext {
            stream,
            extension: "jsonl.gz",
            format: "jsonl",
            compression: "gzip",
            stream_run_id: "srun",
            record,
            partition_date_field: None,
            cursor: None,
            table_version: Some("1700000000"),
        }
    }

    fn escaped(value: &str) -> String {
        let mut out = String::new();
        push_escaped(&mut out, value);
        out
    }

    #[test]
    fn every_macro_renders() {
        assert_eq!(
            render("", "{stream}/{year}/{month}/{day}/{hour}{minute}{second}/{date}-{iso_date}-{full_date}", "s"),
            "s/2026/11/22/034107/2026_11_22-2026-11-22-20261122"
        );
        assert_eq!(
            render("", "{timestamp}|{date_time}|{iso_date_time}|{epoch}|{epoch_ms}", "s"),
            "2026_11_22_03_41_07|2026_11_22_03_41_07|2026-11-22T03%3A41%3A07Z|1795318867|1795318867000"
        );
        assert_eq!(
            render("", "{now:%Y/%m}/{part}.{extension}-{run_id}-{sync_id}-{stream_run_id}-{format}-{compression}", "s"),
            "2026/11/00003.jsonl.gz-run1-run1-srun-jsonl-gzip"
        );
        assert_eq!(render("", "{stream}/{table_version}/{part}", "s"), "s/1700000000/00003");
        let no_version = FileContext { table_version: None, ..file("s", None) };
        assert_eq!(parse("", "{table_version}").render(&run(), &no_version).as_str(), "none");
        assert_eq!(
            parse("lake", "{stream}/v/{table_version}/{part}")
                .version_root()
                .unwrap()
                .render(&run(), &file("s", None))
                .as_str(),
            "lake/s/v/"
        );
        assert!(parse("", "{stream}/{iso_date}/{table_version}/{part}").version_root().is_none());
        assert!(parse("", "{stream}/{table_version}-{part}").version_root().is_none(), "a / must follow");
        assert!(parse("", "{stream}/v{table_version}/{part}").version_root().is_none(), "a whole folder");
        assert!(parse("", "{table_version}/{stream}/{part}").version_root().is_none(), "the stream comes first");
        assert!(parse("", "{namespace}/{table_version}/{part}").version_root().is_none(), "namespace is not a stream");
        assert_eq!(
            render("", "{namespace}/{stream_id}", "public-users"),
            format!("public/{:016x}", fnv1a(b"public-users"))
        );
        assert_eq!(render("", "{namespace}", "db-schema-table"), "db-schema");
        assert_eq!(render("", "{namespace}", "users"), "%5F_HIVE_DEFAULT_PARTITION__");
        let uuid = render("", "{uuid}", "s");
        assert_eq!(uuid.len(), 36);
        assert_ne!(uuid, render("", "{uuid}", "s"));
    }

    #[test]
    fn three_spellings_case_insensitive() {
        assert_eq!(
            render("", "${YEAR}/{{ month }}/{{Day}}/{Stream_Name}/{{DD_today}}-{{H}}{{M}}{{S}}", "a"),
            "2026/11/22/a/22-034107"
        );
    }

    #[test]
    fn hotglue_style_date() {
        let t = KeyTemplate::parse(
            "",
            "{date}/{full_date}",
            &ParseOptions { style: MacroStyle::Hotglue, ..Default::default() },
        )
        .unwrap();
        assert_eq!(t.render(&run(), &file("s", None)).as_str(), "202611/20261122");
    }

    #[test]
    fn time_zone_is_applied() {
        let mut r = run();
        r.now = r.now.with_timezone(&chrono_tz::Asia::Tokyo);
        let t = parse("", "{iso_date_time}/{day}/{hour}");
        assert_eq!(t.render(&r, &file("s", None)).as_str(), "2026-11-22T12%3A41%3A07%2B09%3A00/22/12");
    }

    #[test]
    fn job_and_user_variables_are_escaped_values() {
        let vars: BTreeMap<String, String> =
            [("tenant", "acme/evil"), ("tap", "tap-x"), ("job_id", "j1"), ("workspace_title", "Main WS")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let opts = ParseOptions { variables: &vars, ..Default::default() };
        let t = KeyTemplate::parse("{tenant}/{tap}", "${JOB_ID}/{{workspace_title}}", &opts).unwrap();
        assert_eq!(t.render(&run(), &file("s", None)).as_str(), "acme%2Fevil/tap-x/j1/Main%20WS");
        let e = KeyTemplate::parse("", "{flow_id}", &opts).unwrap_err().to_string();
        assert!(e.contains("flow_id") && e.contains("$FLOW"), "{e}");
    }

    #[test]
    fn record_fields_partition() {
        let t = parse("", "{stream}/dt={record.updated_at:%Y-%m-%d}/{record.geo.country}/{part}");
        assert!(t.is_partitioned());
        let rec = r#"{"id":1,"geo":{"country":"P/L"},"updated_at":"2026-11-21T23:30:00-02:00"}"#;
        assert_eq!(t.render(&run(), &file("s", Some(rec))).with_part(3), "s/dt=2026-11-22/P%2FL/00003");
        let mut p = String::new();
        t.partition(rec, None, &run(), &mut p);
        assert_eq!(p, "\u{0}2026-11-22\u{0}P%2FL");
        t.partition(r#"{"updated_at":"garbage"}"#, None, &run(), &mut p);
        assert_eq!(p, "\0__HIVE_DEFAULT_PARTITION__\0__HIVE_DEFAULT_PARTITION__");
        assert!(!parse("", "{stream}/{part}").is_partitioned());
        // Hive's null partition where a `name=` folder holds the value; escaped where it would
        // start a folder (a folder starting with `_` is hidden from those readers).
        assert_eq!(
            t.render(&run(), &file("s", Some(r#"{"geo":{"country":null}}"#))).with_part(0),
            "s/dt=__HIVE_DEFAULT_PARTITION__/%5F_HIVE_DEFAULT_PARTITION__/00000"
        );
    }

    #[test]
    fn format_patterns_make_folders_each_escaped() {
        let t = parse("", "{stream}/{record.at:%Y/%m/%d}/{now:%Y/.%m}/{part}");
        let rec = r#"{"at":"2026-01-02T03:04:05Z"}"#;
        assert_eq!(t.render(&run(), &file("s", Some(rec))).with_part(0), "s/2026/01/02/2026/%2E11/00000");
    }

    #[test]
    fn improvado_partition_date() {
        let t = parse("", "{{filename}}-{{YYYY}}-{{MM}}-{{DD}}");
        let field: FieldPath = vec!["date".into()];
        let rec = r#"{"date":"2026-10-03"}"#;
        let f = FileContext { record: Some(rec), partition_date_field: Some(&field), ..file("ads", None) };
        assert_eq!(t.render(&run(), &f).as_str(), "ads-2026-10-03");
        let f = FileContext { partition_date_field: None, ..f };
        assert_eq!(t.render(&run(), &f).as_str(), "ads-2026-11-22", "no bookmark: the load date");
    }

    #[test]
    fn cursor_macros() {
        let t = parse("", "{cursor_year}/{cursor_month}/{cursor_day}/{cursor_singular_date_time}_{cursor:%H}_{cursor}");
        assert!(t.uses_cursor());
        let f = FileContext { cursor: Some(r#""2026-11-21T18:04:00+01:00""#), ..file("s", None) };
        assert_eq!(
            t.render(&run(), &f).as_str(),
            "2026/11/21/2026-11-21-17-04-00_17_2026-11-21T18%3A04%3A00%2B01%3A00"
        );
        assert_eq!(
            parse("", "{cursor}").render(&run(), &FileContext { cursor: Some("42"), ..file("s", None) }).as_str(),
            "42"
        );
        assert_eq!(
            parse("", "{cursor_date_time}").render(&run(), &file("s", None)).as_str(),
            "%5F_HIVE_DEFAULT_PARTITION__"
        );
        assert!(!parse("", "{stream}").uses_cursor());
    }

    #[test]
    fn prefix_is_a_folder() {
        assert_eq!(render("exports/", "{stream}", "a"), "exports/a");
        assert_eq!(render("/exports", "{stream}", "a"), "exports/a");
        assert_eq!(render("t/{year}", "{stream}", "a"), "t/2026/a");
    }

    #[test]
    fn values_are_escaped_reversibly_and_never_hidden() {
        assert_eq!(render("", "{stream}", "test:SpecialChars!in?attributes"), "test%3ASpecialChars%21in%3Fattributes");
        assert_eq!(render("", "{stream}", "../../etc/passwd"), "%2E.%2F..%2Fetc%2Fpasswd");
        assert_eq!(render("", "x/{stream}", ".."), "x/%2E.");
        assert_eq!(render("", "{stream}", "/abs"), "%2Fabs");
        assert_eq!(render("", "{stream}", "_sdc"), "%5Fsdc", "a folder starting with _ is hidden from Hive readers");
        assert_eq!(render("", "x{stream}", "_sdc"), "x_sdc", "not at a folder start: kept");
        assert_eq!(render("", "{stream}", "用户"), "用户");
        assert_eq!(render("", "{stream}", "Ünïcode"), "Ünïcode");
        assert_eq!(render("", "{stream}", "a b%2F=\n"), "a%20b%252F%3D%0A");
        assert_eq!(render("", "{stream}", "a\u{2215}b"), "a%E2%88%95b");
        assert_eq!(render("", "{stream}", ""), "%5F_HIVE_DEFAULT_PARTITION__");
        check_key(&render("", "{stream}", "..")).unwrap();
    }

    #[test]
    fn distinct_values_render_distinct_text() {
        let names = ["a/b", "a_b", "a b", "a%2Fb", "用户", "订单", "__", "_", ".", "..", "a.b", "A/B", "a=b", "a~b"];
        let rendered: std::collections::HashSet<String> = names.iter().map(|n| escaped(n)).collect();
        assert_eq!(rendered.len(), names.len(), "{rendered:?}");
    }

    #[test]
    fn long_values_are_cut_with_a_hash() {
        let long = "é".repeat(400);
        let a = escaped(&long);
        let b = escaped(&format!("{long}x"));
        assert!(a.len() <= 210 && b.len() <= 210, "{}", a.len());
        assert_ne!(a, b);
        assert!(a.contains('~'));
        assert_eq!(escaped(&"x".repeat(200)), "x".repeat(200), "up to the limit: whole");
    }

    #[test]
    fn errors_name_setting_position_and_valid_macros() {
        let p =
            |prefix: &str, t: &str| KeyTemplate::parse(prefix, t, &ParseOptions::default()).unwrap_err().to_string();
        let e = p("", "{stream}/{bogus}");
        assert!(e.contains("key_template") && e.contains("position 9") && e.contains("{run_id}"), "{e}");
        assert!(p("", "{stream").contains("unclosed"));
        assert!(p("", "stream}").contains("without a matching"));
        assert!(p("", "{year:%Y}").contains("takes no format"));
        assert!(p("", "{now:%Q}").contains("strftime"));
        assert!(p("", "{now}").contains("needs a strftime format"));
        assert!(p("", "{record.}").contains("field name"));
        assert!(p("{nope}", "{stream}").contains("`prefix`"));
        assert!(p("", "../{stream}").contains("`..`"));
        assert!(p("a//b", "{stream}").contains("empty"));
        assert!(p("", "/{stream}").contains("empty"));
        assert!(p("", "{stream}/").contains("empty"));
        assert!(p("", "{stream}//{part}").contains("empty"));
    }

    #[test]
    fn unrenderable_formats_are_refused_at_parse_time() {
        let p = |t: &str| KeyTemplate::parse("", t, &ParseOptions::default()).map(|_| ()).map_err(|e| e.to_string());
        assert!(p("{now:%#z}").unwrap_err().contains("strftime"));
        assert!(p("{record.a:%#z}").unwrap_err().contains("strftime"));
        assert!(p("{record.a:%z}").is_err(), "record values have no zone");
        assert!(p("{cursor:%Z}").is_err());
        p("{now:%z}").unwrap();
        p("{record.a:%Y-%m-%dT%H:%M:%S%.f}").unwrap();
    }

    #[test]
    fn uniqueness_names_what_makes_keys_differ() {
        let u = |t: &str, utc: bool| parse("", t).uniqueness(utc);
        let full = Uniqueness { by_stream: true, within_run: true, across_runs: true };
        assert_eq!(u(crate::settings::DEFAULT_KEY_TEMPLATE, true), full);
        assert_eq!(u("{stream_id}/{uuid}", false), full);
        assert_eq!(u("{stream_run_id}-{part}", false), full);
        assert!(!u("{run_id}-{part}.{extension}", true).by_stream);
        assert!(!u("{stream}/{date_time}-{record.a}", true).within_run);
        assert!(!u("{stream}/{second}-{part}", true).across_runs);
        assert!(!u("{stream}/{hour}{minute}{second}-{part}", true).across_runs);
        assert!(u("{stream}/{timestamp}-{part}", true).across_runs);
        assert!(!u("{stream}/{timestamp}-{part}", false).across_runs, "local times repeat at DST");
        assert!(u("{stream}/{iso_date_time}-{part}", false).across_runs, "carries its offset");
        assert!(u("{stream}/{epoch}-{part}", false).across_runs);
    }

    #[test]
    fn unsafe_keys_are_rejected() {
        assert!(check_key("/abs").is_err());
        assert!(check_key("a/../b").is_err());
        assert!(check_key("a//b").is_err());
        assert!(check_key("a/b.jsonl").is_ok());
    }
}
