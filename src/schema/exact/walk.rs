//! The walk over a record's text that applies [`ExactChecks`]: one pass per object or array
//! that holds a check, members looked up in the node's short list, no allocation unless a check
//! fails (the place is rendered only for the message).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{ExactChecks, Node, Nulls, escape};
use crate::json::{Exact, Key, TapeNode};
use jsonschema::json::{Array as _, Node as _, Object as _};

/// A place in a record, for messages: its parent and its own segment, on the stack.
struct At<'p> {
    parent: Option<&'p At<'p>>,
    segment: Segment<'p>,
}

enum Segment<'p> {
    Root,
    Key(&'p str),
    Index(usize),
}

impl At<'_> {
    fn pointer(&self) -> String {
        let mut segments = Vec::new();
        let mut at = Some(self);
        while let Some(a) = at {
            segments.push(&a.segment);
            at = a.parent;
        }
        let mut out = String::new();
        for s in segments.iter().rev() {
            match s {
                Segment::Root => {}
                Segment::Key(k) => {
                    let _ = write!(out, "/{}", escape(k));
                }
                Segment::Index(i) => {
                    let _ = write!(out, "/{i}");
                }
            }
        }
        out
    }
}

impl ExactChecks {
    /// Whether [`ExactChecks::check`] must read the record's text (numbers compared exactly);
    /// else [`ExactChecks::count_null_items`] on the parsed record does all there is.
    pub fn has_bounds(&self) -> bool {
        self.bounds
    }

    /// Whether a record must be read as text: bounds to compare, or `type: integer` positions
    /// and a number in the record (`whole_floats`, see [`crate::json::Doc::whole_floats`]) that
    /// the validator took for a whole double.
    pub fn needs_text(&self, whole_floats: bool) -> bool {
        self.bounds || (self.integers && whole_floats)
    }

    /// Counts the null elements of arrays whose schema refuses them, on a parsed record (for
    /// checks without bounds; [`ExactChecks::check`] counts them on its walk).
    pub fn count_null_items(&self, record: TapeNode<'_>, nulls: &mut Nulls) {
        if self.nulls {
            self.count(self.root, record, nulls, 0);
        }
    }

    /// Adds a record's null elements to the counts (warning once per field): only for a record
    /// that loads, once (a worker's count is added when its verdict is used).
    pub fn add(&self, nulls: &[(u32, u32)], stream: &str) {
        for &(i, n) in nulls {
            let node = &self.nodes[i as usize];
            if node.null_items.fetch_add(u64::from(n), Ordering::Relaxed) == 0 {
                tracing::warn!(
                    stream,
                    field = node.field.as_str(),
                    "an array element is null though the schema's `items` do not allow null (database arrays \
                     allow NULL elements): loaded as null and counted as null_items"
                );
            }
        }
    }

    fn count(&self, i: usize, value: TapeNode<'_>, nulls: &mut Nulls, depth: usize) {
        if depth > 256 {
            return;
        }
        let node = &self.nodes[i];
        if let Some(object) = value.as_object()
            && !node.properties.is_empty()
        {
            for (name, member) in object.members() {
                if let Some((_, child)) = node.properties.iter().find(|(p, _)| p == name) {
                    self.count(*child, member, nulls, depth + 1);
                }
            }
        } else if let Some(array) = value.as_array()
            && (node.items.is_some() || node.counts_null_items)
        {
            for element in array.elements() {
                if element.is_null() {
                    node.null_item(i, nulls);
                } else if let Some(items) = node.items {
                    self.count(items, element, nulls, depth + 1);
                }
            }
        }
        for also in &node.also {
            self.count(*also, value, nulls, depth + 1);
        }
    }

