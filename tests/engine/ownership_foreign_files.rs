//! A cache never deletes, overwrites or writes among files it did not create:
//! open takes a missing or empty directory, a marked keg cache, or an older
//! keg cache without a marker (which it adopts), and refuses anything else
//! with `Error::NotACache` before writing a byte (FORMAT.md, section 1).

use std::collections::BTreeMap;
use std::path::Path;

use keg::format::marker;
use keg::{Cache, Error};

/// Every entry of `dir` (recursively one level) with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = if e.path().is_dir() { None } else { Some(std::fs::read(e.path()).unwrap()) };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// Opens `dir` writable and read-only; both must refuse it as not a cache,
/// naming the directory and `culprit`, and leave every byte as it was.
fn refused(dir: &Path, culprit: &str) -> String {
    let before = snapshot(dir);
    let err = Cache::open(dir).expect_err("a writable open of a foreign directory must fail");
    let msg = err.to_string();
    match &err {
        Error::NotACache { path, reason } => {
            assert_eq!(path, dir);
            assert!(reason.contains(culprit), "{reason}");
        }
        other => panic!("expected NotACache, got {other:?}"),
    }
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    assert!(msg.contains("directory of its own"), "the message says what to do: {msg}");
    assert_eq!(snapshot(dir), before, "a refused writable open changed the directory");
    let err = Cache::builder().open_read_only(dir).expect_err("a read-only open of a foreign directory must fail");
    assert!(matches!(err, Error::NotACache { .. }), "{err:?}");
    assert_eq!(snapshot(dir), before, "a refused read-only open changed the directory");
    msg
}

#[test]
fn a_directory_of_ordinary_files_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"my notes").unwrap();
    std::fs::write(dir.path().join("draft.tmp"), b"half a draft").unwrap();
    std::fs::create_dir(dir.path().join("photos")).unwrap();
    let msg = refused(dir.path(), "draft.tmp");
    assert!(msg.contains("and 2 more entries"), "{msg}");
}

#[test]
fn a_file_named_like_a_segment_that_is_not_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("00000001.seg"), b"hello, not a segment").unwrap();
    let msg = refused(dir.path(), "00000001.seg");
    assert!(msg.contains("named like a segment"), "{msg}");
}

#[test]
fn a_foreign_file_named_checkpoint_is_refused_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("checkpoint"), b"game save, slot 1").unwrap();
    refused(dir.path(), "checkpoint");
}

#[test]
fn a_foreign_file_among_keg_files_of_an_unmarked_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(b"k", b"v", None).unwrap();
    cache.close().unwrap();
    std::fs::remove_file(dir.path().join(marker::FILE_NAME)).unwrap();
    std::fs::write(dir.path().join("LOCK"), b"not empty").unwrap();
    refused(dir.path(), "LOCK");
}

#[test]
fn a_damaged_or_foreign_marker_is_refused_and_a_newer_one_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(marker::FILE_NAME), b"KEG brewing log").unwrap();
    let before = snapshot(dir.path());
    let err = Cache::open(dir.path()).err().unwrap();
    assert!(matches!(&err, Error::NotACache { reason, .. } if reason.contains("not keg's cache marker")), "{err}");
    assert_eq!(snapshot(dir.path()), before);

    std::fs::write(dir.path().join(marker::FILE_NAME), b"\x8bKEGDIR\nformat 2\n").unwrap();
    let err = Cache::open(dir.path()).err().unwrap();
    assert!(matches!(err, Error::UnsupportedVersion { found: 2, supported: 1, .. }), "{err:?}");
}

#[test]
fn a_file_is_not_a_cache_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.bin");
    std::fs::write(&file, b"bytes").unwrap();
    let err = Cache::open(&file).err().unwrap();
    assert!(matches!(&err, Error::NotACache { reason, .. } if reason.contains("not a directory")), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"bytes");
}

#[test]
fn a_new_or_empty_directory_gets_the_marker_before_anything_else() {
    let (missing, empty) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for path in [missing.path().join("new/nested"), empty.path().to_owned()] {
        let cache = Cache::open(&path).unwrap();
        assert_eq!(std::fs::read(path.join(marker::FILE_NAME)).unwrap(), b"\x8bKEGDIR\nformat 1\n");
        cache.set(b"k", b"v", None).unwrap();
        cache.close().unwrap();
        assert_eq!(Cache::open(&path).unwrap().get(b"k").unwrap().unwrap(), b"v");
    }
    // A read-only open of an empty directory finds an empty cache and writes nothing.
    let empty = tempfile::tempdir().unwrap();
    let ro = Cache::builder().open_read_only(empty.path()).unwrap();
    assert!(ro.is_empty());
    drop(ro);
    assert!(snapshot(empty.path()).is_empty());
}

#[test]
fn files_of_others_in_a_marked_cache_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(b"k", b"v", None).unwrap();
    cache.close().unwrap();
    // Names keg's open once took for its own leftovers, and a stranger.
    let theirs = [("report.tmp", &b"half a report"[..]), ("00000001.seg.tmp", b"x"), ("notes.txt", b"mine")];
    for (name, bytes) in theirs {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    // A leftover of keg's own is still removed.
    std::fs::write(dir.path().join("checkpoint.tmp"), b"\x8bKEGCKP\n").unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(b"k2", b"v2", None).unwrap();
    cache.compact().unwrap();
    cache.clear().unwrap();
    cache.close().unwrap();
    for (name, bytes) in theirs {
        assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), bytes, "{name}");
    }
    assert!(!dir.path().join("checkpoint.tmp").exists());
}

#[test]
fn an_older_keg_cache_without_a_marker_is_adopted() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().max_bytes(4 << 20).open(dir.path()).unwrap();
    for i in 0..2000u32 {
        cache.set(format!("key{i}").as_bytes(), &[b'x'; 100], None).unwrap();
    }
    cache.close().unwrap();
    // As a keg from before the marker left it, after a crash mid-write: a
    // checkpoint being replaced, a hint file half written, a segment whose
    // header never made it to disk.
    std::fs::remove_file(dir.path().join(marker::FILE_NAME)).unwrap();
    std::fs::write(dir.path().join("checkpoint.tmp"), b"\x8bKEG").unwrap();
    std::fs::write(dir.path().join("00000001.hint.tmp"), b"").unwrap();
    std::fs::write(dir.path().join("000000ff.seg"), b"").unwrap();
    assert!(dir.path().join("00000001.hint").exists());

    // A read-only open serves it and writes nothing.
    let before = snapshot(dir.path());
    let ro = Cache::builder().open_read_only(dir.path()).unwrap();
    assert_eq!(ro.get(b"key7").unwrap().unwrap(), &[b'x'; 100][..]);
    drop(ro);
    assert_eq!(snapshot(dir.path()), before);

    let cache = Cache::builder().max_bytes(4 << 20).open(dir.path()).unwrap();
    assert_eq!(std::fs::read(dir.path().join(marker::FILE_NAME)).unwrap(), marker::encode());
    assert_eq!(cache.len(), 2000);
    assert_eq!(cache.get(b"key1999").unwrap().unwrap(), &[b'x'; 100][..]);
    cache.close().unwrap();
    for leftover in ["checkpoint.tmp", "00000001.hint.tmp", "000000ff.seg"] {
        assert!(!dir.path().join(leftover).exists(), "{leftover}");
    }
}
