//! The storage operations the server needs, as a trait.
//!
//! The server is written against [`Store`], not against [`crate::Cache`]:
//! `impl Store for Cache` (in `cache_store.rs`) maps each operation onto the
//! cache's public API, and [`super::MemoryStore`] keeps items in memory (for
//! tests, and as the reference for what each operation means).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::protocol::MetaMode;
use crate::cache::Rewrite;
use crate::item::expiry_after;

/// A time to live as the store takes it: `None` keeps the item until it is
/// deleted or evicted; `Some(Duration::ZERO)` means "already expired" (a write
/// with it leaves no readable value behind).
///
/// ```
/// use std::time::Duration;
/// use keg::server::{MemoryStore, Store, Ttl};
/// let store = MemoryStore::new(1 << 20);
/// let expired: Ttl = Some(Duration::ZERO);
/// store.set(b"k", b"v", 0, expired).unwrap();
/// assert!(store.get(b"k").unwrap().is_none());
/// ```
pub type Ttl = Option<Duration>;

/// One item read from a store.
///
/// ```
/// use std::time::Duration;
/// use keg::server::{MemoryStore, Store};
/// let store = MemoryStore::new(1 << 20);
/// store.set(b"k", b"v", 3, Some(Duration::from_secs(60))).unwrap();
/// let item = store.get(b"k").unwrap().unwrap();
/// assert_eq!((item.value.as_ref(), item.flags), (&b"v"[..], 3));
/// assert!(item.expires_at_ms > 0);
/// ```
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
    /// When the item expires, in Unix milliseconds; 0 for never.
    pub expires_at_ms: u64,
}

/// The outcome of a compare-and-swap ([`Store::cas`]).
///
/// ```
/// use keg::server::{CasResult, MemoryStore, Store};
/// let store = MemoryStore::new(1 << 20);
/// assert_eq!(store.cas(b"k", b"v", 0, None, 1).unwrap(), CasResult::Missing);
/// let v = store.set(b"k", b"a", 0, None).unwrap();
/// assert_eq!(store.cas(b"k", b"b", 0, None, v + 1).unwrap(), CasResult::Changed);
/// assert!(matches!(store.cas(b"k", b"b", 0, None, v).unwrap(), CasResult::Stored(new) if new > v));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasResult {
    /// The version matched and the value was stored; the item's new version.
    Stored(u64),
    /// The key has a value of another version: nothing was stored.
    Changed,
    /// The key has no value: nothing was stored.
    Missing,
}

/// A conditional write of the meta commands ([`Store::apply`]).
///
/// ```
/// use keg::server::{Applied, Change, MemoryStore, Store};
/// use keg::server::protocol::MetaMode;
/// let store = MemoryStore::new(1 << 20);
/// let add = Change::Store { mode: MetaMode::Add, data: b"first", flags: 0, ttl: None };
/// assert!(matches!(store.apply(b"k", &add, None).unwrap(), Applied::Done { .. }));
/// assert_eq!(store.apply(b"k", &add, None).unwrap(), Applied::NotStored);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// `ms`: store `data` as `mode` says. Appends and prepends keep the
    /// item's flags and expiry (as memcached's), the other modes set both.
    Store {
        /// Set, add, replace, append or prepend.
        mode: MetaMode,
        /// The data.
        data: &'a [u8],
        /// The client flags.
        flags: u32,
        /// The time to live.
        ttl: Ttl,
    },
    /// `md`: delete the item.
    Delete,
    /// `ma`: add `delta` to the item's decimal number (wrapping at 2^64), or
    /// subtract it (stopping at 0), keeping the item's flags.
    Arith {
        /// Subtract instead of add.
        decrement: bool,
        /// The amount.
        delta: u64,
        /// A new time to live for the item; `None` keeps its expiry.
        ttl: Option<Ttl>,
        /// On a miss, create the item with this number and time to live
        /// (the number is stored as it is, without the delta, as memcached).
        vivify: Option<(u64, Ttl)>,
    },
}

