//! The eviction policy: which segment to reclaim, and what to keep from it.
//!
//! keg runs S3-FIFO (Yang et al., SOSP '23) at segment granularity over two logs:
//!
//! - **Probation log** (about 10% of the cap): every new key lands here,
//!   unless the ghost set remembers it.
//! - **Main log**: keys that proved themselves.
//! - Every index entry has a 2-bit hit counter, bumped by each read.
//!
//! When the cache is over its eviction threshold, the oldest segment of the
//! probation log is reclaimed if that log is over its share, else the oldest
//! main segment. Until the cache first fills, the probation log may use any
//! space the main log does not (it "borrows"), which matters while the cache
//! warms up. Reclaiming a probation segment moves entries with at least
//! [`PROMOTE_HITS`] hits to the main log (counter reset) and drops the rest,
//! remembering their hashes in the ghost set. Reclaiming a main segment
//! re-appends entries with a non-zero counter (decremented) and drops the rest.
//!
//! On disk a kept entry is a write, so keeping is bounded by a reinsertion
//! budget ([`within_budget`]): the bytes eviction re-appends never exceed
//! [`REINSERTION_SHARE`] of the bytes writes took in, plus one segment. When
//! little budget is left, only entries read at least twice are kept; when it
//! is spent, eviction drops what it would have kept. (Without it, a working
//! set twice the cap read uniformly re-appended 32 bytes per byte set.)

use crate::format::segment::LogKind;

/// Hits an entry needs while in probation to move to the main log.
pub(crate) const PROMOTE_HITS: u8 = 1;
/// Share of the cap the probation log may hold before it is reclaimed first.
pub(crate) const PROBATION_SHARE: f64 = 0.10;

/// Share of the bytes writes take in that eviction may re-append (promotions
/// and reinsertions together), on top of one segment.
pub(crate) const REINSERTION_SHARE: f64 = 0.5;

/// Whether eviction may re-append an entry of `len` bytes with hit counter
/// `counter`, having re-appended `spent` bytes so far while writes took in
/// `taken_in` bytes. The budget is `REINSERTION_SHARE × taken_in +
/// segment_bytes`; the last `segment_bytes` of it go only to entries read at
/// least twice.
pub(crate) fn within_budget(taken_in: u64, spent: u64, len: u64, counter: u8, segment_bytes: u64) -> bool {
    let budget = (taken_in as f64 * REINSERTION_SHARE) as u64 + segment_bytes;
    let left = budget.saturating_sub(spent);
    len <= left && (left - len >= segment_bytes || counter >= 2)
}

/// What happens to one live, unexpired entry of a reclaimed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Drop it (evict).
    Drop,
    /// Re-append it to `log` with this hit counter.
    Keep { log: LogKind, counter: u8 },
}

/// The decision for an entry of a segment of `log` with hit counter `counter`.
pub(crate) fn decide(log: LogKind, counter: u8) -> Decision {
    match log {
        LogKind::Probation if counter >= PROMOTE_HITS => Decision::Keep { log: LogKind::Main, counter: 0 },
        LogKind::Probation => Decision::Drop,
        LogKind::Main if counter > 0 => Decision::Keep { log: LogKind::Main, counter: counter - 1 },
        LogKind::Main => Decision::Drop,
    }
}

/// Which log to reclaim from, given each log's bytes and the cap.
pub(crate) fn victim_log(probation_bytes: u64, main_bytes: u64, max_bytes: u64) -> LogKind {
    if main_bytes == 0 || probation_bytes as f64 > max_bytes as f64 * PROBATION_SHARE {
        LogKind::Probation
    } else {
        LogKind::Main
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3fifo_decisions() {
        assert_eq!(decide(LogKind::Probation, 0), Decision::Drop);
        assert_eq!(decide(LogKind::Probation, 3), Decision::Keep { log: LogKind::Main, counter: 0 });
        assert_eq!(decide(LogKind::Main, 0), Decision::Drop);
        assert_eq!(decide(LogKind::Main, 2), Decision::Keep { log: LogKind::Main, counter: 1 });
        assert_eq!(victim_log(20, 80, 100), LogKind::Probation);
        assert_eq!(victim_log(5, 80, 100), LogKind::Main);
        assert_eq!(victim_log(5, 0, 100), LogKind::Probation);
    }

    #[test]
    fn the_reinsertion_budget() {
        // 1000 bytes taken in, segments of 100: a budget of 600 bytes.
        assert!(within_budget(1000, 0, 100, 1, 100));
        assert!(within_budget(1000, 400, 100, 1, 100));
        // The last segment of it only for entries read twice or more.
        assert!(!within_budget(1000, 450, 100, 1, 100));
        assert!(within_budget(1000, 450, 100, 2, 100));
        assert!(within_budget(1000, 500, 100, 3, 100));
        // Spent.
        assert!(!within_budget(1000, 550, 100, 3, 100));
        assert!(!within_budget(1000, 900, 10, 3, 100));
    }
}
