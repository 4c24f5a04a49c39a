//! `impl Store for keg::Cache`: the server's operations on a keg cache,
//! through the cache's public API only. Each protocol command is one call,
//! so it is as atomic as that call (every write of a key is one engine
//! write under the writer lock), and a `gets` cas unique is the item's
//! version, valid across restarts.

use super::store::{CasResult, Item, Store, StoreError, StoreResult, Ttl};
use crate::{Cache, CasOutcome, Entry, Error, SetOptions, Value};

fn store_error(e: Error) -> StoreError {
    match e {
        Error::EmptyKey | Error::KeyTooLong { .. } => StoreError::BadKey(e.to_string()),
        Error::ValueTooLarge { .. } => StoreError::TooLarge,
        Error::NotANumber => StoreError::NotANumber,
        e => StoreError::Failed(e.to_string()),
    }
}

fn opts(flags: u32, ttl: Ttl) -> SetOptions {
    SetOptions::new().ttl(ttl).flags(flags)
}

fn item(e: Entry) -> Item<Value> {
    Item { value: e.value, flags: e.flags, cas: e.version }
}

impl Store for Cache {
    type Value = Value;

    fn get(&self, key: &[u8]) -> StoreResult<Option<Item<Value>>> {
        Ok(self.get_entry(key).map_err(store_error)?.map(item))
    }

    fn get_and_touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<Option<Item<Value>>> {
        Ok(Cache::get_and_touch(self, key, ttl).map_err(store_error)?.map(item))
    }

    fn set(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<u64> {
        self.set_with(key, value, &opts(flags, ttl)).map_err(store_error)
    }

    fn add(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>> {
        Cache::add(self, key, value, &opts(flags, ttl)).map_err(store_error)
    }

    fn replace(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<Option<u64>> {
        Cache::replace(self, key, value, &opts(flags, ttl)).map_err(store_error)
    }

    fn append(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>> {
        Cache::append(self, key, data).map_err(store_error)
    }

    fn prepend(&self, key: &[u8], data: &[u8]) -> StoreResult<Option<u64>> {
        Cache::prepend(self, key, data).map_err(store_error)
    }

    fn cas(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl, version: u64) -> StoreResult<CasResult> {
        Ok(match self.set_if_version(key, value, &opts(flags, ttl), version).map_err(store_error)? {
            CasOutcome::Stored(v) => CasResult::Stored(v),
            CasOutcome::Changed => CasResult::Changed,
            CasOutcome::Missing => CasResult::Missing,
        })
    }

    fn incr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>> {
        Cache::incr(self, key, delta).map_err(store_error)
    }

    fn decr(&self, key: &[u8], delta: u64) -> StoreResult<Option<u64>> {
        Cache::decr(self, key, delta).map_err(store_error)
    }

    fn touch(&self, key: &[u8], ttl: Ttl) -> StoreResult<bool> {
        Cache::touch(self, key, ttl).map_err(store_error)
    }

    fn delete(&self, key: &[u8]) -> StoreResult<bool> {
        Cache::delete(self, key).map_err(store_error)
    }

    fn clear(&self) -> StoreResult<()> {
        Cache::clear(self).map_err(store_error)
    }

    fn stats(&self) -> crate::Stats {
        Cache::stats(self)
    }
}
