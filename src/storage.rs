//! The file-I/O seam: every read, write, fsync, rename and removal keg does
//! goes through here, and every failure comes back as an [`Error::Io`] naming
//! the operation and the path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};

/// An open file and its path, for error messages.
#[derive(Debug)]
pub(crate) struct FileRef {
    file: File,
    path: PathBuf,
}

impl FileRef {
    /// Creates a new file; fails if it exists.
    pub(crate) fn create_new(path: &Path) -> Result<FileRef> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io("create", path, e))?;
        Ok(FileRef { file, path: path.to_owned() })
    }

    /// Opens an existing file, for reading only or for reading and writing.
    pub(crate) fn open(path: &Path, writable: bool) -> Result<FileRef> {
        let file = OpenOptions::new().read(true).write(writable).open(path).map_err(|e| Error::io("open", path, e))?;
        Ok(FileRef { file, path: path.to_owned() })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> Result<u64> {
        self.file.metadata().map(|m| m.len()).map_err(|e| Error::io("stat", &self.path, e))
    }

    /// Writes all of `buf` at `offset`.
    pub(crate) fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file.write_all_at(buf, offset).map_err(|e| Error::io("write", &self.path, e))
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.file.read_exact_at(buf, offset).map_err(|e| Error::io("read", &self.path, e))
    }

    /// Makes the file's data durable (fdatasync).
    pub(crate) fn sync_data(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("fsync", &self.path, e))
    }

    /// Cuts or extends the file to `len` bytes.
    pub(crate) fn set_len(&self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(|e| Error::io("truncate", &self.path, e))
    }

    /// Maps `len` bytes of the file read-only. `len` may exceed the file's
    /// current length (an active segment is mapped at its full capacity); the
    /// caller must never touch bytes past the end of the file.
    pub(crate) fn map(&self, len: usize) -> Result<Mapping> {
        if len == 0 {
            return Ok(Mapping(None));
        }
        // SAFETY: keg never truncates a mapped file below what readers may
        // touch, and reads only ranges it has written (see log::segment).
        let map =
            unsafe { MmapOptions::new().len(len).map(&self.file) }.map_err(|e| Error::io("mmap", &self.path, e))?;
        Ok(Mapping(Some(map)))
    }
}

/// A read-only memory mapping (empty for a zero-length map).
#[derive(Debug)]
pub(crate) struct Mapping(Option<Mmap>);

impl std::ops::Deref for Mapping {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.0.as_deref().unwrap_or(&[])
    }
}

/// Reads a whole small file (hint, checkpoint).
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    File::open(path).and_then(|mut f| f.read_to_end(&mut out)).map_err(|e| Error::io("read", path, e))?;
    Ok(out)
}

/// Writes a small file atomically: `<path>.tmp`, fsync, rename over `path`.
/// The caller fsyncs the directory when the rename must be durable.
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    let _ = fs::remove_file(&tmp);
    let f = FileRef::create_new(&tmp)?;
    f.write_at(bytes, 0)?;
    f.sync_data()?;
    drop(f);
    rename(&tmp, path)
}

/// The temporary name used while a file is being written.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
}

/// Removes a file; a file that is already gone is not an error.
pub(crate) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Makes the directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

pub(crate) fn create_dir_all(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))
}

/// The names of the files in a directory.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}
