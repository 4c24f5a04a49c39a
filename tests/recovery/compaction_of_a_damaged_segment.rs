//! Found by the `open_dir` fuzz target (its input is
//! `fuzz/regressions/open_dir/damaged-segment-compaction-resurrects`).
//!
//! A hinted segment whose first record is damaged (its hint intact) holds the
//! newest value of key k; an older segment holds k's previous value. When
//! maintenance compacted the damaged segment, its scan stopped at the damage,
//! every index entry into the segment was dropped ("entries past damage must
//! not outlive the file") and the segment was removed, with no copy of the
//! intact records past the damage and no tombstone for the keys those entries
//! held. k then read as a miss, and `delete(k)` found nothing and wrote
//! nothing; after a restart the older value was the newest record of k left,
//! and k came back: a deleted key resurrected. Eviction had the same flaw: a
//! tombstone past the damage in a main segment was lost with it, and an older
//! value of its key in the probation log came back.
//!
//! Reclaim now reaches the records past the damage through the hint and the
//! index: intact ones are handled like scanned ones (copied, or tombstones
//! kept), and for a damaged one that was a live value or a tombstone, every
//! key with an older value of the same hash elsewhere and no live entry gets
//! a tombstone with the damaged record's sequence number, fsynced before the
//! segment goes. The tests here check both paths, after a clean restart and
//! after a power cut at every step of the reclaim.

use std::path::Path;

use keg::format::checkpoint::Checkpoint;
use keg::format::hint::{self, HintEntry, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::sim::FaultFs;
use keg::{Builder, Cache, ManualClock};

const NOW_MS: u64 = 1_700_000_000_000;

/// How a record of a hand-made segment is damaged (its hint stays intact).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// A byte of the key: the record's checksum fails and its key reads as another.
    Key,
    /// A byte of the stored checksum: the key still reads right.
    Checksum,
    /// An impossible sequence number (above 2^62) in the record, with its
    /// checksum fixed (the hint lists the plausible one).
    ImpossibleSeq,
}

/// One record of a hand-made segment.
struct Rec<'a> {
    seq: u64,
    kind: Kind,
    key: &'a [u8],
    value: &'a [u8],
    damage: Option<Damage>,
}

fn value<'a>(seq: u64, key: &'a [u8], value: &'a [u8]) -> Rec<'a> {
    Rec { seq, kind: Kind::Value, key, value, damage: None }
}

fn tombstone(seq: u64, key: &[u8]) -> Rec<'_> {
    Rec { seq, kind: Kind::Tombstone, key, value: b"", damage: None }
}

