//! One stream's open files by partition, looked up per record.
//!
//! Most streams have one partition: `""`, when keys do not read records. It has a slot of its
//! own, so the per-record lookup compares no strings: two empty `String`s compared through a hash
//! map still call `memcmp`, which cost ~3% of a run's CPU (~100 ns twice per record, issue #25).

/// Lookups happen per record: a fast, non-cryptographic hasher.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

pub struct Partitions<F> {
    /// The file of the partition `""`.
    unpartitioned: Option<F>,
    by_key: HashMap<String, F>,
}

impl<F> Default for Partitions<F> {
    fn default() -> Self {
        Partitions { unpartitioned: None, by_key: HashMap::default() }
    }
}

impl<F> Partitions<F> {
    pub fn contains_key(&self, partition: &str) -> bool {
        if partition.is_empty() { self.unpartitioned.is_some() } else { self.by_key.contains_key(partition) }
    }

    pub fn get_mut(&mut self, partition: &str) -> Option<&mut F> {
        if partition.is_empty() { self.unpartitioned.as_mut() } else { self.by_key.get_mut(partition) }
    }

    pub fn insert(&mut self, partition: String, file: F) {
        if partition.is_empty() {
            self.unpartitioned = Some(file);
        } else {
            self.by_key.insert(partition, file);
        }
    }

    pub fn remove(&mut self, partition: &str) -> Option<F> {
        if partition.is_empty() { self.unpartitioned.take() } else { self.by_key.remove(partition) }
    }

    /// Every open file with its partition (the `""` one first).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &F)> {
        let unpartitioned = self.unpartitioned.iter().map(|f| ("", f));
        unpartitioned.chain(self.by_key.iter().map(|(p, f)| (p.as_str(), f)))
    }

    pub fn values(&self) -> impl Iterator<Item = &F> {
        self.iter().map(|(_, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_partition_behaves_as_any_other() {
        let mut p = Partitions::default();
        for key in ["", "a", "\u{0}1"] {
            assert!(!p.contains_key(key) && p.get_mut(key).is_none());
            p.insert(key.to_string(), key.len());
            assert!(p.contains_key(key));
            *p.get_mut(key).unwrap() += 10;
        }
        let mut all: Vec<(&str, usize)> = p.iter().map(|(k, v)| (k, *v)).collect();
        all.sort();
        assert_eq!(all, [("", 10), ("\u{0}1", 12), ("a", 11)]);
        assert_eq!(p.values().count(), 3);
        assert_eq!(p.remove(""), Some(10));
        assert_eq!((p.remove(""), p.remove("a"), p.remove("b")), (None, Some(11), None));
        assert!(!p.contains_key("") && p.contains_key("\u{0}1"));
    }
}