/// What a [`Store::apply`] did.
///
/// ```
/// use keg::server::{Applied, Change, MemoryStore, Store};
/// let store = MemoryStore::new(1 << 20);
/// let vivify = Change::Arith { decrement: false, delta: 1, ttl: None, vivify: Some((10, None)) };
/// let Applied::Done { number, version, .. } = store.apply(b"hits", &vivify, None).unwrap() else { panic!() };
/// assert_eq!(number, Some(10)); // created at the initial number, without the delta
/// assert!(version > 0);
/// assert_eq!(store.apply(b"gone", &Change::Delete, None).unwrap(), Applied::NotFound);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Stored (or, for [`Change::Delete`], deleted): `HD`.
    Done {
        /// The item's new version; 0 when nothing is left (a delete, or a
        /// write with a time to live of zero).
        version: u64,
        /// The number after an [`Change::Arith`].
        number: Option<u64>,
        /// The item's expiry afterwards, Unix ms (0: never).
        expires_at_ms: u64,
    },
    /// An add of a present key, or a replace, append or prepend of a missing
    /// one: `NS`.
    NotStored,
    /// The item's version is not the one given: `EX`.
    Exists,
    /// The key has no item (a delete, an arithmetic or a compare-and-swap of
    /// a missing key): `NF`.
    NotFound,
}

/// The item a [`Change`] finds: (value, flags, version, expiry in Unix ms).
pub(crate) type Found<'a> = (&'a [u8], u32, u64, u64);

/// Decides what `change` does to `found` (the key's live item, if any) at
/// Unix time `now_ms`, for a store whose values are at most `max_len` bytes:
/// the write to make (the cache's own [`Rewrite`], which every [`Store`]
/// carries out under its lock), and the answer (whose version the store
/// fills in). The one definition of the meta writes' rules.
pub(crate) fn decide<'v>(
    found: Option<Found<'_>>,
    change: &Change<'v>,
    if_version: Option<u64>,
    now_ms: u64,
    max_len: usize,
) -> StoreResult<(Rewrite<'v>, Applied)> {
    let nothing = |answer| Ok((Rewrite::Nothing, answer));
    // The write of a new value with a time to live: stored, or deleted when
    // the time to live is zero (still an `HD`, as memcached answers).
    let put = |value: Cow<'v, [u8]>, flags, ttl: Ttl, keep_tags, number| {
        if value.len() > max_len {
            return Err(StoreError::TooLarge);
        }
        Ok(match expiry_after(now_ms, ttl) {
            None => (Rewrite::Delete, Applied::Done { version: 0, number, expires_at_ms: 0 }),
            Some(expires_at_ms) => (
                Rewrite::Put { value, flags, expires_ms: expires_at_ms, keep_tags },
                Applied::Done { version: 0, number, expires_at_ms },
            ),
        })
    };
    let version_differs = |version: u64| if_version.is_some_and(|v| v != version);
    match (*change, found) {
        (Change::Store { mode: MetaMode::Add, .. }, Some(_)) => nothing(Applied::NotStored),
        (Change::Store { mode: MetaMode::Set, .. }, None) if if_version.is_some() => nothing(Applied::NotFound),
        (Change::Store { mode: MetaMode::Replace, .. }, None) if if_version.is_some() => nothing(Applied::NotFound),
        (Change::Store { mode: MetaMode::Replace | MetaMode::Append | MetaMode::Prepend, .. }, None) => {
            nothing(Applied::NotStored)
        }
        (Change::Store { mode: MetaMode::Add, data, flags, ttl }, None) => {
            put(Cow::Borrowed(data), flags, ttl, false, None)
        }
        (Change::Store { mode, data, flags, ttl }, Some((value, old_flags, version, expires_at_ms))) => {
            if version_differs(version) {
                return nothing(Applied::Exists);
            }
            let joined = |first: &[u8], second: &[u8]| {
                let len = first.len().saturating_add(second.len());
                if len > max_len {
                    return Err(StoreError::TooLarge);
                }
                let mut joined = Vec::with_capacity(len);
                joined.extend_from_slice(first);
                joined.extend_from_slice(second);
                Ok(Cow::Owned(joined))
            };
            let concat = |joined: Cow<'v, [u8]>| {
                let answer = Applied::Done { version: 0, number: None, expires_at_ms };
                Ok((
                    Rewrite::Put { value: joined, flags: old_flags, expires_ms: expires_at_ms, keep_tags: true },
                    answer,
                ))
            };
            match mode {
                MetaMode::Append => concat(joined(value, data)?),
                MetaMode::Prepend => concat(joined(data, value)?),
                MetaMode::Set | MetaMode::Replace | MetaMode::Add => put(Cow::Borrowed(data), flags, ttl, false, None),
            }
        }
        (Change::Store { data, flags, ttl, .. }, None) => put(Cow::Borrowed(data), flags, ttl, false, None),
        (Change::Delete, None) => nothing(Applied::NotFound),
        (Change::Delete, Some((_, _, version, _))) => {
            if version_differs(version) {
                return nothing(Applied::Exists);
            }
            Ok((Rewrite::Delete, Applied::Done { version: 0, number: None, expires_at_ms: 0 }))
        }
        (Change::Arith { vivify: Some((initial, ttl)), .. }, None) => {
            put(Cow::Owned(initial.to_string().into_bytes()), 0, ttl, false, Some(initial))
        }
        (Change::Arith { .. }, None) => nothing(Applied::NotFound),
        (Change::Arith { decrement, delta, ttl, .. }, Some((value, flags, version, expires_at_ms))) => {
            if version_differs(version) {
                return nothing(Applied::Exists);
            }
            let n = parse_number(value).ok_or(StoreError::NotANumber)?;
            let n = if decrement { n.saturating_sub(delta) } else { n.wrapping_add(delta) };
            let value = Cow::Owned(n.to_string().into_bytes());
            match ttl {
                Some(ttl) => put(value, flags, ttl, true, Some(n)),
                None => Ok((
                    Rewrite::Put { value, flags, expires_ms: expires_at_ms, keep_tags: true },
                    Applied::Done { version: 0, number: Some(n), expires_at_ms },
                )),
            }
        }
    }
}

