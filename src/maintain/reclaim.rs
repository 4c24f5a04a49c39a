//! Reclaiming one sealed segment: the step eviction and compaction share.
//!
//! Every record of the segment is visited in order, under the writer lock in
//! small batches so that writers interleave. For each record:
//!
//! | record | condition | action |
//! |---|---|---|
//! | value, index points elsewhere | shadowed, deleted, or void | drop |
//! | value, live, expired | segment is its log's oldest | drop |
//! | value, live, expired | otherwise | drop, leaving a tombstone (same seq) if an older value may exist |
//! | value, live | compaction | re-append to the same log (new seq) |
//! | value, live | eviction | as the policy decides: re-append or drop |
//! | tombstone | another segment of its log holds a value older than it | re-append unchanged (same seq) |
//! | tombstone | otherwise | drop |
//!
//! Then the copies are fsynced, and only then is the segment file removed,
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
//! a tombstone instead.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cache::{expired, Inner, Pending};
use crate::error::Result;
use crate::format::record::{self, Kind, Record};
use crate::format::segment::LogKind;
use crate::index::Loc;
use crate::log::scan::{End, Item, Scanner};
use crate::log::writer::Writer;
use crate::log::{hint_path, Segment};
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
    inner: &'a Inner,
    seg: &'a Arc<Segment>,
    mode: Mode,
    oldest_in_log: bool,
    /// Smallest sequence number of a value record in any other segment.
    older_values_from: u64,
    now_ms: u64,
    /// Something was copied: the copies must be durable before the segment goes.
    copied: bool,
}

