//! Measurements that criterion cannot make: index memory per entry, reopen
//! time (after a clean close and after `kill -9`), and the cost of the
//! per-read checksum. Linux only (it reads `/proc/self/status`).
//!
//! ```text
//! cargo run --release --example measure -- ram    --entries 10000000 --runs 3
//! cargo run --release --example measure -- reopen --entries 10000000 --runs 5 --mode clean
//! cargo run --release --example measure -- reopen --entries 10000000 --runs 5 --mode kill9
//! cargo run --release --example measure -- crc
//! cargo run --release --example measure -- hot get --value-len 100 --ops 200000   # for callgrind
//! ```
//!
//! `ram` and `reopen` make every run in a fresh child process (this program
//! re-executes itself with an internal subcommand), so allocator state and
//! page tables left over from one run never leak into the next; the parent
//! prints each run and then the median, minimum and maximum. Their options:
//!
//! * `--entries N` (default 1 000 000), `--runs R` (default 3),
//! * `--value-len B` (default 16), `--dir PATH` (default a fresh directory
//!   under `target/measure` in the current directory, removed at the end).
//!
//! Keys are always 40 bytes (`bench:key:` and 30 decimal digits), as the
//! issue asks for the memory figure. `ram` and `reopen` open caches with an
//! 8 GiB cap (nothing is evicted; the programs check `evictions == 0`), the
//! default segment size (64 MiB at that cap) and the default durability
//! (`Flushed`); `hot` uses the settings of `benches/ops.rs` (1 GiB cap),
//! `crc` a 2 GiB cap.
//!
//! # `ram`
//! Inserts `--entries` keys into an empty cache and reads `/proc/self/status`
//! before (after `open`) and after. "After" is taken twice: right after the
//! last `set` returns (`anon_raw`), and once `run_maintenance` has returned
//! (it waits for the background round in progress, which may be holding a
//! segment's hint entries in memory, and finishes pending hint files): the
//! steady state, reported as `anon`. It reports, per entry: growth of
//! `RssAnon` (anonymous memory: the index, allocator slack, everything the
//! process allocated), growth of `VmRSS` (which also counts the segment files'
//! page-cache pages this process has touched through its maps; the background
//! thread reads every sealed segment to write its hint file), growth of the
//! peak `VmHWM`, and the index's own figure `stats().index_bytes / entries`.
//! Then it calls glibc's `malloc_trim(0)` and reports `RssAnon` again
//! (`anon_trimmed`), to show how much of the difference is free memory the
//! allocator kept.
//!
//! # `reopen`
//! `--mode clean`: fills a cache once in a child process that closes it
//! cleanly (hint files and checkpoint written), then times `open` in a fresh
//! child `--runs` times. `--mode kill9`: for every run, a child fills an empty
//! cache, reports that every `set` has returned, and is killed with SIGKILL;
//! a fresh child then times `open`. `--no-child-maintenance` turns off the
//! filling child's background thread, so that no hint file exists and open
//! must scan every segment (the worst case). `--churn` makes the filling
//! child delete every key and then set it again after the fill, so that each
//! key has three records with the same hash (a value, a tombstone, a value):
//! the case where open must tell records of one key apart. Before each timed open the
//! directory's files are fsynced, so that writeback of the fill does not land
//! inside the timing; with `--cold` their pages are also dropped from the
//! page cache (`posix_fadvise(DONTNEED)`, which affects only these files), so
//! the open reads from the device. Each timed open prints its wall-clock time
//! (`open_s`), the CPU time the process spent in it (`open_cpu_s`, less
//! disturbed by other work on a shared machine), what recovery did (segments
//! scanned, bytes truncated), the MiB the process read from the device, and
//! checks that every entry is back with its value (1000 keys spot-checked).
//!
//! # `crc`
//! What verifying the checksum on every read costs. Times `crc32fast::hash`
//! over a whole record with a 40-byte key and a 100-byte or 4 KiB value: on
//! one record in cache (`crc hot`), and on records picked at random from
//! 100 000 laid out like a segment (`crc rand`: the memory fetch a `get`
//! pays), next to copying the value out at the same access pattern (what a
//! caller that uses the value pays anyway). Then, on a cache holding those
//! 100 000 keys, single-threaded `get` (index, header and key check, checksum,
//! value handle) against `contains` (index, header and key check only),
//! interleaved run by run: `get - contains` bounds what the checksum adds.
//!
//! # `hot get|set|contains`
//! A single-threaded loop of `--ops` gets, sets or contains on random keys
//! out of `--keys` (default 100 000, pre-populated; the same settings as
//! `benches/ops.rs`), inside functions named `hot_get_loop`, `hot_set_loop`,
//! `hot_contains_loop`, for profiling with
//! `valgrind --tool=callgrind --toggle-collect='*hot_*_loop*'` or `perf`.
//! It prints the wall-clock time per operation and the process's CPU time
//! per operation (user + system, the background thread included), which a
//! busy shared machine disturbs much less than wall-clock time.
//!
//! `hot get --threads T` runs T threads of `--ops` gets each (keys drawn
//! before the timing starts), `--zipf` draws them from YCSB's Zipfian
//! generator (theta 0.99) instead of uniformly: the throughput and the CPU
//! time per get at 1 and 2 threads show whether gets scale with cores.

