//! Object key templates: parsed once at start-up, rendered once per file (never per record).
//!
//! Three spellings of one vocabulary are accepted so patterns pasted from other loaders work:
//! `{name}` / `{name:format}`, `${NAME}` (Hevo, Airbyte) and `{{ name }}` (Improvado), with macro
//! names matched case-insensitively. Adding a macro is one entry in [`MACROS`] plus its arm in
//! [`KeyTemplate::render`].

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use std::fmt::Write;

use crate::error::ConfigError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Macro {
    Stream,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Date,
    IsoDate,
    DateTime,
    IsoDateTime,
    Epoch,
    EpochMs,
    Now,
    Part,
    Uuid,
    RunId,
    Extension,
    Format,
    Compression,
}

/// How a macro may be followed by `:format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FormatSpec {
    None,
    /// A strftime pattern is required (`{now:%Y/%m}`).
    Strftime,
}

pub struct MacroSpec {
    pub names: &'static [&'static str],
    pub example: &'static str,
    pub description: &'static str,
    kind: Macro,
    format: FormatSpec,
}

const fn m(
    names: &'static [&'static str],
    kind: Macro,
    example: &'static str,
    description: &'static str,
) -> MacroSpec {
    MacroSpec {
        names,
        example,
        description,
        kind,
        format: FormatSpec::None,
    }
}

/// The macro vocabulary. The README's macro table is generated from this list.
pub static MACROS: &[MacroSpec] = &[
    m(
        &["stream", "stream_name", "filename"],
        Macro::Stream,
        "orders",
        "Stream name made safe for keys (characters other than letters, digits, `-`, `_`, `.`, `=` become `_`).",
    ),
    m(
        &["year"],
        Macro::Year,
        "2026",
        "Load year (UTC, one clock per run).",
    ),
    m(&["month"], Macro::Month, "11", "Load month, 2 digits."),
    m(&["day"], Macro::Day, "22", "Load day of month, 2 digits."),
    m(&["hour"], Macro::Hour, "03", "Load hour, 2 digits."),
    m(&["minute"], Macro::Minute, "41", "Load minute, 2 digits."),
    m(&["second"], Macro::Second, "07", "Load second, 2 digits."),
    m(
        &["date"],
        Macro::Date,
        "2026_11_22",
        "Load date as `%Y_%m_%d`.",
    ),
    m(
        &["iso_date"],
        Macro::IsoDate,
        "2026-11-22",
        "Load date as `%Y-%m-%d`.",
    ),
    m(
        &["date_time", "timestamp"],
        Macro::DateTime,
        "2026_11_22_03_41_07",
        "Load time as `%Y_%m_%d_%H_%M_%S`.",
    ),
    m(
        &["iso_date_time"],
        Macro::IsoDateTime,
        "2026-11-22T03:41:07Z",
        "Load time, ISO 8601.",
    ),
    m(
        &["epoch"],
        Macro::Epoch,
        "1795318867",
        "Load time in Unix seconds.",
    ),
    m(
        &["epoch_ms"],
        Macro::EpochMs,
        "1795318867000",
        "Load time in Unix milliseconds.",
    ),
    MacroSpec {
        names: &["now"],
        example: "2026/11/22",
        description: "Load time in any strftime pattern: `{now:%Y/%m/%d}`.",
        kind: Macro::Now,
        format: FormatSpec::Strftime,
    },
    m(
        &["part"],
        Macro::Part,
        "00000",
        "Sequence number of the file within its stream in this run, 5 digits.",
    ),
    m(
        &["uuid"],
        Macro::Uuid,
        "0b6f3c1e-3f43-4f7e-9a55-2a4f1c9f0e7d",
        "A new random UUID per file.",
    ),
    m(
        &["run_id"],
        Macro::RunId,
        "019aa6d2-6c4e-7f32-b1a0-55e8c1d2a3f4",
        "This run's id (the `run_id` setting, else a UUIDv7 unique to the process).",
    ),
    m(
        &["extension"],
        Macro::Extension,
        "jsonl.gz",
        "File extension for the format and compression.",
    ),
    m(&["format"], Macro::Format, "jsonl", "The `format` setting."),
    m(
        &["compression"],
        Macro::Compression,
        "gzip",
        "The `compression` setting.",
    ),
];

fn lookup(name: &str) -> Option<&'static MacroSpec> {
    MACROS
        .iter()
        .find(|s| s.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
}

