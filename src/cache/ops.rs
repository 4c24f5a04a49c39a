//! The cache patterns applications use, each one write of the engine
//! (`Engine::update`): it reads the key's live value and writes its new
//! record under the writer lock, so every operation here is atomic against
//! every other writer of the cache, and costs at most one record append.

use std::borrow::Cow;
use std::time::Duration;

use super::Cache;
use crate::engine::write::{Action, BatchItem, Current};
use crate::error::{Error, Result};
use crate::item::{expiry_after, CasOutcome, Entry, SetOptions};
use crate::stats::bump;
use crate::value::Value;

impl Cache {
    /// Looks `key` up and returns its value with its flags, version and
    /// expiry (see [`Entry`]); `None` for a missing, expired or damaged entry.
    /// Counts as a hit or a miss, as [`Cache::get`] does.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set_with(b"k", b"v", &keg::SetOptions::new().flags(9)).unwrap();
    /// let e = cache.get_entry(b"k").unwrap().unwrap();
    /// assert_eq!((&*e.value, e.flags), (&b"v"[..], 9));
    /// ```
    pub fn get_entry(&self, key: &[u8]) -> Result<Option<Entry>> {
        let inner = &*self.inner;
        inner.check_key(key)?;
        let hash = inner.hasher.hash(key);
        let started = crate::latency::start(crate::latency::Op::Get);
        let item = inner.read_item(key, hash, true, false);
        if item.is_some() { &inner.counters.hits } else { &inner.counters.misses }.add(1);
        inner.counters.get_latency.finish(started);
        Ok(item.map(|i| Entry { value: i.value, flags: i.user_flags, version: i.seq, expires_at_ms: i.expires_ms }))
    }

    /// Stores `value` under `key` with `opts` (TTL, flags), replacing any
    /// previous value; returns the item's new version.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let v1 = cache.set_with(b"k", b"one", &keg::SetOptions::new()).unwrap();
    /// let v2 = cache.set_with(b"k", b"two", &keg::SetOptions::new()).unwrap();
    /// assert_ne!(v1, v2);
    /// ```
    pub fn set_with(&self, key: &[u8], value: &[u8], opts: &SetOptions) -> Result<u64> {
        let started = crate::latency::start(crate::latency::Op::Set);
        self.check_value(value)?;
        let tags = opts.encoded_tags()?;
        let seq = self.write_in(key, false, false, |_, now| Ok(put(value, opts, &tags, now)))?;
        bump(&self.inner.counters.sets);
        self.inner.counters.set_latency.finish(started);
        Ok(seq.unwrap_or(0))
    }

    /// Stores `value` only if `key` has no live value (missing or expired):
    /// of many callers racing to add one key, exactly one succeeds. Returns
    /// the new version, or `None` if the key was present (nothing stored).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let opts = keg::SetOptions::new();
    /// assert!(cache.add(b"lock", b"me", &opts).unwrap().is_some());
    /// assert!(cache.add(b"lock", b"you", &opts).unwrap().is_none());
    /// assert_eq!(cache.get(b"lock").unwrap().unwrap(), b"me");
    /// ```
    pub fn add(&self, key: &[u8], value: &[u8], opts: &SetOptions) -> Result<Option<u64>> {
        self.check_value(value)?;
        let tags = opts.encoded_tags()?;
        let mut stored = false;
        let seq = self.write(key, |current, now| {
            stored = current.is_none();
            Ok(if stored { put(value, opts, &tags, now) } else { Action::Nothing })
        })?;
        // (An add whose TTL is zero stores the item already expired: it
        // succeeds, as memcached's does, though it may write nothing.)
        Ok(self.counted_set(stored.then(|| seq.unwrap_or(0))))
    }

    /// Stores `value` only if `key` has a live value. Returns the new
    /// version, or `None` if the key was missing (nothing stored).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let opts = keg::SetOptions::new();
    /// assert!(cache.replace(b"k", b"v", &opts).unwrap().is_none());
    /// cache.set(b"k", b"old", None).unwrap();
    /// assert!(cache.replace(b"k", b"new", &opts).unwrap().is_some());
    /// assert_eq!(cache.get(b"k").unwrap().unwrap(), b"new");
    /// ```
    pub fn replace(&self, key: &[u8], value: &[u8], opts: &SetOptions) -> Result<Option<u64>> {
        self.check_value(value)?;
        let tags = opts.encoded_tags()?;
        self.write(key, |current, now| {
            Ok(if current.is_some() { put(value, opts, &tags, now) } else { Action::Nothing })
        })
        .map(|seq| self.counted_set(seq))
    }

