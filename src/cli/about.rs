//! `--about` (text, JSON, Markdown) and the generated documents: the README's settings and
//! macro tables and meltano.yml's settings, all from the one settings table (tests keep the
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

/// The settings table, as the README shows it (a test keeps the README equal to this).
pub fn settings_markdown() -> String {
    let mut out = String::from("| Setting | Type | Default | Description |\n|---|---|---|---|\n");
    for s in SETTINGS {
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

/// The macro table, as the README shows it.
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
