//! Namespaces: a handle whose keys are stored under a prefix, and the O(1)
//! drop of every key in one (`Cache::drop_namespace`).
//!
//! A namespace `n`'s key `k` is stored as the key `[len(n)] n k` (one byte of
//! length, the name, the caller's key) in a value record with flag bit 2
//! (namespaced key; FORMAT.md 2.2). Reads through a namespace see only
//! namespaced records, and plain reads only plain ones: a plain key whose
//! bytes happen to equal an encoded one shares its index slot (a write of
//! either replaces the other) but never reads the other's value.

use super::ops::put;
use super::Cache;
use crate::engine::tags::check_name;
use crate::error::{Error, Result};
use crate::format::record::Scope;
use crate::item::{Entry, SetOptions};
use crate::stats::bump;
use crate::value::Value;

/// A view of a [`Cache`] that sees only the keys of one namespace: a cheap
/// handle (the name, borrowed cache), made by [`Cache::namespace`].
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let cache = keg::Cache::open(dir.path()).unwrap();
/// let blog = cache.namespace("blog:v2").unwrap();
/// blog.set(b"post:1", b"hello", None).unwrap();
/// assert_eq!(blog.get(b"post:1").unwrap().unwrap(), b"hello");
/// assert!(cache.get(b"post:1").unwrap().is_none()); // not a plain key
/// blog.drop_all().unwrap();
/// assert!(blog.get(b"post:1").unwrap().is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Namespace<'c> {
    cache: &'c Cache,
    /// The length byte and the name: the prefix of every key.
    prefix: Vec<u8>,
}

impl Cache {
    /// A handle on the namespace `name` (1 to 250 bytes, else
    /// [`Error::BadName`]): its calls see only its own keys. Making one costs
    /// a small allocation and touches no disk.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let (a, b) = (cache.namespace("a").unwrap(), cache.namespace("b").unwrap());
    /// a.set(b"k", b"1", None).unwrap();
    /// assert!(b.get(b"k").unwrap().is_none());
    /// assert!(cache.namespace("").is_err());
    /// ```
    pub fn namespace(&self, name: impl AsRef<[u8]>) -> Result<Namespace<'_>> {
        let name = name.as_ref();
        check_name("a namespace", name)?;
        let mut prefix = Vec::with_capacity(1 + name.len());
        prefix.push(name.len() as u8);
        prefix.extend_from_slice(name);
        Ok(Namespace { cache: self, prefix })
    }

    /// Drops every key of namespace `name` at once, durably: one small
    /// record, whatever the number of keys (see [`Namespace::drop_all`]).
    /// Keys written in the namespace afterwards are kept.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.namespace("tmp").unwrap().set(b"k", b"v", None).unwrap();
    /// cache.drop_namespace("tmp").unwrap();
    /// assert!(cache.namespace("tmp").unwrap().get(b"k").unwrap().is_none());
    /// ```
    pub fn drop_namespace(&self, name: impl AsRef<[u8]>) -> Result<()> {
        let name = name.as_ref();
        check_name("a namespace", name)?;
        self.inner.invalidate(Scope::Namespace, name).map(|_| ())
    }

    /// Removes every entry carrying `tag` (1 to 250 bytes), atomically with
    /// respect to concurrent writes: an item written with the tag before
    /// this call never reads again (nor after a restart or a crash), one
    /// written after it is kept. Costs one small record on disk, whatever
    /// the number of entries; their space is reclaimed as expired entries'
    /// is. In synced mode it is durable when this returns.
    ///
    /// Returns how many entries it removed: the keys written with the tag
    /// since open (or found with it by open) whose current value was live,
    /// carried the tag and was not invalidated already, just before.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let opts = keg::SetOptions::new().tags(["author:7"]);
    /// cache.set_with(b"a", b"1", &opts).unwrap();
    /// cache.set_with(b"b", b"2", &opts).unwrap();
    /// cache.set(b"c", b"3", None).unwrap();
    /// assert_eq!(cache.invalidate_tag("author:7").unwrap(), 2);
    /// assert!(cache.get(b"a").unwrap().is_none());
    /// assert!(cache.get(b"c").unwrap().is_some());
    /// ```
    pub fn invalidate_tag(&self, tag: impl AsRef<[u8]>) -> Result<usize> {
        let tag = tag.as_ref();
        check_name("a tag", tag)?;
        self.inner.invalidate(Scope::Tag, tag)
    }
}

