//! One writer per directory: a second open fails at once, from this process
//! or another; read-only opens work beside the writer.

use std::process::Command;

use keg::{Cache, Error};

/// When run as a child with KEG_LOCK_CHILD_DIR set, tries to open that directory
/// and exits 0 if it was locked, 1 if it opened, 2 on any other error.
#[test]
fn child_tries_to_open() {
    let Ok(dir) = std::env::var("KEG_LOCK_CHILD_DIR") else { return };
    let code = match Cache::open(&dir) {
        Err(Error::Locked { path }) => {
            assert!(path.ends_with(std::path::Path::new(&dir).file_name().unwrap()));
            0
        }
        Ok(_) => 1,
        Err(e) => {
            eprintln!("{e}");
            2
        }
    };
    let ro = Cache::builder().open_read_only(&dir).map(|c| c.get(b"k").unwrap().is_some());
    std::process::exit(if code == 0 && ro.unwrap_or(false) { 0 } else { code.max(3) });
}

/// Runs [`child_tries_to_open`] in a child process on `dir`; its exit code.
fn child_open(dir: &std::path::Path) -> Option<i32> {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "ownership_lock::child_tries_to_open", "--nocapture", "--test-threads=1"])
        .env("KEG_LOCK_CHILD_DIR", dir)
        .status()
        .unwrap()
        .code()
}

#[test]
fn second_open_in_the_same_process_fails_with_locked_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let first = Cache::open(dir.path()).unwrap();
    let err = Cache::open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::Locked { path } if path == dir.path()), "{err}");
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    drop(first);
    Cache::open(dir.path()).unwrap();
}

#[test]
fn open_from_another_process_fails_while_read_only_opens_work() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(b"k", b"v", None).unwrap();
    assert_eq!(child_open(dir.path()), Some(0), "the child could open a locked cache, or failed otherwise");
    // The lock goes with the process: after close another process can open.
    drop(cache);
    assert_ne!(child_open(dir.path()), Some(0));
}

#[test]
fn adopting_a_cache_without_a_marker_keeps_the_lock() {
    // Telling an old cache's files from others reads them: reading the LOCK
    // file would close a descriptor of it and drop this process's POSIX lock.
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    cache.set(b"k", b"v", None).unwrap();
    cache.close().unwrap();
    std::fs::remove_file(dir.path().join("KEG")).unwrap();
    let cache = Cache::open(dir.path()).unwrap();
    assert!(dir.path().join("KEG").exists());
    assert_eq!(child_open(dir.path()), Some(0), "the child could open a locked cache, or failed otherwise");
    drop(cache);
}

#[test]
fn read_only_open_sees_a_live_writer_and_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().segment_bytes(64 << 10).max_bytes(64 << 20).open(dir.path()).unwrap();
    for i in 0..500 {
        cache.set(format!("k{i}").as_bytes(), &[i as u8; 300], None).unwrap();
    }
    // The writer's own background thread writes the sealed segments' hint
    // files when it gets to them: let it finish first, so that the listings
    // compare only what the read-only open did. (Without this the test
    // failed now and then, with the hints written between the listings.)
    cache.run_maintenance().unwrap();
    let before: Vec<_> = listing(dir.path());
    let ro = Cache::builder().open_read_only(dir.path()).unwrap();
    assert_eq!(ro.len(), 500);
    assert_eq!(ro.get(b"k499").unwrap().unwrap(), vec![243u8; 300]);
    drop(ro);
    assert_eq!(before, listing(dir.path()), "a read-only open changed the directory");
    cache.set(b"after", b"x", None).unwrap();
}

fn listing(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), e.metadata().unwrap().len())
        })
        .collect();
    v.sort();
    v
}
