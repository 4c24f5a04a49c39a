//! The write path. Every record keg appends (a set, a delete, an atomic
//! operation, a copy by maintenance) goes through `Writer::append_record`
//! under the writer lock; this file holds the operations that find a key's
//! current entry, append its new record and update the index in one step.

use super::read::Lookup;
use super::{expired, Engine};
use crate::error::{Error, Result};
use crate::format::record::{self, Kind};
use crate::format::segment::LogKind;
use crate::index::{Entry, Loc};
use crate::log::hints::expires_s;
use crate::log::writer::{NewRecord, Writer};
use crate::maintain;
use crate::stats::bump;

impl Engine {
    /// Writes a value record; returns its sequence number.
    pub(crate) fn put(&self, key: &[u8], value: &[u8], expires_ms: u64, now: u64) -> Result<u64> {
        self.put_in(key, value, expires_ms, now, None)
    }

    /// [`Engine::put`] to log `to`, or (`None`) to the log of the key's
    /// entry, or for a new key to probation (main if the ghost remembers it).
    pub(crate) fn put_in(
        &self,
        key: &[u8],
        value: &[u8],
        expires_ms: u64,
        now: u64,
        to: Option<LogKind>,
    ) -> Result<u64> {
        self.check_writable()?;
        let hash = self.hasher.hash(key);
        let len = record::encoded_len(key.len(), value.len()) as u64;
        let mut w = maintain::writer_with_room(self, len)?;
        let existing = match self.locate(key, hash, false, Some(&w)) {
            Lookup::Found(l) => Some(l),
            _ => None,
        };
        let log = match (to, &existing) {
            (Some(log), _) => log,
            (None, Some(l)) => l.seg.log,
            (None, None) if self.lock_ghost().contains(hash) => {
                bump(&self.counters.ghost_hits);
                LogKind::Main
            }
            (None, None) => LogKind::Probation,
        };
        let rec = NewRecord { kind: Kind::Value, seq: None, expires_ms, key, value };
        let (loc, seq) = w.append_record(&self.segments, log, rec, now)?;
        crate::killpoint!("set.before_index");
        self.note_append(&w, loc, seq, true, len);
        let exp = expires_s(expires_ms);
        match existing {
            Some(old) => {
                old.seg.sub_live(old.header.record_len());
                self.index.update(hash, old.entry.loc, loc, exp, None);
            }
            None => self.index.insert(Entry { hash, loc, expires_s: exp, counter: 0 }),
        }
        drop(w);
        maintain::nudge(self);
        Ok(seq)
    }

    /// Deletes `key` by writing a tombstone; returns whether a live value was removed.
    pub(crate) fn remove(&self, key: &[u8]) -> Result<bool> {
        self.remove_as(key, false)
    }

    /// Deletes `key`; with `always`, writes the tombstone even when nothing
    /// readable is found.
    pub(crate) fn remove_as(&self, key: &[u8], always: bool) -> Result<bool> {
        self.check_writable()?;
        let hash = self.hasher.hash(key);
        let len = record::encoded_len(key.len(), 0) as u64;
        let now = self.now_ms(); // (may write the clock mark: not under the writer lock)
        let mut w = maintain::writer_with_room(self, len)?;
        let old = match self.locate(key, hash, false, Some(&w)) {
            Lookup::Found(old) => Some(old),
            // An entry of this hash cannot be read: it may be this key's newest
            // record, shadowing an older value that a later recovery (once the
            // damaged record is gone) would bring back. A tombstone rules that out.
            Lookup::Corrupt => None,
            // Nothing to delete — unless a power cut could bring a value of
            // this key back: a segment whose entries reclaim dropped may
            // still reappear until its removal is durable. Then the delete
            // must leave a tombstone, or it could be undone while later
            // writes survive.
            _ if always || !self.lock_pending().is_empty() => None,
            _ => return Ok(false),
        };
        // Always the main log, whose tombstones count older values of both
        // logs when they are reclaimed. A key's values normally sit in one
        // log, but a damaged or hand-made directory can hold values of one
        // key in both, and a probation tombstone (which counts only probation
        // values) could then be dropped while a main-log value it hides
        // remains: the key would come back after a restart.
        let rec = NewRecord { kind: Kind::Tombstone, seq: None, expires_ms: 0, key, value: b"" };
        let (loc, seq) = w.append_record(&self.segments, LogKind::Main, rec, now)?;
        crate::killpoint!("delete.before_index");
        self.note_append(&w, loc, seq, false, len);
        if let Some(old) = &old {
            old.seg.sub_live(old.header.record_len());
            self.index.remove(hash, old.entry.loc);
        }
        drop(w);
        self.wait_durable(seq)?;
        Ok(old.is_some_and(|old| !expired(old.header.expires_ms, now)))
    }

    /// Settles a key whose main-log value a probation record hides (see
    /// `recovery::Recovered::split_keys`): its newest value, if live and
    /// readable, is copied to the main log (new sequence number), else a
    /// main-log tombstone is written. Either way its newest record is then
    /// in main, whose reclaim counts values of both logs. Nothing to do when
    /// the newest record is in main already, or in a read-only open (which
    /// reclaims nothing, and serves what a writable open would).
    pub(crate) fn settle_split_key(&self, key: &[u8]) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let hash = self.hasher.hash(key);
        let now = self.now_ms();
        let result = match self.locate(key, hash, false, None) {
            Lookup::Found(found) if found.seg.log == LogKind::Main => return Ok(()),
            // (Only an intact value record of this key is copied: an entry
            // from a lying hint may point at a tombstone, which reads as
            // nothing, not as an empty value.)
            Lookup::Found(found) => match found.seg.read(found.entry.loc.off) {
                Ok(r) if r.kind == Kind::Value && r.key == key && !expired(r.header.expires_ms, now) => {
                    self.put_in(key, r.value, r.header.expires_ms, now, Some(LogKind::Main)).map(|_| ())
                }
                _ => self.remove_as(key, true).map(|_| ()),
            },
            _ => self.remove_as(key, true).map(|_| ()),
        };
        match result {
            // Out of numbers (an image holding numbers near the limit):
            // nothing can be written, and nothing can be reclaimed either.
            Ok(()) | Err(Error::SequenceExhausted { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Bookkeeping after an append of a live value (`value`) or a tombstone:
    /// sequence bounds, live and tombstone bytes, counters.
    pub(crate) fn note_append(&self, w: &Writer, loc: Loc, seq: u64, value: bool, len: u64) {
        let _ = w;
        if let Some(seg) = self.segments.get(loc.seg) {
            if value {
                seg.note_value(seq);
                seg.add_live(len);
            } else {
                seg.note_tombstone(seq, len);
            }
        }
        bump(&self.counters.appends);
        crate::stats::add(&self.counters.bytes_appended, len);
    }
}
