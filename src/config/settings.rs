//! The one table of settings. `--about`, the README table, meltano.yml, `--config ENV` type
//! conversion, the unknown-key check and every default read it, so a setting documented here is
//! a setting that exists (a test checks the table against the serde struct in `raw`).
//!
//! Enumerated settings are Rust enums declared with `choice!` below: the table's `allowed` list is
//! the enum's `NAMES`, and the checks `match` the enum exhaustively, so a newly allowed value
//! cannot silently behave like another one.

pub use super::{AvroCodec, Format, ParquetCodec};

choice! {
    /// `destination`.
    pub enum DestinationKind {
        Local = "local",
        S3 = "s3",
    }
}

choice! {
    /// `macro_style`: what `{date}` means.
    pub enum KeyMacroStyle {
        Default = "default",
        Hotglue = "hotglue",
    }
}

choice! {
    /// `activate_version_mode`.
    pub enum VersionMode {
        Metadata = "metadata",
        Folder = "folder",
    }
}

choice! {
    /// `compression` of the text formats (the level is a separate setting).
    pub enum CompressionKind {
        None = "none",
        Gzip = "gzip",
        Zstd = "zstd",
    }
}

choice! {
    /// `unparseable_values` (the typed formats' policy lives in `typed::Unparseable`).
    pub enum UnparseableValues {
        Fail = "fail",
        Null = "null",
    }
}

choice! {
    /// `content_encoding`: whether compressed objects say so in `Content-Encoding`.
    pub enum ContentEncoding {
        None = "none",
        Auto = "auto",
    }
}

choice! {
    /// `invalid_records`: what a record that breaks its schema does.
    pub enum InvalidRecords {
        Fail = "fail",
        DeadLetter = "dead_letter",
    }
}

choice! {
    /// `table_format`: plain files, or every stream a Delta Lake or Apache Iceberg table.
    pub enum TableFormat {
        None = "none",
        Delta = "delta",
        Iceberg = "iceberg",
    }
}

choice! {
    /// `incompatible_schema`: what a Delta table does with a SCHEMA it cannot take.
    pub enum IncompatibleSchema {
        Fail = "fail",
        NewTable = "new_table",
    }
}

choice! {
    /// `checksum_calculation`.
    pub enum ChecksumCalculation {
        WhenSupported = "when_supported",
        WhenRequired = "when_required",
    }
}

choice! {
    /// `server_side_encryption`, spelt as the `x-amz-server-side-encryption` header wants it.
    pub enum ServerSideEncryption {
        Aes256 = "AES256",
        AwsKms = "aws:kms",
        AwsKmsDsse = "aws:kms:dsse",
    }
}

choice! {
    /// `acl`: S3's canned ACLs.
    pub enum CannedAcl {
        Private = "private",
        PublicRead = "public-read",
        PublicReadWrite = "public-read-write",
        AuthenticatedRead = "authenticated-read",
        AwsExecRead = "aws-exec-read",
        BucketOwnerRead = "bucket-owner-read",
        BucketOwnerFullControl = "bucket-owner-full-control",
    }
}

choice! {
    /// `log_level` and `--log-level`.
    pub enum LogLevel {
        Error = "error",
        Warn = "warn",
        Info = "info",
        Debug = "debug",
        Trace = "trace",
    }
}

choice! {
    /// `log_format`.
    pub enum LogFormat {
        Text = "text",
        Json = "json",
    }
}

/// JSON type of a setting, as Meltano and the Singer SDK's `--about` name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Boolean,
    Object,
    Array,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
            Kind::Object => "object",
            Kind::Array => "array",
        }
    }
}

#[derive(Debug)]
pub struct Setting {
    pub name: &'static str,
    /// Spellings used by peer targets, accepted so their configs work unchanged.
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    /// Default as a JSON literal; `None` means unset.
    pub default: Option<&'static str>,
    pub description: &'static str,
    pub secret: bool,
    /// Allowed values, for settings that are enumerations.
    pub allowed: &'static [&'static str],
    /// Only the S3 destination reads it: set without a bucket, it means the bucket is missing.
    pub s3_only: bool,
}

const fn s(name: &'static str, kind: Kind, default: Option<&'static str>, description: &'static str) -> Setting {
    Setting { name, aliases: &[], kind, default, description, secret: false, allowed: &[], s3_only: false }
}

