//! What happens after files close: the manifest's entries (and the Singer SDK's METRIC lines)
//! as files become durable, ACTIVATE_VERSION bookkeeping and `hard_delete` decisions, and at the
//! end of the run the `_SUCCESS` markers and the manifest itself. Decisions only: the objects
//! are written and deleted by the writer thread.

/// Lookups by file id: a fast, non-cryptographic hasher.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::collections::BTreeMap;

use super::files::Closed;
use super::router::StreamSpec;
use crate::ack::FileId;
use crate::config::Config;
use crate::keys::{FileContext, ObjectKey, RenderedKey, RunContext};

/// The run's manifest file.
#[derive(serde::Serialize)]
struct Manifest<'a> {
    compression: &'static str,
    early_closes: u64,
    finished_at: String,
    format: &'static str,
    null_items: &'a BTreeMap<String, BTreeMap<String, u64>>,
    objects: Vec<&'a ManifestEntry>,
    records: u64,
    rejected_records: u64,
    run_id: &'a str,
    started_at: String,
    table_versions: &'a BTreeMap<String, String>,
    variables: &'a BTreeMap<String, String>,
}

/// One object of the run, as the manifest lists it.
#[derive(serde::Serialize, Debug, Clone)]
pub struct ManifestEntry {
    pub key: ObjectKey,
    pub stream: String,
    /// The object's own format and compression (`stream_overrides` may differ per stream).
    pub format: &'static str,
    pub compression: &'static str,
    pub records: u64,
    pub bytes: u64,
    /// CRC32 of the stored bytes, hex.
    pub crc32: String,
    /// The file's cursor range, numbers digit for digit as the tap sent them.
    pub min_cursor: Option<Box<serde_json::value::RawValue>>,
    pub max_cursor: Option<Box<serde_json::value::RawValue>>,
    pub schema_hash: String,
    /// Values written as null because they did not fit their column (`unparseable_values: null`).
    #[serde(skip_serializing_if = "is_zero")]
    pub unparseable_values: u64,
    /// Numbers a float column rounded, per field (Parquet and Avro `double` columns).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub lossy_values: BTreeMap<String, u64>,
    /// Properties outside the schema the format had no place for (not JSONL/JSON).
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_properties: u64,
    /// A dead-letter file: records that broke their schema (`invalid_records: dead_letter`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rejected: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl serde::Serialize for ObjectKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A `hard_delete` the writer thread should run: under `root`, the objects `delete` selects.
pub struct Deletion {
    /// The ACTIVATE_VERSION's input line: STATEs after it wait for the deletion.
    pub line: u64,
    pub stream: String,
    pub root: String,
    pub delete: Box<dyn Fn(&ObjectKey) -> bool + Send>,
}

#[derive(Default)]
pub struct Totals {
    pub records: u64,
    /// Records written to dead-letter files.
    pub rejected: u64,
    /// Files closed before their limits to stay within max_open_files / max_open_bytes.
    pub early_closes: u64,
    pub files: u64,
    pub bytes: u64,
}

pub struct Finisher<'a> {
    config: &'a Config,
    /// What the manifest will say about files in flight, and about files written.
    in_flight: HashMap<FileId, ManifestEntry>,
    written: Vec<ManifestEntry>,
    /// ACTIVATE_VERSION per stream, for the manifest.
    versions: BTreeMap<String, String>,
    /// `hard_delete`: (input line, stream, version) of ACTIVATE_VERSIONs whose older versions
    /// are deleted once the files before that line are durable.
    pending: Vec<(u64, String, i128)>,
    /// `hard_delete`: versions each stream activated in this run, with their input lines.
    activations: HashMap<String, Vec<(u64, i128)>>,
    /// `hard_delete`: the input line at which each of this run's data files opened, so a
    /// deletion never reaches a file written after its ACTIVATE_VERSION.
    opened_at: HashMap<ObjectKey, u64>,
    pub totals: Totals,
}

