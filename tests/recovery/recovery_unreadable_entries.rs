//! Found by the `open_dir` fuzz target: a hint file is intact but its segment
//! is damaged, so an index entry points at bytes that are not a readable
//! record. Such an entry used to stop every lookup of its hash: a key sharing
//! it could be set (acknowledged) yet read as a miss, and deleting it wrote
//! no tombstone, so the "deleted" value came back after a restart. An
//! unreadable entry must hide nothing but itself, and a delete must leave a
//! tombstone whenever the key's own record may be the unreadable one.

use std::path::Path;

use crate::handmade::{self, hint_file, segment, NOW_MS};
use keg::format::hint::{self, HintEntry, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::{Cache, ManualClock};

fn open(dir: &Path) -> Cache {
    handmade::open(dir, 64 << 10)
}

/// Writes segment `id` with `records` (seq, key, value) and an intact hint
/// listing them, then makes the last record unreadable: its key length now
/// reaches past the end of the file, while the hint still lists it.
fn write_damaged_hinted_segment(dir: &Path, id: u32, records: &[(u64, &[u8], &[u8])]) {
    let records: Vec<handmade::Rec> = records.iter().map(|&(seq, key, value)| (seq, Kind::Value, key, value)).collect();
    let (mut seg, entries) = segment(LogKind::Probation, id, &records);
    let last = seg.len() - entries.last().map_or(0, |e| e.len as usize);
    seg[last + 4..last + 6].copy_from_slice(&u16::MAX.to_le_bytes());
    std::fs::write(dir.join(format!("{id:08x}.seg")), &seg).unwrap();
    std::fs::write(dir.join(format!("{id:08x}.hint")), hint_file(id, &seg, &entries, 0)).unwrap();
}

#[test]
fn an_unreadable_entry_does_not_hide_a_key_written_since() {
    let dir = tempfile::tempdir().unwrap();
    write_damaged_hinted_segment(dir.path(), 1, &[(1, b"other", b"x"), (2, b"k", b"old value")]);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "the damaged record is not served");
    cache.set(b"k", b"new value", None).unwrap();
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"new value"[..]), "an acknowledged write reads as a miss");
    assert!(cache.contains(b"k").unwrap());
    assert!(cache.delete(b"k").unwrap(), "delete did not find the value just written");
    assert!(cache.get(b"k").unwrap().is_none());
    drop(cache);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "a deleted key came back after a restart");
    assert_eq!(cache.get(b"other").unwrap().as_deref(), Some(&b"x"[..]));
}

#[test]
fn deleting_a_key_whose_newest_record_is_unreadable_leaves_a_tombstone() {
    let dir = tempfile::tempdir().unwrap();
    // Segment 1 (scanned, intact): the key's old value. Segment 2 (hinted): its newer value, damaged.
    let mut seg = SegmentHeader { log: LogKind::Probation, id: 1, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg, Kind::Value, 1, 0, b"k", b"old value").unwrap();
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();
    write_damaged_hinted_segment(dir.path(), 2, &[(2, b"k", b"newer value")]);
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "the newest record is unreadable, and the old value is shadowed");
    cache.delete(b"k").unwrap();
    assert!(cache.get(b"k").unwrap().is_none());
    drop(cache);
    // Now the hint files go too: open scans segment 2, stops at the damage,
    // and only the old value and whatever the delete wrote remain.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "hint") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "a deleted key came back after a restart");
}

#[test]
fn at_open_an_unreadable_entry_does_not_absorb_another_keys_delete() {
    // Every key hashes alike. Segment 1 holds b and k; segment 2 (hinted) a
    // newer record whose key cannot be read. The cache deletes k, crashes
    // and reopens: recovery used to match k's tombstone against the first
    // entry of the hash whose key it could not read (the damaged one),
    // leaving k's value in place. (Since then the unreadable record, which
    // may be the newest of any key of its hash, hides both older values at
    // open: k reads as nothing, and its delete still leaves a tombstone.)
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentHeader { log: LogKind::Probation, id: 1, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg, Kind::Value, 1, 0, b"b", b"x").unwrap();
    record::encode(&mut seg, Kind::Value, 2, 0, b"k", b"old").unwrap();
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();
    let mut seg = SegmentHeader { log: LogKind::Probation, id: 2, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg, Kind::Value, 3, 0, b"u", b"damaged").unwrap();
    let len = (seg.len() - 32) as u32;
    seg[32 + 4..32 + 6].copy_from_slice(&u16::MAX.to_le_bytes()); // its key now runs past the file
    let entry = HintEntry { key_hash: 7, seq: 3, expires_s: 0, len, tombstone: false, dead: false };
    let header = HintHeader { hasher: 255, segment_id: 2, data_len: seg.len() as u64, count: 1, durable_seq: 3 };
    std::fs::write(dir.path().join("00000002.seg"), &seg).unwrap();
    std::fs::write(dir.path().join("00000002.hint"), hint::encode(&header, &[entry])).unwrap();
    let open = || {
        Cache::builder()
            .background_maintenance(false)
            .clock(ManualClock::new(NOW_MS))
            .key_hasher(|_: &[u8]| 7)
            .open(dir.path())
            .unwrap()
    };
    let cache = open();
    assert!(cache.get(b"k").unwrap().is_none(), "a newer record of its hash may be k's own: its value stays hidden");
    assert!(cache.get(b"b").unwrap().is_none());
    assert!(!cache.delete(b"k").unwrap());
    cache.abandon();
    let cache = open();
    assert!(cache.get(b"k").unwrap().is_none(), "a deleted key came back after a restart");
}
