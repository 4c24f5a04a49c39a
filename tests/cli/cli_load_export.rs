//! `keg export` then `keg load` moves a cache's live entries, with their
//! expiry, flags and binary keys and values, into another cache.
#![cfg(feature = "cli")]

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use keg::{Cache, ManualClock};

/// Key -> (value, expiry, flags).
type Entries = BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>, u32)>;

fn source(dir: &std::path::Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    {
        // History that must not travel: an expired entry.
        let cache = Cache::builder().clock(ManualClock::new(T0)).background_maintenance(false).open(dir).unwrap();
        cache.set(b"expired", b"old", Some(Duration::from_secs(1))).unwrap();
        cache.close().unwrap();
    }
    let cache = Cache::builder().background_maintenance(false).open(dir).unwrap();
    let live: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"text".to_vec(), b"plain value".to_vec()),
        (b"json".to_vec(), b"{\"a\": [1, 2], \"q\": \"\\\"\"}\nsecond line\ttab".to_vec()),
        (vec![0xff, 0xfe, 0x00, b'k'], (0..=255u8).collect()),
        (b"empty".to_vec(), Vec::new()),
        ("ünïcödé".as_bytes().to_vec(), "välue ✓".as_bytes().to_vec()),
        (b"big".to_vec(), vec![0xab; 300_000]),
    ];
    for (i, (k, v)) in live.iter().enumerate() {
        // Flags 0, 1, 2^32 - 1, 0, ...
        let flags = [0, 1, u32::MAX][i % 3];
        cache.set_with(k, v, &keg::SetOptions::new().flags(flags)).unwrap();
    }
    cache.set(b"with-ttl", b"expires later", Some(Duration::from_secs(2 * 3600))).unwrap();
    cache.set(b"deleted", b"x", None).unwrap();
    cache.delete(b"deleted").unwrap();
    cache.set(b"text", b"overwritten", None).unwrap();
    cache.set(b"text", b"plain value", None).unwrap();
    cache.close().unwrap();
    live
}

/// Live entries with their expiry, read through the library.
fn entries(dir: &std::path::Path) -> Entries {
    let cache = Cache::builder().open_read_only(dir).unwrap();
    let mut out = Entries::new();
    keg::inspect::for_each_live(&cache, |e| {
        let exp = (e.record.header.expires_ms != 0).then_some(e.record.header.expires_ms);
        out.insert(e.record.key.to_vec(), (e.record.value.to_vec(), exp, e.record.user_flags));
        Ok::<_, ()>(())
    })
    .unwrap();
    out
}

fn assert_same(a: &Entries, b: &Entries) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, (va, ea, fa)) in a {
        let (vb, eb, fb) = &b[k];
        assert_eq!(va, vb, "value of {k:?}");
        assert_eq!(fa, fb, "flags of {k:?}");
        match (ea, eb) {
            (None, None) => {}
            // load re-computes the TTL from the absolute expiry, so the new
            // expiry is the same instant or a little later, never earlier.
            (Some(x), Some(y)) => assert!(x <= y && *y - *x < 60_000, "expiry of {k:?}: {x} vs {y}"),
            _ => panic!("expiry of {k:?}: {ea:?} vs {eb:?}"),
        }
    }
}

#[test]
fn export_then_load_moves_every_live_entry_with_ttl_and_binary_data() {
    let _serial = serial();
    let a_dir = tempfile::tempdir().unwrap();
    let live = source(a_dir.path());
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("export.jsonl");
    let a = keg().arg("export").arg(a_dir.path()).arg(&file).assert().success().stdout("");
    assert!(stderr_of(&a).contains("exported 7 entries; skipped 1 expired"), "{}", stderr_of(&a));
    let rows = jsonl(&std::fs::read(&file).unwrap());
    assert_eq!(rows.len(), 7);
    assert!(rows.iter().all(|r| r["status"] == "live" && r["value_truncated"] == false));
    let bin = rows.iter().find(|r| r["key_b64"] == "//4Aaw==").expect("binary key row");
    assert!(bin.get("key").is_none() && bin.get("value_b64").is_some());
    let ttl_row = rows.iter().find(|r| r["key"] == "with-ttl").unwrap();
    assert!(ttl_row["expires_ms"].is_u64() && ttl_row["expires"].is_string());

    let b_dir = work.path().join("copy");
    let a = keg().arg("load").arg(&b_dir).arg(&file).assert().success();
    assert!(stderr_of(&a).contains("loaded 7 entries"), "{}", stderr_of(&a));

    let src = entries(a_dir.path());
    let dst = entries(&b_dir);
    assert_eq!(src.len(), live.len() + 1);
    for (k, v) in &live {
        assert_eq!(&src[k].0, v);
    }
    assert!(src[&b"with-ttl".to_vec()].1.is_some());
    assert_eq!(src.values().map(|e| e.2).filter(|&f| f != 0).count(), 4, "flags of the source: {src:?}");
    let json = rows.iter().find(|r| r["key"] == "json").unwrap();
    assert_eq!(json["flags"], 1);
    assert_same(&src, &dst);
}

