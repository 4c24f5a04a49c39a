//! Time: a clock the cache reads for expiry, injectable for tests, and the
//! cache's own view of it (never backwards, covered by the checkpoint).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::format::checkpoint::ClockAnchor;

/// A reading of a clock that counts from the machine's boot and never jumps:
/// it lets keg tell, after a crash, how much time really passed.
///
/// Two readings with the same `boot_id` come from the same boot of the same
/// machine, and their `ms` differ by the time between them (suspend
/// included), whatever the wall clock did meanwhile.
///
/// ```
/// use keg::{BootTime, Clock, ManualClock};
/// let c = ManualClock::new(1_000);
/// let BootTime { boot_id, ms } = c.since_boot().unwrap();
/// c.set_ms(0); // the wall clock jumps back; time since boot does not
/// assert_eq!(c.since_boot(), Some(BootTime { boot_id, ms }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootTime {
    /// Names the boot (on Linux, `/proc/sys/kernel/random/boot_id`); never 0.
    pub boot_id: u128,
    /// Milliseconds since that boot.
    pub ms: u64,
}

/// A source of wall-clock time in Unix milliseconds.
///
/// keg reads the clock to stamp expiry times and to decide whether an entry
/// has expired. It never orders writes by time (sequence numbers do that), and
/// it never lets its notion of time go backwards: it uses the highest time it
/// has seen, and it persists enough in the checkpoint (a mark no time used is
/// later than, and where the wall clock stood against [`Clock::since_boot`])
/// that after a crash it can tell a clock that jumped back from time that
/// passed, so that an expired entry never comes back (see docs/reliability.md).
///
/// ```
/// use keg::{Clock, SystemClock};
/// assert!(SystemClock.now_ms() > 1_600_000_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    ///
    /// ```
    /// use keg::{Clock, ManualClock};
    /// let clock = ManualClock::new(1_700_000_000_000);
    /// clock.advance(std::time::Duration::from_secs(1));
    /// assert_eq!(clock.now_ms(), 1_700_000_001_000);
    /// ```
    fn now_ms(&self) -> u64;

    /// Time since boot, if this clock knows it. Without it (the default),
    /// keg cannot measure the time a crash took, and after one it resumes at
    /// its clock mark: entries may then expire up to 20 s early.
    ///
    /// ```
    /// use keg::Clock;
    /// struct Fixed;
    /// impl Clock for Fixed {
    ///     fn now_ms(&self) -> u64 { 1_700_000_000_000 }
    /// }
    /// assert_eq!(Fixed.since_boot(), None);
    /// ```
    fn since_boot(&self) -> Option<BootTime> {
        None
    }
}

/// The operating system's wall clock (`CLOCK_REALTIME`), with time since
/// boot (`CLOCK_BOOTTIME` and the kernel's boot id) on Linux.
///
/// ```
/// use keg::{Clock, SystemClock};
/// let t = SystemClock.now_ms();
/// assert!(SystemClock.now_ms() >= t);
/// if cfg!(target_os = "linux") {
///     let (a, b) = (SystemClock.since_boot().unwrap(), SystemClock.since_boot().unwrap());
///     assert!(a.boot_id == b.boot_id && a.ms <= b.ms);
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }

    fn since_boot(&self) -> Option<BootTime> {
        system_since_boot()
    }
}

/// The wall clock in Unix milliseconds (0 before 1970). On Linux straight
/// from `clock_gettime`: every write, and every get of an entry with a TTL,
/// reads it, and `SystemTime`'s `Duration` arithmetic cost about 40
/// instructions more a call (callgrind).
#[cfg(target_os = "linux")]
#[inline]
fn system_now_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the call to fill in.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 || ts.tv_sec < 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

