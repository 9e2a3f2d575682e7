//! The column plan of a stream: the flattened columns CSV writes and flattened JSON uses,
//! derived from the schema (never from the data), and where each column's value sits in a
//! record's text.

use std::collections::HashMap;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::json::{Dropped, Key, properties_of};

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
    pub(super) fn from_schema(schema: &str, max_depth: usize) -> Result<ColumnPlan, serde_json::Error> {
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
    pub fn locate(&self, record: &str, slots: &mut [Slot], dropped: &mut Dropped) -> Result<(), serde_json::Error> {
        slots.fill(None);
        let base = record.as_ptr() as usize;
        let mut de = serde_json::Deserializer::from_str(record);
        Fill { node: &self.root, base, slots, dropped }.deserialize(&mut de)?;
        de.end()
    }
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
    dropped: &'a mut Dropped,
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
                    // A member named twice is read as its first occurrence (see json::members).
                    if self.slots[*i].is_none() {
                        self.slots[*i] = Some((text.as_ptr() as usize - self.base, text.len()));
                    }
                }
                Some(Child::Object(node)) => {
                    let raw: &'de RawValue = map.next_value()?;
                    if raw.get() != "null" {
                        let mut de = serde_json::Deserializer::from_str(raw.get());
                        let nested = Fill { node, base: self.base, slots: self.slots, dropped: self.dropped };
                        nested
                            .deserialize(&mut de)
                            .map_err(|e| serde::de::Error::custom(format_args!("property {:?}: {e}", key.0)))?;
                    }
                }
                None => {
                    self.dropped.note(&key.0);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}
