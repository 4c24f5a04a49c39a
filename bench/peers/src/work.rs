//! The workloads, run inside a child process against one store. Each prints
//! its figures as `R name value` lines on stdout for the driver.

use crate::stores::{self, Mode, Res, Store};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const KEY_LEN: usize = 24;

/// Sizes and durations of one run, passed to every child.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Entries for fill 100 B, gets, mixed.
    pub n: u64,
    /// Entries for fill 4 KiB.
    pub n_4k: u64,
    /// Entries for the reopen workloads.
    pub n_reopen: u64,
    /// Keys for the overwrite run (each written 3 times).
    pub n_space: u64,
    /// Seconds per get case, mixed case and synced case.
    pub secs: f64,
}

pub fn emit(name: &str, v: f64) {
    println!("R {name} {v}");
}

// ------------------------------------------------------------ keys, values

pub fn key(i: u64) -> Vec<u8> {
    format!("key:{i:020}").into_bytes()
}

fn write_key(buf: &mut [u8; KEY_LEN], i: u64) {
    buf[..4].copy_from_slice(b"key:");
    let mut x = i;
    for b in buf[4..].iter_mut().rev() {
        *b = b'0' + (x % 10) as u8;
        x /= 10;
    }
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Value `ver` of key `i`: 16 bytes of header (i, ver), then pseudo-random
/// bytes derived from both (incompressible, so that stores which compress
/// gain nothing), so that any value read can be checked in full.
pub fn value(i: u64, ver: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&i.to_le_bytes());
    out.extend_from_slice(&ver.to_le_bytes());
    let seed = mix(i ^ (ver << 48));
    let mut j = 0u64;
    while out.len() < len {
        let w = mix(seed.wrapping_add(j)).to_le_bytes();
        let n = (len - out.len()).min(8);
        out.extend_from_slice(&w[..n]);
        j += 1;
    }
    out.truncate(len);
}

/// Checks a value read for key `i`: Some(version) when it is exactly a value
/// the harness wrote for that key with a version in `vers`, None otherwise.
pub fn check(i: u64, v: &[u8], len: usize, vers: std::ops::RangeInclusive<u64>) -> Option<u64> {
    if v.len() != len || len < 16 {
        return None;
    }
    let ki = u64::from_le_bytes(v[..8].try_into().ok()?);
    let ver = u64::from_le_bytes(v[8..16].try_into().ok()?);
    if ki != i || !vers.contains(&ver) {
        return None;
    }
    let seed = mix(i ^ (ver << 48));
    v[16..]
        .chunks(8)
        .enumerate()
        .all(|(j, c)| c == &mix(seed.wrapping_add(j as u64)).to_le_bytes()[..c.len()])
        .then_some(ver)
}

// ------------------------------------------------------------ random keys

pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// YCSB's scrambled Zipfian generator (theta 0.99) over `0..n`.
#[derive(Clone)]
pub struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    pub fn new(n: u64) -> Zipf {
        let theta = 0.99;
        let zeta = |m: u64| (1..=m).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipf { n, theta, alpha, zetan, eta }
    }
    pub fn sample(&self, r: &mut Rng) -> u64 {
        let u = r.unit();
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

// ------------------------------------------------------------ process figures

/// (RssAnon, RssFile, VmHWM) in bytes, from /proc/self/status.
pub fn mem() -> (f64, f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|x| x.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb * 1024.0)
    };
    (field("RssAnon:"), field("RssFile:"), field("VmHWM:"))
}

/// (allocated bytes, apparent bytes) of every file under `dir`.
pub fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut alloc = 0;
    let mut apparent = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for ent in rd.flatten() {
            let Ok(md) = ent.metadata() else { continue };
            if md.is_dir() {
                stack.push(ent.path());
            } else {
                alloc += md.blocks() * 512;
                apparent += md.len();
            }
        }
    }
    (alloc, apparent)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

// ------------------------------------------------------------ workloads

/// Sets `0..n` (version `ver`), in batches of 1000.
fn load(s: &dyn Store, n: u64, len: usize, ver: u64) -> Res<()> {
    let mut batch = Vec::with_capacity(1000);
    let mut v = Vec::new();
    for i in 0..n {
        value(i, ver, len, &mut v);
        batch.push((key(i), v.clone()));
        if batch.len() == 1000 {
            s.set_batch(&batch)?;
            batch.clear();
        }
    }
    s.set_batch(&batch)
}

