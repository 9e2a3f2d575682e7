//! Where settings come from: JSON files and `TARGET_S3_*` variables (`--config ENV`), layered in
//! order into one JSON object keyed by canonical setting names, plus the `TARGET_S3_*` variables
//! that name no setting. Nothing here knows a setting's meaning, only its name and declared type.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::settings::{self, Kind, SETTINGS};
use crate::error::ConfigError;

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

/// Merges the sources in order (later keys win) into one JSON object. Each layer's aliases are
/// renamed to the setting's own name first, so a later file's `path_prefix` replaces an earlier
/// file's `prefix` instead of meeting it as a second spelling.
pub fn merge_sources(sources: &[Source]) -> Result<Merged, ConfigError> {
    let mut merged = Map::new();
    let mut unknown_env = Vec::new();
    for source in sources {
        let layer = match source {
            Source::File(path) => read_file(path)?,
            Source::Env => {
                unknown_env = unknown_env_vars(std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()));
                read_env(|name| std::env::var(name).ok())?
            }
        };
        for (k, v) in canonical(layer)? {
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

/// Renames aliases (`s3_bucket`, `path_prefix`, ...) to the setting's name. One layer giving a
/// setting under two spellings is an error: which one was meant is not ours to guess. A null
/// beside a value gives way to the value. Names that are no setting are kept as they are.
pub fn canonical(layer: Map<String, Value>) -> Result<Map<String, Value>, ConfigError> {
    let mut out = Map::new();
    let mut spelt: HashMap<String, String> = HashMap::new();
    for (key, value) in layer {
        let name = settings::lookup(&key).map_or(key.as_str(), |s| s.name).to_string();
        match out.get(&name) {
            Some(existing) if !existing.is_null() && !value.is_null() => {
                let first = spelt.get(&name).cloned().unwrap_or_else(|| name.clone());
                return Err(ConfigError::Invalid {
                    setting: name,
                    message: format!("is given twice, as `{first}` and as `{key}`; keep one"),
                });
            }
            Some(existing) if !existing.is_null() => continue,
            _ => {}
        }
        spelt.insert(name.clone(), key);
        out.insert(name, value);
    }
    Ok(out)
}

/// `TARGET_S3_<NAME>` variables whose name is no setting. `TARGET_S3__*` (double underscore:
/// Meltano's extras) are not ours to judge.
pub fn unknown_env_vars(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut unknown: Vec<String> = names
        .filter(|n| {
            n.strip_prefix("TARGET_S3_").is_some_and(|rest| {
                // Only the upper-case spelling is read: `TARGET_S3_bucket` would be ignored.
                !rest.is_empty()
                    && !rest.starts_with('_')
                    && (settings::lookup(&rest.to_ascii_lowercase()).is_none() || rest != rest.to_ascii_uppercase())
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
/// An error quotes the variable's value only when the setting is not secret.
pub fn read_env(var: impl Fn(&str) -> Option<String>) -> Result<Map<String, Value>, ConfigError> {
    let mut map = Map::new();
    for setting in SETTINGS {
        let mut found: Option<String> = None;
        for name in std::iter::once(&setting.name).chain(setting.aliases) {
            let env_name = format!("TARGET_S3_{}", name.to_ascii_uppercase());
            let Some(text) = var(&env_name) else { continue };
            if let Some(first) = &found {
                return Err(ConfigError::Env {
                    var: env_name,
                    message: format!("sets `{}` like {first} does; keep one", setting.name),
                });
            }
            let bad = |expected: &str| ConfigError::Env {
                var: env_name.clone(),
                message: if setting.secret {
                    format!("expected {expected} (the value is not shown: the setting is secret)")
                } else {
                    format!("expected {expected}, got {text:?}")
                },
            };
            let value = match setting.kind {
                Kind::String => Value::String(text.clone()),
                Kind::Integer => Value::from(text.trim().parse::<u64>().map_err(|_| bad("a non-negative integer"))?),
                Kind::Boolean => match text.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Value::Bool(true),
                    "false" | "0" | "no" | "off" | "" => Value::Bool(false),
                    _ => return Err(bad("true or false")),
                },
                Kind::Object => match serde_json::from_str(&text) {
                    Ok(Value::Object(object)) => Value::Object(object),
                    _ => return Err(bad("a JSON object")),
                },
                // Meltano passes arrays as JSON; a plain `a,b` list is accepted too.
                Kind::Array => match serde_json::from_str(&text) {
                    Ok(Value::Array(items)) if items.iter().all(Value::is_string) => Value::Array(items),
                    Ok(_) => return Err(bad("a JSON array of strings or a comma-separated list")),
                    Err(_) if text.trim_start().starts_with('[') => {
                        return Err(bad("a JSON array of strings or a comma-separated list"));
                    }
                    Err(_) => Value::Array(
                        text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(Value::from).collect(),
                    ),
                },
            };
            map.insert(setting.name.to_string(), value);
            found = Some(env_name);
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert!(bad.to_string().contains("TARGET_S3_HEADER") && bad.to_string().contains("maybe"), "{bad}");
        let bad = read_env(|n| (n == "TARGET_S3_PART_SIZE").then(|| "-1".to_string())).unwrap_err().to_string();
        assert!(bad.contains("TARGET_S3_PART_SIZE") && bad.contains("non-negative"), "{bad}");
        let bad = read_env(|n| (n == "TARGET_S3_OBJECT_TAGS").then(|| "[1]".to_string())).unwrap_err().to_string();
        assert!(bad.contains("a JSON object"), "{bad}");
    }

    #[test]
    fn env_errors_never_quote_a_secret() {
        // every secret, typed as a string, is taken as it is; the check is on kinds that can
        // fail, so a secret declared with another type must not echo its value either
        for s in SETTINGS.iter().filter(|s| s.secret) {
            let var = format!("TARGET_S3_{}", s.name.to_ascii_uppercase());
            let map = read_env(|n| (n == var).then(|| "s3cr3t-value".to_string())).unwrap();
            assert_eq!(map[s.name], json!("s3cr3t-value"));
        }
    }

    #[test]
    fn two_spellings_in_one_source_are_refused() {
        let both = |n: &str| matches!(n, "TARGET_S3_PREFIX" | "TARGET_S3_PATH_PREFIX").then(|| "x".to_string());
        let e = read_env(both).unwrap_err().to_string();
        assert!(e.contains("TARGET_S3_PATH_PREFIX") && e.contains("TARGET_S3_PREFIX"), "{e}");
        let layer = json!({"prefix": "a", "s3_key_prefix": "b"}).as_object().unwrap().clone();
        let e = canonical(layer).unwrap_err().to_string();
        assert!(e.contains("`prefix`") && e.contains("`s3_key_prefix`") && e.contains("twice"), "{e}");
        let layer = json!({"prefix": null, "path_prefix": "b"}).as_object().unwrap().clone();
        assert_eq!(canonical(layer).unwrap()["prefix"], json!("b"));
    }

    #[test]
    fn later_layers_win_across_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (dir.path().join("a.json"), dir.path().join("b.json"), dir.path().join("c.json"));
        std::fs::write(&a, r#"{"prefix": "one", "format": "csv", "bucket": "first-bucket"}"#).unwrap();
        std::fs::write(&b, r#"{"path_prefix": "two", "s3_bucket": null}"#).unwrap();
        std::fs::write(&c, r#"{"format": null, "batch_size_rows": 5}"#).unwrap();
        let merged = merge_sources(&[Source::File(a), Source::File(b), Source::File(c)]).unwrap();
        assert_eq!(Value::Object(merged.map), json!({"prefix": "two", "max_records_per_file": 5}));
    }

    #[test]
    fn unreadable_and_non_object_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.json");
        std::fs::write(&list, "[1, 2]").unwrap();
        let broken = dir.path().join("broken.json");
        std::fs::write(&broken, "{\"bucket\": ").unwrap();
        for (path, needle) in [(list, "must hold a JSON object"), (broken, "not valid JSON"), ("nope.json".into(), "")]
        {
            let e = merge_sources(&[Source::File(path.clone())]).unwrap_err().to_string();
            assert!(e.contains(path.to_str().unwrap()) && e.contains(needle), "{e}");
        }
    }
}
