//! Synced sets (`Durability::Synced`: every set is fsynced before it returns),
//! next to the disk's own floor measured in the same run: one small append +
//! `fdatasync`, and one small overwrite of already-written space +
//! `fdatasync`. Linux or any Unix.
//!
//! ```text
//! cargo run --release --example synced -- --threads 1 --secs 3 --runs 3
//! cargo run --release --example synced -- --threads 2 --secs 3 --runs 3
//! cargo run --release --example synced -- --threads 1 --busy      # another process writes beside it
//! ```
//!
//! Each run opens a fresh cache (1 GiB cap, other settings default) in
//! `--dir` (default `target/synced-bench`), and `--threads` threads each set
//! their own keys (24 B) with 100 B values for `--secs` seconds. It prints,
//! per run and as medians: sets per second, the p50 and p99 latency of a
//! set, and `sync_rounds` per set (1.0: every set paid its own fsync; 0.5
//! with 2 threads: group commit shared each fsync between two sets). Then
//! it reopens the cache and checks every acknowledged set.
//!
//! `--busy` starts a second process (this program, `disturb`) that writes
//! 1 MiB blocks with an fsync every 8 MiB to a file beside the cache for the
//! whole run, as the peers harness does.
//!
//! For syscalls per set: `strace -f -c -o out.txt target/release/examples/synced --runs 1`
//! (the disk-floor loop makes 600 writes and 600 fdatasyncs of its own).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keg::{Cache, Durability};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Opts {
    threads: usize,
    secs: f64,
    runs: usize,
    busy: bool,
    dir: PathBuf,
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("disturb") {
        return disturb(Path::new(&args[1]));
    }
    let mut o = Opts { threads: 1, secs: 3.0, runs: 3, busy: false, dir: PathBuf::from("target/synced-bench") };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--threads" => o.threads = val()?.parse()?,
            "--secs" => o.secs = val()?.parse()?,
            "--runs" => o.runs = val()?.parse()?,
            "--dir" => o.dir = PathBuf::from(val()?),
            "--busy" => o.busy = true,
            _ => return Err(format!("unknown argument {a}; see the doc comment of examples/synced.rs").into()),
        }
    }
    if o.dir.exists() {
        return Err(format!("{} exists; give a --dir that does not", o.dir.display()).into());
    }
    std::fs::create_dir_all(&o.dir)?;
    let mut rows = Vec::new();
    for run in 0..o.runs {
        let floor = disk_floor(&o.dir)?;
        let mut other = if o.busy { Some(spawn_disturber(&o.dir)?) } else { None };
        let r = one_run(&o);
        if let Some(c) = other.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(o.dir.join("disturb"));
        let r = r?;
        println!(
            "run {run}: {:.0} sets/s, p50 {:.0} µs, p99 {:.0} µs, {:.3} sync rounds per set; disk: append+fdatasync p50 {:.0} µs, overwrite+fdatasync p50 {:.0} µs",
            r[0], r[1], r[2], r[3], floor[0], floor[1]
        );
        rows.push([r[0], r[1], r[2], r[3], floor[0], floor[1]]);
    }
    let names =
        ["sets/s", "p50 µs", "p99 µs", "sync rounds/set", "append+fdatasync p50 µs", "overwrite+fdatasync p50 µs"];
    println!("threads {}{}, {} runs: median [min–max]", o.threads, if o.busy { ", disk busy" } else { "" }, o.runs);
    for (i, name) in names.iter().enumerate() {
        let mut v: Vec<f64> = rows.iter().map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        println!("  {name}: {:.3} [{:.3}–{:.3}]", v[v.len() / 2], v[0], v[v.len() - 1]);
    }
    std::fs::remove_dir_all(&o.dir)?;
    Ok(())
}

fn key(t: usize, i: u64) -> Vec<u8> {
    format!("k{t}:{i:020}").into_bytes()
}

fn value(t: usize, i: u64) -> Vec<u8> {
    let mut v = format!("{t}:{i}:").into_bytes();
    v.resize(100, b'.');
    v
}

