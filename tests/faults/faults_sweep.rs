//! I/O errors swept over every storage operation, in the manner of SQLite's
//! I/O-error tests: a scripted workload (sets, overwrites, deletes, TTLs,
//! clock advances, compaction, maintenance, flushes, close and reopen) is run
//! once to count its storage operations; then once more for each operation k,
//! with the k-th failing — EIO, and ENOSPC with a short write; and, for the
//! kinds a failing disk repeats (write, fsync, create, rename, directory
//! fsync), with every operation of that kind failing from the k-th on.
//!
//! After every step: an error names the failed operation and its file; the
//! cache still serves every acknowledged value; a failed fsync of a segment
//! turns writes off until reopen (and they stay off); other failures cost at
//! most the failing call. At the end, the cache is reopened cleanly — every
//! acknowledged write is there, in every mode (buffered loses only what a
//! failed write could not hand to the OS) — and, in a second run, after a
//! simulated power cut: a prefix of history, with every acknowledged write in
//! synced mode. Never a wrong value, never a deleted one back.
//!
//! `KEG_SWEEP_STRIDE=n` tries every n-th operation only (default 1: all);
//! `KEG_SWEEP_SEEDS=n` runs the power-cut ending with n seeds each (default 1);
//! `KEG_SWEEP_ONE` reruns one case (see `one_case_from_env`).

use std::time::Duration;

use crate::fault_model::*;
use keg::sim::{FaultError, FaultFs, Op};
use keg::{Cache, Durability, Error, ManualClock};

const T0: u64 = 1_700_000_000_000;
/// Keys in the workload; the tight-cap variant uses 4 times as many, so that
/// its live data outgrows the cap and eviction runs.
const KEYS: u32 = 10;
/// Entries this close to their expiry may read either way (the cache's clock
/// may run ahead of the test's after a crash: see clock_jumps.rs).
const SLACK_MS: u64 = 25_000;

#[derive(Clone, Copy, Debug)]
enum Step {
    Set { key: u32, len: usize, ttl_ms: Option<u64> },
    Delete(u32),
    Advance(u64),
    Compact,
    Maintain,
    Flush,
    Sync,
    Clear,
    Reopen,
}

/// The workload: 110 steps over 10 keys with 4 KiB segments, so that
/// segments roll every few writes and compaction has dead bytes to drop (the
/// tight-cap variant: 40 keys, values twice as large).
fn script(setup: Setup) -> Vec<Step> {
    let keys = setup.keys();
    let scale = if setup.tight { 2 } else { 1 };
    let mut rng = Rng(0x5eed_0005);
    let mut s = Vec::new();
    for i in 0..110 {
        let step = match i {
            30 | 75 => Step::Compact,
            20 | 50 | 90 => Step::Maintain,
            40 | 85 => Step::Reopen,
            25 | 95 => Step::Flush,
            60 => Step::Sync,
            66 => Step::Clear,
            _ => match rng.below(100) {
                0..=64 => {
                    let ttl_ms = match rng.below(10) {
                        0 | 1 => Some(5_000),
                        2 => Some(86_400_000),
                        _ => None,
                    };
                    Step::Set {
                        key: rng.below(keys as u64) as u32,
                        len: scale * (20 + rng.below(1500) as usize),
                        ttl_ms,
                    }
                }
                65..=84 => Step::Delete(rng.below(keys as u64) as u32),
                _ => Step::Advance(1_000 + rng.below(3_000)),
            },
        };
        s.push(step);
    }
    s
}

#[derive(Clone, Copy, Debug)]
struct Fault {
    op: Option<Op>,
    nth: u64,
    error: FaultError,
    sticky: bool,
    short: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    /// Heal, close, reopen: nothing may be lost that was acknowledged.
    Clean,
    /// Abandon and simulate a power cut with this seed.
    PowerCut(u64),
}

#[derive(Clone, Copy)]
struct Setup {
    mode: Durability,
    /// A cap of 8 segments: eviction runs, and entries may be missing.
    tight: bool,
}

impl Setup {
    fn keys(&self) -> u32 {
        if self.tight {
            4 * KEYS
        } else {
            KEYS
        }
    }
}

fn builder(fs: &FaultFs, clock: &ManualClock, setup: Setup) -> keg::Builder {
    Cache::builder()
        .max_bytes(if setup.tight { 8 * 4096 } else { 1 << 20 })
        .segment_bytes(4096)
        .max_value_len(3000)
        .durability(setup.mode)
        .background_maintenance(false)
        .clock(clock.clone())
        .storage(fs.clone())
}

