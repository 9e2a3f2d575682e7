//! The settings as the user gave them, typed: [`RawConfig`] is deserialized from the merged
//! sources after every value's JSON type was checked against the settings table and every unset
//! setting was given the table's default. The table is the only copy of the defaults: a setting
//! without a default must be an `Option` here, or deserializing the empty config fails (tested).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::settings::{
    self, CannedAcl, ChecksumCalculation, CompressionKind, ContentEncoding, DestinationKind, IncompatibleSchema,
    InvalidRecords, KeyMacroStyle, Kind, LogFormat, LogLevel, SETTINGS, ServerSideEncryption, Setting, TableFormat,
    UnparseableValues, VersionMode,
};
use super::sources::{self, Merged};
use super::{AvroCodec, Format, ParquetCodec, Secret};
use crate::error::ConfigError;

/// The merged settings with the table's defaults filled in. Field names are the table's names;
/// aliases are renamed by [`sources::canonical`] before this struct sees them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub destination: Option<DestinationKind>,
    pub local_path: String,
    pub bucket: Option<String>,
    pub prefix: String,
    pub key_template: String,
    pub allow_overwrite: bool,
    pub allow_unknown_settings: bool,
    pub run_id: Option<String>,
    pub timezone: String,
    pub macro_style: KeyMacroStyle,
    pub template_variables: Option<BTreeMap<String, String>>,
    pub partition_date_field: Option<String>,
    pub max_line_bytes: u64,
    pub workers: Option<u64>,
    pub max_open_files: u64,
    pub max_open_bytes: u64,
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
    pub activate_version_mode: VersionMode,
    pub hard_delete: bool,
    pub format: Format,
    pub compression: CompressionKind,
    pub compression_level: Option<u64>,
    pub max_records_per_file: u64,
    pub max_bytes_per_file: u64,
    pub max_batch_age_seconds: u64,
    pub validate_records: bool,
    pub invalid_records: InvalidRecords,
    pub dead_letter_key_template: String,
    pub add_record_metadata: bool,
    pub validate_formats: bool,
    pub delimiter: String,
    pub quote_character: String,
    pub header: bool,
    pub csv_null_value: String,
    pub flattening_enabled: bool,
    pub flattening_max_depth: usize,
    pub parquet_compression: ParquetCodec,
    pub row_group_size: u64,
    pub nested_as_json: bool,
    pub avro_codec: AvroCodec,
    pub unparseable_values: UnparseableValues,
    pub schema_overrides: Option<BTreeMap<String, BTreeMap<String, String>>>,
    pub table_format: TableFormat,
    pub table_path: String,
    pub partition_by: Vec<String>,
    pub incompatible_schema: IncompatibleSchema,
    pub pipeline_id: String,
    pub single_writer: bool,
    pub commit_interval_seconds: u64,
    pub checkpoint_interval: u64,
    pub iceberg_catalog_uri: Option<String>,
    pub iceberg_catalog_name: String,
    pub iceberg_namespace: String,
    pub iceberg_warehouse: Option<String>,
    pub iceberg_catalog_token: Option<Secret>,
    pub iceberg_catalog_credential: Option<Secret>,
    pub iceberg_catalog_scope: String,
    pub iceberg_expire_snapshots: bool,
    pub aws_access_key_id: Option<Secret>,
    pub aws_secret_access_key: Option<Secret>,
    pub aws_session_token: Option<Secret>,
    pub aws_profile: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<Secret>,
    pub role_session_name: String,
    pub role_duration_seconds: u64,
    pub region: Option<String>,
    pub endpoint_url: Option<EndpointUrl>,
    pub force_path_style: bool,
    pub part_size: u64,
    pub upload_concurrency: u64,
    pub request_timeout_seconds: u64,
    pub max_retries: u64,
    pub checksum_calculation: ChecksumCalculation,
    pub content_encoding: ContentEncoding,
    pub conditional_writes: bool,
    pub server_side_encryption: Option<ServerSideEncryption>,
    pub kms_key_id: Option<String>,
    pub bucket_key_enabled: Option<bool>,
    pub acl: Option<CannedAcl>,
    pub storage_class: Option<String>,
    pub object_tags: Option<BTreeMap<String, String>>,
    pub object_metadata: Option<BTreeMap<String, String>>,
    pub stream_overrides: Option<BTreeMap<String, StreamOverride>>,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// S3-only settings the sources gave a non-default value (not a setting itself).
    #[serde(skip)]
    pub s3_settings_given: Vec<&'static str>,
}

