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
/// value, so a folder stays under the 255-byte file name limit of local file systems.
const MAX_VALUE_BYTES: usize = 200;

/// Longest path segment of a key: the file name limit of local file systems (ext4, APFS, NTFS).
pub const MAX_SEGMENT_BYTES: usize = 255;

/// `~` and 32 hex digits of SHA-256 (128 bits: no collision can be searched for).
const HASH_SUFFIX_BYTES: usize = 33;

fn push_hash(key: &mut String, whole: &[u8]) {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(whole);
    key.push('~');
    for b in &digest[..16] {
        let _ = write!(key, "{b:02x}");
    }
}

fn at_segment_start(key: &str) -> bool {
    key.is_empty() || key.ends_with('/')
}

/// Appends Hive's null ([`NULL_VALUE`]); where it would start a folder (hidden from Hive
/// readers) its first `_` is escaped.
pub fn push_null(key: &mut String) {
    if at_segment_start(key) {
        key.push_str("%5F");
        key.push_str(&NULL_VALUE[1..]);
    } else {
        key.push_str(NULL_VALUE);
    }
}

/// Appends a value (stream name, record field, variable) to a key so that distinct values give
/// distinct text and no value can move, hide or break the key:
/// * every character but letters, digits, `-`, `_` and `.` is written as `%XX` per UTF-8 byte
///   (Hive's escaping, which Spark and pyarrow undo when they read partition values), `%` and
///   `/` included, so the mapping is reversible and a value never makes a folder;
/// * a value that starts a path segment does not start it with `_` or `.` (escaped instead):
///   Hive-convention readers skip such folders, and `.`/`..` would climb out of the prefix;
/// * an empty value is Hive's null ([`push_null`]); a value that is the text of Hive's null
///   marker has its two leading `_` escaped, so it never reads as, or shares a folder with, null;
/// * an escaped value over [`MAX_VALUE_BYTES`] is cut at a character boundary and ends in
///   `~` and 32 hex digits of SHA-256 over the whole value (`~` is otherwise always escaped).
pub fn push_escaped(key: &mut String, value: &str) {
    if value.is_empty() {
        return push_null(key);
    }
    let looks_null = value == NULL_VALUE;
    let segment_start = at_segment_start(key);
    let start = key.len();
    let mut cut = None;
    for (i, c) in value.char_indices() {
        if cut.is_none() && key.len() - start > MAX_VALUE_BYTES - HASH_SUFFIX_BYTES - 12 {
            cut = Some(key.len());
        }
        let escape = !is_kept(c) || (i == 0 && segment_start && matches!(c, '_' | '.')) || (looks_null && i < 2);
        if escape {
            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                let _ = write!(key, "%{b:02X}");
            }
        } else {
            key.push(c);
        }
    }
    if key.len() - start > MAX_VALUE_BYTES
        && let Some(cut) = cut
    {
        key.truncate(cut);
        push_hash(key, value.as_bytes());
    }
}

/// [`push_escaped`] with every non-ASCII byte escaped as well (`東` as `%E6%9D%B1`), as
/// delta-rs and Spark write partition folders: Delta readers find a partition's files by the
/// log's path, and `object_store` (polars) cannot address a key with raw non-ASCII text.
/// Values are never cut here; a long folder is cut by [`fit_segments`] (`~` and a hash).
pub fn push_escaped_ascii(key: &mut String, value: &str) {
    if value.is_empty() {
        return push_null(key);
    }
    let looks_null = value == NULL_VALUE;
    let segment_start = at_segment_start(key);
    for (i, b) in value.bytes().enumerate() {
        let kept = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if !kept || (i == 0 && segment_start && matches!(b, b'_' | b'.')) || (looks_null && i < 2) {
            let _ = write!(key, "%{b:02X}");
        } else {
            key.push(char::from(b));
        }
    }
}

/// The value [`push_escaped_ascii`] wrote as `text`; `None` if it is not such a value (a `~`
/// marks a folder [`fit_segments`] cut to a hash).
pub fn unescape_ascii(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                out.push(u8::from_str_radix(text.get(i + 1..i + 3)?, 16).ok()?);
                i += 3;
            }
            b'~' => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Cuts every path segment longer than [`MAX_SEGMENT_BYTES`] (a file name built from several
/// long values) to a prefix and `~` plus a SHA-256 of the whole segment, so the key is the same
/// on S3 and in a local folder and distinct keys stay distinct.
pub fn fit_segments(key: String) -> String {
    if key.split('/').all(|s| s.len() <= MAX_SEGMENT_BYTES) {
        return key;
    }
    let mut out = String::with_capacity(key.len());
    for (i, segment) in key.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if segment.len() <= MAX_SEGMENT_BYTES {
            out.push_str(segment);
            continue;
        }
        let mut end = MAX_SEGMENT_BYTES - HASH_SUFFIX_BYTES;
        // Never split a character, a `%XX` escape, or the escapes of one character's bytes
        // (a `%XX` of a UTF-8 continuation byte continues the character before it).
        let continues = |at: usize| {
            segment.as_bytes().get(at) == Some(&b'%')
                && segment
                    .get(at + 1..at + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .is_some_and(|b| b & 0xC0 == 0x80)
        };
        // Bytes, not `str` slices: `end - 1` may fall inside a character.
        let bytes = segment.as_bytes();
        while !segment.is_char_boundary(end)
            || bytes[..end].ends_with(b"%")
            || bytes[..end.saturating_sub(1)].ends_with(b"%")
            || continues(end)
        {
            end -= 1;
        }
        out.push_str(&segment[..end]);
        push_hash(&mut out, segment.as_bytes());
    }
    out
}

/// `escape` ([`push_escaped`] or [`push_escaped_ascii`]) for each `/`-separated part: a format
/// pattern may build folders.
pub(super) fn push_escaped_path(key: &mut String, value: &str, escape: fn(&mut String, &str)) {
    for (i, part) in value.split('/').enumerate() {
        if i > 0 {
            key.push('/');
        }
        escape(key, part);
    }
}
