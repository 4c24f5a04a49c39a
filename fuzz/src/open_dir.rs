//! `open_dir`: open a cache directory whose files hold bytes derived from the
//! input, then use it.
//!
//! The first input byte picks the mode:
//! - raw (`mode & RAW`): the input lists files verbatim (kind, id, length,
//!   bytes); the seed corpus holds real engine-written directories in this form,
//!   so the fuzzer mutates real segments, hints and checkpoints;
//! - built: the input drives a generator of mostly-valid files: segments of
//!   records with chosen keys, sequence numbers (in order, with gaps, repeated,
//!   out of order, huge), expiries and odd kinds, torn tails and garbage; hint
//!   files exact, tweaked (with their checksums fixed so the tweak is seen) or
//!   raw; a checkpoint with chosen durable mark, clock and void ranges; stray
//!   files; then byte flips, truncations and overwrites, optionally followed by
//!   re-computing the header checksums so that damage reaches past them.
//!
//! `mode & COLLIDE` opens with a key hasher under which the table keys collide.
//! The rest of the input is a list of operations.
//!
//! Checks:
//! - nothing panics; open fails only with an `Error`;
//! - a read-only open changes no byte in the directory, rejects writes, and
//!   sees what the read-write open then sees;
//! - a key not written in this run reads as a miss or as a value that some
//!   checksum-valid record for that key in the input files holds;
//! - a key written in this run reads exactly as last written; a key deleted in
//!   this run stays deleted (no resurrection), through compaction,
//!   maintenance, clean reopens and crash reopens;
//! - after opening once, a clean close and a crash both reopen without error;
//! - `keg::inspect` reads the files (`list` on real files, the records of
//!   each segment in memory), and `inspect::check_hint` never accepts a hint
//!   that contradicts an intact record.
//!
//! The directory lives in the simulator's memory ([`Backend::Memory`]);
//! `tests/format/fuzz_corpus.rs` also replays every stored input on real
//! files ([`run_on`] with [`Backend::Files`]).

use std::collections::BTreeMap;
use std::path::Path;

