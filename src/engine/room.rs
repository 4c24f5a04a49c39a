//! Room under the cap: a writer takes the writer lock only once its record
//! fits under `max_bytes`, asking maintenance to evict when the background
//! thread has not kept up. Maintenance stands on the engine, so the engine
//! does not call it by name: `Cache::open` hands it maintenance's inline
//! eviction as an [`Evict`] function.
//!
//! The cap is enforced against the committed bytes
//! (`Segments::committed_bytes`): the files, and the hint files still to
//! write. So writing a hint never takes the files past what writers left.

use super::rank::Ranked;
use super::Engine;
use crate::error::{Error, Result};
use crate::format::hint;
use crate::format::segment::HEADER_LEN;
use crate::log::writer::Writer;

/// Evicts until the cache's committed bytes are at most the given number;
/// returns whether it made room (found them at most that, or reclaimed a
/// segment), which others may have taken by the time it returns. Takes the
/// maintenance lock itself, so the caller must hold no engine lock.
pub(crate) type Evict = fn(&Engine, u64) -> Result<bool>;

/// Bytes below the cap that writers leave free: a reclaim copies at most
/// its segment's records, but the copies may start a new segment in each
/// log, one header more than the records' own segment had. With this, the
/// files never hold more than `max_bytes` plus one segment.
pub(crate) const CAP_HEADROOM: u64 = HEADER_LEN as u64;

/// Tries a writer makes to find room before it gives up with `NoSpace`:
/// each try evicts until the room is there, so only other writers taking
/// the room that many times in a row exhaust it (a backstop, never reached
/// in the tests; see `Engine::writer_with_room`).
const ROOM_TRIES_MAX: usize = 10_000;

/// What a write of a `len`-byte record may add to the committed bytes, with
/// the headroom the size cap keeps: the record, the header of a segment it
/// may start and that segment's hint header and entry for the record, and
/// [`CAP_HEADROOM`].
pub(crate) fn room_needed(len: u64) -> u64 {
    len + HEADER_LEN as u64 + (hint::HEADER_LEN + hint::ENTRY_LEN) as u64 + CAP_HEADROOM
}

impl Engine {
    /// Whether `len` more bytes (and a segment header, in case they start a
    /// new segment, and the hint bytes they will need) fit under the cap now.
    pub(crate) fn has_room(&self, len: u64) -> bool {
        self.segments.committed_bytes() + room_needed(len) <= self.config.max_bytes
    }

    /// The writer lock, once `len` more bytes fit under the cap (evicting
    /// inline if they do not), or `NoSpace` when they never can (more than
    /// the cap) or eviction finds nothing more to reclaim.
    ///
    /// Eviction that made room counts as success even if other writers took
    /// that room before this one looked: it tries again. (Failing then, as
    /// this once did, made writers fail with `NoSpace` under contention
    /// while eviction was working.) Each try either finds room, reclaims a
    /// segment, or fails, so the loop ends while the cache is not being
    /// filled by others at the same rate; it is bounded all the same.
    pub(crate) fn writer_with_room(&self, len: u64) -> Result<Ranked<'_, Writer>> {
        let needed = room_needed(len);
        // The wait is timed from the first time there was no room: a write
        // that finds room at once (nearly all) reads no clock.
        let mut started = None;
        let no_space = |started: Option<std::time::Instant>| Error::NoSpace {
            needed,
            cap: self.config.max_bytes,
            waited_ms: started.map_or(0, |t| t.elapsed().as_millis() as u64),
        };
        if needed > self.config.max_bytes {
            return Err(no_space(None));
        }
        for _ in 0..ROOM_TRIES_MAX {
            let w = self.lock_writer();
            w.check_enabled()?;
            if self.has_room(len) {
                return Ok(w);
            }
            drop(w);
            let started = *started.get_or_insert_with(std::time::Instant::now);
            let target = self.config.max_bytes.saturating_sub(needed);
            if !(self.evict)(self, target)? && !self.has_room(len) {
                return Err(no_space(Some(started)));
            }
        }
        Err(no_space(started))
    }

    /// Wakes the background thread when the cache nears its cap (above
    /// `max_bytes` minus one segment, where background eviction starts), or
    /// when an active segment runs out of preallocated zeros (synced mode).
    pub(crate) fn nudge(&self) {
        if self.segments.committed_bytes() > self.config.max_bytes - self.config.segment_bytes
            || self.segments.zeros_wanted()
        {
            self.wake.signal(false);
        }
    }
}
