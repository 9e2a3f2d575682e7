//! Typed columns from schemas, and the value parsers.

use super::*;

#[test]
fn types_follow_the_schema() {
    let schema = r#"{"type":"object","required":["id"],"properties":{
        "id":{"type":"integer"},
        "price":{"type":["null","number"],"multipleOf":0.01},
        "ratio":{"type":"number"},
        "ok":{"type":"boolean"},
        "at":{"type":["string","null"],"format":"date-time"},
        "day":{"anyOf":[{"type":"string","format":"date"},{"type":"null"}]},
        "o":{"type":"object","properties":{"a":{"type":"string"}}},
        "free":{"type":"object"},
        "tags":{"type":"array","items":{"type":"string"}},
        "lines":{"type":"array","items":{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"integer"}}}},
        "mixed":{"type":["string","integer"]},
        "any":{}
    }}"#;
    let cols = columns(schema, false, false);
    let got: Vec<(&str, &Type, bool)> = cols.iter().map(|f| (f.name.as_str(), &f.ty, f.nullable)).collect();
    assert_eq!(
        got,
        vec![
            ("id", &Type::Int, false),
            ("price", &Type::Decimal { scale: 2 }, true),
            ("ratio", &Type::Float, true),
            ("ok", &Type::Bool, true),
            ("at", &Type::Timestamp, true),
            ("day", &Type::Date, true),
            ("o", &Type::Struct(vec![Field { name: "a".into(), ty: Type::Text, nullable: true }]), true),
            ("free", &Type::Json, true),
            ("tags", &Type::List(Box::new(Field { name: "item".into(), ty: Type::Text, nullable: true })), true),
            (
                "lines",
                &Type::List(Box::new(Field {
                    name: "item".into(),
                    ty: Type::Struct(vec![
                        Field { name: "z".into(), ty: Type::Text, nullable: true },
                        Field { name: "a".into(), ty: Type::Int, nullable: true },
                    ]),
                    nullable: true
                })),
                true
            ),
            ("mixed", &Type::Json, true),
            ("any", &Type::Json, true),
        ]
    );
    assert_eq!(columns(schema, true, false)[6].ty, Type::Json, "nested_as_json");
    let with_meta = columns(schema, false, true);
    assert_eq!(with_meta.len(), 12 + METADATA_COLUMNS.len());
}

fn types(schema: &str, nested_as_json: bool) -> Vec<(String, Type, bool)> {
    columns(schema, nested_as_json, false).into_iter().map(|f| (f.name, f.ty, f.nullable)).collect()
}

fn list(ty: Type, nullable: bool) -> Type {
    Type::List(Box::new(Field { name: "item".into(), ty, nullable }))
}

/// The shapes pipelinewise-tap-postgres sends for `numeric(p, s)`: `multipleOf` 10^-s, draft-4
/// bounds ±10^(p-s); without precision it caps at (100, 38).
#[test]
fn numbers_are_decimals_when_they_fit_and_exact_text_otherwise() {
    let pg = |p: i32, s: i32| {
        let max = format!("1{}", "0".repeat((p - s) as usize));
        format!(
            r#"{{"type":["null","number"],"exclusiveMaximum":true,"maximum":{max},"multipleOf":1e-{s},"exclusiveMinimum":true,"minimum":-{max}}}"#
        )
    };
    let schema = format!(
        r#"{{"properties":{{"n10_2":{},"n38_4":{},"n38_0":{},"n40_2":{},"unscaled":{},"n":{{"type":["number"],"multipleOf":1e-20}},
        "n_bounded":{{"type":"number","multipleOf":1e-20,"minimum":0,"maximum":1000}},
        "n_draft6":{{"type":"number","multipleOf":0.001,"exclusiveMaximum":1e35,"exclusiveMinimum":-1e35}},
        "n_inclusive":{{"type":"number","multipleOf":0.01,"maximum":1e36,"minimum":-1e36}},
        "tiny":{{"type":"number","multipleOf":1e-40}},"quarter":{{"type":"number","multipleOf":0.25}},
        "whole":{{"type":"number","multipleOf":1}},"huge":{{"type":"number","multipleOf":1e300}},
        "float":{{"type":"number"}}}}}}"#,
        pg(10, 2),
        pg(38, 4),
        pg(38, 0),
        pg(40, 2),
        pg(100, 38),
    );
    let got: Vec<(String, Type)> = types(&schema, false).into_iter().map(|(n, t, _)| (n, t)).collect();
    let want = [
        ("n10_2", Type::Decimal { scale: 2 }),
        ("n38_4", Type::Decimal { scale: 4 }),
        ("n38_0", Type::Decimal { scale: 0 }),
        ("n40_2", Type::Numeric),
        ("unscaled", Type::Numeric),
        ("n", Type::Numeric),
        ("n_bounded", Type::Decimal { scale: 20 }),
        ("n_draft6", Type::Decimal { scale: 3 }),
        ("n_inclusive", Type::Numeric),
        ("tiny", Type::Numeric),
        ("quarter", Type::Float),
        ("whole", Type::Decimal { scale: 0 }),
        ("huge", Type::Float),
        ("float", Type::Float),
    ];
    assert_eq!(got, want.map(|(n, t)| (n.to_string(), t)));
}