#[cfg(not(target_os = "linux"))]
fn system_now_ms() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(target_os = "linux")]
fn system_since_boot() -> Option<BootTime> {
    static BOOT_ID: std::sync::OnceLock<Option<u128>> = std::sync::OnceLock::new();
    let boot_id = (*BOOT_ID.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let hex: String = text.trim().chars().filter(|c| *c != '-').collect();
        u128::from_str_radix(&hex, 16).ok().filter(|&id| id != 0)
    }))?;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the call to fill in.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return None;
    }
    Some(BootTime { boot_id, ms: ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000 })
}

#[cfg(not(target_os = "linux"))]
fn system_since_boot() -> Option<BootTime> {
    None
}

/// A clock that moves only when told to: for tests that advance time instead of sleeping.
///
/// Clones share the same time. It also keeps a time since boot:
/// [`ManualClock::advance`] moves both, [`ManualClock::set_ms`] moves only the
/// wall clock (a jump). Each `ManualClock::new` starts a boot, 0 ms old, named
/// after its start time: a clock started at another time is another boot
/// (one started at the same time may continue a boot whose time since boot
/// has not passed 0).
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
pub struct ManualClock(Arc<ManualState>);

#[derive(Debug)]
struct ManualState {
    wall_ms: AtomicU64,
    boot_ms: AtomicU64,
    boot_id: u128,
}

impl ManualClock {
    /// A clock that reads `start_ms` until advanced (and a boot, 0 ms old).
    ///
    /// ```
    /// use keg::{Clock, ManualClock};
    /// assert_eq!(ManualClock::new(5).now_ms(), 5);
    /// assert_ne!(ManualClock::new(5).since_boot(), ManualClock::new(6).since_boot());
    /// ```
    pub fn new(start_ms: u64) -> ManualClock {
        // Named after the start time, so that what a cache writes with it is
        // the same in every run (the fuzz seeds are such files).
        let boot_id = 1 << 127 | u128::from(start_ms);
        ManualClock(Arc::new(ManualState { wall_ms: AtomicU64::new(start_ms), boot_ms: AtomicU64::new(0), boot_id }))
    }

