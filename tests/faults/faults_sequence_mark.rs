//! The sequence mark (FORMAT.md, section 6): a version, once given, is never
//! given again, whatever a power cut or a kill lost, in every durability
//! mode; a power cut at each storage operation of the mark's update (and of
//! the writes around it) keeps that true; a crash costs at most one
//! reservation of numbers, a clean close none; a read-only open writes
//! nothing.

use std::collections::BTreeSet;
use std::path::Path;

use keg::format::checkpoint::{Checkpoint, SEQ_RESERVATION};
use keg::sim::{FaultError, FaultFs, Op};
use keg::{Cache, Durability, ManualClock, SetOptions};

const T0: u64 = 1_700_000_000_000;
const MODES: [Durability; 3] = [Durability::Synced, Durability::Flushed, Durability::Buffered];

fn open(fs: &FaultFs, dir: &Path, mode: Durability) -> Cache {
    Cache::builder()
        .durability(mode)
        .segment_bytes(4096)
        .background_maintenance(false)
        .clock(ManualClock::new(T0))
        .storage(fs.clone())
        .open(dir)
        .unwrap()
}

fn checkpoint(fs: &FaultFs, dir: &Path) -> Option<Vec<u8>> {
    fs.files(dir).remove("checkpoint").flatten()
}

/// Writes and reads until the power goes out (or `writes` are done), and
/// returns every version a write returned or `get_entry` showed.
fn versions_given(cache: &Cache, writes: usize, given: &mut BTreeSet<u64>) {
    for i in 0..writes {
        let key = format!("k{}", i % 3);
        match cache.set_with(key.as_bytes(), format!("value {i}").as_bytes(), &SetOptions::new()) {
            Ok(v) => {
                given.insert(v);
            }
            Err(_) => return,
        }
        match cache.get_entry(key.as_bytes()) {
            Ok(Some(e)) => {
                given.insert(e.version);
            }
            Ok(None) => panic!("{key} just written reads as missing"),
            Err(_) => return,
        }
    }
}

/// After a clean close, the first write of the next session writes the
/// mark (the close gave the reservation back). The power goes out at the
/// `n`-th storage operation from then on (the mark's temporary file, its
/// write and fsync, the rename, the directory fsync, then the records), for
/// every `n` until the session's writes need no more: after the power cut,
/// no write gets a version the session gave, whatever the cut kept.
#[test]
fn a_power_cut_at_every_storage_operation_of_the_mark_update_never_gives_a_version_twice() {
    let dir = Path::new("/keg-sequence-mark/cache");
    for mode in MODES {
        let mut cut_in_mark = 0;
        for n in 1.. {
            let seed = n;
            let fs = FaultFs::in_memory();
            let cache = open(&fs, dir, mode);
            cache.set(b"before", b"durable", None).unwrap();
            cache.close().unwrap();
            let cache = open(&fs, dir, mode);
            let mark_before = checkpoint(&fs, dir);
            fs.cut_power_after(n);
            let mut given = BTreeSet::new();
            versions_given(&cache, 8, &mut given);
            if !fs.power_is_out() {
                assert!(n > 4, "{mode:?}: the session's writes took only {n} storage operations");
                break; // every operation of the session has had its cut
            }
            if checkpoint(&fs, dir) == mark_before {
                cut_in_mark += 1; // the new mark was not in place yet
            }
            cache.abandon();
            fs.crash(seed).unwrap();
            let cache = open(&fs, dir, mode);
            assert_eq!(cache.get(b"before").unwrap().as_deref(), Some(&b"durable"[..]), "{mode:?}, cut at {n}");
            let mut after = BTreeSet::new();
            versions_given(&cache, 8, &mut after);
            let again: Vec<_> = given.intersection(&after).collect();
            assert!(again.is_empty(), "{mode:?}, cut at op {n}: versions {again:?} given again (before: {given:?})");
            cache.close().unwrap();
        }
        assert!(cut_in_mark >= 3, "{mode:?}: only {cut_in_mark} cuts fell inside the mark's update");
    }
}

/// The same across sessions that each lose their unsynced tail: many crash
/// reopens in a row, each session writing a little, none giving a version
/// an earlier one gave.
#[test]
fn versions_stay_unique_across_a_loop_of_power_cuts() {
    let dir = Path::new("/keg-sequence-mark/loop");
    for mode in MODES {
        let fs = FaultFs::in_memory();
        let mut given = BTreeSet::new();
        for round in 0..40u64 {
            let cache = open(&fs, dir, mode);
            let mut now = BTreeSet::new();
            versions_given(&cache, 1 + (round % 5) as usize, &mut now);
            if round % 7 == 3 {
                cache.sync().unwrap();
            }
            let again: Vec<_> = given.intersection(&now).collect();
            assert!(again.is_empty(), "{mode:?}, round {round}: versions {again:?} given again");
            given.extend(now);
            cache.abandon();
            fs.crash(round).unwrap();
        }
    }
}

