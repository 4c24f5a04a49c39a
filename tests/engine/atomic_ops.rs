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

mod batches {
    use super::*;
    use keg::sim::{FaultFs, Op};

    fn builder(fs: &FaultFs, mode: Durability) -> keg::Builder {
        Cache::builder()
            .max_bytes(64 << 20)
            .segment_bytes(1 << 20)
            .durability(mode)
            .background_maintenance(false)
            .storage(fs.clone())
    }

    #[test]
    fn a_batch_reaches_the_os_as_one_write_and_one_fsync() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new();
        let cache = builder(&fs, Durability::Synced).open(dir.path()).unwrap();
        cache.set(b"warm", b"up", None).unwrap(); // (the probation segment exists)
        let items: Vec<(Vec<u8>, Vec<u8>)> =
            (0..200).map(|i| (format!("k{i}").into_bytes(), vec![b'v'; 100])).collect();
        let (writes, syncs) = (fs.ops_of(Op::Write), fs.ops_of(Op::Sync));
        cache.set_many(&items, &SetOptions::new()).unwrap();
        assert_eq!(fs.ops_of(Op::Write) - writes, 1, "200 records in one write");
        assert_eq!(fs.ops_of(Op::Sync) - syncs, 1, "and one fsync");
        let (writes, syncs) = (fs.ops_of(Op::Write), fs.ops_of(Op::Sync));
        for (k, v) in &items[..20] {
            cache.set(k, v, None).unwrap();
        }
        assert_eq!(fs.ops_of(Op::Write) - writes, 20, "single sets write one by one");
        assert!(fs.ops_of(Op::Sync) - syncs >= 20);
        for (k, v) in &items {
            assert_eq!(cache.get(k).unwrap().unwrap(), &v[..]);
        }
        let keys: Vec<&[u8]> = items.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(cache.delete_many(&keys).unwrap(), 200);
        assert!(cache.get_many(&keys).unwrap().iter().all(Option::is_none));
    }

    #[test]
    fn an_invalid_item_or_a_batch_over_the_cap_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::builder()
            .max_bytes(4 << 20)
            .segment_bytes(512 << 10)
            .max_value_len(120_000)
            .open(dir.path())
            .unwrap();
        let long = vec![b'k'; 5000];
        let items = [(&b"a"[..], &b"1"[..]), (&long[..], b"2")];
        assert!(matches!(cache.set_many(&items, &SetOptions::new()), Err(Error::KeyTooLong { .. })));
        assert!(cache.get(b"a").unwrap().is_none(), "an invalid item fails the whole batch");
        let big = vec![b'v'; 110_000];
        let items: Vec<(Vec<u8>, &[u8])> = (0..40).map(|i| (format!("big{i}").into_bytes(), &big[..])).collect();
        let err = cache.set_many(&items, &SetOptions::new()).unwrap_err();
        assert!(matches!(err, Error::NoSpace { .. }), "{err}");
        assert!(cache.get(b"big0").unwrap().is_none(), "a batch over the cap writes nothing");
    }

    /// Power cut at every storage operation of a batch: what survives is a
    /// prefix of the batch; in synced mode, all of it once the call returned.
    #[test]
    fn a_power_cut_leaves_a_prefix_of_a_batch() {
        for mode in [Durability::Synced, Durability::Flushed] {
            let mut partial = 0;
            for cut in 1..40u64 {
                let dir = tempfile::tempdir().unwrap();
                let fs = FaultFs::new();
                let cache = builder(&fs, mode).open(dir.path()).unwrap();
                let keys: Vec<Vec<u8>> = (0..60).map(|i| format!("key{i}").into_bytes()).collect();
                let base: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &b"base"[..])).collect();
                cache.set_many(&base, &SetOptions::new()).unwrap();
                cache.sync().unwrap();
                fs.cut_power_after(cut);
                // Values large enough that the batch spans segments.
                let value = vec![b'n'; 40_000];
                let batch: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &value[..])).collect();
                let acked = cache.set_many(&batch, &SetOptions::new()).is_ok();
                cache.abandon();
                fs.crash(cut * 31 + 7).unwrap();
                let cache = builder(&fs, mode).open(dir.path()).unwrap();
                let landed: Vec<bool> = keys
                    .iter()
                    .map(|k| {
                        let v = cache.get(k).unwrap().expect("a synced base value is never lost");
                        assert!(&v[..] == b"base" || v[..] == value[..], "a value never written");
                        v[..] == value[..]
                    })
                    .collect();
                let n = landed.iter().take_while(|&&l| l).count();
                assert!(landed[n..].iter().all(|&l| !l), "{mode:?} cut {cut}: not a prefix: {landed:?}");
                if mode == Durability::Synced && acked {
                    assert_eq!(n, keys.len(), "{mode:?} cut {cut}: an acknowledged batch lost items");
                }
                partial += usize::from(n > 0 && n < keys.len());
            }
            assert!(partial > 0, "{mode:?}: no cut fell inside a batch: the test is not testing");
        }
    }
}

