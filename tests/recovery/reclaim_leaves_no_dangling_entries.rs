//! Found by the `open_dir` fuzz target: a hint listed, as a value of key k, a
//! record that the segment's scan steps over as not understood (intact, but
//! with a zero key length). Compaction removed the segment without removing
//! that index entry, and a lookup of k then kept retrying the entry whose
//! segment was gone and gave up: k, written since, read as a miss.

use keg::format::hint::{self, HintEntry, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::{Cache, ManualClock};

const NOW_MS: u64 = 1_700_000_000_000;

#[test]
fn compaction_leaves_no_entry_pointing_into_a_removed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentHeader { log: LogKind::Probation, id: 1, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg, Kind::Value, 1, 0, b"k", b"old").unwrap();
    // key_len 0 (the key byte becomes part of the value), checksum fixed: intact but not understood.
    seg[36..38].copy_from_slice(&[0, 0]);
    seg[40..44].copy_from_slice(&4u32.to_le_bytes());
    let sum = crc32fast::hash(&seg[36..]);
    seg[32..36].copy_from_slice(&sum.to_le_bytes());
    let hash = |k: &[u8]| xxhash_rust::xxh3::xxh3_64(k);
    let mut entries = vec![HintEntry {
        key_hash: hash(b"k"),
        seq: 1,
        expires_s: 0,
        len: (seg.len() - 32) as u32,
        tombstone: false,
        dead: false,
    }];
    // Then x, and x's tombstone: dead bytes, so that compaction takes the segment.
    for (seq, kind) in [(2, Kind::Value), (3, Kind::Tombstone)] {
        let start = seg.len();
        record::encode(&mut seg, kind, seq, 0, b"x", if kind == Kind::Value { b"x" } else { b"" }).unwrap();
        let len = (seg.len() - start) as u32;
        entries.push(HintEntry { key_hash: hash(b"x"), seq, expires_s: 0, len, tombstone: seq == 3, dead: false });
    }
    let header = HintHeader { hasher: 1, segment_id: 1, data_len: seg.len() as u64, count: 3, durable_seq: 3 };
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();
    std::fs::write(dir.path().join("00000001.hint"), hint::encode(&header, &entries)).unwrap();

    let cache =
        Cache::builder().background_maintenance(false).clock(ManualClock::new(NOW_MS)).open(dir.path()).unwrap();
    assert!(cache.get(b"k").unwrap().is_none());
    cache.set(b"k", b"new", None).unwrap();
    cache.compact().unwrap();
    assert!(cache.stats().segments_reclaimed >= 1, "the test must make compaction take segment 1");
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"new"[..]), "a written key reads as a miss");
    assert_eq!(cache.len(), 1, "an entry outlived its segment");
}
