//! `Cache`: the API users call. It asks the index, reads through the log,
//! and hands writes to the log writer; maintenance and recovery sit beside it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::{Clock, MonotonicTime, CLOCK_LEASE_MS};
use crate::config::{Builder, Config, Durability};
use crate::error::{Error, Result};
use crate::format::checkpoint::Checkpoint;
use crate::format::record::{self, Header, Kind};
use crate::format::segment::LogKind;
use crate::hash::KeyHasher;
use crate::index::{Entry, Index, Loc};
use crate::lock::DirLock;
use crate::log::hints::expires_s;
use crate::log::segment::ReadError;
use crate::log::writer::{NewRecord, Writer};
use crate::log::{Segment, Segments};
use crate::maintain::{self, Ghost, Worker};
use crate::recovery::{self, write_checkpoint};
use crate::stats::{bump, Counters, Stats};
use crate::storage::Storage;
use crate::value::Value;

/// Expiry times past this (in Unix ms, about the year 2106) mean "never".
const MAX_EXPIRY_MS: u64 = (u32::MAX as u64 - 1) * 1000;

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
    inner: Arc<Inner>,
    worker: Option<Worker>,
    abandoned: bool,
}

/// The shared state behind a `Cache` and its maintenance thread.
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    pub(crate) config: Config,
    pub(crate) read_only: bool,
    pub(crate) hasher: KeyHasher,
    pub(crate) storage: Storage,
    pub(crate) time: MonotonicTime,
    pub(crate) index: Index,
    pub(crate) segments: Segments,
    pub(crate) writer: Mutex<Writer>,
    pub(crate) counters: Counters,
    /// Outermost lock: held by whoever runs maintenance (background thread,
    /// an evicting writer, compact, clear, close).
    pub(crate) maint: Mutex<maintain::State>,
    pub(crate) ghost: Mutex<Ghost>,
    pub(crate) wake: maintain::Wake,
    pub(crate) checkpoint: Mutex<Checkpoint>,
    /// Segments being reclaimed, or removed since the directory was last
    /// fsynced: a power cut could bring such a segment back, so tombstones
    /// must still count its values, and a delete that finds nothing must still
    /// write a tombstone (see `Pending`).
    pub(crate) removed_unsynced: Mutex<Vec<Pending>>,
    /// After a failed clock-mark write: no retry before this time (0 = none pending).
    clock_retry_ms: std::sync::atomic::AtomicU64,
    group: GroupCommit,
    _lock: Option<DirLock>,
}

/// Group commit: one thread fsyncs for every writer waiting on it.
#[derive(Default)]
struct GroupCommit {
    state: Mutex<GroupState>,
    done: Condvar,
}

#[derive(Default)]
struct GroupState {
    durable_seq: u64,
    syncing: bool,
}

/// A segment whose records a power cut could bring back although the index
/// has dropped them: reclaim registers it before it drops any entry, and it is
/// forgotten once its file's removal is durable (a directory fsync after it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) seg: u32,
    pub(crate) log: LogKind,
    /// Smallest sequence number of a value record in it.
    pub(crate) min_value_seq: u64,
    /// Its file has been removed (a directory fsync from now on makes that durable).
    pub(crate) removed: bool,
}

/// A key's current entry, found by `locate`.
struct Located {
    seg: Arc<Segment>,
    entry: Entry,
    header: Header,
}

