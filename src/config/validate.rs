//! [`RawConfig`] -> [`Config`]: every check that needs more than one setting or more than a
//! value's type (key templates and their uniqueness, formats and levels, CSV characters,
//! versions), with the S3 options in `s3`. Enumerated settings are matched exhaustively.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::settings::{
    self, CompressionKind, DestinationKind, InvalidRecords, KeyMacroStyle, TableFormat, UnparseableValues, VersionMode,
};
use super::{
    BinaryOptions, Compression, Config, CsvOptions, Destination, Format, Limits, Output, PLANNED_PARTS, RawConfig,
};
use crate::error::ConfigError;
use crate::keys::{JOB_VARIABLES, KeyTemplate, MacroStyle, ParseOptions};

fn invalid(setting: &str, message: String) -> ConfigError {
    ConfigError::Invalid { setting: setting.into(), message }
}

impl RawConfig {
    /// Checks every setting and builds the [`Config`] the pipeline runs on, reading job
    /// variables and the AWS environment from the process environment.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        self.validate_with(&|name| std::env::var(name).ok())
    }

    /// [`RawConfig::validate`] with the environment given as a function (for tests).
    pub fn validate_with(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let kind = match self.destination {
            Some(kind) => kind,
            None if self.bucket.is_some() => DestinationKind::S3,
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
            None => DestinationKind::Local,
        };
        let destination = match kind {
            DestinationKind::Local => {
                if !self.s3_settings_given.is_empty() {
                    tracing::warn!(settings = %self.s3_settings_given.join(", "), "destination is local: these S3 settings are not used");
                }
                if self.local_path.trim().is_empty() {
                    return Err(invalid("local_path", "must not be empty".into()));
                }
                Destination::Local { root: PathBuf::from(&self.local_path) }
            }
            DestinationKind::S3 => Destination::S3(Box::new(self.s3_options(env)?)),
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
        let style = match self.macro_style {
            KeyMacroStyle::Default => MacroStyle::Default,
            KeyMacroStyle::Hotglue => MacroStyle::Hotglue,
        };
        let variables = self.template_variables_with(env)?;
        let options = ParseOptions { style, variables: &variables };
        let utc = timezone == chrono_tz::Tz::UTC;
        let version_folders = match self.activate_version_mode {
            VersionMode::Metadata => false,
            VersionMode::Folder => true,
        };
        if !self.partition_by.is_empty() && self.table_format == TableFormat::None {
            return Err(invalid(
                "partition_by",
                "is for table_format delta or iceberg; for files, put `{record.FIELD}` folders in key_template (e.g. `{stream}/country={record.country}/{part}.jsonl`)".into(),
            ));
        }
        if self.hard_delete && !version_folders {
            return Err(invalid(
                "hard_delete",
                "needs `activate_version_mode: folder` (versions in their own folders)".into(),
            ));
        }
        let table = match self.table_format {
            TableFormat::None => None,
            TableFormat::Delta | TableFormat::Iceberg => Some(self.table_options(&options, version_folders)?),
        };
        let table_files;
        let (key_template, format) = if let Some(table) = &table {
            table_files = table.data_key_template(&self.table_path);
            (table_files.as_str(), Format::Parquet)
        } else if version_folders && self.key_template == settings::DEFAULT_KEY_TEMPLATE {
            (settings::DEFAULT_VERSIONED_KEY_TEMPLATE, self.format)
        } else {
            (self.key_template.as_str(), self.format)
        };
        let mut output = self.output(key_template, format, self.compression, self.compression_level, &options)?;
        if table.is_some() {
            output.key = output.key.with_ascii_values();
        }
        let key_setting = if table.is_some() { "table_path" } else { "key_template" };
        self.check_unique(&output.key, key_setting, true, utc)?;
        let dead_letter = match self.invalid_records {
            InvalidRecords::Fail => None,
            InvalidRecords::DeadLetter => {
                if !self.validate_records {
                    return Err(invalid(
                        "invalid_records",
                        "dead_letter needs validate_records: records are only found invalid when they are validated"
                            .into(),
                    ));
                }
                let o = self
                    .output(
                        &self.dead_letter_key_template,
                        Format::Jsonl,
                        self.compression,
                        self.compression_level,
                        &options,
                    )
                    .map_err(|e| match e {
                        ConfigError::Invalid { message, .. } => invalid("dead_letter_key_template", message),
                        other => other,
                    })?;
                self.check_unique(&o.key, "dead_letter_key_template", true, utc)?;
                // Rejected-record wrappers must never land among the data files.
                let data_templates = std::iter::once(key_template)
                    .chain(self.stream_overrides.iter().flatten().filter_map(|(_, o)| o.key_template.as_deref()));
                if data_templates.into_iter().any(|t| t.trim() == self.dead_letter_key_template.trim()) {
                    return Err(invalid(
                        "dead_letter_key_template",
                        "is the same as a data key template (key_template or a stream override's): dead-letter entries would land among the data files; keep the default `_rejected/...` or give it a folder of its own".into(),
                    ));
                }
                Some(o)
            }
        };
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
                    o.format.unwrap_or(self.format),
                    o.compression.unwrap_or(self.compression),
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
        // On S3, 0 ("no limit") still stops a file where one multipart upload can hold it.
        let max_bytes = match (&destination, self.max_bytes_per_file) {
            (Destination::S3(s3), 0) => Some(s3.part_size as u64 * PLANNED_PARTS),
            (Destination::Local { .. }, 0) => None,
            (_, max) => Some(max),
        };
        if let Destination::S3(s3) = &destination {
            let cursor_keys =
                std::iter::once(&output).chain(overrides.iter().map(|(_, o)| o)).any(|o| o.key.uses_cursor());
            if cursor_keys && (self.max_bytes_per_file == 0 || self.max_bytes_per_file > s3.part_size as u64) {
                return Err(invalid(
                    "max_bytes_per_file",
                    format!(
                        "must be 1 to part_size ({}) when keys use cursor macros: such a key is known only when its file is complete, so each file is sent in one request from memory",
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
        if self.max_line_bytes < 1024 {
            return Err(invalid("max_line_bytes", format!("must be at least 1024, got {}", self.max_line_bytes)));
        }
        if self.workers.is_some_and(|w| !(1..=256).contains(&w)) {
            return Err(invalid("workers", format!("must be 1 to 256, got {}", self.workers.unwrap_or_default())));
        }
        if self.max_open_files == 0 {
            return Err(invalid("max_open_files", "must be at least 1".into()));
        }
        if self.max_open_bytes < 1024 * 1024 {
            return Err(invalid(
                "max_open_bytes",
                format!("must be at least 1 MiB (1048576), got {}", self.max_open_bytes),
            ));
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
            null_value: self.csv_null_value.clone(),
        };
        if csv.delimiter == csv.quote {
            return Err(invalid("quote_character", "must differ from the delimiter".into()));
        }
        if self.row_group_size == 0 {
            return Err(invalid("row_group_size", "must be at least 1".into()));
        }
        let binary = BinaryOptions {
            parquet_codec: self.parquet_compression,
            row_group_size: usize::try_from(self.row_group_size).unwrap_or(usize::MAX),
            nested_as_json: self.nested_as_json,
            avro_codec: self.avro_codec,
            unparseable: match self.unparseable_values {
                UnparseableValues::Fail => crate::schema::typed::Unparseable::Fail,
                UnparseableValues::Null => crate::schema::typed::Unparseable::Null,
            },
        };
        let mut schema_overrides = std::collections::BTreeMap::new();
        for (stream, fields) in self.schema_overrides.iter().flatten() {
            let mut checked = std::collections::BTreeMap::new();
            for (field, spec) in fields {
                let ty = crate::schema::typed::Override::parse(spec).ok_or_else(|| {
                    invalid(
                        "schema_overrides",
                        format!(
                            "{stream:?}.{field:?}: unknown column type {spec:?} (use {})",
                            crate::schema::typed::Override::HELP
                        ),
                    )
                })?;
                checked.insert(field.clone(), ty);
            }
            schema_overrides.insert(stream.clone(), checked);
        }
        Ok(Config {
            destination,
            output,
            overrides,
            run_id,
            timezone,
            partition_date_field,
            max_open_files: usize::try_from(self.max_open_files).unwrap_or(usize::MAX),
            max_open_bytes: self.max_open_bytes,
            max_line_bytes: usize::try_from(self.max_line_bytes).unwrap_or(usize::MAX),
            // The workers only validate: past ~4 the decode thread is the limit, and each worker
            // costs memory (docs/performance.md).
            workers: self.workers.map_or_else(
                || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(4),
                |w| w as usize,
            ),
            manifest_key,
            write_success_marker: self.write_success_marker,
            variables,
            dry_run: false,
            limits: Limits {
                max_records: nonzero(self.max_records_per_file),
                max_bytes,
                max_age: nonzero(self.max_batch_age_seconds).map(Duration::from_secs),
            },
            validate_records: self.validate_records,
            dead_letter,
            validate_formats: self.validate_formats,
            add_record_metadata: self.add_record_metadata,
            csv,
            content_encoding: self.content_encoding,
            binary,
            schema_overrides,
            flattening_enabled: self.flattening_enabled,
            version_folders,
            hard_delete: self.hard_delete,
            allow_overwrite: self.allow_overwrite,
            table,
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
        // Tables refuse allow_overwrite: only the macros help there.
        let or_overwrite = if setting == "table_path" { "" } else { ", or set allow_overwrite to true" };
        Err(invalid(setting, format!("can give two files the same key; add {}{or_overwrite}", missing.join(", and "))))
    }

    /// Checks and builds the output settings (key template, format, compression) once for the
    /// defaults and once per stream override.
    fn output(
        &self,
        key_template: &str,
        format: Format,
        compression: CompressionKind,
        level: Option<u64>,
        options: &ParseOptions<'_>,
    ) -> Result<Output, ConfigError> {
        // A format this build has no code for is a configuration problem, found before any
        // input is read (not a failure at the first record).
        let built = match format {
            Format::Parquet => cfg!(feature = "parquet"),
            Format::Avro => cfg!(feature = "avro"),
            Format::Jsonl | Format::Json | Format::Csv => true,
        };
        if !built {
            return Err(invalid(
                "format",
                format!(
                    "this build of target-s3 has no {format} support (built without the `{format}` feature; the default build and the release wheels have it)"
                ),
            ));
        }
        let compression = match compression {
            // Parquet and Avro compress inside the file: `compression` does not apply.
            _ if format.is_binary() => Compression::None,
            CompressionKind::None => Compression::None,
            CompressionKind::Gzip => match level.unwrap_or(6) {
                level @ 0..=9 => Compression::Gzip { level: level as u32 },
                level => return Err(invalid("compression_level", format!("gzip levels are 0 to 9, got {level}"))),
            },
            CompressionKind::Zstd => match level.unwrap_or(3) {
                level @ 1..=19 => Compression::Zstd { level: level as i32 },
                level => return Err(invalid("compression_level", format!("zstd levels are 1 to 19, got {level}"))),
            },
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
                return Err(invalid(
                    "template_variables",
                    format!("{name:?} is a built-in macro and cannot be redefined"),
                ));
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(invalid(
                    "template_variables",
                    format!("{name:?} is not a valid name (letters, digits and `_`)"),
                ));
            }
            vars.insert(name.to_ascii_lowercase(), value.clone());
        }
        Ok(vars)
    }
}

/// A CSV delimiter or quote: one ASCII character other than a line break (the delimiter also by
/// name).
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
        _ => Err(invalid(
            setting,
            format!(
                "must be one ASCII character{}, got {value:?}",
                if named { " or comma, semicolon, tab, pipe" } else { "" }
            ),
        )),
    }
}
