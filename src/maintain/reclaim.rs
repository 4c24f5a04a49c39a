//! Reclaiming one sealed segment: the step eviction and compaction share.
//!
//! Every record of the segment is visited in order, under the writer lock in
//! small batches so that writers interleave. For each record:
//!
//! | record | condition | action |
//! |---|---|---|
//! | value, index points elsewhere | shadowed, deleted, or void | drop |
//! | value, live, expired | | drop, leaving a tombstone (same seq) if an older value may exist (\*) |
//! | value, live | compaction | re-append to the same log (new seq) |
//! | value, live | eviction | as the policy decides (within the reinsertion budget): re-append, or drop as an expired value is dropped |
//! | tombstone | an older value may exist (\*) | re-append unchanged (same seq) |
//! | tombstone | otherwise | drop |
//! | invalidation, or a record this version does not understand | a value older than it may exist in either log | re-append to the main log (same seq; the latter byte for byte) |
//! | invalidation, or a record this version does not understand | otherwise | drop |
//!
//! (\*) Another segment that a tombstone here counts holds a value record
//! older than it: of the probation log for a probation segment, of either
//! log for a main one (see `older_values_from`). In a log's oldest segment
//! this is normally never so, and nothing is written; see
//! `leave_tombstone_if_hiding` for when it is.
//! "Older" includes an equal sequence number, which only damage or a
//! hand-made file produces: recovery settles such a tie by the order it
//! reads records in, so the tombstone may be what hides that value.
//!
//! In a segment with a hint file (which is what recovery read instead of the
//! records), a record that is not what the hint lists at its offset was
//! never applied, and is not acted on. The scan stops at the first damaged
//! record; records past it (and any a hint listed at offsets the scan
//! stepped over, or found something else at) are reached through the
//! segment's hint and the index entries into the segment. Each that is
//! intact there gets the treatment above. A damaged one is dropped with any
//! entry pointing at it; if it was a live value or a tombstone newer than a
//! value elsewhere, it may be all that hides older values of its key, whose
//! key cannot be read: so every key that has an older value of the same hash
//! in another segment, and no entry, gets a tombstone in the main log with
//! the damaged record's sequence number (see `unreached`).
//!
//! Then the copies are fsynced (with everything else written so far: the
//! newer records that made values here dead may still be in the write
//! buffer), and only then is the segment file removed,
//! in every mode (the file system may make an unlink durable at any moment): a
//! live record is often all that shadows older, dead records of its key in
//! other segments, so if its copy could be lost after the original is gone,
//! a power cut would bring an older value back. The removal is made durable by
//! the next directory fsync; until then the segment stays registered as
//! pending (`Pending`, from before its first record is dropped): tombstones
//! still count its values, a delete that finds nothing still writes a
//! tombstone, and the next reclaim fsyncs the directory before it starts. A
//! crash at any point leaves the old record, the copy, or both (the copy's
//! sequence number wins, or is the same for a tombstone).
//!
//! Why dropping is safe: a key's value records all sit in one log, in
//! sequence order (updates go to the log of the key's current entry; copies
//! go to a log's head with a new sequence number). So when the oldest segment
//! of a log is reclaimed, no older record of the same key can remain — the
//! segments reclaimed before it are durably gone (their removal was fsynced
//! before this reclaim began; recovery fsyncs the directory it found) — and
//! dropping its live entry cannot let an older value reappear after a restart.
//! A segment that is not the oldest (compaction) keeps that promise by leaving
//! a tombstone instead, and so does the oldest when the promise does not
//! hold: after a crash during a promotion, or damage (see
//! `leave_tombstone_if_hiding`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::engine::{expired, Engine, Pending};
use crate::error::Result;
use crate::format::hint::HintEntry;
use crate::format::record::{self, Kind, Record};
use crate::format::segment::LogKind;
use crate::format::MAX_SEQ;
use crate::index::Loc;
use crate::log::scan::{Item, Step, Walk};
use crate::log::writer::{Meta, NewRecord, Writer};
use crate::log::{hint_path, hints, Segment};
use crate::maintain::policy::{self, Decision};
use crate::stats::{add, bump};

/// Records handled per hold of the writer lock.
const BATCH: usize = 128;

