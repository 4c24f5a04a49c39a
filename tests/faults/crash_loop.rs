//! The crash loop: child processes (this test binary, re-executed) run a
//! deterministic mix of sets (some with TTLs), deletes, reads, batches
//! (`set_many`, `delete_many`), tag invalidations, namespace drops,
//! maintenance, compaction, flushes, syncs, clears and reopens against a cache whose cap
//! holds 8 segments, so eviction runs all the time; each is killed, either by
//! the parent with SIGKILL at a random moment (sometimes during open) or by a
//! random kill point (`KEG_KILL_AT`, see `src/storage/mod.rs`): mid-append,
//! between a record and its index update, in each step of compaction and
//! eviction, mid-hint-file, mid-checkpoint, before a sequence mark, during
//! recovery itself.
//!
//! After each kill the parent reopens the cache (writable or read-only, in
//! turn) and checks it against the history the child acknowledged:
//! - flushed and synced modes: every key holds its last acknowledged value or
//!   the one in flight — or nothing, if an eviction could have dropped it
//!   since (the children report the eviction counter with every
//!   acknowledgement) or its TTL has passed; a deleted key never comes back;
//!   a batch in flight left a prefix of its items (as `Cache::set_many`
//!   documents); an invalidation or namespace drop in flight happened
//!   entirely or not at all, and one acknowledged hides every value written
//!   before it (keys from `TAGGED` on carry a tag, keys from `NAMESPACED`
//!   on live in a namespace, every write of them included);
//! - buffered mode: the same, for some prefix of the history that includes
//!   everything acknowledged before the last explicit flush;
//! - the segment and hint files take at most `max_bytes` plus one segment.
//!
//! `KEG_CRASH_LOOP_ROUNDS` (default 30 per mode) and `KEG_CRASH_LOOP_SECS`
//! (run at least that long) make long runs; `KEG_CRASH_LOOP_SEED` varies the kills.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fault_model::*;
use keg::{Cache, Durability, ManualClock, SetOptions};

const T0: u64 = 1_700_000_000_000;
const KEYS: u32 = 300;
/// Keys from here on are always written with the tag `t<key % 3>`.
const TAGGED: u32 = 200;
/// Keys from here on are namespace `ns`'s keys (untagged).
const NAMESPACED: u32 = 260;
const SEG: u64 = 16 << 10;
const CAP: u64 = 8 * SEG;
/// Ops a child runs before it waits to be killed.
const MAX_OPS: u64 = 4000;

/// Kill points, and in which modes they are reached often enough to pick.
const POINTS: &[(&str, u32)] = &[
    ("append.torn", 60),
    ("flush.torn", 20),
    ("flush.between_logs", 10),
    ("invalidate.before_table", 3),
    ("set.before_index", 60),
    ("delete.before_index", 20),
    ("roll.before_create", 20),
    ("roll.after_create", 20),
    ("seal.before_cut", 10),
    ("sync.before_dir", 10),
    ("hint.before_write", 6),
    ("hint.torn", 6),
    ("checkpoint.torn", 6),
    ("atomic_file.before_rename", 10),
    ("atomic_file.after_rename", 10),
    ("durable.before_checkpoint", 6),
    ("evict.chosen", 20),
    ("compact.sealed", 2),
    ("reclaim.start", 20),
    ("reclaim.batch", 20),
    ("reclaim.before_sync", 20),
    ("reclaim.before_remove", 20),
    ("reclaim.after_remove", 20),
    ("clear.before_remove", 1),
    ("clear.mid_remove", 2),
    ("close.compacted", 1),
    ("close.before_checkpoint", 1),
    ("seq.before_mark", 2),
    ("recovery.listed", 1),
    ("recovery.drop_segment", 1),
    ("recovery.before_truncate", 1),
    ("recovery.resume", 1),
    ("recovery.after_sync", 1),
    ("recovery.before_checkpoint", 1),
];

