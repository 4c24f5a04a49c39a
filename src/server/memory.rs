//! [`MemoryStore`]: a [`Store`] that keeps items in memory only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::stats::unix_now_ms as now_ms;
use super::store::{decide, parse_number, Applied, CasResult, Change, Item, Store, StoreError, StoreResult, Ttl};
use crate::cache::Rewrite;
use crate::item::expiry_after;

/// A [`Store`] in memory: nothing survives the process, nothing is evicted.
///
/// For tests of code that talks to a keg server, for measuring the server
/// without the disk, and as the reference for what each [`Store`] operation
/// means.
///
/// ```
/// use keg::server::{CasResult, MemoryStore, Store};
/// let store = MemoryStore::new(1024);
/// assert_eq!(store.add(b"k", b"a", 0, None).unwrap().is_some(), true);
/// assert_eq!(store.add(b"k", b"b", 0, None).unwrap(), None);
/// let v = store.append(b"k", b"bc").unwrap().unwrap();
/// assert_eq!(store.get(b"k").unwrap().unwrap().value.as_ref(), b"abc");
/// assert_eq!(store.cas(b"k", b"x", 0, None, v + 1).unwrap(), CasResult::Changed);
/// assert!(matches!(store.cas(b"k", b"x", 0, None, v).unwrap(), CasResult::Stored(_)));
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    max_item_size: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    items: HashMap<Vec<u8>, Stored>,
    version: u64,
    stats: crate::Stats,
}

#[derive(Debug, Clone)]
struct Stored {
    value: Arc<[u8]>,
    flags: u32,
    version: u64,
    /// Unix ms; 0 never.
    expires_at_ms: u64,
}

impl Stored {
    fn live(&self, now_ms: u64) -> bool {
        self.expires_at_ms == 0 || self.expires_at_ms > now_ms
    }
}

impl Inner {
    /// The live item of `key` (an expired one is removed).
    fn live(&mut self, key: &[u8]) -> Option<&mut Stored> {
        let now = now_ms();
        if self.items.get(key).is_some_and(|s| !s.live(now)) {
            self.items.remove(key);
            self.stats.expired_reads += 1;
        }
        self.items.get_mut(key)
    }

    fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    fn put(&mut self, key: &[u8], value: Arc<[u8]>, flags: u32, ttl: Ttl) -> u64 {
        let version = self.next_version();
        self.stats.sets += 1;
        match expiry_after(now_ms(), ttl) {
            None => {
                self.items.remove(key);
            }
            Some(expires_at_ms) => {
                self.items.insert(key.to_vec(), Stored { value, flags, version, expires_at_ms });
            }
        }
        version
    }

    /// Gives `stored` the time to live `ttl` (zero: it expires at once).
    fn set_ttl(stored: &mut Stored, ttl: Ttl) {
        let now = now_ms();
        stored.expires_at_ms = expiry_after(now, ttl).unwrap_or(now);
    }
}

