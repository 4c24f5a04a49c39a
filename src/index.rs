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
//! Layout: up to 256 shards (a [`ShardLayout`] chosen from the cache's
//! `max_bytes`: one per 4 MiB, a power of two, so a tiny cache has one and
//! the default 1 GiB has 256), each an open-addressing table with linear probing and
//! Robin Hood displacement, behind its own `RwLock`. Slots are placed by
//! "fast range" (multiply-shift) on the hash, which lets a table have any
//! capacity: a shard grows by about 1.18x when it passes 15/16 full, so
//! memory tracks the entry count closely instead of doubling, and the
//! shards' growth points are staggered (see `GROWTH`), so the index as a
//! whole does not follow one saw-tooth. Every table has its own anonymous
//! memory map, filled to its last page, so a table freed by a resize goes
//! back to the system at once instead of lingering in the allocator. Slot
//! memory while growing: 23.1-23.9 bytes per entry from about 600 000
//! entries on; below that, whole pages weigh more (up to 24.7 bytes at
//! 360 000, 25.4 at 200 000, and 1 MiB for an index of 256 one-page
//! tables). Open builds each table at 7/8 full, about 22.9 bytes per entry.
//! Readers take a shard's read lock only for the
//! probe; writers hold its write lock only to change slots, never during I/O.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::RwLock;

/// At most 256 shards: enough that readers and the writer seldom meet on
/// one, and few enough that a table of a million-entry cache spans 19 pages,
/// so that rounding tables to whole pages (see `Slots::empty`) costs little.
pub(crate) const MAX_SHARD_BITS: u32 = 8;
/// One shard per this many bytes of `max_bytes` (see [`ShardLayout::for_max_bytes`]).
const BYTES_PER_SHARD: u64 = 4 << 20;

/// How many shards an index has (a power of two, 1 to 256) and which one
/// holds a hash: its top bits. Fixed for an index's life.
///
/// Every open builds the index and every close drops it, shard by shard, and
/// recovery counts and stages records per shard: 256 of everything costs a
/// tiny cache more than its records do (the fuzz targets open caches of a
/// few dozen keys thousands of times a second). So the count follows the
/// capacity: one shard per 4 MiB of `max_bytes` (a cache that size holds
/// at most some tens of thousands of entries; a shard of them is one
/// table's worth of lock traffic), 256 from 1 GiB (the default) up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShardLayout {
    bits: u32,
}

impl ShardLayout {
    /// The most shards: what caches of at least 1 GiB get.
    #[cfg(test)]
    pub(crate) const MAX: ShardLayout = ShardLayout { bits: MAX_SHARD_BITS };

    /// The layout of a cache of `max_bytes`: the largest power of two of
    /// shards at most `max_bytes / 4 MiB`, between 1 and 256.
    pub(crate) fn for_max_bytes(max_bytes: u64) -> ShardLayout {
        let shards = (max_bytes / BYTES_PER_SHARD).max(1);
        ShardLayout { bits: shards.ilog2().min(MAX_SHARD_BITS) }
    }

    /// Number of shards.
    pub(crate) fn count(self) -> usize {
        1 << self.bits
    }

    /// Number of top hash bits that pick the shard.
    pub(crate) fn bits(self) -> u32 {
        self.bits
    }

    /// Which shard holds `hash`: its top `bits` bits.
    #[inline]
    pub(crate) fn of(self, hash: u64) -> usize {
        // (Two shifts, so that 0 bits shifts by 64 without overflow.)
        ((hash >> 1) >> (63 - self.bits)) as usize
    }
}
const MIN_CAPACITY: usize = 16;
/// A table grows when an insert would take it past 15/16 full.
const GROW_NUM: usize = 15;
const GROW_DEN: usize = 16;
/// Each growth multiplies a table's capacity by about this much (to 79%
/// full). Shard `i` of `n` takes the capacities `MIN_CAPACITY * GROWTH^(k + i/n)`,
/// so that the shards, which hold nearly the same number of entries, do not
/// all grow at once: at any entry count their loads are spread over the
/// whole range, and so is the index's memory per entry (about 23.3 bytes of
/// slots on average, against a saw-tooth between 21.3 and 25.3 bytes if
/// they grew in step).
const GROWTH: f64 = 1.18;
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

