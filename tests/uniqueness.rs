//! "Never overwrite, never delete what is not ours": every way a key could repeat or a deletion
//! could reach another stream's data, each on the local folder and on the local S3 server. A
//! run that could lose data must either keep every record or fail before printing a STATE
//! for it; none may exit 0 with records gone.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};

/// Where a test writes: the same assertions run on both destinations.
enum Dest {
    Local(tempfile::TempDir),
    S3(String),
}

impl Dest {
    fn both(name: &str) -> [Dest; 2] {
        [Dest::Local(tempfile::tempdir().unwrap()), Dest::S3(s3().bucket(name))]
    }

    fn config(&self, extra: Value) -> Value {
        let base = json!({"log_level": "warn", "compression": "none", "run_id": "r1"});
        let mut c = match self {
            Dest::Local(dir) => {
                let mut c = base;
                c["local_path"] = json!(dir.path());
                c
            }
            Dest::S3(bucket) => s3().config(bucket, base),
        };
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        c
    }

    /// Every object key (manifests included), sorted.
    fn keys(&self) -> Vec<String> {
        match self {
            Dest::Local(dir) => all_files(dir.path()).iter().map(|p| p.to_str().unwrap().to_string()).collect(),
            Dest::S3(bucket) => s3().list_all(bucket).into_iter().map(|(k, _)| k).collect(),
        }
    }

    fn data_keys(&self) -> Vec<String> {
        self.keys().into_iter().filter(|k| !k.starts_with("_manifests/")).collect()
    }

    fn read(&self, key: &str) -> Vec<u8> {
        match self {
            Dest::Local(dir) => read(&dir.path().join(key)),
            Dest::S3(bucket) => s3().get(bucket, key),
        }
    }

    /// Record text per stream, read back from every data object (JSONL, no compression).
    fn records(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in self.data_keys() {
            let stream = unescape(key.split('/').next().unwrap());
            for line in String::from_utf8(self.read(&key)).unwrap().lines() {
                out.entry(stream.clone()).or_default().push(line.to_string());
            }
        }
        out
    }

    fn manifest(&self) -> Value {
        let key = self.keys().into_iter().find(|k| k.starts_with("_manifests/")).expect("a manifest");
        serde_json::from_slice(&self.read(&key)).unwrap()
    }

    fn name(&self) -> &'static str {
        match self {
            Dest::Local(_) => "local",
            Dest::S3(_) => "s3",
        }
    }
}

fn schema(stream: &str) -> String {
    json!({"type": "SCHEMA", "stream": stream, "schema": {"properties": {"id": {"type": "integer"}, "a": {"type": ["null", "string"]}, "b": {"type": ["null", "string"]}}}, "key_properties": ["id"]}).to_string()
}

fn record(stream: &str, id: i64, extra: Value) -> String {
    let mut r = json!({"id": id});
    r.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    json!({"type": "RECORD", "stream": stream, "record": r}).to_string()
}

fn lines(lines: &[String]) -> String {
    lines.join("\n") + "\n"
}

