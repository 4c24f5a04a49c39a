//! A cache whose process is killed soon after every open, in a loop, never
//! calling `compact()`, must not pile up segments of dead values: a writable
//! open compacts up to 16 of the deadest segments before it returns, and the
//! background thread runs its first round at once (`maintain::after_open`).
//! Each child here overwrites 200 keys for about four segments' worth of
//! bytes and is killed with SIGKILL as soon as it says so, before the
//! background thread's first tick; the cap is far away, so eviction never
//! runs. Measured in files and bytes, never in time.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::fault_model::{dir_bytes, fast_tempdir};
use keg::Cache;

const SEG: u64 = 64 << 10;
const CAP: u64 = 64 << 20;
const KEYS: u32 = 200;
const VALUE: usize = 1000;
/// Sets per run: about four segments of overwrites.
const SETS: u32 = 256;
const RUNS: u32 = 30;

/// The child: one short run, then waits to be killed.
#[test]
fn child_short_run() {
    let Ok(dir) = std::env::var("KEG_SHORT_RUN_DIR") else { return };
    let run: u32 = std::env::var("KEG_SHORT_RUN").unwrap().parse().unwrap();
    let cache = Cache::builder().max_bytes(CAP).segment_bytes(SEG).open(&dir).unwrap();
    for i in 0..SETS {
        let k = (run * SETS + i) % KEYS;
        let mut v = format!("k{k}:r{run}:").into_bytes();
        v.resize(VALUE, b'v');
        cache.set(format!("k{k}").as_bytes(), &v, None).unwrap();
    }
    println!("short run done");
    std::thread::sleep(std::time::Duration::from_secs(600));
}

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".seg"))
        .count()
}

#[test]
fn killed_short_runs_do_not_pile_up_dead_segments() {
    let dir = fast_tempdir();
    let mut most_files = 0;
    for run in 0..RUNS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_loop_short_runs::child_short_run", "--nocapture", "--test-threads=1"])
            .env("KEG_SHORT_RUN_DIR", dir.path())
            .env("KEG_SHORT_RUN", run.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let said_done = out.lines().map_while(|l| l.ok()).any(|l| l.contains("short run done"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(said_done, "run {run}: the child failed before its writes were done");
        most_files = most_files.max(segment_files(dir.path()));
    }
    // The last run's values are all there (the killed runs lost nothing acknowledged).
    let cache =
        Cache::builder().max_bytes(CAP).segment_bytes(SEG).background_maintenance(false).open(dir.path()).unwrap();
    let last = RUNS - 1;
    for i in 0..SETS.min(KEYS) {
        let k = (last * SETS + i) % KEYS;
        let v = cache.get(format!("k{k}").as_bytes()).unwrap().expect("an acknowledged value");
        assert!(v.starts_with(format!("k{k}:r{last}:").as_bytes()));
    }
    let s = cache.stats();
    let on_disk = dir_bytes(dir.path());
    eprintln!(
        "after {RUNS} killed runs ({} bytes written each): {on_disk} bytes on disk in {} segment files (at most {most_files} after a run) for {} live bytes; {s:?}",
        u64::from(SETS) * VALUE as u64,
        segment_files(dir.path()),
        s.live_bytes
    );
    // Without the compaction at open: 30 runs of 4 segments left 120
    // segments, 30 times the live data.
    assert!(on_disk <= 4 * s.live_bytes + 8 * SEG, "{on_disk} bytes on disk for {} live bytes", s.live_bytes);
    assert!(most_files <= 24, "{most_files} segment files after a run");
}
