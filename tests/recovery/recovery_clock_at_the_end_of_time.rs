//! Found by the `open_dir` fuzz target: a checkpoint (or segment header)
//! whose clock mark is near `u64::MAX` raises the cache's clock floor there,
//! and the next maintenance round overflowed computing when to refresh the
//! mark (a panic in builds with overflow checks).

use keg::format::checkpoint::Checkpoint;
use keg::{Cache, ManualClock};

#[test]
fn maintenance_copes_with_a_clock_mark_at_the_end_of_time() {
    let dir = tempfile::tempdir().unwrap();
    let c = Checkpoint { durable_seq: 0, clock_ms: u64::MAX - 1, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let cache = Cache::builder().background_maintenance(false).clock(clock).open(dir.path()).unwrap();
    cache.set(b"k", b"v", None).unwrap();
    cache.run_maintenance().unwrap();
    cache.run_maintenance().unwrap();
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    cache.close().unwrap();
}
