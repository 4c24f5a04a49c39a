//! keg against sled, redb, fjall, cacache and foyer, side by side (issue 17).
//!
//! ```text
//! cd bench/peers && cargo run --release -- [--quick | --full] [--runs N] [--reopen-10m]
//! ```
//!
//! The driver re-executes itself once per store and workload (`--child`), so
//! each store runs alone in a fresh process and its memory figures are its
//! own. Each child prints `R name value` lines; the driver prints one
//! Markdown table per workload. See BENCHMARKS.md §9.

mod stores;
mod work;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use work::Sizes;

const WORKLOADS: [&str; 8] =
    ["machine", "fill100", "fill4k", "reads", "synced", "reopen-clean", "reopen-crash", "space"];

/// Longest a child may run before it is killed and reported as timed out.
const CHILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Marker file that says a bench directory was made by this program (the
/// harness deletes only what is under a directory holding it).
const MARKER: &str = ".keg-peers-bench";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match (args.first().map(String::as_str), args.get(1)) {
        (Some("--child"), _) => child(&args[1..]),
        (Some("--disturb"), Some(p)) => work::disturb(Path::new(p)),
        _ => driver(&args),
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

struct Opts {
    sizes: Sizes,
    runs: usize,
    stores: Vec<String>,
    workloads: Vec<String>,
    dir: PathBuf,
}

const USAGE: &str = "usage: keg-peers [--quick | --full] [--reopen-10m] [--runs N] [--n N] [--n-4k N]
       [--reopen-n N] [--space-n N] [--secs S] [--stores keg,sled,...] [--workloads fill100,...]
       [--dir PATH]
  --quick       (default) 200 k entries, 25 k of 4 KiB, 1 M for reopens, 1.5 s per timed case
  --full        1 M entries, 100 k of 4 KiB, 1 M for reopens, 3 s per timed case
  --reopen-10m  reopens with 10 M entries
  workloads: machine fill100 fill4k reads synced reopen-clean reopen-crash space
  stores: keg sled redb fjall cacache foyer (and keg-set: keg loading with single sets, on request)";

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        sizes: Sizes { n: 200_000, n_4k: 25_000, n_reopen: 1_000_000, n_space: 200_000, secs: 1.5 },
        runs: 1,
        stores: stores::STORES.iter().map(|s| s.to_string()).collect(),
        workloads: WORKLOADS.iter().map(|s| s.to_string()).collect(),
        dir: PathBuf::from("target/peers-data"),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value\n{USAGE}"));
        let num = |s: String| s.replace('_', "").parse::<u64>().map_err(|e| format!("{a}: {e}"));
        match a.as_str() {
            "--quick" => {}
            "--full" => {
                o.sizes.n = 1_000_000;
                o.sizes.n_4k = 100_000;
                o.sizes.secs = 3.0;
            }
            "--reopen-10m" => o.sizes.n_reopen = 10_000_000,
            "--runs" => o.runs = num(val()?)? as usize,
            "--n" => o.sizes.n = num(val()?)?,
            "--n-4k" => o.sizes.n_4k = num(val()?)?,
            "--reopen-n" => o.sizes.n_reopen = num(val()?)?,
            "--space-n" => o.sizes.n_space = num(val()?)?,
            "--secs" => o.sizes.secs = val()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--stores" => o.stores = val()?.split(',').map(str::to_string).collect(),
            "--workloads" => o.workloads = val()?.split(',').map(str::to_string).collect(),
            "--dir" => o.dir = PathBuf::from(val()?),
            "-h" | "--help" => return Err(USAGE.into()),
            _ => return Err(format!("unknown argument {a}\n{USAGE}")),
        }
    }
    for s in &o.stores {
        if !stores::STORES.contains(&s.as_str()) && !stores::EXTRA.contains(&s.as_str()) {
            return Err(format!("unknown store {s}\n{USAGE}"));
        }
    }
    for w in &o.workloads {
        if !WORKLOADS.contains(&w.as_str()) {
            return Err(format!("unknown workload {w}\n{USAGE}"));
        }
    }
    if o.runs == 0 || o.sizes.n < 1000 || o.sizes.n_4k == 0 || o.sizes.n_reopen < 2 || o.sizes.n_space == 0 {
        return Err("--runs, --n-4k, --reopen-n and --space-n must be positive, --n at least 1000".into());
    }
    if !(o.sizes.secs > 0.0 && o.sizes.secs <= 600.0) {
        return Err("--secs must be in (0, 600]".into());
    }
    Ok(o)
}