use keg::format::checkpoint::Checkpoint;
use keg::format::hint::{self, HintEntry, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::{Builder, Cache, Error, ManualClock};

use crate::input::{Backend, Disk, Input};

/// The manual clock's time for every run.
pub const NOW_MS: u64 = 1_700_000_000_000;
/// Mode bit: the input lists raw files.
pub const RAW: u8 = 1;
/// Mode bit: use the colliding key hasher.
pub const COLLIDE: u8 = 2;
/// Raw-mode file kind that ends the file list.
pub const END_OF_FILES: u8 = 5;
/// The keys operations use; under [`collide`] several share a hash.
pub const KEYS: [&[u8]; 8] =
    [b"a", b"b", b"key-2", b"key-3-xx", b"k4", b"a-rather-longer-key-number-5", b"\0", b"\xff\xfe\xfd"];
const MAX_OPS: usize = 48;

/// A key hasher under which keys of equal length modulo 3 collide.
pub fn collide(key: &[u8]) -> u64 {
    (key.len() as u64 % 3).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn key_hash(custom: bool, key: &[u8]) -> u64 {
    if custom {
        collide(key)
    } else {
        xxhash_rust::xxh3::xxh3_64(key)
    }
}

/// One entry of a directory image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file with these bytes.
    File(Vec<u8>),
    /// An (empty) directory where a file is expected.
    Dir,
}

/// Encodes a raw-mode input: `files` as (kind, id, bytes), then `ops`.
/// Kinds: 0 segment, 1 hint, 2 checkpoint, 3 checkpoint.tmp, 4 a stranger.
pub fn encode_raw(mode: u8, files: &[(u8, u8, &[u8])], ops: &[u8]) -> Vec<u8> {
    let mut out = vec![mode | RAW];
    for &(kind, id, bytes) in files {
        let len = u16::try_from(bytes.len()).expect("raw seed files are under 64 KiB");
        out.extend_from_slice(&[kind, id]);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out.push(END_OF_FILES);
    out.extend_from_slice(ops);
    out
}

/// Runs one input, in memory.
pub fn run(data: &[u8]) {
    run_on(data, Backend::Memory);
}

/// Runs one input on `backend`.
pub fn run_on(data: &[u8], backend: Backend) {
    let mut input = Input::new(data);
    let mode = input.u8();
    let custom = mode & COLLIDE != 0;
    let image = if mode & RAW != 0 { raw_image(&mut input) } else { built_image(&mut input, custom) };
    if crate::input::tracing() {
        describe(&image, custom);
    }
    let disk = Disk::new(backend);
    let mut world = World {
        disk: &disk,
        custom,
        clock: ManualClock::new(NOW_MS),
        segments: image
            .iter()
            .filter(|(name, _)| name.ends_with(".seg"))
            .filter_map(|(_, node)| match node {
                Node::File(b) => Some(b.clone()),
                Node::Dir => None,
            })
            .collect(),
        held: vec![std::cell::OnceCell::new(); KEYS.len()],
        expect: vec![Expect::Input; KEYS.len()],
    };
    write_image(&disk, &image);
    // The tools read whatever is there without panicking, and never vouch for a lying hint.
    match backend {
        Backend::Files => drop(keg::inspect::list(disk.dir())),
        Backend::Memory => {
            for (name, node) in &image {
                if let (true, Node::File(bytes)) = (name.ends_with(".seg"), node) {
                    let seg = keg::inspect::SegmentData::from_bytes(disk.dir().join(name), bytes.clone());
                    let _ = seg.header();
                    seg.records().for_each(drop);
                }
            }
        }
    }
    check_hints_with_inspect(&image);
    world.exercise(&mut input);
}

/// What a key may read as.
#[derive(Debug, Clone)]
enum Expect {
    /// Not written in this run: a miss, or a value an input record holds for it.
    Input,
    /// Written in this run: exactly this (`None` after a delete or a clear).
    Exactly(Option<Vec<u8>>),
}

struct World<'a> {
    disk: &'a Disk,
    custom: bool,
    clock: ManualClock,
    /// The segment files as the input made them, for the oracle.
    segments: Vec<Vec<u8>>,
    /// Per key, the values [`held_by_records`] finds in `segments` (looked
    /// for the first time a key needs them: the files do not change).
    held: Vec<std::cell::OnceCell<Vec<Vec<u8>>>>,
    expect: Vec<Expect>,
}

impl World<'_> {
    fn builder(&self) -> Builder {
        let b = Cache::builder()
            .max_bytes(64 << 20)
            .segment_bytes(4096)
            .max_value_len(2048)
            .background_maintenance(false)
            .clock(self.clock.clone())
            .storage(self.disk.fs().clone());
        if self.custom {
            b.key_hasher(collide)
        } else {
            b
        }
    }

    fn exercise(&mut self, input: &mut Input<'_>) {
        let dir = self.disk.dir();
        keep_copy(self.disk, "image");
        let before = self.disk.files();
        let ro_view = match self.builder().open_read_only(dir) {
            Ok(ro) => {
                let view: Vec<_> = (0..KEYS.len()).map(|k| self.check_key(&ro, k, "read-only open")).collect();
                assert!(matches!(ro.set(b"a", b"v", None), Err(Error::ReadOnly { .. })));
                assert!(matches!(ro.compact(), Err(Error::ReadOnly { .. })));
                drop(ro);
                Some(view)
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                None
            }
        };
        assert!(self.disk.files() == before, "a read-only open changed the directory");
        let cache = match self.builder().open(dir) {
            Ok(c) => c,
            Err(e) => {
                assert!(!e.to_string().is_empty());
                return;
            }
        };
        for k in 0..KEYS.len() {
            let got = self.check_key(&cache, k, "open");
            if let Some(view) = &ro_view {
                assert_eq!(got, view[k], "read-only and read-write opens disagree on key {k}");
            }
        }
        let mut cache = Some(cache);
        for i in 0..MAX_OPS {
            if input.is_empty() {
                break;
            }
            let op = input.u8();
            let k = input.below(KEYS.len());
            crate::trace!(
                "op {i}: {} key {k}",
                ["set", "set", "get", "get", "delete", "compact", "maintain", "close+open", "crash+open", "clear"]
                    [op as usize % 10]
            );
            let c = cache.as_ref().expect("open");
            match op % 10 {
                0 | 1 => {
                    let v = written_value(i, k, input.u8());
                    match c.set(KEYS[k], &v, None) {
                        Ok(()) => self.expect[k] = Expect::Exactly(Some(v)),
                        // An image whose records claim numbers near the limit:
                        // the write did not happen, and says so.
                        Err(Error::SequenceExhausted { .. }) => {}
                        Err(e) => panic!("set of key {k} failed: {e}"),
                    }
                }
                2 | 3 => {
                    self.check_key(c, k, "get");
                }
                4 => {
                    let removed = match c.delete(KEYS[k]) {
                        Ok(removed) => removed,
                        Err(Error::SequenceExhausted { .. }) => continue,
                        Err(e) => panic!("delete of key {k} failed: {e}"),
                    };
                    match &self.expect[k] {
                        Expect::Exactly(Some(_)) => assert!(removed, "delete of key {k} found nothing to remove"),
                        Expect::Exactly(None) => assert!(!removed, "delete of deleted key {k} removed something"),
                        Expect::Input => {}
                    }
                    self.expect[k] = Expect::Exactly(None);
                }
                5 => exhausted_is_fine(c.compact(), "compact"),
                6 => exhausted_is_fine(c.run_maintenance(), "maintenance"),
                7 => {
                    cache.take().expect("open").close().unwrap_or_else(|e| panic!("close failed: {e}"));
                    cache = Some(self.reopen("a clean close"));
                }
                8 => {
                    cache.take().expect("open").abandon();
                    cache = Some(self.reopen("a crash"));
                }
                _ => {
                    c.clear().unwrap_or_else(|e| panic!("clear failed: {e}"));
                    self.expect.fill(Expect::Exactly(None));
                }
            }
        }
        cache.take().expect("open").close().unwrap_or_else(|e| panic!("final close failed: {e}"));
        let ro = self.builder().open_read_only(dir).unwrap_or_else(|e| panic!("read-only reopen failed: {e}"));
        for k in 0..KEYS.len() {
            self.check_key(&ro, k, "final read-only open");
        }
    }

    fn reopen(&self, after: &str) -> Cache {
        keep_copy(self.disk, after);
        let c = self.builder().open(self.disk.dir()).unwrap_or_else(|e| panic!("reopen after {after} failed: {e}"));
        for k in 0..KEYS.len() {
            self.check_key(&c, k, after);
        }
        c
    }

    fn check_key(&self, cache: &Cache, k: usize, when: &str) -> Option<Vec<u8>> {
        let key = KEYS[k];
        let got = cache.get(key).unwrap_or_else(|e| panic!("{when}: get of key {k} failed: {e}")).map(|v| v.to_vec());
        let has = cache.contains(key).unwrap_or_else(|e| panic!("{when}: contains of key {k} failed: {e}"));
        crate::trace!(
            "  {when}: key {k} reads {:?} (contains {has})",
            got.as_ref().map(|v| String::from_utf8_lossy(v))
        );
        match &self.expect[k] {
            Expect::Exactly(want) => {
                assert_eq!(got.as_deref(), want.as_deref(), "{when}: key {k} does not read as written in this run");
                assert_eq!(has, want.is_some(), "{when}: contains({k}) disagrees with what was written");
            }
            Expect::Input => {
                if let Some(v) = &got {
                    let held = self.held[k].get_or_init(|| held_by_records(&self.segments, key));
                    assert!(
                        held.contains(v),
                        "{when}: key {k} read as {v:?}, which no record in the input holds for it"
                    );
                    assert!(has, "{when}: contains({k}) is false for a key that reads as a value");
                }
            }
        }
        got
    }
}