#[test]
fn a_stampede_computes_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(Cache::open(dir.path()).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let (c, b) = (calls.clone(), barrier.clone());
    threads(&cache, move |cache, _| {
        b.wait();
        let v = cache
            .get_or_set_with(b"slow", &opts(), || {
                c.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
                Ok::<_, String>(b"computed".to_vec())
            })
            .unwrap()
            .unwrap();
        assert_eq!(v, b"computed");
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1, "f ran more than once");
}

#[test]
fn a_failed_computation_stores_nothing_and_waiters_try_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(Cache::open(dir.path()).unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(THREADS));
    let (c, b) = (calls.clone(), barrier.clone());
    let failures = Arc::new(AtomicUsize::new(0));
    let f2 = failures.clone();
    threads(&cache, move |cache, _| {
        b.wait();
        let got = cache
            .get_or_set_with(b"flaky", &opts(), || {
                // The first computation fails; the next succeeds.
                let n = c.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(100));
                if n == 0 {
                    Err("database down")
                } else {
                    Ok(b"ok".to_vec())
                }
            })
            .unwrap();
        match got {
            Ok(v) => assert_eq!(v, b"ok"),
            Err(e) => {
                assert_eq!(e, "database down");
                f2.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    assert_eq!(failures.load(Ordering::SeqCst), 1, "only the failing caller sees the error");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one retry after the failure, not one per waiter");
    assert_eq!(cache.get(b"flaky").unwrap().unwrap(), b"ok");
}

#[test]
fn metrics_count_the_new_operations_and_time_gets_and_sets() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    for i in 0..1600u32 {
        cache.set(&i.to_le_bytes(), b"v", None).unwrap();
        cache.get(&i.to_le_bytes()).unwrap().unwrap();
    }
    let s = cache.stats();
    // One call in 16 per thread is timed.
    assert_eq!((s.get_latency.count(), s.set_latency.count()), (100, 100));
    assert!(s.get_latency.quantile_ns(0.5) > 0 && s.get_latency.quantile_ns(0.5) <= s.get_latency.quantile_ns(0.99));
    let text = s.to_prometheus();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        assert!(name.starts_with("keg_"), "{line}");
        value.parse::<f64>().unwrap_or_else(|_| panic!("not a number: {line}"));
    }
    assert!(text.contains("keg_sets_total 1600\n"), "{text}");
    assert!(text.contains("keg_hits_total 1600\n"));
    assert!(text.contains("keg_get_latency_seconds_count 100\n"));
    // Every number of the snapshot is exported (its fields, as Debug names them).
    let debug = format!("{s:?}");
    for field in debug.split([',', '{']).filter_map(|f| f.trim().split_once(": ")) {
        let (name, value) = field;
        if value.parse::<u64>().is_ok() {
            let exported = text.contains(&format!("keg_{name} ")) || text.contains(&format!("keg_{name}_total "));
            assert!(exported, "Stats::{name} is not in the Prometheus text");
        }
    }
}
