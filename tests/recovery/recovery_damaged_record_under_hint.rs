//! Found by the `open_dir` fuzz target: a hinted segment whose record has a
//! damaged sequence number (its checksum fails; the hint is intact). When a
//! later record of the same key was applied at open, recovery compared it
//! against the damaged header's number instead of the hint's, so a bit flip
//! that raised the number let a dead record shadow writes made since: an
//! acknowledged value was lost after a clean restart (or a deleted key came
//! back, when the damaged record was an old value).
//!
//! Likewise a damaged key byte in a hinted segment's newest record of a key:
//! recovery read the damaged key as another key, so the key's older value in
//! an older segment stayed in the index and was served (found by the helper
//! that fixed reclaim of damaged segments). Two different keys now count as
//! different only when both records are intact. (A first fix that compared
//! keys only from intact records went too far: a damaged record of the same
//! key then stood in as "unreadable" for whichever entry came first, and the
//! fuzzer found a write lost after a crash that way; that input is in
//! `fuzz/regressions/open_dir/damaged-record-of-the-same-key-taken-for-unreadable`.)

use std::path::Path;

use keg::format::hint::{self, HintEntry, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::{Cache, ManualClock};

const NOW_MS: u64 = 1_700_000_000_000;

fn open(dir: &Path) -> Cache {
    Cache::builder().background_maintenance(false).clock(ManualClock::new(NOW_MS)).open(dir).unwrap()
}

/// Segment 1 with an exact hint: `kind` for key "k" with sequence number 1,
/// whose stored sequence number then has its top bit flipped.
fn damaged_dir(kind: Kind) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentHeader { log: LogKind::Probation, id: 1, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg, kind, 1, 0, b"k", if kind == Kind::Value { b"old" } else { b"" }).unwrap();
    let len = (seg.len() - 32) as u32;
    let tombstone = kind == Kind::Tombstone;
    let entry =
        HintEntry { key_hash: xxhash_rust::xxh3::xxh3_64(b"k"), seq: 1, expires_s: 0, len, tombstone, dead: false };
    let header = HintHeader { hasher: 1, segment_id: 1, data_len: seg.len() as u64, count: 1, durable_seq: 1 };
    seg[32 + 12 + 7] ^= 0x80; // the record's sequence number, now 2^63 + 1 (its checksum fails)
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();
    std::fs::write(dir.path().join("00000001.hint"), hint::encode(&header, &[entry])).unwrap();
    dir
}

#[test]
fn a_write_after_a_damaged_tombstone_survives_a_restart() {
    let dir = damaged_dir(Kind::Tombstone);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none());
    cache.set(b"k", b"new", None).unwrap();
    drop(cache);
    let cache = open(dir.path());
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"new"[..]), "an acknowledged write was lost");
}

#[test]
fn a_delete_after_a_damaged_value_survives_a_restart() {
    let dir = damaged_dir(Kind::Value);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "a damaged value is not served");
    cache.set(b"k", b"new", None).unwrap();
    cache.delete(b"k").unwrap();
    drop(cache);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "a deleted key came back");
    cache.set(b"k", b"newer", None).unwrap();
    drop(cache);
    let cache = open(dir.path());
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"newer"[..]));
}

/// Segments 1 and 2, each with an exact hint: key "k" with `old` (seq 1), then
/// with "new value" (seq 2), whose key byte is then flipped to "j" (its
/// checksum fails; the hint still holds the hash of "k").
fn damaged_key_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (id, seq, value) in [(1u32, 1u64, &b"old value"[..]), (2, 2, &b"new value"[..])] {
        let mut seg = SegmentHeader { log: LogKind::Probation, id, created_ms: NOW_MS }.encode().to_vec();
        record::encode(&mut seg, Kind::Value, seq, 0, b"k", value).unwrap();
        let len = (seg.len() - 32) as u32;
        let entry = HintEntry {
            key_hash: xxhash_rust::xxh3::xxh3_64(b"k"),
            seq,
            expires_s: 0,
            len,
            tombstone: false,
            dead: false,
        };
        let header = HintHeader { hasher: 1, segment_id: id, data_len: seg.len() as u64, count: 1, durable_seq: 2 };
        if id == 2 {
            seg[32 + record::HEADER_LEN] ^= 0x01; // "k" becomes "j"
        }
        std::fs::write(dir.path().join(format!("{id:08x}.seg")), &seg).unwrap();
        std::fs::write(dir.path().join(format!("{id:08x}.hint")), hint::encode(&header, &[entry])).unwrap();
    }
    dir
}

#[test]
fn a_damaged_key_in_the_newest_record_does_not_bring_an_older_value_back() {
    let dir = damaged_key_dir();
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "an older value was served in place of a newer, damaged one");
    assert!(cache.get(b"j").unwrap().is_none());
    cache.delete(b"k").unwrap();
    drop(cache);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "a deleted key came back");
    cache.compact().unwrap();
    drop(cache);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "a deleted key came back after compaction");
    cache.set(b"k", b"newest", None).unwrap();
    drop(cache);
    assert_eq!(open(dir.path()).get(b"k").unwrap().as_deref(), Some(&b"newest"[..]));
}
