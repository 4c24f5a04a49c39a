//! `keg stats`: what a cache holds and how much of its disk is dead.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use keg::format::record::Kind;
use keg::format::segment::HEADER_LEN;
use keg::inspect::{self, Classifier, Item, SegmentData, Status};
use serde_json::{json, Value};

use crate::common::{self, note, open_read_only, CmdResult, Failure, Format};
use crate::units::{human_bytes, parse_size};

/// Summarise a cache: entries, live/expired/dead bytes, disk use against the
/// cap, each segment's size and dead fraction, key and value size
/// percentiles, and the TTL distribution.
///
/// Sizes and percentiles cover live entries (those get serves). "Dead" bytes
/// are records no index entry points to (overwritten or deleted values,
/// tombstones, damage): what compaction reclaims; expired entries are counted
/// apart. Reads like dump: no lock, no writes, works on a cache in use.
///
/// The size cap is a setting of the process that owns the cache, not stored in
/// the directory: pass it with --max-bytes to compare against it.
///
/// jsonl output is one JSON object on one line with the same figures (sizes in
/// bytes, TTLs in seconds).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cache directory.
    dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The cap to compare disk use against, e.g. 10GB [default: 1GiB, the library's default].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_bytes: Option<u64>,
}

#[derive(Default)]
struct Seg {
    id: u32,
    log: Option<&'static str>,
    size: u64,
    hint_bytes: u64,
    records: u64,
    live_bytes: u64,
    expired_bytes: u64,
    unindexed_bytes: u64,
}

impl Seg {
    fn data_bytes(&self) -> u64 {
        self.size.saturating_sub(HEADER_LEN as u64)
    }

    fn dead_bytes(&self) -> u64 {
        self.data_bytes().saturating_sub(self.live_bytes + self.expired_bytes + self.unindexed_bytes)
    }

    fn dead_fraction(&self) -> f64 {
        fraction(self.dead_bytes(), self.data_bytes())
    }
}

