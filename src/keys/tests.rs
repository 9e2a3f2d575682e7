//! Key templates: parsing, rendering, escaping and uniqueness.

use std::collections::BTreeMap;

use chrono::TimeZone;
use chrono_tz::Tz;

use super::escape::{fit_segments, push_escaped};
use super::*;

fn run() -> RunContext {
    RunContext { now: Tz::UTC.with_ymd_and_hms(2026, 11, 22, 3, 41, 7).unwrap(), run_id: "run1".into() }
}

fn parse(prefix: &str, template: &str) -> KeyTemplate {
    KeyTemplate::parse(prefix, template, &ParseOptions::default()).unwrap()
}

fn render(prefix: &str, template: &str, stream: &str) -> String {
    parse(prefix, template).render(&run(), &file(stream, None)).with_part(3)
}

fn file<'a>(stream: &'a str, record: Option<&'a str>) -> FileContext<'a> {
    FileContext {
        stream,
        extension: "jsonl.gz",
        format: "jsonl",
        compression: "gzip",
        stream_run_id: "srun",
        record,
        partition_date_field: None,
        cursor: None,
        table_version: Some("1700000000"),
    }
}

fn escaped(value: &str) -> String {
    let mut out = String::new();
    push_escaped(&mut out, value);
    out
}

#[test]
fn every_macro_renders() {
    assert_eq!(
        render("", "{stream}/{year}/{month}/{day}/{hour}{minute}{second}/{date}-{iso_date}-{full_date}", "s"),
        "s/2026/11/22/034107/2026_11_22-2026-11-22-20261122"
    );
    assert_eq!(
        render("", "{timestamp}|{date_time}|{iso_date_time}|{epoch}|{epoch_ms}", "s"),
        "2026_11_22_03_41_07|2026_11_22_03_41_07|2026-11-22T03%3A41%3A07Z|1795318867|1795318867000"
    );
    assert_eq!(
        render("", "{now:%Y/%m}/{part}.{extension}-{run_id}-{sync_id}-{stream_run_id}-{format}-{compression}", "s"),
        "2026/11/00003.jsonl.gz-run1-run1-srun-jsonl-gzip"
    );
    assert_eq!(render("", "{stream}/{table_version}/{part}", "s"), "s/1700000000/00003");
    let no_version = FileContext { table_version: None, ..file("s", None) };
    assert_eq!(parse("", "{table_version}").render(&run(), &no_version).as_str(), "none");
    assert_eq!(
        parse("lake", "{stream}/v/{table_version}/{part}")
            .version_root()
            .unwrap()
            .render(&run(), &file("s", None))
            .as_str(),
        "lake/s/v/"
    );
    assert!(parse("", "{stream}/{iso_date}/{table_version}/{part}").version_root().is_none());
    assert!(parse("", "{stream}/{table_version}-{part}").version_root().is_none(), "a / must follow");
    assert!(parse("", "{stream}/v{table_version}/{part}").version_root().is_none(), "a whole folder");
    assert!(parse("", "{table_version}/{stream}/{part}").version_root().is_none(), "the stream comes first");
    assert!(parse("", "{namespace}/{table_version}/{part}").version_root().is_none(), "namespace is not a stream");
    assert_eq!(
        render("", "{namespace}/{stream_id}", "public-users"),
        format!("public/{:016x}", fnv1a(b"public-users"))
    );
    assert_eq!(render("", "{namespace}", "db-schema-table"), "db-schema");
    assert_eq!(render("", "{namespace}", "users"), "%5F_HIVE_DEFAULT_PARTITION__");
    let uuid = render("", "{uuid}", "s");
    assert_eq!(uuid.len(), 36);
    assert_ne!(uuid, render("", "{uuid}", "s"));
}

#[test]
fn three_spellings_case_insensitive() {
    assert_eq!(
        render("", "${YEAR}/{{ month }}/{{Day}}/{Stream_Name}/{{DD_today}}-{{H}}{{M}}{{S}}", "a"),
        "2026/11/22/a/22-034107"
    );
}

#[test]
fn hotglue_style_date() {
    let t = KeyTemplate::parse(
        "",
        "{date}/{full_date}",
        &ParseOptions { style: MacroStyle::Hotglue, ..Default::default() },
    )
    .unwrap();
    assert_eq!(t.render(&run(), &file("s", None)).as_str(), "202611/20261122");
}