/// One slot. All-zero bytes are an empty slot, so a zeroed memory map is an empty table.
#[repr(C)]
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

/// Tables at least this large get their own memory map: every table but an
/// empty one. 1024 shards growing through heap tables up to 64 KiB left about
/// 5 bytes per entry of freed heap behind at 10 million entries, and through
/// heap tables up to 4 KiB, 20 bytes per entry at 200 000; in maps, a freed
/// table goes back at once, and with 256 shards the smallest tables (one
/// page each) take 1 MiB in all.
const TABLE_MAP_MIN_BYTES: usize = 1;
/// ... except in an index of at most this many shard bits (16 shards, caches
/// under 128 MiB), whose tables below one page stay on the heap: there the
/// heap such tables leave behind as they grow is at most about 27 KiB a
/// shard (432 KiB in all), and a small cache opened and closed often (the
/// fuzz targets, a CLI command) makes no `mmap` and `munmap` per table.
const HEAP_TABLES_MAX_SHARD_BITS: u32 = 4;
/// The granule of anonymous maps (the smallest page size of the systems keg runs on).
const PAGE_BYTES: usize = 4 << 10;

/// A table's slots: on the heap when small, in an anonymous map when large
/// (see [`crate::mem`] for why).
enum Slots {
    Heap(Vec<Slot>),
    Map(memmap2::MmapMut, usize),
}

impl Default for Slots {
    fn default() -> Self {
        Slots::Heap(Vec::new())
    }
}

impl Slots {
    /// At least `n` empty slots: a table in its own map gets as many as
    /// fill its last page (memory it holds anyway, made room for entries).
    fn empty(n: usize, heap_below_page: bool) -> Slots {
        let bytes = n * std::mem::size_of::<Slot>();
        if bytes >= TABLE_MAP_MIN_BYTES && !(heap_below_page && bytes < PAGE_BYTES) {
            let bytes = bytes.next_multiple_of(PAGE_BYTES);
            if let Ok(map) = memmap2::MmapMut::map_anon(bytes) {
                return Slots::Map(map, bytes / std::mem::size_of::<Slot>());
            }
        }
        let mut v = Vec::with_capacity(n);
        v.resize_with(n, Slot::empty);
        Slots::Heap(v)
    }
}

impl std::ops::Deref for Slots {
    type Target = [Slot];

    #[inline]
    fn deref(&self) -> &[Slot] {
        match self {
            Slots::Heap(v) => v,
            // SAFETY: the map is page-aligned, `n` slots long, and any bytes
            // (zero included) are a valid `Slot` (plain integers, repr(C)).
            Slots::Map(m, n) => unsafe { std::slice::from_raw_parts(m.as_ptr().cast::<Slot>(), *n) },
        }
    }
}

impl std::ops::DerefMut for Slots {
    #[inline]
    fn deref_mut(&mut self) -> &mut [Slot] {
        match self {
            Slots::Heap(v) => v,
            // SAFETY: as in `deref`, and the map is uniquely borrowed.
            Slots::Map(m, n) => unsafe { std::slice::from_raw_parts_mut(m.as_mut_ptr().cast::<Slot>(), *n) },
        }
    }
}

struct Table {
    slots: Slots,
    len: usize,
    /// Where this table's capacities fall between the powers of `GROWTH`
    /// (its shard over the number of shards; see `GROWTH`).
    phase: f64,
    /// The index's shard bits: the hash bits below them place entries.
    shard_bits: u32,
    /// Whether tables below one page go on the heap (see `HEAP_TABLES_MAX_SHARD_BITS`).
    heap_below_page: bool,
}