fn damaged(rec: Rec<'_>, damage: Damage) -> Rec<'_> {
    Rec { damage: Some(damage), ..rec }
}

/// Writes segment `id` of `log` with `records` and an exact hint (marking no
/// value dead: as if written before the newer values existed).
fn write_segment(dir: &Path, log: LogKind, id: u32, records: &[Rec<'_>]) {
    let hash = |k: &[u8]| xxhash_rust::xxh3::xxh3_64(k);
    let mut seg = SegmentHeader { log, id, created_ms: NOW_MS }.encode().to_vec();
    let mut entries = Vec::new();
    for r in records {
        let start = seg.len();
        let seq = if r.damage == Some(Damage::ImpossibleSeq) { u64::MAX - r.seq } else { r.seq };
        record::encode(&mut seg, r.kind, seq, 0, r.key, r.value).unwrap();
        match r.damage {
            Some(Damage::Key) => seg[start + record::HEADER_LEN] ^= 1,
            Some(Damage::Checksum) => seg[start] ^= 1,
            Some(Damage::ImpossibleSeq) | None => {}
        }
        let len = (seg.len() - start) as u32;
        let tombstone = r.kind == Kind::Tombstone;
        entries.push(HintEntry { key_hash: hash(r.key), seq: r.seq, expires_s: 0, len, tombstone, dead: false });
    }
    let durable_seq = records.iter().map(|r| r.seq).max().unwrap_or(0);
    let count = entries.len() as u32;
    let header = HintHeader { hasher: 1, segment_id: id, data_len: seg.len() as u64, count, durable_seq };
    std::fs::write(dir.join(format!("{id:08x}.seg")), &seg).unwrap();
    std::fs::write(dir.join(format!("{id:08x}.hint")), hint::encode(&header, &entries)).unwrap();
}

fn write_checkpoint(dir: &Path, durable_seq: u64) {
    let c = Checkpoint { durable_seq, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.join("checkpoint"), c.encode()).unwrap();
}

fn builder() -> Builder {
    Cache::builder().background_maintenance(false).clock(ManualClock::new(NOW_MS))
}

fn get(cache: &Cache, key: &[u8]) -> Option<Vec<u8>> {
    cache.get(key).unwrap().map(|v| v.to_vec())
}

/// The fuzzer's case: k's newest value lies past the damage.
fn newest_value_past_the_damage(dir: &Path) {
    // Segment 1: k's old value, and a big live value so that it is not worth compacting.
    write_segment(dir, LogKind::Probation, 1, &[value(1, b"k", b"old value"), value(2, b"big", &[b'b'; 3000])]);
    // Segment 2: x (damaged: a key byte, so its checksum fails), k's new
    // value, y twice (the first one dead, so that maintenance compacts it).
    let records = [
        damaged(value(3, b"x", b"x"), Damage::Key),
        value(4, b"k", b"new value"),
        value(5, b"y", &[b'y'; 3000]),
        value(6, b"y", b"y"),
    ];
    write_segment(dir, LogKind::Probation, 2, &records);
    write_checkpoint(dir, 6);
}

#[test]
fn a_key_deleted_after_its_damaged_segment_was_compacted_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    newest_value_past_the_damage(dir.path());
    let cache = builder().open(dir.path()).unwrap();
    assert_eq!(get(&cache, b"k").as_deref(), Some(&b"new value"[..]));
    cache.run_maintenance().unwrap();
    assert!(cache.stats().compactions > 0, "the test must make maintenance compact segment 2");
    // The intact records past the damage were copied.
    assert_eq!(get(&cache, b"k").as_deref(), Some(&b"new value"[..]));
    assert_eq!(get(&cache, b"y").as_deref(), Some(&b"y"[..]));
    cache.delete(b"k").unwrap();
    assert!(get(&cache, b"k").is_none());
    cache.close().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert!(get(&cache, b"k").is_none(), "a deleted key came back after a restart");
    assert_eq!(get(&cache, b"y").as_deref(), Some(&b"y"[..]));
    assert_eq!(get(&cache, b"big").map(|v| v.len()), Some(3000));
}

/// k's newest value is itself damaged (its key still reads right): k reads
/// as a miss, and its older value must never come back.
fn newest_value_damaged(dir: &Path) {
    write_segment(dir, LogKind::Probation, 1, &[value(1, b"k", b"old value"), value(2, b"big", &[b'b'; 3000])]);
    let records =
        [damaged(value(3, b"k", b"new value"), Damage::Checksum), value(4, b"y", &[b'y'; 3000]), value(5, b"y", b"y")];
    write_segment(dir, LogKind::Probation, 2, &records);
    write_checkpoint(dir, 5);
}

#[test]
fn compacting_a_damaged_newest_value_leaves_a_tombstone_for_the_older_one() {
    let dir = tempfile::tempdir().unwrap();
    newest_value_damaged(dir.path());
    let cache = builder().open(dir.path()).unwrap();
    assert!(get(&cache, b"k").is_none(), "k's newest value is damaged: a miss");
    cache.run_maintenance().unwrap();
    assert!(cache.stats().compactions > 0, "the test must make maintenance compact segment 2");
    assert!(get(&cache, b"k").is_none());
    cache.close().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert!(get(&cache, b"k").is_none(), "an older value came back after its damaged successor was compacted");
    assert_eq!(get(&cache, b"y").as_deref(), Some(&b"y"[..]));
    // The tombstone outlives later maintenance, and k can be written again.
    cache.compact().unwrap();
    cache.close().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert!(get(&cache, b"k").is_none());
    cache.set(b"k", b"newest", None).unwrap();
    cache.close().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert_eq!(get(&cache, b"k").as_deref(), Some(&b"newest"[..]));
}

/// A cap that makes maintenance evict the main log's oldest segment first:
/// the probation log is far below its share, main segments fill the rest.
fn evicting() -> Builder {
    builder().segment_bytes(4 << 10).max_bytes(32 << 10)
}

/// k's old value in probation (left there, say, by a crash between promoting
/// k and removing its probation segment); k's tombstone in the main log's
/// oldest segment, past a damaged record (`damage_tombstone`: the tombstone
/// itself is damaged); then enough main segments to be over the cap.
fn tombstone_in_a_damaged_main_segment(dir: &Path, damage_tombstone: bool) {
    // (With a live value, so that compaction leaves the segment alone.)
    write_segment(dir, LogKind::Probation, 1, &[value(1, b"k", b"old value"), value(2, b"p", &[b'p'; 2000])]);
    let t = if damage_tombstone { damaged(tombstone(4, b"k"), Damage::Checksum) } else { tombstone(4, b"k") };
    write_segment(dir, LogKind::Main, 2, &[damaged(value(3, b"x", b"x"), Damage::Key), t]);
    let filler = [b'f'; 3500];
    let keys: Vec<String> = (0..9).map(|i| format!("filler{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        write_segment(dir, LogKind::Main, 3 + i as u32, &[value(5 + i as u64, key.as_bytes(), &filler)]);
    }
    write_checkpoint(dir, 13);
}

#[test]
fn evicting_a_damaged_main_segment_keeps_the_tombstone_past_the_damage() {
    for damage_tombstone in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        tombstone_in_a_damaged_main_segment(dir.path(), damage_tombstone);
        let cache = evicting().open(dir.path()).unwrap();
        assert!(get(&cache, b"k").is_none());
        cache.run_maintenance().unwrap();
        let stats = cache.stats();
        assert!(stats.evictions > 0, "the test must make maintenance evict");
        assert!(!dir.path().join("00000002.seg").exists(), "the test must make maintenance evict segment 2");
        assert!(dir.path().join("00000001.seg").exists(), "the test must leave k's old value in probation");
        assert!(get(&cache, b"k").is_none());
        cache.close().unwrap();
        let cache = evicting().open(dir.path()).unwrap();
        assert!(
            get(&cache, b"k").is_none(),
            "a deleted key came back after a restart (tombstone damaged: {damage_tombstone})"
        );
    }
}

/// Also found by the `open_dir` fuzz target: a hinted segment held a
/// tombstone whose sequence number (intact checksum, plausible in the hint)
/// was above 2^62, which recovery reads as damage. Compaction copied it
/// forward with that number, and every later open cut the segment it landed
/// in short there: the writes after it in that segment were lost, and an
/// older value of a key came back.
#[test]
fn compaction_does_not_copy_a_record_with_an_impossible_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let records = [
        value(1, b"k", b"v1"),
        damaged(tombstone(2, b"x"), Damage::ImpossibleSeq),
        value(3, b"y", &[b'y'; 3000]),
        value(4, b"y", b"y"),
    ];
    write_segment(dir.path(), LogKind::Probation, 1, &records);
    // Another segment with values: a tombstone is copied while one older than it may exist.
    write_segment(dir.path(), LogKind::Probation, 2, &[value(5, b"big", &[b'b'; 3000])]);
    write_checkpoint(dir.path(), 5);
    let cache = builder().open(dir.path()).unwrap();
    cache.run_maintenance().unwrap();
    assert!(cache.stats().compactions > 0, "the test must make maintenance compact segment 1");
    cache.set(b"k", b"v2", None).unwrap();
    cache.close().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert_eq!(get(&cache, b"k").as_deref(), Some(&b"v2"[..]), "a write was lost after a restart");
    assert_eq!(get(&cache, b"y").as_deref(), Some(&b"y"[..]));
    assert_eq!(cache.stats().recovery_truncated_bytes, 0);
}

