//! Replays a cache request trace through the real keg engine and prints its
//! miss ratio beside exact LRU and FIFO computed on the same trace.
//!
//! ```text
//! cargo run --release --example replay -- [TRACE.csv[.gz]] [--sizes 1,5,10] [--segments N] [--synthetic]
//! ```
//!
//! - `TRACE`: lines `key_id,size_bytes,op` (gzip if it ends in `.gz`);
//!   default `../shared/traces/cloudphysics_io.csv.gz`. Every line is a `get`;
//!   on a miss the harness `set`s a value of `size_bytes` (demand fill).
//! - `--sizes`: cache sizes in percent of the trace's unique bytes.
//! - `--segments N`: segment size `max_bytes / N` (default: keg's default, 64).
//! - `--synthetic`: also replay four synthetic traces made here (Zipf 0.8 and
//!   1.0, each alone and mixed with scans of never-reused keys).
//!
//! Accounting: keg's `max_bytes` is set to the capacity, and keg counts
//! everything it puts on disk against it (record headers, keys, hint files,
//! segment headers, free space at segment tails, one segment of eviction
//! headroom). The LRU and FIFO columns charge each object its value plus
//! [`OVERHEAD`] bytes (record header + 8-byte key + hint entry), so they pay
//! the same per-entry cost but none of the segment-level costs.
//!
//! Values are checked on every hit: a value must be as long as its key's size
//! and start with the key, or the harness panics.

#[allow(dead_code)] // shared with the policy simulator; not every helper is used here
mod baselines;
#[allow(dead_code)]
mod trace;

use std::time::Instant;

use baselines::{Fifo, Lru};
use trace::Trace;

/// Per-entry bytes keg stores besides the value: 28-byte record header,
/// 8-byte key, 24-byte hint entry.
const OVERHEAD: u64 = 28 + 8 + 24;

struct Row {
    trace: String,
    pct: f64,
    capacity: u64,
    lru: f64,
    fifo: f64,
    keg: f64,
    keg_bytes: f64,
    writes_per_insert: f64,
    bytes_per_inserted_byte: f64,
    segments: u64,
    seconds: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes = vec![1.0, 5.0, 10.0];
    let mut segments: Option<u64> = None;
    let mut synthetic = false;
    let mut path = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--sizes" => {
                sizes = it.next().expect("--sizes 1,5,10").split(',').map(|s| s.parse().expect("a number")).collect()
            }
            "--segments" => segments = Some(it.next().expect("--segments N").parse().expect("a number")),
            "--synthetic" => synthetic = true,
            "-h" | "--help" => {
                println!("usage: replay [TRACE.csv[.gz]] [--sizes 1,5,10] [--segments N] [--synthetic]");
                return;
            }
            p => path = Some(p.to_owned()),
        }
    }
    let mut traces = Vec::new();
    let default = "../shared/traces/cloudphysics_io.csv.gz";
    match path {
        Some(p) => traces.push(trace::load_csv(&p, &p).unwrap_or_else(|e| panic!("cannot read {p}: {e}"))),
        None if std::path::Path::new(default).exists() => {
            traces.push(trace::load_csv(default, "cloudphysics").expect("read the default trace"))
        }
        None if !synthetic => {
            eprintln!("no trace given and {default} does not exist; pass a trace path or --synthetic");
            std::process::exit(2);
        }
        None => {}
    }
    if synthetic {
        traces.push(trace::zipf("zipf0.8", 1_000_000, 100_000, 0.8, None, 8));
        traces.push(trace::zipf("zipf1.0", 1_000_000, 100_000, 1.0, None, 10));
        traces.push(trace::zipf("zipf1.0+scan", 1_000_000, 100_000, 1.0, Some((40_000, 10_000)), 11));
        traces.push(trace::zipf("zipf0.8+scan", 1_000_000, 100_000, 0.8, Some((40_000, 10_000)), 12));
    }
    println!(
        "| trace | size | capacity | LRU | FIFO | keg | keg − LRU | keg byte miss | writes/insert | bytes written/inserted | segments |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for t in &traces {
        for &pct in &sizes {
            let row = replay(t, pct, segments);
            println!(
                "| {} | {}% | {} | {:.4} | {:.4} | **{:.4}** | {:+.4} | {:.4} | {:.3} | {:.3} | {} |",
                row.trace,
                row.pct,
                row.capacity,
                row.lru,
                row.fifo,
                row.keg,
                row.keg - row.lru,
                row.keg_bytes,
                row.writes_per_insert,
                row.bytes_per_inserted_byte,
                row.segments,
            );
            eprintln!("  ({} at {}% took {:.1}s)", row.trace, row.pct, row.seconds);
        }
    }
}

