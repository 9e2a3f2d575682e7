//! A stream's schema, compiled once: its validator ([`draft`] decides the JSON Schema draft),
//! its key properties, its column plan ([`columns`]: the flattened columns CSV writes) and its
//! typed columns ([`typed`]: what Parquet and Avro write). All derived from the schema, never
//! from the data.

mod columns;
mod draft;
#[cfg(test)]
mod tests;
pub mod typed;

use std::sync::Arc;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::InputErrorKind;
pub use columns::{ColumnPlan, Slot};
use draft::{draft_of, schema_error, truncate};

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
    pub validator: Option<jsonschema::Validator>,
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
        let validator = if opts.validate_records {
            let draft = draft_of(&mut schema);
            let v = jsonschema::options()
                .with_draft(draft)
                .should_validate_formats(opts.validate_formats)
                .build(&schema)
                .map_err(|e| InputErrorKind::InvalidSchema(schema_error(&e, draft)))?;
            Some(v)
        } else {
            None
        };
        let columns = Arc::new(ColumnPlan::from_schema(text, opts.flatten_max_depth).map_err(InputErrorKind::Json)?);
        Ok(StreamSchema { text: text.into(), key_properties, validator, columns })
    }

    /// Checks one record when `validate_records` is on: JSON Schema validation and key
    /// properties present. Off, only that the record is an object. Returns the parsed record
    /// when it had to be parsed, so later steps need not parse it again.
    pub fn check(&self, record: &RawValue) -> Result<Option<Value>, InputErrorKind> {
        match &self.validator {
            Some(validator) => {
                // A member named twice would be validated on its last value but written raw
                // with both: refused, naming it.
                let value = crate::json::parse_strict(record.get())
                    .map_err(|e| InputErrorKind::Invalid(format!("record is not a valid JSON object: {e}")))?;
                if let Err(e) = validator.validate(&value) {
                    let path = e.instance_path().to_string();
                    let at = if path.is_empty() { "at the top level".to_string() } else { format!("at {path}") };
                    return Err(InputErrorKind::Invalid(format!("{at}: {}", truncate(&e.to_string(), 300))));
                }
                let object =
                    value.as_object().ok_or_else(|| InputErrorKind::Invalid("record is not a JSON object".into()))?;
                if let Some(missing) = self.key_properties.iter().find(|k| !object.contains_key(k.as_str())) {
                    return Err(InputErrorKind::MissingKeyProperty(missing.clone()));
                }
                Ok(Some(value))
            }
            // Raw pass-through: the envelope parse already proved the record is well-formed JSON;
            // no second scan of it (key properties are part of validation).
            None if record.get().starts_with('{') => Ok(None),
            None => Err(InputErrorKind::Invalid("record is not a JSON object".into())),
        }
    }
}
