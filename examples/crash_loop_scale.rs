//! The full-scale crash loop of issue 15: a process that sets keys
//! continuously is killed (SIGKILL) within about 1.5 s of each open, in a
//! loop, and never calls `compact()`; 8 GiB cap, 4 MiB segments. Prints,
//! after chosen rounds, the directory's disk bytes and files, the live keys
//! and how long the open took, so that growth with the rounds shows.
//!
//! ```text
//! cargo run --release --example crash_loop_scale -- [--rounds 200] [--keys 20000]
//!     [--rate 20000] [--kill-ms-max 1500] [--cap-gib 8] [--segment-mib 4] [--dir PATH]
//! ```
//!
//! The program re-executes itself as the child (`--child DIR ROUND`). Each
//! child opens the cache (timed: `Cache::open` returning, then the first
//! `get`), prints the time and `len()`, then sets random keys of
//! `0..--keys` (values of 100–1,200 bytes that carry their key and round)
//! at `--rate` sets a second until killed; the parent kills it a
//! pseudo-random 100..=`--kill-ms-max` ms after it printed. After the last
//! round the parent opens the cache once more, checks every value against
//! its key, and reports the same figures. Without `--dir` the cache lives
//! in a fresh directory under the system's temporary directory, removed at
//! the end. (The program uses nothing but keg and std, so the same file
//! builds against an older keg to compare: see BENCHMARKS.md §10.)

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/xorshift.rs"]
mod xorshift;
use xorshift::Rng;

struct Opts {
    rounds: u64,
    keys: u64,
    rate: u64,
    kill_ms_max: u64,
    cap: u64,
    segment: u64,
}

fn opts(args: &[String]) -> Opts {
    let num = |name: &str, default: u64| {
        args.iter().position(|a| a == name).map_or(default, |i| args[i + 1].parse().expect("a number"))
    };
    Opts {
        rounds: num("--rounds", 200),
        keys: num("--keys", 20_000),
        rate: num("--rate", 20_000),
        kill_ms_max: num("--kill-ms-max", 1500).max(100),
        cap: num("--cap-gib", 8) << 30,
        segment: num("--segment-mib", 4) << 20,
    }
}

fn open(dir: &Path, o: &Opts) -> keg::Cache {
    keg::Cache::builder().max_bytes(o.cap).segment_bytes(o.segment).open(dir).expect("open")
}

fn key(k: u64) -> String {
    format!("user:{k:012}")
}

/// Open (timed to the first get), report, then set keys until killed.
fn child(dir: &Path, round: u64, o: &Opts) {
    let started = Instant::now();
    let cache = open(dir, o);
    let _ = cache.get(key(0).as_bytes()).expect("get");
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    println!("opened {open_ms:.2} {}", cache.len());
    std::io::stdout().flush().unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (round + 1));
    let started = Instant::now();
    let mut sets = 0u64;
    loop {
        for _ in 0..100 {
            let k = rng.next() % o.keys;
            let key = key(k);
            let mut v = format!("{key}:r{round}:").into_bytes();
            v.resize(100 + (rng.next() % 1101) as usize, b'v');
            cache.set(key.as_bytes(), &v, None).expect("set");
            sets += 1;
        }
        // Hold the rate: sleep until the time the sets so far should take.
        let due = Duration::from_secs_f64(sets as f64 / o.rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// Allocated bytes and number of files in `dir`.
fn disk(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let md = e.metadata().unwrap();
        if md.is_file() {
            bytes += md.blocks() * 512;
            files += 1;
        }
    }
    (bytes, files)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = opts(&args);
    if args.first().map(String::as_str) == Some("--child") {
        return child(Path::new(&args[1]), args[2].parse().unwrap(), &o);
    }
    let given = args.iter().position(|a| a == "--dir").map(|i| Path::new(&args[i + 1]).to_path_buf());
    let dir = given.clone().unwrap_or_else(|| {
        let d = std::env::temp_dir().join(format!("keg-crash-loop-scale-{}", std::process::id()));
        std::fs::create_dir(&d).expect("a fresh directory");
        d
    });
    println!(
        "{} rounds, {} keys, {} sets/s, killed 100..={} ms after each open, cap {} GiB, segments {} MiB",
        o.rounds,
        o.keys,
        o.rate,
        o.kill_ms_max,
        o.cap >> 30,
        o.segment >> 20
    );
    println!("round  disk MiB before open  files  open ms (to first get): this round, median and max of the rounds since the last row  live keys");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let report = |r: u64| r <= 1 || r % 25 == 0 || r == o.rounds;
    let mut window: Vec<f64> = Vec::new();
    for round in 1..=o.rounds {
        let (bytes, files) = disk(&dir);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .arg("--child")
            .arg(&dir)
            .arg(round.to_string())
            .args(&args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let mut w = line.split_whitespace();
        assert_eq!(w.next(), Some("opened"), "round {round}: the child failed: {line:?}");
        let open_ms: f64 = w.next().unwrap().parse().unwrap();
        let live: u64 = w.next().unwrap().parse().unwrap();
        std::thread::sleep(Duration::from_millis(100 + rng.next() % (o.kill_ms_max - 99)));
        child.kill().unwrap();
        child.wait().unwrap();
        window.push(open_ms);
        if report(round) {
            window.sort_by(f64::total_cmp);
            let (median, max) = (window[window.len() / 2], window[window.len() - 1]);
            let mib = bytes as f64 / (1 << 20) as f64;
            println!("{round:>5}  {mib:>20.1}  {files:>5}  {open_ms:>8.1} {median:>8.1} {max:>8.1}  {live:>9}");
            window.clear();
        }
    }
    // The final open, in this process: every value is its key's.
    let (bytes, files) = disk(&dir);
    let started = Instant::now();
    let cache = open(&dir, &o);
    let _ = cache.get(key(0).as_bytes()).unwrap();
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut live = 0;
    for k in 0..o.keys {
        let key = key(k);
        if let Some(v) = cache.get(key.as_bytes()).unwrap() {
            assert!(v.starts_with(format!("{key}:r").as_bytes()), "{key}: a wrong value");
            live += 1;
        }
    }
    println!(
        "final  {:>20.1}  {files:>5}  {open_ms:>8.1}                    {live:>9}   (every value checked; live bytes {})",
        bytes as f64 / (1 << 20) as f64,
        cache.stats().live_bytes
    );
    cache.close().unwrap();
    if given.is_none() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
