//! Schemas: drafts, validation and the column plan.

use serde_json::value::RawValue;

use super::draft::draft4_bounds_to_draft7;
use super::*;
use crate::error::InputErrorKind;

fn opts() -> SchemaOptions {
    SchemaOptions { validate_records: true, validate_formats: false, flatten_max_depth: 10 }
}

const SCHEMA: &str = r#"{"type":"object","required":["id"],"properties":{
    "id":{"type":"integer"},
    "addr":{"type":["object","null"],"properties":{"city":{"type":"string"},"geo":{"type":"object","properties":{"lat":{"type":"number"}}}}},
    "tags":{"type":"array","items":{"type":"string"}},
    "free":{"type":"object"},
    "ts":{"type":"string","format":"date-time"}}}"#;

#[test]
fn columns_follow_schema_order_and_flatten() {
    let s = StreamSchema::compile(SCHEMA, vec![], opts()).unwrap();
    assert_eq!(s.columns.names, ["id", "addr__city", "addr__geo__lat", "tags", "free", "ts"]);
    let shallow = StreamSchema::compile(SCHEMA, vec![], SchemaOptions { flatten_max_depth: 1, ..opts() }).unwrap();
    assert_eq!(shallow.columns.names, ["id", "addr__city", "addr__geo", "tags", "free", "ts"]);
}

