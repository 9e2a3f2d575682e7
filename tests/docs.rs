//! The docs say what the binary does:
//! * docs/reference/settings.md and docs/reference/macros.md are the tables the binary prints in
//!   `--about --format markdown` (regenerate them with `UPDATE_DOCS=1 cargo test --test docs`),
//!   and every setting has a group;
//! * the README's quick-start and test commands are there verbatim, and each of its "ten most
//!   used settings" is a setting `--about` lists;
//! * docs/troubleshooting.md has an entry for every error kind of src/error.rs;
//! * every ```json config block of README.md and docs/ is a config the binary accepts;
//! * every shell line that runs `target-s3` parses with the binary's flags.
//!
//! The SQL and Python examples are run by scripts/docs_examples.py (part of scripts/test.sh).

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_target-s3");

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// README.md and every page under docs/.
fn pages() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut paths = vec![Path::new(ROOT).join("README.md")];
    walk(&Path::new(ROOT).join("docs"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p.strip_prefix(ROOT).unwrap().display().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The fenced blocks of a page: (line of the opening fence, info string, text).
fn blocks(text: &str) -> Vec<(usize, String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let start = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                body.push(lines[i]);
                i += 1;
            }
            out.push((start + 1, info.trim().to_string(), body.join("\n")));
        }
        i += 1;
    }
    out
}

fn section(page: &str, name: &str) -> (usize, usize) {
    let marker = format!("<!-- {name}:start -->\n");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} start marker")) + marker.len();
    let end = page.find(&format!("<!-- {name}:end -->")).expect("end marker");
    (start, end)
}

#[test]
fn reference_pages_match_the_binary() {
    let update = std::env::var_os("UPDATE_DOCS").is_some();
    let about = Command::new(BIN).args(["--about", "--format", "markdown"]).output().unwrap();
    assert!(about.status.success());
    let about = String::from_utf8(about.stdout).unwrap();
    for (page, name, table) in [
        ("docs/reference/settings.md", "settings", target_s3::cli::settings_markdown()),
        ("docs/reference/macros.md", "macros", target_s3::cli::macros_markdown()),
    ] {
        assert!(about.contains(&table), "--about --format markdown prints the {name} table");
        let path = Path::new(ROOT).join(page);
        let mut text = std::fs::read_to_string(&path).unwrap();
        let (start, end) = section(&text, name);
        if update {
            text.replace_range(start..end, &table);
            std::fs::write(&path, text).unwrap();
        } else {
            assert_eq!(text[start..end], table, "{page} is stale: run UPDATE_DOCS=1 cargo test --test docs");
        }
    }
}

#[test]
fn every_setting_has_a_group() {
    let table = target_s3::cli::settings_markdown();
    assert!(!table.contains("### Other"), "a setting has no group in src/cli/about.rs GROUPS:\n{table}");
    for group in ["Destination", "S3", "Format", "Keys", "Rolling", "Validation", "Tables", "Runner"] {
        assert!(table.contains(&format!("### {group}\n")), "group {group}");
    }
}

#[test]
fn readme_quick_start_commands_exist() {
    let readme = read("README.md");
    assert!(
        readme.contains(
            "cargo run --release -- --config sample_streams/config.json --input sample_streams/sample.singer"
        )
    );
    assert!(readme.contains("bash scripts/test.sh"));
    let ci = read(".ci/run");
    assert!(ci.lines().any(|l| l.trim() == "bash scripts/test.sh"), ".ci/run runs the README's test command");
    let test = read("scripts/test.sh");
    assert!(
        test.lines().any(|l| l.trim() == "python3 scripts/docs_examples.py target/debug/target-s3"),
        "scripts/test.sh runs the docs' examples"
    );
}

#[test]
fn readme_top_settings_are_settings() {
    let readme = read("README.md");
    let (start, end) = section(&readme, "top-settings");
    let about = Command::new(BIN).args(["--about", "--format", "json"]).output().unwrap();
    let about: serde_json::Value = serde_json::from_slice(&about.stdout).unwrap();
    let settings = about["settings"]["properties"].as_object().unwrap();
    let mut named = 0;
    for line in readme[start..end].lines().skip(2) {
        let name = line.split('|').nth(1).unwrap().trim().trim_matches('`');
        assert!(settings.contains_key(name), "README names `{name}`, which `--about` does not list");
        named += 1;
    }
    assert_eq!(named, 10, "the README lists the ten most used settings");
}

/// `(Enum, [variants])` of the error enums in src/error.rs, read off the source.
fn error_kinds() -> Vec<String> {
    let source = read("src/error.rs");
    let mut kinds = Vec::new();
    for name in ["Error", "ConfigError", "InputErrorKind", "StorageError"] {
        let start = source.find(&format!("pub enum {name} {{")).unwrap_or_else(|| panic!("enum {name}"));
        let body = &source[start..];
        let body = &body[..body.find("\n}").unwrap()];
        for line in body.lines().skip(1) {
            let line = line.trim();
            let Some(first) = line.chars().next() else { continue };
            if !first.is_ascii_uppercase() {
                continue;
            }
            let variant: String = line.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            kinds.push(format!("{name}::{variant}"));
        }
    }
    kinds
}

