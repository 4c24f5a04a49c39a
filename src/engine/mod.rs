//! The engine under [`crate::Cache`]: the state a cache shares between the
//! callers' threads and its maintenance thread, and the paths through it.
//!
//! | file            | concern |
//! |-----------------|---------|
//! | `mod.rs`        | the shared state ([`Engine`]), opening it from what recovery rebuilt, key checks, stats |
//! | `read.rs`       | index lookup, then record, then checksum, then [`Value`] |
//! | `write.rs`      | the write path: every set, delete and atomic operation locates the key's entry and appends its record under the writer lock |
//! | `commit.rs`     | durability: group commit and fsync |
//! | `checkpoint.rs` | the checkpoint: the clock mark and its lease, the clock anchor, the durable mark, the sequence mark, segment removals not yet durable |
//! | `tags.rs`       | tags and namespaces: the invalidation table the read path consults, and `invalidate` |
//!
//! # Locks
//!
//! A thread that holds a lock of some rank takes only locks of a higher
//! rank (a larger number); debug builds check it (see [`rank`]).
//!
//! | rank | lock | guards | held for |
//! |------|------|--------|----------|
//! | 1 | `Engine::maint` | maintenance: one reclaim, hint round, clear or close at a time | a whole maintenance round |
//! | 2 | `Engine::writer` | the appender: sequence numbers, active segments, write buffers; every index change made by a write | one append (reclaim: a batch of records) |
//! | 3 | `Engine::group` | group commit state (durable sequence number, whether a thread is syncing) | a few instructions; never across an fsync |
//! | 4 | `Engine::checkpoint` | the checkpoint in memory and its file | one checkpoint write |
//! | 5 | `Engine::removed_unsynced` | segments removed but not yet durably | a few instructions |
//! | 6 | `Engine::ghost` | the ghost set of recently evicted keys | a few instructions |
//! | 7 | `Engine::tags` | the invalidations in force (per tag and per namespace) and the keys of each tag | a few lookups; an `invalidate_tag` holds it only to take its tag's keys and to note the invalidation |
//! | 8 | index shards, `Segments` map | the hash index, the segment map (`RwLock`s; a removal takes the map's lock, then each stripe's copy in turn; a read that adds a segment to its stripe's copy holds the map's read lock while it does) | one lookup or change |
//!
//! The group-commit leader takes the writer lock (rank 2) only after it has
//! released the group lock (rank 3): it plans the fsync under the writer
//! lock, runs it holding neither, then takes the group lock to publish.

mod checkpoint;
mod commit;
pub(crate) mod ghost;
pub(crate) mod rank;
mod read;
mod room;
pub(crate) mod tags;
mod wake;
pub(crate) mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, MonotonicTime};
use crate::config::{Config, Durability};
use crate::dir::Found;
use crate::error::{Error, Result};
use crate::format::checkpoint::Checkpoint;
use crate::format::segment::LogKind;
use crate::hash::KeyHasher;
use crate::index::{Index, ShardLayout};
use crate::lock::DirLock;
use crate::log::writer::Writer;
use crate::log::Segments;
use crate::recovery;
use crate::stats::{Counters, Stats};
use crate::storage::Storage;

pub(crate) use commit::GroupCommit;
use ghost::Ghost;
use rank::{Rank, Ranked};
pub(crate) use room::Evict;
pub(crate) use wake::Wake;

