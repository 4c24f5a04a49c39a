//! The read path: index lookup, then the record, then its checksum, then a [`Value`].

use super::{expired, Engine};
use crate::format::record::{Header, Kind, Record};
use crate::index::Entry;
use crate::log::segment::ReadError;
use crate::log::writer::Writer;
use crate::log::SegmentRef;
use crate::stats::bump;
use crate::value::Value;

/// A key's current entry, found by `locate`.
/// A live value as a read finds it.
pub(crate) struct Item {
    pub(crate) value: Value,
    pub(crate) user_flags: u32,
    /// The record's sequence number: the item's version.
    pub(crate) seq: u64,
    /// Absolute expiry in Unix ms (0 = never).
    pub(crate) expires_ms: u64,
}

impl Item {
    fn of(rec: &Record<'_>, value: Value) -> Item {
        Item { value, user_flags: rec.user_flags, seq: rec.header.seq, expires_ms: rec.header.expires_ms }
    }
}

pub(crate) struct Located {
    pub(super) seg: SegmentRef,
    pub(super) entry: Entry,
    pub(super) header: Header,
}

pub(crate) enum Lookup {
    Found(Located),
    Missing,
    /// The entry's record is still in the write buffer.
    Buffered,
    /// The entry's record cannot be read.
    Corrupt,
}

impl Engine {
    /// Finds `key`'s entry. `writer` gives access to records still in the write
    /// buffer when the caller holds the writer lock.
    pub(crate) fn locate(&self, key: &[u8], hash: u64, count_hit: bool, writer: Option<&Writer>) -> Lookup {
        'retry: for _ in 0..8 {
            let mut unreadable = false;
            for entry in self.index.lookup(hash, count_hit).iter() {
                let Some(seg) = self.segments.get_ref(entry.loc.seg) else {
                    // Maintenance moved the entry and removed the segment meanwhile: look again.
                    continue 'retry;
                };
                // Read before the peek: a writer flushing or sealing meanwhile
                // must not make a record the peek did not yet see look damaged.
                // (A segment is sealed only once flushed, and its visible end
                // only grows, by whole records.)
                let sealed = seg.is_sealed();
                let visible = seg.visible();
                let in_file = seg.peek(entry.loc.off);
                let from_file = in_file.is_some();
                let peeked = in_file.or_else(|| writer.and_then(|w| w.peek_pending(entry.loc)));
                let Some((header, stored_key)) = peeked else {
                    if sealed || u64::from(entry.loc.off) < visible {
                        // Damaged: it may be this key's record or another's. It must
                        // not hide a readable entry of this key, so look on. (Past
                        // the visible end of an active segment, the record is still
                        // in a write buffer: buffered durability, or a batch.)
                        unreadable = true;
                        continue;
                    }
                    return Lookup::Buffered;
                };
                if stored_key == key {
                    return Lookup::Found(Located { seg, entry: *entry, header });
                }
                // Another key only if the record is intact: a damaged one (or
                // bytes in the middle of a record, where a lying hint put an
                // entry) can show any key, and it may be this key's newest
                // record. (Verified only here, on a hash collision.)
                if from_file && seg.read(entry.loc.off).is_err() {
                    unreadable = true;
                }
            }
            return if unreadable { Lookup::Corrupt } else { Lookup::Missing };
        }
        Lookup::Missing
    }

    /// `locate` for callers without the writer lock: when the entry is still
    /// in the write buffer, flushes it and looks again under the writer lock
    /// (which maintenance needs to move an entry, so the second look sees
    /// what the first saw, written out). If the buffer cannot be written (the
    /// failure turns writes off), the entry is found in the buffer instead:
    /// an acknowledged write stays readable.
    pub(crate) fn locate_flushing(&self, key: &[u8], hash: u64, count_hit: bool) -> Option<Located> {
        let found = match self.locate(key, hash, count_hit, None) {
            Lookup::Buffered => {
                let w = &mut *self.lock_writer();
                // A failure leaves the record in the buffer, where `locate` finds it.
                let _ = w.flush();
                self.locate(key, hash, false, Some(w))
            }
            other => other,
        };
        match found {
            Lookup::Found(l) => Some(l),
            Lookup::Corrupt => {
                bump(&self.counters.corrupt_reads);
                None
            }
            Lookup::Missing | Lookup::Buffered => None,
        }
    }

    /// The live value `key` reads as, with its metadata. The clock is read
    /// only for a record with an expiry (most have none, and a clock read is
    /// a tenth of a `get`'s instructions). With `count`, the
    /// read counts: a hit for the entry's eviction counter, and in the
    /// expired and corrupt read stats. `namespaced`: `key` is a namespace's
    /// (encoded) key, and only a namespaced record of it is its value (a
    /// plain key reads only plain records); an invalidated record is a miss.
    pub(crate) fn read_item(&self, key: &[u8], hash: u64, count: bool, namespaced: bool) -> Option<Item> {
        let bump = |c: &std::sync::atomic::AtomicU64| {
            if count {
                bump(c)
            }
        };
        let found = self.locate_flushing(key, hash, count)?;
        if found.header.expires_ms != 0 && expired(found.header.expires_ms, self.now_ms()) {
            bump(&self.counters.expired_reads);
            return None;
        }
        let Located { seg, entry, .. } = found;
        let mapped = match seg.read(entry.loc.off) {
            Ok(rec) if rec.kind == Kind::Value && rec.key == key => {
                if !self.visible(&rec, namespaced) {
                    return None;
                }
                let (start, len) = (seg.offset_of(rec.value), rec.value.len());
                Ok((start, len, rec.user_flags, rec.header.seq, rec.header.expires_ms))
            }
            other => Err(other.map(|_| ())),
        };
        match mapped {
            // The handle moves into the value: no reference count taken and dropped.
            Ok((start, len, user_flags, seq, expires_ms)) => {
                Some(Item { value: Value::mapped(seg, start, len), user_flags, seq, expires_ms })
            }
            Err(Err(ReadError::NotVisible)) if !seg.is_sealed() => {
                // Still in a write buffer that could not be written (see `locate_flushing`).
                let w = self.lock_writer();
                match w.read_pending(entry.loc) {
                    Some(rec) if rec.kind == Kind::Value && rec.key == key => {
                        self.visible(&rec, namespaced).then(|| Item::of(&rec, Value::owned(rec.value)))
                    }
                    _ => {
                        bump(&self.counters.corrupt_reads);
                        None
                    }
                }
            }
            Err(Ok(())) | Err(Err(ReadError::Corrupt)) | Err(Err(ReadError::NotVisible)) => {
                bump(&self.counters.corrupt_reads);
                None
            }
        }
    }
}