use std::collections::BTreeMap;
use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keg::Cache;

const KEY_LEN: usize = 40;
const KEY_PREFIX: &[u8; 10] = b"bench:key:";

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    if let Err(e) = run() {
        eprintln!("measure: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        return Err("usage: measure ram|reopen|crc|hot [options]; see the source's header".into());
    }
    let cmd = args.remove(0);
    let opts = Opts::parse(args)?;
    match cmd.as_str() {
        "ram" => ram(&opts),
        "reopen" => reopen(&opts),
        "crc" => crc(&opts),
        "hot" => hot(&opts),
        // Internal subcommands, run in child processes.
        "child-ram" => child_ram(&opts),
        "child-fill" => child_fill(&opts),
        "child-open" => child_open(&opts),
        other => Err(format!("unknown subcommand {other:?}").into()),
    }
}

/// Parsed `--name value` options and bare words.
struct Opts {
    named: BTreeMap<String, String>,
    words: Vec<String>,
    raw: Vec<String>,
}

impl Opts {
    fn parse(args: Vec<String>) -> Res<Opts> {
        let mut named = BTreeMap::new();
        let mut words = Vec::new();
        let mut it = args.iter().cloned().peekable();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                let flag = matches!(name, "cold" | "no-child-maintenance" | "hold" | "zipf" | "churn");
                let value = if flag { "1".to_string() } else { it.next().ok_or(format!("--{name} needs a value"))? };
                named.insert(name.to_string(), value);
            } else {
                words.push(a);
            }
        }
        Ok(Opts { named, words, raw: args })
    }

    fn num(&self, name: &str, default: u64) -> Res<u64> {
        match self.named.get(name) {
            None => Ok(default),
            Some(v) => Ok(v.replace('_', "").parse().map_err(|_| format!("--{name}: not a number: {v}"))?),
        }
    }

    fn flag(&self, name: &str) -> bool {
        self.named.contains_key(name)
    }

    fn str(&self, name: &str, default: &str) -> String {
        self.named.get(name).cloned().unwrap_or_else(|| default.to_string())
    }
}

/// The `i`-th key: exactly 40 bytes, built without allocating.
fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [b'0'; KEY_LEN];
    k[..KEY_PREFIX.len()].copy_from_slice(KEY_PREFIX);
    let mut n = i;
    let mut pos = KEY_LEN;
    while n > 0 {
        pos -= 1;
        k[pos] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// The value stored under key `i`: `len` bytes derived from `i`, so reads can be checked.
fn fill_value(buf: &mut [u8], i: u64) {
    let pattern = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes();
    for (b, p) in buf.iter_mut().zip(pattern.iter().cycle()) {
        *b = *p;
    }
}

fn builder(opts: &Opts) -> keg::Builder {
    Cache::builder().max_bytes(8 << 30).background_maintenance(!opts.flag("no-child-maintenance"))
}

/// Fields of `/proc/self/status` in bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: u64,
    anon: u64,
    file: u64,
    hwm: u64,
}

fn mem() -> Res<Mem> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let mut m = Mem::default();
    for line in status.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(kb)) = (parts.next(), parts.next()) else { continue };
        let bytes = kb.parse::<u64>().unwrap_or(0) * 1024;
        match name {
            "VmRSS:" => m.rss = bytes,
            "RssAnon:" => m.anon = bytes,
            "RssFile:" => m.file = bytes,
            "VmHWM:" => m.hwm = bytes,
            _ => {}
        }
    }
    Ok(m)
}