fn valid_names() -> String {
    MACROS
        .iter()
        .flat_map(|s| s.names.iter())
        .map(|n| format!("{{{n}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Macro { kind: Macro, format: Option<String> },
}

/// A parsed `prefix` + `key_template`.
#[derive(Clone, Debug)]
pub struct KeyTemplate {
    segments: Vec<Segment>,
}

/// Values that are fixed for the whole run.
#[derive(Clone, Debug)]
pub struct RunContext {
    pub now: DateTime<Utc>,
    pub run_id: String,
    pub extension: String,
    pub format: &'static str,
    pub compression: &'static str,
}

/// Values that change per file.
pub struct FileContext<'a> {
    pub stream: &'a str,
    pub part: u64,
}

impl KeyTemplate {
    /// Parses `prefix` and `template`; the prefix is a folder (a `/` joins the two).
    pub fn parse(
        prefix: &str,
        template: &str,
        allow_overwrite: bool,
    ) -> Result<KeyTemplate, ConfigError> {
        let mut segments = Vec::new();
        let prefix = prefix.trim_start_matches('/').trim_end_matches('/');
        if !prefix.is_empty() {
            segments.extend(parse_segments("prefix", prefix)?);
            segments.push(Segment::Literal("/".into()));
        }
        let template_segments = parse_segments("key_template", template)?;
        if template_segments.is_empty() {
            return Err(ConfigError::Invalid {
                setting: "key_template".into(),
                message: "must not be empty".into(),
            });
        }
        segments.extend(template_segments);
        let t = KeyTemplate { segments };
        if !allow_overwrite {
            t.check_unique()?;
        }
        Ok(t)
    }

    fn uses(&self, kinds: &[Macro]) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Macro { kind, .. } if kinds.contains(kind)))
    }

    /// Refuses templates under which two files could get the same key and overwrite each other.
    fn check_unique(&self) -> Result<(), ConfigError> {
        let within_run = self.uses(&[Macro::Part, Macro::Uuid]);
        let across_runs = self.uses(&[
            Macro::RunId,
            Macro::Uuid,
            Macro::DateTime,
            Macro::IsoDateTime,
            Macro::Epoch,
            Macro::EpochMs,
            Macro::Second,
        ]);
        let missing = match (within_run, across_runs) {
            (true, true) => return Ok(()),
            (false, true) => "{part} or {uuid} (files of one run would overwrite each other)",
            (true, false) => {
                "{run_id}, {uuid} or a load time to the second such as {timestamp} (a later run would overwrite this run's files)"
            }
            (false, false) => {
                "{part} or {uuid}, and {run_id} or {timestamp} (files would overwrite each other within and across runs)"
            }
        };
        Err(ConfigError::Invalid {
            setting: "key_template".into(),
            message: format!(
                "can give two files the same key; add {missing}, or set allow_overwrite to true"
            ),
        })
    }

    /// Renders the key of one file. Only called when a file opens, so it may allocate.
    pub fn render(&self, run: &RunContext, file: &FileContext<'_>) -> String {
        let mut key = String::with_capacity(96);
        for segment in &self.segments {
            let (kind, format) = match segment {
                Segment::Literal(text) => {
                    key.push_str(text);
                    continue;
                }
                Segment::Macro { kind, format } => (*kind, format.as_deref()),
            };
            let t = &run.now;
            // Writing to a String cannot fail.
            let _ = match kind {
                Macro::Stream => {
                    push_safe(&mut key, file.stream);
                    Ok(())
                }
                Macro::Year => write!(key, "{}", t.format("%Y")),
                Macro::Month => write!(key, "{}", t.format("%m")),
                Macro::Day => write!(key, "{}", t.format("%d")),
                Macro::Hour => write!(key, "{}", t.format("%H")),
                Macro::Minute => write!(key, "{}", t.format("%M")),
                Macro::Second => write!(key, "{}", t.format("%S")),
                Macro::Date => write!(key, "{}", t.format("%Y_%m_%d")),
                Macro::IsoDate => write!(key, "{}", t.format("%Y-%m-%d")),
                Macro::DateTime => write!(key, "{}", t.format("%Y_%m_%d_%H_%M_%S")),
                Macro::IsoDateTime => write!(key, "{}", t.format("%Y-%m-%dT%H:%M:%SZ")),
                Macro::Epoch => write!(key, "{}", t.timestamp()),
                Macro::EpochMs => write!(key, "{}", t.timestamp_millis()),
                Macro::Now => {
                    // The pattern was checked at parse time, so formatting cannot panic.
                    let rendered = t.format(format.unwrap_or("%Y-%m-%d")).to_string();
                    push_safe_path(&mut key, &rendered);
                    Ok(())
                }
                Macro::Part => write!(key, "{:05}", file.part),
                Macro::Uuid => write!(key, "{}", uuid::Uuid::new_v4()),
                Macro::RunId => {
                    push_safe(&mut key, &run.run_id);
                    Ok(())
                }
                Macro::Extension => write!(key, "{}", run.extension),
                Macro::Format => write!(key, "{}", run.format),
                Macro::Compression => write!(key, "{}", run.compression),
            };
        }
        key
    }
}