#[test]
fn exact_numbers_keep_their_text() {
    assert_eq!(numeric("0.33333333333333333333"), Some("0.33333333333333333333"));
    assert_eq!(numeric("-12345678901234567890123456789.123456789"), Some("-12345678901234567890123456789.123456789"));
    assert_eq!(numeric("0E-10"), Some("0E-10"));
    assert_eq!(numeric("\"12.30\""), Some("12.30"), "a string holding a number");
    for bad in ["", "-", "1.", ".5", "1e", "1e+", "--1", "0x10", "\"soon\"", "1.5.2", "true", "[1]"] {
        assert_eq!(numeric(bad), None, "{bad}");
    }
}

const PG_ARRAYS: &str = r##"{"type":"object","properties":{
    "tags":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_string_array"}},
    "scores":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_integer_array"}},
    "seen":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_timestamp_array"}},
    "docs":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_object_array"}},
    "prices":{"type":["null","array"],"items":{"$ref":"#/definitions/sdc_recursive_decimal_10_2_array"}},
    "direct":{"$ref":"#/definitions/sdc_recursive_integer_array"}},
  "definitions":{
    "sdc_recursive_integer_array":{"type":["null","integer","array"],"items":{"$ref":"#/definitions/sdc_recursive_integer_array"}},
    "sdc_recursive_string_array":{"type":["null","string","array"],"items":{"$ref":"#/definitions/sdc_recursive_string_array"}},
    "sdc_recursive_timestamp_array":{"type":["null","string","array"],"format":"date-time","items":{"$ref":"#/definitions/sdc_recursive_timestamp_array"}},
    "sdc_recursive_object_array":{"type":["null","object","array"],"items":{"$ref":"#/definitions/sdc_recursive_object_array"}},
    "sdc_recursive_decimal_10_2_array":{"type":["null","number","array"],"multipleOf":0.01,"exclusiveMaximum":true,"maximum":100000000,"exclusiveMinimum":true,"minimum":-100000000,"items":{"$ref":"#/definitions/sdc_recursive_decimal_10_2_array"}}}}"##;

#[test]
fn postgres_arrays_are_lists_of_their_element_type() {
    let got = types(PG_ARRAYS, false);
    let want = vec![
        ("tags".to_string(), list(Type::Text, true), true),
        ("scores".to_string(), list(Type::Int, true), true),
        ("seen".to_string(), list(Type::Timestamp, true), true),
        ("docs".to_string(), list(Type::Json, true), true),
        ("prices".to_string(), list(Type::Decimal { scale: 2 }, true), true),
        ("direct".to_string(), Type::Json, true),
    ];
    assert_eq!(got, want);
    // nested_as_json: arrays of any dimension, as JSON text
    assert!(types(PG_ARRAYS, true).iter().all(|(_, t, _)| *t == Type::Json));
}

#[test]
fn references_resolve_and_recursion_stops() {
    let schema = r##"{"properties":{
        "home":{"$ref":"#/definitions/address"},
        "node":{"$ref":"#/definitions/node"},
        "self":{"$ref":"#"},
        "loop":{"$ref":"#/definitions/a"},
        "missing":{"$ref":"#/definitions/nope"},
        "remote":{"$ref":"http://example.com/s.json#/x"},
        "escaped":{"$ref":"#/definitions/a~1b"},
        "items":{"type":"array","items":{"$ref":"#/definitions/address"}}},
      "definitions":{
        "address":{"type":["null","object"],"properties":{"zip":{"type":"string"},"city":{"type":"string"}}},
        "node":{"type":"object","properties":{"v":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#/definitions/node"}}}},
        "a":{"$ref":"#/definitions/b"},"b":{"$ref":"#/definitions/a"},
        "a/b":{"type":"boolean"}}}"##;
    let address = Type::Struct(vec![
        Field { name: "zip".into(), ty: Type::Text, nullable: true },
        Field { name: "city".into(), ty: Type::Text, nullable: true },
    ]);
    let node = Type::Struct(vec![
        Field { name: "v".into(), ty: Type::Int, nullable: true },
        Field { name: "children".into(), ty: list(Type::Json, true), nullable: true },
    ]);
    let got = types(schema, false);
    let want = vec![
        ("home".to_string(), address.clone(), true),
        ("node".to_string(), node, true),
        ("self".to_string(), Type::Json, true),
        ("loop".to_string(), Type::Json, true),
        ("missing".to_string(), Type::Json, true),
        ("remote".to_string(), Type::Json, true),
        ("escaped".to_string(), Type::Bool, true),
        ("items".to_string(), list(address, true), true),
    ];
    assert_eq!(got, want);
}

