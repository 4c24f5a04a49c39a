//! Exact, object-granular, byte-capacity LRU and FIFO cache simulators.
//!
//! These are *reference* policies: a replay harness feeds the same request
//! stream to them and to the cache under test and prints their miss ratios
//! side by side. The file is self-contained (std only) so it can be copied
//! into another crate as a single module.
//!
//! # Model
//!
//! * Every request is a lookup (`get`) of `key` whose value is `size` bytes.
//!   On a miss the value is inserted (demand fill).
//! * Each resident object is charged `size + per_entry_overhead` bytes
//!   against `capacity` bytes. With `per_entry_overhead == 0` only value
//!   bytes count, which is the accounting used by libCacheSim and by most
//!   published miss-ratio numbers. A non-zero overhead lets the reference
//!   policies pay the same per-entry cost as an on-disk cache that stores a
//!   record header and the key next to each value.
//! * An object whose charge exceeds the whole capacity is a miss and is not
//!   inserted (nothing is evicted for it).
//! * A key is assumed to keep its size. If a hit arrives with a different
//!   size the request is still a hit and the stored charge is left unchanged
//!   (the caller decides what a size change means; the traces we replay keep
//!   a key's first size).
//! * Eviction makes room just before an insertion: the victim is removed
//!   while `used + charge > capacity`.
//!
//! LRU: a hit moves the object to the most-recently-used end; the victim is
//! the least recently used object.
//! FIFO: a hit changes nothing; the victim is the oldest inserted object.
//!
//! Both run in O(1) per request and allocate nothing per request once their
//! tables have grown to the working set.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Hit/miss tallies of one simulated cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Lookups seen.
    pub requests: u64,
    /// Lookups that missed (includes objects too large to insert).
    pub misses: u64,
    /// Sum of the value sizes of all lookups.
    pub requested_bytes: u64,
    /// Sum of the value sizes of the lookups that missed.
    pub missed_bytes: u64,
}

impl Counts {
    /// Misses / requests (0 when nothing was requested).
    pub fn miss_ratio(&self) -> f64 {
        ratio(self.misses, self.requests)
    }

    /// Missed value bytes / requested value bytes (0 when nothing was requested).
    pub fn byte_miss_ratio(&self) -> f64 {
        ratio(self.missed_bytes, self.requested_bytes)
    }

