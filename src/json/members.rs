//! Raw-JSON helpers: reading members of a record's text without building a value tree.

use std::collections::HashMap;

use serde::de::{IgnoredAny, MapAccess, Visitor};
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
