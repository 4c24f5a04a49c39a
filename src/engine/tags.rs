//! Tags and namespaces: the invalidation table and the members of each tag.
//!
//! An invalidation (`Cache::invalidate_tag`, `Cache::drop_namespace`) is one
//! record of kind 3 whose sequence number S says "every value record carrying
//! this tag (or in this namespace) numbered below S is gone". The engine
//! keeps, per scope and name, the highest such S (rebuilt at open from the
//! records, which sit in segments that are always scanned), and a read
//! treats an item it hides as a miss. An untagged, unnamespaced record is
//! never looked up in the table (one test of its flags byte).
//!
//! For the count `invalidate_tag` returns, the engine also remembers, per
//! tag, the hashes of the keys written with it (since open, or found by
//! open's scans); an untagged entry costs nothing there. A hash stays until
//! its tag is invalidated: the count reads each such key's current record.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

use super::rank::{self, Rank, Ranked};
use super::{expired, Engine};
use crate::error::{Error, Result};
use crate::format::record::{self, Kind, Record, Scope, FLAG_NAMESPACED, FLAG_TAGS};
use crate::log::writer::{Meta, NewRecord, Writer};
use crate::recovery::Marks;

/// The invalidations in force and the keys of each tag.
#[derive(Default)]
pub(crate) struct TagState {
    /// Tag → the highest sequence number of its invalidation records.
    tags: HashMap<Box<[u8]>, u64>,
    /// Namespace → the same.
    namespaces: HashMap<Box<[u8]>, u64>,
    /// Tag → hashes of keys written with it.
    members: HashMap<Box<[u8]>, HashSet<u64>>,
}

impl TagState {
    /// The state open rebuilt from `marks`.
    pub(crate) fn from_marks(marks: Marks) -> TagState {
        let mut state = TagState::default();
        for (scope, name, seq) in marks.invalidations {
            state.note_invalidation(scope, &name, seq);
        }
        for (tag, hash, _) in marks.tagged {
            state.members.entry(tag.into_boxed_slice()).or_default().insert(hash);
        }
        state
    }

    fn table(&self, scope: Scope) -> &HashMap<Box<[u8]>, u64> {
        match scope {
            Scope::Tag => &self.tags,
            Scope::Namespace => &self.namespaces,
        }
    }

    fn note_invalidation(&mut self, scope: Scope, name: &[u8], seq: u64) {
        let table = match scope {
            Scope::Tag => &mut self.tags,
            Scope::Namespace => &mut self.namespaces,
        };
        match table.get_mut(name) {
            Some(s) => *s = (*s).max(seq),
            None => {
                table.insert(name.into(), seq);
            }
        }
    }

    fn hides(&self, scope: Scope, name: &[u8], seq: u64) -> bool {
        self.table(scope).get(name).is_some_and(|&s| seq < s)
    }

    /// Whether no invalidation is in force.
    pub(crate) fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.namespaces.is_empty()
    }

    /// Forgets everything (a `clear` voided every record).
    pub(crate) fn clear(&mut self) {
        *self = TagState::default();
    }
}

/// Checks a tag or namespace name: 1 to [`record::MAX_NAME_LEN`] bytes.
pub(crate) fn check_name(what: &'static str, name: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > record::MAX_NAME_LEN {
        return Err(Error::BadName { what, len: name.len(), max: record::MAX_NAME_LEN });
    }
    Ok(())
}