/// A value unique to write `i`, so that a wrong answer is recognisable.
fn written_value(i: usize, k: usize, len: u8) -> Vec<u8> {
    let mut v = format!("written:{i}:{k}:").into_bytes();
    v.resize(v.len() + len as usize * 4, b'0' + (i % 10) as u8);
    v
}

/// The values of every checksum-valid value record for `key` at any offset
/// of any input segment.
fn held_by_records(segments: &[Vec<u8>], key: &[u8]) -> Vec<Vec<u8>> {
    let mut held = Vec::new();
    for seg in segments {
        for off in 0..seg.len() {
            let at = off + record::HEADER_LEN;
            // (The first byte before the slice: most offsets fail there.)
            if seg.get(at) != key.first() || seg.get(at..at + key.len()) != Some(key) {
                continue;
            }
            match record::decode(&seg[off..]) {
                Ok(r) if r.kind == Kind::Value && r.key == key => held.push(r.value.to_vec()),
                _ => {}
            }
        }
    }
    held
}

/// `keg::inspect::check_hint` (what `keg verify` runs) must never accept a
/// hint that contradicts an intact record of its segment.
fn check_hints_with_inspect(image: &BTreeMap<String, Node>) {
    for (name, node) in image {
        let (Some(stem), Node::File(hint_bytes)) = (name.strip_suffix(".hint"), node) else { continue };
        let Some(Node::File(seg)) = image.get(&format!("{stem}.seg")) else { continue };
        let Ok(id) = u32::from_str_radix(stem, 16) else { continue };
        // check_hint verifies key hashes only for xxh3 hints.
        if keg::inspect::check_hint(hint_bytes, id, seg).is_ok_and(|h| h.hasher == 1) {
            assert!(
                hint_agrees(hint_bytes, seg),
                "inspect::check_hint accepts a hint that contradicts an intact record"
            );
        }
    }
}