    #[inline]
    fn record(&mut self, size: u64, hit: bool) {
        self.requests += 1;
        self.requested_bytes += size;
        if !hit {
            self.misses += 1;
            self.missed_bytes += size;
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A small, fast hasher for `u64` keys (the 64-bit finalizer of MurmurHash3).
/// Keys may be sequential block numbers, so they must be mixed well in both
/// the low bits (bucket index) and the high bits (SwissTable tag).
#[derive(Default, Clone, Copy)]
pub struct U64Hasher(u64);

impl Hasher for U64Hasher {
    #[inline]
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        x
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only used if someone hashes a non-u64 key; fold the bytes in.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

/// `HashMap` keyed by `u64` with [`U64Hasher`].
pub type U64Map<V> = HashMap<u64, V, BuildHasherDefault<U64Hasher>>;

/// Marks "no node" in the LRU list.
const NIL: u32 = u32::MAX;

/// One resident object of the LRU list, stored in a slab and linked by index.
#[derive(Clone, Copy)]
struct LruNode {
    key: u64,
    charge: u64,
    /// Towards the most recently used end.
    newer: u32,
    /// Towards the least recently used end.
    older: u32,
}

/// Exact byte-capacity LRU.
pub struct Lru {
    capacity: u64,
    overhead: u64,
    used: u64,
    /// key -> slab index.
    index: U64Map<u32>,
    slab: Vec<LruNode>,
    /// Slab slots released by evictions, reused before the slab grows.
    vacant: Vec<u32>,
    /// Most recently used node.
    newest: u32,
    /// Least recently used node (next victim).
    oldest: u32,
    counts: Counts,
}

impl Lru {
    /// An empty LRU of `capacity` bytes charging `per_entry_overhead` extra
    /// bytes for each resident object.
    pub fn new(capacity: u64, per_entry_overhead: u64) -> Self {
        Lru {
            capacity,
            overhead: per_entry_overhead,
            used: 0,
            index: U64Map::default(),
            slab: Vec::new(),
            vacant: Vec::new(),
            newest: NIL,
            oldest: NIL,
            counts: Counts::default(),
        }
    }

    /// Looks `key` up; on a miss inserts it. Returns whether it was a hit.
    pub fn get(&mut self, key: u64, size: u64) -> bool {
        if let Some(&i) = self.index.get(&key) {
            self.unlink(i);
            self.push_newest(i);
            self.counts.record(size, true);
            return true;
        }
        self.counts.record(size, false);

        let charge = size + self.overhead;
        if charge > self.capacity {
            return false; // can never fit: miss, not inserted
        }
        while self.used + charge > self.capacity {
            self.evict_oldest();
        }
        let node = LruNode { key, charge, newer: NIL, older: NIL };
        let i = match self.vacant.pop() {
            Some(i) => {
                self.slab[i as usize] = node;
                i
            }
            None => {
                self.slab.push(node);
                (self.slab.len() - 1) as u32
            }
        };
        self.push_newest(i);
        self.index.insert(key, i);
        self.used += charge;
        false
    }

    /// Whether `key` is resident (does not count as a request).
    pub fn contains(&self, key: u64) -> bool {
        self.index.contains_key(&key)
    }

    /// Tallies so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Number of resident objects.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no object is resident.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Bytes charged by resident objects (values plus overhead).
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    fn evict_oldest(&mut self) {
        let i = self.oldest;
        debug_assert!(i != NIL, "evicting from an empty LRU");
        self.unlink(i);
        let node = self.slab[i as usize];
        self.index.remove(&node.key);
        self.used -= node.charge;
        self.vacant.push(i);
    }

    /// Detaches node `i` from the list (it stays in the slab).
    fn unlink(&mut self, i: u32) {
        let LruNode { newer, older, .. } = self.slab[i as usize];
        if newer == NIL {
            self.newest = older;
        } else {
            self.slab[newer as usize].older = older;
        }
        if older == NIL {
            self.oldest = newer;
        } else {
            self.slab[older as usize].newer = newer;
        }
    }

    /// Links detached node `i` in at the most recently used end.
    fn push_newest(&mut self, i: u32) {
        let prev_newest = self.newest;
        {
            let n = &mut self.slab[i as usize];
            n.newer = NIL;
            n.older = prev_newest;
        }
        if prev_newest == NIL {
            self.oldest = i;
        } else {
            self.slab[prev_newest as usize].newer = i;
        }
        self.newest = i;
    }
}

/// Exact byte-capacity FIFO.
pub struct Fifo {
    capacity: u64,
    overhead: u64,
    used: u64,
    /// Resident keys (the value is unused; the queue holds the charge).
    resident: U64Map<()>,
    /// Insertion order, oldest at the front: (key, charge).
    queue: VecDeque<(u64, u64)>,
    counts: Counts,
}

impl Fifo {
    /// An empty FIFO of `capacity` bytes charging `per_entry_overhead` extra
    /// bytes for each resident object.
    pub fn new(capacity: u64, per_entry_overhead: u64) -> Self {
        Fifo {
            capacity,
            overhead: per_entry_overhead,
            used: 0,
            resident: U64Map::default(),
            queue: VecDeque::new(),
            counts: Counts::default(),
        }
    }

    /// Looks `key` up; on a miss inserts it. Returns whether it was a hit.
    pub fn get(&mut self, key: u64, size: u64) -> bool {
        if self.resident.contains_key(&key) {
            self.counts.record(size, true);
            return true;
        }
        self.counts.record(size, false);

        let charge = size + self.overhead;
        if charge > self.capacity {
            return false; // can never fit: miss, not inserted
        }
        while self.used + charge > self.capacity {
            let (victim, victim_charge) = self.queue.pop_front().expect("evicting from an empty FIFO");
            self.resident.remove(&victim);
            self.used -= victim_charge;
        }
        self.queue.push_back((key, charge));
        self.resident.insert(key, ());
        self.used += charge;
        false
    }

    /// Whether `key` is resident (does not count as a request).
    pub fn contains(&self, key: u64) -> bool {
        self.resident.contains_key(&key)
    }

    /// Tallies so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Number of resident objects.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no object is resident.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes charged by resident objects (values plus overhead).
    pub fn used_bytes(&self) -> u64 {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_used() {
        let mut c = Lru::new(30, 0);
        assert!(!c.get(1, 10));
        assert!(!c.get(2, 10));
        assert!(!c.get(3, 10));
        assert!(c.get(1, 10)); // 1 is now newest; 2 is oldest
        assert!(!c.get(4, 10)); // evicts 2
        assert!(c.contains(1) && !c.contains(2) && c.contains(3) && c.contains(4));
        assert_eq!(c.used_bytes(), 30);
        assert_eq!(c.counts().misses, 4);
        assert_eq!(c.counts().requests, 5);
    }

    #[test]
    fn fifo_ignores_hits_for_order() {
        let mut c = Fifo::new(30, 0);
        c.get(1, 10);
        c.get(2, 10);
        c.get(3, 10);
        assert!(c.get(1, 10));
        c.get(4, 10); // evicts 1 despite the hit
        assert!(!c.contains(1) && c.contains(2) && c.contains(4));
    }

    #[test]
    fn oversized_object_is_a_miss_and_not_inserted() {
        let mut l = Lru::new(100, 0);
        let mut f = Fifo::new(100, 0);
        l.get(7, 50);
        f.get(7, 50);
        assert!(!l.get(1, 101));
        assert!(!f.get(1, 101));
        assert!(l.contains(7) && f.contains(7)); // nothing evicted for it
        assert!(!l.contains(1) && !f.contains(1));
    }

    #[test]
    fn overhead_is_charged_per_entry() {
        let mut c = Lru::new(100, 36);
        c.get(1, 10);
        c.get(2, 10);
        assert_eq!(c.used_bytes(), 92);
        c.get(3, 10); // 92 + 46 > 100: evicts 1
        assert!(!c.contains(1));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn evicts_several_small_objects_for_a_large_one() {
        let mut c = Lru::new(40, 0);
        for k in 0..4 {
            c.get(k, 10);
        }
        c.get(9, 25); // needs 3 victims
        assert_eq!(c.len(), 2);
        assert!(c.contains(3) && c.contains(9));
        assert_eq!(c.used_bytes(), 35);
    }

    #[test]
    fn lru_slab_slots_are_reused() {
        let mut c = Lru::new(20, 0);
        for k in 0..1000 {
            c.get(k, 10);
        }
        assert_eq!(c.len(), 2);
        assert!(c.slab.len() <= 3);
    }
}