    /// Adds `data` after the value of `key`, keeping its flags and expiry.
    /// Returns the new version, or `None` if the key was missing (nothing
    /// stored, as memcached does). Concurrent appends all land, each once.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"log", b"a", None).unwrap();
    /// cache.append(b"log", b"b").unwrap();
    /// assert_eq!(cache.get(b"log").unwrap().unwrap(), b"ab");
    /// ```
    pub fn append(&self, key: &[u8], data: &[u8]) -> Result<Option<u64>> {
        self.concat(key, data, false)
    }

    /// Adds `data` before the value of `key`, keeping its flags and expiry;
    /// as [`Cache::append`] otherwise.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"log", b"b", None).unwrap();
    /// cache.prepend(b"log", b"a").unwrap();
    /// assert_eq!(cache.get(b"log").unwrap().unwrap(), b"ab");
    /// ```
    pub fn prepend(&self, key: &[u8], data: &[u8]) -> Result<Option<u64>> {
        self.concat(key, data, true)
    }

    /// Compare-and-swap: stores `value` only if `key`'s version is still
    /// `version` (from [`Cache::get_entry`] or an earlier write), telling a
    /// changed key from a missing one.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let opts = keg::SetOptions::new();
    /// let v = cache.set_with(b"k", b"1", &opts).unwrap();
    /// let stored = cache.set_if_version(b"k", b"2", &opts, v).unwrap();
    /// assert!(matches!(stored, keg::CasOutcome::Stored(_)));
    /// assert_eq!(cache.set_if_version(b"k", b"3", &opts, v).unwrap(), keg::CasOutcome::Changed);
    /// ```
    pub fn set_if_version(&self, key: &[u8], value: &[u8], opts: &SetOptions, version: u64) -> Result<CasOutcome> {
        self.check_value(value)?;
        let tags = opts.encoded_tags()?;
        let mut outcome = CasOutcome::Missing;
        let seq = self.write(key, |current, now| {
            Ok(match current {
                None => {
                    outcome = CasOutcome::Missing;
                    Action::Nothing
                }
                Some(c) if c.seq != version => {
                    outcome = CasOutcome::Changed;
                    Action::Nothing
                }
                Some(_) => put(value, opts, &tags, now),
            })
        })?;
        let c = &self.inner.counters;
        match seq {
            Some(seq) => {
                bump(&c.cas_hits);
                bump(&c.sets);
                Ok(CasOutcome::Stored(seq))
            }
            None => {
                bump(if outcome == CasOutcome::Changed { &c.cas_badval } else { &c.cas_misses });
                Ok(outcome)
            }
        }
    }

    /// Adds `delta` to the unsigned 64-bit decimal number stored under `key`
    /// (wrapping at 2^64, as memcached does), keeping its flags and expiry;
    /// returns the new number, or `None` if the key was missing. A value that
    /// is not such a number fails with [`Error::NotANumber`] and is left as it is.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// assert_eq!(cache.incr(b"hits", 1).unwrap(), None);
    /// cache.set(b"hits", b"41", None).unwrap();
    /// assert_eq!(cache.incr(b"hits", 1).unwrap(), Some(42));
    /// assert_eq!(cache.get(b"hits").unwrap().unwrap(), b"42");
    /// ```
    pub fn incr(&self, key: &[u8], delta: u64) -> Result<Option<u64>> {
        self.count(key, |n| n.wrapping_add(delta), true)
    }

