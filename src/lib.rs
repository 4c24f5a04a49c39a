//! # keg
//!
//! A persistent, disk-backed cache: an append-only log of checksummed records
//! in segment files, plus a compact in-memory hash index (20 bytes per entry,
//! whatever the key length) that maps each key to its record's location and
//! expiry. A size cap, S3-FIFO eviction at segment granularity and background
//! compaction keep it within its disk budget; after a restart, or a crash, it
//! comes back with its data.
//!
//! ```
//! use std::time::Duration;
//! let dir = tempfile::tempdir().unwrap();
//! let cache = keg::Cache::builder().max_bytes(64 << 20).open(dir.path()).unwrap();
//! cache.set(b"page:/home", b"<html>...</html>", Some(Duration::from_secs(300))).unwrap();
//! if let Some(page) = cache.get(b"page:/home").unwrap() {
//!     assert!(page.starts_with(b"<html>"));
//! }
//! cache.delete(b"page:/home").unwrap();
//! println!("{:?}", cache.stats());
//! ```
//!
//! # Where things are
//!
//! Layers, top to bottom; a module imports only from layers below it (the
//! server and the CLI sit on [`Cache`] like any user):
//!
//! ```text
//! server/ (feature server), bin/keg/      memcached protocol, the CLI: users of Cache
//! cache.rs, cache/                        Cache and Namespace: the public methods, their docs, nothing else
//! engine/                                 read, write (the one append path), commit (group commit, fsync),
//!                                         checkpoint (clock lease, durable mark), room, tags, ghost, lock ranks
//! maintain/   recovery.rs   inspect.rs    eviction/compaction (reclaim), open, read-only tools:
//!                                         beside the engine, on the same pieces below
//! log/                                    segment files; log/scan.rs: the one record walk (hint, then scan)
//!                                         and what each record kind is to each reader; the appender; hints
//! index.rs   storage/   config.rs         the hash index; the file-I/O seam (and its simulator); limits
//! format/                                 on-disk structures, pure encode/decode, and their constants
//! ```
//!
//! [`format`](mod@format) is public (with `FORMAT.md`, a second reader can be written
//! from it), and so is [`inspect`], the read-only API the `keg` tool is
//! built on. `docs/design.md` has the source map file by file and the bound
//! of every queue and buffer.
//!
//! Locks, by rank: a thread holding a lock takes only locks of a higher
//! rank, and debug builds check it (the table with what each lock guards is
//! in the engine's module docs, `src/engine/mod.rs`):
//!
//! | rank | lock | held for |
//! |------|------|----------|
//! | 1 | `Engine::maint` | a whole maintenance round |
//! | 2 | `Engine::writer` | one append (reclaim: a batch of records) |
//! | 3 | `Engine::group` | a few instructions; never across an fsync |
//! | 4 | `Engine::checkpoint` | one checkpoint write |
//! | 5 | `Engine::removed_unsynced` | a few instructions |
//! | 6 | `Engine::ghost` | a few instructions |
//! | 7 | `Engine::tags` | a few lookups |
//! | 8 | index shards, `Segments` map | one lookup or change |
//!
//! Leaves outside the table (nothing else is taken while one is held): the
//! single-flight table of `get_or_set_with` (`flight.rs`) and the
//! server's in-memory store (`server/memory.rs`, a reference for its tests).

#![warn(missing_docs)]

mod cache;
mod clock;
mod config;
mod dir;
mod engine;
mod error;
mod flight;
pub mod format;
mod hash;
mod index;
mod item;
mod latency;

pub mod inspect;
mod lock;
mod log;
mod maintain;
mod mem;
mod recovery;
#[cfg(feature = "server")]
pub mod server;
mod stats;
mod storage;
mod stripe;
mod value;

pub use cache::{Cache, Namespace};
pub use clock::{BootTime, Clock, ManualClock, SystemClock};
pub use config::{
    Builder, Durability, COMPACTION_THRESHOLD_RANGE, DEFAULT_COMPACTION_THRESHOLD, DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_BYTES, DEFAULT_MAX_KEY_LEN, DEFAULT_MAX_VALUE_LEN, DEFAULT_WRITE_BUFFER_BYTES, MAX_FLUSH_INTERVAL,
    MAX_KEY_LEN, MAX_SEGMENT_BYTES, MAX_WRITE_BUFFER_BYTES, MIN_FLUSH_INTERVAL, MIN_SEGMENT_BYTES,
    MIN_WRITE_BUFFER_BYTES,
};
pub use error::{Error, Result};
pub use item::{CasOutcome, Entry, SetOptions};
pub use latency::Histogram;
pub use stats::Stats;
pub use value::Value;

/// README.md's Rust example, compiled with the doc tests (`cargo test --doc`),
/// so that the API it shows is the API there is.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;

/// Test support: a storage layer that fails on request and simulates power
/// cuts (feature `fault-injection`; never in production builds).
///
/// ```
/// use keg::sim::FaultFs;
/// let fs = FaultFs::in_memory();
/// let cache = keg::Cache::builder().storage(fs.clone()).open("/cache").unwrap();
/// cache.set(b"k", b"v", None).unwrap(); // reached the (simulated) OS, not yet fsynced
/// drop(cache);
/// fs.cut_power_now();
/// fs.crash(1).unwrap(); // unsynced bytes are lost or kept, as the seed decides
/// fs.revive();
/// let cache = keg::Cache::builder().storage(fs).open("/cache").unwrap();
/// assert!(matches!(cache.get(b"k").unwrap().as_deref(), None | Some(b"v"))); // never another value
/// ```
#[cfg(feature = "fault-injection")]
pub mod sim {
    pub use crate::storage::sim::{FaultError, FaultFs};
    pub use crate::storage::Op;
}