/// A value `incr`, `decr` and `ma` accept (the cache's rule: 1 to 20
/// decimal digits, trailing spaces allowed, within u64).
pub(crate) fn parse_number(v: &[u8]) -> Option<u64> {
    crate::cache::parse_number(v).ok()
}

/// Why a store operation failed.
///
/// ```
/// use keg::server::{MemoryStore, Store, StoreError};
/// let store = MemoryStore::new(1 << 20);
/// store.set(b"k", b"not a number", 0, None).unwrap();
/// let err = store.incr(b"k", 1).unwrap_err();
/// assert_eq!(err, StoreError::NotANumber);
/// assert_eq!(err.to_string(), "cannot increment or decrement non-numeric value"); // memcached's words
/// ```
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
///
/// ```
/// use keg::server::{MemoryStore, Store, StoreResult};
/// fn bump(store: &impl Store, key: &[u8]) -> StoreResult<u64> {
///     Ok(store.incr(key, 1)?.unwrap_or(0))
/// }
/// assert_eq!(bump(&MemoryStore::new(1 << 20), b"absent").unwrap(), 0);
/// ```
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
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// assert!(store.get(b"k").unwrap().is_none());
    /// store.set(b"k", b"v", 0, None).unwrap();
    /// assert_eq!(store.get(b"k").unwrap().unwrap().value.as_ref(), b"v");
    /// ```
    fn get(&self, key: &[u8]) -> StoreResult<Option<Item<Self::Value>>>;
    /// The live item under `key`, if any, after giving it the time to live `ttl`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// store.set(b"k", b"v", 0, None).unwrap();
    /// let item = store.get_and_touch(b"k", Some(Duration::from_secs(60))).unwrap().unwrap();
    /// assert!(item.expires_at_ms > 0); // it had no expiry before
    /// ```
    fn get_and_touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<Option<Item<Self::Value>>>;
    /// Stores `value` under `key` whatever was there; returns the new version.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// let v1 = store.set(b"k", b"a", 0, None).unwrap();
    /// let v2 = store.set(b"k", b"b", 0, None).unwrap();
    /// assert!(v2 > v1);
    /// ```
    fn set(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<u64>;
    /// Stores only if `key` has no live value; `None` when it has one.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// assert!(store.add(b"lock", b"me", 0, None).unwrap().is_some());
    /// assert!(store.add(b"lock", b"you", 0, None).unwrap().is_none()); // one caller wins
    /// ```
    fn add(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>>;
    /// Stores only if `key` has a live value; `None` when it has none.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// assert!(store.replace(b"k", b"v", 0, None).unwrap().is_none());
    /// store.set(b"k", b"a", 0, None).unwrap();
    /// assert!(store.replace(b"k", b"v", 0, None).unwrap().is_some());
    /// ```
    fn replace(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>>;
    /// Appends `data` to the live value of `key`, keeping its flags and
    /// expiry; `None` when it has none.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// store.set(b"log", b"a", 5, None).unwrap();
    /// store.append(b"log", b"b").unwrap();
    /// let item = store.get(b"log").unwrap().unwrap();
    /// assert_eq!((item.value.as_ref(), item.flags), (&b"ab"[..], 5));
    /// ```
    fn append(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>>;
    /// Prepends `data` to the live value of `key`, keeping its flags and
    /// expiry; `None` when it has none.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// assert!(store.prepend(b"log", b"a").unwrap().is_none());
    /// store.set(b"log", b"b", 0, None).unwrap();
    /// store.prepend(b"log", b"a").unwrap();
    /// assert_eq!(store.get(b"log").unwrap().unwrap().value.as_ref(), b"ab");
    /// ```
    fn prepend(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>>;
    /// Stores only if the live value of `key` has version `version`
    /// (see [`CasResult`]).
    ///
    /// ```
    /// use keg::server::{CasResult, MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// let seen = store.set(b"k", b"a", 0, None).unwrap();
    /// store.set(b"k", b"b", 0, None).unwrap(); // another client wrote in between
    /// assert_eq!(store.cas(b"k", b"c", 0, None, seen).unwrap(), CasResult::Changed);
    /// ```
    fn cas(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl, version: u64) -> StoreResult<CasResult>;
    /// Adds `delta` to the decimal number stored under `key` (wrapping at
    /// 2^64); `None` when the key has no live value.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// assert_eq!(store.incr(b"n", 1).unwrap(), None);
    /// store.set(b"n", &u64::MAX.to_string().into_bytes(), 0, None).unwrap();
    /// assert_eq!(store.incr(b"n", 2).unwrap(), Some(1));
    /// ```
    fn incr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>>;
    /// Subtracts `delta` from the decimal number stored under `key`, stopping
    /// at 0; `None` when the key has no live value.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// store.set(b"n", b"3", 0, None).unwrap();
    /// assert_eq!(store.decr(b"n", 5).unwrap(), Some(0));
    /// ```
    fn decr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>>;
    /// Gives the live value of `key` the time to live `ttl`; false when there is none.
    ///
    /// ```
    /// use std::time::Duration;
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// assert!(!store.touch(b"k", None).unwrap());
    /// store.set(b"k", b"v", 0, Some(Duration::from_secs(5))).unwrap();
    /// assert!(store.touch(b"k", None).unwrap()); // now kept until deleted or evicted
    /// assert_eq!(store.get(b"k").unwrap().unwrap().expires_at_ms, 0);
    /// ```
    fn touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<bool>;
    /// Deletes `key`; whether it had a live value.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// store.set(b"k", b"v", 0, None).unwrap();
    /// assert!(store.delete(b"k").unwrap());
    /// assert!(!store.delete(b"k").unwrap());
    /// ```
    fn delete(&self, key: &[u8]) -> StoreResult<bool>;
    /// Deletes every item.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// store.set(b"a", b"1", 0, None).unwrap();
    /// store.clear().unwrap();
    /// assert!(store.get(b"a").unwrap().is_none());
    /// ```
    fn clear(&self) -> StoreResult<()>;
    /// The meta commands' writes: applies `change` to `key` in one atomic
    /// step, only if the item's version is `if_version` when one is given
    /// (rules in [`Change`] and [`Applied`]).
    ///
    /// ```
    /// use keg::server::{Applied, Change, MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// let v = store.set(b"n", b"41", 0, None).unwrap();
    /// let incr = Change::Arith { decrement: false, delta: 1, ttl: None, vivify: None };
    /// assert_eq!(store.apply(b"n", &incr, Some(v + 1)).unwrap(), Applied::Exists);
    /// let Applied::Done { number, .. } = store.apply(b"n", &incr, Some(v)).unwrap() else { panic!() };
    /// assert_eq!(number, Some(42));
    /// assert_eq!(store.apply(b"n", &Change::Delete, None).unwrap(), Applied::Done { version: 0, number: None, expires_at_ms: 0 });
    /// ```
    fn apply(&self, key: &[u8], change: &Change<'_>, if_version: Option<u64>) -> StoreResult<Applied>;
    /// The store's counters and sizes (a store without some reports 0).
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store};
    /// let store = MemoryStore::new(1 << 20);
    /// store.set(b"a", b"1", 0, None).unwrap();
    /// assert_eq!(store.stats().entries, 1);
    /// ```
    fn stats(&self) -> crate::Stats;
}