/// Reads every key `0..n` expecting version `ver`: (missing, stale, wrong),
/// where stale is an older version of that key (overwritten, so also wrong).
fn verify(s: &dyn Store, n: u64, len: usize, ver: u64) -> Res<(u64, u64, u64)> {
    let (mut miss, mut stale, mut bad) = (0, 0, 0);
    for i in 0..n {
        let mut got = None;
        if s.get(&key(i), &mut |v| got = Some(check(i, v, len, 0..=ver)))? {
            match got.flatten() {
                Some(x) if x == ver => {}
                Some(_) => stale += 1,
                None => bad += 1,
            }
        } else {
            miss += 1
        }
    }
    Ok((miss, stale, bad))
}

fn emit_verify(r: (u64, u64, u64)) {
    emit("missing", r.0 as f64);
    emit("stale", r.1 as f64);
    emit("wrong", r.2 as f64);
}

/// Fill: `n` sets of `len`-byte values into an empty store, then a sync;
/// timed from the first set to the end of the sync. Then memory per entry,
/// and every value read back.
pub fn fill(kind: &str, dir: &Path, n: u64, len: usize) -> Res<()> {
    let data = n * (KEY_LEN + len) as u64;
    // Keys and values are generated before the clock starts, outside the
    // memory measured.
    let items: Vec<Vec<(Vec<u8>, Vec<u8>)>> = (0..n.div_ceil(1000))
        .map(|b| {
            (b * 1000..((b + 1) * 1000).min(n))
                .map(|i| {
                    let mut v = Vec::new();
                    value(i, 1, len, &mut v);
                    (key(i), v)
                })
                .collect()
        })
        .collect();
    let s = stores::open(kind, dir, Mode::Normal, data, n)?;
    let (a0, f0, _) = mem();
    let t = Instant::now();
    for b in &items {
        s.set_batch(b)?;
    }
    s.sync()?;
    let secs = t.elapsed().as_secs_f64();
    // Measured while `items` is still alive, so that freeing it cannot
    // hide the store's own growth.
    let (a1, f1, _) = mem();
    drop(items);
    emit("fill_ops", n as f64 / secs);
    emit("fill_mib", data as f64 / secs / (1 << 20) as f64);
    emit("rss_anon_per_entry", (a1 - a0) / n as f64);
    emit("rss_file_per_entry", (f1 - f0) / n as f64);
    emit("disk_per_live", disk_usage(dir).0 as f64 / data as f64);
    emit_verify(verify(&*s, n, len, 1)?);
    s.close()
}

/// Runs `threads` threads for `secs`, each calling `op(thread, rng)` until
/// time is up, with per-op latency kept when `lat`. Returns (ops/s, sorted
/// latencies in ns).
fn run_timed<F>(threads: usize, secs: f64, lat: bool, op: F) -> Res<(f64, Vec<u32>)>
where
    F: Fn(usize, &mut Rng) -> Res<()> + Sync,
{
    let stop = AtomicBool::new(false);
    let total = AtomicU64::new(0);
    let mut all = Vec::new();
    let t0 = Instant::now();
    let res: Vec<Res<Vec<u32>>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (stop, total, op) = (&stop, &total, &op);
                sc.spawn(move || -> Res<Vec<u32>> {
                    let mut r = Rng::new(t as u64 * 7919 + 1);
                    let mut lats = Vec::new();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..64 {
                            if lat {
                                let s = Instant::now();
                                op(t, &mut r)?;
                                lats.push(s.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                            } else {
                                op(t, &mut r)?;
                            }
                        }
                        n += 64;
                    }
                    total.fetch_add(n, Ordering::Relaxed);
                    Ok(lats)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        hs.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into()))).collect()
    });
    let el = t0.elapsed().as_secs_f64();
    for r in res {
        all.extend(r?);
    }
    all.sort_unstable();
    Ok((total.load(Ordering::Relaxed) as f64 / el, all))
}

/// Counts of reads that were a miss or a wrong value, across threads.
#[derive(Default)]
struct Tally {
    miss: AtomicU64,
    wrong: AtomicU64,
}

