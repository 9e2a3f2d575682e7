//! Configuration: JSON files and `TARGET_S3_*` variables merged into one serde struct
//! ([`RawConfig`]), then checked once at start-up into a [`Config`] the pipeline can trust.
//! Every check that can fail before the first input line fails here, naming the setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::keys::{FieldPath, JOB_VARIABLES, KeyTemplate, MacroStyle, ParseOptions};
use crate::settings::{self, Kind, SETTINGS};

/// The settings exactly as the user wrote them (after merging), with defaults filled in.
/// Field names and aliases must match [`settings::SETTINGS`]; a unit test holds them together.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RawConfig {
    pub destination: Option<String>,
    pub local_path: String,
    #[serde(alias = "s3_bucket")]
    pub bucket: Option<String>,
    #[serde(alias = "path_prefix", alias = "s3_key_prefix")]
    pub prefix: String,
    pub key_template: String,
    pub allow_overwrite: bool,
    pub allow_unknown_settings: bool,
    pub run_id: Option<String>,
    pub timezone: String,
    pub macro_style: String,
    pub template_variables: Option<BTreeMap<String, String>>,
    pub partition_date_field: Option<String>,
    pub max_open_files: u64,
    pub write_manifest: bool,
    pub manifest_key_template: String,
    pub write_success_marker: bool,
    pub job_id: Option<String>,
    pub flow_id: Option<String>,
    pub tenant: Option<String>,
    pub root_tenant_id: Option<String>,
    pub tap: Option<String>,
    pub env_id: Option<String>,
    pub connection_id: Option<String>,
    pub account: Option<String>,
    pub workspace_id: Option<String>,
    pub data_source: Option<String>,
    pub activate_version_mode: String,
    pub hard_delete: bool,
    pub format: String,
    pub compression: String,
    pub compression_level: Option<u32>,
    #[serde(alias = "batch_size_rows")]
    pub max_records_per_file: u64,
    pub max_bytes_per_file: u64,
    pub max_batch_age_seconds: u64,
    pub validate_records: bool,
    pub add_record_metadata: bool,
    pub validate_formats: bool,
    #[serde(alias = "csv_delimiter")]
    pub delimiter: String,
    #[serde(alias = "csv_quote_character")]
    pub quote_character: String,
    #[serde(alias = "csv_header")]
    pub header: bool,
    pub flattening_enabled: bool,
    pub flattening_max_depth: usize,
    pub parquet_compression: String,
    pub row_group_size: u64,
    #[serde(alias = "parquet_nested_as_json")]
    pub nested_as_json: bool,
    pub avro_codec: String,
    pub unparseable_values: String,
    pub aws_access_key_id: Option<Secret>,
    pub aws_secret_access_key: Option<Secret>,
    pub aws_session_token: Option<Secret>,
    #[serde(alias = "aws_profile_name")]
    pub aws_profile: Option<String>,
    #[serde(alias = "aws_role_arn")]
    pub role_arn: Option<String>,
    #[serde(alias = "aws_external_id")]
    pub external_id: Option<Secret>,
    pub role_session_name: String,
    pub role_duration_seconds: u64,
    #[serde(alias = "aws_region")]
    pub region: Option<String>,
    #[serde(alias = "aws_endpoint_url")]
    pub endpoint_url: Option<String>,
    pub force_path_style: bool,
    pub part_size: u64,
    pub upload_concurrency: u64,
    pub request_timeout_seconds: u64,
    pub max_retries: u32,
    pub checksum_calculation: String,
    pub conditional_writes: bool,
    pub server_side_encryption: Option<String>,
    pub kms_key_id: Option<String>,
    pub bucket_key_enabled: Option<bool>,
    pub acl: Option<String>,
    pub storage_class: Option<String>,
    pub object_tags: Option<BTreeMap<String, String>>,
    pub object_metadata: Option<BTreeMap<String, String>>,
    pub stream_overrides: Option<BTreeMap<String, StreamOverride>>,
    pub log_level: String,
    pub log_format: String,
    /// S3-only settings the sources gave a non-default value (not a setting itself).
    #[serde(skip)]
    pub s3_settings_given: Vec<&'static str>,
}

/// A secret setting: never shown by `Debug`, so it cannot leak through a log line.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            destination: None,
            local_path: "output".into(),
            bucket: None,
            prefix: String::new(),
            key_template: settings::DEFAULT_KEY_TEMPLATE.into(),
            allow_overwrite: false,
            allow_unknown_settings: false,
            run_id: None,
            timezone: "UTC".into(),
            macro_style: "default".into(),
            template_variables: None,
            partition_date_field: None,
            max_open_files: 100,
            write_manifest: true,
            manifest_key_template: "_manifests/{date_time}-{run_id}.json".into(),
            write_success_marker: false,
            job_id: None,
            flow_id: None,
            tenant: None,
            root_tenant_id: None,
            tap: None,
            env_id: None,
            connection_id: None,
            account: None,
            workspace_id: None,
            data_source: None,
            activate_version_mode: "metadata".into(),
            hard_delete: false,
            format: "jsonl".into(),
            compression: "gzip".into(),
            compression_level: None,
            max_records_per_file: 1_000_000,
            max_bytes_per_file: 128 * 1024 * 1024,
            max_batch_age_seconds: 300,
            validate_records: true,
            add_record_metadata: false,
            validate_formats: false,
            delimiter: ",".into(),
            quote_character: "\"".into(),
            header: true,
            flattening_enabled: false,
            flattening_max_depth: 10,
            parquet_compression: "snappy".into(),
            row_group_size: 100_000,
            nested_as_json: false,
            avro_codec: "deflate".into(),
            unparseable_values: "fail".into(),
            aws_access_key_id: None,
            aws_secret_access_key: None,
            aws_session_token: None,
            aws_profile: None,
            role_arn: None,
            external_id: None,
            role_session_name: "target-s3".into(),
            role_duration_seconds: 3600,
            region: None,
            endpoint_url: None,
            force_path_style: false,
            part_size: 8 * 1024 * 1024,
            upload_concurrency: 4,
            request_timeout_seconds: 300,
            max_retries: 5,
            checksum_calculation: "when_supported".into(),
            conditional_writes: true,
            server_side_encryption: None,
            kms_key_id: None,
            bucket_key_enabled: None,
            acl: None,
            storage_class: None,
            object_tags: None,
            object_metadata: None,
            stream_overrides: None,
            log_level: "info".into(),
            log_format: "text".into(),
            s3_settings_given: Vec::new(),
        }
    }
}

