//! `--about` (text, JSON, Markdown) and the generated documents: docs/reference/settings.md and
//! macros.md and meltano.yml's settings, all from the one settings table (tests keep the
//! files equal to these).

use serde_json::{Map, Value, json};

use super::{AboutFormat, CAPABILITIES, DESCRIPTION, NAME};
use crate::config::settings::{Kind, SETTINGS};
use crate::keys::MACROS;

/// `--about` in the three formats. Secrets are flagged, never shown (they have no defaults).
pub fn about(format: AboutFormat) -> String {
    match format {
        AboutFormat::Json => {
            let mut properties = Map::new();
            for s in SETTINGS {
                let mut p = Map::new();
                p.insert("type".into(), json!(s.kind.as_str()));
                if let Some(d) = s.default {
                    p.insert("default".into(), serde_json::from_str(d).expect("defaults are JSON"));
                }
                p.insert("description".into(), json!(s.description));
                p.insert("secret".into(), json!(s.secret));
                if s.secret {
                    p.insert("writeOnly".into(), json!(true));
                }
                if !s.allowed.is_empty() {
                    p.insert("enum".into(), json!(s.allowed));
                }
                if !s.aliases.is_empty() {
                    p.insert("aliases".into(), json!(s.aliases));
                }
                properties.insert(s.name.into(), Value::Object(p));
            }
            let about = json!({
                "name": NAME,
                "description": DESCRIPTION,
                "version": env!("CARGO_PKG_VERSION"),
                "capabilities": CAPABILITIES,
                "settings": {"type": "object", "properties": properties},
            });
            format!("{}\n", serde_json::to_string_pretty(&about).expect("about is serializable"))
        }
        AboutFormat::Markdown => format!(
            "# {NAME}\n\n{DESCRIPTION}\n\nVersion {}. Capabilities: {}.\n\n## Settings\n\n{}\n## Key template macros\n\n{}",
            env!("CARGO_PKG_VERSION"),
            CAPABILITIES.join(", "),
            settings_markdown(),
            macros_markdown()
        ),
        AboutFormat::Text => {
            let mut out = format!(
                "{NAME} v{}\n{DESCRIPTION}\ncapabilities: {}\n\nsettings:\n",
                env!("CARGO_PKG_VERSION"),
                CAPABILITIES.join(", ")
            );
            for s in SETTINGS {
                out.push_str(&format!(
                    "  {} ({}{}){}\n      {}\n",
                    s.name,
                    s.kind.as_str(),
                    s.default.map(|d| format!(", default {d}")).unwrap_or_default(),
                    if s.secret { " [secret]" } else { "" },
                    s.description
                ));
            }
            out
        }
    }
}

/// The groups of `settings_markdown`, in order; a setting named in none of them is listed under
/// "Other" (tests/docs.rs fails then, so a new setting gets a group).
const GROUPS: &[(&str, &[&str])] = &[
    ("Destination", &["destination", "local_path", "bucket", "prefix", "run_id", "allow_unknown_settings"]),
    (
        "S3",
        &[
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
            "aws_profile",
            "role_arn",
            "external_id",
            "role_session_name",
            "role_duration_seconds",
            "region",
            "endpoint_url",
            "force_path_style",
            "part_size",
            "upload_concurrency",
            "request_timeout_seconds",
            "max_retries",
            "checksum_calculation",
            "content_encoding",
            "conditional_writes",
            "server_side_encryption",
            "kms_key_id",
            "bucket_key_enabled",
            "acl",
            "storage_class",
            "object_tags",
            "object_metadata",
        ],
    ),
    (
        "Format",
        &[
            "format",
            "compression",
            "compression_level",
            "delimiter",
            "quote_character",
            "header",
            "csv_null_value",
            "flattening_enabled",
            "flattening_max_depth",
            "parquet_compression",
            "row_group_size",
            "nested_as_json",
            "avro_codec",
            "unparseable_values",
            "schema_overrides",
            "add_record_metadata",
            "stream_overrides",
        ],
    ),
    (
        "Keys",
        &[
            "key_template",
            "allow_overwrite",
            "timezone",
            "macro_style",
            "template_variables",
            "partition_date_field",
            "job_id",
            "flow_id",
            "tenant",
            "root_tenant_id",
            "tap",
            "env_id",
            "connection_id",
            "account",
            "workspace_id",
            "data_source",
            "write_manifest",
            "manifest_key_template",
            "write_success_marker",
        ],
    ),
    (
        "Rolling",
        &["max_records_per_file", "max_bytes_per_file", "max_batch_age_seconds", "max_open_files", "max_open_bytes"],
    ),
    (
        "Validation",
        &[
            "validate_records",
            "validate_formats",
            "invalid_records",
            "dead_letter_key_template",
            "max_line_bytes",
            "workers",
        ],
    ),
    (
        "Tables",
        &[
            "activate_version_mode",
            "hard_delete",
            "table_format",
            "table_path",
            "partition_by",
            "incompatible_schema",
            "pipeline_id",
            "single_writer",
            "commit_interval_seconds",
            "checkpoint_interval",
            "iceberg_catalog_uri",
            "iceberg_catalog_name",
            "iceberg_namespace",
            "iceberg_warehouse",
            "iceberg_catalog_token",
            "iceberg_catalog_credential",
            "iceberg_catalog_scope",
            "iceberg_expire_snapshots",
        ],
    ),
    ("Runner", &["log_level", "log_format"]),
];