struct Tally {
    runs: u64,
    injected: u64,
    errors: u64,
    disabled: u64,
    lost_at_cut: u64,
}

/// Runs the script; returns the storage operations the script took (before the ending).
fn run(setup: Setup, fault: Option<Fault>, end: End, tally: &mut Tally) -> u64 {
    let ctx = format!("{:?} tight={} fault={fault:?} end={end:?}", setup.mode, setup.tight);
    let dir = fast_tempdir();
    let fs = FaultFs::new();
    let clock = ManualClock::new(T0);
    if let Some(f) = fault {
        fs.set_short_writes(f.short);
        fs.fail(f.op, f.nth, f.error, f.sticky);
    }
    let open_errors = std::cell::Cell::new(0);
    let open = |fs: &FaultFs| -> Cache {
        match builder(fs, &clock, setup).open(dir.path()) {
            Ok(c) => c,
            Err(e) => {
                check_error(&e, fs);
                open_errors.set(open_errors.get() + 1);
                fs.heal();
                builder(fs, &clock, setup).open(dir.path()).unwrap_or_else(|e| panic!("{ctx}: open after heal: {e}"))
            }
        }
    };
    let mut tally_errors = 0;
    let mut cache = Some(open(&fs));
    let keys = setup.keys();
    let mut hist = History::new(keys);
    let mut evictions = 0;
    // Faults injected when the current cache was opened (to tell which ones it saw).
    let mut faults_at_open = fs.injected_faults().len();
    let mut faults_seen = faults_at_open;
    // Writes are off: every later write must fail until reopen.
    let mut disabled = false;
    // Whether writes were off at any point of this run (for the tally).
    let mut ever_disabled = false;
    // Buffered mode: writes up to here were handed to the OS.
    let mut flushed_upto = 0;
    for (i, &step) in script(setup).iter().enumerate() {
        let c = cache.as_ref().unwrap();
        let now = keg::Clock::now_ms(&clock);
        let mut wrote = None;
        let result: keg::Result<()> = match step {
            Step::Set { key: k, len, ttl_ms } => {
                let v = value(k, i, len);
                let r = c.set(&key(k), &v, ttl_ms.map(Duration::from_millis));
                hist.push(k, Some(v), ttl_ms.map_or(0, |t| now + t), r.is_ok());
                wrote = Some(r.is_ok());
                r
            }
            Step::Delete(k) => {
                let r = c.delete(&key(k)).map(|_| ());
                hist.push(k, None, 0, r.is_ok());
                wrote = Some(r.is_ok());
                r
            }
            Step::Advance(ms) => {
                clock.advance(Duration::from_millis(ms));
                Ok(())
            }
            Step::Compact => c.compact(),
            Step::Maintain => c.run_maintenance(),
            Step::Flush => c.flush(),
            Step::Sync => c.sync(),
            Step::Clear => {
                // Deletes every key (or, if it fails, maybe some).
                let r = c.clear();
                for k in 0..keys {
                    hist.push(k, None, 0, r.is_ok());
                }
                r
            }
            Step::Reopen => {
                evictions += cache.as_ref().unwrap().stats().evictions;
                let r = cache.take().unwrap().close();
                if let Err(e) = &r {
                    check_error(e, &fs);
                    tally_errors += 1;
                }
                if r.is_ok() {
                    flushed_upto = hist.writes.len();
                }
                cache = Some(open(&fs));
                faults_at_open = fs.injected_faults().len();
                disabled = false;
                Ok(())
            }
        };
        if let Err(e) = &result {
            tally_errors += 1;
            if check_error(e, &fs) {
                disabled = true;
            }
        } else if matches!(step, Step::Flush | Step::Sync | Step::Compact | Step::Maintain | Step::Clear) {
            flushed_upto = hist.writes.len();
        }
        ever_disabled |= disabled;
        if wrote == Some(true) {
            assert!(!disabled, "{ctx}: step {i} {step:?}: a write succeeded after writes were disabled");
        }
        // Reads serve everything acknowledged (nothing is lost without a crash).
        // (With the tight cap, reading every key every step would give every
        // entry hits, and eviction would keep them all: read one key a step
        // then, and all of them once something failed.)
        let c = cache.as_ref().unwrap();
        let now = keg::Clock::now_ms(&clock);
        let got = if setup.tight && fs.injected() == 0 {
            let k = i as u32 % keys;
            [(k, c.get(&key(k)).unwrap().map(|v| v.to_vec()))].into()
        } else {
            hist.read_all(c)
        };
        if let Err(why) = hist.check_all(&got, now, SLACK_MS, setup.tight) {
            panic!("{ctx}: after step {i} {step:?} (faults {:?}): {why}", fs.injected_faults());
        }
        // (A read may have met the fault: a buffered write flushed on demand.)
        let faults = fs.injected_faults();
        if faults.len() > faults_seen {
            for (op, path) in &faults[faults_seen..] {
                if *op == Op::Write && setup.mode == Durability::Buffered {
                    // A failed write can cost the buffered writes not yet handed to the OS.
                    for w in &mut hist.writes[flushed_upto..] {
                        w.acked = false;
                    }
                }
                if is_segment_fsync(*op, path) && faults.len() > faults_at_open {
                    // fsyncgate: after a failed fsync the data may be gone; writes must stay off.
                    disabled = true;
                }
            }
            faults_seen = faults.len();
        }
    }
    let script_ops = fs.ops();
    if fault.is_none() {
        evictions += cache.as_ref().unwrap().stats().evictions;
        assert_eq!(evictions > 0, setup.tight, "{ctx}: {evictions} evictions in the fault-free run");
    }
    // The ending.
    fs.heal();
    let c = cache.take().unwrap();
    clock.advance(Duration::from_secs(3600));
    match end {
        End::Clean => {
            if let Err(e) = c.close() {
                assert!(disabled || !fs.injected_faults().is_empty(), "{ctx}: close failed without a fault: {e}");
                check_error(&e, &fs);
            }
        }
        End::PowerCut(seed) => {
            if dumping() {
                eprintln!("--- before the power cut:");
                dump_dir(dir.path());
            }
            c.abandon();
            tally.lost_at_cut += fs.crash(seed).unwrap();
        }
    }
    let c = builder(&fs, &clock, setup).open(dir.path()).unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
    let now = keg::Clock::now_ms(&clock);
    let got = hist.read_all(&c);
    match end {
        End::Clean => {
            if let Err(why) = hist.check_all(&got, now, SLACK_MS, setup.tight) {
                explain(&hist, &got, dir.path());
                panic!("{ctx}: after a clean reopen (faults {:?}): {why}", fs.injected_faults());
            }
        }
        End::PowerCut(_) => {
            // Synced: every acknowledged write survives. Other modes: a prefix of
            // history, where entries may be missing (a power cut may lose them,
            // like an eviction) but no key holds a value other than its value in that prefix.
            let synced = setup.mode == Durability::Synced;
            let min = if synced { hist.acked_len() } else { 0 };
            if let Err(why) = hist.check_prefix(&got, min, now, SLACK_MS, setup.tight || !synced) {
                explain(&hist, &got, dir.path());
                panic!("{ctx}: after a power cut (faults {:?}): {why}", fs.injected_faults());
            }
        }
    }
    // And it works again.
    c.set(b"after", b"works", None).unwrap_or_else(|e| panic!("{ctx}: a write after reopen failed: {e}"));
    c.close().unwrap();
    let c = builder(&fs, &clock, setup).open(dir.path()).unwrap();
    assert_eq!(c.get(b"after").unwrap().as_deref(), Some(&b"works"[..]), "{ctx}");
    drop(c);
    tally.runs += 1;
    tally.injected += fs.injected();
    tally.errors += tally_errors + open_errors.get();
    tally.disabled += (ever_disabled || disabled) as u64;
    script_ops
}

