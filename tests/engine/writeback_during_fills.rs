//! The disk starts writing during a fill (docs/design.md, "Bounds": the
//! writer starts the write-out of each 4 MiB of the active segment that has
//! reached the OS, so that a later fsync waits only for the tail), seen as
//! the operating system sees it: how many of the segment file's pages in
//! the page cache are still dirty (Linux's `cachestat`), before any fsync.
//! Without it none had been written: the kernel writes back on its own
//! only past its dirty thresholds (gigabytes) or after 30 seconds.

use std::os::unix::io::AsRawFd;
use std::path::Path;

use keg::{Cache, SetOptions};

const PAGE: u64 = 4096;
/// `WRITEBACK_CHUNK` in `src/log/writer.rs`.
const CHUNK: u64 = 4 << 20;

/// `struct cachestat_range` (the kernel reads it).
#[repr(C)]
#[allow(dead_code)]
struct Range {
    off: u64,
    len: u64,
}

/// `struct cachestat` (the kernel fills it; only `nr_dirty` is read).
#[repr(C)]
#[derive(Default)]
#[allow(dead_code)]
struct CacheStat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// Dirty pages of the file at `path` in the page cache, if the kernel can say
/// (`cachestat`, Linux 6.5 and later, x86-64).
fn dirty_pages(path: &Path) -> Option<u64> {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        const SYS_CACHESTAT: libc::c_long = 451;
        let file = std::fs::File::open(path).ok()?;
        let range = Range { off: 0, len: 0 }; // len 0: to the end of the file
        let mut stat = CacheStat::default();
        // SAFETY: the kernel reads `range` and writes `stat`, both live, properly laid-out structs.
        let rc = unsafe {
            libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range as *const Range, &mut stat as *mut CacheStat, 0)
        };
        (rc == 0).then_some(stat.nr_dirty)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        let _ = path;
        None
    }
}

/// Whether `dir` is on a file system whose pages an fsync cleans (not tmpfs,
/// whose pages stay dirty) and the kernel has `cachestat`.
fn measurable_in(dir: &Path) -> bool {
    let path = dir.join("probe");
    std::fs::write(&path, vec![7u8; 64 << 10]).unwrap();
    std::fs::File::open(&path).unwrap().sync_all().unwrap();
    let clean = dirty_pages(&path) == Some(0);
    std::fs::remove_file(&path).unwrap();
    clean
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    segs
}

#[test]
fn a_fill_leaves_at_most_a_chunk_of_dirty_pages_before_any_fsync() {
    let dir = tempfile::tempdir().unwrap();
    if !measurable_in(dir.path()) {
        eprintln!("skipped: cannot count dirty pages in {}", dir.path().display());
        return;
    }
    // Flushed durability, no maintenance thread: nothing here fsyncs.
    // 16 MiB segments (a 1 GiB cap); 12 MiB of single sets fill part of one.
    let cache = Cache::builder().max_bytes(1 << 30).background_maintenance(false).open(dir.path()).unwrap();
    let value = vec![0x5au8; 4096];
    for i in 0..3000u32 {
        cache.set(format!("set:{i:08}").as_bytes(), &value, None).unwrap();
    }
    let segs = segment_files(dir.path());
    assert_eq!(segs.len(), 1, "{segs:?}");
    let dirty = dirty_pages(&segs[0]).unwrap();
    eprintln!("after 12 MiB of single sets: {dirty} dirty pages");
    assert!(dirty * PAGE <= CHUNK + PAGE, "{dirty} pages of the segment still dirty after 12 MiB of sets");
    // The same with batches, into a fresh cache.
    drop(cache);
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::builder().max_bytes(1 << 30).background_maintenance(false).open(dir.path()).unwrap();
    for b in 0..30u32 {
        let batch: Vec<(Vec<u8>, &[u8])> =
            (0..100u32).map(|i| (format!("many:{b:04}:{i:04}").into_bytes(), &value[..])).collect();
        cache.set_many(&batch, &SetOptions::new()).unwrap();
    }
    let segs = segment_files(dir.path());
    let dirty = dirty_pages(&segs[0]).unwrap();
    eprintln!("after 12 MiB of batches: {dirty} dirty pages");
    assert!(dirty * PAGE <= CHUNK + PAGE, "{dirty} pages of the segment still dirty after 12 MiB of batches");
    for i in (0..3000u32).step_by(499) {
        let key = format!("many:{:04}:{:04}", i / 100, i % 100);
        assert_eq!(cache.get(key.as_bytes()).unwrap().unwrap(), &value[..]);
    }
}
