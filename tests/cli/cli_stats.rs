//! `keg stats` counts entries, live/expired/dead bytes, per-segment dead
//! fractions, size percentiles and the TTL distribution correctly.
#![cfg(feature = "cli")]

use std::time::Duration;

use crate::common::*;
use keg::{Cache, ManualClock};
use serde_json::{json, Value};

fn stats(dir: &std::path::Path, extra: &[&str]) -> Value {
    let a = keg().arg("stats").arg(dir).args(["--format", "jsonl"]).args(extra).assert().success();
    let mut rows = jsonl(&a.get_output().stdout);
    assert_eq!(rows.len(), 1, "stats jsonl is one object on one line");
    rows.remove(0)
}

#[test]
fn figures_match_what_was_written() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut expired_bytes = 0;
    let mut dead_bytes = 0;
    {
        // Session 1, clock in the past: two entries that have expired by now,
        // one overwritten entry, one deleted.
        let cache =
            Cache::builder().clock(ManualClock::new(T0)).background_maintenance(false).open(dir.path()).unwrap();
        for k in [&b"old1"[..], b"old2"] {
            cache.set(k, b"xx", Some(Duration::from_secs(60))).unwrap();
            expired_bytes += rec_len(k, b"xx");
        }
        cache.set(b"k001", b"first version", None).unwrap();
        dead_bytes += rec_len(b"k001", b"first version");
        cache.set(b"gone", b"soon deleted", None).unwrap();
        cache.delete(b"gone").unwrap();
        dead_bytes += rec_len(b"gone", b"soon deleted") + rec_len(b"gone", b"");
        cache.close().unwrap();
    }
    // Session 2, real clock: 100 live entries with key lengths 4..=103 and value
    // lengths 10..=1000; TTLs spread over the buckets, with wide margins.
    let cache = Cache::builder().background_maintenance(false).open(dir.path()).unwrap();
    let mut live_bytes = 0;
    for i in 1..=100usize {
        let key = format!("k{i:03}{}", "x".repeat(i - 1));
        let value = vec![b'v'; 10 * i];
        let ttl = match i % 5 {
            0 => None,
            1 => Some(Duration::from_secs(30 * 60)),
            2 => Some(Duration::from_secs(2 * 3600)),
            3 => Some(Duration::from_secs(3 * 86_400)),
            _ => Some(Duration::from_secs(60 * 86_400)),
        };
        cache.set(key.as_bytes(), &value, ttl).unwrap();
        live_bytes += rec_len(key.as_bytes(), &value);
    }
    cache.close().unwrap();

    let s = stats(dir.path(), &["--max-bytes", "10MiB"]);
    assert_eq!(s["entries"], 102);
    assert_eq!(s["live_entries"], 100);
    assert_eq!(s["expired_entries"], 2);
    assert_eq!(s["tombstones"], 1);
    assert_eq!(s["shadowed_records"], 2);
    assert_eq!(s["live_bytes"], live_bytes);
    assert_eq!(s["expired_bytes"], expired_bytes);
    assert_eq!(s["dead_bytes"], dead_bytes);
    assert_eq!(s["damaged_stretches"], 0);
    assert_eq!(s["max_bytes"], 10 << 20);
    let files: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".seg") || n.ends_with(".hint")))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert_eq!(s["disk_bytes"], files);
    // Session 2 went on appending to session 1's segment; the delete's
    // tombstone is in the main log's segment 2.
    let tombstone = rec_len(b"gone", b"");
    let segs = s["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2);
    let size = std::fs::metadata(seg_path(dir.path(), 1)).unwrap().len();
    assert_eq!((&segs[0]["log"], &segs[0]["size"]), (&json!("probation"), &json!(size)));
    assert_eq!(segs[0]["live_bytes"], live_bytes);
    assert_eq!(segs[0]["expired_bytes"], expired_bytes);
    assert_eq!(segs[0]["dead_bytes"], dead_bytes - tombstone);
    let fraction = (dead_bytes - tombstone) as f64 / (size - 32) as f64;
    assert_eq!(segs[0]["dead_fraction"], (fraction * 1e4).round() / 1e4);
    assert_eq!((&segs[1]["log"], &segs[1]["size"]), (&json!("main"), &json!(32 + tombstone)));
    assert_eq!((&segs[1]["dead_bytes"], &segs[1]["dead_fraction"]), (&json!(tombstone), &json!(1.0)));
    // Nearest-rank percentiles of 4..=103 and 10..=1000.
    assert_eq!(
        s["key_len"],
        json!({"count": 100, "min": 4, "p50": 53, "p90": 93, "p99": 102, "max": 103, "mean": 53.5})
    );
    assert_eq!(s["value_len"]["p50"], 500);
    assert_eq!(s["value_len"]["max"], 1000);
    let ttl = &s["ttl"];
    assert_eq!((&ttl["no_expiry"], &ttl["with_expiry"]), (&json!(20), &json!(80)));
    assert_eq!(ttl["buckets"], json!({"lt_1m": 0, "1m_1h": 20, "1h_1d": 20, "1d_7d": 20, "7d_30d": 0, "ge_30d": 20}));
}

#[test]
fn table_output_names_the_figures_and_the_default_cap() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(b"a", b"1", None).unwrap();
    cache.close().unwrap();
    let a = keg().arg("stats").arg(dir.path()).assert().success();
    let out = stdout_of(&a);
    assert!(out.lines().any(|l| l.starts_with("entries") && l.contains("1 (1 live, 0 expired)")), "{out}");
    assert!(out.contains("of the 1.0 GiB cap (the library's default"), "{out}");
    assert!(out.contains("00000001.seg"), "{out}");
    assert!(out.contains("key length (bytes)"), "{out}");
}
