//! fsyncgate: after a failed fsync the kernel may have dropped the dirty
//! pages and marked them clean, so a retried fsync can succeed without them
//! (PostgreSQL lost data this way until 2018). The simulator's fsyncgate mode
//! behaves like that: the failed fsync's writes stay readable, but no later
//! fsync makes them durable and a power cut may drop or tear them.
//!
//! keg's answer: a failed fsync of segment data turns writes off until the
//! cache is reopened. In synced mode the write whose fsync failed, and every
//! later write, fails; nothing written after the failure claims durability
//! (the checkpoint's durable mark does not move, no hint file is written);
//! and whatever a power cut then does, every write acknowledged before the
//! failure is still there.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Barrier};

use crate::fault_model::*;
use keg::format::checkpoint::Checkpoint;
use keg::sim::{FaultError, FaultFs, Op};
use keg::{Cache, Durability, Error};

fn open(fs: &FaultFs, dir: &Path, mode: Durability) -> Cache {
    Cache::builder()
        .max_bytes(1 << 20)
        .segment_bytes(4096)
        .durability(mode)
        .background_maintenance(false)
        .storage(fs.clone())
        .open(dir)
        .unwrap()
}

fn durable_seq_on_disk(dir: &Path) -> u64 {
    Checkpoint::decode(&std::fs::read(dir.join("checkpoint")).unwrap()).unwrap().durable_seq
}

fn hint_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".hint"))
        .collect();
    v.sort();
    v
}

#[test]
fn synced_mode_a_failed_fsync_fails_that_write_and_every_later_one_until_reopen() {
    let mut lost = 0;
    for seed in 0..24u64 {
        let dir = fast_tempdir();
        let fs = FaultFs::new();
        fs.set_fsyncgate(true);
        let cache = open(&fs, dir.path(), Durability::Synced);
        let mut hist = History::new(40);
        let mut rng = Rng(seed * 7 + 1);
        // Acknowledged writes, across a few segments.
        for i in 0..(10 + seed as usize % 20) {
            let k = rng.below(40) as u32;
            let v = value(k, i, 200 + rng.below(800) as usize);
            cache.set(&key(k), &v, None).unwrap();
            hist.push(k, Some(v), 0, true);
        }
        cache.run_maintenance().unwrap();
        let durable = durable_seq_on_disk(dir.path());
        let hints = hint_files(dir.path());
        // The next fsync fails; the one after would succeed (the dangerous case).
        fs.fail(Some(Op::Sync), 1, FaultError::Io, false);
        let v = value(0, 1000, 500);
        let e = cache.set(&key(0), &v, None).unwrap_err();
        hist.push(0, Some(v), 0, false);
        assert!(matches!(&e, Error::Io { op: "fsync", path, .. } if path.extension().unwrap() == "seg"), "{e}");
        // Every later write fails, whatever it is, and says why.
        for i in 0..20 {
            let k = rng.below(40) as u32;
            let r = if i % 3 == 0 { cache.delete(&key(k)).map(|_| ()) } else { cache.set(&key(k), b"later", None) };
            let e = r.unwrap_err();
            assert!(matches!(&e, Error::WritesDisabled { op: "fsync", .. }), "{e}");
            assert!(e.to_string().contains("reopen"), "{e}");
        }
        assert!(cache.sync().is_err(), "sync claimed durability after a failed fsync");
        let _ = cache.run_maintenance();
        let _ = cache.compact();
        // Nothing claims durability it does not have.
        assert_eq!(durable_seq_on_disk(dir.path()), durable, "the checkpoint's durable mark moved");
        assert_eq!(hint_files(dir.path()), hints, "a hint file was written after the failed fsync");
        // Reads still work.
        let got = hist.read_all(&cache);
        hist.check_all(&got, 0, 0, false).unwrap();
        // The power goes out: what the failed fsync covered may be gone, but
        // every acknowledged write is there, and nothing else is wrong.
        assert!(cache.close().is_err(), "close claimed success after a failed fsync");
        lost += fs.crash(seed).unwrap();
        let cache = open(&fs, dir.path(), Durability::Synced);
        let got = hist.read_all(&cache);
        if let Err(why) = hist.check_all(&got, 0, 0, false) {
            explain(&hist, &got, dir.path());
            panic!("seed {seed}: {why}");
        }
        // Writes work again after the reopen.
        cache.set(b"after", b"reopen", None).unwrap();
    }
    assert!(lost > 0, "the power cuts never lost anything: the test is not testing");
}