fn sweep(setup: Setup) {
    let stride = env_or("KEG_SWEEP_STRIDE", 1).max(1);
    let seeds = env_or("KEG_SWEEP_SEEDS", 1).max(1);
    let mut tally = Tally { runs: 0, injected: 0, errors: 0, disabled: 0, lost_at_cut: 0 };
    // The fault-free run: how many operations the script takes, in all and per kind.
    let n = run(setup, None, End::Clean, &mut tally);
    let counts: Vec<(Op, u64)> = [Op::Write, Op::Sync, Op::Create, Op::Rename, Op::SyncDir]
        .into_iter()
        .map(|op| (op, count_kind(setup, op)))
        .collect();
    let mut k = 1;
    while k <= n {
        for (error, short) in [(FaultError::Io, false), (FaultError::NoSpace, true)] {
            let fault = Fault { op: None, nth: k, error, sticky: false, short };
            run(setup, Some(fault), End::Clean, &mut tally);
            for s in 0..seeds {
                run(setup, Some(fault), End::PowerCut(k * 31 + s), &mut tally);
            }
        }
        k += stride;
    }
    for (op, count) in counts {
        let error = if op == Op::Write || op == Op::Create { FaultError::NoSpace } else { FaultError::Io };
        let mut k = 1;
        while k <= count {
            let fault = Fault { op: Some(op), nth: k, error, sticky: true, short: op == Op::Write };
            run(setup, Some(fault), End::Clean, &mut tally);
            run(setup, Some(fault), End::PowerCut(k * 17), &mut tally);
            k += stride;
        }
    }
    assert!(tally.injected > n, "the sweep injected too few faults");
    assert!(tally.errors > 0 && tally.disabled > 0, "no call failed, or writes were never turned off");
    eprintln!(
        "{:?}{}: {n} storage ops in the script; {} runs, {} faults injected, {} calls failed cleanly, {} runs with writes disabled, {} unsynced changes lost at power cuts",
        setup.mode,
        if setup.tight { " (tight cap)" } else { "" },
        tally.runs,
        tally.injected,
        tally.errors,
        tally.disabled,
        tally.lost_at_cut
    );
}

