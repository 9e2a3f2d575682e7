//! The one rule by which values (stream names, record fields, variables) become key text:
//! reversible, never hidden from Hive-convention readers, never leaving the prefix.

use std::fmt::Write;

/// What a missing, null, empty or unformattable value renders as: Hive's null partition, which
/// Spark, Hive, Trino, Athena, pyarrow and DuckDB read back as null in `name=value` folders.
pub const NULL_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// FNV-1a, 64 bit: a stable, dependency-free id for `{stream_id}`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Characters a rendered value keeps as they are: letters and digits of any script (S3 keys
/// and file names are UTF-8), `-`, `_` and `.`. Everything else is escaped.
fn is_kept(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Longest escaped value kept whole; longer ones are cut and end in `~` and a hash of the whole
/// value, so a segment stays well under the 255-byte file name limit of local file systems.
const MAX_VALUE_BYTES: usize = 200;

/// Appends a value (stream name, record field, variable) to a key so that distinct values give
/// distinct text and no value can move, hide or break the key:
/// * every character but letters, digits, `-`, `_` and `.` is written as `%XX` per UTF-8 byte
///   (Hive's escaping, which Spark and pyarrow undo when they read partition values), `%` and
///   `/` included, so the mapping is reversible and a value never makes a folder;
/// * a value that starts a path segment does not start it with `_` or `.` (escaped instead):
///   Hive-convention readers skip such folders, and `.`/`..` would climb out of the prefix;
/// * an empty value is [`NULL_VALUE`];
/// * an escaped value over [`MAX_VALUE_BYTES`] is cut at a character boundary and ends in
///   `~` and 16 hex digits of FNV-1a over the whole value (`~` is otherwise always escaped).
pub fn push_escaped(key: &mut String, value: &str) {
    let value = if value.is_empty() { NULL_VALUE } else { value };
    let segment_start = key.is_empty() || key.ends_with('/');
    let start = key.len();
    let mut cut = None;
    for (i, c) in value.char_indices() {
        if key.len() - start > MAX_VALUE_BYTES - 20 && cut.is_none() {
            cut = Some(key.len());
        }
        if is_kept(c) && !(i == 0 && segment_start && matches!(c, '_' | '.')) {
            key.push(c);
        } else {
            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                let _ = write!(key, "%{b:02X}");
            }
        }
    }
    if key.len() - start > MAX_VALUE_BYTES
        && let Some(cut) = cut
    {
        key.truncate(cut);
        let _ = write!(key, "~{:016x}", fnv1a(value.as_bytes()));
    }
}

/// Like [`push_escaped`] for each `/`-separated part: a format pattern may build folders.
pub(super) fn push_escaped_path(key: &mut String, value: &str) {
    for (i, part) in value.split('/').enumerate() {
        if i > 0 {
            key.push('/');
        }
        push_escaped(key, part);
    }
}