    /// Subtracts `delta` from the number stored under `key`, stopping at 0
    /// (as memcached does); otherwise as [`Cache::incr`].
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"stock", b"3", None).unwrap();
    /// assert_eq!(cache.decr(b"stock", 5).unwrap(), Some(0));
    /// ```
    pub fn decr(&self, key: &[u8], delta: u64) -> Result<Option<u64>> {
        self.count(key, |n| n.saturating_sub(delta), false)
    }

    /// Gives `key` a new time to live (`None`: none; `Some(Duration::ZERO)`:
    /// expire now), keeping its value and flags. Returns whether the key had
    /// a live value. The value's record is written again with the new expiry
    /// (one append, the cost of a set of the same value).
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"session", b"s", Some(Duration::from_secs(60))).unwrap();
    /// assert!(cache.touch(b"session", Some(Duration::from_secs(3600))).unwrap());
    /// assert!(!cache.touch(b"absent", None).unwrap());
    /// ```
    pub fn touch(&self, key: &[u8], ttl: Option<Duration>) -> Result<bool> {
        Ok(self.get_and_touch(key, ttl)?.is_some())
    }

    /// [`Cache::touch`] that also returns the item (with its new expiry), or
    /// `None` if the key had no live value.
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"k", b"v", None).unwrap();
    /// let e = cache.get_and_touch(b"k", Some(Duration::from_secs(60))).unwrap().unwrap();
    /// assert_eq!(&*e.value, b"v");
    /// assert!(e.expires_at_ms > 0);
    /// ```
    pub fn get_and_touch(&self, key: &[u8], ttl: Option<Duration>) -> Result<Option<Entry>> {
        let mut found: Option<(Vec<u8>, u32, u64)> = None;
        let seq = self.write(key, |current, now| {
            let Some(c) = current else {
                found = None;
                return Ok(Action::Nothing);
            };
            let expires_ms = expiry_after(now, ttl);
            found = Some((c.value.to_vec(), c.user_flags, expires_ms.unwrap_or(now)));
            Ok(match expires_ms {
                None => Action::Delete,
                Some(expires_ms) => Action::Put {
                    value: Cow::Owned(c.value.to_vec()),
                    user_flags: c.user_flags,
                    tags: Cow::Owned(c.meta.tags.to_vec()),
                    expires_ms,
                },
            })
        })?;
        let c = &self.inner.counters;
        bump(if found.is_some() { &c.touch_hits } else { &c.touch_misses });
        Ok(found.map(|(value, flags, expires_at_ms)| Entry {
            value: Value::owned(&value),
            flags,
            version: seq.unwrap_or(0),
            expires_at_ms,
        }))
    }

    /// Looks up every key of `keys`; the answers come in the same order. Each
    /// lookup counts as `get` would (a hit or a miss).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"a", b"1", None).unwrap();
    /// let got = cache.get_many(&[&b"a"[..], b"b"]).unwrap();
    /// assert_eq!(got[0].as_deref(), Some(&b"1"[..]));
    /// assert!(got[1].is_none());
    /// ```
    pub fn get_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Vec<Option<Value>>> {
        keys.iter().map(|k| self.get(k.as_ref())).collect()
    }

    /// Stores every `(key, value)` pair with `opts`, as one batch: the
    /// records reach the operating system together (one write per log, and
    /// per segment the batch fills) and, in synced mode, are made durable by
    /// one fsync round before this returns. Readers see each item at once or
    /// not yet, never half-written. Every key and value is checked before
    /// anything is written (an invalid one fails the whole call, writing
    /// nothing), and so is the room: a batch whose records exceed the size
    /// cap fails with [`Error::NoSpace`], writing nothing.
    ///
    /// After a crash, what survives is a prefix of the batch in its order
    /// (the first k items, for some k, never a later item without every
    /// earlier one); after this call returned in synced mode, all of it. A
    /// batch holds the writer lock while it appends, so other writers wait:
    /// keep batches to a few MiB. Later pairs of the same key win.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set_many(&[(&b"a"[..], &b"1"[..]), (b"b", b"2")], &keg::SetOptions::new()).unwrap();
    /// assert_eq!(cache.get(b"b").unwrap().unwrap(), b"2");
    /// ```
    pub fn set_many<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, items: &[(K, V)], opts: &SetOptions) -> Result<()> {
        let inner = &*self.inner;
        for (k, v) in items {
            inner.check_key(k.as_ref())?;
            self.check_value(v.as_ref())?;
        }
        let tags = opts.encoded_tags()?;
        let expires_ms = opts.expires_ms(inner.now_ms());
        let batch: Vec<BatchItem<'_>> = items
            .iter()
            .map(|(k, v)| BatchItem {
                key: k.as_ref(),
                put: expires_ms.map(|at| (v.as_ref(), opts.user_flags(), at)),
                tags: &tags,
            })
            .collect();
        inner.write_batch(&batch)?;
        crate::stats::add(&inner.counters.sets, items.len() as u64);
        Ok(())
    }

    /// Deletes every key of `keys`, as one batch (see [`Cache::set_many`]);
    /// returns how many had a live value.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.set(b"a", b"1", None).unwrap();
    /// assert_eq!(cache.delete_many(&[&b"a"[..], b"never-set"]).unwrap(), 1);
    /// assert!(cache.get(b"a").unwrap().is_none());
    /// ```
    pub fn delete_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<usize> {
        let inner = &*self.inner;
        for k in keys {
            inner.check_key(k.as_ref())?;
        }
        let batch: Vec<BatchItem<'_>> =
            keys.iter().map(|k| BatchItem { key: k.as_ref(), put: None, tags: &[] }).collect();
        let removed = inner.write_batch(&batch)?;
        crate::stats::add(&inner.counters.deletes, removed as u64);
        Ok(removed)
    }

    /// The value of `key`, or, on a miss, the value `f` computes, stored with
    /// `opts` and returned. When many threads miss on one key at once, `f`
    /// runs in one of them and the others wait for its value (stampede
    /// protection): a slow query behind a popular key runs once, not once per
    /// caller. If `f` fails, nothing is stored and that caller gets its error
    /// (the inner `Err`); each waiter then looks again and, still missing,
    /// runs its own `f` (one at a time). A value `f` returns that is too large
    /// fails with [`Error::ValueTooLarge`] for that caller.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let opts = keg::SetOptions::new().ttl(Some(std::time::Duration::from_secs(60)));
    /// let page = cache.get_or_set_with(b"page:/", &opts, || Ok::<_, std::io::Error>(b"<html>".to_vec()));
    /// assert_eq!(page.unwrap().unwrap(), b"<html>");
    /// // A hit does not call f.
    /// let again = cache.get_or_set_with(b"page:/", &opts, || -> Result<Vec<u8>, std::io::Error> { unreachable!() });
    /// assert_eq!(again.unwrap().unwrap(), b"<html>");
    /// ```
    pub fn get_or_set_with<E>(
        &self,
        key: &[u8],
        opts: &SetOptions,
        f: impl FnOnce() -> std::result::Result<Vec<u8>, E>,
    ) -> Result<std::result::Result<Value, E>> {
        loop {
            if let Some(v) = self.get(key)? {
                return Ok(Ok(v));
            }
            let landing = match self.flights.join(key) {
                crate::flight::Role::Leader(landing) => landing,
                crate::flight::Role::Waited => continue,
            };
            // (A flight that landed between the miss and the join: look once more.)
            if let Some(v) = self.get(key)? {
                return Ok(Ok(v));
            }
            let value = match f() {
                Ok(value) => value,
                Err(e) => return Ok(Err(e)),
            };
            self.set_with(key, &value, opts)?;
            drop(landing);
            return Ok(Ok(Value::owned(&value)));
        }
    }

    /// One write of `key` through the engine, then the durability wait of
    /// the cache's mode; returns the sequence number of the record written.
    fn write<'v>(
        &self,
        key: &[u8],
        decide: impl FnMut(Option<Current<'_>>, u64) -> Result<Action<'v>>,
    ) -> Result<Option<u64>> {
        self.write_in(key, false, true, decide)
    }

    /// [`Cache::write`] of a plain key, or (`namespaced`) of a namespace's
    /// encoded key (see `Namespace`); `reads_current` off for a write whose
    /// `decide` ignores the current value (see `Engine::update`).
    pub(crate) fn write_in<'v>(
        &self,
        key: &[u8],
        namespaced: bool,
        reads_current: bool,
        decide: impl FnMut(Option<Current<'_>>, u64) -> Result<Action<'v>>,
    ) -> Result<Option<u64>> {
        let inner = &*self.inner;
        inner.check_key(key)?;
        let written = inner.update(key, namespaced, reads_current, decide)?;
        if let Some(seq) = written.seq {
            inner.wait_durable(seq)?;
        }
        Ok(written.seq)
    }

    /// One atomic read-decide-write of `key`, for `keg::server`'s meta
    /// commands: `decide` gets the key's live item (value, flags, version,
    /// expiry in Unix ms, 0 never), the time (Unix ms) and the largest value
    /// the cache takes, and says what to write. Returns the written record's
    /// sequence number (the item's new version, for a put).
    #[cfg(feature = "server")]
    pub(crate) fn rewrite<'v>(
        &self,
        key: &[u8],
        mut decide: impl FnMut(Option<(&[u8], u32, u64, u64)>, u64, usize) -> Rewrite<'v>,
    ) -> Result<Option<u64>> {
        let max = self.inner.config.max_value_len;
        let mut wrote = None;
        let seq = self.write(key, |current, now| {
            let found = current.map(|c| (c.value, c.user_flags, c.seq, c.expires_ms));
            let rewrite = decide(found, now, max);
            wrote = Some(matches!(rewrite, Rewrite::Put { .. }));
            Ok(match rewrite {
                Rewrite::Put { value, flags, expires_ms, keep_tags } => {
                    let tags = match current {
                        Some(c) if keep_tags => Cow::Owned(c.meta.tags.to_vec()),
                        _ => Cow::Borrowed(&[][..]),
                    };
                    Action::Put { value, user_flags: flags, tags, expires_ms }
                }
                Rewrite::Delete => Action::Delete,
                Rewrite::Nothing => Action::Nothing,
            })
        })?;
        match wrote {
            Some(true) => bump(&self.inner.counters.sets),
            Some(false) if seq.is_some() => bump(&self.inner.counters.deletes),
            _ => {}
        }
        Ok(seq)
    }

    pub(crate) fn check_value(&self, value: &[u8]) -> Result<()> {
        let max = self.inner.config.max_value_len;
        if value.len() > max {
            return Err(Error::ValueTooLarge { len: value.len(), max });
        }
        Ok(())
    }

    fn counted_set(&self, seq: Option<u64>) -> Option<u64> {
        if seq.is_some() {
            bump(&self.inner.counters.sets);
        }
        seq
    }

    fn concat(&self, key: &[u8], data: &[u8], before: bool) -> Result<Option<u64>> {
        let max = self.inner.config.max_value_len;
        let seq = self.write(key, |current, _| {
            let Some(c) = current else { return Ok(Action::Nothing) };
            let len = c.value.len() + data.len();
            if len > max {
                return Err(Error::ValueTooLarge { len, max });
            }
            let mut value = Vec::with_capacity(len);
            let (first, second) = if before { (data, c.value) } else { (c.value, data) };
            value.extend_from_slice(first);
            value.extend_from_slice(second);
            let tags = Cow::Owned(c.meta.tags.to_vec());
            Ok(Action::Put { value: Cow::Owned(value), user_flags: c.user_flags, tags, expires_ms: c.expires_ms })
        })?;
        Ok(self.counted_set(seq))
    }

    fn count(&self, key: &[u8], step: impl Fn(u64) -> u64, incr: bool) -> Result<Option<u64>> {
        let mut result = None;
        self.write(key, |current, _| {
            let Some(c) = current else {
                result = None;
                return Ok(Action::Nothing);
            };
            let n = step(parse_number(c.value)?);
            result = Some(n);
            let value = Cow::Owned(n.to_string().into_bytes());
            let tags = Cow::Owned(c.meta.tags.to_vec());
            Ok(Action::Put { value, user_flags: c.user_flags, tags, expires_ms: c.expires_ms })
        })?;
        let c = &self.inner.counters;
        let counter = match (incr, result.is_some()) {
            (true, true) => &c.incr_hits,
            (true, false) => &c.incr_misses,
            (false, true) => &c.decr_hits,
            (false, false) => &c.decr_misses,
        };
        bump(counter);
        Ok(result)
    }
}