/// Where `--config` reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// `--config ENV`: `TARGET_S3_<SETTING>` variables, typed by the settings table.
    Env,
}

impl Source {
    pub fn parse(arg: &str) -> Source {
        if arg == "ENV" { Source::Env } else { Source::File(arg.into()) }
    }
}

/// The merged sources: settings by name, and the `TARGET_S3_*` variables that name no setting.
#[derive(Debug, Default)]
pub struct Merged {
    pub map: Map<String, Value>,
    pub unknown_env: Vec<String>,
}

/// Merges the sources in order (later keys win) into one JSON object.
pub fn merge_sources(sources: &[Source]) -> Result<Merged, ConfigError> {
    let mut merged = Map::new();
    let mut unknown_env = Vec::new();
    for source in sources {
        let layer = match source {
            Source::File(path) => read_file(path)?,
            Source::Env => {
                unknown_env = unknown_env_vars(std::env::vars().map(|(k, _)| k));
                read_env(|name| std::env::var(name).ok())?
            }
        };
        for (k, v) in layer {
            // A null means "unset" (Meltano writes nulls for settings without a value).
            if v.is_null() {
                merged.remove(&k);
            } else {
                merged.insert(k, v);
            }
        }
    }
    Ok(Merged { map: merged, unknown_env })
}

/// `TARGET_S3_<NAME>` variables whose name is no setting. `TARGET_S3__*` (double underscore:
/// Meltano's extras) are not ours to judge.
pub fn unknown_env_vars(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut unknown: Vec<String> = names
        .filter(|n| {
            n.strip_prefix("TARGET_S3_").is_some_and(|rest| {
                !rest.is_empty() && !rest.starts_with('_') && settings::lookup(&rest.to_ascii_lowercase()).is_none()
            })
        })
        .collect();
    unknown.sort();
    unknown
}

fn read_file(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfigError::NotAnObject { path: path.into() }),
        Err(source) => Err(ConfigError::Parse { path: path.into(), source }),
    }
}

/// Reads `TARGET_S3_<NAME>` for every setting (aliases included), converting by declared type.
pub fn read_env(var: impl Fn(&str) -> Option<String>) -> Result<Map<String, Value>, ConfigError> {
    let mut map = Map::new();
    for setting in SETTINGS {
        for name in std::iter::once(&setting.name).chain(setting.aliases) {
            let env_name = format!("TARGET_S3_{}", name.to_ascii_uppercase());
            let Some(text) = var(&env_name) else { continue };
            let bad =
                |expected: &str| ConfigError::Env { var: env_name.clone(), message: format!("expected {expected}") };
            let value = match setting.kind {
                Kind::String => Value::String(text),
                Kind::Integer => Value::from(text.trim().parse::<u64>().map_err(|_| bad("a non-negative integer"))?),
                Kind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Value::Bool(true),
                    "false" | "0" | "no" | "off" | "" => Value::Bool(false),
                    _ => return Err(bad("true or false")),
                },
                Kind::Object => serde_json::from_str(&text).map_err(|_| bad("a JSON object"))?,
            };
            map.insert(setting.name.to_string(), value);
        }
    }
    Ok(map)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    /// One JSON array per file, holding the same record bytes as JSONL.
    Json,
    Csv,
    /// Typed columns from the stream's schema; compressed inside the file.
    Parquet,
    /// Object container files with a schema from the stream's schema; compressed inside.
    Avro,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Avro => "avro",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/x-ndjson",
            Format::Json => "application/json",
            Format::Csv => "text/csv",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Avro => "application/avro",
        }
    }
    /// Parquet and Avro compress inside the file; `compression` does not apply to them.
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Avro)
    }
}