fn replay(t: &Trace, pct: f64, segments: Option<u64>) -> Row {
    let capacity = (t.unique_bytes as f64 * pct / 100.0) as u64;
    let mut lru = Lru::new(capacity, OVERHEAD);
    let mut fifo = Fifo::new(capacity, OVERHEAD);
    for r in &t.reqs {
        lru.get(r.key, r.size as u64);
        fifo.get(r.key, r.size as u64);
    }

    let started = Instant::now();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let max_value = t.reqs.iter().map(|r| r.size).max().unwrap_or(1) as usize;
    let mut builder = keg::Cache::builder().max_bytes(capacity).max_value_len(max_value).background_maintenance(false);
    if let Some(n) = segments {
        builder = builder.segment_bytes((capacity / n).max(keg::MIN_SEGMENT_BYTES) & !4095);
    }
    let cache = builder.open(dir.path()).unwrap_or_else(|e| panic!("open a {capacity}-byte cache: {e}"));
    let (mut misses, mut missed_bytes, mut requested_bytes, mut inserted_bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut value = Vec::new();
    for (i, r) in t.reqs.iter().enumerate() {
        let key = r.key.to_le_bytes();
        requested_bytes += r.size as u64;
        match cache.get(&key).expect("get") {
            Some(v) => {
                assert!(
                    v.len() == r.size as usize && v.starts_with(&key[..v.len().min(8)]),
                    "wrong value for key {}",
                    r.key
                );
            }
            None => {
                misses += 1;
                missed_bytes += r.size as u64;
                value.clear();
                value.extend(key.iter().cycle().take(r.size as usize));
                match cache.set(&key, &value, None) {
                    Ok(()) => inserted_bytes += r.size as u64,
                    Err(keg::Error::ValueTooLarge { .. }) => {}
                    Err(e) => panic!("set: {e}"),
                }
            }
        }
        if i % 1000 == 999 {
            // What the background thread would do: hint files, eviction to its threshold.
            cache.run_maintenance().expect("maintenance");
        }
    }
    let s = cache.stats();
    eprintln!(
        "  keg: {} sets, {} evictions, {} promotions, {} reinsertions, {} segments reclaimed, {} sync rounds, ghost {} keys / {} bytes",
        s.sets, s.evictions, s.promotions, s.reinsertions, s.segments_reclaimed, s.sync_rounds, s.ghost_entries, s.ghost_bytes
    );
    assert!(s.disk_bytes <= capacity + capacity / 64 + 4096, "disk {} over the cap {capacity}", s.disk_bytes);
    Row {
        trace: t.name.clone(),
        pct,
        capacity,
        lru: lru.counts().miss_ratio(),
        fifo: fifo.counts().miss_ratio(),
        keg: misses as f64 / t.reqs.len() as f64,
        keg_bytes: missed_bytes as f64 / requested_bytes as f64,
        writes_per_insert: s.appends as f64 / s.sets.max(1) as f64,
        bytes_per_inserted_byte: s.bytes_appended as f64 / inserted_bytes.max(1) as f64,
        segments: s.max_bytes / segment_size(&cache, capacity, segments),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn segment_size(_cache: &keg::Cache, capacity: u64, segments: Option<u64>) -> u64 {
    match segments {
        Some(n) => (capacity / n).max(keg::MIN_SEGMENT_BYTES) & !4095,
        None => (capacity / 64).clamp(64 << 10, 64 << 20) & !4095,
    }
}