impl Table {
    #[inline]
    fn home(&self, hash: u64) -> usize {
        home_in(hash, self.shard_bits, self.slots.len())
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
        // (Both are below the length: no division needed.)
        if pos >= home {
            pos - home
        } else {
            pos + self.slots.len() - home
        }
    }

    /// Calls `f` with the position of each slot whose hash is `hash`; stops when `f` returns true.
    ///
    /// Every `get` runs this, so it takes the slice once (`Slots` is an
    /// enum) and works out a slot's displacement only when its hash differs:
    /// a slot holding `hash` has the same home, hence the displacement `dist`.
    #[inline]
    fn probe(&self, hash: u64, mut f: impl FnMut(usize) -> bool) {
        if self.len == 0 {
            return;
        }
        let slots: &[Slot] = &self.slots;
        let n = slots.len();
        let mut pos = home_in(hash, self.shard_bits, n);
        for dist in 0..n {
            let slot = &slots[pos];
            if slot.is_empty() {
                return;
            }
            let h = slot.hash();
            if h == hash {
                if f(pos) {
                    return;
                }
            } else {
                let home = home_in(h, self.shard_bits, n);
                let displacement = if pos >= home { pos - home } else { pos + n - home };
                if displacement < dist {
                    return;
                }
            }
            pos = if pos + 1 == n { 0 } else { pos + 1 };
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
        self.insert_unless_hash(e, false);
    }

    /// Inserts `e`; but when `unless_hash` is set and an entry with the same
    /// hash exists, changes nothing and returns false. (One probe instead of
    /// a lookup and then an insert: in Robin Hood order, every slot holding
    /// this hash comes before the place where the new entry goes.)
    #[inline]
    fn insert_unless_hash(&mut self, e: &Entry, unless_hash: bool) -> bool {
        if (self.len + 1) * GROW_DEN > self.slots.len() * GROW_NUM {
            self.resize(self.grown_capacity());
        }
        let mut carried = Slot::new(e);
        let mut pos = self.home(e.hash);
        let mut dist = 0;
        // Until the first swap, `carried` is `e` and nothing has changed.
        let mut checking = unless_hash;
        loop {
            if self.slots[pos].is_empty() {
                self.slots[pos] = carried;
                self.len += 1;
                return true;
            }
            if checking && self.slots[pos].hash() == e.hash {
                return false;
            }
            let d = self.displacement(pos);
            if d < dist {
                std::mem::swap(&mut carried, &mut self.slots[pos]);
                dist = d;
                checking = false;
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

    /// The capacity to grow to: the next one of this table's capacities
    /// (see `GROWTH`) at least 10% above the current one and below 15/16 full.
    fn grown_capacity(&self) -> usize {
        let need = ((self.len + 1) * GROW_DEN).div_ceil(GROW_NUM).max(self.slots.len() + self.slots.len() / 10);
        let steps = ((need as f64 / MIN_CAPACITY as f64).ln() / GROWTH.ln() - self.phase).ceil().max(0.0);
        let cap = (MIN_CAPACITY as f64 * GROWTH.powf(steps + self.phase)).ceil() as usize;
        cap.max(need)
    }

    fn shrink_if_sparse(&mut self) {
        if self.len * 4 < self.slots.len() && self.slots.len() > MIN_CAPACITY {
            self.resize((self.len * 10 / 7).max(MIN_CAPACITY));
        }
    }

    fn resize(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.slots, Slots::empty(capacity, self.heap_below_page));
        self.len = 0;
        for slot in old.iter().filter(|s| !s.is_empty()) {
            self.insert(&slot.entry());
        }
    }

    /// An empty table with room for `n` entries at 7/8 full.
    fn with_room(n: usize, layout: ShardLayout, shard: usize) -> Table {
        let table = Table::empty(layout, shard);
        Table { slots: Slots::empty(fit(n), table.heap_below_page), ..table }
    }

    /// Shard `shard`'s empty table (no slots: nothing allocated).
    fn empty(layout: ShardLayout, shard: usize) -> Table {
        let phase = shard as f64 / layout.count() as f64;
        let heap_below_page = layout.bits <= HEAP_TABLES_MAX_SHARD_BITS;
        Table { slots: Slots::default(), len: 0, phase, shard_bits: layout.bits, heap_below_page }
    }

    /// Every entry with this hash; bumps their hit counters when `bump` is set.
    #[inline]
    fn candidates(&self, hash: u64, bump: bool) -> Candidates {
        let mut out = Candidates::new();
        self.probe(hash, |pos| {
            let slot = &self.slots[pos];
            if bump {
                slot.bump();
            }
            out.push(slot.entry());
            false
        });
        out
    }

    fn update(&mut self, hash: u64, old: Loc, new: Loc, expires_s: u32, counter: Option<u8>) -> bool {
        debug_assert!(new.seg != 0 && new.off <= MAX_OFFSET);
        let Some(pos) = self.find(hash, old) else { return false };
        let slot = &mut self.slots[pos];
        let counter = counter.map(u32::from).unwrap_or(*slot.off_meta.get_mut() >> COUNTER_SHIFT);
        slot.seg = new.seg;
        *slot.off_meta.get_mut() = new.off | counter << COUNTER_SHIFT;
        slot.expires_s = expires_s;
        true
    }

    /// Removes every entry for which `keep` returns false (never shrinks); returns how many.
    fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) -> usize {
        let mut removed = 0;
        let mut pos = 0;
        while pos < self.slots.len() {
            if !self.slots[pos].is_empty() && !keep(&self.slots[pos].entry()) {
                // The backward shift may move an unvisited slot into `pos`: look again.
                self.remove_at(pos, false);
                removed += 1;
                continue;
            }
            pos += 1;
        }
        removed
    }
}

/// The home slot of `hash` in a table of `len` slots of an index of
/// `shard_bits` shard bits: fast range over the bits below the shard bits
/// (so that, within a shard, ascending hashes have ascending homes).
#[inline]
fn home_in(hash: u64, shard_bits: u32, len: usize) -> usize {
    (((hash << shard_bits) as u128 * len as u128) >> 64) as usize
}

/// Slots for `n` entries at 7/8 full.
fn fit(n: usize) -> usize {
    (n * 8).div_ceil(7).max(MIN_CAPACITY)
}

/// The sharded hash index.
pub(crate) struct Index {
    shards: Box<[RwLock<Table>]>,
    layout: ShardLayout,
    len: AtomicUsize,
}

impl Index {
    /// An empty index of `layout.count()` shards.
    pub(crate) fn new(layout: ShardLayout) -> Index {
        let shards = (0..layout.count()).map(|i| RwLock::new(Table::empty(layout, i))).collect();
        Index { shards, layout, len: AtomicUsize::new(0) }
    }

    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Table> {
        &self.shards[self.layout.of(hash)]
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Every entry with this hash; bumps their hit counters when `bump` is set.
    #[inline]
    pub(crate) fn lookup(&self, hash: u64, bump: bool) -> Candidates {
        self.shard(hash).read().unwrap_or_else(|e| e.into_inner()).candidates(hash, bump)
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
        self.shard(hash).write().unwrap_or_else(|e| e.into_inner()).update(hash, old, new, expires_s, counter)
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
            removed += table.retain(&mut keep);
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
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).slots.len() * std::mem::size_of::<Slot>())
            .sum()
    }

    /// Puts a shard built by [`ShardBuilder`] in place of what the shard
    /// held, trimming its table to 7/8 full if it was built much larger.
    pub(crate) fn install(&self, built: ShardBuilder) {
        let ShardBuilder { shard, mut table, layout } = built;
        debug_assert_eq!(layout, self.layout);
        if table.slots.len() > fit(table.len) + fit(table.len) / 8 {
            table.resize(fit(table.len));
        }
        let mut slot = self.shards[shard].write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut *slot, table);
        self.len.fetch_add(slot.len, Ordering::Relaxed);
        self.len.fetch_sub(old.len, Ordering::Relaxed);
    }
}

