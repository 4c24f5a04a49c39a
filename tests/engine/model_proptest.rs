//! The cache against a plain HashMap model, under random sequences of set,
//! get, delete, clock advances, compaction, clean reopens and crash reopens.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use keg::{Cache, ManualClock};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Set { key: u8, len: u16, ttl_ms: Option<u32> },
    Get { key: u8 },
    Delete { key: u8 },
    Advance { ms: u32 },
    Compact,
    Maintain,
    Reopen,
    CrashReopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..24u8, 0..3000u16, prop::option::weighted(0.3, 1..5000u32))
            .prop_map(|(key, len, ttl_ms)| Op::Set { key, len, ttl_ms }),
        5 => (0..24u8).prop_map(|key| Op::Get { key }),
        3 => (0..24u8).prop_map(|key| Op::Delete { key }),
        2 => (0..3000u32).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Compact),
        2 => Just(Op::Maintain),
        1 => Just(Op::Reopen),
        1 => Just(Op::CrashReopen),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k}-{}", "x".repeat(k as usize % 5)).into_bytes()
}

/// Value bytes that name the key and the write, so a wrong answer is recognisable.
fn value(k: u8, version: u32, len: u16) -> Vec<u8> {
    let mut v = format!("{k}:{version}:").into_bytes();
    v.resize(len as usize + v.len(), (version % 251) as u8);
    v
}

struct Model {
    map: HashMap<u8, (Vec<u8>, Option<u64>)>,
}

impl Model {
    fn live(&self, k: u8, now: u64) -> Option<&Vec<u8>> {
        self.map.get(&k).filter(|(_, exp)| exp.is_none_or(|e| e > now)).map(|(v, _)| v)
    }
}

fn open(dir: &Path, clock: &ManualClock, hasher: Option<fn(&[u8]) -> u64>) -> Cache {
    let mut b = Cache::builder()
        .max_bytes(256 << 20)
        .segment_bytes(64 << 10)
        .background_maintenance(false)
        .clock(clock.clone());
    if let Some(h) = hasher {
        b = b.key_hasher(h);
    }
    b.open(dir).unwrap()
}

fn run(ops: Vec<Op>, hasher: Option<fn(&[u8]) -> u64>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let mut cache = Some(open(dir.path(), &clock, hasher));
    let mut model = Model { map: HashMap::new() };
    for (version, op) in ops.into_iter().enumerate() {
        let c = cache.as_ref().unwrap();
        let now = clock.now();
        match op {
            Op::Set { key: k, len, ttl_ms } => {
                let v = value(k, version as u32, len);
                let ttl = ttl_ms.map(|ms| Duration::from_millis(ms as u64));
                c.set(&key(k), &v, ttl).unwrap();
                model.map.insert(k, (v, ttl_ms.map(|ms| now + ms as u64)));
            }
            Op::Get { key: k } => {
                let got = c.get(&key(k)).unwrap();
                assert_eq!(got.as_deref(), model.live(k, now).map(|v| &v[..]), "get key {k}");
            }
            Op::Delete { key: k } => {
                let removed = c.delete(&key(k)).unwrap();
                assert_eq!(removed, model.live(k, now).is_some(), "delete key {k}");
                model.map.remove(&k);
            }
            Op::Advance { ms } => clock.advance(Duration::from_millis(ms as u64)),
            Op::Compact => c.compact().unwrap(),
            Op::Maintain => c.run_maintenance().unwrap(),
            Op::Reopen => {
                drop(cache.take());
                cache = Some(open(dir.path(), &clock, hasher));
            }
            Op::CrashReopen => {
                cache.take().unwrap().abandon();
                // After a crash the cache's time resumes at the clock mark it
                // persisted, up to its clock lease ahead of the last time it
                // used (see FORMAT.md, section 6): the model's clock follows.
                let ckpt = std::fs::read(dir.path().join("checkpoint")).unwrap();
                let mark = keg::format::checkpoint::Checkpoint::decode(&ckpt).unwrap().clock_ms;
                clock.set_ms(clock.now().max(mark));
                cache = Some(open(dir.path(), &clock, hasher));
            }
        }
        // After every step the cache agrees with the model on every key.
        let c = cache.as_ref().unwrap();
        let now = clock.now();
        for k in 0..24u8 {
            assert_eq!(c.contains(&key(k)).unwrap(), model.live(k, now).is_some(), "contains key {k}");
        }
        let live = (0..24u8).filter(|&k| model.live(k, now).is_some()).count();
        assert!(live <= c.len() && c.len() <= model.map.len(), "len {} not in {live}..={}", c.len(), model.map.len());
    }
    let c = cache.as_ref().unwrap();
    let now = clock.now();
    for k in 0..24u8 {
        assert_eq!(c.get(&key(k)).unwrap().as_deref(), model.live(k, now).map(|v| &v[..]), "final get key {k}");
    }
}

trait Now {
    fn now(&self) -> u64;
}

impl Now for ManualClock {
    fn now(&self) -> u64 {
        keg::Clock::now_ms(self)
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        // Replays (and records) the cases in model_proptest.proptest-regressions,
        // beside this file. proptest's default looks for the nearest main.rs or
        // lib.rs above the file and would use tests/proptest-regressions/ instead.
        failure_persistence: Some(Box::new(prop::test_runner::FileFailurePersistence::WithSource(
            "proptest-regressions"
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn cache_agrees_with_a_hashmap(ops in prop::collection::vec(op(), 1..120)) {
        run(ops, None);
    }

    #[test]
    fn cache_agrees_with_a_hashmap_when_every_key_hash_collides(ops in prop::collection::vec(op(), 1..80)) {
        // Four hash values for 24 keys: most keys share their hash with others.
        run(ops, Some(|k: &[u8]| (k.len() % 4) as u64 * 0x1234_5678_9abc_def1));
    }
}
