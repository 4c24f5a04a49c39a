//! The file-I/O seam: every read, write, fsync, rename and removal keg does
//! goes through [`Storage`] and [`FileRef`], and every failure comes back as an
//! [`Error::Io`] naming the operation and the path.
//!
//! In production `Storage` is the operating system and the seam costs
//! nothing: without the `fault-injection` feature the fields and branches
//! below that name the simulator do not exist. With the feature, a
//! [`crate::sim::FaultFs`] can be plugged in: it fails chosen operations and
//! simulates power cuts (see `src/storage/sim.rs`), on real files or on
//! files it keeps in memory (`src/storage/mem.rs`).

#[cfg(feature = "fault-injection")]
mod mem;
#[cfg(feature = "fault-injection")]
pub(crate) mod sim;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};

/// The kinds of storage operation, as fault injection counts them.
///
/// ```
/// use keg::sim::{FaultFs, Op};
/// let fs = FaultFs::in_memory();
/// let cache = keg::Cache::builder().storage(fs.clone()).open("/cache").unwrap();
/// let syncs = fs.ops_of(Op::Sync);
/// cache.set(b"k", b"v", None).unwrap();
/// cache.sync().unwrap(); // a durable point: at least one fdatasync
/// assert!(fs.ops_of(Op::Sync) > syncs);
/// ```
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

    /// The simulator, when it keeps the files in memory.
    #[cfg(feature = "fault-injection")]
    #[inline]
    pub(crate) fn memory(&self) -> Option<&sim::FaultFs> {
        self.sim.as_ref().filter(|s| s.is_in_memory())
    }

    /// Creates a new file; fails if it exists.
    pub(crate) fn create_new(&self, path: &Path) -> Result<FileRef> {
        let err = |e| Error::io("create", path, e);
        self.check(Op::Create, path).map_err(err)?;
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            let id = mem.mem_create(path).map_err(err)?;
            let handle = Handle::Mem(mem.clone(), id, true);
            return Ok(FileRef { handle, path: path.to_owned(), storage: self.clone() });
        }
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(path).map_err(err)?;
        self.note(|| Event::Create(path.to_owned()));
        Ok(FileRef { handle: Handle::Os(file), path: path.to_owned(), storage: self.clone() })
    }

    /// Opens an existing file, for reading only or for reading and writing.
    pub(crate) fn open(&self, path: &Path, writable: bool) -> Result<FileRef> {
        let err = |e| Error::io("open", path, e);
        self.check(Op::Open, path).map_err(err)?;
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            let id = mem.mem_open(path).map_err(err)?;
            let handle = Handle::Mem(mem.clone(), id, writable);
            return Ok(FileRef { handle, path: path.to_owned(), storage: self.clone() });
        }
        let file = OpenOptions::new().read(true).write(writable).open(path).map_err(err)?;
        self.note(|| Event::Open(path.to_owned()));
        Ok(FileRef { handle: Handle::Os(file), path: path.to_owned(), storage: self.clone() })
    }

    /// Reads a whole small file (hint, checkpoint).
    pub(crate) fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        let err = |e| Error::io("read", path, e);
        self.check(Op::Read, path).map_err(err)?;
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return mem.mem_read_file(path).map_err(err);
        }
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
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return mem.mem_rename(from, to).map_err(err);
        }
        fs::rename(from, to).map_err(err)?;
        self.note(|| Event::Rename(from.to_owned(), to.to_owned()));
        Ok(())
    }

    /// Removes a file; a file that is already gone is not an error.
    pub(crate) fn remove(&self, path: &Path) -> Result<()> {
        let err = |e| Error::io("remove", path, e);
        self.check(Op::Remove, path).map_err(err)?;
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return match mem.mem_remove(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err(e)),
                _ => Ok(()),
            };
        }
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
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return mem.mem_sync_dir(dir).map_err(err);
        }
        File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
        self.note(|| Event::SyncDir);
        Ok(())
    }

    pub(crate) fn create_dir_all(&self, dir: &Path) -> Result<()> {
        let err = |e| Error::io("create directory", dir, e);
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return mem.mem_create_dir_all(dir).map_err(err);
        }
        fs::create_dir_all(dir).map_err(err)
    }

    /// What is at `path`: a directory, a regular file (with its length), or
    /// something else; `follow` follows a symbolic link. Not counted as an
    /// operation (it changes nothing and is not fault-injected).
    pub(crate) fn stat(&self, path: &Path, follow: bool) -> io::Result<Stat> {
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return Ok(match mem.mem_stat(path)? {
                Ok(len) => Stat::File(len),
                Err(()) => Stat::Dir,
            });
        }
        let m = if follow { fs::metadata(path)? } else { fs::symlink_metadata(path)? };
        Ok(if m.is_dir() {
            Stat::Dir
        } else if m.is_file() {
            Stat::File(m.len())
        } else {
            Stat::Other
        })
    }

    /// Reads at most `max` bytes from the start of the file at `path`. Not
    /// counted as an operation (see [`Storage::stat`]).
    pub(crate) fn read_head(&self, path: &Path, max: usize) -> io::Result<Vec<u8>> {
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return mem.mem_read_head(path, max);
        }
        let mut head = Vec::with_capacity(max);
        File::open(path)?.take(max as u64).read_to_end(&mut head)?;
        Ok(head)
    }

    /// The names of a directory's entries, as the OS gives them. Not counted
    /// as an operation (see [`Storage::stat`]).
    pub(crate) fn entries(&self, dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return Ok(mem.mem_list(dir)?.into_iter().map(Into::into).collect());
        }
        fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name())).collect()
    }

    /// The names of the files in a directory.
    pub(crate) fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let err = |e| Error::io("list directory", dir, e);
        self.check(Op::List, dir).map_err(err)?;
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = self.memory() {
            return mem.mem_list(dir).map_err(err);
        }
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(err)? {
            if let Some(name) = entry.map_err(err)?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
}

