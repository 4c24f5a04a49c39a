//! Found by the `open_dir` fuzz target: a directory in which one key has value
//! records in both logs. keg never writes that (a key's values sit in the log
//! of its current entry), but damage or a hand-made directory can. A delete
//! of such a key wrote its tombstone to the log of the entry it found, the
//! probation log; reclaiming probation segments counts only probation values
//! as ones a tombstone must keep hiding, so the tombstone was dropped, and
//! after a restart the main-log value came back: a deleted key resurrected.
//! Deletes now always write to the main log, whose tombstones are kept while
//! an older value of either log may exist.

use std::path::Path;

use crate::handmade::{self, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::Kind;
use keg::format::segment::LogKind;
use keg::Cache;

/// Small segments, so that a few records make one more than half full.
fn open(dir: &Path) -> Cache {
    handmade::open(dir, 4096)
}

/// Segment 1 (main log): k = "main" (sequence 1) beside a live entry that
/// keeps the segment below the compaction threshold. Segment 2 (probation,
/// more than half full, so that it is not resumed): k = "probation"
/// (sequence 2) and filler.
fn both_logs_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let filler = vec![b'f'; 1000];
    let (main, _) = segment(LogKind::Main, 1, &[(1, Kind::Value, b"k", b"main"), (6, Kind::Value, b"keep", &filler)]);
    let probation: [handmade::Rec; 4] = [
        (2, Kind::Value, b"k", b"probation"),
        (3, Kind::Value, b"f1", &filler),
        (4, Kind::Value, b"f2", &filler),
        (5, Kind::Value, b"f3", &filler),
    ];
    let (probation, _) = segment(LogKind::Probation, 2, &probation);
    std::fs::write(dir.path().join("00000001.seg"), main).unwrap();
    std::fs::write(dir.path().join("00000002.seg"), probation).unwrap();
    let c = Checkpoint { durable_seq: 6, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

#[test]
fn a_delete_stays_after_the_segments_of_the_deleted_value_and_the_tombstone_are_compacted() {
    let dir = both_logs_dir();
    let cache = open(dir.path());
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"probation"[..]));
    assert!(cache.delete(b"k").unwrap());
    // Make every probation segment mostly dead, so that maintenance
    // compacts them (and not segment 1, which stays mostly live).
    for f in [&b"f1"[..], b"f2", b"f3"] {
        cache.delete(f).unwrap();
    }
    for _ in 0..4 {
        for round in 0..3 {
            for i in 0..3 {
                cache.set(format!("later{i}").as_bytes(), &[b'0' + round; 1000], None).unwrap();
            }
        }
        cache.run_maintenance().unwrap();
    }
    assert!(dir.path().join("00000001.seg").exists(), "segment 1 must stay for the test to mean anything");
    assert!(!dir.path().join("00000002.seg").exists(), "the test must make maintenance compact segment 2");
    assert!(cache.get(b"k").unwrap().is_none());
    drop(cache);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "the deleted key came back with its main-log value");
    cache.abandon();
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "the deleted key came back after a crash");
}