/// Whether the hint agrees with every intact record at an offset it lists:
/// same sequence number, length, kind and (xxh3) key hash.
fn hint_agrees(hint_bytes: &[u8], seg: &[u8]) -> bool {
    let Ok((_, entries)) = hint::decode(hint_bytes) else { return true };
    let mut off = keg::format::segment::HEADER_LEN;
    entries.into_iter().all(|e| {
        let at = off;
        off += e.len as usize;
        match seg.get(at..).map(record::decode) {
            Some(Ok(r)) => {
                r.header.seq == e.seq
                    && r.len() == e.len as u64
                    && (r.kind == Kind::Tombstone) == e.tombstone
                    && key_hash(false, r.key) == e.key_hash
            }
            Some(Err(keg::format::DecodeError::Invalid(_))) => false,
            _ => true,
        }
    })
}

fn write_image(disk: &Disk, image: &BTreeMap<String, Node>) {
    // Every image is a directory keg created, so it holds the marker: keg
    // refuses a directory without one that holds files it does not write,
    // and the fuzzer's stray and damaged files would make most images that.
    disk.put_file(keg::format::marker::FILE_NAME, &keg::format::marker::encode());
    for (name, node) in image {
        match node {
            Node::File(bytes) => disk.put_file(name, bytes),
            Node::Dir => disk.put_dir(name),
        }
    }
}

/// With `KEG_FUZZ_KEEP=<dir>` (to read a failing input), copies the cache
/// directory to `<dir>/<n> <label>` (real files, also from memory) as the
/// input left it, then before each reopen; `keg dump` and `keg verify` can
/// read the copies.
fn keep_copy(disk: &Disk, label: &str) {
    let Some(to) = std::env::var_os("KEG_FUZZ_KEEP") else { return };
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let to = Path::new(&to).join(format!("{n:02} {label}"));
    std::fs::create_dir_all(&to).expect("create a copy directory");
    for (name, bytes) in disk.files() {
        if let Some(bytes) = bytes {
            std::fs::write(to.join(name), bytes).expect("write a copy");
        }
    }
}

fn seg_name(id: u32) -> String {
    format!("{id:08x}.seg")
}

fn hint_name(id: u32) -> String {
    format!("{id:08x}.hint")
}

fn raw_image(input: &mut Input<'_>) -> BTreeMap<String, Node> {
    let mut image = BTreeMap::new();
    for _ in 0..8 {
        let kind = input.u8() % 6;
        if kind == END_OF_FILES || input.is_empty() {
            break;
        }
        let id = input.u8() as u32;
        let bytes = input.chunk(true).to_vec();
        let name = match kind {
            0 => seg_name(id),
            1 => hint_name(id),
            2 => "checkpoint".to_owned(),
            3 => "checkpoint.tmp".to_owned(),
            _ => format!("stranger-{id}"),
        };
        image.insert(name, Node::File(bytes));
    }
    image
}

/// Expiry in whole seconds as hint files hold it (as the engine rounds it).
fn expires_s(expires_ms: u64) -> u32 {
    if expires_ms == 0 {
        0
    } else {
        expires_ms.div_ceil(1000).min(u32::MAX as u64 - 1).max(1) as u32
    }
}

