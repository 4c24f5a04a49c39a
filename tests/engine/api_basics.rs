//! The API's promises for well-formed and ill-formed input.

use std::time::Duration;

use keg::{Cache, Error, ManualClock};

fn open(dir: &std::path::Path) -> Cache {
    Cache::builder().max_bytes(64 << 20).open(dir).unwrap()
}

#[test]
fn set_get_overwrite_delete_contains_len() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    assert!(cache.is_empty());
    cache.set(b"a", b"1", None).unwrap();
    cache.set(b"b", b"2", None).unwrap();
    cache.set(b"a", b"one", None).unwrap();
    assert_eq!(cache.get(b"a").unwrap().unwrap(), b"one");
    assert_eq!(cache.get(b"b").unwrap().unwrap(), b"2");
    assert_eq!(cache.len(), 2);
    assert!(cache.contains(b"a").unwrap());
    assert!(cache.delete(b"a").unwrap());
    assert!(!cache.contains(b"a").unwrap());
    assert!(cache.get(b"a").unwrap().is_none());
    assert!(!cache.delete(b"a").unwrap());
    assert_eq!(cache.len(), 1);
    let s = cache.stats();
    assert_eq!((s.sets, s.deletes, s.hits, s.misses), (3, 1, 2, 1));
}

#[test]
fn empty_values_and_binary_keys_work() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    let key = [0xff, 0x00, 0xfe, 0x80, 0xc3]; // not UTF-8
    cache.set(&key, b"", None).unwrap();
    assert_eq!(cache.get(&key).unwrap().unwrap().len(), 0);
    cache.set(&[0], &[0; 1000], None).unwrap();
    assert_eq!(cache.get(&[0]).unwrap().unwrap(), vec![0u8; 1000]);
}

#[test]
fn bad_keys_and_values_are_refused_and_nothing_stored_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().max_bytes(64 << 20).max_key_len(250).max_value_len(1000).open(dir.path()).unwrap();
    cache.set(b"keep", b"me", None).unwrap();

    assert!(matches!(cache.set(b"", b"v", None), Err(Error::EmptyKey)));
    assert!(matches!(cache.get(b""), Err(Error::EmptyKey)));
    assert!(matches!(cache.delete(b""), Err(Error::EmptyKey)));
    let long = vec![b'k'; 251];
    let err = cache.set(&long, b"v", None).unwrap_err();
    assert!(matches!(err, Error::KeyTooLong { len: 251, max: 250 }));
    assert!(err.to_string().contains("max_key_len"), "{err}");
    assert!(matches!(cache.get(&long), Err(Error::KeyTooLong { .. })));
    let err = cache.set(b"k", &[0; 1001], None).unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { len: 1001, max: 1000 }));
    assert!(err.to_string().contains("max_value_len"), "{err}");
    cache.set(&vec![b'k'; 250], &[1; 1000], None).unwrap();

    assert_eq!(cache.get(b"keep").unwrap().unwrap(), b"me");
    assert_eq!(cache.stats().sets, 2);
}

#[test]
fn a_value_larger_than_the_cap_allows_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().max_bytes(1 << 20).open(dir.path()).unwrap();
    let err = cache.set(b"big", &vec![7; 1 << 20], None).unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err}");
}