#[derive(Clone, Copy, Debug)]
enum Op {
    Set {
        key: u32,
        len: usize,
        ttl_ms: Option<u64>,
    },
    /// `set_many` of `n` untagged plain keys from `key` on.
    SetMany {
        key: u32,
        n: u32,
        len: usize,
    },
    /// `delete_many` of `n` plain keys, from `key` on in steps of 7.
    DeleteMany {
        key: u32,
        n: u32,
    },
    InvalidateTag(u32),
    DropNamespace,
    Delete(u32),
    Get(u32),
    Maintain,
    Compact,
    Flush,
    Sync,
    Clear,
    Reopen,
}

fn op(i: u64) -> Op {
    let x = i.wrapping_add(0x51).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(23);
    let key = ((x >> 8) % KEYS as u64) as u32;
    match x % 1000 {
        0..=649 => {
            let ttl_ms = match (x >> 20) % 20 {
                0..=2 => Some(1_000 + (x >> 30) % 29_000), // expired by the time the parent checks
                3 => Some(30 * 86_400_000),                // alive for the whole test
                _ => None,
            };
            Op::Set { key, len: 100 + ((x >> 40) % 2900) as usize, ttl_ms }
        }
        650..=674 => {
            Op::SetMany { key: key % TAGGED, n: 2 + ((x >> 40) % 7) as u32, len: 100 + ((x >> 44) % 1000) as usize }
        }
        675..=689 => Op::DeleteMany { key: key % NAMESPACED, n: 2 + ((x >> 40) % 7) as u32 },
        690..=799 => Op::Delete(key),
        800..=929 => Op::Get(key),
        930..=939 => Op::InvalidateTag(((x >> 40) % 3) as u32),
        940..=964 => Op::Maintain,
        965..=969 => Op::Compact,
        970..=984 => Op::Flush,
        985..=991 => Op::Sync,
        992..=994 => Op::DropNamespace,
        995 => Op::Clear,
        _ => Op::Reopen,
    }
}

/// The keys of a batch op.
fn batch_keys(op: Op) -> Vec<u32> {
    match op {
        Op::SetMany { key, n, .. } => (0..n).map(|j| (key + j) % TAGGED).collect(),
        Op::DeleteMany { key, n } => (0..n).map(|j| (key + 7 * j) % NAMESPACED).collect(),
        _ => Vec::new(),
    }
}

/// The value `SetMany` op `i` writes for its `j`-th key `k`.
fn batch_value(k: u32, i: u64, j: usize, len: usize) -> Vec<u8> {
    value(k, i as usize, len + j)
}

/// The keys an op hides all at once (an invalidation or a drop).
fn hidden_keys(op: Op) -> Vec<u32> {
    match op {
        Op::InvalidateTag(t) => (TAGGED..NAMESPACED).filter(|k| k % 3 == t).collect(),
        Op::DropNamespace => (NAMESPACED..KEYS).collect(),
        _ => Vec::new(),
    }
}

/// The key's bytes and, from `NAMESPACED` on, its namespace handle.
fn ns_of(c: &Cache, k: u32) -> Option<keg::Namespace<'_>> {
    (k >= NAMESPACED).then(|| c.namespace("ns").unwrap())
}

/// Reads every key (a namespace's through its handle).
fn read_all(cache: &Cache) -> BTreeMap<u32, Option<Vec<u8>>> {
    (0..KEYS)
        .map(|k| {
            let v = match ns_of(cache, k) {
                Some(ns) => ns.get(&key(k)),
                None => cache.get(&key(k)),
            };
            (k, v.unwrap().map(|v| v.to_vec()))
        })
        .collect()
}

/// The clock a child uses for op `i` in round `round`: 50 ms an op, and 200 s
/// between rounds, more than the parent's check (60 s on) plus a clock lease.
fn clock_at(i: u64, round: u64) -> u64 {
    T0 + i * 50 + round * 200_000
}

