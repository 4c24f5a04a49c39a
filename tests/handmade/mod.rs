//! Hand-made cache directories for the recovery tests: segments holding
//! chosen records, hint files that list them, and an open on a manual clock.
#![allow(dead_code)]

use std::path::Path;

use keg::format::hint::{self, HintEntry, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::{Builder, Cache, ManualClock};

/// The manual clock's time, and every hand-made segment's creation time.
pub const NOW_MS: u64 = 1_700_000_000_000;

/// A record of a hand-made segment: sequence number, kind, key, value.
pub type Rec<'a> = (u64, Kind, &'a [u8], &'a [u8]);

/// Opens `dir` with a 64 MiB cap, segments of `segment_bytes`, no background
/// maintenance, and a manual clock at [`NOW_MS`].
pub fn open(dir: &Path, segment_bytes: u64) -> Cache {
    builder(segment_bytes).open(dir).unwrap()
}

/// The builder [`open`] uses.
pub fn builder(segment_bytes: u64) -> Builder {
    Cache::builder()
        .max_bytes(64 << 20)
        .segment_bytes(segment_bytes)
        .background_maintenance(false)
        .clock(ManualClock::new(NOW_MS))
}

/// The bytes of segment `id` of `log` holding `records`, and the hint
/// entries that describe them (xxh3 key hashes, none marked dead).
pub fn segment(log: LogKind, id: u32, records: &[Rec<'_>]) -> (Vec<u8>, Vec<HintEntry>) {
    let mut seg = SegmentHeader { log, id, created_ms: NOW_MS }.encode().to_vec();
    let mut entries = Vec::new();
    for &(seq, kind, key, value) in records {
        let start = seg.len();
        record::encode(&mut seg, kind, seq, 0, key, value).unwrap();
        let len = (seg.len() - start) as u32;
        let key_hash = xxhash_rust::xxh3::xxh3_64(key);
        entries.push(HintEntry { key_hash, seq, expires_s: 0, len, tombstone: kind == Kind::Tombstone, dead: false });
    }
    (seg, entries)
}

/// The hint file of segment `id`, whose bytes are `seg`, listing `entries`.
pub fn hint_file(id: u32, seg: &[u8], entries: &[HintEntry], durable_seq: u64) -> Vec<u8> {
    let header =
        HintHeader { hasher: 1, segment_id: id, data_len: seg.len() as u64, count: entries.len() as u32, durable_seq };
    hint::encode(&header, entries)
}

/// Runs `check` on the directory twice: on an open after the caller's clean
/// close ("a restart"), then, that open abandoned, on an open after a crash
/// ("a crash"); closes the last one.
pub fn check_after_restart_and_crash(open: impl Fn() -> Cache, check: impl Fn(&Cache, &str)) {
    let cache = open();
    check(&cache, "a restart");
    cache.abandon();
    let cache = open();
    check(&cache, "a crash");
    cache.close().unwrap();
}

/// A key hasher under which "k1" and "k5" share a hash (7), other keys get
/// xxh3's: for directories whose records of two keys compete at open.
pub fn k1_k5_collide(key: &[u8]) -> u64 {
    match key {
        b"k1" | b"k5" => 7,
        _ => xxhash_rust::xxh3::xxh3_64(key),
    }
}

/// The hint header's hasher id for a custom key hasher.
pub const CUSTOM_HASHER: u8 = 255;

/// Opens `dir` as [`open`] does (segments of 4 KiB) with [`k1_k5_collide`].
pub fn open_k1_k5_collide(dir: &Path) -> Cache {
    builder(4096).key_hasher(k1_k5_collide).open(dir).unwrap()
}

/// A hint entry of a live record (not dead, no expiry).
pub fn hint_entry(key_hash: u64, seq: u64, len: usize, tombstone: bool) -> HintEntry {
    HintEntry { key_hash, seq, expires_s: 0, len: len as u32, tombstone, dead: false }
}
