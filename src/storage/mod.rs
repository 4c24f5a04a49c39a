//! The file-I/O seam: every read, write, fsync, rename and removal keg does
//! goes through [`Storage`] and [`FileRef`], and every failure comes back as an
//! [`Error::Io`] naming the operation and the path.
//!
//! In production `Storage` is the operating system and the seam costs one
//! branch on a field that is always empty. With the `fault-injection` feature,
//! a [`crate::sim::FaultFs`] can be plugged in: it fails chosen operations and
//! simulates power cuts (see `src/storage/sim.rs`).

#[cfg(feature = "fault-injection")]
pub(crate) mod sim;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};

/// The kinds of storage operation, as fault injection counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
pub enum Op {
    /// Creating a new file.
    Create,
    /// Opening an existing file.
    Open,
    /// Reading bytes (pread or a whole small file).
    Read,
    /// Writing bytes.
    Write,
    /// fdatasync of a file.
    Sync,
    /// Truncating a file.
    SetLen,
    /// Memory-mapping a file.
    Map,
    /// Renaming a file.
    Rename,
    /// Removing a file.
    Remove,
    /// fsync of a directory.
    SyncDir,
    /// Listing a directory.
    List,
}

/// Where files live: the operating system, or a fault-injecting wrapper of it.
#[derive(Clone, Default)]
pub(crate) struct Storage {
    #[cfg(feature = "fault-injection")]
    pub(crate) sim: Option<sim::FaultFs>,
}

impl Storage {
    /// Asks the fault injector (if any) whether this operation fails.
    #[inline]
    fn check(&self, _op: Op, _path: &Path) -> io::Result<()> {
        #[cfg(feature = "fault-injection")]
        if let Some(sim) = &self.sim {
            return sim.check(_op, _path);
        }
        Ok(())
    }

    #[inline]
    fn note(&self, _event: impl FnOnce() -> Event) {
        #[cfg(feature = "fault-injection")]
        if let Some(sim) = &self.sim {
            sim.note(_event());
        }
    }

    /// Creates a new file; fails if it exists.
    pub(crate) fn create_new(&self, path: &Path) -> Result<FileRef> {
        let err = |e| Error::io("create", path, e);
        self.check(Op::Create, path).map_err(err)?;
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(err)?;
        self.note(|| Event::Create(path.to_owned()));
        Ok(FileRef { file, path: path.to_owned(), storage: self.clone() })
    }

    /// Opens an existing file, for reading only or for reading and writing.
    pub(crate) fn open(&self, path: &Path, writable: bool) -> Result<FileRef> {
        let err = |e| Error::io("open", path, e);
        self.check(Op::Open, path).map_err(err)?;
        let file = OpenOptions::new().read(true).write(writable).open(path).map_err(err)?;
        self.note(|| Event::Open(path.to_owned()));
        Ok(FileRef { file, path: path.to_owned(), storage: self.clone() })
    }

    /// Reads a whole small file (hint, checkpoint).
    pub(crate) fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        let err = |e| Error::io("read", path, e);
        self.check(Op::Read, path).map_err(err)?;
        let mut out = Vec::new();
        File::open(path).and_then(|mut f| f.read_to_end(&mut out)).map_err(err)?;
        Ok(out)
    }

    /// Writes a small file atomically: `<path>.tmp`, fsync, rename over `path`.
    /// The caller fsyncs the directory when the rename must be durable.
    pub(crate) fn write_file_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = tmp_path(path);
        self.remove(&tmp)?;
        let f = self.create_new(&tmp)?;
        #[cfg(feature = "fault-injection")]
        if kill::armed(if tmp.to_string_lossy().ends_with(".hint.tmp") { "hint.torn" } else { "checkpoint.torn" }) {
            f.write_torn_and_die(bytes, 0);
        }
        f.write_at(bytes, 0)?;
        f.sync_data()?;
        drop(f);
        crate::killpoint!("atomic_file.before_rename");
        self.rename(&tmp, path)?;
        crate::killpoint!("atomic_file.after_rename");
        Ok(())
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        let err = |e| Error::io("rename", from, e);
        self.check(Op::Rename, from).map_err(err)?;
        fs::rename(from, to).map_err(err)?;
        self.note(|| Event::Rename(from.to_owned(), to.to_owned()));
        Ok(())
    }

    /// Removes a file; a file that is already gone is not an error.
    pub(crate) fn remove(&self, path: &Path) -> Result<()> {
        let err = |e| Error::io("remove", path, e);
        self.check(Op::Remove, path).map_err(err)?;
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err(e)),
            _ => {
                self.note(|| Event::Remove(path.to_owned()));
                Ok(())
            }
        }
    }

    /// Makes the directory's entries (creations, renames, removals) durable.
    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<()> {
        let err = |e| Error::io("fsync directory", dir, e);
        self.check(Op::SyncDir, dir).map_err(err)?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        self.note(|| Event::SyncDir);
        Ok(())
    }

    pub(crate) fn create_dir_all(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))
    }

    /// The names of the files in a directory.
    pub(crate) fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let err = |e| Error::io("list directory", dir, e);
        self.check(Op::List, dir).map_err(err)?;
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(err)? {
            if let Some(name) = entry.map_err(err)?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
}