/// One shard's table, built without locks while open rebuilds the index:
/// open groups the records by shard, then builds each shard in turn (on
/// several threads) at its final size while its table is in cache, instead
/// of inserting 10 million entries at random into tables that keep growing.
pub(crate) struct ShardBuilder {
    shard: usize,
    table: Table,
    layout: ShardLayout,
}

impl ShardBuilder {
    /// A builder for shard `shard` of `layout` with room for `expected` entries.
    pub(crate) fn new(layout: ShardLayout, shard: usize, expected: usize) -> ShardBuilder {
        ShardBuilder { shard, table: Table::with_room(expected, layout, shard), layout }
    }

    /// Fills the empty table with `entries`, which must belong to this shard,
    /// come in ascending hash order, and have hashes no other entry has.
    ///
    /// Within a shard, ascending hashes are ascending home slots, so each
    /// entry goes straight to the first free slot from its home: the layout
    /// Robin Hood insertion in that order would give, in one sequential pass
    /// with no probing. The few entries that would run past the end go in by
    /// the ordinary insert, which wraps around.
    pub(crate) fn place_sorted(&mut self, entries: impl Iterator<Item = Entry>) {
        debug_assert_eq!(self.table.len, 0);
        let cap = self.table.slots.len();
        let mut next = 0;
        let mut spill = Vec::new();
        let mut last = None;
        for e in entries {
            debug_assert_eq!(self.layout.of(e.hash), self.shard);
            debug_assert!(last < Some(e.hash), "ascending, distinct hashes");
            last = Some(e.hash);
            let pos = self.table.home(e.hash).max(next);
            if pos >= cap || (self.table.len + 1 + spill.len()) * 8 > cap * 7 {
                spill.push(e);
                continue;
            }
            self.table.slots[pos] = Slot::new(&e);
            self.table.len += 1;
            next = pos + 1;
        }
        for e in &spill {
            self.table.insert(e);
        }
    }