impl MemoryStore {
    /// An empty store accepting values up to `max_item_size` bytes.
    ///
    /// ```
    /// use keg::server::{MemoryStore, Store, StoreError};
    /// let store = MemoryStore::new(4);
    /// assert_eq!(store.set(b"k", b"12345", 0, None).unwrap_err(), StoreError::TooLarge);
    /// ```
    pub fn new(max_item_size: usize) -> MemoryStore {
        MemoryStore { max_item_size, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, key: &[u8], len: usize) -> StoreResult<()> {
        if key.is_empty() {
            return Err(StoreError::BadKey("empty key".into()));
        }
        if len > self.max_item_size {
            return Err(StoreError::TooLarge);
        }
        Ok(())
    }

    /// Stores if `key` has a live value (`present`) or has none (`!present`).
    fn put_if(&self, present: bool, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>> {
        self.check(key, value.len())?;
        let mut inner = self.lock();
        if inner.live(key).is_some() != present {
            return Ok(None);
        }
        Ok(Some(inner.put(key, value.into(), flags, ttl)))
    }

    fn item(stored: &Stored) -> Item<Arc<[u8]>> {
        Item {
            value: stored.value.clone(),
            flags: stored.flags,
            cas: stored.version,
            expires_at_ms: stored.expires_at_ms,
        }
    }

    fn concat(&self, key: &[u8], data: &[u8], after: bool) -> StoreResult<Option<u64>> {
        let mut inner = self.lock();
        let Some(old) = inner.live(key) else { return Ok(None) };
        let len = old.value.len() + data.len();
        self.check(key, len)?;
        let mut joined = Vec::with_capacity(len);
        if after {
            joined.extend_from_slice(&old.value);
            joined.extend_from_slice(data);
        } else {
            joined.extend_from_slice(data);
            joined.extend_from_slice(&old.value);
        }
        old.value = joined.into();
        let version = inner.next_version();
        if let Some(old) = inner.items.get_mut(key) {
            old.version = version;
        }
        Ok(Some(version))
    }

    fn arith(&self, key: &[u8], f: impl Fn(u64) -> u64) -> StoreResult<Option<u64>> {
        let mut inner = self.lock();
        let Some(old) = inner.live(key) else { return Ok(None) };
        let n = parse_number(&old.value).ok_or(StoreError::NotANumber)?;
        let n = f(n);
        old.value = n.to_string().into_bytes().into();
        let version = inner.next_version();
        if let Some(old) = inner.items.get_mut(key) {
            old.version = version;
        }
        Ok(Some(n))
    }
}

impl Store for MemoryStore {
    type Value = Arc<[u8]>;

    fn get(&self, key: &[u8]) -> StoreResult<Option<Item<Arc<[u8]>>>> {
        let mut inner = self.lock();
        let item = inner.live(key).map(|s| Self::item(s));
        if item.is_some() {
            inner.stats.hits += 1;
        } else {
            inner.stats.misses += 1;
        }
        Ok(item)
    }

    fn get_and_touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<Option<Item<Arc<[u8]>>>> {
        let mut inner = self.lock();
        let Some(stored) = inner.live(key) else { return Ok(None) };
        Inner::set_ttl(stored, ttl);
        // With its new expiry, as the trait says (an expired one is still returned once).
        Ok(Some(Self::item(stored)))
    }

    fn set(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<u64> {
        self.check(key, value.len())?;
        Ok(self.lock().put(key, value.into(), flags, ttl))
    }

    fn add(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>> {
        self.put_if(false, key, value, flags, ttl)
    }

    fn replace(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>> {
        self.put_if(true, key, value, flags, ttl)
    }

    fn append(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>> {
        self.concat(key, data, true)
    }

    fn prepend(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>> {
        self.concat(key, data, false)
    }

    fn cas(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl, version: u64) -> StoreResult<CasResult> {
        self.check(key, value.len())?;
        let mut inner = self.lock();
        match inner.live(key) {
            None => Ok(CasResult::Missing),
            Some(s) if s.version != version => Ok(CasResult::Changed),
            Some(_) => Ok(CasResult::Stored(inner.put(key, value.into(), flags, ttl))),
        }
    }

    fn incr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>> {
        self.arith(key, |n| n.wrapping_add(delta))
    }

    fn decr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>> {
        self.arith(key, |n| n.saturating_sub(delta))
    }

    fn touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(stored) = inner.live(key) else { return Ok(false) };
        Inner::set_ttl(stored, ttl);
        Ok(true)
    }

    fn delete(&self, key: &[u8]) -> StoreResult<bool> {
        let mut inner = self.lock();
        let removed = inner.live(key).is_some();
        inner.items.remove(key);
        if removed {
            inner.stats.deletes += 1;
        }
        Ok(removed)
    }

    fn clear(&self) -> StoreResult<()> {
        self.lock().items.clear();
        Ok(())
    }

    fn apply(&self, key: &[u8], change: &Change<'_>, if_version: Option<u64>) -> StoreResult<Applied> {
        if key.is_empty() {
            return Err(StoreError::BadKey("empty key".into()));
        }
        let mut inner = self.lock();
        let found = inner.live(key).map(|s| (s.value.clone(), s.flags, s.version, s.expires_at_ms));
        let found_ref = found.as_ref().map(|(v, f, ver, e)| (&v[..], *f, *ver, *e));
        let (decision, applied) = decide(found_ref, change, if_version, now_ms(), self.max_item_size)?;
        Ok(match decision {
            Rewrite::Put { value, flags, expires_ms: expires_at_ms, keep_tags: _ } => {
                let version = inner.next_version();
                inner.stats.sets += 1;
                inner
                    .items
                    .insert(key.to_vec(), Stored { value: value.as_ref().into(), flags, version, expires_at_ms });
                match applied {
                    Applied::Done { number, expires_at_ms, .. } => Applied::Done { version, number, expires_at_ms },
                    other => other,
                }
            }
            Rewrite::Delete => {
                if inner.items.remove(key).is_some() {
                    inner.stats.deletes += 1;
                }
                applied
            }
            Rewrite::Nothing => applied,
        })
    }

    fn stats(&self) -> crate::Stats {
        let inner = self.lock();
        let mut stats = inner.stats.clone();
        stats.entries = inner.items.len() as u64;
        stats.live_bytes = inner.items.iter().map(|(k, s)| (k.len() + s.value.len()) as u64).sum();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn arithmetic() {
        let s = MemoryStore::new(100);
        assert_eq!(s.incr(b"n", 1).unwrap(), None);
        s.set(b"n", b"18446744073709551615", 0, None).unwrap();
        assert_eq!(s.incr(b"n", 2).unwrap(), Some(1));
        assert_eq!(s.decr(b"n", 5).unwrap(), Some(0));
        s.set(b"n", b"12 ", 0, None).unwrap();
        assert_eq!(s.incr(b"n", 1).unwrap(), Some(13));
        s.set(b"n", b"x1", 0, None).unwrap();
        assert_eq!(s.incr(b"n", 1), Err(StoreError::NotANumber));
    }

    #[test]
    fn expiry_and_limits() {
        let s = MemoryStore::new(4);
        s.set(b"k", b"v", 0, Some(Duration::ZERO)).unwrap();
        assert!(s.get(b"k").unwrap().is_none());
        s.set(b"k", b"v", 0, Some(Duration::from_millis(300))).unwrap();
        assert!(s.touch(b"k", None).unwrap());
        std::thread::sleep(Duration::from_millis(400));
        assert!(s.get(b"k").unwrap().is_some());
        assert_eq!(s.set(b"k", b"12345", 0, None), Err(StoreError::TooLarge));
        assert_eq!(s.append(b"k", b"1234"), Err(StoreError::TooLarge));
        assert!(s.get_and_touch(b"k", Some(Duration::ZERO)).unwrap().is_some());
        assert!(s.get(b"k").unwrap().is_none());
    }
}