fn fraction(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

#[derive(Default)]
struct Tally {
    segs: Vec<Seg>,
    values: u64,
    tombstones: u64,
    other: u64,
    damaged: u64,
    counts: [u64; Status::ALL.len()],
    key_lens: Vec<u64>,
    value_lens: Vec<u64>,
    no_expiry: u64,
    ttl_ms: Vec<u64>,
}

/// Nearest-rank percentiles of a sorted list.
struct Dist {
    count: usize,
    min: u64,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    mean: f64,
}

impl Dist {
    fn of(sorted: &[u64]) -> Dist {
        let pct = |p: usize| -> u64 {
            if sorted.is_empty() {
                0
            } else {
                sorted[(sorted.len() * p).div_ceil(100).max(1) - 1]
            }
        };
        let sum: u128 = sorted.iter().map(|&v| v as u128).sum();
        Dist {
            count: sorted.len(),
            min: sorted.first().copied().unwrap_or(0),
            p50: pct(50),
            p90: pct(90),
            p99: pct(99),
            max: sorted.last().copied().unwrap_or(0),
            mean: if sorted.is_empty() { 0.0 } else { sum as f64 / sorted.len() as f64 },
        }
    }

    fn json(&self, scale: u64) -> Value {
        let s = |v: u64| v / scale;
        json!({
            "count": self.count, "min": s(self.min), "p50": s(self.p50), "p90": s(self.p90),
            "p99": s(self.p99), "max": s(self.max), "mean": (self.mean / scale as f64 * 10.0).round() / 10.0,
        })
    }
}

/// TTL buckets of live entries with an expiry: (label, upper bound in ms, exclusive).
const TTL_BUCKETS: [(&str, u64); 6] = [
    ("lt_1m", 60_000),
    ("1m_1h", 3_600_000),
    ("1h_1d", 86_400_000),
    ("1d_7d", 7 * 86_400_000),
    ("7d_30d", 30 * 86_400_000),
    ("ge_30d", u64::MAX),
];

pub fn run(args: Args) -> CmdResult {
    let files = inspect::list(&args.dir).map_err(|e| Failure::io(format!("listing {}", args.dir.display()), e))?;
    let cache = match open_read_only(&args.dir, "read the cache's index") {
        Ok(c) => Some(c),
        Err(e) => {
            note(format!("{e}; every record counts as unindexed"));
            None
        }
    };
    let classifier = cache.as_ref().map(Classifier::new);
    let now = classifier.as_ref().map_or(0, |c| c.now_ms());
    let mut t = Tally::default();
    for f in &files.segments {
        let data = match SegmentData::read(&f.path) {
            Ok(d) => d,
            Err(e) => {
                note(format!("{}: {e}", f.path.display()));
                continue;
            }
        };
        let mut seg = Seg {
            id: f.id,
            log: f.header.as_ref().ok().map(|h| h.log.name()),
            size: data.len(),
            hint_bytes: f.hint.as_ref().map_or(0, |h| h.1),
            ..Seg::default()
        };
        for item in data.records() {
            let Item::Record { offset, record } = item else {
                match item {
                    Item::Damaged(_) => t.damaged += 1,
                    _ => t.other += 1,
                }
                continue;
            };
            seg.records += 1;
            match record.kind {
                Kind::Value => t.values += 1,
                // (Never decoded as an entry: `record::decode` refuses kind 3.)
                Kind::Tombstone | Kind::Invalidation => t.tombstones += 1,
            }
            let status = match &classifier {
                Some(c) => c.classify(f.id, offset, &record),
                None if record.kind == Kind::Tombstone => Status::Tombstone,
                None => Status::Unindexed,
            };
            t.counts[status as usize] += 1;
            match status {
                Status::Live => {
                    seg.live_bytes += record.len();
                    t.key_lens.push(record.key.len() as u64);
                    t.value_lens.push(record.value.len() as u64);
                    match record.header.expires_ms {
                        0 => t.no_expiry += 1,
                        exp => t.ttl_ms.push(exp.saturating_sub(now)),
                    }
                }
                Status::Expired => seg.expired_bytes += record.len(),
                Status::Unindexed => seg.unindexed_bytes += record.len(),
                Status::Shadowed | Status::Tombstone | Status::Invalidated => {}
            }
        }
        t.segs.push(seg);
    }
    t.key_lens.sort_unstable();
    t.value_lens.sort_unstable();
    t.ttl_ms.sort_unstable();
    let max_bytes = args.max_bytes.unwrap_or(keg::DEFAULT_MAX_BYTES);
    let cap_given = args.max_bytes.is_some();
    let mut out = common::stdout();
    let written = match args.format {
        Format::Jsonl => write_json(&mut out, &args, &t, max_bytes, now),
        Format::Table => write_table(&mut out, &args, &t, max_bytes, cap_given),
    };
    written.map_err(|e| Failure::io("writing output", e))?;
    common::finish(out)?;
    Ok(ExitCode::SUCCESS)
}

fn sum(t: &Tally, f: impl Fn(&Seg) -> u64) -> u64 {
    t.segs.iter().map(f).sum()
}

fn count(t: &Tally, s: Status) -> u64 {
    t.counts[s as usize]
}

fn ttl_buckets(t: &Tally) -> Vec<(&'static str, u64)> {
    let mut lower = 0;
    TTL_BUCKETS
        .iter()
        .map(|&(label, upper)| {
            let n = t.ttl_ms.iter().filter(|&&ms| ms >= lower && ms < upper).count() as u64;
            lower = upper;
            (label, n)
        })
        .collect()
}

fn write_json(out: &mut impl Write, args: &Args, t: &Tally, max_bytes: u64, now: u64) -> io::Result<()> {
    let disk = sum(t, |s| s.size + s.hint_bytes);
    let segments: Vec<Value> = t
        .segs
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "file": format!("{:08x}.seg", s.id), "log": s.log, "size": s.size,
                "hint_bytes": s.hint_bytes, "records": s.records, "live_bytes": s.live_bytes,
                "expired_bytes": s.expired_bytes, "unindexed_bytes": s.unindexed_bytes,
                "dead_bytes": s.dead_bytes(), "dead_fraction": round4(s.dead_fraction()),
            })
        })
        .collect();
    let buckets: serde_json::Map<String, Value> =
        ttl_buckets(t).into_iter().map(|(k, n)| (k.into(), n.into())).collect();
    let v = json!({
        "dir": args.dir.display().to_string(),
        "now_ms": now,
        "entries": count(t, Status::Live) + count(t, Status::Expired) + count(t, Status::Invalidated),
        "live_entries": count(t, Status::Live),
        "expired_entries": count(t, Status::Expired),
        "invalidated_entries": count(t, Status::Invalidated),
        "records": t.values + t.tombstones,
        "value_records": t.values,
        "tombstones": t.tombstones,
        "shadowed_records": count(t, Status::Shadowed),
        "unindexed_records": count(t, Status::Unindexed),
        "ignored_records": t.other,
        "damaged_stretches": t.damaged,
        "live_bytes": sum(t, |s| s.live_bytes),
        "expired_bytes": sum(t, |s| s.expired_bytes),
        "dead_bytes": sum(t, Seg::dead_bytes),
        "unindexed_bytes": sum(t, |s| s.unindexed_bytes),
        "disk_bytes": disk,
        "max_bytes": max_bytes,
        "disk_fraction_of_cap": round4(fraction(disk, max_bytes)),
        "segments": segments,
        "key_len": Dist::of(&t.key_lens).json(1),
        "value_len": Dist::of(&t.value_lens).json(1),
        "ttl": {
            "no_expiry": t.no_expiry,
            "with_expiry": t.ttl_ms.len(),
            "remaining_s": Dist::of(&t.ttl_ms).json(1000),
            "buckets": buckets,
        },
    });
    serde_json::to_writer(&mut *out, &v)?;
    out.write_all(b"\n")
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn write_table(out: &mut impl Write, args: &Args, t: &Tally, max_bytes: u64, cap_given: bool) -> io::Result<()> {
    let b = |n: u64| format!("{} ({n})", human_bytes(n));
    let disk = sum(t, |s| s.size + s.hint_bytes);
    let data = sum(t, Seg::data_bytes);
    let pct = |a: u64, b: u64| format!("{:.1}%", 100.0 * fraction(a, b));
    writeln!(out, "directory        {}", args.dir.display())?;
    writeln!(
        out,
        "entries          {} ({} live, {} expired)",
        count(t, Status::Live) + count(t, Status::Expired),
        count(t, Status::Live),
        count(t, Status::Expired)
    )?;
    writeln!(
        out,
        "records          {} values ({} shadowed), {} tombstones, {} unindexed, {} ignored, {} damaged stretches",
        t.values,
        count(t, Status::Shadowed),
        t.tombstones,
        count(t, Status::Unindexed),
        t.other,
        t.damaged
    )?;
    let live = sum(t, |s| s.live_bytes);
    let expired = sum(t, |s| s.expired_bytes);
    let dead = sum(t, Seg::dead_bytes);
    writeln!(out, "live bytes       {}  {} of record bytes", b(live), pct(live, data))?;
    writeln!(out, "expired bytes    {}  {}", b(expired), pct(expired, data))?;
    writeln!(out, "dead bytes       {}  {}", b(dead), pct(dead, data))?;
    let unindexed = sum(t, |s| s.unindexed_bytes);
    if unindexed > 0 {
        writeln!(out, "unindexed bytes  {}  {}", b(unindexed), pct(unindexed, data))?;
    }
    let cap_note = if cap_given { "" } else { " (the library's default; pass --max-bytes)" };
    writeln!(
        out,
        "disk bytes       {}  {} of the {} cap{cap_note}",
        b(disk),
        pct(disk, max_bytes),
        human_bytes(max_bytes)
    )?;
    writeln!(out, "segments         {}", t.segs.len())?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<12}  {:<9}  {:>10}  {:>10}  {:>10}  {:>10}  {:>6}  {:>8}",
        "SEGMENT", "LOG", "SIZE", "LIVE", "EXPIRED", "DEAD", "DEAD%", "HINT"
    )?;
    for s in &t.segs {
        writeln!(
            out,
            "{:<12}  {:<9}  {:>10}  {:>10}  {:>10}  {:>10}  {:>6}  {:>8}",
            format!("{:08x}.seg", s.id),
            s.log.unwrap_or("bad-header"),
            s.size,
            s.live_bytes,
            s.expired_bytes,
            s.dead_bytes(),
            format!("{:.1}", 100.0 * s.dead_fraction()),
            s.hint_bytes
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<22}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>10}",
        "LIVE ENTRIES", "COUNT", "MIN", "P50", "P90", "P99", "MAX", "MEAN"
    )?;
    let row = |out: &mut dyn Write, label: &str, d: Dist, scale: u64| {
        writeln!(
            out,
            "{label:<22}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>10.1}",
            d.count,
            d.min / scale,
            d.p50 / scale,
            d.p90 / scale,
            d.p99 / scale,
            d.max / scale,
            d.mean / scale as f64
        )
    };
    row(out, "key length (bytes)", Dist::of(&t.key_lens), 1)?;
    row(out, "value length (bytes)", Dist::of(&t.value_lens), 1)?;
    row(out, "TTL remaining (s)", Dist::of(&t.ttl_ms), 1000)?;
    writeln!(out)?;
    let buckets: Vec<String> = ttl_buckets(t).iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(out, "TTL              no expiry {}; {}", t.no_expiry, buckets.join(", "))?;
    Ok(())
}