impl Engine {
    pub(crate) fn lock_tags(&self) -> Ranked<'_, TagState> {
        rank::lock(&self.tags, Rank::Tags)
    }

    /// Whether an invalidation hides the value record `rec`. Costs one test of
    /// its flags byte for an untagged, unnamespaced record, and one atomic
    /// load for any record while no invalidation exists.
    #[inline]
    pub(crate) fn invalidated(&self, rec: &Record<'_>) -> bool {
        if rec.header.flags & (FLAG_TAGS | FLAG_NAMESPACED) == 0 || !self.any_invalidated.load(Ordering::Acquire) {
            return false;
        }
        self.invalidated_slow(rec)
    }

    #[cold]
    fn invalidated_slow(&self, rec: &Record<'_>) -> bool {
        let seq = rec.header.seq;
        let state = self.lock_tags();
        record::tags(rec.tags).any(|tag| state.hides(Scope::Tag, tag, seq))
            || (rec.namespaced()
                && record::namespace_of(rec.key).is_some_and(|ns| state.hides(Scope::Namespace, ns, seq)))
    }

    /// Whether `rec` (a value record of the key looked up) is what a reader
    /// of that key sees: a namespaced key's record for a namespace's reader
    /// (`namespaced`), a plain key's for a plain one, and not invalidated.
    #[inline]
    pub(crate) fn visible(&self, rec: &Record<'_>, namespaced: bool) -> bool {
        rec.namespaced() == namespaced && !self.invalidated(rec)
    }

    /// Notes that the value record of `hash` just written under the writer
    /// lock `w` carries the tags of `meta`.
    pub(crate) fn note_tagged(&self, w: &Writer, hash: u64, meta: Meta<'_>) {
        let _ = w;
        if meta.tags.is_empty() {
            return;
        }
        let mut state = self.lock_tags();
        for tag in record::tags(meta.tags) {
            match state.members.get_mut(tag) {
                Some(set) => {
                    set.insert(hash);
                }
                None => {
                    state.members.insert(tag.into(), HashSet::from([hash]));
                }
            }
        }
    }

    /// Appends an invalidation record of `scope` `name` and puts it in force,
    /// under the writer lock, then waits for durability as a write does.
    /// Returns how many entries it hid that were live just before (for a
    /// tag: counted over the keys written with it; for a namespace: 0, not
    /// counted).
    pub(crate) fn invalidate(&self, scope: Scope, name: &[u8]) -> Result<usize> {
        self.check_writable()?;
        let key = record::invalidation_key(scope, name);
        let now = self.now_ms();
        let len = record::encoded_len(key.len(), 0) as u64;
        let mut w = self.writer_with_room(len)?;
        let rec = NewRecord {
            kind: Kind::Invalidation,
            seq: None,
            expires_ms: 0,
            key: &key,
            user_flags: 0,
            meta: Meta::default(),
            value: b"",
        };
        // Main log: its reclaim counts older values of both logs.
        let (loc, seq) = self.append(&mut w, crate::format::segment::LogKind::Main, rec, now)?;
        crate::killpoint!("invalidate.before_table");
        self.note_append(&w, loc, seq, false, len);
        // Counted before the table changes (so that only entries live until
        // now count), under the writer lock (so that no write comes between).
        let members = match scope {
            Scope::Tag => self.lock_tags().members.remove(name).unwrap_or_default(),
            Scope::Namespace => HashSet::new(),
        };
        let mut count = 0;
        for hash in members {
            // (Copied out: the shard's lock is not held while the tag lock is taken.)
            let entries: Vec<_> = self.index.lookup(hash, false).iter().copied().collect();
            for e in entries {
                let Some(seg) = self.segments.get(e.loc.seg) else { continue };
                let Some(r) = seg.read(e.loc.off).ok().or_else(|| w.read_pending(e.loc)) else { continue };
                let carries = record::tags(r.tags).any(|t| t == name);
                if r.kind == Kind::Value
                    && carries
                    && r.header.seq < seq
                    && !expired(r.header.expires_ms, now)
                    && !self.invalidated(&r)
                {
                    count += 1;
                }
            }
        }
        self.lock_tags().note_invalidation(scope, name, seq);
        self.any_invalidated.store(true, Ordering::Release);
        drop(w);
        self.nudge();
        self.wait_durable(seq)?;
        Ok(count)
    }
}
