//! The run's one list of object keys. Every key the run writes (data files, the manifest,
//! `_SUCCESS` markers, dry-run keys) is claimed here before its file opens, so "no key is
//! written twice in a run" is enforced in one place, below every template and override, rather
//! than hoped for from each template's shape. `{part}` is numbered here too: per rendered key,
//! not per stream or partition, so two files whose keys render alike (two streams under a
//! template without `{stream}`, record values that concatenate alike) get different numbers
//! instead of one replacing the other.

use std::collections::{HashMap, HashSet};

use super::escape::fit_segments;
use super::object_key::{KeyError, ObjectKey};
use super::render::RenderedKey;

#[derive(Debug, Default)]
pub struct KeyRegistry {
    allow_overwrite: bool,
    used: HashSet<String>,
    /// Next `{part}` per rendered key.
    next_part: HashMap<RenderedKey, u64>,
}

impl KeyRegistry {
    pub fn new(allow_overwrite: bool) -> KeyRegistry {
        KeyRegistry { allow_overwrite, ..KeyRegistry::default() }
    }

    /// Turns a rendered key into the key of a new file: the lowest `{part}` not yet used for
    /// this rendered key (and not taken by any other key of the run), or the key itself when
    /// the template has no `{part}`.
    pub fn claim(&mut self, rendered: RenderedKey) -> Result<ObjectKey, KeyError> {
        if !rendered.has_part() {
            let key = rendered.as_str().to_string();
            return self.claim_exact(key);
        }
        let mut part = self.next_part.get(&rendered).copied().unwrap_or(0);
        loop {
            let key = fit_segments(rendered.with_part(part));
            part += 1;
            // Keys can meet across templates (`a{part}` and `a0{part}`): skip numbers taken.
            if self.used.insert(key.clone()) {
                self.next_part.insert(rendered, part);
                return ObjectKey::new(key);
            }
        }
    }

    /// Claims a key that has no `{part}` (manifest, markers, templates without `{part}`).
    pub fn claim_exact(&mut self, key: String) -> Result<ObjectKey, KeyError> {
        let key = fit_segments(key);
        if self.used.insert(key.clone()) || self.allow_overwrite {
            ObjectKey::new(key)
        } else {
            Err(KeyError::Duplicate { key })
        }
    }

    /// Whether a key was claimed in this run (for `hard_delete`: never delete this run's files).
    pub fn contains(&self, key: &str) -> bool {
        self.used.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{FileContext, KeyTemplate, ParseOptions, RunContext};

    fn rendered(template: &str, stream: &str) -> RenderedKey {
        let t = KeyTemplate::parse("", template, &ParseOptions::default()).unwrap();
        let run = RunContext { now: chrono::Utc::now().with_timezone(&chrono_tz::Tz::UTC), run_id: "r".into() };
        let file = FileContext {
            stream,
            extension: "jsonl",
            format: "jsonl",
            compression: "none",
            stream_run_id: "s",
            record: None,
            partition_date_field: None,
            cursor: None,
            table_version: None,
        };
        t.render(&run, &file)
    }

    #[test]
    fn parts_count_per_rendered_key() {
        let mut keys = KeyRegistry::new(false);
        // Two streams under a template without {stream}: numbered apart, not overwritten.
        assert_eq!(keys.claim(rendered("{run_id}-{part}", "a")).unwrap().as_str(), "r-00000");
        assert_eq!(keys.claim(rendered("{run_id}-{part}", "b")).unwrap().as_str(), "r-00001");
        assert_eq!(keys.claim(rendered("{stream}/{part}", "a")).unwrap().as_str(), "a/00000");
        assert_eq!(keys.claim(rendered("{stream}/{part}", "b")).unwrap().as_str(), "b/00000");
        assert_eq!(keys.claim(rendered("{stream}/{part}", "a")).unwrap().as_str(), "a/00001");
    }

    #[test]
    fn keys_taken_by_another_template_are_skipped() {
        let mut keys = KeyRegistry::new(false);
        assert_eq!(keys.claim(rendered("x0{part}", "a")).unwrap().as_str(), "x000000");
        // `x{part}` with part 0 would be "x00000"; part 10 of it would be "x00010" ... none clash
        // here, but a key claimed exactly is never handed out again.
        keys.claim_exact("x00001".into()).unwrap();
        assert_eq!(keys.claim(rendered("x{part}", "a")).unwrap().as_str(), "x00000");
        assert_eq!(keys.claim(rendered("x{part}", "a")).unwrap().as_str(), "x00002");
    }

    #[test]
    fn exact_keys_are_claimed_once_unless_overwrite_is_allowed() {
        let mut keys = KeyRegistry::new(false);
        keys.claim_exact("m.json".into()).unwrap();
        let e = keys.claim_exact("m.json".into()).unwrap_err().to_string();
        assert!(e.contains("\"m.json\"") && e.contains("twice") && e.contains("allow_overwrite"), "{e}");
        assert!(keys.claim(rendered("m.json", "a")).is_err());
        let mut lenient = KeyRegistry::new(true);
        lenient.claim_exact("m.json".into()).unwrap();
        lenient.claim_exact("m.json".into()).unwrap();
        assert!(lenient.contains("m.json"));
    }
}
