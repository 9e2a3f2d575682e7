//! `table_format: delta`: the table settings (`table_path`, `partition_by`, commits), checked
//! once at start-up, and the file settings a table cannot be combined with.

use std::time::Duration;

use super::RawConfig;
use super::settings::{self, Format, IncompatibleSchema};
use crate::error::ConfigError;
use crate::keys::{KeyTemplate, ParseOptions};

/// The Delta Lake settings.
#[derive(Clone, Debug)]
pub struct TableOptions {
    /// `prefix` + `table_path`: a stream's table folder (rendered without a record).
    pub table_path: KeyTemplate,
    /// The table's partition columns, in folder order.
    pub partitions: Vec<Partition>,
    pub incompatible_schema: IncompatibleSchema,
    pub pipeline_id: String,
    /// The fixed default id of earlier versions, read back by `--table-state` when the derived
    /// default finds nothing (unset when `pipeline_id` is set).
    pub legacy_pipeline_id: Option<String>,
    pub commit_interval: Duration,
    pub checkpoint_interval: u64,
    /// `single_writer`: commit on a store that ignores conditional writes.
    pub single_writer: bool,
    /// Where the conditional-write probe object goes (under `prefix`).
    pub probe_key: String,
    /// `table_format: iceberg`: the catalog; `None` for Delta.
    pub iceberg: Option<IcebergOptions>,
}

/// `table_format: iceberg`: where the tables are registered.
#[derive(Clone, Debug)]
pub struct IcebergOptions {
    pub catalog: IcebergCatalog,
    pub catalog_name: String,
    pub namespace: String,
    /// `iceberg_expire_snapshots`.
    pub expire_snapshots: bool,
}

#[derive(Clone, Debug)]
pub enum IcebergCatalog {
    /// The SQLite catalog file.
    Sql(std::path::PathBuf),
    /// The SQL catalog in PostgreSQL (`postgresql://...`; may hold a password).
    Postgres(super::Secret),
    /// An Iceberg REST catalog.
    Rest {
        uri: String,
        warehouse: Option<String>,
        token: Option<super::Secret>,
        /// `client_id:client_secret` for OAuth2 client credentials.
        credential: Option<super::Secret>,
        scope: String,
    },
}

/// One entry of `partition_by`: a Delta partition column and the record field it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// The top-level record field.
    pub field: String,
    /// The table's column: the field itself, or `FIELD_granularity` for a date-time field cut
    /// to a granularity (a column of its own, so the field keeps its full value).
    pub column: String,
    pub granularity: Option<Granularity>,
}

choice! {
    /// How finely a date-time field partitions a table (`partition_by: ["updated_at:day"]`).
    pub enum Granularity {
        Year = "year",
        Month = "month",
        Day = "day",
        Hour = "hour",
    }
}

impl Granularity {
    /// The partition value's text, from the field's value in UTC: what Delta readers parse for
    /// the column's type ([`Granularity::is_integer`], a date, or text).
    pub fn format(self) -> &'static str {
        match self {
            Granularity::Year => "%-Y", // `1`, not `0001`: the integer as the log writes it
            Granularity::Month => "%Y-%m",
            Granularity::Day => "%Y-%m-%d",
            Granularity::Hour => "%Y-%m-%dT%H",
        }
    }
}

impl Partition {
    /// `FIELD` or `FIELD:GRANULARITY`.
    fn parse(entry: &str) -> Result<Partition, String> {
        let (field, granularity) = match entry.rsplit_once(':') {
            Some((field, g)) => {
                let g = Granularity::from_name(g).ok_or_else(|| {
                    format!("{entry:?}: the granularity after `:` must be one of {}", Granularity::NAMES.join(", "))
                })?;
                (field, Some(g))
            }
            None => (entry, None),
        };
        // Partition folders are `column=value`: a name that needs no escaping, and not hidden.
        if field.is_empty() || field.starts_with('_') || !field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!(
                "{entry:?}: a partition field must be a top-level field named with ASCII letters, digits and `_`, not starting with `_`"
            ));
        }
        let column = match granularity {
            Some(g) => format!("{field}_{g}"),
            None => field.to_string(),
        };
        Ok(Partition { field: field.to_string(), column, granularity })
    }

    /// The folder of a file's partition: `column={record.field}` (or with the granularity's
    /// format), rendered and escaped as every key value is.
    fn folder_template(&self) -> String {
        match self.granularity {
            Some(g) => format!("{}={{record.{}:{}}}", self.column, self.field, g.format()),
            None => format!("{}={{record.{}}}", self.column, self.field),
        }
    }
}