/// Settings of the typed formats (Parquet, Avro).
#[derive(Clone, Copy, Debug)]
pub struct BinaryOptions {
    pub parquet_codec: ParquetCodec,
    pub row_group_size: usize,
    pub nested_as_json: bool,
    pub avro_codec: AvroCodec,
    pub unparseable: crate::schema::typed::Unparseable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParquetCodec {
    Snappy,
    Zstd,
    Gzip,
    Lz4,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AvroCodec {
    Deflate,
    Snappy,
    Zstd,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip { level: u32 },
    Zstd { level: i32 },
}

impl Compression {
    /// Suffix added after the format's extension.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip { .. } => ".gz",
            Compression::Zstd { .. } => ".zst",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip { .. } => "gzip",
            Compression::Zstd { .. } => "zstd",
        }
    }
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip { .. } => Some("gzip"),
            Compression::Zstd { .. } => Some("zstd"),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Destination {
    Local { root: PathBuf },
    S3(Box<S3Options>),
}

/// How to reach the bucket and what to set on every object.
#[derive(Clone, Debug)]
pub struct S3Options {
    pub bucket: String,
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub force_path_style: bool,
    pub access_key: Option<(Secret, Secret, Option<Secret>)>,
    pub profile: Option<String>,
    pub role: Option<AssumeRole>,
    pub part_size: usize,
    pub upload_concurrency: usize,
    pub request_timeout: Duration,
    pub max_retries: u32,
    pub checksums_when_required: bool,
    /// Send `If-None-Match: *` so the store refuses to replace an object.
    pub conditional_writes: bool,
    pub objects: ObjectOptions,
}

#[derive(Clone, Debug)]
pub struct AssumeRole {
    pub arn: String,
    pub external_id: Option<Secret>,
    pub session_name: String,
    pub duration: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct ObjectOptions {
    pub server_side_encryption: Option<String>,
    pub kms_key_id: Option<String>,
    pub bucket_key_enabled: Option<bool>,
    pub acl: Option<String>,
    pub storage_class: Option<String>,
    /// URL-encoded `k=v&k2=v2`, as the Tagging header wants it.
    pub tagging: Option<String>,
    pub metadata: Option<std::collections::HashMap<String, String>>,
}

pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PARTS: u64 = 10_000;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_records: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_age: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    pub max_depth: usize,
}

/// The checked configuration the pipeline runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub destination: Destination,
    /// Key template, format and compression of every stream without an override.
    pub output: Output,
    /// `stream_overrides`: exact stream names first, then glob patterns in alphabetical order.
    pub overrides: Vec<(String, Output)>,
    pub run_id: String,
    pub timezone: chrono_tz::Tz,
    /// Field for the partition date macros; `None`: the stream's first bookmark property.
    pub partition_date_field: Option<FieldPath>,
    pub max_open_files: usize,
    /// Key of the run's manifest, when one is written.
    pub manifest_key: Option<KeyTemplate>,
    pub write_success_marker: bool,
    /// Job and template variables, for the manifest.
    pub variables: BTreeMap<String, String>,
    /// `--dry-run`: nothing is written and no STATE printed; the keys are listed instead.
    pub dry_run: bool,
    pub limits: Limits,
    pub validate_records: bool,
    pub validate_formats: bool,
    pub add_record_metadata: bool,
    pub csv: CsvOptions,
    pub binary: BinaryOptions,
    /// JSONL / JSON: write records flattened like CSV columns.
    pub flattening_enabled: bool,
    /// `activate_version_mode: folder`: versions get their own folders; ACTIVATE_VERSION
    /// closes the stream's files.
    pub version_folders: bool,
    pub hard_delete: bool,
    /// Keys may repeat: the run's registry lets them and the store is not asked to refuse.
    pub allow_overwrite: bool,
}

/// How one stream's files are named and written.
#[derive(Debug, Clone)]
pub struct Output {
    pub key: KeyTemplate,
    pub format: Format,
    pub compression: Compression,
}

impl Output {
    /// `jsonl.gz`, `csv`, ...: the `{extension}` macro.
    pub fn extension(&self) -> String {
        format!("{}{}", self.format.extension(), self.compression.suffix())
    }
}

impl Config {
    /// The output settings of `stream`: an exact `stream_overrides` entry, else the first
    /// matching glob, else the defaults.
    pub fn output_for(&self, stream: &str) -> &Output {
        self.overrides
            .iter()
            .find(|(pattern, _)| pattern == stream)
            .or_else(|| self.overrides.iter().find(|(pattern, _)| glob_match(pattern, stream)))
            .map_or(&self.output, |(_, output)| output)
    }
}

/// `*` (any run of characters) and `?` (one character) wildcards, as in shell globs.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One entry of `stream_overrides`; unset fields fall back to the top-level settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOverride {
    pub key_template: Option<String>,
    pub format: Option<String>,
    pub compression: Option<String>,
    pub compression_level: Option<u32>,
}

/// Log settings are read before everything else so that config errors can be logged.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub json: bool,
}

impl RawConfig {
    /// Deserializes the merged map, naming the setting when a value has the wrong type.
    pub fn from_map(map: Map<String, Value>) -> Result<RawConfig, ConfigError> {
        Self::from_merged(Merged { map, unknown_env: Vec::new() })
    }

