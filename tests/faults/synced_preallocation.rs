//! Synced mode's preallocated zeros (FORMAT.md 2.8): the active segment's
//! file holds zeros ahead of its last record, so synced sets overwrite
//! blocks an earlier fsync made durable instead of growing the file; the
//! zeros count in `stats().disk_bytes` as in the directory's size; a clean
//! close cuts them off; and after a crash they read as the end of the log,
//! never as damage and never as data (`keg::inspect`, the reader of
//! `keg verify`, and the next open's `recovery_truncated_bytes`).

use std::path::{Path, PathBuf};

use keg::{inspect, Cache, Durability};

const SEG: u64 = 4 << 20;

fn open(dir: &Path, durability: Durability) -> Cache {
    Cache::builder()
        .segment_bytes(SEG)
        .max_bytes(64 << 20)
        .durability(durability)
        .background_maintenance(false)
        .open(dir)
        .unwrap()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    v.sort();
    v
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

/// Bytes of segment and hint files (what `stats().disk_bytes` counts).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg" || x == "hint"))
        .map(|p| file_len(&p))
        .sum()
}

/// Where the records of a segment file end, and whether a reader met damage.
fn records_end(p: &Path) -> (u64, usize, bool) {
    let data = inspect::SegmentData::read(p).unwrap();
    let mut it = data.records();
    let mut n = 0;
    let mut damaged = false;
    for item in it.by_ref() {
        match item {
            inspect::Item::Damaged(_) => damaged = true,
            _ => n += 1,
        }
    }
    (it.position(), n, damaged)
}

fn value(i: u32) -> Vec<u8> {
    let mut v = format!("value {i};").into_bytes();
    v.resize(100, b'.');
    v
}

#[test]
fn synced_sets_overwrite_preallocated_zeros_and_a_clean_close_cuts_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Durability::Synced);
    cache.set(b"first", &value(0), None).unwrap();
    let seg = segments(dir.path());
    assert_eq!(seg.len(), 1, "{seg:?}");
    let (end, n, damaged) = records_end(&seg[0]);
    let len = file_len(&seg[0]);
    assert_eq!((n, damaged), (1, false));
    assert!(len >= end + (512 << 10), "no zeros ahead of the record: file {len} bytes, records end at {end}");
    assert_eq!(cache.stats().disk_bytes, dir_bytes(dir.path()), "the zeros are on disk: disk_bytes counts them");
    // 100 more synced sets land on the zeros: the file does not grow.
    for i in 1..=100 {
        cache.set(format!("key{i}").as_bytes(), &value(i), None).unwrap();
    }
    assert_eq!(file_len(&seg[0]), len, "a synced set grew the file");
    let (end_after, n, damaged) = records_end(&seg[0]);
    assert_eq!((n, damaged), (101, false));
    assert!(end_after > end);
    assert_eq!(cache.stats().disk_bytes, dir_bytes(dir.path()));
    cache.close().unwrap();
    // Closed: every segment ends at its last record.
    for p in segments(dir.path()) {
        let (end, _, damaged) = records_end(&p);
        assert_eq!((file_len(&p), damaged), (end, false), "{p:?} keeps zeros after a clean close");
    }
    let cache = open(dir.path(), Durability::Synced);
    assert_eq!(cache.stats().recovery_truncated_bytes, 0);
    for i in 1..=100 {
        assert_eq!(cache.get(format!("key{i}").as_bytes()).unwrap().as_deref(), Some(&value(i)[..]));
    }
}

#[test]
fn a_crash_leaves_zeros_that_read_as_the_end_of_the_log_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Durability::Synced);
    for i in 0..50 {
        cache.set(format!("key{i}").as_bytes(), &value(i), None).unwrap();
    }
    cache.abandon();
    let seg = segments(dir.path());
    let (end, n, damaged) = records_end(&seg[0]);
    assert!(file_len(&seg[0]) > end, "the crash left no zeros to read");
    assert_eq!((n, damaged), (50, false), "the tools' reader took the zeros for records or damage");
    // A read-only open reads them as the end, and leaves the file alone.
    let ro = Cache::builder().open_read_only(dir.path()).unwrap();
    assert_eq!(ro.stats().recovery_truncated_bytes, 0, "zeros counted as a torn tail");
    assert_eq!(ro.get(b"key49").unwrap().as_deref(), Some(&value(49)[..]));
    drop(ro);
    // A writable open cuts them (not counted as damage) and appends after the last record.
    let cache = open(dir.path(), Durability::Flushed);
    assert_eq!(cache.stats().recovery_truncated_bytes, 0, "zeros counted as a torn tail");
    for i in 0..50 {
        assert_eq!(cache.get(format!("key{i}").as_bytes()).unwrap().as_deref(), Some(&value(i)[..]));
    }
    cache.set(b"after", b"reopen", None).unwrap();
    cache.close().unwrap();
    let cache = open(dir.path(), Durability::Synced);
    assert_eq!(cache.get(b"after").unwrap().as_deref(), Some(&b"reopen"[..]));
    assert_eq!(cache.get(b"key0").unwrap().as_deref(), Some(&value(0)[..]));
}

