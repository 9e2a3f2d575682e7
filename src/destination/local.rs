//! The local-folder destination: the zero-setup default, with the same key layout as S3.
//! A file is written under a short hidden temporary name in its final folder, fsynced and
//! renamed without replacing anything (`renameat2(RENAME_NOREPLACE)`, else link-then-unlink),
//! so a final name only ever shows a complete file and never another run's file is replaced.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::{Completion, ObjectMeta, ObjectSink, Storage};
use crate::error::StorageError;
use crate::keys::ObjectKey;

pub struct LocalFolder {
    root: PathBuf,
    /// `allow_overwrite`: the final rename may replace an existing file.
    replace: bool,
}

impl LocalFolder {
    pub fn new(root: PathBuf, allow_overwrite: bool) -> LocalFolder {
        LocalFolder { root, replace: allow_overwrite }
    }
}

fn local_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> StorageError + 'p {
    move |source| StorageError::Local { action, path: path.to_path_buf(), source }
}

impl Storage for LocalFolder {
    fn create(&self, key: &ObjectKey, meta: &ObjectMeta) -> Result<Box<dyn ObjectSink>, StorageError> {
        // The temporary file sits in the final folder (the rename that publishes it stays on one
        // file system, even when a sub-folder is a mount), hidden, with a short name of its own
        // (any legal final name works). A key decided at close has no folder yet: the root.
        let folder = if meta.key_at_close {
            self.root.clone()
        } else {
            self.root.join(key.as_str()).parent().map_or_else(|| self.root.clone(), Path::to_path_buf)
        };
        std::fs::create_dir_all(&folder).map_err(local_err("cannot create folder", &folder))?;
        // Readable as the umask allows (0644 under 022), like any file a tool writes: Spark or a
        // web server running as another user must be able to read the output.
        #[cfg(unix)]
        let permissions = std::os::unix::fs::PermissionsExt::from_mode(0o666);
        let mut builder = tempfile::Builder::new();
        builder.prefix(".t3-").suffix(".tmp").rand_bytes(8);
        #[cfg(unix)]
        builder.permissions(permissions);
        let temp = builder.tempfile_in(&folder).map_err(local_err("cannot create a file in", &folder))?;
        Ok(Box::new(LocalSink {
            out: BufWriter::with_capacity(64 * 1024, temp),
            root: self.root.clone(),
            replace: self.replace || meta.overwrite,
            bytes: 0,
        }))
    }

    fn describe(&self) -> String {
        format!("local folder {}", self.root.display())
    }

    fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StorageError> {
        fn walk(dir: &Path, key: &str, out: &mut Vec<String>) -> std::io::Result<()> {
            let entries = match std::fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
            };
            for entry in entries {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let child = if key.is_empty() { name } else { format!("{key}/{name}") };
                if entry.file_type()?.is_dir() {
                    walk(&entry.path(), &child, out)?;
                } else if !child.rsplit('/').next().is_some_and(|n| n.starts_with('.')) {
                    out.push(child); // hidden names are files still being written
                }
            }
            Ok(())
        }
        // Only the folder that holds the prefix needs walking.
        let folder = prefix.rsplit_once('/').map_or("", |(dir, _)| dir);
        let mut keys = Vec::new();
        walk(&self.root.join(folder), folder, &mut keys).map_err(local_err("cannot list", &self.root))?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        // A name no key could have (written by someone else) is not ours to touch.
        Ok(keys.into_iter().filter_map(|k| ObjectKey::new(k).ok()).collect())
    }

    fn delete(&self, keys: &[ObjectKey]) -> Result<(), StorageError> {
        for key in keys {
            let path = self.root.join(key.as_str());
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(local_err("cannot delete", &path)(e)),
                _ => {}
            }
            // Folders left empty go too, up to the root.
            let mut dir = path.parent();
            while let Some(d) = dir.filter(|d| *d != self.root) {
                if std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
        }
        Ok(())
    }
}

struct LocalSink {
    out: BufWriter<NamedTempFile>,
    root: PathBuf,
    replace: bool,
    bytes: u64,
}

impl LocalSink {
    fn commit(self, key: &ObjectKey) -> Result<u64, StorageError> {
        let LocalSink { out, root, replace, bytes } = self;
        let path = root.join(key.as_str());
        let temp = out.into_inner().map_err(|e| StorageError::Local {
            action: "cannot write",
            path: path.clone(),
            source: e.into_error(),
        })?;
        temp.as_file().sync_all().map_err(local_err("cannot sync", &path))?;
        let dir = path.parent().expect("a joined key has a parent");
        std::fs::create_dir_all(dir).map_err(local_err("cannot create folder", dir))?;
        let published = if replace { temp.persist(&path) } else { temp.persist_noclobber(&path) };
        published.map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => StorageError::Exists { key: key.to_string(), path: path.clone() },
            _ => StorageError::Local { action: "cannot rename into", path: path.clone(), source: e.error },
        })?;
        // The rename is durable only once the folder entry is.
        File::open(dir).and_then(|d| d.sync_all()).map_err(local_err("cannot sync folder", dir))?;
        Ok(bytes)
    }
}

impl ObjectSink for LocalSink {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.bytes += data.len() as u64;
        self.out.write_all(data).map_err(|source| StorageError::Local {
            action: "cannot write",
            path: self.out.get_ref().path().to_path_buf(),
            source,
        })
    }

    fn finish(self: Box<Self>, done: Completion) {
        let result = self.commit(&done.key);
        done.done(result);
    }

    fn abort(self: Box<Self>) {
        // Dropping the NamedTempFile deletes it.
    }
}
