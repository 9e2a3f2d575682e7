//! Raw-JSON helpers: reading members of a record's text without building a value tree.

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

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
            while let Some(key) = map.next_key::<crate::schema::Key<'de>>()? {
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
