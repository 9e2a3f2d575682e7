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

/// Smallest and largest cursor value seen in one file.
#[derive(Default)]
pub struct CursorRange {
    pub min: Option<Cursor>,
    pub max: Option<Cursor>,
}

impl CursorRange {
    /// Per record: reuses its strings, so it allocates only when a value grows longer.
    pub fn update(&mut self, value: Option<&serde_json::Value>) {
        use std::cmp::Ordering::{Greater, Less};
        let ordering = |slot: &Option<Cursor>, v: &serde_json::Value| -> Option<std::cmp::Ordering> {
            match (slot, v) {
                (None, _) => None,
                (Some(Cursor::Text(s)), serde_json::Value::String(t)) => Some(t.as_str().cmp(s.as_str())),
                (Some(Cursor::Number(f, _)), serde_json::Value::Number(n)) => n.as_f64()?.partial_cmp(f),
                _ => Some(std::cmp::Ordering::Equal), // mixed types: keep the first
            }
        };
        let Some(v) = value else { return };
        let set = |slot: &mut Option<Cursor>| match (slot.as_mut(), v) {
            (Some(Cursor::Text(s)), serde_json::Value::String(t)) => {
                s.clear();
                s.push_str(t);
            }
            (_, serde_json::Value::String(t)) => *slot = Some(Cursor::Text(t.clone())),
            (_, serde_json::Value::Number(n)) => *slot = n.as_f64().map(|f| Cursor::Number(f, n.clone())),
            _ => {}
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
            r.update(Some(&serde_json::from_str(v).unwrap()));
        }
        assert_eq!(
            (r.min.unwrap().to_json(), r.max.unwrap().to_json()),
            (r#""2025-12-31""#.into(), r#""2026-01-10""#.into())
        );
        let mut r = CursorRange::default();
        for v in ["9", "10", "-1.5"] {
            r.update(Some(&serde_json::from_str(v).unwrap()));
        }
        assert_eq!((r.min.unwrap().to_json(), r.max.unwrap().to_json()), ("-1.5".into(), "10".into()));
    }
}
