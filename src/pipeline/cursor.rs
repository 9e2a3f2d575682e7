//! A file's range of cursor values (the stream's first bookmark property): for the manifest,
//! and for keys named by cursor macros. Numbers keep the tap's own text and compare on their
//! exact decimal value: a bookmark such as `18446744073709551617` or a NUMERIC(38,10) value
//! would turn into a nearby double otherwise, and two neighbours past 2^53 would compare equal.

use serde_json::value::RawValue;

use crate::json::Exact;

/// A bookmark value: strings compare as text (ISO date-times sort correctly), numbers as
/// numbers; both kept as the JSON text they are written as.
pub enum Cursor {
    Text(String),
    /// The number as the tap wrote it.
    Number(String),
}

impl Cursor {
    pub fn to_json(&self) -> String {
        match self {
            Cursor::Text(s) => serde_json::Value::String(s.clone()).to_string(),
            Cursor::Number(n) => n.clone(),
        }
    }

    /// The value for the manifest, digit for digit.
    pub fn into_json(self) -> Box<RawValue> {
        let text = self.to_json();
        RawValue::from_string(text).unwrap_or_else(|_| RawValue::NULL.to_owned())
    }
}

/// A cursor value as a record holds it: a string, or a number's text.
#[derive(Clone, Copy)]
pub enum CursorRef<'r> {
    Text(&'r str),
    Number(&'r str),
}

impl<'r> CursorRef<'r> {
    /// A string or number value's JSON text; other values have no place in a range. A string
    /// with escapes is decoded into `unescaped`.
    pub fn of_json(raw: &'r str, unescaped: &'r mut String) -> Option<CursorRef<'r>> {
        let raw = raw.trim();
        if raw.starts_with('"') {
            if !raw.contains('\\') {
                return Some(CursorRef::Text(&raw[1..raw.len() - 1]));
            }
            *unescaped = serde_json::from_str(raw).ok()?;
            return Some(CursorRef::Text(unescaped));
        }
        Exact::parse(raw).map(|_| CursorRef::Number(raw))
    }
}

impl crate::json::Field {
    /// The value, reading a string from `record` (the line it was found in); an integer is
    /// written into `digits`. `None` for a number with a fraction or exponent: the parsed
    /// record holds it as a double, so its text is read from the record instead.
    pub fn as_cursor<'r>(&'r self, record: &'r str, digits: &'r mut itoa::Buffer) -> Option<CursorRef<'r>> {
        match self.number() {
            Some(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => Some(CursorRef::Number(digits.format(u))),
                (_, Some(i)) => Some(CursorRef::Number(digits.format(i))),
                _ => None,
            },
            None => self.text(record).map(CursorRef::Text),
        }
    }

    /// Whether [`crate::json::Field::as_cursor`] needs the record's text for this value.
    pub fn is_float(&self) -> bool {
        self.number().is_some_and(|n| n.is_f64())
    }
}

/// Smallest and largest cursor value seen in one file.
#[derive(Default)]
pub struct CursorRange {
    pub min: Option<Cursor>,
    pub max: Option<Cursor>,
    /// A string value with escapes, decoded (reused).
    unescaped: String,
}

impl CursorRange {
    /// Reads the value at `field` from a record's text.
    pub fn update_from_text(&mut self, record: &str, field: &[String]) {
        let Some(raw) = crate::json::find_field(record, field) else { return };
        let mut unescaped = std::mem::take(&mut self.unescaped);
        let value = CursorRef::of_json(raw.get(), &mut unescaped);
        self.update(value);
        self.unescaped = unescaped;
    }

    /// The value the validator's parse found (`found`), or, for a number with a fraction or
    /// exponent (which the parse holds as a double), the value in the record's text.
    pub fn update_found(&mut self, found: Option<&crate::json::Field>, record: &str, field: &[String]) {
        match found {
            Some(value) if value.is_float() => self.update_from_text(record, field),
            value => {
                let mut digits = itoa::Buffer::new();
                self.update(value.and_then(|v| v.as_cursor(record, &mut digits)));
            }
        }
    }

    /// Per record: reuses its strings, so it allocates only when a value grows longer.
    pub fn update(&mut self, value: Option<CursorRef<'_>>) {
        use std::cmp::Ordering::{Greater, Less};
        let ordering = |slot: &Option<Cursor>, v: CursorRef<'_>| -> Option<std::cmp::Ordering> {
            match (slot, v) {
                (None, _) => None,
                (Some(Cursor::Text(s)), CursorRef::Text(t)) => Some(t.cmp(s.as_str())),
                (Some(Cursor::Number(s)), CursorRef::Number(n)) => Some(Exact::parse(n)?.cmp(&Exact::parse(s)?)),
                _ => Some(std::cmp::Ordering::Equal), // mixed types: keep the first
            }
        };
        let Some(v) = value else { return };
        let set = |slot: &mut Option<Cursor>| match (slot.as_mut(), v) {
            (Some(Cursor::Text(s)), CursorRef::Text(t)) | (Some(Cursor::Number(s)), CursorRef::Number(t)) => {
                s.clear();
                s.push_str(t);
            }
            (_, CursorRef::Text(t)) => *slot = Some(Cursor::Text(t.to_string())),
            (_, CursorRef::Number(n)) => *slot = Some(Cursor::Number(n.to_string())),
        };
        match ordering(&self.min, v) {
            None | Some(Less) => set(&mut self.min),
            _ => {}
        }
        match ordering(&self.max, v) {
            None | Some(Greater) => set(&mut self.max),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(values: &[&str]) -> (String, String) {
        let mut r = CursorRange::default();
        for v in values {
            r.update_from_text(&format!(r#"{{"c":{v}}}"#), &["c".to_string()]);
        }
        (r.min.unwrap().to_json(), r.max.unwrap().to_json())
    }

    #[test]
    fn strings_compare_as_text_and_numbers_as_numbers() {
        assert_eq!(
            range(&[r#""2026-01-02""#, r#""2026-01-10""#, r#""2025-12-31""#]),
            (r#""2025-12-31""#.into(), r#""2026-01-10""#.into())
        );
        assert_eq!(range(&["9", "10", "-1.5"]), ("-1.5".into(), "10".into()));
        // Escapes decoded before comparing: `"` (0x22) sorts before `A` (0x41).
        assert_eq!(range(&[r#""a\u0041""#, r#""a\"b""#]), (r#""a\"b""#.into(), r#""aA""#.into()));
    }

    /// Numbers past what a double holds keep every digit, and neighbours stay apart.
    #[test]
    fn numbers_are_exact() {
        assert_eq!(
            range(&["18446744073709551617", "18446744073709551616", "9007199254740993", "9007199254740992"]),
            ("9007199254740992".into(), "18446744073709551617".into())
        );
        assert_eq!(
            range(&["0.1000000000000000000001", "0.1", "1E3", "999.99999999999999999999"]),
            ("0.1".into(), "1E3".into())
        );
    }
}