/// One timed run on a fresh cache: [sets/s, p50 µs, p99 µs, sync rounds per set].
fn one_run(o: &Opts) -> Res<[f64; 4]> {
    let dir = o.dir.join("cache");
    let open = || Cache::builder().max_bytes(1 << 30).durability(Durability::Synced).open(&dir);
    let cache = Arc::new(open()?);
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..o.threads).map(|_| AtomicU64::new(0)).collect());
    let rounds0 = cache.stats().sync_rounds;
    let t0 = Instant::now();
    let handles: Vec<_> = (0..o.threads)
        .map(|t| {
            let (cache, stop, counts) = (cache.clone(), stop.clone(), counts.clone());
            std::thread::spawn(move || -> Result<Vec<u32>, String> {
                let mut lats = Vec::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    cache.set(&key(t, i), &value(t, i), None).map_err(|e| e.to_string())?;
                    lats.push(start.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                    i += 1;
                    counts[t].store(i, Ordering::Relaxed);
                }
                Ok(lats)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(o.secs));
    stop.store(true, Ordering::Relaxed);
    let mut lats = Vec::new();
    for h in handles {
        lats.extend(h.join().map_err(|_| "a writer panicked")??);
    }
    let secs = t0.elapsed().as_secs_f64();
    let rounds = cache.stats().sync_rounds - rounds0;
    lats.sort_unstable();
    let pct = |p: f64| lats.get(((lats.len() as f64 * p) as usize).min(lats.len().saturating_sub(1))).copied();
    let n = lats.len() as f64;
    let row = [n / secs, pct(0.5).unwrap_or(0) as f64 / 1e3, pct(0.99).unwrap_or(0) as f64 / 1e3, rounds as f64 / n];
    drop(Arc::into_inner(cache).ok_or("cache still shared")?);
    // Every acknowledged set is there after a reopen.
    let cache = open()?;
    for (t, c) in counts.iter().enumerate() {
        for i in 0..c.load(Ordering::Relaxed) {
            if cache.get(&key(t, i))?.as_deref() != Some(&value(t, i)[..]) {
                return Err(format!("acknowledged set {t}:{i} is missing or wrong after a reopen").into());
            }
        }
    }
    drop(cache);
    std::fs::remove_dir_all(&dir)?;
    Ok(row)
}

/// p50 of 300 appends of 124 B + fdatasync, and of 300 overwrites of 124 B
/// in already-written space + fdatasync, in µs.
fn disk_floor(dir: &Path) -> Res<[f64; 2]> {
    let path = dir.join("floor");
    let mut out = [0.0; 2];
    for (i, overwrite) in [false, true].into_iter().enumerate() {
        let f = std::fs::File::create(&path)?;
        if overwrite {
            f.write_all_at(&vec![0u8; 1 << 20], 0)?;
            f.sync_all()?;
        }
        let rec = [7u8; 124];
        let mut lats = Vec::new();
        for n in 0..300u64 {
            let t = Instant::now();
            f.write_all_at(&rec, n * 124)?;
            f.sync_data()?;
            lats.push(t.elapsed().as_nanos() as u64);
        }
        lats.sort_unstable();
        out[i] = lats[lats.len() / 2] as f64 / 1e3;
    }
    std::fs::remove_file(&path)?;
    Ok(out)
}

fn spawn_disturber(dir: &Path) -> Res<std::process::Child> {
    let mut c = Command::new(std::env::current_exe()?)
        .args(["disturb", &dir.join("disturb").display().to_string()])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(c.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    Ok(c)
}

/// Writes 1 MiB blocks with an fsync every 8 MiB, over a file kept under
/// 256 MiB, until killed (or after 10 minutes).
fn disturb(path: &Path) -> Res<()> {
    let f = std::fs::File::create(path)?;
    let chunk = vec![0x5au8; 1 << 20];
    println!("started");
    std::io::stdout().flush()?;
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_secs(600) {
        f.write_all_at(&chunk, (n % 256) << 20)?;
        n += 1;
        if n % 8 == 0 {
            f.sync_all()?;
        }
        if n % 256 == 0 {
            f.set_len(0)?;
        }
    }
    Ok(())
}