/// Runs this program again with `args`; returns the lines it printed that start with `RESULT `.
fn child(args: &[String]) -> Res<Vec<BTreeMap<String, String>>> {
    let out = Command::new(std::env::current_exe()?).args(args).stderr(Stdio::inherit()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().filter(|l| !l.starts_with("RESULT ")) {
        println!("  | {line}");
    }
    if !out.status.success() {
        return Err(format!("child {args:?} failed: {}", out.status).into());
    }
    Ok(text.lines().filter_map(|l| l.strip_prefix("RESULT ")).map(parse_result).collect())
}

fn parse_result(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect()
}

fn field(r: &BTreeMap<String, String>, name: &str) -> f64 {
    r.get(name).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

/// Prints the median, minimum and maximum of `name` over `runs`.
fn summarize(runs: &[BTreeMap<String, String>], name: &str, unit: &str) {
    let mut v: Vec<f64> = runs.iter().map(|r| field(r, name)).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return;
    }
    let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    println!("{name:>24}: median {median:.3} {unit}  (min {:.3}, max {:.3}, {} runs)", v[0], v[v.len() - 1], v.len());
}

/// The data directory: `--dir`, or a fresh one under `target/measure`.
fn data_dir(opts: &Opts, what: &str) -> Res<PathBuf> {
    let dir = match opts.named.get("dir") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from("target/measure").join(format!("{what}-{}", std::process::id())),
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(dir.parent().unwrap_or(Path::new(".")))?;
    Ok(dir)
}

fn common_args(opts: &Opts, cmd: &str, dir: &Path) -> Vec<String> {
    let mut args = vec![cmd.to_string(), "--dir".into(), dir.display().to_string()];
    for name in ["entries", "value-len"] {
        if let Some(v) = opts.named.get(name) {
            args.extend([format!("--{name}"), v.clone()]);
        }
    }
    for flag in ["no-child-maintenance", "churn"] {
        if opts.flag(flag) {
            args.push(format!("--{flag}"));
        }
    }
    args
}

// ---------------------------------------------------------------- ram

fn ram(opts: &Opts) -> Res<()> {
    let entries = opts.num("entries", 1_000_000)?;
    let runs = opts.num("runs", 3)?;
    println!("ram: {entries} entries, 40-byte keys, {}-byte values, {runs} runs", opts.num("value-len", 16)?);
    let mut results = Vec::new();
    for run in 0..runs {
        let dir = data_dir(opts, "ram")?;
        let r = child(&common_args(opts, "child-ram", &dir))?;
        std::fs::remove_dir_all(&dir)?;
        println!("run {run}: {:?}", r.first());
        results.extend(r);
    }
    println!("per entry:");
    for name in [
        "anon_per_entry",
        "anon_raw_per_entry",
        "anon_trimmed_per_entry",
        "rss_per_entry",
        "file_per_entry",
        "hwm_per_entry",
        "index_per_entry",
    ] {
        summarize(&results, name, "B");
    }
    summarize(&results, "index_load", "");
    summarize(&results, "fill_s", "s");
    Ok(())
}

fn child_ram(opts: &Opts) -> Res<()> {
    let entries = opts.num("entries", 1_000_000)?;
    let value_len = opts.num("value-len", 16)? as usize;
    let dir = PathBuf::from(opts.str("dir", ""));
    let cache = builder(opts).open(&dir)?;
    let before = mem()?;
    let started = Instant::now();
    let mut value = vec![0u8; value_len];
    for i in 0..entries {
        fill_value(&mut value, i);
        cache.set(&key(i), &value, None)?;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let raw = mem()?;
    // Wait for the background round in progress (it may be writing a hint
    // file, which holds the segment's entries in memory for a moment) and do
    // any work still pending, so that what remains is the steady state.
    cache.run_maintenance()?;
    let after = mem()?;
    let s = cache.stats();
    if s.evictions != 0 || s.entries != entries {
        return Err(format!("expected {entries} entries and no evictions, got {s:?}").into());
    }
    let trimmed = trim_and_measure()?;
    let per = |b: u64, a: u64| (b as f64 - a as f64) / entries as f64;
    println!(
        "RESULT entries={entries} anon_per_entry={:.2} anon_raw_per_entry={:.2} anon_trimmed_per_entry={:.2} \
         rss_per_entry={:.2} file_per_entry={:.2} hwm_per_entry={:.2} index_per_entry={:.2} index_load={:.3} \
         fill_s={fill_s:.2} anon_before_mib={:.1} ghost_bytes={}",
        per(after.anon, before.anon),
        per(raw.anon, before.anon),
        per(trimmed.anon, before.anon),
        per(after.rss, before.rss),
        per(after.file, before.file),
        per(after.hwm, before.hwm),
        s.index_bytes as f64 / entries as f64,
        entries as f64 * 20.0 / s.index_bytes as f64,
        before.anon as f64 / (1 << 20) as f64,
        s.ghost_bytes,
    );
    drop(cache);
    Ok(())
}

/// Returns freed heap memory to the OS (glibc only) and measures again.
fn trim_and_measure() -> Res<Mem> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
    mem()
}

// ---------------------------------------------------------------- reopen

fn reopen(opts: &Opts) -> Res<()> {
    let entries = opts.num("entries", 1_000_000)?;
    let runs = opts.num("runs", 3)?;
    let mode = opts.str("mode", "clean");
    let cold = opts.flag("cold");
    println!(
        "reopen: {entries} entries, mode {mode}{}{}, {runs} runs",
        if cold { ", cold page cache" } else { ", warm page cache" },
        if opts.flag("no-child-maintenance") { ", filling child without background maintenance" } else { "" }
    );
    let dir = data_dir(opts, "reopen")?;
    let mut results = Vec::new();
    match mode.as_str() {
        "clean" => {
            let fill = child(&common_args(opts, "child-fill", &dir))?;
            println!("filled: {:?}", fill.first());
            for run in 0..runs {
                prepare_files(&dir, cold)?;
                let r = child(&common_args(opts, "child-open", &dir))?;
                println!("run {run}: {:?}", r.first());
                results.extend(r);
            }
        }
        "kill9" => {
            for run in 0..runs {
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)?;
                }
                fill_and_kill(opts, &dir)?;
                prepare_files(&dir, cold)?;
                let r = child(&common_args(opts, "child-open", &dir))?;
                println!("run {run}: {:?}", r.first());
                results.extend(r);
            }
        }
        other => return Err(format!("--mode must be clean or kill9, not {other:?}").into()),
    }
    let disk: u64 = std::fs::read_dir(&dir)?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    println!("directory: {} MiB", disk >> 20);
    std::fs::remove_dir_all(&dir)?;
    summarize(&results, "open_s", "s");
    summarize(&results, "open_cpu_s", "s");
    summarize(&results, "read_mib", "MiB");
    summarize(&results, "scanned_segments", "");
    summarize(&results, "segments", "");
    summarize(&results, "truncated_bytes", "B");
    summarize(&results, "open_hwm_per_entry", "B");
    summarize(&results, "anon_per_entry", "B");
    Ok(())
}

