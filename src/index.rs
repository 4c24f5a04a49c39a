//! The in-memory index: key hash → record location, expiry and hit counter.
//!
//! The index never stores keys. Each entry is 20 bytes:
//!
//! | field      | bits | meaning |
//! |------------|-----:|---------|
//! | hash       | 64   | xxh3-64 of the key |
//! | segment id | 32   | segment holding the record (0 marks an empty slot) |
//! | offset     | 30   | record offset within the segment (segments are at most 1 GiB) |
//! | counter    | 2    | saturating hit counter used by eviction |
//! | expiry     | 32   | Unix seconds, rounded up; 0 = never |
//!
//! A lookup returns every location whose hash matches and the caller checks
//! the key stored in the record, so two keys with the same hash both live
//! in the index and are told apart on read.
//!
//! Layout: 1024 shards, each an open-addressing table with linear probing and
//! Robin Hood displacement, behind its own `RwLock`. Slots are placed by
//! "fast range" (multiply-shift) on the hash, which lets a table have any
//! capacity: a shard grows by 10/7 when it passes 7/8 full, so memory tracks
//! the entry count closely instead of doubling (about 20 / 0.79 ≈ 25 bytes per
//! entry on average). Readers take a shard's read lock only for the probe;
//! writers hold its write lock only to change slots, never during I/O.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::RwLock;

const SHARD_BITS: u32 = 10;
const SHARDS: usize = 1 << SHARD_BITS;
const MIN_CAPACITY: usize = 16;
/// Largest segment offset the index can hold (segments are at most 1 GiB).
pub(crate) const MAX_OFFSET: u32 = (1 << 30) - 1;
const OFFSET_MASK: u32 = MAX_OFFSET;
const COUNTER_SHIFT: u32 = 30;
/// Highest value of an entry's hit counter.
pub(crate) const COUNTER_MAX: u8 = 3;

/// Where a record lives: segment id and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Loc {
    pub seg: u32,
    pub off: u32,
}

/// One index entry as callers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub hash: u64,
    pub loc: Loc,
    pub expires_s: u32,
    pub counter: u8,
}

struct Slot {
    hash_lo: u32,
    hash_hi: u32,
    seg: u32,
    off_meta: AtomicU32,
    expires_s: u32,
}

impl Slot {
    fn empty() -> Slot {
        Slot { hash_lo: 0, hash_hi: 0, seg: 0, off_meta: AtomicU32::new(0), expires_s: 0 }
    }

    fn new(e: &Entry) -> Slot {
        debug_assert!(e.loc.seg != 0 && e.loc.off <= MAX_OFFSET && e.counter <= COUNTER_MAX);
        Slot {
            hash_lo: e.hash as u32,
            hash_hi: (e.hash >> 32) as u32,
            seg: e.loc.seg,
            off_meta: AtomicU32::new(e.loc.off | (e.counter as u32) << COUNTER_SHIFT),
            expires_s: e.expires_s,
        }
    }

    #[inline]
    fn is_empty(&self) -> bool {
        self.seg == 0
    }

    #[inline]
    fn hash(&self) -> u64 {
        (self.hash_hi as u64) << 32 | self.hash_lo as u64
    }

    #[inline]
    fn loc(&self) -> Loc {
        Loc { seg: self.seg, off: self.off_meta.load(Ordering::Relaxed) & OFFSET_MASK }
    }

    fn entry(&self) -> Entry {
        let meta = self.off_meta.load(Ordering::Relaxed);
        Entry {
            hash: self.hash(),
            loc: Loc { seg: self.seg, off: meta & OFFSET_MASK },
            expires_s: self.expires_s,
            counter: (meta >> COUNTER_SHIFT) as u8,
        }
    }

