//! `keg verify` finds damage at the right file and offset and exits 1; a clean
//! cache exits 0.
#![cfg(feature = "cli")]

use std::path::Path;

use crate::common::*;
use keg::Cache;

const VALUES: [&[u8]; 3] = [b"first value", b"second value", b"third value"];

/// One segment with three records; returns their offsets.
fn build(dir: &Path) -> [u64; 3] {
    let cache = Cache::builder().background_maintenance(false).open(dir).unwrap();
    let mut offs = [0; 3];
    let mut off = SEG_HEADER;
    for (i, v) in VALUES.iter().enumerate() {
        let key = format!("key{i}");
        cache.set(key.as_bytes(), v, None).unwrap();
        offs[i] = off;
        off += rec_len(key.as_bytes(), v);
    }
    cache.close().unwrap();
    offs
}

#[test]
fn clean_cache_exits_0_with_nothing_on_stdout() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let a = keg().arg("verify").arg(dir.path()).assert().code(0).stdout("");
    assert!(stderr_of(&a).contains("3 record(s), 1 hint file(s): no problems"), "{}", stderr_of(&a));
}

#[test]
fn flipped_byte_is_reported_at_its_record_and_exits_1() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let offs = build(dir.path());
    let seg = seg_path(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[(offs[1] + 28 + 4 + 3) as usize] ^= 0x01; // a byte of the second value
    std::fs::write(&seg, &bytes).unwrap();
    let a = keg().arg("verify").arg(dir.path()).assert().code(1);
    let out = stdout_of(&a);
    let want = format!("{}:{}: error: damaged record: checksum mismatch", seg.display(), offs[1]);
    assert!(out.lines().any(|l| l.starts_with(&want)), "no {want:?} in:\n{out}");
    assert!(out.contains(&format!("next intact record is at offset {}", offs[2])), "{out}");
    for good in [offs[0], offs[2]] {
        assert!(!out.contains(&format!("{}:{good}:", seg.display())), "intact record {good} reported:\n{out}");
    }
    // The hint file still describes the record as it was, so it disagrees now.
    let hint = dir.path().join("00000001.hint");
    assert!(out.lines().any(|l| l.starts_with(&format!("{}:", hint.display())) && l.contains("entry 1")), "{out}");
    // The segment alone, given as a file.
    let a = keg().arg("verify").arg(&seg).assert().code(1);
    assert!(stdout_of(&a).lines().any(|l| l.starts_with(&want)));
}

#[test]
fn truncated_file_is_reported_at_the_torn_record_and_exits_1() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let offs = build(dir.path());
    let seg = seg_path(dir.path(), 1);
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(offs[2] + 10).unwrap();
    drop(f);
    let a = keg().arg("verify").arg(dir.path()).assert().code(1);
    let out = stdout_of(&a);
    let want = format!("{}:{}: error: truncated record", seg.display(), offs[2]);
    assert!(out.lines().any(|l| l.starts_with(&want)), "no {want:?} in:\n{out}");
    assert!(out.contains("10 unreadable bytes to the end of the file"), "{out}");
    assert!(!out.contains(&format!("{}:{}:", seg.display(), offs[1])), "{out}");
}

#[test]
fn damaged_hint_and_checkpoint_files_are_errors_leftovers_are_warnings() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let hint = dir.path().join("00000001.hint");
    let mut bytes = std::fs::read(&hint).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    std::fs::write(&hint, &bytes).unwrap();
    let a = keg().arg("verify").arg(dir.path()).assert().code(1);
    let out = stdout_of(&a);
    assert!(out.contains(&format!("{}:0: error: damaged hint file: checksum mismatch", hint.display())), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");

    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let ckpt = dir.path().join("checkpoint");
    let mut bytes = std::fs::read(&ckpt).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&ckpt, &bytes).unwrap();
    std::fs::write(dir.path().join("00000001.hint.tmp"), b"half").unwrap();
    // Not a name keg writes: the next open leaves it alone.
    std::fs::write(dir.path().join("00000001.seg.tmp"), b"half").unwrap();
    let a = keg().arg("verify").arg(dir.path()).assert().code(1);
    let out = stdout_of(&a);
    assert!(out.contains(&format!("{}:0: error: damaged checkpoint", ckpt.display())), "{out}");
    assert!(out.contains("00000001.hint.tmp: warning: leftover temporary file"), "{out}");
    assert!(out.contains("00000001.seg.tmp: warning: not a keg file"), "{out}");

    // Warnings alone do not fail verification.
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    let a = keg().arg("verify").arg(dir.path()).assert().code(0);
    assert!(stdout_of(&a).contains("notes.txt: warning: not a keg file"));
}