fn builder(mode: Durability, background: bool, clock: &ManualClock) -> keg::Builder {
    Cache::builder()
        .max_bytes(CAP)
        .segment_bytes(SEG)
        .durability(mode)
        .write_buffer_bytes(8 << 10)
        .background_maintenance(background)
        .clock(clock.clone())
}

/// The child: runs ops from `KEG_CRASH_FROM` on and prints "ack <i> <evictions> <bytes>" after each
/// (the bytes the cap counts: files, and hint files still to write).
#[test]
fn child_process() {
    let Ok(dir) = std::env::var("KEG_CRASH_CHILD_DIR") else { return };
    let var = |n: &str| std::env::var(n).unwrap();
    let mode = Durability::parse(&var("KEG_CRASH_MODE")).unwrap();
    let from: u64 = var("KEG_CRASH_FROM").parse().unwrap();
    let round: u64 = var("KEG_CRASH_ROUND").parse().unwrap();
    let background = var("KEG_CRASH_BACKGROUND") == "1";
    let clock = ManualClock::new(clock_at(from, round));
    let open = || builder(mode, background, &clock).open(&dir).unwrap();
    let mut cache = Some(open());
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let mut evictions = 0;
    for i in from..from + MAX_OPS {
        clock.set_ms(clock_at(i, round));
        let c = cache.as_ref().unwrap();
        match op(i) {
            Op::Set { key: k, len, ttl_ms } => {
                let (v, ttl) = (value(k, i as usize, len), ttl_ms.map(Duration::from_millis));
                match ns_of(c, k) {
                    Some(ns) => ns.set(&key(k), &v, ttl).unwrap(),
                    None if k >= TAGGED => {
                        let opts = SetOptions::new().ttl(ttl).tags([format!("t{}", k % 3)]);
                        c.set_with(&key(k), &v, &opts).unwrap();
                    }
                    None => c.set(&key(k), &v, ttl).unwrap(),
                }
            }
            Op::SetMany { len, .. } => {
                let items: Vec<(Vec<u8>, Vec<u8>)> = batch_keys(op(i))
                    .into_iter()
                    .enumerate()
                    .map(|(j, k)| (key(k), batch_value(k, i, j, len)))
                    .collect();
                c.set_many(&items, &SetOptions::new()).unwrap()
            }
            Op::DeleteMany { .. } => {
                let keys: Vec<Vec<u8>> = batch_keys(op(i)).into_iter().map(key).collect();
                c.delete_many(&keys).unwrap();
            }
            Op::InvalidateTag(t) => {
                c.invalidate_tag(format!("t{t}")).unwrap();
            }
            Op::DropNamespace => c.drop_namespace("ns").unwrap(),
            Op::Delete(k) => drop(match ns_of(c, k) {
                Some(ns) => ns.delete(&key(k)).unwrap(),
                None => c.delete(&key(k)).unwrap(),
            }),
            Op::Get(k) => drop(match ns_of(c, k) {
                Some(ns) => ns.get(&key(k)).unwrap(),
                None => c.get(&key(k)).unwrap(),
            }),
            Op::Maintain => c.run_maintenance().unwrap(),
            Op::Compact => c.compact().unwrap(),
            Op::Flush => c.flush().unwrap(),
            Op::Sync => c.sync().unwrap(),
            Op::Clear => c.clear().unwrap(),
            Op::Reopen => {
                evictions += c.stats().evictions;
                cache.take().unwrap().close().unwrap();
                cache = Some(open());
            }
        }
        let s = cache.as_ref().unwrap().stats();
        // (The cap counts the hint files still to write.)
        writeln!(out, "ack {i} {} {}", evictions + s.evictions, s.disk_bytes + s.hint_bytes_pending).unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

enum Kill {
    Signal(Duration),
    Point(&'static str, u32),
}

#[derive(Default)]
struct Tally {
    rounds: u64,
    signals: u64,
    points: BTreeMap<&'static str, u64>,
    points_missed: u64,
    acked: u64,
    absent_evicted: u64,
    void_records: u64,
    truncated_bytes: u64,
    peak_disk: u64,
    /// Batches in flight at a kill that left some of their items and not others.
    batches_cut: u64,
    /// Checks where the longest matching prefix split a group in flight and a
    /// shorter one (the group lost with the buffer) kept its promise.
    prefixes_shortened: u64,
}

/// Whether `op`, the one in flight at the kill, could have evicted entries.
fn may_evict(op: Op, disk: Option<u64>, background: bool) -> bool {
    let Some(disk) = disk else { return true };
    background
        || match op {
            Op::Set { len, .. } => disk + len as u64 + 200 > CAP,
            Op::SetMany { n, len, .. } => disk + n as u64 * (len as u64 + 210) > CAP,
            Op::DeleteMany { n, .. } => disk + n as u64 * 200 > CAP,
            Op::InvalidateTag(_) | Op::DropNamespace => disk + 200 > CAP,
            Op::Delete(_) => disk + 200 > CAP,
            Op::Maintain => disk > CAP - SEG,
            _ => false,
        }
}

fn crash_loop(mode: Durability) {
    let rounds = env_or("KEG_CRASH_LOOP_ROUNDS", 30);
    let secs = env_or("KEG_CRASH_LOOP_SECS", 0);
    let dir = fast_tempdir();
    let mut hist = History::new(KEYS);
    let mut evictions = 0u64;
    // Buffered mode: writes before this index were handed to the OS.
    let mut flushed = 0usize;
    let mut next = 0u64;
    let mut rng = Rng(0x0c0f_fee0 + mode as u64 + 1000 * env_or("KEG_CRASH_LOOP_SEED", 0));
    let mut tally = Tally::default();
    let started = Instant::now();
    let mut round = 0u64;
    while round < rounds || started.elapsed() < Duration::from_secs(secs) {
        let background = round % 3 == 2;
        let kill = if rng.below(2) == 0 {
            Kill::Signal(Duration::from_micros(rng.below(120_000)))
        } else {
            let (name, hot) = POINTS[rng.below(POINTS.len() as u64) as usize];
            Kill::Point(name, 1 + rng.below(hot as u64) as u32)
        };
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "crash_loop::child_process", "--nocapture", "--test-threads=1"])
            .env("KEG_CRASH_CHILD_DIR", dir.path())
            .env("KEG_CRASH_MODE", format!("{mode:?}").to_lowercase())
            .env("KEG_CRASH_FROM", next.to_string())
            .env("KEG_CRASH_ROUND", round.to_string())
            .env("KEG_CRASH_BACKGROUND", if background { "1" } else { "0" })
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Kill::Point(name, n) = kill {
            cmd.env("KEG_KILL_AT", format!("{name}:{n}"));
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut acks = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line == "done" {
                    let _ = tx.send(());
                }
                let mut w = line.split(' ');
                if w.next() == Some("ack") {
                    let n: Vec<u64> = w.map(|x| x.parse().unwrap()).collect();
                    acks.push((n[0], n[1], n[2]));
                }
            }
            acks
        });
        match kill {
            Kill::Signal(delay) => {
                std::thread::sleep(delay);
                let _ = child.kill();
            }
            Kill::Point(..) => {
                // The kill point fires, or the child runs out of ops and waits.
                let deadline = Instant::now() + Duration::from_secs(20);
                while child.try_wait().unwrap().is_none() && Instant::now() < deadline && rx.try_recv().is_err() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                let _ = child.kill();
            }
        }
        let status = child.wait().unwrap();
        let acks = reader.join().unwrap();
        let stderr = err_reader.join().unwrap();
        use std::os::unix::process::ExitStatusExt;
        match (status.signal(), &kill) {
            (Some(9), Kill::Signal(_)) => tally.signals += 1,
            (Some(6), Kill::Point(name, _)) => *tally.points.entry(name).or_default() += 1,
            (Some(9), Kill::Point(..)) => tally.points_missed += 1,
            _ => panic!("round {round}: the child ended with {status:?} instead of being killed:\n{stderr}"),
        }
        // What the child acknowledged.
        let base = evictions;
        let mut disk = None;
        for &(i, ev, d) in &acks {
            match op(i) {
                Op::Set { key: k, len, ttl_ms } => {
                    let exp = ttl_ms.map_or(0, |t| clock_at(i, round) + t);
                    hist.push_at(k, Some(value(k, i as usize, len)), exp, true, base + ev);
                }
                Op::Delete(k) => hist.push_at(k, None, 0, true, base + ev),
                Op::Clear => {
                    for k in 0..KEYS {
                        hist.push_at(k, None, 0, true, base + ev);
                    }
                }
                o => push_group(&mut hist, o, i, true, base + ev),
            }
            if matches!(op(i), Op::Flush | Op::Sync | Op::Compact | Op::Maintain | Op::Clear | Op::Reopen) {
                flushed = hist.writes.len();
            }
            evictions = base + ev;
            disk = Some(d);
        }
        tally.acked += acks.len() as u64;
        let inflight = acks.last().map_or(next, |a| a.0 + 1);
        // The op in flight may or may not have happened.
        let inflight_at = hist.writes.len();
        match op(inflight) {
            Op::Set { key: k, len, ttl_ms } => {
                let exp = ttl_ms.map_or(0, |t| clock_at(inflight, round) + t);
                hist.push_at(k, Some(value(k, inflight as usize, len)), exp, false, evictions);
            }
            Op::Delete(k) => hist.push_at(k, None, 0, false, evictions),
            Op::Clear => {
                for k in 0..KEYS {
                    hist.push_at(k, None, 0, false, evictions);
                }
            }
            o => push_group(&mut hist, o, inflight, false, evictions),
        }
        if may_evict(op(inflight), if acks.is_empty() { None } else { disk }, background) {
            evictions += 1; // it may have evicted anything written so far
        }
        // Check, at a time when every short TTL has passed.
        let now = clock_at(inflight, round) + 60_000;
        let clock = ManualClock::new(now);
        let writable = round % 2 == 0;
        let b = builder(mode, false, &clock);
        let cache = if writable { b.open(dir.path()) } else { b.open_read_only(dir.path()) }.unwrap_or_else(|e| {
            panic!("round {round}: reopen after {kill:?} failed: {e}", kill = describe_kill(&kill))
        });
        let got = read_all(&cache);
        let lo = if mode == Durability::Buffered { flushed } else { inflight_at };
        let (p, cut, shortened) = match choose_prefix(&hist, &got, lo, inflight, inflight_at, now, evictions) {
            Ok(found) => found,
            Err(Some(why)) => panic!("{mode:?} round {round}, killed by {}: {why}", describe_kill(&kill)),
            Err(None) => {
                explain(&hist, &got, dir.path());
                let why = format!(
                    "{} / {}",
                    hist.mismatch(&got, hist.writes.len(), now, evictions),
                    hist.mismatch(&got, lo, now, evictions)
                );
                panic!(
                    "{mode:?} round {round}, killed by {} during op {inflight} {:?}: no prefix of the history from {lo} matches: {why}",
                    describe_kill(&kill),
                    op(inflight)
                );
            }
        };
        tally.batches_cut += u64::from(cut);
        tally.prefixes_shortened += u64::from(shortened);
        tally.absent_evicted +=
            got.iter().filter(|(k, v)| v.is_none() && !hist.allowed(**k, p, now, 0).contains(&None)).count() as u64;
        // Writes past the prefix are lost; the one in flight happened if it shows.
        hist.settle(p, &got, evictions);
        let s = cache.stats();
        tally.void_records += s.recovery_void_records;
        tally.truncated_bytes += s.recovery_truncated_bytes;
        if writable {
            let bytes = dir_bytes(dir.path());
            tally.peak_disk = tally.peak_disk.max(bytes);
            assert!(bytes <= CAP + SEG, "round {round}: {bytes} bytes on disk, over the cap of {CAP} + one segment");
            let tmp = std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().to_string_lossy().ends_with(".tmp"))
                .count();
            assert_eq!(tmp, 0, "round {round}: temporary files left after a writable open");
        }
        drop(cache);
        // Forget what can no longer matter (everything acknowledged is settled,
        // except, in buffered mode, what was not flushed yet).
        let buffered = mode == Durability::Buffered;
        let settled = hist.forget_before(if buffered { flushed } else { hist.writes.len() });
        flushed = if buffered { settled } else { hist.writes.len() };
        next = inflight + 1;
        round += 1;
        tally.rounds += 1;
    }
    let points: Vec<String> = tally.points.iter().map(|(k, v)| format!("{k}={v}")).collect();
    eprintln!(
        "{mode:?}: {} kills survived ({} SIGKILL at random moments, {} at kill points: {}; {} kill points not reached, then SIGKILL); {} ops acknowledged; {} keys legitimately evicted at checks; {} records voided, {} torn bytes cut by recovery; {} batches in flight left a part; {} checks took a shorter prefix to keep a group whole; peak disk {} of cap {} + segment {}",
        tally.rounds,
        tally.signals,
        tally.points.values().sum::<u64>(),
        points.join(" "),
        tally.points_missed,
        tally.acked,
        tally.absent_evicted,
        tally.void_records,
        tally.truncated_bytes,
        tally.batches_cut,
        tally.prefixes_shortened,
        tally.peak_disk,
        CAP,
        SEG
    );
    assert!(tally.acked > tally.rounds * 5, "the children acknowledged too few ops for a meaningful test");
}

