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