    /// Every entry with this hash (which must belong to this shard).
    #[inline]
    pub(crate) fn lookup(&self, hash: u64) -> Candidates {
        debug_assert_eq!(self.layout.of(hash), self.shard);
        self.table.candidates(hash, false)
    }

    /// Adds an entry (another entry with the same hash may exist: a different key).
    #[inline]
    pub(crate) fn insert(&mut self, e: Entry) {
        debug_assert_eq!(self.layout.of(e.hash), self.shard);
        self.table.insert(&e);
    }

    /// Adds `e` if no entry has its hash and returns true; otherwise changes
    /// nothing and returns false (the caller then looks at the candidates).
    #[inline]
    pub(crate) fn insert_if_new_hash(&mut self, e: Entry) -> bool {
        debug_assert_eq!(self.layout.of(e.hash), self.shard);
        self.table.insert_unless_hash(&e, true)
    }

    /// As [`Index::update`].
    pub(crate) fn update(&mut self, hash: u64, old: Loc, new: Loc, expires_s: u32, counter: Option<u8>) -> bool {
        self.table.update(hash, old, new, expires_s, counter)
    }

    /// Removes every entry for which `keep` returns false.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Entry) -> bool) {
        self.table.retain(keep);
    }

    /// Removes the entry at `loc` (of hash `hash`), if there is one.
    pub(crate) fn remove(&mut self, hash: u64, loc: Loc) {
        if let Some(pos) = self.table.find(hash, loc) {
            self.table.remove_at(pos, false);
        }
    }
}