/// Why a segment is being reclaimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// To free space: the policy decides what stays.
    Evict,
    /// To drop dead bytes: every live entry stays.
    Compact,
}

struct Ctx<'a> {
    inner: &'a Engine,
    seg: &'a Arc<Segment>,
    mode: Mode,
    /// Smallest sequence number of a value record in any other segment.
    older_values_from: u64,
    /// The same bound over both logs: what a damaged record may hide (its
    /// key is unknown, so it may be the newest record of a key whose older
    /// values sit in either log).
    older_values_anywhere: u64,
    now_ms: u64,
    /// Something was copied: the copies must be durable before the segment goes.
    copied: bool,
    /// A value was dropped because a newer record of its key replaced it:
    /// that record must be durable before the segment goes (it may still be
    /// in the write buffer, or unsynced).
    superseded: bool,
}

/// Reclaims `seg` (which must be sealed and covered by the checkpoint).
pub(crate) fn reclaim(inner: &Engine, seg: &Arc<Segment>, mode: Mode) -> Result<()> {
    debug_assert!(seg.is_sealed());
    if !inner.removed_segments().is_empty() {
        // Dropping a live entry of a log's oldest segment (eviction, expiry)
        // is safe only if the older segments are gone for good: a removal not
        // yet made durable could be undone by a power cut, and the older
        // value it held would come back. So earlier removals become durable
        // before this reclaim judges what is oldest.
        inner.sync_dir()?;
    }
    // From now until its removal is durable, this segment's dropped records
    // could come back: deletes that find nothing leave tombstones meanwhile.
    inner.lock_pending().push(Pending {
        seg: seg.id,
        log: seg.log,
        min_value_seq: seg.min_value_seq.load(Ordering::Relaxed),
        removed: false,
    });
    crate::killpoint!("reclaim.start");
    let all = inner.segments.all();
    // (Before the context: reading the clock may write a checkpoint, which
    // takes the lock the context's expression below holds.)
    let now_ms = inner.now_ms();
    let mut ctx = Ctx {
        inner,
        seg,
        mode,
        older_values_from: older_values_from(inner, &all, seg),
        older_values_anywhere: older_values_in(inner, &all, seg, |_| true),
        now_ms,
        copied: false,
        superseded: false,
    };
    // A hinted segment was opened from its hint, without reading the records:
    // what recovery applied is what the hint says. A record that is not what
    // the hint lists at its offset (possible only after damage) was never
    // applied, so it must not be acted on either: a tombstone copied from it
    // could hide writes made since, under numbers recovery handed out again.
    let hint = hint_entries(inner, seg);
    let mut walk = Walk::new(seg.bytes(), None);
    let mut batch = Vec::with_capacity(BATCH);
    // Offsets of the records the scan handed to `step`, in order.
    let mut reached = Vec::new();
    let mut stepped_over = false;
    let mut disagrees = false;
    loop {
        batch.clear();
        // (A walk without a hint yields only scanned records. It stops at
        // damage, and at a number above MAX_SEQ: damage whose checksum
        // happened to match, as recovery reads it, where a hint may have
        // vouched for the segment instead; copied forward, such a tombstone
        // would end every later scan there.)
        batch.extend(walk.by_ref().take(BATCH).filter_map(|s| match s {
            Step::Scanned(item) => Some(item),
            Step::Listed { .. } => None,
        }));
        if batch.is_empty() {
            break;
        }
        crate::killpoint!("reclaim.batch");
        let mut w = inner.lock_writer();
        w.check_enabled()?;
        for item in &batch {
            match item {
                Item::Record { offset, record }
                    if hint.as_ref().is_some_and(|h| !listed(inner, h, *offset, record)) =>
                {
                    disagrees = true;
                }
                Item::Record { offset, record } => {
                    reached.push(*offset as u32);
                    step(&mut ctx, &mut w, *offset as u32, record)?;
                }
                Item::Invalidation { inv, .. } => keep_invalidation(&mut ctx, &mut w, inv)?,
                // In the part of a hinted segment that recovery took from
                // the hint, an unknown record is one recovery never saw (no
                // hint lists one): damage, whose number must not enter
                // history now. Elsewhere recovery read it, and it is kept.
                Item::Unknown { offset, .. } if hint.is_some() && *offset < seg.hinted_len() => {
                    disagrees = true;
                    stepped_over = true;
                }
                Item::Unknown { header, raw, .. } => {
                    keep_unknown(&mut ctx, &mut w, raw, header.seq)?;
                    stepped_over = true;
                }
            }
        }
    }
    // Records the scan did not reach: past damage that cut it short, or at
    // offsets a hint listed that the scan steps over or finds something else
    // at (the live count says an entry points there, or the scan stepped
    // over a record no hint can describe, or met one its hint does not
    // list). They still count: an entry there may be the newest value of its
    // key, and a tombstone there may hide older values elsewhere.
    let cut_short = walk.cut_short();
    let hinted = hint.is_some();
    if cut_short || seg.live_count.load(Ordering::Relaxed) > 0 || ((stepped_over || disagrees) && hinted) {
        unreached(&mut ctx, &reached, hint.unwrap_or_default())?;
        // No entry may outlive the file: left behind, it would point into a
        // removed segment, and lookups of its hash would give up on it.
        inner.index.retain(|e| e.loc.seg != seg.id);
    }
    crate::killpoint!("reclaim.before_sync");
    if ctx.copied || ctx.superseded {
        // The copies must be durable before the removal of the originals can
        // be (the file system may make an unlink durable at any moment); so
        // must the newer records that made values here dead, or a crash
        // could lose both the newer record and, with this file, the older.
        inner.sync_now()?;
    }
    crate::killpoint!("reclaim.before_remove");
    // The segment leaves the table only once its file is gone: while the file
    // may exist, its records must keep counting (a tombstone elsewhere still
    // has to hide its values; a failed removal is retried by a later reclaim).
    inner.storage.remove(seg.path())?;
    inner.segments.remove(seg.id);
    for p in inner.lock_pending().iter_mut().filter(|p| p.seg == seg.id) {
        p.removed = true;
    }
    crate::killpoint!("reclaim.after_remove");
    inner.storage.remove(&hint_path(&inner.dir, seg.id))?;
    bump(&inner.counters.segments_reclaimed);
    Ok(())
}

