//! Configuration: JSON files and `TARGET_S3_*` variables merged into one serde struct
//! ([`RawConfig`]), then checked once at start-up into a [`Config`] the pipeline can trust.
//! Every check that can fail before the first input line fails here, naming the setting.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ConfigError;
use crate::settings::{self, Kind, SETTINGS};
use crate::template::KeyTemplate;

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
    pub run_id: Option<String>,
    pub format: String,
    pub compression: String,
    pub compression_level: u32,
    #[serde(alias = "batch_size_rows")]
    pub max_records_per_file: u64,
    pub max_bytes_per_file: u64,
    pub max_batch_age_seconds: u64,
    pub validate_records: bool,
    pub validate_formats: bool,
    #[serde(alias = "csv_delimiter")]
    pub delimiter: String,
    #[serde(alias = "csv_quote_character")]
    pub quote_character: String,
    #[serde(alias = "csv_header")]
    pub header: bool,
    pub flattening_max_depth: usize,
    pub log_level: String,
    pub log_format: String,
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
            run_id: None,
            format: "jsonl".into(),
            compression: "gzip".into(),
            compression_level: 6,
            max_records_per_file: 1_000_000,
            max_bytes_per_file: 128 * 1024 * 1024,
            max_batch_age_seconds: 300,
            validate_records: true,
            validate_formats: false,
            delimiter: ",".into(),
            quote_character: "\"".into(),
            header: true,
            flattening_max_depth: 10,
            log_level: "info".into(),
            log_format: "text".into(),
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
        if arg == "ENV" {
            Source::Env
        } else {
            Source::File(arg.into())
        }
    }
}

/// Merges the sources in order (later keys win) into one JSON object.
pub fn merge_sources(sources: &[Source]) -> Result<Map<String, Value>, ConfigError> {
    let mut merged = Map::new();
    for source in sources {
        let layer = match source {
            Source::File(path) => read_file(path)?,
            Source::Env => read_env(|name| std::env::var(name).ok())?,
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
    Ok(merged)
}

fn read_file(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfigError::NotAnObject { path: path.into() }),
        Err(source) => Err(ConfigError::Parse {
            path: path.into(),
            source,
        }),
    }
}

