//! The checkpoint as the running cache keeps it: the clock mark and its
//! lease, the clock anchor, the durable mark, the sequence mark, and the
//! segments whose removal is not durable yet.

use super::rank::{self, Rank, Ranked};
use super::{Engine, Pending};
use crate::clock::CLOCK_LEASE_MS;
use crate::error::Result;
use crate::format::checkpoint::{seq_mark_for, Checkpoint};
use crate::format::segment::LogKind;
use crate::index::Loc;
use crate::log::checkpoint::write_checkpoint;
use crate::log::writer::{NewRecord, Writer};

impl Engine {
    pub(crate) fn lock_checkpoint(&self) -> Ranked<'_, Checkpoint> {
        rank::lock(&self.checkpoint, Rank::Checkpoint)
    }

    /// The cache's current time, covered by the checkpoint on disk.
    ///
    /// Before the cache uses a time the checkpoint does not cover, it writes
    /// one that does: its clock mark a lease ahead (`CLOCK_LEASE_MS`; the
    /// maintenance thread renews it before it runs out, so callers rarely
    /// wait for that write), and a fresh clock anchor (needed only when the
    /// wall clock jumped forward, or on the first use after a reboot). If
    /// the checkpoint cannot be written (a full or failing disk), time goes
    /// on anyway — serving entries past their expiry would be worse — and
    /// the write is retried a second later; only a crash during such a
    /// failure, followed by a clock jumping back, could then revive an entry.
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        match self.time.try_now_ms() {
            Ok(now) => now,
            Err(wanted) => {
                let _ = self.renew_clock_lease(wanted, wanted, wanted, false);
                self.time.try_now_ms().unwrap_or_else(|now| self.time.past_limit(now))
            }
        }
    }

    /// Makes sure the checkpoint on disk covers the time `now_ms` and has a
    /// clock mark of at least `need_ms`; when it does not (or with
    /// `fresh_anchor`), writes one with a mark a lease ahead of `from_ms`
    /// and a fresh anchor.
    pub(crate) fn renew_clock_lease(&self, from_ms: u64, need_ms: u64, now_ms: u64, fresh_anchor: bool) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let mark = from_ms.saturating_add(CLOCK_LEASE_MS).max(need_ms);
        let covered = || !fresh_anchor && self.time.limit_ms() >= need_ms && self.time.covers(now_ms);
        if self.read_only || covered() {
            return Ok(());
        }
        let retry_at = self.clock_retry_ms.load(Relaxed);
        if retry_at != 0 && from_ms < retry_at {
            return Ok(()); // failed a moment ago: do not retry on every call
        }
        let written = {
            // Under the lock, so that threads crossing the mark together write
            // it once (and so one anchor is written at a time).
            let mut current = self.lock_checkpoint();
            if covered() {
                Ok(())
            } else {
                // A mark that already covers what is needed stays: renewed
                // from a time held ahead of the wall clock (after a reboot),
                // it would run further ahead at every crash.
                let mark = if current.clock_ms >= need_ms { current.clock_ms } else { mark };
                let anchor = self.time.begin_anchor();
                let next = Checkpoint { clock_ms: mark, anchor: anchor.anchor, ..current.clone() };
                self.write_checkpoint(&next).map(|()| {
                    anchor.commit();
                    *current = next;
                })
            }
        };
        match written {
            Ok(()) => {
                self.clock_retry_ms.store(0, Relaxed);
                self.time.raise_limit(self.lock_checkpoint().clock_ms);
                Ok(())
            }
            Err(e) => {
                self.clock_retry_ms.store(from_ms.saturating_add(1000), Relaxed);
                Err(e)
            }
        }
    }

    /// Appends `rec` through the writer `w` (whose lock the caller holds),
    /// reserving its sequence number first when it takes a new one: the
    /// path of every record numbered by this session.
    #[inline]
    pub(crate) fn append(&self, w: &mut Writer, log: LogKind, rec: NewRecord<'_>, now: u64) -> Result<(Loc, u64)> {
        if rec.seq.is_none() && w.needs_seq_mark() {
            self.reserve_seq(w)?;
        }
        w.append_record(&self.segments, log, rec, now)
    }

    /// Writes a checkpoint whose sequence mark reserves the writer's next
    /// number and [`SEQ_RESERVATION`](crate::format::checkpoint::SEQ_RESERVATION)
    /// ` - 1` more, and lets the writer use them once it is durable.
    ///
    /// A version is a record's number, and a caller may hold it (or have
    /// read it with `get_entry`) before the record is durable; a power cut
    /// can then lose the record. The next open starts numbering above the
    /// mark, so no later record can get that number again. This runs once
    /// per reservation, under the writer lock (the writers wait for one
    /// checkpoint write); an open that finds the mark above every record
    /// reserves the next block in the checkpoint it writes anyway.
    #[cold]
    #[inline(never)]
    pub(crate) fn reserve_seq(&self, w: &mut Writer) -> Result<()> {
        crate::killpoint!("seq.before_mark");
        let mark = seq_mark_for(w.next_seq);
        self.update_checkpoint(|c| c.seq_mark = c.seq_mark.max(mark))?;
        w.set_seq_reserved(mark);
        Ok(())
    }

    /// Changes the checkpoint and writes it; the change is kept in memory
    /// only once it is on disk. (Keeping a change whose write failed would
    /// let the cache act on it — drop records above the durable mark, forget
    /// void ranges — while the file still says otherwise.)
    pub(crate) fn update_checkpoint(&self, change: impl FnOnce(&mut Checkpoint)) -> Result<()> {
        let mut current = self.lock_checkpoint();
        let mut next = current.clone();
        change(&mut next);
        self.write_checkpoint(&next)?;
        *current = next;
        Ok(())
    }

    pub(crate) fn write_checkpoint(&self, c: &Checkpoint) -> Result<()> {
        let removed = self.removed_segments();
        write_checkpoint(&self.storage, &self.dir, c)?;
        self.forget_removed(&removed);
        Ok(())
    }

    /// Fsyncs the directory: every removal so far is durable afterwards.
    pub(crate) fn sync_dir(&self) -> Result<()> {
        let removed = self.removed_segments();
        self.storage.sync_dir(&self.dir)?;
        self.forget_removed(&removed);
        Ok(())
    }

    pub(crate) fn lock_pending(&self) -> Ranked<'_, Vec<Pending>> {
        rank::lock(&self.removed_unsynced, Rank::Removals)
    }

    /// The segments whose files are removed but whose removal may not be durable.
    pub(crate) fn removed_segments(&self) -> Vec<u32> {
        self.lock_pending().iter().filter(|p| p.removed).map(|p| p.seg).collect()
    }

    /// Forgets segments whose removal a directory fsync has made durable.
    pub(crate) fn forget_removed(&self, segs: &[u32]) {
        if !segs.is_empty() {
            self.lock_pending().retain(|p| !(p.removed && segs.contains(&p.seg)));
        }
    }
}