/// The prefix of the history (at least `lo` writes) the reopened cache
/// matches, longest first, that also keeps the promise of the group op in
/// flight (op `i`, whose writes start at `inflight_at`; see `check_group`):
/// `(prefix, a batch left a part, a longer prefix matched but split the
/// group)`. The history lets each write of a group in flight happen or not on
/// its own, so the longest matching prefix can split an invalidation that a
/// shorter one explains whole: in buffered mode, a tagged key whose last write
/// was lost with the buffer reads nothing, as an invalidated one would. Fails
/// with the group's error if prefixes matched but each split the group, and
/// with `None` if none matched.
fn choose_prefix(
    hist: &History,
    got: &BTreeMap<u32, Option<Vec<u8>>>,
    lo: usize,
    i: u64,
    inflight_at: usize,
    now: u64,
    evictions: u64,
) -> Result<(usize, bool, bool), Option<String>> {
    let mut group_error = None;
    let mut longest = None;
    for p in (lo.min(hist.writes.len())..=hist.writes.len()).rev() {
        if !hist.matches(got, p, now, evictions) {
            continue;
        }
        longest.get_or_insert(p);
        match check_group(op(i), i, hist, got, p.min(inflight_at), now, evictions) {
            Ok(cut) => return Ok((p, cut, longest != Some(p))),
            Err(why) => {
                group_error.get_or_insert(why);
            }
        }
    }
    Err(group_error)
}

