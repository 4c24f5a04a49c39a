//! Ownership of a cache directory: one writable `Cache` at a time.
//!
//! Two mechanisms together:
//!
//! - a POSIX record lock (`fcntl(F_SETLK)`, write lock on the whole `LOCK`
//!   file) keeps other processes out. Unlike `flock`, a POSIX lock belongs to
//!   the process and is not shared with children: with `flock`, a child that
//!   another thread forks at the wrong moment inherits the lock until it calls
//!   `exec`, and a close-then-reopen in the parent fails spuriously (seen in
//!   practice: 297 of 300 reopens failed while another thread spawned
//!   processes in a loop);
//! - a registry of the directories this process holds keeps a second `Cache`
//!   in the same process out (POSIX locks do not conflict within a process).
//!
//! Read-only opens take neither. On the simulator's in-memory files (tests
//! only) the lock is a set of locked paths inside the simulator.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::storage::Storage;

/// Name of the lock file in a cache directory.
pub(crate) const LOCK_FILE: &str = "LOCK";

fn held() -> &'static Mutex<HashSet<PathBuf>> {
    static HELD: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    HELD.get_or_init(Default::default)
}

/// The lock on a cache directory; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    held: Held,
}

#[derive(Debug)]
enum Held {
    /// The file keeps the POSIX lock (closing it releases it); `key` is the
    /// directory's entry in the registry.
    Os { _file: File, key: PathBuf },
    #[cfg(feature = "fault-injection")]
    Mem(crate::sim::FaultFs, PathBuf),
}

impl DirLock {
    /// Takes the directory's lock, or fails at once with [`Error::Locked`].
    pub(crate) fn acquire(_storage: &Storage, dir: &Path) -> Result<DirLock> {
        #[cfg(feature = "fault-injection")]
        if let Some(mem) = _storage.memory() {
            return match mem.mem_lock(dir) {
                Ok(true) => Ok(DirLock { held: Held::Mem(mem.clone(), dir.to_owned()) }),
                Ok(false) => Err(Error::Locked { path: dir.to_owned() }),
                Err(e) => Err(Error::io("lock", dir, e)),
            };
        }
        let key = dir.canonicalize().map_err(|e| Error::io("resolve", dir, e))?;
        if !held().lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone()) {
            return Err(Error::Locked { path: dir.to_owned() });
        }
        match lock_file(dir) {
            Ok(file) => Ok(DirLock { held: Held::Os { _file: file, key } }),
            Err(e) => {
                held().lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                Err(e)
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        match &self.held {
            Held::Os { key, .. } => {
                held().lock().unwrap_or_else(|e| e.into_inner()).remove(key);
            }
            #[cfg(feature = "fault-injection")]
            Held::Mem(mem, dir) => mem.mem_unlock(dir),
        }
    }
}

fn lock_file(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("open", &path, e))?;
    // SAFETY: an all-zero `flock` is a valid value; the fields set below make
    // it a write lock on the whole file.
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = libc::F_WRLCK as _;
    request.l_whence = libc::SEEK_SET as _;
    // SAFETY: the descriptor is open for the lifetime of `file`, and `request` is a valid flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &request) } == 0 {
        return Ok(file);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Err(Error::Locked { path: dir.to_owned() }),
        _ => Err(Error::io("lock", &path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_process_fails_and_release_allows_another() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(&Storage::default(), dir.path()).unwrap();
        assert!(matches!(DirLock::acquire(&Storage::default(), dir.path()), Err(Error::Locked { .. })));
        drop(first);
        DirLock::acquire(&Storage::default(), dir.path()).unwrap();
    }

    #[test]
    fn a_child_spawned_meanwhile_does_not_keep_the_lock() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let spawned = AtomicU64::new(0);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let _ = std::process::Command::new("true").status();
                    spawned.fetch_add(1, Ordering::Relaxed);
                }
            });
            let mut reopens = 0;
            let mut failures = 0;
            while reopens < 300 || spawned.load(Ordering::Relaxed) < 100 {
                failures += DirLock::acquire(&Storage::default(), dir.path()).is_err() as u32;
                reopens += 1;
            }
            done.store(true, Ordering::Relaxed);
            assert_eq!(failures, 0, "{failures} of {reopens} reopens failed while another thread spawned processes");
        });
    }
}