    /// Checks a record the validator accepted. The error names the place (`at /amount`), the
    /// number as the tap sent it and the bound as the schema wrote it.
    pub fn check(&self, record: &str, nulls: &mut Nulls) -> Result<(), String> {
        let mut failure = None;
        let root = At { parent: None, segment: Segment::Root };
        let _ = self.visit(self.root, record, &root, nulls, &mut failure, 0);
        match failure {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }

    /// Per field with null elements: the count so far.
    pub fn null_items(&self) -> impl Iterator<Item = (&str, u64)> {
        self.nodes
            .iter()
            .filter(|n| n.counts_null_items)
            .map(|n| (n.field.as_str(), n.null_items.load(Ordering::Relaxed)))
            .filter(|(_, c)| *c > 0)
    }

    /// `Err(())` stops the walk; the message is in `failure`.
    fn visit(
        &self,
        i: usize,
        raw: &str,
        at: &At<'_>,
        nulls: &mut Nulls,
        failure: &mut Option<String>,
        depth: usize,
    ) -> Result<(), ()> {
        // References that lead back to themselves without going deeper into the record.
        if depth > 256 {
            return Ok(());
        }
        let node = &self.nodes[i];
        let first = raw.as_bytes().first().copied().unwrap_or(b' ');
        if first == b'-' || first.is_ascii_digit() {
            if let Some(message) = node.number(raw) {
                *failure = Some(format!("at {}: {message}", at.pointer()));
                return Err(());
            }
        } else if first == b'{' && !node.properties.is_empty() {
            let mut de = serde_json::Deserializer::from_str(raw);
            let seed = Object { checks: self, node, at, nulls, failure, depth };
            if serde::Deserializer::deserialize_map(&mut de, seed).is_err() {
                return Err(());
            }
        } else if first == b'[' && (node.items.is_some() || node.counts_null_items) {
            let mut de = serde_json::Deserializer::from_str(raw);
            let seed = Array { checks: self, node, index: i, at, nulls, failure, depth };
            if serde::Deserializer::deserialize_seq(&mut de, seed).is_err() {
                return Err(());
            }
        }
        for also in &node.also {
            self.visit(*also, raw, at, nulls, failure, depth + 1)?;
        }
        Ok(())
    }
}

impl Node {
    /// A null element of this array (node `i`), for [`ExactChecks::add`].
    fn null_item(&self, i: usize, nulls: &mut Nulls) {
        if self.counts_null_items {
            match nulls.last_mut() {
                Some((last, n)) if *last as usize == i => *n += 1,
                _ => nulls.push((i as u32, 1)),
            }
        }
    }

    /// Why the number `raw` breaks this node's bounds, if it does.
    fn number(&self, raw: &str) -> Option<String> {
        let value = Exact::parse(raw)?;
        if self.integer && !value.is_integer() {
            return Some(format!("{raw} is not of type \"integer\""));
        }
        if let Some(min) = &self.min
            && let Some(limit) = Exact::parse(&min.text)
            && (value < limit || (min.exclusive && value == limit))
        {
            let rule = if min.exclusive { "greater than" } else { "at least" };
            return Some(format!("{raw} is not {rule} the minimum of {}", min.text));
        }
        if let Some(max) = &self.max
            && let Some(limit) = Exact::parse(&max.text)
            && (value > limit || (max.exclusive && value == limit))
        {
            let rule = if max.exclusive { "less than" } else { "at most" };
            return Some(format!("{raw} is not {rule} the maximum of {}", max.text));
        }
        if let Some(step) = &self.step
            && let Some(s) = Exact::parse(step)
            && !value.is_multiple_of(&s)
        {
            return Some(format!("{raw} is not a multiple of {step}"));
        }
        None
    }
}

struct Object<'c, 'p> {
    checks: &'c ExactChecks,
    node: &'c Node,
    at: &'p At<'p>,
    nulls: &'c mut Nulls,
    failure: &'c mut Option<String>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Object<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match self.node.properties.iter().find(|(name, _)| *name == key.0) {
                Some((_, child)) => {
                    let value: &'de RawValue = map.next_value()?;
                    let at = At { parent: Some(self.at), segment: Segment::Key(&key.0) };
                    if self.checks.visit(*child, value.get(), &at, self.nulls, self.failure, self.depth + 1).is_err() {
                        return Err(A::Error::custom("exact check failed"));
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Array<'c, 'p> {
    checks: &'c ExactChecks,
    node: &'c Node,
    index: usize,
    at: &'p At<'p>,
    nulls: &'c mut Nulls,
    failure: &'c mut Option<String>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Array<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Array<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while let Some(value) = seq.next_element::<&'de RawValue>()? {
            let text = value.get();
            if text == "null" {
                self.node.null_item(self.index, self.nulls);
            } else if let Some(items) = self.node.items {
                let at = At { parent: Some(self.at), segment: Segment::Index(index) };
                if self.checks.visit(items, text, &at, self.nulls, self.failure, self.depth + 1).is_err() {
                    return Err(A::Error::custom("exact check failed"));
                }
            }
            index += 1;
        }
        Ok(())
    }
}