fn sizes_args(s: &Sizes) -> Vec<String> {
    vec![s.n.to_string(), s.n_4k.to_string(), s.n_reopen.to_string(), s.n_space.to_string(), s.secs.to_string()]
}

// ------------------------------------------------------------ child side

/// Most entries cacache is given in any workload: it writes two files per
/// set (content and index bucket), so 1 M entries would take tens of
/// minutes and millions of files on a 2-core machine. Its tables say so.
const CACACHE_MAX_ENTRIES: u64 = 5_000;

fn cap(store: &str, mut sz: Sizes) -> Sizes {
    if store == "cacache" {
        for n in [&mut sz.n, &mut sz.n_4k, &mut sz.n_reopen, &mut sz.n_space] {
            *n = (*n).min(CACACHE_MAX_ENTRIES);
        }
    }
    sz
}

fn child(a: &[String]) -> Result<(), String> {
    let [store, workload, dir, n, n_4k, n_reopen, n_space, secs] = a else {
        return Err("bad --child arguments".into());
    };
    let p = |s: &String| s.parse::<u64>().map_err(|e| e.to_string());
    let sz = Sizes {
        n: p(n)?,
        n_4k: p(n_4k)?,
        n_reopen: p(n_reopen)?,
        n_space: p(n_space)?,
        secs: secs.parse().map_err(|e: std::num::ParseFloatError| e.to_string())?,
    };
    let sz = cap(store, sz);
    let dir = Path::new(dir);
    let entries = match workload.as_str() {
        "fill100" | "reads" => sz.n,
        "fill4k" => sz.n_4k,
        "build-clean" | "build-crash" | "reopen" => sz.n_reopen,
        "space" => sz.n_space,
        _ => 0,
    };
    if entries > 0 {
        work::emit("entries", entries as f64);
    }
    match workload.as_str() {
        "machine" => work::machine(dir, &sz),
        "fill100" => work::fill(store, dir, sz.n, 100),
        "fill4k" => work::fill(store, dir, sz.n_4k, 4096),
        "reads" => work::reads(store, dir, &sz),
        "synced" => work::synced(store, dir, &sz),
        "build-clean" => work::reopen_build(store, dir, sz.n_reopen, false),
        "build-crash" => work::reopen_build(store, dir, sz.n_reopen, true),
        "reopen" => work::reopen_open(store, dir, sz.n_reopen),
        "space" => work::space(store, dir, sz.n_space),
        w => Err(format!("unknown child workload {w}")),
    }
}

// ------------------------------------------------------------ driver side

/// Figures of one (workload, store) over the runs.
#[derive(Default)]
struct Cell {
    vals: BTreeMap<String, Vec<f64>>,
    errors: Vec<String>,
}

type Results = BTreeMap<(String, String), Cell>;

struct Outcome {
    figures: Vec<(String, f64)>,
    error: Option<String>,
}

fn spawn(store: &str, workload: &str, dir: &Path, o: &Opts) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = vec!["--child".to_string(), store.into(), workload.into(), dir.display().to_string()];
    args.extend(sizes_args(&o.sizes));
    Command::new(exe).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| e.to_string())
}