#[test]
fn ttls_zero_huge_and_subsecond() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let cache = Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
    cache.set(b"k", b"old", None).unwrap();
    // A zero TTL expires at once: it removes the key.
    cache.set(b"k", b"new", Some(Duration::ZERO)).unwrap();
    assert!(cache.get(b"k").unwrap().is_none());
    // Huge TTLs mean "never".
    cache.set(b"forever", b"v", Some(Duration::MAX)).unwrap();
    cache.set(b"century", b"v", Some(Duration::from_secs(100 * 365 * 86400))).unwrap();
    clock.advance(Duration::from_secs(50 * 365 * 86400));
    assert!(cache.get(b"forever").unwrap().is_some());
    assert!(cache.get(b"century").unwrap().is_some());
    // Sub-second TTLs hold to the millisecond.
    cache.set(b"short", b"v", Some(Duration::from_millis(1500))).unwrap();
    clock.advance(Duration::from_millis(1499));
    assert!(cache.get(b"short").unwrap().is_some());
    clock.advance(Duration::from_millis(1));
    assert!(cache.get(b"short").unwrap().is_none());
    assert!(!cache.contains(b"short").unwrap());
    assert_eq!(cache.stats().expired_reads, 1);
    // A sub-millisecond TTL rounds up to one millisecond, not down to "now".
    cache.set(b"tiny", b"v", Some(Duration::from_micros(10))).unwrap();
    assert!(cache.get(b"tiny").unwrap().is_some());
    clock.advance(Duration::from_millis(1));
    assert!(cache.get(b"tiny").unwrap().is_none());
}

#[test]
fn values_stay_valid_after_the_key_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path());
    cache.set(b"k", b"first", None).unwrap();
    let held = cache.get(b"k").unwrap().unwrap();
    cache.set(b"k", b"second", None).unwrap();
    cache.delete(b"k").unwrap();
    cache.compact().unwrap();
    assert_eq!(held, b"first");
}

#[test]
fn bad_configuration_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let err = Cache::builder().max_bytes(100_000).open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert!(err.to_string().contains("raise max_bytes"), "{err}");
}

#[test]
fn read_only_handles_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).set(b"k", b"v", None).unwrap();
    let ro = Cache::builder().open_read_only(dir.path()).unwrap();
    assert_eq!(ro.get(b"k").unwrap().unwrap(), b"v");
    assert!(matches!(ro.set(b"k", b"w", None), Err(Error::ReadOnly { .. })));
    assert!(matches!(ro.delete(b"k"), Err(Error::ReadOnly { .. })));
    assert!(matches!(ro.compact(), Err(Error::ReadOnly { .. })));
}

#[test]
fn opening_a_missing_directory_read_only_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err = Cache::builder().open_read_only(dir.path().join("nope")).unwrap_err();
    assert!(err.to_string().contains("no such cache directory"), "{err}");
}

/// A clock that counts how often the cache reads it.
#[derive(Clone)]
struct CountingClock {
    inner: ManualClock,
    reads: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl keg::Clock for CountingClock {
    fn now_ms(&self) -> u64 {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.now_ms()
    }

    fn since_boot(&self) -> Option<keg::BootTime> {
        self.inner.since_boot()
    }
}

#[test]
fn a_get_reads_the_clock_only_for_an_entry_with_a_ttl_and_still_expires_it() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let clock = CountingClock { inner: ManualClock::new(1_700_000_000_000), reads: Default::default() };
    let cache = Cache::builder().background_maintenance(false).clock(clock.clone()).open(dir.path()).unwrap();
    cache.set(b"forever", b"a", None).unwrap();
    cache.set(b"brief", b"b", Some(Duration::from_secs(10))).unwrap();
    cache.flush().unwrap();
    let before = clock.reads.load(SeqCst);
    for _ in 0..100 {
        assert_eq!(cache.get(b"forever").unwrap().unwrap(), b"a");
        assert!(cache.contains(b"forever").unwrap());
        assert_eq!(cache.get_entry(b"forever").unwrap().unwrap().expires_at_ms, 0);
    }
    assert!(cache.get(b"missing").unwrap().is_none());
    assert_eq!(clock.reads.load(SeqCst), before, "reads of entries without a TTL need no time");
    assert_eq!(cache.get(b"brief").unwrap().unwrap(), b"b");
    assert!(clock.reads.load(SeqCst) > before, "an entry with a TTL is checked against the clock");
    clock.inner.advance(Duration::from_secs(10));
    assert!(cache.get(b"brief").unwrap().is_none());
    assert!(!cache.contains(b"brief").unwrap());
    assert!(cache.get_entry(b"brief").unwrap().is_none());
    assert_eq!(cache.get(b"forever").unwrap().unwrap(), b"a");
}
