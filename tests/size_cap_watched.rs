//! The size cap holds at every moment, not only between a writer's calls: a
//! second thread reads `stats().disk_bytes` all along while writers set
//! random keys and background maintenance evicts and compacts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keg::Cache;

const CAP: u64 = 16 << 20;
const SEG: u64 = 256 << 10;
const KEYS: u64 = 50_000;
/// Sets per writer; the run also stops after `MAX_RUN` (a bound on the
/// test's length, never asserted).
const SETS: u64 = 120_000;
const MAX_RUN: Duration = Duration::from_secs(4);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs `writers` threads of random sets against a watcher; returns the
/// largest `disk_bytes` seen, and how many times it looked.
fn watch(writers: u64) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().max_bytes(CAP).segment_bytes(SEG).open(dir.path()).unwrap();
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    let looks = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(cache.stats().disk_bytes, Ordering::Relaxed);
                looks.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let cache = &cache;
                s.spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (w + 1));
                    for i in 0..SETS {
                        let key = format!("key:{:05}", rng.next() % KEYS);
                        let len = 24 + (rng.next() % 1201) as usize;
                        cache.set(key.as_bytes(), &vec![b'v'; len], None).unwrap();
                        if i % 1024 == 0 && started.elapsed() > MAX_RUN {
                            break;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let seen = peak.load(Ordering::Relaxed).max(cache.stats().disk_bytes);
    eprintln!(
        "{writers} writer(s) for {:?}: peak {seen} bytes ({:.3} MiB) over {} looks; cap {CAP} + segment {SEG} = {}; {:?}",
        started.elapsed(),
        seen as f64 / (1 << 20) as f64,
        looks.load(Ordering::Relaxed),
        CAP + SEG,
        cache.stats()
    );
    (seen, looks.load(Ordering::Relaxed))
}

#[test]
fn one_writer_never_takes_the_files_past_the_cap_plus_one_segment() {
    let (peak, looks) = watch(1);
    assert!(looks > 10, "the watcher looked only {looks} times");
    assert!(peak <= CAP + SEG, "disk_bytes reached {peak}, over the cap plus one segment ({})", CAP + SEG);
}

#[test]
fn four_writers_never_take_the_files_past_the_cap_plus_one_segment() {
    let (peak, looks) = watch(4);
    assert!(looks > 10, "the watcher looked only {looks} times");
    assert!(peak <= CAP + SEG, "disk_bytes reached {peak}, over the cap plus one segment ({})", CAP + SEG);
}
