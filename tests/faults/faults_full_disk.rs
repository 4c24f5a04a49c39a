//! A real full disk: an 8 MiB tmpfs is mounted, filled through keg until the
//! kernel says ENOSPC, and then space is freed. The error must name the
//! operation and the file, reads must keep working, nothing acknowledged may
//! be lost, and writes must work again once there is room (in buffered mode,
//! where the failed write was an acknowledged buffer, after a reopen).
//!
//! Needs root (to mount); prints SKIPPED and passes otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::fault_model::*;
use keg::{Cache, Durability, Error};

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs {
    path: PathBuf,
    _base: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { geteuid() } != 0 {
            eprintln!("SKIPPED: mounting a size-limited tmpfs needs root");
            return None;
        }
        let base = tempfile::tempdir().unwrap();
        let path = base.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let out =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&path).output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { path, _base: base }),
            Ok(o) => {
                eprintln!("SKIPPED: mount -t tmpfs failed: {}", String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

extern "C" {
    fn geteuid() -> u32;
}

fn open(dir: &Path, mode: Durability) -> Cache {
    Cache::builder()
        .max_bytes(256 << 20) // far more than the disk: the disk fills first
        .segment_bytes(256 << 10)
        .durability(mode)
        .write_buffer_bytes(64 << 10)
        .background_maintenance(false)
        .open(dir)
        .unwrap()
}

/// Writes distinct keys until a write fails; returns the acknowledged ones and the error.
fn fill(cache: &Cache, from: u32, acked: &mut BTreeMap<u32, Vec<u8>>) -> Error {
    for k in from.. {
        let v = value(k, k as usize, 3000 + (k as usize * 7919) % 5000);
        match cache.set(&key(k), &v, None) {
            Ok(()) => {
                acked.insert(k, v);
            }
            Err(e) => return e,
        }
        assert!(k < from + 100_000, "an 8 MiB disk never filled");
    }
    unreachable!()
}

fn check_enospc(e: &Error, dir: &Path) {
    let msg = e.to_string();
    match e {
        Error::Io { op, path, source } => {
            assert_eq!(source.raw_os_error(), Some(28), "{msg}");
            assert!(path.starts_with(dir), "{msg}");
            assert!(["write", "create", "fsync"].contains(op), "{msg}");
            assert!(msg.contains(&path.display().to_string()) && msg.contains("No space left on device"), "{msg}");
        }
        other => panic!("a full disk reported as {other:?}"),
    }
}

fn check_reads(cache: &Cache, acked: &BTreeMap<u32, Vec<u8>>) {
    for (k, v) in acked {
        assert_eq!(cache.get(&key(*k)).unwrap().as_deref(), Some(&v[..]), "key {k} after the disk filled");
    }
}

fn full_disk(mode: Durability) {
    let Some(fs) = Tmpfs::mount("8m") else { return };
    // An unrelated file takes 2 MiB; removing it frees the space later.
    let filler = fs.path.join("filler");
    std::fs::write(&filler, vec![7u8; 2 << 20]).unwrap();
    let dir = fs.path.join("cache");
    let cache = open(&dir, mode);
    let mut acked = BTreeMap::new();
    let e = fill(&cache, 0, &mut acked);
    eprintln!("{mode:?}: the disk filled after {} writes: {e}", acked.len());
    check_enospc(&e, &dir);
    assert!(acked.len() > 100);
    check_reads(&cache, &acked);
    // Later writes fail cleanly too, and reads go on.
    for k in 0..5 {
        let e = cache.set(&key(1_000_000 + k), &[1; 6000], None).unwrap_err();
        match mode {
            Durability::Buffered => assert!(matches!(e, Error::WritesDisabled { .. }), "{e}"),
            _ => check_enospc(&e, &dir),
        }
    }
    check_reads(&cache, &acked);
    // Free space.
    std::fs::remove_file(&filler).unwrap();
    let cache = if mode == Durability::Buffered {
        // The failed write was an acknowledged buffer: writes stay off until reopen.
        assert!(matches!(cache.set(b"x", b"y", None), Err(Error::WritesDisabled { .. })));
        drop(cache);
        let cache = open(&dir, mode);
        // The buffer that could not be written is lost; everything before it is there.
        acked.retain(|k, _| cache.get(&key(*k)).unwrap().is_some());
        assert!(acked.len() > 100);
        cache
    } else {
        cache
    };
    let first = acked.keys().max().unwrap() + 1;
    for k in first..first + 100 {
        let v = value(k, k as usize, 4000);
        cache.set(&key(k), &v, None).unwrap_or_else(|e| panic!("{mode:?}: a write failed after space was freed: {e}"));
        acked.insert(k, v);
    }
    check_reads(&cache, &acked);
    // And it all survives a reopen.
    cache.close().unwrap();
    let cache = open(&dir, mode);
    check_reads(&cache, &acked);
    drop(cache);
}

#[test]
fn a_full_disk_in_flushed_mode() {
    full_disk(Durability::Flushed);
}

#[test]
fn a_full_disk_in_synced_mode() {
    full_disk(Durability::Synced);
}

#[test]
fn a_full_disk_in_buffered_mode() {
    full_disk(Durability::Buffered);
}
