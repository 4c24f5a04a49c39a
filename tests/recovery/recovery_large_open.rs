//! An open of enough records to take its parallel path (two threads, the
//! shards staged and built in groups, hint files streamed in chunks, records
//! placed straight into their slots) rebuilds exactly what was written, with
//! keys that share a hash, keys deleted, and keys deleted and set again.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use keg::Cache;

/// Keys starting with `c` share 3000 hashes (spread over every shard);
/// the others hash apart.
fn hash(key: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let h = h.finish();
    if key.first() == Some(&b'c') {
        (h % 3000).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    } else {
        h
    }
}

fn builder() -> keg::Builder {
    Cache::builder().max_bytes(1 << 30).segment_bytes(2 << 20).key_hasher(hash)
}

/// 160,000 keys (over the 100,000 records that make open use its threads
/// and groups), a quarter sharing hashes; a third deleted, half of those set
/// again; some overwritten. Returns what each key must hold.
fn write(cache: &Cache) -> HashMap<Vec<u8>, Option<Vec<u8>>> {
    let mut model = HashMap::new();
    for i in 0..160_000u32 {
        let key = if i % 4 == 0 { format!("c{i}") } else { format!("k{i}") }.into_bytes();
        let value = format!("v{i}").into_bytes();
        cache.set(&key, &value, None).unwrap();
        model.insert(key, Some(value));
    }
    for i in (0..160_000u32).filter(|i| i % 3 == 0) {
        let key = if i % 4 == 0 { format!("c{i}") } else { format!("k{i}") }.into_bytes();
        cache.delete(&key).unwrap();
        let value = (i % 2 == 0).then(|| format!("again{i}").into_bytes());
        if let Some(v) = &value {
            cache.set(&key, v, None).unwrap();
        }
        model.insert(key, value);
    }
    for i in (0..160_000u32).filter(|i| i % 7 == 1) {
        let key = if i % 4 == 0 { format!("c{i}") } else { format!("k{i}") }.into_bytes();
        let value = format!("over{i}").into_bytes();
        cache.set(&key, &value, None).unwrap();
        model.insert(key, Some(value));
    }
    model
}

fn check(cache: &Cache, model: &HashMap<Vec<u8>, Option<Vec<u8>>>) {
    let live = model.values().filter(|v| v.is_some()).count() as u64;
    assert_eq!(cache.stats().entries, live);
    for (key, want) in model {
        let got = cache.get(key).unwrap();
        assert_eq!(got.as_deref(), want.as_deref(), "key {}", String::from_utf8_lossy(key));
    }
}

#[test]
fn a_large_reopen_rebuilds_every_key_after_a_clean_close() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    let model = write(&cache);
    cache.close().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert_eq!(cache.stats().recovery_scanned_segments, 0, "every segment read from its hint file");
    check(&cache, &model);
    // And once more, from the hint files this open rewrote or kept.
    cache.close().unwrap();
    check(&builder().open(dir.path()).unwrap(), &model);
}

#[test]
fn a_large_reopen_rebuilds_every_key_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    let model = write(&cache);
    cache.abandon();
    let cache = builder().open(dir.path()).unwrap();
    check(&cache, &model);
}