/// The entries a lookup found: almost always 0 or 1 (two keys share a
/// 64-bit hash about once in 2^64 pairs), so the first is kept inline and
/// the rest, if any, on the heap.
pub(crate) struct Candidates {
    first: Option<Entry>,
    rest: Vec<Entry>,
}

impl Candidates {
    fn new() -> Self {
        Candidates { first: None, rest: Vec::new() }
    }

    #[inline]
    fn push(&mut self, e: Entry) {
        if self.first.is_none() {
            self.first = Some(e);
        } else {
            self.rest.push(e);
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.first.iter().chain(self.rest.iter())
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
    fn slot_memory_stays_under_24_bytes_an_entry_while_growing() {
        // The shards grow at staggered points (see `GROWTH`) and tables fill
        // whole pages, so from about 600 000 entries on (tables of 12 pages
        // and more), the slots take at most 24 bytes per entry at every entry
        // count, not only at the bottom of a saw-tooth. (Growing in step by
        // 10/7 past 7/8 full, the figure went from 22.9 up to 28.6 bytes.)
        let index = Index::new(ShardLayout::MAX);
        let mut x: u64 = 7;
        let mut worst = (0.0f64, 0usize);
        for n in 1..=1_500_000usize {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            index.insert(e(x ^ (x >> 29), 1, 0));
            if n >= 600_000 && n % 10_000 == 0 {
                let per_entry = index.memory_bytes() as f64 / n as f64;
                if per_entry > worst.0 {
                    worst = (per_entry, n);
                }
            }
        }
        assert!(worst.0 <= 24.0, "{:.2} bytes of slots per entry at {} entries", worst.0, worst.1);
    }

    #[test]
    fn shard_count_follows_max_bytes() {
        let count = |mb: u64| ShardLayout::for_max_bytes(mb << 20).count();
        assert_eq!((count(0), count(1), count(7), count(8), count(64), count(1023)), (1, 1, 1, 2, 16, 128));
        assert_eq!((count(1024), count(1 << 40)), (256, 256));
        for layout in LAYOUTS {
            // Every hash has a shard, and the top bits pick it.
            for hash in [0, 1, u64::MAX, 1 << 63, u64::MAX >> 1, 0x9e37_79b9_7f4a_7c15] {
                assert_eq!(layout.of(hash), ((hash as u128) << layout.bits() >> 64) as usize);
            }
        }
    }

    #[test]
    fn tables_below_a_page_stay_on_the_heap_only_in_small_indexes() {
        // (An open of a small cache then maps no page per table; an index of
        // more than 16 shards maps every table, for its memory per entry.)
        let cases = [(0, 100, true), (4, 100, true), (0, 1000, false), (5, 100, false), (MAX_SHARD_BITS, 100, false)];
        for (bits, n, heap) in cases {
            let index = Index::new(ShardLayout { bits });
            for i in 0..n {
                index.insert(e((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15), 1, i));
            }
            for shard in index.shards.iter() {
                let table = shard.read().unwrap();
                if table.len > 0 {
                    let on_heap = matches!(table.slots, Slots::Heap(_));
                    assert_eq!(
                        on_heap,
                        heap,
                        "{} shards, {n} entries: a table of {} slots",
                        1 << bits,
                        table.slots.len()
                    );
                }
            }
        }
    }

    #[test]
    fn slot_is_twenty_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 20);
    }

    #[test]
    fn shard_builder_inserts_only_new_hashes_and_installs_exactly() {
        for layout in LAYOUTS {
            shard_builder_installs_exactly(layout);
        }
    }

    /// Layouts the tests run on: one shard, a few, the most.
    const LAYOUTS: [ShardLayout; 3] = [ShardLayout { bits: 0 }, ShardLayout { bits: 3 }, ShardLayout::MAX];

