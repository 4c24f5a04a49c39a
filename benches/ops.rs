//! Throughput of `get` and `set` at 1 and 2 threads, for 100-byte and 4 KiB
//! values, in the default durability mode (`Flushed`: every `set` is handed
//! to the OS with one `pwrite` before it returns).
//!
//! ```text
//! cargo bench --bench ops                 # all eight cases
//! cargo bench --bench ops -- get/100B     # a subset (criterion filter)
//! ```
//!
//! Criterion reports the time per operation and the throughput in ops/s
//! (`thrpt`). With 2 threads the figure is the combined rate of both threads:
//! each measured batch is split between the threads, which start together at
//! a barrier, and the batch's time is that of the slowest thread.
//!
//! * `get`: a cache pre-populated with 100 000 keys of 40 bytes; every read
//!   picks a key uniformly at random (a per-thread xorshift), so every read is
//!   a hit and verifies the record's CRC-32. The returned handle is dropped
//!   after its length is read (no copy).
//! * `set`: overwrites keys picked uniformly at random from 100 000, so the
//!   cache reaches the steady state of a full cache: background compaction
//!   and, for 4 KiB values, eviction run while it is measured (the counters
//!   are printed to stderr after each case).
//!
//! Data lives in a temporary directory under cargo's target directory and is
//! removed after each case (at most about 1 GiB at a time).

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keg::Cache;

/// Distinct keys in every case.
const KEYS: u64 = 100_000;
/// Key length in bytes (the issue's figure for index memory uses 40 too).
const KEY_LEN: usize = 40;

/// The `i`-th key: exactly 40 bytes.
fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    let s = format!("bench:key:{i:030}");
    k.copy_from_slice(s.as_bytes());
    k
}

/// A small, fast PRNG, one per thread, so that key choice costs a few cycles.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    #[inline]
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

fn data_root() -> PathBuf {
    // Cargo sets this for benches: a scratch directory inside the target directory.
    let root = PathBuf::from(option_env!("CARGO_TARGET_TMPDIR").unwrap_or("target/tmp"));
    std::fs::create_dir_all(&root).expect("create the benchmark data directory");
    root
}

fn open(dir: &std::path::Path) -> Cache {
    Cache::builder().max_bytes(1 << 30).open(dir).expect("open the benchmark cache")
}

/// Runs `iters` operations split over `threads` threads (thread `t` calls
/// `op(t, rng)` for its share) and returns the time of the slowest thread,
/// measured from a common start.
fn run_split<F>(threads: usize, iters: u64, op: F) -> Duration
where
    F: Fn(&mut XorShift) + Sync,
{
    if threads == 1 {
        let mut rng = XorShift::new(iters);
        let start = Instant::now();
        for _ in 0..iters {
            op(&mut rng);
        }
        return start.elapsed();
    }
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                let share = iters / threads as u64 + u64::from(t < iters % threads as u64);
                let (barrier, op) = (&barrier, &op);
                s.spawn(move || {
                    let mut rng = XorShift::new(iters ^ ((t + 1) << 32));
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..share {
                        op(&mut rng);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("benchmark thread")).max().unwrap_or_default()
    })
}

const VALUE_SIZES: [(&str, usize); 2] = [("100B", 100), ("4KiB", 4096)];
const THREADS: [usize; 2] = [1, 2];

fn bench_get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    for (label, size) in VALUE_SIZES {
        let dir = tempfile::Builder::new().prefix("keg-bench-get").tempdir_in(data_root()).unwrap();
        let cache = open(dir.path());
        let value = vec![0xa5u8; size];
        for i in 0..KEYS {
            cache.set(&key(i), &value, None).unwrap();
        }
        let keys: Vec<[u8; KEY_LEN]> = (0..KEYS).map(key).collect();
        for threads in THREADS {
            group.bench_function(BenchmarkId::new(label, format!("{threads}t")), |b| {
                b.iter_custom(|iters| {
                    run_split(threads, iters, |rng| {
                        let k = &keys[(rng.next() % KEYS) as usize];
                        let v = cache.get(k).unwrap().expect("pre-populated key");
                        black_box(v.len());
                    })
                })
            });
        }
        let s = cache.stats();
        eprintln!(
            "get/{label}: hits {} misses {} corrupt {} evictions {}",
            s.hits, s.misses, s.corrupt_reads, s.evictions
        );
        assert_eq!((s.misses, s.evictions), (0, 0), "every read must be a hit");
        cache.close().unwrap();
    }
    group.finish();
}

fn bench_set(c: &mut Criterion) {
    let mut group = c.benchmark_group("set");
    group.throughput(Throughput::Elements(1));
    for (label, size) in VALUE_SIZES {
        let value = vec![0x5au8; size];
        for threads in THREADS {
            let dir = tempfile::Builder::new().prefix("keg-bench-set").tempdir_in(data_root()).unwrap();
            let cache = open(dir.path());
            let keys: Vec<[u8; KEY_LEN]> = (0..KEYS).map(key).collect();
            group.bench_function(BenchmarkId::new(label, format!("{threads}t")), |b| {
                b.iter_custom(|iters| {
                    run_split(threads, iters, |rng| {
                        let k = &keys[(rng.next() % KEYS) as usize];
                        cache.set(k, &value, None).unwrap();
                    })
                })
            });
            let s = cache.stats();
            eprintln!(
                "set/{label}/{threads}t: sets {} evictions {} compactions {} segments reclaimed {} disk {} MiB",
                s.sets,
                s.evictions,
                s.compactions,
                s.segments_reclaimed,
                s.disk_bytes >> 20
            );
            cache.close().unwrap();
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(5))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_get, bench_set
}
criterion_main!(benches);
