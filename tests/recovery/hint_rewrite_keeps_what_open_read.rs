//! Found by the `open_dir` fuzz target. A segment whose hint covers only its
//! first records (a session appended more, then crashed) gets a new hint once
//! open has scanned the rest. That new hint was built by scanning the whole
//! segment, so where the old hint lied (here: a record of key "k4" listed
//! under another key's hash), the next open read the segment differently
//! from this one. This open never saw "k4"; a delete of "k4" found nothing
//! and left no tombstone; the next open found "k4"'s value: a deleted key
//! came back.
//!
//! The new hint now lists the records the old one covered as the old one
//! did (FORMAT.md section 9, step 3), and only the records after them as
//! scanned.

use std::path::Path;

use crate::handmade::{self, hint_file, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::Kind;
use keg::format::segment::LogKind;
use keg::Cache;

fn open(dir: &Path) -> Cache {
    handmade::open(dir, 4096)
}

/// Segment 6 (probation, more than half full so that it is not resumed):
/// "k4" (sequence 1, a long value) and "k2" (sequence 2). Its hint covers
/// only "k4"'s record and lists it under the hash of "k7"; "k2" is the
/// scanned tail.
fn lying_hint_with_a_tail() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let value = vec![b'v'; 2300];
    let (seg, mut entries) = segment(LogKind::Probation, 6, &[(1, Kind::Value, b"k4", &value)]);
    entries[0].key_hash = xxhash_rust::xxh3::xxh3_64(b"k7");
    let hint = hint_file(6, &seg, &entries, 1);
    let (with_tail, _) =
        segment(LogKind::Probation, 6, &[(1, Kind::Value, b"k4", &value), (2, Kind::Value, b"k2", b"2")]);
    std::fs::write(dir.path().join("00000006.seg"), with_tail).unwrap();
    std::fs::write(dir.path().join("00000006.hint"), hint).unwrap();
    let c = Checkpoint { durable_seq: 2, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

#[test]
fn a_key_the_old_hint_hid_and_this_session_deleted_stays_deleted() {
    let dir = lying_hint_with_a_tail();
    let cache = open(dir.path());
    // The hint says the record is some key with k7's hash: "k4" is not seen.
    assert!(cache.get(b"k4").unwrap().is_none());
    assert!(cache.get(b"k7").unwrap().is_none());
    assert_eq!(cache.get(b"k2").unwrap().as_deref(), Some(&b"2"[..]));
    assert!(!cache.delete(b"k4").unwrap());
    cache.close().unwrap();
    let hint = std::fs::read(dir.path().join("00000006.hint")).unwrap();
    let (header, _) = keg::format::hint::decode(&hint).unwrap();
    assert!(header.count >= 2, "the test needs the close to rewrite segment 6's hint to cover the tail");
    handmade::check_after_restart_and_crash(
        || open(dir.path()),
        |cache, after| {
            assert!(cache.get(b"k4").unwrap().is_none(), "the deleted key came back after {after}");
            assert_eq!(cache.get(b"k2").unwrap().as_deref(), Some(&b"2"[..]));
        },
    );
}
