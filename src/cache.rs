//! `Cache`: the API users call. It asks the index, reads through the log,
//! and hands writes to the log writer; maintenance and recovery sit beside it.

mod namespace;
mod ops;

pub use namespace::Namespace;
#[cfg(feature = "server")]
pub(crate) use ops::{parse_number, Rewrite};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::config::{Builder, Config, Durability};
use crate::engine::Engine;
use crate::error::Result;
use crate::flight::Flights;
use crate::hash::KeyHasher;
use crate::index::Loc;
use crate::item::SetOptions;
use crate::maintain::{self, Worker};
use crate::stats::{bump, Stats};
use crate::storage::Storage;
use crate::value::Value;

/// A persistent cache in one directory.
///
/// `Cache` is `Send + Sync`: share it between threads with an `Arc` (or by
/// reference in scoped threads). Reads never wait for a writer's disk I/O;
/// writes are serialised through one appender.
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// cache.set(b"user:42", b"{\"name\":\"Ada\"}", Some(Duration::from_secs(3600))).unwrap();
/// assert_eq!(cache.get(b"user:42").unwrap().unwrap(), b"{\"name\":\"Ada\"}");
/// drop(cache);
/// // The data outlives the process.
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// assert!(cache.contains(b"user:42").unwrap());
/// ```
pub struct Cache {
    inner: Arc<Engine>,
    worker: Option<Worker>,
    abandoned: bool,
    /// Keys whose value a `get_or_set_with` caller is computing now.
    flights: Flights,
}

impl Cache {
    /// Opens (or creates) the cache in `dir` with default settings; which
    /// directories it accepts is in [`Builder::open`].
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// ```
    pub fn open(dir: impl AsRef<Path>) -> Result<Cache> {
        Builder::new().open(dir)
    }

