//! A main-log value that only a probation record of its key hides. keg
//! never writes that on its own (a key's values sit in the log of its
//! current entry; deletes go to main), but damage can, and so can a crash
//! that undoes the removal of a main segment after eviction dropped the
//! value and the key was set again. Reclaim drops a probation record (an
//! expired or evicted value, or a tombstone reclaim left) counting only
//! probation values as ones it may hide, so the main-log value would come
//! back after a restart: an older value served again. A writable open now
//! copies such a key's newest value to the main log (or writes a main-log
//! tombstone if it has none), whose reclaim counts values of both logs; it
//! leaves the key alone when a main-log tombstone already hides the old
//! value (a key deleted and set again).

use crate::handmade::{self, hint_file, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::{self, Kind};
use keg::format::segment::{LogKind, SegmentHeader};

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn checkpoint(dir: &std::path::Path, durable_seq: u64) {
    write(
        dir,
        "checkpoint",
        &Checkpoint { durable_seq, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() }.encode(),
    );
}

#[test]
fn an_expired_probation_value_does_not_uncover_a_main_value_it_hid() {
    let dir = tempfile::tempdir().unwrap();
    // Main segment 1: "k" = "main" (sequence 1), beside a live entry.
    let filler = vec![b'f'; 1500];
    let (main, entries) =
        segment(LogKind::Main, 1, &[(1, Kind::Value, b"k", b"main"), (2, Kind::Value, b"m", &filler)]);
    write(dir.path(), "00000001.seg", &main);
    write(dir.path(), "00000001.hint", &hint_file(1, &main, &entries, 4));
    // Probation segment 2: "k" = "probation" (sequence 3), expiring in a
    // second, beside a dead record that makes the segment worth compacting.
    let mut probation = SegmentHeader { log: LogKind::Probation, id: 2, created_ms: NOW_MS }.encode().to_vec();
    record::encode(&mut probation, Kind::Value, 3, NOW_MS + 1000, b"k", b"probation").unwrap();
    // (More than half a segment, so that open does not resume it.)
    record::encode(&mut probation, Kind::Value, 4, 0, b"x", &[b'x'; 2200]).unwrap();
    write(dir.path(), "00000002.seg", &probation);
    checkpoint(dir.path(), 4);

    // A read-only open serves what a writable open would, and writes nothing.
    let files = |d: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        v.sort();
        v
    };
    let before = files(dir.path());
    let ro = handmade::builder(4096).open_read_only(dir.path()).unwrap();
    assert_eq!(ro.get(b"k").unwrap().as_deref(), Some(&b"probation"[..]));
    assert_eq!(ro.get(b"m").unwrap().as_deref(), Some(&filler[..]));
    drop(ro);
    assert_eq!(files(dir.path()), before);
    let clock = keg::ManualClock::new(NOW_MS);
    let open = || handmade::builder(4096).clock(clock.clone()).open(dir.path()).unwrap();
    let cache = open();
    // The open copied k's newest value to main; it reads as before.
    assert_eq!(cache.get(b"k").unwrap().as_deref(), Some(&b"probation"[..]));
    cache.delete(b"x").unwrap();
    clock.advance(std::time::Duration::from_secs(2));
    cache.run_maintenance().unwrap();
    assert!(!dir.path().join("00000002.seg").exists(), "the test needs maintenance to reclaim segment 2");
    assert!(dir.path().join("00000001.seg").exists(), "the test needs segment 1 to stay");
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(open, |cache, after| {
        let got = cache.get(b"k").unwrap();
        assert!(got.is_none(), "after {after}, k read as the main-log value its probation value had hidden");
    });
}

#[test]
fn a_key_deleted_and_set_again_keeps_its_probation_value() {
    // Main segment 5: "k" = "old" (1). Probation segment 8: "k" = "new" (3),
    // the key set again after its delete. Main segment 10: the delete's
    // tombstone (2). Read in segment order, the probation value meets the
    // old value before the tombstone does.
    let dir = tempfile::tempdir().unwrap();
    let (s5, e5) = segment(LogKind::Main, 5, &[(1, Kind::Value, b"k", b"old")]);
    let (s8, e8) = segment(LogKind::Probation, 8, &[(3, Kind::Value, b"k", b"new")]);
    let (s10, e10) = segment(LogKind::Main, 10, &[(2, Kind::Tombstone, b"k", b"")]);
    for (id, seg, entries) in [(5, &s5, &e5), (8, &s8, &e8), (10, &s10, &e10)] {
        write(dir.path(), &format!("{id:08x}.seg"), seg);
        write(dir.path(), &format!("{id:08x}.hint"), &hint_file(id, seg, entries, 3));
    }
    checkpoint(dir.path(), 3);
    handmade::check_after_restart_and_crash(
        || handmade::open(dir.path(), 4096),
        |cache, after| {
            let got = cache.get(b"k").unwrap();
            assert_eq!(got.as_deref(), Some(&b"new"[..]), "after {after}, a sound directory lost an entry");
        },
    );
}

#[test]
fn a_tombstone_a_lying_hint_calls_a_value_is_not_copied_as_an_empty_value() {
    // Found by the `open_dir` fuzz target. Main segment 1: "k" = "main" (1).
    // Probation segment 2 holds a tombstone of "k" (4), but its hint lists a
    // value (5) there: so the open sees a main value hidden by a probation
    // value, and moves the key's newest record to main. It copied the
    // record's value, the tombstone's empty one: "k" read as "".
    let dir = tempfile::tempdir().unwrap();
    let (main, _) = segment(LogKind::Main, 1, &[(1, Kind::Value, b"k", b"main")]);
    write(dir.path(), "00000001.seg", &main);
    let (probation, mut entries) = segment(LogKind::Probation, 2, &[(4, Kind::Tombstone, b"k", b"")]);
    entries[0].tombstone = false;
    entries[0].seq = 5;
    write(dir.path(), "00000002.seg", &probation);
    write(dir.path(), "00000002.hint", &hint_file(2, &probation, &entries, 5));
    checkpoint(dir.path(), 5);
    let ro = handmade::builder(4096).open_read_only(dir.path()).unwrap();
    assert!(ro.get(b"k").unwrap().is_none());
    drop(ro);
    handmade::check_after_restart_and_crash(
        || handmade::open(dir.path(), 4096),
        |cache, after| {
            let got = cache.get(b"k").unwrap();
            assert!(got.is_none(), "after {after}, k read as {:?}, a value no record holds", got.as_deref());
        },
    );
}
