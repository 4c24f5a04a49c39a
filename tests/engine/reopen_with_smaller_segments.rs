//! Found by the `open_dir` fuzz target: a cache reopened with a smaller
//! `segment_bytes` than it was written with holds records longer than a
//! segment now is. Maintenance copied such a record like any other, which
//! appended it past the end of the new segment's mapping: a debug assertion
//! failed, and in release builds the copy landed in bytes readers cannot reach.

use std::path::Path;

use keg::{Cache, ManualClock};

const NOW_MS: u64 = 1_700_000_000_000;

fn open(dir: &Path, segment_bytes: u64) -> Cache {
    Cache::builder()
        .max_bytes(64 << 20)
        .segment_bytes(segment_bytes)
        .max_value_len(segment_bytes as usize / 4)
        .background_maintenance(false)
        .clock(ManualClock::new(NOW_MS))
        .open(dir)
        .unwrap()
}

#[test]
fn records_longer_than_the_new_segment_size_survive_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'v'; 10_000]; // fits 64 KiB segments, not 4 KiB ones
    let cache = open(dir.path(), 64 << 10);
    cache.set(b"big", &big, None).unwrap();
    cache.set(b"small", b"s", None).unwrap();
    cache.set(b"dead", b"d", None).unwrap();
    cache.delete(b"dead").unwrap();
    cache.close().unwrap();

    let cache = open(dir.path(), 4096);
    assert_eq!(cache.get(b"big").unwrap().as_deref(), Some(&big[..]));
    cache.compact().unwrap();
    assert!(cache.stats().bytes_rewritten >= 10_000, "the test must make compaction copy the big record");
    cache.run_maintenance().unwrap();
    // The big value may be kept or dropped, but never read wrong.
    let got = cache.get(b"big").unwrap();
    assert!(got.as_deref().is_none_or(|v| v == &big[..]), "the big value reads wrong");
    assert_eq!(cache.get(b"small").unwrap().as_deref(), Some(&b"s"[..]));
    cache.set(b"after", b"a", None).unwrap();
    cache.close().unwrap();

    let cache = open(dir.path(), 4096);
    let again = cache.get(b"big").unwrap();
    assert_eq!(again.is_some(), got.is_some(), "the big value changed across a clean restart");
    assert!(again.as_deref().is_none_or(|v| v == &big[..]));
    assert_eq!(cache.get(b"small").unwrap().as_deref(), Some(&b"s"[..]));
    assert_eq!(cache.get(b"after").unwrap().as_deref(), Some(&b"a"[..]));
    assert!(cache.get(b"dead").unwrap().is_none());
}