#[test]
fn locate_finds_raw_values() {
    let s = StreamSchema::compile(SCHEMA, vec![], opts()).unwrap();
    let rec = r#"{"ts":"2020","id":1.50,"addr":{"geo":{"lat":-1e3},"city":"a\"b"},"extra":1,"tags":["x"]}"#;
    let mut slots = vec![None; 6];
    let mut dropped = crate::json::Dropped::default();
    s.columns.locate(rec, &mut slots, &mut dropped).unwrap();
    let got: Vec<Option<&str>> = slots.iter().map(|s| s.map(|(a, n)| &rec[a..a + n])).collect();
    assert_eq!(got, [Some("1.50"), Some(r#""a\"b""#), Some("-1e3"), Some(r#"["x"]"#), None, Some(r#""2020""#)]);
    assert_eq!((dropped.count, dropped.first.as_deref()), (1, Some("extra")));
    let null_addr = r#"{"id":1,"addr":null}"#;
    s.columns.locate(null_addr, &mut slots, &mut crate::json::Dropped::default()).unwrap();
    assert_eq!(slots.iter().filter(|s| s.is_some()).count(), 1);
    assert!(
        s.columns
            .locate(r#"{"id":1,"addr":"oops"}"#, &mut slots, &mut crate::json::Dropped::default())
            .unwrap_err()
            .to_string()
            .contains("addr")
    );
}

#[test]
fn validation_names_path_and_rule() {
    let s = StreamSchema::compile(SCHEMA, vec!["id".into()], opts()).unwrap();
    let raw = |t: &str| serde_json::from_str::<&RawValue>(t).unwrap().get().to_string();
    s.check(&raw(r#"{"id":1,"ts":"not a date"}"#)).unwrap();
    let e = s.check(&raw(r#"{"id":"x"}"#)).unwrap_err().to_string();
    assert!(e.contains("at /id") && e.contains("integer"), "{e}");
    let e = s.check(&raw(r#"{"addr":null}"#)).unwrap_err().to_string();
    assert!(e.contains("\"id\" is a required property"), "{e}");
    let strict = StreamSchema::compile(SCHEMA, vec![], SchemaOptions { validate_formats: true, ..opts() }).unwrap();
    assert!(strict.check(&raw(r#"{"id":1,"ts":"not a date"}"#)).is_err());
}

#[test]
fn validation_off_checks_only_the_shape() {
    let s =
        StreamSchema::compile(SCHEMA, vec!["id".into()], SchemaOptions { validate_records: false, ..opts() }).unwrap();
    let raw = |t: &str| serde_json::from_str::<&RawValue>(t).unwrap().get().to_string();
    s.check(&raw(r#"{"a":{"id":2}}"#)).unwrap();
    assert!(s.check(&raw("[1]")).is_err());
}

/// A record as a RECORD line holds it: one JSON value's text.
fn raw(text: &str) -> String {
    serde_json::from_str::<&RawValue>(text).unwrap().get().to_string()
}

/// pipelinewise-tap-postgres's numeric columns (draft 4 bounds, no `$schema`), in every
/// place a schema can sit.
#[test]
fn draft4_bounds_are_accepted_wherever_they_occur() {
    let schema = r##"{"type":"object","properties":{
        "amount":{"type":["null","number"],"exclusiveMaximum":true,"maximum":100000000,"multipleOf":0.01,"exclusiveMinimum":true,"minimum":-100000000},
        "inclusive":{"type":"integer","exclusiveMaximum":false,"maximum":10},
        "o":{"type":"object","properties":{"n":{"type":"number","exclusiveMinimum":true,"minimum":0}}},
        "l":{"type":"array","items":{"$ref":"#/definitions/positive"}},
        "either":{"anyOf":[{"type":"null"},{"type":"number","exclusiveMaximum":true,"maximum":1}]},
        "d":{"type":"object","default":{"exclusiveMaximum":true,"maximum":5}}},
      "definitions":{"positive":{"type":"number","exclusiveMinimum":true,"minimum":0}}}"##;
    let s = StreamSchema::compile(schema, vec![], opts()).unwrap();
    for ok in [
        r#"{"amount":99999999.99,"inclusive":10,"o":{"n":0.5},"l":[1,2],"either":0.5}"#,
        r#"{"amount":-99999999.99,"either":null,"d":{"exclusiveMaximum":true,"maximum":5}}"#,
    ] {
        s.check(&raw(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, at) in [
        (r#"{"amount":100000000}"#, "at /amount"),
        (r#"{"amount":-100000000}"#, "at /amount"),
        (r#"{"inclusive":11}"#, "at /inclusive"),
        (r#"{"o":{"n":0}}"#, "at /o/n"),
        (r#"{"l":[1,0]}"#, "at /l/1"),
        (r#"{"either":1}"#, "at /either"),
    ] {
        let e = s.check(&raw(bad)).unwrap_err().to_string();
        assert!(e.contains(at), "{bad}: {e}");
    }
    // Only schema positions are rewritten: data (a `default`) keeps its members.
    let mut value: Value = serde_json::from_str(schema).unwrap();
    draft4_bounds_to_draft7(&mut value);
    assert_eq!(value["properties"]["d"]["default"], serde_json::json!({"exclusiveMaximum":true,"maximum":5}));
    assert_eq!(value["properties"]["amount"]["exclusiveMaximum"], 100000000);
    assert!(value["properties"]["amount"].get("maximum").is_none());
    assert_eq!(value["properties"]["inclusive"]["maximum"], 10);
    assert!(value["properties"]["inclusive"].get("exclusiveMaximum").is_none());
}

#[test]
fn schema_draft_is_honoured() {
    let bounds = r#""properties":{"amount":{"type":"number","exclusiveMaximum":true,"maximum":10}}"#;
    let draft4 = format!(r#"{{"$schema":"http://json-schema.org/draft-04/schema#",{bounds}}}"#);
    let s = StreamSchema::compile(&draft4, vec![], opts()).unwrap();
    assert!(s.check(&raw(r#"{"amount":10}"#)).is_err(), "exclusive in draft 4");
    s.check(&raw(r#"{"amount":9}"#)).unwrap();
    // A later draft, honoured: the draft-4 boolean is an error naming the place.
    let draft7 = format!(r#"{{"$schema":"http://json-schema.org/draft-07/schema#",{bounds}}}"#);
    let Err(e) = StreamSchema::compile(&draft7, vec![], opts()) else { panic!("draft 7 rejects a boolean bound") };
    let e = e.to_string();
    assert!(
        e.starts_with(
            r#"SCHEMA is not a valid JSON Schema: at /properties/amount/exclusiveMaximum: true is not of type "number""#
        ),
        "{e}"
    );
    assert!(e.contains("declare draft-04"), "{e}");
    // 2020-12 keywords work when declared.
    let s = StreamSchema::compile(
        r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","properties":{"p":{"type":"array","prefixItems":[{"type":"integer"}]}}}"#,
        vec![],
        opts(),
    )
    .unwrap();
    assert!(s.check(&raw(r#"{"p":["x"]}"#)).is_err());
    // An unknown `$schema` is the default: draft 7, draft-4 bounds accepted.
    let unknown = format!(r#"{{"$schema":"http://example.com/my-schema",{bounds}}}"#);
    let s = StreamSchema::compile(&unknown, vec![], opts()).unwrap();
    assert!(s.check(&raw(r#"{"amount":10}"#)).is_err());
    // Draft 4's `id` is its base URI: a bad one is named.
    let Err(e) = StreamSchema::compile(
        r#"{"$schema":"http://json-schema.org/draft-04/schema#","id":"not a uri","properties":{}}"#,
        vec![],
        opts(),
    ) else {
        panic!("a bad draft-4 id")
    };
    assert_eq!(
        e.to_string(),
        "SCHEMA is not a valid JSON Schema: a `$ref` or `$id` (draft 4: `id`) is not a URI: \
         Invalid URI reference 'not a uri': unexpected character at index 3"
    );
    // Without `$schema` (draft 7), `id` is just an unknown keyword.
    StreamSchema::compile(r#"{"id":"not a uri","properties":{}}"#, vec![], opts()).unwrap();
}

#[test]
fn nasty_references_are_errors_or_harmless() {
    let compile = |t: &str| StreamSchema::compile(t, vec![], opts()).map_err(|e| e.to_string());
    let e = compile(r##"{"properties":{"a":{"$ref":"#/definitions/missing"}}}"##).err().unwrap();
    assert_eq!(e, "SCHEMA is not a valid JSON Schema: $ref: Pointer '/definitions/missing' does not exist");
    let e = compile(r#"{"properties":{"a":{"$ref":"http://example.com/a.json"}}}"#).err().unwrap();
    assert!(e.contains("$ref: Resource 'http://example.com/a.json'"), "{e}");
    // Cycles compile and validate without looping.
    for cyclic in [
        r##"{"properties":{"a":{"$ref":"#/definitions/x"}},"definitions":{"x":{"$ref":"#/definitions/x"}}}"##,
        r##"{"properties":{"a":{"$ref":"#/definitions/x"}},"definitions":{"x":{"$ref":"#/definitions/y"},"y":{"$ref":"#/definitions/x"}}}"##,
        r##"{"properties":{"a":{"$ref":"#"}}}"##,
    ] {
        let s = compile(cyclic).unwrap();
        let _ = s.check(&raw(r#"{"a":{"a":{"a":1}}}"#));
    }
    let e = compile(r#"{"properties":{"a":{"type":"number","multipleOf":0}}}"#).err().unwrap();
    assert!(e.contains("at /properties/a/multipleOf: 0 is less than or equal to the minimum of 0"), "{e}");
    compile(r#"{"properties":{"a":{"type":"number","multipleOf":1e300}}}"#).unwrap();
}

#[test]
fn flattened_names_never_clash() {
    let schema = r#"{"properties":{"a__b":{"type":"string"},"a":{"type":"object","properties":{"b":{"type":"string"},"b_2":{"type":"string"}}},"a__b_2":{"type":"string"},"x":{"type":"object","properties":{"y__z":{"type":"integer"}}},"x__y":{"type":"object","properties":{"z":{"type":"integer"}}}}}"#;
    let s = StreamSchema::compile(schema, vec![], opts()).unwrap();
    assert_eq!(s.columns.names, ["a__b", "a__b_3", "a__b_2", "a__b_2_2", "x__y__z", "x__y__z_2"]);
    let rec = r#"{"a__b":"top","a":{"b":"nested","b_2":"n2"},"a__b_2":"top2","x":{"y__z":1},"x__y":{"z":2}}"#;
    let mut slots = vec![None; 6];
    s.columns.locate(rec, &mut slots, &mut crate::json::Dropped::default()).unwrap();
    let got: Vec<&str> = slots.iter().map(|s| s.map_or("", |(a, n)| &rec[a..a + n])).collect();
    assert_eq!(got, [r#""top""#, r#""nested""#, r#""n2""#, r#""top2""#, "1", "2"]);
}

#[test]
fn a_property_named_twice_is_one_column() {
    let s = StreamSchema::compile(
        r#"{"properties":{"a":{"type":"string"},"b":{"type":"integer"},"a":{"type":"integer"}}}"#,
        vec![],
        opts(),
    )
    .unwrap();
    assert_eq!(s.columns.names, ["b", "a"]);
    s.check(&raw(r#"{"a":1}"#)).unwrap();
}

#[test]
fn schema_errors() {
    assert!(matches!(
        StreamSchema::compile(r#"{"type":"object"}"#, vec![], opts()),
        Err(InputErrorKind::SchemaNoProperties)
    ));
    assert!(matches!(
        StreamSchema::compile(r#"{"properties":{"a":{"type":"nonsense"}}}"#, vec![], opts()),
        Err(InputErrorKind::InvalidSchema(_))
    ));
}

/// Real taps' numeric columns: bounds compared on the exact decimal value, errors quoting the
/// number as sent; integers past 64 bits; null elements of typed arrays load and are counted.
#[test]
fn bounds_are_exact_and_null_items_load() {
    // pipelinewise-tap-postgres, NUMERIC(38,10); MySQL BIGINT UNSIGNED; the Hub tap's int[].
    let schema = r#"{"type":"object","properties":{
        "money":{"type":["null","number"],"exclusiveMaximum":true,"maximum":1e28,"multipleOf":1e-10,"exclusiveMinimum":true,"minimum":-1e28},
        "big":{"type":["null","integer"],"minimum":0,"maximum":18446744073709551615},
        "nums":{"type":["array","null"],"items":{"type":"integer","maximum":5}},
        "n":{"anyOf":[{"type":"number","minimum":0.1},{"type":"null"}]}}}"#;
    let s = StreamSchema::compile(schema, vec![], opts()).unwrap();
    for ok in [
        r#"{"money":-9999999999999999999999999999.9999999999}"#,
        r#"{"money":9999999999999999999999999999.9999999999}"#,
        r#"{"money":12345678901234567890.1234567891}"#,
        r#"{"big":18446744073709551615}"#,
        r#"{"nums":[1,null,5,null]}"#,
        r#"{"n":0.1}"#,
        r#"{"n":null}"#,
    ] {
        s.check(&raw(ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    let nulls: Vec<(&str, u64)> = s.exact.as_ref().unwrap().null_items().collect();
    assert_eq!(nulls, [("nums", 2)]);
    for (bad, message) in [
        (r#"{"money":-1e28}"#, "at /money: -1e28 is not greater than the minimum of -1e28"),
        (
            r#"{"money":10000000000000000000000000000}"#,
            "at /money: 10000000000000000000000000000 is not less than the maximum of 1e28",
        ),
        (r#"{"money":0.00000000001}"#, "at /money: 0.00000000001 is not a multiple of 1e-10"),
        (
            r#"{"big":18446744073709551616}"#,
            "at /big: 18446744073709551616 is not at most the maximum of 18446744073709551615",
        ),
        (r#"{"nums":[1,null,6]}"#, "at /nums/2: 6 is not at most the maximum of 5"),
        (r#"{"n":0.09999999999999999999}"#, "at /n: 0.09999999999999999999 is not at least the minimum of 0.1"),
    ] {
        let e = s.check(&raw(bad)).unwrap_err().to_string();
        assert!(e.contains(message), "{bad}: {e}");
    }
    // Still the validator's: a string is not a number.
    assert!(s.check(&raw(r#"{"nums":["x"]}"#)).is_err());
}

/// Null array elements are counted on the parsed record when no bound needs the text, and on
/// the text when one does: the same counts either way, at any depth and through `$ref`/`allOf`.
mod null_items_on_either_path {
    use proptest::prelude::*;

    use super::*;

    const WITHOUT_BOUNDS: &str = r##"{"definitions":{"ints":{"type":"array","items":{"type":"integer"}}},"properties":{
        "a":{"type":"array","items":{"type":"string"}},
        "o":{"type":["object","null"],"properties":{"b":{"$ref":"#/definitions/ints"},"deep":{"type":"array","items":{"type":"array","items":{"type":"number"}}}}},
        "c":{"allOf":[{"type":["array","null"],"items":{"type":"boolean"}}]}}}"##;

    /// An array of `value`s and nulls.
    fn list(value: &'static str) -> impl Strategy<Value = String> {
        prop::collection::vec(any::<bool>(), 0..5).prop_map(move |nulls| {
            let elements: Vec<&str> = nulls.iter().map(|null| if *null { "null" } else { value }).collect();
            format!("[{}]", elements.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn counts_agree(a in list("\"s\""), b in list("1"), deep in prop::collection::vec(list("1.5"), 0..3), c in list("true"), o_null in any::<bool>()) {
            let o = if o_null { "null".to_string() } else { format!(r#"{{"b":{b},"deep":[{}]}}"#, deep.join(",")) };
            let record = format!(r#"{{"a":{a},"o":{o},"c":{c}}}"#);
            let on_tape = StreamSchema::compile(WITHOUT_BOUNDS, vec![], opts()).unwrap();
            prop_assert!(!on_tape.exact.as_ref().unwrap().has_bounds());
            on_tape.check(&raw(&record)).unwrap();
            // The same schema with a bound the records never reach: counted on the text.
            let with_bound = WITHOUT_BOUNDS.replace(r#""items":{"type":"boolean"}"#, r#""items":{"type":"boolean"}},{"maxItems":99,"items":{"minimum":-1e9}"#);
            let on_text = StreamSchema::compile(&with_bound, vec![], opts()).unwrap();
            prop_assert!(on_text.exact.as_ref().unwrap().has_bounds());
            on_text.check(&raw(&record)).unwrap();
            let counts = |s: &StreamSchema| {
                let mut c: Vec<(String, u64)> = s.exact.as_ref().unwrap().null_items().map(|(f, n)| (f.to_string(), n)).collect();
                c.sort();
                c
            };
            prop_assert_eq!(counts(&on_tape), counts(&on_text), "{}", record);
            let nulls = record.matches("null").count() - usize::from(o_null);
            prop_assert_eq!(counts(&on_tape).iter().map(|(_, n)| *n as usize).sum::<usize>(), nulls, "{}", record);
        }
    }
}

mod exact_bounds {
    use std::str::FromStr;

    use bigdecimal::BigDecimal;
    use proptest::prelude::*;

    use super::*;

    /// A decimal text of up to 40 digits, maybe with an exponent.
    fn decimal() -> impl Strategy<Value = String> {
        (any::<bool>(), "[0-9]{1,20}", proptest::option::of("[0-9]{1,20}"), proptest::option::of(-30i32..30)).prop_map(
            |(neg, whole, frac, exp)| {
                let mut t = String::new();
                if neg {
                    t.push('-');
                }
                // JSON has no leading zeros.
                let whole = whole.trim_start_matches('0');
                t.push_str(if whole.is_empty() { "0" } else { whole });
                if let Some(f) = frac {
                    t.push('.');
                    t.push_str(&f);
                }
                if let Some(e) = exp {
                    t.push_str(&format!("e{e}"));
                }
                t
            },
        )
    }

    /// A value at, just past or just short of `bound` in its 25th-40th digit, or written
    /// another way (trailing zeros, exponent): where 64-bit floats cannot tell them apart.
    fn near(bound: &str, how: u8, digits: usize) -> String {
        let (mantissa, exp) = bound.split_once('e').unwrap_or((bound, "0"));
        let exp: i32 = exp.parse().unwrap();
        let tail = "0".repeat(digits);
        let point = if mantissa.contains('.') { "" } else { "." };
        match how % 4 {
            0 => format!("{mantissa}{point}{tail}1e{exp}"),
            1 => {
                // just below in magnitude: ...d - 10^-k, by a string of 9s after lowering the last digit
                let last = mantissa.trim_end_matches(['0', '.']);
                match last.chars().last() {
                    Some(d @ '1'..='9') => {
                        let lowered = format!("{}{}", &last[..last.len() - 1], (d as u8 - 1) as char);
                        let point = if lowered.contains('.') { "" } else { "." };
                        format!("{lowered}{point}{}e{exp}", "9".repeat(digits + 5))
                    }
                    _ => format!("{mantissa}{point}{tail}e{exp}"),
                }
            }
            2 => format!("{mantissa}{point}{tail}e{exp}"),
            _ => format!("{mantissa}e{exp}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]
        #[test]
        fn verdicts_match_exact_decimals(
            random in decimal(),
            close_to in proptest::option::of((any::<bool>(), 0u8..4, 20usize..40)),
            min in decimal(),
            max in decimal(),
            min_exclusive in any::<bool>(),
            max_exclusive in any::<bool>(),
            step in proptest::option::of((1u32..999, 0i32..12)),
            draft4 in any::<bool>(),
        ) {
            let lower = if min_exclusive && !draft4 {
                format!(r#""exclusiveMinimum":{min}"#)
            } else {
                format!(r#""minimum":{min},"exclusiveMinimum":{min_exclusive}"#)
            };
            let upper = if max_exclusive && !draft4 {
                format!(r#""exclusiveMaximum":{max}"#)
            } else {
                format!(r#""maximum":{max},"exclusiveMaximum":{max_exclusive}"#)
            };
            let step_text = step.map(|(m, e)| format!("{m}e-{e}"));
            let multiple = step_text.as_ref().map(|s| format!(r#","multipleOf":{s}"#)).unwrap_or_default();
            let value = match close_to {
                Some((to_min, how, digits)) => near(if to_min { &min } else { &max }, how, digits),
                None => random,
            };
            let schema = format!(r#"{{"properties":{{"v":{{"type":"number",{lower},{upper}{multiple}}}}}}}"#);
            let s = StreamSchema::compile(&schema, vec![], opts()).unwrap();
            let verdict = s.check(&raw(&format!(r#"{{"v":{value}}}"#))).is_ok();
            let (v, lo, hi) = (
                BigDecimal::from_str(&value).unwrap(),
                BigDecimal::from_str(&min).unwrap(),
                BigDecimal::from_str(&max).unwrap(),
            );
            let mut expected = if min_exclusive { v > lo } else { v >= lo };
            expected &= if max_exclusive { v < hi } else { v <= hi };
            if let Some(step) = &step_text {
                let step = BigDecimal::from_str(step).unwrap();
                let quotient = &v / &step;
                expected &= quotient.is_integer();
            }
            prop_assert_eq!(verdict, expected, "{} against {}", value, schema);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
        /// `type: integer` holds a value exactly when its decimal value is whole, however it is
        /// written (`1.0`, `1e3`, `12.5e1`, 20+ digits): at the top, nested, in an array,
        /// with bounds on other fields or none (the text is then read only for whole doubles).
        #[test]
        fn integers_are_whole_decimal_values(value in decimal(), place in 0u8..3, bounded in any::<bool>()) {
            let other = if bounded { r#","m":{"type":"number","maximum":5}"# } else { "" };
            let schema = format!(
                r#"{{"properties":{{"i":{{"type":["null","integer"]}},"o":{{"type":"object","properties":{{"i":{{"type":"integer"}}}}}},"l":{{"type":"array","items":{{"type":"integer"}}}}{other}}}}}"#
            );
            let s = StreamSchema::compile(&schema, vec![], opts()).unwrap();
            let record = match place {
                0 => format!(r#"{{"i":{value}}}"#),
                1 => format!(r#"{{"o":{{"i":{value}}}}}"#),
                _ => format!(r#"{{"l":[1,{value}]}}"#),
            };
            let verdict = s.check(&raw(&record)).is_ok();
            prop_assert_eq!(verdict, BigDecimal::from_str(&value).unwrap().is_integer(), "{}", record);
        }
    }
}
