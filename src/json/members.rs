//! Raw-JSON helpers: reading members of a record's text without building a value tree.

use std::collections::HashMap;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// An object key, borrowed from the input unless it contains escapes.
pub struct Key<'de>(pub std::borrow::Cow<'de, str>);

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
pub fn member<'a>(object: &'a str, key: &str) -> Option<&'a RawValue> {
    let members = serde_json::from_str::<Ordered<'_>>(object).ok()?;
    members.0.into_iter().find(|(k, _)| k == key).map(|(_, raw)| raw)
}

/// The `properties` of a schema object, in order; `None` when it has none (or is not an object).
/// A property named twice counts once, with its last definition (as for the validator, which
/// reads the schema into a map), at the place of its last mention.
pub fn properties_of(schema: &str) -> Result<Option<Vec<(String, &RawValue)>>, serde_json::Error> {
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

/// Finds a (possibly nested) field of a record without building a value tree.
pub fn find_field<'a>(record: &'a str, path: &[String]) -> Option<&'a RawValue> {
    struct Find<'p> {
        key: &'p str,
    }
    impl<'de> Visitor<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<Key<'de>>()? {
                if found.is_none() && key.0 == self.key {
                    found = Some(map.next_value::<&'de RawValue>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let (first, rest) = path.split_first()?;
    let mut de = serde_json::Deserializer::from_str(record);
    let raw = serde::Deserializer::deserialize_map(&mut de, Find { key: first }).ok()??;
    if rest.is_empty() { Some(raw) } else { find_field(raw.get(), rest) }
}

/// Members a format had no place for (properties outside the schema): how many, and the first
/// one's name (kept once, for a warning). Counted, never silent: they go into a METRIC line and
/// the manifest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub count: u64,
    pub first: Option<String>,
}

impl Dropped {
    pub fn note(&mut self, key: &str) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(key.to_string());
        }
    }
}

/// Where an object's members sit in the record text, by field index: byte ranges relative to
/// the start of `raw`, reset first. Members that are not fields are skipped and noted in
/// `dropped` (typed columns have no place for them).
pub fn members(
    raw: &str,
    index: &FieldIndex,
    slots: &mut [Option<(usize, usize)>],
    dropped: &mut Dropped,
) -> Result<(), serde_json::Error> {
    slots.fill(None);
    let mut de = serde_json::Deserializer::from_str(raw);
    Members { index, base: raw.as_ptr() as usize, slots, dropped }.deserialize(&mut de)?;
    de.end()
}

/// Byte ranges of an array's elements, relative to the start of `raw`, appended to `out`.
pub fn elements(raw: &str, out: &mut Vec<(usize, usize)>) -> Result<(), serde_json::Error> {
    out.clear();
    let mut de = serde_json::Deserializer::from_str(raw);
    Elements { base: raw.as_ptr() as usize, out }.deserialize(&mut de)?;
    de.end()
}

/// Field name -> index, for matching members without allocating.
#[derive(Debug, Default)]
pub struct FieldIndex(HashMap<String, usize, foldhash::fast::RandomState>);

impl FieldIndex {
    /// The index of each name, in order.
    pub fn new<'n>(names: impl IntoIterator<Item = &'n str>) -> FieldIndex {
        FieldIndex(names.into_iter().enumerate().map(|(i, n)| (n.to_string(), i)).collect())
    }
}

struct Members<'a> {
    index: &'a FieldIndex,
    base: usize,
    slots: &'a mut [Option<(usize, usize)>],
    dropped: &'a mut Dropped,
}

impl<'de> DeserializeSeed<'de> for Members<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Members<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            match self.index.0.get(key.0.as_ref()) {
                // A member named twice (possible with validation off) is read as its first
                // occurrence, as key macros, partitions and cursors read it.
                Some(i) if self.slots[*i].is_none() => {
                    let text = value.get();
                    self.slots[*i] = Some((text.as_ptr() as usize - self.base, text.len()));
                }
                Some(_) => {}
                None => self.dropped.note(&key.0),
            }
        }
        Ok(())
    }
}

struct Elements<'a> {
    base: usize,
    out: &'a mut Vec<(usize, usize)>,
}

impl<'de> DeserializeSeed<'de> for Elements<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<&'de RawValue>()? {
            let text = value.get();
            self.out.push((text.as_ptr() as usize - self.base, text.len()));
        }
        Ok(())
    }
}