    /// A builder for settings other than the defaults.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::builder().max_bytes(64 << 20).open(dir.path()).unwrap();
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) fn open_with(
        dir: &Path,
        config: Config,
        clock: Arc<dyn Clock>,
        hasher: KeyHasher,
        storage: Storage,
        read_only: bool,
    ) -> Result<Cache> {
        let engine = Engine::open(dir, config, clock, hasher, storage, read_only, maintain::evict_inline)?;
        let background = !read_only && engine.config.background;
        if background {
            maintain::after_open(&engine);
        }
        let worker = background.then(|| Worker::start(engine.clone()));
        Ok(Cache { inner: engine, worker, abandoned: false, flights: Flights::default() })
    }

    /// Looks `key` up. Returns `None` for a missing, expired or damaged entry.
    ///
    /// The value is verified against its checksum on every read and returned
    /// without copying (see [`Value`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// assert!(cache.get(b"absent").unwrap().is_none());
    /// cache.set(b"present", b"yes", None).unwrap();
    /// assert_eq!(cache.get(b"present").unwrap().unwrap(), b"yes");
    /// ```
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        let started = crate::latency::start(crate::latency::Op::Get);
        let inner = &*self.inner;
        inner.check_key(key)?;
        let hash = inner.hasher.hash(key);
        let value = inner.read_item(key, hash, true, false).map(|item| item.value);
        let c = &inner.counters;
        if value.is_some() { &c.hits } else { &c.misses }.add(1);
        c.get_latency.finish(started);
        Ok(value)
    }

    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// `ttl` is the time to live: `None` keeps the entry until it is deleted or
    /// evicted; `Some(Duration::ZERO)` deletes the key (the value expires at
    /// once); a TTL reaching past the year 2106 counts as no TTL. Expiry is
    /// stored as an absolute time, so it holds across restarts.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"session:9", b"data", Some(Duration::from_secs(900))).unwrap();
    /// let err = cache.set(&vec![b'k'; 5000], b"v", None).unwrap_err();
    /// assert!(matches!(err, keg::Error::KeyTooLong { len: 5000, max: 1024 }));
    /// ```
    pub fn set(&self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> Result<()> {
        self.set_with(key, value, &SetOptions::new().ttl(ttl)).map(|_| ())
    }

    /// Deletes `key`. Returns whether a live (unexpired) value was removed.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// assert!(cache.delete(b"k").unwrap());
    /// assert!(!cache.delete(b"k").unwrap());
    /// assert!(cache.get(b"k").unwrap().is_none());
    /// ```
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        let inner = &*self.inner;
        inner.check_key(key)?;
        let removed = inner.remove(key, false)?;
        if removed {
            bump(&inner.counters.deletes);
        }
        Ok(removed)
    }

    /// Whether `key` has a live value: exactly when [`Cache::get`] would
    /// return one (the record is read and its checksum verified, but the
    /// value is not copied, and the read does not count as a hit).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// assert!(cache.contains(b"k").unwrap());
    /// assert!(!cache.contains(b"other").unwrap());
    /// ```
    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        let inner = &*self.inner;
        inner.check_key(key)?;
        let hash = inner.hasher.hash(key);
        // The record is read and verified as `get` does: an entry may point
        // at a record of the key that is no value of it (a damaged record, or
        // a tombstone a lying hint listed as a value), and `contains` must
        // not say yes where `get` finds nothing.
        Ok(inner.read_item(key, hash, false, false).is_some())
    }

    /// Number of entries in the index, including expired entries that have not
    /// been reclaimed yet (expiry is lazy, as in memcached), and entries an
    /// invalidation ([`Cache::invalidate_tag`], [`Cache::drop_namespace`])
    /// hides, until reclaimed the same way.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"a", b"1", None).unwrap();
    /// cache.set(b"b", b"2", None).unwrap();
    /// assert_eq!(cache.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.index.len()
    }

    /// Whether the index holds no entries.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// assert!(keg::Cache::open(dir.path()).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hands every buffered write to the operating system (only
    /// [`Durability::Buffered`] buffers), and brings disk use within the
    /// space bound: if a sealed segment is `compaction_threshold` dead or
    /// more, `flush` compacts every such segment before it returns, as a
    /// clean close does, so that the segment files then hold at most
    /// live / (1 − threshold) bytes plus the active segments (README, "Disk
    /// use"). When no segment is past the threshold (the common case)
    /// that check is all it adds; after a burst of overwrites, `flush` takes
    /// as long as rewriting the live records of those segments (and an
    /// fsync first). With [`background_maintenance(false)`](Builder::background_maintenance)
    /// it compacts nothing: [`Cache::run_maintenance`] does. A compaction
    /// that fails is counted in [`Stats::maintenance_errors`], as a
    /// background round's, and does not fail the flush.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::builder().durability(keg::Durability::Buffered).open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// cache.flush().unwrap(); // now a kill -9 cannot lose it
    /// ```
    pub fn flush(&self) -> Result<()> {
        if self.inner.read_only {
            return Ok(());
        }
        self.inner.lock_writer().flush()?;
        maintain::compact_due(&self.inner);
        Ok(())
    }

    /// The durability mode the cache was opened with.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::builder().durability(keg::Durability::Synced).open(dir.path()).unwrap();
    /// assert_eq!(cache.durability(), keg::Durability::Synced);
    /// ```
    pub fn durability(&self) -> Durability {
        self.inner.config.durability
    }

    /// Makes every write so far durable (fsync), whatever the durability mode.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// cache.sync().unwrap(); // now a power loss cannot lose it
    /// ```
    pub fn sync(&self) -> Result<()> {
        if self.inner.read_only {
            return Ok(());
        }
        let seq = self.inner.lock_writer().next_seq - 1;
        self.inner.sync_to(seq)
    }

    /// Rewrites, now, every segment that rewriting would shrink — one holding
    /// overwritten, deleted or expired values, or tombstones that no older
    /// value needs any more — so that disk usage comes down to the live data
    /// (background compaction does this gradually, for segments past the
    /// compaction threshold). Running it twice in a row rewrites nothing the
    /// second time.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// for i in 0..100u32 {
    ///     cache.set(b"same key", &i.to_le_bytes(), None).unwrap();
    /// }
    /// cache.compact().unwrap();
    /// assert!(cache.stats().dead_bytes < 200);
    /// ```
    pub fn compact(&self) -> Result<()> {
        self.inner.check_writable()?;
        maintain::compact_all(&self.inner)
    }

    /// Removes every entry and every segment file.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// cache.clear().unwrap();
    /// assert!(cache.is_empty());
    /// assert!(cache.get(b"k").unwrap().is_none());
    /// ```
    pub fn clear(&self) -> Result<()> {
        self.inner.check_writable()?;
        maintain::clear(&self.inner)
    }

    /// Runs one round of background maintenance now, in this thread: hint
    /// files, eviction down to the eviction threshold, compaction of segments
    /// past the compaction threshold. For tests and tools that run without the
    /// background thread.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::builder().background_maintenance(false).open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// cache.run_maintenance().unwrap();
    /// ```
    pub fn run_maintenance(&self) -> Result<()> {
        self.inner.check_writable()?;
        maintain::run_once(&self.inner, false)
    }

    /// A snapshot of the cache's counters and sizes.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// let s = cache.stats();
    /// assert_eq!(s.entries, 1);
    /// assert!(s.disk_bytes > 0 && s.live_bytes > 0);
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The cache's directory.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// assert_eq!(cache.path(), dir.path());
    /// ```
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Closes the cache cleanly, reporting any error. Dropping a `Cache` does
    /// the same but can only ignore errors. A clean close writes hint files and
    /// a checkpoint so that the next open is fast.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// cache.close().unwrap();
    /// ```
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    /// Drops the cache the way a killed process would: no final flush, seal,
    /// hint files or checkpoint (bytes already handed to the OS stay). For
    /// crash tests; the lock is released.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// cache.abandon();
    /// assert!(keg::Cache::open(dir.path()).unwrap().get(b"k").unwrap().is_some());
    /// ```
    #[doc(hidden)]
    pub fn abandon(mut self) {
        self.abandoned = true;
    }

    /// Inspection hook (used by [`crate::inspect::Classifier`]): whether the
    /// index entry for `key` points at exactly the record at `offset` in
    /// segment `segment`.
    ///
    /// `Some(true)`: it does, so that record is the one `get` would serve
    /// (expired or not). `Some(false)`: it does not (the record is shadowed,
    /// deleted, or a tombstone). `None`: the location lies outside what this
    /// cache has read: a segment it does not hold, or bytes past the end it
    /// saw (appended by another process after a read-only open, or after
    /// damage that stopped recovery's scan).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// // The first record of the first segment sits right after its 32-byte header.
    /// assert_eq!(cache.index_points_at(b"k", 1, 32), Some(true));
    /// assert_eq!(cache.index_points_at(b"other", 1, 32), Some(false));
    /// assert_eq!(cache.index_points_at(b"k", 99, 32), None);
    /// ```
    #[doc(hidden)]
    pub fn index_points_at(&self, key: &[u8], segment: u32, offset: u64) -> Option<bool> {
        let seg = self.inner.segments.get(segment)?;
        if offset >= seg.visible() {
            return None;
        }
        let off = u32::try_from(offset).ok()?;
        let hash = self.inner.hasher.hash(key);
        Some(self.inner.index.get_at(hash, Loc { seg: segment, off }).is_some())
    }

    /// Inspection hook: the time (Unix ms) this cache judges expiry against:
    /// its clock, never earlier than the latest time the cache has recorded.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::builder().clock(keg::ManualClock::new(5_000)).open(dir.path()).unwrap();
    /// assert_eq!(cache.now_ms(), 5_000);
    /// ```
    #[doc(hidden)]
    pub fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    /// The shared state, for the read-only walks in [`crate::inspect`].
    pub(crate) fn inner(&self) -> &Engine {
        &self.inner
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
        if self.inner.read_only || self.abandoned {
            return Ok(());
        }
        maintain::close(&self.inner)
    }
}

