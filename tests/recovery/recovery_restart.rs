//! Restarts: clean reopens load hint files, crashes scan what they must and
//! cut torn tails, damage reads as a miss, foreign versions are refused.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keg::{Cache, Error, ManualClock};

fn builder() -> keg::Builder {
    Cache::builder().max_bytes(64 << 20).segment_bytes(64 << 10)
}

fn fill(cache: &Cache, n: usize) {
    for i in 0..n {
        cache.set(format!("key{i}").as_bytes(), format!("value{i}").repeat(20).as_bytes(), None).unwrap();
    }
}

fn check(cache: &Cache, n: usize) {
    for i in 0..n {
        let v = cache.get(format!("key{i}").as_bytes()).unwrap().unwrap_or_else(|| panic!("key{i} missing"));
        assert_eq!(v, format!("value{i}").repeat(20).as_bytes());
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn a_clean_reopen_uses_hint_files_and_scans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    fill(&cache, 2000);
    cache.close().unwrap();
    assert_eq!(files(dir.path(), "seg").len(), files(dir.path(), "hint").len());
    let cache = builder().open(dir.path()).unwrap();
    assert_eq!(cache.stats().recovery_scanned_segments, 0);
    assert_eq!(cache.len(), 2000);
    check(&cache, 2000);
}

#[test]
fn after_a_crash_open_scans_segments_without_hints() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().background_maintenance(false).open(dir.path()).unwrap();
    fill(&cache, 2000);
    cache.abandon();
    let cache = builder().open(dir.path()).unwrap();
    assert!(cache.stats().recovery_scanned_segments > 0);
    check(&cache, 2000);
}

#[test]
fn a_torn_tail_is_cut_and_everything_before_it_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().background_maintenance(false).open(dir.path()).unwrap();
    fill(&cache, 100);
    cache.abandon();
    // A crash in the middle of an append: half a record at the end of the newest segment.
    let last = files(dir.path(), "seg").pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let mut half = Vec::new();
    keg::format::record::encode(&mut half, keg::format::record::Kind::Value, 999_999, 0, b"torn", &[1; 500]).unwrap();
    half.truncate(300);
    OpenOptions::new().append(true).open(&last).unwrap().write_all(&half).unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert_eq!(cache.stats().recovery_truncated_bytes, 300);
    assert_eq!(std::fs::metadata(&last).unwrap().len(), len, "the torn tail was cut off");
    assert!(cache.get(b"torn").unwrap().is_none());
    check(&cache, 100);
    cache.set(b"after", b"the cut", None).unwrap();
    drop(cache);
    let cache = builder().open(dir.path()).unwrap();
    check(&cache, 100);
    assert_eq!(cache.get(b"after").unwrap().unwrap(), b"the cut");
}

#[test]
fn a_damaged_value_reads_as_a_miss_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    cache.set(b"a", &[b'a'; 1000], None).unwrap();
    cache.set(b"b", &[b'b'; 1000], None).unwrap();
    cache.close().unwrap();
    // Flip one byte inside a's value (header 32 + record header 28 + key 1 + 500).
    let seg = files(dir.path(), "seg").remove(0);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[32 + 28 + 1 + 500] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert!(cache.get(b"a").unwrap().is_none(), "a damaged value was returned");
    assert_eq!(cache.stats().corrupt_reads, 1);
    assert_eq!(cache.get(b"b").unwrap().unwrap(), vec![b'b'; 1000]);
}

#[test]
fn damage_without_a_hint_loses_the_rest_of_that_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    fill(&cache, 3000);
    cache.close().unwrap();
    let segs = files(dir.path(), "seg");
    assert!(segs.len() > 3);
    for h in files(dir.path(), "hint") {
        std::fs::remove_file(h).unwrap();
    }
    let mut bytes = std::fs::read(&segs[1]).unwrap();
    bytes[200] ^= 1;
    std::fs::write(&segs[1], &bytes).unwrap();
    let cache = builder().open(dir.path()).unwrap();
    let present = (0..3000).filter(|i| cache.get(format!("key{i}").as_bytes()).unwrap().is_some()).count();
    assert!(present > 1500 && present < 3000, "{present} of 3000 keys survived");
    // Every key that reads back reads its own value.
    for i in 0..3000 {
        if let Some(v) = cache.get(format!("key{i}").as_bytes()).unwrap() {
            assert_eq!(v, format!("value{i}").repeat(20).as_bytes());
        }
    }
}

#[test]
fn a_segment_from_a_future_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    fill(&cache, 10);
    cache.close().unwrap();
    let seg = files(dir.path(), "seg").remove(0);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[8] = 3; // version 3 (this build writes 2)
    let crc = crc32fast::hash(&bytes[0..24]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&seg, &bytes).unwrap();
    let err = builder().open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedVersion { found: 3, supported: 2, path } if *path == seg), "{err}");
    assert!(err.to_string().contains("version 3"), "{err}");
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "the refused file was modified");
    assert!(matches!(Cache::builder().open_read_only(dir.path()), Err(Error::UnsupportedVersion { .. })));
}

#[test]
fn a_foreign_file_named_like_a_segment_is_not_read_as_data() {
    let dir = tempfile::tempdir().unwrap();
    builder().open(dir.path()).unwrap().set(b"k", b"v", None).unwrap();
    std::fs::write(dir.path().join("000000ff.seg"), b"this is not a keg segment at all, just text\n").unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert_eq!(cache.stats().recovery_dropped_segments, 1);
    assert_eq!(cache.get(b"k").unwrap().unwrap(), b"v");
}

#[test]
fn expiry_holds_across_restarts_and_clock_jumps_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let cache = builder().clock(clock.clone()).open(dir.path()).unwrap();
    cache.set(b"short", b"v", Some(Duration::from_secs(60))).unwrap();
    cache.set(b"long", b"v", Some(Duration::from_secs(3600))).unwrap();
    drop(cache);
    clock.advance(Duration::from_secs(61));
    let cache = builder().clock(clock.clone()).open(dir.path()).unwrap();
    assert!(cache.get(b"short").unwrap().is_none(), "expired while closed");
    assert!(cache.get(b"long").unwrap().is_some());
    drop(cache); // the close records the clock's high-water mark
    clock.set_ms(1_700_000_000_000); // the wall clock jumps back 61 s
    let cache = builder().clock(clock.clone()).open(dir.path()).unwrap();
    assert!(cache.get(b"short").unwrap().is_none(), "a clock jump revived an expired entry");
}

#[test]
fn group_commit_shares_fsyncs_between_concurrent_synced_writers() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().durability(keg::Durability::Synced).open(dir.path()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..200 {
                    cache.set(format!("t{t}-{i}").as_bytes(), &[0; 100], None).unwrap();
                }
            });
        }
    });
    let s = cache.stats();
    assert_eq!(s.sets, 800);
    assert!(s.sync_rounds > 0);
    assert!(s.sync_rounds < 800, "every synced write paid its own fsync: {} rounds", s.sync_rounds);
}
