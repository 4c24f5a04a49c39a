//! A crash in the middle of a probation reclaim leaves a promoted entry twice:
//! the copy at the main log's head, and the original still in the probation
//! segment whose removal never happened. The original is dead (the copy has
//! the higher sequence number), and stays so only while a newer record of its
//! key exists. If nothing else reclaims that probation segment (the probation
//! log under its share, say), the key can be updated and the update evicted
//! from the main log. Dropped with no trace, it left the old probation record
//! as the key's newest: after a restart the cache served the value the update
//! had replaced.
//!
//! The directory here is what such a crash leaves, written by hand: the
//! promoted key's original in probation segment 1, its copy in main segment 2.

use std::path::Path;

use crate::handmade::{self, segment, NOW_MS};
use keg::format::checkpoint::Checkpoint;
use keg::format::record::Kind;
use keg::format::segment::LogKind;
use keg::{Cache, ManualClock};

const SEGMENT: u64 = 4096;

/// A cap of 8 segments: the probation log's share is 3,276 bytes, well above
/// segment 1, so eviction takes main segments.
fn open(dir: &Path) -> Cache {
    Cache::builder()
        .max_bytes(8 * SEGMENT)
        .segment_bytes(SEGMENT)
        .background_maintenance(false)
        .clock(ManualClock::new(NOW_MS))
        .open(dir)
        .unwrap()
}

fn interrupted_promotion_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let filler = vec![b'f'; 1000];
    // Probation segment 1: the original of "k" (promoted, so dead) beside a
    // live entry that keeps the segment from being mostly garbage.
    let (probation, _) =
        segment(LogKind::Probation, 1, &[(10, Kind::Value, b"k", b"original"), (11, Kind::Value, b"p", b"stays")]);
    // Main segment 2 (more than half full, so a reopen does not resume it):
    // the copy of "k", then main-log keys the test will update.
    let main: [handmade::Rec; 4] = [
        (50, Kind::Value, b"k", b"original"),
        (51, Kind::Value, b"m0", &filler),
        (52, Kind::Value, b"m1", &filler),
        (53, Kind::Value, b"m2", &filler),
    ];
    let (main, _) = segment(LogKind::Main, 2, &main);
    std::fs::write(dir.path().join("00000001.seg"), probation).unwrap();
    std::fs::write(dir.path().join("00000002.seg"), main).unwrap();
    let c = Checkpoint { durable_seq: 53, clock_ms: NOW_MS, void_ranges: vec![], ..Default::default() };
    std::fs::write(dir.path().join("checkpoint"), c.encode()).unwrap();
    dir
}

/// Updates the main-log keys until every segment that existed when it began
/// (other than segment 1) has been evicted.
fn churn_main(cache: &Cache, dir: &Path, round: &mut u8) {
    let before: Vec<String> = segment_files(dir).into_iter().filter(|n| n != "00000001.seg").collect();
    for _ in 0..200 {
        *round = round.wrapping_add(1);
        for m in ["m0", "m1", "m2"] {
            cache.set(m.as_bytes(), &[*round; 1000], None).unwrap();
        }
        if before.iter().all(|n| !dir.join(n).exists()) {
            return;
        }
    }
    panic!("the main log never evicted {before:?}: the test needs different sizes");
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

#[test]
fn an_evicted_update_does_not_uncover_the_probation_original_of_a_promoted_entry() {
    let dir = interrupted_promotion_dir();
    let cache = open(dir.path());
    let mut round = 0;
    // The update goes to the main log, where "k"'s entry is.
    cache.set(b"k", b"updated", None).unwrap();
    // Evict the segment holding the copy, then the one holding the update
    // ("k" is never read, so its hit counter stays at zero and both go).
    churn_main(&cache, dir.path(), &mut round);
    churn_main(&cache, dir.path(), &mut round);
    assert!(dir.path().join("00000001.seg").exists(), "segment 1 must stay for the test to mean anything");
    assert!(cache.stats().evictions > 0);
    assert_ne!(cache.get(b"k").unwrap().as_deref(), Some(&b"original"[..]));
    drop(cache);
    handmade::check_after_restart_and_crash(
        || open(dir.path()),
        |cache, after| {
            let got = cache.get(b"k").unwrap();
            assert!(
                got.as_deref() != Some(&b"original"[..]),
                "after {after} the cache served the value an update had replaced"
            );
        },
    );
}
