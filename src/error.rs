//! Typed errors inside, one readable line at the edge. Every message names what went wrong and
//! where (setting, input line and stream, object key) and never contains a secret.

use std::fmt;
use std::path::PathBuf;

/// Anything that stops a run. `main` prints it as one line and maps it to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("input {0}")]
    Input(#[from] InputError),
    #[error("reading input: {0}")]
    Read(std::io::Error),
    #[error("writing output: {0}")]
    Storage(#[from] StorageError),
    #[error("stopped by a second signal ({0}): open files were discarded and no newer STATE printed")]
    Interrupted(i32),
    #[error("connection check failed (see the steps above)")]
    Check,
    #[error("writing STATE to stdout: {0}")]
    Stdout(std::io::Error),
    #[error("{0}")]
    Key(#[from] crate::keys::KeyError),
    #[error("{0}")]
    Table(#[from] TableError),
}

/// A table could not be read, created or committed to (`table_format: delta` or `iceberg`).
/// A store-wide check (no table yet) names no table.
#[derive(Debug, thiserror::Error)]
#[error("{}{message}", if table.is_empty() { "tables: ".to_string() } else { format!("table `{table}`: ") })]
pub struct TableError {
    /// The table's folder (its key without a file name).
    pub table: String,
    pub message: String,
}

impl TableError {
    /// `message` cut to one line: delta-rs and object_store errors can carry a store's XML
    /// answer or a backtrace on the lines after the first.
    pub fn new(table: &str, message: String) -> TableError {
        let code = message.split("<Code>").nth(1).and_then(|rest| rest.split("</Code>").next()).map(str::to_string);
        let first = message.lines().next().unwrap_or_default();
        let first = first.split("<?xml").next().unwrap_or_default().trim().trim_end_matches(':').to_string();
        let message = match code.as_deref() {
            Some("NoSuchBucket") => {
                format!("{first}: the bucket does not exist (check `bucket`, `region` and `endpoint_url`)")
            }
            Some(code) => format!("{first} ({code})"),
            None => first,
        };
        TableError { table: table.to_string(), message }
    }
}

impl Error {
    /// Exit codes: 2 for a configuration (or usage) error, 1 for anything that failed during the
    /// run. Job runners can tell "fix the config" from "retry / look at the data".
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 2,
            Error::Interrupted(_) => 130,
            _ => 1,
        }
    }
}

impl From<crate::keys::TemplateError> for ConfigError {
    fn from(e: crate::keys::TemplateError) -> ConfigError {
        ConfigError::Invalid { setting: e.setting, message: e.message }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {} is not valid JSON: {source}", path.display())]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("config file {} must hold a JSON object", path.display())]
    NotAnObject { path: PathBuf },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("setting `{setting}`: {message}")]
    Invalid { setting: String, message: String },
}

/// A problem with one input line.
#[derive(Debug)]
pub struct InputError {
    pub line: u64,
    pub stream: Option<String>,
    pub kind: InputErrorKind,
    /// For a record read from a BATCH file: the file and the line inside it.
    pub batch: Option<BatchPlace>,
}

/// A line of a BATCH file.
#[derive(Debug, Clone)]
pub struct BatchPlace {
    /// The file's URL, without credentials.
    pub url: std::sync::Arc<str>,
    pub line: u64,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(stream) = &self.stream {
            write!(f, " (stream {stream:?})")?;
        }
        if let Some(batch) = &self.batch {
            write!(f, ", BATCH file {} line {}", batch.url, batch.line)?;
        }
        write!(f, ": {}", self.kind)?;
        // The setting that would have loaded (or set aside) what stopped the run.
        match self.kind {
            InputErrorKind::Invalid(_) | InputErrorKind::MissingKeyProperty(_) => f.write_str(
                " (`invalid_records: dead_letter` sets such records aside in dead-letter files and goes on)",
            ),
            InputErrorKind::Encode(_) => f.write_str(
                " (`unparseable_values: null` writes values that do not fit their column as null; `schema_overrides` changes a column's type)",
            ),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for InputError {}

#[derive(Debug, thiserror::Error)]
pub enum InputErrorKind {
    #[error("malformed JSON: {0}")]
    Json(serde_json::Error),
    #[error("invalid UTF-8 at byte {0} of the line")]
    Utf8(usize),
    #[error("message has no \"type\"")]
    NoType,
    #[error("unknown message type {0:?} (expected SCHEMA, RECORD, STATE, ACTIVATE_VERSION or BATCH)")]
    UnknownType(String),
    #[error("{0} message has no {1:?}")]
    MissingField(&'static str, &'static str),
    #[error("{0} message: {1:?} must be {2}")]
    WrongField(&'static str, &'static str, &'static str),
    #[error("{0} nests objects or arrays deeper than 127 levels (the input's nesting limit)")]
    TooDeep(&'static str),
    #[error("RECORD before any SCHEMA for this stream")]
    RecordBeforeSchema,
    #[error("SCHEMA has no \"properties\" (a stream's schema must describe its record's fields)")]
    SchemaNoProperties,
    #[error("SCHEMA is not a valid JSON Schema: {0}")]
    InvalidSchema(String),
    #[error("SCHEMA cannot be written in this stream's format: {0}")]
    SchemaUnwritable(String),
    #[error("SCHEMA cannot be a table: {0}")]
    SchemaNotTable(String),
    #[error("record is missing key property {0:?}")]
    MissingKeyProperty(String),
    #[error("record does not match the schema: {0}")]
    Invalid(String),
    #[error("BATCH message: {0}")]
    Batch(String),
    #[error("cannot write record: {0}")]
    Encode(String),
    #[error("{0}")]
    Key(crate::keys::KeyError),
}

/// A failure to write an object (local folder or S3).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{action} {}: {source}", path.display())]
    Local { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error(
        "{} already exists, and target-s3 never replaces a file; the key template or run_id repeats a key of an earlier run (object key {key:?}): add {{run_id}} or {{uuid}}, or set allow_overwrite to true",
        path.display()
    )]
    Exists { key: String, path: PathBuf },
    #[error("{action} {target}: {message}")]
    S3 { action: &'static str, target: String, message: String },
    #[error("S3 client: {0}")]
    S3Setup(String),
    #[error("the writer thread stopped unexpectedly")]
    WriterStopped,
    #[error("compressing {key}: {source}")]
    Compress { key: String, source: std::io::Error },
}