/// A child fills the cache and reports; it is killed with SIGKILL as soon as it has.
fn fill_and_kill(opts: &Opts, dir: &Path) -> Res<()> {
    let mut args = common_args(opts, "child-fill", dir);
    args.push("--hold".into());
    let mut proc = Command::new(std::env::current_exe()?).args(&args).stdout(Stdio::piped()).spawn()?;
    let stdout = proc.stdout.take().ok_or("no stdout")?;
    let mut report = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if let Some(r) = line.strip_prefix("RESULT ") {
            report = r.to_string();
            break;
        }
    }
    // std's Child::kill sends SIGKILL on Unix.
    proc.kill()?;
    let status = proc.wait()?;
    if report.is_empty() {
        return Err(format!("the filling child exited before reporting: {status}").into());
    }
    println!("filled and killed ({status}): {report}");
    Ok(())
}

/// Fsyncs every file of the cache directory, and with `cold` drops their pages from the page cache.
fn prepare_files(dir: &Path, cold: bool) -> Res<()> {
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        let f = File::open(&path)?;
        f.sync_all()?;
        if cold {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid open descriptor; the call only drops clean cached pages.
            let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
            if rc != 0 {
                return Err(format!("posix_fadvise {}: error {rc}", path.display()).into());
            }
        }
    }
    Ok(())
}

