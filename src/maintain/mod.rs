//! Background maintenance: hint files, eviction, compaction, checkpoints.
//!
//! A writable open first compacts up to [`OPEN_COMPACTIONS_MAX`] of the
//! deadest segments ([`after_open`]). Then one thread (started by open,
//! stopped and joined on close) runs a round at once and then every tick,
//! or when a writer nudges it; a round, in order:
//!
//! 1. hands buffered writes to the OS (buffered durability), or writes and
//!    fsyncs the zeros ahead of the active segments (synced durability,
//!    when a writer asked for them: see `crate::log::writer`);
//! 2. evicts while the cache is above its eviction threshold (`max_bytes`
//!    minus one segment), by reclaiming whole segments (see `policy`);
//! 3. compacts every sealed segment whose dead fraction passed the
//!    compaction threshold and that is no longer being overwritten, most
//!    dead first (expired values count as dead in a round at most every
//!    [`EXPIRY_SCAN_INTERVAL_MS`]; see `compact_some` for "no longer");
//! 4. fsyncs the other newly sealed segments and writes their hint files;
//! 5. renews the checkpoint's clock mark before the time in use reaches it
//!    (see `Engine::now_ms`), so that callers rarely have to.
//!
//! Writers never wait for this thread unless a write would take the cache
//! past `max_bytes`; then the writer evicts inline (see [`writer_with_room`]).
//! Lock order: the maintenance lock, then the writer lock, then the ghost lock.

pub(crate) mod policy;
pub(crate) mod reclaim;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::CLOCK_LEASE_MS;
use crate::config::{Config, Durability};
use crate::engine::rank::{self, Rank, Ranked};
use crate::engine::{Engine, MaintState};
use crate::error::Result;
use crate::format::segment::{LogKind, HEADER_LEN};
use crate::log::{hint_path, hints, Segment};
use crate::stats::bump;

use reclaim::{reclaim, Mode};

/// How far the clock anchor may run ahead of the time now before a
/// maintenance round writes a new one (see `run_once`).
const ANCHOR_STALE_MS: u64 = 50;

/// Longest the background thread sleeps between rounds.
const TICK: Duration = Duration::from_secs(1);

/// How soon the background thread runs again after a round that left a
/// segment past the compaction threshold because it was still being
/// overwritten (see `compact_some`): the round after compacts it.
const RECHECK: Duration = Duration::from_millis(100);

/// Longest a round of background compaction goes without counting the
/// expired bytes of each segment (cache time, ms). Counting walks the whole
/// index, so rounds in between count only dead bytes.
pub(crate) const EXPIRY_SCAN_INTERVAL_MS: u64 = 30_000;

/// The background thread.
pub(crate) struct Worker {
    inner: Arc<Engine>,
    handle: JoinHandle<()>,
}

impl Worker {
    pub(crate) fn start(inner: Arc<Engine>) -> Worker {
        let tick =
            if inner.config.durability == Durability::Buffered { inner.config.flush_interval.min(TICK) } else { TICK };
        let shared = inner.clone();
        let handle = std::thread::Builder::new()
            .name("keg-maintenance".into())
            .spawn(move || {
                // The first round runs at once: a process that is killed
                // soon after each open still writes hints and compacts.
                loop {
                    if run_once(&shared, true).is_err() {
                        bump(&shared.counters.maintenance_errors);
                    }
                    // A segment left to finish dying is looked at again soon.
                    let waiting = !lock_state(&shared).waited.is_empty();
                    if shared.wake.wait(if waiting { tick.min(RECHECK) } else { tick }) {
                        break;
                    }
                }
            })
            .expect("spawn the maintenance thread");
        Worker { inner, handle }
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(self) {
        self.inner.wake.signal(true);
        let _ = self.handle.join();
    }
}

fn lock_state(inner: &Engine) -> Ranked<'_, MaintState> {
    rank::lock(&inner.maint, Rank::Maintenance)
}

/// Most segments a writable open compacts before it returns (see [`after_open`]).
pub(crate) const OPEN_COMPACTIONS_MAX: usize = 16;