/// Waits for a child (killing it after CHILD_TIMEOUT) and collects its figures.
fn finish(mut c: Child, mut out: Box<dyn BufRead + Send>) -> Outcome {
    let mut err = c.stderr.take();
    let eh = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let oh = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t = Instant::now();
    let status = loop {
        match c.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if t.elapsed() > CHILD_TIMEOUT => {
                let _ = c.kill();
                let _ = c.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let stdout = oh.join().unwrap_or_default();
    let stderr = eh.join().unwrap_or_default();
    let figures = stdout
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("R ")?.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect();
    let error = match status {
        None => Some(format!("timed out after {} s", CHILD_TIMEOUT.as_secs())),
        Some(st) if st.success() => None,
        Some(st) => {
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            Some(format!("{st}: {}", last.trim().trim_start_matches("error: ")))
        }
    };
    Outcome { figures, error }
}

fn run_child(store: &str, workload: &str, dir: &Path, o: &Opts) -> Outcome {
    match spawn(store, workload, dir, o) {
        Ok(mut c) => {
            let out = BufReader::new(c.stdout.take().expect("piped"));
            finish(c, Box::new(out))
        }
        Err(e) => Outcome { figures: vec![], error: Some(e) },
    }
}

/// Builds a store in a child that is killed with SIGKILL once every write
/// is durable.
fn build_and_kill(store: &str, dir: &Path, o: &Opts) -> Option<String> {
    let mut c = match spawn(store, "build-crash", dir, o) {
        Ok(c) => c,
        Err(e) => return Some(e),
    };
    let mut out = BufReader::new(c.stdout.take().expect("piped"));
    let mut line = String::new();
    loop {
        line.clear();
        match out.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.trim() == "READY" => {
                // SAFETY: kill(2) on our own child's pid.
                unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGKILL) };
                let _ = c.wait();
                return None;
            }
            Ok(_) => {}
        }
    }
    finish(c, Box::new(out)).error.or(Some("exited before READY".into()))
}

fn prepare_base(base: &Path) -> Result<(), String> {
    let e = |x: std::io::Error| format!("{}: {x}", base.display());
    if base.exists() && !base.join(MARKER).exists() && std::fs::read_dir(base).map_err(e)?.next().is_some() {
        return Err(format!("{} is not empty and was not made by keg-peers; choose another --dir", base.display()));
    }
    std::fs::create_dir_all(base).map_err(e)?;
    std::fs::write(base.join(MARKER), b"made by keg-peers; everything here is deleted by it\n").map_err(e)
}

fn clean(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(work::disturb_path(dir));
}

fn driver(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    prepare_base(&o.dir)?;
    let mut res = Results::new();
    let started = Instant::now();
    for run in 1..=o.runs {
        for w in &o.workloads {
            let stores: Vec<&str> =
                if w == "machine" { vec!["machine"] } else { o.stores.iter().map(String::as_str).collect() };
            for s in stores {
                let dir = o.dir.join(format!("{s}-{w}"));
                clean(&dir);
                eprintln!("[{:>5.0} s] run {run}/{}: {w} {s}", started.elapsed().as_secs_f64(), o.runs);
                let outs = match w.as_str() {
                    "reopen-clean" => {
                        let b = run_child(s, "build-clean", &dir, &o);
                        match b.error {
                            Some(e) => vec![Outcome { figures: vec![], error: Some(format!("build: {e}")) }],
                            None => vec![run_child(s, "reopen", &dir, &o)],
                        }
                    }
                    "reopen-crash" => match build_and_kill(s, &dir, &o) {
                        Some(e) => vec![Outcome { figures: vec![], error: Some(format!("build: {e}")) }],
                        None => vec![run_child(s, "reopen", &dir, &o)],
                    },
                    _ => vec![run_child(s, w, &dir, &o)],
                };
                clean(&dir);
                let cell = res.entry((w.clone(), s.to_string())).or_default();
                for out in outs {
                    for (k, v) in out.figures {
                        cell.vals.entry(k).or_default().push(v);
                    }
                    if let Some(e) = out.error {
                        eprintln!("    {s} {w}: {e}");
                        cell.errors.push(e);
                    }
                }
            }
        }
    }
    print_tables(&o, &res);
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

// ------------------------------------------------------------ tables

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.abs() >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.0} k", v / 1e3)
    } else if v.abs() >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn get<'a>(res: &'a Results, w: &str, s: &str) -> Option<&'a Cell> {
    res.get(&(w.to_string(), s.to_string()))
}

fn med(res: &Results, w: &str, s: &str, m: &str) -> f64 {
    get(res, w, s).and_then(|c| c.vals.get(m)).map_or(f64::NAN, |v| median(v))
}