/// The smallest sequence number of a value record, other than in `seg`, that
/// a tombstone in `seg` may shadow (pending segments — being reclaimed, or
/// removed without a durable removal yet — included).
///
/// A tombstone in the probation log can only shadow probation values: deletes
/// go to the main log, so probation tombstones are only the ones reclaim
/// leaves for dropped probation values (and their copies), and a key whose
/// entry is in probation has main-log values only below an older main-log
/// tombstone.
/// A tombstone in the main log must consider both logs: a crash between
/// promoting an entry and removing its probation segment leaves an older
/// copy of the value in probation.
pub(crate) fn older_values_from(inner: &Engine, all: &[Arc<Segment>], seg: &Segment) -> u64 {
    // (Both logs for a probation tombstone too while a key whose main-log
    // value a probation record hides is unsettled: see `Engine::unsettled_split`.)
    let both = seg.log == LogKind::Main || inner.unsettled_split.load(Ordering::Acquire);
    older_values_in(inner, all, seg, |log| both || log == seg.log)
}

/// The smallest sequence number of a value record in a segment other than
/// `seg` (pending ones included) whose log `counts`.
fn older_values_in(inner: &Engine, all: &[Arc<Segment>], seg: &Segment, counts: impl Fn(LogKind) -> bool) -> u64 {
    let pending = inner.lock_pending();
    all.iter()
        .filter(|s| s.id != seg.id && counts(s.log))
        .map(|s| s.min_value_seq.load(Ordering::Relaxed))
        .chain(pending.iter().filter(|p| p.seg != seg.id && counts(p.log)).map(|p| p.min_value_seq))
        .min()
        .unwrap_or(u64::MAX)
}

/// Whether reclaiming `seg` would free anything beyond its live bytes: dead
/// values, `expired` bytes of expired values (which the index still counts
/// as live), or at least one tombstone nothing older needs any more.
pub(crate) fn worth_rewriting(inner: &Engine, all: &[Arc<Segment>], seg: &Segment, expired: u64) -> bool {
    seg.garbage_bytes() > 0
        || expired > 0
        || (seg.tombstone_bytes.load(Ordering::Relaxed) > 0
            && seg.min_tombstone_seq.load(Ordering::Relaxed) < older_values_from(inner, all, seg))
}

