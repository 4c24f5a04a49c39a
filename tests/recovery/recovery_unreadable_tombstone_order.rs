//! Found by the `open_dir` fuzz target (inputs
//! `fuzz/regressions/open_dir/*-hints-lie`): a hint that lies about its
//! segment's record lengths puts a tombstone's entry in the middle of
//! another record, where its key cannot be read. Recovery let such a record
//! compete with the first entry of its hash it met, and applied one hash's
//! records in log order, which is not their age. When a newer value of
//! another key of the same hash ("k1", in a segment applied first) was that
//! first entry, the unreadable tombstone lost to it and the key it really
//! deleted ("k5") stayed live: the open served a deleted value, and a
//! session that saw "k5" deleted (the same directory without "k1") could see
//! it back once "k1" had been written.
//!
//! Now one hash's records are applied in number order, and a record whose
//! key cannot be read beats every older entry of its hash.

use crate::handmade::{self, hint_entry, k1_k5_collide as hash, open_k1_k5_collide as open, CUSTOM_HASHER, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::hint::{self, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};

/// Segment 5 (main): "k5" = "old" (1), "k0" = a long value (2), a tombstone
/// of "k5" (3). Its hint lies about the lengths of the last two, so that the
/// tombstone's entry falls in the middle of "k0"'s value. With `k1`,
/// segment 3 (probation, so applied before segment 5 in log order) holds
/// "k1" = "one" (11), of "k5"'s hash.
fn lying_hint_dir(k1: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut seg5 = SegmentHeader { log: LogKind::Main, id: 5, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg5, Kind::Value, 1, 0, b"k5", b"old").unwrap();
    let k5_len = seg5.len() - 32;
    record::encode(&mut seg5, Kind::Value, 2, 0, b"k0", &[0xff; 60]).unwrap();
    let k0_len = seg5.len() - 32 - k5_len;
    record::encode(&mut seg5, Kind::Tombstone, 3, 0, b"k5", b"").unwrap();
    let tomb_len = seg5.len() - 32 - k5_len - k0_len;
    // "k0"'s entry claims only its first 30 bytes; the tombstone's starts there.
    let entries = [
        hint_entry(hash(b"k5"), 1, k5_len, false),
        hint_entry(hash(b"k0"), 2, 30, false),
        hint_entry(hash(b"k5"), 3, k0_len - 30 + tomb_len, true),
    ];
    let header =
        HintHeader { hasher: CUSTOM_HASHER, segment_id: 5, data_len: seg5.len() as u64, count: 3, durable_seq: 11 };
    std::fs::write(dir.path().join("00000005.hint"), hint::encode(&header, &entries)).unwrap();
    std::fs::write(dir.path().join("00000005.seg"), &seg5).unwrap();
    if k1 {
        let mut seg3 = SegmentHeader { log: LogKind::Probation, id: 3, created_ms: NOW_MS }.encode().to_vec();
        record::encode(&mut seg3, Kind::Value, 11, 0, b"k1", b"one").unwrap();
        std::fs::write(dir.path().join("00000003.seg"), &seg3).unwrap();
    }
    let c = Checkpoint { durable_seq: 11, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

#[test]
fn an_unreadable_tombstone_hides_the_older_value_beside_a_newer_key_of_its_hash() {
    for k1 in [false, true] {
        let dir = lying_hint_dir(k1);
        handmade::check_after_restart_and_crash(
            || open(dir.path()),
            |cache, after| {
                assert!(cache.get(b"k5").unwrap().is_none(), "deleted \"k5\" reads its value after {after} (k1 {k1})");
                let want = k1.then_some(&b"one"[..]);
                assert_eq!(cache.get(b"k1").unwrap().as_deref(), want, "after {after}");
            },
        );
    }
}

#[test]
fn a_key_deleted_in_one_session_stays_deleted_after_another_key_of_its_hash_is_written() {
    let dir = lying_hint_dir(false);
    // An empty probation segment 3: the session appends "k1" there, before
    // segment 5 in log order.
    let seg3 = SegmentHeader { log: LogKind::Probation, id: 3, created_ms: NOW_MS }.encode().to_vec();
    std::fs::write(dir.path().join("00000003.seg"), &seg3).unwrap();
    let cache = open(dir.path());
    assert!(cache.get(b"k5").unwrap().is_none());
    assert!(!cache.delete(b"k5").unwrap(), "nothing readable to delete");
    cache.set(b"k1", b"one", None).unwrap();
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(
        || open(dir.path()),
        |cache, after| {
            assert!(cache.get(b"k5").unwrap().is_none(), "the deleted key came back after {after}");
            assert_eq!(cache.get(b"k1").unwrap().as_deref(), Some(&b"one"[..]), "after {after}");
        },
    );
}