    /// Saturating counter increment; lossy under races, which a hit counter tolerates.
    #[inline]
    fn bump(&self) {
        let meta = self.off_meta.load(Ordering::Relaxed);
        if meta >> COUNTER_SHIFT < COUNTER_MAX as u32 {
            self.off_meta.store(meta + (1 << COUNTER_SHIFT), Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    len: usize,
}

impl Table {
    #[inline]
    fn home(&self, hash: u64) -> usize {
        // Fast range over the bits below the shard bits.
        ((hash.rotate_left(SHARD_BITS) as u128 * self.slots.len() as u128) >> 64) as usize
    }

    #[inline]
    fn next(&self, pos: usize) -> usize {
        if pos + 1 == self.slots.len() {
            0
        } else {
            pos + 1
        }
    }

    #[inline]
    fn displacement(&self, pos: usize) -> usize {
        let home = self.home(self.slots[pos].hash());
        (pos + self.slots.len() - home) % self.slots.len()
    }

    /// Calls `f` with the position of each slot whose hash is `hash`; stops when `f` returns true.
    #[inline]
    fn probe(&self, hash: u64, mut f: impl FnMut(usize) -> bool) {
        if self.len == 0 {
            return;
        }
        let mut pos = self.home(hash);
        for dist in 0..self.slots.len() {
            let slot = &self.slots[pos];
            if slot.is_empty() || self.displacement(pos) < dist {
                return;
            }
            if slot.hash() == hash && f(pos) {
                return;
            }
            pos = self.next(pos);
        }
    }

    fn find(&self, hash: u64, loc: Loc) -> Option<usize> {
        let mut found = None;
        self.probe(hash, |pos| {
            if self.slots[pos].loc() == loc {
                found = Some(pos);
            }
            found.is_some()
        });
        found
    }

    fn insert(&mut self, e: &Entry) {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.resize(((self.len + 1) * 10 / 7).max(MIN_CAPACITY));
        }
        let mut carried = Slot::new(e);
        let mut pos = self.home(e.hash);
        let mut dist = 0;
        loop {
            if self.slots[pos].is_empty() {
                self.slots[pos] = carried;
                self.len += 1;
                return;
            }
            let d = self.displacement(pos);
            if d < dist {
                std::mem::swap(&mut carried, &mut self.slots[pos]);
                dist = d;
            }
            pos = self.next(pos);
            dist += 1;
        }
    }

    fn remove_at(&mut self, mut pos: usize, shrink: bool) -> Entry {
        let removed = self.slots[pos].entry();
        loop {
            let next = self.next(pos);
            if self.slots[next].is_empty() || self.displacement(next) == 0 {
                self.slots[pos] = Slot::empty();
                break;
            }
            self.slots.swap(pos, next);
            pos = next;
        }
        self.len -= 1;
        if shrink {
            self.shrink_if_sparse();
        }
        removed
    }

    fn shrink_if_sparse(&mut self) {
        if self.len * 4 < self.slots.len() && self.slots.len() > MIN_CAPACITY {
            self.resize((self.len * 10 / 7).max(MIN_CAPACITY));
        }
    }

    fn resize(&mut self, capacity: usize) {
        let old = std::mem::take(&mut self.slots);
        self.slots = Vec::with_capacity(capacity);
        self.slots.resize_with(capacity, Slot::empty);
        self.len = 0;
        for slot in old.into_iter().filter(|s| !s.is_empty()) {
            self.insert(&slot.entry());
        }
    }
}

/// The sharded hash index.
pub(crate) struct Index {
    shards: Box<[RwLock<Table>]>,
    len: AtomicUsize,
}

impl Index {
    pub(crate) fn new() -> Index {
        Index { shards: (0..SHARDS).map(|_| RwLock::new(Table::default())).collect(), len: AtomicUsize::new(0) }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Table> {
        &self.shards[(hash >> (64 - SHARD_BITS)) as usize]
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Every entry with this hash; bumps their hit counters when `bump` is set.
    #[inline]
    pub(crate) fn lookup(&self, hash: u64, bump: bool) -> Candidates {
        let mut out = Candidates::new();
        let table = self.shard(hash).read().unwrap_or_else(|e| e.into_inner());
        table.probe(hash, |pos| {
            let slot = &table.slots[pos];
            if bump {
                slot.bump();
            }
            out.push(slot.entry());
            false
        });
        out
    }

    /// The entry at exactly this location, if the index points there.
    pub(crate) fn get_at(&self, hash: u64, loc: Loc) -> Option<Entry> {
        let table = self.shard(hash).read().unwrap_or_else(|e| e.into_inner());
        table.find(hash, loc).map(|pos| table.slots[pos].entry())
    }

    /// Adds an entry (another entry with the same hash may exist: a different key).
    pub(crate) fn insert(&self, e: Entry) {
        self.shard(e.hash).write().unwrap_or_else(|e| e.into_inner()).insert(&e);
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    /// Points the entry at `old` to `new` instead; returns false when no entry is at `old`.
    pub(crate) fn update(&self, hash: u64, old: Loc, new: Loc, expires_s: u32, counter: Option<u8>) -> bool {
        debug_assert!(new.seg != 0 && new.off <= MAX_OFFSET);
        let mut table = self.shard(hash).write().unwrap_or_else(|e| e.into_inner());
        let Some(pos) = table.find(hash, old) else { return false };
        let slot = &mut table.slots[pos];
        let counter = counter.map(u32::from).unwrap_or(*slot.off_meta.get_mut() >> COUNTER_SHIFT);
        slot.seg = new.seg;
        *slot.off_meta.get_mut() = new.off | counter << COUNTER_SHIFT;
        slot.expires_s = expires_s;
        true
    }

    /// Removes the entry at `loc`; returns it if it was there.
    pub(crate) fn remove(&self, hash: u64, loc: Loc) -> Option<Entry> {
        let mut table = self.shard(hash).write().unwrap_or_else(|e| e.into_inner());
        let pos = table.find(hash, loc)?;
        let e = table.remove_at(pos, true);
        self.len.fetch_sub(1, Ordering::Relaxed);
        Some(e)
    }

    /// Removes every entry for which `f` returns true; returns how many.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&Entry) -> bool) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut table = shard.write().unwrap_or_else(|e| e.into_inner());
            let mut pos = 0;
            while pos < table.slots.len() {
                if !table.slots[pos].is_empty() && !keep(&table.slots[pos].entry()) {
                    // The backward shift may move an unvisited slot into `pos`: look again.
                    table.remove_at(pos, false);
                    removed += 1;
                    continue;
                }
                pos += 1;
            }
            table.shrink_if_sparse();
        }
        self.len.fetch_sub(removed, Ordering::Relaxed);
        removed
    }

    /// Calls `f` on every entry (shard by shard, each under its read lock).
    #[allow(dead_code)] // for tools that walk the index
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Entry)) {
        for shard in self.shards.iter() {
            let table = shard.read().unwrap_or_else(|e| e.into_inner());
            table.slots.iter().filter(|s| !s.is_empty()).for_each(|s| f(&s.entry()));
        }
    }

    /// Bytes of slot memory the index holds (capacity, not just entries).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).slots.capacity() * std::mem::size_of::<Slot>())
            .sum()
    }
}