/// What [`Storage::stat`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    Dir,
    /// A regular file of this many bytes.
    File(u64),
    /// A symbolic link (not followed), a device, a socket...
    Other,
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
    handle: Handle,
    path: PathBuf,
    storage: Storage,
}

/// The file itself: an OS file, or (tests only) a simulator's in-memory
/// file, named by its node as an OS file is by its descriptor, and whether
/// it was opened for writing (if not, writes fail as on a read-only descriptor).
/// The largest single `pwrite` keg makes: a longer write (a batch, a
/// buffered flush) goes to the kernel in pieces of this size. Measured on
/// this project's machine (Linux 6.18, ext4, a VM), single writes of 2–4 MiB
/// into fresh page cache sometimes cost 15–20x the CPU of the same bytes in
/// 1 MiB writes, inside the kernel's copy (BENCHMARKS.md §1b, "Large
/// writes"); 1 MiB never did. Crash semantics are unchanged: a write of
/// several pages was never atomic, and a piece cut short is a torn tail.
const WRITE_PIECE: usize = 1 << 20;

enum Handle {
    Os(File),
    #[cfg(feature = "fault-injection")]
    Mem(sim::FaultFs, u64, bool),
}

/// What Linux answers a write (`EBADF`) or a truncation (`EINVAL`) of a
/// file descriptor opened read-only: the in-memory files answer the same.
#[cfg(feature = "fault-injection")]
fn refuse_read_only(writable: bool, errno: i32) -> io::Result<()> {
    if writable {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(errno))
    }
}

