//! The simulator's in-memory files (`FaultFs::in_memory`, what the fuzz
//! targets and the model tests run on) behave as the real ones do: the same
//! workload, with power cuts and kills at the same storage operations and
//! the same crash seeds, leaves byte-for-byte the same files (the `LOCK`
//! file aside, which memory does not need) and the same answers on both.
//!
//! Sessions per mode: `KEG_MEMORY_BACKEND_SESSIONS` (default 12).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::fault_model::*;
use keg::sim::FaultFs;
use keg::{Cache, Durability, ManualClock};

const T0: u64 = 1_700_000_000_000;
const KEYS: u32 = 40;
const SEG: u64 = 4 << 10;

fn builder(fs: &FaultFs, clock: &ManualClock, mode: Durability) -> keg::Builder {
    Cache::builder()
        .max_bytes(8 * SEG)
        .segment_bytes(SEG)
        .durability(mode)
        .write_buffer_bytes(4 << 10)
        .background_maintenance(false)
        .clock(clock.clone())
        .storage(fs.clone())
}

/// The cache's files (not `LOCK`) with their bytes.
fn files(fs: &FaultFs, dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut files = fs.files(dir);
    files.remove("LOCK");
    files
}

/// Runs the same sessions on `fs` in `dir`; returns, per session, what each
/// key read after the reopen and the files then.
fn sessions(fs: &FaultFs, dir: &Path, mode: Durability, n: u64) -> Vec<(Vec<Option<Vec<u8>>>, usize)> {
    let clock = ManualClock::new(T0);
    let mut rng = Rng(0x3e30_4a11 + mode as u64);
    let mut out = Vec::new();
    for session in 0..n {
        let cache = builder(fs, &clock, mode).open(dir).unwrap_or_else(|e| panic!("session {session}: open: {e}"));
        let end = rng.below(3);
        fs.cut_power_after(1 + rng.below(300));
        for i in 0..200u64 {
            clock.advance(Duration::from_millis(20));
            let x = rng.next();
            let k = (x % KEYS as u64) as u32;
            let _ = match (x >> 40) % 16 {
                0..=9 => cache.set(&key(k), &value(k, i as usize, 30 + (x >> 20) as usize % 900), None),
                10..=12 => cache.delete(&key(k)).map(drop),
                13 => cache.compact(),
                14 => cache.run_maintenance(),
                _ => cache.sync(),
            };
            if fs.power_is_out() {
                break;
            }
        }
        fs.cut_power_now();
        cache.abandon();
        match end {
            0 => fs.revive(),
            _ => drop(fs.crash(session).unwrap()),
        }
        let cache = builder(fs, &clock, mode).open(dir).unwrap_or_else(|e| panic!("session {session}: reopen: {e}"));
        let got = (0..KEYS).map(|k| cache.get(&key(k)).unwrap().map(|v| v.to_vec())).collect();
        cache.close().unwrap();
        out.push((got, files(fs, dir).len()));
    }
    out
}

fn same_on_both(mode: Durability) {
    let n = env_or("KEG_MEMORY_BACKEND_SESSIONS", 12);
    let real_dir = fast_tempdir();
    let real = FaultFs::new();
    let mem = FaultFs::in_memory();
    let mem_dir = Path::new("/keg-memory-backend/cache");
    let on_files = sessions(&real, real_dir.path(), mode, n);
    let in_memory = sessions(&mem, mem_dir, mode, n);
    for (s, (a, b)) in on_files.iter().zip(&in_memory).enumerate() {
        assert_eq!(a, b, "{mode:?} session {s}: real files and memory disagree");
    }
    assert_eq!(files(&real, real_dir.path()), files(&mem, mem_dir), "{mode:?}: the files differ at the end");
    assert!(!mem_dir.exists(), "the in-memory backend touched the disk");
    assert!(
        real.ops() > 0 && real.ops() == mem.ops(),
        "{} storage operations on files, {} in memory",
        real.ops(),
        mem.ops()
    );
}

#[test]
fn flushed_mode_is_the_same_on_files_and_in_memory() {
    same_on_both(Durability::Flushed);
}

#[test]
fn buffered_mode_is_the_same_on_files_and_in_memory() {
    same_on_both(Durability::Buffered);
}

#[test]
fn synced_mode_is_the_same_on_files_and_in_memory() {
    same_on_both(Durability::Synced);
}

/// The directory lock holds within the simulator, and only there.
#[test]
fn the_lock_is_per_directory_in_memory() {
    let fs = FaultFs::in_memory();
    let dir = Path::new("/keg-memory-lock/cache");
    let first = Cache::builder().storage(fs.clone()).open(dir).unwrap();
    assert!(matches!(Cache::builder().storage(fs.clone()).open(dir), Err(keg::Error::Locked { .. })));
    // Another simulator is another machine's memory.
    Cache::builder().storage(FaultFs::in_memory()).open(dir).unwrap();
    drop(first);
    Cache::builder().storage(fs).open(dir).unwrap();
}
