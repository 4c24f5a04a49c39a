//! Tags and namespaces across restarts, crashes, power cuts and reclaim: no
//! invalidated entry ever comes back, and the invalidation record outlives
//! every older record that may carry its tag.

use keg::format::record::{self, Kind, Scope};
use keg::format::segment::{LogKind, SegmentHeader};
use keg::sim::FaultFs;
use keg::{Cache, Durability, SetOptions};

use crate::handmade::{self, NOW_MS};

fn tagged(tag: &str) -> SetOptions {
    SetOptions::new().tags([tag])
}

#[test]
fn nothing_invalidated_comes_back_after_a_restart_or_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Cache::builder().segment_bytes(64 << 10).open(dir.path()).unwrap();
    let cache = open();
    for i in 0..300 {
        cache.set_with(format!("t{i}").as_bytes(), &[b'v'; 500], &tagged("author:7")).unwrap();
        cache.namespace("ns").unwrap().set(format!("n{i}").as_bytes(), b"x", None).unwrap();
        cache.set_with(format!("keep{i}").as_bytes(), b"k", &tagged("author:8")).unwrap();
    }
    assert_eq!(cache.invalidate_tag("author:7").unwrap(), 300);
    cache.drop_namespace("ns").unwrap();
    cache.set_with(b"t0", b"after", &tagged("author:7")).unwrap();
    cache.namespace("ns").unwrap().set(b"n0", b"after", None).unwrap();
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(open, |cache, when| {
        assert_eq!(cache.get(b"t0").unwrap().unwrap(), b"after", "{when}");
        assert_eq!(cache.namespace("ns").unwrap().get(b"n0").unwrap().unwrap(), b"after", "{when}");
        for i in 1..300 {
            assert!(cache.get(format!("t{i}").as_bytes()).unwrap().is_none(), "{when}: t{i} came back");
            let ns = cache.namespace("ns").unwrap();
            assert!(ns.get(format!("n{i}").as_bytes()).unwrap().is_none(), "{when}: n{i} came back");
            assert!(cache.get(format!("keep{i}").as_bytes()).unwrap().is_some(), "{when}: keep{i} lost");
        }
    });
    // The members of a tag are known again after a restart: the count.
    let cache = open();
    assert_eq!(cache.invalidate_tag("author:8").unwrap(), 300);
    assert!(cache.get(b"keep5").unwrap().is_none());
}

#[test]
fn compaction_after_an_invalidation_then_a_crash_revives_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Cache::builder().segment_bytes(16 << 10).background_maintenance(false).open(dir.path()).unwrap();
    let cache = open();
    // Untagged values first, then tagged ones of the same keys (older values
    // the dropped tagged ones hide), garbage all around.
    for round in 0..3 {
        for i in 0..100 {
            let opts = if round == 2 { tagged("t") } else { SetOptions::new() };
            cache.set_with(format!("k{i}").as_bytes(), &[b'0' + round; 300], &opts).unwrap();
        }
    }
    let ns = cache.namespace("ns").unwrap();
    for round in 0..3u8 {
        for i in 0..100 {
            ns.set(format!("k{i}").as_bytes(), &[b'0' + round; 300], None).unwrap();
        }
    }
    assert_eq!(cache.invalidate_tag("t").unwrap(), 100);
    cache.drop_namespace("ns").unwrap();
    cache.compact().unwrap();
    cache.compact().unwrap();
    assert!(cache.stats().compactions > 0, "the test is not testing");
    for i in 0..100 {
        assert!(cache.get(format!("k{i}").as_bytes()).unwrap().is_none(), "k{i} after compaction");
    }
    cache.abandon();
    let cache = open();
    let ns = cache.namespace("ns").unwrap();
    for i in 0..100 {
        assert!(cache.get(format!("k{i}").as_bytes()).unwrap().is_none(), "k{i} after compaction and a crash");
        assert!(ns.get(format!("k{i}").as_bytes()).unwrap().is_none(), "ns k{i} after compaction and a crash");
    }
}

fn write_segment(dir: &std::path::Path, log: LogKind, id: u32, records: &[Vec<u8>]) {
    let mut seg = SegmentHeader { log, id, created_ms: NOW_MS }.encode().to_vec();
    for r in records {
        seg.extend_from_slice(r);
    }
    std::fs::write(dir.join(format!("{id:08x}.seg")), seg).unwrap();
}

fn value(seq: u64, key: &[u8], tags: &[&str], v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let list = record::encode_tags(tags).unwrap();
    record::encode_full(&mut out, Kind::Value, seq, 0, key, 0, &list, false, v).unwrap();
    out
}

fn invalidation(seq: u64, scope: Scope, name: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let key = record::invalidation_key(scope, name);
    record::encode_full(&mut out, Kind::Invalidation, seq, 0, &key, 0, &[], false, b"").unwrap();
    out
}

