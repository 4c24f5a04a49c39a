//! Time: a clock the cache reads for expiry, injectable for tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in Unix milliseconds.
///
/// keg reads the clock to stamp expiry times and to decide whether an entry
/// has expired. It never orders writes by time (sequence numbers do that), and
/// it never lets its notion of time go backwards: it uses the highest time it
/// has seen, and before it uses a time it persists a mark at least that late
/// (a little ahead, so that this is rare), so that even after a crash a clock
/// that jumps back cannot revive an expired entry.
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

/// How far ahead of the time in use the persisted clock mark is set: a
/// checkpoint write at most every half of this while the cache is used, and
/// after a crash entries may expire up to this much early.
pub(crate) const CLOCK_LEASE_MS: u64 = 20_000;

/// The cache's view of time: the clock, never allowed to go backwards, and
/// never past a limit — the clock mark persisted in the checkpoint — until the
/// cache has persisted a later mark (see `Engine::now_ms`). So after any crash,
/// the time recovery restores is at least every time used before it, and an
/// entry seen expired stays expired however the wall clock jumps.
pub(crate) struct MonotonicTime {
    clock: Arc<dyn Clock>,
    /// The highest time handed out.
    used_ms: AtomicU64,
    /// The highest time that may be handed out (u64::MAX when nothing is
    /// persisted: a read-only cache).
    limit_ms: AtomicU64,
}

impl MonotonicTime {
    /// Time starting at `floor_ms`; with `limited`, not past it until the limit is raised.
    pub(crate) fn new(clock: Arc<dyn Clock>, floor_ms: u64, limited: bool) -> MonotonicTime {
        let limit = if limited { floor_ms } else { u64::MAX };
        MonotonicTime { clock, used_ms: AtomicU64::new(floor_ms), limit_ms: AtomicU64::new(limit) }
    }

    /// The current time (the larger of the clock and the highest time used),
    /// if it is within the limit; otherwise `Err` with the time wanted.
    #[inline]
    pub(crate) fn try_now_ms(&self) -> Result<u64, u64> {
        let now = self.clock.now_ms().max(self.used_ms.load(Ordering::Relaxed));
        if now > self.limit_ms.load(Ordering::Acquire) {
            return Err(now);
        }
        self.used_ms.fetch_max(now, Ordering::Relaxed);
        Ok(now)
    }

    /// Hands out `now_ms` (from [`MonotonicTime::try_now_ms`]) past the
    /// limit, when a later mark cannot be persisted.
    pub(crate) fn past_limit(&self, now_ms: u64) -> u64 {
        self.used_ms.fetch_max(now_ms, Ordering::Relaxed).max(now_ms)
    }

    /// The clock's own reading (which may be behind the time handed out).
    pub(crate) fn wall_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The highest time handed out so far.
    pub(crate) fn used_ms(&self) -> u64 {
        self.used_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn limit_ms(&self) -> u64 {
        self.limit_ms.load(Ordering::Acquire)
    }

    /// Allows times up to `limit_ms` (a mark that far is persisted).
    pub(crate) fn raise_limit(&self, limit_ms: u64) {
        self.limit_ms.fetch_max(limit_ms, Ordering::AcqRel);
    }
}
