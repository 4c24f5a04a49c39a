//! Per-thread stripes: state that every `get` writes, spread over cache
//! lines of its own per thread, so that two cores reading the cache do not
//! pass one cache line back and forth on every call.
//!
//! A thread is given a stripe number the first time it asks (threads in
//! turn, modulo [`STRIPES`]), and keeps it. Up to [`STRIPES`] threads each
//! write only their own lines; more threads share stripes, which stays
//! correct and only costs the sharing it was meant to avoid.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// How many stripes: threads that can read in parallel without sharing a
/// written cache line. Each striped counter costs `STRIPES` x 128 bytes.
pub(crate) const STRIPES: usize = 16;

/// A value on a cache line (pair) of its own: 128 bytes, because Intel's
/// adjacent-line prefetcher fetches lines in pairs.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

/// This thread's stripe, in `0..STRIPES`.
#[inline]
pub(crate) fn mine() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|m| {
        let s = m.get();
        if s != usize::MAX {
            return s;
        }
        let s = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
        m.set(s);
        s
    })
}

/// A counter each thread bumps on its own stripe; reading it sums them.
#[derive(Default)]
pub(crate) struct Counter {
    stripes: [Padded<AtomicU64>; STRIPES],
}

impl Counter {
    /// Adds `n` (relaxed, on this thread's stripe).
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.stripes[mine()].fetch_add(n, Ordering::Relaxed);
    }

    /// Sets every stripe back to 0 (an add racing the reset may survive it).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) fn reset(&self) {
        for s in &self.stripes {
            s.store(0, Ordering::Relaxed);
        }
    }

    /// The sum of the stripes (a snapshot: concurrent adds may or may not be in it).
    pub(crate) fn load(&self) -> u64 {
        self.stripes.iter().fold(0u64, |sum, s| sum.wrapping_add(s.load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_stripe_and_threads_take_them_in_turn() {
        let a = mine();
        assert_eq!(mine(), a);
        let others: Vec<usize> = (0..STRIPES).map(|_| std::thread::spawn(mine).join().unwrap()).collect();
        // Other tests take stripes concurrently, so only check that every
        // number is in range and that they are not all one stripe.
        assert!(others.iter().all(|&s| s < STRIPES));
        let mut distinct = others.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 1, "{others:?}");
    }

    #[test]
    fn a_striped_counter_sums_every_threads_adds() {
        let c = Counter::default();
        std::thread::scope(|s| {
            for _ in 0..2 * STRIPES {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.add(1);
                    }
                });
            }
        });
        c.add(5);
        assert_eq!(c.load(), 2 * STRIPES as u64 * 1000 + 5);
        assert_eq!(std::mem::align_of::<Padded<AtomicU64>>(), 128);
    }
}
