//! The tape decides what a value tree decided: the same value (or the same parse error) for any
//! text, and the same verdict and message from the validator for any record and schema.

use jsonschema::json::Node as _;
use proptest::prelude::*;
use serde_json::Value;

use super::{Tape, TapeJson};
use crate::json::parse_strict;

#[test]
fn the_validator_reads_the_tape_as_it_reads_a_value() {
    let text = jsonschema::json::conformance::document().to_string();
    let mut tape = Tape::default();
    let doc = tape.parse(&text).unwrap();
    jsonschema::json::conformance::assert_conformance::<TapeJson>(&doc.root());
}

/// Member names from a small set, so objects repeat names; some need escapes (the arena path).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0..40u8).prop_map(|i| format!("k{i}")),
        1 => Just("q\"uote".to_string()),
        1 => Just("é\\n".to_string()),
        1 => Just("\u{1}ctl".to_string()),
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:e}")),
        Just("1.0".to_string()),
        Just("-0".to_string()),
        Just("123456789012345678901234567890".to_string()),
        "[a-z\"\\\\é\u{1}]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        Just(r#""\u00e9\ud83e\udd80""#.to_string()),
    ]
}

/// JSON text with objects up to 40 members wide (past the pairwise limit of 16) and repeated
/// names at any depth.
fn json_text() -> impl Strategy<Value = String> {
    scalar().prop_recursive(4, 200, 40, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((name(), inner), 0..40).prop_map(|members| {
                let members: Vec<String> =
                    members.into_iter().map(|(k, v)| format!("{}:{v}", serde_json::to_string(&k).unwrap())).collect();
                format!("{{{}}}", members.join(" , "))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn a_tape_holds_what_a_value_tree_holds(text in json_text(), trailing in prop::option::of("[ x,}]")) {
        let text = format!("{text}{}", trailing.unwrap_or_default());
        let expected = parse_strict(&text).map_err(|e| e.to_string());
        let mut tape = Tape::default();
        // Twice into one tape: what the last record left behind never shows.
        for _ in 0..2 {
            let got = tape.parse(&text).map(|doc| doc.root().to_value().into_owned()).map_err(|e| e.to_string());
            prop_assert_eq!(&got, &expected, "{}", text);
        }
    }
}

/// Schemas as taps write them, and keywords that read members, names, arrays and numbers.
const SCHEMAS: [&str; 8] = [
    r#"{"type":"object","properties":{"k1":{"type":"integer"},"k2":{"type":["null","string"],"maxLength":3},"k3":{"type":["number","null"]},"k4":{"type":"array","items":{"type":["string","null"]}},"k5":{"type":"object","properties":{"k1":{"type":"integer"}},"additionalProperties":false}},"required":["k1"]}"#,
    r#"{"properties":{"k1":{"anyOf":[{"type":"string","format":"date-time"},{"type":"null"}]},"k2":{"oneOf":[{"type":"integer"},{"type":"string"}]}}}"#,
    r#"{"properties":{"k1":{"enum":["a","b",null,1]},"k2":{"type":"array","uniqueItems":true},"k3":{"const":{"k1":[1,2]}}}}"#,
    r#"{"$schema":"http://json-schema.org/draft-04/schema#","properties":{"k1":{"type":"integer"},"k2":{"type":"array","items":{"type":"integer"}}}}"#,
    r#"{"properties":{},"propertyNames":{"maxLength":3},"patternProperties":{"^k1":{"type":"string"}},"minProperties":2,"maxProperties":20}"#,
    r##"{"definitions":{"n":{"type":["object","null"],"properties":{"k1":{"$ref":"#/definitions/n"},"k2":{"type":"boolean"}}}},"properties":{"k1":{"$ref":"#/definitions/n"}}}"##,
    r#"{"properties":{"k1":{"type":"array","minItems":1,"maxItems":3,"contains":{"type":"string"}},"k2":{"type":"string","pattern":"^[a-z]+$","minLength":1}},"additionalProperties":{"type":["string","integer","null"]}}"#,
    r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"k1":{"type":"integer"},"k2":{"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"number"}}},"unevaluatedProperties":{"type":"string"}}"#,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn the_validator_says_the_same_on_a_tape(text in json_text(), which in 0..SCHEMAS.len()) {
        let schema: Value = serde_json::from_str(SCHEMAS[which]).unwrap();
        let draft = if SCHEMAS[which].contains("draft-04") { jsonschema::Draft::Draft4 } else { jsonschema::Draft::Draft7 };
        let draft = if SCHEMAS[which].contains("2020-12") { jsonschema::Draft::Draft202012 } else { draft };
        let on_values = jsonschema::options().with_draft(draft).should_validate_formats(true).build(&schema).unwrap();
        let on_tapes = jsonschema::options_for::<TapeJson>().with_draft(draft).should_validate_formats(true).build(&schema).unwrap();
        let Ok(value) = parse_strict(&text) else { return Ok(()) };
        let valid = on_values.validate(&value).is_ok();
        let mut tape = Tape::default();
        let doc = tape.parse(&text).unwrap();
        prop_assert_eq!(on_tapes.is_valid(doc.root()), valid, "{}", text);
        prop_assert_eq!(on_tapes.validate(doc.root()).is_ok(), valid, "{}", text);
        // The error reported is one a value tree finds too. Which one is first may differ: a
        // value tree holds members in name order, the tape in the record's own order (so a
        // list of unexpected names is in that order too).
        if let Err(e) = on_tapes.validate(doc.root()) {
            let sorted = |path: String, message: String| {
                let mut chars: Vec<char> = message.chars().collect();
                chars.sort_unstable();
                (path, chars)
            };
            let got = sorted(e.instance_path().to_string(), e.to_string());
            let found = on_values.iter_errors(&value).any(|e| sorted(e.instance_path().to_string(), e.to_string()) == got);
            prop_assert!(found, "{:?} is not an error of {}", got, text);
        }
    }
}