/// Work a writable open with background maintenance does before it returns,
/// so that a process killed soon after every open still gets its dead
/// segments reclaimed: compacts up to [`OPEN_COMPACTIONS_MAX`] sealed
/// segments whose dead fraction passed the compaction threshold, most dead
/// first. (Without it, a crash loop of short runs never reached background
/// compaction and piled up segments of dead values: 2.16 GiB in 740 files
/// for 18 k live keys.) A failure is counted in `maintenance_errors`, as in
/// a background round, and does not fail the open.
pub(crate) fn after_open(inner: &Engine) {
    let mut st = lock_state(inner);
    let done = sync_removals(inner).and_then(|()| compact_some(inner, &mut st, OPEN_COMPACTIONS_MAX, false));
    if done.is_err() {
        bump(&inner.counters.maintenance_errors);
    }
}

/// Background eviction starts above this many bytes.
fn evict_threshold(config: &Config) -> u64 {
    config.max_bytes - config.segment_bytes
}

/// Eviction for a writer that needs room now (the engine calls it, through
/// the function `Cache::open` hands it, when the background thread has not
/// kept up): evicts down to `target` bytes under the maintenance lock;
/// returns whether it freed anything.
pub(crate) fn evict_inline(inner: &Engine, target: u64) -> Result<bool> {
    let _st = lock_state(inner);
    evict_to(inner, target)
}

/// One round of maintenance: the background thread's (`patient`: segments
/// still being overwritten wait, see [`compact_some`]), or
/// `Cache::run_maintenance`'s (every segment past the threshold).
pub(crate) fn run_once(inner: &Engine, patient: bool) -> Result<()> {
    let mut st = lock_state(inner);
    if inner.config.durability == Durability::Buffered {
        inner.lock_writer().flush()?;
    }
    prezero(inner)?;
    sync_removals(inner)?;
    evict_to(inner, evict_threshold(&inner.config))?;
    // Compaction before hints: a segment that is already dead enough goes
    // without its hint being written, and without waiting for the fsyncs
    // of the others' (on a busy disk those took seconds, and the space its
    // dead bytes hold stayed taken that long).
    compact_some(inner, &mut st, usize::MAX, patient)?;
    write_pending_hints(inner)?;
    // Renew the clock mark while half a lease is left, counted from the wall
    // clock. An idle cache uses no time, so it writes nothing. After a crash
    // the time open restores is at most the mark (up to a lease ahead of the
    // clock, when it cannot measure the time the crash took: see
    // `MonotonicTime::new`); the next mark waits for the clock to come within
    // half a lease of it, so crashes in a row never take the cache's time
    // more than a lease ahead of the clock. (A call that needs a time the
    // checkpoint does not cover renews it at once: `Engine::now_ms`.)
    //
    // Rewrite the clock anchor too when it runs ahead of the time now (the
    // wall clock jumped back): otherwise a crash would hold the cache's
    // time that far ahead until the wall clock caught up with the anchor.
    let half = CLOCK_LEASE_MS / 2;
    let (used, wall, limit) = (inner.time.used_ms(), inner.time.wall_ms(), inner.time.limit_ms());
    let stale = inner.time.anchor_excess_ms(used.max(wall)) > ANCHOR_STALE_MS;
    if stale || (used.saturating_add(half) > limit && wall.saturating_add(half) > limit) {
        inner.renew_clock_lease(wall, wall.saturating_add(half), used, stale)?;
    }
    Ok(())
}

/// Writes the zeros a writer asked for ahead of the active segments and
/// fsyncs them, so that the sets that overwrite them need not (see
/// `crate::log::writer`).
fn prezero(inner: &Engine) -> Result<()> {
    if !inner.segments.take_zeros_wanted() {
        return Ok(());
    }
    let extended = inner.lock_writer().prezero(&inner.segments)?;
    for seg in extended {
        if let Err(e) = seg.file().sync_data() {
            // It may have dropped dirty records too ("fsyncgate").
            return Err(inner.lock_writer().disable(e));
        }
    }
    Ok(())
}

/// Fsyncs sealed segments and writes their hint files.
fn write_pending_hints(inner: &Engine) -> Result<()> {
    let sealed = {
        let mut w = inner.lock_writer();
        // A hint file vouches for its segment's records (open trusts it
        // without reading them): after a failed fsync, nothing may vouch for
        // data that may be gone. The segments keep waiting; a reopen scans them.
        w.check_enabled()?;
        std::mem::take(&mut w.sealed)
    };
    let mut wrote = false;
    for seg in sealed {
        if inner.segments.get(seg.id).is_none() || seg.fully_hinted() {
            continue; // reclaimed meanwhile, or already has one
        }
        if let Err(e) = seg.file().sync_data() {
            // The kernel may have dropped the segment's unsynced pages: a
            // later fsync could succeed without them, so nothing written from
            // now on can be called durable (see `Writer::disable`).
            return Err(inner.lock_writer().disable(e));
        }
        seg.set_synced(seg.len());
        crate::killpoint!("hint.before_write");
        let durable_seq = inner.lock_checkpoint().durable_seq;
        wrote |=
            hints::write(&inner.storage, &inner.dir, &inner.segments, &seg, &inner.hasher, &inner.index, durable_seq)?
                .is_some();
    }
    if wrote {
        inner.sync_dir()?;
    }
    Ok(())
}