    /// Deserializes the merged sources. A name that is no setting (a typo such as `bukcet`
    /// would otherwise send the data to the local folder) is an error naming the closest
    /// setting, unless `allow_unknown_settings` is true.
    pub fn from_merged(merged: Merged) -> Result<RawConfig, ConfigError> {
        let Merged { map, unknown_env } = merged;
        let lenient = map.get("allow_unknown_settings").and_then(Value::as_bool).unwrap_or(false);
        let hint = |name: &str, env: bool| match settings::suggest(name) {
            Some(s) if env => format!(" (did you mean TARGET_S3_{}?)", s.to_ascii_uppercase()),
            Some(s) => format!(" (did you mean `{s}`?)"),
            None => String::new(),
        };
        for key in map.keys().filter(|k| settings::lookup(k).is_none()) {
            let why = format!("is not a setting{}", hint(key, false));
            if !lenient {
                return Err(ConfigError::Invalid {
                    setting: key.clone(),
                    message: format!(
                        "{why}; see `target-s3 --about`, or set allow_unknown_settings to true to ignore it"
                    ),
                });
            }
            tracing::warn!(setting = %key, "unknown setting ignored: {why}");
        }
        for var in &unknown_env {
            let name = var.trim_start_matches("TARGET_S3_").to_ascii_lowercase();
            let why = format!("names no setting{}", hint(&name, true));
            if !lenient {
                return Err(ConfigError::Env {
                    var: var.clone(),
                    message: format!(
                        "{why}; see `target-s3 --about`, or set TARGET_S3_ALLOW_UNKNOWN_SETTINGS=true to ignore it"
                    ),
                });
            }
            tracing::warn!(variable = %var, "unknown variable ignored: {why}");
        }
        // S3-only settings given with a value other than the default: with no bucket they mean
        // the bucket is missing (or misspelt), not that the local folder was wanted.
        let s3_given: Vec<&'static str> = map
            .iter()
            .filter_map(|(k, v)| settings::lookup(k).map(|s| (s, v)))
            .filter(|(s, v)| {
                s.s3_only && s.default.map(|d| serde_json::from_str::<Value>(d).ok()) != Some(Some((*v).clone()))
            })
            .map(|(s, _)| s.name)
            .collect();
        let known: Map<String, Value> = map.into_iter().filter(|(k, _)| settings::lookup(k).is_some()).collect();
        let mut raw: RawConfig = serde_path_to_error::deserialize(Value::Object(known))
            .map_err(|e| ConfigError::Invalid { setting: e.path().to_string(), message: e.inner().to_string() })?;
        raw.s3_settings_given = s3_given;
        Ok(raw)
    }

    pub fn log_config(&self) -> Result<LogConfig, ConfigError> {
        one_of("log_level", &self.log_level)?;
        one_of("log_format", &self.log_format)?;
        Ok(LogConfig { level: self.log_level.clone(), json: self.log_format == "json" })
    }

