//! Disk bytes per live byte after an overwrite-heavy run (issue 17), as the
//! side-by-side harness measures it (`bench/peers`, workload `space`), with
//! the engine's own counters beside it: every key of `--keys` written
//! `--passes` times (24-byte keys, `--value-len` byte values), then the
//! directory's allocated size per live byte (24 B + the value per key)
//! right after `flush`, again once maintenance is idle (`--settle-ms` later),
//! and after a clean close; the bytes written per byte inserted; and how
//! long `flush` took (it compacts first when a segment is past the threshold).
//!
//! ```text
//! cargo run --release --example space -- [--keys 200000] [--value-len 100] [--passes 3]
//!     [--cap-mib 1024] [--order seq|random] [--settle-ms 2000] [--runs 3]
//! ```
//!
//! `--order random` overwrites keys in a random order in every pass after
//! the first (the first always writes every key once). Each run uses a fresh
//! directory under the system's temporary directory, removed after it. (The
//! program uses nothing but keg and std, so the same file builds against an
//! older keg to compare.)

use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[path = "common/xorshift.rs"]
mod xorshift;
use xorshift::Rng;

/// A directory removed when dropped.
struct Dir(std::path::PathBuf);
impl Dir {
    fn path(&self) -> &Path {
        &self.0
    }
}
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Allocated bytes (`st_blocks`) and apparent bytes of the files in `dir`.
fn disk_usage(dir: &Path) -> (u64, u64) {
    let (mut alloc, mut apparent) = (0, 0);
    for ent in std::fs::read_dir(dir).unwrap().flatten() {
        let md = ent.metadata().unwrap();
        if md.is_file() {
            alloc += md.blocks() * 512;
            apparent += md.len();
        }
    }
    (alloc, apparent)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str, default: &str| -> String {
        args.iter().position(|a| a == name).map_or(default.to_string(), |i| args[i + 1].clone())
    };
    let num = |name: &str, default: u64| arg(name, &default.to_string()).parse::<u64>().expect("a number");
    let keys = num("--keys", 200_000);
    let value_len = num("--value-len", 100) as usize;
    let passes = num("--passes", 3);
    let cap = num("--cap-mib", 1024) << 20;
    let settle_ms = num("--settle-ms", 2000);
    let runs = num("--runs", 1);
    let random = arg("--order", "seq") == "random";
    let live = keys * (24 + value_len as u64);
    println!(
        "{keys} keys x {passes} passes, {value_len} B values, cap {} MiB, order {}; live {live} B",
        cap >> 20,
        if random { "random" } else { "seq" }
    );
    println!("run  flushed  settled  closed  (apparent)  written/inserted  compactions  bytes_rewritten  flush_ms");
    for run in 0..runs {
        let path = std::env::temp_dir().join(format!("keg-space-{}-{run}", std::process::id()));
        std::fs::create_dir(&path).expect("a fresh directory");
        let dir = Dir(path);
        let cache = keg::Cache::builder().max_bytes(cap).open(dir.path()).unwrap();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (run + 1));
        let mut inserted = 0u64;
        for pass in 0..passes {
            for i in 0..keys {
                let k = if random && pass > 0 { rng.next() % keys } else { i };
                let key = format!("key:{k:020}");
                let mut v = format!("{key}:{pass}:").into_bytes();
                v.resize(value_len, b'v');
                cache.set(key.as_bytes(), &v, None).unwrap();
                inserted += (key.len() + v.len()) as u64;
            }
        }
        let flush_started = std::time::Instant::now();
        cache.flush().unwrap();
        let flush_ms = flush_started.elapsed().as_secs_f64() * 1e3;
        let flushed = disk_usage(dir.path()).0;
        std::thread::sleep(std::time::Duration::from_millis(settle_ms));
        let settled = disk_usage(dir.path()).0;
        let s = cache.stats();
        cache.close().unwrap();
        let (closed, apparent) = disk_usage(dir.path());
        let r = |b: u64| b as f64 / live as f64;
        println!(
            "{run:>3}  {:>7.2}  {:>7.2}  {:>6.2}  ({:>8.2})  {:>16.2}  {:>11}  {:>15}  {:>8.1}",
            r(flushed),
            r(settled),
            r(closed),
            r(apparent),
            s.bytes_appended as f64 / inserted as f64,
            s.compactions,
            s.bytes_rewritten,
            flush_ms
        );
    }
}
