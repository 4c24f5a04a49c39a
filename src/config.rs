//! Settings: every limit keg enforces, its default, and the builder that sets them.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::format::{record, segment};
use crate::hash::KeyHasher;
use crate::storage::Storage;

/// Default size cap: 1 GiB of segment and hint files.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Default longest key, in bytes.
pub const DEFAULT_MAX_KEY_LEN: usize = 1024;
/// Longest key the format can hold (its length is a 16-bit field).
pub const MAX_KEY_LEN: usize = u16::MAX as usize;
/// Default largest value: 1 MiB, like memcached's default item size, when
/// the cap can hold it (the exact rule is at [`Builder::max_value_len`]).
pub const DEFAULT_MAX_VALUE_LEN: usize = 1 << 20;
/// Smallest segment file.
pub const MIN_SEGMENT_BYTES: u64 = 4 << 10;
/// Largest segment file (record offsets in the index have 30 bits).
pub const MAX_SEGMENT_BYTES: u64 = 1 << 30;
/// Segment size chosen by default: `max_bytes / 64`, within these bounds
/// (and grown to hold the default largest value: see [`Builder::max_value_len`]).
pub const DEFAULT_SEGMENT_BYTES_RANGE: (u64, u64) = (64 << 10, 64 << 20);
/// Fewest segments a cache may have room for.
pub const MIN_SEGMENTS: u64 = 8;
/// Default write buffer for [`Durability::Buffered`].
pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Smallest write buffer accepted: one page (a smaller one would hand
/// nearly every record to the OS at once, as [`Durability::Flushed`] does).
pub const MIN_WRITE_BUFFER_BYTES: usize = 4 << 10;
/// Largest write buffer accepted (a crash in buffered mode may lose it all).
pub const MAX_WRITE_BUFFER_BYTES: usize = 64 << 20;
/// Default longest time a buffered write waits before it is handed to the OS.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Shortest `flush_interval` accepted: the maintenance thread runs a round
/// every interval, so a shorter one would keep a core busy on an idle cache.
pub const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(10);
/// Longest `flush_interval` accepted: the maintenance thread runs a round,
/// which hands the buffer to the OS, at least once a second anyway.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default dead fraction at which compaction rewrites a segment.
pub const DEFAULT_COMPACTION_THRESHOLD: f64 = 0.5;
/// Range of `compaction_threshold` accepted.
pub const COMPACTION_THRESHOLD_RANGE: (f64, f64) = (0.1, 0.9);

/// What an acknowledged write survives.
///
/// Whatever the mode, after any crash the cache holds a prefix of its write
/// history: a delete is never undone while a later write survives, and a key
/// never reads as a value other than the last one written for it in that prefix
/// (it may read as a miss: this is a cache).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::builder()
///     .durability(keg::Durability::Synced)
///     .open(dir.path())
///     .unwrap();
/// cache.set(b"k", b"survives power loss once set returns", None).unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// The default. Every write is handed to the operating system before the
    /// call returns: a killed process (`kill -9`, a panic, an OOM kill) loses
    /// nothing acknowledged. A power loss or kernel crash can lose recent writes.
    #[default]
    Flushed,
    /// Every write is on stable storage (fsynced) before the call returns, so a
    /// power loss loses nothing acknowledged. Concurrent writers share fsyncs
    /// (group commit).
    Synced,
    /// For bulk loads: writes collect in a buffer of `write_buffer_bytes` that
    /// is handed to the OS when full, every `flush_interval` (by the
    /// background maintenance thread, when it runs), and on
    /// [`Cache::flush`](crate::Cache::flush). A crash loses at most the unflushed tail.
    Buffered,
}

impl Durability {
    /// Parses `flushed`, `synced` or `buffered`.
    ///
    /// ```
    /// assert_eq!(keg::Durability::parse("synced"), Some(keg::Durability::Synced));
    /// ```
    pub fn parse(s: &str) -> Option<Durability> {
        match s {
            "flushed" => Some(Durability::Flushed),
            "synced" => Some(Durability::Synced),
            "buffered" => Some(Durability::Buffered),
            _ => None,
        }
    }
}