fn step(ctx: &mut Ctx<'_>, w: &mut Writer, off: u32, rec: &Record<'_>) -> Result<()> {
    let inner = ctx.inner;
    let len = rec.len();
    if rec.kind == Kind::Tombstone {
        if ctx.older_values_from <= rec.header.seq {
            append_tombstone(ctx, w, ctx.seg.log, rec.key, rec.header.seq)?;
        }
        return Ok(());
    }
    let hash = inner.hasher.hash(rec.key);
    let loc = Loc { seg: ctx.seg.id, off };
    let Some(entry) = inner.index.get_at(hash, loc) else {
        ctx.superseded = true;
        return Ok(());
    };
    // An invalidated value (its tag or namespace dropped) goes as an expired
    // one does; copied, it would get a number above its invalidation's.
    let gone = inner.invalidated(rec);
    if gone || expired(rec.header.expires_ms, ctx.now_ms) {
        inner.index.remove(hash, loc);
        ctx.seg.sub_live(len);
        if !gone {
            bump(&inner.counters.expirations_reclaimed);
        }
        return leave_tombstone_if_hiding(ctx, w, rec);
    }
    let decision = match ctx.mode {
        Mode::Compact => Decision::Keep { log: ctx.seg.log, counter: entry.counter },
        Mode::Evict => match policy::decide(ctx.seg.log, entry.counter) {
            Decision::Keep { .. } if !reinsertion_budget_left(inner, len, entry.counter) => {
                bump(&inner.counters.reinsertions_skipped);
                Decision::Drop
            }
            d => d,
        },
    };
    match decision {
        Decision::Drop => {
            inner.index.remove(hash, loc);
            ctx.seg.sub_live(len);
            bump(&inner.counters.evictions);
            if ctx.seg.log == LogKind::Probation {
                inner.lock_ghost().insert(hash, len);
            }
            leave_tombstone_if_hiding(ctx, w, rec)?;
        }
        Decision::Keep { log, counter } => {
            // (Out of numbers: the reclaim stops here and the segment stays.)
            let copy = NewRecord {
                kind: Kind::Value,
                seq: None,
                expires_ms: rec.header.expires_ms,
                key: rec.key,
                user_flags: rec.user_flags,
                meta: Meta::of(rec),
                value: rec.value,
            };
            let (new_loc, seq) = inner.append(w, log, copy, ctx.now_ms)?;
            inner.note_append(w, new_loc, seq, true, len);
            ctx.seg.sub_live(len);
            inner.index.update(hash, loc, new_loc, entry.expires_s, Some(counter));
            ctx.copied = true;
            add(&inner.counters.bytes_rewritten, len);
            if ctx.mode == Mode::Evict {
                bump(if log != ctx.seg.log { &inner.counters.promotions } else { &inner.counters.reinsertions });
                add(&inner.counters.bytes_reinserted, len);
            }
        }
    }
    Ok(())
}

/// Whether eviction's reinsertion budget has room for an entry of `len`
/// bytes with hit counter `counter` (see `policy::within_budget`). The
/// bytes writes took in are those appended by anything but maintenance.
fn reinsertion_budget_left(inner: &Engine, len: u64, counter: u8) -> bool {
    let c = &inner.counters;
    let appended = c.bytes_appended.load(Ordering::Relaxed);
    let taken_in = appended.saturating_sub(c.bytes_rewritten.load(Ordering::Relaxed));
    let spent = c.bytes_reinserted.load(Ordering::Relaxed);
    policy::within_budget(taken_in, spent, len, counter, inner.config.segment_bytes)
}