/// What happened to a file, for the power-cut simulation.
#[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
pub(crate) enum Event {
    Create(PathBuf),
    Open(PathBuf),
    Write(PathBuf, u64, Vec<u8>),
    SetLen(PathBuf, u64),
    Sync(PathBuf),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
    SyncDir,
}

/// An open file and its path, for error messages.
pub(crate) struct FileRef {
    file: File,
    path: PathBuf,
    storage: Storage,
}

impl FileRef {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> Result<u64> {
        self.file.metadata().map(|m| m.len()).map_err(|e| Error::io("stat", &self.path, e))
    }

    /// Writes all of `buf` at `offset`.
    pub(crate) fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        let err = |e| Error::io("write", &self.path, e);
        #[cfg(feature = "fault-injection")]
        if let Some(sim) = &self.storage.sim {
            if let Err(e) = sim.check(Op::Write, &self.path) {
                // A short write: part of the bytes land before the error.
                if sim.short_writes() && buf.len() > 1 {
                    let half = &buf[..buf.len() / 2];
                    let _ = self.file.write_all_at(half, offset);
                    sim.note(Event::Write(self.path.clone(), offset, half.to_vec()));
                }
                return Err(err(e));
            }
        }
        self.file.write_all_at(buf, offset).map_err(err)?;
        self.storage.note(|| Event::Write(self.path.clone(), offset, buf.to_vec()));
        Ok(())
    }

    /// Writes the first half of `buf` at `offset`, then kills the process (kill points only).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn write_torn_and_die(&self, buf: &[u8], offset: u64) -> ! {
        let _ = self.file.write_all_at(&buf[..buf.len() / 2], offset);
        std::process::abort()
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let err = |e| Error::io("read", &self.path, e);
        self.storage.check(Op::Read, &self.path).map_err(err)?;
        self.file.read_exact_at(buf, offset).map_err(err)
    }

    /// Makes the file's data durable (fdatasync).
    ///
    /// When it fails, the kernel may have given up on the dirty pages and
    /// marked them clean while they still read back ("fsyncgate"): no later
    /// fsync writes them, and a process opening the files in the same boot
    /// would take them for durable. So a failure first leaves the
    /// [`FSYNC_FAILED_FILE`] marker beside the file, which tells the next
    /// open to write the bytes it reads again before trusting them (see
    /// `recovery`).
    pub(crate) fn sync_data(&self) -> Result<()> {
        let err = |e| Error::io("fsync", &self.path, e);
        let synced = match self.storage.check(Op::Sync, &self.path) {
            Ok(()) => self.file.sync_data(),
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            mark_fsync_failed(&self.path);
            return Err(err(e));
        }
        self.storage.note(|| Event::Sync(self.path.clone()));
        Ok(())
    }

    /// Cuts or extends the file to `len` bytes.
    pub(crate) fn set_len(&self, len: u64) -> Result<()> {
        let err = |e| Error::io("truncate", &self.path, e);
        self.storage.check(Op::SetLen, &self.path).map_err(err)?;
        self.file.set_len(len).map_err(err)?;
        self.storage.note(|| Event::SetLen(self.path.clone(), len));
        Ok(())
    }

    /// Maps `len` bytes of the file read-only. `len` may exceed the file's
    /// current length (an active segment is mapped at its full capacity); the
    /// caller must never touch bytes past the end of the file.
    pub(crate) fn map(&self, len: usize) -> Result<Mapping> {
        if len == 0 {
            return Ok(Mapping(None));
        }
        let err = |e| Error::io("mmap", &self.path, e);
        self.storage.check(Op::Map, &self.path).map_err(err)?;
        // SAFETY: keg never truncates a mapped file below what readers may
        // touch, and reads only ranges it has written (see log::segment).
        let map = unsafe { MmapOptions::new().len(len).map(&self.file) }.map_err(err)?;
        Ok(Mapping(Some(map)))
    }
}