impl FileRef {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> Result<u64> {
        let len = match &self.handle {
            Handle::Os(file) => file.metadata().map(|m| m.len()),
            #[cfg(feature = "fault-injection")]
            Handle::Mem(mem, id, _) => mem.mem_len(*id),
        };
        len.map_err(|e| Error::io("stat", &self.path, e))
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
                    match &self.handle {
                        Handle::Os(file) => {
                            let _ = file.write_all_at(half, offset);
                            sim.note(Event::Write(self.path.clone(), offset, half.to_vec()));
                        }
                        Handle::Mem(mem, id, writable) => {
                            if *writable {
                                let _ = mem.mem_write(*id, half, offset);
                            }
                        }
                    }
                }
                return Err(err(e));
            }
        }
        match &self.handle {
            Handle::Os(file) => {
                // In pieces of at most `WRITE_PIECE` bytes (see there).
                let mut at = offset;
                for piece in buf.chunks(WRITE_PIECE) {
                    file.write_all_at(piece, at).map_err(err)?;
                    at += piece.len() as u64;
                }
            }
            #[cfg(feature = "fault-injection")]
            Handle::Mem(mem, id, writable) => {
                return refuse_read_only(*writable, libc::EBADF)
                    .and_then(|()| mem.mem_write(*id, buf, offset))
                    .map_err(err)
            }
        }
        self.storage.note(|| Event::Write(self.path.clone(), offset, buf.to_vec()));
        Ok(())
    }

    /// Writes the first half of `buf` at `offset`, then kills the process (kill points only).
    #[cfg(feature = "fault-injection")]
    pub(crate) fn write_torn_and_die(&self, buf: &[u8], offset: u64) -> ! {
        let half = &buf[..buf.len() / 2];
        match &self.handle {
            Handle::Os(file) => drop(file.write_all_at(half, offset)),
            Handle::Mem(mem, id, writable) => {
                if *writable {
                    drop(mem.mem_write(*id, half, offset))
                }
            }
        }
        std::process::abort()
    }

    /// Asks the kernel to start writing `len` bytes at `offset` to the disk
    /// now, without waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on
    /// Linux; nothing elsewhere, nor on the in-memory storage). Advice only:
    /// it makes no byte durable and promises nothing, so it reports no
    /// error (a failed write-out is reported by the fsync that follows, as
    /// the kernel's would be without it).
    pub(crate) fn start_writeback(&self, offset: u64, len: u64) {
        #[cfg(target_os = "linux")]
        match &self.handle {
            Handle::Os(file) => {
                use std::os::unix::io::AsRawFd;
                let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else { return };
                // SAFETY: a plain system call on a descriptor this handle owns; no memory is passed.
                let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE) };
            }
            #[cfg(feature = "fault-injection")]
            Handle::Mem(..) => {}
        }
        #[cfg(not(target_os = "linux"))]
        let _ = (offset, len);
    }

    /// Reads exactly `buf.len()` bytes at `offset`.
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let err = |e| Error::io("read", &self.path, e);
        self.storage.check(Op::Read, &self.path).map_err(err)?;
        match &self.handle {
            Handle::Os(file) => file.read_exact_at(buf, offset).map_err(err),
            #[cfg(feature = "fault-injection")]
            Handle::Mem(mem, id, _) => mem.mem_read(*id, buf, offset).map_err(err),
        }
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
            Ok(()) => match &self.handle {
                Handle::Os(file) => file.sync_data(),
                #[cfg(feature = "fault-injection")]
                Handle::Mem(mem, id, _) => mem.mem_sync(*id),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = synced {
            self.mark_fsync_failed();
            return Err(err(e));
        }
        #[cfg(feature = "fault-injection")]
        if let Handle::Mem(..) = &self.handle {
            return Ok(());
        }
        self.storage.note(|| Event::Sync(self.path.clone()));
        Ok(())
    }

    /// Leaves the [`FSYNC_FAILED_FILE`] marker in the file's directory.
    ///
    /// Only an open in the same boot needs it (a reboot empties the page cache,
    /// and an open then reads what the disk holds), so it is created and never
    /// fsynced: creating a name touches no data block, and so works on a disk
    /// whose writeback just failed. It bypasses the storage simulator's fault
    /// injection and power cuts for the same reason (it is not data whose
    /// durability the simulator tracks; in memory it is put as if durable). A
    /// failure to create it is ignored: the fsync's own error is what the
    /// caller reports; the next open then trusts the page cache, as keg did
    /// before the marker existed.
    fn mark_fsync_failed(&self) {
        let Some(dir) = self.path.parent() else { return };
        match &self.handle {
            Handle::Os(_) => {
                let _ = OpenOptions::new().write(true).create(true).truncate(false).open(dir.join(FSYNC_FAILED_FILE));
            }
            #[cfg(feature = "fault-injection")]
            Handle::Mem(mem, _, _) => {
                let _ = mem.put_file(dir, FSYNC_FAILED_FILE, b"");
            }
        }
    }

    /// Cuts or extends the file to `len` bytes.
    pub(crate) fn set_len(&self, len: u64) -> Result<()> {
        let err = |e| Error::io("truncate", &self.path, e);
        self.storage.check(Op::SetLen, &self.path).map_err(err)?;
        match &self.handle {
            Handle::Os(file) => file.set_len(len).map_err(err)?,
            #[cfg(feature = "fault-injection")]
            Handle::Mem(mem, id, writable) => {
                return refuse_read_only(*writable, libc::EINVAL).and_then(|()| mem.mem_set_len(*id, len)).map_err(err)
            }
        }
        self.storage.note(|| Event::SetLen(self.path.clone(), len));
        Ok(())
    }

    /// Maps `len` bytes of the file read-only. `len` may exceed the file's
    /// current length (an active segment is mapped at its full capacity); the
    /// caller must never touch bytes past the end of the file.
    pub(crate) fn map(&self, len: usize) -> Result<Mapping> {
        if len == 0 {
            return Ok(Mapping::empty());
        }
        let err = |e| Error::io("mmap", &self.path, e);
        self.storage.check(Op::Map, &self.path).map_err(err)?;
        match &self.handle {
            Handle::Os(file) => {
                // SAFETY: keg never truncates a mapped file below what readers may
                // touch, and reads only ranges it has written (see log::segment).
                let map = unsafe { MmapOptions::new().len(len).map(file) }.map_err(err)?;
                let ptr = NonNull::new(map.as_ptr() as *mut u8).unwrap_or(NonNull::dangling());
                Ok(Mapping { ptr, len: map.len(), _owner: Owner::Os(map) })
            }
            #[cfg(feature = "fault-injection")]
            Handle::Mem(mem, id, _) => {
                let map = mem.mem_map(*id, len).map_err(err)?;
                let ptr = NonNull::new(map.as_ptr() as *mut u8).unwrap_or(NonNull::dangling());
                Ok(Mapping { ptr, len: map.len(), _owner: Owner::Mem(map) })
            }
        }
    }
}

