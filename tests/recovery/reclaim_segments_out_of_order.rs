//! Found by the `open_dir` fuzz target: a damaged or hand-made directory can
//! hold sequence numbers out of segment order, so that a log's oldest
//! segment holds a key's newest value and a later segment of the same log an
//! older one. Reclaim dropped an expired value from the probation log's
//! oldest segment without a tombstone, on the rule that nothing older can
//! remain there; after a restart the older value it had hidden came back. An
//! expired (or evicted) value is now dropped silently only if no other
//! segment the log's tombstones count holds a value no newer than it, in
//! the oldest segment as in any other.

use crate::handmade::{self, hint_file, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};

#[test]
fn an_expired_value_in_the_oldest_segment_does_not_uncover_an_older_value_in_a_newer_segment() {
    let dir = tempfile::tempdir().unwrap();
    // Probation segment 3 (the log's oldest): "k" (sequence 86), expired a
    // second ago, and a dead record that makes the segment worth compacting.
    let mut seg3 = SegmentHeader { log: LogKind::Probation, id: 3, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg3, Kind::Value, 86, NOW_MS - 1000, b"k", b"newest, expired").unwrap();
    record::encode(&mut seg3, Kind::Value, 87, 0, b"x", &[b'x'; 1500]).unwrap();
    record::encode(&mut seg3, Kind::Value, 88, 0, b"x", b"x again").unwrap();
    // Probation segment 5: an older value of "k" (sequence 4), no expiry,
    // beside a live entry that keeps the segment from being worth compacting.
    let keep = vec![b'y'; 2500];
    let (seg5, entries) =
        segment(LogKind::Probation, 5, &[(4, Kind::Value, b"k", b"older"), (89, Kind::Value, b"y", &keep)]);
    // (With its hint, as a sealed segment has one; without, open would write
    // one marking the older value shadowed, which hides it for good.)
    std::fs::write(dir.path().join("00000005.hint"), hint_file(5, &seg5, &entries, 89)).unwrap();
    std::fs::write(dir.path().join("00000003.seg"), seg3).unwrap();
    std::fs::write(dir.path().join("00000005.seg"), seg5).unwrap();
    let c = Checkpoint { durable_seq: 89, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();

    let cache = handmade::open(dir.path(), 4096);
    assert!(cache.get(b"k").unwrap().is_none(), "the newest value of k has expired");
    cache.run_maintenance().unwrap();
    assert!(!dir.path().join("00000003.seg").exists(), "the test needs maintenance to reclaim segment 3");
    assert!(dir.path().join("00000005.seg").exists(), "the test needs segment 5 to stay");
    assert!(cache.get(b"k").unwrap().is_none());
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(
        || handmade::open(dir.path(), 4096),
        |cache, after| {
            let got = cache.get(b"k").unwrap();
            assert!(got.is_none(), "after {after}, k read as the older value its expired newest value had hidden");
        },
    );
}
