//! A record parsed into one flat list of nodes, reused from record to record, whose strings are
//! read from the line itself: what the JSON Schema validator walks (through jsonschema's `Json`
//! traits) instead of a `serde_json::Value` tree, which cost an allocation per string, member and
//! array, and as much again to free (about half of validation's time, measured).
//!
//! Everything a value tree decided is decided the same way: the same parser (serde_json, with its
//! errors and nesting limit), the same numbers (`serde_json::Number`), and a member named twice
//! refused at the same point with the same message as [`super::parse_strict`], so verdicts and
//! error messages do not change (a property test compares the two on generated records).

mod fill;
mod node;

use std::collections::HashSet;

use serde::de::{DeserializeSeed, Error as _};
use serde_json::{Number, Value};

use fill::{Fill, NameHash};
pub use node::{TapeJson, TapeNode};

/// Where a string is: in the line (no escapes) or in the tape's arena (unescaped there).
#[derive(Clone, Copy)]
struct Span {
    at: u32,
    len: u32,
    in_arena: bool,
}

#[derive(Clone)]
enum Slot {
    Null,
    Bool(bool),
    /// Numbers as `serde_json::Number` holds them, in 8 bytes (a slot is 16).
    PosInt(u64),
    NegInt(i64),
    Float(f64),
    Text(Span),
    /// A member name; its value is the next slot.
    Key(Span),
    /// Its elements follow; `end` is the slot after the last one.
    Array {
        len: u32,
        end: u32,
    },
    /// Its members follow, each a key and its value; `end` is the slot after the last one.
    Object {
        len: u32,
        end: u32,
    },
}

// Tape memory is slots: a record of many small values costs 16 bytes per value.
const _: () = assert!(std::mem::size_of::<Slot>() == 16);

impl Slot {
    /// A number slot's value.
    #[inline]
    fn number(&self) -> Option<Number> {
        match *self {
            Slot::PosInt(n) => Some(n.into()),
            Slot::NegInt(n) => Some(n.into()),
            Slot::Float(n) => Number::from_f64(n),
            _ => None,
        }
    }

    fn of(n: Number) -> Slot {
        match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Slot::PosInt(u),
            (None, Some(i), _) => Slot::NegInt(i),
            (None, None, Some(f)) => Slot::Float(f),
            (None, None, None) => Slot::Null,
        }
    }
}

/// Records longer than this reserve their slots before parsing.
const BIG_RECORD: usize = 1 << 20;

/// Objects with more members than this find a repeated name through a set of name hashes
/// instead of comparing each name with every earlier one.
const PAIRWISE_MEMBERS: u32 = 16;

/// The reusable buffers one thread parses records into.
#[derive(Default)]
pub struct Tape {
    slots: Vec<Slot>,
    arena: String,
    /// Per nesting depth, the name hashes of a wide object's members.
    names: Vec<HashSet<u64, NameHash>>,
    /// See [`Doc::whole_floats`].
    whole_floats: bool,
}

/// A parsed record: the tape's nodes and the line they read from.
pub struct Doc<'a> {
    slots: &'a [Slot],
    arena: &'a str,
    text: &'a str,
    /// Whether a number written with a fraction or an exponent parsed to a whole double
    /// (`1.0`, `1e16`, `1.00000000000000000000001`, `18446744073709551617`): the validator takes
    /// it for an integer, and only its text says whether it is one.
    pub whole_floats: bool,
}