/// Reclaims `seg` (which must be sealed and covered by the checkpoint).
pub(crate) fn reclaim(inner: &Inner, seg: &Arc<Segment>, mode: Mode) -> Result<()> {
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
        oldest_in_log: all.iter().find(|s| s.log == seg.log).map(|s| s.id) == Some(seg.id),
        older_values_from: older_values_from(inner, &all, seg),
        now_ms,
        copied: false,
    };
    let bytes = seg.bytes();
    let mut scanner = Scanner::new(bytes);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        batch.extend(scanner.by_ref().take(BATCH));
        if batch.is_empty() {
            break;
        }
        crate::killpoint!("reclaim.batch");
        let mut w = inner.lock_writer();
        w.check_enabled()?;
        for item in &batch {
            if let Item::Record { offset, record } = item {
                step(&mut ctx, &mut w, *offset as u32, record)?;
            }
        }
    }
    // Entries the scan did not reach must not outlive the file: past damage
    // that cut the scan short, or (the live count says so) at offsets a hint
    // listed that the scan steps over. Left behind, such an entry would point
    // into a removed segment, and lookups of its hash would give up on it.
    let cut_short = matches!(scanner.end(), Some(End::Bad { .. }));
    if cut_short || seg.live_count.load(Ordering::Relaxed) > 0 {
        inner.index.retain(|e| e.loc.seg != seg.id);
    }
    crate::killpoint!("reclaim.before_sync");
    if ctx.copied {
        // The copies must be durable before the removal of the originals can
        // be (the file system may make an unlink durable at any moment).
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
/// A tombstone in the probation log can only shadow probation values: a
/// delete goes to the log of its key's current entry, and a key whose entry
/// is in probation has main-log values only below an older main-log tombstone.
/// A tombstone in the main log must consider both logs: a crash between
/// promoting an entry and removing its probation segment leaves an older
/// copy of the value in probation.
pub(crate) fn older_values_from(inner: &Inner, all: &[Arc<Segment>], seg: &Segment) -> u64 {
    let counts = |log: LogKind| seg.log == LogKind::Main || log == seg.log;
    let pending = inner.lock_pending();
    all.iter()
        .filter(|s| s.id != seg.id && counts(s.log))
        .map(|s| s.min_value_seq.load(Ordering::Relaxed))
        .chain(pending.iter().filter(|p| p.seg != seg.id && counts(p.log)).map(|p| p.min_value_seq))
        .min()
        .unwrap_or(u64::MAX)
}

/// Whether reclaiming `seg` would free anything beyond its live bytes: dead
/// values, or at least one tombstone nothing older needs any more.
pub(crate) fn worth_rewriting(inner: &Inner, all: &[Arc<Segment>], seg: &Segment) -> bool {
    seg.garbage_bytes() > 0
        || (seg.tombstone_bytes.load(Ordering::Relaxed) > 0
            && seg.min_tombstone_seq.load(Ordering::Relaxed) <= older_values_from(inner, all, seg))
}

fn step(ctx: &mut Ctx<'_>, w: &mut Writer, off: u32, rec: &Record<'_>) -> Result<()> {
    let inner = ctx.inner;
    let len = rec.len();
    if rec.kind == Kind::Tombstone {
        if ctx.older_values_from < rec.header.seq {
            let raw = &ctx.seg.bytes()[off as usize..off as usize + len as usize];
            append_raw(ctx, w, ctx.seg.log, raw, rec.header.seq, false)?;
        }
        return Ok(());
    }
    let hash = inner.hasher.hash(rec.key);
    let loc = Loc { seg: ctx.seg.id, off };
    let Some(entry) = inner.index.get_at(hash, loc) else { return Ok(()) };
    if expired(rec.header.expires_ms, ctx.now_ms) {
        inner.index.remove(hash, loc);
        ctx.seg.sub_live(len);
        bump(&inner.counters.expirations_reclaimed);
        if !ctx.oldest_in_log && ctx.older_values_from < rec.header.seq {
            let mut buf = Vec::with_capacity(record::encoded_len(rec.key.len(), 0));
            record::encode(&mut buf, Kind::Tombstone, rec.header.seq, 0, rec.key, b"");
            append_raw(ctx, w, ctx.seg.log, &buf, rec.header.seq, false)?;
        }
        return Ok(());
    }
    let decision = match ctx.mode {
        Mode::Compact => Decision::Keep { log: ctx.seg.log, counter: entry.counter },
        Mode::Evict => policy::decide(ctx.seg.log, entry.counter),
    };
    match decision {
        Decision::Drop => {
            inner.index.remove(hash, loc);
            ctx.seg.sub_live(len);
            bump(&inner.counters.evictions);
            if ctx.seg.log == LogKind::Probation {
                inner.lock_ghost().insert(hash, len);
            }
        }
        Decision::Keep { log, counter } => {
            let seq = w.next_seq;
            let mut buf = std::mem::take(&mut w.scratch);
            buf.clear();
            record::encode(&mut buf, Kind::Value, seq, rec.header.expires_ms, rec.key, rec.value);
            let appended = w.append(&inner.segments, log, &buf, ctx.now_ms);
            w.scratch = buf;
            let new_loc = appended?;
            w.next_seq += 1;
            inner.note_append(w, new_loc, seq, true, len);
            ctx.seg.sub_live(len);
            inner.index.update(hash, loc, new_loc, entry.expires_s, Some(counter));
            ctx.copied = true;
            add(&inner.counters.bytes_rewritten, len);
            if ctx.mode == Mode::Evict {
                bump(if log != ctx.seg.log { &inner.counters.promotions } else { &inner.counters.reinsertions });
            }
        }
    }
    Ok(())
}

/// Appends a record that keeps its sequence number (a tombstone).
fn append_raw(ctx: &mut Ctx<'_>, w: &mut Writer, log: LogKind, raw: &[u8], seq: u64, live: bool) -> Result<()> {
    let loc = w.append(&ctx.inner.segments, log, raw, ctx.now_ms)?;
    ctx.inner.note_append(w, loc, seq, live, raw.len() as u64);
    add(&ctx.inner.counters.bytes_rewritten, raw.len() as u64);
    ctx.copied = true;
    Ok(())
}
