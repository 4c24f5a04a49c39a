//! The ghost set: key hashes recently evicted from the probation log.
//!
//! A key that comes back soon after being evicted from probation skips
//! probation and goes straight to the main log. The set remembers keys whose
//! values add up to about 0.9 × the cache's capacity (the S3-FIFO setting; a
//! byte budget beats an entry count when small keys are evicted more often).
//! Exact membership is not needed — a false positive only admits one key to
//! the main log early — so the set is four rotating Bloom filters: inserts go
//! to the newest; when it has taken a quarter of the byte budget (or as many
//! keys as it was sized for), the oldest is dropped and a fresh one started.
//! A key is remembered for between three quarters and all of the budget, in
//! about 1.25 bytes per key (10 bits, 7 probes: under 1% false positives).

const BITS_PER_KEY: usize = 10;
const PROBES: u64 = 7;
const MIN_KEYS: usize = 1024;
/// Most keys one filter is sized for (bounds a filter at 40 MiB).
const MAX_KEYS: usize = 1 << 25;

struct Bloom {
    bits: Vec<u64>,
    /// Keys the filter was sized for.
    keys: usize,
    count: usize,
    bytes: u64,
}

impl Bloom {
    fn new(keys: usize) -> Bloom {
        let keys = keys.clamp(MIN_KEYS, MAX_KEYS);
        Bloom { bits: vec![0; (keys * BITS_PER_KEY).div_ceil(64)], keys, count: 0, bytes: 0 }
    }

    fn positions(n_bits: usize, hash: u64) -> impl Iterator<Item = usize> {
        let n = n_bits as u64;
        // Double hashing from two mixes of the key hash.
        let h1 = hash.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h2 = hash.rotate_left(29).wrapping_mul(0xc2b2_ae3d_27d4_eb4f) | 1;
        (0..PROBES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % n) as usize)
    }

    fn insert(&mut self, hash: u64, bytes: u64) {
        for p in Bloom::positions(self.bits.len() * 64, hash) {
            self.bits[p / 64] |= 1 << (p % 64);
        }
        self.count += 1;
        self.bytes += bytes;
    }

    fn contains(&self, hash: u64) -> bool {
        self.count > 0 && Bloom::positions(self.bits.len() * 64, hash).all(|p| self.bits[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// Filters the set rotates through.
const GENERATIONS: usize = 4;

/// The bounded ghost set.
pub(crate) struct Ghost {
    /// Oldest first; inserts go to the last.
    filters: std::collections::VecDeque<Bloom>,
    /// Value bytes the set should remember.
    budget_bytes: u64,
}

impl Ghost {
    /// A ghost that remembers evicted keys worth `budget_bytes` of values.
    pub(crate) fn new(budget_bytes: u64) -> Ghost {
        Ghost { filters: [Bloom::new(MIN_KEYS)].into(), budget_bytes }
    }

    /// Remembers `hash`, the key of an evicted entry of `bytes` bytes.
    pub(crate) fn insert(&mut self, hash: u64, bytes: u64) {
        let share = self.budget_bytes / GENERATIONS as u64;
        let newest = self.filters.back().expect("at least one filter");
        if newest.bytes >= share || newest.count >= newest.keys {
            // Size the next filter for its share at the average size seen so far.
            let avg = (newest.bytes / newest.count.max(1) as u64).max(1);
            let keys = (share / avg) as usize;
            if self.filters.len() == GENERATIONS {
                self.filters.pop_front();
            }
            self.filters.push_back(Bloom::new(keys + keys / 4));
        }
        self.filters.back_mut().expect("at least one filter").insert(hash, bytes);
    }

    pub(crate) fn contains(&self, hash: u64) -> bool {
        self.filters.iter().any(|f| f.contains(hash))
    }

    /// Keys inserted and still remembered.
    pub(crate) fn len(&self) -> u64 {
        self.filters.iter().map(|f| f.count as u64).sum()
    }

    /// Bytes of filter memory.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.filters.iter().map(|f| f.bits.len() as u64 * 8).sum()
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
        // Budget: 10,000 keys of 100 bytes.
        let mut g = Ghost::new(1_000_000);
        for i in 0..4_000 {
            g.insert(h(i), 100);
        }
        assert!((0..4_000).all(|i| g.contains(h(i))), "a recent key was forgotten");
        for i in 4_000..40_000 {
            g.insert(h(i), 100);
        }
        assert!((35_000..40_000).all(|i| g.contains(h(i))));
        assert!((0..4_000).filter(|&i| g.contains(h(i))).count() < 100, "old keys are not forgotten");
        let false_positives = (1_000_000..1_100_000).filter(|&i| g.contains(h(i))).count();
        assert!(false_positives < 2_000, "{false_positives} false positives in 100000");
        assert!(g.len() <= 10_000 + 1, "{} keys remembered for a 10,000-key budget", g.len());
        assert!(g.len() >= 7_500, "only {} keys remembered for a 10,000-key budget", g.len());
        assert!(g.memory_bytes() <= 4 * 3_125 * 10 / 8 + 256, "{} bytes", g.memory_bytes());
    }

    #[test]
    fn the_budget_is_in_bytes_so_small_values_are_remembered_in_larger_numbers() {
        let mut g = Ghost::new(1_000_000);
        for i in 0..100_000 {
            g.insert(h(i), 10);
        }
        // 100,000 keys of 10 bytes fit the budget: the last 75,000 at least are remembered.
        assert!((25_000..100_000).all(|i| g.contains(h(i))));
    }
}