impl Setting {
    const fn aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }
    const fn allowed(mut self, allowed: &'static [&'static str]) -> Self {
        self.allowed = allowed;
        self
    }
    const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }
    const fn s3(mut self) -> Self {
        self.s3_only = true;
        self
    }
}

use Kind::*;

pub const DEFAULT_KEY_TEMPLATE: &str = "{stream}/{iso_date}/{stream}-{timestamp}-{run_id}-{part}.{extension}";
/// The default key under `activate_version_mode: folder`: one folder per table version.
pub const DEFAULT_VERSIONED_KEY_TEMPLATE: &str =
    "{stream}/{table_version}/{iso_date}/{stream}-{timestamp}-{run_id}-{part}.{extension}";

pub static SETTINGS: &[Setting] = &[
    s("destination", String, None,
      "Where files go: `local` (a folder) or `s3`. Unset: `s3` when a bucket is configured, else `local`.")
        .allowed(DestinationKind::NAMES),
    s("local_path", String, Some("\"output\""),
      "Folder the `local` destination writes under (created if missing). Keys are the same as in S3."),
    s("bucket", String, None, "S3 bucket name.").aliases(&["s3_bucket"]),
    s("prefix", String, Some("\"\""),
      "Folder prepended to every key (a `/` is added between prefix and key). May contain macros.")
        .aliases(&["path_prefix", "s3_key_prefix"]),
    s("key_template", String, Some("\"{stream}/{iso_date}/{stream}-{timestamp}-{run_id}-{part}.{extension}\""),
      "Object key of each file, relative to `prefix`; see the macro table. Unless `allow_overwrite` is true, keys must differ by stream (`{stream}`, `{stream_id}`), by file (`{part}`, `{uuid}`) and by run (`{run_id}`, `{uuid}`, or a load time to the second in UTC such as `{timestamp}`)."),
    s("allow_overwrite", Boolean, Some("false"),
      "Accept key templates that can give two files the same key, let a run write a key twice, and stop asking the store to refuse existing keys (`If-None-Match`): later files then replace earlier ones."),
    s("allow_unknown_settings", Boolean, Some("false"),
      "Accept (with a warning) config keys and `TARGET_S3_*` variables that are not settings, instead of refusing them."),
    s("run_id", String, None,
      "Identifier of this run for `{run_id}`. Unset: a new UUIDv7 per process (unique and time-ordered)."),
    s("timezone", String, Some("\"UTC\""), "IANA time zone of the load-time macros (`{date}`, `{hour}`, ...), e.g. `Europe/Berlin`."),
    s("macro_style", String, Some("\"default\""),
      "Meaning of `{date}`: `default` is `%Y_%m_%d`, `hotglue` is hotglue's `%Y%m`.")
        .allowed(KeyMacroStyle::NAMES),
    s("template_variables", Object, None,
      "Extra key macros: a JSON object of name to value, e.g. `{\"workspace_title\": \"Main\"}` for `{{workspace_title}}`. May not reuse a built-in macro name."),
    s("partition_date_field", String, None,
      "Record field (dotted path) whose date fills `{yyyy}`/`{mm}`/`{dd}`. Unset: the stream's first bookmark property."),
    s("max_line_bytes", Integer, Some("268435456"),
      "Longest input line (one Singer message, or one line of a BATCH file) in bytes; a longer one stops the run with an error naming it, before it can take the machine's memory (a line costs about 4 times its size while it is processed; with validation, up to about 8 times for a line of tiny values such as `[[],[],...]`). Default 256 MiB."),
    s("workers", Integer, None,
      "Threads that parse and validate records ahead of the one that routes and encodes them, a block of input (1 MiB) at a time; output is the same for any number. 1: that one thread validates too. Unset: the cores available to the process (its CPU affinity and cgroup quota), at most 4 (past that the routing thread is the limit; each worker adds ~5-10 MiB of peak memory, more with records of many MiB: a worker holds up to 4 blocks, each at least as big as its longest line). It also sets how many threads compress `gzip` files (one chunk of 512 KiB each at a time, put back in order; 1: the writer compresses alone)."),
    s("max_open_files", Integer, Some("1000"),
      "Most files open at once across all streams and partitions (a stream with many partitions, in unsorted data, keeps them all open); past it the least recently written one is closed. An open file costs only the records it holds until it has a chunk (512 KiB) to compress; on the local destination a started file also holds a file descriptor (checked against `ulimit -n` at start-up)."),
    s("max_open_bytes", Integer, Some("134217728"),
      "Most memory the open files may hold together: their encoded records not yet handed over, rows not yet batched, and about 1 MiB for each file being compressed. Past it the least recently written file is closed. Default 128 MiB."),
    s("job_id", String, None, "Value of `{job_id}` (else `$JOB_ID`)."),
    s("flow_id", String, None, "Value of `{flow_id}` (else `$FLOW` or `$FLOW_ID`)."),
    s("tenant", String, None, "Value of `{tenant}` (else `$TENANT`)."),
    s("root_tenant_id", String, None, "Value of `{root_tenant_id}` (else `$ROOT_TENANT_ID`)."),
    s("tap", String, None, "Value of `{tap}` (else `$TAP`)."),
    s("env_id", String, None, "Value of `{env_id}` (else `$ENV_ID`)."),
    s("connection_id", String, None, "Value of `{connection_id}` (else `$CONNECTOR_ID` or `$CONNECTION_ID`)."),
    s("account", String, None, "Value of `{account}` (else `$ACCOUNT`)."),
    s("workspace_id", String, None, "Value of `{workspace_id}` (else `$WORKSPACE_ID`)."),
    s("data_source", String, None, "Value of `{data_source}` (else `$DATA_SOURCE`)."),
    s("write_manifest", Boolean, Some("true"),
      "After all data is durable (and before the last STATE), write one JSON manifest per run listing every object: key, stream, records, bytes, CRC32, cursor range, schema hash."),
    s("manifest_key_template", String, Some("\"_manifests/{date_time}-{run_id}.json\""),
      "Key of the manifest, under `prefix`; macros as in `key_template` (no record macros)."),
    s("write_success_marker", Boolean, Some("false"), "Write an empty `_SUCCESS` object into every folder that received files, at the end of a successful run."),
    s("activate_version_mode", String, Some("\"metadata\""),
      "Full-table syncs (ACTIVATE_VERSION): `metadata` records each stream's active version in the manifest; `folder` also writes each version under its own `{table_version}` folder (the default key becomes `{stream}/{table_version}/{iso_date}/...`; a custom `key_template` must contain `{table_version}`) and closes the stream's files when ACTIVATE_VERSION arrives.")
        .allowed(VersionMode::NAMES),
    s("hard_delete", Boolean, Some("false"),
      "With `activate_version_mode: folder`: once an ACTIVATE_VERSION's files are durable, delete the objects in that stream's own older version folders (a smaller number, or a version activated earlier in the run), never files written after the ACTIVATE_VERSION. The key must name the stream (`{stream}`, `{stream_id}`) in fixed folders before a `/{table_version}/` folder."),
    s("format", String, Some("\"jsonl\""),
      "File format: JSON lines, one JSON array per file, CSV, or the typed formats Parquet and Avro (columns from the stream's JSON Schema, see \"Parquet and Avro\").")
        .allowed(Format::NAMES),
    s("compression", String, Some("\"gzip\""),
      "Compression of each jsonl/json/csv file (`.gz`, `.zst`). Parquet and Avro compress inside the file (`parquet_compression`, `avro_codec`) and ignore this.")
        .allowed(CompressionKind::NAMES),
    s("compression_level", Integer, None,
      "gzip: 0 (store) to 9, default 6 (2-3 is much faster); zstd: 1 to 19, default 3 (faster than gzip 6 and smaller)."),
    s("max_records_per_file", Integer, Some("1000000"),
      "Start a new file after this many records (0: no limit).").aliases(&["batch_size_rows"]),
    s("max_bytes_per_file", Integer, Some("134217728"),
      "Start a new file once this many bytes (after compression) were written to it. 0: no limit of its own; on S3 a file still closes at `part_size` x 7,500 (58 GiB with 8 MiB parts), and a set value may not exceed that either: one upload holds at most 10,000 parts, and the size is an estimate (a Parquet file can end up a third above it)."),
    s("max_batch_age_seconds", Integer, Some("300"),
      "Close a file this many seconds after its first record, so STATE never waits longer (0: no limit)."),
    s("validate_records", Boolean, Some("true"),
      "Validate every record against its stream's JSON Schema and check its key properties; a failing record stops the run (see `invalid_records`). Off: raw pass-through (records must still be JSON objects)."),
    s("invalid_records", String, Some("\"fail\""),
      "A record that breaks its schema (or lacks a key property): `fail` stops the run naming it; `dead_letter` writes it, with its input line, stream and the validator's message, to the dead-letter files (`dead_letter_key_template`, JSONL), counts it (`rejected_records` METRIC, manifest) and goes on. Dead-letter files are durable before any STATE that covers them.")
        .allowed(InvalidRecords::NAMES),
    s("dead_letter_key_template", String, Some("\"_rejected/{stream}/{iso_date}/{stream}-{timestamp}-{run_id}-{part}.{extension}\""),
      "Key of the dead-letter files (`invalid_records: dead_letter`), relative to `prefix`; JSONL with the run's `compression`. The `_` keeps them out of what Hive-convention readers see as data. Same uniqueness rules as `key_template`."),
    s("add_record_metadata", Boolean, Some("false"),
      "Add the Singer SDK's `_sdc_extracted_at`, `_sdc_received_at`, `_sdc_batched_at`, `_sdc_sequence` (the input line number), `_sdc_table_version` and `_sdc_deleted_at` to every record (CSV: as extra columns)."),
    s("validate_formats", Boolean, Some("false"),
      "Also assert `format` keywords (date-time, email, ...). Off by default: many taps send date-times without an offset."),
    s("delimiter", String, Some("\",\""),
      "CSV field delimiter: a single character or `comma`, `semicolon`, `tab`, `pipe`.").aliases(&["csv_delimiter"]),
    s("quote_character", String, Some("\"\\\"\""), "CSV quote character (one character).").aliases(&["csv_quote_character"]),
    s("header", Boolean, Some("true"), "Write a CSV header row (from the stream's schema) at the top of every file.")
        .aliases(&["csv_header"]),
    s("csv_null_value", String, Some("\"\""),
      "CSV text for a null or missing value. Default: an empty cell, the same as an empty string; `\\N` (Hive, MySQL, Spark's `nullValue`) keeps them apart."),
    s("flattening_enabled", Boolean, Some("false"),
      "JSONL and JSON: write each record flattened like the CSV columns (`{\"address__city\": ...}`), members in schema order. CSV is always flat; Parquet and Avro keep structs (see `nested_as_json`)."),
    s("flattening_max_depth", Integer, Some("10"),
      "CSV, and JSONL/JSON with `flattening_enabled`: nested objects with declared properties are flattened into `parent__child` columns down to this depth; deeper objects and all arrays stay JSON (text in CSV)."),
    s("parquet_compression", String, Some("\"snappy\""), "Parquet: codec of the pages inside the file (`lz4` is LZ4_RAW).")
        .allowed(ParquetCodec::NAMES),
    s("row_group_size", Integer, Some("100000"),
      "Parquet: rows per row group (a group is also cut at 128 MiB of encoded data). Memory holds one row group per open file, not the file."),
    s("nested_as_json", Boolean, Some("false"),
      "Parquet and Avro: write objects as JSON text instead of structs/records (objects without `properties` always are).")
        .aliases(&["parquet_nested_as_json"]),
    s("avro_codec", String, Some("\"deflate\""), "Avro: codec of the blocks inside the file.").allowed(AvroCodec::NAMES),
    s("unparseable_values", String, Some("\"fail\""),
      "Parquet and Avro: a value that does not fit its column (`\"soon\"` in a date-time column, `1.5` in an integer column): `fail` stops the run naming line, stream, field and value; `null` writes null (nullable columns only), counts it in the `unparseable_values` metric and warns once per file.")
        .allowed(UnparseableValues::NAMES),
    s("schema_overrides", Object, None,
      "Parquet, Avro and Delta: the column type of top-level fields, whatever the tap's schema says, as `{\"stream\": {\"field\": \"TYPE\"}}` (`*` for every stream without an entry of its own). TYPE: `decimal(P,S)` (P up to 38; written as decimal(38,S); a value with more places does not fit, see `unparseable_values`), `numeric` (the number's exact text as a string column), `double`, `bigint`. Use it to keep money exact when a tap sends NUMERIC as a plain `number` (a double rounds past ~16 digits: such values are counted as `lossy_values` and warned about)."),
    s("table_format", String, Some("\"none\""),
      "`none`: files as set by `key_template` and `format`. `delta`: every stream is one Delta Lake table under `prefix` + `table_path` (Parquet data files, typed as in \"Parquet and Avro\"), and STATE is printed only once the tables committed the records before it (see \"Delta Lake tables\"). `iceberg`: the same as Apache Iceberg tables registered in a SQL catalog (`iceberg_catalog_uri`). Needs a build with the `delta` (`iceberg`) feature (the release wheels and binaries have both).")
        .allowed(TableFormat::NAMES),
    s("table_path", String, Some("\"{stream}\""),
      "`table_format: delta` or `iceberg`: folder of each stream's table, relative to `prefix`. Must name the stream (`{stream}`, `{stream_id}`) and may use job variables and load-time macros, but no per-file or record macros."),
    s("partition_by", Array, Some("[]"),
      "`table_format: delta` or `iceberg`: the table's partition columns, as a list of top-level record fields (string, integer, boolean or date columns), each optionally with a granularity for a date-time field: `[\"country\", \"updated_at:day\"]`. `FIELD:year|month|day|hour` adds the partition column `FIELD_year` (long), `FIELD_month` (`2024-01`), `FIELD_day` (date) or `FIELD_hour` (`2024-01-05T13`), taken in UTC. Every stream must have the fields. Files go to `FIELD=value/` folders; null, missing and empty values to `__HIVE_DEFAULT_PARTITION__`. Iceberg: the same entries as the `identity`, `year`, `month`, `day` and `hour` transforms of the field itself (no added column). As a `TARGET_S3_PARTITION_BY` variable: a JSON array or `a,b:day`."),
    s("incompatible_schema", String, Some("\"fail\""),
      "`table_format: delta` or `iceberg`: a SCHEMA whose columns the stream's table cannot take (a column's type changed, a required column added or dropped). `fail`: the run stops, naming table and column, before anything is committed. `new_table`: from that SCHEMA on, the stream goes to a new table beside the old one, the table of the stream name with `_v2` (`_v3`, ...): `table_path` rendered for `orders_v2`. Later runs write to the newest version, or start the next one when their schema does not fit it.")
        .allowed(IncompatibleSchema::NAMES),
    s("pipeline_id", String, Some("\"target-s3\""),
      "`table_format: delta` or `iceberg`: the `appId` of the Delta application transaction (`txn`) every commit carries (Iceberg: the table property `target-s3.<pipeline_id>` and each snapshot's summary), and the name `--table-state` looks for. Left at `target-s3`, the id used is `target-s3-` and a hash of the destination, `prefix` and `table_path`, so pipelines writing to other places never read each other's STATE (STATE committed under the plain `target-s3` of earlier versions is still found). Pipelines that share one prefix and table_path (several taps into one lake) must each set their own, e.g. `${MELTANO_EXTRACTOR_NAMESPACE}` in meltano.yml."),
    s("single_writer", Boolean, Some("false"),
      "`table_format: delta` on S3: a table commit is a new log object written with `If-None-Match: *`, so of two writers racing for one version one wins and the other retries. At start-up target-s3 checks that the store refuses a second conditional write; a store that ignores it (some S3-compatible stores) is refused, because racing writers would silently replace each other's commits. `true` commits there anyway, promising that only one writer commits to these tables at a time."),
    s("commit_interval_seconds", Integer, Some("60"),
      "`table_format: delta` or `iceberg`: commit at most this often while STATE messages arrive (the open files are closed and committed, then the STATE they cover is printed); always at the end of input."),
    s("checkpoint_interval", Integer, Some("100"),
      "`table_format: delta`: write a Delta checkpoint every this many commits of a table (the table property `delta.checkpointInterval`, set when target-s3 creates the table), so readers stay fast."),
    s("iceberg_catalog_uri", String, None,
      "`table_format: iceberg`: the catalog the tables are registered in. A SQL catalog (the tables pyiceberg's `SqlCatalog` and Iceberg's JDBC catalog read): a SQLite file, `sqlite:////abs/path/catalog.db` (`sqlite:///relative/path.db`) or a file path, or PostgreSQL, `postgresql://user:password@host:5432/database` (no TLS); or an Iceberg REST catalog, `https://host/path` (Polaris, Lakekeeper, Nessie, Gravitino, ...; with `iceberg_warehouse` and a token or credential). Unset: `iceberg_catalog.db` in `local_path` for the local folder; with S3 it must be set."),
    s("iceberg_warehouse", String, None,
      "`table_format: iceberg` with a REST catalog: the warehouse asked of the catalog's `/v1/config`."),
    s("iceberg_catalog_token", String, None,
      "`table_format: iceberg` with a REST catalog: a bearer token sent with every request.").secret(),
    s("iceberg_catalog_credential", String, None,
      "`table_format: iceberg` with a REST catalog: `client_id:client_secret`, exchanged once per run for a token at the catalog's `/v1/oauth/tokens` (OAuth2 client credentials).").secret(),
    s("iceberg_catalog_scope", String, Some("\"catalog\""),
      "`table_format: iceberg` with a REST catalog: the OAuth2 scope asked for with `iceberg_catalog_credential` (Polaris: `PRINCIPAL_ROLE:ALL`)."),
    s("iceberg_catalog_name", String, Some("\"default\""),
      "`table_format: iceberg`: the catalog's name in the catalog file (pyiceberg: the name given to `SqlCatalog(name, ...)`)."),
    s("iceberg_namespace", String, Some("\"default\""),
      "`table_format: iceberg`: the namespace of the tables. A table's name is the last folder name of its `table_path`, lowercased, with every character outside `[a-z0-9_]` as `_` (stream `public-orders` -> `public_orders`)."),
    s("iceberg_expire_snapshots", Boolean, Some("false"),
      "`table_format: iceberg`: at each commit, expire the table's snapshots older than its `history.expire.max-snapshot-age-ms` property (Iceberg's default: 5 days), keeping the newest `history.expire.min-snapshots-to-keep` (default 1) and any a branch or tag names, and delete their manifest lists. Data files and manifests stay (an appended table's newer snapshots name them all); readers cannot time-travel to an expired snapshot; `--table-state` still finds the newest round. `false`: every snapshot stays."),
    s("aws_access_key_id", String, None, "Access key id. Unset: the default AWS credential chain (environment, profile, SSO, web identity, ECS/EC2 role).")
        .secret().s3(),
    s("aws_secret_access_key", String, None, "Secret access key that goes with `aws_access_key_id`.").secret().s3(),
    s("aws_session_token", String, None, "Session token for temporary credentials.").secret().s3(),
    s("aws_profile", String, None, "Named profile from the shared AWS config files.").aliases(&["aws_profile_name"]).s3(),
    s("role_arn", String, None,
      "IAM role to assume on top of the base credentials (cross-account access); refreshed during long runs.")
        .aliases(&["aws_role_arn"]).s3(),
    s("external_id", String, None, "External id the role's trust policy requires.").aliases(&["aws_external_id"]).secret().s3(),
    s("role_session_name", String, Some("\"target-s3\""), "Session name of the assumed role (shows in CloudTrail).").s3(),
    s("role_duration_seconds", Integer, Some("3600"), "Lifetime of assumed-role credentials, 900 to 43200 seconds.").s3(),
    s("region", String, None, "AWS region of the bucket. Unset: `AWS_REGION`, `AWS_DEFAULT_REGION` or the profile's region; else `us-east-1` when an endpoint is set (`endpoint_url`, `AWS_ENDPOINT_URL`), and the EC2 instance's region or `us-east-1` on AWS S3.")
        .aliases(&["aws_region"]).s3(),
    s("endpoint_url", String, None,
      "S3-compatible endpoint (MinIO, R2, Ceph, Wasabi, SeaweedFS, ...), e.g. `http://127.0.0.1:9000`. Unset: `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`, else AWS S3. A `user:password@` in it is never shown.")
        .aliases(&["aws_endpoint_url"]).s3(),
    s("force_path_style", Boolean, Some("false"), "Address buckets as `endpoint/bucket/key` (most S3-compatible stores need this).").s3(),
    s("part_size", Integer, Some("8388608"),
      "Multipart part size in bytes (minimum 5 MiB). Files smaller than one part are a single PutObject.").s3(),
    s("upload_concurrency", Integer, Some("4"), "Parts and objects uploading at once. Memory is about part_size x (open files + this).").s3(),
    s("request_timeout_seconds", Integer, Some("300"),
      "Longest one attempt of one S3 request may take (a part upload included) before it is retried.").s3(),
    s("max_retries", Integer, Some("5"), "Retries of a failed request (throttling, 5xx, timeouts, dropped connections) with backoff.").s3(),
    s("checksum_calculation", String, Some("\"when_supported\""),
      "Send CRC32 integrity checksums with every upload (`when_supported`) or only where S3 requires them (`when_required`, for stores that reject them).")
        .allowed(ChecksumCalculation::NAMES).s3(),
    s("content_encoding", String, Some("\"none\""),
      "`none`: a compressed object is what its name says (`x.jsonl.gz` is a gzip file, `Content-Type: application/gzip`), so every HTTP client, browser and `aws s3 cp` downloads the gzip bytes. `auto`: it also carries `Content-Encoding: gzip`/`zstd` with the inner format's type, so HTTP clients that honour it (curl `--compressed`, browsers, python-requests) decompress it on the fly and a download is no longer gzip.")
        .allowed(ContentEncoding::NAMES).s3(),
    s("conditional_writes", Boolean, Some("true"),
      "Send `If-None-Match: *` with every upload, so the store itself refuses to replace an existing object (AWS S3, MinIO, Cloudflare R2 and moto honour it). Turn off only for stores that reject the header; `--check` tells. Not sent with `allow_overwrite`.").s3(),
    s("server_side_encryption", String, None,
      "Server-side encryption: `AES256` (SSE-S3), `aws:kms` (SSE-KMS), `aws:kms:dsse` (dual-layer). Unset: the bucket's default.")
        .allowed(ServerSideEncryption::NAMES).s3(),
    s("kms_key_id", String, None, "KMS key id or ARN for `aws:kms` / `aws:kms:dsse` (unset: the AWS-managed key).").s3(),
    s("bucket_key_enabled", Boolean, None, "Use an S3 Bucket Key with SSE-KMS (fewer KMS calls).").s3(),
    s("acl", String, None, "Canned ACL for every object, e.g. `bucket-owner-full-control`.")
        .allowed(CannedAcl::NAMES).s3(),
    s("storage_class", String, None, "Storage class, e.g. `STANDARD_IA`, `INTELLIGENT_TIERING`, `GLACIER_IR`.").s3(),
    s("object_tags", Object, None,
      "Tags for every object, as a JSON object of strings, checked at start-up against S3's tag rules: at most 10, keys of 1 to 128 and values of up to 256 letters, digits, spaces and `+ - = . _ : / @`, no key starting with `aws:`.").s3(),
    s("object_metadata", Object, None,
      "User metadata (`x-amz-meta-*`) for every object, as a JSON object of strings. Keys: letters, digits and ``!#$%&'*+-.^_`|~`` (S3 stores them lowercase). A value that is not printable ASCII is sent RFC 2047-encoded (`Zoë` as `=?UTF-8?B?Wm/Dqw==?=`, the form S3 returns such values in). At most 2 KB in all.").s3(),
    s("stream_overrides", Object, None,
      "Per-stream `key_template`, `format`, `compression`, `compression_level`: a JSON object keyed by stream name or glob (`*`, `?`). Exact names win over globs."),
    s("log_level", String, Some("\"info\""), "Log level on stderr (`RUST_LOG` and `--log-level` override it).")
        .allowed(LogLevel::NAMES),
    s("log_format", String, Some("\"text\""), "Log line format on stderr.").allowed(LogFormat::NAMES),
];