    /// Moves the clock forward (the wall clock and the time since boot).
    ///
    /// ```
    /// use std::time::Duration;
    /// use keg::{Clock, ManualClock};
    /// let c = ManualClock::new(0);
    /// c.advance(Duration::from_millis(1500));
    /// assert_eq!(c.now_ms(), 1500);
    /// assert_eq!(c.since_boot().unwrap().ms, 1500);
    /// ```
    pub fn advance(&self, by: Duration) {
        self.0.wall_ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
        self.0.boot_ms.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// Sets the wall clock to any time, including an earlier one (to test
    /// clock jumps); the time since boot does not move.
    ///
    /// ```
    /// use keg::{Clock, ManualClock};
    /// let c = ManualClock::new(100);
    /// c.set_ms(50);
    /// assert_eq!(c.now_ms(), 50);
    /// assert_eq!(c.since_boot().unwrap().ms, 0);
    /// ```
    pub fn set_ms(&self, ms: u64) {
        self.0.wall_ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.wall_ms.load(Ordering::SeqCst)
    }

    fn since_boot(&self) -> Option<BootTime> {
        Some(BootTime { boot_id: self.0.boot_id, ms: self.0.boot_ms.load(Ordering::SeqCst) })
    }
}

/// How far ahead of the time in use the persisted clock mark is set: a
/// checkpoint write at most every half of this while the cache is used.
/// After a crash keg resumes at the mark only when it cannot measure the
/// time that passed (another boot, or a clock without [`Clock::since_boot`]).
pub(crate) const CLOCK_LEASE_MS: u64 = 20_000;

/// The cache's view of time: the clock, never allowed to go backwards, and
/// never past what the checkpoint on disk covers until the cache has
/// persisted more (see `Engine::now_ms`). The checkpoint covers a time when
/// it is within the clock mark and within what the clock anchor covers (see
/// [`ClockAnchor::covers_ms`]). So after any crash the time open restores —
/// the mark, or on the same boot what the anchor covers if that is earlier —
/// is at least every time used before it, and an entry seen expired stays
/// expired however the wall clock jumps.
pub(crate) struct MonotonicTime {
    clock: Arc<dyn Clock>,
    /// The highest time handed out.
    used_ms: AtomicU64,
    /// The highest time that may be handed out (u64::MAX when nothing is
    /// persisted: a read-only cache).
    limit_ms: AtomicU64,
    /// A time the persisted anchor is known to cover (it grows with the time
    /// since boot; u64::MAX when nothing is checked: a read-only cache or a
    /// clock without time since boot). Changed only under `anchor`'s lock.
    covered_ms: AtomicU64,
    /// The persisted anchor (if written on this boot), and one being written.
    anchor: Mutex<Anchors>,
}

#[derive(Default)]
struct Anchors {
    current: Option<ClockAnchor>,
    pending: Option<ClockAnchor>,
}

impl MonotonicTime {
    fn lock_anchors(&self) -> std::sync::MutexGuard<'_, Anchors> {
        self.anchor.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MonotonicTime {
    /// The cache's time after an open: `mark_ms` (the persisted clock mark
    /// and every segment's creation time), or, when `anchor` was written on
    /// this boot, what it covers now if that is earlier. With `limited`,
    /// times past what the checkpoint covers wait for a checkpoint write.
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        mark_ms: u64,
        anchor: Option<ClockAnchor>,
        limited: bool,
    ) -> MonotonicTime {
        let boot = clock.since_boot();
        let anchor = match (anchor, boot) {
            (Some(a), Some(b)) if a.boot_id == b.boot_id && b.ms >= a.boot_ms => Some(a),
            _ => None,
        };
        let start = match (anchor, boot) {
            (Some(a), Some(b)) => mark_ms.min(a.covers_ms(b.ms)),
            _ => mark_ms,
        };
        let limit = if limited { mark_ms } else { u64::MAX };
        let covered = if limited && boot.is_some() { 0 } else { u64::MAX };
        MonotonicTime {
            clock,
            used_ms: AtomicU64::new(start),
            limit_ms: AtomicU64::new(limit),
            covered_ms: AtomicU64::new(covered),
            anchor: Mutex::new(Anchors { current: if limited { anchor } else { None }, pending: None }),
        }
    }

    /// The current time (the larger of the clock and the highest time used),
    /// if the checkpoint on disk covers it; otherwise `Err` with the time wanted.
    #[inline]
    pub(crate) fn try_now_ms(&self) -> Result<u64, u64> {
        let used = self.used_ms.load(Ordering::SeqCst);
        let now = self.clock.now_ms().max(used);
        // Published before the check: an anchor write that lowers
        // `covered_ms` then either sees it in `used_ms` or makes this call
        // take the lock (see `begin_anchor`). When `used_ms` already holds
        // `now`, the sequentially consistent load above read it from the
        // write that published it, which comes before the check below just
        // as this call's own write would; and skipping the write keeps the
        // calls of many threads within one millisecond from all writing
        // (and passing between cores) this one cache line.
        if now > used {
            self.used_ms.fetch_max(now, Ordering::SeqCst);
        }
        if !self.covers(now) {
            return Err(now);
        }
        Ok(now)
    }

    /// True when the checkpoint on disk covers `ms`: within the mark and the anchor.
    #[inline]
    pub(crate) fn covers(&self, ms: u64) -> bool {
        ms <= self.limit_ms.load(Ordering::Acquire) && self.anchor_covers(ms)
    }

    /// True when the persisted anchor covers `ms`. (Reads the time since
    /// boot only when `ms` passes what it was last known to cover: about
    /// once a millisecond while the cache is busy.)
    #[inline]
    pub(crate) fn anchor_covers(&self, ms: u64) -> bool {
        ms <= self.covered_ms.load(Ordering::SeqCst) || self.refresh_covered(ms)
    }

