//! A record this version does not understand (intact, but of a kind or with
//! flags a later version may define) is kept by reclaim instead of dropped:
//! copied byte for byte, with its sequence number, to the main log while a
//! value older than it may exist in either log, as an invalidation record
//! is. It may be the later version's tombstone, or the newest value of a key
//! whose older values would come back without it. This version reads it as
//! recovery does: it holds its number and hides nothing.

use crate::handmade::{self, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::Kind;
use keg::format::segment::LogKind;
use keg::inspect::{self, Item};

/// The kind byte of the unknown record (kinds 1 to 3 are defined).
const UNKNOWN_KIND: u8 = 9;

/// Segment 2 holds an unknown record numbered 3 (key "k"), then two values
/// of "x" (the first dead, so compaction rewrites the segment); segment 3 a
/// value numbered 6. With `older_value`, segment 1 holds k's value numbered 1.
fn dir_with_unknown_record(older_value: bool) -> tempfile::TempDir {
    dir_with(older_value.then_some(b"k"), false)
}

/// As [`dir_with_unknown_record`], segment 1 holding a value numbered 1 of
/// `older` if given; with `hinted`, segment 2 also has a hint file listing
/// k's value numbered 3 where the unknown record is (damage that left a
/// matching checksum: recovery reads the hint, not the record).
fn dir_with(older: Option<&[u8]>, hinted: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let filler = vec![b'f'; 200];
    if let Some(key) = older {
        let (seg, _) = segment(LogKind::Main, 1, &[(1, Kind::Value, key, b"old"), (2, Kind::Value, b"y", &filler)]);
        std::fs::write(dir.path().join("00000001.seg"), seg).unwrap();
    }
    let (mut seg, entries) = segment(
        LogKind::Main,
        2,
        &[(3, Kind::Value, b"k", b"later"), (4, Kind::Value, b"x", &filler), (5, Kind::Value, b"x", b"2")],
    );
    // Make the first record one of an unknown kind, with a matching checksum.
    let (at, len) = (32, entries[0].len as usize);
    seg[at + 6] = UNKNOWN_KIND;
    let sum = crc32fast::hash(&seg[at + 4..at + len]);
    seg[at..at + 4].copy_from_slice(&sum.to_le_bytes());
    if hinted {
        std::fs::write(dir.path().join("00000002.hint"), handmade::hint_file(2, &seg, &entries, 6)).unwrap();
    }
    std::fs::write(dir.path().join("00000002.seg"), seg).unwrap();
    let (seg, _) = segment(LogKind::Main, 3, &[(6, Kind::Value, b"z", &filler)]);
    std::fs::write(dir.path().join("00000003.seg"), seg).unwrap();
    let c = Checkpoint { durable_seq: 6, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

/// The segments holding a record of the unknown kind numbered 3 with key "k", by id.
fn unknown_records(dir: &std::path::Path) -> Vec<u32> {
    let mut found = Vec::new();
    for file in inspect::list(dir).unwrap().segments {
        let data = inspect::SegmentData::read(&file.path).unwrap();
        for item in data.records() {
            if let Item::Other { offset, header, .. } = item {
                let key = &data.bytes()[offset as usize + 28..][..header.key_len as usize];
                if header.kind_code == UNKNOWN_KIND && header.seq == 3 && key == b"k" {
                    found.push(file.id);
                }
            }
        }
    }
    found
}

#[test]
fn compaction_keeps_an_unknown_record_while_an_older_value_exists() {
    let dir = dir_with_unknown_record(true);
    let cache = handmade::open(dir.path(), 4096);
    assert_eq!(unknown_records(dir.path()), vec![2]);
    // This version reads the record as nothing: k's older value is served.
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"old"[..]));
    cache.compact().unwrap();
    assert!(!dir.path().join("00000002.seg").exists(), "compaction did not reclaim segment 2");
    let kept = unknown_records(dir.path());
    assert_eq!(kept.len(), 1, "the unknown record was not kept exactly once: {kept:?}");
    assert!(kept[0] > 3, "kept in segment {}, not copied to a log's head", kept[0]);
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(cache.get(b"x").unwrap().as_deref(), Some(&b"2"[..]));
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(
        || handmade::open(dir.path(), 4096),
        |cache, when| {
            assert_eq!(unknown_records(dir.path()).len(), 1, "after {when}");
            assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"old"[..]), "after {when}");
            assert_eq!(cache.get(b"x").unwrap().as_deref(), Some(&b"2"[..]), "after {when}");
        },
    );
}

#[test]
fn compaction_drops_an_unknown_record_once_nothing_older_is_left() {
    let dir = dir_with_unknown_record(false);
    let cache = handmade::open(dir.path(), 4096);
    assert_eq!(unknown_records(dir.path()), vec![2]);
    cache.compact().unwrap();
    assert!(!dir.path().join("00000002.seg").exists(), "compaction did not reclaim segment 2");
    assert_eq!(unknown_records(dir.path()), Vec::<u32>::new());
    assert_eq!(cache.get(b"x").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(cache.get(b"z").unwrap().as_deref(), Some(&vec![b'f'; 200][..]));
}

/// Under a hint, the unknown record is damage recovery never saw (the hint
/// says a value of k is there): its number must not enter history, so it is
/// not kept, although an older value (of another key, in a segment
/// compaction leaves alone) exists; what the hint listed is dropped as
/// damage is.
#[test]
fn compaction_does_not_keep_an_unknown_record_its_hint_does_not_list() {
    let dir = dir_with(Some(b"w"), true);
    let cache = handmade::open(dir.path(), 4096);
    assert!(cache.get(b"k").unwrap().is_none(), "the hint's entry for k is unreadable: a miss");
    cache.compact().unwrap();
    assert!(!dir.path().join("00000002.seg").exists(), "compaction did not reclaim segment 2");
    assert!(dir.path().join("00000001.seg").exists(), "segment 1, all live, was rewritten");
    assert_eq!(unknown_records(dir.path()), Vec::<u32>::new());
    assert!(cache.get(b"k").unwrap().is_none());
    assert_eq!(cache.get(b"w").unwrap().as_deref(), Some(&b"old"[..]));
    assert_eq!(cache.get(b"x").unwrap().as_deref(), Some(&b"2"[..]));
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(
        || handmade::open(dir.path(), 4096),
        |cache, when| {
            assert!(cache.get(b"k").unwrap().is_none(), "k came back after {when}");
            assert_eq!(cache.get(b"w").unwrap().as_deref(), Some(&b"old"[..]), "after {when}");
            assert_eq!(cache.get(b"x").unwrap().as_deref(), Some(&b"2"[..]), "after {when}");
        },
    );
}