/// Opening, here rather than beside the settings so that `config` stays below
/// `Cache` (it knows nothing of what it configures).
impl Builder {
    /// Opens (or creates) the cache in `dir`, taking its lock.
    ///
    /// `dir` must be missing or empty (a new cache: keg writes its `KEG`
    /// marker there first), or hold a keg cache (one with the marker, or one
    /// an older keg wrote, whose files are all keg's: it is adopted). Any
    /// other directory is refused with [`Error::NotACache`](crate::Error::NotACache),
    /// naming the first file keg did not write, before anything is written:
    /// keg never deletes, overwrites or writes among files it did not create
    /// (FORMAT.md, section 1.2).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::builder().open(dir.path().join("cache")).unwrap();
    /// ```
    pub fn open(self, dir: impl AsRef<Path>) -> Result<Cache> {
        let (config, clock, hasher, storage) = self.into_parts()?;
        Cache::open_with(dir.as_ref(), config, clock, hasher, storage, false)
    }

    /// Opens an existing cache read-only, without taking its lock: works on a
    /// cache another process has open, sees its data as of the open, and
    /// never writes a byte. It refuses what [`Builder::open`] refuses, and a
    /// missing directory.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let writer = keg::Cache::open(dir.path()).unwrap();
    /// writer.set(b"k", b"v", None).unwrap();
    /// let reader = keg::Cache::builder().open_read_only(dir.path()).unwrap();
    /// assert_eq!(reader.get(b"k").unwrap().unwrap(), b"v");
    /// ```
    pub fn open_read_only(self, dir: impl AsRef<Path>) -> Result<Cache> {
        let (config, clock, hasher, storage) = self.into_parts()?;
        Cache::open_with(dir.as_ref(), config, clock, hasher, storage, true)
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("dir", &self.inner.dir).field("entries", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Cache;
    use crate::maintain;

    /// Background compaction waits one round while a segment is still being
    /// overwritten (it lost at least an eighth of its bytes since the round
    /// before, or was sealed since), unless it is 90% dead; the next round
    /// compacts it, dying or not. `run_maintenance` (and open and close) do
    /// not wait.
    #[test]
    fn background_compaction_waits_a_round_for_a_segment_to_stop_dying() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::builder()
            .max_bytes(64 << 20)
            .segment_bytes(64 << 10)
            .background_maintenance(false)
            .open(dir.path())
            .unwrap();
        let key = |k: u32| format!("key{k:05}");
        let set = |k: u32| cache.set(key(k).as_bytes(), &[7u8; 1000], None).unwrap();
        // Four segments of distinct keys: segment i holds keys i*per..(i+1)*per.
        let mut k = 0;
        while cache.stats().segments < 5 {
            set(k);
            k += 1;
        }
        let per = (k - 1) / 4;
        let part = |i: u32, from: u32, to: u32| (i * per + per * from / 100..i * per + per * to / 100).for_each(set);
        let round = || maintain::run_once(&cache.inner, true).unwrap();
        let compactions = || cache.stats().compactions;
        round();
        // The first: 60% overwritten since the last round: it waits.
        part(0, 0, 60);
        round();
        assert_eq!(compactions(), 0, "compacted while being overwritten");
        // No writes since: compacted.
        round();
        assert_eq!(compactions(), 1, "not compacted once it stopped dying");
        // The second: 60%, then 80%: it waits one round, not two.
        part(1, 0, 60);
        round();
        assert_eq!(compactions(), 1, "compacted while being overwritten");
        part(1, 60, 80);
        round();
        assert_eq!(compactions(), 2, "waited more than one round");
        // The third, 95% dead at once: compacted without waiting.
        part(2, 0, 95);
        round();
        assert_eq!(compactions(), 3, "a segment 90% dead waited");
        // The fourth, 60%: `run_maintenance` does not wait.
        part(3, 0, 60);
        cache.run_maintenance().unwrap();
        assert_eq!(compactions(), 4, "run_maintenance waited");
    }
}
