//! Eviction's write cost on a uniform working set twice the cap (issue 15):
//! one thread sets uniformly random keys while two threads read uniformly
//! random keys, background maintenance on, until `--sets` sets; prints the
//! bytes appended per byte of values set, and eviction's counters.
//!
//! ```text
//! cargo run --release --example uniform_cost -- [--sets 24000] [--cap-mib 16]
//! ```
//!
//! Values are 1,000 bytes; the key space holds twice the cap in values.

use std::sync::atomic::{AtomicBool, Ordering};

#[path = "common/xorshift.rs"]
mod xorshift;
use xorshift::Rng;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str, default: u64| {
        args.iter().position(|a| a == name).map_or(default, |i| args[i + 1].parse().expect("a number"))
    };
    let sets = arg("--sets", 24_000);
    let cap = arg("--cap-mib", 16) << 20;
    const VALUE: usize = 1000;
    let keys = 2 * cap / VALUE as u64;
    let dir = tempfile::tempdir().unwrap();
    let cache = keg::Cache::builder().max_bytes(cap).open(dir.path()).unwrap();
    let done = AtomicBool::new(false);
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        for r in 0..2u64 {
            let (cache, done) = (&cache, &done);
            s.spawn(move || {
                let mut rng = Rng(0x51_7cc1_b727_220a ^ (r + 1));
                while !done.load(Ordering::Relaxed) {
                    let key = format!("item:{:07}", rng.next() % keys);
                    if let Some(v) = cache.get(key.as_bytes()).unwrap() {
                        assert!(v.starts_with(key.as_bytes()));
                    }
                }
            });
        }
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..sets {
            let key = format!("item:{:07}", rng.next() % keys);
            let mut v = key.clone().into_bytes();
            v.resize(VALUE, b'v');
            cache.set(key.as_bytes(), &v, None).unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let secs = started.elapsed().as_secs_f64();
    let s = cache.stats();
    let set_bytes = sets * VALUE as u64;
    println!(
        "cap {cap} B, {keys} keys, {sets} sets ({set_bytes} value bytes) in {secs:.1} s ({:.0} sets/s); \
         appended {} B = {:.2} per value byte set; reinserted {} B in {} reinsertions + {} promotions; \
         {} skipped; hit ratio {:.3}; {} evictions",
        sets as f64 / secs,
        s.bytes_appended,
        s.bytes_appended as f64 / set_bytes as f64,
        s.bytes_reinserted,
        s.reinsertions,
        s.promotions,
        s.reinsertions_skipped,
        s.hit_ratio(),
        s.evictions,
    );
}
