//! `keg set`, `get`, `delete`, `compact` and `clear` do what the library does,
//! with TTLs, stdin values and binary keys.
#![cfg(feature = "cli")]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use crate::common::*;
use keg::{Cache, Clock, SystemClock};

#[test]
fn set_then_get_delete_round_trip() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("new-cache");
    keg().arg("set").arg(&d).args(["greeting", "hello world"]).assert().success().stdout("");
    keg().arg("get").arg(&d).arg("greeting").assert().code(0).stdout("hello world");
    keg()
        .arg("set")
        .arg(&d)
        .args(["greeting", "replaced", "--durability", "synced", "--max-bytes", "64MiB"])
        .assert()
        .success();
    keg().arg("get").arg(&d).arg("greeting").assert().code(0).stdout("replaced");
    let a = keg().arg("get").arg(&d).arg("absent").assert().code(1).stdout("");
    assert!(stderr_of(&a).contains("no value"));
    let a = keg().arg("delete").arg(&d).arg("greeting").assert().success();
    assert!(stderr_of(&a).contains("deleted"));
    keg().arg("get").arg(&d).arg("greeting").assert().code(1);
    let a = keg().arg("delete").arg(&d).arg("greeting").assert().success();
    assert!(stderr_of(&a).contains("nothing deleted"));
    // The library sees the same.
    let cache = Cache::open(&d).unwrap();
    assert!(cache.get(b"greeting").unwrap().is_none());
}

#[test]
fn binary_key_and_value_from_stdin() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let key = OsStr::from_bytes(b"bin\xff\x01");
    let value: Vec<u8> = (0..=255u8).chain(0..=255).collect();
    keg().arg("set").arg(dir.path()).arg(key).arg("-").write_stdin(value.clone()).assert().success();
    keg().arg("get").arg(dir.path()).arg(key).assert().code(0).stdout(value.clone());
    let cache = Cache::builder().open_read_only(dir.path()).unwrap();
    assert_eq!(cache.get(b"bin\xff\x01").unwrap().unwrap(), value);
}

#[test]
fn ttl_is_stored_as_an_expiry_that_far_ahead() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let before = SystemClock.now_ms();
    keg().arg("set").arg(dir.path()).args(["session", "data", "--ttl", "1h30m"]).assert().success();
    let after = SystemClock.now_ms();
    let a = keg().arg("dump").arg(dir.path()).args(["--format", "jsonl", "--key", "session"]).assert().success();
    let rows = jsonl(&a.get_output().stdout);
    let exp = rows[0]["expires_ms"].as_u64().unwrap();
    let span = 5400 * 1000;
    assert!(before + span <= exp && exp <= after + span, "{before} {exp} {after}");
    let a = keg().arg("set").arg(dir.path()).args(["k", "v", "--ttl", "0s"]).assert().code(2);
    assert!(stderr_of(&a).contains("--ttl must be longer than zero"));
}

#[test]
fn flags_are_stored_by_set_and_shown_by_get() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    keg().arg("set").arg(dir.path()).args(["k", "v", "--flags", "4294967295"]).assert().success();
    keg().arg("get").arg(dir.path()).args(["k", "--flags"]).assert().code(0).stdout("4294967295\n");
    keg().arg("get").arg(dir.path()).arg("k").assert().code(0).stdout("v");
    keg().arg("set").arg(dir.path()).args(["plain", "v"]).assert().success();
    keg().arg("get").arg(dir.path()).args(["plain", "--flags"]).assert().code(0).stdout("0\n");
    keg().arg("get").arg(dir.path()).args(["absent", "--flags"]).assert().code(1).stdout("");
    let cache = Cache::builder().open_read_only(dir.path()).unwrap();
    assert_eq!(cache.get_entry(b"k").unwrap().unwrap().flags, u32::MAX);
    drop(cache);
    keg().arg("set").arg(dir.path()).args(["k", "v", "--flags", "4294967296"]).assert().code(2);
}

#[test]
fn compact_shrinks_disk_use_and_clear_empties_the_cache() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    {
        let cache = Cache::builder().segment_bytes(64 << 10).background_maintenance(false).open(dir.path()).unwrap();
        for round in 0..10u8 {
            for i in 0..100u32 {
                cache.set(format!("k{i}").as_bytes(), &[round; 500], None).unwrap();
            }
        }
    }
    let a = keg().arg("compact").arg(dir.path()).assert().success();
    let out = stdout_of(&a);
    let nums: Vec<u64> = out.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert!(out.starts_with("disk bytes ") && nums.len() >= 2, "{out}");
    assert!(nums[1] < nums[0] / 3, "compaction should drop 9/10 of the data: {out}");
    keg().arg("get").arg(dir.path()).arg("k7").assert().code(0).stdout(vec![9u8; 500]);

    let a = keg().arg("clear").arg(dir.path()).assert().success();
    assert!(stderr_of(&a).contains("cleared 100 entries"), "{}", stderr_of(&a));
    keg().arg("get").arg(dir.path()).arg("k7").assert().code(1);
    let a = keg().arg("dump").arg(dir.path()).args(["--format", "jsonl"]).assert().success();
    assert!(a.get_output().stdout.is_empty());
}

#[test]
fn commands_that_need_an_existing_cache_do_not_create_one() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    for cmd in ["compact", "clear"] {
        keg().arg(cmd).arg(&missing).assert().code(2);
    }
    keg().arg("delete").arg(&missing).arg("k").assert().code(2);
    keg().arg("get").arg(&missing).arg("k").assert().code(2);
    assert!(!missing.exists());
}

#[test]
fn without_max_bytes_a_cache_bigger_than_the_default_cap_is_refused() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    keg().arg("set").arg(dir.path()).args(["k", "v"]).assert().success();
    // A sparse stand-in for a big segment: 1 GiB by its length, no blocks on disk.
    let big = std::fs::File::create(seg_path(dir.path(), 0xff)).unwrap();
    big.set_len(1 << 30).unwrap();
    drop(big);
    let a = keg().arg("set").arg(dir.path()).args(["k", "v2"]).assert().code(2);
    assert!(stderr_of(&a).contains("pass --max-bytes"), "{}", stderr_of(&a));
    keg().arg("get").arg(dir.path()).arg("k").assert().code(0).stdout("v");
    // With the cap given explicitly the writer opens (and drops the headerless file).
    keg().arg("set").arg(dir.path()).args(["k", "v2", "--max-bytes", "4GiB"]).assert().success();
    keg().arg("get").arg(dir.path()).arg("k").assert().code(0).stdout("v2");
}

#[test]
fn set_refuses_a_directory_of_other_files_and_touches_none() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"my notes").unwrap();
    std::fs::write(dir.path().join("checkpoint"), b"game save").unwrap();
    std::fs::write(dir.path().join("build.tmp"), b"half").unwrap();
    let before = listing(dir.path());
    let a = keg().arg("set").arg(dir.path()).args(["k", "v"]).assert().code(2);
    let err = stderr_of(&a);
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
    assert!(err.contains("not a keg cache directory") && err.contains("`build.tmp`"), "{err}");
    assert!(err.contains("a directory of its own"), "{err}");
    let a = keg().arg("get").arg(dir.path()).arg("k").assert().code(2);
    assert!(stderr_of(&a).contains("not a keg cache directory"), "{}", stderr_of(&a));
    assert_eq!(listing(dir.path()), before);
    assert_eq!(std::fs::read(dir.path().join("checkpoint")).unwrap(), b"game save");
}