/// Characters allowed as they are in a rendered value; everything else becomes `_`, so data
/// can never inject a `/`, a `..` segment or a control character into a key.
fn is_safe_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')
}

fn push_safe(key: &mut String, value: &str) {
    let start = key.len();
    key.extend(value.chars().map(|c| if is_safe_char(c) { c } else { '_' }));
    let pushed = &key[start..];
    if pushed.is_empty() || pushed.chars().all(|c| c == '.') {
        key.truncate(start);
        key.push('_');
    }
}

/// Like [`push_safe`] but keeps `/` (a strftime pattern may build folders on purpose).
fn push_safe_path(key: &mut String, value: &str) {
    for (i, part) in value.split('/').enumerate() {
        if i > 0 {
            key.push('/');
        }
        push_safe(key, part);
    }
}

fn parse_segments(setting: &str, text: &str) -> Result<Vec<Segment>, ConfigError> {
    let err = |pos: usize, message: String| ConfigError::Invalid {
        setting: setting.into(),
        message: format!("{message} at position {pos} of {text:?}"),
    };
    let mut segments = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    let mut pos = 0;
    while !rest.is_empty() {
        let (open, close) = if rest.starts_with("{{") {
            ("{{", "}}")
        } else if rest.starts_with("${") {
            ("${", "}")
        } else if rest.starts_with('{') {
            ("{", "}")
        } else {
            let c = rest.chars().next().expect("rest is not empty");
            if c.is_control() || c == '\\' {
                return Err(err(pos, format!("character {c:?} is not allowed in a key")));
            }
            literal.push(c);
            rest = &rest[c.len_utf8()..];
            pos += c.len_utf8();
            continue;
        };
        let inner_start = open.len();
        let Some(end) = rest[inner_start..].find(close) else {
            return Err(err(pos, format!("unclosed `{open}`")));
        };
        let inner = rest[inner_start..inner_start + end].trim();
        let (name, format) = match inner.split_once(':') {
            Some((n, f)) => (n.trim(), Some(f.to_string())),
            None => (inner, None),
        };
        let Some(spec) = lookup(name) else {
            return Err(err(
                pos,
                format!(
                    "unknown macro `{open}{inner}{close}`; valid macros: {}",
                    valid_names()
                ),
            ));
        };
        match (spec.format, &format) {
            (FormatSpec::None, Some(f)) => {
                return Err(err(
                    pos,
                    format!("macro `{name}` takes no format (got `:{f}`)"),
                ));
            }
            (FormatSpec::Strftime, None) => {
                return Err(err(
                    pos,
                    format!("macro `{name}` needs a strftime format, e.g. `{{{name}:%Y/%m/%d}}`"),
                ));
            }
            (FormatSpec::Strftime, Some(f)) => {
                if StrftimeItems::new(f).any(|item| matches!(item, Item::Error)) {
                    return Err(err(pos, format!("`{f}` is not a valid strftime format")));
                }
            }
            (FormatSpec::None, None) => {}
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(std::mem::take(&mut literal)));
        }
        segments.push(Segment::Macro {
            kind: spec.kind,
            format,
        });
        let consumed = inner_start + end + close.len();
        rest = &rest[consumed..];
        pos += consumed;
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    // Literal `.` / `..` folders would climb out of the prefix or local folder.
    let skeleton: String = segments
        .iter()
        .map(|s| match s {
            Segment::Literal(text) => text.as_str(),
            Segment::Macro { .. } => "x",
        })
        .collect();
    if skeleton.split('/').any(|part| part == "." || part == "..") {
        return Err(err(0, "`.` and `..` folders are not allowed".into()));
    }
    Ok(segments)
}