/// Builds a [`Cache`](crate::Cache) with settings other than the defaults.
///
/// The setters only record a value. Every setting is checked when the cache
/// is opened, whether or not the chosen durability mode uses it: a value out
/// of its range, or settings that contradict each other, make `open` fail
/// with [`Error::Config`](crate::Error::Config) naming the setting, its value
/// and what it must be. No setting is silently clamped.
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::builder()
///     .max_bytes(64 << 20)
///     .max_key_len(250)
///     .max_value_len(512 << 10)
///     .open(dir.path())
///     .unwrap();
/// cache.set(b"k", b"v", Some(Duration::from_secs(60))).unwrap();
/// ```
#[derive(Clone)]
pub struct Builder {
    max_bytes: u64,
    segment_bytes: Option<u64>,
    max_key_len: usize,
    max_value_len: Option<usize>,
    durability: Durability,
    write_buffer_bytes: usize,
    flush_interval: Duration,
    compaction_threshold: f64,
    background: bool,
    clock: Arc<dyn Clock>,
    hasher: KeyHasher,
    storage: Storage,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            max_bytes: DEFAULT_MAX_BYTES,
            segment_bytes: None,
            max_key_len: DEFAULT_MAX_KEY_LEN,
            max_value_len: None,
            durability: Durability::default(),
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            compaction_threshold: DEFAULT_COMPACTION_THRESHOLD,
            background: true,
            clock: Arc::new(SystemClock),
            hasher: KeyHasher::Xxh3,
            storage: Storage::default(),
        }
    }
}

/// Settings after defaults and checks.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) max_bytes: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) max_key_len: usize,
    pub(crate) max_value_len: usize,
    pub(crate) durability: Durability,
    pub(crate) write_buffer_bytes: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) compaction_threshold: f64,
    pub(crate) background: bool,
}

impl Builder {
    /// A builder with every setting at its default.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Builder::new().open(dir.path()).unwrap();
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Caps the bytes the cache's files take on disk (default 1 GiB, at
    /// least 8 segments). Segment and hint files never hold more than
    /// `max_bytes` plus one segment, at any moment: writers make room for
    /// their records and for the hint files still to write, and maintenance
    /// copies at most one segment's records before it removes that segment
    /// (see docs/design.md, "The size cap").
    ///
    /// ```
    /// let b = keg::Cache::builder().max_bytes(256 << 20);
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Builder {
        self.max_bytes = bytes;
        self
    }

    /// Sets the size of each segment file (4 KiB ..= 1 GiB; the cap must
    /// hold at least 8 segments). The default is `max_bytes / 64`, within
    /// 64 KiB ..= 64 MiB, rounded down to 4 KiB, then grown if needed to hold
    /// a value of `max_value_len` (a set one, or the default 1 MiB when the
    /// cap holds 8 such segments: see [`Builder::max_value_len`]).
    ///
    /// ```
    /// let b = keg::Cache::builder().max_bytes(1 << 30).segment_bytes(8 << 20);
    /// ```
    pub fn segment_bytes(mut self, bytes: u64) -> Builder {
        self.segment_bytes = Some(bytes);
        self
    }

    /// Sets the longest key accepted (default 1024 bytes, at most 65535).
    ///
    /// ```
    /// let b = keg::Cache::builder().max_key_len(250);
    /// ```
    pub fn max_key_len(mut self, len: usize) -> Builder {
        self.max_key_len = len;
        self
    }

    /// Sets the largest value accepted (at least 1). A record never spans
    /// segments, so a value must fit in one beside the segment's 32-byte
    /// header, the record's 28-byte header and a key of `max_key_len` bytes;
    /// without an explicit `segment_bytes`, segments grow to fit it (up to
    /// 1 GiB), and the cap must hold 8 of them.
    ///
    /// The default is 1 MiB (memcached's default item size) unless the cap
    /// cannot hold it. Exactly: let a *1 MiB segment* be
    /// 1 MiB + 60 + `max_key_len` bytes rounded up to 4 KiB (1 MiB + 4 KiB
    /// with the default 1024-byte keys).
    ///
    /// - With `segment_bytes` set: the smaller of 1 MiB and the largest value
    ///   a segment holds (`segment_bytes` − 60 − `max_key_len`).
    /// - Otherwise, if `max_bytes` is at least 8 × a 1 MiB segment
    ///   (8,421,376 bytes with the default key length): 1 MiB, and segments
    ///   are at least a 1 MiB segment long.
    /// - Otherwise: the largest value a segment of the default size holds
    ///   (`max_bytes / 64`, at least 64 KiB, rounded down to 4 KiB; minus 60
    ///   and `max_key_len`): 64,452 bytes under a cap of 4 MiB or less.
    ///
    /// [`Cache::stats`](crate::Cache::stats) does not show it; a value over it
    /// is refused with [`Error::ValueTooLarge`](crate::Error::ValueTooLarge),
    /// which names the limit.
    ///
    /// ```
    /// let b = keg::Cache::builder().max_value_len(4 << 20);
    /// ```
    pub fn max_value_len(mut self, len: usize) -> Builder {
        self.max_value_len = Some(len);
        self
    }

    /// Chooses what an acknowledged write survives (default [`Durability::Flushed`]).
    ///
    /// ```
    /// let b = keg::Cache::builder().durability(keg::Durability::Buffered);
    /// ```
    pub fn durability(mut self, d: Durability) -> Builder {
        self.durability = d;
        self
    }

