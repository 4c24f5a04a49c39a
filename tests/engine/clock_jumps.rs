//! The wall clock jumping backwards or forwards: writes stay ordered by
//! sequence number, and an entry the cache has seen expire never comes back —
//! after a clean close, after a crash (the process killed) and after a power
//! cut — because every time the cache uses is first covered by the clock mark
//! in the checkpoint.

use std::path::Path;
use std::time::Duration;

use crate::fault_model::*;
use keg::format::checkpoint::Checkpoint;
use keg::sim::FaultFs;
use keg::{Cache, Durability, ManualClock};

const T0: u64 = 1_700_000_000_000;
const SEC: Duration = Duration::from_secs(1);

fn open(dir: &Path, clock: &ManualClock, fs: &FaultFs, mode: Durability) -> Cache {
    Cache::builder()
        .max_bytes(1 << 20)
        .segment_bytes(4096)
        .durability(mode)
        .background_maintenance(false)
        .clock(clock.clone())
        .storage(fs.clone())
        .open(dir)
        .unwrap()
}

fn get(cache: &Cache, key: &[u8]) -> Option<Vec<u8>> {
    cache.get(key).unwrap().map(|v| v.to_vec())
}

fn clock_mark_on_disk(dir: &Path) -> u64 {
    Checkpoint::decode(&std::fs::read(dir.join("checkpoint")).unwrap()).unwrap().clock_ms
}

/// How the cache goes away before the clock jumps back.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Close,
    Kill,
    PowerCut(u64),
}

fn stop(cache: Cache, fs: &FaultFs, how: Stop) {
    match how {
        Stop::Close => cache.close().unwrap(),
        Stop::Kill => cache.abandon(),
        Stop::PowerCut(seed) => {
            cache.abandon();
            fs.crash(seed).unwrap();
        }
    }
}

const STOPS: [Stop; 5] = [Stop::Close, Stop::Kill, Stop::PowerCut(1), Stop::PowerCut(2), Stop::PowerCut(3)];

#[test]
fn an_entry_seen_expired_stays_expired_when_the_clock_jumps_back_after_a_restart() {
    for mode in [Durability::Flushed, Durability::Synced, Durability::Buffered] {
        for how in STOPS {
            let dir = fast_tempdir();
            let fs = FaultFs::new();
            let clock = ManualClock::new(T0);
            let cache = open(dir.path(), &clock, &fs, mode);
            cache.set(b"short", b"lives 5 s", Some(5 * SEC)).unwrap();
            cache.set(b"long", b"lives a day", Some(86_400 * SEC)).unwrap();
            cache.sync().unwrap();
            clock.advance(6 * SEC);
            assert_eq!(get(&cache, b"short"), None);
            stop(cache, &fs, how);
            clock.set_ms(T0); // the clock jumps back 6 s
            let cache = open(dir.path(), &clock, &fs, mode);
            assert_eq!(get(&cache, b"short"), None, "{mode:?} {how:?}: an expired entry came back");
            assert!(get(&cache, b"long").is_some(), "{mode:?} {how:?}");
        }
    }
}

#[test]
fn any_call_covers_its_time_with_the_persisted_clock_mark() {
    // The invariant behind the test above: when a call returns, the checkpoint
    // on disk holds a clock mark at least as late as the time the call used.
    let dir = fast_tempdir();
    let fs = FaultFs::new();
    let clock = ManualClock::new(T0);
    let cache = open(dir.path(), &clock, &fs, Durability::Flushed);
    let mut rng = Rng(7);
    for i in 0..400u64 {
        clock.advance(Duration::from_millis(rng.below(3_000)));
        let t = keg::Clock::now_ms(&clock);
        match rng.below(4) {
            0 => cache.set(format!("k{}", i % 7).as_bytes(), b"v", Some(SEC * (1 + rng.below(5) as u32))).unwrap(),
            1 => drop(cache.get(format!("k{}", i % 7).as_bytes()).unwrap()),
            2 => drop(cache.contains(format!("k{}", i % 7).as_bytes()).unwrap()),
            _ => drop(cache.delete(format!("k{}", i % 7).as_bytes()).unwrap()),
        }
        assert!(clock_mark_on_disk(dir.path()) >= t, "call {i} used time {t} beyond the persisted mark");
    }
    // The mark runs ahead of the clock by a bounded lease, so checkpoints are rare.
    let mark = clock_mark_on_disk(dir.path());
    assert!(mark <= keg::Clock::now_ms(&clock) + 60_000, "the clock mark runs {} ms ahead", mark - T0);
}

