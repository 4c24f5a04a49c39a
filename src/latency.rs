//! Latency histograms for `get` and `set`, cheap enough for the hot path:
//! one operation in [`SAMPLE_EVERY`] per thread is timed (two reads of the
//! monotonic clock), and its duration bumps one of 64 power-of-two buckets
//! with a relaxed atomic add. No lock, no allocation.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::stripe::{self, Padded, STRIPES};

/// One operation in this many (per thread) is timed.
pub const SAMPLE_EVERY: u32 = 16;
// `Histogram`'s public docs say "one operation in 16" (this module is private).
const _: () = assert!(SAMPLE_EVERY == 16, "update Histogram's rustdoc");

/// Buckets: bucket `i` counts durations in `[2^i, 2^(i+1))` nanoseconds
/// (bucket 0 also counts 0 ns).
const BUCKETS: usize = 64;

/// Which histogram an operation is sampled for (each has its own count, so
/// that interleaved gets and sets are each sampled one in [`SAMPLE_EVERY`]).
#[derive(Clone, Copy)]
pub(crate) enum Op {
    Get = 0,
    Set = 1,
}

thread_local! {
    static TICKS: Cell<[u32; 2]> = const { Cell::new([0; 2]) };
}

/// A start time, if this operation is one of the sampled ones.
#[inline]
pub(crate) fn start(op: Op) -> Option<Instant> {
    TICKS.with(|t| {
        let mut ticks = t.get();
        let n = ticks[op as usize].wrapping_add(1);
        ticks[op as usize] = n;
        t.set(ticks);
        (n % SAMPLE_EVERY == 0).then(Instant::now)
    })
}

/// Lock-free counts of sampled durations, one set of buckets per thread
/// stripe (see [`crate::stripe`]), so that threads timing calls at once do
/// not write the same cache lines.
pub(crate) struct Recorder {
    stripes: Box<[Padded<[AtomicU64; BUCKETS]>; STRIPES]>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder { stripes: Box::new(std::array::from_fn(|_| Padded(std::array::from_fn(|_| AtomicU64::new(0))))) }
    }
}

impl Recorder {
    /// Records the time since `started` (if the operation was sampled).
    #[inline]
    pub(crate) fn finish(&self, started: Option<Instant>) {
        if let Some(t) = started {
            let ns = u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let i = (63 - ns.max(1).leading_zeros()) as usize;
            self.stripes[stripe::mine()][i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Histogram {
        let sum = |i: usize| self.stripes.iter().map(|s| s[i].load(Ordering::Relaxed)).sum();
        Histogram { buckets: (0..BUCKETS).map(sum).collect() }
    }
}

/// A snapshot of a latency histogram (sampled: one operation in 16 per thread is timed).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// for i in 0..1000u32 {
///     cache.set(&i.to_le_bytes(), b"v", None).unwrap();
/// }
/// let h = cache.stats().set_latency;
/// assert!(h.count() > 0);
/// assert!(h.quantile_ns(0.5) <= h.quantile_ns(0.99));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: Vec<u64>,
}

impl Histogram {
    /// How many operations were timed.
    ///
    /// ```
    /// assert_eq!(keg::Histogram::default().count(), 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// An upper bound of the `q` quantile (0.0 ..= 1.0) in nanoseconds: the
    /// top of the power-of-two bucket it falls in (so within 2x of the true
    /// value); 0 when nothing was timed.
    ///
    /// ```
    /// assert_eq!(keg::Histogram::default().quantile_ns(0.99), 0);
    /// ```
    pub fn quantile_ns(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return upper_ns(i);
            }
        }
        u64::MAX
    }

    /// The buckets as `(upper bound in ns, count)`, empty ones left out.
    ///
    /// ```
    /// assert!(keg::Histogram::default().buckets().is_empty());
    /// ```
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.buckets.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, &n)| (upper_ns(i), n)).collect()
    }
}

/// The exclusive upper bound of bucket `i`, in ns.
fn upper_ns(i: usize) -> u64 {
    1u64.checked_shl(i as u32 + 1).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_power_of_two_bucket() {
        let r = Recorder::default();
        for ns in [0u64, 1, 2, 3, 1000, 1023, 1024] {
            let i = (63 - ns.max(1).leading_zeros()) as usize;
            r.stripes[(i + ns as usize) % STRIPES][i].fetch_add(1, Ordering::Relaxed);
        }
        let h = r.snapshot();
        assert_eq!(h.buckets(), vec![(2, 2), (4, 2), (1024, 2), (2048, 1)]);
        assert_eq!(h.quantile_ns(0.0), 2);
        assert_eq!(h.quantile_ns(0.5), 4);
        assert_eq!(h.quantile_ns(1.0), 2048);
    }

    #[test]
    fn one_operation_in_sample_every_is_timed() {
        let sampled = (0..SAMPLE_EVERY * 10).filter(|_| start(Op::Get).is_some() | start(Op::Set).is_some()).count();
        assert_eq!(sampled, 10);
    }
}