    /// Sets the write buffer of [`Durability::Buffered`] (default 1 MiB;
    /// 4 KiB ..= 64 MiB, [`MIN_WRITE_BUFFER_BYTES`] ..= [`MAX_WRITE_BUFFER_BYTES`]).
    ///
    /// ```
    /// let b = keg::Cache::builder().durability(keg::Durability::Buffered).write_buffer_bytes(4 << 20);
    /// ```
    pub fn write_buffer_bytes(mut self, bytes: usize) -> Builder {
        self.write_buffer_bytes = bytes;
        self
    }

    /// Sets how long a buffered write may wait before it is handed to the OS
    /// (default 100 ms; 10 ms ..= 1 s, [`MIN_FLUSH_INTERVAL`] ..=
    /// [`MAX_FLUSH_INTERVAL`]; [`Durability::Buffered`] only). The background
    /// maintenance thread does this: with
    /// [`background_maintenance(false)`](Builder::background_maintenance) the
    /// buffer is handed over only when full, on
    /// [`Cache::flush`](crate::Cache::flush) and on close.
    ///
    /// ```
    /// let b = keg::Cache::builder().flush_interval(std::time::Duration::from_millis(20));
    /// ```
    pub fn flush_interval(mut self, every: Duration) -> Builder {
        self.flush_interval = every;
        self
    }

    /// Sets the dead fraction (0.1 ..= 0.9, default 0.5) at which background
    /// compaction rewrites a segment.
    ///
    /// ```
    /// let b = keg::Cache::builder().compaction_threshold(0.3);
    /// ```
    pub fn compaction_threshold(mut self, fraction: f64) -> Builder {
        self.compaction_threshold = fraction;
        self
    }

    /// Runs maintenance (hint files, eviction, compaction) on a background
    /// thread (the default). When off, writers evict inline as the cap
    /// requires and compaction runs only on [`Cache::compact`](crate::Cache::compact).
    ///
    /// ```
    /// let b = keg::Cache::builder().background_maintenance(false);
    /// ```
    pub fn background_maintenance(mut self, on: bool) -> Builder {
        self.background = on;
        self
    }

    /// Uses another clock for expiry (tests use [`crate::ManualClock`]).
    ///
    /// ```
    /// let b = keg::Cache::builder().clock(keg::ManualClock::new(0));
    /// ```
    pub fn clock(mut self, clock: impl Clock) -> Builder {
        self.clock = Arc::new(clock);
        self
    }

    /// Replaces the key hash (for tests that need hash collisions). Every
    /// open of a directory must use the same function.
    ///
    /// ```
    /// let b = keg::Cache::builder().key_hasher(|_key: &[u8]| 42);
    /// ```
    #[doc(hidden)]
    pub fn key_hasher(mut self, f: impl Fn(&[u8]) -> u64 + Send + Sync + 'static) -> Builder {
        self.hasher = KeyHasher::Custom(Arc::new(f));
        self
    }

    /// Routes the cache's file I/O through a fault-injecting simulator (tests only).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let fs = keg::sim::FaultFs::new();
    /// let cache = keg::Cache::builder().storage(fs).open(dir.path()).unwrap();
    /// ```
    #[cfg(feature = "fault-injection")]
    pub fn storage(mut self, fs: crate::sim::FaultFs) -> Builder {
        self.storage = Storage { sim: Some(fs) };
        self
    }

    /// The validated settings and the pieces an open needs.
    pub(crate) fn into_parts(self) -> Result<(Config, Arc<dyn Clock>, KeyHasher, Storage)> {
        let config = self.config()?;
        Ok((config, self.clock, self.hasher, self.storage))
    }

