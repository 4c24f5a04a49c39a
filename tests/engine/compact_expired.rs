//! Expired values are dead bytes to compaction: `compact()` drops them, and
//! so does background compaction once they pass its threshold.

use std::time::Duration;

use keg::{Cache, ManualClock};

const T0: u64 = 1_700_000_000_000;
const TTL: Option<Duration> = Some(Duration::from_secs(1));

fn key(i: u32) -> Vec<u8> {
    format!("session:{i:05}").into_bytes()
}

#[test]
fn compact_drops_expired_values_and_shrinks_the_files() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().clock(clock.clone()).background_maintenance(false).open(dir.path()).unwrap();
    for i in 0..1000 {
        cache.set(&key(i), &[b'v'; 200], TTL).unwrap();
    }
    let before = cache.stats();
    assert_eq!(cache.len(), 1000);
    clock.advance(Duration::from_millis(1200));
    cache.compact().unwrap();
    let after = cache.stats();
    assert_eq!(cache.len(), 0, "compact left expired entries in the index");
    assert!(after.disk_bytes < before.disk_bytes / 10, "disk {} -> {}", before.disk_bytes, after.disk_bytes);
    assert!(after.compactions >= 1);
    assert_eq!(after.expirations_reclaimed, 1000);
    for i in 0..1000 {
        assert!(cache.get(&key(i)).unwrap().is_none());
    }
    // A reopen agrees.
    cache.close().unwrap();
    let cache = Cache::builder().clock(clock.clone()).background_maintenance(false).open(dir.path()).unwrap();
    assert_eq!(cache.len(), 0);
}

#[test]
fn compact_keeps_what_has_not_expired() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().clock(clock.clone()).background_maintenance(false).open(dir.path()).unwrap();
    for i in 0..1000 {
        let ttl = match i % 3 {
            0 => TTL,
            1 => Some(Duration::from_secs(3600)),
            _ => None,
        };
        cache.set(&key(i), &i.to_le_bytes().repeat(50), ttl).unwrap();
    }
    let before = cache.stats().disk_bytes;
    clock.advance(Duration::from_secs(2));
    cache.compact().unwrap();
    assert_eq!(cache.len(), 666);
    assert!(cache.stats().disk_bytes < before);
    for i in 0..1000 {
        let got = cache.get(&key(i)).unwrap();
        if i % 3 == 0 {
            assert!(got.is_none(), "key {i}");
        } else {
            assert_eq!(got.unwrap(), i.to_le_bytes().repeat(50), "key {i}");
        }
    }
    // Nothing more to free: a second compact rewrites nothing.
    let compactions = cache.stats().compactions;
    cache.compact().unwrap();
    assert_eq!(cache.stats().compactions, compactions);
}

#[test]
fn background_compaction_counts_expired_bytes() {
    let clock = ManualClock::new(T0);
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so that most of the entries sit in sealed ones.
    let cache = Cache::builder()
        .clock(clock.clone())
        .max_bytes(64 << 20)
        .segment_bytes(64 << 10)
        .background_maintenance(false)
        .open(dir.path())
        .unwrap();
    for i in 0..1000 {
        cache.set(&key(i), &[b'v'; 200], TTL).unwrap();
    }
    let before = cache.stats();
    assert!(before.segments >= 4, "{before:?}");
    // A background round (run here, on this thread, as the maintenance thread would).
    clock.advance(Duration::from_secs(2));
    cache.run_maintenance().unwrap();
    let after = cache.stats();
    assert!(after.compactions >= 2, "{after:?}");
    assert!(cache.len() < 400, "{} entries left", cache.len());
    assert!(after.disk_bytes < before.disk_bytes / 2, "disk {} -> {}", before.disk_bytes, after.disk_bytes);
    for i in 0..1000 {
        assert!(cache.get(&key(i)).unwrap().is_none());
    }
    // Rounds count expired bytes at most 30 s (of cache time) apart.
    for i in 1000..2000 {
        cache.set(&key(i), &[b'v'; 200], TTL).unwrap();
    }
    let compactions = cache.stats().compactions;
    clock.advance(Duration::from_secs(30));
    cache.run_maintenance().unwrap();
    assert!(cache.stats().compactions >= compactions + 2, "{:?}", cache.stats());
    assert!(cache.len() < 400, "{} entries left", cache.len());
}
