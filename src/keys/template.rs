//! Parsing a `prefix` + `key_template` into segments, once at start-up, and what the parsed
//! template says about its keys (uniqueness, partitions, version folders).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::format::{Item, StrftimeItems};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;

use super::macros::{FieldPath, FormatSpec, JOB_VARIABLES, Macro, MacroStyle, lookup, valid_names};

/// A template that cannot be used: which setting (`key_template`, `prefix`, ...) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting `{setting}`: {message}")]
pub struct TemplateError {
    pub setting: String,
    pub message: String,
}

/// Everything parsing needs beyond the template text.
pub struct ParseOptions<'a> {
    pub style: MacroStyle,
    /// Job variables and `template_variables`, already resolved, by lowercase name.
    pub variables: &'a BTreeMap<String, String>,
}

impl Default for ParseOptions<'_> {
    fn default() -> Self {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        ParseOptions { style: MacroStyle::Default, variables: &EMPTY }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Segment {
    Literal(String),
    /// A value fixed for the run (job and template variables): data, so it is escaped like
    /// every other rendered value, but known at parse time.
    Fixed(String),
    Macro {
        kind: Macro,
        format: Option<String>,
    },
}

/// A parsed `prefix` + `key_template`.
#[derive(Clone, Debug)]
pub struct KeyTemplate {
    pub(super) segments: Vec<Segment>,
    pub(super) style: MacroStyle,
    /// How record values are written (see [`ValueEscaping`]).
    pub(super) values: ValueEscaping,
}

/// How a template writes record values into keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ValueEscaping {
    /// Hive's `%XX` escaping, letters of every script kept ([`super::push_escaped`]).
    #[default]
    Hive,
    /// The same, non-ASCII bytes escaped too ([`super::push_escaped_ascii`]): Delta partition
    /// folders, as delta-rs and Spark write them.
    HiveAscii,
}

/// What makes the keys of a template differ, for the start-up uniqueness check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uniqueness {
    /// `{stream}`, `{stream_id}` or `{stream_run_id}`: streams never share a key.
    pub by_stream: bool,
    /// `{part}` or `{uuid}`: files of one stream in one run differ.
    pub within_run: bool,
    /// `{run_id}`, `{stream_run_id}`, `{uuid}` or a full instant: runs differ.
    pub across_runs: bool,
}

impl KeyTemplate {
    /// The same template writing record values in ASCII ([`ValueEscaping::HiveAscii`]).
    pub fn with_ascii_values(mut self) -> Self {
        self.values = ValueEscaping::HiveAscii;
        self
    }

    /// Parses `prefix` and `template`; the prefix is a folder (a `/` joins the two). Whether the
    /// keys are unique is the caller's question ([`KeyTemplate::uniqueness`]).
    pub fn parse(prefix: &str, template: &str, options: &ParseOptions<'_>) -> Result<KeyTemplate, TemplateError> {
        let mut segments = Vec::new();
        let prefix = prefix.trim_start_matches('/').trim_end_matches('/');
        if !prefix.is_empty() {
            segments.extend(parse_segments("prefix", prefix, options)?);
            segments.push(Segment::Literal("/".into()));
        }
        let template_segments = parse_segments("key_template", template, options)?;
        if template_segments.is_empty() {
            return Err(TemplateError { setting: "key_template".into(), message: "must not be empty".into() });
        }
        segments.extend(template_segments);
        Ok(KeyTemplate { segments, style: options.style, values: ValueEscaping::Hive })
    }