/// What `Cache::rewrite` writes (for the server, decided by `server::store::decide`).
#[cfg(feature = "server")]
pub(crate) enum Rewrite<'v> {
    /// Store the value with these flags and expiry (Unix ms, 0 never);
    /// `keep_tags`: with the tags the item had, else with none.
    Put { value: Cow<'v, [u8]>, flags: u32, expires_ms: u64, keep_tags: bool },
    /// Delete the key.
    Delete,
    /// Leave it as it is.
    Nothing,
}

/// The write of `value` with `opts` (whose encoded tag list is `tags`) at
/// `now`: a put, or a delete when the TTL has the item expire at once.
pub(crate) fn put<'v>(value: &'v [u8], opts: &SetOptions, tags: &'v [u8], now: u64) -> Action<'v> {
    match opts.expires_ms(now) {
        None => Action::Delete,
        Some(expires_ms) => Action::Put {
            value: Cow::Borrowed(value),
            user_flags: opts.user_flags(),
            tags: Cow::Borrowed(tags),
            expires_ms,
        },
    }
}

/// An unsigned decimal number of 1 to 20 ASCII digits (trailing spaces
/// allowed: memcached pads a decremented number with them), at most `u64::MAX`.
pub(crate) fn parse_number(value: &[u8]) -> Result<u64> {
    let digits = value.strip_suffix(b" ").map_or(value, |_| {
        let end = value.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        &value[..end]
    });
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Error::NotANumber);
    }
    std::str::from_utf8(digits).ok().and_then(|s| s.parse().ok()).ok_or(Error::NotANumber)
}

#[cfg(test)]
mod tests {
    use super::parse_number;

    #[test]
    fn numbers_are_unsigned_decimal_up_to_u64_max() {
        assert_eq!(parse_number(b"0").unwrap(), 0);
        assert_eq!(parse_number(b"18446744073709551615").unwrap(), u64::MAX);
        assert_eq!(parse_number(b"7  ").unwrap(), 7);
        for bad in [&b""[..], b" ", b"-1", b"1.5", b"18446744073709551616", b"abc", b" 1", b"000000000000000000001"] {
            assert!(parse_number(bad).is_err(), "{bad:?}");
        }
    }
}