    /// A hash in shard `shard` of `layout` with `low` below the shard bits.
    fn in_shard(layout: ShardLayout, shard: usize, low: u64) -> u64 {
        let bits = layout.bits();
        let hash = ((shard as u64) << 1 << (63 - bits)) | (low & (u64::MAX >> bits));
        assert_eq!(layout.of(hash), shard);
        hash
    }

    fn shard_builder_installs_exactly(layout: ShardLayout) {
        let index = Index::new(layout);
        let shard = 5 % layout.count();
        let mut b = ShardBuilder::new(layout, shard, 100);
        let mut seen = std::collections::HashSet::new();
        let mut x: u64 = 99;
        for i in 0..3000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Few distinct low bits, so that many hashes repeat; all in `shard`.
            let hash = in_shard(layout, shard, (x >> 40) % 700);
            let fresh = seen.insert(hash);
            assert_eq!(b.insert_if_new_hash(e(hash, 1, i)), fresh, "insert {i}");
            if !fresh && i % 3 == 0 {
                b.insert(e(hash, 2, i));
            }
        }
        let expected: usize = b.table.len;
        index.install(b);
        assert_eq!(index.len(), expected);
        for &hash in &seen {
            assert!(index.lookup(hash, false).iter().any(|c| c.loc.seg == 1), "hash {hash:x}");
        }
    }

    #[test]
    fn placed_tables_answer_like_inserted_ones() {
        for layout in LAYOUTS {
            placed_tables_answer_like_inserted_ones_in(layout);
        }
    }

    fn placed_tables_answer_like_inserted_ones_in(layout: ShardLayout) {
        // Hashes bunched in a few home slots (long runs, wrap-around at the
        // end) and spread out; tables filled to 7/8 and far below.
        for (spread, n, room) in [(u64::MAX, 1000, 1000), (255, 900, 1000), (3, 50, 60), (u64::MAX, 7, 1000)] {
            let shard = 9 % layout.count();
            let mut x: u64 = 7 + n as u64;
            let mut hashes: Vec<u64> = (0..n)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    // A third at the top of the shard's range, so that runs
                    // reach past the table's end and wrap around.
                    let top = u64::MAX >> layout.bits();
                    let low = if x % 3 == 0 { top - ((x >> 11) & 255) } else { (x >> 11) & spread };
                    in_shard(layout, shard, low)
                })
                .collect();
            hashes.sort_unstable();
            hashes.dedup();
            let mut placed = ShardBuilder::new(layout, shard, room);
            placed.place_sorted(hashes.iter().enumerate().map(|(i, &h)| e(h, 1, i as u32)));
            let mut inserted = ShardBuilder::new(layout, shard, room);
            for (i, &h) in hashes.iter().enumerate() {
                assert!(inserted.insert_if_new_hash(e(h, 1, i as u32)));
            }
            assert_eq!(placed.table.len, hashes.len());
            for (i, &h) in hashes.iter().enumerate() {
                let got: Vec<Entry> = placed.lookup(h).iter().copied().collect();
                assert_eq!(got, vec![e(h, 1, i as u32)], "spread {spread} n {n}");
                // Still a valid Robin Hood table: inserting, updating and removing work.
                assert!(!placed.insert_if_new_hash(e(h, 2, 0)));
            }
            let index = Index::new(layout);
            index.install(placed);
            for (i, &h) in hashes.iter().enumerate().step_by(3) {
                assert!(index.remove(h, Loc { seg: 1, off: i as u32 }).is_some());
            }
            for (i, &h) in hashes.iter().enumerate() {
                assert_eq!(index.get_at(h, Loc { seg: 1, off: i as u32 }).is_some(), i % 3 != 0, "after removals");
            }
        }
    }

    #[test]
    fn agrees_with_a_hashmap_under_random_operations() {
        for layout in LAYOUTS {
            agrees_with_a_hashmap_in(layout);
        }
    }

    fn agrees_with_a_hashmap_in(layout: ShardLayout) {
        let index = Index::new(layout);
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
        let index = Index::new(ShardLayout::MAX);
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