#[test]
fn export_to_stdout_and_load_from_stdin() {
    let _serial = serial();
    let a_dir = tempfile::tempdir().unwrap();
    source(a_dir.path());
    let a = keg().arg("export").arg(a_dir.path()).arg("-").assert().success();
    let exported = a.get_output().stdout.clone();
    let b_dir = tempfile::tempdir().unwrap();
    keg().arg("load").arg(b_dir.path()).arg("-").write_stdin(exported).assert().success();
    assert_same(&entries(a_dir.path()), &entries(b_dir.path()));
}

#[test]
fn load_accepts_dump_output_and_hand_written_rows() {
    let _serial = serial();
    let a_dir = tempfile::tempdir().unwrap();
    source(a_dir.path());
    // A full dump with whole values holds shadowed, expired and tombstone rows too: load keeps only live ones.
    let a = keg()
        .arg("dump")
        .arg(a_dir.path())
        .args(["--format", "jsonl", "--values", "--max-value-bytes", "1GiB"])
        .assert()
        .success();
    let b_dir = tempfile::tempdir().unwrap();
    let a = keg().arg("load").arg(b_dir.path()).arg("-").write_stdin(a.get_output().stdout.clone()).assert().success();
    assert!(stderr_of(&a).contains("loaded 7 entries; skipped 5 rows that are not live values"), "{}", stderr_of(&a));
    assert_same(&entries(a_dir.path()), &entries(b_dir.path()));

    // Hand-written rows: relative TTLs, ISO expiry, past expiry, base64.
    let rows = [
        r#"{"key":"a","value":"1","ttl":"1h"}"#,
        r#"{"key":"b","value":"2","ttl_ms":7200000}"#,
        r#"{"key":"c","value":"3","expires":"2999-01-01T00:00:00Z"}"#,
        r#"{"key":"d","value":"4","expires":"2000-01-01T00:00:00Z"}"#,
        r#"{"key_b64":"/w==","value_b64":"AAE="}"#,
        r#"{"key":"e","value":"5","flags":42,"expires_ms":null}"#,
        "",
    ];
    let c_dir = tempfile::tempdir().unwrap();
    let a = keg().arg("load").arg(c_dir.path()).arg("-").write_stdin(rows.join("\n")).assert().success();
    assert!(stderr_of(&a).contains("loaded 5 entries; skipped 1 already expired"), "{}", stderr_of(&a));
    let got = entries(c_dir.path());
    assert_eq!(got[&b"\xff".to_vec()].0, vec![0u8, 1]);
    assert!(got[&b"a".to_vec()].1.is_some() && got[&b"b".to_vec()].1 > got[&b"a".to_vec()].1);
    // 2999 is past the engine's largest expiry (2106): stored without one.
    assert_eq!(got[&b"c".to_vec()], (b"3".to_vec(), None, 0));
    assert_eq!(got[&b"e".to_vec()], (b"5".to_vec(), None, 42));
    assert!(!got.contains_key(b"d".as_slice()));
}

#[test]
fn load_refuses_cut_values_and_bad_lines_naming_the_line() {
    let _serial = serial();
    let a_dir = tempfile::tempdir().unwrap();
    source(a_dir.path());
    let a = keg().arg("dump").arg(a_dir.path()).args(["--format", "jsonl", "--values", "--live"]).assert().success();
    let b_dir = tempfile::tempdir().unwrap();
    let a = keg().arg("load").arg(b_dir.path()).arg("-").write_stdin(a.get_output().stdout.clone()).assert().code(2);
    assert!(stderr_of(&a).contains("value_truncated"), "{}", stderr_of(&a));

    let input = "{\"key\":\"a\",\"value\":\"1\"}\nnot json\n";
    let a = keg().arg("load").arg(b_dir.path()).arg("-").write_stdin(input).assert().code(2);
    assert!(stderr_of(&a).contains("-:2: not a JSON object"), "{}", stderr_of(&a));
    let a = keg().arg("load").arg(b_dir.path()).arg("-").write_stdin("{\"value\":\"1\"}\n").assert().code(2);
    assert!(stderr_of(&a).contains("-:1: missing \"key\""), "{}", stderr_of(&a));
    for flags in ["-1", "4294967296", "\"7\"", "1.5"] {
        let row = format!("{{\"key\":\"a\",\"value\":\"1\",\"flags\":{flags}}}\n");
        let a = keg().arg("load").arg(b_dir.path()).arg("-").write_stdin(row).assert().code(2);
        assert!(stderr_of(&a).contains("-:1: \"flags\" must be"), "{flags}: {}", stderr_of(&a));
    }
}
