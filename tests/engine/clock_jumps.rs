//! The wall clock jumping backwards or forwards: writes stay ordered by
//! sequence number, and an entry the cache has seen expire never comes back —
//! after a clean close, after a crash (the process killed) and after a power
//! cut — because every time the cache uses is first covered by the
//! checkpoint (its clock mark, and its clock anchor: the wall clock against
//! time since boot). And the price is paid only when the clock jumps back
//! or the machine rebooted: after a crash on the same boot, TTLs end at
//! their time.

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

/// The latest time the checkpoint on disk covers now: its mark, and its
/// anchor carried forward by the clock's time since boot.
fn covered_on_disk(dir: &Path, clock: &ManualClock) -> u64 {
    let c = Checkpoint::decode(&std::fs::read(dir.join("checkpoint")).unwrap()).unwrap();
    let boot = keg::Clock::since_boot(clock).unwrap();
    let a = c.anchor.expect("a clock anchor");
    assert_eq!(a.boot_id, boot.boot_id, "an anchor from another boot");
    c.clock_ms.min(a.covers_ms(boot.ms))
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
    // on disk covers the time the call used (its clock mark is at least as
    // late, and so is its anchor carried forward by the time since boot),
    // however the wall clock jumps meanwhile.
    let dir = fast_tempdir();
    let fs = FaultFs::new();
    let clock = ManualClock::new(T0);
    let cache = open(dir.path(), &clock, &fs, Durability::Flushed);
    let mut rng = Rng(7);
    for i in 0..600u64 {
        match rng.below(10) {
            0 => clock.set_ms(keg::Clock::now_ms(&clock) + rng.below(30_000)), // a jump forward
            1 => clock.set_ms(keg::Clock::now_ms(&clock) - rng.below(30_000)), // a jump back
            _ => clock.advance(Duration::from_millis(rng.below(3_000))),
        }
        match rng.below(4) {
            0 => cache.set(format!("k{}", i % 7).as_bytes(), b"v", Some(SEC * (1 + rng.below(5) as u32))).unwrap(),
            1 => drop(cache.get(format!("k{}", i % 7).as_bytes()).unwrap()),
            2 => drop(cache.contains(format!("k{}", i % 7).as_bytes()).unwrap()),
            _ => drop(cache.delete(format!("k{}", i % 7).as_bytes()).unwrap()),
        }
        let t = cache.now_ms(); // at least every time the call used
        assert!(clock_mark_on_disk(dir.path()) >= t, "call {i} used time {t} beyond the persisted mark");
        assert!(covered_on_disk(dir.path(), &clock) >= t, "call {i} used time {t} beyond the persisted anchor");
    }
    // The mark runs ahead of the clock by a bounded lease, so checkpoints are rare.
    let mark = clock_mark_on_disk(dir.path());
    assert!(mark <= cache.now_ms() + 60_000, "the clock mark runs {} ms ahead", mark - cache.now_ms());
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

/// How early a crash on the same boot may make an entry expire.
const SLACK_MS: u64 = keg::format::checkpoint::CLOCK_SLACK_MS;

#[test]
fn after_a_crash_on_the_same_boot_entries_expire_at_their_time() {
    // The clock anchor measures the time the crash took: the cache resumes
    // at the wall clock (within the slack), not at its clock mark.
    for mode in [Durability::Flushed, Durability::Synced, Durability::Buffered] {
        for how in STOPS {
            let dir = fast_tempdir();
            let fs = FaultFs::new();
            let clock = ManualClock::new(T0);
            let cache = open(dir.path(), &clock, &fs, mode);
            cache.set(b"ten", b"lives 10 s", Some(10 * SEC)).unwrap();
            cache.set(b"nineteen", b"lives 19 s", Some(19 * SEC)).unwrap();
            cache.sync().unwrap();
            clock.advance(Duration::from_millis(300));
            stop(cache, &fs, how);
            clock.advance(SEC);
            let cache = open(dir.path(), &clock, &fs, mode);
            let now = cache.now_ms();
            assert!(now <= T0 + 1300 + SLACK_MS, "{mode:?} {how:?}: the cache's time is {} ms ahead", now - T0 - 1300);
            assert!(get(&cache, b"ten").is_some(), "{mode:?} {how:?}: a 10 s entry expired 1.3 s after its set");
            // A TTL set now counts from the wall clock.
            cache.set(b"one", b"lives 1 s", Some(SEC)).unwrap();
            clock.advance(Duration::from_millis(8_690 - SLACK_MS));
            assert!(get(&cache, b"ten").is_some(), "{mode:?} {how:?}: expired before its time");
            assert_eq!(get(&cache, b"one"), None, "{mode:?} {how:?}: a 1 s entry lived 8.7 s");
            clock.advance(Duration::from_millis(10 + SLACK_MS));
            assert_eq!(get(&cache, b"ten"), None, "{mode:?} {how:?}: served after its expiry");
            assert!(get(&cache, b"nineteen").is_some(), "{mode:?} {how:?}");
        }
    }
}

#[test]
fn after_a_reboot_entries_expire_early_by_at_most_the_clock_lease() {
    // A new boot: keg cannot measure the time that passed, and resumes at
    // its clock mark, up to 20 s past the last time it used. A clean close
    // persists the exact time, so nothing expires early.
    for how in STOPS {
        let dir = fast_tempdir();
        let fs = FaultFs::new();
        let clock = ManualClock::new(T0);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        cache.set(b"minute", b"lives 60 s", Some(60 * SEC)).unwrap();
        cache.set(b"five", b"lives 5 s", Some(5 * SEC)).unwrap();
        stop(cache, &fs, how);
        let rebooted = ManualClock::new(T0 + 1000);
        let cache = open(dir.path(), &rebooted, &fs, Durability::Synced);
        assert!(cache.now_ms() <= T0 + 20_000, "{how:?}: resumed past the lease");
        assert!(get(&cache, b"minute").is_some(), "{how:?}: a 60 s entry expired 59 s early");
        if matches!(how, Stop::Close) {
            assert!(get(&cache, b"five").is_some(), "a clean close made an entry expire early");
        }
    }
}

#[test]
fn reboots_in_a_row_keep_the_cache_time_within_a_lease_of_the_clock() {
    // After a reboot the cache resumes at its mark, ahead of the clock, and
    // writes a new anchor at its first call; renewing the mark from that
    // held time would push it another lease ahead at every reboot.
    let dir = fast_tempdir();
    let fs = FaultFs::new();
    for round in 0..6u64 {
        let clock = ManualClock::new(T0 + round); // a new boot, and hardly any time passed
        let cache = open(dir.path(), &clock, &fs, Durability::Flushed);
        let now = cache.now_ms();
        assert!(now <= T0 + 20_000 + round, "round {round}: the cache's time is {} ms ahead of the clock", now - T0);
        cache.set(b"k", b"v", Some(60 * SEC)).unwrap();
        cache.run_maintenance().unwrap();
        cache.abandon();
    }
}

#[test]
fn a_clock_behind_after_a_crash_holds_the_cache_time_only_until_it_catches_up() {
    // The clock jumps back 6 s while the cache is down: the cache's time
    // stands still at the last time it used until the clock catches up,
    // then follows the clock again — also after a further crash.
    for how in STOPS {
        let dir = fast_tempdir();
        let fs = FaultFs::new();
        let clock = ManualClock::new(T0);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        cache.set(b"short", b"lives 5 s", Some(5 * SEC)).unwrap();
        clock.advance(6 * SEC);
        assert_eq!(get(&cache, b"short"), None);
        stop(cache, &fs, how);
        clock.set_ms(T0);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        assert_eq!(get(&cache, b"short"), None, "{how:?}: an expired entry came back");
        let held = cache.now_ms();
        assert!((T0 + 6000..=T0 + 6000 + SLACK_MS).contains(&held), "{how:?}: time resumed at {held}");
        clock.advance(3 * SEC);
        assert_eq!(cache.now_ms(), held, "{how:?}: the time moved while the clock was behind");
        clock.advance(4 * SEC);
        assert_eq!(cache.now_ms(), T0 + 7000, "{how:?}: the time did not follow the clock once it caught up");
        cache.set(b"k", b"v", None).unwrap();
        cache.run_maintenance().unwrap();
        stop(cache, &fs, Stop::Kill);
        clock.advance(SEC);
        let cache = open(dir.path(), &clock, &fs, Durability::Synced);
        let now = cache.now_ms();
        assert!(now <= T0 + 8000 + SLACK_MS, "{how:?}: the hold came back after a crash: {} ms ahead", now - T0 - 8000);
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
