//! The ghost set: key hashes recently evicted from the probation log.
//!
//! A key that comes back soon after being evicted from probation skips
//! probation and goes straight to the main log. Exact membership is not needed
//! (a false positive only admits one key to the main log early), so the set is
//! two rotating Bloom filters: inserts go to the current one; when it has
//! taken `capacity / 2` keys, the older one is dropped and a fresh one started.
//! A key is remembered for between `capacity / 2` and `capacity` later
//! evictions, in about 1.25 bytes per remembered key (10 bits, 7 probes:
//! under 1% false positives).

const BITS_PER_KEY: usize = 10;
const PROBES: u32 = 7;
const MIN_CAPACITY: usize = 1024;

struct Bloom {
    bits: Vec<u64>,
    count: usize,
}

impl Bloom {
    fn new(keys: usize) -> Bloom {
        Bloom { bits: vec![0; (keys * BITS_PER_KEY).div_ceil(64).max(1)], count: 0 }
    }

    fn positions(n_bits: usize, hash: u64) -> impl Iterator<Item = usize> {
        let n = n_bits as u64;
        // Double hashing from two independent halves of the key hash.
        let h1 = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h2 = hash.rotate_left(29).wrapping_mul(0xc2b2_ae3d_27d4_eb4f) | 1;
        (0..PROBES as u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % n) as usize)
    }

    fn insert(&mut self, hash: u64) {
        for p in Bloom::positions(self.bits.len() * 64, hash) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
        self.count += 1;
    }

    fn contains(&self, hash: u64) -> bool {
        Bloom::positions(self.bits.len() * 64, hash).all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// The bounded ghost set.
pub(crate) struct Ghost {
    current: Bloom,
    previous: Bloom,
    capacity: usize,
}

impl Ghost {
    pub(crate) fn new(capacity: usize) -> Ghost {
        let capacity = capacity.max(MIN_CAPACITY);
        Ghost { current: Bloom::new(capacity / 2), previous: Bloom::new(1), capacity }
    }

    /// Remembers `hash`; `capacity` is the number of keys the set should cover
    /// from the next rotation on (about the number of entries in the cache).
    pub(crate) fn insert(&mut self, hash: u64, capacity: usize) {
        if self.current.count >= self.capacity / 2 {
            self.capacity = capacity.max(MIN_CAPACITY);
            self.previous = std::mem::replace(&mut self.current, Bloom::new(self.capacity / 2));
        }
        self.current.insert(hash);
    }

    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.current.contains(hash) || self.previous.contains(hash)
    }

    /// Keys inserted and still remembered.
    pub(crate) fn len(&self) -> u64 {
        (self.current.count + self.previous.count) as u64
    }

    /// Bytes of filter memory.
    pub(crate) fn memory_bytes(&self) -> u64 {
        ((self.current.bits.len() + self.previous.bits.len()) * 8) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())
    }

    #[test]
    fn remembers_recent_forgets_old_and_stays_bounded() {
        let mut g = Ghost::new(10_000);
        for i in 0..4_000 {
            g.insert(h(i), 10_000);
        }
        assert!((0..4_000).all(|i| g.contains(h(i))));
        let false_positives = (1_000_000..1_100_000).filter(|&i| g.contains(h(i))).count();
        assert!(false_positives < 2_000, "{false_positives} false positives in 100000");
        for i in 4_000..40_000 {
            g.insert(h(i), 10_000);
        }
        assert!((0..4_000).filter(|&i| g.contains(h(i))).count() < 200);
        assert!(g.len() <= 10_000);
        assert!(g.memory_bytes() <= 10_000 * 10 / 8 + 64);
    }
}