/// After the live value `rec` was dropped (expired or evicted): appends a
/// tombstone with its key and sequence number if another segment that a
/// tombstone here would count holds a value record no newer than it.
///
/// In a log's oldest segment that is normally never so, and nothing is
/// written: a key's values sit in the log of its current entry, in sequence
/// order. The check still runs there, for two reasons. A main-log value may
/// hide an older copy of itself in probation: a crash during a promotion
/// leaves the original in the probation segment whose removal never
/// happened, and an update of the key then goes to main, the log of its
/// entry; dropped without a trace, the update would leave the original as
/// the key's newest record after a restart (main's `older_values_from`
/// counts probation values). And damage can put sequence numbers out of
/// segment order, so that a newer segment of the same log holds an older
/// value. (A probation value hiding a main value is not covered here, as
/// probation tombstones count probation values only: an open moves such a
/// key's newest record to main; see `recovery::Recovered::split_keys`, and
/// `Engine::unsettled_split` for when it cannot.)
fn leave_tombstone_if_hiding(ctx: &mut Ctx<'_>, w: &mut Writer, rec: &Record<'_>) -> Result<()> {
    if ctx.older_values_from <= rec.header.seq {
        append_tombstone(ctx, w, ctx.seg.log, rec.key, rec.header.seq)?;
    }
    Ok(())
}

/// An invalidation record (kind 3) of the reclaimed segment: copied to the
/// main log with its sequence number while a value record older than it may
/// exist in another segment of either log (pending ones included), as a
/// main-log tombstone is: such a record may carry its tag or namespace, and
/// would come back without it. Dropped otherwise: every record it could hide
/// is gone. (The older records of this segment itself go with it: the
/// invalidated ones are dropped, the others copied with numbers above it.)
fn keep_invalidation(ctx: &mut Ctx<'_>, w: &mut Writer, inv: &record::Invalidation<'_>) -> Result<()> {
    if ctx.older_values_anywhere > inv.seq {
        return Ok(());
    }
    let rec = NewRecord {
        kind: Kind::Invalidation,
        seq: Some(inv.seq),
        expires_ms: 0,
        key: inv.key,
        user_flags: 0,
        meta: Meta::default(),
        value: b"",
    };
    let (loc, _) = w.append_record(&ctx.inner.segments, LogKind::Main, rec, ctx.now_ms)?;
    ctx.inner.note_append(w, loc, inv.seq, false, inv.len);
    add(&ctx.inner.counters.bytes_rewritten, inv.len);
    ctx.copied = true;
    Ok(())
}

/// A record this version does not understand (intact: its checksum
/// matched; a later version's kind or flags): kept, byte for byte with its
/// sequence number, in the main log while a value record older than it may
/// exist in another segment of either log, as an invalidation record is;
/// dropped otherwise. Whatever a later version means by it, it can only
/// matter to records older than it (it may be that version's tombstone, or
/// the newest value of a key whose older values would come back without
/// it), and once none is left dropping it only forgets. This version reads
/// it as recovery does: it holds its number and nothing else.
fn keep_unknown(ctx: &mut Ctx<'_>, w: &mut Writer, raw: &[u8], seq: u64) -> Result<()> {
    if ctx.older_values_anywhere > seq {
        return Ok(());
    }
    let loc = w.append_verbatim(&ctx.inner.segments, LogKind::Main, raw, ctx.now_ms)?;
    let len = raw.len() as u64;
    ctx.inner.note_append(w, loc, seq, false, len);
    add(&ctx.inner.counters.bytes_rewritten, len);
    ctx.copied = true;
    Ok(())
}

/// Appends a tombstone of `key` that keeps sequence number `seq` (one copied
/// forward, or left where a dropped value may hide older ones). `key` comes
/// from a record that decoded, so it is one the format can hold.
fn append_tombstone(ctx: &mut Ctx<'_>, w: &mut Writer, log: LogKind, key: &[u8], seq: u64) -> Result<()> {
    let rec = NewRecord {
        kind: Kind::Tombstone,
        seq: Some(seq),
        expires_ms: 0,
        key,
        user_flags: 0,
        meta: Meta::default(),
        value: b"",
    };
    let (loc, _) = w.append_record(&ctx.inner.segments, log, rec, ctx.now_ms)?;
    let len = record::encoded_len(key.len(), 0) as u64;
    ctx.inner.note_append(w, loc, seq, false, len);
    add(&ctx.inner.counters.bytes_rewritten, len);
    ctx.copied = true;
    Ok(())
}

/// A record of the reclaimed segment that the scan did not reach: listed by
/// the segment's hint, pointed at by index entries (their hashes), or both.
#[derive(Default)]
struct Spot {
    hint: Option<HintEntry>,
    hashes: Vec<u64>,
}