/// What a batch, an invalidation or a drop in flight (op `i`) may leave,
/// beyond what the history allows each of its writes: a batch of sets, a
/// prefix of its items (no item written without every earlier one); an
/// invalidation or a drop, all of its keys hidden or none (a key that reads
/// a value means it did not happen; another that reads nothing although it
/// held a value before, `before` writes into the history, means it did).
fn check_group(
    o: Op,
    i: u64,
    hist: &History,
    got: &BTreeMap<u32, Option<Vec<u8>>>,
    before: usize,
    now: u64,
    evictions: u64,
) -> Result<bool, String> {
    match o {
        Op::SetMany { len, .. } => {
            let keys = batch_keys(o);
            // Some(true): the item landed; Some(false): it did not; None: evicted, cannot tell.
            let landed: Vec<Option<bool>> = keys
                .iter()
                .enumerate()
                .map(|(j, &k)| got[&k].as_ref().map(|v| *v == batch_value(k, i, j, len)))
                .collect();
            let first_missing = landed.iter().position(|&l| l == Some(false));
            match first_missing {
                Some(m) if landed[m..].contains(&Some(true)) => {
                    Err(format!("set_many {o:?} in flight left items but not a prefix: {landed:?}"))
                }
                Some(m) => Ok(landed[..m].contains(&Some(true))),
                None => Ok(false),
            }
        }
        Op::InvalidateTag(_) | Op::DropNamespace => {
            let keys = hidden_keys(o);
            let kept = keys.iter().find(|k| got[k].is_some());
            let hidden = keys.iter().find(|&&k| got[&k].is_none() && !hist.allows(k, &None, before, now, evictions));
            match (kept, hidden) {
                (Some(k), Some(h)) => Err(format!("{o:?} in flight hid key {h} but not key {k}")),
                _ => Ok(false),
            }
        }
        _ => Ok(false),
    }
}

