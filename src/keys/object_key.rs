//! The checked object key: the only key type storage accepts, so no key reaches a store
//! unchecked and no store repeats the check.

use std::fmt;

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "object key {key:?} would be written twice in this run (the key template cannot tell these files apart; add {{part}} or {{uuid}}, or set allow_overwrite to true)"
    )]
    Duplicate { key: String },
    #[error("object key {key:?} is not safe: {reason}")]
    Unsafe { key: String, reason: &'static str },
}

/// A key that is relative, has no `.`/`..` or empty folder names, no control characters or
/// backslashes, and fits S3's 1024 bytes. Rendering already makes values safe; this is the
/// defence in depth at the one door to storage.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(key: String) -> Result<ObjectKey, KeyError> {
        match check(&key) {
            Ok(()) => Ok(ObjectKey(key)),
            Err(reason) => Err(KeyError::Unsafe { key, reason }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last path segment (the file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn check(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("it is empty");
    }
    if key.starts_with('/') {
        return Err("it is an absolute path");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err("it contains a control character or backslash");
    }
    for part in key.split('/') {
        match part {
            "" => return Err("it contains an empty folder name"),
            "." | ".." => return Err("it contains a `.` or `..` folder"),
            _ => {}
        }
    }
    if key.len() > 1024 {
        return Err("it is longer than 1024 bytes (the S3 limit)");
    }
    Ok(())
}

/// Whether `key` would pass as an [`ObjectKey`] (for checks that do not keep the key).
pub fn check_key(key: &str) -> Result<(), &'static str> {
    check(key)
}
