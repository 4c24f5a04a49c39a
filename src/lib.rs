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
//! Where things are: [`format`] holds the on-disk structures (see also
//! `FORMAT.md`); `log` the segment files and the appender; `index` the
//! hash index; `recovery` the open path; `maintain` eviction and compaction;
//! [`inspect`] the read-only API the `keg` command-line tool is built on.

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

/// Test support: a storage layer that fails on request and simulates power
/// cuts (feature `fault-injection`; never in production builds).
#[cfg(feature = "fault-injection")]
pub mod sim {
    pub use crate::storage::sim::{FaultError, FaultFs};
    pub use crate::storage::Op;
}
