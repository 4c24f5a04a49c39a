//! `ops_model`: a sequence of operations on a cache, checked against a
//! HashMap model with expiry after every step.
//!
//! The first input byte picks the settings: `COLLIDE` opens with a key hasher
//! under which 12 keys share 4 hash values; `SMALL` caps the cache at 8
//! segments of 4 KiB so that writes evict; bits 2-3 pick the durability mode.
//! Then each operation is an opcode byte and its arguments: set (with or
//! without TTL, or with a zero TTL, which deletes), get, delete, clock
//! advance, compact, run_maintenance, clean reopen, crash reopen (`abandon`),
//! clear, sync, flush, and a read-only open beside the writer.
//!
//! The model is exact: every key reads as the model says, `delete` reports
//! whether a live value was there, `len` lies between the number of live
//! entries and the number the model holds. Under `SMALL`, eviction may drop an
//! entry: the model then forgets it, and it must stay gone (an evicted value
//! never comes back). Crash reopens lose nothing in any mode here: flushed and
//! synced writes have reached the OS when acknowledged, and the buffered mode
//! is flushed before the crash.
//!
//! Time: the model reads the cache's own time (`Cache::now_ms`) and checks
//! that it is never behind the clock nor more than the clock lease (20 s)
//! ahead of it. After a crash, and in a read-only open of a live cache, the
//! cache resumes from its persisted clock mark, which may run up to a lease
//! ahead (docs/reliability.md, "Clock jumps"): entries may expire that much early, and the
//! model expires them by the cache's time. A read-only open beside a live
//! writer also starts at the mark (as the next open would), so it may run up
//! to a lease ahead of the writer.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use keg::{Cache, Clock, Durability, Error, ManualClock};

use crate::input::{scratch_dir, Input};

/// How far the cache's time may run ahead of its clock (keg's clock lease).
const CLOCK_LEASE_MS: u64 = 20_000;

/// The cache's time, checked to be within a lease of the clock.
fn cache_time(c: &Cache, clock: &ManualClock) -> u64 {
    let (now, wall) = (c.now_ms(), clock.now_ms());
    assert!(
        wall <= now && now <= wall + CLOCK_LEASE_MS,
        "the cache's time {now} is not within a lease of the clock {wall}"
    );
    now
}

/// Mode bit: the colliding key hasher.
pub const COLLIDE: u8 = 1;
/// Mode bit: a cache small enough to evict.
pub const SMALL: u8 = 2;
/// Mode bits 2-3: 1 synced, 2 buffered, else flushed.
pub const SYNCED: u8 = 1 << 2;
/// See [`SYNCED`].
pub const BUFFERED: u8 = 2 << 2;
/// Number of distinct keys.
pub const KEYS: usize = 12;
const MAX_OPS: usize = 256;
const START_MS: u64 = 1_700_000_000_000;

/// Opcodes (the low four bits of an operation's first byte).
pub mod op {
    /// Set: key, length/4, TTL selector (< 160 none, 255 zero, else 1 + u16 ms).
    pub const SET: u8 = 0;
    /// Get: key.
    pub const GET: u8 = 5;
    /// Delete: key.
    pub const DELETE: u8 = 8;
    /// Advance the clock by u16 ms times (1 + the opcode's high nibble).
    pub const ADVANCE: u8 = 10;
    /// `Cache::compact`.
    pub const COMPACT: u8 = 11;
    /// `Cache::run_maintenance`.
    pub const MAINTAIN: u8 = 12;
    /// Drop and reopen.
    pub const REOPEN: u8 = 13;
    /// `abandon` and reopen.
    pub const CRASH: u8 = 14;
    /// One more byte: 0 clear, 1 sync, 2 flush, 3 read-only open and check.
    pub const OTHER: u8 = 15;
}

/// Key `k`'s bytes.
pub fn key(k: usize) -> Vec<u8> {
    format!("key-{k}-{}", "x".repeat(k % 5)).into_bytes()
}

/// Four hash values for all keys: most keys share their hash with others.
pub fn collide(key: &[u8]) -> u64 {
    (key.len() % 4) as u64 * 0x1234_5678_9abc_def1
}

/// Value bytes that name the key and the write, so a wrong answer is recognisable.
fn value(k: usize, version: usize, len: usize) -> Vec<u8> {
    let mut v = format!("{k}:{version}:").into_bytes();
    v.resize(len + v.len(), (version % 251) as u8);
    v
}

struct Model {
    map: HashMap<usize, (Vec<u8>, Option<u64>)>,
}

impl Model {
    fn live(&self, k: usize, now: u64) -> Option<&[u8]> {
        self.map.get(&k).filter(|(_, exp)| exp.is_none_or(|e| e > now)).map(|(v, _)| &v[..])
    }
}

struct Env<'a> {
    dir: &'a Path,
    clock: ManualClock,
    mode: u8,
}