/// The setting a misspelt name most likely meant, for "did you mean" hints.
pub fn suggest(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    SETTINGS
        .iter()
        .flat_map(|s| std::iter::once(&s.name).chain(s.aliases).map(move |n| (s.name, *n)))
        .map(|(canonical, n)| (strsim::damerau_levenshtein(&name, n), canonical))
        .filter(|(distance, _)| *distance <= 2.max(name.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, canonical)| canonical)
}

/// A setting's default as a number (0 when it has none or is not a number).
pub fn default_of(name: &str) -> u64 {
    lookup(name).and_then(|s| s.default).and_then(|d| d.parse().ok()).unwrap_or(0)
}

/// Finds a setting by its name or one of its aliases.
pub fn lookup(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name || s.aliases.contains(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_json_and_names_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in SETTINGS {
            for n in std::iter::once(&s.name).chain(s.aliases) {
                assert!(seen.insert(*n), "duplicate setting name {n}");
            }
            if let Some(d) = s.default {
                serde_json::from_str::<serde_json::Value>(d)
                    .unwrap_or_else(|e| panic!("default of {} is not JSON: {e}", s.name));
            }
        }
        assert_eq!(
            lookup("key_template").unwrap().default.unwrap(),
            serde_json::to_string(DEFAULT_KEY_TEMPLATE).unwrap()
        );
    }
}