/// Operations of one kind in the fault-free script (through the ending's open).
fn count_kind(setup: Setup, op: Op) -> u64 {
    let dir = fast_tempdir();
    let fs = FaultFs::new();
    let clock = ManualClock::new(T0);
    let mut cache = Some(builder(&fs, &clock, setup).open(dir.path()).unwrap());
    for (i, &step) in script(setup).iter().enumerate() {
        let c = cache.as_ref().unwrap();
        match step {
            Step::Set { key: k, len, ttl_ms } => {
                c.set(&key(k), &value(k, i, len), ttl_ms.map(Duration::from_millis)).unwrap()
            }
            Step::Delete(k) => drop(c.delete(&key(k)).unwrap()),
            Step::Advance(ms) => clock.advance(Duration::from_millis(ms)),
            Step::Compact => c.compact().unwrap(),
            Step::Maintain => c.run_maintenance().unwrap(),
            Step::Flush => c.flush().unwrap(),
            Step::Sync => c.sync().unwrap(),
            Step::Clear => c.clear().unwrap(),
            Step::Reopen => {
                cache.take().unwrap().close().unwrap();
                cache = Some(builder(&fs, &clock, setup).open(dir.path()).unwrap());
            }
        }
    }
    fs.ops_of(op)
}

#[test]
fn io_errors_in_flushed_mode() {
    sweep(Setup { mode: Durability::Flushed, tight: false });
}

#[test]
fn io_errors_in_synced_mode() {
    sweep(Setup { mode: Durability::Synced, tight: false });
}

#[test]
fn io_errors_in_buffered_mode() {
    sweep(Setup { mode: Durability::Buffered, tight: false });
}

#[test]
fn io_errors_while_evicting() {
    sweep(Setup { mode: Durability::Flushed, tight: true });
}

#[test]
fn an_error_names_the_operation_and_the_file() {
    let dir = fast_tempdir();
    let fs = FaultFs::new();
    let clock = ManualClock::new(T0);
    let setup = Setup { mode: Durability::Flushed, tight: false };
    let cache = builder(&fs, &clock, setup).open(dir.path()).unwrap();
    cache.set(b"k", b"v", None).unwrap();
    fs.fail(Some(Op::Write), 1, FaultError::NoSpace, false);
    let e = cache.set(b"k2", b"v2", None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Io { op: "write", .. }), "{e:?}");
    assert!(msg.contains("write") && msg.contains(".seg") && msg.contains("No space left on device"), "{msg}");
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    cache.set(b"k2", b"v2", None).unwrap();
}

/// Reruns one case of the sweep, to debug a failure:
/// `KEG_SWEEP_ONE=flushed,232,7192` (mode, k, power-cut seed or `clean`) with
/// `KEG_DUMP=1` to print the history and the files record by record.
#[test]
fn one_case_from_env() {
    let Ok(spec) = std::env::var("KEG_SWEEP_ONE") else { return };
    let p: Vec<&str> = spec.split(',').collect();
    let mode = Durability::parse(p[0]).unwrap();
    let k: u64 = p[1].parse().unwrap();
    let end = match p[2] {
        "clean" => End::Clean,
        seed => End::PowerCut(seed.parse().unwrap()),
    };
    let mut tally = Tally { runs: 0, injected: 0, errors: 0, disabled: 0, lost_at_cut: 0 };
    let fault = Fault { op: None, nth: k, error: FaultError::Io, sticky: false, short: false };
    run(Setup { mode, tight: false }, Some(fault), end, &mut tally);
}
