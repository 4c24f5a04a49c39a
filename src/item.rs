//! The public shapes of an item: what a write takes ([`SetOptions`]) and
//! what a read returns ([`Entry`]), and the outcome of a compare-and-swap.

use std::time::Duration;

use crate::value::Value;

/// Expiry times past this (in Unix ms, about the year 2106) mean "never".
const MAX_EXPIRY_MS: u64 = (u32::MAX as u64 - 1) * 1000;

/// Options of a write: time to live, user flags and tags.
///
/// ```
/// use std::time::Duration;
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// let opts = keg::SetOptions::new().ttl(Some(Duration::from_secs(60))).flags(7);
/// cache.set_with(b"k", b"v", &opts).unwrap();
/// assert_eq!(cache.get_entry(b"k").unwrap().unwrap().flags, 7);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetOptions {
    ttl: Option<Duration>,
    flags: u32,
    tags: Vec<Box<[u8]>>,
}

impl SetOptions {
    /// No TTL (the item lives until deleted or evicted), flags 0.
    ///
    /// ```
    /// let opts = keg::SetOptions::new();
    /// assert_eq!(opts, keg::SetOptions::default());
    /// ```
    pub fn new() -> SetOptions {
        SetOptions::default()
    }

    /// The time to live: `None` for none; `Some(Duration::ZERO)` stores the
    /// item already expired (so a write with it deletes the key); a TTL
    /// reaching past the year 2106 counts as none. Expiry is stored as an
    /// absolute time, so it holds across restarts.
    ///
    /// ```
    /// let opts = keg::SetOptions::new().ttl(Some(std::time::Duration::from_secs(300)));
    /// ```
    pub fn ttl(mut self, ttl: Option<Duration>) -> SetOptions {
        self.ttl = ttl;
        self
    }

    /// A 32-bit word stored with the item and returned with it unchanged
    /// ([`Entry::flags`]); memcached clients keep their serialisation format
    /// there. Flags 0 take no space on disk, others 4 bytes.
    ///
    /// ```
    /// let opts = keg::SetOptions::new().flags(1);
    /// ```
    pub fn flags(mut self, flags: u32) -> SetOptions {
        self.flags = flags;
        self
    }

    /// Tags stored with the item (replacing any given before): at most 8,
    /// each 1 to 250 bytes (a write with more, or with an empty or longer
    /// one, fails with [`Error::TooManyTags`](crate::Error::TooManyTags) or
    /// [`Error::BadName`](crate::Error::BadName), writing nothing).
    /// [`Cache::invalidate_tag`](crate::Cache::invalidate_tag) removes every
    /// item carrying a tag at once. Each tag costs its length and 1 byte on
    /// disk (and the list 1 byte); an item without tags, nothing.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let opts = keg::SetOptions::new().tags(["author:7", "lang:en"]);
    /// cache.set_with(b"page:1", b"<html>", &opts).unwrap();
    /// assert_eq!(cache.invalidate_tag("author:7").unwrap(), 1);
    /// assert!(cache.get(b"page:1").unwrap().is_none());
    /// ```
    pub fn tags<I, T>(mut self, tags: I) -> SetOptions
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.tags = tags.into_iter().map(|t| Box::from(t.as_ref())).collect();
        self
    }

    pub(crate) fn user_flags(&self) -> u32 {
        self.flags
    }

    /// The tags as a record stores them (empty: none), checked against the limits.
    pub(crate) fn encoded_tags(&self) -> crate::Result<Vec<u8>> {
        use crate::format::record::{MAX_NAME_LEN, MAX_TAGS};
        if self.tags.len() > MAX_TAGS {
            return Err(crate::Error::TooManyTags { count: self.tags.len(), max: MAX_TAGS });
        }
        for t in &self.tags {
            if t.is_empty() || t.len() > MAX_NAME_LEN {
                return Err(crate::Error::BadName { what: "a tag", len: t.len(), max: MAX_NAME_LEN });
            }
        }
        Ok(crate::format::record::encode_tags(&self.tags).expect("checked above"))
    }

    /// The absolute expiry for a write at `now_ms`: `None` if the item is
    /// stored already expired, else Unix ms (0 = never).
    pub(crate) fn expires_ms(&self, now_ms: u64) -> Option<u64> {
        expiry_after(now_ms, self.ttl)
    }
}

/// The absolute expiry of a TTL counted from `now_ms`: `None` for a zero TTL
/// (already expired), `Some(0)` for none or one past the year 2106.
pub(crate) fn expiry_after(now_ms: u64, ttl: Option<Duration>) -> Option<u64> {
    match ttl {
        Some(ttl) if ttl.is_zero() => None,
        Some(ttl) => {
            let ms = u64::try_from(ttl.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
            let at = now_ms.saturating_add(ms);
            Some(if at > MAX_EXPIRY_MS { 0 } else { at })
        }
        None => Some(0),
    }
}

/// An item as [`Cache::get_entry`](crate::Cache::get_entry) returns it: the
/// value with its metadata.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// let version = cache.set_with(b"k", b"v", &keg::SetOptions::new().flags(3)).unwrap();
/// let e = cache.get_entry(b"k").unwrap().unwrap();
/// assert_eq!((&*e.value, e.flags, e.version, e.expires_at_ms), (&b"v"[..], 3, version, 0));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// The user flags it was stored with (0 if none).
    pub flags: u32,
    /// A token that changes on every write of the key and stays valid across
    /// restarts: the record's sequence number. Maintenance may also change
    /// it when it moves the item (compaction, eviction's reinsertion), so a
    /// compare-and-swap can fail without any caller having written the key;
    /// callers retry, as with memcached's `cas`.
    pub version: u64,
    /// When the item expires, in Unix milliseconds; 0 for never.
    pub expires_at_ms: u64,
}

/// What [`Cache::set_if_version`](crate::Cache::set_if_version) did.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// let opts = keg::SetOptions::new();
/// assert_eq!(cache.set_if_version(b"k", b"v", &opts, 1).unwrap(), keg::CasOutcome::Missing);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// The key still had the version given: the value is stored, with this new version.
    Stored(u64),
    /// The key has another version now: nothing was stored.
    Changed,
    /// The key has no live value: nothing was stored.
    Missing,
}