/// Also found by the `open_dir` fuzz target: a hinted segment held, where its
/// hint listed another record, a tombstone of k with a sequence number above
/// every one recovery saw (so recovery never applied it; the fuzzer's had a
/// number recovery handed out again). Compaction copied the tombstone
/// forward, and after a restart it hid the value of k written since.
#[test]
fn compaction_does_not_act_on_a_record_its_hint_does_not_list() {
    let dir = tempfile::tempdir().unwrap();
    let hash = |k: &[u8]| xxhash_rust::xxh3::xxh3_64(k);
    let mut seg = SegmentHeader { log: LogKind::Probation, id: 1, created_ms: NOW_MS }.encode().to_vec();
    let mut entries = Vec::new();
    // Key, sequence number and kind the hint claims; then the record's own.
    type Claim<'a> = (&'a [u8], u64, Kind, u64, &'a [u8], &'a [u8]);
    let records: [Claim<'_>; 3] = [
        (b"z", 1, Kind::Value, 8, b"k", b""),
        (b"y", 2, Kind::Value, 2, b"y", &[b'y'; 3000]),
        (b"y", 3, Kind::Value, 3, b"y", b"y"),
    ];
    for (claimed, claimed_seq, claimed_kind, seq, key, value) in records {
        let start = seg.len();
        let kind = if value.is_empty() { Kind::Tombstone } else { Kind::Value };
        record::encode(&mut seg, kind, seq, 0, key, value).unwrap();
        let len = (seg.len() - start) as u32;
        let tombstone = claimed_kind == Kind::Tombstone;
        entries.push(HintEntry {
            key_hash: hash(claimed),
            seq: claimed_seq,
            expires_s: 0,
            len,
            tombstone,
            dead: false,
        });
    }
    let header = HintHeader { hasher: 1, segment_id: 1, data_len: seg.len() as u64, count: 3, durable_seq: 3 };
    std::fs::write(dir.path().join("00000001.seg"), &seg).unwrap();
    std::fs::write(dir.path().join("00000001.hint"), hint::encode(&header, &entries)).unwrap();
    write_checkpoint(dir.path(), 3);

    let cache = builder().open(dir.path()).unwrap();
    for i in 4..=7 {
        cache.set(b"k", format!("v{i}").as_bytes(), None).unwrap();
    }
    // (The tombstone's number, 8, is the next one; nothing that was written has it.)
    cache.run_maintenance().unwrap();
    assert!(cache.stats().compactions > 0, "the test must make maintenance compact segment 1");
    assert_eq!(get(&cache, b"k").as_deref(), Some(&b"v7"[..]));
    cache.close().unwrap();
    let cache = builder().open(dir.path()).unwrap();
    assert_eq!(get(&cache, b"k").as_deref(), Some(&b"v7"[..]), "a write was hidden after a restart");
    assert_eq!(get(&cache, b"y").as_deref(), Some(&b"y"[..]));
}