/// The shared state behind a `Cache` and its maintenance thread.
pub(crate) struct Engine {
    pub(crate) dir: PathBuf,
    pub(crate) config: Config,
    pub(crate) read_only: bool,
    pub(crate) hasher: KeyHasher,
    pub(crate) storage: Storage,
    pub(crate) time: MonotonicTime,
    pub(crate) index: Index,
    pub(crate) segments: Segments,
    writer: Mutex<Writer>,
    pub(crate) counters: Counters,
    /// Outermost lock: held by whoever runs maintenance (background thread,
    /// an evicting writer, compact, clear, close).
    pub(crate) maint: Mutex<MaintState>,
    ghost: Mutex<Ghost>,
    /// Invalidations in force, and the keys of each tag (see `tags.rs`).
    pub(crate) tags: Mutex<tags::TagState>,
    /// Whether `tags` holds any invalidation: the read path's one check for
    /// a tagged or namespaced record while there is none.
    pub(crate) any_invalidated: std::sync::atomic::AtomicBool,
    /// A key whose main-log value a probation record hides could not be
    /// settled at open (`Engine::settle_split_key`: no sequence number
    /// left to write with). Until the next open, probation tombstones then
    /// count main-log values too, so that reclaim keeps the one hiding it.
    pub(crate) unsettled_split: std::sync::atomic::AtomicBool,
    pub(crate) wake: Wake,
    /// Maintenance's inline eviction (see `room`).
    evict: Evict,
    pub(crate) checkpoint: Mutex<Checkpoint>,
    /// Segments being reclaimed, or removed since the directory was last
    /// fsynced: a power cut could bring such a segment back, so tombstones
    /// must still count its values, and a delete that finds nothing must still
    /// write a tombstone (see `Pending`).
    removed_unsynced: Mutex<Vec<Pending>>,
    /// After a failed clock-mark write: no retry before this time (0 = none pending).
    clock_retry_ms: std::sync::atomic::AtomicU64,
    group: GroupCommit,
    _lock: Option<DirLock>,
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

#[inline]
pub(crate) fn expired(expires_ms: u64, now_ms: u64) -> bool {
    expires_ms != 0 && expires_ms <= now_ms
}

/// Maintenance's own state, behind the maintenance lock (held here because
/// the engine owns the lock; only `maintain` reads or changes it).
#[derive(Debug, Default)]
pub(crate) struct MaintState {
    /// Cache time (ms) from which background compaction counts expired bytes again.
    pub(crate) next_expiry_scan_ms: u64,
    /// Live bytes of each sealed segment when compaction last looked at it
    /// (by segment id): whether it is still being overwritten (see
    /// `maintain::compact_some`).
    pub(crate) live_at_last_look: std::collections::HashMap<u32, u64>,
    /// Segments the previous background round left because they were still
    /// being overwritten: the next round compacts them regardless.
    pub(crate) waited: std::collections::HashSet<u32>,
}

impl Engine {
    /// Opens the cache in `dir`: takes its lock (unless `read_only`), runs
    /// recovery, and sets up the shared state from what it rebuilt.
    pub(crate) fn open(
        dir: &Path,
        config: Config,
        clock: Arc<dyn Clock>,
        hasher: KeyHasher,
        storage: Storage,
        read_only: bool,
        evict: Evict,
    ) -> Result<Arc<Engine>> {
        // Refuses a directory that holds files keg did not write, before
        // writing anything (the lock file included): see `crate::dir`.
        let found = crate::dir::recognise(&storage, dir)?;
        let lock = if read_only {
            if found == Found::Missing {
                return Err(Error::NotACache { path: dir.to_owned(), reason: "no such cache directory".into() });
            }
            None
        } else {
            storage.create_dir_all(dir)?;
            Some(DirLock::acquire(&storage, dir)?)
        };
        #[cfg(feature = "fault-injection")]
        if let Some(sim) = &storage.sim {
            sim.adopt_dir(dir);
        }
        // Under the lock, look again (another process may have created the
        // cache meanwhile, or put files here), and mark a new or adopted cache.
        if !read_only && found != Found::Marked && crate::dir::recognise(&storage, dir)? != Found::Marked {
            crate::dir::write_marker(&storage, dir)?;
        }
        let counters = Counters::default();
        let resume = (!read_only).then_some(config.segment_bytes);
        let layout = ShardLayout::for_max_bytes(config.max_bytes);
        let rec = recovery::recover(&storage, dir, &hasher, read_only, resume, layout, &counters)?;
        let segments = Segments::default();
        for seg in &rec.segments {
            segments.insert(seg.clone());
        }
        let (buffer, buffer_age_ms) = if config.durability == Durability::Buffered {
            (config.write_buffer_bytes.max(1), config.flush_interval.as_millis() as u64)
        } else {
            (0, 0)
        };
        let mut writer =
            Writer::new(&storage, dir, rec.next_seq, rec.next_id, config.segment_bytes, buffer, buffer_age_ms);
        if config.durability == Durability::Synced {
            writer.set_prealloc(crate::log::writer::PREALLOC_BYTES, config.max_bytes);
        }
        // The numbers the checkpoint on disk reserves (see `Engine::reserve_seq`).
        writer.set_seq_reserved(rec.checkpoint.seq_mark);
        writer.sealed = rec.need_hint;
        for seg in rec.resumed {
            writer.resume(seg);
        }
        let time = MonotonicTime::new(clock, rec.clock_floor_ms, rec.checkpoint.anchor, !read_only);
        let tag_state = tags::TagState::from_marks(rec.marks);
        let inner = Arc::new(Engine {
            dir: dir.to_owned(),
            group: GroupCommit::new(rec.next_seq - 1),
            maint: Mutex::new(MaintState::default()),
            ghost: Mutex::new(Ghost::new(config.max_bytes)),
            any_invalidated: (!tag_state.is_empty()).into(),
            unsettled_split: false.into(),
            tags: Mutex::new(tag_state),
            removed_unsynced: Mutex::new(Vec::new()),
            clock_retry_ms: Default::default(),
            wake: Wake::default(),
            evict,
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
        Ok(inner)
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
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

    pub(crate) fn lock_writer(&self) -> Ranked<'_, Writer> {
        rank::lock(&self.writer, Rank::Writer)
    }

    pub(crate) fn lock_ghost(&self) -> Ranked<'_, Ghost> {
        rank::lock(&self.ghost, Rank::Ghost)
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut s = Stats::default();
        self.counters.fill(&mut s);
        s.entries = self.index.len() as u64;
        s.max_bytes = self.config.max_bytes;
        s.disk_bytes = self.segments.disk_bytes();
        s.hint_bytes_pending = self.segments.committed_bytes().saturating_sub(s.disk_bytes);
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
}
