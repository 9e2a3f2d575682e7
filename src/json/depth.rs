//! The input's nesting limit, for values kept raw. Parsed values get it from serde_json (its
//! recursion limit of 128 lets 127 levels of objects and arrays through); a value passed through as the tap wrote it (a STATE, a record with validation off)
//! is checked here, so the limit holds whatever the settings: a 100,000-level STATE would
//! otherwise be echoed to a job runner whose JSON reader cannot read it back.

/// The deepest nesting of objects and arrays a value may have: what a validated record gets
/// from serde_json, so validation on or off makes no difference.
pub const MAX_DEPTH: usize = 127;

/// Whether `raw` (well-formed JSON) nests objects and arrays deeper than [`MAX_DEPTH`]. One
/// pass; strings are skipped with `memchr`.
pub fn too_deep(raw: &str) -> bool {
    let b = raw.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                // To the closing quote, stepping over escapes.
                while let Some(j) = memchr::memchr2(b'"', b'\\', &b[i..]) {
                    i += j;
                    if b[i] == b'\\' {
                        i += 2;
                    } else {
                        break;
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_structure() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!too_deep(&deep(127)));
        assert!(too_deep(&deep(128)));
        assert!(!too_deep(&format!(r#"{{"a":"{}\"[{{"}}"#, "[".repeat(500))));
        assert!(!too_deep(r#"{"a":[1,{"b":"\\"}]}"#));
    }
}