/// The settings table, grouped (destination, S3, format, keys, rolling, validation, tables,
/// runner) under `### Group` headings; docs/reference/settings.md holds it (a test keeps the
/// page equal to this).
pub fn settings_markdown() -> String {
    let mut out = String::new();
    let mut groups: Vec<(&str, Vec<&crate::config::settings::Setting>)> =
        GROUPS.iter().map(|(g, _)| (*g, Vec::new())).collect();
    groups.push(("Other", Vec::new()));
    for s in SETTINGS {
        let i = GROUPS.iter().position(|(_, names)| names.contains(&s.name)).unwrap_or(GROUPS.len());
        groups[i].1.push(s);
    }
    for (group, settings) in groups.iter().filter(|(_, s)| !s.is_empty()) {
        out.push_str(&format!("### {group}\n\n"));
        out.push_str(&settings_table(settings));
        out.push('\n');
    }
    out
}

fn settings_table(settings: &[&crate::config::settings::Setting]) -> String {
    let mut out = String::from("| Setting | Type | Default | Description |\n|---|---|---|---|\n");
    for s in settings {
        let mut description = s.description.to_string();
        if !s.allowed.is_empty() {
            description.push_str(&format!(
                " One of: {}.",
                s.allowed.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if !s.aliases.is_empty() {
            description.push_str(&format!(
                " Also accepted as: {}.",
                s.aliases.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
            ));
        }
        if s.secret {
            description.push_str(" Secret.");
        }
        let default = s.default.map(|d| format!("`{}`", d.replace('|', "\\|"))).unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            s.name,
            s.kind.as_str(),
            default,
            description.replace('|', "\\|")
        ));
    }
    out
}

/// The `settings:` entries of the loader in meltano.yml (a test keeps the file equal to this):
/// Meltano kinds from the declared types, secrets as `password`, defaults as values.
pub fn meltano_settings_yaml() -> String {
    let mut out = String::new();
    for s in SETTINGS {
        let kind = match (s.secret, s.kind) {
            (true, _) => "password",
            (false, Kind::String) if !s.allowed.is_empty() => "options",
            (false, kind) => kind.as_str(),
        };
        out.push_str(&format!("    - name: {}\n      kind: {kind}\n", s.name));
        out.push_str(&format!("      description: {}\n", serde_json::Value::from(s.description)));
        if let Some(default) = s.default {
            out.push_str(&format!("      value: {default}\n"));
        }
        if !s.allowed.is_empty() {
            out.push_str("      options:\n");
            for a in s.allowed {
                out.push_str(&format!("      - {{label: {a:?}, value: {a:?}}}\n"));
            }
        }
        if s.secret {
            out.push_str("      sensitive: true\n");
        }
    }
    out
}

/// The macro table, as docs/reference/macros.md shows it.
pub fn macros_markdown() -> String {
    let mut out = String::from("| Macro | Example | Meaning |\n|---|---|---|\n");
    for m in MACROS {
        let names = m.names.iter().map(|n| format!("`{{{n}}}`")).collect::<Vec<_>>().join(", ");
        out.push_str(&format!("| {} | `{}` | {} |\n", names, m.example, m.description));
    }
    let (names, example, description) = crate::keys::RECORD_MACRO_DOC;
    out.push_str(&format!("| {names} | `{example}` | {description} |\n"));
    out
}
