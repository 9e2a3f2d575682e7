//! A stream's schema, compiled once: its validator ([`draft`] decides the JSON Schema draft),
//! its key properties, its column plan ([`columns`]: the flattened columns CSV writes) and its
//! typed columns ([`typed`]: what Parquet and Avro write). All derived from the schema, never
//! from the data.

mod columns;
mod draft;
pub mod exact;
#[cfg(test)]
mod tests;
pub mod typed;

use std::sync::Arc;

use serde_json::Value;

use crate::error::InputErrorKind;
use crate::json::{Field, Tape, TapeJson};
pub use columns::{ColumnPlan, Slot};
use draft::{draft_of, schema_error, truncate};
use jsonschema::json::Node as _;

/// What checking a record found: its cursor value and its null array elements (not yet counted).
#[derive(Debug, Default)]
pub struct Found {
    pub cursor: Option<Field>,
    pub nulls: exact::Nulls,
}

thread_local! {
    /// Each thread that checks records (the decode thread, each worker) parses them into its
    /// own buffers, reused from record to record.
    static TAPE: std::cell::RefCell<Tape> = std::cell::RefCell::default();
}

/// The Singer SDK's `_sdc_*` columns, added to every record when `add_record_metadata` is on.
pub const METADATA_COLUMNS: [&str; 6] = [
    "_sdc_extracted_at",
    "_sdc_received_at",
    "_sdc_batched_at",
    "_sdc_sequence",
    "_sdc_table_version",
    "_sdc_deleted_at",
];

/// Options that change how schemas compile; fixed for the run.
#[derive(Clone, Copy, Debug)]
pub struct SchemaOptions {
    pub validate_records: bool,
    pub validate_formats: bool,
    pub flatten_max_depth: usize,
}

pub struct StreamSchema {
    /// The SCHEMA message's schema text, to recognise a resent identical SCHEMA.
    pub text: Box<str>,
    pub key_properties: Vec<String>,
    pub validator: Option<jsonschema::Validator<TapeJson>>,
    /// Bounds compared on exact decimal values and null array elements counted ([`exact`]);
    /// with the validator only.
    pub exact: Option<exact::ExactChecks>,
    /// The stream's name, for warnings (set by the router).
    pub stream: Box<str>,
    /// The stream's first bookmark property (set by the router): checking a record reads it
    /// on the way, for the file's cursor range.
    pub cursor: Option<crate::keys::FieldPath>,
    /// The loader's `schema_overrides` for this stream's columns (set by the router).
    pub overrides: Vec<(String, typed::Override)>,
    pub columns: Arc<ColumnPlan>,
}

impl StreamSchema {
    pub fn compile(
        text: &str,
        key_properties: Vec<String>,
        opts: SchemaOptions,
    ) -> Result<StreamSchema, InputErrorKind> {
        let mut schema: Value = serde_json::from_str(text).map_err(InputErrorKind::Json)?;
        if !schema.get("properties").is_some_and(Value::is_object) {
            return Err(InputErrorKind::SchemaNoProperties);
        }
        let mut exact = None;
        let validator = if opts.validate_records {
            let draft = draft_of(&mut schema);
            draft::json_columns_admit_scalars(&mut schema);
            let build = |schema: &Value| {
                jsonschema::options_for::<TapeJson>()
                    .with_draft(draft)
                    .should_validate_formats(opts.validate_formats)
                    .build(schema)
                    .map_err(|e| InputErrorKind::InvalidSchema(schema_error(&e, draft)))
            };
            let mut validator = build(&schema)?;
            // The schema as sent compiled (so its errors are the validator's own); bounds then
            // move to the exact checks, and the validator is built without them.
            exact = exact::take(&mut schema, text);
            if exact.is_some() {
                validator = build(&schema)?;
            }
            Some(validator)
        } else {
            None
        };
        let columns = Arc::new(ColumnPlan::from_schema(text, opts.flatten_max_depth).map_err(InputErrorKind::Json)?);
        Ok(StreamSchema {
            text: text.into(),
            key_properties,
            validator,
            exact,
            stream: "".into(),
            cursor: None,
            overrides: Vec::new(),
            columns,
        })
    }