impl TableOptions {
    /// The key template of the data files: in their table's folder (only the log makes them
    /// part of it), under one folder per partition column.
    pub fn data_key_template(&self, table_path: &str) -> String {
        let mut key = table_path.trim_end_matches('/').to_string();
        for p in &self.partitions {
            key.push('/');
            key.push_str(&p.folder_template());
        }
        key.push_str("/part-{part}-{uuid}.parquet");
        key
    }
}

/// `pipeline_id`'s default in the settings table.
const DEFAULT_PIPELINE_ID: &str = "target-s3";

/// A folder path as one spelling: `./wh`, `wh/` and `wh//` are `wh` (the derived pipeline id
/// must not change with how the same folder is written; an absolute path stays another spelling).
fn spelled(path: &str) -> String {
    let normal: std::path::PathBuf =
        std::path::Path::new(path).components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect();
    if normal.as_os_str().is_empty() { path.to_string() } else { normal.display().to_string() }
}

fn invalid(setting: &str, message: String) -> ConfigError {
    ConfigError::Invalid { setting: setting.into(), message }
}

impl RawConfig {
    /// The table settings, and the file settings they cannot be combined with (a table is
    /// Parquet in one folder per stream; versions are not folders).
    pub(super) fn table_options(
        &self,
        options: &ParseOptions<'_>,
        version_folders: bool,
    ) -> Result<TableOptions, ConfigError> {
        let iceberg = self.table_format == settings::TableFormat::Iceberg;
        if iceberg && !cfg!(feature = "iceberg") {
            return Err(invalid(
                "table_format",
                "this build of target-s3 has no Apache Iceberg support (built without the `iceberg` feature); install the release wheel or binary (`pip install target-s3-rs`), or build with `cargo build --release --features iceberg`".into(),
            ));
        }
        if !cfg!(feature = "delta") {
            return Err(invalid(
                "table_format",
                "this build of target-s3 has no Delta Lake support (built without the `delta` feature); install the release wheel or binary (`pip install target-s3-rs`), or build with `cargo build --release --features delta`".into(),
            ));
        }
        if !matches!(self.format, Format::Jsonl | Format::Parquet) {
            return Err(invalid(
                "format",
                format!(
                    "is {}, but table_format {} writes Parquet: set format to parquet or leave it unset",
                    self.format, self.table_format
                ),
            ));
        }
        if self.key_template != settings::DEFAULT_KEY_TEMPLATE {
            return Err(invalid(
                "key_template",
                format!("is not used with table_format {}: set table_path instead", self.table_format),
            ));
        }
        if self.stream_overrides.as_ref().is_some_and(|o| !o.is_empty()) {
            return Err(invalid(
                "stream_overrides",
                format!("cannot be combined with table_format {}", self.table_format),
            ));
        }
        if version_folders || self.hard_delete {
            return Err(invalid(
                "activate_version_mode",
                format!(
                    "folder (and hard_delete) cannot be combined with table_format {}: a table has no version folders",
                    self.table_format
                ),
            ));
        }
        if self.allow_overwrite {
            return Err(invalid(
                "allow_overwrite",
                format!("cannot be combined with table_format {}", self.table_format),
            ));
        }
        let table_path = KeyTemplate::parse(&self.prefix, &self.table_path, options)
            .map_err(|e| invalid("table_path", e.message))?;
        if !table_path.is_table_folder() {
            return Err(invalid(
                "table_path",
                "may not use per-file macros ({part}, {uuid}, {cursor}, {table_version}) or record macros: a stream's table is one folder".into(),
            ));
        }
        let mut partitions: Vec<Partition> = Vec::new();
        for entry in &self.partition_by {
            let p = Partition::parse(entry).map_err(|e| invalid("partition_by", e))?;
            if partitions.iter().any(|q| q.column == p.column) {
                return Err(invalid("partition_by", format!("names the column {:?} twice", p.column)));
            }
            partitions.push(p);
        }
        let pipeline_id = self.pipeline_id.trim();
        if pipeline_id.is_empty() {
            return Err(invalid("pipeline_id", "must not be empty".into()));
        }
        // Left at its default, the id names this pipeline's destination, prefix and tables, so
        // two pipelines that write elsewhere never read each other's STATE; the old fixed
        // default is still read back (`legacy_pipeline_id`) where nothing newer is found.
        let (pipeline_id, legacy_pipeline_id) = if pipeline_id == DEFAULT_PIPELINE_ID {
            let place = format!(
                "{}\u{0}{}\u{0}{}",
                self.bucket
                    .as_deref()
                    .map_or_else(|| format!("local:{}", spelled(&self.local_path)), |b| format!("s3:{b}")),
                self.prefix,
                self.table_path
            );
            let derived = format!("{DEFAULT_PIPELINE_ID}-{:016x}", crate::keys::fnv1a(place.as_bytes()));
            (derived, Some(DEFAULT_PIPELINE_ID.to_string()))
        } else {
            (pipeline_id.to_string(), None)
        };
        if self.commit_interval_seconds == 0 {
            return Err(invalid("commit_interval_seconds", "must be at least 1".into()));
        }
        if self.checkpoint_interval == 0 {
            return Err(invalid("checkpoint_interval", "must be at least 1".into()));
        }
        Ok(TableOptions {
            table_path,
            partitions,
            incompatible_schema: self.incompatible_schema,
            pipeline_id,
            legacy_pipeline_id,
            commit_interval: Duration::from_secs(self.commit_interval_seconds),
            checkpoint_interval: self.checkpoint_interval,
            single_writer: self.single_writer,
            iceberg: if iceberg { Some(self.iceberg_options()?) } else { None },
            probe_key: {
                let prefix = self.prefix.trim_matches('/');
                let name = format!("_target_s3_probe-{}", uuid::Uuid::new_v4().simple());
                if prefix.is_empty() { name } else { format!("{prefix}/{name}") }
            },
        })
    }
}

