//! Found by the `open_dir` fuzz target: two records of one key with the same
//! sequence number, a value and a tombstone (only damage or a hand-made file
//! does that). Recovery settled the tie by the order it read segments in, and
//! reclaim dropped the tombstone because the value was not *older* than it;
//! copying the tombstone to a log's head also flipped the reading order. A
//! tombstone now wins such a tie whatever the order, and is kept while a value
//! with its number remains.

use crate::handmade::{self, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::Kind;
use keg::format::segment::LogKind;

/// Segment 1 and segment 2, one holding k's value and the other its
/// tombstone, both numbered 5; `value_first` says which comes first.
fn tie_dir(value_first: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let filler = vec![b'f'; 300];
    let value: [handmade::Rec; 2] = [(5, Kind::Value, b"k", b"old"), (6, Kind::Value, b"other", &filler)];
    let tombstone: [handmade::Rec; 2] = [(5, Kind::Tombstone, b"k", b""), (7, Kind::Value, b"more", &filler)];
    let (first, second) = if value_first { (&value, &tombstone) } else { (&tombstone, &value) };
    let (log1, log2) =
        if value_first { (LogKind::Probation, LogKind::Main) } else { (LogKind::Main, LogKind::Probation) };
    std::fs::write(dir.path().join("00000001.seg"), segment(log1, 1, first).0).unwrap();
    std::fs::write(dir.path().join("00000002.seg"), segment(log2, 2, second).0).unwrap();
    let c = Checkpoint { durable_seq: 7, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

#[test]
fn a_tombstone_wins_a_tie_whichever_segment_comes_first() {
    for value_first in [true, false] {
        let dir = tie_dir(value_first);
        let cache = handmade::open(dir.path(), 4096);
        assert!(cache.get(b"k").unwrap().is_none(), "value first: {value_first}");
        // Compaction copies or drops the tombstone; the value must stay hidden.
        cache.compact().unwrap();
        cache.compact().unwrap();
        assert!(cache.get(b"k").unwrap().is_none(), "value first: {value_first}");
        drop(cache);
        let cache = handmade::open(dir.path(), 4096);
        assert!(cache.get(b"k").unwrap().is_none(), "after a restart, value first: {value_first}");
        cache.abandon();
        let cache = handmade::open(dir.path(), 4096);
        assert!(cache.get(b"k").unwrap().is_none(), "after a crash, value first: {value_first}");
    }
}