/// `endpoint_url` as given. Its `Debug` hides a `user:password@`, like every message that
/// shows it ([`super::redact_url`]).
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct EndpointUrl(pub String);

impl std::fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", super::redact_url(&self.0))
    }
}

/// One entry of `stream_overrides`; unset fields fall back to the top-level settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOverride {
    pub key_template: Option<String>,
    pub format: Option<Format>,
    pub compression: Option<CompressionKind>,
    pub compression_level: Option<u64>,
}

/// Log settings are read before everything else so that config errors can be logged.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: LogLevel,
    pub json: bool,
}

/// The table's defaults, i.e. the empty configuration deserialized: not a second copy of them.
impl Default for RawConfig {
    fn default() -> Self {
        RawConfig::from_map(Map::new()).expect("the settings table's defaults deserialize (a unit test checks)")
    }
}

impl RawConfig {
    /// Deserializes one map of settings, naming the setting when a value has the wrong type.
    pub fn from_map(map: Map<String, Value>) -> Result<RawConfig, ConfigError> {
        Self::from_merged(Merged { map, unknown_env: Vec::new() })
    }

    /// Deserializes the merged sources. A name that is no setting (a typo such as `bukcet`
    /// would otherwise send the data to the local folder) is an error naming the closest
    /// setting, unless `allow_unknown_settings` is true. Every value must have its setting's
    /// declared type; unset settings take the table's default.
    pub fn from_merged(merged: Merged) -> Result<RawConfig, ConfigError> {
        let Merged { map, unknown_env } = merged;
        let map = sources::canonical(map)?;
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
        let mut known = Map::new();
        for (name, value) in map {
            let Some(setting) = settings::lookup(&name) else { continue };
            if !value.is_null() {
                check_kind(setting, &value)?;
                known.insert(name, value);
            }
        }
        // S3-only settings given with a value other than the default: with no bucket they mean
        // the bucket is missing (or misspelt), not that the local folder was wanted.
        let s3_given: Vec<&'static str> = SETTINGS
            .iter()
            .filter(|s| s.s3_only && known.get(s.name).is_some_and(|v| Some(v) != default_of(s).as_ref()))
            .map(|s| s.name)
            .collect();
        for s in SETTINGS {
            if let Some(default) = default_of(s)
                && !known.contains_key(s.name)
            {
                known.insert(s.name.to_string(), default);
            }
        }
        let mut raw: RawConfig = serde_path_to_error::deserialize(Value::Object(known)).map_err(serde_error)?;
        raw.s3_settings_given = s3_given;
        Ok(raw)
    }

    /// The log settings (typed by now: checked when the config was read).
    pub fn log_config(&self) -> Result<LogConfig, ConfigError> {
        let json = match self.log_format {
            LogFormat::Text => false,
            LogFormat::Json => true,
        };
        Ok(LogConfig { level: self.log_level, json })
    }
}

/// The table's default of `setting` as JSON (`None`: unset). The table's literals are JSON; a
/// unit test parses every one, so this cannot fail on a released table.
fn default_of(setting: &Setting) -> Option<Value> {
    setting.default.map(|d| serde_json::from_str(d).expect("the settings table's defaults are JSON (tested)"))
}