impl RawConfig {
    fn iceberg_options(&self) -> Result<IcebergOptions, ConfigError> {
        let catalog = match (&self.iceberg_catalog_uri, &self.bucket) {
            (Some(uri), _) if uri.starts_with("http://") || uri.starts_with("https://") => IcebergCatalog::Rest {
                uri: uri.clone(),
                warehouse: self.iceberg_warehouse.clone(),
                token: self.iceberg_catalog_token.clone(),
                credential: self.iceberg_catalog_credential.clone(),
                scope: self.iceberg_catalog_scope.clone(),
            },
            (Some(uri), _)
                if uri.starts_with("postgres://")
                    || uri.starts_with("postgresql://")
                    || uri.starts_with("postgresql+") =>
            {
                IcebergCatalog::Postgres(super::Secret(uri.clone()))
            }
            // SQLAlchemy's form, as pyiceberg takes it: `sqlite:///relative` or `sqlite:////absolute`.
            (Some(uri), _) => match uri.strip_prefix("sqlite:///") {
                Some(path) => IcebergCatalog::Sql(path.into()),
                None if !uri.contains("://") => IcebergCatalog::Sql(uri.into()),
                None => {
                    return Err(invalid(
                        "iceberg_catalog_uri",
                        format!(
                            "is {uri:?}; target-s3 registers tables in a SQL catalog, a SQLite file (`sqlite:////abs/path/catalog.db` or a file path) or PostgreSQL (`postgresql://user:password@host:5432/database`), or a REST catalog (`https://...`); Glue and S3 Tables catalogs are not supported yet"
                        ),
                    ));
                }
            },
            (None, None) => IcebergCatalog::Sql(std::path::Path::new(&self.local_path).join("iceberg_catalog.db")),
            (None, Some(_)) => {
                return Err(invalid(
                    "iceberg_catalog_uri",
                    "must be set for table_format iceberg on S3: a SQL catalog in PostgreSQL (`postgresql://user:password@host:5432/database`) or a SQLite file on this machine or a shared volume (`sqlite:////abs/path/catalog.db`), or a REST catalog (`https://...`)".into(),
                ));
            }
        };
        let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !name_ok(&self.iceberg_namespace) {
            return Err(invalid("iceberg_namespace", "must be letters, digits and `_` (`.` between levels)".into()));
        }
        if self.iceberg_catalog_name.trim().is_empty() {
            return Err(invalid("iceberg_catalog_name", "must not be empty".into()));
        }
        Ok(IcebergOptions {
            catalog,
            catalog_name: self.iceberg_catalog_name.clone(),
            namespace: self.iceberg_namespace.clone(),
            expire_snapshots: self.iceberg_expire_snapshots,
        })
    }
}