/// The entries a lookup found: almost always 0 or 1, so two are kept inline.
pub(crate) struct Candidates {
    inline: [Option<Entry>; 2],
    spill: Vec<Entry>,
}

impl Candidates {
    fn new() -> Self {
        Candidates { inline: [None, None], spill: Vec::new() }
    }

    fn push(&mut self, e: Entry) {
        match self.inline.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(e),
            None => self.spill.push(e),
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.inline.iter().flatten().chain(self.spill.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn e(hash: u64, seg: u32, off: u32) -> Entry {
        Entry { hash, loc: Loc { seg, off }, expires_s: 0, counter: 0 }
    }

    #[test]
    fn slot_is_twenty_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 20);
    }

    #[test]
    fn agrees_with_a_hashmap_under_random_operations() {
        let index = Index::new();
        let mut model: HashMap<(u64, Loc), ()> = HashMap::new();
        let mut x: u64 = 12345;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..200_000u32 {
            // Few distinct hashes, many with the top bits equal, to exercise collisions and wrap-around.
            let hash = (rnd() % 5000).wrapping_mul(0x9e37_79b9_7f4a_7c15) | if i % 7 == 0 { 0 } else { 1 };
            let loc = Loc { seg: 1 + (rnd() % 3) as u32, off: (rnd() % 4) as u32 };
            match rnd() % 3 {
                0 | 1 => {
                    if let std::collections::hash_map::Entry::Vacant(v) = model.entry((hash, loc)) {
                        v.insert(());
                        index.insert(e(hash, loc.seg, loc.off));
                    }
                }
                _ => assert_eq!(index.remove(hash, loc).is_some(), model.remove(&(hash, loc)).is_some()),
            }
            if i % 997 == 0 {
                assert_eq!(index.len(), model.len());
                for &(h, l) in model.keys().take(50) {
                    assert!(index.get_at(h, l).is_some());
                    assert!(index.lookup(h, false).iter().any(|c| c.loc == l));
                }
            }
        }
        let mut all = Vec::new();
        index.for_each(|e| all.push((e.hash, e.loc)));
        all.sort();
        let mut want: Vec<_> = model.keys().copied().collect();
        want.sort();
        assert_eq!(all, want);
        let removed = index.retain(|e| e.loc.seg != 2);
        assert_eq!(removed, want.iter().filter(|(_, l)| l.seg == 2).count());
        assert_eq!(index.len(), want.len() - removed);
    }

    #[test]
    fn same_hash_entries_all_come_back_and_counters_saturate() {
        let index = Index::new();
        for off in 0..10 {
            index.insert(e(42, 1, off));
        }
        assert_eq!(index.lookup(42, false).iter().count(), 10);
        for _ in 0..10 {
            index.lookup(42, true);
        }
        assert!(index.lookup(42, false).iter().all(|e| e.counter == COUNTER_MAX));
        assert!(index.update(42, Loc { seg: 1, off: 3 }, Loc { seg: 9, off: 9 }, 77, Some(0)));
        let moved = index.get_at(42, Loc { seg: 9, off: 9 }).unwrap();
        assert_eq!((moved.expires_s, moved.counter), (77, 0));
    }
}
