//! What one small write + `fdatasync` costs, by what the write lands on
//! (Linux): the measurement behind synced mode's preallocated zeros
//! (FORMAT.md 2.8, BENCHMARKS.md §10).
//!
//! ```text
//! cargo run --release --example fsync_floor -- [--dir DIR] [--n 300] [--runs 5]
//! ```
//!
//! Four files, each written 124 B at a time at increasing offsets, each
//! write followed by `fdatasync`, **interleaved** (one write + fdatasync to
//! each file in turn), so that all four see the same disk state on a
//! machine whose disk speed changes from one second to the next:
//!
//! - `append`: a new, empty file (every write makes it longer);
//! - `fallocated`: `fallocate(mode 0)` over the whole span beforehand
//!   (unwritten extents: the first write to each block converts it);
//! - `zeroed`: zeros written over the span and fsynced beforehand (what
//!   keg's synced mode does);
//! - `sparse`: `set_len` over the span beforehand (a hole; what fjall's
//!   journal does with its 64 MiB `set_len`).
//!
//! It prints, per run, each file's p10/p50/p90 latency in µs, and the median
//! over the writes of each file's latency divided by the append's in the same
//! round. Count the block-layer writes each does with the `block_rq_issue`
//! trace event filtered on this process (see BENCHMARKS.md §10).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const KINDS: [&str; 4] = ["append", "fallocated", "zeroed", "sparse"];
const REC: usize = 124;

fn prepare(kind: &str, path: &std::path::Path, span: u64) -> Res<File> {
    let _ = std::fs::remove_file(path);
    let f = OpenOptions::new().create_new(true).read(true).write(true).open(path)?;
    match kind {
        "fallocated" => {
            // SAFETY: a plain syscall on a descriptor this function owns.
            let r = unsafe { libc::fallocate(f.as_raw_fd(), 0, 0, span as libc::off_t) };
            if r != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
        }
        "zeroed" => f.write_all_at(&vec![0u8; span as usize], 0)?,
        "sparse" => f.set_len(span)?,
        _ => {}
    }
    f.sync_all()?;
    // Unlinked at once: nothing is left behind if the run is interrupted.
    std::fs::remove_file(path)?;
    Ok(f)
}

fn main() -> Res<()> {
    let mut dir = PathBuf::from("target");
    let (mut n, mut runs) = (300usize, 5usize);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--dir" => dir = PathBuf::from(val()?),
            "--n" => n = val()?.parse()?,
            "--runs" => runs = val()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let span = (n * REC + 4096) as u64;
    let rec = [0xabu8; REC];
    for run in 0..runs {
        let files: Vec<File> = KINDS
            .iter()
            .map(|k| prepare(k, &dir.join(format!("fsync-floor-{k}-{}", std::process::id())), span))
            .collect::<Res<_>>()?;
        let mut lat = vec![Vec::with_capacity(n); KINDS.len()];
        for i in 0..n {
            for (j, f) in files.iter().enumerate() {
                let t = Instant::now();
                f.write_all_at(&rec, (i * REC) as u64)?;
                f.sync_data()?;
                lat[j].push(t.elapsed().as_nanos() as f64 / 1e3);
            }
        }
        let mut line = format!("run {run}:");
        for (j, k) in KINDS.iter().enumerate() {
            let mut l = lat[j].clone();
            l.sort_by(f64::total_cmp);
            line += &format!(" {k} {:.0}/{:.0}/{:.0}", l[n / 10], l[n / 2], l[n * 9 / 10]);
        }
        line += " | ratio to append (median per write):";
        for (j, k) in KINDS.iter().enumerate().skip(1) {
            let mut r: Vec<f64> = (0..n).map(|i| lat[j][i] / lat[0][i]).collect();
            r.sort_by(f64::total_cmp);
            line += &format!(" {k} {:.2}", r[n / 2]);
        }
        println!("{line}");
    }
    Ok(())
}
