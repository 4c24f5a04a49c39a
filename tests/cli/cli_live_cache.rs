//! The reading subcommands work on a cache that another process (this test)
//! holds open, without writing a byte; the writing ones refuse with a clear
//! message and exit 3.
#![cfg(feature = "cli")]

use crate::common::*;
use keg::Cache;

fn open_and_fill(dir: &std::path::Path) -> Cache {
    let cache = Cache::builder().background_maintenance(false).open(dir).unwrap();
    for i in 0..50u32 {
        cache.set(format!("k{i:02}").as_bytes(), format!("value {i}").as_bytes(), None).unwrap();
    }
    cache.set(b"k00", b"replaced", None).unwrap();
    cache.delete(b"k01").unwrap();
    cache
}

#[test]
fn dump_stats_verify_get_export_read_a_cache_held_open_and_write_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cache = open_and_fill(dir.path());
    let before = listing(dir.path());

    let a = keg().arg("dump").arg(dir.path()).args(["--format", "jsonl", "--live"]).assert().success();
    let rows = jsonl(&a.get_output().stdout);
    assert_eq!(rows.len(), 49);
    assert!(rows.iter().all(|r| r["status"] == "live"));
    assert!(rows.iter().any(|r| r["key"] == "k00" && r["value_len"] == 8));
    assert!(!rows.iter().any(|r| r["key"] == "k01"));

    let a = keg().arg("stats").arg(dir.path()).args(["--format", "jsonl"]).assert().success();
    let s = &jsonl(&a.get_output().stdout)[0];
    assert_eq!(s["live_entries"], 49);
    assert_eq!(s["tombstones"], 1);

    keg().arg("verify").arg(dir.path()).assert().code(0).stdout("");
    keg().arg("get").arg(dir.path()).arg("k00").assert().code(0).stdout("replaced");
    let a = keg().arg("export").arg(dir.path()).arg("-").assert().success();
    assert_eq!(jsonl(&a.get_output().stdout).len(), 49);

    assert_eq!(before, listing(dir.path()), "a reading subcommand changed the directory");
    // The holder keeps working undisturbed.
    cache.set(b"after", b"x", None).unwrap();
    assert_eq!(cache.get(b"k00").unwrap().unwrap(), b"replaced");
}

#[test]
fn writing_subcommands_on_a_locked_cache_exit_3_and_say_why() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cache = open_and_fill(dir.path());
    let other = tempfile::tempdir().unwrap();
    let input = other.path().join("in.jsonl");
    std::fs::write(&input, "{\"key\":\"a\",\"value\":\"b\"}\n").unwrap();
    let attempts: Vec<Vec<std::ffi::OsString>> = vec![
        vec!["set".into(), dir.path().into(), "k".into(), "v".into()],
        vec!["delete".into(), dir.path().into(), "k00".into()],
        vec!["compact".into(), dir.path().into()],
        vec!["clear".into(), dir.path().into()],
        vec!["load".into(), dir.path().into(), input.clone().into()],
    ];
    for args in attempts {
        let a = keg().args(&args).assert().code(3).stdout("");
        let err = stderr_of(&a);
        assert!(err.contains("is locked by another process"), "{args:?}: {err}");
        assert!(err.contains(&dir.path().display().to_string()), "{args:?}: {err}");
    }
    // Nothing was changed: the holder still sees everything.
    assert_eq!(cache.len(), 49);
    drop(cache);
    // Once the holder is gone, writers work.
    keg().arg("set").arg(dir.path()).args(["k", "v"]).assert().success();
    keg().arg("get").arg(dir.path()).arg("k").assert().success().stdout("v");
}