#[test]
fn troubleshooting_covers_every_error_kind() {
    let page = read("docs/troubleshooting.md");
    let kinds = error_kinds();
    assert!(kinds.len() > 30, "read the variants of src/error.rs: {kinds:?}");
    let missing: Vec<&String> = kinds.iter().filter(|k| !page.contains(&format!("<!-- kind: {k} -->"))).collect();
    assert!(missing.is_empty(), "docs/troubleshooting.md has no entry for {missing:?}");
    for documented in page.split("<!-- kind: ").skip(1) {
        let kind = documented.split(" -->").next().unwrap();
        assert!(kinds.iter().any(|k| k == kind), "docs/troubleshooting.md documents {kind}, which src/error.rs lacks");
    }
}

#[test]
fn config_blocks_are_valid_configs() {
    let mut checked = 0;
    for (page, text) in pages() {
        for (line, info, body) in blocks(&text) {
            let where_ = format!("{page}:{line}");
            if info == "json" {
                // A plain JSON block is no config: none of its keys may be a setting.
                if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&body) {
                    let settings = target_s3::config::settings::SETTINGS;
                    let named: Vec<&String> = map.keys().filter(|k| settings.iter().any(|s| s.name == *k)).collect();
                    assert!(named.is_empty(), "{where_}: a config? it names settings {named:?}: tag it ```json config");
                }
                continue;
            }
            if info != "json config" {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{where_}: not JSON: {e}"));
            let map = value.as_object().unwrap_or_else(|| panic!("{where_}: not an object")).clone();
            let table_format = map.get("table_format").and_then(|v| v.as_str());
            if (table_format == Some("delta") && !cfg!(feature = "delta"))
                || (table_format == Some("iceberg") && !cfg!(feature = "iceberg"))
            {
                continue;
            }
            let raw = target_s3::config::RawConfig::from_map(map).unwrap_or_else(|e| panic!("{where_}: {e}"));
            if let Err(e) = raw.validate_with(&|_| None) {
                panic!("{where_}: the binary refuses this config: {e}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 8, "json config blocks found: {checked}");
}

/// Shell lines that run target-s3 (`target-s3 ...`, `... | target-s3 ...`, `$(target-s3 ...)`).
fn target_command_lines() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (page, text) in pages() {
        for (line, info, body) in blocks(&text) {
            if !matches!(info.as_str(), "bash" | "sh" | "shell" | "") {
                continue;
            }
            for (n, l) in body.lines().enumerate() {
                let l = l.split(" #").next().unwrap();
                for part in l.split(['|', '(', ')', ';']) {
                    let words: Vec<&str> = part.split_whitespace().collect();
                    let Some(at) = words.iter().position(|w| *w == "target-s3") else { continue };
                    if at > 0 && !matches!(words[at - 1], "$" | "exec") {
                        continue; // `meltano run tap target-s3`, `meltano invoke target-s3`
                    }
                    let args: Vec<String> = words[at + 1..]
                        .iter()
                        .take_while(|w| !matches!(**w, ">" | "<" | "2>" | "&&" | "||"))
                        .map(|w| w.trim_matches('"').to_string())
                        .collect();
                    out.push((format!("{page}:{}", line + 1 + n), args));
                }
            }
        }
    }
    out
}

#[test]
fn shell_lines_parse() {
    let lines = target_command_lines();
    assert!(lines.len() >= 5, "target-s3 command lines found: {lines:?}");
    for (where_, args) in lines {
        // `--help` after the documented flags: clap reads every flag before it (an unknown flag or
        // a bad value is exit 2) and then prints the help instead of running.
        let out = Command::new(BIN).args(&args).arg("--help").output().unwrap();
        assert!(
            out.status.success(),
            "{where_}: `target-s3 {}` does not parse: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn links_between_pages_resolve() {
    let mut checked = 0;
    for (page, text) in pages().into_iter().chain([("CONTRIBUTING.md".to_string(), read("CONTRIBUTING.md"))]) {
        let dir = Path::new(ROOT).join(&page).parent().unwrap().to_path_buf();
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap();
            if target.starts_with("http") || target.contains(' ') {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() { Path::new(ROOT).join(&page) } else { dir.join(file) };
            assert!(path.exists(), "{page}: link to {target}: no such file");
            if !anchor.is_empty() {
                let linked = std::fs::read_to_string(&path).unwrap();
                let anchors: Vec<String> = linked
                    .lines()
                    .filter_map(|l| l.strip_prefix('#').map(|h| slug(h.trim_start_matches('#'))))
                    .collect();
                assert!(anchors.iter().any(|a| a == anchor), "{page}: link to {target}: no such heading");
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "links checked: {checked}");
}
