//! Room under the cap: a writer takes the writer lock only once its record
//! fits under `max_bytes`, asking maintenance to evict when the background
//! thread has not kept up. Maintenance stands on the engine, so the engine
//! does not call it by name: `Cache::open` hands it maintenance's inline
//! eviction as an [`Evict`] function.

use super::rank::Ranked;
use super::Engine;
use crate::error::{Error, Result};
use crate::format::segment::HEADER_LEN;
use crate::log::writer::Writer;

/// Evicts until the cache's files take at most the given number of bytes;
/// returns whether it freed anything. Takes the maintenance lock itself, so
/// the caller must hold no engine lock.
pub(crate) type Evict = fn(&Engine, u64) -> Result<bool>;

impl Engine {
    /// Whether `len` more bytes (and a segment header, in case they start a
    /// new segment) fit under the cap now.
    pub(crate) fn has_room(&self, len: u64) -> bool {
        self.segments.disk_bytes() + len + HEADER_LEN as u64 <= self.config.max_bytes
    }

    /// The writer lock, once `len` more bytes fit under the cap (evicting
    /// inline if they do not), or `NoSpace` when eviction cannot free enough.
    pub(crate) fn writer_with_room(&self, len: u64) -> Result<Ranked<'_, Writer>> {
        let needed = len + HEADER_LEN as u64;
        let started = std::time::Instant::now();
        loop {
            let w = self.lock_writer();
            w.check_enabled()?;
            if self.has_room(len) {
                return Ok(w);
            }
            drop(w);
            let target = self.config.max_bytes.saturating_sub(needed);
            if !(self.evict)(self, target)? && !self.has_room(len) {
                return Err(Error::NoSpace {
                    needed,
                    cap: self.config.max_bytes,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
        }
    }

    /// Wakes the background thread when the cache nears its cap (above
    /// `max_bytes` minus one segment, where background eviction starts).
    pub(crate) fn nudge(&self) {
        if self.segments.disk_bytes() > self.config.max_bytes - self.config.segment_bytes {
            self.wake.signal(false);
        }
    }
}
