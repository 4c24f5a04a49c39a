//! Warm-up: how fast `set_many` loads a million entries into an empty cache,
//! against a loop of single `set` calls and against the disk's sequential
//! write speed (`dd bs=1M conv=fdatasync` of the same number of bytes, into
//! the same file system), all in one run. BENCHMARKS.md §1b quotes it.
//!
//! ```text
//! cargo run --release --example warmup -- --value-len 100  --entries 1000000 --runs 3
//! cargo run --release --example warmup -- --value-len 4096 --entries 1000000 --runs 3
//! ```
//!
//! Options: `--entries N` (default 1 000 000), `--value-len B` (default
//! 100), `--runs R` (default 3), `--batch-bytes B` (default 4 MiB: a
//! `set_many` call carries as many entries as fit), `--dir PATH` (default
//! `target/warmup` under the current directory; emptied before each case and
//! removed at the end), `--only dd|set_many|set`. With `WARMUP_STATS=1` in
//! the environment each load also prints the bytes it appended and what
//! maintenance rewrote meanwhile.
//!
//! Each run does the three cases in turn (dd, `set_many`, `set`), each into
//! a fresh, empty directory, so that the machine's state drifts across all
//! three alike. A case's time runs from the open of the cache (or the start
//! of `dd`) until everything written is durable: the loads end with
//! `Cache::sync` (one fsync of every segment), as `dd` ends with its
//! `fdatasync`. The cache has the default settings (durability `Flushed`,
//! segment size for its cap) and a cap with room for everything (the program
//! checks that nothing was evicted). Keys are 24 bytes; values are
//! `--value-len` bytes cut from a random pool (a different offset per key),
//! so that no two neighbouring values are alike. Rates are of payload bytes
//! (key + value) per second; `dd` writes the same number of bytes. Each
//! load also prints the CPU time it used (user + system, all threads, the
//! background maintenance thread included), which a busy machine disturbs
//! much less than the wall-clock time.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use keg::{Cache, SetOptions};