/// The invalidation record sits in a main segment that compaction rewrites
/// (it holds garbage), while the tagged values it hides sit in an older
/// probation segment that stays: the record must be copied forward, or the
/// values come back at the next open.
#[test]
fn reclaim_keeps_an_invalidation_while_older_tagged_records_exist() {
    let dir = tempfile::tempdir().unwrap();
    write_segment(
        dir.path(),
        LogKind::Probation,
        1,
        &[value(1, b"a", &["t"], b"1"), value(2, b"b", &["t"], b"2"), value(3, b"u", &[], b"3")],
    );
    write_segment(
        dir.path(),
        LogKind::Main,
        2,
        &[invalidation(4, Scope::Tag, b"t"), value(5, b"g", &[], b"old"), value(6, b"g", &[], b"new")],
    );
    let open = || handmade::open(dir.path(), 64 << 10);
    let cache = open();
    assert!(cache.get(b"a").unwrap().is_none(), "open reads the invalidation");
    cache.compact().unwrap();
    assert!(cache.stats().segments_reclaimed > 0, "the main segment was rewritten");
    assert!(dir.path().join("00000001.seg").exists(), "the probation segment stays");
    assert!(!dir.path().join("00000002.seg").exists());
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(open, |cache, when| {
        assert!(cache.get(b"a").unwrap().is_none(), "{when}: a came back");
        assert!(cache.get(b"b").unwrap().is_none(), "{when}: b came back");
        assert_eq!(cache.get(b"u").unwrap().unwrap(), b"3", "{when}");
        assert_eq!(cache.get(b"g").unwrap().unwrap(), b"new", "{when}");
    });
}

/// An invalidated value dropped by a reclaim leaves a tombstone when an older
/// (untagged) value of its key exists elsewhere, as an expired one does.
#[test]
fn reclaim_drops_an_invalidated_value_leaving_a_tombstone_over_older_values() {
    let dir = tempfile::tempdir().unwrap();
    write_segment(dir.path(), LogKind::Probation, 1, &[value(1, b"k", &[], b"old untagged")]);
    write_segment(
        dir.path(),
        LogKind::Probation,
        2,
        &[value(2, b"k", &["t"], b"tagged"), value(3, b"g", &[], b"x"), value(4, b"g", &[], b"y")],
    );
    write_segment(dir.path(), LogKind::Main, 3, &[invalidation(5, Scope::Tag, b"t")]);
    let open = || handmade::open(dir.path(), 64 << 10);
    let cache = open();
    assert!(cache.get(b"k").unwrap().is_none());
    cache.compact().unwrap();
    assert!(!dir.path().join("00000002.seg").exists(), "the tagged value's segment was rewritten");
    cache.close().unwrap();
    handmade::check_after_restart_and_crash(open, |cache, when| {
        assert!(cache.get(b"k").unwrap().is_none(), "{when}: an older value of k came back");
        assert_eq!(cache.get(b"g").unwrap().unwrap(), b"y", "{when}");
    });
}

/// Power cut at every storage operation of an invalidation (and of a
/// namespace drop): after the crash, it happened whole or not at all, and
/// in synced mode, whole once the call returned.
#[test]
fn a_power_cut_during_an_invalidation_leaves_all_or_nothing() {
    for mode in [Durability::Synced, Durability::Flushed] {
        let mut outcomes = [0usize; 2];
        for cut in 1..12u64 {
            let dir = tempfile::tempdir().unwrap();
            let fs = FaultFs::new();
            let builder = || {
                Cache::builder()
                    .segment_bytes(64 << 10)
                    .durability(mode)
                    .background_maintenance(false)
                    .storage(fs.clone())
            };
            let cache = builder().open(dir.path()).unwrap();
            for i in 0..20 {
                cache.set_with(format!("t{i}").as_bytes(), b"v", &tagged("t")).unwrap();
                cache.namespace("ns").unwrap().set(format!("n{i}").as_bytes(), b"v", None).unwrap();
            }
            cache.sync().unwrap();
            fs.cut_power_after(cut);
            let acked_tag = cache.invalidate_tag("t").is_ok();
            let acked_ns = cache.drop_namespace("ns").is_ok();
            cache.abandon();
            fs.crash(cut * 17 + 3).unwrap();
            let cache = builder().open(dir.path()).unwrap();
            let tags: Vec<bool> = (0..20).map(|i| cache.get(format!("t{i}").as_bytes()).unwrap().is_some()).collect();
            let ns = cache.namespace("ns").unwrap();
            let names: Vec<bool> = (0..20).map(|i| ns.get(format!("n{i}").as_bytes()).unwrap().is_some()).collect();
            for (what, seen, acked) in [("tag", &tags, acked_tag), ("namespace", &names, acked_ns)] {
                assert!(seen.iter().all(|&s| s == seen[0]), "{mode:?} cut {cut}: {what} half invalidated: {seen:?}");
                if mode == Durability::Synced && acked {
                    assert!(!seen[0], "{mode:?} cut {cut}: an acknowledged {what} invalidation was undone");
                }
                outcomes[usize::from(seen[0])] += 1;
            }
            // Prefix: the namespace drop came after the tag's invalidation.
            if !names[0] {
                assert!(!tags[0], "{mode:?} cut {cut}: the later drop survived, the earlier invalidation did not");
            }
        }
        // (In flushed mode the crash may lose every unsynced write.)
        if mode == Durability::Synced {
            assert!(outcomes[0] > 0 && outcomes[1] > 0, "{mode:?}: no cut fell inside: {outcomes:?}");
        }
    }
}
