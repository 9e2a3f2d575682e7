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
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
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
        "Stream name made safe for keys (characters other than letters, digits, `-`, `_`, `.`, `=` become `_`).",
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
        "The schema part of a `schema-table` or `db-schema-table` stream name (up to its last `-`); `_` when there is none.",
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
        "2026-11-22T03:41:07Z",
        "Load time, ISO 8601 (`Z` or the zone's offset).",
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
        example: "2026-11-21T18:04:00Z",
        description: "The file's largest cursor value (the stream's first bookmark property); `{cursor:FORMAT}` formats it as a date. A key with cursor macros is decided when its file closes.",
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
        "2026-11-21T18:04:00Z",
        "Largest cursor value, ISO 8601 in UTC.",
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
        "Sequence number of the file within its stream and partition in this run, 5 digits.",
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
    "A record field (dotted path for nested objects); with a strftime FORMAT when the value is a date or date-time. Splits the stream into one file per value; a missing or unparsable value goes to `__null__`.",
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
    pub allow_overwrite: bool,
    pub style: MacroStyle,
    /// Job variables and `template_variables`, already resolved, by lowercase name.
    pub variables: &'a BTreeMap<String, String>,
}

impl Default for ParseOptions<'_> {
    fn default() -> Self {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        ParseOptions { allow_overwrite: false, style: MacroStyle::Default, variables: &EMPTY }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Macro { kind: Macro, format: Option<String> },
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
    pub part: u64,
    /// The file's first record, for record macros.
    pub record: Option<&'a str>,
    /// Field giving the partition date, if the stream has one.
    pub partition_date_field: Option<&'a FieldPath>,
    /// The file's largest cursor value as JSON text, once the file is complete.
    pub cursor: Option<&'a str>,
    /// The `version` of the file's records (raw JSON), if they have one.
    pub table_version: Option<&'a str>,
}

/// Marker for a record value that is missing or cannot be formatted.
pub const NULL_PARTITION: &str = "__null__";

