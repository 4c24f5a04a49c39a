//! Counters and the `Stats` snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::latency::{Histogram, Recorder};

/// A snapshot of a cache's counters and sizes, from [`crate::Cache::stats`].
///
/// Counters count since the cache was opened; sizes describe it now.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// cache.set(b"k", b"v", None).unwrap();
/// cache.get(b"k").unwrap();
/// cache.get(b"nope").unwrap();
/// let s = cache.stats();
/// assert_eq!((s.hits, s.misses, s.sets, s.entries), (1, 1, 1, 1));
/// assert_eq!(s.hit_ratio(), 0.5);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// `get` calls that returned a value.
    pub hits: u64,
    /// `get` calls that returned nothing (including expired and corrupt reads).
    pub misses: u64,
    /// Successful `set` calls.
    pub sets: u64,
    /// `delete` calls that removed a key.
    pub deletes: u64,
    /// Reads that found an entry past its expiry (counted as misses too).
    pub expired_reads: u64,
    /// Reads that found a damaged record (counted as misses too).
    pub corrupt_reads: u64,
    /// Entries in the index, including expired ones not yet reclaimed.
    pub entries: u64,
    /// Bytes of records the index points to.
    pub live_bytes: u64,
    /// Bytes of records nothing points to (overwritten, deleted, expired, tombstones).
    pub dead_bytes: u64,
    /// Bytes of segment and hint files on disk (in synced mode, with the
    /// zeros written ahead of the active segments' last records: at most
    /// 1 MiB per active segment, cut off when a segment is sealed).
    pub disk_bytes: u64,
    /// Bytes the hint files not yet written will add to `disk_bytes` (those
    /// of the active segments, and of sealed ones waiting for maintenance).
    /// The size cap counts them: writers make room for `disk_bytes` plus
    /// these, so writing a hint never takes the files past the cap.
    pub hint_bytes_pending: u64,
    /// The size cap.
    pub max_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Live entries dropped to stay under the cap.
    pub evictions: u64,
    /// Expired entries removed when their segment was reclaimed.
    pub expirations_reclaimed: u64,
    /// Segments reclaimed (by eviction or compaction).
    pub segments_reclaimed: u64,
    /// Segments rewritten because of their dead fraction.
    pub compactions: u64,
    /// Bytes rewritten by eviction and compaction.
    pub bytes_rewritten: u64,
    /// Entries rewritten to the head of a log instead of evicted.
    pub reinsertions: u64,
    /// Entries moved from the probation log to the main log.
    pub promotions: u64,
    /// Bytes eviction re-appended (reinsertions and promotions): at most
    /// half the bytes writes took in, plus one segment (the reinsertion
    /// budget; docs/design.md, "Eviction"). Beyond it, eviction drops
    /// entries it would have kept.
    pub bytes_reinserted: u64,
    /// Entries eviction dropped although the policy would have kept them,
    /// because the reinsertion budget was spent (counted in `evictions` too).
    pub reinsertions_skipped: u64,
    /// Keys the ghost set remembers (recently evicted from probation).
    pub ghost_entries: u64,
    /// Bytes the ghost set uses.
    pub ghost_bytes: u64,
    /// Inserts sent straight to the main log because the ghost set remembered the key.
    pub ghost_hits: u64,
    /// Bytes of index slots (capacity, not only occupied slots).
    pub index_bytes: u64,
    /// Records appended by writes and maintenance.
    pub appends: u64,
    /// Bytes appended by writes and maintenance.
    pub bytes_appended: u64,
    /// Recovery: segments whose records were read by scanning (no usable hint file).
    pub recovery_scanned_segments: u64,
    /// Recovery: bytes of torn or damaged tails cut off (not the zeros a
    /// synced segment keeps ahead of its last record, which end its log).
    pub recovery_truncated_bytes: u64,
    /// Recovery: segment files dropped because their header was unreadable.
    pub recovery_dropped_segments: u64,
    /// Recovery: records ignored because they lie past a hole in the write history.
    pub recovery_void_records: u64,
    /// Background maintenance rounds that failed (they are retried next tick).
    pub maintenance_errors: u64,
    /// Rounds of fsyncs made to make writes durable; in synced mode, concurrent
    /// writers share rounds (group commit), so this grows slower than `sets`.
    pub sync_rounds: u64,
    /// Compare-and-swaps that stored (the version matched).
    pub cas_hits: u64,
    /// Compare-and-swaps refused because the version had changed.
    pub cas_badval: u64,
    /// Compare-and-swaps on a key with no live value.
    pub cas_misses: u64,
    /// `incr` calls on a live numeric value.
    pub incr_hits: u64,
    /// `incr` calls on a key with no live value.
    pub incr_misses: u64,
    /// `decr` calls on a live numeric value.
    pub decr_hits: u64,
    /// `decr` calls on a key with no live value.
    pub decr_misses: u64,
    /// `touch` and get-and-touch calls that found a live value.
    pub touch_hits: u64,
    /// `touch` and get-and-touch calls that found none.
    pub touch_misses: u64,
    /// How long `get` calls took (one in 16 per thread timed; see [`Histogram`]).
    pub get_latency: Histogram,
    /// How long `set` and `set_with` calls took, durability wait included (one in 16 per thread timed).
    pub set_latency: Histogram,
}