    /// Checks every setting and builds the [`Config`] the pipeline runs on.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let invalid = |setting: &str, message: String| ConfigError::Invalid { setting: setting.into(), message };
        let destination = match self.destination.as_deref() {
            Some(name) => one_of("destination", name)?,
            None if self.bucket.is_some() => "s3",
            None if !self.s3_settings_given.is_empty() => {
                return Err(invalid(
                    "bucket",
                    format!(
                        "is not set, but S3 settings are ({}): without a bucket the data would go to the local folder `{}`; set `bucket` (is it misspelt?), or `destination: local` to write locally on purpose",
                        self.s3_settings_given.join(", "),
                        self.local_path
                    ),
                ));
            }
            None => "local",
        };
        if destination == "local" && !self.s3_settings_given.is_empty() {
            tracing::warn!(settings = %self.s3_settings_given.join(", "), "destination is local: these S3 settings are not used");
        }
        let destination = match destination {
            "local" => {
                if self.local_path.trim().is_empty() {
                    return Err(invalid("local_path", "must not be empty".into()));
                }
                Destination::Local { root: PathBuf::from(&self.local_path) }
            }
            _ => Destination::S3(Box::new(self.s3_options()?)),
        };
        let run_id = match &self.run_id {
            Some(id) if id.trim().is_empty() => {
                return Err(invalid("run_id", "must not be empty".into()));
            }
            Some(id) => id.clone(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        let timezone: chrono_tz::Tz = self.timezone.parse().map_err(|_| {
            invalid("timezone", format!("{:?} is not an IANA time zone name (e.g. UTC, Europe/Berlin)", self.timezone))
        })?;
        let style = match one_of("macro_style", &self.macro_style)? {
            "hotglue" => MacroStyle::Hotglue,
            _ => MacroStyle::Default,
        };
        let variables = self.template_variables_with(|name| std::env::var(name).ok())?;
        let options = ParseOptions { style, variables: &variables };
        let utc = timezone == chrono_tz::Tz::UTC;
        let version_folders = one_of("activate_version_mode", &self.activate_version_mode)? == "folder";
        if self.hard_delete && !version_folders {
            return Err(invalid(
                "hard_delete",
                "needs `activate_version_mode: folder` (versions in their own folders)".into(),
            ));
        }
        let key_template = if version_folders && self.key_template == settings::DEFAULT_KEY_TEMPLATE {
            settings::DEFAULT_VERSIONED_KEY_TEMPLATE
        } else {
            &self.key_template
        };
        let output = self.output(key_template, &self.format, &self.compression, self.compression_level, &options)?;
        self.check_unique(&output.key, "key_template", true, utc)?;
        let mut overrides = Vec::new();
        for (stream, o) in self.stream_overrides.iter().flatten() {
            let named = |e: ConfigError| match e {
                ConfigError::Invalid { setting, message } => {
                    invalid("stream_overrides", format!("{stream:?}: `{setting}` {message}"))
                }
                other => other,
            };
            let overridden = self
                .output(
                    o.key_template.as_deref().unwrap_or(key_template),
                    o.format.as_deref().unwrap_or(&self.format),
                    o.compression.as_deref().unwrap_or(&self.compression),
                    o.compression_level.or(self.compression_level),
                    &options,
                )
                .map_err(named)?;
            // An override for one exact stream name names its stream by itself.
            let exact = !stream.contains(['*', '?']);
            if o.key_template.is_some() {
                self.check_unique(&overridden.key, &format!("stream_overrides.{stream}.key_template"), !exact, utc)?;
            }
            overrides.push((stream.clone(), overridden));
        }
        if version_folders {
            for (stream, o) in std::iter::once(("", &output)).chain(overrides.iter().map(|(s, o)| (s.as_str(), o))) {
                let setting = if stream.is_empty() {
                    "key_template".to_string()
                } else {
                    format!("stream_overrides.{stream}.key_template")
                };
                if !o.key.uses_table_version() {
                    return Err(invalid(
                        &setting,
                        "must contain {table_version} when activate_version_mode is folder".into(),
                    ));
                }
                if self.hard_delete && o.key.version_root().is_none() {
                    return Err(invalid(
                        &setting,
                        "must name the stream as a whole folder (`/{stream}/`) before a whole `/{table_version}/` folder, with only the prefix, variables and fixed text before it, so hard_delete deletes only the stream's own older versions".into(),
                    ));
                }
            }
            // Every template must put version folders in the same place: then two streams'
            // version roots are siblings, and one stream's deletion never lists another's folders.
            if self.hard_delete {
                let base = output.key.version_root_skeleton();
                for (stream, o) in &overrides {
                    if o.key.version_root_skeleton() != base {
                        return Err(invalid(
                            &format!("stream_overrides.{stream}.key_template"),
                            format!(
                                "puts version folders under {:?}, key_template under {:?}: with hard_delete every template must put them in the same place, so one stream's deletion can never reach another stream's folders",
                                o.key.version_root_skeleton().unwrap_or_default(),
                                base.clone().unwrap_or_default()
                            ),
                        ));
                    }
                }
            }
        }
        if let Destination::S3(s3) = &destination {
            let cursor_keys =
                std::iter::once(&output).chain(overrides.iter().map(|(_, o)| o)).any(|o| o.key.uses_cursor());
            if cursor_keys && (self.max_bytes_per_file == 0 || self.max_bytes_per_file > s3.part_size as u64) {
                return Err(invalid(
                    "max_bytes_per_file",
                    format!(
                        "must be at most part_size ({}) when keys use cursor macros: such a key is known only when its file is complete, so each file is sent in one request from memory",
                        s3.part_size
                    ),
                ));
            }
        }
        let manifest_key = if self.write_manifest {
            let manifest = KeyTemplate::parse(&self.prefix, &self.manifest_key_template, &options)
                .map_err(|e| invalid("manifest_key_template", e.message))?;
            if manifest.is_partitioned() {
                let prefix_only = KeyTemplate::parse(&self.prefix, "x", &options).is_ok_and(|p| p.is_partitioned());
                return Err(if prefix_only {
                    invalid(
                        "prefix",
                        "cannot use record macros: the run's manifest lives under the prefix too; put them in key_template".into(),
                    )
                } else {
                    invalid("manifest_key_template", "cannot use record macros".into())
                });
            }
            let u = manifest.uniqueness(utc);
            if !u.across_runs && !self.allow_overwrite {
                return Err(invalid(
                    "manifest_key_template",
                    "gives every run's manifest the same key, so a run would replace the last one's: add {run_id}, {uuid} or a load time in UTC such as {timestamp}, or set allow_overwrite to true".into(),
                ));
            }
            Some(manifest)
        } else {
            None
        };
        if self.max_open_files == 0 {
            return Err(invalid("max_open_files", "must be at least 1".into()));
        }
        let partition_date_field = match &self.partition_date_field {
            Some(f) if f.split('.').any(str::is_empty) => {
                return Err(invalid("partition_date_field", format!("{f:?} is not a field name or dotted path")));
            }
            Some(f) => Some(f.split('.').map(str::to_string).collect()),
            None => None,
        };
        let nonzero = |v: u64| (v > 0).then_some(v);
        let csv = CsvOptions {
            delimiter: csv_char("delimiter", &self.delimiter, true)?,
            quote: csv_char("quote_character", &self.quote_character, false)?,
            header: self.header,
            max_depth: self.flattening_max_depth,
        };
        if csv.delimiter == csv.quote {
            return Err(invalid("quote_character", "must differ from the delimiter".into()));
        }
        if self.row_group_size == 0 {
            return Err(invalid("row_group_size", "must be at least 1".into()));
        }
        let binary = BinaryOptions {
            parquet_codec: match one_of("parquet_compression", &self.parquet_compression)? {
                "snappy" => ParquetCodec::Snappy,
                "zstd" => ParquetCodec::Zstd,
                "gzip" => ParquetCodec::Gzip,
                "lz4" => ParquetCodec::Lz4,
                _ => ParquetCodec::None,
            },
            row_group_size: self.row_group_size as usize,
            nested_as_json: self.nested_as_json,
            avro_codec: match one_of("avro_codec", &self.avro_codec)? {
                "deflate" => AvroCodec::Deflate,
                "snappy" => AvroCodec::Snappy,
                "zstd" => AvroCodec::Zstd,
                _ => AvroCodec::None,
            },
            unparseable: match one_of("unparseable_values", &self.unparseable_values)? {
                "null" => crate::schema::typed::Unparseable::Null,
                _ => crate::schema::typed::Unparseable::Fail,
            },
        };
        Ok(Config {
            destination,
            output,
            overrides,
            run_id,
            timezone,
            partition_date_field,
            max_open_files: self.max_open_files as usize,
            manifest_key,
            write_success_marker: self.write_success_marker,
            variables,
            dry_run: false,
            limits: Limits {
                max_records: nonzero(self.max_records_per_file),
                max_bytes: nonzero(self.max_bytes_per_file),
                max_age: nonzero(self.max_batch_age_seconds).map(Duration::from_secs),
            },
            validate_records: self.validate_records,
            validate_formats: self.validate_formats,
            add_record_metadata: self.add_record_metadata,
            csv,
            binary,
            flattening_enabled: self.flattening_enabled,
            version_folders,
            hard_delete: self.hard_delete,
            allow_overwrite: self.allow_overwrite,
        })
    }

    /// Refuses a data key template under which two files could get the same key: keys must
    /// differ by stream, by file within a run and across runs. The run's key registry and the
    /// store's conditional writes enforce it as well; this check says so before any data is read.
    fn check_unique(&self, key: &KeyTemplate, setting: &str, needs_stream: bool, utc: bool) -> Result<(), ConfigError> {
        if self.allow_overwrite {
            return Ok(());
        }
        let u = key.uniqueness(utc);
        let mut missing = Vec::new();
        if needs_stream && !u.by_stream {
            missing.push("{stream} or {stream_id} (streams would share keys)");
        }
        if !u.within_run {
            missing.push("{part} or {uuid} (files of one run would share keys)");
        }
        if !u.across_runs {
            missing.push(if utc {
                "{run_id}, {uuid} or a load time to the second such as {timestamp} (a later run would reuse this run's keys)"
            } else {
                "{run_id}, {uuid}, {epoch} or {iso_date_time} (a later run would reuse this run's keys; local times repeat when clocks go back)"
            });
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            setting: setting.into(),
            message: format!(
                "can give two files the same key; add {}, or set allow_overwrite to true",
                missing.join(", and ")
            ),
        })
    }
}

