//! The pseudo-random numbers of the standalone measuring programs
//! (`examples/*.rs`, `bench/hashmap_lock.rs`): Marsaglia's xorshift64,
//! deterministic from its seed, std only, so each program stays one file
//! plus this one. Included with `#[path]`, not a crate.

/// A xorshift64 generator; the seed must not be 0.
pub struct Rng(pub u64);

impl Rng {
    /// The next number (never 0 from a seed that is not 0).
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
