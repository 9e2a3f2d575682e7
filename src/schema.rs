//! A stream's schema, compiled once: its validator, its key properties and its column plan
//! (the flattened columns CSV writes, derived from the schema, never from the data).

use std::collections::HashMap;
use std::sync::Arc;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::InputErrorKind;

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
                let value: Value = serde_json::from_str(record.get()).map_err(InputErrorKind::Json)?;
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

/// The draft a stream's records are validated with. A `$schema` naming a draft (04, 06, 07,
/// 2019-09, 2020-12) is honoured as written. Without one (or with a URL that names no draft),
/// draft 7, the Singer convention, after rewriting draft-4 boolean bounds into draft-7 ones:
/// database taps (pipelinewise-tap-postgres, tap-mysql, ...) send
/// `"maximum": 1e10, "exclusiveMaximum": true` without saying which draft they mean, and draft 7
/// would reject every such SCHEMA.
fn draft_of(schema: &mut Value) -> jsonschema::Draft {
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
fn draft4_bounds_to_draft7(schema: &mut Value) {
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
fn schema_error(e: &jsonschema::ValidationError<'_>, draft: jsonschema::Draft) -> String {
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

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// An object key, borrowed from the input unless it contains escapes.
pub(crate) struct Key<'de>(pub std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(v.into()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(v.to_string().into()))
            }
        }
        d.deserialize_str(V)
    }
}

/// The flattened columns of a stream: nested objects with declared properties become
/// `parent__child` columns down to a depth; everything else is one column.
#[derive(Debug, PartialEq)]
pub struct ColumnPlan {
    pub names: Vec<String>,
    root: PlanNode,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct PlanNode {
    children: HashMap<String, Child>,
}

#[derive(Clone, Debug, PartialEq)]
enum Child {
    Column(usize),
    Object(PlanNode),
}

/// Where a column's value sits inside the record text (byte range), filled per record.
pub type Slot = Option<(usize, usize)>;

impl ColumnPlan {
    /// Builds the plan from the schema text, keeping the order in which the schema lists its
    /// properties (serde_json's map sorts keys, and a CSV header must follow the schema).
    fn from_schema(schema: &str, max_depth: usize) -> Result<ColumnPlan, serde_json::Error> {
        let mut names = Vec::new();
        let properties = properties_of(schema)?.unwrap_or_default();
        let root = build(&properties, "", 0, max_depth, &mut names)?;
        disambiguate(&mut names);
        Ok(ColumnPlan { names, root })
    }

    /// This plan with top-level columns `extra` appended (those it lacks), in that order: the
    /// `_sdc_*` metadata columns of CSV and flattened JSON, so a tap's own `_sdc_deleted_at`
    /// lands in its column instead of being dropped as a property outside the schema.
    pub fn with_columns(&self, extra: &[&str]) -> ColumnPlan {
        let mut plan = ColumnPlan { names: self.names.clone(), root: self.root.clone() };
        for name in extra {
            if !plan.root.children.contains_key(*name) && !plan.names.iter().any(|n| n == name) {
                plan.names.push(name.to_string());
                plan.root.children.insert(name.to_string(), Child::Column(plan.names.len() - 1));
            }
        }
        plan
    }

    /// Finds every column's raw value in `record`, writing byte ranges into `slots` (one per
    /// column, reset to `None` first). Returns the first top-level key not in the schema, if any.
    /// A nested object that is null leaves its columns empty; a nested value that is not an
    /// object is an error (its columns would otherwise silently vanish).
    pub fn locate(&self, record: &str, slots: &mut [Slot]) -> Result<Option<String>, serde_json::Error> {
        slots.fill(None);
        let mut unknown = None;
        let base = record.as_ptr() as usize;
        let mut de = serde_json::Deserializer::from_str(record);
        Fill { node: &self.root, base, slots, unknown: &mut unknown }.deserialize(&mut de)?;
        de.end()?;
        Ok(unknown)
    }
}

/// An object's members in document order, values left raw.
struct Ordered<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Ordered<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    members.push((key.0.into_owned(), map.next_value::<&'de RawValue>()?));
                }
                Ok(Ordered(members))
            }
        }
        d.deserialize_map(V)
    }
}