#[test]
fn synced_mode_concurrent_writers_sharing_a_failed_fsync_all_fail() {
    // Group commit: one thread fsyncs for every writer waiting. If that fsync
    // fails, every write it covered fails, and no later write succeeds; every
    // write that did succeed survives a power cut.
    let mut skipped = 0;
    for round in 0..8u64 {
        let dir = fast_tempdir();
        let fs = FaultFs::new();
        fs.set_fsyncgate(true);
        let cache = Arc::new(open(&fs, dir.path(), Durability::Synced));
        let threads = 4;
        let barrier = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let cache = cache.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut results = Vec::new();
                    for i in 0..60 {
                        let k = format!("t{t}-{i}");
                        let r = cache.set(k.as_bytes(), k.as_bytes(), None);
                        results.push((k, r.map_err(|e| e.to_string())));
                    }
                    results
                })
            })
            .collect();
        fs.fail(Some(Op::Sync), 5 + round * 7, FaultError::Io, false);
        barrier.wait();
        let results: Vec<Vec<(String, Result<(), String>)>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(fs.injected(), 1, "round {round}: the fault was not reached");
        if !fs.injected_faults().iter().all(|(op, path)| is_segment_fsync(*op, path)) {
            // It hit the checkpoint's fsync (a clock-mark renewal): nothing to see here.
            skipped += 1;
            continue;
        }
        let mut acked = BTreeMap::new();
        for per_thread in &results {
            let first_err = per_thread.iter().position(|(_, r)| r.is_err()).expect("every writer saw the failure");
            assert!(
                per_thread[first_err..].iter().all(|(_, r)| r.is_err()),
                "a write succeeded after writes were disabled"
            );
            for (k, _) in &per_thread[..first_err] {
                acked.insert(k.clone(), ());
            }
        }
        let cache = Arc::into_inner(cache).unwrap();
        cache.abandon();
        fs.crash(round).unwrap();
        let cache = open(&fs, dir.path(), Durability::Synced);
        for k in acked.keys() {
            assert_eq!(
                cache.get(k.as_bytes()).unwrap().as_deref(),
                Some(k.as_bytes()),
                "round {round}: acknowledged {k} lost after a failed shared fsync and a power cut"
            );
        }
    }
    assert!(skipped < 4, "the fault missed the segments in {skipped} rounds of 8");
}

#[test]
fn flushed_mode_a_failed_fsync_in_maintenance_leaves_the_durable_mark_alone() {
    for seed in 0..12u64 {
        let dir = fast_tempdir();
        let fs = FaultFs::new();
        fs.set_fsyncgate(true);
        let cache = open(&fs, dir.path(), Durability::Flushed);
        let mut hist = History::new(20);
        for i in 0..40 {
            let k = (i * 7 % 20) as u32;
            let v = value(k, i, 300);
            cache.set(&key(k), &v, None).unwrap();
            hist.push(k, Some(v), 0, true);
        }
        let durable = durable_seq_on_disk(dir.path());
        fs.fail(Some(Op::Sync), 1, FaultError::Io, false);
        let e = cache.compact().unwrap_err();
        assert!(matches!(&e, Error::Io { op: "fsync", .. }), "{e}");
        assert!(matches!(cache.set(b"x", b"y", None), Err(Error::WritesDisabled { .. })));
        let _ = cache.compact();
        let _ = cache.run_maintenance();
        assert!(cache.close().is_err());
        assert_eq!(durable_seq_on_disk(dir.path()), durable, "the durable mark moved after a failed fsync");
        // After a power cut: a prefix of history (flushed mode may lose the tail).
        fs.crash(seed).unwrap();
        let cache = open(&fs, dir.path(), Durability::Flushed);
        let got = hist.read_all(&cache);
        if let Err(why) = hist.check_prefix(&got, 0, 0, 0, true) {
            explain(&hist, &got, dir.path());
            panic!("seed {seed}: {why}");
        }
    }
}

#[test]
fn a_reopen_in_the_same_boot_after_a_failed_fsync_makes_what_it_serves_durable() {
    // No power cut between the failed fsync and the reopen: the page cache
    // still shows the bytes the failed fsync covered, though the kernel may
    // have given up on writing them. The reopen serves them, and settles its
    // durable mark over them; so it must make them durable first, or a
    // later power cut takes back what it served (and acknowledged writes
    // made after the reopen, behind them in the same segment).
    let mut lost = 0;
    for seed in 0..24u64 {
        let dir = fast_tempdir();
        let marker = dir.path().join("fsync-failed");
        let fs = FaultFs::new();
        fs.set_fsyncgate(true);
        let cache = open(&fs, dir.path(), Durability::Synced);
        let mut hist = History::new(40);
        let mut rng = Rng(seed * 11 + 3);
        for i in 0..(4 + seed as usize % 12) {
            let k = rng.below(40) as u32;
            let v = value(k, i, 100 + rng.below(300) as usize);
            cache.set(&key(k), &v, None).unwrap();
            hist.push(k, Some(v), 0, true);
        }
        fs.fail(Some(Op::Sync), 1, FaultError::Io, false);
        let k = rng.below(40) as u32;
        let v = value(k, 1000, 200);
        assert!(cache.set(&key(k), &v, None).is_err());
        hist.push(k, Some(v), 0, false);
        assert!(marker.exists(), "a failed fsync left no marker for the next open");
        assert!(cache.close().is_err());
        // Reopened in the same boot: what it serves is now durable.
        let cache = open(&fs, dir.path(), Durability::Synced);
        assert!(!marker.exists(), "the marker outlived the open that made the files durable");
        let got = hist.read_all(&cache);
        hist.check_all(&got, 0, 0, false).unwrap();
        let served = hist.writes.len();
        hist.settle(served, &got, 0);
        for i in 0..(3 + seed as usize % 5) {
            let k = rng.below(40) as u32;
            let v = value(k, 2000 + i, 100 + rng.below(200) as usize);
            cache.set(&key(k), &v, None).unwrap();
            hist.push(k, Some(v), 0, true);
        }
        cache.abandon();
        lost += fs.crash(seed).unwrap();
        let cache = open(&fs, dir.path(), Durability::Synced);
        let got = hist.read_all(&cache);
        if let Err(why) = hist.check_all(&got, 0, 0, false) {
            explain(&hist, &got, dir.path());
            panic!("seed {seed}: {why}");
        }
    }
    assert!(lost > 0, "the power cuts never lost anything: the test is not testing");
}
