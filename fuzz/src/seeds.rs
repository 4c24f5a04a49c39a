//! The seed corpora: inputs built from files the engine itself writes, so the
//! fuzzers start from valid segments, hints and checkpoints.
//!
//! `tests/format/fuzz_corpus.rs` checks that `fuzz/corpus/` holds exactly these
//! bytes; after a format change, regenerate them with
//! `KEG_FUZZ_WRITE_SEEDS=1 cargo test --test format fuzz_corpus::seeds`.

use std::collections::BTreeMap;
use std::time::Duration;

use keg::format::checkpoint::Checkpoint;
use keg::format::record::{self, Kind};
use keg::{Cache, ManualClock};

use crate::open_dir::{self, KEYS, NOW_MS};
use crate::ops_model::{self, op};
use crate::{checkpoint_decode, hint_decode, record_decode};

/// One seed: target, file name, bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let basic = engine_dir(Finish::Close, |c, _| {
        c.set(b"a", b"first value of a", None).unwrap();
        c.set(b"b", b"value of b", None).unwrap();
        c.set(b"key-2", b"expires in a minute", Some(Duration::from_secs(60))).unwrap();
        c.delete(b"b").unwrap();
        c.set(b"a", &[b'A'; 300], None).unwrap();
        c.set(b"k4", b"", None).unwrap();
    });
    let crashed = engine_dir(Finish::Crash, |c, clock| {
        c.set(b"a", b"before the crash", None).unwrap();
        c.set(b"key-3-xx", b"short-lived", Some(Duration::from_millis(1500))).unwrap();
        clock.advance(Duration::from_secs(2));
        c.delete(b"a").unwrap();
        c.set(b"\0", b"binary key", None).unwrap();
    });
    let compacted = engine_dir(Finish::Close, |c, _| {
        for round in 0..6u8 {
            for (k, key) in KEYS.iter().enumerate().take(5) {
                c.set(key, &vec![b'a' + round; 120 * (k + 1)], None).unwrap();
            }
        }
        c.delete(b"key-2").unwrap();
        c.compact().unwrap();
        c.set(b"b", b"after compaction", None).unwrap();
        for key in &KEYS[5..] {
            c.set(key, &[b'z'; 1500], None).unwrap();
        }
    });

    // Tags, namespaces and invalidation records (kind 3), some of them
    // copied forward by a compaction.
    let tagged = engine_dir(Finish::Close, |c, _| {
        let opts = keg::SetOptions::new().tags(["author:7", "lang:en"]);
        for (k, key) in KEYS.iter().enumerate().take(4) {
            c.set_with(key, &vec![b't'; 100 * (k + 1)], &opts).unwrap();
        }
        let ns = c.namespace("blog").unwrap();
        ns.set(b"a", b"in a namespace", None).unwrap();
        c.invalidate_tag("author:7").unwrap();
        c.drop_namespace("blog").unwrap();
        ns.set(b"b", b"after the drop", None).unwrap();
        c.set_with(b"a", b"after the invalidation", &opts).unwrap();
        c.compact().unwrap();
    });

    let mut seeds = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| seeds.push((target, name.to_owned(), bytes));

    // The decoder targets take a mode byte first: 0 = the bytes as they are,
    // 1 = with checksums fixed up (see each target).
    let with_mode = |mode: u8, bytes: &[u8]| [&[mode], bytes].concat();
    for (dir_name, dir) in [("basic", &basic), ("compacted", &compacted)] {
        for (name, bytes) in dir {
            if name.ends_with(".seg") {
                add("record_decode", &format!("{dir_name}-{name}"), with_mode(0, bytes));
            } else if name.ends_with(".hint") {
                add("hint_decode", &format!("{dir_name}-{name}"), with_mode(0, bytes));
            }
        }
    }
    let mut one = Vec::new();
    record::encode(&mut one, Kind::Value, 7, NOW_MS + 5000, b"a key", b"a value").unwrap();
    record::encode(&mut one, Kind::Tombstone, 8, 0, b"a key", b"").unwrap();
    add("record_decode", "value-then-tombstone", with_mode(0, &one));
    let mut three = Vec::new();
    let tags = record::encode_tags(&["author:7", "t"]).unwrap();
    record::encode_full(&mut three, Kind::Value, 9, 0, b"\x04blogk", 5, &tags, true, b"tagged").unwrap();
    let key = record::invalidation_key(record::Scope::Tag, b"author:7");
    record::encode_full(&mut three, Kind::Invalidation, 10, 0, &key, 0, &[], false, b"").unwrap();
    add("record_decode", "tagged-then-invalidation", with_mode(0, &three));
    let fixed = record_decode::FIX_CHECKSUMS | record_decode::FROM_ZERO;
    add("record_decode", "value-then-tombstone-fixed", with_mode(fixed, &one));

    add("checkpoint_decode", "basic", with_mode(0, &basic["checkpoint"]));
    add("checkpoint_decode", "crashed", with_mode(0, &crashed["checkpoint"]));
    let voids =
        Checkpoint { durable_seq: 40, clock_ms: NOW_MS, void_ranges: vec![(12, 15), (41, 60)], ..Default::default() };
    add("checkpoint_decode", "void-ranges", with_mode(0, &voids.encode()));
    add("checkpoint_decode", "void-ranges-fixed", with_mode(checkpoint_decode::FIX_CHECKSUMS, &voids.encode()));
    // A version-2 checkpoint (no sequence mark: bytes 72..80 left out).
    let v3 = Checkpoint { seq_mark: 0, ..voids }.encode();
    let mut v2 = [&v3[..8], &2u16.to_le_bytes(), &v3[10..72], &v3[80..v3.len() - 4]].concat();
    let sum = crc32fast::hash(&v2);
    v2.extend_from_slice(&sum.to_le_bytes());
    add("checkpoint_decode", "version-2", with_mode(0, &v2));
    // The hint of the segment compaction wrote (the newest one).
    let (name, hint) = compacted.iter().rfind(|(n, _)| n.ends_with(".hint")).expect("a hint file");
    add("hint_decode", &format!("compacted-{name}-fixed"), with_mode(hint_decode::FIX_CHECKSUMS, hint));

    // open_dir, raw mode: real directories, then a script of operations
    // (opcode, key, and for a set a length byte).
    let script = [2, 0, 3, 2, 0, 1, 9, 4, 1, 2, 1, 5, 0, 2, 0, 7, 3, 2, 5, 8, 6, 0, 0, 0, 20, 2, 6, 3, 4];
    add("open_dir", "raw-basic", raw(&basic, &script));
    add("open_dir", "raw-crashed", raw(&crashed, &script[..12]));
    add("open_dir", "raw-compacted", raw(&compacted, &script));
    add("open_dir", "raw-tagged", raw(&tagged, &script));
    // open_dir, built mode: the generator's choices, from a fixed pseudo-random stream.
    add("open_dir", "built-1", pseudo_random(0, 1, 400));
    add("open_dir", "built-collide", pseudo_random(open_dir::COLLIDE, 2, 400));

    let set = |k: u8, len: u8, ttl: u8| [op::SET, k, len, ttl];
    let mut basic_ops = vec![0];
    basic_ops.extend(set(0, 10, 0));
    basic_ops.extend(set(1, 200, 200));
    basic_ops.extend([16, 0]); // TTL selector 200 is followed by the TTL in ms
    basic_ops.extend([op::GET, 0, op::GET, 1, op::ADVANCE, 0xff, 0xff, op::GET, 1]);
    basic_ops.extend([op::DELETE, 0, op::GET, 0, op::COMPACT, op::REOPEN, op::GET, 1]);
    basic_ops.extend(set(2, 255, 255));
    basic_ops.extend([op::CRASH, op::MAINTAIN, op::OTHER, 3, op::OTHER, 0]);
    add("ops_model", "basic", basic_ops.clone());
    let mut collide = basic_ops.clone();
    collide[0] = ops_model::COLLIDE | ops_model::SYNCED;
    add("ops_model", "collide-synced", collide);
    let mut small = vec![ops_model::SMALL | ops_model::BUFFERED];
    for i in 0..40u8 {
        small.extend(set(i % ops_model::KEYS as u8, 250, 0));
        if i % 7 == 3 {
            small.extend([op::GET, i % 5, op::MAINTAIN]);
        }
    }
    small.extend([op::CRASH, op::COMPACT, op::REOPEN]);
    add("ops_model", "small-buffered", small);
    // The item operations (mode bit ATOMIC): flags, add/replace, append,
    // counters, compare-and-swap, touch, batches, get_or_set_with, with
    // maintenance and reopens between them.
    let mut atomic = vec![ops_model::ATOMIC];
    atomic.extend([op::SET_WITH, 0, 5, 7, 0]); // key 0 = "5", flags 7
    atomic.extend([op::INCR, 0, 3, op::DECR, 0, 200, op::GET_ENTRY, 0]);
    atomic.extend([op::ADD, 1, 100, 0, 0, op::ADD, 1, 101, 0, 0, op::REPLACE, 2, 100, 0, 0]);
    atomic.extend([op::APPEND, 1, 4, op::PREPEND, 1, 4, op::INCR, 1, 1, op::GET_ENTRY, 1]);
    atomic.extend([op::CAS, 1, 0, 110, 3, 0, op::CAS, 1, 2, 111, 0, 0, op::CAS, 1, 3, 112, 0, 0]);
    atomic.extend([op::CAS, 3, 0, 113, 0, 0, op::COMPACT, op::CAS, 1, 0, 114, 0, 0]);
    atomic.extend([op::TOUCH, 1, 200, 16, 0, op::GET_AND_TOUCH, 0, 0, op::REOPEN, op::GET_ENTRY, 1]);
    atomic.extend([op::SET_MANY, 2, 4, 5, 6, 10, 9, 0, op::GET_MANY, 3, 4, 5, 6, 7]);
    atomic.extend([op::DELETE_MANY, 1, 4, 4, op::CRASH, op::GET_ENTRY, 5]);
    atomic.extend([op::GET_OR_SET, 8, 1, 120, 0, 0, op::GET_OR_SET, 8, 0, 33, 1, 0, op::GET_OR_SET, 8, 0, 34, 0, 0]);
    atomic.extend([op::GET_AND_TOUCH, 8, 255, op::ADVANCE, 0xff, 0xff, op::MAINTAIN, op::GET_ENTRY_2, 0]);
    add("ops_model", "atomic", atomic.clone());
    atomic[0] = ops_model::ATOMIC | ops_model::SMALL | ops_model::COLLIDE | ops_model::SYNCED;
    add("ops_model", "atomic-small-collide-synced", atomic);
    // Tags and namespaces (mode bit TAGS): tagged sets of plain and
    // namespaced keys, invalidations and drops, with compaction, maintenance,
    // clean and crash reopens between them.
    let mut tags = vec![ops_model::ATOMIC | ops_model::TAGS];
    tags.extend([op::PUT, 0, 100, 0, 1, 0, op::PUT, 12, 101, 0, 3, 0, op::PUT, 16, 102, 0, 2, 0]); // plain 0, ns-0 0, ns-1 0
    tags.extend([op::PUT, 13, 5, 7, 0, 0, op::PUT_MANY, 2, 1, 2, 10, 0, 0, 4, op::READ, 12, op::READ_2, 0]);
    tags.extend([op::INVALIDATE_TAG, 0, op::READ, 0, op::APPEND, 1, 4, op::CRASH, op::READ, 1]);
    tags.extend([op::INVALIDATE_TAG, 2, op::PUT_2, 1, 103, 0, 4, 0, op::COMPACT, op::REOPEN, op::READ, 1]);
    tags.extend([op::DROP_NAMESPACE, 0, op::PUT, 14, 104, 0, 0, 0, op::MAINTAIN, op::CRASH, op::READ, 13]);
    tags.extend([op::REMOVE, 16, op::PUT, 17, 105, 0, 1, 0, op::DROP_NAMESPACE, 1, op::INCR, 0, 1]);
    tags.extend([op::OTHER, 3, op::OTHER, 0, op::PUT, 12, 106, 0, 1, 0, op::INVALIDATE_TAG, 0, op::CRASH]);
    add("ops_model", "tags", tags.clone());
    tags[0] = ops_model::ATOMIC | ops_model::TAGS | ops_model::SMALL | ops_model::COLLIDE | ops_model::SYNCED;
    add("ops_model", "tags-small-collide-synced", tags);
    // Crashes inside operations (mode bit CUTS): a power cut or a kill at the
    // n-th storage operation of a set, a delete, a batch, a clear, a
    // compaction, maintenance, a flush, a sync and a close, some with a
    // second cut inside the reopen (`OTHER`, 4-7, then the action, its
    // arguments, the operation, [the reopen's operation], the seed).
    let crash_in = |kind: u8, action: &[u8], after: u8, seed: u8| {
        let mut step = vec![op::OTHER, kind];
        step.extend_from_slice(action);
        step.push(after);
        if kind >= 6 {
            step.push(after / 2);
        }
        step.push(seed);
        step
    };
    let mut cuts = vec![ops_model::CUTS | ops_model::SMALL | ops_model::BUFFERED];
    for round in 0..4u8 {
        for i in 0..10u8 {
            cuts.extend(set((i + round) % ops_model::KEYS as u8, 200, 0));
        }
        cuts.extend(crash_in(4 + round, &[4], 3 + 7 * round, round)); // compact
        cuts.extend(crash_in(4 + (round + 1) % 4, &[5], 5 + 9 * round, round)); // maintain
        cuts.extend(crash_in(4 + (round + 2) % 4, &[0, round, 100], 1, round)); // set
        cuts.extend(crash_in(4 + (round + 3) % 4, &[2, 3, 1, 2, 3, 50], 2 + round, round)); // set_many
        cuts.extend([op::GET, round, op::DELETE, round + 1]);
    }
    cuts.extend(crash_in(5, &[1, 2], 0, 9)); // delete
    cuts.extend(crash_in(4, &[6], 1, 10)); // flush
    cuts.extend(crash_in(6, &[7], 1, 11)); // sync
    cuts.extend(crash_in(7, &[8], 4, 12)); // close
    cuts.extend(crash_in(4, &[3], 2, 13)); // clear
    add("ops_model", "cuts-small-buffered", cuts.clone());
    cuts[0] = ops_model::CUTS | ops_model::SMALL | ops_model::COLLIDE;
    add("ops_model", "cuts-small-collide-flushed", cuts.clone());
    cuts[0] = ops_model::CUTS | ops_model::SYNCED;
    add("ops_model", "cuts-synced", cuts);
    seeds
}

