//! Which JSON Schema draft a stream's records are validated with, and the draft-4 compatibility
//! that real database taps need; schema errors as one line naming the place.

use serde_json::Value;

/// The draft a stream's records are validated with. A `$schema` naming a draft (04, 06, 07,
/// 2019-09, 2020-12) is honoured as written. Without one (or with a URL that names no draft),
/// draft 7, the Singer convention, after rewriting draft-4 boolean bounds into draft-7 ones:
/// database taps (pipelinewise-tap-postgres, tap-mysql, ...) send
/// `"maximum": 1e10, "exclusiveMaximum": true` without saying which draft they mean, and draft 7
/// would reject every such SCHEMA.
pub(super) fn draft_of(schema: &mut Value) -> jsonschema::Draft {
    use jsonschema::Draft;
    if let Some(uri) = schema.get("$schema").and_then(Value::as_str) {
        match Draft::from_schema_uri(uri) {
            Draft::Unknown => {
                tracing::warn!(
                    schema = uri,
                    "SCHEMA names an unknown $schema; validating its records as JSON Schema draft 7"
                );
            }
            known => return known,
        }
    }
    draft4_bounds_to_draft7(schema);
    Draft::Draft7
}

/// Rewrites draft-4 boolean `exclusiveMaximum`/`exclusiveMinimum` into their draft-6+ form
/// (`maximum: X, exclusiveMaximum: true` -> `exclusiveMaximum: X`; `false` is dropped, leaving
/// the inclusive bound) in this schema and every schema nested in it. Only schema positions are
/// visited, so data such as `default` or `enum` values is never changed. Recursion is bounded
/// by the input's nesting limit.
pub(super) fn draft4_bounds_to_draft7(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    for (exclusive, bound) in [("exclusiveMaximum", "maximum"), ("exclusiveMinimum", "minimum")] {
        if let Some(Value::Bool(is_exclusive)) = map.get(exclusive) {
            let is_exclusive = *is_exclusive;
            map.remove(exclusive);
            if is_exclusive && let Some(limit) = map.remove(bound) {
                map.insert(exclusive.to_string(), limit);
            }
        }
    }
    for (keyword, value) in map.iter_mut() {
        match keyword.as_str() {
            // maps of name -> schema
            "properties" | "patternProperties" | "definitions" | "$defs" | "dependencies" | "dependentSchemas" => {
                if let Value::Object(schemas) = value {
                    schemas.values_mut().for_each(draft4_bounds_to_draft7);
                }
            }
            // a schema or a list of schemas
            "items" | "allOf" | "anyOf" | "oneOf" | "prefixItems" => match value {
                Value::Array(schemas) => schemas.iter_mut().for_each(draft4_bounds_to_draft7),
                other => draft4_bounds_to_draft7(other),
            },
            "additionalItems"
            | "additionalProperties"
            | "contains"
            | "propertyNames"
            | "not"
            | "if"
            | "then"
            | "else"
            | "unevaluatedItems"
            | "unevaluatedProperties" => draft4_bounds_to_draft7(value),
            _ => {}
        }
    }
}

/// A schema the validator refuses, as one line: where in the schema (`at /properties/amount/
/// exclusiveMaximum`), what is wrong, and for draft-4 bounds in a schema that declares a later
/// draft, what to do.
pub(super) fn schema_error(e: &jsonschema::ValidationError<'_>, draft: jsonschema::Draft) -> String {
    let path = e.instance_path().to_string();
    use jsonschema::error::ValidationErrorKind::Referencing;
    let mut message = if let Referencing(jsonschema::ReferencingError::InvalidUri(_)) = e.kind() {
        format!("a `$ref` or `$id` (draft 4: `id`) is not a URI: {e}")
    } else if let Referencing(_) = e.kind() {
        format!("$ref: {e}")
    } else if path.is_empty() {
        e.to_string()
    } else {
        format!("at {path}: {e}")
    };
    let draft4_bound = path.ends_with("/exclusiveMaximum") || path.ends_with("/exclusiveMinimum");
    if draft4_bound && e.instance().is_boolean() && draft != jsonschema::Draft::Draft4 {
        message.push_str(
            " (a draft-4 boolean bound, but `$schema` names a later draft: declare draft-04 or drop `$schema`)",
        );
    }
    truncate(&message, 400)
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// pipelinewise-tap-postgres declares every `json`/`jsonb` column `{"type": ["null", "object",
/// "array"]}` and then sends the column's scalars (`"just a string"`, `false`) as they are: a
/// JSON column holds any JSON value. Such a schema (objects or arrays, nothing said about their
/// members) admits any value in the validator's copy; every other schema is validated as sent.
pub(super) fn json_columns_admit_scalars(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Array(types)) = map.get("type") {
        let mut named: Vec<&str> = types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
        named.sort_unstable();
        let describes_members = ["properties", "items", "additionalProperties", "patternProperties", "required"]
            .iter()
            .any(|k| map.contains_key(*k));
        if named == ["array", "object"] && !describes_members {
            map.remove("type");
            return;
        }
    }
    for key in ["properties", "definitions", "$defs"] {
        if let Some(Value::Object(schemas)) = map.get_mut(key) {
            schemas.values_mut().for_each(json_columns_admit_scalars);
        }
    }
    if let Some(items @ Value::Object(_)) = map.get_mut("items") {
        json_columns_admit_scalars(items);
    }
}