/// Handles the records of `ctx.seg` that the scan did not reach (`reached`
/// holds the offsets it did), so that removing the segment drops nothing that
/// still shadows an older record elsewhere.
///
/// The segment's hint (which lists offsets under its own checksum) and the
/// index entries into the segment locate them. A record that is intact there
/// (and is what the hint and the entries took it for) is handled like any
/// scanned one ([`step`]). A damaged one is dropped, and so is any index
/// entry pointing at it; but if it was a live value or a
/// tombstone, it may be all that shadows older values of its key in other
/// segments, and its key cannot be read, only its hash. So the other segments
/// are searched for value records of that hash older than it, and each key
/// found that has no live entry gets a tombstone with the damaged record's
/// sequence number (or the segment's highest, if no hint gives it): the key
/// reads as a miss now, and stays one after a restart. A key found that does
/// have a live entry needs nothing: that entry is newer than its older
/// records, or the damaged record was not that key's.
fn unreached(ctx: &mut Ctx<'_>, reached: &[u32], hint: Vec<(u64, HintEntry)>) -> Result<()> {
    let inner = ctx.inner;
    let seg = ctx.seg;
    let reached = |off: u32| reached.binary_search(&off).is_ok();
    let mut spots: BTreeMap<u32, Spot> = BTreeMap::new();
    for (off, e) in hint {
        if let Ok(off) = u32::try_from(off) {
            spots.entry(off).or_default().hint = Some(e);
        }
    }
    // (After the scan, an entry still pointing into the segment is one that
    // `step` did not handle: unreached, or not matching the record there.)
    inner.index.for_each(|e| {
        if e.loc.seg == seg.id {
            spots.entry(e.loc.off).or_default().hashes.push(e.hash);
        }
    });
    // (Taken before the writer lock; void ranges change only under the maintenance lock.)
    let checkpoint = inner.lock_checkpoint().clone();
    // Hash → sequence number of a dropped record that may shadow older values of its key.
    let mut shadowing: HashMap<u64, u64> = HashMap::new();
    let spots: Vec<(u32, Spot)> = spots.into_iter().collect();
    for chunk in spots.chunks(BATCH) {
        let mut w = inner.lock_writer();
        w.check_enabled()?;
        for (off, spot) in chunk {
            let off = *off;
            // The record there, if it is intact and what the hint and the index took it for.
            let intact = seg.bytes().get(off as usize..).and_then(|b| record::decode(b).ok()).filter(|r| {
                let hash = inner.hasher.hash(r.key);
                r.header.seq <= MAX_SEQ
                    && spot.hashes.iter().all(|&h| h == hash)
                    && spot.hint.is_none_or(|e| e.describes(r, hash))
            });
            match intact {
                Some(_) if reached(off) => continue, // `step` handled it
                Some(rec) => {
                    step(ctx, &mut w, off, &rec)?;
                    continue;
                }
                None => {}
            }
            // Damaged, or not what the hint or the index took it for: what
            // they took it for is dropped, and must not uncover older values.
            let seq = spot.hint.map_or(seg.max_seq.load(Ordering::Relaxed), |e| e.seq);
            let len = spot.hint.map(|e| e.len as u64).or_else(|| seg.peek(off).map(|(h, _)| h.record_len()));
            let mut shadows = Vec::new();
            for &hash in spot.hashes.iter().chain(spot.hint.as_ref().map(|e| &e.key_hash)) {
                if inner.index.remove(hash, Loc { seg: seg.id, off }).is_some() {
                    seg.sub_live(len.unwrap_or(0));
                    shadows.push(hash);
                }
            }
            // A record recovery took from the hint hid older values of its
            // hash at every open, whether or not the index still points at
            // it: a later write of another key with that hash may have taken
            // its entry (an unreadable record counts as every key of its
            // hash), and the values it hid must stay hidden once it is gone.
            // (Not a dead one: a newer value of its own key hides those.)
            if let Some(e) = spot.hint.filter(|e| !e.dead) {
                shadows.push(e.key_hash);
            }
            // (A void record shadows nothing: recovery ignores it.)
            // (Both logs count: a damaged probation record may be the newest
            // of a key whose older values are in main.)
            if ctx.older_values_anywhere <= seq && !checkpoint.is_void(seq) {
                for hash in shadows {
                    let s = shadowing.entry(hash).or_insert(seq);
                    *s = (*s).max(seq);
                }
            }
        }
    }
    if shadowing.is_empty() {
        return Ok(());
    }
    let keys: Vec<(Vec<u8>, u64)> = older_keys(inner, seg, &shadowing).into_iter().collect();
    for chunk in keys.chunks(BATCH) {
        let mut w = inner.lock_writer();
        w.check_enabled()?;
        for (key, seq) in chunk {
            if has_entry(inner, &w, key) {
                continue;
            }
            // The main log: its tombstones count older values in both logs.
            append_tombstone(ctx, &mut w, LogKind::Main, key, *seq)?;
        }
    }
    Ok(())
}