/// "median [min–max]" when there is more than one run.
fn show(res: &Results, w: &str, s: &str, m: &str) -> String {
    let Some(v) = get(res, w, s).and_then(|c| c.vals.get(m)) else { return "–".into() };
    let md = median(v);
    if v.len() < 2 {
        return num(md);
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{} [{}–{}]", num(md), num(lo), num(hi))
}

/// "ok", or what went wrong; a store with wrong values or lost writes is
/// not ranked.
fn status(res: &Results, w: &str, s: &str) -> (String, bool) {
    let Some(c) = get(res, w, s) else { return ("not run".into(), false) };
    if let Some(e) = c.errors.first() {
        if let Some(i) = e.find("not offered") {
            return (e[i..].to_string(), false);
        }
        return (format!("failed: {e}"), false);
    }
    let worst = |m: &str| c.vals.get(m).map_or(0.0, |v| v.iter().copied().fold(0.0, f64::max));
    let (wrong, stale, miss) = (worst("wrong"), worst("stale"), worst("missing"));
    let mut st = Vec::new();
    if wrong > 0.0 {
        st.push(format!("**WRONG VALUES: {wrong:.0}**"));
    }
    if stale > 0.0 {
        st.push(format!("**STALE VALUES (an overwritten version): {stale:.0}**"));
    }
    if miss > 0.0 {
        st.push(format!("**lost writes: {} missing**", num(miss)));
    }
    let ranked = st.is_empty();
    if ranked {
        st.push("ok".into());
    }
    // A store run at fewer entries than keg (cacache) is shown, not ranked.
    let n = |s: &str| get(res, w, s).and_then(|c| c.vals.get("entries")).map_or(f64::NAN, |v| median(v));
    if n(s) != n("keg") && s != "keg" && n(s).is_finite() {
        st.push(format!("at {} entries, not ranked", num(n(s))));
        return (st.join("; "), false);
    }
    (st.join("; "), ranked)
}

struct Col {
    metric: &'static str,
    label: &'static str,
    /// Whether a keg ÷ peer ratio is shown for this column.
    ratio: bool,
}

const fn col(metric: &'static str, label: &'static str, ratio: bool) -> Col {
    Col { metric, label, ratio }
}

fn table(o: &Opts, res: &Results, w: &str, title: &str, cols: &[Col], extra_rows: &[(String, Vec<String>)]) {
    if !o.workloads.iter().any(|x| x == w) {
        return;
    }
    println!("\n### {title}\n");
    let mut head = "| store |".to_string();
    let mut rule = "|---|".to_string();
    for c in cols {
        head += &format!(" {} |", c.label);
        rule += "---:|";
    }
    println!("{head} status |\n{rule}---|");
    let (_, keg_ok) = status(res, w, "keg");
    for s in &o.stores {
        let (st, ok) = status(res, w, s);
        let mut row = format!("| {s} |");
        for c in cols {
            let mut cell = show(res, w, s, c.metric);
            if c.ratio && s != "keg" && ok && keg_ok {
                let r = med(res, w, "keg", c.metric) / med(res, w, s, c.metric);
                if r.is_finite() {
                    cell += &format!(" ({r:.2}x)");
                }
            }
            row += &format!(" {cell} |");
        }
        println!("{row} {st} |");
    }
    for (name, cells) in extra_rows {
        println!("| {name} | {} | limit |", cells.join(" | "));
    }
}

fn print_tables(o: &Opts, res: &Results) {
    let sz = &o.sizes;
    println!("## keg-peers results\n");
    println!(
        "Sizes: {} entries (fill 100 B, gets, mixed), {} of 4 KiB, {} for reopens, {} keys x 3 writes for space; {} s per timed case; {} run(s), figures are medians [min–max].",
        sz.n, sz.n_4k, sz.n_reopen, sz.n_space, sz.secs, o.runs
    );
    println!("Keys are 24 B. `(r x)` after a figure is keg ÷ that store, from the medians of this run; for rates a ratio above 1 favours keg, for times and bytes one below 1 does. A store that returned a wrong value or lost writes is not ranked.");
    let m = |metric: &str| med(res, "machine", "machine", metric);
    if o.workloads.iter().any(|w| w == "machine") {
        println!("\n### Machine limits (same run)\n");
        println!("| what | figure |\n|---|---:|");
        println!(
            "| sequential write + fsync, 256 MiB in 1 MiB writes | {} MiB/s |",
            show(res, "machine", "machine", "seq_write_fsync_mib")
        );
        println!(
            "| one 124 B append + fdatasync, p50 | {} µs ({} /s) |",
            show(res, "machine", "machine", "append_fdatasync_p50_us"),
            show(res, "machine", "machine", "append_fdatasync_per_s")
        );
        println!("| std HashMap fill, {} entries | {} /s |", sz.n, show(res, "machine", "machine", "fill_ops"));
    }
    let hm = |metric: &str| show(res, "machine", "machine", metric);
    let fill_cols = [
        col("fill_ops", "sets/s", true),
        col("fill_mib", "MiB/s", true),
        col("rss_anon_per_entry", "RssAnon B/entry", true),
        col("rss_file_per_entry", "RssFile B/entry", false),
        col("disk_per_live", "disk B / live B", true),
    ];
    table(
        o,
        res,
        "fill100",
        &format!("Fill, {} x 100 B, one thread, then sync (time includes the sync)", sz.n),
        &fill_cols,
        &[("std HashMap".into(), vec![hm("fill_ops"), "–".into(), "–".into(), "–".into(), "–".into()])],
    );
    let seq = m("seq_write_fsync_mib");
    let mut fill4 = vec![];
    if seq.is_finite() {
        fill4.push(("disk: seq write + fsync".into(), vec!["–".into(), num(seq), "–".into(), "–".into(), "–".into()]));
    }
    table(o, res, "fill4k", &format!("Fill, {} x 4 KiB, one thread, then sync", sz.n_4k), &fill_cols, &fill4);
    if o.workloads.iter().any(|w| w == "fill4k") && seq.is_finite() {
        for s in &o.stores {
            let f = med(res, "fill4k", s, "fill_mib");
            if f.is_finite() {
                println!("\n{s}: {:.0}% of the sequential write + fsync bandwidth", 100.0 * f / seq);
            }
        }
    }
    let get_cols = [
        col("get_uniform_1t", "uniform 1 thr", true),
        col("get_uniform_2t", "uniform 2 thr", true),
        col("get_zipf_1t", "Zipf 1 thr", true),
        col("get_zipf_2t", "Zipf 2 thr", true),
    ];
    table(
        o,
        res,
        "reads",
        &format!("Gets/s, {} entries of 100 B, every value checked", sz.n),
        &get_cols,
        &[(
            "std HashMap".into(),
            vec![hm("get_uniform_1t"), hm("get_uniform_2t"), hm("get_zipf_1t"), hm("get_zipf_2t")],
        )],
    );
    if o.workloads.iter().any(|w| w == "reads") {
        println!("\n2 threads ÷ 1 thread:");
        for s in o.stores.iter().map(String::as_str).chain(["machine"]) {
            let w = if s == "machine" { "machine" } else { "reads" };
            let u = med(res, w, s, "get_uniform_2t") / med(res, w, s, "get_uniform_1t");
            let z = med(res, w, s, "get_zipf_2t") / med(res, w, s, "get_zipf_1t");
            let name = if s == "machine" { "std HashMap" } else { s };
            println!("- {name}: uniform {u:.2}x, Zipf {z:.2}x");
        }
    }
    table(
        o,
        res,
        "reads",
        "Mixed 90 % get / 10 % set, Zipfian, 2 threads (after the gets above; latency per op)",
        &[
            col("mixed_ops", "ops/s", true),
            col("mixed_p50_us", "p50 µs", true),
            col("mixed_p99_us", "p99 µs", true),
            col("mixed_p999_us", "p99.9 µs", true),
        ],
        &[],
    );
    let mut fs = [f64::NAN; 9];
    fs[0] = m("append_fdatasync_per_s");
    fs[2] = m("append_fdatasync_p50_us");
    table(
        o,
        res,
        "synced",
        "Synced sets/s, 100 B, each set durable (fsynced) before it returns; every acknowledged set checked after a reopen",
        &[
            col("synced_1t", "1 thr /s", true),
            col("synced_2t", "2 thr /s", true),
            col("synced_1t_p50_us", "1 thr p50 µs", true),
            col("synced_2t_p50_us", "2 thr p50 µs", true),
            col("synced_1t_p99_us", "1 thr p99 µs", true),
            col("synced_2t_p99_us", "2 thr p99 µs", true),
            col("synced_busy_1t", "1 thr /s, disk busy", true),
            col("synced_busy_1t_p50_us", "busy p50 µs", true),
            col("synced_busy_1t_p99_us", "busy p99 µs", true),
        ],
        &[("disk: append + fdatasync".into(), fs.iter().map(|&x| num(x)).collect())],
    );
    if o.workloads.iter().any(|w| w == "synced") {
        println!("\n2 threads ÷ 1 thread, and 1 thread with the disk busy ÷ 1 thread (\"disk busy\": another process writes 1 MiB blocks with an fsync every 8 MiB beside the store):");
        for s in &o.stores {
            let r = med(res, "synced", s, "synced_2t") / med(res, "synced", s, "synced_1t");
            let b = med(res, "synced", s, "synced_busy_1t") / med(res, "synced", s, "synced_1t");
            if r.is_finite() {
                println!("- {s}: {r:.2}x; busy {b:.2}x");
            }
        }
    }
    let reopen_cols = [
        col("reopen_ms", "open → first get, ms", true),
        col("open_anon_per_entry", "RssAnon B/entry once open", true),
        col("open_file_per_entry", "RssFile B/entry", false),
        col("peak_per_entry", "peak RSS (VmHWM) B/entry", true),
    ];
    table(
        o,
        res,
        "reopen-clean",
        &format!("Reopen after a clean close, {} entries of 100 B", sz.n_reopen),
        &reopen_cols,
        &[],
    );
    table(
        o,
        res,
        "reopen-crash",
        &format!("Reopen after kill -9 (every write made durable first), {} entries of 100 B", sz.n_reopen),
        &reopen_cols,
        &[],
    );
    table(
        o,
        res,
        "space",
        &format!("Disk bytes per live byte, {} keys each written 3 times (100 B values)", sz.n_space),
        &[
            col("space_open", "open, after flush", true),
            col("space_open_idle", "open, 2 s idle after flush", true),
            col("space_closed", "after clean close", true),
            col("space_closed_apparent", "after close, apparent size", true),
        ],
        &[],
    );
    println!("\n### How each store is configured\n");
    println!("| store | configuration | promise kept |\n|---|---|---|");
    for (s, cfg, promise) in stores::CONFIGS {
        if o.stores.iter().any(|x| x == s) {
            println!("| {s} | {cfg} | {promise} |");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res_with(store: &str, figures: &[(&str, f64)]) -> Results {
        let mut res = Results::new();
        for s in ["keg", store] {
            let cell = res.entry(("space".into(), s.into())).or_default();
            cell.vals.insert("entries".into(), vec![100.0]);
            cell.vals.insert("space_open".into(), vec![2.0]);
        }
        let cell = res.get_mut(&("space".to_string(), store.to_string())).expect("inserted");
        for (k, v) in figures {
            cell.vals.insert(k.to_string(), vec![*v]);
        }
        res
    }

    #[test]
    fn a_store_with_wrong_stale_or_lost_values_is_not_ranked() {
        assert_eq!(status(&res_with("sled", &[("wrong", 0.0)]), "space", "sled"), ("ok".into(), true));
        for (m, word) in [("wrong", "WRONG"), ("stale", "STALE"), ("missing", "lost")] {
            let (st, ranked) = status(&res_with("sled", &[(m, 1.0)]), "space", "sled");
            assert!(!ranked, "{m}");
            assert!(st.contains(word), "{st}");
        }
        let (st, ranked) = status(&res_with("cacache", &[("entries", 5.0)]), "space", "cacache");
        assert!(!ranked && st.contains("not ranked"), "{st}");
    }

    #[test]
    fn median_of_odd_and_even_runs_ignores_nan() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[f64::NAN, 5.0]), 5.0);
        assert!(median(&[]).is_nan());
    }
}
