//! Found by the `open_dir` fuzz target: once an open had declared a range of
//! history void (records above a hole, after a crash or a lost checkpoint),
//! the next crash lost every write acknowledged since. The search for a hole
//! in the next recovery stepped over the void range and then read the first
//! sequence number past it as missing, so it voided the new writes too:
//! acknowledged writes lost to a `kill -9` in the default durability mode.
//!
//! Also found by it: open forgot void ranges that no record reaches any more
//! before it picked the next sequence number, while the checkpoint on disk
//! kept them, so new writes could get numbers the next recovery voids.

use std::path::Path;

use crate::handmade::{self, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::Kind;
use keg::format::segment::LogKind;
use keg::Cache;

fn open(dir: &Path) -> Cache {
    handmade::open(dir, 64 << 10)
}

/// Writes some keys, crashes, reopens, and checks they all survived, twice.
fn writes_survive_crashes(dir: &Path, cache: Cache) {
    for round in 0..2 {
        for i in 0..5 {
            cache.set(format!("new-{round}-{i}").as_bytes(), b"acknowledged", None).unwrap();
        }
    }
    cache.abandon();
    let cache = open(dir);
    for round in 0..2 {
        for i in 0..5 {
            let key = format!("new-{round}-{i}");
            assert_eq!(cache.get(key.as_bytes()).unwrap().as_deref(), Some(&b"acknowledged"[..]), "{key} was lost");
        }
    }
    cache.set(b"after the second open", b"too", None).unwrap();
    cache.abandon();
    let cache = open(dir);
    assert!(cache.get(b"new-1-4").unwrap().is_some());
    assert!(cache.get(b"after the second open").unwrap().is_some());
}

#[test]
fn writes_after_a_void_range_survive_a_crash() {
    // A segment whose only record has sequence number 32 and no checkpoint:
    // 1..=31 are missing, so open declares 1..=32 void.
    let dir = tempfile::tempdir().unwrap();
    let (seg, _) = segment(LogKind::Probation, 1, &[(32, Kind::Value, b"old", b"value after a hole")]);
    std::fs::write(dir.path().join("00000001.seg"), seg).unwrap();
    let cache = open(dir.path());
    assert!(cache.get(b"old").unwrap().is_none(), "a record above a hole is void");
    writes_survive_crashes(dir.path(), cache);
}

#[test]
fn writes_after_a_lost_checkpoint_survive_a_crash() {
    // Compaction drops superseded records, leaving holes below the durable
    // mark; without the checkpoint (and the hints, which also carry the mark)
    // open must treat everything above the first hole as void.
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    for i in 0..50u32 {
        cache.set(format!("k{}", i % 5).as_bytes(), &i.to_le_bytes(), None).unwrap();
    }
    cache.compact().unwrap();
    cache.close().unwrap();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        if path.file_name().unwrap() == "checkpoint" || path.extension().is_some_and(|x| x == "hint") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let cache = open(dir.path());
    assert!(cache.stats().recovery_void_records > 0, "the test needs a void range");
    writes_survive_crashes(dir.path(), cache);
}

#[test]
fn writes_survive_a_crash_when_the_checkpoint_holds_a_void_range_above_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let c = Checkpoint { durable_seq: 0, clock_ms: NOW_MS, void_ranges: vec![(1, 20)], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    writes_survive_crashes(dir.path(), open(dir.path()));
}

#[test]
fn writes_survive_a_crash_when_a_void_range_lies_above_the_durable_mark_and_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, _) = segment(LogKind::Probation, 1, &[(10, Kind::Value, b"old", b"durable")]);
    std::fs::write(dir.path().join("00000001.seg"), seg).unwrap();
    let c = Checkpoint { durable_seq: 10, clock_ms: NOW_MS, void_ranges: vec![(100, 120)], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    let cache = open(dir.path());
    assert_eq!(cache.get(b"old").unwrap().as_deref(), Some(&b"durable"[..]));
    writes_survive_crashes(dir.path(), cache);
}

#[test]
fn writes_survive_a_crash_when_a_gap_lies_between_the_durable_mark_and_a_void_range() {
    // Numbers 11..=39 belong to no record and no range; 50 is void.
    let dir = tempfile::tempdir().unwrap();
    let records: [handmade::Rec; 2] =
        [(10, Kind::Value, b"old", b"durable"), (50, Kind::Value, b"void", b"lost history")];
    let (seg, _) = segment(LogKind::Probation, 1, &records);
    std::fs::write(dir.path().join("00000001.seg"), seg).unwrap();
    let c = Checkpoint { durable_seq: 10, clock_ms: NOW_MS, void_ranges: vec![(40, 60)], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    let cache = open(dir.path());
    assert!(cache.get(b"void").unwrap().is_none());
    writes_survive_crashes(dir.path(), cache);
}