struct Opts {
    entries: u64,
    value_len: usize,
    runs: usize,
    batch_bytes: usize,
    dir: PathBuf,
    only: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        entries: 1_000_000,
        value_len: 100,
        runs: 3,
        batch_bytes: 4 << 20,
        dir: PathBuf::from("target/warmup"),
        only: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_else(|| panic!("{} needs a value", args[i]));
        match args[i].as_str() {
            "--entries" => o.entries = v.parse().expect("--entries N"),
            "--value-len" => o.value_len = v.parse().expect("--value-len B"),
            "--runs" => o.runs = v.parse().expect("--runs R"),
            "--batch-bytes" => o.batch_bytes = v.parse().expect("--batch-bytes B"),
            "--dir" => o.dir = PathBuf::from(v),
            "--only" => o.only = Some(v),
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

const KEY_LEN: usize = 24;

/// Key `i`: exactly 24 bytes, `warm:` and 19 decimal digits (no
/// formatting machinery: it would show in a profile of the load).
fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = *b"warm:0000000000000000000";
    let mut n = i;
    for d in k[5..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// Random bytes (xorshift) from which values are cut.
fn pool(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len + 4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn value(pool: &[u8], i: u64, len: usize) -> &[u8] {
    let at = (i.wrapping_mul(2_654_435_761) % 4096) as usize;
    &pool[at..at + len]
}

fn fresh(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
}

fn open(dir: &Path, o: &Opts) -> Cache {
    let payload = o.entries * (KEY_LEN + o.value_len) as u64;
    // Room for everything: record headers, segment slack, then some.
    let cap = (payload + o.entries * 64) * 2 + (1 << 30);
    Cache::builder().max_bytes(cap).open(dir).unwrap()
}

fn finish(cache: Cache, o: &Opts, started: Instant) -> f64 {
    cache.sync().unwrap();
    let secs = started.elapsed().as_secs_f64();
    let s = cache.stats();
    assert_eq!(s.evictions, 0, "the cap must hold everything");
    if std::env::var_os("WARMUP_STATS").is_some() {
        println!(
            "  bytes appended {} (payload {}), rewritten {}, reinsertions {}, promotions {}, segments reclaimed {}",
            s.bytes_appended,
            o.entries * (KEY_LEN + o.value_len) as u64,
            s.bytes_rewritten,
            s.reinsertions,
            s.promotions,
            s.segments_reclaimed
        );
    }
    assert_eq!(cache.len() as u64, o.entries);
    cache.close().unwrap();
    secs
}

fn load_set_many(dir: &Path, o: &Opts, pool: &[u8]) -> f64 {
    let per_batch = (o.batch_bytes / (KEY_LEN + o.value_len)).max(1) as u64;
    let opts = SetOptions::new();
    let mut batch: Vec<([u8; KEY_LEN], &[u8])> = Vec::with_capacity(per_batch as usize);
    let started = Instant::now();
    let cache = open(dir, o);
    let mut i = 0;
    while i < o.entries {
        batch.clear();
        let end = (i + per_batch).min(o.entries);
        batch.extend((i..end).map(|j| (key(j), value(pool, j, o.value_len))));
        cache.set_many(&batch, &opts).unwrap();
        i = end;
    }
    finish(cache, o, started)
}

fn load_set(dir: &Path, o: &Opts, pool: &[u8]) -> f64 {
    let started = Instant::now();
    let cache = open(dir, o);
    for i in 0..o.entries {
        cache.set(&key(i), value(pool, i, o.value_len), None).unwrap();
    }
    finish(cache, o, started)
}

fn dd(dir: &Path, o: &Opts) -> f64 {
    let payload = o.entries * (KEY_LEN + o.value_len) as u64;
    let mib = payload.div_ceil(1 << 20);
    let started = Instant::now();
    let status = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", dir.join("dd.bin").display()))
        .args(["bs=1M", &format!("count={mib}"), "conv=fdatasync", "status=none"])
        .status()
        .expect("run dd");
    assert!(status.success(), "dd failed");
    // (dd wrote whole MiB: scale to the payload.)
    started.elapsed().as_secs_f64() * payload as f64 / (mib << 20) as f64
}

/// CPU time (user + system, every thread) this process has used, in seconds.
fn cpu_s() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let o = opts();
    let pool = pool(o.value_len);
    let payload = o.entries * (KEY_LEN + o.value_len) as u64;
    let mib = payload as f64 / (1 << 20) as f64;
    println!(
        "{} entries, {KEY_LEN} B keys, {} B values: {mib:.0} MiB of payload; dir {}",
        o.entries,
        o.value_len,
        o.dir.display()
    );
    let cases = ["dd", "set_many", "set"];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for run in 0..o.runs {
        for (c, case) in cases.iter().enumerate() {
            if o.only.as_deref().is_some_and(|only| only != *case) {
                continue;
            }
            fresh(&o.dir);
            let cpu = cpu_s();
            let secs = match *case {
                "dd" => dd(&o.dir, &o),
                "set_many" => load_set_many(&o.dir, &o, &pool),
                _ => load_set(&o.dir, &o, &pool),
            };
            // (dd's CPU time is another process's, not counted.)
            let cpu = cpu_s() - cpu;
            println!(
                "run {run} {case:<8} {secs:7.3} s  {:8.1} MiB/s  {:10.0} entries/s  cpu {cpu:6.3} s",
                mib / secs,
                o.entries as f64 / secs
            );
            times[c].push(secs);
        }
    }
    let _ = std::fs::remove_dir_all(&o.dir);
    println!("case      median s   min s   max s   median MiB/s (range)            median entries/s");
    let mut medians = Vec::new();
    for (c, case) in cases.iter().enumerate() {
        if times[c].is_empty() {
            medians.push(None);
            continue;
        }
        let t = &mut times[c];
        let m = median(t);
        let (lo, hi) = (t[0], t[t.len() - 1]);
        println!(
            "{case:<8}  {m:8.3}  {lo:6.3}  {hi:6.3}   {:8.1} ({:.1} - {:.1})   {:10.0}",
            mib / m,
            mib / hi,
            mib / lo,
            o.entries as f64 / m
        );
        medians.push(Some(m));
    }
    if let (Some(dd), Some(many), Some(one)) = (medians[0], medians[1], medians[2]) {
        println!("set_many: {:.2}x the dd rate; {:.2}x the rate of single sets", dd / many, one / many);
    }
}
