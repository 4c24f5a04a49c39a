//! A writable open goes on appending to the newest segment of each log (while
//! it is less than half full and matches its hint), so that opening, writing a
//! little and closing, again and again (a CLI command, a short-lived process),
//! does not leave one more small file each time. Before this, 1,000 `keg set`
//! commands left 1,000 segment files and 1,000 hint files, and every open had
//! to read them all.

use std::path::Path;

use crate::handmade::{self, hint_file, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::Kind;
use keg::format::segment::LogKind;
use keg::{Cache, ManualClock};

fn open(dir: &Path) -> Cache {
    handmade::open(dir, 64 << 10)
}

fn files(dir: &Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

fn value(i: usize) -> Vec<u8> {
    format!("value {i} ").repeat(1 + i % 7).into_bytes()
}

#[test]
fn many_short_sessions_share_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..200 {
        let cache = open(dir.path());
        cache.set(format!("k{i}").as_bytes(), &value(i), None).unwrap();
        if i % 3 == 0 && i > 0 {
            assert!(cache.delete(format!("k{}", i - 1).as_bytes()).unwrap());
        }
        // Every third session ends in a crash: the next open reads the hint
        // for the records it covers and scans the ones appended after it.
        if i % 3 == 1 {
            cache.abandon();
        } else {
            cache.close().unwrap();
        }
    }
    // All of it fits in one 64 KiB segment's first half, and then a second.
    let segs = files(dir.path(), ".seg");
    assert!(segs.len() <= 2, "200 short sessions left {} segment files: {segs:?}", segs.len());
    let cache = open(dir.path());
    for i in 0..200 {
        let got = cache.get(format!("k{i}").as_bytes()).unwrap();
        let deleted = (i + 1) % 3 == 0 && i + 1 < 200;
        if deleted {
            assert!(got.is_none(), "k{i} was deleted");
        } else {
            assert_eq!(got.as_deref(), Some(&value(i)[..]), "k{i}");
        }
    }
    cache.close().unwrap();
    // A clean close leaves a hint that covers the whole resumed segment.
    for seg in files(dir.path(), ".seg") {
        let stem = seg.trim_end_matches(".seg");
        let hint = std::fs::read(dir.path().join(format!("{stem}.hint"))).unwrap();
        let bytes = std::fs::read(dir.path().join(&seg)).unwrap();
        let id = u32::from_str_radix(stem, 16).unwrap();
        let h = keg::inspect::check_hint(&hint, id, &bytes).unwrap();
        assert_eq!(h.data_len, bytes.len() as u64, "the hint of {seg} covers all of it");
    }
}

#[test]
fn a_segment_more_than_half_full_is_not_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    for i in 0..40 {
        cache.set(format!("big{i}").as_bytes(), &[b'b'; 1000], None).unwrap();
    }
    cache.close().unwrap();
    assert_eq!(files(dir.path(), ".seg"), ["00000001.seg"]);
    let cache = open(dir.path());
    cache.set(b"after", b"reopen", None).unwrap();
    cache.close().unwrap();
    assert_eq!(files(dir.path(), ".seg"), ["00000001.seg", "00000002.seg"]);
}

#[test]
fn a_read_only_open_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set(b"k", b"v", None).unwrap();
    cache.close().unwrap();
    let before: Vec<(String, Vec<u8>)> =
        files(dir.path(), "").into_iter().map(|n| (n.clone(), std::fs::read(dir.path().join(&n)).unwrap())).collect();
    let ro = Cache::builder().clock(ManualClock::new(NOW_MS)).open_read_only(dir.path()).unwrap();
    assert_eq!(ro.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    drop(ro);
    let after: Vec<(String, Vec<u8>)> =
        files(dir.path(), "").into_iter().map(|n| (n.clone(), std::fs::read(dir.path().join(&n)).unwrap())).collect();
    assert!(before == after, "a read-only open changed the directory");
}

/// Segment 1 (probation) holds k = "old" (sequence 1) and other = "x"
/// (sequence 2); its hint marks k's record shadowed (dead), which only a
/// damaged or hand-made hint does here, since nothing newer of k exists.
fn dead_marked_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (seg, mut entries) =
        segment(LogKind::Probation, 1, &[(1, Kind::Value, b"k", b"old"), (2, Kind::Value, b"other", b"x")]);
    entries[0].dead = true;
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();
    std::fs::write(dir.path().join("00000001.hint"), hint_file(1, &seg, &entries, 2)).unwrap();
    let c = Checkpoint { durable_seq: 2, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

#[test]
fn records_the_old_hint_skipped_stay_skipped_after_the_segment_is_resumed() {
    let dir = dead_marked_dir();
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "a record its hint marks shadowed is not applied");
    // Nothing to delete: no tombstone is written. The session appends to segment 1.
    assert!(!cache.delete(b"k").unwrap());
    cache.set(b"new", b"value", None).unwrap();
    cache.close().unwrap();
    assert_eq!(files(dir.path(), ".seg"), ["00000001.seg"], "segment 1 was resumed");
    // The new hint keeps the old one's mark: the next open must not apply
    // the record this session did not see (a deleted key would come back).
    let cache = open(dir.path());
    assert!(cache.get(b"k").unwrap().is_none(), "a key deleted in the last session came back");
    assert_eq!(cache.get(b"new").unwrap().as_deref(), Some(&b"value"[..]));
}