/// Reclaims segments until the committed bytes (the files, and the hint
/// files still to write) are at most `target`. Returns whether it made room:
/// it found them at most `target`, or a reclaim made progress. (Not whether
/// the bytes fell meanwhile: other writers may take the room as soon as it
/// is made, and a writer told "nothing freed" would fail although eviction
/// works; see `Engine::writer_with_room`.)
///
/// A reclaim makes progress when it drops a record or moves one by the
/// policy (a promotion or reinsertion, which the reinsertion budget bounds,
/// so the log's next reclaims drop). It makes none when every record of the
/// segment had to be kept as it was: tombstones, invalidation records and
/// records of a later version while a value older than them exists in
/// another segment. Such a segment goes to the end of its log; once a log's
/// reclaims have gone round all of it without progress, reclaiming it again
/// would copy the same records again, for ever, while the old values that
/// pin them (in the other log, which the policy leaves alone while it is
/// under its share) stay. So a log that went round without progress is
/// *stalled*: the other log goes first, and once both are stalled eviction
/// gives up: the writer gets `NoSpace` instead of spinning.
fn evict_to(inner: &Engine, target: u64) -> Result<bool> {
    let mut progressed = false;
    // Per log (`LogKind::index`): reclaims in a row that made no progress.
    let mut idle = [0usize; 2];
    let mut rounds = 0;
    while inner.segments.committed_bytes() > target {
        let all = inner.segments.all();
        let stalled = LogKind::ALL.map(|log| idle[log.index()] > all.iter().filter(|s| s.log == log).count());
        if stalled == [true; 2] {
            return Ok(progressed);
        }
        let Some(victim) = choose_victim(inner, &all, stalled)? else { return Ok(progressed) };
        crate::killpoint!("evict.chosen");
        ensure_durable(inner, &victim)?;
        let kept_before = kept_as_they_were(inner);
        reclaim(inner, &victim, Mode::Evict)?;
        let kept = kept_as_they_were(inner) - kept_before;
        // (Its records are its bytes after the header; an empty segment's
        // removal is progress too.)
        let records = victim.len().saturating_sub(HEADER_LEN as u64);
        if records == 0 || kept < records {
            progressed = true;
            idle = [0; 2];
        } else {
            idle[victim.log.index()] += 1;
        }
        rounds += 1;
        // A backstop: each round makes progress or brings its log nearer
        // to stalled; this bound is never reached in the tests.
        if rounds > 4 * inner.segments.len() + 16 {
            return Ok(progressed);
        }
    }
    Ok(true)
}

/// Bytes reclaims have copied forward as they were (every rewrite but the
/// policy's promotions and reinsertions), since the open.
fn kept_as_they_were(inner: &Engine) -> u64 {
    let c = &inner.counters;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    load(&c.bytes_rewritten).saturating_sub(load(&c.bytes_reinserted))
}

/// The oldest segment (of `all`, the segment table's list) of the log the
/// policy picks, sealed if it was active; a `stalled` log (see
/// [`evict_to`]) only if the other has none.
fn choose_victim(inner: &Engine, all: &[Arc<Segment>], stalled: [bool; 2]) -> Result<Option<Arc<Segment>>> {
    let bytes_of = |log: LogKind| all.iter().filter(|s| s.log == log).map(|s| s.len()).sum::<u64>();
    let mut first = policy::victim_log(bytes_of(LogKind::Probation), bytes_of(LogKind::Main), inner.config.max_bytes);
    if stalled[first.index()] {
        first = other(first);
    }
    for log in [first, other(first)] {
        let Some(seg) = all.iter().find(|s| s.log == log) else { continue };
        if !seg.is_sealed() {
            let mut w = inner.lock_writer();
            if w.active(log).is_some_and(|a| a.id == seg.id) {
                w.seal(&inner.segments, log)?;
            }
        }
        if seg.is_sealed() {
            return Ok(Some(seg.clone()));
        }
    }
    Ok(None)
}

