//! Found by the `open_dir` fuzz target: a hint that lies about its segment
//! can give recovery an entry at an offset in the middle of a record. That
//! entry is unreadable, and recovery lets it stand for whatever key it was:
//! it took the place of an older value of key "k5" with the same hash. Then an
//! intact, newer record of another key of that hash ("k1") took the
//! unreadable entry's place in turn. Now nothing in the index could be
//! "k5", so a delete of "k5" found nothing and wrote no tombstone, while on
//! disk "k5"'s old value was hidden only by the lie. A later open that read
//! the segment without that hint (rewritten, or lost) brought the deleted
//! key back.
//!
//! Now an intact record newer than an unreadable entry goes beside it, and
//! a lookup counts a record that shows another key as that key's only if
//! the record is intact (bytes in the middle of a record can look like a
//! header and key). A delete of "k5" meets the unreadable entry and leaves
//! a tombstone.

use crate::handmade::{self, hint_entry, k1_k5_collide as hash, open_k1_k5_collide as open, CUSTOM_HASHER, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::hint::{self, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};

/// Segment 5 (main): "k5" = "old" (sequence 1), then "k0" (sequence 2),
/// whose value holds `inner` (bytes that may look like a record). Its hint
/// lies: it cuts "k0"'s record in two, and says the second piece is a value
/// of "k5"'s hash with sequence 7. Segment 7 (main): "k1" (sequence 11).
fn lying_hint_dir(inner: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut seg5 = SegmentHeader { log: LogKind::Main, id: 5, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg5, Kind::Value, 1, 0, b"k5", b"old").unwrap();
    let k5_len = seg5.len() - 32;
    let mut value = vec![b'v'; 20];
    value.extend_from_slice(inner);
    value.resize(value.len() + 20, b'v');
    record::encode(&mut seg5, Kind::Value, 2, 0, b"k0", &value).unwrap();
    let k0_len = seg5.len() - 32 - k5_len;
    // The second piece starts where `inner` does.
    let first_piece = record::HEADER_LEN + 2 + 20;
    let entries = [
        hint_entry(hash(b"k5"), 1, k5_len, false),
        hint_entry(hash(b"k0"), 2, first_piece, false),
        hint_entry(hash(b"k5"), 7, k0_len - first_piece, false),
    ];
    let header =
        HintHeader { hasher: CUSTOM_HASHER, segment_id: 5, data_len: seg5.len() as u64, count: 3, durable_seq: 11 };
    std::fs::write(dir.path().join("00000005.hint"), hint::encode(&header, &entries)).unwrap();
    std::fs::write(dir.path().join("00000005.seg"), &seg5).unwrap();

    let mut seg7 = SegmentHeader { log: LogKind::Main, id: 7, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut seg7, Kind::Value, 11, 0, b"k1", b"one").unwrap();
    std::fs::write(dir.path().join("00000007.seg"), &seg7).unwrap();
    let c = Checkpoint { durable_seq: 11, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

fn a_delete_survives_a_reopen_without_the_lying_hint(inner: &[u8]) {
    let dir = lying_hint_dir(inner);
    let cache = open(dir.path());
    // What the hint says wins: "k5"'s old value is hidden by the unreadable
    // entry (losing it is allowed), and "k1" reads as written.
    assert!(cache.get(b"k5").unwrap().is_none());
    assert_eq!(cache.get(b"k1").unwrap().as_deref(), Some(&b"one"[..]));
    assert!(!cache.delete(b"k5").unwrap(), "nothing readable to delete");
    cache.close().unwrap();
    // A hint may be lost at any time; the segment is then scanned.
    let _ = std::fs::remove_file(dir.path().join("00000005.hint"));
    handmade::check_after_restart_and_crash(
        || open(dir.path()),
        |cache, after| {
            assert!(cache.get(b"k5").unwrap().is_none(), "the deleted key came back after {after}");
            assert_eq!(cache.get(b"k1").unwrap().as_deref(), Some(&b"one"[..]));
        },
    );
}

#[test]
fn an_entry_in_the_middle_of_a_record_keeps_hiding_what_it_may_hide() {
    // The bytes at the lying offset do not even decode as a record header.
    a_delete_survives_a_reopen_without_the_lying_hint(&[0xff; 40]);
}

#[test]
fn bytes_that_look_like_a_record_of_another_key_do_not_make_it_that_keys() {
    // The bytes at the lying offset look like a record of key "zz" (header
    // and key), but its checksum fails: a lookup of "k5" must not take it
    // for another key's record.
    let mut fake = Vec::new();
    record::encode(&mut fake, Kind::Value, 7, 0, b"zz", b"fake").unwrap();
    let last = fake.len() - 1;
    fake[last] ^= 1;
    a_delete_survives_a_reopen_without_the_lying_hint(&fake);
}