impl std::fmt::Debug for FileRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRef").field("path", &self.path).finish()
    }
}

/// A read-only memory mapping (empty for a zero-length map): the address and
/// length of the mapped bytes, and what keeps them mapped.
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    _owner: Owner,
}

/// What owns a [`Mapping`]'s bytes.
enum Owner {
    Empty,
    Os(#[allow(dead_code)] Mmap),
    #[cfg(feature = "fault-injection")]
    Mem(#[allow(dead_code)] std::sync::Arc<mem::MapBuf>),
}

// SAFETY: a `Mapping` is a read-only view of bytes its owner keeps alive (an
// `Mmap`, which is `Send` and `Sync`, or an in-memory buffer that is too).
unsafe impl Send for Mapping {}
// SAFETY: as for `Send`.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn empty() -> Mapping {
        Mapping { ptr: NonNull::dangling(), len: 0, _owner: Owner::Empty }
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("len", &self.len).finish()
    }
}

impl std::ops::Deref for Mapping {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes while `_owner` lives (an
        // empty mapping's dangling pointer is valid for 0 bytes).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

/// The empty file a failed fsync leaves in the cache directory: until an
/// open has written every segment byte that no hint vouches for again and
/// fsynced it, those bytes may read back from the page cache without being
/// on the disk, or ever going to be (FORMAT.md, section 1).
pub(crate) const FSYNC_FAILED_FILE: &str = "fsync-failed";

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
/// | `seal.before_cut` | sealing a synced segment: before its preallocated zeros are cut off |
/// | `sync.before_dir` | group commit: files fsynced, directory not yet |
/// | `hint.before_write`, `hint.torn` | a sealed segment fsynced, its hint not yet written / half written |
/// | `checkpoint.torn` | half of `checkpoint.tmp` written |
/// | `atomic_file.before_rename`, `atomic_file.after_rename` | a hint or checkpoint file complete, around its rename |
/// | `durable.before_checkpoint` | before a reclaim: fsynced, checkpoint not yet advanced |
/// | `evict.chosen`, `compact.sealed` | eviction picked its victim / compaction sealed the active segments |
/// | `reclaim.start`, `reclaim.batch`, `reclaim.before_sync`, `reclaim.before_remove`, `reclaim.after_remove` | each step of reclaiming a segment |
/// | `clear.before_remove`, `clear.mid_remove` | clear: checkpoint written / some files removed |
/// | `close.before_checkpoint` | a clean close: hints written, checkpoint not yet |
/// | `seq.before_mark` | a write about to reserve sequence numbers (the checkpoint's sequence mark not yet written) |
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

#[cfg(all(test, feature = "fault-injection"))]
mod tests {
    use super::*;

    /// The error of a write and of a truncation through a file opened
    /// read-only (and that neither changed the file), on `storage`.
    fn refusals(storage: &Storage, path: &Path) -> (Option<i32>, Option<i32>) {
        let f = storage.open(path, false).unwrap();
        let code = |e: Error| match e {
            Error::Io { source, .. } => source.raw_os_error(),
            e => panic!("not an I/O error: {e}"),
        };
        let write = code(f.write_at(b"new", 0).unwrap_err());
        let truncate = code(f.set_len(1).unwrap_err());
        let mut back = [0u8; 5];
        f.read_at(&mut back, 0).unwrap();
        assert_eq!((&back, f.len().unwrap()), (b"bytes", 5), "a refused write changed the file");
        // Opened for writing, the same file takes both.
        let w = storage.open(path, true).unwrap();
        w.write_at(b"new", 0).unwrap();
        w.set_len(4).unwrap();
        (write, truncate)
    }

    /// A write longer than `WRITE_PIECE` goes out in pieces: every byte
    /// lands where it belongs, across the pieces' edges, at an offset that
    /// is not a piece's multiple.
    #[test]
    fn a_write_longer_than_a_piece_lands_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let f = Storage::default().create_new(&tmp.path().join("f")).unwrap();
        let buf: Vec<u8> = (0..WRITE_PIECE * 5 / 2 + 7).map(|i| (i % 251) as u8).collect();
        f.write_at(b"head", 0).unwrap();
        f.write_at(&buf, 4).unwrap();
        let mut back = vec![0u8; buf.len() + 4];
        f.read_at(&mut back, 0).unwrap();
        assert_eq!(&back[..4], b"head");
        assert!(back[4..] == buf[..], "a long write came back different");
        assert_eq!(f.len().unwrap(), buf.len() as u64 + 4);
    }

    #[test]
    fn a_file_opened_read_only_refuses_writes_in_memory_as_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"bytes").unwrap();
        let on_disk = refusals(&Storage::default(), &tmp.path().join("f"));
        assert_eq!(on_disk, (Some(libc::EBADF), Some(libc::EINVAL)));

        let fs = sim::FaultFs::in_memory();
        let dir = Path::new("/keg-read-only");
        fs.put_file(dir, "f", b"bytes").unwrap();
        let in_memory = refusals(&Storage { sim: Some(fs) }, &dir.join("f"));
        assert_eq!(in_memory, on_disk);
    }
}