fn built_image(input: &mut Input<'_>, custom: bool) -> BTreeMap<String, Node> {
    let mut image = BTreeMap::new();
    let mut seq = 0u64;
    let segments = 1 + input.below(4);
    for s in 0..segments {
        let id = 1 + input.below(8) as u32;
        let (bytes, entries, data_len) = built_segment(input, custom, id, s, &mut seq);
        if let Some(h) = built_hint(input, custom, id, entries, data_len) {
            image.insert(hint_name(id), Node::File(h));
        }
        image.insert(seg_name(id), Node::File(bytes));
    }
    if let Some(c) = built_checkpoint(input, seq) {
        image.insert("checkpoint".to_owned(), Node::File(c));
    }
    let extras = input.u8();
    if extras & 1 != 0 {
        image.insert(hint_name(0xf0), Node::File(input.chunk(false).to_vec()));
    }
    if extras & 2 != 0 {
        image.insert("checkpoint.tmp".to_owned(), Node::File(input.chunk(false).to_vec()));
    }
    if extras & 0x0c == 0x0c {
        image.insert(seg_name(0xf1), Node::Dir);
    } else if extras & 4 != 0 {
        image.insert(seg_name(0xf2), Node::File(Vec::new()));
    }
    if extras & 0x10 != 0 {
        image.insert("LOCK".to_owned(), Node::File(input.chunk(false).to_vec()));
    }
    if extras & 0x20 != 0 {
        let header = SegmentHeader { log: LogKind::Main, id: 0xf3, created_ms: NOW_MS };
        image.insert(seg_name(0xf3), Node::File(header.encode().to_vec()));
    }
    mutate(input, &mut image);
    image
}

/// A segment of generated records; returns its bytes, the hint entries for
/// its records, and the length they cover.
fn built_segment(
    input: &mut Input<'_>,
    custom: bool,
    id: u32,
    s: usize,
    seq: &mut u64,
) -> (Vec<u8>, Vec<HintEntry>, u64) {
    let sel = input.u8();
    let log = if sel & 1 != 0 { LogKind::Main } else { LogKind::Probation };
    let created_ms = match (sel >> 1) & 3 {
        0 | 1 => NOW_MS - input.u16() as u64 * 1000,
        2 => NOW_MS + input.u32() as u64,
        _ => input.u64(),
    };
    let header_id = if sel & 0x80 != 0 { input.u8() as u32 } else { id };
    let mut bytes = SegmentHeader { log, id: header_id, created_ms }.encode().to_vec();
    if sel & 0x70 == 0x70 {
        bytes[8] = 3; // a future segment format version
        fix_crc(&mut bytes, 0..24, 24);
    }
    let mut entries = Vec::new();
    for r in 0..input.below(12) {
        let (rec, entry) = built_record(input, custom, s, r, seq);
        bytes.extend_from_slice(&rec);
        entries.push(entry);
    }
    let data_len = bytes.len() as u64;
    match input.u8() % 6 {
        3 => {
            let (rec, _) = built_record(input, custom, s, 99, seq);
            let cut = input.u16() as usize % rec.len();
            bytes.extend_from_slice(&rec[..cut]);
        }
        4 => bytes.extend_from_slice(input.chunk(false)),
        5 => bytes.resize(bytes.len() + input.u8() as usize, 0),
        _ => {}
    }
    (bytes, entries, data_len)
}