impl Stats {
    /// The snapshot in the Prometheus text exposition format: every counter
    /// and size as `keg_<name>` (counters with `_total`), and the two latency
    /// histograms as `keg_get_latency_seconds` and `keg_set_latency_seconds`
    /// (cumulative `le` buckets, sampled one call in 16 per thread).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// let text = cache.stats().to_prometheus();
    /// assert!(text.contains("keg_sets_total 1\n"));
    /// assert!(text.contains("keg_entries 1\n"));
    /// ```
    pub fn to_prometheus(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let counters = [
            ("hits", self.hits),
            ("misses", self.misses),
            ("sets", self.sets),
            ("deletes", self.deletes),
            ("expired_reads", self.expired_reads),
            ("corrupt_reads", self.corrupt_reads),
            ("evictions", self.evictions),
            ("expirations_reclaimed", self.expirations_reclaimed),
            ("segments_reclaimed", self.segments_reclaimed),
            ("compactions", self.compactions),
            ("bytes_rewritten", self.bytes_rewritten),
            ("reinsertions", self.reinsertions),
            ("promotions", self.promotions),
            ("bytes_reinserted", self.bytes_reinserted),
            ("reinsertions_skipped", self.reinsertions_skipped),
            ("ghost_hits", self.ghost_hits),
            ("appends", self.appends),
            ("bytes_appended", self.bytes_appended),
            ("maintenance_errors", self.maintenance_errors),
            ("sync_rounds", self.sync_rounds),
            ("cas_hits", self.cas_hits),
            ("cas_badval", self.cas_badval),
            ("cas_misses", self.cas_misses),
            ("incr_hits", self.incr_hits),
            ("incr_misses", self.incr_misses),
            ("decr_hits", self.decr_hits),
            ("decr_misses", self.decr_misses),
            ("touch_hits", self.touch_hits),
            ("touch_misses", self.touch_misses),
        ];
        for (name, v) in counters {
            let _ = writeln!(out, "# TYPE keg_{name}_total counter\nkeg_{name}_total {v}");
        }
        let gauges = [
            ("entries", self.entries),
            ("live_bytes", self.live_bytes),
            ("dead_bytes", self.dead_bytes),
            ("disk_bytes", self.disk_bytes),
            ("max_bytes", self.max_bytes),
            ("segments", self.segments),
            ("index_bytes", self.index_bytes),
            ("ghost_entries", self.ghost_entries),
            ("ghost_bytes", self.ghost_bytes),
            ("hint_bytes_pending", self.hint_bytes_pending),
            // What the open of this cache found (fixed once it is open).
            ("recovery_scanned_segments", self.recovery_scanned_segments),
            ("recovery_truncated_bytes", self.recovery_truncated_bytes),
            ("recovery_dropped_segments", self.recovery_dropped_segments),
            ("recovery_void_records", self.recovery_void_records),
        ];
        for (name, v) in gauges {
            let _ = writeln!(out, "# TYPE keg_{name} gauge\nkeg_{name} {v}");
        }
        for (name, h) in [("get", &self.get_latency), ("set", &self.set_latency)] {
            let _ = writeln!(out, "# TYPE keg_{name}_latency_seconds histogram");
            let mut cumulative = 0;
            for (upper_ns, n) in h.buckets() {
                cumulative += n;
                let le = upper_ns as f64 / 1e9;
                let _ = writeln!(out, "keg_{name}_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "keg_{name}_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
            let _ = writeln!(out, "keg_{name}_latency_seconds_count {cumulative}");
        }
        out
    }

    /// Hits divided by lookups (0 when there were none).
    ///
    /// ```
    /// assert_eq!(keg::Stats::default().hit_ratio(), 0.0);
    /// ```
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// Lock-free counters, bumped on the hot paths.
#[derive(Default)]
pub(crate) struct Counters {
    /// Striped: every `get` bumps one of these two (see [`crate::stripe`]).
    pub(crate) hits: crate::stripe::Counter,
    pub(crate) misses: crate::stripe::Counter,
    pub(crate) sets: AtomicU64,
    pub(crate) deletes: AtomicU64,
    pub(crate) expired_reads: AtomicU64,
    pub(crate) corrupt_reads: AtomicU64,
    pub(crate) evictions: AtomicU64,
    pub(crate) expirations_reclaimed: AtomicU64,
    pub(crate) segments_reclaimed: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) bytes_rewritten: AtomicU64,
    pub(crate) reinsertions: AtomicU64,
    pub(crate) promotions: AtomicU64,
    pub(crate) bytes_reinserted: AtomicU64,
    pub(crate) reinsertions_skipped: AtomicU64,
    pub(crate) ghost_hits: AtomicU64,
    pub(crate) appends: AtomicU64,
    pub(crate) bytes_appended: AtomicU64,
    pub(crate) recovery_scanned_segments: AtomicU64,
    pub(crate) recovery_truncated_bytes: AtomicU64,
    pub(crate) recovery_dropped_segments: AtomicU64,
    pub(crate) recovery_void_records: AtomicU64,
    pub(crate) maintenance_errors: AtomicU64,
    pub(crate) sync_rounds: AtomicU64,
    pub(crate) cas_hits: AtomicU64,
    pub(crate) cas_badval: AtomicU64,
    pub(crate) cas_misses: AtomicU64,
    pub(crate) incr_hits: AtomicU64,
    pub(crate) incr_misses: AtomicU64,
    pub(crate) decr_hits: AtomicU64,
    pub(crate) decr_misses: AtomicU64,
    pub(crate) touch_hits: AtomicU64,
    pub(crate) touch_misses: AtomicU64,
    pub(crate) get_latency: Recorder,
    pub(crate) set_latency: Recorder,
}

#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

#[inline]
pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    /// Copies the counters into `s`.
    pub(crate) fn fill(&self, s: &mut Stats) {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        s.hits = self.hits.load();
        s.misses = self.misses.load();
        s.sets = g(&self.sets);
        s.deletes = g(&self.deletes);
        s.expired_reads = g(&self.expired_reads);
        s.corrupt_reads = g(&self.corrupt_reads);
        s.evictions = g(&self.evictions);
        s.expirations_reclaimed = g(&self.expirations_reclaimed);
        s.segments_reclaimed = g(&self.segments_reclaimed);
        s.compactions = g(&self.compactions);
        s.bytes_rewritten = g(&self.bytes_rewritten);
        s.reinsertions = g(&self.reinsertions);
        s.promotions = g(&self.promotions);
        s.bytes_reinserted = g(&self.bytes_reinserted);
        s.reinsertions_skipped = g(&self.reinsertions_skipped);
        s.ghost_hits = g(&self.ghost_hits);
        s.appends = g(&self.appends);
        s.bytes_appended = g(&self.bytes_appended);
        s.recovery_scanned_segments = g(&self.recovery_scanned_segments);
        s.recovery_truncated_bytes = g(&self.recovery_truncated_bytes);
        s.recovery_dropped_segments = g(&self.recovery_dropped_segments);
        s.recovery_void_records = g(&self.recovery_void_records);
        s.maintenance_errors = g(&self.maintenance_errors);
        s.sync_rounds = g(&self.sync_rounds);
        s.get_latency = self.get_latency.snapshot();
        s.set_latency = self.set_latency.snapshot();
        s.cas_hits = g(&self.cas_hits);
        s.cas_badval = g(&self.cas_badval);
        s.cas_misses = g(&self.cas_misses);
        s.incr_hits = g(&self.incr_hits);
        s.incr_misses = g(&self.incr_misses);
        s.decr_hits = g(&self.decr_hits);
        s.decr_misses = g(&self.decr_misses);
        s.touch_hits = g(&self.touch_hits);
        s.touch_misses = g(&self.touch_misses);
    }
}