    fn uses(&self, pred: impl Fn(&Macro) -> bool) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::Macro { kind, .. } if pred(kind)))
    }

    /// Whether the key names the file's cursor range, so it is rendered when the file closes.
    pub fn uses_cursor(&self) -> bool {
        self.uses(|m| matches!(m, Macro::Cursor(_)))
    }

    /// Whether keys hold the records' table version (one open file per version).
    /// Whether the template renders one folder per stream and run: no macro that varies by
    /// file or record (a Delta table's `table_path`).
    pub fn is_table_folder(&self) -> bool {
        !self.uses(|m| {
            matches!(
                m,
                Macro::Part
                    | Macro::Uuid
                    | Macro::Cursor(_)
                    | Macro::TableVersion
                    | Macro::Record(_)
                    | Macro::PartitionDate(_)
                    | Macro::Extension
                    | Macro::Format
                    | Macro::Compression
            )
        })
    }

    /// The fixed folder the rendered keys start with (up to the first macro's folder), and how
    /// many folder levels below it the key has: where `--table-state` looks for tables.
    pub fn fixed_folder(&self) -> (String, usize) {
        let mut fixed = String::new();
        let mut levels = 0;
        let mut in_fixed = true;
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) if in_fixed => fixed.push_str(text),
                Segment::Fixed(value) if in_fixed => super::escape::push_escaped(&mut fixed, value),
                Segment::Literal(text) => levels += text.matches('/').count(),
                Segment::Fixed(_) => {}
                // A format may make folders of its own (`{now:%Y/%m}`).
                Segment::Macro { format, .. } => {
                    levels += format.as_deref().map_or(0, |f| f.matches('/').count());
                    in_fixed = false;
                }
            }
        }
        let cut = if in_fixed { fixed.len() } else { fixed.rfind('/').map_or(0, |i| i + 1) };
        levels += fixed[cut..].matches('/').count() + usize::from(!in_fixed);
        (fixed[..cut].to_string(), levels)
    }

    pub fn uses_table_version(&self) -> bool {
        self.uses(|m| matches!(m, Macro::TableVersion))
    }

    /// The key up to the `{table_version}` folder: the folder whose version subfolders
    /// `hard_delete` may remove. Only when `{stream}` is a whole folder in it (so no other
    /// stream's root can equal or contain it: names are escaped reversibly, `{stream_id}` is a
    /// hash and could be made to collide), everything else before the version is fixed text or
    /// variables, and `{table_version}` is a whole folder.
    pub fn version_root(&self) -> Option<KeyTemplate> {
        let at = self.version_at()?;
        let before = &self.segments[..at];
        let fixed = before
            .iter()
            .all(|s| matches!(s, Segment::Literal(_) | Segment::Fixed(_) | Segment::Macro { kind: Macro::Stream, .. }));
        let mut streams =
            before.iter().enumerate().filter(|(_, s)| matches!(s, Segment::Macro { kind: Macro::Stream, .. }));
        let whole_folder = |i: usize| {
            let starts = i == 0 || matches!(&self.segments[i - 1], Segment::Literal(l) if l.ends_with('/'));
            let ends = matches!(self.segments.get(i + 1), Some(Segment::Literal(l)) if l.starts_with('/'));
            starts && ends
        };
        let stream_folder = matches!((streams.next(), streams.next()), (Some((i, _)), None) if whole_folder(i));
        if !fixed || !stream_folder || !whole_folder(at) {
            return None;
        }
        Some(KeyTemplate { segments: self.segments[..at].to_vec(), style: self.style, values: self.values })
    }

    fn version_at(&self) -> Option<usize> {
        self.segments.iter().position(|s| matches!(s, Segment::Macro { kind: Macro::TableVersion, .. }))
    }

    /// The version root as text with `{stream}` in place, to check that every template puts
    /// version folders in the same place (then two streams' roots are siblings, never nested).
    pub fn version_root_skeleton(&self) -> Option<String> {
        let root = self.version_root()?;
        Some(
            root.segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(text) => text.clone(),
                    Segment::Fixed(value) => format!("{{={value}}}"),
                    Segment::Macro { .. } => "{stream}".to_string(),
                })
                .collect(),
        )
    }

    /// The segments after `{table_version}`: the shape of a stream's keys below a version
    /// folder (see [`KeyTemplate::version_shape`]).
    pub(super) fn after_version(&self) -> &[Segment] {
        self.version_at().map_or(&[], |at| &self.segments[at + 1..])
    }

    /// Whether keys depend on the record (one open file per partition).
    pub fn is_partitioned(&self) -> bool {
        self.uses(|m| matches!(m, Macro::Record(_) | Macro::PartitionDate(_)))
    }

    /// What makes this template's keys differ. `utc`: load times render in UTC, so a load time
    /// to the second (`{timestamp}`) names one instant; in a zone with daylight saving the same
    /// local time comes twice a year. `{iso_date_time}` carries its offset and epochs are
    /// zone-free, so they always count; partial times (`{second}`, `{hour}`) never do.
    pub fn uniqueness(&self, utc: bool) -> Uniqueness {
        Uniqueness {
            by_stream: self.uses(|m| matches!(m, Macro::Stream | Macro::StreamId | Macro::StreamRunId)),
            within_run: self.uses(|m| matches!(m, Macro::Part | Macro::Uuid)),
            across_runs: self.uses(|m| match m {
                Macro::RunId
                | Macro::StreamRunId
                | Macro::Uuid
                | Macro::Epoch
                | Macro::EpochMs
                | Macro::IsoDateTime => true,
                Macro::DateTime => utc,
                _ => false,
            }),
        }
    }
}