    /// The typed columns Parquet, Avro and Delta tables write: from the schema, then the
    /// loader's `schema_overrides`.
    pub fn typed_columns(&self, nested_as_json: bool, metadata: bool) -> Vec<typed::Field> {
        let mut fields = typed::columns(&self.text, nested_as_json, metadata);
        typed::apply_overrides(&mut fields, &self.overrides);
        fields
    }

    /// Checks one record when `validate_records` is on: JSON Schema validation and key
    /// properties present; returns the record's cursor value, if it has one, and counts its
    /// null array elements. Off, only that the record is an object.
    pub fn check(&self, record: &str) -> Result<Option<Field>, InputErrorKind> {
        let checked = self.check_deferred(record)?;
        self.count(&checked.nulls);
        Ok(checked.cursor)
    }

    /// Adds a record's null array elements (from [`StreamSchema::check_deferred`]) to the
    /// stream's counts.
    pub fn count(&self, nulls: &[(u32, u32)]) {
        if let Some(exact) = self.exact.as_ref().filter(|_| !nulls.is_empty()) {
            exact.add(nulls, &self.stream);
        }
    }

    /// [`StreamSchema::check`] without counting: a worker's verdict counts only if the decode
    /// thread uses it (it is not used when the stream's schema changed since).
    pub fn check_deferred(&self, record: &str) -> Result<Found, InputErrorKind> {
        match &self.validator {
            Some(validator) => TAPE.with_borrow_mut(|tape| {
                let verdict = self.validate(validator, tape, record);
                tape.trim();
                verdict
            }),
            // Raw pass-through: the envelope parse already proved the record is well-formed JSON;
            // one light scan holds it to the nesting limit a parse would enforce (key
            // properties are part of validation).
            None if record.starts_with('{') => {
                if crate::json::too_deep(record) {
                    return Err(InputErrorKind::TooDeep("record"));
                }
                Ok(Found::default())
            }
            None => Err(InputErrorKind::Invalid("record is not a JSON object".into())),
        }
    }

    /// JSON Schema, exact checks and key properties on the record parsed into `tape`. The record
    /// is one line's member, so an error's place is a column in the record, not in the line.
    fn validate(
        &self,
        validator: &jsonschema::Validator<TapeJson>,
        tape: &mut Tape,
        record: &str,
    ) -> Result<Found, InputErrorKind> {
        // A member named twice would be validated on its last value but written raw with both:
        // refused, naming it.
        let doc = tape.parse(record).map_err(|e| match crate::json::too_deep(record) {
            // The nesting limit, named as with validation off (a run stops; no dead letter).
            true => InputErrorKind::TooDeep("record"),
            false => InputErrorKind::Invalid(format!("record is not a valid JSON object: {}", in_record(&e))),
        })?;
        let root = doc.root();
        // The fast verdict first; the error (its path and message) only for a record that fails.
        if !validator.is_valid(root)
            && let Err(e) = validator.validate(root)
        {
            let path = e.instance_path().to_string();
            let at = if path.is_empty() { "at the top level".to_string() } else { format!("at {path}") };
            return Err(InputErrorKind::Invalid(format!("{at}: {}", truncate(&e.to_string(), 300))));
        }
        let mut nulls = exact::Nulls::new();
        match &self.exact {
            Some(exact) if exact.needs_text(doc.whole_floats) => {
                exact.check(record, &mut nulls).map_err(|e| InputErrorKind::Invalid(truncate(&e, 300)))?
            }
            Some(exact) => exact.count_null_items(root, &mut nulls),
            None => {}
        }
        let object = root.as_object().ok_or_else(|| InputErrorKind::Invalid("record is not a JSON object".into()))?;
        if let Some(missing) = self.key_properties.iter().find(|k| !object.has_member(k)) {
            return Err(InputErrorKind::MissingKeyProperty(missing.clone()));
        }
        Ok(Found { cursor: self.cursor.as_deref().and_then(|path| doc.field(path)), nulls })
    }
}

/// A parse error of a record, placed within the record: serde_json says "line 1 column 15",
/// which next to the message's "input line 2" would read as a place in the input.
fn in_record(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())) {
        Some(message) if e.line() == 1 => format!("{message} (column {} of the record)", e.column()),
        _ => text,
    }
}