impl Namespace<'_> {
    /// The namespace's name.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// assert_eq!(cache.namespace("n").unwrap().name(), b"n");
    /// ```
    pub fn name(&self) -> &[u8] {
        &self.prefix[1..]
    }

    /// The longest key this namespace takes: the cache's `max_key_len` less
    /// the prefix (1 byte and the name).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// assert_eq!(cache.namespace("abc").unwrap().max_key_len(), 1024 - 4);
    /// ```
    pub fn max_key_len(&self) -> usize {
        self.cache.inner.config.max_key_len.saturating_sub(self.prefix.len())
    }

    /// The stored form of `key`, after checking it.
    fn key(&self, key: &[u8]) -> Result<Vec<u8>> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let max = self.max_key_len();
        if key.len() > max {
            return Err(Error::KeyTooLong { len: key.len(), max });
        }
        let mut k = Vec::with_capacity(self.prefix.len() + key.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(key);
        Ok(k)
    }

    /// [`Cache::get`] of the namespace's `key`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// assert!(cache.namespace("n").unwrap().get(b"k").unwrap().is_none());
    /// ```
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        Ok(self.get_entry(key)?.map(|e| e.value))
    }

    /// [`Cache::get_entry`] of the namespace's `key`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let ns = cache.namespace("n").unwrap();
    /// ns.set_with(b"k", b"v", &keg::SetOptions::new().flags(5)).unwrap();
    /// assert_eq!(ns.get_entry(b"k").unwrap().unwrap().flags, 5);
    /// ```
    pub fn get_entry(&self, key: &[u8]) -> Result<Option<Entry>> {
        let key = self.key(key)?;
        let inner = &*self.cache.inner;
        let hash = inner.hasher.hash(&key);
        let item = inner.read_item(&key, hash, true, true);
        if item.is_some() { &inner.counters.hits } else { &inner.counters.misses }.add(1);
        Ok(item.map(|i| Entry { value: i.value, flags: i.user_flags, version: i.seq, expires_at_ms: i.expires_ms }))
    }

    /// [`Cache::contains`] of the namespace's `key`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let ns = cache.namespace("n").unwrap();
    /// ns.set(b"k", b"v", None).unwrap();
    /// assert!(ns.contains(b"k").unwrap());
    /// ```
    pub fn contains(&self, key: &[u8]) -> Result<bool> {
        let key = self.key(key)?;
        let inner = &*self.cache.inner;
        let hash = inner.hasher.hash(&key);
        Ok(inner.read_item(&key, hash, false, true).is_some())
    }

    /// [`Cache::set`] of the namespace's `key`.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// cache.namespace("n").unwrap().set(b"k", b"v", None).unwrap();
    /// ```
    pub fn set(&self, key: &[u8], value: &[u8], ttl: Option<std::time::Duration>) -> Result<()> {
        self.set_with(key, value, &SetOptions::new().ttl(ttl)).map(|_| ())
    }

    /// [`Cache::set_with`] of the namespace's `key` (tags included); returns
    /// the item's version.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let ns = cache.namespace("n").unwrap();
    /// ns.set_with(b"k", b"v", &keg::SetOptions::new().tags(["t"])).unwrap();
    /// cache.invalidate_tag("t").unwrap();
    /// assert!(ns.get(b"k").unwrap().is_none());
    /// ```
    pub fn set_with(&self, key: &[u8], value: &[u8], opts: &SetOptions) -> Result<u64> {
        let key = self.key(key)?;
        self.cache.check_value(value)?;
        let tags = opts.encoded_tags()?;
        let seq = self.cache.write_in(&key, true, false, |_, now| Ok(put(value, opts, &tags, now)))?;
        bump(&self.cache.inner.counters.sets);
        Ok(seq.unwrap_or(0))
    }

    /// [`Cache::delete`] of the namespace's `key`: whether a live value was removed.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let ns = cache.namespace("n").unwrap();
    /// ns.set(b"k", b"v", None).unwrap();
    /// assert!(ns.delete(b"k").unwrap());
    /// ```
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        let key = self.key(key)?;
        let removed = self.cache.inner.remove(&key, true)?;
        if removed {
            bump(&self.cache.inner.counters.deletes);
        }
        Ok(removed)
    }

    /// Drops every key of this namespace at once ([`Cache::drop_namespace`]).
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = keg::Cache::open(dir.path()).unwrap();
    /// let ns = cache.namespace("n").unwrap();
    /// ns.set(b"k", b"old", None).unwrap();
    /// ns.drop_all().unwrap();
    /// ns.set(b"k2", b"new", None).unwrap(); // written after: kept
    /// assert!(ns.get(b"k").unwrap().is_none());
    /// assert!(ns.get(b"k2").unwrap().is_some());
    /// ```
    pub fn drop_all(&self) -> Result<()> {
        self.cache.drop_namespace(self.name())
    }
}
