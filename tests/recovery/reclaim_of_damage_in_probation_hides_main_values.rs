//! Found by a 30-minute `open_dir` fuzz run (issue 16's, at cc46b07; the
//! same input fails at 9292f81): a probation segment whose hint lists, for
//! key "a"'s hash, a record that is not there (damage), numbered above the
//! main log's values of "a". Open rightly hides "a" (an unreadable newer
//! record may be its newest). Reclaiming the damaged probation segment must
//! then leave a tombstone for "a", as it does for any key whose values a
//! dropped damaged record may hide; but it looked for older values only in
//! the probation log (where a probation *tombstone* can hide things), while
//! a damaged record, whose key is unknown, may hide values in either log.
//! After a crash the main-log value of "a" came back, though "a" had been
//! deleted. Now reclaim counts both logs for damaged records.

use crate::handmade::{self, hint_file, segment};
use keg::format::record::Kind;
use keg::format::segment::LogKind;

#[test]
fn a_deleted_key_stays_deleted_after_reclaim_of_damage_and_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let filler = vec![b'f'; 600];
    // Main log: "a" = "old" (seq 1), and a live filler that keeps segment 1.
    let (main, main_entries) =
        segment(LogKind::Main, 1, &[(1, Kind::Value, b"a", b"old"), (2, Kind::Value, b"keep", &filler)]);
    std::fs::write(dir.path().join("00000001.hint"), hint_file(1, &main, &main_entries, 5)).unwrap();
    std::fs::write(dir.path().join("00000001.seg"), &main).unwrap();
    // Probation: a record of "a" numbered 3 whose key byte is damaged (it
    // reads "q" now, under a failing checksum); its hint still lists it as
    // "a"'s (as the hint written before the damage would). Unreadable, it is
    // not taken for a record of "a" (which would make "a" a split key that
    // open settles), only for a record that may be anyone's.
    // Two values of "x" after it make the segment worth compacting.
    let (mut probation, entries) = segment(
        LogKind::Probation,
        2,
        &[(3, Kind::Value, b"a", b"new"), (4, Kind::Value, b"x", &filler), (5, Kind::Value, b"x", b"2")],
    );
    probation[32 + 28] ^= 0x10;
    std::fs::write(dir.path().join("00000002.hint"), hint_file(2, &probation, &entries, 5)).unwrap();
    std::fs::write(dir.path().join("00000002.seg"), &probation).unwrap();

    let cache = handmade::open(dir.path(), 4096);
    assert!(cache.get(b"a").unwrap().is_none(), "a newer unreadable record of \"a\" hides the older value");
    // Background compaction takes the mostly dead probation segment, not the
    // mostly live main one (whose "a" record nothing points at any more).
    cache.run_maintenance().unwrap();
    assert!(dir.path().join("00000001.seg").exists(), "the test must keep segment 1");
    assert!(!dir.path().join("00000002.seg").exists(), "the test must reclaim the damaged segment");
    assert!(cache.get(b"a").unwrap().is_none(), "reclaim uncovered the older value");
    cache.delete(b"a").unwrap();
    cache.abandon();
    handmade::check_after_restart_and_crash(
        || handmade::open(dir.path(), 4096),
        |cache, when| {
            assert!(cache.get(b"a").unwrap().is_none(), "\"a\" came back after {when}");
            assert_eq!(cache.get(b"keep").unwrap().unwrap().len(), 600);
            assert_eq!(cache.get(b"x").unwrap().unwrap(), b"2");
        },
    );
}