fn other(log: LogKind) -> LogKind {
    match log {
        LogKind::Probation => LogKind::Main,
        LogKind::Main => LogKind::Probation,
    }
}

/// Makes sure the checkpoint covers every record of `seg` before any of them is
/// dropped: records above the checkpoint are never removed on purpose, which
/// is what lets recovery read a hole above it as loss.
fn ensure_durable(inner: &Engine, seg: &Segment) -> Result<()> {
    let max_seq = seg.max_seq.load(std::sync::atomic::Ordering::Relaxed);
    if inner.lock_checkpoint().durable_seq >= max_seq {
        return Ok(());
    }
    let durable = inner.sync_now()?;
    crate::killpoint!("durable.before_checkpoint");
    let now = inner.now_ms();
    inner.update_checkpoint(|c| {
        c.durable_seq = c.durable_seq.max(durable);
        c.clock_ms = c.clock_ms.max(now);
    })
}

/// Compacts (up to `limit` of) the sealed segments whose dead fraction passed the threshold and
/// that rewriting would actually shrink (a segment of tombstones that must
/// all be kept is left alone, or it would be copied forward forever).
///
/// Expired values count as dead in the rounds that count them: at most
/// [`EXPIRY_SCAN_INTERVAL_MS`] apart (counting walks the index).
///
/// With `patient` (background rounds), a segment that is still being
/// overwritten waits one round: one that lost at least [`DYING_SHARE`] of
/// its bytes since the previous look (any round's, or open's), or that was
/// sealed since, is left for the next round ([`RECHECK`] later), which
/// compacts it whatever it finds, unless it is at least [`DEAD_ENOUGH_ANYWAY`] dead (or halfway
/// from the threshold to all, if that is more): then it goes at once.
/// Compacted while it dies, its live values are copied to the head of the
/// log just before they are overwritten there too, and leave segments less
/// than the threshold dead, which stay: every key written 3 times in order
/// left 1.6–1.9 disk bytes per live byte, not 1.42, when rounds came
/// mid-way (BENCHMARKS.md §9, "Space after overwrites"). Open, close and
/// `Cache::run_maintenance` do not wait.
fn compact_some(inner: &Engine, st: &mut MaintState, limit: usize, patient: bool) -> Result<()> {
    let threshold = inner.config.compaction_threshold;
    let now = inner.now_ms();
    let expired = if now >= st.next_expiry_scan_ms {
        st.next_expiry_scan_ms = now.saturating_add(EXPIRY_SCAN_INTERVAL_MS);
        expired_bytes(inner, now)
    } else {
        HashMap::new()
    };
    let expired_in = |s: &Segment| expired.get(&s.id).copied().unwrap_or(0);
    let all = inner.segments.all();
    let mut candidates: Vec<(f64, Arc<Segment>)> = all
        .iter()
        .filter(|s| s.is_sealed() && s.len() > HEADER_LEN as u64)
        .map(|s| ((s.dead_bytes() + expired_in(s)) as f64 / (s.len() - HEADER_LEN as u64) as f64, s.clone()))
        .filter(|(dead, s)| *dead >= threshold && reclaim::worth_rewriting(inner, &all, s, expired_in(s)))
        .collect();
    // Remember what each sealed segment holds now; forget segments that are gone.
    let looked = std::mem::take(&mut st.live_at_last_look);
    for s in all.iter().filter(|s| s.is_sealed()) {
        st.live_at_last_look.insert(s.id, s.live_bytes.load(std::sync::atomic::Ordering::Relaxed));
    }
    let waited = std::mem::take(&mut st.waited);
    if patient {
        let anyway = DEAD_ENOUGH_ANYWAY.max((1.0 + threshold) / 2.0);
        candidates.retain(|(dead, s)| {
            let payload = s.len() - HEADER_LEN as u64;
            let still_dying = looked.get(&s.id).is_none_or(|&before| {
                let now = st.live_at_last_look[&s.id];
                before.saturating_sub(now) as f64 >= DYING_SHARE * payload as f64
            });
            let wait = still_dying && *dead < anyway && !waited.contains(&s.id);
            if wait {
                st.waited.insert(s.id);
            }
            !wait
        });
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, seg) in candidates.into_iter().take(limit) {
        if !room_for_copies(inner, &seg) {
            continue; // (eviction makes room; a later round compacts it)
        }
        ensure_durable(inner, &seg)?;
        reclaim(inner, &seg, Mode::Compact)?;
        bump(&inner.counters.compactions);
    }
    Ok(())
}