/// Runs `maintain` on a cache over `setup`'s files with the power cut after
/// each number of storage operations in turn (until a run completes), and
/// checks `check` after recovering from each simulated crash, again after
/// maintaining the recovered cache, and after a clean restart.
fn power_cut_sweep(setup: &dyn Fn(&Path), builder: fn() -> Builder, check: &dyn Fn(&Cache, &str)) {
    for cut in 1..1000u64 {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        let fs = FaultFs::new();
        let cache = builder().storage(fs.clone()).open(dir.path()).unwrap();
        fs.cut_power_after(cut);
        let done = cache.run_maintenance().is_ok() && !fs.power_is_out();
        cache.abandon();
        fs.crash(cut).unwrap();
        let what = format!("power cut after {cut} operations");
        let cache = builder().open(dir.path()).unwrap();
        check(&cache, &what);
        cache.run_maintenance().unwrap();
        cache.compact().unwrap();
        check(&cache, &what);
        cache.close().unwrap();
        let cache = builder().open(dir.path()).unwrap();
        check(&cache, &what);
        cache.close().unwrap();
        if done {
            return;
        }
    }
    panic!("maintenance never completed");
}

#[test]
fn a_power_cut_at_any_step_of_compacting_a_damaged_segment_revives_nothing() {
    power_cut_sweep(&newest_value_damaged, builder, &|cache, what| {
        assert!(get(cache, b"k").is_none(), "an older value came back ({what})");
        assert_eq!(get(cache, b"y").as_deref(), Some(&b"y"[..]), "({what})");
    });
    power_cut_sweep(&newest_value_past_the_damage, builder, &|cache, what| {
        assert_eq!(get(cache, b"k").as_deref(), Some(&b"new value"[..]), "({what})");
        assert_eq!(get(cache, b"y").as_deref(), Some(&b"y"[..]), "({what})");
    });
}

#[test]
fn a_power_cut_at_any_step_of_evicting_a_damaged_segment_revives_nothing() {
    for damage_tombstone in [false, true] {
        power_cut_sweep(&|d| tombstone_in_a_damaged_main_segment(d, damage_tombstone), evicting, &|cache, what| {
            assert!(
                get(cache, b"k").is_none(),
                "a deleted key came back ({what}, tombstone damaged: {damage_tombstone})"
            );
        });
    }
}