/// One member of a JSON object, as its raw text (which keeps the order of nested members).
pub(crate) fn member<'a>(object: &'a str, key: &str) -> Option<&'a RawValue> {
    let members = serde_json::from_str::<Ordered<'_>>(object).ok()?;
    members.0.into_iter().find(|(k, _)| k == key).map(|(_, raw)| raw)
}

/// The `properties` of a schema object, in order; `None` when it has none (or is not an object).
/// A property named twice counts once, with its last definition (as for the validator, which
/// reads the schema into a map), at the place of its last mention.
pub(crate) fn properties_of(schema: &str) -> Result<Option<Vec<(String, &RawValue)>>, serde_json::Error> {
    let Ok(members) = serde_json::from_str::<Ordered<'_>>(schema) else { return Ok(None) };
    let Some((_, raw)) = members.0.into_iter().rev().find(|(k, _)| k == "properties") else { return Ok(None) };
    let Ok(Ordered(mut props)) = serde_json::from_str::<Ordered<'_>>(raw.get()) else { return Ok(None) };
    let mut seen = std::collections::HashSet::new();
    if props.iter().any(|(k, _)| !seen.insert(k.as_str())) {
        let mut last = HashMap::new();
        for (i, (k, _)) in props.iter().enumerate() {
            last.insert(k.clone(), i);
        }
        let mut i = 0;
        props.retain(|(k, _)| {
            i += 1;
            last[k] == i - 1
        });
    }
    Ok(Some(props))
}

/// Nested objects are flattened only when typed as an object (optionally nullable) with
/// declared properties; anything else is one column.
fn is_flattenable(schema: &str) -> bool {
    let Ok(value) = serde_json::from_str::<Value>(schema) else { return false };
    let is_object = match value.get("type") {
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(types)) => {
            types.iter().any(|t| t == "object") && types.iter().all(|t| t == "object" || t == "null")
        }
        _ => false,
    };
    is_object && value.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty())
}

/// Flattening can give two columns one name (a property `a__b` next to an object `a` with a
/// property `b`; or `a{b__c}` next to `a__b{c}`). The first in schema order keeps the name;
/// each later one gets `_2`, `_3`, ... (the smallest suffix no column has), so a CSV header or
/// a flattened JSON record never holds a name twice and the result does not depend on the data.
fn disambiguate(names: &mut [String]) {
    let all: std::collections::HashSet<String> = names.iter().cloned().collect();
    if all.len() == names.len() {
        return;
    }
    let mut taken = std::collections::HashSet::new();
    for name in names.iter_mut() {
        if taken.insert(name.clone()) {
            continue;
        }
        let renamed = (2..)
            .map(|n| format!("{name}_{n}"))
            .find(|candidate| !all.contains(candidate) && !taken.contains(candidate))
            .expect("an unused suffix exists");
        taken.insert(renamed.clone());
        *name = renamed;
    }
}

fn build(
    props: &[(String, &RawValue)],
    prefix: &str,
    depth: usize,
    max_depth: usize,
    names: &mut Vec<String>,
) -> Result<PlanNode, serde_json::Error> {
    let mut node = PlanNode::default();
    for (key, schema) in props {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}__{key}") };
        let child = if depth < max_depth && is_flattenable(schema.get()) {
            let nested = properties_of(schema.get())?.unwrap_or_default();
            Child::Object(build(&nested, &name, depth + 1, max_depth, names)?)
        } else {
            names.push(name);
            Child::Column(names.len() - 1)
        };
        node.children.insert(key.clone(), child);
    }
    Ok(node)
}