/// `Cache::flush`'s part in the space bound: when a sealed segment is
/// `compaction_threshold` dead or more and rewriting it would free space
/// (dead bytes as they stand: expired values wait for a round's count),
/// compacts every such segment now, in the caller's thread, as a clean close
/// does (without the background rounds' wait for segments still being
/// overwritten). With none past the threshold, the common case, it costs a
/// look at each segment's counters and takes no lock beyond the segment map's.
/// Does nothing without background maintenance (whose user runs
/// `Cache::run_maintenance` instead). A failure is counted in
/// `maintenance_errors`, as a background round's, and not returned: the
/// flush itself succeeded (an fsync failure has turned writes off, and the
/// next write says so).
pub(crate) fn compact_due(inner: &Engine) {
    if !inner.config.background || !any_past_threshold(inner) {
        return;
    }
    let mut st = lock_state(inner);
    let done = sync_removals(inner).and_then(|()| compact_some(inner, &mut st, usize::MAX, false));
    if done.is_err() {
        bump(&inner.counters.maintenance_errors);
    }
}

/// Whether a sealed segment is at least `compaction_threshold` dead (not
/// counting expired values) and worth rewriting.
fn any_past_threshold(inner: &Engine) -> bool {
    let threshold = inner.config.compaction_threshold;
    let all = inner.segments.all();
    all.iter().any(|s| {
        let payload = s.len().saturating_sub(HEADER_LEN as u64);
        s.is_sealed()
            && payload > 0
            && s.dead_bytes() as f64 / payload as f64 >= threshold
            && reclaim::worth_rewriting(inner, &all, s, 0)
    })
}

/// Share of its bytes a segment past the compaction threshold must have
/// lost since the previous round for a background round to count it as
/// still being overwritten, and leave it for later (see [`compact_some`]).
pub(crate) const DYING_SHARE: f64 = 0.125;

/// A segment at least this dead is compacted by any round (its copies are
/// at most a tenth of it), even while it is still being overwritten.
pub(crate) const DEAD_ENOUGH_ANYWAY: f64 = 0.9;

/// `Cache::compact`: seals the active segments, then rewrites every segment
/// that rewriting would shrink.
pub(crate) fn compact_all(inner: &Engine) -> Result<()> {
    let _st = lock_state(inner);
    sync_removals(inner)?;
    inner.lock_writer().seal_all(&inner.segments)?;
    crate::killpoint!("compact.sealed");
    let expired = expired_bytes(inner, inner.now_ms());
    for seg in inner.segments.all() {
        // A segment reclaimed just before still counts as holding older
        // values until its removal is durable, and would keep this one's
        // tombstones alive for another compaction. (The reclaim below would
        // fsync the directory first anyway.)
        sync_removals(inner)?;
        let all = inner.segments.all();
        let expired = expired.get(&seg.id).copied().unwrap_or(0);
        if seg.is_sealed()
            && inner.segments.get(seg.id).is_some()
            && reclaim::worth_rewriting(inner, &all, &seg, expired)
        {
            if !room_for_copies(inner, &seg) {
                let cap = inner.config.max_bytes + inner.config.segment_bytes;
                evict_to(inner, cap.saturating_sub(copies_bound(&seg)))?;
                if inner.segments.get(seg.id).is_none() {
                    continue; // evicted meanwhile
                }
            }
            ensure_durable(inner, &seg)?;
            reclaim(inner, &seg, Mode::Compact)?;
            bump(&inner.counters.compactions);
        }
    }
    write_pending_hints(inner)?;
    sync_removals(inner)
}

/// The most compacting `seg` can add to the files before it removes the
/// segment: a copy of each live value and of each tombstone, and the
/// header of a new segment the copies may start.
fn copies_bound(seg: &Segment) -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    seg.live_bytes.load(Relaxed) + seg.tombstone_bytes.load(Relaxed) + HEADER_LEN as u64
}

/// Whether compacting `seg` now keeps the files within `max_bytes` plus one segment.
fn room_for_copies(inner: &Engine, seg: &Segment) -> bool {
    inner.segments.committed_bytes() + copies_bound(seg) <= inner.config.max_bytes + inner.config.segment_bytes
}