/// Fills an empty cache with `--entries` entries; closes it cleanly, or with
/// `--hold` reports and then waits to be killed.
fn child_fill(opts: &Opts) -> Res<()> {
    let entries = opts.num("entries", 1_000_000)?;
    let value_len = opts.num("value-len", 16)? as usize;
    let dir = PathBuf::from(opts.str("dir", ""));
    let cache = builder(opts).open(&dir)?;
    let started = Instant::now();
    let mut value = vec![0u8; value_len];
    for i in 0..entries {
        fill_value(&mut value, i);
        cache.set(&key(i), &value, None)?;
    }
    if opts.flag("churn") {
        // Every key deleted, then set again (the same value): each key has
        // three records, all with the same hash (issue 14's reopen case).
        for i in 0..entries {
            cache.delete(&key(i))?;
        }
        for i in 0..entries {
            fill_value(&mut value, i);
            cache.set(&key(i), &value, None)?;
        }
    }
    let fill_s = started.elapsed().as_secs_f64();
    let s = cache.stats();
    if s.evictions != 0 {
        return Err(format!("the fill evicted {} entries; raise max_bytes", s.evictions).into());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "RESULT fill_s={fill_s:.2} segments={} disk_mib={}", s.segments, s.disk_bytes >> 20)?;
    out.flush()?;
    if opts.flag("hold") {
        // Every set has returned: in the default durability mode all of them
        // are in the OS now. Wait for the SIGKILL.
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    let started = Instant::now();
    cache.close()?;
    writeln!(out, "clean close took {:.2} s", started.elapsed().as_secs_f64())?;
    Ok(())
}

/// Times `open`, reports what recovery did, checks the entries, closes.
fn child_open(opts: &Opts) -> Res<()> {
    let entries = opts.num("entries", 1_000_000)?;
    let value_len = opts.num("value-len", 16)? as usize;
    let dir = PathBuf::from(opts.str("dir", ""));
    let before = mem()?;
    let io_before = read_bytes()?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let cache = builder(opts).open(&dir)?;
    let open_s = started.elapsed().as_secs_f64();
    let open_cpu_s = cpu_seconds() - cpu_before;
    let read_mib = (read_bytes()? - io_before) as f64 / (1 << 20) as f64;
    let after = mem()?;
    let s = cache.stats();
    if s.entries != entries {
        return Err(format!("reopened {} entries, expected {entries}: {s:?}", s.entries).into());
    }
    // Spot-check values (not timed).
    let mut expect = vec![0u8; value_len];
    for i in (0..entries).step_by((entries / 1000).max(1) as usize) {
        fill_value(&mut expect, i);
        let got = cache.get(&key(i))?.ok_or_else(|| format!("key {i} missing after reopen"))?;
        if *got != *expect {
            return Err(format!("key {i} has a wrong value after reopen").into());
        }
    }
    let per = |b: u64, a: u64| (b as f64 - a as f64) / entries as f64;
    println!(
        "RESULT open_s={open_s:.3} open_cpu_s={open_cpu_s:.3} read_mib={read_mib:.1} entries={} segments={} scanned_segments={} truncated_bytes={} void_records={} \
         dropped_segments={} open_hwm_per_entry={:.2} anon_per_entry={:.2} index_per_entry={:.2}",
        s.entries,
        s.segments,
        s.recovery_scanned_segments,
        s.recovery_truncated_bytes,
        s.recovery_void_records,
        s.recovery_dropped_segments,
        per(after.hwm, before.hwm),
        per(after.anon, before.anon),
        s.index_bytes as f64 / entries as f64,
    );
    cache.close()?;
    Ok(())
}

/// User plus system CPU time of this process so far (all threads), in seconds.
/// Less disturbed than wall-clock time by other work on a shared machine.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Bytes this process has caused to be read from the storage device (`/proc/self/io`),
/// page faults on mapped files included.
fn read_bytes() -> Res<u64> {
    let io = std::fs::read_to_string("/proc/self/io")?;
    let line = io.lines().find_map(|l| l.strip_prefix("read_bytes:")).ok_or("no read_bytes in /proc/self/io")?;
    Ok(line.trim().parse()?)
}

// ---------------------------------------------------------------- crc

/// Median of `runs` timings of `f` repeated `iters` times, in nanoseconds per call.
fn time_per_call(runs: usize, iters: u64, mut f: impl FnMut(u64)) -> f64 {
    let v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            for i in 0..iters {
                f(i);
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    median(v)
}

fn crc(opts: &Opts) -> Res<()> {
    let runs = opts.num("runs", 11)? as usize;
    let keys = 100_000u64;
    println!("crc: medians of {runs} runs; {keys} keys of 40 bytes, random order, 1 thread; times in ns per call");
    println!(
        "{:>6} {:>7} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "value", "record", "crc hot", "crc GB/s", "crc rand", "copy rnd", "get", "contains"
    );
    for value_len in [100usize, 4096] {
        let record_len = keg::format::record::encoded_len(KEY_LEN, value_len);
        // In cache: the same record over and over.
        let record = vec![0x3cu8; record_len];
        let crc_hot_ns = time_per_call(runs, 2_000_000, |_| {
            // The checksum covers the record from byte 4 on (everything after the crc field).
            black_box(crc32fast::hash(black_box(&record[4..])));
        });
        // Out of cache, as in a get: records picked at random from as many as the cache holds.
        let arena = vec![0x3cu8; record_len * keys as usize];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut pick = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = (rng % keys) as usize * record_len;
            &arena[at..at + record_len]
        };
        let crc_rand_ns = time_per_call(runs, 500_000, |_| {
            black_box(crc32fast::hash(&pick()[4..]));
        });
        // What a caller that copies the value out pays, at the same access pattern.
        let copy_rand_ns = time_per_call(runs, 500_000, |_| {
            black_box(pick()[record_len - value_len..].to_vec());
        });
        drop(arena);

        let value = vec![0x5au8; value_len];
        let dir = data_dir(opts, &format!("crc{value_len}"))?;
        let cache = Cache::builder().max_bytes(2 << 30).open(&dir)?;
        for i in 0..keys {
            cache.set(&key(i), &value, None)?;
        }
        let all: Vec<[u8; KEY_LEN]> = (0..keys).map(key).collect();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next_key = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            &all[(rng % keys) as usize]
        };
        // get (index, header and key check, checksum over the record) against
        // contains (index, header and key check only), interleaved run by run.
        let (mut get, mut contains) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            get.push(time_per_call(1, 300_000, |_| {
                black_box(cache.get(next_key()).expect("get").expect("present").len());
            }));
            contains.push(time_per_call(1, 300_000, |_| {
                assert!(cache.contains(next_key()).expect("contains"));
            }));
        }
        let (get_ns, contains_ns) = (median(get), median(contains));
        cache.close()?;
        std::fs::remove_dir_all(&dir)?;
        println!(
            "{value_len:>6} {record_len:>7} {crc_hot_ns:>8.1} {:>9.2} {crc_rand_ns:>9.1} {copy_rand_ns:>9.1} {get_ns:>9.1} \
             {contains_ns:>9.1}",
            (record_len - 4) as f64 / crc_hot_ns
        );
        println!(
            "RESULT value_len={value_len} crc_hot_ns={crc_hot_ns:.1} crc_rand_ns={crc_rand_ns:.1} \
             copy_rand_ns={copy_rand_ns:.1} get_ns={get_ns:.1} contains_ns={contains_ns:.1} \
             crc_hot_share={:.3} get_minus_contains_share={:.3}",
            crc_hot_ns / get_ns,
            (get_ns - contains_ns) / get_ns
        );
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ---------------------------------------------------------------- hot

fn hot(opts: &Opts) -> Res<()> {
    let what = opts.words.first().map(String::as_str).unwrap_or("get");
    let ops = opts.num("ops", 200_000)?;
    let keys = opts.num("keys", 100_000)?;
    let value = vec![0x77u8; opts.num("value-len", 100)? as usize];
    let dir = data_dir(opts, "hot")?;
    // The same settings as benches/ops.rs.
    let cache = Cache::builder().max_bytes(1 << 30).open(&dir)?;
    let all: Vec<[u8; KEY_LEN]> = (0..keys).map(key).collect();
    for k in &all {
        cache.set(k, &value, None)?;
    }
    let threads = opts.num("threads", 1)? as usize;
    let zipf = opts.flag("zipf");
    if what == "get" && (threads > 1 || zipf) {
        return hot_gets_threaded(cache, &dir, &all, ops, threads, zipf, value.len());
    }
    let cpu = cpu_seconds();
    let t = Instant::now();
    match what {
        "get" => hot_get_loop(&cache, ops, &all),
        "set" => hot_set_loop(&cache, ops, &all, &value),
        "contains" => hot_contains_loop(&cache, ops, &all),
        other => return Err(format!("hot: get, set or contains, not {other:?} ({:?})", opts.raw).into()),
    }
    let wall_ns = t.elapsed().as_nanos() as f64 / ops as f64;
    let cpu_ns = (cpu_seconds() - cpu) * 1e9 / ops as f64;
    println!(
        "{what} {}B: {ops} ops, {wall_ns:.0} ns/op wall clock, {cpu_ns:.0} ns/op CPU (whole process, \
         background thread included)",
        value.len()
    );
    println!("RESULT op={what} value_len={} wall_ns={wall_ns:.0} cpu_ns={cpu_ns:.0}", value.len());
    cache.close()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// `hot get --threads T [--zipf]`: T threads, each doing `ops` gets of keys
/// drawn in advance (uniformly, or from YCSB's scrambled Zipfian generator,
/// theta 0.99, as `bench/peers` does), so that the timed loop is only gets.
/// Reports the throughput and the CPU time per get (user + system of the
/// whole process): cache lines the threads both write show up as CPU time
/// per get that grows with the thread count, even on a busy machine.
fn hot_gets_threaded(
    cache: Cache,
    dir: &Path,
    all: &[[u8; KEY_LEN]],
    ops: u64,
    threads: usize,
    zipf: bool,
    value_len: usize,
) -> Res<()> {
    let n = all.len() as u64;
    let picks: Vec<Vec<u32>> = (0..threads)
        .map(|t| {
            let mut r = 0x2545_f491_4f6c_dd1du64 ^ (t as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let z = Zipf::new(n);
            (0..ops)
                .map(|_| {
                    r = mix(r.wrapping_add(0x9e37_79b9_7f4a_7c15));
                    let i = if zipf { z.sample(r) } else { ((r as u128 * n as u128) >> 64) as u64 };
                    i as u32
                })
                .collect()
        })
        .collect();
    let cpu = cpu_seconds();
    let t = Instant::now();
    std::thread::scope(|s| {
        for p in &picks {
            let cache = &cache;
            s.spawn(move || hot_get_picked_loop(cache, all, p));
        }
    });
    let wall = t.elapsed().as_secs_f64();
    let total = ops * threads as u64;
    let cpu_ns = (cpu_seconds() - cpu) * 1e9 / total as f64;
    let dist = if zipf { "zipf" } else { "uniform" };
    println!(
        "get {value_len}B {dist} x{threads} threads: {total} gets, {:.0} gets/s wall clock, {cpu_ns:.0} ns/get CPU \
         (whole process)",
        total as f64 / wall
    );
    println!(
        "RESULT op=get dist={dist} threads={threads} value_len={value_len} per_s={:.0} cpu_ns={cpu_ns:.0}",
        total as f64 / wall
    );
    cache.close()?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[inline(never)]
fn hot_get_picked_loop(cache: &Cache, all: &[[u8; KEY_LEN]], picks: &[u32]) {
    for &i in picks {
        let v = cache.get(&all[i as usize]).expect("get").expect("present");
        black_box(v.len());
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// YCSB's scrambled Zipfian generator (theta 0.99) over `0..n`, as in `bench/peers`.
struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    fn new(n: u64) -> Zipf {
        let theta = 0.99;
        let zeta = |m: u64| (1..=m).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipf { n, theta, alpha, zetan, eta }
    }

    fn sample(&self, r: u64) -> u64 {
        let u = (r >> 11) as f64 / (1u64 << 53) as f64;
        let uz = u * self.zetan;
        let rank = if uz < 1.0 {
            0
        } else if uz < 1.0 + 0.5f64.powf(self.theta) {
            1
        } else {
            ((self.n as f64) * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64
        };
        mix(rank.min(self.n - 1)) % self.n
    }
}

/// The next key, picked uniformly at random.
#[inline]
fn pick<'a>(rng: &mut u64, all: &'a [[u8; KEY_LEN]]) -> &'a [u8; KEY_LEN] {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    &all[(*rng % all.len() as u64) as usize]
}

#[inline(never)]
fn hot_get_loop(cache: &Cache, ops: u64, all: &[[u8; KEY_LEN]]) {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..ops {
        let v = cache.get(pick(&mut rng, all)).expect("get").expect("present");
        black_box(v.len());
    }
}

#[inline(never)]
fn hot_contains_loop(cache: &Cache, ops: u64, all: &[[u8; KEY_LEN]]) {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..ops {
        assert!(cache.contains(pick(&mut rng, all)).expect("contains"));
    }
}

#[inline(never)]
fn hot_set_loop(cache: &Cache, ops: u64, all: &[[u8; KEY_LEN]], value: &[u8]) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..ops {
        cache.set(pick(&mut rng, all), value, None).expect("set");
    }
}