impl Env<'_> {
    fn durability(&self) -> Durability {
        match self.mode & (3 << 2) {
            SYNCED => Durability::Synced,
            BUFFERED => Durability::Buffered,
            _ => Durability::Flushed,
        }
    }

    fn small(&self) -> bool {
        self.mode & SMALL != 0
    }

    fn builder(&self) -> keg::Builder {
        let b = Cache::builder()
            .max_bytes(if self.small() { 8 * 4096 } else { 64 << 20 })
            .segment_bytes(4096)
            .max_value_len(2048)
            .durability(self.durability())
            .background_maintenance(false)
            .clock(self.clock.clone());
        if self.mode & COLLIDE != 0 {
            b.key_hasher(collide)
        } else {
            b
        }
    }

    fn open(&self, after: &str) -> Cache {
        self.builder().open(self.dir).unwrap_or_else(|e| panic!("open after {after} failed: {e}"))
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let dir = scratch_dir();
    let env = Env { dir: dir.path(), clock: ManualClock::new(START_MS), mode: input.u8() };
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let mut cache = Some(env.open("nothing"));
    let mut model = Model { map: HashMap::new() };
    for version in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let code = input.u8();
        let c = cache.as_ref().expect("open");
        let now = cache_time(c, &env.clock);
        match code & 15 {
            0..=4 => {
                let k = input.below(KEYS);
                let v = value(k, version, input.u8() as usize * 4);
                let ttl_ms = match input.u8() {
                    0..160 => None,
                    255 => Some(0),
                    _ => Some(1 + input.u16() as u64),
                };
                match c.set(&keys[k], &v, ttl_ms.map(Duration::from_millis)) {
                    Ok(()) if ttl_ms == Some(0) => {
                        model.map.remove(&k);
                    }
                    Ok(()) => {
                        model.map.insert(k, (v, ttl_ms.map(|ms| now + ms)));
                    }
                    // Eviction could not make room: the write did not happen.
                    Err(Error::NoSpace { .. }) if env.small() => {}
                    Err(e) => panic!("set of key {k} failed: {e}"),
                }
            }
            5..=7 => {
                let k = input.below(KEYS);
                let got = c.get(&keys[k]).unwrap_or_else(|e| panic!("get of key {k} failed: {e}"));
                assert_eq!(got.as_deref(), model.live(k, now), "get key {k}");
            }
            8 | 9 => {
                let k = input.below(KEYS);
                let removed = c.delete(&keys[k]).unwrap_or_else(|e| panic!("delete of key {k} failed: {e}"));
                let was_live = model.live(k, now).is_some();
                // Under SMALL, the delete's own room-making may evict the key first.
                if removed != was_live && !(env.small() && was_live) {
                    panic!("delete of key {k} returned {removed}, but the model says live = {was_live}");
                }
                model.map.remove(&k);
            }
            10 => env.clock.advance(Duration::from_millis(input.u16() as u64 * (1 + (code >> 4) as u64))),
            11 => c.compact().unwrap_or_else(|e| panic!("compact failed: {e}")),
            12 => c.run_maintenance().unwrap_or_else(|e| panic!("maintenance failed: {e}")),
            13 => {
                drop(cache.take());
                cache = Some(env.open("a clean close"));
            }
            14 => {
                let c = cache.take().expect("open");
                if env.durability() == Durability::Buffered {
                    c.flush().unwrap_or_else(|e| panic!("flush failed: {e}"));
                }
                c.abandon();
                cache = Some(env.open("a crash"));
            }
            _ => match input.u8() % 4 {
                0 => {
                    c.clear().unwrap_or_else(|e| panic!("clear failed: {e}"));
                    model.map.clear();
                }
                1 => c.sync().unwrap_or_else(|e| panic!("sync failed: {e}")),
                2 => c.flush().unwrap_or_else(|e| panic!("flush failed: {e}")),
                _ => {
                    c.flush().unwrap_or_else(|e| panic!("flush failed: {e}"));
                    let ro = env.builder().open_read_only(env.dir).unwrap_or_else(|e| panic!("read-only open: {e}"));
                    let ro_now = cache_time(&ro, &env.clock);
                    for (k, key) in keys.iter().enumerate() {
                        let got = ro.get(key).unwrap_or_else(|e| panic!("read-only get of key {k} failed: {e}"));
                        assert_eq!(got.as_deref(), model.live(k, ro_now), "read-only get key {k}");
                    }
                }
            },
        }
        // After every step the cache agrees with the model on every key.
        let c = cache.as_ref().expect("open");
        let now = cache_time(c, &env.clock);
        for (k, key) in keys.iter().enumerate() {
            let has = c.contains(key).unwrap_or_else(|e| panic!("contains of key {k} failed: {e}"));
            let live = model.live(k, now).is_some();
            if has != live {
                assert!(
                    env.small() && live,
                    "after op {version} ({code}): contains key {k} = {has}, model live = {live}"
                );
                // Evicted: from now on it must stay gone.
                model.map.remove(&k);
            }
        }
        let live = (0..KEYS).filter(|&k| model.live(k, now).is_some()).count();
        assert!(live <= c.len() && c.len() <= model.map.len(), "len {} not in {live}..={}", c.len(), model.map.len());
    }
    let c = cache.as_ref().expect("open");
    let now = cache_time(c, &env.clock);
    for (k, key) in keys.iter().enumerate() {
        let got = c.get(key).unwrap_or_else(|e| panic!("final get of key {k} failed: {e}"));
        assert_eq!(got.as_deref(), model.live(k, now), "final get key {k}");
    }
}
