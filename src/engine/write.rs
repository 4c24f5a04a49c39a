//! The write path. Every record keg appends (a set, a delete, an atomic
//! operation, a copy by maintenance) goes through `Writer::append_record`
//! under the writer lock. Here, every write of a key by a caller takes the
//! same three steps under that lock, in [`Engine::update`]: find the key's
//! current entry and read its record, let the operation decide what to write
//! from what it found, then append the record and move the index entry.
//! Because the writer lock is held from the read to the index update, each
//! operation is atomic against every other writer of the cache: a
//! compare-and-swap, an increment or an add-if-absent sees exactly the value
//! it replaces.

use std::borrow::Cow;

use super::read::{Located, Lookup};
use super::{expired, Engine};
use crate::error::{Error, Result};
use crate::format::hint::expires_s;
use crate::format::record::{self, Kind};
use crate::format::segment::LogKind;
use crate::index::{Entry, Loc};
use crate::log::writer::{Meta, NewRecord, Writer};
use crate::stats::bump;

/// How many times a write re-reads its key when the record it decided on
/// needs more room than the cap had when it took the writer lock (eviction
/// runs between tries). The bound stops a loop against a value that grows
/// faster than eviction frees space.
const ROOM_TRIES: usize = 8;

/// A key's live value, as a write finds it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Current<'a> {
    pub(crate) value: &'a [u8],
    pub(crate) user_flags: u32,
    /// The record's sequence number: the item's version.
    pub(crate) seq: u64,
    /// Absolute expiry in Unix ms (0 = never).
    pub(crate) expires_ms: u64,
    /// Its encoded tag list (empty: none) and whether its key is namespaced.
    pub(crate) meta: Meta<'a>,
}

/// What a write does, decided from what it found.
pub(crate) enum Action<'a> {
    /// Store a value (its record goes to the log of the key's entry, or for
    /// a new key to probation, or main if the ghost set remembers it).
    Put { value: Cow<'a, [u8]>, user_flags: u32, tags: Cow<'a, [u8]>, expires_ms: u64 },
    /// Delete the key (a tombstone, if there may be anything to hide).
    Delete,
    /// Leave the key as it is.
    Nothing,
}

/// One write of a batch ([`Engine::write_batch`]).
pub(crate) struct BatchItem<'a> {
    pub(crate) key: &'a [u8],
    /// The value to store, with its user flags and absolute expiry (Unix ms,
    /// 0 = never); `None` deletes the key.
    pub(crate) put: Option<(&'a [u8], u32, u64)>,
    /// The encoded tag list of a value stored (empty: none).
    pub(crate) tags: &'a [u8],
}

