//! Eviction's write cost is bounded: with a working set twice the cap read
//! uniformly (every entry is read again before its segment is reclaimed, so
//! S3-FIFO alone would keep nearly everything), eviction re-appends at most
//! half the bytes writes took in, plus one segment, and the cache writes at
//! most 1.5 bytes per byte set plus that segment (docs/design.md,
//! "Eviction"). Counted from `stats()`, as a user sees it.

use keg::Cache;

const CAP: u64 = 4 << 20;
const SEG: u64 = 64 << 10;
/// Keys of about 1 KiB each: about twice the cap.
const KEYS: u64 = 8_000;
const VALUE: usize = 1000;

use crate::fault_model::Rng;

#[test]
fn a_uniform_working_set_twice_the_cap_costs_at_most_the_reinsertion_budget() {
    let dir = tempfile::tempdir().unwrap();
    let cache =
        Cache::builder().max_bytes(CAP).segment_bytes(SEG).background_maintenance(false).open(dir.path()).unwrap();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut set_bytes = 0u64;
    // Sets of uniformly random keys, each followed by eight reads of
    // uniformly random keys (about half of them hits).
    for _ in 0..25_000 {
        let key = format!("item:{:05}", rng.next() % KEYS);
        let mut v = key.clone().into_bytes();
        v.resize(VALUE, b'v');
        cache.set(key.as_bytes(), &v, None).unwrap();
        set_bytes += VALUE as u64;
        for _ in 0..8 {
            let key = format!("item:{:05}", rng.next() % KEYS);
            if let Some(v) = cache.get(key.as_bytes()).unwrap() {
                assert!(v.starts_with(key.as_bytes()), "a wrong value for {key}");
            }
        }
    }
    let s = cache.stats();
    let taken_in = s.bytes_appended - s.bytes_rewritten;
    eprintln!(
        "set {set_bytes} value bytes ({taken_in} record bytes); appended {} ({:.2} per byte taken in); \
         reinserted {}, skipped {}; hit ratio {:.3}; {s:?}",
        s.bytes_appended,
        s.bytes_appended as f64 / taken_in as f64,
        s.bytes_reinserted,
        s.reinsertions_skipped,
        s.hit_ratio(),
    );
    assert!(s.evictions > 10_000 && s.segments_reclaimed > 100, "the cap never made eviction work: {s:?}");
    assert!(
        s.bytes_reinserted <= taken_in / 2 + SEG,
        "eviction re-appended {} bytes for {taken_in} taken in, over half plus one segment",
        s.bytes_reinserted
    );
    // Compaction (of overwritten values) may add to eviction's copies: at
    // most one byte per byte taken in at the default threshold.
    assert!(
        s.bytes_appended <= 3 * taken_in + SEG,
        "appended {} bytes for {taken_in} taken in: over 3 per byte plus one segment",
        s.bytes_appended
    );
    assert!(s.hits > 0 && s.reinsertions_skipped > 0, "{s:?}");
}