impl RawConfig {
    /// Checks and builds the output settings (key template, format, compression) once for the
    /// defaults and once per stream override.
    fn output(
        &self,
        key_template: &str,
        format: &str,
        compression: &str,
        level: Option<u32>,
        options: &ParseOptions<'_>,
    ) -> Result<Output, ConfigError> {
        let invalid = |setting: &str, message: String| ConfigError::Invalid { setting: setting.into(), message };
        let format = match one_of("format", format)? {
            "csv" => Format::Csv,
            "json" => Format::Json,
            "parquet" => Format::Parquet,
            "avro" => Format::Avro,
            _ => Format::Jsonl,
        };
        let compression = match one_of("compression", compression)? {
            _ if format.is_binary() => Compression::None,
            "gzip" => {
                let level = level.unwrap_or(6);
                if level > 9 {
                    return Err(invalid("compression_level", format!("gzip levels are 0 to 9, got {level}")));
                }
                Compression::Gzip { level }
            }
            "zstd" => {
                let level = level.unwrap_or(3);
                if !(1..=19).contains(&level) {
                    return Err(invalid("compression_level", format!("zstd levels are 1 to 19, got {level}")));
                }
                Compression::Zstd { level: level as i32 }
            }
            _ => Compression::None,
        };
        let key = KeyTemplate::parse(&self.prefix, key_template, options)?;
        Ok(Output { key, format, compression })
    }