#[test]
fn a_record_torn_into_the_zeros_is_cut_and_counted_but_the_ones_before_it_stay() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Durability::Synced);
    for i in 0..20 {
        cache.set(format!("key{i}").as_bytes(), &value(i), None).unwrap();
    }
    cache.abandon();
    let p = segments(dir.path()).remove(0);
    let (end, _, _) = records_end(&p);
    // Half a record's worth of bytes from the middle of a record, landed in
    // the zeros after the last one (a torn write whose first sectors did not).
    let mut bytes = std::fs::read(&p).unwrap();
    let junk: Vec<u8> = bytes[end as usize - 60..end as usize - 10].to_vec();
    bytes[end as usize + 40..end as usize + 90].copy_from_slice(&junk);
    std::fs::write(&p, &bytes).unwrap();
    let (_, n, damaged) = records_end(&p);
    assert_eq!((n, damaged), (20, true), "bytes in the zeros must read as damage");
    let cache = open(dir.path(), Durability::Synced);
    assert!(cache.stats().recovery_truncated_bytes > 0, "torn bytes in the zeros were not counted as cut");
    for i in 0..20 {
        assert_eq!(cache.get(format!("key{i}").as_bytes()).unwrap().as_deref(), Some(&value(i)[..]));
    }
}

#[test]
fn other_modes_preallocate_nothing() {
    for mode in [Durability::Flushed, Durability::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        let cache = open(dir.path(), mode);
        for i in 0..20 {
            cache.set(format!("key{i}").as_bytes(), &value(i), None).unwrap();
        }
        cache.flush().unwrap();
        let p = segments(dir.path()).remove(0);
        assert_eq!(file_len(&p), records_end(&p).0, "{mode:?}");
    }
}

#[test]
fn the_zeros_move_ahead_as_records_fill_them_and_never_pass_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), Durability::Synced);
    let big = vec![b'x'; 4000];
    let mut lens = Vec::new();
    for i in 0..1500u32 {
        cache.set(format!("key{i}").as_bytes(), &big, None).unwrap();
        if i % 100 == 99 {
            for p in segments(dir.path()) {
                let (end, _, damaged) = records_end(&p);
                let len = file_len(&p);
                assert!(
                    !damaged && len >= end && len <= end + (1 << 20) + 4096,
                    "{p:?}: {len} bytes, records end at {end}"
                );
                assert!(len <= SEG, "{p:?} grew past the segment size: {len}");
            }
            lens.push(segments(dir.path()).iter().map(|p| file_len(p)).sum::<u64>());
            assert_eq!(cache.stats().disk_bytes, dir_bytes(dir.path()));
        }
    }
    assert!(segments(dir.path()).len() >= 2, "the test meant to fill a segment");
    cache.close().unwrap();
    for p in segments(dir.path()) {
        assert_eq!(file_len(&p), records_end(&p).0, "{p:?} keeps zeros after a clean close");
    }
}

#[test]
fn the_background_thread_writes_the_next_zeros_before_a_set_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder()
        .segment_bytes(SEG)
        .max_bytes(64 << 20)
        .durability(Durability::Synced)
        .background_maintenance(true)
        .open(dir.path())
        .unwrap();
    // 700 KiB of records: fewer than 512 KiB of the first 1 MiB of zeros
    // left, unless the background thread wrote more.
    let big = vec![b'x'; 7000];
    for i in 0..100u32 {
        cache.set(format!("key{i}").as_bytes(), &big, None).unwrap();
    }
    let p = segments(dir.path()).remove(0);
    let end = records_end(&p).0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    // Without the thread, the file would hold the zeros the first set wrote:
    // up to 1 MiB past the first record, less than 512 KiB past the last one.
    while file_len(&p) < end + (512 << 10) {
        assert!(
            std::time::Instant::now() < deadline,
            "no zeros written ahead: {} bytes, records end at {end}",
            file_len(&p)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(records_end(&p).0, end, "no set ran meanwhile");
    assert_eq!(cache.stats().disk_bytes, dir_bytes(dir.path()));
}