impl Cache {
    /// Opens (or creates) the cache in `dir` with default settings.
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
        let lock = if read_only {
            if !dir.is_dir() {
                return Err(Error::NotACache { path: dir.to_owned(), reason: "no such cache directory".into() });
            }
            None
        } else {
            storage.create_dir_all(dir)?;
            Some(DirLock::acquire(dir)?)
        };
        #[cfg(feature = "fault-injection")]
        if let Some(sim) = &storage.sim {
            sim.adopt_dir(dir);
        }
        let counters = Counters::default();
        let resume = (!read_only).then_some(config.segment_bytes);
        let rec = recovery::recover(&storage, dir, &hasher, read_only, resume, &counters)?;
        let segments = Segments::default();
        for seg in &rec.segments {
            segments.insert(seg.clone());
        }
        let buffer = if config.durability == Durability::Buffered { config.write_buffer_bytes.max(1) } else { 0 };
        let mut writer = Writer::new(&storage, dir, rec.next_seq, rec.next_id, config.segment_bytes, buffer);
        writer.sealed = rec.need_hint;
        for seg in rec.resumed {
            writer.resume(seg);
        }
        let time = MonotonicTime::new(clock, rec.clock_floor_ms, !read_only);
        let inner = Arc::new(Inner {
            dir: dir.to_owned(),
            group: GroupCommit {
                state: Mutex::new(GroupState { durable_seq: rec.next_seq - 1, syncing: false }),
                done: Condvar::new(),
            },
            maint: Mutex::new(maintain::State::new(&config)),
            ghost: Mutex::new(Ghost::new(config.max_bytes)),
            removed_unsynced: Mutex::new(Vec::new()),
            clock_retry_ms: Default::default(),
            wake: maintain::Wake::default(),
            checkpoint: Mutex::new(rec.checkpoint),
            config,
            read_only,
            hasher,
            storage,
            time,
            index: rec.index,
            segments,
            writer: Mutex::new(writer),
            counters,
            _lock: lock,
        });
        for key in &rec.split_keys {
            inner.settle_split_key(key)?;
        }
        let worker = (!read_only && inner.config.background).then(|| Worker::start(inner.clone()));
        Ok(Cache { inner, worker, abandoned: false })
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
        let inner = &*self.inner;
        inner.check_key(key)?;
        let hash = inner.hasher.hash(key);
        let now = inner.now_ms();
        let value = inner.read_value(key, hash, now, true);
        let c = &inner.counters;
        bump(if value.is_some() { &c.hits } else { &c.misses });
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
        let inner = &*self.inner;
        inner.check_key(key)?;
        if value.len() > inner.config.max_value_len {
            return Err(Error::ValueTooLarge { len: value.len(), max: inner.config.max_value_len });
        }
        let now = inner.now_ms();
        let expires_ms = match ttl {
            Some(ttl) if ttl.is_zero() => {
                inner.remove(key)?;
                return Ok(());
            }
            Some(ttl) => {
                let ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
                let at = now.saturating_add(ms);
                if at > MAX_EXPIRY_MS {
                    0
                } else {
                    at
                }
            }
            None => 0,
        };
        let seq = inner.put(key, value, expires_ms, now)?;
        bump(&inner.counters.sets);
        inner.wait_durable(seq)
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
        let removed = inner.remove(key)?;
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
        let now = inner.now_ms();
        // The record is read and verified as `get` does: an entry may point
        // at a record of the key that is no value of it (a damaged record, or
        // a tombstone a lying hint listed as a value), and `contains` must
        // not say yes where `get` finds nothing.
        Ok(inner.read_value(key, hash, now, false).is_some())
    }

    /// Number of entries in the index, including expired entries that have not
    /// been reclaimed yet (expiry is lazy, as in memcached).
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
    /// [`Durability::Buffered`] buffers; in other modes this does nothing).
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
        self.inner.lock_writer().flush()
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
        maintain::run_once(&self.inner, true)
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
    pub(crate) fn inner(&self) -> &Inner {
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

#[inline]
pub(crate) fn expired(expires_ms: u64, now_ms: u64) -> bool {
    expires_ms != 0 && expires_ms <= now_ms
}

impl Inner {
    fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            Err(Error::EmptyKey)
        } else if key.len() > self.config.max_key_len {
            Err(Error::KeyTooLong { len: key.len(), max: self.config.max_key_len })
        } else {
            Ok(())
        }
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.read_only {
            Err(Error::ReadOnly { path: self.dir.clone() })
        } else {
            Ok(())
        }
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Finds `key`'s entry. `writer` gives access to records still in the write
    /// buffer when the caller holds the writer lock.
    fn locate(&self, key: &[u8], hash: u64, count_hit: bool, writer: Option<&Writer>) -> Lookup {
        'retry: for _ in 0..8 {
            let mut unreadable = false;
            for entry in self.index.lookup(hash, count_hit).iter() {
                let Some(seg) = self.segments.get(entry.loc.seg) else {
                    // Maintenance moved the entry and removed the segment meanwhile: look again.
                    continue 'retry;
                };
                let in_file = seg.peek(entry.loc.off);
                let from_file = in_file.is_some();
                let peeked = in_file.or_else(|| writer.and_then(|w| w.peek_pending(entry.loc)));
                let Some((header, stored_key)) = peeked else {
                    if seg.is_sealed() || self.config.durability != Durability::Buffered {
                        // Damaged: it may be this key's record or another's. It must
                        // not hide a readable entry of this key, so look on.
                        unreadable = true;
                        continue;
                    }
                    return Lookup::Buffered;
                };
                if stored_key == key {
                    return Lookup::Found(Located { seg, entry: *entry, header });
                }
                // Another key only if the record is intact: a damaged one (or
                // bytes in the middle of a record, where a lying hint put an
                // entry) can show any key, and it may be this key's newest
                // record. (Verified only here, on a hash collision.)
                if from_file && seg.read(entry.loc.off).is_err() {
                    unreadable = true;
                }
            }
            return if unreadable { Lookup::Corrupt } else { Lookup::Missing };
        }
        Lookup::Missing
    }

    /// `locate` for callers without the writer lock: flushes the write buffer
    /// when the entry is still in it. If the buffer cannot be written (the
    /// failure turns writes off), the entry is found in the buffer instead:
    /// an acknowledged write stays readable.
    fn locate_flushing(&self, key: &[u8], hash: u64, count_hit: bool) -> Option<Located> {
        for _ in 0..2 {
            match self.locate(key, hash, count_hit, None) {
                Lookup::Found(l) => return Some(l),
                Lookup::Buffered => {
                    let w = &mut *self.lock_writer();
                    if w.flush().is_err() {
                        return match self.locate(key, hash, false, Some(w)) {
                            Lookup::Found(l) => Some(l),
                            _ => None,
                        };
                    }
                }
                Lookup::Corrupt => {
                    bump(&self.counters.corrupt_reads);
                    return None;
                }
                Lookup::Missing => return None,
            }
        }
        None
    }

    /// The value `key` reads as. With `count`, the read counts: a hit for the
    /// entry's eviction counter, and in the expired and corrupt read stats.
    fn read_value(&self, key: &[u8], hash: u64, now: u64, count: bool) -> Option<Value> {
        let bump = |c: &std::sync::atomic::AtomicU64| {
            if count {
                bump(c)
            }
        };
        let found = self.locate_flushing(key, hash, count)?;
        if expired(found.header.expires_ms, now) {
            bump(&self.counters.expired_reads);
            return None;
        }
        match found.seg.read(found.entry.loc.off) {
            Ok(rec) if rec.kind == Kind::Value && rec.key == key => {
                let start = found.seg.offset_of(rec.value);
                let len = rec.value.len();
                Some(Value::mapped(found.seg.clone(), start, len))
            }
            Err(ReadError::NotVisible) if !found.seg.is_sealed() => {
                // Still in a write buffer that could not be written (see `locate_flushing`).
                let w = self.lock_writer();
                match w.read_pending(found.entry.loc) {
                    Some(rec) if rec.kind == Kind::Value && rec.key == key => Some(Value::owned(rec.value)),
                    _ => {
                        bump(&self.counters.corrupt_reads);
                        None
                    }
                }
            }
            Ok(_) | Err(ReadError::Corrupt) | Err(ReadError::NotVisible) => {
                bump(&self.counters.corrupt_reads);
                None
            }
        }
    }

    /// Writes a value record; returns its sequence number.
    fn put(&self, key: &[u8], value: &[u8], expires_ms: u64, now: u64) -> Result<u64> {
        self.put_in(key, value, expires_ms, now, None)
    }

    /// [`Inner::put`] to log `to`, or (`None`) to the log of the key's
    /// entry, or for a new key to probation (main if the ghost remembers it).
    fn put_in(&self, key: &[u8], value: &[u8], expires_ms: u64, now: u64, to: Option<LogKind>) -> Result<u64> {
        self.check_writable()?;
        let hash = self.hasher.hash(key);
        let len = record::encoded_len(key.len(), value.len()) as u64;
        let mut w = maintain::writer_with_room(self, len)?;
        let existing = match self.locate(key, hash, false, Some(&w)) {
            Lookup::Found(l) => Some(l),
            _ => None,
        };
        let log = match (to, &existing) {
            (Some(log), _) => log,
            (None, Some(l)) => l.seg.log,
            (None, None) if self.lock_ghost().contains(hash) => {
                bump(&self.counters.ghost_hits);
                LogKind::Main
            }
            (None, None) => LogKind::Probation,
        };
        let rec = NewRecord { kind: Kind::Value, seq: None, expires_ms, key, value };
        let (loc, seq) = w.append_record(&self.segments, log, rec, now)?;
        crate::killpoint!("set.before_index");
        self.note_append(&w, loc, seq, true, len);
        let exp = expires_s(expires_ms);
        match existing {
            Some(old) => {
                old.seg.sub_live(old.header.record_len());
                self.index.update(hash, old.entry.loc, loc, exp, None);
            }
            None => self.index.insert(Entry { hash, loc, expires_s: exp, counter: 0 }),
        }
        drop(w);
        maintain::nudge(self);
        Ok(seq)
    }

    /// Deletes `key` by writing a tombstone; returns whether a live value was removed.
    fn remove(&self, key: &[u8]) -> Result<bool> {
        self.remove_as(key, false)
    }

    /// Deletes `key`; with `always`, writes the tombstone even when nothing
    /// readable is found.
    fn remove_as(&self, key: &[u8], always: bool) -> Result<bool> {
        self.check_writable()?;
        let hash = self.hasher.hash(key);
        let len = record::encoded_len(key.len(), 0) as u64;
        let now = self.now_ms(); // (may write the clock mark: not under the writer lock)
        let mut w = maintain::writer_with_room(self, len)?;
        let old = match self.locate(key, hash, false, Some(&w)) {
            Lookup::Found(old) => Some(old),
            // An entry of this hash cannot be read: it may be this key's newest
            // record, shadowing an older value that a later recovery (once the
            // damaged record is gone) would bring back. A tombstone rules that out.
            Lookup::Corrupt => None,
            // Nothing to delete — unless a power cut could bring a value of
            // this key back: a segment whose entries reclaim dropped may
            // still reappear until its removal is durable. Then the delete
            // must leave a tombstone, or it could be undone while later
            // writes survive.
            _ if always || !self.lock_pending().is_empty() => None,
            _ => return Ok(false),
        };
        // Always the main log, whose tombstones count older values of both
        // logs when they are reclaimed. A key's values normally sit in one
        // log, but a damaged or hand-made directory can hold values of one
        // key in both, and a probation tombstone (which counts only probation
        // values) could then be dropped while a main-log value it hides
        // remains: the key would come back after a restart.
        let rec = NewRecord { kind: Kind::Tombstone, seq: None, expires_ms: 0, key, value: b"" };
        let (loc, seq) = w.append_record(&self.segments, LogKind::Main, rec, now)?;
        crate::killpoint!("delete.before_index");
        self.note_append(&w, loc, seq, false, len);
        if let Some(old) = &old {
            old.seg.sub_live(old.header.record_len());
            self.index.remove(hash, old.entry.loc);
        }
        drop(w);
        self.wait_durable(seq)?;
        Ok(old.is_some_and(|old| !expired(old.header.expires_ms, now)))
    }

    /// Settles a key whose main-log value a probation record hides (see
    /// `recovery::Recovered::split_keys`): its newest value, if live and
    /// readable, is copied to the main log (new sequence number), else a
    /// main-log tombstone is written. Either way its newest record is then
    /// in main, whose reclaim counts values of both logs. Nothing to do when
    /// the newest record is in main already, or in a read-only open (which
    /// reclaims nothing, and serves what a writable open would).
    fn settle_split_key(&self, key: &[u8]) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let hash = self.hasher.hash(key);
        let now = self.now_ms();
        let result = match self.locate(key, hash, false, None) {
            Lookup::Found(found) if found.seg.log == LogKind::Main => return Ok(()),
            // (Only an intact value record of this key is copied: an entry
            // from a lying hint may point at a tombstone, which reads as
            // nothing, not as an empty value.)
            Lookup::Found(found) => match found.seg.read(found.entry.loc.off) {
                Ok(r) if r.kind == Kind::Value && r.key == key && !expired(r.header.expires_ms, now) => {
                    self.put_in(key, r.value, r.header.expires_ms, now, Some(LogKind::Main)).map(|_| ())
                }
                _ => self.remove_as(key, true).map(|_| ()),
            },
            _ => self.remove_as(key, true).map(|_| ()),
        };
        match result {
            // Out of numbers (an image holding numbers near the limit):
            // nothing can be written, and nothing can be reclaimed either.
            Ok(()) | Err(Error::SequenceExhausted { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Bookkeeping after an append of a live value (`value`) or a tombstone:
    /// sequence bounds, live and tombstone bytes, counters.
    pub(crate) fn note_append(&self, w: &Writer, loc: Loc, seq: u64, value: bool, len: u64) {
        let _ = w;
        if let Some(seg) = self.segments.get(loc.seg) {
            if value {
                seg.note_value(seq);
                seg.add_live(len);
            } else {
                seg.note_tombstone(seq, len);
            }
        }
        bump(&self.counters.appends);
        crate::stats::add(&self.counters.bytes_appended, len);
    }

    pub(crate) fn lock_ghost(&self) -> MutexGuard<'_, Ghost> {
        self.ghost.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_checkpoint(&self) -> MutexGuard<'_, Checkpoint> {
        self.checkpoint.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `seq` is durable, in synced mode; returns at once otherwise.
    fn wait_durable(&self, seq: u64) -> Result<()> {
        if self.config.durability == Durability::Synced {
            self.sync_to(seq)
        } else {
            Ok(())
        }
    }

    /// Makes every record up to `seq` durable, sharing the fsync with every
    /// other thread that waits at the same time.
    pub(crate) fn sync_to(&self, seq: u64) -> Result<()> {
        let g = &self.group;
        let mut st = g.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if st.durable_seq >= seq {
                return Ok(());
            }
            if !st.syncing {
                st.syncing = true;
                drop(st);
                let result = self.sync_now();
                st = g.state.lock().unwrap_or_else(|e| e.into_inner());
                st.syncing = false;
                g.done.notify_all();
                match result {
                    Ok(done) => st.durable_seq = st.durable_seq.max(done),
                    Err(e) => return Err(e),
                }
                continue;
            }
            st = g.done.wait(st).unwrap_or_else(|e| e.into_inner());
            if !st.syncing && st.durable_seq < seq {
                // The leader failed; a disabled writer reports why.
                self.lock_writer().check_enabled()?;
            }
        }
    }

    /// One fsync round: flushes buffers, fsyncs every file with unsynced bytes.
    /// Returns the sequence number everything up to which is now durable.
    /// A failed fsync disables writes: the kernel may have dropped the data.
    pub(crate) fn sync_now(&self) -> Result<u64> {
        let plan = {
            let mut w = self.lock_writer();
            w.check_enabled()?;
            w.plan_sync()?
        };
        bump(&self.counters.sync_rounds);
        match plan.run(&self.storage, &self.dir) {
            Ok(()) => Ok(plan.seq),
            Err(e) => {
                let mut w = self.lock_writer();
                w.sync_failed(&plan);
                Err(w.disable(e))
            }
        }
    }

    fn stats(&self) -> Stats {
        let mut s = Stats::default();
        self.counters.fill(&mut s);
        s.entries = self.index.len() as u64;
        s.max_bytes = self.config.max_bytes;
        s.disk_bytes = self.segments.disk_bytes();
        for seg in self.segments.all() {
            s.segments += 1;
            s.live_bytes += seg.live_bytes.load(std::sync::atomic::Ordering::Relaxed);
            s.dead_bytes += seg.dead_bytes();
        }
        s.index_bytes = self.index.memory_bytes() as u64;
        let ghost = self.lock_ghost();
        s.ghost_entries = ghost.len();
        s.ghost_bytes = ghost.memory_bytes();
        s
    }

    /// The cache's current time, covered by the clock mark on disk.
    ///
    /// Before the cache uses a time later than the persisted mark, it writes
    /// a checkpoint with a mark a lease ahead (`CLOCK_LEASE_MS`); the
    /// maintenance thread renews it before it runs out, so callers rarely
    /// wait for that write. If the mark cannot be written (a full or failing
    /// disk), time goes on anyway — serving entries past their expiry would
    /// be worse — and the write is retried a second later; only a crash
    /// during such a failure, followed by a clock jumping back, could then
    /// revive an entry.
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        match self.time.try_now_ms() {
            Ok(now) => now,
            Err(wanted) => {
                let _ = self.renew_clock_lease(wanted, wanted);
                self.time.try_now_ms().unwrap_or_else(|now| self.time.past_limit(now))
            }
        }
    }

    /// Makes sure the persisted clock mark is at least `need_ms`, writing a
    /// lease ahead of `from_ms` if it is not.
    pub(crate) fn renew_clock_lease(&self, from_ms: u64, need_ms: u64) -> Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let mark = from_ms.saturating_add(CLOCK_LEASE_MS).max(need_ms);
        if self.read_only || self.time.limit_ms() >= need_ms {
            return Ok(());
        }
        let retry_at = self.clock_retry_ms.load(Relaxed);
        if retry_at != 0 && from_ms < retry_at {
            return Ok(()); // failed a moment ago: do not retry on every call
        }
        let written = {
            // Under the lock, so that threads crossing the mark together write it once.
            let mut current = self.lock_checkpoint();
            if current.clock_ms >= need_ms {
                Ok(())
            } else {
                let next = Checkpoint { clock_ms: mark, ..current.clone() };
                self.write_checkpoint(&next).map(|()| *current = next)
            }
        };
        match written {
            Ok(()) => {
                self.clock_retry_ms.store(0, Relaxed);
                self.time.raise_limit(self.lock_checkpoint().clock_ms);
                Ok(())
            }
            Err(e) => {
                self.clock_retry_ms.store(from_ms.saturating_add(1000), Relaxed);
                Err(e)
            }
        }
    }

    /// Changes the checkpoint and writes it; the change is kept in memory
    /// only once it is on disk. (Keeping a change whose write failed would
    /// let the cache act on it — drop records above the durable mark, forget
    /// void ranges — while the file still says otherwise.)
    pub(crate) fn update_checkpoint(&self, change: impl FnOnce(&mut Checkpoint)) -> Result<()> {
        let mut current = self.lock_checkpoint();
        let mut next = current.clone();
        change(&mut next);
        self.write_checkpoint(&next)?;
        *current = next;
        Ok(())
    }

    pub(crate) fn write_checkpoint(&self, c: &Checkpoint) -> Result<()> {
        let removed = self.removed_segments();
        write_checkpoint(&self.storage, &self.dir, c)?;
        self.forget_removed(&removed);
        Ok(())
    }

    /// Fsyncs the directory: every removal so far is durable afterwards.
    pub(crate) fn sync_dir(&self) -> Result<()> {
        let removed = self.removed_segments();
        self.storage.sync_dir(&self.dir)?;
        self.forget_removed(&removed);
        Ok(())
    }

    pub(crate) fn lock_pending(&self) -> MutexGuard<'_, Vec<Pending>> {
        self.removed_unsynced.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The segments whose files are removed but whose removal may not be durable.
    pub(crate) fn removed_segments(&self) -> Vec<u32> {
        self.lock_pending().iter().filter(|p| p.removed).map(|p| p.seg).collect()
    }

    /// Forgets segments whose removal a directory fsync has made durable.
    fn forget_removed(&self, segs: &[u32]) {
        if !segs.is_empty() {
            self.lock_pending().retain(|p| !(p.removed && segs.contains(&p.seg)));
        }
    }
}

enum Lookup {
    Found(Located),
    Missing,
    /// The entry's record is still in the write buffer.
    Buffered,
    /// The entry's record cannot be read.
    Corrupt,
}
