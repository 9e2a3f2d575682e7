//! The STATE rule, as pure logic: a STATE that arrived at input position `p` may be released
//! once no open or in-flight file holds a record from before `p`. Streams roll their files
//! independently and a STATE still never runs ahead of the data it covers.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Identifies one output object (or deletion) for the whole of its life, from the moment it
/// holds STATE back until it is durable.
pub type FileId = u64;

/// `Clone`: the Delta commit asks a copy which STATE its files would release.
#[derive(Default, Clone)]
pub struct AckTracker {
    /// Open or in-flight files by the position of their first record.
    first_pos: HashMap<FileId, u64>,
    /// How many unfinished files start at each position (a multiset, for the minimum).
    starts: BTreeMap<u64, u32>,
    /// STATE values waiting for their files, oldest first.
    pending: VecDeque<(u64, String)>,
    last_released: Option<String>,
}

impl AckTracker {
    /// A file got its first record, at input position `pos`.
    pub fn file_opened(&mut self, id: FileId, pos: u64) {
        self.first_pos.insert(id, pos);
        *self.starts.entry(pos).or_default() += 1;
    }

    /// A file is durable: it no longer holds STATE back.
    pub fn file_durable(&mut self, id: FileId) {
        let Some(pos) = self.first_pos.remove(&id) else {
            return;
        };
        if let Some(n) = self.starts.get_mut(&pos) {
            *n -= 1;
            if *n == 0 {
                self.starts.remove(&pos);
            }
        }
    }

    /// Whether every file holding a record from before position `pos` is durable.
    pub fn covered(&self, pos: u64) -> bool {
        self.starts.keys().next().is_none_or(|first| *first >= pos)
    }

    /// For a Delta commit (which adds whole files, so it must not add records from after the
    /// STATE it carries): the newest waiting STATE such that every file holding a record from
    /// before it is among `durable` (id -> input position at which the file was closed) and was
    /// closed no later than the STATE; returns that STATE and those files.
    pub fn commit_point(&self, durable: &HashMap<FileId, u64>) -> Option<(String, Vec<FileId>)> {
        let blocking = self
            .first_pos
            .iter()
            .filter(|(id, _)| !durable.contains_key(id))
            .map(|(_, p)| *p)
            .min()
            .unwrap_or(u64::MAX);
        for (pos, value) in self.pending.iter().rev().filter(|(pos, _)| *pos <= blocking) {
            let before: Vec<(FileId, u64)> = durable
                .iter()
                .filter(|(id, _)| self.first_pos.get(id).is_some_and(|first| first < pos))
                .map(|(id, closed)| (*id, *closed))
                .collect();
            if before.iter().all(|(_, closed)| closed <= pos) {
                let mut ids: Vec<FileId> = before.into_iter().map(|(id, _)| id).collect();
                ids.sort_unstable();
                return Some((value.clone(), ids));
            }
        }
        None
    }