/// Whether a strftime pattern renders: some directives parse but cannot be formatted (`%#z`,
/// and `%z` for record values, which have no zone), and chrono panics on those at render time.
/// A format must also make whole folder names: rendered (for a time with and without a
/// fraction of a second, as `%.f` prints nothing for the latter), no `/`-separated part may be
/// empty (`%Y//%m`, a leading or trailing `/`, an empty format).
fn renders(format: &str, zoned: bool) -> Result<(), &'static str> {
    if format.is_empty() {
        return Err("is empty");
    }
    if StrftimeItems::new(format).any(|item| matches!(item, Item::Error)) {
        return Err("is not a strftime format that can be rendered");
    }
    for micros in [5, 0] {
        let mut out = String::new();
        let sample =
            NaiveDate::from_ymd_opt(2026, 11, 22).and_then(|d| d.and_hms_micro_opt(3, 41, 7, micros)).expect("valid");
        let written = if zoned {
            write!(out, "{}", Tz::Europe__Berlin.from_utc_datetime(&sample).format(format))
        } else {
            write!(out, "{}", sample.format(format))
        };
        if written.is_err() {
            return Err("is not a strftime format that can be rendered");
        }
        if out.split('/').any(str::is_empty) {
            return Err("can render an empty folder name (`//`, a leading or trailing `/`, or nothing at all)");
        }
    }
    Ok(())
}

fn parse_segments(setting: &str, text: &str, options: &ParseOptions<'_>) -> Result<Vec<Segment>, TemplateError> {
    let err = |pos: usize, message: String| TemplateError {
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
            if c == '}' {
                return Err(err(pos, "`}` without a matching `{`".into()));
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
        if let Some(f) = &format
            && let Err(why) = renders(f, name.eq_ignore_ascii_case("now"))
        {
            return Err(err(pos, format!("the format `{f}` {why}")));
        }
        let lower = name.to_ascii_lowercase();
        let segment = if let Some(field) = lower.strip_prefix("record.") {
            let path: FieldPath = name["record.".len()..].split('.').map(str::to_string).collect();
            if field.is_empty() || path.iter().any(String::is_empty) {
                return Err(err(
                    pos,
                    format!("`{open}{inner}{close}` needs a field name, e.g. `{{record.updated_at}}`"),
                ));
            }
            Segment::Macro { kind: Macro::Record(path), format }
        } else if let Some(spec) = lookup(name) {
            match (spec.format, &format) {
                (FormatSpec::None, Some(f)) => {
                    return Err(err(pos, format!("macro `{name}` takes no format (got `:{f}`)")));
                }
                (FormatSpec::Strftime, None) => {
                    return Err(err(
                        pos,
                        format!("macro `{name}` needs a strftime format, e.g. `{{{name}:%Y/%m/%d}}`"),
                    ));
                }
                (FormatSpec::Strftime | FormatSpec::OptionalStrftime, Some(_))
                | (FormatSpec::OptionalStrftime, None) => {}
                (FormatSpec::None, None) => {}
            }
            match &spec.kind {
                Macro::JobVar(var) => match options.variables.get(*var) {
                    Some(value) => Segment::Fixed(value.clone()),
                    None => {
                        let env = JOB_VARIABLES
                            .iter()
                            .find(|(n, _)| n == var)
                            .map(|(_, e)| e.join(" or $"))
                            .unwrap_or_default();
                        return Err(err(
                            pos,
                            format!("macro `{name}` has no value: set the `{var}` setting or ${env}"),
                        ));
                    }
                },
                kind => Segment::Macro { kind: kind.clone(), format },
            }
        } else if let Some(value) = options.variables.get(&lower) {
            if format.is_some() {
                return Err(err(pos, format!("template variable `{name}` takes no format")));
            }
            Segment::Fixed(value.clone())
        } else {
            return Err(err(
                pos,
                format!(
                    "unknown macro `{open}{inner}{close}`; valid macros: {} (and template_variables)",
                    valid_names()
                ),
            ));
        };
        match segment {
            Segment::Literal(text) => literal.push_str(&text),
            macro_segment => {
                if !literal.is_empty() {
                    segments.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                segments.push(macro_segment);
            }
        }
        let consumed = inner_start + end + close.len();
        rest = &rest[consumed..];
        pos += consumed;
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    // Literal `.` / `..` folders would climb out of the prefix or local folder; an empty folder
    // name (`a//b`, a leading or trailing `/`) is not a key S3 readers or file systems agree on.
    let skeleton: String = segments
        .iter()
        .map(|s| match s {
            Segment::Literal(text) => text.as_str(),
            Segment::Fixed(_) | Segment::Macro { .. } => "x",
        })
        .collect();
    if skeleton.split('/').any(|part| part == "." || part == "..") {
        return Err(err(0, "`.` and `..` folders are not allowed".into()));
    }
    if skeleton.split('/').any(str::is_empty) {
        return Err(err(0, "a folder name is empty (`//`, or a `/` at the start or end)".into()));
    }
    Ok(segments)
}
