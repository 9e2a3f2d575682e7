//! What the validator cannot be trusted with, checked on the record's own text.
//!
//! - Numeric bounds (`minimum`, `maximum`, `exclusiveMinimum`/`exclusiveMaximum` in draft-4 and
//!   later style, `multipleOf`): the validator reads numbers as 64-bit floats, so a NUMERIC(38,10)
//!   column's own minimum (`-9999999999999999999999999999.9999999999`) "equals" its exclusive
//!   bound `-1e28`. They are taken out of the schema the validator sees and compared here on
//!   exact decimal values, quoting the number as the tap sent it.
//! - Null array elements: databases allow NULL inside any array whatever the tap declares (the
//!   Meltano Hub's tap-postgres says `items: {"type": "integer"}` and sends `[1, null]`). The
//!   validator's schema lets null elements through; they are counted here per field
//!   (`null_items`) and warned once per field.
//!
//! Only schema positions whose meaning does not depend on which branch matches are rewritten:
//! `properties`, `items`, local `$ref`s, `allOf`, and the one number-typed branch of an
//! `anyOf`/`oneOf` whose other branches are typed and exclude numbers (`[{"type": "number",
//! ...}, {"type": "null"}]`). Bounds elsewhere (`not`, `if`, `patternProperties`, ...) stay with
//! the validator.

use std::sync::atomic::AtomicU64;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::json::Exact;

mod walk;

const KEYWORDS: [&str; 5] = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"];

/// A record's null array elements, per node `(index, count)`: added to the stream's counts only
/// when the record loads (empty, so no allocation, for a record without any).
pub type Nulls = Vec<(u32, u32)>;

/// The exact checks of one stream's schema; `None` from [`take`] when it has none.
#[derive(Debug, Default)]
pub struct ExactChecks {
    nodes: Vec<Node>,
    root: usize,
    /// Whether any node compares numbers (which needs the record's text); without, only null
    /// elements are counted, on the parsed record.
    bounds: bool,
    /// Whether any node is `type: integer`: a record with a whole double written as a fraction
    /// or exponent is then walked too (see [`Node::integer`]).
    integers: bool,
    /// Whether any node counts null array elements.
    nulls: bool,
}

#[derive(Debug, Default)]
struct Node {
    /// The field this node checks (`amount`, `tags[]`), for counts and warnings.
    field: String,
    min: Option<Limit>,
    max: Option<Limit>,
    step: Option<Box<str>>,
    properties: Vec<(String, usize)>,
    items: Option<usize>,
    /// More checks at the same place (`allOf` branches, a number branch of `anyOf`).
    also: Vec<usize>,
    /// The tap's schema refuses null elements of this array: they load, counted.
    counts_null_items: bool,
    /// `type: integer` (and not `number`): the validator reads `1.00000000000000000000001` as
    /// the double 1.0, an integer; its digits are checked here.
    integer: bool,
    null_items: AtomicU64,
}

#[derive(Debug)]
struct Limit {
    text: Box<str>,
    exclusive: bool,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.min.is_none()
            && self.max.is_none()
            && self.step.is_none()
            && self.properties.is_empty()
            && self.items.is_none()
            && self.also.is_empty()
            && !self.counts_null_items
            && !self.integer
    }
}

/// Takes the numeric keywords out of `schema` (the validator's copy) where they can be checked
/// exactly, lets null array elements through, and returns the checks that replace them.
/// `text` is the schema as the tap sent it: bounds are read from it, digit for digit.
pub fn take(schema: &mut Value, text: &str) -> Option<ExactChecks> {
    let (strip, nullable, nodes, root) = {
        let mut b = Builder {
            root: schema,
            root_text: text,
            nodes: Vec::new(),
            memo: Vec::new(),
            strip: Vec::new(),
            nullable: Vec::new(),
        };
        let root = b.build(String::new(), schema, text, String::new(), 0)?;
        (b.strip, b.nullable, b.nodes, root)
    };
    for pointer in strip {
        if let Some(Value::Object(map)) = schema.pointer_mut(&pointer) {
            for k in KEYWORDS {
                map.remove(k);
            }
        }
    }
    for pointer in nullable {
        if let Some(items) = schema.pointer_mut(&pointer) {
            allow_null(items);
        }
    }
    let bounds = nodes.iter().any(|n| n.min.is_some() || n.max.is_some() || n.step.is_some());
    let integers = nodes.iter().any(|n| n.integer);
    let nulls = nodes.iter().any(|n| n.counts_null_items);
    Some(ExactChecks { nodes, root, bounds, integers, nulls })
}