fn built_record(input: &mut Input<'_>, custom: bool, s: usize, r: usize, seq: &mut u64) -> (Vec<u8>, HintEntry) {
    let c = input.u8();
    let key_sel = input.u8();
    let key = if key_sel < 224 {
        KEYS[key_sel as usize % KEYS.len()]
    } else {
        let n = 1 + input.below(16);
        let raw = input.take(n);
        if raw.is_empty() {
            b"?"
        } else {
            raw
        }
    };
    let kind = if c & 3 == 2 { Kind::Tombstone } else { Kind::Value };
    let value = match kind {
        Kind::Tombstone | Kind::Invalidation => Vec::new(),
        Kind::Value => {
            let len = input.u8() as usize * (1 + ((c >> 2) & 3) as usize * 5);
            let mut v = format!("input:{s}:{r}:").into_bytes();
            v.resize(len.max(v.len()), b'a' + (r % 26) as u8);
            v
        }
    };
    let this_seq = match (c >> 4) & 7 {
        0..=3 => {
            *seq += 1;
            *seq
        }
        4 => {
            *seq += 2 + input.u8() as u64;
            *seq
        }
        5 => (*seq).max(1),
        6 => seq.saturating_sub(input.u8() as u64).max(1),
        _ => input.u64(),
    };
    let expires_ms = match input.u8() % 8 {
        5 => NOW_MS - input.u16() as u64 * 10,
        6 => NOW_MS + input.u32() as u64,
        7 => input.u64(),
        _ => 0,
    };
    let mut rec = Vec::new();
    record::encode(&mut rec, kind, this_seq, expires_ms, key, &value).unwrap();
    if c & 3 == 3 {
        // An intact record this version does not write.
        match input.u8() % 4 {
            0 => rec[6] = 3 + input.u8() % 200,
            1 => rec[7] = 1 | input.u8(),
            2 => rec[6] = 2,
            _ => {
                // key_len 0: the key's bytes become the start of the value.
                let value_len = u32::from_le_bytes(rec[8..12].try_into().unwrap()) + key.len() as u32;
                rec[4..6].copy_from_slice(&[0, 0]);
                rec[8..12].copy_from_slice(&value_len.to_le_bytes());
            }
        }
        let end = rec.len();
        fix_crc(&mut rec, 4..end, 0);
    }
    let entry = HintEntry {
        key_hash: key_hash(custom, key),
        seq: this_seq,
        expires_s: expires_s(expires_ms),
        len: rec.len() as u32,
        tombstone: kind == Kind::Tombstone,
        dead: false,
    };
    (rec, entry)
}

fn built_hint(
    input: &mut Input<'_>,
    custom: bool,
    id: u32,
    mut entries: Vec<HintEntry>,
    mut data_len: u64,
) -> Option<Vec<u8>> {
    let sel = input.u8() % 6;
    if sel < 2 {
        return None;
    }
    if sel == 5 {
        return Some(input.chunk(true).to_vec());
    }
    let mut header = HintHeader {
        hasher: if custom { 255 } else { 1 },
        segment_id: id,
        data_len,
        count: entries.len() as u32,
        durable_seq: 0,
    };
    if sel == 4 {
        for _ in 0..1 + input.below(4) {
            let what = input.u8();
            let n = entries.len();
            let i = if n == 0 { 0 } else { input.below(n.min(256)) };
            match (what % 8, entries.get_mut(i)) {
                (0, Some(e)) => e.seq = if what & 0x80 != 0 { input.u64() } else { e.seq ^ input.u8() as u64 },
                (1, Some(e)) => e.key_hash = key_hash(custom, KEYS[input.below(KEYS.len())]),
                (2, Some(e)) => {
                    let delta = input.u8() as u32;
                    let old = e.len;
                    e.len = if what & 0x80 != 0 { old.saturating_add(delta) } else { old.saturating_sub(delta) };
                    data_len = (data_len + e.len as u64).saturating_sub(old as u64);
                }
                (3, Some(e)) if !e.tombstone => e.dead = !e.dead,
                (4, Some(e)) => e.expires_s = input.u32(),
                (5, _) => header.durable_seq = input.u64(),
                (6, _) => header.hasher ^= 1 + input.u8() % 2,
                (7, Some(_)) => {
                    let e = entries.remove(i);
                    data_len -= e.len as u64;
                }
                _ => {}
            }
        }
        header.data_len = data_len;
        header.count = entries.len() as u32;
    }
    Some(hint::encode(&header, &entries))
}

fn built_checkpoint(input: &mut Input<'_>, max_seq: u64) -> Option<Vec<u8>> {
    let sel = input.u8() % 6;
    if sel < 2 {
        return None;
    }
    if sel == 4 {
        return Some(input.chunk(false).to_vec());
    }
    let near = |input: &mut Input<'_>| match input.u8() % 4 {
        0 => 0,
        1 => max_seq,
        2 => max_seq.saturating_sub(input.u8() as u64),
        _ => input.u64(),
    };
    let durable_seq = near(input);
    let clock_ms = match input.u8() % 3 {
        0 => NOW_MS - input.u16() as u64,
        1 => NOW_MS + input.u32() as u64,
        _ => input.u64(),
    };
    let void_ranges = (0..input.below(4))
        .map(|_| {
            let first = near(input);
            (first, first.saturating_add(input.u8() as u64))
        })
        .collect();
    let mut bytes = Checkpoint { durable_seq, clock_ms, void_ranges, ..Default::default() }.encode();
    if sel == 5 && input.u8() & 3 == 0 {
        bytes[8] = 3; // a future format version
        let end = bytes.len() - 4;
        fix_crc(&mut bytes, 0..end, end);
    }
    Some(bytes)
}

