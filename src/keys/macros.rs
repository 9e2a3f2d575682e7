//! The macro vocabulary of key templates: one table (README and `--about` are generated from
//! it), three spellings (`{name}`, `${NAME}`, `{{ name }}`), names matched case-insensitively.
//! Adding a macro is one entry in [`MACROS`] plus its arm in [`super::KeyTemplate::render`].

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
pub(super) enum FormatSpec {
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
    pub(super) kind: Macro,
    pub(super) format: FormatSpec,
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

pub(super) fn lookup(name: &str) -> Option<&'static MacroSpec> {
    MACROS.iter().find(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
}

pub(super) fn valid_names() -> String {
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