/// Makes a schema admit null as well.
fn allow_null(schema: &mut Value) {
    let Value::Object(map) = schema else { return };
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            map.insert("type".into(), Value::from(vec![t, "null".to_string()]));
        }
        Some(Value::Array(types)) => types.push(Value::from("null")),
        _ => {
            let whole = std::mem::take(map);
            map.insert("anyOf".into(), Value::from(vec![Value::Object(whole), serde_json::json!({"type": "null"})]));
        }
    }
}

struct Builder<'a> {
    root: &'a Value,
    root_text: &'a str,
    nodes: Vec<Node>,
    /// `$ref` targets already built (or being built: recursion) and their node.
    memo: Vec<(String, usize)>,
    /// Schema positions (JSON pointers) whose numeric keywords the checks took over.
    strip: Vec<String>,
    /// `items` schemas that must admit null.
    nullable: Vec<String>,
}

impl<'a> Builder<'a> {
    /// The node for the schema at `pointer`, `None` when nothing there needs an exact check.
    fn build(
        &mut self,
        pointer: String,
        schema: &'a Value,
        text: &'a str,
        field: String,
        depth: usize,
    ) -> Option<usize> {
        if depth > 128 {
            return None; // the input's own nesting limit; deeper positions stay with the validator
        }
        let Value::Object(map) = schema else { return None };
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            let (target_pointer, target_text, target) = self.target(reference)?;
            if let Some((_, i)) = self.memo.iter().find(|(p, _)| *p == target_pointer) {
                return Some(*i);
            }
            if self.memo.len() > 1000 {
                return None;
            }
            let slot = self.nodes.len();
            self.nodes.push(Node::default());
            self.memo.push((target_pointer.clone(), slot));
            let built = self.build(target_pointer, target, target_text, field, depth + 1);
            if let Some(i) = built {
                self.nodes[slot].also.push(i);
            }
            return Some(slot);
        }
        let integer = types(schema).is_some_and(|t| t.contains(&"integer") && !t.contains(&"number"));
        let mut node = Node { field: field.clone(), integer, ..Node::default() };
        if KEYWORDS.iter().any(|k| map.contains_key(*k)) {
            bounds(text, &mut node);
            self.strip.push(pointer.clone());
        }
        if let Some(Value::Object(props)) = map.get("properties")
            && let Ok(Some(raws)) = crate::json::properties_of(text)
        {
            for (name, raw) in raws {
                let Some(sub) = props.get(&name) else { continue };
                let sub_field = if field.is_empty() { name.clone() } else { format!("{field}.{name}") };
                let sub_pointer = format!("{pointer}/properties/{}", escape(&name));
                if let Some(i) = self.build(sub_pointer, sub, raw.get(), sub_field, depth + 1) {
                    node.properties.push((name, i));
                }
            }
        }
        if let Some(items @ Value::Object(_)) = map.get("items") {
            let items_text = crate::json::member(text, "items").map_or("{}", RawValue::get);
            let items_pointer = format!("{pointer}/items");
            if !self.admits_null(items) {
                node.counts_null_items = true;
                self.nullable.push(items_pointer.clone());
            }
            node.items = self.build(items_pointer, items, items_text, format!("{field}[]"), depth + 1);
        }
        for (key, all) in [("allOf", true), ("anyOf", false), ("oneOf", false)] {
            let Some(Value::Array(branches)) = map.get(key) else { continue };
            let texts: Vec<&RawValue> =
                crate::json::member(text, key).and_then(|raw| serde_json::from_str(raw.get()).ok()).unwrap_or_default();
            if texts.len() != branches.len() {
                continue;
            }
            let chosen: Vec<usize> = if all {
                (0..branches.len()).collect()
            } else {
                match number_branch(branches) {
                    Some(i) => vec![i],
                    None => continue,
                }
            };
            for i in chosen {
                let sub_pointer = format!("{pointer}/{key}/{i}");
                if let Some(n) = self.build(sub_pointer, &branches[i], texts[i].get(), field.clone(), depth + 1) {
                    node.also.push(n);
                }
            }
        }
        if node.is_empty() {
            return None;
        }
        self.nodes.push(node);
        Some(self.nodes.len() - 1)
    }

    /// A local `$ref`'s target: its pointer, text and value.
    fn target(&self, reference: &'a str) -> Option<(String, &'a str, &'a Value)> {
        let (pointer, text, value) = crate::schema::typed::local_ref(self.root, self.root_text, reference)?;
        Some((pointer.to_string(), text, value))
    }

    /// Whether a schema lets null through (declared types, a `$ref`'s, a null branch).
    fn admits_null(&self, schema: &'a Value) -> bool {
        let mut schema = schema;
        // A chain of `$ref`s (bounded: a cycle of references admits anything).
        for _ in 0..64 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else { break };
            match self.target(reference) {
                Some((_, _, target)) => schema = target,
                None => return true,
            }
        }
        let Value::Object(map) = schema else { return true };
        if map.contains_key("$ref") {
            return true;
        }
        if let Some(types) = types(schema) {
            return types.contains(&"null");
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = map.get(key) {
                return branches.iter().any(|b| types(b).is_none_or(|t| t.contains(&"null")));
            }
        }
        // No type: anything, null included, unless `enum`/`const` say otherwise; those stay
        // as declared.
        true
    }
}