    /// How far what the persisted anchor covers now runs ahead of `now_ms`
    /// (0 without an anchor from this boot): more than a few milliseconds
    /// after the wall clock jumped back, and then a crash would hold the
    /// cache's time that far ahead until a new anchor is written.
    pub(crate) fn anchor_excess_ms(&self, now_ms: u64) -> u64 {
        let anchors = self.lock_anchors();
        match (anchors.current, self.clock.since_boot()) {
            (Some(a), Some(b)) if a.boot_id == b.boot_id && b.ms >= a.boot_ms => {
                a.covers_ms(b.ms).saturating_sub(now_ms)
            }
            _ => 0,
        }
    }

    #[cold]
    fn refresh_covered(&self, ms: u64) -> bool {
        let anchors = self.lock_anchors();
        let Some(boot) = self.clock.since_boot() else {
            return true; // the clock says nothing about time since boot: nothing to check
        };
        let covers = |a: Option<ClockAnchor>| match a {
            Some(a) if a.boot_id == boot.boot_id && boot.ms >= a.boot_ms => a.covers_ms(boot.ms),
            _ => 0, // no anchor from this boot
        };
        // While a new anchor is being written, a time must be covered by
        // both: either may be the one on disk after a crash.
        let mut covered = covers(anchors.current);
        if anchors.pending.is_some() {
            covered = covered.min(covers(anchors.pending));
        }
        self.covered_ms.fetch_max(covered, Ordering::SeqCst);
        ms <= covered
    }

    /// Starts replacing the anchor (one write at a time: under the
    /// checkpoint lock). The new one (`None` with a clock without time since
    /// boot) pairs the wall clock with time since boot (read first, so that
    /// the pair errs late), and holds every time that may have been handed
    /// out. Until the write is committed, a time is handed out only if both
    /// anchors cover it.
    pub(crate) fn begin_anchor(&self) -> AnchorWrite<'_> {
        let mut anchors = self.lock_anchors();
        let anchor = self.clock.since_boot().map(|boot| {
            let wall_ms = self.clock.now_ms();
            // Lower what calls may take without the lock to the time now;
            // a call that took more has published it in `used_ms` first
            // (both sequentially consistent), so `held_ms` holds it.
            let now = wall_ms.max(self.used_ms.load(Ordering::SeqCst));
            if self.covered_ms.load(Ordering::SeqCst) != u64::MAX {
                self.covered_ms.store(now, Ordering::SeqCst);
            }
            let held_ms = now.max(self.used_ms.load(Ordering::SeqCst));
            ClockAnchor { held_ms, wall_ms, boot_id: boot.boot_id, boot_ms: boot.ms }
        });
        anchors.pending = anchor;
        AnchorWrite { time: self, anchor, committed: false }
    }

    /// Hands out `now_ms` (from [`MonotonicTime::try_now_ms`]) past what
    /// the checkpoint covers, when it cannot be persisted.
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

/// A new clock anchor being written (see [`MonotonicTime::begin_anchor`]);
/// dropped without a commit, the write failed and the old anchor stays.
pub(crate) struct AnchorWrite<'a> {
    time: &'a MonotonicTime,
    /// The anchor to write.
    pub(crate) anchor: Option<ClockAnchor>,
    committed: bool,
}

impl AnchorWrite<'_> {
    /// The anchor is on disk: the times it covers may be handed out.
    pub(crate) fn commit(mut self) {
        let mut anchors = self.time.lock_anchors();
        anchors.current = anchors.pending.take();
        // Every time handed out before the write began is in `held_ms`,
        // and every one since was covered by both anchors.
        let covered = match anchors.current {
            Some(a) => a.covers_ms(a.boot_ms),
            None => u64::MAX,
        };
        self.time.covered_ms.store(covered, Ordering::SeqCst);
        self.committed = true;
    }
}

impl Drop for AnchorWrite<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.time.lock_anchors().pending = None;
        }
    }
}
