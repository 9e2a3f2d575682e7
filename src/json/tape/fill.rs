//! The parser's side: serde_json's deserializer writing a record into the tape.

use std::collections::HashSet;
use std::hash::BuildHasher;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::{Doc, Members, PAIRWISE_MEMBERS, Slot, Span, Tape};

/// Writes one value into the tape.
pub(super) struct Fill<'t, 'a> {
    pub(super) tape: &'t mut Tape,
    pub(super) text: &'a str,
    pub(super) depth: usize,
}

impl Fill<'_, '_> {
    fn span(&mut self, s: &str, borrowed: bool) -> Span {
        if borrowed {
            // A borrowed string is a slice of the line: its place is its offset.
            Span {
                at: (s.as_ptr() as usize - self.text.as_ptr() as usize) as u32,
                len: s.len() as u32,
                in_arena: false,
            }
        } else {
            let at = self.tape.arena.len() as u32;
            self.tape.arena.push_str(s);
            Span { at, len: s.len() as u32, in_arena: true }
        }
    }

    fn push(&mut self, slot: Slot) {
        self.tape.slots.push(slot);
    }

    /// The name of the object at `object` whose member `count` (0-based, its name at `key`) was
    /// just read, if an earlier member has the same name.
    fn repeated(&mut self, object: u32, key: u32, count: u32) -> Option<String> {
        let Slot::Key(new) = self.tape.slots[key as usize] else { unreachable!("a member starts with its name") };
        let (tape, text, depth) = (&mut *self.tape, self.text, self.depth);
        let name = Doc { slots: &[], arena: &tape.arena, text, whole_floats: false }.str(new);
        if count >= PAIRWISE_MEMBERS {
            if tape.names.len() <= depth {
                tape.names.resize_with(depth + 1, HashSet::default);
            }
            let set = &mut tape.names[depth];
            if count == PAIRWISE_MEMBERS {
                // The object just grew wide: its names so far (each once, checked pairwise).
                let doc = Doc { slots: &tape.slots, arena: &tape.arena, text, whole_floats: false };
                set.clear();
                set.extend(Members { doc: &doc, next: object + 1, end: key }.map(|(other, _)| NameHash::hash(other)));
            }
            if set.insert(NameHash::hash(name)) {
                return None;
            }
        }
        // Pairwise, reading a name only when its length matches.
        let doc = Doc { slots: &tape.slots, arena: &tape.arena, text, whole_floats: false };
        let mut at = object + 1;
        while at < key {
            let Slot::Key(other) = tape.slots[at as usize] else { unreachable!("a member starts with its name") };
            if other.len == new.len && doc.str(other) == name {
                return Some(name.to_owned());
            }
            at = doc.after(at + 1);
        }
        None
    }
}

impl<'de> DeserializeSeed<'de> for Fill<'_, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Fill<'_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(mut self, v: bool) -> Result<(), E> {
        self.push(Slot::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        self.push(Slot::of(v.into()));
        Ok(())
    }
    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.push(Slot::of(v.into()));
        Ok(())
    }
    fn visit_f64<E>(mut self, v: f64) -> Result<(), E> {
        self.tape.whole_floats |= v.fract() == 0.0;
        // As a value tree holds it (serde_json never hands a non-finite number here).
        self.push(Number::from_f64(v).map_or(Slot::Null, Slot::of));
        Ok(())
    }
    fn visit_borrowed_str<E>(mut self, v: &'de str) -> Result<(), E> {
        let span = self.span(v, true);
        self.push(Slot::Text(span));
        Ok(())
    }
    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        let span = self.span(v, false);
        self.push(Slot::Text(span));
        Ok(())
    }
    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.push(Slot::Null);
        Ok(())
    }
    fn visit_none<E>(mut self) -> Result<(), E> {
        self.push(Slot::Null);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let at = self.tape.slots.len();
        self.push(Slot::Array { len: 0, end: 0 });
        let mut len = 0;
        while seq.next_element_seed(Fill { tape: &mut *self.tape, text: self.text, depth: self.depth + 1 })?.is_some() {
            len += 1;
        }
        let end = self.tape.slots.len() as u32;
        self.tape.slots[at] = Slot::Array { len, end };
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let at = self.tape.slots.len() as u32;
        self.push(Slot::Object { len: 0, end: 0 });
        let mut len = 0;
        while map.next_key_seed(Name { fill: &mut self })?.is_some() {
            let key = self.tape.slots.len() as u32 - 1;
            map.next_value_seed(Fill { tape: &mut *self.tape, text: self.text, depth: self.depth + 1 })?;
            // Where a value tree refuses it: after the repeated member's value.
            if let Some(name) = self.repeated(at, key, len) {
                return Err(A::Error::custom(crate::json::strict::repeated(&name)));
            }
            len += 1;
        }
        let end = self.tape.slots.len() as u32;
        self.tape.slots[at as usize] = Slot::Object { len, end };
        Ok(())
    }
}

/// Reads a member name into the tape.
struct Name<'f, 't, 'a> {
    fill: &'f mut Fill<'t, 'a>,
}

impl<'de> DeserializeSeed<'de> for Name<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        let span = self.fill.span(v, true);
        self.fill.push(Slot::Key(span));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        let span = self.fill.span(v, false);
        self.fill.push(Slot::Key(span));
        Ok(())
    }
}

/// Member names hashed once (fixed seed); a set of those hashes uses each as its own hash
/// instead of hashing it again.
#[derive(Clone, Copy, Default)]
pub struct NameHash;

impl NameHash {
    fn hash(name: &str) -> u64 {
        foldhash::fast::FixedState::with_seed(0x7a9e).hash_one(name)
    }
}

impl BuildHasher for NameHash {
    type Hasher = Passed;
    fn build_hasher(&self) -> Passed {
        Passed(0)
    }
}

/// Passes a `u64` through as its own hash.
#[derive(Default)]
pub struct Passed(u64);

impl std::hash::Hasher for Passed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