#[test]
fn time_zone_is_applied() {
    let mut r = run();
    r.now = r.now.with_timezone(&chrono_tz::Asia::Tokyo);
    let t = parse("", "{iso_date_time}/{day}/{hour}");
    assert_eq!(t.render(&r, &file("s", None)).as_str(), "2026-11-22T12%3A41%3A07%2B09%3A00/22/12");
}

#[test]
fn job_and_user_variables_are_escaped_values() {
    let vars: BTreeMap<String, String> =
        [("tenant", "acme/evil"), ("tap", "tap-x"), ("job_id", "j1"), ("workspace_title", "Main WS")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let opts = ParseOptions { variables: &vars, ..Default::default() };
    let t = KeyTemplate::parse("{tenant}/{tap}", "${JOB_ID}/{{workspace_title}}", &opts).unwrap();
    assert_eq!(t.render(&run(), &file("s", None)).as_str(), "acme%2Fevil/tap-x/j1/Main%20WS");
    let e = KeyTemplate::parse("", "{flow_id}", &opts).unwrap_err().to_string();
    assert!(e.contains("flow_id") && e.contains("$FLOW"), "{e}");
}

#[test]
fn record_fields_partition() {
    let t = parse("", "{stream}/dt={record.updated_at:%Y-%m-%d}/{record.geo.country}/{part}");
    assert!(t.is_partitioned());
    let rec = r#"{"id":1,"geo":{"country":"P/L"},"updated_at":"2026-11-21T23:30:00-02:00"}"#;
    assert_eq!(t.render(&run(), &file("s", Some(rec))).with_part(3), "s/dt=2026-11-22/P%2FL/00003");
    let mut p = String::new();
    t.partition(rec, None, &run(), &mut p);
    assert_eq!(p, "\u{0}2026-11-22\u{0}P%2FL");
    t.partition(r#"{"updated_at":"garbage"}"#, None, &run(), &mut p);
    assert_eq!(p, "\0__HIVE_DEFAULT_PARTITION__\0__HIVE_DEFAULT_PARTITION__");
    assert!(!parse("", "{stream}/{part}").is_partitioned());
    // Hive's null partition where a `name=` folder holds the value; escaped where it would
    // start a folder (a folder starting with `_` is hidden from those readers).
    assert_eq!(
        t.render(&run(), &file("s", Some(r#"{"geo":{"country":null}}"#))).with_part(0),
        "s/dt=__HIVE_DEFAULT_PARTITION__/%5F_HIVE_DEFAULT_PARTITION__/00000"
    );
}

#[test]
fn format_patterns_make_folders_each_escaped() {
    let t = parse("", "{stream}/{record.at:%Y/%m/%d}/{now:%Y/.%m}/{part}");
    let rec = r#"{"at":"2026-01-02T03:04:05Z"}"#;
    assert_eq!(t.render(&run(), &file("s", Some(rec))).with_part(0), "s/2026/01/02/2026/%2E11/00000");
}

#[test]
fn improvado_partition_date() {
    let t = parse("", "{{filename}}-{{YYYY}}-{{MM}}-{{DD}}");
    let field: FieldPath = vec!["date".into()];
    let rec = r#"{"date":"2026-10-03"}"#;
    let f = FileContext { record: Some(rec), partition_date_field: Some(&field), ..file("ads", None) };
    assert_eq!(t.render(&run(), &f).as_str(), "ads-2026-10-03");
    let f = FileContext { partition_date_field: None, ..f };
    assert_eq!(t.render(&run(), &f).as_str(), "ads-2026-11-22", "no bookmark: the load date");
}

#[test]
fn cursor_macros() {
    let t = parse("", "{cursor_year}/{cursor_month}/{cursor_day}/{cursor_singular_date_time}_{cursor:%H}_{cursor}");
    assert!(t.uses_cursor());
    let f = FileContext { cursor: Some(r#""2026-11-21T18:04:00+01:00""#), ..file("s", None) };
    assert_eq!(t.render(&run(), &f).as_str(), "2026/11/21/2026-11-21-17-04-00_17_2026-11-21T18%3A04%3A00%2B01%3A00");
    assert_eq!(
        parse("", "{cursor}").render(&run(), &FileContext { cursor: Some("42"), ..file("s", None) }).as_str(),
        "42"
    );
    assert_eq!(
        parse("", "{cursor_date_time}").render(&run(), &file("s", None)).as_str(),
        "%5F_HIVE_DEFAULT_PARTITION__"
    );
    assert!(!parse("", "{stream}").uses_cursor());
}

#[test]
fn prefix_is_a_folder() {
    assert_eq!(render("exports/", "{stream}", "a"), "exports/a");
    assert_eq!(render("/exports", "{stream}", "a"), "exports/a");
    assert_eq!(render("t/{year}", "{stream}", "a"), "t/2026/a");
}

#[test]
fn values_are_escaped_reversibly_and_never_hidden() {
    assert_eq!(render("", "{stream}", "test:SpecialChars!in?attributes"), "test%3ASpecialChars%21in%3Fattributes");
    assert_eq!(render("", "{stream}", "../../etc/passwd"), "%2E.%2F..%2Fetc%2Fpasswd");
    assert_eq!(render("", "x/{stream}", ".."), "x/%2E.");
    assert_eq!(render("", "{stream}", "/abs"), "%2Fabs");
    assert_eq!(render("", "{stream}", "_sdc"), "%5Fsdc", "a folder starting with _ is hidden from Hive readers");
    assert_eq!(render("", "x{stream}", "_sdc"), "x_sdc", "not at a folder start: kept");
    assert_eq!(render("", "{stream}", "用户"), "用户");
    assert_eq!(render("", "{stream}", "Ünïcode"), "Ünïcode");
    assert_eq!(render("", "{stream}", "a b%2F=\n"), "a%20b%252F%3D%0A");
    assert_eq!(render("", "{stream}", "a\u{2215}b"), "a%E2%88%95b");
    assert_eq!(render("", "{stream}", ""), "%5F_HIVE_DEFAULT_PARTITION__");
    check_key(&render("", "{stream}", "..")).unwrap();
}

#[test]
fn distinct_values_render_distinct_text() {
    let names = [
        "a/b",
        "a_b",
        "a b",
        "a%2Fb",
        "用户",
        "订单",
        "__",
        "_",
        ".",
        "..",
        "a.b",
        "A/B",
        "a=b",
        "a~b",
        "",
        "__HIVE_DEFAULT_PARTITION__",
        "_HIVE_DEFAULT_PARTITION__",
    ];
    let rendered: std::collections::HashSet<String> = names.iter().map(|n| escaped(n)).collect();
    assert_eq!(rendered.len(), names.len(), "{rendered:?}");
}

#[test]
fn long_values_are_cut_with_a_hash() {
    let long = "é".repeat(400);
    let a = escaped(&long);
    let b = escaped(&format!("{long}x"));
    assert!(a.len() <= 200 && b.len() <= 200, "{}", a.len());
    assert_ne!(a, b);
    assert!(a.contains('~'));
    assert_eq!(escaped(&"x".repeat(200)), "x".repeat(200), "up to the limit: whole");
}

#[test]
fn errors_name_setting_position_and_valid_macros() {
    let p = |prefix: &str, t: &str| KeyTemplate::parse(prefix, t, &ParseOptions::default()).unwrap_err().to_string();
    let e = p("", "{stream}/{bogus}");
    assert!(e.contains("key_template") && e.contains("position 9") && e.contains("{run_id}"), "{e}");
    assert!(p("", "{stream").contains("unclosed"));
    assert!(p("", "stream}").contains("without a matching"));
    assert!(p("", "{year:%Y}").contains("takes no format"));
    assert!(p("", "{now:%Q}").contains("strftime"));
    assert!(p("", "{now}").contains("needs a strftime format"));
    assert!(p("", "{record.}").contains("field name"));
    assert!(p("{nope}", "{stream}").contains("`prefix`"));
    assert!(p("", "../{stream}").contains("`..`"));
    assert!(p("a//b", "{stream}").contains("empty"));
    assert!(p("", "/{stream}").contains("empty"));
    assert!(p("", "{stream}/").contains("empty"));
    assert!(p("", "{stream}//{part}").contains("empty"));
}

#[test]
fn unrenderable_formats_are_refused_at_parse_time() {
    let p = |t: &str| KeyTemplate::parse("", t, &ParseOptions::default()).map(|_| ()).map_err(|e| e.to_string());
    assert!(p("{now:%#z}").unwrap_err().contains("strftime"));
    assert!(p("{record.a:%#z}").unwrap_err().contains("strftime"));
    assert!(p("{record.a:%z}").is_err(), "record values have no zone");
    assert!(p("{cursor:%Z}").is_err());
    p("{now:%z}").unwrap();
    p("{record.a:%Y-%m-%dT%H:%M:%S%.f}").unwrap();
}

#[test]
fn uniqueness_names_what_makes_keys_differ() {
    let u = |t: &str, utc: bool| parse("", t).uniqueness(utc);
    let full = Uniqueness { by_stream: true, within_run: true, across_runs: true };
    assert_eq!(u(crate::settings::DEFAULT_KEY_TEMPLATE, true), full);
    assert_eq!(u("{stream_id}/{uuid}", false), full);
    assert_eq!(u("{stream_run_id}-{part}", false), full);
    assert!(!u("{run_id}-{part}.{extension}", true).by_stream);
    assert!(!u("{stream}/{date_time}-{record.a}", true).within_run);
    assert!(!u("{stream}/{second}-{part}", true).across_runs);
    assert!(!u("{stream}/{hour}{minute}{second}-{part}", true).across_runs);
    assert!(u("{stream}/{timestamp}-{part}", true).across_runs);
    assert!(!u("{stream}/{timestamp}-{part}", false).across_runs, "local times repeat at DST");
    assert!(u("{stream}/{iso_date_time}-{part}", false).across_runs, "carries its offset");
    assert!(u("{stream}/{epoch}-{part}", false).across_runs);
}

#[test]
fn unsafe_keys_are_rejected() {
    assert!(check_key("/abs").is_err());
    assert!(check_key("a/../b").is_err());
    assert!(check_key("a//b").is_err());
    assert!(check_key("a/b.jsonl").is_ok());
}

#[test]
fn the_text_of_hives_null_is_not_null() {
    assert_eq!(escaped("__HIVE_DEFAULT_PARTITION__"), "%5F%5FHIVE_DEFAULT_PARTITION__");
    assert_eq!(escaped(""), "%5F_HIVE_DEFAULT_PARTITION__");
    let mut mid = String::from("dt=");
    push_escaped(&mut mid, "__HIVE_DEFAULT_PARTITION__");
    assert_eq!(mid, "dt=%5F%5FHIVE_DEFAULT_PARTITION__");
}

#[test]
fn long_segments_fit_file_systems_and_stay_distinct() {
    let name = |stream: &str, part: u64| {
        fit_segments(format!("s/{stream}-2026_11_29_10_00_00-019aa6d2-6c4e-7f32-b1a0-55e8c1d2a3f4-{part:05}.jsonl.gz"))
    };
    let long = "用".repeat(62);
    let (a, b) = (name(&escaped(&long), 0), name(&escaped(&long), 1));
    assert_ne!(a, b, "the part number survives in the hash");
    for key in [&a, &b] {
        assert!(key.split('/').all(|s| s.len() <= MAX_SEGMENT_BYTES), "{key}");
        check_key(key).unwrap();
    }
    assert_eq!(fit_segments("a/b.jsonl".into()), "a/b.jsonl");
    // Never ends inside an escape.
    let escapes = fit_segments(format!("x/{}", "%E7%94%A8".repeat(40)));
    let cut = escapes.split('/').nth(1).unwrap().split('~').next().unwrap();
    assert!(cut.len().is_multiple_of(9), "{cut}");
    // A multi-byte character (from a literal, never escaped) just before the cut point:
    // found by the template fuzz target, which once panicked slicing inside it.
    for pad in 0..4 {
        let segment = format!("{}{}{}", "a".repeat(218 + pad), "é".repeat(20), "%25".repeat(10));
        let fitted = fit_segments(format!("x/{segment}"));
        assert!(fitted.split('/').all(|s| s.len() <= MAX_SEGMENT_BYTES), "{fitted}");
    }
}

#[test]
fn version_roots_name_the_stream_as_a_whole_folder() {
    let root = |t: &str| parse("lake", t).version_root_skeleton();
    assert_eq!(root("{stream}/{table_version}/{part}").as_deref(), Some("lake/{stream}/"));
    assert_eq!(root("raw/{stream}/v/{table_version}/{run_id}-{part}").as_deref(), Some("lake/raw/{stream}/v/"));
    assert_eq!(root("{stream}x/{table_version}/{part}"), None, "{{stream}}x is not a whole folder");
    assert_eq!(root("{stream_id}/{table_version}/{part}"), None, "a hash can be made to collide");
    assert_eq!(root("{stream}/{stream}/{table_version}/{part}"), None, "one stream folder");
    assert_eq!(root("{stream}/{table_version}x/{part}"), None, "the version is a whole folder");
}

#[test]
fn version_shapes_match_only_the_templates_own_keys() {
    let t = parse("", "{stream}/{table_version}/{iso_date}/{stream}-{timestamp}-{run_id}-{part}.{extension}");
    let shape = t.version_shape(&run(), &file("users", None));
    assert!(shape.matches("/2025-01-02/users-2025_01_02_00_00_00-019a-00000.jsonl.gz"));
    assert!(shape.matches("/2025-01-02/users-2025_01_02_00_00_00-r-1-00012.csv"));
    assert!(!shape.matches("/users-2025_01_02_00_00_00-r-00000.jsonl"), "one folder less");
    assert!(!shape.matches("/2025-01-02/x/users-a-b-c.jsonl"), "one folder more");
    assert!(!shape.matches("/2025-01-02/orders-a-b-c.jsonl"), "another stream's name");
    assert!(!shape.matches("/2025-01-02/README.txt"));
    let dated = parse("", "{stream}/{table_version}/{now:%Y/%m}/{run_id}-{part}.{extension}");
    let shape = dated.version_shape(&run(), &file("s", None));
    assert!(shape.matches("/2025/01/r-00000.jsonl"));
    assert!(!shape.matches("/2025/r-00000.jsonl"));
}

#[test]
fn formats_that_make_empty_folders_are_refused() {
    let p = |t: &str| KeyTemplate::parse("", t, &ParseOptions::default()).map(|_| ()).map_err(|e| e.to_string());
    for t in ["{now:%Y//%m}", "{now:/%Y}", "{now:%Y/}", "{now:}", "{record.d:}", "{cursor:}", "{record.d:%.f}"] {
        let e = p(&format!("{{stream}}/{t}/{{part}}")).unwrap_err();
        assert!(e.contains("empty") && e.contains("key_template"), "{t}: {e}");
    }
    p("{stream}/{now:%Y/%m}/{record.d:%Y-%m-%dT%H%M%S%.f}/{part}").unwrap();
}

/// Delta partition folders: every value in ASCII (`object_store` cannot address raw non-ASCII
/// keys), distinct values distinct folders, and the value reads back from its folder.
#[test]
fn uri_safe_values_round_trip_and_need_no_encoding() {
    use proptest::prelude::*;
    let check = |value: &str| {
        let mut out = String::from("country=");
        push_escaped_ascii(&mut out, value);
        let text = &out["country=".len()..];
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._%".contains(&b)), "{value:?} -> {text:?}");
        if value.is_empty() {
            assert_eq!(text, NULL_VALUE);
        } else {
            assert_eq!(unescape_ascii(text).as_deref(), Some(value), "{text:?}");
        }
    };
    for v in ["", "a/b", "東京", "x%y", "~", "~7E", "__HIVE_DEFAULT_PARTITION__", ".dot", "_u", "a=b", " "] {
        check(v);
    }
    let mut marker = String::from("c=");
    push_escaped_ascii(&mut marker, NULL_VALUE);
    assert_ne!(&marker[2..], NULL_VALUE, "the marker's text is not null");
    proptest!(ProptestConfig::with_cases(2000), |(value in "\\PC{0,40}")| check(&value));
    // As a template's record values: the folder of a file, `~XX` for everything else.
    let t = parse("", "t/c={record.c}/d={record.at:%Y-%m-%dT%H}/{part}").with_ascii_values();
    let key = t.render(&run(), &file("s", Some(r#"{"c": "a/b ü", "at": "2024-01-05T13:14:00+01:00"}"#))).with_part(0);
    assert_eq!(key, "t/c=a%2Fb%20%C3%BC/d=2024-01-05T12/00000");
}