#[test]
fn exponential_references_stay_bounded() {
    // Each level refers to the next ten times: 10^8 fields if expanded naively.
    let mut defs = Vec::new();
    for level in 0..8 {
        let props: Vec<String> =
            (0..10).map(|i| format!(r##""p{i}":{{"$ref":"#/definitions/d{}"}}"##, level + 1)).collect();
        defs.push(format!(r#""d{level}":{{"type":"object","properties":{{{}}}}}"#, props.join(",")));
    }
    defs.push(r#""d8":{"type":"integer"}"#.to_string());
    let schema =
        format!(r##"{{"properties":{{"root":{{"$ref":"#/definitions/d0"}}}},"definitions":{{{}}}}}"##, defs.join(","));
    fn count(ty: &Type) -> usize {
        match ty {
            Type::Struct(fields) => fields.iter().map(|f| 1 + count(&f.ty)).sum(),
            Type::List(item) => 1 + count(&item.ty),
            _ => 0,
        }
    }
    let fields = columns(&schema, false, false);
    let total: usize = fields.iter().map(|f| 1 + count(&f.ty)).sum();
    assert!(total <= MAX_FIELDS + 1, "{total}");
}

#[test]
fn decimals_are_exact_or_refused() {
    assert_eq!(decimal("12.34", 2), Some(1234));
    assert_eq!(decimal("-0.5", 2), Some(-50));
    assert_eq!(decimal("\"7\"", 3), Some(7000));
    assert_eq!(decimal("1.5e2", 2), Some(15000));
    assert_eq!(decimal("12.345", 2), None, "no silent rounding");
    assert_eq!(decimal("12.340", 2), Some(1234));
    assert_eq!(decimal("abc", 2), None);
    assert_eq!(decimal("1e40", 0), None);
}

#[test]
fn scalars_parse_from_raw_text() {
    assert_eq!(int("9007199254740993"), Some(9007199254740993), "beyond f64, exact");
    assert_eq!(int("2.0"), Some(2));
    assert_eq!(int("2.5"), None);
    assert_eq!(int("\"42\""), Some(42));
    assert_eq!(int("123456789012345678901234"), None);
    assert_eq!(float("1.25"), Some(1.25));
    assert_eq!(boolean("true"), Some(true));
    assert_eq!(boolean("1"), None);
    assert_eq!(timestamp("\"2026-01-02T03:04:05.123456Z\""), Some(1_767_323_045_123_456));
    assert_eq!(timestamp("\"2026-01-02T05:04:05.123456+02:00\""), Some(1_767_323_045_123_456));
    assert_eq!(timestamp("\"2026-01-02T03:04:05.123456\""), Some(1_767_323_045_123_456), "no offset is UTC");
    assert_eq!(timestamp("\"2026-01-02 03:04:05.123456\""), Some(1_767_323_045_123_456));
    assert_eq!(timestamp("\"yesterday\""), None);
    assert_eq!(date("\"1970-01-11\""), Some(10));
    assert_eq!(date("\"1969-12-31\""), Some(-1));
    assert_eq!(text(r#""a\"b""#), "a\"b");
    assert_eq!(text(r#""plain""#), "plain");
    assert_eq!(text("12"), "12");
}

#[test]
fn members_and_elements_are_located() {
    let fields = columns(r#"{"properties":{"a":{},"b":{}}}"#, false, false);
    let index = FieldIndex::new(fields.iter().map(|f| f.name.as_str()));
    let raw = r#"{"b": [1, {"x":2}], "zz": 1, "a":"s"}"#;
    let mut slots = vec![None; 2];
    members(raw, &index, &mut slots, &mut crate::json::Dropped::default()).unwrap();
    let (s, l) = slots[0].unwrap();
    assert_eq!(&raw[s..s + l], "\"s\"");
    let (s, l) = slots[1].unwrap();
    let list = &raw[s..s + l];
    let mut out = Vec::new();
    elements(list, &mut out).unwrap();
    let got: Vec<&str> = out.iter().map(|(s, l)| &list[*s..*s + *l]).collect();
    assert_eq!(got, vec!["1", r#"{"x":2}"#]);
}