impl KeyTemplate {
    /// Parses `prefix` and `template`; the prefix is a folder (a `/` joins the two).
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
        let t = KeyTemplate { segments, style: options.style };
        if !options.allow_overwrite {
            t.check_unique()?;
        }
        Ok(t)
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
        let fixed = self.segments[..at].iter().all(|s| match s {
            Segment::Literal(_) => true,
            Segment::Macro { kind, .. } => {
                matches!(kind, Macro::Stream | Macro::StreamId | Macro::Namespace | Macro::JobVar(_))
            }
        });
        if !fixed || !matches!(self.segments.get(at + 1), Some(Segment::Literal(l)) if l.starts_with('/')) {
            return None;
        }
        Some(KeyTemplate { segments: self.segments[..at].to_vec(), style: self.style })
    }

    /// Whether keys depend on the record (one open file per partition).
    pub fn is_partitioned(&self) -> bool {
        self.uses(|m| matches!(m, Macro::Record(_) | Macro::PartitionDate(_)))
    }

    /// Refuses templates under which two files could get the same key and overwrite each other.
    fn check_unique(&self) -> Result<(), ConfigError> {
        let within_run = self.uses(|m| matches!(m, Macro::Part | Macro::Uuid));
        let across_runs = self.uses(|m| {
            matches!(
                m,
                Macro::RunId
                    | Macro::StreamRunId
                    | Macro::Uuid
                    | Macro::DateTime
                    | Macro::IsoDateTime
                    | Macro::Epoch
                    | Macro::EpochMs
                    | Macro::Second
            )
        });
        let missing = match (within_run, across_runs) {
            (true, true) => return Ok(()),
            (false, true) => "{part} or {uuid} (files of one run would overwrite each other)",
            (true, false) => {
                "{run_id}, {stream_run_id}, {uuid} or a load time to the second such as {timestamp} (a later run would overwrite this run's files)"
            }
            (false, false) => {
                "{part} or {uuid}, and {run_id} or {timestamp} (files would overwrite each other within and across runs)"
            }
        };
        Err(ConfigError::Invalid {
            setting: "key_template".into(),
            message: format!("can give two files the same key; add {missing}, or set allow_overwrite to true"),
        })
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
                render_record_macro(kind, format.as_deref(), record, partition_date_field, run, out);
                out.push('\u{0}');
            }
        }
    }

    /// Renders the key of one file. Only called when a file opens, so it may allocate.
    pub fn render(&self, run: &RunContext, file: &FileContext<'_>) -> String {
        let mut key = String::with_capacity(96);
        for segment in &self.segments {
            let (kind, format) = match segment {
                Segment::Literal(text) => {
                    key.push_str(text);
                    continue;
                }
                Segment::Macro { kind, format } => (kind, format.as_deref()),
            };
            let t = &run.now;
            // Writing to a String cannot fail.
            let _ = match kind {
                Macro::Stream => {
                    push_safe(&mut key, file.stream);
                    Ok(())
                }
                Macro::StreamId => write!(key, "{:016x}", fnv1a(file.stream.as_bytes())),
                Macro::Namespace => {
                    push_safe(&mut key, file.stream.rsplit_once('-').map(|(ns, _)| ns).unwrap_or(""));
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
                    if t.timezone() == Tz::UTC {
                        write!(key, "{}", t.format("%Y-%m-%dT%H:%M:%SZ"))
                    } else {
                        write!(key, "{}", t.format("%Y-%m-%dT%H:%M:%S%:z"))
                    }
                }
                Macro::Epoch => write!(key, "{}", t.timestamp()),
                Macro::EpochMs => write!(key, "{}", t.timestamp_millis()),
                Macro::Now => {
                    // The pattern was checked at parse time, so formatting cannot panic.
                    let rendered = t.format(format.unwrap_or("%Y-%m-%d")).to_string();
                    push_safe_path(&mut key, &rendered);
                    Ok(())
                }
                Macro::Part => write!(key, "{:05}", file.part),
                Macro::Uuid => write!(key, "{}", uuid::Uuid::new_v4()),
                Macro::RunId => {
                    push_safe(&mut key, &run.run_id);
                    Ok(())
                }
                Macro::StreamRunId => {
                    push_safe(&mut key, file.stream_run_id);
                    Ok(())
                }
                Macro::Extension => write!(key, "{}", file.extension),
                Macro::Format => write!(key, "{}", file.format),
                Macro::Compression => write!(key, "{}", file.compression),
                Macro::TableVersion => {
                    push_safe(&mut key, file.table_version.unwrap_or("none"));
                    Ok(())
                }
                Macro::JobVar(_) => Ok(()), // resolved to a literal at parse time
                Macro::Cursor(fixed) => {
                    match file.cursor {
                        Some(raw) => push_value(&mut key, raw, fixed.or(format)),
                        None => key.push_str(NULL_PARTITION),
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
        key
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
            None => out.push_str(NULL_PARTITION),
        },
        Macro::PartitionDate(fmt) => match partition_date_field {
            None => {
                let _ = write!(out, "{}", run.now.format(fmt));
            }
            Some(path) => match find_field(record, path) {
                Some(raw) => push_value(out, raw.get(), Some(fmt)),
                None => out.push_str(NULL_PARTITION),
            },
        },
        _ => {}
    }
}

/// Writes a record value into a key: strings unquoted, dates through `format`, all made safe.
fn push_value(out: &mut String, raw: &str, format: Option<&str>) {
    if raw == "null" {
        out.push_str(NULL_PARTITION);
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
        None => push_safe(out, &text),
        Some(fmt) => match parse_date_time(&text) {
            Some(dt) => push_safe_path(out, &dt.format(fmt).to_string()),
            None => out.push_str(NULL_PARTITION),
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

/// Characters allowed as they are in a rendered value; everything else becomes `_`, so data
/// can never inject a `/`, a `..` segment or a control character into a key.
fn is_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')
}

fn push_safe(key: &mut String, value: &str) {
    let start = key.len();
    key.extend(value.chars().map(|c| if is_safe_char(c) { c } else { '_' }));
    let pushed = &key[start..];
    if pushed.is_empty() || pushed.chars().all(|c| c == '.') {
        key.truncate(start);
        key.push('_');
    }
}

/// Like [`push_safe`] but keeps `/` (a strftime pattern may build folders on purpose).
fn push_safe_path(key: &mut String, value: &str) {
    for (i, part) in value.split('/').enumerate() {
        if i > 0 {
            key.push('/');
        }
        push_safe(key, part);
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
            && StrftimeItems::new(f).any(|item| matches!(item, Item::Error))
        {
            return Err(err(pos, format!("`{f}` is not a valid strftime format")));
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
                    Some(value) => {
                        let mut safe = String::new();
                        push_safe(&mut safe, value);
                        Segment::Literal(safe)
                    }
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
            let mut safe = String::new();
            push_safe(&mut safe, value);
            Segment::Literal(safe)
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
    // Literal `.` / `..` folders would climb out of the prefix or local folder.
    let skeleton: String = segments
        .iter()
        .map(|s| match s {
            Segment::Literal(text) => text.as_str(),
            Segment::Macro { .. } => "x",
        })
        .collect();
    if skeleton.split('/').any(|part| part == "." || part == "..") {
        return Err(err(0, "`.` and `..` folders are not allowed".into()));
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
        KeyTemplate::parse(prefix, template, &ParseOptions { allow_overwrite: true, ..Default::default() }).unwrap()
    }

    fn render(prefix: &str, template: &str, stream: &str) -> String {
        parse(prefix, template).render(&run(), &file(stream, None))
    }

    fn file<'a>(stream: &'a str, record: Option<&'a str>) -> FileContext<'a> {
        FileContext {
            stream,
            extension: "jsonl.gz",
            format: "jsonl",
            compression: "gzip",
            stream_run_id: "srun",
            part: 3,
            record,
            partition_date_field: None,
            cursor: None,
            table_version: Some("1700000000"),
        }
    }

    #[test]
    fn every_macro_renders() {
        assert_eq!(
            render("", "{stream}/{year}/{month}/{day}/{hour}{minute}{second}/{date}-{iso_date}-{full_date}", "s"),
            "s/2026/11/22/034107/2026_11_22-2026-11-22-20261122"
        );
        assert_eq!(
            render("", "{timestamp}|{date_time}|{iso_date_time}|{epoch}|{epoch_ms}", "s"),
            "2026_11_22_03_41_07|2026_11_22_03_41_07|2026-11-22T03:41:07Z|1795318867|1795318867000"
        );
        assert_eq!(
            render("", "{now:%Y/%m}/{part}.{extension}-{run_id}-{sync_id}-{stream_run_id}-{format}-{compression}", "s"),
            "2026/11/00003.jsonl.gz-run1-run1-srun-jsonl-gzip"
        );
        assert_eq!(render("", "{stream}/{table_version}/{part}", "s"), "s/1700000000/00003");
        let no_version = FileContext { table_version: None, ..file("s", None) };
        assert_eq!(parse("", "{table_version}").render(&run(), &no_version), "none");
        assert_eq!(
            parse("lake", "{stream}/v{table_version}/{part}").version_root().unwrap().render(&run(), &file("s", None)),
            "lake/s/v"
        );
        assert!(parse("", "{stream}/{iso_date}/{table_version}/{part}").version_root().is_none());
        assert!(parse("", "{stream}/{table_version}-{part}").version_root().is_none(), "a / must follow");
        assert_eq!(
            render("", "{namespace}/{stream_id}", "public-users"),
            "public/a4c3c5e1b0b2e7b5".replace("a4c3c5e1b0b2e7b5", &format!("{:016x}", fnv1a(b"public-users")))
        );
        assert_eq!(render("", "{namespace}", "db-schema-table"), "db-schema");
        assert_eq!(render("", "{namespace}", "users"), "_");
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
            &ParseOptions { allow_overwrite: true, style: MacroStyle::Hotglue, ..Default::default() },
        )
        .unwrap();
        assert_eq!(t.render(&run(), &file("s", None)), "202611/20261122");
    }

    #[test]
    fn time_zone_is_applied() {
        let mut r = run();
        r.now = r.now.with_timezone(&chrono_tz::Asia::Tokyo);
        let t = parse("", "{iso_date_time}/{day}/{hour}");
        assert_eq!(t.render(&r, &file("s", None)), "2026-11-22T12:41:07+09:00/22/12");
    }

    #[test]
    fn job_and_user_variables_become_literals() {
        let vars: BTreeMap<String, String> =
            [("tenant", "acme/evil"), ("tap", "tap-x"), ("job_id", "j1"), ("workspace_title", "Main WS")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let opts = ParseOptions { allow_overwrite: true, variables: &vars, ..Default::default() };
        let t = KeyTemplate::parse("{tenant}/{tap}", "${JOB_ID}/{{workspace_title}}", &opts).unwrap();
        assert_eq!(t.render(&run(), &file("s", None)), "acme_evil/tap-x/j1/Main_WS");
        let e = KeyTemplate::parse("", "{flow_id}", &opts).unwrap_err().to_string();
        assert!(e.contains("flow_id") && e.contains("$FLOW"), "{e}");
    }

    #[test]
    fn record_fields_partition() {
        let t = parse("", "{stream}/dt={record.updated_at:%Y-%m-%d}/{record.geo.country}/{part}");
        assert!(t.is_partitioned());
        let rec = r#"{"id":1,"geo":{"country":"P/L"},"updated_at":"2026-11-21T23:30:00-02:00"}"#;
        assert_eq!(t.render(&run(), &file("s", Some(rec))), "s/dt=2026-11-22/P_L/00003");
        let mut p = String::new();
        t.partition(rec, None, &run(), &mut p);
        assert_eq!(p, "2026-11-22\0P_L\0");
        t.partition(r#"{"updated_at":"garbage"}"#, None, &run(), &mut p);
        assert_eq!(p, "__null__\0__null__\0");
        assert!(!parse("", "{stream}/{part}").is_partitioned());
    }

    #[test]
    fn improvado_partition_date() {
        let t = parse("", "{{filename}}-{{YYYY}}-{{MM}}-{{DD}}");
        let field: FieldPath = vec!["date".into()];
        let rec = r#"{"date":"2026-10-03"}"#;
        let f = FileContext { record: Some(rec), partition_date_field: Some(&field), ..file("ads", None) };
        assert_eq!(t.render(&run(), &f), "ads-2026-10-03");
        let f = FileContext { partition_date_field: None, ..f };
        assert_eq!(t.render(&run(), &f), "ads-2026-11-22", "no bookmark: the load date");
    }

    #[test]
    fn cursor_macros() {
        let t = parse("", "{cursor_year}/{cursor_month}/{cursor_day}/{cursor_singular_date_time}_{cursor:%H}_{cursor}");
        assert!(t.uses_cursor());
        let f = FileContext { cursor: Some(r#""2026-11-21T18:04:00+01:00""#), ..file("s", None) };
        assert_eq!(t.render(&run(), &f), "2026/11/21/2026-11-21-17-04-00_17_2026-11-21T18_04_00_01_00");
        assert_eq!(parse("", "{cursor}").render(&run(), &FileContext { cursor: Some("42"), ..file("s", None) }), "42");
        assert_eq!(parse("", "{cursor_date_time}").render(&run(), &file("s", None)), "__null__");
        assert!(!parse("", "{stream}").uses_cursor());
    }

    #[test]
    fn prefix_is_a_folder() {
        assert_eq!(render("exports/", "{stream}", "a"), "exports/a");
        assert_eq!(render("/exports", "{stream}", "a"), "exports/a");
        assert_eq!(render("t/{year}", "{stream}", "a"), "t/2026/a");
    }

    #[test]
    fn stream_names_are_made_safe() {
        assert_eq!(render("", "{stream}", "test:SpecialChars!in?attributes"), "test_SpecialChars_in_attributes");
        assert_eq!(render("", "{stream}", "../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(render("", "x/{stream}", ".."), "x/_");
        assert_eq!(render("", "{stream}", "a\u{2215}b%2F\n"), "a_b_2F_");
        check_key(&render("", "{stream}", "..")).unwrap();
    }

    #[test]
    fn errors_name_setting_position_and_valid_macros() {
        let p = |prefix: &str, t: &str| {
            KeyTemplate::parse(prefix, t, &ParseOptions { allow_overwrite: true, ..Default::default() })
                .unwrap_err()
                .to_string()
        };
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
    }

    #[test]
    fn templates_that_overwrite_are_refused() {
        let strict = |t: &str| KeyTemplate::parse("", t, &ParseOptions::default()).map_err(|e| e.to_string());
        let e = strict("{stream}/{date}.jsonl").unwrap_err();
        assert!(e.contains("allow_overwrite") && e.contains("{part}"), "{e}");
        assert!(strict("{stream}/{part}.jsonl").unwrap_err().contains("{run_id}"));
        strict("{stream}/{part}-{run_id}").unwrap();
        strict("{stream}/{uuid}").unwrap();
        strict("{stream_name}/{date}/{stream_run_id}-{part}.{extension}").unwrap();
        strict(crate::settings::DEFAULT_KEY_TEMPLATE).unwrap();
    }

    #[test]
    fn unsafe_keys_are_rejected() {
        assert!(check_key("/abs").is_err());
        assert!(check_key("a/../b").is_err());
        assert!(check_key("a//b").is_err());
        assert!(check_key("a/b.jsonl").is_ok());
    }
}
