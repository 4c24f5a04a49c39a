//! Many threads reading and writing at once, each checking its own keys.

use keg::{Cache, Durability};
use std::sync::atomic::{AtomicBool, Ordering};

fn hammer(durability: Durability, threads: usize, ops: usize) {
    let dir = tempfile::tempdir().unwrap();
    let cache =
        Cache::builder().max_bytes(256 << 20).segment_bytes(256 << 10).durability(durability).open(dir.path()).unwrap();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // A reader of shared keys that never sees a value that was not written for its key.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for k in 0..50u32 {
                    if let Some(v) = cache.get(format!("shared{k}").as_bytes()).unwrap() {
                        assert!(v.starts_with(format!("shared{k}:").as_bytes()), "wrong value for shared{k}");
                    }
                }
            }
        });
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let cache = &cache;
                s.spawn(move || {
                    let mut mine = std::collections::HashMap::new();
                    let mut x = t as u64 * 7919 + 1;
                    for i in 0..ops {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        let k = (x >> 33) % 200;
                        let key = format!("t{t}-{k}");
                        match (x >> 20) % 10 {
                            0..=4 => {
                                let v = format!("{key}:{i}:{}", "v".repeat((x % 700) as usize));
                                cache.set(key.as_bytes(), v.as_bytes(), None).unwrap();
                                mine.insert(k, v);
                            }
                            5 => {
                                cache.delete(key.as_bytes()).unwrap();
                                mine.remove(&k);
                            }
                            6 => {
                                let sk = format!("shared{}", k % 50);
                                cache.set(sk.as_bytes(), format!("{sk}:{t}:{i}").as_bytes(), None).unwrap();
                            }
                            _ => {
                                let got = cache.get(key.as_bytes()).unwrap();
                                assert_eq!(got.as_deref(), mine.get(&k).map(|v| v.as_bytes()), "thread {t} key {key}");
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        // (The reader stops whether or not a worker panicked: a panic must
        // fail the test, not leave the reader spinning and the test hanging.)
        let joined: Vec<_> = workers.into_iter().map(|w| w.join()).collect();
        stop.store(true, Ordering::Relaxed);
        let finals: Vec<_> = joined.into_iter().map(|r| r.unwrap_or_else(|e| std::panic::resume_unwind(e))).collect();
        for (t, mine) in finals.iter().enumerate() {
            for k in 0..200 {
                let got = cache.get(format!("t{t}-{k}").as_bytes()).unwrap();
                assert_eq!(got.as_deref(), mine.get(&k).map(|v| v.as_bytes()));
            }
        }
    });
    cache.compact().unwrap();
    drop(cache);
    let cache = Cache::open(dir.path()).unwrap();
    assert!(!cache.is_empty());
}

#[test]
fn mixed_operations_from_four_threads_flushed() {
    hammer(Durability::Flushed, 4, 20_000);
}

#[test]
fn mixed_operations_from_four_threads_synced_with_group_commit() {
    hammer(Durability::Synced, 4, 1_500);
}

#[test]
fn mixed_operations_from_four_threads_buffered() {
    hammer(Durability::Buffered, 4, 20_000);
}

#[test]
fn cache_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Cache>();
    assert_send_sync::<keg::Value>();
}

#[test]
fn readers_do_not_wait_for_a_writer_holding_the_disk() {
    // A synced writer spends most of its time in fsync; readers run meanwhile.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().durability(Durability::Synced).open(dir.path()).unwrap();
    cache.set(b"hot", b"value", None).unwrap();
    let writing = AtomicBool::new(true);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..200u32 {
                cache.set(format!("w{i}").as_bytes(), &[0; 4096], None).unwrap();
            }
            writing.store(false, Ordering::Relaxed);
        });
        let mut reads = 0u64;
        while writing.load(Ordering::Relaxed) {
            assert!(cache.get(b"hot").unwrap().is_some());
            reads += 1;
        }
        // Not a timing assertion: only that reads made progress while the writer ran.
        assert!(reads > 200, "only {reads} reads completed during 200 synced writes");
    });
}

#[test]
fn gets_from_more_threads_than_stripes_are_all_counted() {
    // hits, misses and the get latency histogram are kept per thread stripe
    // (so that readers on different cores write different cache lines);
    // `stats()` must still count every get of every thread, with more
    // threads than stripes sharing some.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(b"present", b"v", None).unwrap();
    let (threads, gets) = (40u64, 160u64);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for i in 0..gets {
                    let key: &[u8] = if i % 4 == 0 { b"absent" } else { b"present" };
                    assert_eq!(cache.get(key).unwrap().is_some(), i % 4 != 0);
                }
            });
        }
    });
    let s = cache.stats();
    assert_eq!((s.hits, s.misses), (threads * gets * 3 / 4, threads * gets / 4));
    // One get in 16 per thread is timed.
    assert_eq!(s.get_latency.count(), threads * gets / 16);
}

/// Deleted files under `dir` that this process still has open or mapped.
fn deleted_files_held(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.canonicalize().unwrap();
    let mut held: Vec<String> = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('/').map(|(_, p)| format!("/{p}")))
        .collect();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            held.push(target.to_string_lossy().into_owned());
        }
    }
    held.retain(|p| p.starts_with(dir.to_str().unwrap()) && p.ends_with("(deleted)"));
    held
}

#[test]
#[cfg(target_os = "linux")]
fn values_read_on_many_threads_keep_their_segment_until_the_last_is_dropped() {
    // A `Value` keeps its segment mapped after compaction removes the file;
    // each thread's values hold the segment through that thread's own handle.
    // Once every value is dropped, on whichever thread, nothing of the removed
    // segment may stay open or mapped: its disk space must be given back.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().max_bytes(64 << 20).segment_bytes(256 << 10).open(dir.path()).unwrap();
    for i in 0..100u32 {
        cache.set(format!("k{i}").as_bytes(), format!("old{i}").repeat(200).as_bytes(), None).unwrap();
    }
    let held: Vec<Vec<keg::Value>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| s.spawn(|| (0..100u32).map(|i| cache.get(format!("k{i}").as_bytes()).unwrap().unwrap()).collect()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Every key moves to a newer segment; the old ones become dead and go.
    for i in 0..100u32 {
        cache.set(format!("k{i}").as_bytes(), b"new", None).unwrap();
    }
    cache.compact().unwrap();
    assert!(!deleted_files_held(dir.path()).is_empty(), "compaction removed no segment the values were in");
    // The values are intact, read on other threads than the ones that got them.
    std::thread::scope(|s| {
        for (t, values) in held.iter().enumerate() {
            s.spawn(move || {
                for (i, v) in values.iter().enumerate() {
                    assert_eq!(&v[..], format!("old{i}").repeat(200).as_bytes(), "thread {t} key {i}");
                }
            });
        }
    });
    // Dropped on threads of their own: the removed segments are let go.
    std::thread::scope(|s| {
        for values in held {
            s.spawn(move || drop(values));
        }
    });
    assert_eq!(deleted_files_held(dir.path()), Vec::<String>::new());
    assert_eq!(cache.get(b"k7").unwrap().unwrap(), b"new");
}
