//! Warnings about values a format changed or had no place for: given once per stream (or per
//! stream and field), while the counts go into METRIC lines and the manifest for every file.

use std::collections::HashSet;

use crate::json::Dropped;
use crate::schema::typed::Lossy;

#[derive(Default)]
pub struct Notices {
    dropped: HashSet<String>,
    lossy: HashSet<(String, String)>,
}

impl Notices {
    /// Numbers a float column rounded: once per stream and field, naming the setting that
    /// keeps every digit.
    pub fn lossy(&mut self, stream: &str, lossy: &Lossy) {
        for (field, count, first) in &lossy.0 {
            if !self.lossy.insert((stream.to_string(), field.clone())) {
                continue;
            }
            if field.contains(['[', '.']) {
                // `schema_overrides` types top-level fields only.
                tracing::warn!(
                    stream,
                    field = field.as_str(),
                    values = count,
                    first = first.as_str(),
                    "numbers that a double cannot hold exactly were rounded (counted as lossy_values in METRIC lines and the manifest); this field is inside an array or object, which schema_overrides cannot type: keep every digit with a `multipleOf` (or `x-sql-datatype: numeric(p,s)`) in the tap's schema for it (Meltano's `schema:` extra), or a text format (jsonl, csv)"
                );
            } else {
                tracing::warn!(
                    stream,
                    field = field.as_str(),
                    values = count,
                    first = first.as_str(),
                    "numbers that a double cannot hold exactly were rounded (counted as lossy_values in METRIC lines and the manifest); to keep every digit, set `schema_overrides` for this field, e.g. {{\"{stream}\": {{\"{field}\": \"decimal(38,10)\"}}}}, or \"numeric\" for the exact text"
                );
            }
        }
    }

    /// Properties outside the schema: once per stream.
    pub fn dropped(&mut self, stream: &str, format: &str, dropped: &Dropped) {
        if let Some(first) = &dropped.first
            && self.dropped.insert(stream.to_string())
        {
            tracing::warn!(
                stream,
                format,
                property = %first,
                "records have properties that are not in the schema; this format has no column for them (counted as dropped_properties in METRIC lines and the manifest; declare them in the SCHEMA, or use jsonl)"
            );
        }
    }
}