impl<'a> Finisher<'a> {
    pub fn new(config: &'a Config) -> Finisher<'a> {
        Finisher {
            config,
            in_flight: HashMap::default(),
            written: Vec::new(),
            versions: BTreeMap::new(),
            pending: Vec::new(),
            activations: HashMap::default(),
            opened_at: HashMap::default(),
            totals: Totals::default(),
        }
    }

    pub fn file_closed(&mut self, closed: Closed) {
        if self.config.hard_delete {
            self.opened_at.insert(closed.entry.key.clone(), closed.opened_line);
        }
        self.in_flight.insert(closed.id, closed.entry);
    }

    /// What the manifest will say about a file still in flight.
    #[cfg(feature = "delta")]
    pub fn in_flight(&self, id: FileId) -> Option<&ManifestEntry> {
        self.in_flight.get(&id)
    }

    /// A data file is durable: log it and the Singer SDK's counters, remember it for the
    /// manifest. Extra objects (markers, the manifest) are not in flight here and pass through.
    pub fn file_durable(&mut self, id: FileId, key: &ObjectKey, bytes: u64, crc32: u32) {
        let Some(mut entry) = self.in_flight.remove(&id) else {
            tracing::info!(%key, bytes, "file written");
            return;
        };
        if self.config.dry_run {
            // Nothing was written: no "written" line, no byte counters.
            tracing::info!(%key, records = entry.records, "dry run: file not written");
            self.written.push(entry);
            return;
        }
        tracing::info!(%key, bytes, "file written");
        let tags = serde_json::json!({"stream": entry.stream});
        let counted = if entry.rejected { "rejected_records" } else { "record_count" };
        let counters = [
            (counted, entry.records),
            ("file_count", 1),
            ("bytes_written", bytes),
            ("unparseable_values", entry.unparseable_values),
            ("dropped_properties", entry.dropped_properties),
        ];
        let always = ["record_count", "rejected_records", "file_count", "bytes_written"];
        for (metric, value) in counters.into_iter().filter(|(m, v)| *v > 0 || always.contains(m)) {
            let metric = serde_json::json!({"type": "counter", "metric": metric, "value": value, "tags": tags});
            tracing::info!(target: "target_s3::metrics", "METRIC: {metric}");
        }
        for (field, value) in &entry.lossy_values {
            let tags = serde_json::json!({"stream": entry.stream, "field": field});
            let metric = serde_json::json!({"type": "counter", "metric": "lossy_values", "value": value, "tags": tags});
            tracing::info!(target: "target_s3::metrics", "METRIC: {metric}");
        }
        self.totals.files += 1;
        self.totals.bytes += bytes;
        entry.bytes = bytes;
        entry.crc32 = format!("{crc32:08x}");
        self.written.push(entry);
    }

    /// An ACTIVATE_VERSION on input line `line`; with `hard_delete`, the stream's older
    /// versions are deleted once the files before it are durable.
    pub fn activate_version(&mut self, stream: &str, version: &str, line: u64, known_stream: bool) {
        self.versions.insert(stream.to_string(), version.to_string());
        if !(self.config.version_folders && self.config.hard_delete && known_stream) {
            return;
        }
        match crate::schema::typed::text(version).parse::<i128>() {
            Ok(number) => {
                self.pending.push((line, stream.to_string(), number));
                self.activations.entry(stream.to_string()).or_default().push((line, number));
            }
            Err(_) => tracing::warn!(%stream, %version, "hard_delete: the version is not a number; nothing deleted"),
        }
    }

    /// The deletions whose ACTIVATE_VERSION is now covered (`covered(line)`: every file before
    /// it is durable), in input order. Deleted are, in the stream's own version folders (the
    /// stream is named before `{table_version}`, checked at start-up), the objects of versions
    /// numbered below the activated one or activated earlier in this run, and never an object
    /// this run opened after the ACTIVATE_VERSION line.
    pub fn due_deletions(
        &mut self,
        covered: impl Fn(u64) -> bool,
        stream: impl Fn(&str) -> Option<std::sync::Arc<StreamSpec<'a>>>,
        run: &RunContext,
    ) -> Vec<Deletion> {
        let mut due = Vec::new();
        while let Some(at) = self.pending.iter().position(|(line, ..)| covered(*line)) {
            let (line, name, active) = self.pending.remove(at);
            let Some(spec) = stream(&name) else { continue };
            let Some(root) = spec.output.key.version_root() else { continue };
            let root = root.render(run, &spec.file_context(None, None, None)).with_part(0);
            let shape = spec.output.key.version_shape(run, &spec.file_context(None, None, None));
            let superseded: Vec<i128> =
                self.activations[&name].iter().filter(|(at, v)| *at < line && *v != active).map(|(_, v)| *v).collect();
            let written_after: Vec<ObjectKey> =
                self.opened_at.iter().filter(|(_, opened)| **opened >= line).map(|(k, _)| k.clone()).collect();
            let prefix = root.clone();
            let delete = move |key: &ObjectKey| {
                let Some(rest) = key.as_str().strip_prefix(prefix.as_str()) else { return false };
                let Some(slash) = rest.find('/') else { return false };
                let Ok(v) = rest[..slash].parse::<i128>() else { return false };
                let older = v != active && (v < active || superseded.contains(&v));
                // Only objects this stream's template makes below a version folder.
                older && shape.matches(&rest[slash..]) && !written_after.contains(key)
            };
            due.push(Deletion { line, stream: name, root, delete: Box::new(delete) });
        }
        due
    }

    /// Objects a `hard_delete` removed: the manifest must not list them.
    pub fn deleted(&mut self, keys: &[ObjectKey]) {
        self.written.retain(|e| !keys.contains(&e.key));
    }

    /// A durable file moved from `old` to `new` (a Delta table version taken by another
    /// writer): the manifest lists it where it is.
    #[cfg(feature = "delta")]
    pub fn moved(&mut self, old: &str, new: &str) {
        for entry in self.written.iter_mut().filter(|e| e.key.as_str() == old) {
            if let Ok(key) = ObjectKey::new(new.to_string()) {
                entry.key = key;
            }
        }
    }

    /// `_SUCCESS` keys for every folder that received files.
    pub fn markers(&self) -> Vec<String> {
        let mut folders: Vec<String> = self
            .written
            .iter()
            .filter_map(|e| e.key.as_str().rsplit_once('/').map(|(f, _)| format!("{f}/_SUCCESS")))
            .collect();
        folders.sort();
        folders.dedup();
        folders
    }

    /// The manifest's key (still to be claimed) and body.
    pub fn manifest(
        &self,
        run: &RunContext,
        null_items: &BTreeMap<String, BTreeMap<String, u64>>,
    ) -> Option<(RenderedKey, Vec<u8>)> {
        let template = self.config.manifest_key.as_ref()?;
        let extension = self.config.output.extension();
        let file = FileContext {
            stream: "",
            extension: &extension,
            format: self.config.output.format.extension(),
            compression: self.config.output.compression.name(),
            stream_run_id: "",
            record: None,
            partition_date_field: None,
            cursor: None,
            table_version: None,
        };
        // In key order: objects become durable in the writer's timing, so a list in that order
        // would differ between two runs of the same input.
        let mut objects: Vec<&ManifestEntry> = self.written.iter().collect();
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        // A struct, not a `json!` value: that would turn the entries' exact cursor numbers into
        // doubles. Members in name order, as they always were.
        let manifest = Manifest {
            compression: self.config.output.compression.name(),
            early_closes: self.totals.early_closes,
            finished_at: chrono::Utc::now().with_timezone(&self.config.timezone).to_rfc3339(),
            format: self.config.output.format.extension(),
            null_items,
            objects,
            records: self.totals.records,
            rejected_records: self.totals.rejected,
            run_id: &run.run_id,
            started_at: run.now.to_rfc3339(),
            table_versions: &self.versions,
            variables: &self.config.variables,
        };
        let body = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
        Some((template.render(run, &file), body))
    }

    /// `--dry-run`: `RECORDS<TAB>KEY` per file, sorted by key.
    pub fn dry_run_listing(&mut self) -> String {
        self.written.sort_by(|a, b| a.key.cmp(&b.key));
        self.written.iter().map(|e| format!("{}\t{}\n", e.records, e.key)).collect()
    }
}

/// METRIC lines for null array elements, per stream and field, once at the end of the run.
pub fn null_items_metrics(null_items: &BTreeMap<String, BTreeMap<String, u64>>) {
    for (stream, fields) in null_items {
        for (field, value) in fields {
            let tags = serde_json::json!({"stream": stream, "field": field});
            let metric = serde_json::json!({"type": "counter", "metric": "null_items", "value": value, "tags": tags});
            tracing::info!(target: "target_s3::metrics", "METRIC: {metric}");
        }
    }
}