impl Tape {
    /// Parses `text` (one JSON value) into the tape, refusing a member named twice in an object.
    pub fn parse<'a>(&'a mut self, text: &'a str) -> Result<Doc<'a>, serde_json::Error> {
        self.slots.clear();
        self.arena.clear();
        self.whole_floats = false;
        if text.len() > u32::MAX as usize {
            return Err(serde_json::Error::custom("a record over 4 GiB"));
        }
        if text.len() > BIG_RECORD {
            // Room for every value at once: growing by doubling would copy the list and, for a
            // moment, hold it twice (a 100 MB record of 40 million small values peaked at 1.5 GB).
            // Each value follows one of these bytes (or starts the text), so their count bounds
            // the values, and so does half the text (a value and its separator take two bytes at
            // least: strings full of commas reserve no more); capacity never written to costs no
            // memory.
            let separators = text.bytes().filter(|b| matches!(b, b',' | b':' | b'[' | b'{')).count();
            self.slots.reserve_exact(1 + separators.min(text.len() / 2));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        Fill { tape: self, text, depth: 0 }.deserialize(&mut de)?;
        de.end()?;
        Ok(Doc { slots: &self.slots, arena: &self.arena, text, whole_floats: self.whole_floats })
    }

    /// Gives back what one huge record grew the buffers to, so a thread does not hold it for
    /// the rest of the run.
    pub fn trim(&mut self) {
        const KEEP_SLOTS: usize = 1 << 16;
        if self.slots.capacity() > KEEP_SLOTS {
            self.slots = Vec::with_capacity(KEEP_SLOTS);
        }
        if self.arena.capacity() > KEEP_SLOTS * 16 {
            self.arena = String::new();
        }
    }
}

impl<'a> Doc<'a> {
    /// The document's root value.
    pub fn root(&'a self) -> TapeNode<'a> {
        TapeNode { doc: self, at: 0 }
    }

    /// The string or number at `path` (member names from the root), if there is one.
    pub fn field(&self, path: &[String]) -> Option<Field> {
        let mut at = 0;
        for name in path {
            if !matches!(self.slots[at as usize], Slot::Object { .. }) {
                return None;
            }
            at = self.members(at).find(|(member, _)| member == name)?.1.at;
        }
        match &self.slots[at as usize] {
            Slot::Text(span) if span.in_arena => Some(Field::Escaped(self.str(*span).into())),
            Slot::Text(span) => Some(Field::Text { at: span.at, len: span.len }),
            Slot::PosInt(_) | Slot::NegInt(_) | Slot::Float(_) => self.slots[at as usize].number().map(Field::Number),
            _ => None,
        }
    }

    #[inline]
    fn str(&self, span: Span) -> &'a str {
        let (at, len) = (span.at as usize, span.len as usize);
        if span.in_arena { &self.arena[at..at + len] } else { &self.text[at..at + len] }
    }

    /// The members of the object at `at`.
    fn members(&'a self, at: u32) -> Members<'a> {
        Members { doc: self, next: at + 1, end: self.after(at) }
    }

    /// The elements of the array at `at`.
    fn elements(&'a self, at: u32) -> Elements<'a> {
        Elements { doc: self, next: at + 1, end: self.after(at) }
    }

    /// The slot after the value at `at` (and after everything inside it).
    #[inline]
    fn after(&self, at: u32) -> u32 {
        match self.slots[at as usize] {
            Slot::Array { end, .. } | Slot::Object { end, .. } => end,
            _ => at + 1,
        }
    }

    fn value(&self, at: u32) -> Value {
        match &self.slots[at as usize] {
            Slot::Null => Value::Null,
            Slot::Bool(b) => Value::Bool(*b),
            Slot::PosInt(_) | Slot::NegInt(_) | Slot::Float(_) => {
                self.slots[at as usize].number().map_or(Value::Null, Value::Number)
            }
            Slot::Text(span) | Slot::Key(span) => Value::String(self.str(*span).to_owned()),
            Slot::Array { .. } => Value::Array(self.elements(at).map(|n| self.value(n.at)).collect()),
            Slot::Object { .. } => {
                Value::Object(self.members(at).map(|(name, node)| (name.to_owned(), self.value(node.at))).collect())
            }
        }
    }
}

/// A string or number member of a parsed record, kept past the tape's next record: where a
/// string lies in the line (or the string itself, when it had escapes), or the number.
#[derive(Debug)]
pub enum Field {
    Text { at: u32, len: u32 },
    Escaped(Box<str>),
    Number(Number),
}

impl Field {
    /// The string, read from `record` (the line it was found in).
    pub fn text<'r>(&'r self, record: &'r str) -> Option<&'r str> {
        match self {
            Field::Text { at, len } => record.get(*at as usize..(*at + *len) as usize),
            Field::Escaped(text) => Some(text),
            Field::Number(_) => None,
        }
    }

    pub fn number(&self) -> Option<&Number> {
        match self {
            Field::Number(n) => Some(n),
            _ => None,
        }
    }
}

/// An object's members in document order.
pub struct Members<'a> {
    doc: &'a Doc<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, TapeNode<'a>);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let Slot::Key(span) = self.doc.slots[self.next as usize] else { unreachable!("a member starts with its name") };
        let value = self.next + 1;
        self.next = self.doc.after(value);
        Some((self.doc.str(span), TapeNode { doc: self.doc, at: value }))
    }
}

/// An array's elements in order.
pub struct Elements<'a> {
    doc: &'a Doc<'a>,
    next: u32,
    end: u32,
}

impl<'a> Iterator for Elements<'a> {
    type Item = TapeNode<'a>;
    #[inline]
    fn next(&mut self) -> Option<TapeNode<'a>> {
        if self.next >= self.end {
            return None;
        }
        let at = self.next;
        self.next = self.doc.after(at);
        Some(TapeNode { doc: self.doc, at })
    }
}

#[cfg(test)]
mod tests;
