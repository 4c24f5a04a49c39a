//! The checkpoint's versions: a directory whose checkpoint an earlier keg
//! wrote (version 1, no clock anchor; version 2, no sequence mark) opens
//! with every value and its clock mark, numbers records on from its last
//! one, and is written as version 3 from then on; a checkpoint of a later
//! version is refused, naming the file.

use std::path::Path;
use std::time::Duration;

use keg::format::checkpoint::Checkpoint;
use keg::{Cache, Error, ManualClock, SetOptions};

const T0: u64 = 1_700_000_000_000;

/// The version-1 bytes of `c` (FORMAT.md section 6: no bytes 32..72).
fn version_1(c: &Checkpoint) -> Vec<u8> {
    let mut b = keg::format::checkpoint::MAGIC.to_vec();
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&(c.void_ranges.len() as u16).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&c.durable_seq.to_le_bytes());
    b.extend_from_slice(&c.clock_ms.to_le_bytes());
    for &(first, last) in &c.void_ranges {
        b.extend_from_slice(&first.to_le_bytes());
        b.extend_from_slice(&last.to_le_bytes());
    }
    let sum = crc32fast::hash(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

fn read_checkpoint(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("checkpoint")).unwrap()
}

#[test]
fn a_version_1_checkpoint_opens_with_its_values_and_clock_mark() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cache = Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
    for i in 0..50 {
        cache.set(format!("k{i}").as_bytes(), b"v", Some(Duration::from_secs(60))).unwrap();
    }
    cache.close().unwrap();
    let now = Checkpoint::decode(&read_checkpoint(dir.path())).unwrap();
    let mark = T0 + 30_000;
    std::fs::write(dir.path().join("checkpoint"), version_1(&Checkpoint { clock_ms: mark, anchor: None, ..now }))
        .unwrap();

    // Without an anchor, the cache cannot measure the time since: it
    // resumes at the mark, as a keg before the anchor did.
    let cache = Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
    assert_eq!(cache.now_ms(), mark);
    for i in 0..50 {
        assert!(cache.get(format!("k{i}").as_bytes()).unwrap().is_some(), "k{i} lost");
    }
    cache.set(b"later", b"v", None).unwrap();
    cache.close().unwrap();
    let b = read_checkpoint(dir.path());
    assert_eq!(u16::from_le_bytes([b[8], b[9]]), 3, "written as version 3 from then on");
    assert!(Checkpoint::decode(&b).unwrap().anchor.is_some());
}

/// The version-2 bytes of `c` (FORMAT.md section 6: no bytes 72..80).
fn version_2(c: &Checkpoint) -> Vec<u8> {
    let v3 = c.encode();
    let mut b = v3[..72].to_vec();
    b[8..10].copy_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&v3[80..v3.len() - 4]);
    let sum = crc32fast::hash(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

#[test]
fn a_version_2_checkpoint_opens_with_its_values_and_numbers_on_from_its_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let cache = Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
    let mut last = 0;
    for i in 0..50 {
        last = cache.set_with(format!("k{i}").as_bytes(), b"v", &SetOptions::new()).unwrap();
    }
    // Killed, as an earlier keg would have left it: no mark, and the
    // directory's own records the only guide to the next number.
    cache.abandon();
    let now = Checkpoint::decode(&read_checkpoint(dir.path())).unwrap();
    std::fs::write(dir.path().join("checkpoint"), version_2(&Checkpoint { seq_mark: 0, ..now })).unwrap();

    let cache = Cache::builder().clock(clock.clone()).open_read_only(dir.path()).unwrap();
    assert_eq!(cache.get(b"k49").unwrap().as_deref(), Some(&b"v"[..]));
    drop(cache);
    let b = read_checkpoint(dir.path());
    assert_eq!(u16::from_le_bytes([b[8], b[9]]), 2, "a read-only open wrote the checkpoint");

    let cache = Cache::builder().clock(clock.clone()).open(dir.path()).unwrap();
    for i in 0..50 {
        assert!(cache.get(format!("k{i}").as_bytes()).unwrap().is_some(), "k{i} lost");
    }
    let next = cache.set_with(b"later", b"v", &SetOptions::new()).unwrap();
    assert!(next > last, "version {next} after {last}");
    let b = read_checkpoint(dir.path());
    assert_eq!(u16::from_le_bytes([b[8], b[9]]), 3, "written as version 3 from the first write on");
    assert!(Checkpoint::decode(&b).unwrap().seq_mark >= next, "the write's number is not reserved on disk");
    cache.close().unwrap();
}

#[test]
fn a_checkpoint_of_a_later_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Cache::open(dir.path()).unwrap().close().unwrap();
    let mut b = read_checkpoint(dir.path());
    b[8] = 4;
    let end = b.len() - 4;
    let sum = crc32fast::hash(&b[..end]);
    b[end..].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(dir.path().join("checkpoint"), &b).unwrap();
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, Error::UnsupportedVersion { found: 4, supported: 3, path } if path.ends_with("checkpoint")),
        "{err}"
    );
}