/// Pushes what a batch, an invalidation or a drop (op `i`) writes.
fn push_group(hist: &mut History, o: Op, i: u64, acked: bool, epoch: u64) {
    match o {
        Op::SetMany { len, .. } => {
            for (j, k) in batch_keys(o).into_iter().enumerate() {
                hist.push_at(k, Some(batch_value(k, i, j, len)), 0, acked, epoch);
            }
        }
        Op::DeleteMany { .. } => {
            for k in batch_keys(o) {
                hist.push_at(k, None, 0, acked, epoch);
            }
        }
        Op::InvalidateTag(_) | Op::DropNamespace => {
            for k in hidden_keys(o) {
                hist.push_at(k, None, 0, acked, epoch);
            }
        }
        _ => {}
    }
}

fn describe_kill(k: &Kill) -> String {
    match k {
        Kill::Signal(d) => format!("SIGKILL after {d:?}"),
        Kill::Point(name, n) => format!("kill point {name}:{n}"),
    }
}

#[test]
fn crash_loop_flushed() {
    crash_loop(Durability::Flushed);
}

#[test]
fn crash_loop_synced() {
    crash_loop(Durability::Synced);
}

#[test]
fn crash_loop_buffered() {
    crash_loop(Durability::Buffered);
}

/// The checker itself: an invalidation in flight, in buffered mode, after a
/// kill that lost the buffer holding the last write of one tagged key (and
/// everything after it, the invalidation included). The longest matching
/// prefix blames that key's absence on the invalidation and sees it split;
/// the true prefix (before the lost write) explains the state whole.
#[test]
fn an_invalidation_in_flight_is_judged_by_the_prefix_that_explains_it() {
    let i = (0..100_000u64).find(|&i| matches!(op(i), Op::InvalidateTag(_))).unwrap();
    let keys = hidden_keys(op(i));
    let (lost, kept) = (keys[0], keys[1]);
    let mut hist = History::new(KEYS);
    hist.push(kept, Some(value(kept, 1, 100)), 0, true); // flushed
    hist.push(lost, Some(value(lost, 2, 100)), 0, true); // acknowledged, still in the buffer
    let inflight_at = hist.writes.len();
    push_group(&mut hist, op(i), i, false, 0);
    let mut got: BTreeMap<u32, Option<Vec<u8>>> = (0..KEYS).map(|k| (k, None)).collect();
    got.insert(kept, Some(value(kept, 1, 100)));
    // The longest prefix matches but splits the invalidation...
    assert!(hist.matches(&got, hist.writes.len(), 0, 0));
    assert!(check_group(op(i), i, &hist, &got, inflight_at, 0, 0).is_err());
    // ...the prefix before the lost write is the answer.
    assert_eq!(choose_prefix(&hist, &got, 1, i, inflight_at, 0, 0), Ok((1, false, true)));
    // A state no prefix explains whole still fails: both keys' writes flushed
    // (`lo` past them), one reads nothing, the other its value.
    assert!(matches!(choose_prefix(&hist, &got, inflight_at, i, inflight_at, 0, 0), Err(Some(_))));
}
