//! Time: a clock the cache reads for expiry, injectable for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in Unix milliseconds.
///
/// keg reads the clock to stamp expiry times and to decide whether an entry
/// has expired. It never orders writes by time (sequence numbers do that), and
/// it never lets its notion of time go backwards: it uses the highest time it
/// has seen, persisted across restarts, so a clock that jumps back cannot
/// revive an expired entry.
///
/// ```
/// use keg::{Clock, SystemClock};
/// assert!(SystemClock.now_ms() > 1_600_000_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock.
///
/// ```
/// use keg::{Clock, SystemClock};
/// let t = SystemClock.now_ms();
/// assert!(SystemClock.now_ms() >= t);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }
}

/// A clock that moves only when told to: for tests that advance time instead of sleeping.
///
/// Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use keg::{Cache, ManualClock};
/// let dir = tempfile::tempdir().unwrap();
/// let clock = ManualClock::new(1_000_000);
/// let cache = Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
/// cache.set(b"k", b"v", Some(Duration::from_secs(10))).unwrap();
/// clock.advance(Duration::from_secs(10));
/// assert!(cache.get(b"k").unwrap().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock that reads `start_ms` until advanced.
    ///
    /// ```
    /// use keg::{Clock, ManualClock};
    /// assert_eq!(ManualClock::new(5).now_ms(), 5);
    /// ```
    pub fn new(start_ms: u64) -> ManualClock {
        ManualClock(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Moves the clock forward.
    ///
    /// ```
    /// use std::time::Duration;
    /// use keg::{Clock, ManualClock};
    /// let c = ManualClock::new(0);
    /// c.advance(Duration::from_millis(1500));
    /// assert_eq!(c.now_ms(), 1500);
    /// ```
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the clock to any time, including an earlier one (to test clock jumps).
    ///
    /// ```
    /// use keg::{Clock, ManualClock};
    /// let c = ManualClock::new(100);
    /// c.set_ms(50);
    /// assert_eq!(c.now_ms(), 50);
    /// ```
    pub fn set_ms(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The cache's view of time: the clock, never allowed to go backwards.
pub(crate) struct MonotonicTime {
    clock: Arc<dyn Clock>,
    floor_ms: AtomicU64,
}

impl MonotonicTime {
    pub(crate) fn new(clock: Arc<dyn Clock>, floor_ms: u64) -> MonotonicTime {
        MonotonicTime { clock, floor_ms: AtomicU64::new(floor_ms) }
    }

    /// Current time: the larger of the clock and the highest time seen so far.
    pub(crate) fn now_ms(&self) -> u64 {
        let now = self.clock.now_ms();
        let floor = self.floor_ms.load(Ordering::Relaxed);
        if now > floor {
            self.floor_ms.fetch_max(now, Ordering::Relaxed);
            now
        } else {
            floor
        }
    }
}
