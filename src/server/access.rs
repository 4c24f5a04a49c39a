//! `mg`'s `h` (hit before) and `l` (seconds since the last access): keg does
//! not record fetches per item, so the server keeps them, approximately, in
//! a fixed table in its memory.
//!
//! [`SLOTS`] slots of 8 bytes (512 KiB), each holding 32 bits of a key's hash
//! and the time (seconds since the server started) of the key's last fetch.
//! A key whose slot holds its hash has been fetched since it was last
//! written; one whose slot holds another key's hash (a collision, or never
//! fetched) reads as not hit before, with 0 seconds since its last access.
//! So `h` may say 0 for a key fetched before whose slot another key took,
//! and, rarely (two keys sharing a slot and 32 hash bits), 1 for one never
//! fetched; after a restart every key reads as not hit before. Clients use
//! these as hints (hot keys, metrics), which is what they are here.
//!
//! Lock-free: one atomic word per slot.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Slots of the table (a power of two).
pub const SLOTS: usize = 1 << 16;

/// See the module documentation.
pub(crate) struct Access {
    slots: Box<[AtomicU64]>,
    started: Instant,
    /// Whether any fetch was recorded: until one is, writes skip the table
    /// (a server only classic clients use pays nothing for it).
    used: AtomicBool,
}

impl Default for Access {
    fn default() -> Self {
        Access {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            started: Instant::now(),
            used: AtomicBool::new(false),
        }
    }
}

/// What `h` and `l` report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    /// `h`: fetched before (since its last write).
    pub(crate) hit_before: bool,
    /// `l`: seconds since that fetch (0 if none is known).
    pub(crate) idle_secs: u64,
}

fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

impl Access {
    fn now(&self) -> u32 {
        u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    fn slot(&self, hash: u64) -> &AtomicU64 {
        &self.slots[(hash as usize) & (SLOTS - 1)]
    }

    /// A fetch of `key`: what it had seen before; recorded unless `peek`
    /// (`mg`'s `u`: do not count this access).
    pub(crate) fn fetch(&self, key: &[u8], peek: bool) -> Seen {
        let hash = key_hash(key);
        let tag = (hash >> 32) as u32;
        let now = self.now();
        let slot = self.slot(hash);
        let word = if peek {
            slot.load(Ordering::Relaxed)
        } else {
            self.used.store(true, Ordering::Relaxed);
            slot.swap(pack(tag, now), Ordering::Relaxed)
        };
        let (old_tag, at) = unpack(word);
        if word != 0 && old_tag == tag {
            Seen { hit_before: true, idle_secs: u64::from(now.saturating_sub(at)) }
        } else {
            Seen { hit_before: false, idle_secs: 0 }
        }
    }

    /// A write of `key`: a new item, not fetched yet.
    pub(crate) fn written(&self, key: &[u8]) {
        if !self.used.load(Ordering::Relaxed) {
            return;
        }
        let hash = key_hash(key);
        let tag = (hash >> 32) as u32;
        let slot = self.slot(hash);
        let word = slot.load(Ordering::Relaxed);
        if word != 0 && unpack(word).0 == tag {
            // Only if it is still this key's (another key may have taken it since).
            let _ = slot.compare_exchange(word, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

fn pack(tag: u32, at: u32) -> u64 {
    (u64::from(tag) << 32) | u64::from(at)
}

fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_hit_before_from_its_second_fetch_until_it_is_written() {
        let a = Access::default();
        assert!(!a.fetch(b"k", false).hit_before);
        assert!(a.fetch(b"k", false).hit_before);
        assert_eq!(a.fetch(b"k", false).idle_secs, 0);
        a.written(b"k");
        assert!(!a.fetch(b"k", false).hit_before);
        // u: looks without counting.
        assert!(!a.fetch(b"other", true).hit_before);
        assert!(!a.fetch(b"other", true).hit_before);
        assert!(a.fetch(b"k", true).hit_before);
    }
}