/// Gets (uniform and Zipfian, 1 and 2 threads) on a store filled with `n`
/// entries of 100 B, then mixed 90 % get / 10 % set, Zipfian, 2 threads.
pub fn reads(kind: &str, dir: &Path, sz: &Sizes) -> Res<()> {
    let n = sz.n;
    let len = 100;
    let s = stores::open(kind, dir, Mode::Normal, n * (KEY_LEN + len) as u64, n)?;
    load(&*s, n, len, 1)?;
    s.sync()?;
    let zipf = Zipf::new(n);
    let tally = Tally::default();
    for (dist, threads) in [("uniform", 1), ("uniform", 2), ("zipf", 1), ("zipf", 2)] {
        let readers: Vec<_> = (0..threads).map(|_| s.reader()).collect::<Res<_>>()?;
        let (ops, _) = run_timed(threads, sz.secs, false, |t, r| {
            let i = if dist == "zipf" { zipf.sample(r) } else { r.below(n) };
            let mut k = [0u8; KEY_LEN];
            write_key(&mut k, i);
            let mut good = false;
            if readers[t].get(&k, &mut |v| good = check(i, v, len, 1..=1).is_some())? {
                if !good {
                    tally.wrong.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                tally.miss.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })?;
        emit(&format!("get_{dist}_{threads}t"), ops);
    }
    // Mixed: a set writes version 2 of a key; a get may see 1 or 2.
    let sets = AtomicU64::new(0);
    let (ops, lats) = run_timed(2, sz.secs * 2.0, true, |_, r| {
        let i = zipf.sample(r);
        let mut k = [0u8; KEY_LEN];
        write_key(&mut k, i);
        if r.below(10) == 0 {
            let mut v = Vec::with_capacity(len);
            value(i, 2, len, &mut v);
            sets.fetch_add(1, Ordering::Relaxed);
            return s.set(&k, &v);
        }
        let mut good = false;
        if s.get(&k, &mut |v| good = check(i, v, len, 1..=2).is_some())? {
            if !good {
                tally.wrong.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            tally.miss.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    })?;
    emit("mixed_ops", ops);
    emit("mixed_p50_us", pct(&lats, 0.5));
    emit("mixed_p99_us", pct(&lats, 0.99));
    emit("mixed_p999_us", pct(&lats, 0.999));
    emit("missing", tally.miss.load(Ordering::Relaxed) as f64);
    emit("wrong", tally.wrong.load(Ordering::Relaxed) as f64);
    s.close()
}

/// Synced sets of 100 B at 1 then 2 threads, each thread on its own keys.
pub fn synced(kind: &str, dir: &Path, sz: &Sizes) -> Res<()> {
    let s = stores::open(kind, dir, Mode::Synced, 64 << 20, 0)?;
    let next = [AtomicU64::new(0), AtomicU64::new(1 << 40)];
    let mut last = [0u64; 2];
    // 1 thread, 2 threads, then 1 thread while another process writes to
    // the same disk (see `disturb`).
    for (name, threads, busy) in [("1t", 1, false), ("2t", 2, false), ("busy_1t", 1, true)] {
        let mut other = if busy { Some(spawn_disturber(dir)?) } else { None };
        let r = run_timed(threads, sz.secs, true, |t, _| {
            let i = next[t].fetch_add(1, Ordering::Relaxed);
            let mut v = Vec::with_capacity(100);
            value(i, 1, 100, &mut v);
            s.set(&key(i), &v)
        });
        if let Some(c) = other.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
            let _ = std::fs::remove_file(disturb_path(dir));
        }
        let (ops, lats) = r?;
        emit(&format!("synced_{name}"), ops);
        emit(&format!("synced_{name}_p50_us"), pct(&lats, 0.5));
        emit(&format!("synced_{name}_p99_us"), pct(&lats, 0.99));
    }
    for (t, l) in last.iter_mut().enumerate() {
        *l = next[t].load(Ordering::Relaxed);
    }
    s.close()?;
    // Every acknowledged set must be there after a clean reopen.
    let s = stores::open(kind, dir, Mode::Synced, 64 << 20, 0)?;
    let (mut miss, mut bad) = (0u64, 0u64);
    for (t, end) in last.iter().enumerate() {
        let start = if t == 0 { 0 } else { 1 << 40 };
        for i in start..*end {
            let mut good = false;
            if s.get(&key(i), &mut |v| good = check(i, v, 100, 1..=1).is_some())? {
                bad += u64::from(!good);
            } else {
                miss += 1;
            }
        }
    }
    emit("missing", miss as f64);
    emit("wrong", bad as f64);
    s.close()
}

pub fn disturb_path(dir: &Path) -> std::path::PathBuf {
    let mut p = dir.as_os_str().to_owned();
    p.push(".disturb");
    p.into()
}

/// Starts a process of this program that writes to the disk beside the
/// store (`disturb`), and waits until it has started writing.
fn spawn_disturber(dir: &Path) -> Res<std::process::Child> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut c = std::process::Command::new(exe)
        .args(["--disturb", &disturb_path(dir).display().to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    let out = c.stdout.take().ok_or("no stdout")?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).map_err(|e| e.to_string())?;
    Ok(c)
}

/// Longest a disturber runs if nobody stops it.
const DISTURB_MAX: Duration = Duration::from_secs(300);

/// A concurrent writer of the harness's own: 1 MiB writes with an fsync
/// every 8 MiB, over a file kept under 256 MiB, until killed, its parent
/// dies, or DISTURB_MAX has passed.
pub fn disturb(path: &Path) -> Res<()> {
    use std::io::{Seek, Write};
    let e = |x: std::io::Error| x.to_string();
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let t = Instant::now();
    let mut f = std::fs::File::create(path).map_err(e)?;
    let chunk = vec![0x5au8; 1 << 20];
    println!("STARTED");
    std::io::stdout().flush().map_err(e)?;
    let mut n = 0u64;
    loop {
        f.write_all(&chunk).map_err(e)?;
        n += 1;
        if n.is_multiple_of(8) {
            f.sync_data().map_err(e)?;
        }
        if n.is_multiple_of(256) {
            f.rewind().map_err(e)?;
        }
        if t.elapsed() > DISTURB_MAX {
            return Ok(());
        }
    }
}

/// Builds a store of `n` entries for a reopen. With `crash`, makes every
/// write durable, says READY and waits to be killed (-9); otherwise closes.
pub fn reopen_build(kind: &str, dir: &Path, n: u64, crash: bool) -> Res<()> {
    let s = stores::open(kind, dir, Mode::Normal, n * (KEY_LEN + 100) as u64, n)?;
    load(&*s, n, 100, 1)?;
    if crash {
        s.sync()?;
        println!("READY");
        use std::io::Write;
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    s.close()
}

/// Opens a store built by `reopen_build`: time to the first successful get,
/// memory after open and at the peak, then a sample of keys checked.
pub fn reopen_open(kind: &str, dir: &Path, n: u64) -> Res<()> {
    let (a0, f0, _) = mem();
    let t = Instant::now();
    let s = stores::open(kind, dir, Mode::Normal, n * (KEY_LEN + 100) as u64, n)?;
    let mut probe = n / 2;
    let mut first = None;
    // The first get that returns a right value ends the clock (a store that
    // recovers in the background, or lost some keys, may miss at first: the
    // probe moves on to the next key after each miss).
    while t.elapsed() < Duration::from_secs(20) {
        let mut good = false;
        if s.get(&key(probe), &mut |v| good = check(probe, v, 100, 1..=1).is_some())? && good {
            first = Some(t.elapsed());
            break;
        }
        probe = (probe + 1) % n;
    }
    let ms = first.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0);
    let (a1, f1, hwm) = mem();
    emit("reopen_ms", ms);
    emit("open_anon_per_entry", (a1 - a0) / n as f64);
    emit("open_file_per_entry", (f1 - f0) / n as f64);
    emit("peak_per_entry", (hwm - a0 - f0) / n as f64);
    let mut r = Rng::new(99);
    let sample = n.min(20_000);
    let (mut miss, mut bad) = (0u64, 0u64);
    for _ in 0..sample {
        let i = r.below(n);
        let mut good = false;
        if s.get(&key(i), &mut |v| good = check(i, v, 100, 1..=1).is_some())? {
            bad += u64::from(!good);
        } else {
            miss += 1;
        }
    }
    emit("missing", miss as f64 * n as f64 / sample as f64);
    emit("wrong", bad as f64);
    s.close()
}

/// Every key of `n` written 3 times (100 B values); disk bytes per live byte
/// while open right after a flush, again after 2 s with no writes (stores
/// that compact or flush in the background have had their chance), and
/// after a clean close; then every key checked.
pub fn space(kind: &str, dir: &Path, n: u64) -> Res<()> {
    let live = n * (KEY_LEN + 100) as u64;
    let s = stores::open(kind, dir, Mode::Normal, live, n)?;
    for ver in 1..=3 {
        load(&*s, n, 100, ver)?;
    }
    s.flush()?;
    emit("space_open", disk_usage(dir).0 as f64 / live as f64);
    std::thread::sleep(std::time::Duration::from_secs(2));
    emit("space_open_idle", disk_usage(dir).0 as f64 / live as f64);
    s.close()?;
    let (alloc, apparent) = disk_usage(dir);
    emit("space_closed", alloc as f64 / live as f64);
    emit("space_closed_apparent", apparent as f64 / live as f64);
    let s = stores::open(kind, dir, Mode::Normal, live, n)?;
    emit_verify(verify(&*s, n, 100, 3)?);
    s.close()
}

// ------------------------------------------------------------ machine limits

/// The machine's own limits, measured in the bench directory: sequential
/// write + fsync bandwidth, one small append + fdatasync, and a std HashMap
/// on the same keys and access patterns as the stores.
pub fn machine(dir: &Path, sz: &Sizes) -> Res<()> {
    use std::io::Write;
    use std::os::unix::io::AsRawFd;
    let e = |x: std::io::Error| x.to_string();
    std::fs::create_dir_all(dir).map_err(e)?;
    // Sequential write + fsync of 256 MiB in 1 MiB writes.
    let chunk = vec![0xabu8; 1 << 20];
    let path = dir.join("seq");
    let mut f = std::fs::File::create(&path).map_err(e)?;
    let t = Instant::now();
    for _ in 0..256 {
        f.write_all(&chunk).map_err(e)?;
    }
    f.sync_all().map_err(e)?;
    emit("seq_write_fsync_mib", 256.0 / t.elapsed().as_secs_f64());
    drop(f);
    std::fs::remove_file(&path).map_err(e)?;
    // One 124-byte append + fdatasync, 500 times.
    let mut f = std::fs::File::create(dir.join("log")).map_err(e)?;
    let rec = [7u8; KEY_LEN + 100];
    let mut lats = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        f.write_all(&rec).map_err(e)?;
        // SAFETY: fd is open for the life of `f`.
        if unsafe { libc::fdatasync(f.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        lats.push(t.elapsed().as_nanos() as u32);
    }
    lats.sort_unstable();
    emit("append_fdatasync_p50_us", pct(&lats, 0.5));
    emit("append_fdatasync_per_s", 1e9 / (lats.iter().map(|&x| x as f64).sum::<f64>() / lats.len() as f64));
    // std HashMap on the same keys.
    let n = sz.n;
    let mut m = std::collections::HashMap::with_capacity(n as usize);
    let t = Instant::now();
    let mut v = Vec::new();
    for i in 0..n {
        value(i, 1, 100, &mut v);
        m.insert(key(i), v.clone());
    }
    emit("fill_ops", n as f64 / t.elapsed().as_secs_f64());
    let zipf = Zipf::new(n);
    let miss = AtomicU64::new(0);
    for (dist, threads) in [("uniform", 1), ("uniform", 2), ("zipf", 1), ("zipf", 2)] {
        let (ops, _) = run_timed(threads, sz.secs, false, |_, r| {
            let i = if dist == "zipf" { zipf.sample(r) } else { r.below(n) };
            let mut k = [0u8; KEY_LEN];
            write_key(&mut k, i);
            match m.get(&k[..]) {
                Some(v) if check(i, v, 100, 1..=1).is_some() => {}
                _ => {
                    miss.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })?;
        emit(&format!("get_{dist}_{threads}t"), ops);
    }
    emit("wrong", miss.load(Ordering::Relaxed) as f64);
    std::fs::remove_dir_all(dir).map_err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_accepts_only_the_value_written_for_that_key_and_version() {
        for len in [24, 100, 4096] {
            let mut v = Vec::new();
            value(7, 2, len, &mut v);
            assert_eq!(v.len(), len);
            assert_eq!(check(7, &v, len, 2..=2), Some(2));
            assert_eq!(check(7, &v, len, 0..=3), Some(2));
            assert_eq!(check(7, &v, len, 3..=3), None, "an older version is not the current one");
            assert_eq!(check(8, &v, len, 0..=3), None, "another key's value");
            assert_eq!(check(7, &v[..len - 1], len, 2..=2), None, "a truncated value");
            for at in [0, 8, 16, len - 1] {
                let mut bad = v.clone();
                bad[at] ^= 1;
                assert_eq!(check(7, &bad, len, 0..=3), None, "a flipped bit at {at}");
            }
        }
    }

    #[test]
    fn values_do_not_compress() {
        let mut v = Vec::new();
        value(1, 1, 4096, &mut v);
        let distinct: std::collections::HashSet<&[u8]> = v[16..].chunks(8).collect();
        assert_eq!(distinct.len(), (4096 - 16) / 8);
    }

    #[test]
    fn keys_are_24_bytes_and_write_key_matches_key() {
        for i in [0, 1, 99_999, u64::MAX / 2] {
            let mut k = [0u8; KEY_LEN];
            write_key(&mut k, i);
            assert_eq!(key(i), k.to_vec());
        }
    }

    #[test]
    fn zipf_is_skewed_and_stays_in_range() {
        let n = 10_000;
        let z = Zipf::new(n);
        let mut r = Rng::new(1);
        let mut counts = vec![0u32; n as usize];
        for _ in 0..200_000 {
            let i = z.sample(&mut r);
            assert!(i < n);
            counts[i as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top: u32 = counts[..100].iter().sum();
        // Under theta 0.99 the hottest 1 % of keys take about half the accesses.
        assert!(top > 200_000 / 3, "top 100 keys got {top}");
    }
}
