//! Configuration: JSON files and `TARGET_S3_*` variables ([`sources`]) merged into one serde
//! struct ([`RawConfig`], defaults from the one [`settings`] table), then checked once at
//! start-up ([`validate`], S3 options in `s3`) into a [`Config`] the pipeline can trust. Every
//! check that can fail before the first input line fails here, naming the setting, and no
//! message quotes a secret setting's value or the credentials in an endpoint URL.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keys::{FieldPath, KeyTemplate};

/// Declares an enumerated setting: the Rust enum, its spellings `NAMES` (the settings table's
/// `allowed` list, so the two cannot drift), and serde (de)serialization by those spellings
/// with the error every enumerated setting shares: `must be one of a, b, got "c"`.
macro_rules! choice {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The value spelt `name` (exactly; spellings are case-sensitive).
            pub fn from_name(name: &str) -> Option<Self> {
                $(if name == $text {
                    return Some($name::$variant);
                })+
                None
            }

            /// Parses `name` as setting `setting`, with the shared error text.
            pub fn parse(setting: &str, name: &str) -> Result<Self, $crate::error::ConfigError> {
                Self::from_name(name).ok_or_else(|| $crate::error::ConfigError::Invalid {
                    setting: setting.into(),
                    message: $crate::config::one_of_message(Self::NAMES, name),
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::config::deserialize_choice(deserializer, Self::NAMES, Self::from_name)
            }
        }
    };
}

mod raw;
mod s3;
pub mod settings;
mod sources;
mod table;
#[cfg(test)]
mod tests;
mod validate;

pub use raw::{EndpointUrl, LogConfig, RawConfig, StreamOverride};
pub use s3::{check_bucket_name, redact_url};
pub use settings::{LogFormat, LogLevel};
pub use sources::{Merged, Source, canonical, merge_sources, read_env, unknown_env_vars};
pub use table::{Granularity, IcebergCatalog, IcebergOptions, Partition, TableOptions};

/// `must be one of a, b, c, got "x"`: the one wording of a bad enumerated value.
pub fn one_of_message(names: &[&str], got: &str) -> String {
    format!("must be one of {}, got {got:?}", names.join(", "))
}

/// Deserializes a `choice!` enum from its spelling.
fn deserialize_choice<'de, D, T>(
    deserializer: D,
    names: &'static [&'static str],
    from_name: fn(&str) -> Option<T>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Visitor<T> {
        names: &'static [&'static str],
        from_name: fn(&str) -> Option<T>,
    }
    impl<T> serde::de::Visitor<'_> for Visitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "one of {}", self.names.join(", "))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            (self.from_name)(v).ok_or_else(|| E::custom(one_of_message(self.names, v)))
        }
    }
    deserializer.deserialize_str(Visitor { names, from_name })
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

choice! {
    /// `format`.
    pub enum Format {
        Jsonl = "jsonl",
        /// One JSON array per file, holding the same record bytes as JSONL.
        Json = "json",
        Csv = "csv",
        /// Typed columns from the stream's schema; compressed inside the file.
        Parquet = "parquet",
        /// Object container files with a schema from the stream's schema; compressed inside.
        Avro = "avro",
    }
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
        match self {
            Format::Parquet | Format::Avro => true,
            Format::Jsonl | Format::Json | Format::Csv => false,
        }
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

choice! {
    /// `parquet_compression`: the codec of the pages inside a Parquet file.
    pub enum ParquetCodec {
        Snappy = "snappy",
        Zstd = "zstd",
        Gzip = "gzip",
        /// LZ4_RAW.
        Lz4 = "lz4",
        None = "none",
    }
}

choice! {
    /// `avro_codec`: the codec of the blocks inside an Avro file.
    pub enum AvroCodec {
        Deflate = "deflate",
        Snappy = "snappy",
        Zstd = "zstd",
        None = "none",
    }
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
#[derive(Clone)]
pub struct S3Options {
    pub bucket: String,
    /// The setting, else `us-east-1` when an endpoint is set and neither the environment nor
    /// the profile names a region (the SDK would otherwise ask the EC2 metadata service, slowly
    /// and with long warnings, off EC2). `None`: the SDK's own chain decides.
    pub region: Option<String>,
    /// The `endpoint_url` setting, else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` (as the SDK
    /// reads them), so what is shown is what is used. May hold `user:password@`: never print it,
    /// print `endpoint_display`.
    pub endpoint_url: Option<String>,
    /// The endpoint for messages: `endpoint_url` without its `user:password@`, or `AWS S3`.
    pub endpoint_display: String,
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

/// Written out so the endpoint is shown redacted; secrets are `Secret`s, which hide themselves.
impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint_display)
            .field("force_path_style", &self.force_path_style)
            .field("access_key", &self.access_key)
            .field("profile", &self.profile)
            .field("role", &self.role)
            .field("part_size", &self.part_size)
            .field("upload_concurrency", &self.upload_concurrency)
            .field("request_timeout", &self.request_timeout)
            .field("max_retries", &self.max_retries)
            .field("checksums_when_required", &self.checksums_when_required)
            .field("conditional_writes", &self.conditional_writes)
            .field("objects", &self.objects)
            .finish()
    }
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
    /// URL-encoded `k=v&k2=v2`, as the Tagging header wants it (checked against S3's tag rules).
    pub tagging: Option<String>,
    /// Header-safe: token keys, printable ASCII values (others RFC 2047-encoded at start-up).
    pub metadata: Option<std::collections::HashMap<String, String>>,
}

pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// S3's limit of parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// The parts a file may plan for: `max_bytes_per_file` (and "no limit", 0) stop at
/// `part_size` x this. A quarter of S3's 10,000 is kept back because a file's size is an
/// estimate made ahead of the compressor and the Parquet writer (README: a Parquet file can end
/// up a third above the limit), and an upload that reaches part 10,001 fails at its very end.
pub const PLANNED_PARTS: u64 = 7_500;
// A file a third above its limit still fits in one upload.
const _: () = assert!(PLANNED_PARTS * 4 / 3 <= MAX_PARTS);

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_records: Option<u64>,
    pub max_bytes: Option<u64>,
    pub max_age: Option<Duration>,
}

#[derive(Clone, Debug)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub quote: u8,
    pub header: bool,
    pub max_depth: usize,
    /// What a null or missing value is written as (`csv_null_value`).
    pub null_value: String,
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
    /// Memory budget of the open files (`max_open_bytes`).
    pub max_open_bytes: u64,
    /// Longest input line (`max_line_bytes`).
    pub max_line_bytes: usize,
    /// Threads checking records ahead of the decode thread (`workers`, resolved).
    pub workers: usize,
    /// Key of the run's manifest, when one is written.
    pub manifest_key: Option<KeyTemplate>,
    pub write_success_marker: bool,
    /// Job and template variables, for the manifest.
    pub variables: BTreeMap<String, String>,
    /// `--dry-run`: nothing is written and no STATE printed; the keys are listed instead.
    pub dry_run: bool,
    pub limits: Limits,
    pub validate_records: bool,
    /// `invalid_records: dead_letter`: where records that break their schema go instead of
    /// stopping the run (JSONL in the run's compression).
    pub dead_letter: Option<Output>,
    pub validate_formats: bool,
    pub add_record_metadata: bool,
    pub csv: CsvOptions,
    /// Whether compressed objects carry `Content-Encoding` (`content_encoding`).
    pub content_encoding: settings::ContentEncoding,
    pub binary: BinaryOptions,
    /// `schema_overrides`: stream (or `*`) -> field -> column type.
    pub schema_overrides:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, crate::schema::typed::Override>>,
    /// JSONL / JSON: write records flattened like CSV columns.
    pub flattening_enabled: bool,
    /// `activate_version_mode: folder`: versions get their own folders; ACTIVATE_VERSION
    /// closes the stream's files.
    pub version_folders: bool,
    pub hard_delete: bool,
    /// Keys may repeat: the run's registry lets them and the store is not asked to refuse.
    pub allow_overwrite: bool,
    /// `table_format: delta`: each stream's files are committed to its Delta table.
    pub table: Option<TableOptions>,
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

/// Debug builds only: a size the tests set in the environment variable `name` (1 to `max`), so
/// small inputs cross many boundaries.
#[cfg(debug_assertions)]
pub fn debug_size(name: &str, max: usize) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse::<usize>().ok()).map(|n| n.clamp(1, max))
}