/// Bytes of expired values in each segment (by id) at cache time `now_ms`:
/// the records of index entries whose expiry has passed. An entry keeps its
/// expiry rounded up to the second, so this never counts a value that has
/// not expired (reclaim, which reads each record's exact expiry, drops every
/// one counted).
fn expired_bytes(inner: &Engine, now_ms: u64) -> HashMap<u32, u64> {
    let segs: HashMap<u32, Arc<Segment>> = inner.segments.all().into_iter().map(|s| (s.id, s)).collect();
    let mut by_seg: HashMap<u32, u64> = HashMap::new();
    inner.index.for_each(|e| {
        if e.expires_s == 0 || u64::from(e.expires_s) * 1000 > now_ms {
            return;
        }
        if let Some((header, _)) = segs.get(&e.loc.seg).and_then(|s| s.peek(e.loc.off)) {
            *by_seg.entry(e.loc.seg).or_default() += header.record_len();
        }
    });
    by_seg
}

/// Makes earlier segment removals durable, so that tombstones stop counting
/// the removed segments as holding older values.
fn sync_removals(inner: &Engine) -> Result<()> {
    if !inner.removed_segments().is_empty() {
        inner.sync_dir()?;
    }
    Ok(())
}

/// `Cache::clear`: makes the checkpoint cover everything, then removes every segment.
pub(crate) fn clear(inner: &Engine) -> Result<()> {
    let _st = lock_state(inner);
    let mut w = inner.lock_writer();
    w.check_enabled()?;
    w.seal_all(&inner.segments)?;
    w.sealed.clear();
    let plan = w.plan_sync()?;
    if let Err(e) = plan.run(&inner.storage, &inner.dir) {
        w.sync_failed(&plan);
        return Err(w.disable(e));
    }
    // Every record written so far becomes void before any file goes: if one
    // cannot be removed, or a power cut undoes a removal, its records still
    // never come back (a key deleted after this clear found nothing to
    // delete, so no tombstone would hide them).
    let now = inner.now_ms();
    inner.update_checkpoint(|c| {
        c.durable_seq = c.durable_seq.max(plan.seq);
        c.void_ranges = if plan.seq > 0 { vec![(1, plan.seq)] } else { Vec::new() };
        c.clock_ms = c.clock_ms.max(now);
    })?;
    // Nothing written so far can come back now, from any segment.
    inner.lock_pending().clear();
    // Every invalidation is void too, and so is every tagged record.
    inner.lock_tags().clear();
    inner.any_invalidated.store(false, std::sync::atomic::Ordering::Release);
    inner.index.retain(|_| false);
    for seg in inner.segments.all() {
        seg.live_bytes.store(0, std::sync::atomic::Ordering::Relaxed);
        seg.live_count.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    crate::killpoint!("clear.before_remove");
    for seg in inner.segments.all() {
        inner.storage.remove(seg.path())?;
        crate::killpoint!("clear.mid_remove");
        inner.segments.remove(seg.id);
        inner.storage.remove(&hint_path(&inner.dir, seg.id))?;
    }
    inner.sync_dir()
}

/// A clean close: seal, compact what is past the compaction threshold (with
/// background maintenance on), fsync, write hints and the checkpoint.
///
/// Compacting first means a closed cache holds no segment past the
/// threshold, whatever the background thread had reached (it is stopped
/// before this runs), and that no hint file is written for a segment the
/// next open would compact.
pub(crate) fn close(inner: &Engine) -> Result<()> {
    let mut st = lock_state(inner);
    {
        let mut w = inner.lock_writer();
        w.check_enabled()?;
        w.seal_all(&inner.segments)?;
    }
    if inner.config.background {
        sync_removals(inner)?;
        compact_some(inner, &mut st, usize::MAX, false)?;
        crate::killpoint!("close.compacted");
    }
    write_pending_hints(inner)?;
    crate::killpoint!("close.before_checkpoint");
    let durable = inner.sync_now()?;
    // The exact time used, not the lease ahead of it: a clean close makes
    // nothing expire early at the next open.
    let used = inner.time.used_ms();
    // The numbers reserved but not used go back: a clean close lost no
    // record, so the next open numbers from right after the last one (and
    // writes no checkpoint for it). The writer gives up its reservation
    // first: a write after this one (none should come) reserves again.
    let mut w = inner.lock_writer();
    let last = w.next_seq - 1;
    w.release_seqs(last);
    inner.update_checkpoint(|c| {
        c.durable_seq = c.durable_seq.max(durable);
        c.clock_ms = used;
        c.seq_mark = last;
    })
}
