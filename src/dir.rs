//! Which directories keg opens: a cache never deletes, overwrites or writes
//! among files it did not create.
//!
//! An open accepts (FORMAT.md, section 1):
//!
//! - a missing or empty directory: a writable open creates the cache there
//!   and writes the `KEG` marker first;
//! - a directory holding the marker (`format::marker`): a keg cache; other
//!   files in it are left alone;
//! - a directory without the marker whose every entry is a regular file
//!   named as keg names its files and starting as such a file starts (see
//!   [`keg_file`]): a cache written by a keg from before the marker. A
//!   writable open adopts it by writing the marker.
//!
//! Anything else is refused with [`Error::NotACache`] naming the directory and
//! the first entry (by name) that is not keg's, before anything is written:
//! not even the `LOCK` file is created.

use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{checkpoint, hint, marker, segment, DecodeError};
use crate::lock::LOCK_FILE;
use crate::log::checkpoint::CHECKPOINT_FILE;
use crate::log::parse_name;
use crate::storage::{Stat, Storage, FSYNC_FAILED_FILE};

/// What an open found at the cache's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing there.
    Missing,
    /// A directory with no entries.
    Empty,
    /// A directory with a valid marker.
    Marked,
    /// A directory without a marker holding only files keg writes.
    Unmarked,
}

/// What the directory at `dir` is, or why keg must not open it. Reads only.
pub(crate) fn recognise(storage: &Storage, dir: &Path) -> Result<Found> {
    let not_a_cache = |reason: String| Error::NotACache { path: dir.to_owned(), reason };
    match storage.stat(dir, true) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(Error::io("stat", dir, e)),
        Ok(m) if m != Stat::Dir => {
            return Err(not_a_cache(
                "not a directory; a cache needs a directory of its own (a new or empty one)".into(),
            ))
        }
        Ok(_) => {}
    }
    let marker_path = dir.join(marker::FILE_NAME);
    match storage.read_head(&marker_path, marker::MAX_LEN + 1) {
        Ok(bytes) => {
            return match marker::decode(&bytes) {
                Ok(_) => Ok(Found::Marked),
                Err(DecodeError::UnsupportedVersion { found, supported }) => {
                    Err(Error::UnsupportedVersion { path: marker_path, found, supported })
                }
                Err(e) => Err(not_a_cache(format!(
                    "holds a file named {} that is not keg's cache marker ({e}); keg opens only a missing or \
                     empty directory, or one that holds a keg cache. If this is a keg cache whose marker was \
                     damaged, remove {} and open it again (keg then checks every file in it); otherwise give \
                     the cache a directory of its own",
                    marker::FILE_NAME,
                    marker_path.display()
                ))),
            };
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        // A directory named KEG, say.
        Err(_) => {
            return Err(not_a_cache(format!(
                "holds {} that is not keg's cache marker (not a readable file); keg opens only a missing or \
                 empty directory, or one that holds a keg cache: give the cache a directory of its own",
                marker::FILE_NAME
            )))
        }
    }
    let mut entries = storage.entries(dir).map_err(|e| Error::io("list directory", dir, e))?;
    if entries.is_empty() {
        return Ok(Found::Empty);
    }
    entries.sort();
    let mut foreign = Vec::new();
    for name in &entries {
        let why = match name.to_str() {
            None => Some("its name is not UTF-8".to_owned()),
            Some(name) => keg_file(storage, &dir.join(name), name).err(),
        };
        if let Some(why) = why {
            foreign.push((name.to_string_lossy().into_owned(), why));
        }
    }
    let Some((first, why)) = foreign.first() else { return Ok(Found::Unmarked) };
    let others = match foreign.len() {
        1 => String::new(),
        n => format!(" (and {} more entr{} keg did not write)", n - 1, if n == 2 { "y" } else { "ies" }),
    };
    Err(not_a_cache(format!(
        "not a keg cache directory: it has no {} marker and holds `{first}`, which is not a file keg writes \
         ({why}){others}. keg opens only a missing or empty directory, or one that holds a keg cache, and \
         never deletes or overwrites files it did not create: give the cache a directory of its own (a new \
         or empty one)",
        marker::FILE_NAME
    )))
}

/// Whether the entry `name` at `path` is a file keg writes: its name is one
/// keg uses and it starts as keg starts that file (its kind's magic bytes, or
/// a prefix of them if it is shorter: a file a crash cut short just after
/// its creation). `LOCK` must be empty. Otherwise, why not.
fn keg_file(storage: &Storage, path: &Path, name: &str) -> Result<(), String> {
    let hint_tmp = name.strip_suffix(".tmp").and_then(|n| parse_name(n, "hint"));
    let (magic, what): (&[u8], &str) = if name == LOCK_FILE {
        (&[], "an empty lock file")
    } else if name == FSYNC_FAILED_FILE {
        (&[], "an empty fsync-failure marker")
    } else if name == CHECKPOINT_FILE || name == "checkpoint.tmp" {
        (&checkpoint::MAGIC, "a checkpoint")
    } else if name == "KEG.tmp" {
        (&marker::MAGIC, "a cache marker")
    } else if parse_name(name, "seg").is_some() {
        (&segment::MAGIC, "a segment")
    } else if parse_name(name, "hint").is_some() || hint_tmp.is_some() {
        (&hint::MAGIC, "a hint file")
    } else {
        return Err("not a name keg uses".into());
    };
    let len = match storage.stat(path, false) {
        Ok(Stat::File(len)) => len,
        Ok(_) => return Err(format!("named like {what}, but not a regular file")),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    if magic.is_empty() {
        // (The lock file or the fsync-failure marker.) The lock file is never opened here: closing any descriptor of it
        // would release the POSIX lock this process may hold on it.
        return if len == 0 { Ok(()) } else { Err(format!("named like {what}, but not empty")) };
    }
    let head = storage.read_head(path, magic.len()).map_err(|e| format!("cannot be read: {e}"))?;
    let starts_right = if head.len() < magic.len() { magic.starts_with(&head) } else { head.starts_with(magic) };
    if !starts_right {
        return Err(format!("named like {what}, but does not start as keg starts one"));
    }
    Ok(())
}

/// Whether `name` is a temporary file keg writes (`checkpoint.tmp`,
/// `KEG.tmp`, `XXXXXXXX.hint.tmp`): the only files a writable open removes
/// as leftovers of an interrupted write.
pub(crate) fn is_keg_tmp(name: &str) -> bool {
    name == "checkpoint.tmp"
        || name == "KEG.tmp"
        || name.strip_suffix(".tmp").is_some_and(|n| parse_name(n, "hint").is_some())
}

/// Writes the marker (through `KEG.tmp` and a rename) and makes it durable.
pub(crate) fn write_marker(storage: &Storage, dir: &Path) -> Result<()> {
    storage.write_file_atomic(&dir.join(marker::FILE_NAME), &marker::encode())?;
    storage.sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keg_names_only() {
        for name in ["checkpoint.tmp", "KEG.tmp", "0000002a.hint.tmp"] {
            assert!(is_keg_tmp(name), "{name}");
        }
        for name in ["notes.tmp", "checkpoint", "0000002a.seg.tmp", "2a.hint.tmp", "x.hint.tmp", ".tmp"] {
            assert!(!is_keg_tmp(name), "{name}");
        }
    }
}
