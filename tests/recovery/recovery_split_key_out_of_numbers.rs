//! Found by the `open_dir` fuzz target (input
//! `fuzz/regressions/open_dir/split-key-unsettled-when-out-of-numbers`): a
//! key whose main-log value a probation tombstone hides (damage or a
//! hand-made directory; keg writes deletes to main) is settled at open by
//! writing its newest record to main (`recovery::Recovered::split_keys`).
//! In a directory whose records already hold the last sequence number
//! nothing can be written, so the settling was skipped, but compaction
//! still ran (it copies records with their own numbers): it judged the
//! probation tombstone by probation values only, dropped it, and the
//! deleted value came back after the next open.
//!
//! Now a split key left unsettled makes probation tombstones count main-log
//! values too, until the next open.

use std::path::Path;

use crate::handmade::{self, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::Kind;
use keg::format::segment::LogKind;
use keg::format::MAX_SEQ;
use keg::Error;

fn write_dir(dir: &Path) {
    // Segment 1 (probation): the tombstone of "k". Segment 6 (main): its
    // older value, and a record holding the last number there is.
    let (seg1, _) = segment(LogKind::Probation, 1, &[(2, Kind::Tombstone, b"k", b"")]);
    let (seg6, _) =
        segment(LogKind::Main, 6, &[(1, Kind::Value, b"k", b"deleted value"), (MAX_SEQ, Kind::Value, b"x", b"last")]);
    std::fs::write(dir.join("00000001.seg"), &seg1).unwrap();
    std::fs::write(dir.join("00000006.seg"), &seg6).unwrap();
    let c = Checkpoint { durable_seq: MAX_SEQ, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.join("checkpoint"), c.encode()).unwrap();
}

/// Compacts; whatever needs a new number fails, the rest is done.
fn compact(cache: &keg::Cache) {
    match cache.compact() {
        Ok(()) | Err(Error::SequenceExhausted { .. }) => {}
        Err(e) => panic!("compact failed: {e}"),
    }
}

#[test]
fn compaction_out_of_numbers_keeps_the_probation_tombstone_that_hides_a_main_value() {
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path());
    let open = || handmade::open(dir.path(), 4096);
    let cache = open();
    assert!(cache.get(b"k").unwrap().is_none());
    assert_eq!(cache.get(b"x").unwrap().as_deref(), Some(&b"last"[..]));
    assert!(
        matches!(cache.set(b"y", b"1", None), Err(Error::SequenceExhausted { .. })),
        "the directory is out of numbers"
    );
    compact(&cache);
    assert!(cache.get(b"k").unwrap().is_none());
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(open, |cache, after| {
        assert!(cache.get(b"k").unwrap().is_none(), "the deleted value came back after compaction and {after}");
        compact(cache);
        assert_eq!(cache.get(b"x").unwrap().as_deref(), Some(&b"last"[..]), "after {after}");
    });
    let cache = open();
    assert!(cache.get(b"k").unwrap().is_none(), "the deleted value came back after a second compaction");
    cache.close().unwrap();
}