    /// Job variables (setting first, then the job runner's environment) and the user's
    /// `template_variables`, by lowercase name.
    pub fn template_variables_with(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let settings = [
            ("job_id", &self.job_id),
            ("flow_id", &self.flow_id),
            ("tenant", &self.tenant),
            ("root_tenant_id", &self.root_tenant_id),
            ("tap", &self.tap),
            ("env_id", &self.env_id),
            ("connection_id", &self.connection_id),
            ("account", &self.account),
            ("workspace_id", &self.workspace_id),
            ("data_source", &self.data_source),
        ];
        let mut vars = BTreeMap::new();
        for (name, env_names) in JOB_VARIABLES {
            let from_setting = settings.iter().find(|(n, _)| n == name).and_then(|(_, v)| (*v).clone());
            let value = from_setting.or_else(|| env_names.iter().find_map(|e| env(e).filter(|v| !v.is_empty())));
            if let Some(value) = value {
                vars.insert(name.to_string(), value);
            }
        }
        for (name, value) in self.template_variables.iter().flatten() {
            if crate::keys::is_builtin(name) {
                return Err(ConfigError::Invalid {
                    setting: "template_variables".into(),
                    message: format!("{name:?} is a built-in macro and cannot be redefined"),
                });
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::Invalid {
                    setting: "template_variables".into(),
                    message: format!("{name:?} is not a valid name (letters, digits and `_`)"),
                });
            }
            vars.insert(name.to_ascii_lowercase(), value.clone());
        }
        Ok(vars)
    }

    fn s3_options(&self) -> Result<S3Options, ConfigError> {
        let invalid = |setting: &str, message: String| ConfigError::Invalid { setting: setting.into(), message };
        let Some(bucket) = self.bucket.clone() else {
            return Err(invalid("bucket", "is required for the s3 destination".into()));
        };
        check_bucket_name(&bucket)
            .map_err(|m| invalid("bucket", format!("{bucket:?} is not a valid S3 bucket name: {m}")))?;
        if self.part_size < MIN_PART_SIZE {
            return Err(invalid(
                "part_size",
                format!("must be at least {MIN_PART_SIZE} (5 MiB, the S3 minimum), got {}", self.part_size),
            ));
        }
        if self.part_size > 5 * 1024 * 1024 * 1024 {
            return Err(invalid("part_size", "must be at most 5 GiB".into()));
        }
        if self.max_bytes_per_file == 0 || self.max_bytes_per_file > self.part_size * MAX_PARTS {
            return Err(invalid(
                "max_bytes_per_file",
                format!(
                    "must be between 1 and part_size x 10,000 = {} (S3 allows 10,000 parts per object), got {}",
                    self.part_size * MAX_PARTS,
                    self.max_bytes_per_file
                ),
            ));
        }
        if self.request_timeout_seconds == 0 {
            return Err(invalid("request_timeout_seconds", "must be at least 1".into()));
        }
        if self.upload_concurrency == 0 || self.upload_concurrency > 64 {
            return Err(invalid("upload_concurrency", format!("must be 1 to 64, got {}", self.upload_concurrency)));
        }
        let access_key = match (&self.aws_access_key_id, &self.aws_secret_access_key) {
            (Some(id), Some(secret)) => Some((id.clone(), secret.clone(), self.aws_session_token.clone())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid("aws_secret_access_key", "is required with aws_access_key_id".into()));
            }
            (None, Some(_)) => {
                return Err(invalid("aws_access_key_id", "is required with aws_secret_access_key".into()));
            }
        };
        if !(900..=43200).contains(&self.role_duration_seconds) {
            return Err(invalid(
                "role_duration_seconds",
                format!("must be 900 to 43200, got {}", self.role_duration_seconds),
            ));
        }
        let role = self.role_arn.as_ref().map(|arn| AssumeRole {
            arn: arn.clone(),
            external_id: self.external_id.clone(),
            session_name: self.role_session_name.clone(),
            duration: Duration::from_secs(self.role_duration_seconds),
        });
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid("endpoint_url", format!("must start with http:// or https://, got {url:?}")));
        }
        let checksums_when_required = one_of("checksum_calculation", &self.checksum_calculation)? == "when_required";
        if let Some(sse) = &self.server_side_encryption {
            one_of("server_side_encryption", sse)?;
        }
        if self.kms_key_id.is_some()
            && !self.server_side_encryption.as_deref().is_some_and(|s| s.starts_with("aws:kms"))
        {
            return Err(invalid("kms_key_id", "needs server_side_encryption aws:kms or aws:kms:dsse".into()));
        }
        if let Some(acl) = &self.acl {
            one_of("acl", acl)?;
        }
        let tagging = self.object_tags.as_ref().filter(|t| !t.is_empty()).map(|tags| {
            tags.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect::<Vec<_>>().join("&")
        });
        Ok(S3Options {
            bucket,
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            force_path_style: self.force_path_style,
            access_key,
            profile: self.aws_profile.clone(),
            role,
            part_size: self.part_size as usize,
            upload_concurrency: self.upload_concurrency as usize,
            request_timeout: Duration::from_secs(self.request_timeout_seconds),
            max_retries: self.max_retries,
            checksums_when_required,
            conditional_writes: self.conditional_writes && !self.allow_overwrite,
            objects: ObjectOptions {
                server_side_encryption: self.server_side_encryption.clone(),
                kms_key_id: self.kms_key_id.clone(),
                bucket_key_enabled: self.bucket_key_enabled,
                acl: self.acl.clone(),
                storage_class: self.storage_class.clone(),
                tagging,
                metadata: self
                    .object_metadata
                    .as_ref()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            },
        })
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// S3's general-purpose bucket naming rules.
pub fn check_bucket_name(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("it must be 3 to 63 characters long");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
        return Err("only lowercase letters, digits, dots and hyphens are allowed");
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(name.as_bytes()[0]) || !edge_ok(name.as_bytes()[name.len() - 1]) {
        return Err("it must start and end with a letter or digit");
    }
    if name.contains("..") {
        return Err("it must not contain two dots in a row");
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err("it must not look like an IP address");
    }
    Ok(())
}

/// Checks an enumerated setting against the allowed values in the settings table.
fn one_of<'a>(name: &str, value: &'a str) -> Result<&'a str, ConfigError> {
    let allowed = settings::lookup(name).map(|s| s.allowed).unwrap_or_default();
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::Invalid {
            setting: name.into(),
            message: format!("must be one of {}, got {value:?}", allowed.join(", ")),
        })
    }
}

