//! `impl Store for keg::Cache`: the server's operations on a keg cache,
//! through the cache's public API only.
//!
//! PLACEHOLDERS. This keg build's `Cache` has get, set, delete and clear but
//! not yet the atomic operations and per-item flags and versions that the
//! protocol needs (they are being added to the library). Until they are
//! wired here:
//! - `get` returns flags 0 and cas 0 for every item;
//! - `set` refuses flags other than 0 and returns version 0;
//! - `get_and_touch`, `add`, `replace`, `append`, `prepend`, `cas`, `incr`,
//!   `decr` and `touch` answer [`StoreError::Unsupported`], which the client
//!   sees as `SERVER_ERROR ... is not supported by this keg build`.
//!
//! Wiring, once `Cache` has them (`opts` = `SetOptions::new().ttl(ttl).flags(flags)`):
//! - `get` / `get_and_touch`: `Cache::get_entry(key)` / `Cache::get_and_touch(key, ttl)`,
//!   each `Entry` as `Item { value: e.value, flags: e.flags, cas: e.version }`;
//! - `set`: `Cache::set_with(key, value, &opts)`, its version;
//! - `add` / `replace`: `Cache::add` / `Cache::replace` with `&opts`, as they are;
//! - `append` / `prepend`: `Cache::append` / `Cache::prepend`, as they are;
//! - `cas`: `Cache::set_if_version(key, value, &opts, version)`, with
//!   `CasOutcome::{Stored(v), Changed, Missing}` as `CasResult::{Stored(v), Changed, Missing}`;
//! - `incr` / `decr` / `touch`: the `Cache` methods of the same names, as they are;
//! - `store_error`: `Error::NotANumber` as `StoreError::NotANumber`.
//!
//! Then un-ignore `tests/serve/atomic.rs`, and the Django tests
//! (`tests/python`) pass.

use super::store::{CasResult, Item, Store, StoreError, StoreResult, Ttl};
use crate::{Cache, Error, Value};

fn store_error(e: Error) -> StoreError {
    match e {
        Error::EmptyKey | Error::KeyTooLong { .. } => StoreError::BadKey(e.to_string()),
        Error::ValueTooLarge { .. } => StoreError::TooLarge,
        e => StoreError::Failed(e.to_string()),
    }
}

/// Placeholder for an operation this build's `Cache` lacks.
fn unsupported<T>(what: &'static str) -> StoreResult<T> {
    Err(StoreError::Unsupported(what))
}

impl Store for Cache {
    type Value = Value;

    fn get(&self, key: &[u8]) -> StoreResult<Option<Item<Value>>> {
        // PLACEHOLDER: flags and version need Cache::get_entry.
        let value = Cache::get(self, key).map_err(store_error)?;
        Ok(value.map(|value| Item { value, flags: 0, cas: 0 }))
    }

    fn get_and_touch(&self, _key: &[u8], _ttl: Ttl) -> StoreResult<Option<Item<Value>>> {
        unsupported("gat (get and touch)")
    }

    fn set(&self, key: &[u8], value: &[u8], flags: u32, ttl: Ttl) -> StoreResult<u64> {
        // PLACEHOLDER: flags and the new version need Cache::set_with.
        if flags != 0 {
            return unsupported("storing client flags other than 0");
        }
        Cache::set(self, key, value, ttl).map_err(store_error)?;
        Ok(0)
    }

    fn add(&self, _key: &[u8], _value: &[u8], _flags: u32, _ttl: Ttl) -> StoreResult<Option<u64>> {
        unsupported("add")
    }

    fn replace(&self, _key: &[u8], _value: &[u8], _flags: u32, _ttl: Ttl) -> StoreResult<Option<u64>> {
        unsupported("replace")
    }

    fn append(&self, _key: &[u8], _data: &[u8]) -> StoreResult<Option<u64>> {
        unsupported("append")
    }

    fn prepend(&self, _key: &[u8], _data: &[u8]) -> StoreResult<Option<u64>> {
        unsupported("prepend")
    }

    fn cas(&self, _key: &[u8], _value: &[u8], _flags: u32, _ttl: Ttl, _version: u64) -> StoreResult<CasResult> {
        unsupported("cas")
    }

    fn incr(&self, _key: &[u8], _delta: u64) -> StoreResult<Option<u64>> {
        unsupported("incr")
    }

    fn decr(&self, _key: &[u8], _delta: u64) -> StoreResult<Option<u64>> {
        unsupported("decr")
    }

    fn touch(&self, _key: &[u8], _ttl: Ttl) -> StoreResult<bool> {
        unsupported("touch")
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