/// A crash (here a kill) costs at most one reservation of numbers: the
/// next session's first version is at most `SEQ_RESERVATION` past the last
/// one given (numbers up to 2^62 then last 2^42 crashes). A clean close
/// gives the reservation back: the next session numbers on from the last
/// record.
#[test]
fn a_crash_skips_at_most_one_reservation_and_a_clean_close_none() {
    let dir = Path::new("/keg-sequence-mark/skip");
    let fs = FaultFs::in_memory();
    let opts = SetOptions::new();
    let mut cache = open(&fs, dir, Durability::Flushed);
    let mut last = cache.set_with(b"k", b"v", &opts).unwrap();
    for kill in 0..5 {
        cache.abandon();
        fs.revive();
        cache = open(&fs, dir, Durability::Flushed);
        let next = cache.set_with(b"k", b"v", &opts).unwrap();
        assert!(next > last && next - last <= SEQ_RESERVATION, "kill {kill}: {last} then {next}");
        last = cache.set_with(b"k", b"v", &opts).unwrap();
        assert_eq!(last, next + 1, "kill {kill}: numbers within a session are consecutive");
    }
    cache.close().unwrap();
    let on_disk = checkpoint(&fs, dir).unwrap();
    assert_eq!(Checkpoint::decode(&on_disk).unwrap().seq_mark, last, "a clean close keeps a reservation");
    let cache = open(&fs, dir, Durability::Flushed);
    assert_eq!(checkpoint(&fs, dir), Some(on_disk), "a clean reopen wrote the checkpoint");
    assert_eq!(cache.set_with(b"k", b"v", &opts).unwrap(), last + 1, "a clean reopen skipped numbers");
}

/// A read-only open of a directory whose last session crashed (its mark
/// above every record) serves it without writing the checkpoint; the
/// writable open after it still numbers from above the mark.
#[test]
fn a_read_only_open_does_not_write_the_mark() {
    let dir = Path::new("/keg-sequence-mark/read-only");
    let fs = FaultFs::in_memory();
    let cache = open(&fs, dir, Durability::Flushed);
    let lost = cache.set_with(b"k", b"lost", &SetOptions::new()).unwrap();
    cache.abandon();
    fs.crash(1).unwrap();
    let before = checkpoint(&fs, dir);
    let mark = Checkpoint::decode(before.as_deref().unwrap()).unwrap().seq_mark;
    assert!(mark >= lost);
    let ro = Cache::builder().clock(ManualClock::new(T0)).storage(fs.clone()).open_read_only(dir).unwrap();
    let _ = ro.get(b"k").unwrap();
    drop(ro);
    assert_eq!(checkpoint(&fs, dir), before, "a read-only open wrote the checkpoint");
    let cache = open(&fs, dir, Durability::Flushed);
    assert!(cache.set_with(b"k", b"again", &SetOptions::new()).unwrap() > mark);
}

/// The mark is written once per `SEQ_RESERVATION` records, not per write:
/// a session that numbers a block and a bit more writes the checkpoint once
/// for it, when its write crosses the mark, and the checkpoint then reserves
/// the next block.
#[test]
fn the_mark_is_written_once_per_reservation() {
    let dir = Path::new("/keg-sequence-mark/amortized");
    let fs = FaultFs::in_memory();
    let cache = Cache::builder()
        .durability(Durability::Buffered)
        .max_bytes(1 << 30)
        .background_maintenance(false)
        .clock(ManualClock::new(T0))
        .storage(fs.clone())
        .open(dir)
        .unwrap();
    let opts = SetOptions::new();
    let mark = |fs: &FaultFs| Checkpoint::decode(&checkpoint(fs, dir).unwrap()).unwrap().seq_mark;
    let first = cache.set_with(b"k", b"", &opts).unwrap();
    assert!(mark(&fs) >= first, "the first write's number is not reserved");
    let (reserved, renames) = (mark(&fs), fs.ops_of(Op::Rename));
    let mut last = first;
    while last < reserved {
        last = cache.set_with(b"k", b"", &opts).unwrap();
    }
    assert_eq!(fs.ops_of(Op::Rename), renames, "a checkpoint was written inside the reservation");
    for _ in 0..1000 {
        last = cache.set_with(b"k", b"", &opts).unwrap();
    }
    assert_eq!(fs.ops_of(Op::Rename), renames + 1, "crossing the mark wrote the checkpoint once");
    assert_eq!(mark(&fs), reserved + SEQ_RESERVATION, "the next block reserved");
    assert_eq!(last, reserved + 1000);
}

/// Synced mode needs the mark too: a version can be seen before its
/// record is durable. Here a set's fsync fails: the set returns an error,
/// but its record is in the index, and `get_entry` serves it with its
/// version until the reopen. A power cut then loses it; no later write may
/// get that version (a `set_if_version` holding it would store over a value
/// its caller never saw).
#[test]
fn in_synced_mode_a_version_seen_before_its_fsync_is_never_given_again() {
    let dir = Path::new("/keg-sequence-mark/synced");
    let opts = SetOptions::new();
    for seed in 0..64 {
        let fs = FaultFs::in_memory();
        let cache = open(&fs, dir, Durability::Synced);
        cache.set_with(b"k", b"durable", &opts).unwrap();
        fs.fail(Some(Op::Sync), 1, FaultError::Io, false);
        assert!(cache.set_with(b"k", b"seen, never durable", &opts).is_err());
        let seen = cache.get_entry(b"k").unwrap().unwrap();
        assert_eq!(&seen.value[..], b"seen, never durable", "the write whose fsync failed is not served");
        cache.abandon();
        fs.crash(seed).unwrap();
        let cache = open(&fs, dir, Durability::Synced);
        if cache.get(b"k").unwrap().as_deref() != Some(&b"durable"[..]) {
            continue; // the power cut kept the write
        }
        let next = cache.set_with(b"other", b"v", &opts).unwrap();
        assert_ne!(next, seen.version, "version {} of a value the power cut lost was given again", seen.version);
        let cas = cache.set_if_version(b"k", b"cas", &opts, seen.version).unwrap();
        assert!(matches!(cas, keg::CasOutcome::Changed), "a compare-and-swap with a lost write's version: {cas:?}");
        return;
    }
    panic!("no seed lost the write whose fsync failed");
}