    pub(crate) fn config(&self) -> Result<Config> {
        let bad = |msg: String| Err(Error::Config(msg));
        if self.max_key_len == 0 || self.max_key_len > MAX_KEY_LEN {
            return bad(format!("max_key_len is {}; it must be 1 ..= {MAX_KEY_LEN}", self.max_key_len));
        }
        let (lo, hi) = COMPACTION_THRESHOLD_RANGE;
        if !(lo..=hi).contains(&self.compaction_threshold) {
            return bad(format!("compaction_threshold is {}; it must be {lo} ..= {hi}", self.compaction_threshold));
        }
        if !(MIN_WRITE_BUFFER_BYTES..=MAX_WRITE_BUFFER_BYTES).contains(&self.write_buffer_bytes) {
            return bad(format!(
                "write_buffer_bytes is {}; it must be {MIN_WRITE_BUFFER_BYTES} ..= {MAX_WRITE_BUFFER_BYTES} (4 KiB ..= 64 MiB)",
                self.write_buffer_bytes
            ));
        }
        if !(MIN_FLUSH_INTERVAL..=MAX_FLUSH_INTERVAL).contains(&self.flush_interval) {
            return bad(format!(
                "flush_interval is {:?}; it must be {MIN_FLUSH_INTERVAL:?} ..= {MAX_FLUSH_INTERVAL:?}",
                self.flush_interval
            ));
        }
        if self.max_value_len == Some(0) {
            return bad("max_value_len is 0; it must be at least 1".into());
        }
        let overhead = (segment::HEADER_LEN + record::HEADER_LEN + self.max_key_len) as u64;
        // The smallest segment (a multiple of 4 KiB) that holds a value of `v` bytes.
        let holding = |v: u64| (v + overhead).next_multiple_of(4096);
        let segment_bytes = match (self.segment_bytes, self.max_value_len) {
            (Some(s), _) => s,
            (None, v) => {
                let (lo, hi) = DEFAULT_SEGMENT_BYTES_RANGE;
                let auto = (self.max_bytes / 64).clamp(lo, hi) & !4095;
                match v {
                    Some(v) => auto.max(holding(v as u64)),
                    // Room for the default largest value, if the cap holds it.
                    None => {
                        let default = holding(DEFAULT_MAX_VALUE_LEN as u64);
                        if self.max_bytes >= default * MIN_SEGMENTS {
                            auto.max(default)
                        } else {
                            auto
                        }
                    }
                }
            }
        };
        if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&segment_bytes) {
            if self.segment_bytes.is_none() {
                // Grown to fit max_value_len.
                return bad(format!(
                    "max_value_len is {} and needs segments of {segment_bytes} bytes, but a segment holds at most {MAX_SEGMENT_BYTES} bytes; lower max_value_len",
                    self.max_value_len.unwrap_or(0)
                ));
            }
            return bad(format!(
                "segment_bytes is {segment_bytes}; it must be {MIN_SEGMENT_BYTES} ..= {MAX_SEGMENT_BYTES} (4 KiB ..= 1 GiB)"
            ));
        }
        if self.max_bytes < segment_bytes * MIN_SEGMENTS {
            return bad(format!(
                "max_bytes is {} but must hold at least {MIN_SEGMENTS} segments of {segment_bytes} bytes ({}); raise max_bytes or lower segment_bytes",
                self.max_bytes,
                segment_bytes * MIN_SEGMENTS
            ));
        }
        let room = (segment_bytes - overhead.min(segment_bytes)) as usize;
        let max_value_len = match self.max_value_len {
            Some(v) if v > room => {
                return bad(format!(
                    "max_value_len is {v} but a {segment_bytes}-byte segment holds values of at most {room} bytes with {}-byte keys; raise segment_bytes or lower max_value_len",
                    self.max_key_len
                ))
            }
            Some(v) => v,
            None => DEFAULT_MAX_VALUE_LEN.min(room),
        };
        if max_value_len == 0 {
            return bad(format!(
                "segment_bytes is {segment_bytes}, which holds no value beside a key of max_key_len ({}) bytes (a segment has a {}-byte header, a record {} bytes and its key before the value); raise segment_bytes or lower max_key_len",
                self.max_key_len,
                segment::HEADER_LEN,
                record::HEADER_LEN
            ));
        }
        Ok(Config {
            max_bytes: self.max_bytes,
            segment_bytes,
            max_key_len: self.max_key_len,
            max_value_len,
            durability: self.durability,
            write_buffer_bytes: self.write_buffer_bytes,
            flush_interval: self.flush_interval,
            compaction_threshold: self.compaction_threshold,
            background: self.background,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_consistent() {
        let c = Builder::new().config().unwrap();
        assert_eq!((c.max_bytes, c.segment_bytes, c.max_value_len), (1 << 30, 16 << 20, 1 << 20));
        let small = Builder::new().max_bytes(4 << 20).config().unwrap();
        assert_eq!(small.segment_bytes, 64 << 10);
        assert_eq!(small.max_value_len, (64 << 10) - 32 - 28 - 1024);
    }

    #[test]
    fn inconsistent_settings_are_refused_with_advice() {
        let e = Builder::new().max_bytes(1 << 20).segment_bytes(1 << 20).config().unwrap_err();
        assert!(e.to_string().contains("at least 8 segments"), "{e}");
        let e = Builder::new().segment_bytes(64 << 10).max_value_len(1 << 20).config().unwrap_err();
        assert!(e.to_string().contains("raise segment_bytes"), "{e}");
        assert!(Builder::new().max_key_len(0).config().is_err());
        assert!(Builder::new().max_key_len(70_000).config().is_err());
        let grown = Builder::new().max_value_len(32 << 20).config().unwrap();
        assert!(grown.segment_bytes >= 32 << 20);
    }
}