    /// Whether a STATE is waiting for files.
    pub fn has_pending_state(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The STATE printed last.
    pub fn last_released(&self) -> Option<&str> {
        self.last_released.as_deref()
    }

    pub fn unfinished_files(&self) -> usize {
        self.first_pos.len()
    }

    /// A STATE arrived at position `pos`. Empty objects are not states worth storing.
    pub fn state(&mut self, pos: u64, value: &str) {
        if value.trim_start().starts_with('{')
            && serde_json::from_str::<serde_json::Map<_, _>>(value).is_ok_and(|m| m.is_empty())
        {
            return;
        }
        // A waiting STATE that no newer file separates from this one would be released at the
        // same moment: keep only the newer, so the queue stays as short as the open files.
        let newest_start = self.starts.keys().next_back().copied();
        if let Some((last_pos, _)) = self.pending.back()
            && newest_start.is_none_or(|s| s < *last_pos)
        {
            self.pending.pop_back();
        }
        self.pending.push_back((pos, value.to_string()));
    }

    /// The newest STATE that is now fully covered by durable files, if it was not released yet.
    pub fn release(&mut self) -> Option<String> {
        let watermark = self.starts.keys().next().copied().unwrap_or(u64::MAX);
        let mut newest = None;
        while self.pending.front().is_some_and(|(pos, _)| *pos < watermark) {
            newest = self.pending.pop_front().map(|(_, v)| v);
        }
        let newest = newest?;
        if self.last_released.as_ref() == Some(&newest) {
            return None;
        }
        self.last_released = Some(newest.clone());
        Some(newest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_waits_for_earlier_files_only() {
        let mut a = AckTracker::default();
        a.file_opened(1, 1); // stream A, first record at line 1
        a.state(2, r#"{"s":2}"#);
        assert_eq!(a.release(), None, "file 1 holds a record from before the STATE");
        a.file_opened(2, 3); // stream B opens after the STATE: it does not hold it back
        a.file_durable(1);
        assert_eq!(a.release().as_deref(), Some(r#"{"s":2}"#));
        a.state(4, r#"{"s":4}"#);
        assert_eq!(a.release(), None);
        a.file_durable(2);
        assert_eq!(a.release().as_deref(), Some(r#"{"s":4}"#));
    }

    #[test]
    fn only_newest_covered_state_and_no_repeats_or_empties() {
        let mut a = AckTracker::default();
        a.state(1, r#"{"s":1}"#);
        a.state(2, r#"{"s":2}"#);
        a.state(3, "{}");
        assert_eq!(a.release().as_deref(), Some(r#"{"s":2}"#));
        a.state(4, r#"{"s":2}"#);
        assert_eq!(a.release(), None);
    }

    #[test]
    fn a_commit_point_never_includes_a_file_with_records_after_its_state() {
        let mut a = AckTracker::default();
        a.file_opened(1, 1); // lines 1..=5, closed by size at line 5
        a.state(3, r#"{"s":3}"#);
        a.file_opened(2, 6); // opened after, still open
        a.state(7, r#"{"s":7}"#);
        let durable = HashMap::from([(1, 5)]);
        // STATE 7 is held back by open file 2; STATE 3 falls inside file 1.
        assert_eq!(a.commit_point(&durable), None);
        let durable = HashMap::from([(1, 5), (2, 7)]);
        assert_eq!(a.commit_point(&durable), Some((r#"{"s":7}"#.into(), vec_sorted(&durable))));
        // A file closed at a STATE line holds only records from before it.
        let mut b = AckTracker::default();
        b.file_opened(1, 1);
        b.state(4, r#"{"s":4}"#);
        b.file_opened(2, 5);
        assert_eq!(b.commit_point(&HashMap::from([(1, 4)])), Some((r#"{"s":4}"#.into(), vec![1])));
    }

    fn vec_sorted(m: &HashMap<FileId, u64>) -> Vec<FileId> {
        let mut v: Vec<_> = m.keys().copied().collect();
        v.sort();
        v
    }

    #[test]
    fn pending_queue_stays_short() {
        let mut a = AckTracker::default();
        a.file_opened(1, 0);
        for pos in 1..10_000 {
            a.state(pos, &format!("{{\"s\":{pos}}}"));
        }
        assert_eq!(a.pending.len(), 1);
        a.file_durable(1);
        assert_eq!(a.release().as_deref(), Some(r#"{"s":9999}"#));
    }

    #[test]
    fn states_between_files_keep_their_order() {
        let mut a = AckTracker::default();
        a.file_opened(1, 0);
        a.state(1, r#"{"s":1}"#);
        a.file_opened(2, 2);
        a.state(3, r#"{"s":3}"#);
        a.file_durable(2);
        assert_eq!(a.release(), None);
        a.file_durable(1);
        assert_eq!(a.release().as_deref(), Some(r#"{"s":3}"#));
    }
}
