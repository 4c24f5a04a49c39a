//! The atomic operations (issue 12): flags and versions that persist, and
//! add / replace / append / prepend / incr / decr / compare-and-swap / touch
//! that lose no update under concurrent callers.

use std::sync::Arc;
use std::time::Duration;

use keg::{Cache, CasOutcome, Durability, Error, ManualClock, SetOptions};

fn opts() -> SetOptions {
    SetOptions::new()
}

#[test]
fn flags_and_versions_survive_a_restart_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    let v1 = cache.set_with(b"a", b"one", &opts().flags(0xdead_beef)).unwrap();
    let v2 = cache.set_with(b"b", b"two", &opts()).unwrap();
    assert_ne!(v1, v2);
    let e = cache.get_entry(b"a").unwrap().unwrap();
    assert_eq!((&*e.value, e.flags, e.version), (&b"one"[..], 0xdead_beef, v1));
    // A plain get sees the value without the flag bytes.
    assert_eq!(cache.get(b"a").unwrap().unwrap(), b"one");
    cache.close().unwrap();

    let cache = Cache::open(dir.path()).unwrap();
    let e = cache.get_entry(b"a").unwrap().unwrap();
    assert_eq!((&*e.value, e.flags, e.version), (&b"one"[..], 0xdead_beef, v1), "after a restart");
    // The version from before the restart still works for a compare-and-swap.
    assert!(matches!(cache.set_if_version(b"a", b"uno", &opts().flags(5), v1).unwrap(), CasOutcome::Stored(_)));
    cache.abandon();

    let cache = Cache::open(dir.path()).unwrap();
    let e = cache.get_entry(b"a").unwrap().unwrap();
    assert_eq!((&*e.value, e.flags), (&b"uno"[..], 5), "after a crash");
    assert_eq!(cache.get_entry(b"b").unwrap().unwrap().flags, 0);
}

#[test]
fn compaction_keeps_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().segment_bytes(1 << 20).open(dir.path()).unwrap();
    cache.set_with(b"keep", b"v", &opts().flags(77)).unwrap();
    for i in 0..2000u32 {
        cache.set(b"churn", &i.to_le_bytes().repeat(64), None).unwrap();
    }
    cache.compact().unwrap();
    assert!(cache.stats().compactions > 0, "the test must compact");
    assert_eq!(cache.get_entry(b"keep").unwrap().unwrap().flags, 77);
    drop(cache);
    assert_eq!(Cache::open(dir.path()).unwrap().get_entry(b"keep").unwrap().unwrap().flags, 77);
}

#[test]
fn conditional_writes_follow_memcached() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_000_000);
    let cache = Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
    // add: only if absent or expired.
    assert!(cache.add(b"k", b"1", &opts().ttl(Some(Duration::from_secs(10)))).unwrap().is_some());
    assert!(cache.add(b"k", b"2", &opts()).unwrap().is_none());
    clock.advance(Duration::from_secs(11));
    assert!(cache.add(b"k", b"3", &opts()).unwrap().is_some(), "an expired key counts as absent");
    assert_eq!(cache.get(b"k").unwrap().unwrap(), b"3");
    // replace: only if present.
    assert!(cache.replace(b"absent", b"x", &opts()).unwrap().is_none());
    assert!(cache.get(b"absent").unwrap().is_none());
    assert!(cache.replace(b"k", b"4", &opts().flags(2)).unwrap().is_some());
    // append / prepend keep flags and expiry, and miss on an absent key.
    cache.set_with(b"s", b"mid", &opts().flags(9).ttl(Some(Duration::from_secs(100)))).unwrap();
    let before = cache.get_entry(b"s").unwrap().unwrap().expires_at_ms;
    cache.append(b"s", b">").unwrap().unwrap();
    cache.prepend(b"s", b"<").unwrap().unwrap();
    let e = cache.get_entry(b"s").unwrap().unwrap();
    assert_eq!((&*e.value, e.flags, e.expires_at_ms), (&b"<mid>"[..], 9, before));
    assert!(cache.append(b"absent", b"x").unwrap().is_none());
    // compare-and-swap tells changed from missing.
    let v = e.version;
    cache.set(b"s", b"other", None).unwrap();
    assert_eq!(cache.set_if_version(b"s", b"cas", &opts(), v).unwrap(), CasOutcome::Changed);
    assert_eq!(cache.set_if_version(b"absent", b"cas", &opts(), v).unwrap(), CasOutcome::Missing);
    let s = cache.stats();
    assert_eq!((s.cas_badval, s.cas_misses, s.cas_hits), (1, 1, 0));
}

#[test]
fn incr_and_decr_follow_memcached() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    assert_eq!(cache.incr(b"n", 1).unwrap(), None);
    assert!(cache.get(b"n").unwrap().is_none(), "incr does not create a key");
    cache.set_with(b"n", b"18446744073709551615", &opts().flags(4)).unwrap();
    assert_eq!(cache.incr(b"n", 2).unwrap(), Some(1), "incr wraps");
    assert_eq!(cache.decr(b"n", 5).unwrap(), Some(0), "decr stops at 0");
    assert_eq!(cache.get_entry(b"n").unwrap().unwrap().flags, 4, "flags kept");
    cache.set(b"text", b"12abc", None).unwrap();
    assert!(matches!(cache.incr(b"text", 1), Err(Error::NotANumber)));
    assert_eq!(cache.get(b"text").unwrap().unwrap(), b"12abc", "a failed incr leaves the value");
    let s = cache.stats();
    assert_eq!((s.incr_hits, s.incr_misses, s.decr_hits), (1, 1, 1));
}