fn csv_char(setting: &str, value: &str, named: bool) -> Result<u8, ConfigError> {
    let c = match (named, value.to_ascii_lowercase().as_str()) {
        (true, "comma") => ",",
        (true, "semicolon") => ";",
        (true, "tab" | "\\t") => "\t",
        (true, "pipe") => "|",
        _ => value,
    };
    match c.as_bytes() {
        [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Ok(*b),
        _ => Err(ConfigError::Invalid {
            setting: setting.into(),
            message: format!(
                "must be one ASCII character{}, got {value:?}",
                if named { " or comma, semicolon, tab, pipe" } else { "" }
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(v: Value) -> Result<RawConfig, ConfigError> {
        RawConfig::from_map(v.as_object().unwrap().clone())
    }

    #[test]
    fn serde_struct_matches_settings_table() {
        let defaults = serde_json::to_value(RawConfig::default()).unwrap();
        let defaults = defaults.as_object().unwrap();
        let mut names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        let mut fields: Vec<_> = defaults.keys().map(String::as_str).collect();
        names.sort();
        fields.sort();
        assert_eq!(names, fields, "settings table and RawConfig fields differ");
        for s in SETTINGS {
            let table: Value = s.default.map(|d| serde_json::from_str(d).unwrap()).unwrap_or(Value::Null);
            assert_eq!(table, defaults[s.name], "default of {}", s.name);
            for alias in s.aliases {
                let v = if s.default.is_some() { table.clone() } else { Value::String("x".into()) };
                let mut m = Map::new();
                m.insert(alias.to_string(), v);
                RawConfig::from_map(m).unwrap_or_else(|e| panic!("alias {alias} of {} rejected: {e}", s.name));
            }
        }
    }

    #[test]
    fn wrong_type_names_the_setting() {
        let err = raw(serde_json::json!({"max_records_per_file": "many"})).unwrap_err().to_string();
        assert!(err.contains("max_records_per_file"), "{err}");
    }

    #[test]
    fn enumerations_list_allowed_values() {
        let err = raw(serde_json::json!({"format": "xml"})).unwrap().validate().unwrap_err().to_string();
        assert!(err.contains("format") && err.contains("jsonl, json, csv") && err.contains("xml"), "{err}");
    }

    #[test]
    fn s3_destination_checks() {
        let c = raw(serde_json::json!({"s3_bucket": "my-bucket", "path_prefix": "p"})).unwrap().validate().unwrap();
        assert!(matches!(c.destination, Destination::S3(ref o) if o.bucket == "my-bucket"));
        let err = |v: Value| raw(v).unwrap().validate().unwrap_err().to_string();
        assert!(err(serde_json::json!({"bucket": "My_Bucket"})).contains("setting `bucket`"));
        assert!(err(serde_json::json!({"bucket": "ab"})).contains("3 to 63"));
        assert!(err(serde_json::json!({"bucket": "abc", "part_size": 1024})).contains("part_size"));
        let e = err(serde_json::json!({"bucket": "abc", "part_size": 5242880, "max_bytes_per_file": 60000000000u64}));
        assert!(e.contains("max_bytes_per_file") && e.contains("10,000"), "{e}");
        assert!(err(serde_json::json!({"bucket": "abc", "aws_access_key_id": "AK"})).contains("aws_secret_access_key"));
        assert!(err(serde_json::json!({"bucket": "abc", "server_side_encryption": "rot13"})).contains("AES256"));
        assert!(err(serde_json::json!({"bucket": "abc", "kms_key_id": "k"})).contains("aws:kms"));
        let c = raw(serde_json::json!({"bucket": "abc", "object_tags": {"team": "data eng", "a&b": "1"}}))
            .unwrap()
            .validate()
            .unwrap();
        let Destination::S3(o) = c.destination else { panic!() };
        assert_eq!(o.objects.tagging.as_deref(), Some("a%26b=1&team=data%20eng"));
    }

    #[test]
    fn secrets_never_debug_print() {
        let c = raw(serde_json::json!({"bucket": "abc", "aws_access_key_id": "AKIDSECRET", "aws_secret_access_key": "shh-very-secret"})).unwrap();
        let shown = format!("{c:?} {:?}", c.validate().unwrap());
        assert!(!shown.contains("shh-very-secret") && !shown.contains("AKIDSECRET"), "{shown}");
    }

    #[test]
    fn stream_overrides_by_name_then_glob() {
        let c = raw(serde_json::json!({"stream_overrides": {
            "public-*": {"format": "csv"},
            "public-users": {"compression": "zstd"},
            "x?": {"key_template": "{stream}/{uuid}"}
        }}))
        .unwrap()
        .validate()
        .unwrap();
        assert_eq!(c.output_for("public-users").compression, Compression::Zstd { level: 3 });
        assert_eq!(c.output_for("public-users").format, Format::Jsonl);
        assert_eq!(c.output_for("public-orders").format, Format::Csv);
        assert_eq!(c.output_for("other").format, Format::Jsonl);
        assert!(
            glob_match("x?", "xy") && !glob_match("x?", "xyz") && glob_match("*", "") && glob_match("a*b*c", "aXbYbc")
        );
        let e = raw(serde_json::json!({"stream_overrides": {"s": {"format": "xml"}}})).unwrap().validate().unwrap_err();
        assert!(e.to_string().contains("stream_overrides") && e.to_string().contains("\"s\""), "{e}");
        assert!(raw(serde_json::json!({"stream_overrides": {"s": {"frmat": "csv"}}})).is_err());
    }

    #[test]
    fn csv_delimiter_by_name() {
        let c = raw(serde_json::json!({"delimiter": "tab", "quote_character": "'"})).unwrap().validate().unwrap();
        assert_eq!((c.csv.delimiter, c.csv.quote), (b'\t', b'\''));
        assert!(raw(serde_json::json!({"delimiter": ";;"})).unwrap().validate().is_err());
    }

    #[test]
    fn env_values_are_typed_by_the_table() {
        let vars = |name: &str| match name {
            "TARGET_S3_MAX_RECORDS_PER_FILE" => Some("10".to_string()),
            "TARGET_S3_VALIDATE_RECORDS" => Some("false".to_string()),
            "TARGET_S3_PATH_PREFIX" => Some("exports".to_string()),
            _ => None,
        };
        let map = read_env(vars).unwrap();
        assert_eq!(map["max_records_per_file"], Value::from(10));
        assert_eq!(map["validate_records"], Value::Bool(false));
        assert_eq!(map["prefix"], Value::from("exports"));
        let bad = read_env(|n| (n == "TARGET_S3_HEADER").then(|| "maybe".to_string())).unwrap_err();
        assert!(bad.to_string().contains("TARGET_S3_HEADER"), "{bad}");
    }

    #[test]
    fn nulls_unset_and_later_files_win() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(&a, r#"{"format": "csv", "prefix": "x"}"#).unwrap();
        std::fs::write(&b, r#"{"format": "jsonl", "prefix": null}"#).unwrap();
        let map = merge_sources(&[Source::File(a), Source::File(b)]).unwrap();
        let c = RawConfig::from_merged(map).unwrap();
        assert_eq!((c.format.as_str(), c.prefix.as_str()), ("jsonl", ""));
    }
}