/// Checks a rendered key before anything is written under it: relative, no `.`/`..` or empty
/// folder names, no control characters. Defence in depth: rendering already makes values safe.
pub fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("it is empty");
    }
    if key.starts_with('/') {
        return Err("it is an absolute path");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err("it contains a control character or backslash");
    }
    for part in key.split('/') {
        match part {
            "" => return Err("it contains an empty folder name"),
            "." | ".." => return Err("it contains a `.` or `..` folder"),
            _ => {}
        }
    }
    if key.len() > 1024 {
        return Err("it is longer than 1024 bytes (the S3 limit)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn run() -> RunContext {
        RunContext {
            now: Utc.with_ymd_and_hms(2026, 11, 22, 3, 41, 7).unwrap(),
            run_id: "run1".into(),
            extension: "jsonl.gz".into(),
            format: "jsonl",
            compression: "gzip",
        }
    }

    fn render(prefix: &str, template: &str, stream: &str) -> String {
        KeyTemplate::parse(prefix, template, true)
            .unwrap()
            .render(&run(), &FileContext { stream, part: 3 })
    }

    #[test]
    fn every_macro_renders() {
        assert_eq!(
            render(
                "",
                "{stream}/{year}/{month}/{day}/{hour}{minute}{second}/{date}-{iso_date}",
                "s"
            ),
            "s/2026/11/22/034107/2026_11_22-2026-11-22"
        );
        assert_eq!(
            render(
                "",
                "{timestamp}|{date_time}|{iso_date_time}|{epoch}|{epoch_ms}",
                "s"
            ),
            "2026_11_22_03_41_07|2026_11_22_03_41_07|2026-11-22T03:41:07Z|1795318867|1795318867000"
        );
        assert_eq!(
            render(
                "",
                "{now:%Y/%m}/{part}.{extension}-{run_id}-{format}-{compression}",
                "s"
            ),
            "2026/11/00003.jsonl.gz-run1-jsonl-gzip"
        );
        let uuid = render("", "{uuid}", "s");
        assert_eq!(uuid.len(), 36);
        assert_ne!(uuid, render("", "{uuid}", "s"));
    }

    #[test]
    fn three_spellings_case_insensitive() {
        assert_eq!(
            render("", "${YEAR}/{{ month }}/{{Day}}/{Stream_Name}", "a"),
            "2026/11/22/a"
        );
    }

    #[test]
    fn prefix_is_a_folder() {
        assert_eq!(render("exports/", "{stream}", "a"), "exports/a");
        assert_eq!(render("/exports", "{stream}", "a"), "exports/a");
        assert_eq!(render("t/{year}", "{stream}", "a"), "t/2026/a");
    }

    #[test]
    fn stream_names_are_made_safe() {
        assert_eq!(
            render("", "{stream}", "test:SpecialChars!in?attributes"),
            "test_SpecialChars_in_attributes"
        );
        assert_eq!(
            render("", "{stream}", "../../etc/passwd"),
            ".._.._etc_passwd"
        );
        assert_eq!(render("", "x/{stream}", ".."), "x/_");
        assert_eq!(render("", "{stream}", "a\u{2215}b%2F\n"), "a_b_2F_");
        check_key(&render("", "{stream}", "..")).unwrap();
    }

    #[test]
    fn errors_name_setting_position_and_valid_macros() {
        let e = KeyTemplate::parse("", "{stream}/{bogus}", true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key_template") && e.contains("position 9") && e.contains("{run_id}"),
            "{e}"
        );
        let e = KeyTemplate::parse("", "{stream", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unclosed"), "{e}");
        let e = KeyTemplate::parse("", "{year:%Y}", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("takes no format"), "{e}");
        let e = KeyTemplate::parse("", "{now:%Q}", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("strftime"), "{e}");
        let e = KeyTemplate::parse("{nope}", "{stream}", true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`prefix`"), "{e}");
        assert!(KeyTemplate::parse("", "../{stream}", true).is_err());
    }

    #[test]
    fn templates_that_overwrite_are_refused() {
        let e = KeyTemplate::parse("", "{stream}/{date}.jsonl", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("allow_overwrite") && e.contains("{part}"), "{e}");
        let e = KeyTemplate::parse("", "{stream}/{part}.jsonl", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("{run_id}"), "{e}");
        KeyTemplate::parse("", "{stream}/{part}-{run_id}", false).unwrap();
        KeyTemplate::parse("", "{stream}/{uuid}", false).unwrap();
        KeyTemplate::parse("", crate::settings::DEFAULT_KEY_TEMPLATE, false).unwrap();
    }

    #[test]
    fn unsafe_keys_are_rejected() {
        assert!(check_key("/abs").is_err());
        assert!(check_key("a/../b").is_err());
        assert!(check_key("a//b").is_err());
        assert!(check_key("a/b.jsonl").is_ok());
    }
}