struct Fill<'a> {
    node: &'a PlanNode,
    base: usize,
    slots: &'a mut [Slot],
    unknown: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Fill<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fill<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match self.node.children.get(key.0.as_ref()) {
                Some(Child::Column(i)) => {
                    let raw: &'de RawValue = map.next_value()?;
                    let text = raw.get();
                    self.slots[*i] = Some((text.as_ptr() as usize - self.base, text.len()));
                }
                Some(Child::Object(node)) => {
                    let raw: &'de RawValue = map.next_value()?;
                    if raw.get() != "null" {
                        let mut de = serde_json::Deserializer::from_str(raw.get());
                        let nested = Fill { node, base: self.base, slots: self.slots, unknown: self.unknown };
                        nested
                            .deserialize(&mut de)
                            .map_err(|e| serde::de::Error::custom(format_args!("property {:?}: {e}", key.0)))?;
                    }
                }
                None => {
                    if self.unknown.is_none() {
                        *self.unknown = Some(key.0.into_owned());
                    }
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SchemaOptions {
        SchemaOptions { validate_records: true, validate_formats: false, flatten_max_depth: 10 }
    }

    const SCHEMA: &str = r#"{"type":"object","required":["id"],"properties":{
        "id":{"type":"integer"},
        "addr":{"type":["object","null"],"properties":{"city":{"type":"string"},"geo":{"type":"object","properties":{"lat":{"type":"number"}}}}},
        "tags":{"type":"array","items":{"type":"string"}},
        "free":{"type":"object"},
        "ts":{"type":"string","format":"date-time"}}}"#;

    #[test]
    fn columns_follow_schema_order_and_flatten() {
        let s = StreamSchema::compile(SCHEMA, vec![], opts()).unwrap();
        assert_eq!(s.columns.names, ["id", "addr__city", "addr__geo__lat", "tags", "free", "ts"]);
        let shallow = StreamSchema::compile(SCHEMA, vec![], SchemaOptions { flatten_max_depth: 1, ..opts() }).unwrap();
        assert_eq!(shallow.columns.names, ["id", "addr__city", "addr__geo", "tags", "free", "ts"]);
    }

    #[test]
    fn locate_finds_raw_values() {
        let s = StreamSchema::compile(SCHEMA, vec![], opts()).unwrap();
        let rec = r#"{"ts":"2020","id":1.50,"addr":{"geo":{"lat":-1e3},"city":"a\"b"},"extra":1,"tags":["x"]}"#;
        let mut slots = vec![None; 6];
        let unknown = s.columns.locate(rec, &mut slots).unwrap();
        let got: Vec<Option<&str>> = slots.iter().map(|s| s.map(|(a, n)| &rec[a..a + n])).collect();
        assert_eq!(got, [Some("1.50"), Some(r#""a\"b""#), Some("-1e3"), Some(r#"["x"]"#), None, Some(r#""2020""#)]);
        assert_eq!(unknown.as_deref(), Some("extra"));
        let null_addr = r#"{"id":1,"addr":null}"#;
        s.columns.locate(null_addr, &mut slots).unwrap();
        assert_eq!(slots.iter().filter(|s| s.is_some()).count(), 1);
        assert!(s.columns.locate(r#"{"id":1,"addr":"oops"}"#, &mut slots).unwrap_err().to_string().contains("addr"));
    }

    #[test]
    fn validation_names_path_and_rule() {
        let s = StreamSchema::compile(SCHEMA, vec!["id".into()], opts()).unwrap();
        let raw = |t: &str| serde_json::from_str::<Box<RawValue>>(t).unwrap();
        s.check(&raw(r#"{"id":1,"ts":"not a date"}"#)).unwrap();
        let e = s.check(&raw(r#"{"id":"x"}"#)).unwrap_err().to_string();
        assert!(e.contains("at /id") && e.contains("integer"), "{e}");
        let e = s.check(&raw(r#"{"addr":null}"#)).unwrap_err().to_string();
        assert!(e.contains("\"id\" is a required property"), "{e}");
        let strict = StreamSchema::compile(SCHEMA, vec![], SchemaOptions { validate_formats: true, ..opts() }).unwrap();
        assert!(strict.check(&raw(r#"{"id":1,"ts":"not a date"}"#)).is_err());
    }

    #[test]
    fn validation_off_checks_only_the_shape() {
        let s = StreamSchema::compile(SCHEMA, vec!["id".into()], SchemaOptions { validate_records: false, ..opts() })
            .unwrap();
        let raw = |t: &str| serde_json::from_str::<Box<RawValue>>(t).unwrap();
        s.check(&raw(r#"{"a":{"id":2}}"#)).unwrap();
        assert!(s.check(&raw("[1]")).is_err());
    }

    fn raw(text: &str) -> Box<RawValue> {
        serde_json::from_str(text).unwrap()
    }

    /// pipelinewise-tap-postgres's numeric columns (draft 4 bounds, no `$schema`), in every
    /// place a schema can sit.
    #[test]
    fn draft4_bounds_are_accepted_wherever_they_occur() {
        let schema = r##"{"type":"object","properties":{
            "amount":{"type":["null","number"],"exclusiveMaximum":true,"maximum":100000000,"multipleOf":0.01,"exclusiveMinimum":true,"minimum":-100000000},
            "inclusive":{"type":"integer","exclusiveMaximum":false,"maximum":10},
            "o":{"type":"object","properties":{"n":{"type":"number","exclusiveMinimum":true,"minimum":0}}},
            "l":{"type":"array","items":{"$ref":"#/definitions/positive"}},
            "either":{"anyOf":[{"type":"null"},{"type":"number","exclusiveMaximum":true,"maximum":1}]},
            "d":{"type":"object","default":{"exclusiveMaximum":true,"maximum":5}}},
          "definitions":{"positive":{"type":"number","exclusiveMinimum":true,"minimum":0}}}"##;
        let s = StreamSchema::compile(schema, vec![], opts()).unwrap();
        for ok in [
            r#"{"amount":99999999.99,"inclusive":10,"o":{"n":0.5},"l":[1,2],"either":0.5}"#,
            r#"{"amount":-99999999.99,"either":null,"d":{"exclusiveMaximum":true,"maximum":5}}"#,
        ] {
            s.check(&raw(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, at) in [
            (r#"{"amount":100000000}"#, "at /amount"),
            (r#"{"amount":-100000000}"#, "at /amount"),
            (r#"{"inclusive":11}"#, "at /inclusive"),
            (r#"{"o":{"n":0}}"#, "at /o/n"),
            (r#"{"l":[1,0]}"#, "at /l/1"),
            (r#"{"either":1}"#, "at /either"),
        ] {
            let e = s.check(&raw(bad)).unwrap_err().to_string();
            assert!(e.contains(at), "{bad}: {e}");
        }
        // Only schema positions are rewritten: data (a `default`) keeps its members.
        let mut value: Value = serde_json::from_str(schema).unwrap();
        draft4_bounds_to_draft7(&mut value);
        assert_eq!(value["properties"]["d"]["default"], serde_json::json!({"exclusiveMaximum":true,"maximum":5}));
        assert_eq!(value["properties"]["amount"]["exclusiveMaximum"], 100000000);
        assert!(value["properties"]["amount"].get("maximum").is_none());
        assert_eq!(value["properties"]["inclusive"]["maximum"], 10);
        assert!(value["properties"]["inclusive"].get("exclusiveMaximum").is_none());
    }

    #[test]
    fn schema_draft_is_honoured() {
        let bounds = r#""properties":{"amount":{"type":"number","exclusiveMaximum":true,"maximum":10}}"#;
        let draft4 = format!(r#"{{"$schema":"http://json-schema.org/draft-04/schema#",{bounds}}}"#);
        let s = StreamSchema::compile(&draft4, vec![], opts()).unwrap();
        assert!(s.check(&raw(r#"{"amount":10}"#)).is_err(), "exclusive in draft 4");
        s.check(&raw(r#"{"amount":9}"#)).unwrap();
        // A later draft, honoured: the draft-4 boolean is an error naming the place.
        let draft7 = format!(r#"{{"$schema":"http://json-schema.org/draft-07/schema#",{bounds}}}"#);
        let Err(e) = StreamSchema::compile(&draft7, vec![], opts()) else { panic!("draft 7 rejects a boolean bound") };
        let e = e.to_string();
        assert!(
            e.starts_with(r#"SCHEMA is not a valid JSON Schema: at /properties/amount/exclusiveMaximum: true is not of type "number""#),
            "{e}"
        );
        assert!(e.contains("declare draft-04"), "{e}");
        // 2020-12 keywords work when declared.
        let s = StreamSchema::compile(
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"p":{"type":"array","prefixItems":[{"type":"integer"}]}}}"#,
            vec![],
            opts(),
        )
        .unwrap();
        assert!(s.check(&raw(r#"{"p":["x"]}"#)).is_err());
        // An unknown `$schema` is the default: draft 7, draft-4 bounds accepted.
        let unknown = format!(r#"{{"$schema":"http://example.com/my-schema",{bounds}}}"#);
        let s = StreamSchema::compile(&unknown, vec![], opts()).unwrap();
        assert!(s.check(&raw(r#"{"amount":10}"#)).is_err());
        // Draft 4's `id` is its base URI: a bad one is named.
        let Err(e) = StreamSchema::compile(
            r#"{"$schema":"http://json-schema.org/draft-04/schema#","id":"not a uri","properties":{}}"#,
            vec![],
            opts(),
        ) else {
            panic!("a bad draft-4 id")
        };
        assert_eq!(
            e.to_string(),
            "SCHEMA is not a valid JSON Schema: a `$ref` or `$id` (draft 4: `id`) is not a URI: \
             Invalid URI reference 'not a uri': unexpected character at index 3"
        );
        // Without `$schema` (draft 7), `id` is just an unknown keyword.
        StreamSchema::compile(r#"{"id":"not a uri","properties":{}}"#, vec![], opts()).unwrap();
    }

    #[test]
    fn nasty_references_are_errors_or_harmless() {
        let compile = |t: &str| StreamSchema::compile(t, vec![], opts()).map_err(|e| e.to_string());
        let e = compile(r##"{"properties":{"a":{"$ref":"#/definitions/missing"}}}"##).err().unwrap();
        assert_eq!(e, "SCHEMA is not a valid JSON Schema: $ref: Pointer '/definitions/missing' does not exist");
        let e = compile(r#"{"properties":{"a":{"$ref":"http://example.com/a.json"}}}"#).err().unwrap();
        assert!(e.contains("$ref: Resource 'http://example.com/a.json'"), "{e}");
        // Cycles compile and validate without looping.
        for cyclic in [
            r##"{"properties":{"a":{"$ref":"#/definitions/x"}},"definitions":{"x":{"$ref":"#/definitions/x"}}}"##,
            r##"{"properties":{"a":{"$ref":"#/definitions/x"}},"definitions":{"x":{"$ref":"#/definitions/y"},"y":{"$ref":"#/definitions/x"}}}"##,
            r##"{"properties":{"a":{"$ref":"#"}}}"##,
        ] {
            let s = compile(cyclic).unwrap();
            let _ = s.check(&raw(r#"{"a":{"a":{"a":1}}}"#));
        }
        let e = compile(r#"{"properties":{"a":{"type":"number","multipleOf":0}}}"#).err().unwrap();
        assert!(e.contains("at /properties/a/multipleOf: 0 is less than or equal to the minimum of 0"), "{e}");
        compile(r#"{"properties":{"a":{"type":"number","multipleOf":1e300}}}"#).unwrap();
    }

    #[test]
    fn flattened_names_never_clash() {
        let schema = r#"{"properties":{"a__b":{"type":"string"},"a":{"type":"object","properties":{"b":{"type":"string"},"b_2":{"type":"string"}}},"a__b_2":{"type":"string"},"x":{"type":"object","properties":{"y__z":{"type":"integer"}}},"x__y":{"type":"object","properties":{"z":{"type":"integer"}}}}}"#;
        let s = StreamSchema::compile(schema, vec![], opts()).unwrap();
        assert_eq!(s.columns.names, ["a__b", "a__b_3", "a__b_2", "a__b_2_2", "x__y__z", "x__y__z_2"]);
        let rec = r#"{"a__b":"top","a":{"b":"nested","b_2":"n2"},"a__b_2":"top2","x":{"y__z":1},"x__y":{"z":2}}"#;
        let mut slots = vec![None; 6];
        s.columns.locate(rec, &mut slots).unwrap();
        let got: Vec<&str> = slots.iter().map(|s| s.map_or("", |(a, n)| &rec[a..a + n])).collect();
        assert_eq!(got, [r#""top""#, r#""nested""#, r#""n2""#, r#""top2""#, "1", "2"]);
    }

    #[test]
    fn a_property_named_twice_is_one_column() {
        let s = StreamSchema::compile(
            r#"{"properties":{"a":{"type":"string"},"b":{"type":"integer"},"a":{"type":"integer"}}}"#,
            vec![],
            opts(),
        )
        .unwrap();
        assert_eq!(s.columns.names, ["b", "a"]);
        s.check(&raw(r#"{"a":1}"#)).unwrap();
    }

    #[test]
    fn schema_errors() {
        assert!(matches!(
            StreamSchema::compile(r#"{"type":"object"}"#, vec![], opts()),
            Err(InputErrorKind::SchemaNoProperties)
        ));
        assert!(matches!(
            StreamSchema::compile(r#"{"properties":{"a":{"type":"nonsense"}}}"#, vec![], opts()),
            Err(InputErrorKind::InvalidSchema(_))
        ));
    }
}