/// Streams whose names once cleaned up to the same text (`用户`/`订单` both became `__`;
/// `a/b`, `a_b`, `a b` all became `a_b`) each keep their own folder and every record.
#[test]
fn stream_names_that_once_sanitised_alike_keep_their_own_files() {
    let streams = ["用户", "订单", "a/b", "a_b", "a b", "/abs", "_x", ".hidden"];
    let mut input = Vec::new();
    for (i, s) in streams.iter().enumerate() {
        input.push(schema(s));
        input.push(record(s, i as i64, json!({})));
    }
    input.push(r#"{"type":"STATE","value":{"done":true}}"#.to_string());
    for dest in Dest::both("stream-names") {
        let r = run(&dest.config(json!({})), &lines(&input));
        assert_eq!(r.code, 0, "{}: {}", dest.name(), r.stderr);
        assert_eq!(r.stdout, [r#"{"done":true}"#]);
        let records = dest.records();
        for (i, s) in streams.iter().enumerate() {
            assert_eq!(
                records.get(*s),
                Some(&vec![format!(r#"{{"id":{i}}}"#)]),
                "{}: {s:?} in {records:?}",
                dest.name()
            );
        }
        // No folder is hidden from Hive-convention readers, none climbs out.
        for key in dest.data_keys() {
            assert!(key.split('/').all(|seg| !seg.starts_with(['_', '.'])), "{}: {key}", dest.name());
        }
        let manifest = dest.manifest();
        let keys: Vec<&str> =
            manifest["objects"].as_array().unwrap().iter().map(|o| o["key"].as_str().unwrap()).collect();
        let unique: std::collections::HashSet<&&str> = keys.iter().collect();
        assert_eq!((keys.len(), unique.len()), (streams.len(), streams.len()), "{keys:?}");
    }
}

/// A template without a stream macro is refused at start-up, also as a `*` override; with
/// `allow_overwrite` the run still keeps every file (`{part}` counts per rendered key).
#[test]
fn templates_without_a_stream_are_refused_and_never_share_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let dest = Dest::Local(dir);
    let input = lines(&[schema("a"), record("a", 1, json!({})), schema("b"), record("b", 2, json!({}))]);
    for extra in [
        json!({"key_template": "{run_id}-{part}.{extension}"}),
        json!({"key_template": "data/{date_time}-{part}.{extension}"}),
        json!({"stream_overrides": {"*": {"key_template": "{run_id}-{part}.{extension}"}}}),
    ] {
        let r = run(&dest.config(extra.clone()), &input);
        assert_eq!(r.code, 2, "{extra}: {}", r.stderr);
        let last = r.stderr.lines().last().unwrap();
        assert!(last.contains("{stream}") && last.contains("allow_overwrite"), "{last}");
        assert!(dest.keys().is_empty());
    }
    for dest in Dest::both("no-stream") {
        let r =
            run(&dest.config(json!({"key_template": "{run_id}-{part}.{extension}", "allow_overwrite": true})), &input);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(dest.data_keys(), ["r1-00000.jsonl", "r1-00001.jsonl"], "{}", dest.name());
        let all: Vec<String> = dest
            .data_keys()
            .iter()
            .flat_map(|k| String::from_utf8(dest.read(k)).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        assert_eq!(all.len(), 2, "{}: {all:?}", dest.name());
    }
}

/// An override for one exact stream name may leave `{stream}` out: its stream is fixed.
#[test]
fn an_exact_stream_override_names_its_stream() {
    let dest = Dest::Local(tempfile::tempdir().unwrap());
    let config = dest
        .config(json!({"stream_overrides": {"public-orders": {"key_template": "orders/{run_id}-{part}.{extension}"}}}));
    let r = run(&config, &lines(&[schema("public-orders"), record("public-orders", 1, json!({}))]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(dest.data_keys(), ["orders/r1-00000.jsonl"]);
}

/// Record values that concatenate into the same text (`x-`+`y` and `x`+`-y` both render
/// `x--y`) land in two files, not one replacing the other.
#[test]
fn record_values_that_render_alike_get_their_own_files() {
    let input = lines(&[
        schema("s"),
        record("s", 1, json!({"a": "x-", "b": "y"})),
        record("s", 2, json!({"a": "x", "b": "-y"})),
        r#"{"type":"STATE","value":{"s":2}}"#.to_string(),
    ]);
    for dest in Dest::both("concat") {
        let r = run(
            &dest.config(json!({"key_template": "{stream}/{record.a}-{record.b}/{run_id}-{part}.{extension}"})),
            &input,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(dest.data_keys(), ["s/x--y/r1-00000.jsonl", "s/x--y/r1-00001.jsonl"], "{}", dest.name());
        let mut all: Vec<String> = dest.records().remove("s").unwrap();
        all.sort();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(r.stdout, [r#"{"s":2}"#]);
    }
}

/// A second run that repeats the first run's keys (same `run_id`, a template without a
/// per-run token is refused, so the run id is what repeats): the store refuses to replace the
/// first run's objects (`If-None-Match: *` on S3, a no-replace rename locally), the run fails
/// with one line naming the key, prints no STATE, and the first run's data is intact.
#[test]
fn the_store_refuses_to_replace_an_earlier_runs_object() {
    let first = lines(&[schema("s"), record("s", 1, json!({})), r#"{"type":"STATE","value":{"s":1}}"#.to_string()]);
    let second = lines(&[schema("s"), record("s", 2, json!({})), r#"{"type":"STATE","value":{"s":2}}"#.to_string()]);
    for dest in Dest::both("no-replace") {
        let config =
            dest.config(json!({"key_template": "{stream}/{run_id}-{part}.{extension}", "write_manifest": false}));
        assert_eq!(run(&config, &first).code, 0);
        let r = run(&config, &second);
        assert_eq!(r.code, 1, "{}: {}", dest.name(), r.stderr);
        let last = r.stderr.lines().last().unwrap();
        assert!(
            last.starts_with("target-s3: error:")
                && last.contains("already exists")
                && last.contains("s/r1-00000.jsonl"),
            "{}: {last}",
            dest.name()
        );
        assert!(r.stdout.is_empty(), "no STATE: {:?}", r.stdout);
        assert_eq!(dest.data_keys(), ["s/r1-00000.jsonl"], "{}", dest.name());
        assert_eq!(dest.read("s/r1-00000.jsonl"), b"{\"id\":1}\n", "{}: the first run's object is intact", dest.name());
        // With allow_overwrite the user chose replacement.
        let r = run(&dest.config(json!({"key_template": "{stream}/{run_id}-{part}.{extension}", "write_manifest": false, "allow_overwrite": true})), &second);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(dest.read("s/r1-00000.jsonl"), b"{\"id\":2}\n");
    }
}

/// The same refusal for a multipart upload: CompleteMultipartUpload carries If-None-Match too,
/// and the refused upload is aborted (no billed parts left).
#[test]
fn a_multipart_upload_does_not_replace_an_object_either() {
    let s3 = s3();
    let bucket = s3.bucket("no-replace-mpu");
    let mut input = vec![schema("s")];
    let payload = "p".repeat(1000);
    for i in 0..6000 {
        input.push(record("s", i, json!({"a": format!("{i}{payload}")})));
    }
    let input = lines(&input);
    let config = s3.config(&bucket, json!({"compression": "none", "run_id": "r1", "write_manifest": false, "key_template": "{stream}/{run_id}-{part}.{extension}", "part_size": 5 * 1024 * 1024}));
    assert_eq!(run(&config, &input).code, 0);
    let before = s3.get(&bucket, "s/r1-00000.jsonl");
    assert!(before.len() > 5 * 1024 * 1024);
    let r = run(&config, &input.replace("\"id\":0,", "\"id\":0,\"b\":\"second run\","));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.lines().last().unwrap().contains("already exists"), "{}", r.stderr);
    assert_eq!(s3.get(&bucket, "s/r1-00000.jsonl"), before, "the first run's object is intact");
    assert_eq!(s3.multipart_uploads(&bucket), 0, "the refused upload was aborted");
}

/// `--check` says whether the store itself refuses to replace objects.
#[test]
fn the_connection_check_reports_conditional_writes() {
    let s3 = s3();
    let bucket = s3.bucket("check-conditional");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, s3.config(&bucket, json!({})).to_string()).unwrap();
    let r = run_args(&["--config", cfg.to_str().unwrap(), "--check"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.iter().any(|l| l.starts_with("ok") && l.contains("If-None-Match") && l.contains("yes")),
        "{:?}",
        r.stdout
    );
    assert!(s3.list_all(&bucket).is_empty());
}

fn versioned(stream: &str, version: u64, ids: &[i64]) -> Vec<String> {
    let mut v = vec![schema(stream)];
    for id in ids {
        v.push(format!(r#"{{"type":"RECORD","stream":{},"record":{{"id":{id}}},"version":{version}}}"#, json!(stream)));
    }
    v
}

fn activate(stream: &str, version: u64) -> String {
    format!(r#"{{"type":"ACTIVATE_VERSION","stream":{},"version":{version}}}"#, json!(stream))
}

/// hard_delete only deletes the activating stream's own older versions: a template with the
/// version before the stream is refused, and streams whose names once sanitised alike (`a/b`,
/// `a_b`) or share a prefix (`a`, `ab`) keep each other's versions.
#[test]
fn hard_delete_never_reaches_another_stream() {
    let dest = Dest::Local(tempfile::tempdir().unwrap());
    let config = dest.config(json!({"activate_version_mode": "folder", "hard_delete": true, "key_template": "{table_version}/{stream}/{run_id}-{part}.{extension}"}));
    let r = run(&config, &lines(&versioned("a", 1, &[1])));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("hard_delete") && r.stderr.contains("{stream}"), "{}", r.stderr);

    for dest in Dest::both("hard-delete-streams") {
        let config = |run_id: &str| {
            dest.config(json!({"activate_version_mode": "folder", "hard_delete": true, "run_id": run_id, "write_manifest": false}))
        };
        let mut first = Vec::new();
        for s in ["a/b", "a_b", "a", "ab"] {
            first.extend(versioned(s, 100, &[1]));
            first.push(activate(s, 100));
        }
        assert_eq!(run(&config("r1"), &lines(&first)).code, 0);
        let mut second = versioned("a_b", 200, &[2]);
        second.push(activate("a_b", 200));
        second.extend(versioned("a", 200, &[2]));
        second.push(activate("a", 200));
        let r = run(&config("r2"), &lines(&second));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let records = dest.records();
        assert_eq!(records["a/b"], [r#"{"id":1}"#], "{}: untouched", dest.name());
        assert_eq!(records["ab"], [r#"{"id":1}"#], "{}: untouched", dest.name());
        assert_eq!(records["a_b"], [r#"{"id":2}"#], "{}: version 100 deleted", dest.name());
        assert_eq!(records["a"], [r#"{"id":2}"#], "{}: version 100 deleted", dest.name());
    }
}

/// The last ACTIVATE_VERSION of a run wins even when versions fall (10000 then 9000), and files
/// written after an ACTIVATE_VERSION are never deleted by it.
#[test]
fn hard_delete_keeps_the_version_activated_last() {
    for dest in Dest::both("hard-delete-falling") {
        let config =
            dest.config(json!({"activate_version_mode": "folder", "hard_delete": true, "write_manifest": false}));
        let mut input = versioned("s", 10000, &[1]);
        input.push(activate("s", 10000));
        input.extend(versioned("s", 9000, &[2]).into_iter().skip(1));
        input.push(activate("s", 9000));
        input.push(r#"{"type":"STATE","value":{"s":"done"}}"#.to_string());
        let r = run(&config, &lines(&input));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout, [r#"{"s":"done"}"#]);
        let keys = dest.data_keys();
        assert!(keys.iter().all(|k| k.starts_with("s/9000/")), "{}: {keys:?}", dest.name());
        assert_eq!(dest.records()["s"], [r#"{"id":2}"#], "{}", dest.name());

        // Records of an older version that arrive after the activation are kept.
        let dest2 = Dest::Local(tempfile::tempdir().unwrap());
        let mut input = versioned("s", 500, &[1]);
        input.push(activate("s", 500));
        input.extend(versioned("s", 400, &[9]).into_iter().skip(1));
        let r = run(
            &dest2.config(json!({"activate_version_mode": "folder", "hard_delete": true, "write_manifest": false})),
            &lines(&input),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut ids = dest2.records().remove("s").unwrap();
        ids.sort();
        assert_eq!(ids, [r#"{"id":1}"#, r#"{"id":9}"#]);
    }
}

/// A config meant for S3 whose bucket is missing or misspelt never loads into the local
/// folder: unknown settings and variables are errors with a suggestion, S3 settings without a
/// bucket are an error naming them.
#[test]
fn a_missing_or_misspelt_bucket_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = lines(&[schema("s"), record("s", 1, json!({})), r#"{"type":"STATE","value":{"s":1}}"#.to_string()]);
    let local = dir.path().join("output");
    let base = json!({"local_path": local, "region": "eu-west-1", "aws_access_key_id": "AK", "aws_secret_access_key": "SK", "prefix": "p"});
    let mut typo = base.clone();
    typo["bukcet"] = json!("my-bucket");
    let r = run(&typo, &input);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains("`bukcet`") && last.contains("did you mean `bucket`"), "{last}");
    let r = run(&base, &input);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap();
    assert!(last.contains("`bucket`") && last.contains("region") && last.contains("aws_access_key_id"), "{last}");
    assert!(!local.exists(), "nothing written locally");
    assert!(r.stdout.is_empty());

    // The same through --config ENV.
    let out = std::process::Command::new(BIN)
        .args(["--config", "ENV"])
        .env("TARGET_S3_BUKET", "my-bucket")
        .env("TARGET_S3_REGION", "eu-west-1")
        .env("TARGET_S3_LOCAL_PATH", &local)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TARGET_S3_BUKET") && stderr.contains("TARGET_S3_BUCKET"), "{stderr}");

    // Only upper-case names are read: a lower-case one is named, not ignored.
    let out = std::process::Command::new(BIN)
        .args(["--config", "ENV"])
        .env("TARGET_S3_bucket", "my-bucket")
        .env("TARGET_S3_LOCAL_PATH", &local)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TARGET_S3_bucket") && stderr.contains("TARGET_S3_BUCKET"), "{stderr}");

    // Meltano's extras (TARGET_S3__*) are not ours to judge; allow_unknown_settings accepts typos.
    let mut lenient = typo.clone();
    lenient["allow_unknown_settings"] = json!(true);
    lenient["destination"] = json!("local");
    let r = run(&lenient, &input);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("bukcet"), "warned: {}", r.stderr);
}

/// Partial or zone-local load times are not accepted as what makes runs differ, and the
/// manifest key must differ per run too.
#[test]
fn partial_and_local_times_do_not_make_keys_unique() {
    let dir = tempfile::tempdir().unwrap();
    let dest = Dest::Local(dir);
    let input = lines(&[schema("s"), record("s", 1, json!({}))]);
    for extra in [
        json!({"key_template": "{stream}/{second}-{part}.{extension}"}),
        json!({"key_template": "{stream}/{hour}{minute}{second}-{part}.{extension}"}),
        json!({"key_template": "{stream}/{timestamp}-{part}.{extension}", "timezone": "Europe/Berlin"}),
        json!({"manifest_key_template": "_manifests/latest.json"}),
        json!({"manifest_key_template": "_manifests/{date}.json"}),
    ] {
        let r = run(&dest.config(extra.clone()), &input);
        assert_eq!(r.code, 2, "{extra}: {}", r.stderr);
        assert!(r.stderr.contains("allow_overwrite"), "{extra}: {}", r.stderr);
    }
    // (no fixed run_id: runs in one second would share the manifest key, and the second is refused)
    for extra in [
        json!({"key_template": "{stream}/{timestamp}-{part}.{extension}", "run_id": null}),
        json!({"key_template": "{stream}/{iso_date_time}-{part}.{extension}", "timezone": "Europe/Berlin", "run_id": null}),
        json!({"key_template": "{stream}/{epoch}-{part}.{extension}", "timezone": "Europe/Berlin", "run_id": null}),
    ] {
        let r = run(&dest.config(extra.clone()), &input);
        assert_eq!(r.code, 0, "{extra}: {}", r.stderr);
    }
}

/// The manifest is a key of the run like any other: it never takes a data file's key.
#[test]
fn the_manifest_never_takes_a_data_key() {
    let dest = Dest::Local(tempfile::tempdir().unwrap());
    let config = dest.config(json!({
        "manifest_key_template": "m/{run_id}-{part}.json",
        "stream_overrides": {"s": {"key_template": "m/{run_id}-{part}.json"}},
    }));
    let r = run(&config, &lines(&[schema("s"), record("s", 1, json!({}))]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(dest.keys(), ["m/r1-00000.json", "m/r1-00001.json"]);
    assert_eq!(dest.read("m/r1-00000.json"), b"{\"id\":1}\n");
    let manifest: Value = serde_json::from_slice(&dest.read("m/r1-00001.json")).unwrap();
    assert_eq!(manifest["objects"][0]["key"], "m/r1-00000.json");
}

/// `_SUCCESS` markers are empty and the same for every run: a later run's marker replaces the
/// earlier one instead of failing the run (data objects still never are replaced).
#[test]
fn success_markers_of_later_runs_replace_earlier_ones() {
    let input = lines(&[schema("s"), record("s", 1, json!({})), r#"{"type":"STATE","value":{"s":1}}"#.to_string()]);
    for dest in Dest::both("markers") {
        for run_id in ["a", "b"] {
            let r = run(&dest.config(json!({"write_success_marker": true, "run_id": run_id})), &input);
            assert_eq!(r.code, 0, "{}: {}", dest.name(), r.stderr);
            assert_eq!(r.stdout, [r#"{"s":1}"#]);
        }
        let keys = dest.data_keys();
        assert_eq!(keys.iter().filter(|k| k.ends_with("/_SUCCESS")).count(), 1, "{keys:?}");
        assert_eq!(keys.iter().filter(|k| k.ends_with(".jsonl")).count(), 2, "{keys:?}");
    }
}

/// hard_delete deletes only objects of the activating stream's own key shape: numeric folders
/// another template made (`{year}`), other files beside the version folders, and streams whose
/// templates would put version folders elsewhere are never touched (the latter refused).
#[test]
fn hard_delete_touches_only_its_own_key_shape() {
    let dest = Dest::Local(tempfile::tempdir().unwrap());
    let first = lines(&[schema("users"), record("users", 1, json!({}))]);
    let r = run(
        &dest.config(json!({"key_template": "{stream}/{year}/{month}/{run_id}-{part}.{extension}", "run_id": "y"})),
        &first,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut sync = versioned("users", 1_700_000_000_000, &[2]);
    sync.push(activate("users", 1_700_000_000_000));
    let config = dest.config(json!({"activate_version_mode": "folder", "hard_delete": true, "write_manifest": false}));
    let r = run(&config, &lines(&sync));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut ids = dest.records().remove("users").unwrap();
    ids.sort();
    assert_eq!(ids, [r#"{"id":1}"#, r#"{"id":2}"#], "the {{year}} folder is not a version: kept");

    // Templates that would nest one stream's version folders in another's are refused.
    for overrides in [
        json!({"b": {"key_template": "{stream}x/{table_version}/{run_id}-{part}.{extension}"}}),
        json!({"a": {"key_template": "{stream}/{table_version}/{run_id}-{part}.{extension}"}}),
    ] {
        let config = dest.config(json!({
            "activate_version_mode": "folder", "hard_delete": true,
            "key_template": "a/{stream}/{table_version}/{run_id}-{part}.{extension}", "stream_overrides": overrides,
        }));
        let r = run(&config, &lines(&versioned("a", 1, &[1])));
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("hard_delete"), "{}", r.stderr);
    }
}
