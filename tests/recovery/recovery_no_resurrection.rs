//! Bitcask's classic bugs, as tests: a deleted or expired key must never come
//! back after compaction and a restart, whichever segments compaction picks.

use std::time::Duration;

use keg::{Cache, ManualClock};

const SEG: u64 = 64 << 10;

/// Removes the hint files, so that open must scan (as after a crash before they were written).
fn remove_hints(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "hint") {
            std::fs::remove_file(p).unwrap();
        }
    }
}

fn open(dir: &std::path::Path, clock: &ManualClock) -> Cache {
    Cache::builder()
        .max_bytes(64 << 20)
        .segment_bytes(SEG)
        .background_maintenance(false)
        .clock(clock.clone())
        .open(dir)
        .unwrap()
}

/// Fills the rest of the current segment with `n` records under `prefix`.
fn filler(cache: &Cache, prefix: &str, n: usize) {
    for i in 0..n {
        cache.set(format!("{prefix}{i}").as_bytes(), &[b'f'; 1000], None).unwrap();
    }
}

#[test]
fn a_delete_survives_compaction_of_the_tombstone_segment_alone() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let cache = open(dir.path(), &clock);
    // Segment A: the old value among live filler (A stays below the compaction threshold).
    cache.set(b"victim", b"old value", None).unwrap();
    filler(&cache, "a", 70);
    // Segment B: the tombstone among filler that is then overwritten (B becomes mostly dead).
    cache.delete(b"victim").unwrap();
    filler(&cache, "b", 70);
    filler(&cache, "b", 70);
    cache.run_maintenance().unwrap();
    assert!(cache.stats().compactions > 0, "the test must make compaction run");
    assert!(cache.get(b"victim").unwrap().is_none());
    drop(cache);
    let cache = open(dir.path(), &clock);
    assert!(cache.get(b"victim").unwrap().is_none(), "a deleted key came back after compaction and restart");
    cache.abandon();
    remove_hints(dir.path());
    let cache = open(dir.path(), &clock);
    assert!(cache.get(b"victim").unwrap().is_none(), "a deleted key came back after a crash without hints");
}

#[test]
fn an_expired_overwrite_does_not_let_the_older_value_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let cache = open(dir.path(), &clock);
    cache.set(b"victim", b"old value, no ttl", None).unwrap();
    filler(&cache, "a", 70);
    cache.set(b"victim", b"new value, short ttl", Some(Duration::from_secs(1))).unwrap();
    filler(&cache, "b", 70);
    filler(&cache, "b", 70);
    clock.advance(Duration::from_secs(2));
    cache.run_maintenance().unwrap();
    assert!(cache.stats().compactions > 0, "the test must make compaction run");
    assert!(cache.stats().expirations_reclaimed > 0, "the test must reclaim the expired entry");
    assert!(cache.get(b"victim").unwrap().is_none());
    drop(cache);
    let cache = open(dir.path(), &clock);
    assert!(cache.get(b"victim").unwrap().is_none(), "an expired key's older value came back");
    drop(cache);
    remove_hints(dir.path());
    let cache = open(dir.path(), &clock);
    assert!(cache.get(b"victim").unwrap().is_none(), "an expired key's older value came back without hints");
}

#[test]
fn tombstones_are_dropped_once_nothing_older_remains() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let cache = open(dir.path(), &clock);
    for i in 0..200 {
        cache.set(format!("k{i}").as_bytes(), &[1; 500], None).unwrap();
    }
    for i in 0..200 {
        cache.delete(format!("k{i}").as_bytes()).unwrap();
    }
    cache.compact().unwrap();
    cache.compact().unwrap();
    let s = cache.stats();
    assert_eq!(s.entries, 0);
    assert_eq!(s.live_bytes, 0);
    assert!(s.dead_bytes == 0, "tombstones were kept though no older value remains: {s:?}");
}

#[test]
fn compacting_twice_rewrites_nothing_the_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    // Three short sessions: a and b in a probation segment, the tombstone in a main one.
    open(dir.path(), &clock).set(b"a", b"1", None).unwrap();
    open(dir.path(), &clock).set(b"b", b"2", None).unwrap();
    assert!(open(dir.path(), &clock).delete(b"b").unwrap());
    let cache = open(dir.path(), &clock);
    cache.compact().unwrap();
    let first = cache.stats().segments_reclaimed;
    assert!(first > 0);
    cache.compact().unwrap();
    assert_eq!(cache.stats().segments_reclaimed, first, "a second compact rewrote segments again");
    assert_eq!(cache.get(b"a").unwrap().unwrap(), b"1");
    assert!(cache.get(b"b").unwrap().is_none());
    drop(cache);
    remove_hints(dir.path());
    assert!(open(dir.path(), &clock).get(b"b").unwrap().is_none());
}