#[test]
fn bad_segment_header_is_an_error_at_offset_0() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let seg = seg_path(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[13] ^= 0xff; // the segment id in the header
    std::fs::write(&seg, &bytes).unwrap();
    let a = keg().arg("verify").arg(dir.path()).assert().code(1);
    assert!(stdout_of(&a).contains(&format!("{}:0: error: bad segment header", seg.display())));
}

#[test]
fn missing_directory_is_an_io_error_exit_2() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let a = keg().arg("verify").arg(dir.path().join("absent")).assert().code(2);
    assert!(stderr_of(&a).contains("absent"));
}

#[test]
fn garbage_files_are_reported_and_never_panic_any_reader() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let valid_header = std::fs::read(seg_path(dir.path(), 1)).unwrap()[..32].to_vec();
    // A header claiming id 2, then a record header declaring a 4 GiB value.
    let mut huge = valid_header.clone();
    huge[12] = 2;
    let sum = crc32fast::hash(&huge[..24]);
    huge[24..28].copy_from_slice(&sum.to_le_bytes());
    huge.extend_from_slice(&[0, 0, 0, 0, 3, 0, 1, 0, 0xff, 0xff, 0xff, 0xff]);
    huge.extend_from_slice(&[0; 20]);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let files: [(u32, Vec<u8>); 5] = [
        (2, huge),
        (3, Vec::new()),
        (4, valid_header[..31].to_vec()),
        (5, noise.clone()),
        (6, [valid_header.clone(), noise].concat()),
    ];
    for (id, bytes) in &files {
        std::fs::write(seg_path(dir.path(), *id), bytes).unwrap();
    }
    std::fs::write(dir.path().join("00000003.hint"), b"not a hint").unwrap();
    let a = keg().arg("verify").arg(dir.path()).assert().code(1);
    let out = stdout_of(&a);
    for id in [2, 4, 5] {
        assert!(out.contains(&format!("{}:", seg_path(dir.path(), id).display())), "segment {id} not reported:\n{out}");
    }
    assert!(out.contains(&format!("{}:32: error: truncated record", seg_path(dir.path(), 2).display())), "{out}");
    for args in [&["dump"][..], &["dump", "--format", "jsonl", "--values"], &["stats"], &["stats", "--format", "jsonl"]]
    {
        let a = keg().args(args).arg(dir.path()).assert().code(0);
        assert!(!stderr_of(&a).contains("panicked"), "{args:?}");
    }
    // The intact segment is still read correctly alongside the garbage.
    let a = keg().arg("dump").arg(dir.path()).args(["--format", "jsonl", "--live"]).assert().success();
    assert_eq!(jsonl(&a.get_output().stdout).len(), 3);
}

#[test]
fn a_synced_cache_killed_with_its_zero_tail_verifies_clean() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let cache =
        Cache::builder().durability(keg::Durability::Synced).background_maintenance(false).open(dir.path()).unwrap();
    for (i, v) in VALUES.iter().enumerate() {
        cache.set(format!("key{i}").as_bytes(), v, None).unwrap();
    }
    cache.abandon();
    // Killed: the segment keeps the zeros written ahead of its records (FORMAT.md 2.8).
    let seg = seg_path(dir.path(), 1);
    assert!(std::fs::metadata(&seg).unwrap().len() > 4096, "no zero tail to verify");
    let a = keg().arg("verify").arg(dir.path()).assert().code(0).stdout("");
    let err = stderr_of(&a);
    assert!(err.contains("3 record(s)") && err.contains("no problems"), "{err}");
    let a = keg().arg("dump").arg(dir.path()).assert().success();
    let out = stdout_of(&a);
    assert!(!out.contains("damaged"), "{out}");
    for i in 0..3 {
        assert!(out.contains(&format!("key{i}")), "key{i} not in:\n{out}");
    }
}
