//! A file's range of cursor values (the stream's first bookmark property): for the manifest,
//! and for keys named by cursor macros.

/// A bookmark value: strings compare as text (ISO date-times sort correctly), numbers as numbers.
pub enum Cursor {
    Text(String),
    Number(f64, serde_json::Number),
}

impl Cursor {
    pub fn to_json(&self) -> String {
        match self {
            Cursor::Text(s) => serde_json::Value::String(s.clone()).to_string(),
            Cursor::Number(_, n) => n.to_string(),
        }
    }

    pub fn into_value(self) -> serde_json::Value {
        match self {
            Cursor::Text(s) => serde_json::Value::String(s),
            Cursor::Number(_, n) => serde_json::Value::Number(n),
        }
    }
}

/// A cursor value as a record holds it.
#[derive(Clone, Copy)]
pub enum CursorRef<'r> {
    Text(&'r str),
    Number(&'r serde_json::Number),
}

impl<'r> CursorRef<'r> {
    /// A string or number value; other values have no place in a range.
    pub fn of(value: &'r serde_json::Value) -> Option<CursorRef<'r>> {
        match value {
            serde_json::Value::String(s) => Some(CursorRef::Text(s)),
            serde_json::Value::Number(n) => Some(CursorRef::Number(n)),
            _ => None,
        }
    }
}

impl crate::json::Field {
    /// The value, reading a string from `record` (the line it was found in).
    pub fn as_cursor<'r>(&'r self, record: &'r str) -> Option<CursorRef<'r>> {
        match self.number() {
            Some(n) => Some(CursorRef::Number(n)),
            None => self.text(record).map(CursorRef::Text),
        }
    }
}

/// Smallest and largest cursor value seen in one file.
#[derive(Default)]
pub struct CursorRange {
    pub min: Option<Cursor>,
    pub max: Option<Cursor>,
}

impl CursorRange {
    /// Reads the value at `field` from a record's text.
    pub fn update_from_text(&mut self, record: &str, field: &[String]) {
        let value = crate::json::find_field(record, field).and_then(|raw| serde_json::from_str(raw.get()).ok());
        self.update(value.as_ref().and_then(CursorRef::of));
    }

    /// Per record: reuses its strings, so it allocates only when a value grows longer.
    pub fn update(&mut self, value: Option<CursorRef<'_>>) {
        use std::cmp::Ordering::{Greater, Less};
        let ordering = |slot: &Option<Cursor>, v: CursorRef<'_>| -> Option<std::cmp::Ordering> {
            match (slot, v) {
                (None, _) => None,
                (Some(Cursor::Text(s)), CursorRef::Text(t)) => Some(t.cmp(s.as_str())),
                (Some(Cursor::Number(f, _)), CursorRef::Number(n)) => n.as_f64()?.partial_cmp(f),
                _ => Some(std::cmp::Ordering::Equal), // mixed types: keep the first
            }
        };
        let Some(v) = value else { return };
        let set = |slot: &mut Option<Cursor>| match (slot.as_mut(), v) {
            (Some(Cursor::Text(s)), CursorRef::Text(t)) => {
                s.clear();
                s.push_str(t);
            }
            (_, CursorRef::Text(t)) => *slot = Some(Cursor::Text(t.to_string())),
            (_, CursorRef::Number(n)) => *slot = n.as_f64().map(|f| Cursor::Number(f, n.clone())),
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

    #[test]
    fn strings_compare_as_text_and_numbers_as_numbers() {
        let mut r = CursorRange::default();
        for v in [r#""2026-01-02""#, r#""2026-01-10""#, r#""2025-12-31""#] {
            r.update(CursorRef::of(&serde_json::from_str(v).unwrap()));
        }
        assert_eq!(
            (r.min.unwrap().to_json(), r.max.unwrap().to_json()),
            (r#""2025-12-31""#.into(), r#""2026-01-10""#.into())
        );
        let mut r = CursorRange::default();
        for v in ["9", "10", "-1.5"] {
            r.update(CursorRef::of(&serde_json::from_str(v).unwrap()));
        }
        assert_eq!((r.min.unwrap().to_json(), r.max.unwrap().to_json()), ("-1.5".into(), "10".into()));
    }
}