#[test]
fn a_clock_jumping_back_never_reorders_writes() {
    for how in STOPS {
        let dir = fast_tempdir();
        let fs = FaultFs::new();
        let clock = ManualClock::new(T0 + 3_600_000);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        cache.set(b"k", b"first", None).unwrap();
        cache.set(b"t", b"first", Some(60 * SEC)).unwrap();
        clock.set_ms(T0); // an hour back, mid-session
        cache.set(b"k", b"second", None).unwrap();
        cache.set(b"t", b"second", Some(60 * SEC)).unwrap();
        assert_eq!(get(&cache, b"k").as_deref(), Some(&b"second"[..]));
        assert_eq!(get(&cache, b"t").as_deref(), Some(&b"second"[..]));
        cache.compact().unwrap();
        stop(cache, &fs, how);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        assert_eq!(get(&cache, b"k").as_deref(), Some(&b"second"[..]), "{how:?}");
        // The second TTL counts from the cache's time, which did not go back:
        // it expires 60 s after the first write's time, not an hour early.
        assert_eq!(get(&cache, b"t").as_deref(), Some(&b"second"[..]), "{how:?}");
        clock.set_ms(T0 + 3_600_000 + 61_000);
        assert_eq!(get(&cache, b"t"), None, "{how:?}");
    }
}

#[test]
fn a_clock_jumping_forward_expires_entries_for_good() {
    for how in STOPS {
        let dir = fast_tempdir();
        let fs = FaultFs::new();
        let clock = ManualClock::new(T0);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        cache.set(b"hour", b"lives an hour", Some(3600 * SEC)).unwrap();
        clock.advance(2 * 3600 * SEC); // forward two hours
        assert_eq!(get(&cache, b"hour"), None);
        clock.set_ms(T0); // and back
        assert_eq!(get(&cache, b"hour"), None, "expired within the session");
        stop(cache, &fs, how);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        assert_eq!(get(&cache, b"hour"), None, "{how:?}: expired entry back after a forward-and-back jump");
        // New writes count from the cache's time (two hours on), not the clock's.
        cache.set(b"new", b"v", Some(60 * SEC)).unwrap();
        assert!(get(&cache, b"new").is_some());
    }
}

#[test]
fn a_crash_expires_entries_early_by_at_most_the_clock_lease() {
    // The price of the guarantee: after a crash the cache's time may start at
    // the persisted mark, a little ahead of the last time used. A clean close
    // persists the exact time, so nothing expires early.
    for how in STOPS {
        let dir = fast_tempdir();
        let fs = FaultFs::new();
        let clock = ManualClock::new(T0);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        cache.set(b"minute", b"lives 60 s", Some(60 * SEC)).unwrap();
        cache.set(b"five", b"lives 5 s", Some(5 * SEC)).unwrap();
        stop(cache, &fs, how);
        clock.advance(SEC);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        assert!(get(&cache, b"minute").is_some(), "{how:?}: a 60 s entry expired 59 s early");
        if matches!(how, Stop::Close) {
            assert!(get(&cache, b"five").is_some(), "a clean close made an entry expire early");
        }
    }
}

#[test]
fn crashes_in_a_row_keep_the_cache_time_within_a_lease_of_the_clock() {
    // After a crash the cache resumes from its clock mark, up to a lease
    // (20 s) ahead of the clock. Renewing the mark from that time instead of
    // from the clock would push it another lease ahead at every crash, and
    // entries would expire earlier and earlier.
    let dir = fast_tempdir();
    let fs = FaultFs::new();
    let clock = ManualClock::new(T0);
    for round in 0..6u64 {
        let cache = open(dir.path(), &clock, &fs, Durability::Flushed);
        let now = cache.now_ms();
        assert!(now <= T0 + 20_000, "round {round}: the cache's time is {} ms ahead of the clock", now - T0);
        cache.set(b"k", b"v", Some(60 * SEC)).unwrap();
        cache.run_maintenance().unwrap();
        cache.abandon();
    }
    // Once the clock moves on, the mark follows it (and stays ahead of it).
    clock.advance(60 * SEC);
    let cache = open(dir.path(), &clock, &fs, Durability::Flushed);
    cache.set(b"k", b"v", None).unwrap();
    cache.run_maintenance().unwrap();
    let wall = keg::Clock::now_ms(&clock);
    assert!(clock_mark_on_disk(dir.path()) >= wall, "the mark fell behind the clock");
    assert!(clock_mark_on_disk(dir.path()) <= wall + 20_000);
}