/// The entries of `seg`'s hint file with their offsets, if it has a usable one.
fn hint_entries(inner: &Engine, seg: &Segment) -> Option<Vec<(u64, HintEntry)>> {
    if seg.hint_len() == 0 {
        return None;
    }
    let path = hint_path(&inner.dir, seg.id);
    let bytes = hints::load(&inner.storage, &path, seg.id, inner.hasher.id(), seg.len())?;
    // Records appended after the hint was written (see
    // `recovery::resume_tails`) are listed as recovery read them: by a scan
    // (stepping over an invalidation or an unknown record, as recovery does).
    let out = Walk::new(seg.bytes(), Some(&bytes))
        .filter_map(|step| match step {
            Step::Listed { offset, entry } => Some((offset, entry)),
            Step::Scanned(Item::Record { offset, record }) => {
                Some((offset, HintEntry::of(&record, inner.hasher.hash(record.key), false)))
            }
            Step::Scanned(Item::Invalidation { .. } | Item::Unknown { .. }) => None,
        })
        .collect();
    Some(out)
}

/// Whether `hint` (entries by offset, in order) lists record `r` at `off`.
fn listed(inner: &Engine, hint: &[(u64, HintEntry)], off: u64, r: &Record<'_>) -> bool {
    hint.binary_search_by_key(&off, |&(o, _)| o).is_ok_and(|i| hint[i].1.describes(r, inner.hasher.hash(r.key)))
}

/// The keys of the value records in segments other than `seg` whose hash is
/// in `shadowing` with a larger sequence number, each with the largest such
/// number (the tombstone that hides them all).
fn older_keys(inner: &Engine, seg: &Segment, shadowing: &HashMap<u64, u64>) -> HashMap<Vec<u8>, u64> {
    let top = shadowing.values().copied().max().unwrap_or(0);
    let mut found: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut consider = |rec: &Record<'_>| {
        if rec.kind != Kind::Value {
            return;
        }
        if let Some(&seq) = shadowing.get(&inner.hasher.hash(rec.key)) {
            if rec.header.seq <= seq {
                let s = found.entry(rec.key.to_vec()).or_insert(seq);
                *s = (*s).max(seq);
            }
        }
    };
    for other in inner.segments.all() {
        if other.id == seg.id || other.min_value_seq.load(Ordering::Relaxed) > top {
            continue;
        }
        let bytes = other.bytes();
        match hint_entries(inner, &other) {
            // A hinted segment: records past damage in it are reached through its hint.
            Some(entries) => {
                for (off, e) in entries {
                    if e.tombstone || shadowing.get(&e.key_hash).is_none_or(|&s| e.seq > s) {
                        continue;
                    }
                    if let Some(rec) = bytes.get(off as usize..).and_then(|b| record::decode(b).ok()) {
                        consider(&rec);
                    }
                }
            }
            None => {
                for step in Walk::new(bytes, None) {
                    if let Step::Scanned(Item::Record { record, .. }) = step {
                        consider(&record);
                    }
                }
            }
        }
    }
    found
}

/// Whether `key` has an entry in the index (the caller holds the writer lock `w`).
fn has_entry(inner: &Engine, w: &Writer, key: &[u8]) -> bool {
    for e in inner.index.lookup(inner.hasher.hash(key), false).iter() {
        let Some(seg) = inner.segments.get(e.loc.seg) else { continue };
        let same = match seg.peek(e.loc.off) {
            Some((_, k)) => k == key,
            None => w.peek_pending(e.loc).is_some_and(|(_, k)| k == key),
        };
        if same {
            return true;
        }
    }
    false
}