/// Checks a value's JSON type against the table, before serde sees it: one wording for every
/// setting, and a secret setting's value is never quoted (only its type is named).
fn check_kind(setting: &Setting, value: &Value) -> Result<(), ConfigError> {
    let fits = match setting.kind {
        Kind::String => value.is_string(),
        Kind::Integer => value.is_u64(),
        Kind::Boolean => value.is_boolean(),
        Kind::Object => value.is_object(),
        Kind::Array => value.as_array().is_some_and(|items| items.iter().all(Value::is_string)),
    };
    if fits {
        return Ok(());
    }
    let expected = match (setting.kind, value) {
        (Kind::String, _) => "a string",
        (Kind::Integer, Value::Number(n)) if n.is_i64() => "a non-negative integer",
        (Kind::Integer, Value::Number(_)) => "a whole number from 0 to 18446744073709551615",
        (Kind::Integer, _) => "an integer",
        (Kind::Boolean, _) => "true or false",
        (Kind::Object, _) => "a JSON object",
        (Kind::Array, _) => "a JSON array of strings",
    };
    let got = if setting.secret {
        format!("{} (the value is not shown: the setting is secret)", type_name(value))
    } else {
        shown(value)
    };
    Err(ConfigError::Invalid { setting: setting.name.into(), message: format!("must be {expected}, got {got}") })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value as compact JSON, cut to a readable length.
fn shown(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// A serde error as a setting error. Inner values (`template_variables.a`, a stream override's
/// field) are named by their path; a secret's serde message is replaced, since serde quotes
/// the value it could not take.
fn serde_error(e: serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
    use serde_path_to_error::Segment;
    let segments: Vec<String> = e
        .path()
        .iter()
        .map(|s| match s {
            Segment::Seq { index } => index.to_string(),
            Segment::Map { key } => key.clone(),
            Segment::Enum { variant } => variant.clone(),
            Segment::Unknown => "?".into(),
        })
        .collect();
    let secret = segments.first().and_then(|top| settings::lookup(top)).is_some_and(|s| s.secret);
    let message = if secret {
        "has the wrong type (the value is not shown: the setting is secret)".into()
    } else {
        e.inner().to_string()
    };
    let invalid = |setting: &str, message: String| ConfigError::Invalid { setting: setting.into(), message };
    match segments.as_slice() {
        [top, stream, field, ..] if top == "stream_overrides" => {
            invalid("stream_overrides", format!("{stream:?}: `{field}` {message}"))
        }
        [top, stream] if top == "stream_overrides" => invalid("stream_overrides", format!("{stream:?}: {message}")),
        _ => invalid(&segments.join("."), message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(v: Value) -> Result<RawConfig, ConfigError> {
        RawConfig::from_map(v.as_object().unwrap().clone())
    }

    /// The table and the struct name the same settings, and the empty config is the table's
    /// defaults: the table is the only place a default is written.
    #[test]
    fn serde_struct_matches_settings_table() {
        let defaults = serde_json::to_value(RawConfig::from_map(Map::new()).unwrap()).unwrap();
        let defaults = defaults.as_object().unwrap();
        let mut names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        let mut fields: Vec<_> = defaults.keys().map(String::as_str).collect();
        names.sort();
        fields.sort();
        assert_eq!(names, fields, "settings table and RawConfig fields differ");
        for s in SETTINGS {
            assert_eq!(default_of(s).unwrap_or(Value::Null), defaults[s.name], "default of {}", s.name);
            for alias in s.aliases {
                let v = default_of(s).unwrap_or_else(|| json!("x"));
                let mut m = Map::new();
                m.insert(alias.to_string(), v);
                RawConfig::from_map(m).unwrap_or_else(|e| panic!("alias {alias} of {} rejected: {e}", s.name));
            }
        }
        assert_eq!(serde_json::to_value(RawConfig::default()).unwrap(), Value::Object(defaults.clone()));
    }

    /// `Default` is the table's defaults, and valid (the fuzz targets build configs this way).
    #[test]
    fn default_validates() {
        let raw = RawConfig { flattening_max_depth: 3, ..RawConfig::default() };
        let flat = RawConfig { flattening_enabled: true, ..raw.clone() };
        assert!(raw.validate_with(&|_| None).is_ok() && flat.validate_with(&|_| None).unwrap().flattening_enabled);
    }

    /// Every allowed value of an enumerated setting parses (the struct field is that enum), and
    /// anything else is refused with the list.
    #[test]
    fn every_allowed_value_parses_and_no_other() {
        for s in SETTINGS.iter().filter(|s| !s.allowed.is_empty()) {
            for value in s.allowed {
                let parsed = raw(json!({s.name: value})).unwrap_or_else(|e| panic!("{}: {value}: {e}", s.name));
                assert_eq!(serde_json::to_value(parsed).unwrap()[s.name], json!(value));
            }
            let e = raw(json!({s.name: "bogus"})).unwrap_err().to_string();
            let want = format!("setting `{}`: must be one of {}, got \"bogus\"", s.name, s.allowed.join(", "));
            assert_eq!(e, want);
        }
        let e = raw(json!({"format": "xml"})).unwrap_err().to_string();
        assert_eq!(e, "setting `format`: must be one of jsonl, json, csv, parquet, avro, got \"xml\"");
    }

    /// Wrong types for every setting of every kind: one line naming the setting, never a panic,
    /// and a secret's value never in it.
    #[test]
    fn wrong_types_name_the_setting() {
        let wrong = [json!("many"), json!(12), json!(-3), json!(1.5), json!(1e30), json!(true), json!([1]), json!({})];
        for s in SETTINGS {
            for value in &wrong {
                let Err(e) = raw(json!({s.name: value})) else {
                    let fits = match s.kind {
                        Kind::String => value.is_string(),
                        Kind::Integer => value.is_u64(),
                        Kind::Boolean => value.is_boolean(),
                        Kind::Object => value.is_object(),
                        Kind::Array => value.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
                    };
                    assert!(fits, "{} accepted {value}", s.name);
                    continue;
                };
                let e = e.to_string();
                assert!(e.starts_with(&format!("setting `{}`: ", s.name)) && !e.contains('\n'), "{e}");
            }
        }
        let e = raw(json!({"max_records_per_file": "many"})).unwrap_err().to_string();
        assert_eq!(e, "setting `max_records_per_file`: must be an integer, got \"many\"");
        let huge = serde_json::from_str(r#"{"part_size": 99999999999999999999}"#).unwrap();
        let e = raw(huge).unwrap_err().to_string();
        assert!(e.contains("whole number from 0 to 18446744073709551615, got 1e+20"), "{e}");
        let e = raw(json!({"max_retries": -1})).unwrap_err().to_string();
        assert!(e.contains("non-negative integer, got -1"), "{e}");
    }

    #[test]
    fn secrets_of_the_wrong_type_are_not_quoted() {
        for s in SETTINGS.iter().filter(|s| s.secret) {
            for value in [json!(987654321012u64), json!(["s3cr3t"]), json!({"k": "s3cr3t"}), json!(false)] {
                let e = raw(json!({"bucket": "abc", s.name: value})).unwrap_err().to_string();
                assert!(e.contains(s.name) && e.contains("not shown"), "{e}");
                assert!(!e.contains("987654321012") && !e.contains("s3cr3t"), "{e}");
            }
        }
        let e = raw(json!({"aws_external_id": 987654321012u64})).unwrap_err().to_string();
        assert_eq!(
            e,
            "setting `external_id`: must be a string, got a number (the value is not shown: the setting is secret)"
        );
    }

    #[test]
    fn inner_values_are_named_by_path() {
        let e = raw(json!({"template_variables": {"team": 7}})).unwrap_err().to_string();
        assert!(e.starts_with("setting `template_variables.team`: "), "{e}");
        let e = raw(json!({"stream_overrides": {"s": {"format": "xml"}}})).unwrap_err().to_string();
        assert_eq!(
            e,
            "setting `stream_overrides`: \"s\": `format` must be one of jsonl, json, csv, parquet, avro, got \"xml\""
        );
        let e = raw(json!({"stream_overrides": {"s": {"frmat": "csv"}}})).unwrap_err().to_string();
        assert!(e.contains("stream_overrides") && e.contains("frmat"), "{e}");
        let e = raw(json!({"stream_overrides": {"s": {"compression": 3}}})).unwrap_err().to_string();
        assert!(e.contains("`compression`") && e.contains("none, gzip, zstd"), "{e}");
    }

    #[test]
    fn nulls_are_unset_and_unknown_names_are_refused() {
        let c = raw(json!({"format": null, "prefix": null, "bucket": null})).unwrap();
        assert_eq!((c.format, c.prefix.as_str(), c.bucket), (Format::Jsonl, "", None));
        let e = raw(json!({"bukcet": "b"})).unwrap_err().to_string();
        assert!(e.contains("did you mean `bucket`"), "{e}");
        let c = raw(json!({"bukcet": "b", "allow_unknown_settings": true})).unwrap();
        assert_eq!(c.bucket, None);
    }

    #[test]
    fn s3_settings_given_ignores_defaults() {
        let c = raw(json!({"force_path_style": false, "part_size": 8388608, "region": "eu-west-1"})).unwrap();
        assert_eq!(c.s3_settings_given, ["region"]);
    }
}