fn types(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type") {
        Some(Value::String(t)) => Some(vec![t.as_str()]),
        Some(Value::Array(ts)) => Some(ts.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

/// The one branch of an `anyOf`/`oneOf` a number can match, when every other branch is typed
/// and excludes numbers: then that branch's bounds apply to every number there.
fn number_branch(branches: &[Value]) -> Option<usize> {
    let numeric = |b: &Value| types(b).map(|t| t.iter().any(|t| *t == "number" || *t == "integer"));
    let mut found = None;
    for (i, b) in branches.iter().enumerate() {
        match numeric(b) {
            Some(true) if found.is_none() => found = Some(i),
            Some(false) => {}
            _ => return None,
        }
    }
    found
}

/// JSON pointer escaping of one segment.
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Reads the numeric keywords of a schema from its text, digit for digit.
fn bounds(text: &str, node: &mut Node) {
    let number = |k: &str| {
        crate::json::member(text, k).map(|r| r.get().trim().to_string()).filter(|t| Exact::parse(t).is_some())
    };
    let flag = |k: &str| crate::json::member(text, k).is_some_and(|r| r.get().trim() == "true");
    let tighter = |a: Option<Limit>, b: Option<Limit>, upper: bool| match (a, b) {
        (Some(a), Some(b)) => {
            let (x, y) = (Exact::parse(&a.text)?, Exact::parse(&b.text)?);
            let a_tighter = if upper { x < y || (x == y && a.exclusive) } else { x > y || (x == y && a.exclusive) };
            Some(if a_tighter { a } else { b })
        }
        (a, b) => a.or(b),
    };
    // Draft 4: `minimum` + `exclusiveMinimum: true`; draft 6+: `exclusiveMinimum: X`.
    for (inclusive, exclusive, upper) in [("minimum", "exclusiveMinimum", false), ("maximum", "exclusiveMaximum", true)]
    {
        let plain = number(inclusive).map(|t| Limit { text: t.into(), exclusive: flag(exclusive) });
        let strict = number(exclusive).map(|t| Limit { text: t.into(), exclusive: true });
        let limit = tighter(plain, strict, upper);
        if upper {
            node.max = limit;
        } else {
            node.min = limit;
        }
    }
    node.step = number("multipleOf").filter(|t| Exact::parse(t).is_some_and(|e| !e.is_zero())).map(Into::into);
}