/// Flips, truncates and overwrites bytes, then maybe re-computes header checksums.
fn mutate(input: &mut Input<'_>, image: &mut BTreeMap<String, Node>) {
    let names: Vec<String> = image.keys().cloned().collect();
    if names.is_empty() {
        return;
    }
    for _ in 0..input.below(4) {
        let name = &names[input.below(names.len().min(256))];
        let Some(Node::File(bytes)) = image.get_mut(name) else { continue };
        let op = input.u8();
        let at = input.u16() as usize;
        match op % 3 {
            0 if !bytes.is_empty() => {
                let i = at % bytes.len();
                bytes[i] ^= input.u8() | 1;
            }
            1 => bytes.truncate(at % (bytes.len() + 1)),
            2 if !bytes.is_empty() => {
                let i = at % bytes.len();
                let n = 1 + input.below(8);
                let patch = input.take(n);
                let n = patch.len().min(bytes.len() - i);
                bytes[i..i + n].copy_from_slice(&patch[..n]);
            }
            _ => {}
        }
    }
    if input.u8() & 1 == 0 {
        return;
    }
    for (name, node) in image.iter_mut() {
        let Node::File(b) = node else { continue };
        if name.ends_with(".seg") && b.len() >= 28 {
            fix_crc(b, 0..24, 24);
        } else if name.ends_with(".hint") && b.len() >= hint::HEADER_LEN {
            let body = crc32fast::hash(&b[hint::HEADER_LEN..]);
            b[28..32].copy_from_slice(&body.to_le_bytes());
            fix_crc(b, 0..44, 44);
        } else if name == "checkpoint" && b.len() >= 36 {
            let end = b.len() - 4;
            fix_crc(b, 0..end, end);
        }
    }
}

fn fix_crc(bytes: &mut [u8], over: std::ops::Range<usize>, at: usize) {
    let sum = crc32fast::hash(&bytes[over]);
    bytes[at..at + 4].copy_from_slice(&sum.to_le_bytes());
}

/// Prints the files of an image (for `KEG_FUZZ_TRACE`).
fn describe(image: &BTreeMap<String, Node>, custom: bool) {
    eprintln!("image (collide: {custom}):");
    for (name, node) in image {
        let Node::File(b) = node else {
            eprintln!("  {name}: a directory");
            continue;
        };
        eprintln!("  {name}: {} bytes", b.len());
        if name.ends_with(".seg") {
            eprintln!("    header: {:?}", SegmentHeader::decode(b));
            let mut off = 32;
            while let Some(rest) = b.get(off..).filter(|r| !r.is_empty()) {
                match record::decode(rest) {
                    Ok(r) => {
                        let key = KEYS.iter().position(|k| *k == r.key);
                        let h = r.header;
                        let value = String::from_utf8_lossy(&r.value[..r.value.len().min(24)]);
                        eprintln!(
                            "    @{off}: seq {} {:?} key {key:?} {:?} exp {} value {value:?}",
                            h.seq, r.kind, r.key, h.expires_ms
                        );
                        off += r.len() as usize;
                    }
                    Err(e) => {
                        eprintln!("    @{off}: {e:?}");
                        break;
                    }
                }
            }
        } else if name.ends_with(".hint") {
            match hint::decode(b) {
                Ok((h, entries)) => {
                    eprintln!("    {h:?}");
                    for e in entries {
                        let key = KEYS.iter().position(|k| key_hash(custom, k) == e.key_hash);
                        eprintln!("    {e:?} key {key:?}");
                    }
                }
                Err(e) => eprintln!("    {e:?}"),
            }
        } else if name == "checkpoint" {
            eprintln!("    {:?}", Checkpoint::decode(b));
        }
    }
}

/// Panics on an error other than running out of sequence numbers (which an
/// image holding numbers near the limit may cause: reclaim then stops).
fn exhausted_is_fine(r: keg::Result<()>, what: &str) {
    match r {
        Ok(()) | Err(Error::SequenceExhausted { .. }) => {}
        Err(e) => panic!("{what} failed: {e}"),
    }
}
