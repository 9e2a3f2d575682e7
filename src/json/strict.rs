//! A record parsed into a value tree, refusing duplicate member names. serde_json keeps the last
//! of two equal names, so a record `{"k":"a","k":"b"}` would be validated as `"b"` and written
//! raw with both (readers such as Snowflake refuse it or keep the first): the record would be
//! checked as something other than what is written. Same work as `serde_json::Value`'s own
//! parse, plus one check per member.

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `text`; a duplicate member name is an error naming it.
pub fn parse_strict(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Strict.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The error for a member named twice; a long name is cut (a 100 KB name made a 100 KB line).
pub(crate) fn repeated(name: &str) -> String {
    const SHOWN: usize = 200;
    match name.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("member {:?}... ({} bytes) appears twice in one object", &name[..cut], name.len()),
        None => format!("member {name:?} appears twice in one object"),
    }
}

struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Strict)?;
            match members.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                serde_json::map::Entry::Occupied(first) => {
                    return Err(A::Error::custom(repeated(first.key())));
                }
            }
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_values_as_serde_json_and_duplicates_refused() {
        for text in [r#"{"a":1,"b":[1,2.5,"x",null,true,{"c":{}}],"d":-3,"e":18446744073709551615}"#, "[]", "1e3"] {
            assert_eq!(parse_strict(text).unwrap(), serde_json::from_str::<Value>(text).unwrap(), "{text}");
        }
        let e = parse_strict(r#"{"k":"a","x":{"k":1},"k":"b"}"#).unwrap_err().to_string();
        assert!(e.contains("\"k\" appears twice"), "{e}");
        assert!(parse_strict(r#"{"o":{"a":1,"a":2}}"#).is_err(), "nested too");
        let long = "n".repeat(100_000);
        let e = parse_strict(&format!(r#"{{"{long}":1,"{long}":2}}"#)).unwrap_err().to_string();
        assert!(e.len() < 400 && e.contains("(100000 bytes) appears twice"), "{e}");
        assert!(parse_strict(r#"{"a":1} x"#).is_err(), "trailing text");
    }
}