#[test]
fn touch_moves_expiry_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(5_000_000);
    let open = || Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
    let cache = open();
    cache.set_with(b"k", b"v", &opts().flags(3).ttl(Some(Duration::from_secs(5)))).unwrap();
    assert!(cache.touch(b"k", Some(Duration::from_secs(60))).unwrap());
    clock.advance(Duration::from_secs(10));
    let e = cache.get_entry(b"k").unwrap().expect("touch extended the TTL");
    assert_eq!((&*e.value, e.flags), (&b"v"[..], 3));
    assert!(cache.touch(b"k", None).unwrap());
    drop(cache);
    let cache = open();
    clock.advance(Duration::from_secs(3600));
    assert!(cache.get(b"k").unwrap().is_some(), "touch with no TTL removed the expiry, durably");
    assert!(cache.touch(b"k", Some(Duration::ZERO)).unwrap());
    assert!(cache.get(b"k").unwrap().is_none(), "a zero TTL expires the key now");
    assert!(!cache.touch(b"k", None).unwrap());
    assert!(cache.get_and_touch(b"k", None).unwrap().is_none());
}

#[test]
fn buffered_writes_are_read_back_with_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().durability(Durability::Buffered).open(dir.path()).unwrap();
    cache.set_with(b"k", b"v", &opts().flags(11)).unwrap();
    assert!(cache.append(b"k", b"w").unwrap().is_some());
    let e = cache.get_entry(b"k").unwrap().unwrap();
    assert_eq!((&*e.value, e.flags), (&b"vw"[..], 11));
}

const THREADS: usize = 8;

fn threads(cache: &Arc<Cache>, work: impl Fn(&Cache, usize) + Send + Sync + 'static) {
    let work = Arc::new(work);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (cache, work) = (cache.clone(), work.clone());
            std::thread::spawn(move || work(&cache, t))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn concurrent_increments_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(Cache::open(dir.path()).unwrap());
    cache.set(b"counter", b"0", None).unwrap();
    threads(&cache, |c, _| {
        for _ in 0..500 {
            c.incr(b"counter", 1).unwrap().unwrap();
        }
    });
    assert_eq!(cache.get(b"counter").unwrap().unwrap(), (THREADS * 500).to_string().as_bytes());
}

#[test]
fn of_racing_adds_exactly_one_wins_each_round() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(Cache::open(dir.path()).unwrap());
    let wins = Arc::new(std::sync::Mutex::new(vec![0usize; 50]));
    let w = wins.clone();
    threads(&cache, move |c, t| {
        for round in 0..50 {
            let key = format!("lock:{round}");
            if c.add(key.as_bytes(), t.to_string().as_bytes(), &opts()).unwrap().is_some() {
                w.lock().unwrap()[round] += 1;
            }
        }
    });
    assert!(wins.lock().unwrap().iter().all(|&n| n == 1), "{:?}", wins.lock().unwrap());
}

#[test]
fn compare_and_swap_loops_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(Cache::open(dir.path()).unwrap());
    cache.set(b"n", b"0", None).unwrap();
    threads(&cache, |c, _| {
        for _ in 0..200 {
            loop {
                let e = c.get_entry(b"n").unwrap().unwrap();
                let n: u64 = std::str::from_utf8(&e.value).unwrap().parse().unwrap();
                match c.set_if_version(b"n", (n + 1).to_string().as_bytes(), &opts(), e.version).unwrap() {
                    CasOutcome::Stored(_) => break,
                    CasOutcome::Changed => continue,
                    CasOutcome::Missing => panic!("the key vanished"),
                }
            }
        }
    });
    assert_eq!(cache.get(b"n").unwrap().unwrap(), (THREADS * 200).to_string().as_bytes());
}

#[test]
fn concurrent_appends_land_each_piece_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(Cache::open(dir.path()).unwrap());
    cache.set(b"log", b"", None).unwrap();
    threads(&cache, |c, t| {
        for i in 0..100 {
            c.append(b"log", format!("[{t}:{i}]").as_bytes()).unwrap().unwrap();
        }
    });
    let log = String::from_utf8(cache.get(b"log").unwrap().unwrap().to_vec()).unwrap();
    for t in 0..THREADS {
        for i in 0..100 {
            assert_eq!(log.matches(&format!("[{t}:{i}]")).count(), 1, "piece {t}:{i}");
        }
    }
}

#[test]
fn an_append_past_the_value_limit_fails_and_keeps_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().max_value_len(10).open(dir.path()).unwrap();
    cache.set(b"k", b"12345678", None).unwrap();
    assert!(matches!(cache.append(b"k", b"abc"), Err(Error::ValueTooLarge { len: 11, max: 10 })));
    assert_eq!(cache.get(b"k").unwrap().unwrap(), b"12345678");
}