/// Reads `TARGET_S3_<NAME>` for every setting (aliases included), converting by declared type.
pub fn read_env(var: impl Fn(&str) -> Option<String>) -> Result<Map<String, Value>, ConfigError> {
    let mut map = Map::new();
    for setting in SETTINGS {
        for name in std::iter::once(&setting.name).chain(setting.aliases) {
            let env_name = format!("TARGET_S3_{}", name.to_ascii_uppercase());
            let Some(text) = var(&env_name) else { continue };
            let bad = |expected: &str| ConfigError::Env {
                var: env_name.clone(),
                message: format!("expected {expected}"),
            };
            let value = match setting.kind {
                Kind::String => Value::String(text),
                Kind::Integer => Value::from(
                    text.trim()
                        .parse::<u64>()
                        .map_err(|_| bad("a non-negative integer"))?,
                ),
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
    Csv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/x-ndjson",
            Format::Csv => "text/csv",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip { level: u32 },
}

impl Compression {
    /// Suffix added after the format's extension.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip { .. } => ".gz",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip { .. } => "gzip",
        }
    }
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip { .. } => Some("gzip"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Local { root: PathBuf },
}

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
    pub key: KeyTemplate,
    pub run_id: String,
    pub format: Format,
    pub compression: Compression,
    pub limits: Limits,
    pub validate_records: bool,
    pub validate_formats: bool,
    pub csv: CsvOptions,
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
        for key in map.keys() {
            if settings::lookup(key).is_none() {
                tracing::warn!(setting = %key, "unknown setting ignored");
            }
        }
        let known: Map<String, Value> = map
            .into_iter()
            .filter(|(k, _)| settings::lookup(k).is_some())
            .collect();
        serde_path_to_error::deserialize(Value::Object(known)).map_err(|e| ConfigError::Invalid {
            setting: e.path().to_string(),
            message: e.inner().to_string(),
        })
    }

    pub fn log_config(&self) -> Result<LogConfig, ConfigError> {
        one_of("log_level", &self.log_level)?;
        one_of("log_format", &self.log_format)?;
        Ok(LogConfig {
            level: self.log_level.clone(),
            json: self.log_format == "json",
        })
    }

    /// Checks every setting and builds the [`Config`] the pipeline runs on.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let invalid = |setting: &str, message: String| ConfigError::Invalid {
            setting: setting.into(),
            message,
        };
        let destination = match self.destination.as_deref() {
            Some(name) => one_of("destination", name)?,
            None if self.bucket.is_some() => "s3",
            None => "local",
        };
        let destination = match destination {
            "local" => {
                if self.local_path.trim().is_empty() {
                    return Err(invalid("local_path", "must not be empty".into()));
                }
                Destination::Local {
                    root: PathBuf::from(&self.local_path),
                }
            }
            _ => {
                return Err(invalid(
                    "destination",
                    "the s3 destination is not available in this build yet; use `local`".into(),
                ));
            }
        };
        let format = match one_of("format", &self.format)? {
            "csv" => Format::Csv,
            _ => Format::Jsonl,
        };
        if self.compression_level > 9 {
            return Err(invalid(
                "compression_level",
                format!("must be 0 to 9, got {}", self.compression_level),
            ));
        }
        let compression = match one_of("compression", &self.compression)? {
            "gzip" => Compression::Gzip {
                level: self.compression_level,
            },
            _ => Compression::None,
        };
        let run_id = match &self.run_id {
            Some(id) if id.trim().is_empty() => {
                return Err(invalid("run_id", "must not be empty".into()));
            }
            Some(id) => id.clone(),
            None => uuid::Uuid::now_v7().to_string(),
        };
        let key = KeyTemplate::parse(&self.prefix, &self.key_template, self.allow_overwrite)?;
        let nonzero = |v: u64| (v > 0).then_some(v);
        let csv = CsvOptions {
            delimiter: csv_char("delimiter", &self.delimiter, true)?,
            quote: csv_char("quote_character", &self.quote_character, false)?,
            header: self.header,
            max_depth: self.flattening_max_depth,
        };
        if csv.delimiter == csv.quote {
            return Err(invalid(
                "quote_character",
                "must differ from the delimiter".into(),
            ));
        }
        Ok(Config {
            destination,
            key,
            run_id,
            format,
            compression,
            limits: Limits {
                max_records: nonzero(self.max_records_per_file),
                max_bytes: nonzero(self.max_bytes_per_file),
                max_age: nonzero(self.max_batch_age_seconds).map(Duration::from_secs),
            },
            validate_records: self.validate_records,
            validate_formats: self.validate_formats,
            csv,
        })
    }
}

/// Checks an enumerated setting against the allowed values in the settings table.
fn one_of<'a>(name: &str, value: &'a str) -> Result<&'a str, ConfigError> {
    let allowed = settings::lookup(name)
        .map(|s| s.allowed)
        .unwrap_or_default();
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
                if named {
                    " or comma, semicolon, tab, pipe"
                } else {
                    ""
                }
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
        let names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        let fields: Vec<_> = defaults.keys().map(String::as_str).collect();
        assert_eq!(
            names, fields,
            "settings table and RawConfig fields differ (order matters too)"
        );
        for s in SETTINGS {
            let table: Value = s
                .default
                .map(|d| serde_json::from_str(d).unwrap())
                .unwrap_or(Value::Null);
            assert_eq!(table, defaults[s.name], "default of {}", s.name);
            for alias in s.aliases {
                let v = if s.default.is_some() {
                    table.clone()
                } else {
                    Value::String("x".into())
                };
                let mut m = Map::new();
                m.insert(alias.to_string(), v);
                RawConfig::from_map(m)
                    .unwrap_or_else(|e| panic!("alias {alias} of {} rejected: {e}", s.name));
            }
        }
    }

    #[test]
    fn wrong_type_names_the_setting() {
        let err = raw(serde_json::json!({"max_records_per_file": "many"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_records_per_file"), "{err}");
    }

    #[test]
    fn enumerations_list_allowed_values() {
        let err = raw(serde_json::json!({"format": "xml"}))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("format") && err.contains("jsonl, csv") && err.contains("xml"),
            "{err}"
        );
    }

    #[test]
    fn csv_delimiter_by_name() {
        let c = raw(serde_json::json!({"delimiter": "tab", "quote_character": "'"}))
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!((c.csv.delimiter, c.csv.quote), (b'\t', b'\''));
        assert!(
            raw(serde_json::json!({"delimiter": ";;"}))
                .unwrap()
                .validate()
                .is_err()
        );
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
        let c = RawConfig::from_map(map).unwrap();
        assert_eq!((c.format.as_str(), c.prefix.as_str()), ("jsonl", ""));
    }
}
