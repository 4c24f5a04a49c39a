//! `impl Store for keg::Cache`: the server's operations on a keg cache,
//! through the cache's public API only. Each protocol command is one call,
//! so it is as atomic as that call (every write of a key is one engine
//! write under the writer lock), and a `gets` cas unique is the item's
//! version, valid across restarts.

use super::store::{decide, Applied, CasResult, Change, Item, Store, StoreError, StoreResult, Ttl};
use crate::cache::Rewrite;
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
    Item { value: e.value, flags: e.flags, cas: e.version, expires_at_ms: e.expires_at_ms }
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

    fn apply(&self, key: &[u8], change: &Change<'_>, if_version: Option<u64>) -> StoreResult<Applied> {
        // The decision of the closure's last call (the one the write carried out).
        let mut answer = Err(StoreError::Failed("the write decided nothing".into()));
        let mut put = false;
        let seq = self
            .rewrite(key, |found, now_ms, max_len| {
                let decided = decide(found, change, if_version, now_ms, max_len);
                put = matches!(decided, Ok((Rewrite::Put { .. }, _)));
                match decided {
                    Ok((rewrite, applied)) => {
                        answer = Ok(applied);
                        rewrite
                    }
                    Err(e) => {
                        answer = Err(e);
                        Rewrite::Nothing
                    }
                }
            })
            .map_err(store_error)?;
        Ok(match answer? {
            // A put's record number is the item's new version.
            Applied::Done { number, expires_at_ms, .. } if put => {
                Applied::Done { version: seq.unwrap_or(0), number, expires_at_ms }
            }
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    //! The meta writes on a keg cache against the in-memory reference store:
    //! the same answers and the same items after every step.
    use super::*;
    use crate::server::protocol::MetaMode;
    use crate::server::MemoryStore;
    use proptest::prelude::*;
    use std::time::Duration;

    #[derive(Debug, Clone)]
    enum Op {
        Apply { key: u8, change: OwnedChange, compare: Compare },
        Set { key: u8, value: Vec<u8>, flags: u32 },
        Delete { key: u8 },
    }

    #[derive(Debug, Clone, Copy)]
    enum Compare {
        None,
        Current,
        Stale,
    }

    #[derive(Debug, Clone)]
    enum OwnedChange {
        Store { mode: MetaMode, data: Vec<u8>, flags: u32, ttl: Ttl },
        Delete,
        Arith { decrement: bool, delta: u64, ttl: Option<Ttl>, vivify: Option<(u64, Ttl)> },
    }

    impl OwnedChange {
        fn as_change(&self) -> Change<'_> {
            match self {
                OwnedChange::Store { mode, data, flags, ttl } => {
                    Change::Store { mode: *mode, data, flags: *flags, ttl: *ttl }
                }
                OwnedChange::Delete => Change::Delete,
                OwnedChange::Arith { decrement, delta, ttl, vivify } => {
                    Change::Arith { decrement: *decrement, delta: *delta, ttl: *ttl, vivify: *vivify }
                }
            }
        }
    }

    fn ttl() -> impl Strategy<Value = Ttl> {
        prop_oneof![Just(None), Just(Some(Duration::ZERO)), Just(Some(Duration::from_secs(3600)))]
    }

    fn op() -> impl Strategy<Value = Op> {
        let mode = prop_oneof![
            Just(MetaMode::Set),
            Just(MetaMode::Add),
            Just(MetaMode::Replace),
            Just(MetaMode::Append),
            Just(MetaMode::Prepend)
        ];
        let value = prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..6),
            (0u64..30).prop_map(|n| n.to_string().into_bytes()),
            Just(b"18446744073709551615".to_vec()),
        ];
        let change = prop_oneof![
            (mode, value.clone(), 0u32..3, ttl()).prop_map(|(mode, data, flags, ttl)| OwnedChange::Store {
                mode,
                data,
                flags,
                ttl
            }),
            Just(OwnedChange::Delete),
            (any::<bool>(), 0u64..5, proptest::option::of(ttl()), proptest::option::of((0u64..9, ttl())))
                .prop_map(|(decrement, delta, ttl, vivify)| OwnedChange::Arith { decrement, delta, ttl, vivify }),
        ];
        let compare = prop_oneof![Just(Compare::None), Just(Compare::Current), Just(Compare::Stale)];
        prop_oneof![
            4 => (0u8..4, change, compare).prop_map(|(key, change, compare)| Op::Apply { key, change, compare }),
            1 => (0u8..4, value, 0u32..3).prop_map(|(key, value, flags)| Op::Set { key, value, flags }),
            1 => (0u8..4).prop_map(|key| Op::Delete { key }),
        ]
    }

    /// An answer without the version, which each store numbers its own way.
    fn shape(a: Applied) -> (u8, Option<u64>, bool) {
        match a {
            Applied::Done { number, expires_at_ms, version } => (0, number, expires_at_ms != 0 || version == 0),
            Applied::NotStored => (1, None, false),
            Applied::Exists => (2, None, false),
            Applied::NotFound => (3, None, false),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn meta_writes_on_a_cache_match_the_reference(ops in proptest::collection::vec(op(), 1..60)) {
            let dir = tempfile::tempdir().unwrap();
            let cache = Cache::builder().max_value_len(16).open(dir.path()).unwrap();
            let memory = MemoryStore::new(16);
            for op in &ops {
                match op {
                    Op::Apply { key, change, compare } => {
                        let key = [b'k', *key];
                        let version = |store: &dyn Fn() -> Option<u64>| match compare {
                            Compare::None => None,
                            Compare::Current => Some(store().unwrap_or(1)),
                            Compare::Stale => Some(store().map_or(1, |v| v + 1000)),
                        };
                        let in_cache = Store::apply(&cache, &key, &change.as_change(),
                            version(&|| Store::get(&cache, &key).unwrap().map(|i| i.cas)));
                        let in_memory = memory.apply(&key, &change.as_change(),
                            version(&|| memory.get(&key).unwrap().map(|i| i.cas)));
                        match (in_cache, in_memory) {
                            (Ok(c), Ok(m)) => {
                                prop_assert_eq!(shape(c).0, shape(m).0, "{:?}: {:?} against {:?}", op, c, m);
                                prop_assert_eq!(shape(c).1, shape(m).1);
                                // A stored item's version is the one a read then reports.
                                if let Applied::Done { version, .. } = c {
                                    if version != 0 {
                                        prop_assert_eq!(Store::get(&cache, &key).unwrap().map(|i| i.cas), Some(version));
                                    }
                                }
                            }
                            (Err(c), Err(m)) => prop_assert_eq!(c, m),
                            (c, m) => prop_assert!(false, "{:?}: {:?} against {:?}", op, c, m),
                        }
                    }
                    Op::Set { key, value, flags } => {
                        let key = [b'k', *key];
                        prop_assert_eq!(Store::set(&cache, &key, value, *flags, None).is_ok(), memory.set(&key, value, *flags, None).is_ok());
                    }
                    Op::Delete { key } => {
                        let key = [b'k', *key];
                        prop_assert_eq!(Store::delete(&cache, &key).unwrap(), memory.delete(&key).unwrap());
                    }
                }
                for k in 0..4u8 {
                    let key = [b'k', k];
                    let c = Store::get(&cache, &key).unwrap();
                    let m = memory.get(&key).unwrap();
                    prop_assert_eq!(c.as_ref().map(|i| (i.value.to_vec(), i.flags, i.expires_at_ms == 0)),
                        m.as_ref().map(|i| (i.value.to_vec(), i.flags, i.expires_at_ms == 0)), "after {:?}", op);
                }
            }
        }
    }
}