enum Finish {
    Close,
    Crash,
}

/// The files a cache leaves after `script` (LOCK and the KEG marker aside:
/// `open_dir` writes the marker into every image), by name.
fn engine_dir(finish: Finish, script: impl FnOnce(&Cache, &ManualClock)) -> BTreeMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(NOW_MS);
    let cache = Cache::builder()
        .max_bytes(64 << 20)
        .segment_bytes(4096)
        .max_value_len(2048)
        .background_maintenance(false)
        .clock(clock.clone())
        .open(dir.path())
        .expect("open");
    script(&cache, &clock);
    match finish {
        Finish::Close => cache.close().expect("close"),
        Finish::Crash => cache.abandon(),
    }
    std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("list"))
        .filter(|e| e.file_name() != "LOCK" && e.file_name() != keg::format::marker::FILE_NAME)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).expect("read")))
        .collect()
}

/// An open_dir raw-mode input listing `dir`'s files, then `ops`.
fn raw(dir: &BTreeMap<String, Vec<u8>>, ops: &[u8]) -> Vec<u8> {
    let files: Vec<(u8, u8, &[u8])> = dir
        .iter()
        .map(|(name, bytes)| {
            let id = || u8::from_str_radix(&name[6..8], 16).expect("a small segment id");
            let (kind, id) = match name.rsplit_once('.').map(|(_, ext)| ext) {
                Some("seg") => (0, id()),
                Some("hint") => (1, id()),
                _ => (2, 0),
            };
            (kind, id, &bytes[..])
        })
        .collect();
    open_dir::encode_raw(0, &files, ops)
}

/// `len` bytes from a fixed xorshift stream, after a mode byte.
fn pseudo_random(mode: u8, seed: u64, len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1d ^ seed;
    let mut out = vec![mode & !open_dir::RAW];
    out.extend((0..len).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    }));
    out
}
