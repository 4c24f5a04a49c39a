//! Found by the `open_dir` fuzz target: an intact record, hint entry or
//! checkpoint holding a sequence number near `u64::MAX` (which keg could only
//! reach after 2^62 writes, so it can only be damage whose checksum happens to
//! match, or a hand-made file) made open overflow when it picked the next
//! sequence number, or loop forever looking for a hole in history. Open must
//! instead treat such a number as damage and come back up.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use keg::format::checkpoint::Checkpoint;
use keg::format::hint::{self, HintEntry, HintHeader};
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::{Cache, ManualClock};

const NOW_MS: u64 = 1_700_000_000_000;

/// Writes segment 1 holding `records` (kind, seq, key, value); returns the hint entries.
fn write_segment(dir: &Path, records: &[(Kind, u64, &[u8], &[u8])]) -> Vec<HintEntry> {
    let mut bytes = SegmentHeader { log: LogKind::Probation, id: 1, created_ms: NOW_MS }.encode().to_vec();
    let mut entries = Vec::new();
    for &(kind, seq, key, value) in records {
        let start = bytes.len();
        record::encode(&mut bytes, kind, seq, 0, key, value).unwrap();
        entries.push(HintEntry {
            key_hash: xxhash_rust::xxh3::xxh3_64(key),
            seq,
            expires_s: 0,
            len: (bytes.len() - start) as u32,
            tombstone: kind == Kind::Tombstone,
            dead: false,
        });
    }
    std::fs::write(dir.join("00000001.seg"), &bytes).unwrap();
    entries
}

fn write_checkpoint(dir: &Path, durable_seq: u64, void_ranges: Vec<(u64, u64)>) {
    let c = Checkpoint { durable_seq, clock_ms: NOW_MS, void_ranges, ..Default::default() };
    std::fs::write(dir.join("checkpoint"), c.encode()).unwrap();
}

/// Opens `dir` on another thread, failing the test if open does not return within a minute.
fn open_in_time(dir: &Path) -> Cache {
    let (tx, rx) = mpsc::channel();
    let dir = dir.to_owned();
    std::thread::spawn(move || {
        let clock = ManualClock::new(NOW_MS);
        let _ = tx.send(Cache::builder().background_maintenance(false).clock(clock).open(dir));
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("open did not return within a minute").expect("open failed")
}

/// The cache still takes writes, and they win over everything on disk after a restart.
fn still_works(dir: &Path, cache: Cache) {
    cache.set(b"k", b"new value", None).unwrap();
    assert_eq!(cache.get(b"k").unwrap().unwrap(), b"new value");
    cache.close().unwrap();
    let cache = open_in_time(dir);
    assert_eq!(cache.get(b"k").unwrap().unwrap(), b"new value");
    cache.abandon();
    let cache = open_in_time(dir);
    assert_eq!(cache.get(b"k").unwrap().unwrap(), b"new value");
    let ro = Cache::builder().open_read_only(dir).unwrap();
    assert_eq!(ro.get(b"k").unwrap().unwrap(), b"new value");
}

#[test]
fn checkpoint_with_a_durable_mark_at_the_top_of_the_range() {
    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), &[(Kind::Value, 1, b"k", b"old value")]);
    write_checkpoint(dir.path(), u64::MAX, vec![]);
    let cache = open_in_time(dir.path());
    assert_eq!(cache.get(b"k").unwrap().unwrap(), b"old value");
    still_works(dir.path(), cache);
}

#[test]
fn checkpoint_with_a_void_range_reaching_the_top_of_the_range() {
    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), &[(Kind::Value, 1, b"k", b"old value")]);
    write_checkpoint(dir.path(), 0, vec![(5, u64::MAX)]);
    still_works(dir.path(), open_in_time(dir.path()));
}

#[test]
fn record_with_the_largest_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    write_segment(
        dir.path(),
        &[
            (Kind::Value, 1, b"k", b"old value"),
            (Kind::Value, u64::MAX, b"k", b"impossible"),
            (Kind::Value, 2, b"j", b"j"),
        ],
    );
    let cache = open_in_time(dir.path());
    assert_ne!(cache.get(b"k").unwrap().as_deref(), Some(&b"impossible"[..]));
    still_works(dir.path(), cache);
}

#[test]
fn tombstone_with_the_largest_sequence_number_and_a_void_range_up_to_it() {
    // Before the fix, the search for a hole in history stepped over the void
    // range to u64::MAX and then looped on it forever.
    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), &[(Kind::Value, 1, b"k", b"old value"), (Kind::Tombstone, u64::MAX, b"k", b"")]);
    write_checkpoint(dir.path(), 0, vec![(2, u64::MAX)]);
    still_works(dir.path(), open_in_time(dir.path()));
}

#[test]
fn hint_entry_with_the_largest_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut entries = write_segment(dir.path(), &[(Kind::Value, 1, b"k", b"old value")]);
    entries[0].seq = u64::MAX;
    let data_len = 32 + entries[0].len as u64;
    let header = HintHeader { hasher: 1, segment_id: 1, data_len, count: 1, durable_seq: 0 };
    std::fs::write(dir.path().join("00000001.hint"), hint::encode(&header, &entries)).unwrap();
    let cache = open_in_time(dir.path());
    assert_eq!(cache.get(b"k").unwrap().unwrap(), b"old value", "the damaged hint is ignored and the segment scanned");
    still_works(dir.path(), cache);
}

/// Found by the `open_dir` fuzz target: an intact record numbered just under
/// the highest number open accepts made the writer go on past it; the next
/// open took the new records for damage and cut their segment, and the
/// writes were lost. Past the limit, writes now fail with a clear error
/// instead, and what is stored stays readable.
#[test]
fn writes_past_the_highest_sequence_number_fail_instead_of_being_lost() {
    let limit = 1u64 << 62;
    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), &[(Kind::Value, limit - 1, b"old", b"old value")]);
    write_checkpoint(dir.path(), limit - 1, vec![]);
    let cache = open_in_time(dir.path());
    assert_eq!(cache.get(b"old").unwrap().unwrap(), b"old value");
    cache.set(b"a", b"the last number", None).unwrap(); // takes 2^62 itself
    let err = cache.set(b"b", b"one too many", None).unwrap_err();
    assert!(matches!(err, keg::Error::SequenceExhausted { .. }), "{err}");
    assert!(err.to_string().contains("move the directory aside"), "the error says what to do: {err}");
    assert!(matches!(cache.delete(b"old"), Err(keg::Error::SequenceExhausted { .. })));
    assert_eq!(cache.get(b"a").unwrap().unwrap(), b"the last number");
    cache.abandon(); // a crash: nothing acknowledged may be lost
    let cache = open_in_time(dir.path());
    assert_eq!(cache.get(b"a").unwrap().unwrap(), b"the last number", "an acknowledged write was lost");
    assert_eq!(cache.get(b"old").unwrap().unwrap(), b"old value");
    assert!(cache.get(b"b").unwrap().is_none());
    // Maintenance copying live entries forward stops there too, and loses nothing.
    assert!(matches!(cache.compact(), Ok(()) | Err(keg::Error::SequenceExhausted { .. })));
    cache.close().unwrap();
    let cache = open_in_time(dir.path());
    assert_eq!(cache.get(b"a").unwrap().unwrap(), b"the last number");
    assert_eq!(cache.get(b"old").unwrap().unwrap(), b"old value");
}
