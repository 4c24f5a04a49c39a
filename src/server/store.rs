//! The storage operations the server needs, as a trait.
//!
//! The server is written against [`Store`], not against [`crate::Cache`]:
//! `impl Store for Cache` (in `cache_store.rs`) maps each operation onto the
//! cache's public API, and [`super::MemoryStore`] keeps items in memory (for
//! tests, and as the reference for what each operation means).

use std::fmt;
use std::time::Duration;

/// A time to live as the store takes it: `None` keeps the item until it is
/// deleted or evicted; `Some(Duration::ZERO)` means "already expired" (a write
/// with it leaves no readable value behind).
pub type Ttl = Option<Duration>;

/// One item read from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<V> {
    /// The value's bytes.
    pub value: V,
    /// The client's 32-bit flags, returned unchanged.
    pub flags: u32,
    /// The item's version: memcached's "cas unique". A write that changes the
    /// item gives it a new, larger version; versions stay valid across a
    /// restart of a persistent store.
    pub cas: u64,
}

/// The outcome of a compare-and-swap ([`Store::cas`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasResult {
    /// The version matched and the value was stored; the item's new version.
    Stored(u64),
    /// The key has a value of another version: nothing was stored.
    Changed,
    /// The key has no value: nothing was stored.
    Missing,
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// `incr`/`decr` on a value that is not a decimal unsigned 64-bit number.
    NotANumber,
    /// The value (or the result of an append or prepend) is over the store's size limit.
    TooLarge,
    /// The key is not one the store accepts (empty, or too long).
    BadKey(String),
    /// Anything else (an I/O error, a full disk): the message for the client.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::NotANumber => f.write_str("cannot increment or decrement non-numeric value"),
            StoreError::TooLarge => f.write_str("object too large for cache"),
            StoreError::BadKey(why) => write!(f, "bad key: {why}"),
            StoreError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StoreError {}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// What the server asks of the storage behind it.
///
/// Every method is called from the server's connection threads and must be safe
/// to call concurrently; each must be atomic with respect to the others on
/// the same key (an `add` racing an `add` stores once). Methods may block
/// (disk I/O); the server accounts for that.
///
/// ```
/// use keg::server::{MemoryStore, Store};
/// let store = MemoryStore::new(1 << 20);
/// let v1 = store.set(b"k", b"10", 7, None).unwrap();
/// let item = store.get(b"k").unwrap().unwrap();
/// assert_eq!((item.value.as_ref(), item.flags, item.cas), (&b"10"[..], 7, v1));
/// assert_eq!(store.incr(b"k", 5).unwrap(), Some(15));
/// ```
pub trait Store: Send + Sync + 'static {
    /// The bytes of a value read from the store.
    type Value: AsRef<[u8]> + Send;

    /// The live item under `key`, if any.
    fn get(&self, key: &[u8]) -> StoreResult<Option<Item<Self::Value>>>;
    /// The live item under `key`, if any, after giving it the time to live `ttl`.
    fn get_and_touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<Option<Item<Self::Value>>>;
    /// Stores `value` under `key` whatever was there; returns the new version.
    fn set(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<u64>;
    /// Stores only if `key` has no live value; `None` when it has one.
    fn add(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>>;
    /// Stores only if `key` has a live value; `None` when it has none.
    fn replace(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>>;
    /// Appends `data` to the live value of `key`, keeping its flags and
    /// expiry; `None` when it has none.
    fn append(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>>;
    /// Prepends `data` to the live value of `key`, keeping its flags and
    /// expiry; `None` when it has none.
    fn prepend(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>>;
    /// Stores only if the live value of `key` has version `version`.
    fn cas(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl, version: u64) -> StoreResult<CasResult>;
    /// Adds `delta` to the decimal number stored under `key` (wrapping at
    /// 2^64); `None` when the key has no live value.
    fn incr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>>;
    /// Subtracts `delta` from the decimal number stored under `key`, stopping
    /// at 0; `None` when the key has no live value.
    fn decr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>>;
    /// Gives the live value of `key` the time to live `ttl`; false when there is none.
    fn touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<bool>;
    /// Deletes `key`; whether it had a live value.
    fn delete(&self, key: &[u8]) -> StoreResult<bool>;
    /// Deletes every item.
    fn clear(&self) -> StoreResult<()>;
    /// The store's counters and sizes (a store without some reports 0).
    fn stats(&self) -> crate::Stats;
}
