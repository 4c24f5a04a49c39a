//! Found by the `open_dir` fuzz target: a hint file whose checksums match but
//! which disagrees with an intact record of its segment (here: a smaller
//! sequence number than the record's own; only a hand-made hint or a checksum
//! collision does this). Recovery took sequence numbers from the hint to pick
//! the next one to assign, but compared against the candidate record's own
//! header when it applied later records of the same key, so writes made after
//! such an open lost to the old record after a restart: a deleted key came
//! back, an overwritten value returned. Recovery now orders records by the
//! numbers it took them to have (the hint's, or a verified scan's) throughout.

use std::path::Path;

use keg::format::checkpoint::Checkpoint;
use keg::format::hint::{self, HintEntry, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::{Cache, ManualClock};

const NOW_MS: u64 = 1_700_000_000_000;

fn open(dir: &Path) -> Cache {
    Cache::builder().background_maintenance(false).clock(ManualClock::new(NOW_MS)).open(dir).unwrap()
}

/// Segment 1 holds k = "old" with sequence number 100; its hint says 1.
fn lying_hint_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentHeader { log: LogKind::Probation, id: 1, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg, Kind::Value, 100, 0, b"k", b"old").unwrap();
    let len = (seg.len() - 32) as u32;
    let entry = HintEntry {
        key_hash: xxhash_rust::xxh3::xxh3_64(b"k"),
        seq: 1,
        expires_s: 0,
        len,
        tombstone: false,
        dead: false,
    };
    let header = HintHeader { hasher: 1, segment_id: 1, data_len: seg.len() as u64, count: 1, durable_seq: 1 };
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();
    std::fs::write(dir.path().join("00000001.hint"), hint::encode(&header, &[entry])).unwrap();
    let c = Checkpoint { durable_seq: 1, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

#[test]
fn a_delete_after_opening_with_a_lying_hint_survives_a_restart() {
    let dir = lying_hint_dir();
    let cache = open(dir.path());
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"old"[..]));
    assert!(cache.delete(b"k").unwrap());
    drop(cache);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "the deleted key came back");
}

#[test]
fn an_overwrite_after_opening_with_a_lying_hint_survives_a_restart() {
    let dir = lying_hint_dir();
    let cache = open(dir.path());
    cache.set(b"k", b"new", None).unwrap();
    drop(cache);
    let cache = open(dir.path());
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"new"[..]), "the overwritten value came back");
}

#[test]
fn a_hint_still_reaches_past_a_damaged_record() {
    // Records a, b, c with an exact hint; then one byte of b's value flips.
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentHeader { log: LogKind::Probation, id: 1, created_ms: NOW_MS }.encode().to_vec();
    let mut entries = Vec::new();
    for (seq, key, kind) in [(1, &b"a"[..], Kind::Value), (2, b"b", Kind::Value), (3, b"a", Kind::Tombstone)] {
        let start = seg.len();
        record::encode(&mut seg, kind, seq, 0, key, if kind == Kind::Value { b"value" } else { b"" }).unwrap();
        let len = (seg.len() - start) as u32;
        let key_hash = xxhash_rust::xxh3::xxh3_64(key);
        entries.push(HintEntry { key_hash, seq, expires_s: 0, len, tombstone: kind == Kind::Tombstone, dead: false });
    }
    let header = HintHeader { hasher: 1, segment_id: 1, data_len: seg.len() as u64, count: 3, durable_seq: 3 };
    let b_value = 32 + entries[0].len as usize + 28 + 1;
    seg[b_value] ^= 0x20;
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();
    std::fs::write(dir.path().join("00000001.hint"), hint::encode(&header, &entries)).unwrap();
    let cache = open(dir.path());
    assert!(cache.get(b"b").unwrap().is_none(), "the damaged value is not served");
    assert!(cache.get(b"a").unwrap().is_none(), "the tombstone after the damage still applies");
    assert_eq!(cache.stats().recovery_scanned_segments, 0, "the hint was used");
}