impl std::fmt::Debug for FileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRef").field("path", &self.path).finish()
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

/// The empty file a failed fsync leaves in the cache directory: until an
/// open has written every segment byte that no hint vouches for again and
/// fsynced it, those bytes may read back from the page cache without being
/// on the disk, or ever going to be (FORMAT.md, section 1).
pub(crate) const FSYNC_FAILED_FILE: &str = "fsync-failed";

/// Leaves the [`FSYNC_FAILED_FILE`] marker in the directory of `path`.
///
/// Only an open in the same boot needs it (a reboot empties the page cache,
/// and an open then reads what the disk holds), so it is created and never
/// fsynced: creating a name touches no data block, and so works on a disk
/// whose writeback just failed. It bypasses the storage simulator for the
/// same reason (it is not data whose durability the simulator tracks). A
/// failure to create it is ignored: the fsync's own error is what the
/// caller reports; the next open then trusts the page cache, as keg did
/// before the marker existed.
fn mark_fsync_failed(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = OpenOptions::new().write(true).create(true).truncate(false).open(dir.join(FSYNC_FAILED_FILE));
    }
}

/// The temporary name used while a file is being written.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Stops the process at a named place, when a test build was told to.
///
/// With the `fault-injection` feature, `KEG_KILL_AT=<name>[:<n>]` in the
/// environment makes the `n`-th (default first) pass through the kill point
/// `<name>` abort the process on the spot — no destructors, no flushes, like
/// `kill -9`. Without the feature this expands to nothing.
///
/// The points (tests/faults/crash_loop.rs picks among them at random):
///
/// | point | where |
/// |---|---|
/// | `append.torn` | writes half a record, then dies (write-through modes) |
/// | `flush.torn` | writes half of the write buffer, then dies (buffered mode) |
/// | `flush.between_logs` | the first log's buffered records written, the second's (also pending) not yet |
/// | `set.before_index`, `delete.before_index` | after the record, before the index update |
/// | `roll.before_create`, `roll.after_create` | around creating a new segment |
/// | `sync.before_dir` | group commit: files fsynced, directory not yet |
/// | `hint.before_write`, `hint.torn` | a sealed segment fsynced, its hint not yet written / half written |
/// | `checkpoint.torn` | half of `checkpoint.tmp` written |
/// | `atomic_file.before_rename`, `atomic_file.after_rename` | a hint or checkpoint file complete, around its rename |
/// | `durable.before_checkpoint` | before a reclaim: fsynced, checkpoint not yet advanced |
/// | `evict.chosen`, `compact.sealed` | eviction picked its victim / compaction sealed the active segments |
/// | `reclaim.start`, `reclaim.batch`, `reclaim.before_sync`, `reclaim.before_remove`, `reclaim.after_remove` | each step of reclaiming a segment |
/// | `clear.before_remove`, `clear.mid_remove` | clear: checkpoint written / some files removed |
/// | `close.before_checkpoint` | a clean close: hints written, checkpoint not yet |
/// | `recovery.listed`, `recovery.drop_segment`, `recovery.before_truncate`, `recovery.resume`, `recovery.after_sync`, `recovery.before_checkpoint` | each step of open |
#[macro_export]
#[doc(hidden)]
macro_rules! killpoint {
    ($name:expr) => {
        #[cfg(feature = "fault-injection")]
        if $crate::storage::kill::armed($name) {
            std::process::abort();
        }
    };
}

/// Kill points: see [`killpoint!`].
#[cfg(feature = "fault-injection")]
pub(crate) mod kill {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    /// Whether this pass through kill point `name` should kill the process.
    pub(crate) fn armed(name: &str) -> bool {
        let target = TARGET.get_or_init(|| {
            let spec = std::env::var("KEG_KILL_AT").ok()?;
            let (point, n) = match spec.split_once(':') {
                Some((p, n)) => (p.to_owned(), n.parse().unwrap_or(1)),
                None => (spec, 1),
            };
            Some((point, n))
        });
        match target {
            Some((point, n)) if point == name => HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n,
            _ => false,
        }
    }
}