impl BatchItem<'_> {
    fn encoded_len(&self) -> u64 {
        match self.put {
            Some((v, flags, _)) => {
                (record::encoded_len(self.key.len(), v.len()) + if flags != 0 { 4 } else { 0 } + self.tags.len()) as u64
            }
            None => record::encoded_len(self.key.len(), 0) as u64,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// The sequence number of the record appended, if one was.
    pub(crate) seq: Option<u64>,
    /// Whether the key had a live value before the write.
    had_live: bool,
}

impl Engine {
    /// The one write of a key: under the writer lock, reads the key's live
    /// value (`None` if missing, expired, invalidated, unreadable, or of a
    /// namespaced key when `namespaced` is not set, or the other way round),
    /// asks `decide` what to write, and writes it (a value record of a
    /// namespaced key when `namespaced` is set). `decide` may run more than once (when the
    /// record it asked for needs eviction first); only its last answer is
    /// written. Does not wait for durability: see [`Engine::wait_durable`].
    ///
    /// With `reads_current` off (a plain set or delete, whose `decide` does
    /// not look at the value), `decide` gets `None` and the key's old record
    /// is not read unless whether it is live depends on it (a tagged or
    /// namespaced record): a blind write costs no read of the old value.
    pub(crate) fn update<'v>(
        &self,
        key: &[u8],
        namespaced: bool,
        reads_current: bool,
        mut decide: impl FnMut(Option<Current<'_>>, u64) -> Result<Action<'v>>,
    ) -> Result<Written> {
        self.check_writable()?;
        let hash = self.hasher.hash(key);
        let now = self.now_ms(); // (may write the clock mark: not under the writer lock)
        let mut room = record::encoded_len(key.len(), 0) as u64;
        for _ in 0..ROOM_TRIES {
            let mut w = self.writer_with_room(room)?;
            let found = self.locate(key, hash, false, Some(&w));
            let current = match &found {
                Lookup::Found(l) if reads_current => {
                    live_value(self, &w, l, key, now).filter(|c| c.meta.namespaced == namespaced)
                }
                _ => None,
            };
            let had_live = current.is_some() || self.had_live(&w, &found, namespaced, now);
            let action = decide(current, now)?;
            let needed = match &action {
                Action::Put { value, user_flags, tags, .. } => {
                    record::encoded_len(key.len(), value.len()) as u64
                        + if *user_flags != 0 { 4 } else { 0 }
                        + tags.len() as u64
                }
                Action::Delete => record::encoded_len(key.len(), 0) as u64,
                Action::Nothing => 0,
            };
            if needed > room && !self.has_room(needed) {
                room = needed;
                continue;
            }
            let seq = match action {
                Action::Nothing => None,
                Action::Put { value, user_flags, tags, expires_ms } => {
                    let meta = Meta { tags: &tags, namespaced };
                    Some(self.put_locked(&mut w, key, hash, found, &value, user_flags, meta, expires_ms, now, None)?)
                }
                Action::Delete => self.delete_locked(&mut w, key, hash, found, false, now)?,
            };
            drop(w);
            if seq.is_some() {
                self.nudge();
            }
            return Ok(Written { seq, had_live });
        }
        Err(Error::NoSpace { needed: room, cap: self.config.max_bytes, waited_ms: 0 })
    }

    /// Writes `items` in order under one hold of the writer lock, their
    /// records gathered in the write buffers and handed to the operating
    /// system together (one write per log, and per segment the batch fills),
    /// then waits once for durability (one fsync round in synced mode).
    /// Returns how many items found a live value of their key.
    ///
    /// Room for every record is made before the first is appended, so a
    /// batch larger than the cap fails with `NoSpace` having written
    /// nothing. A crash can leave a prefix of the batch in sequence order
    /// (the first k items, never a later one without every earlier one):
    /// recovery voids every record above a hole in the numbers.
    pub(crate) fn write_batch(&self, items: &[BatchItem<'_>]) -> Result<usize> {
        self.check_writable()?;
        if items.is_empty() {
            return Ok(0);
        }
        let total: u64 = items.iter().map(BatchItem::encoded_len).sum();
        let now = self.now_ms();
        let mut w = self.writer_with_room(total)?;
        w.begin_batch();
        let mut last = None;
        let mut had_live = 0;
        let mut result = Ok(());
        for item in items {
            let hash = self.hasher.hash(item.key);
            let found = self.locate(item.key, hash, false, Some(&w));
            had_live += usize::from(self.had_live(&w, &found, false, now));
            let written = match item.put {
                Some((value, flags, expires_ms)) => {
                    let meta = Meta { tags: item.tags, namespaced: false };
                    self.put_locked(&mut w, item.key, hash, found, value, flags, meta, expires_ms, now, None).map(Some)
                }
                None => self.delete_locked(&mut w, item.key, hash, found, false, now),
            };
            match written {
                Ok(seq) => last = seq.or(last),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // (Always ended: the records appended so far are in the index.)
        let ended = w.end_batch();
        drop(w);
        self.nudge();
        result?;
        ended?;
        if let Some(seq) = last {
            self.wait_durable(seq)?;
        }
        Ok(had_live)
    }

    /// Deletes `key` by writing a tombstone; returns whether a live value was
    /// removed. Waits for durability in synced mode.
    pub(crate) fn remove(&self, key: &[u8], namespaced: bool) -> Result<bool> {
        let done = self.update(key, namespaced, false, |_, _| Ok(Action::Delete))?;
        if let Some(seq) = done.seq {
            self.wait_durable(seq)?;
        }
        Ok(done.had_live)
    }

    /// Appends a value record of `key` (whose lookup found `found`) and
    /// points the index at it; the caller holds the writer lock `w`. The
    /// record goes to log `to`, or (`None`) to the log of the key's entry, or
    /// for a new key to probation (main if the ghost remembers it).
    #[allow(clippy::too_many_arguments)]
    fn put_locked(
        &self,
        w: &mut Writer,
        key: &[u8],
        hash: u64,
        found: Lookup,
        value: &[u8],
        user_flags: u32,
        meta: Meta<'_>,
        expires_ms: u64,
        now: u64,
        to: Option<LogKind>,
    ) -> Result<u64> {
        let existing = match found {
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
        let rec = NewRecord { kind: Kind::Value, seq: None, expires_ms, key, user_flags, meta, value };
        let len = rec.encoded_len() as u64;
        let (loc, seq) = self.append(w, log, rec, now)?;
        crate::killpoint!("set.before_index");
        self.note_append(w, loc, seq, true, len);
        self.note_tagged(w, hash, meta);
        let exp = expires_s(expires_ms);
        match existing {
            Some(old) => {
                old.seg.sub_live(old.header.record_len());
                self.index.update(hash, old.entry.loc, loc, exp, None);
            }
            None => self.index.insert(Entry { hash, loc, expires_s: exp, counter: 0 }),
        }
        Ok(seq)
    }

    /// Writes a tombstone of `key` (whose lookup found `found`) to the main
    /// log and drops its index entry; the caller holds the writer lock `w`.
    /// With `always`, writes the tombstone even when nothing readable is
    /// found. Returns the tombstone's sequence number, or `None` when there
    /// was nothing to hide.
    fn delete_locked(
        &self,
        w: &mut Writer,
        key: &[u8],
        hash: u64,
        found: Lookup,
        always: bool,
        now: u64,
    ) -> Result<Option<u64>> {
        let old = match found {
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
            _ => return Ok(None),
        };
        // Always the main log, whose tombstones count older values of both
        // logs when they are reclaimed. A key's values normally sit in one
        // log, but a damaged or hand-made directory can hold values of one
        // key in both, and a probation tombstone (which counts only probation
        // values) could then be dropped while a main-log value it hides
        // remains: the key would come back after a restart.
        let rec = NewRecord {
            kind: Kind::Tombstone,
            seq: None,
            expires_ms: 0,
            key,
            user_flags: 0,
            meta: Meta::default(),
            value: b"",
        };
        let len = rec.encoded_len() as u64;
        let (loc, seq) = self.append(w, LogKind::Main, rec, now)?;
        crate::killpoint!("delete.before_index");
        self.note_append(w, loc, seq, false, len);
        if let Some(old) = &old {
            old.seg.sub_live(old.header.record_len());
            self.index.remove(hash, old.entry.loc);
        }
        Ok(Some(seq))
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
        let tomb = record::encoded_len(key.len(), 0) as u64;
        let result = (|| {
            let mut w = self.writer_with_room(tomb)?;
            let found = self.locate(key, hash, false, Some(&w));
            if let Lookup::Found(l) = &found {
                if l.seg.log == LogKind::Main {
                    return Ok(());
                }
            }
            // (Only an intact value record of this key is copied: an entry
            // from a lying hint may point at a tombstone, which reads as
            // nothing, not as an empty value.)
            let copy = match &found {
                Lookup::Found(l) => live_value(self, &w, l, key, now)
                    .map(|c| (c.value.to_vec(), c.user_flags, c.meta.tags.to_vec(), c.meta.namespaced, c.expires_ms)),
                _ => None,
            };
            match copy {
                Some((value, flags, tags, namespaced, expires_ms)) => {
                    let meta = Meta { tags: &tags, namespaced };
                    let len = record::encoded_len(key.len(), value.len()) as u64 + 4 + tags.len() as u64;
                    if !self.has_room(len) {
                        drop(w);
                        w = self.writer_with_room(len)?;
                    }
                    let found = self.locate(key, hash, false, Some(&w));
                    self.put_locked(&mut w, key, hash, found, &value, flags, meta, expires_ms, now, Some(LogKind::Main))
                        .map(|_| ())
                }
                None => self.delete_locked(&mut w, key, hash, found, true, now).map(|_| ()),
            }
        })();
        match result {
            Ok(()) => Ok(()),
            // Out of numbers (an image holding numbers near the limit):
            // nothing can be written. Reclaim still can (it copies records
            // with their own numbers), so it must keep the probation record
            // that hides the main-log value.
            Err(Error::SequenceExhausted { .. }) => {
                self.unsettled_split.store(true, std::sync::atomic::Ordering::Release);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Bookkeeping after an append of a live value (`value`) or a tombstone:
    /// sequence bounds, live and tombstone bytes, counters. The one place a
    /// segment's accounting grows.
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

/// The live value record `l` points at, read under the writer lock `w` (so
/// that a record still in the write buffer is found too): `None` if it is
/// expired, invalidated, damaged, a tombstone, or another key's.
fn live_value<'a>(inner: &Engine, w: &'a Writer, l: &'a Located, key: &[u8], now: u64) -> Option<Current<'a>> {
    if expired(l.header.expires_ms, now) {
        return None;
    }
    let rec = l.seg.read(l.entry.loc.off).ok().or_else(|| w.read_pending(l.entry.loc))?;
    (rec.kind == Kind::Value && rec.key == key && !inner.invalidated(&rec)).then_some(Current {
        value: rec.value,
        user_flags: rec.user_flags,
        seq: rec.header.seq,
        expires_ms: rec.header.expires_ms,
        meta: Meta::of(&rec),
    })
}

impl Engine {
    /// Whether a write that found `found` finds a live value: an unexpired
    /// entry, unless its record is readable and invalidated or of the other
    /// kind of key (namespaced or not). (An unreadable one counts, as ever.)
    fn had_live(&self, w: &Writer, found: &Lookup, namespaced: bool, now: u64) -> bool {
        let Lookup::Found(l) = found else { return false };
        if expired(l.header.expires_ms, now) {
            return false;
        }
        if !namespaced && l.header.flags & (record::FLAG_TAGS | record::FLAG_NAMESPACED) == 0 {
            // (A plain record read by a plain key: no invalidation applies. No read needed.)
            return true;
        }
        match l.seg.read(l.entry.loc.off).ok().or_else(|| w.read_pending(l.entry.loc)) {
            Some(rec) if rec.kind == Kind::Value => self.visible(&rec, namespaced),
            _ => true,
        }
    }
}
